#!/usr/bin/python3
"""Headless Chromium for the Cockpit page's tests and measurements (Debian's chromium,
chromium-driver and python3-selenium; nothing is downloaded).

Two uses:

  serve   A command server for Tests/CockpitTests: reads one JSON command per line from the
          file (a FIFO) named by --commands, answers one JSON line per command on stdout
          ({"id": n, "ok": true, "value": ...} or {"id": n, "ok": false, "error": "..."}).
          Every command has a deadline. End of input quits the browser.

  measure For the benchmark: logs in, then loads the page --runs times and prints, as JSON,
          each load's seconds from navigation to the first complete VM list, or, for a load
          not complete within --timeout, the seconds waited and the rows shown then
          (--count-js); exits non-zero only on real errors:
            cockpit_browser.py measure --base http://127.0.0.1:9090 --user alice \\
                --password-file F [--page /cockpit/@localhost/vmms/index.html] \\
                [--ready-js EXPR] [--count-js EXPR] [--runs 5] [--timeout S] \\
                [--local-storage KEY=VALUE]
          From Python: page_load(driver, url, ready_js, timeout, count_js) or
          page_load_seconds(driver, url, ready_js) after login(...).

The browser reaches loopback only: every other host goes to a closed proxy port and
resolves to nothing, and Chromium's background services are off.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid

from selenium import webdriver
from selenium.common.exceptions import (ElementClickInterceptedException, ElementNotInteractableException,
                                        NoSuchElementException, StaleElementReferenceException, TimeoutException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Our page marks its first complete list (cockpit/vm-list.js, _markComplete).
VMMS_PAGE = "/cockpit/@localhost/vmms/index.html"
VMMS_READY = "document.documentElement.dataset.vmmsList === 'complete'"


def start_browser(profile_dir, width=1400, height=1000):
    """A headless Chromium with a private profile, loopback-only, with console logs kept."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--user-data-dir={profile_dir}", f"--window-size={width},{height}",
        "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
        "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--metrics-recording-only",
        "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater",
        # Loopback only: Chromium bypasses proxies for loopback by itself; all else hits a closed port.
        "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--force-device-scale-factor=1", "--hide-scrollbars", "--lang=en-US",
    ]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, service_args=["--allowed-ips=127.0.0.1"])
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    return driver


def login(driver, base, user, password, timeout=30):
    """Cockpit's login form; returns once the session cookie is set."""
    driver.get(base + "/")

    def typed(d):
        # The form shows once login.js has probed the server; until then it is not interactable.
        try:
            fields = [d.find_element(By.ID, "login-user-input"), d.find_element(By.ID, "login-password-input")]
            if not all(field.is_displayed() and field.is_enabled() for field in fields):
                return False
            for field, text in zip(fields, [user, password]):
                field.clear()
                field.send_keys(text)
            d.find_element(By.ID, "login-button").click()
            return True
        except (ElementNotInteractableException, ElementClickInterceptedException, StaleElementReferenceException,
                NoSuchElementException):
            return False
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(typed)

    def done(d):
        cookie = d.get_cookie("cockpit")
        if cookie and cookie.get("value") not in (None, "", "deleted"):   # the login page sets "deleted"
            return True
        errors = d.find_elements(By.ID, "login-error-message")
        text = errors[0].text.strip() if errors and errors[0].is_displayed() else ""
        if text:
            raise RuntimeError(f"login as {user} failed: {text}")
        return False
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(done)


