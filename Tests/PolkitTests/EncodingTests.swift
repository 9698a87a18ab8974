import DBus
import Foundation
import Testing
@testable import Polkit

/// What goes to polkitd and what comes back, without any bus.
@Suite struct EncodingTests {
    @Test func busNameSubjectIsEncodedAsPolkitdExpects() throws {
        #expect(try PolkitSubject.systemBusName(":1.42").dbusValue()
                == .structure([.string("system-bus-name"), .vardict(["name": .string(":1.42")])]))
    }

    @Test func processSubjectIsEncodedAsPolkitdExpects() throws {
        let value = try PolkitSubject.unixProcess(pid: 4242, startTime: 987_654, uid: 1001).dbusValue()
        #expect(value == .structure([.string("unix-process"), .vardict([
            "pid": .uint32(4242), "start-time": .uint64(987_654), "uid": .int32(1001),
        ])]))
        #expect(value.signature == "(sa{sv})")
    }

    @Test(arguments: ["org.example.WellKnown", "not a bus name", ":", ""])
    func subjectThatIsNotAUniqueNameIsRefusedBeforePolkitdSeesIt(name: String) {
        #expect {
            _ = try PolkitSubject.systemBusName(name).dbusValue()
        } throws: { error in
            (error as? PolkitError)?.code == .invalidArgument
        }
    }

    @Test func processSubjectNeedsAPositivePID() {
        #expect(throws: PolkitError.self) { _ = try PolkitSubject.unixProcess(pid: 0, startTime: 0, uid: 0).dbusValue() }
    }

    @Test func startTimeIsField22EvenWhenTheCommandNameHasSpacesAndParentheses() {
        let stat = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 778899 12345678 300 18446744073709551615"
        #expect(PolkitSubject.startTime(fromStat: stat) == 778_899)
        #expect(PolkitSubject.startTime(fromStat: "1234 (short) S 1") == nil)
    }

    @Test func thisProcessIsReadFromProc() throws {
        let subject = try PolkitSubject.process(pid: getpid())
        guard case .unixProcess(let pid, let startTime, let uid) = subject else { Issue.record("\(subject)"); return }
        #expect(pid == getpid())
        #expect(startTime > 0)
        #expect(uid == Int32(bitPattern: getuid()))
        #expect(throws: PolkitError.self) { _ = try PolkitSubject.process(pid: Int32.max) }
    }

    @Test func detailsAreAStringDictionaryInKeyOrder() {
        let value = PolkitAuthority.detailsValue(["verb": "Start", "vm.name": "web 01", "unicode": "Grüße"])
        #expect(value.signature == "a{ss}")
        #expect(value == .dictionary(key: "s", value: "s", [
            .init(.string("unicode"), .string("Grüße")), .init(.string("verb"), .string("Start")),
            .init(.string("vm.name"), .string("web 01")),
        ]))
    }

    @Test func replyIsDecodedIntoAResult() {
        let body: [DBusValue] = [.structure([.boolean(false), .boolean(true),
                                             .dictionary(key: "s", value: "s", [.init(.string("polkit.dismissed"), .string("true"))])])]
        let result = PolkitResult(replyBody: body)
        #expect(result == PolkitResult(isAuthorized: false, isChallenge: true, details: ["polkit.dismissed": "true"]))
        #expect(result?.isDismissed == true)
    }

    @Test(arguments: [
        [DBusValue](), [.boolean(true)], [.structure([.boolean(true), .boolean(false)])],
        [.structure([.boolean(true), .uint32(0), .dictionary(key: "s", value: "s", [])])],
        [.structure([.boolean(true), .boolean(false), .dictionary(key: "s", value: "v", [])])],
    ])
    func replyOfAnotherTypeIsNotAResult(body: [DBusValue]) {
        #expect(PolkitResult(replyBody: body) == nil)
    }

    @Test func decisionReflectsAuthorizedChallengeAndDenied() {
        #expect(PolkitResult(isAuthorized: true, isChallenge: false).decision == .authorized)
        #expect(PolkitResult(isAuthorized: false, isChallenge: true).decision == .challenge)
        #expect(PolkitResult(isAuthorized: false, isChallenge: false).decision == .notAuthorized)
    }

    @Test(arguments: [
        (DBusError.Name.serviceUnknown, PolkitError.Code.unreachable),
        (DBusError.Name.nameHasNoOwner, .unreachable),
        (DBusError.Name.disconnected, .unreachable),
        ("org.freedesktop.DBus.Error.Spawn.ChildExited", .unreachable),
        (DBusError.Name.noReply, .noAnswer),
        (DBusError.Name.timeout, .noAnswer),
        (DBusError.Name.limitsExceeded, .noAnswer),
        ("org.freedesktop.PolicyKit1.Error.Cancelled", .cancelled),
        ("org.freedesktop.PolicyKit1.Error.Failed", .failed),
        ("org.freedesktop.PolicyKit1.Error.NotAuthorized", .failed),
    ])
    func busErrorsAreSortedByWhatTheyMean(name: String, code: PolkitError.Code) {
        let error = PolkitError(DBusError(name, "text"), method: "CheckAuthorization")
        #expect(error.code == code)
        #expect(error.dbusName == name)
        #expect(error.description == "CheckAuthorization: text (\(name))")
    }

    @Test func errorsPolkitdAnswersWithAreAboutTheCheckNotAboutPolkitd() {
        #expect(PolkitError(DBusError(DBusError.Name.nameHasNoOwner, "no such name"), method: "CheckAuthorization", fromPolkitd: true).code == .failed)
        #expect(PolkitError(DBusError("org.freedesktop.PolicyKit1.Error.Cancelled", "x"), method: "CheckAuthorization", fromPolkitd: true).code == .cancelled)
    }
}
