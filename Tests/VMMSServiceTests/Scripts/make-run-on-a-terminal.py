"""`make run` as a person at a terminal uses it: wait for the instructions, try the printed
busctl line, start a second `make run` (refused), press Ctrl-C (exit 0, no make error).
Prints one line per finding: READY/NOT-READY, INTROSPECT <rc>, SECOND <rc> <text>,
FIRST <rc> <text>. Usage: make-run-on-a-terminal.py REPO RUN_DIR VMMSD"""
import os, pty, select, subprocess, sys, time

repo, run_dir, vmmsd = sys.argv[1], sys.argv[2], sys.argv[3]
bus = "unix:path=" + run_dir + "/bus"

def spawn():
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(repo)
        os.execvp("make", ["make", "--no-print-directory", "run", "RUN_DIR=" + run_dir, "VMMSD_BIN=" + vmmsd])
    return pid, fd

def read_until(fd, text, timeout):
    buf = b""
    end = time.time() + timeout
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            buf += data
            if text.encode() in buf:
                return buf.decode(errors="replace"), True
    return buf.decode(errors="replace"), False

def one_line(text):
    return text.replace("\r", " ").replace("\n", " ")[-300:]

first, fd = spawn()
out, ok = read_until(fd, "Press Ctrl-C", 180)
print("READY" if ok else "NOT-READY " + one_line(out), flush=True)
if not ok:
    os.kill(first, 9)
    sys.exit(0)
r = subprocess.run(["busctl", "--address=" + bus, "introspect", "org.example.VMMS1", "/org/example/VMMS1/Host"],
                   capture_output=True, text=True)
print("INTROSPECT", r.returncode, flush=True)
second, fd2 = spawn()
out2, _ = read_until(fd2, "already running", 120)
_, status2 = os.waitpid(second, 0)
print("SECOND", os.waitstatus_to_exitcode(status2), one_line(out2), flush=True)
os.write(fd, b"\x03")
out3, _ = read_until(fd, "vmms stopped", 30)
_, status = os.waitpid(first, 0)
rest, _ = read_until(fd, "\0", 1)
print("FIRST", os.waitstatus_to_exitcode(status), one_line(out3 + rest), flush=True)