def page_load(driver, url, ready_js=VMMS_READY, timeout=120.0, count_js=None):
    """One page load, timed on the page's own clock (performance.now(): 0 is the start of
    the navigation). A script injected before the page's own polls `ready_js` every
    animation frame, so the result does not depend on how often WebDriver asks; with
    `count_js` (an expression giving the rows shown) it also notes each frame's row count
    and when it last changed.

    Returns {"complete": True, "seconds": S, "rows": R} for the first frame in which
    `ready_js` is true, or, when it is not true within `timeout` seconds, {"complete": False,
    "waited": S (seconds since navigation start), "rows": R (shown then), "rows_since": S
    (when that count was reached)}. Rows are None without `count_js`. A page busy enough not
    to answer a poll is asked again until the deadline; only WebDriver failures raise. Each
    load marks its document with a token of its own, so what the previous document (still
    there while a busy page holds up the navigation) says is never taken for this load's."""
    token = uuid.uuid4().hex
    count = f"(() => {{ try {{ return ({count_js}); }} catch (e) {{ return null; }} }})()" if count_js else "null"
    probe = (
        f"(() => {{ window.__load = '{token}'; window.__rows = null; window.__rowsAt = null;"
        " const check = () => { let ok = false;"
        f" try {{ ok = !!({ready_js}); }} catch (e) {{}}"
        f" const rows = {count};"
        " if (rows !== window.__rows) { window.__rows = rows; window.__rowsAt = performance.now(); }"
        " if (ok) window.__readyAt = performance.now(); else requestAnimationFrame(check); };"
        " requestAnimationFrame(check); })();"
    )
    state = "return [window.__readyAt ?? null, window.__rows ?? null, window.__rowsAt ?? null, performance.now(), window.__load ?? null]"

    def poll():
        """This load's state, or None while its document is not there or does not answer."""
        try:
            answer = driver.execute_script(state)
        except TimeoutException:   # a script timeout too (this selenium has no ScriptTimeoutException)
            return None
        return answer if isinstance(answer, list) and len(answer) == 5 and answer[4] == token else None

    added = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": probe})
    try:
        started = time.monotonic()
        deadline = started + timeout
        try:
            driver.get(url)
        except TimeoutException:   # its load event is late (a busy page): the deadline decides
            pass
        last = None
        while True:
            last = poll() or last   # a busy page: ask again
            if last is not None and last[0] is not None:
                return {"complete": True, "seconds": last[0] / 1000.0, "rows": last[1]}
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        final = poll()   # the rows shown at the deadline (the last poll's if it does not answer)
        waited = final[3] / 1000.0 if final is not None else time.monotonic() - started
        last = final or last
        return {"complete": False, "waited": waited, "rows": last[1] if last is not None else None,
                "rows_since": last[2] / 1000.0 if last is not None and last[2] is not None else None}
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]})


def fresh_tab(driver):
    """Moves to a new tab and closes the old one: a page still busy from the previous load
    (cockpit-machines with 1,000 VMs) neither holds up nor slows down the next."""
    old = driver.current_window_handle
    driver.switch_to.new_window("tab")
    new = driver.current_window_handle
    driver.switch_to.window(old)
    driver.close()
    driver.switch_to.window(new)


def page_load_seconds(driver, url, ready_js=VMMS_READY, timeout=120.0):
    """Seconds from navigation start to the first animation frame in which the JavaScript
    expression `ready_js` is true (page_load); raises TimeoutError when it is not true within
    `timeout` seconds. Works for any page (for cockpit-machines pass an expression that is
    true once its list shows every VM)."""
    result = page_load(driver, url, ready_js, timeout)
    if not result["complete"]:
        raise TimeoutError(f"{ready_js} not true within {timeout} s")
    return result["seconds"]


KEYS = {name: getattr(Keys, name) for name in dir(Keys) if name.isupper()}


