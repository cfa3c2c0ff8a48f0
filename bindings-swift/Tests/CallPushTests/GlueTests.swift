import Foundation
import XCTest

@testable import CallPush

/// The Swift layer's own pieces, without a server: CallKit UUIDs, VoIP tokens and payloads, what
/// CallKit is shown and told.
final class GlueTests: XCTestCase {
    func testCallUuidsAreVersion5UuidsOfTheCallIdInTheCallpushNamespace() throws {
        let urlNamespace = try XCTUnwrap(UUID(uuidString: "6ba7b811-9dad-11d1-80b4-00c04fd430c8"))
        XCTAssertEqual(CallUUID.make(name: "https://callpush.dev/calls", namespace: urlNamespace), CallUUID.namespace)
        XCTAssertEqual(CallUUID.namespace.uuidString.lowercased(), "cca9e5c5-96d5-5f58-adcc-e1bb3b6c1092")
        // Python's uuid.uuid5 agrees.
        XCTAssertEqual(CallUUID.make(callId: "call-1").uuidString.lowercased(), "bb399b23-751b-5146-856f-979246154fba")
        XCTAssertEqual(CallUUID.make(callId: "call-7d3f9a").uuidString.lowercased(), "f8ce7ba3-de5f-58b5-be8c-f3f48c01a7b5")
        XCTAssertEqual(CallUUID.make(callId: "Ødegård").uuidString.lowercased(), "7da5e809-5670-5684-a718-e4c5cc06b2ab")
        XCTAssertEqual(CallUUID.make(callId: "call-1"), CallUUID.make(callId: "call-1"))
        XCTAssertNotEqual(CallUUID.make(callId: "call-1"), CallUUID.make(callId: "call-2"))
    }

    func testVoipTokensTravelAsLowercaseHex() {
        XCTAssertEqual(CallPush.hex(Data([0x00, 0x0F, 0xAB, 0xFF])), "000fabff")
        XCTAssertEqual(CallPush.hex(Data(repeating: 0xAB, count: 32)), String(repeating: "ab", count: 32))
        XCTAssertEqual(CallPush.hex(Data()), "")
    }

    func testPushKitPayloadsAreHandedOverAsTheirJson() {
        let payload: [AnyHashable: Any] = ["callpush": "a.b/c", "aps": ["content-available": 1]]
        XCTAssertEqual(CallPush.json(payload), #"{"aps":{"content-available":1},"callpush":"a.b/c"}"#)
        // Not JSON (it always is): handed over as an empty object, still reported to CallKit.
        XCTAssertEqual(CallPush.json(["when": Date()]), "{}")
    }

    func testCallKitShowsTheNameOrElseTheUserId() {
        var call = Call(
            callId: "call-1",
            direction: .incoming,
            state: .ringing,
            endReason: nil,
            peerId: "alice",
            peerName: "Alice",
            video: true,
            systemCallId: nil,
            expiresAt: nil,
            data: [:]
        )
        XCTAssertEqual(CallDisplay(call), CallDisplay(handle: "alice", name: "Alice", hasVideo: true))
        call.peerName = "  "
        XCTAssertEqual(CallDisplay(call).name, "alice")
        call.peerName = nil
        XCTAssertEqual(CallDisplay(call).name, "alice")
    }

    func testEndReasonsBecomeCallKits() {
        XCTAssertEqual(CallEndedReason(EndReason.callerCancelled), .remoteEnded)
        XCTAssertEqual(CallEndedReason(EndReason.answeredElsewhere), .answeredElsewhere)
        XCTAssertEqual(CallEndedReason(EndReason.declinedElsewhere), .declinedElsewhere)
        XCTAssertEqual(CallEndedReason(EndReason.missed), .unanswered)
        XCTAssertEqual(CallEndedReason(EndReason.failed), .failed)
        XCTAssertEqual(CallEndedReason(nil), .failed)
        XCTAssertEqual(IncomingCallError.callEnded.endedReason, .remoteEnded)
        XCTAssertEqual(IncomingCallError.invalidPush.endedReason, .failed)
        XCTAssertEqual(IncomingCallError.lineBusy.endedReason, .failed)
    }

    func testAPushWithoutACallIsReportedAndEndedUnderAUuidOfItsOwn() async throws {
        let provider = FakeCallProvider()
        let ui = CallKitCallUi(provider: provider, placeholderName: "Anruf beendet")
        try ui.reportAndEndCall(call: nil, reason: .invalidPush)
        try ui.reportAndEndCall(call: nil, reason: .invalidPush)
        XCTAssertEqual(ui.incomingCallReports, 2)
        let reported = provider.incomingReports
        XCTAssertEqual(reported.count, 2)
        XCTAssertNotEqual(reported[0].uuid, reported[1].uuid)
        XCTAssertEqual(reported[0].display, CallDisplay(handle: "", name: "Anruf beendet", hasVideo: false))
        await eventually("both are ended") { provider.endedReports.count == 2 }
        XCTAssertEqual(Set(provider.endedReports.map { $0.uuid }), Set(reported.map { $0.uuid }))
        XCTAssertTrue(provider.shown.isEmpty)
    }

    func testStatesOfCallsCallKitDoesNotShowAreIgnored() throws {
        let provider = FakeCallProvider()
        let ui = CallKitCallUi(provider: provider)
        let call = Call(
            callId: "call-9",
            direction: .incoming,
            state: .ended,
            endReason: .callerCancelled,
            peerId: "alice",
            peerName: nil,
            video: false,
            systemCallId: nil,
            expiresAt: nil,
            data: [:]
        )
        try ui.reportCallState(call: call)
        try ui.reportIncomingCallError(systemCallId: "sys-1", reason: .callEnded)
        XCTAssertEqual(provider.reports, [])
        XCTAssertEqual(ui.incomingCallReports, 0)
    }
}