class Server:
    def __init__(self, driver, base):
        self.driver = driver
        self.base = base

    def _until(self, timeout, condition, what):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(condition)
        except TimeoutException:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}") from None

    def _element(self, css, timeout):
        def find(d):
            for element in d.find_elements(By.CSS_SELECTOR, css):
                if element.is_displayed() and element.is_enabled():
                    return element
            return False
        return self._until(timeout, find, f"a visible, enabled {css}")

    def run(self, command):
        kind = command["cmd"]
        timeout = float(command.get("timeout", 10))
        d = self.driver
        if kind == "login":
            login(d, self.base, command["user"], command["password"], timeout)
        elif kind == "get":
            d.get(self.base + command["url"])
        elif kind == "eval":
            return d.execute_script(command["js"])
        elif kind == "wait":
            js = command["js"]
            return self._until(timeout, lambda dr: dr.execute_script(js), js)
        elif kind == "click":
            # Rows re-render as signals arrive: an element found a moment ago may have moved
            # or been replaced, so try again (within the deadline) as a user would.
            def clicked(d):
                try:
                    self._element(command["css"], 1).click()
                    return True
                except (ElementNotInteractableException, ElementClickInterceptedException,
                        StaleElementReferenceException, RuntimeError):
                    return False
            self._until(timeout, clicked, f"a click on {command['css']}")
        elif kind == "type":
            element = self._element(command["css"], timeout)
            if command.get("clear", True):
                element.send_keys(Keys.CONTROL, "a")
                element.send_keys(Keys.DELETE)
            element.send_keys(command["text"])
        elif kind == "keys":
            # As a user types: to the focused element (focus `css` first when given).
            if command.get("css"):
                d.execute_script("arguments[0].focus()", self._element(command["css"], timeout))
            ActionChains(d).send_keys(*[KEYS.get(key, key) for key in command["keys"]]).perform()
        elif kind == "frame":
            d.switch_to.default_content()
            if command.get("css"):
                d.switch_to.frame(self._element(command["css"], timeout))
        elif kind == "screenshot":
            path = command["path"]
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if not d.save_screenshot(path):
                raise RuntimeError(f"could not write {path}")
        elif kind == "window":
            d.set_window_size(int(command["width"]), int(command["height"]))
        elif kind == "measure":
            return page_load_seconds(d, self.base + command["url"], command.get("ready_js", VMMS_READY), timeout)
        else:
            raise RuntimeError(f"unknown command {kind}")
        return None

    def console(self):
        try:
            return [f"{entry['level']}: {entry['message']}" for entry in self.driver.get_log("browser")][-20:]
        except WebDriverException:
            return []


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(args):
    profile = tempfile.mkdtemp(prefix=f"vmms-chromium-{args.tag}-")
    driver = None
    try:
        driver = start_browser(profile)
        server = Server(driver, args.base)
        reply({"id": 0, "ok": True, "value": "ready"})
        with open(args.commands, encoding="utf-8") as commands:
            for line in commands:
                if not line.strip():
                    continue
                command = json.loads(line)
                if command["cmd"] == "quit":
                    reply({"id": command["id"], "ok": True, "value": None})
                    break
                try:
                    reply({"id": command["id"], "ok": True, "value": server.run(command)})
                except Exception as error:   # report and carry on: the test decides
                    what = {key: value for key, value in command.items() if key != "password"}
                    text = str(error).split("\nStacktrace:")[0].strip()   # chromedriver's addresses say nothing
                    reply({"id": command["id"], "ok": False, "error": f"{type(error).__name__}: {text} (in {json.dumps(what)})",
                           "console": server.console()})
    except Exception:
        reply({"id": 0, "ok": False, "error": traceback.format_exc()})
        return 1
    finally:
        if driver is not None:
            try:
                driver.quit()
            except Exception:
                pass
        shutil.rmtree(profile, ignore_errors=True)
    return 0


def measure(args):
    # A TERM (the benchmark's cleanup) unwinds through the finally below: the browser quits.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = tempfile.mkdtemp(prefix="vmms-chromium-measure-")
    driver = start_browser(profile)
    try:
        with open(args.password_file, encoding="utf-8") as file:
            login(driver, args.base, args.user, file.read().strip())
        for item in args.local_storage:   # the origin's localStorage, set once after login
            key, _, value = item.partition("=")
            driver.execute_script("localStorage.setItem(arguments[0], arguments[1])", key, value)
        runs = []
        for run in range(args.runs):
            if run > 0:
                fresh_tab(driver)
            result = page_load(driver, args.base + args.page, args.ready_js, args.timeout, args.count_js)
            runs.append(result)
            print(f"run {run + 1}: {json.dumps(result)}", file=sys.stderr, flush=True)
        print(json.dumps({"page": args.page, "timeout": args.timeout, "runs": runs}))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    s.add_argument("--commands", required=True, help="file or FIFO with one JSON command per line")
    s.add_argument("--tag", default="test", help="goes into the profile directory's name")
    m = sub.add_parser("measure")
    m.add_argument("--base", required=True)
    m.add_argument("--user", required=True)
    m.add_argument("--password-file", required=True)
    m.add_argument("--page", default=VMMS_PAGE)
    m.add_argument("--ready-js", default=VMMS_READY)
    m.add_argument("--runs", type=int, default=5)
    m.add_argument("--timeout", type=float, default=120.0,
                   help="seconds one load may take; a load still not ready then is recorded as timed out")
    m.add_argument("--count-js", default=None, metavar="EXPR",
                   help="the rows shown (recorded for every load, and for a timed-out one the count at the timeout)")
    m.add_argument("--local-storage", action="append", default=[], metavar="KEY=VALUE",
                   help="set in the origin's localStorage after login (e.g. a page's dismissed notice)")
    args = parser.parse_args()
    return serve(args) if args.mode == "serve" else measure(args)


if __name__ == "__main__":
    sys.exit(main())
