#if os(macOS)
import Foundation
import XCTest

@testable import CallPush

/// The iOS glue against the real server: VoIP pushes the server sent, handed over as PushKit's
/// `dictionaryPayload` through ``CallPush/handleVoipPush(dictionaryPayload:)``, reported through
/// ``CallKitCallUi`` to a ``FakeCallProvider`` that plays CallKit and the user's taps in it.
final class CallKitTests: ServerTestCase {
    /// An APNs device whose system call UI is CallKit, registered with a VoIP token.
    private func iPhone() async throws -> (device: Device, callKit: FakeCallProvider, ui: CallKitCallUi) {
        let provider = FakeCallProvider()
        let callKit = CallKitCallUi(provider: provider)
        let device = try makeDevice(.apns, ui: callKit)
        let registration = try await device.callPush.register(
            voipToken: Data(repeating: 0xAB, count: 32),
            options: RegisterPushOptions(apnsEnvironment: .sandbox)
        )
        XCTAssertEqual(registration.token, String(repeating: "ab", count: 32))
        XCTAssertEqual(registration.apnsEnvironment, .sandbox)
        return (device: device, callKit: provider, ui: callKit)
    }

    /// The alert token for missed-call alerts goes with the VoIP token, whichever iOS hands out
    /// first, and on every later registration.
    func testTheAlertTokenIsRegisteredWithTheVoipTokenWhicheverComesFirst() async throws {
        let device = try makeDevice(.apns, ui: CallKitCallUi(provider: FakeCallProvider()))
        let alert = Data(repeating: 0xCD, count: 32)
        let remembered = try await device.callPush.setAlertToken(alert)
        XCTAssertNil(remembered, "no VoIP token yet: only remembered")
        let registration = try await device.callPush.register(
            voipToken: Data(repeating: 0xAB, count: 32),
            options: RegisterPushOptions(apnsEnvironment: .sandbox)
        )
        XCTAssertEqual(registration.apnsAlertToken, String(repeating: "cd", count: 32))

        let rotated = try await device.callPush.setAlertToken(Data(repeating: 0xEF, count: 32))
        XCTAssertEqual(rotated?.token, String(repeating: "ab", count: 32))
        XCTAssertEqual(rotated?.apnsAlertToken, String(repeating: "ef", count: 32))
        XCTAssertEqual(rotated?.apnsEnvironment, .sandbox)

        // The VoIP token alone cannot be the alert token: a typed error.
        await assertThrows("the VoIP token as the alert token", {
            try await device.callPush.setAlertToken(Data(repeating: 0xAB, count: 32))
        }, matches: { callpushErrorKind($0) == "InvalidToken" })
    }

    /// Rings `callId` to the device and hands its VoIP push over as PushKit would.
    private func ringAndHandle(
        _ callId: String,
        on device: Device,
        ringSeconds: Int? = nil
    ) async throws -> HandleOutcome {
        let push = try await ring(callId, device.client.installationId(), ringSeconds: ringSeconds)
        XCTAssertEqual(push.platform, .apns)
        return device.callPush.handleVoipPush(dictionaryPayload: try push.dictionaryPayload())
    }

    func testAVoipPushRingsThroughCallKitAndTheUsersActionsReachTheServer() async throws {
        let (device, callKit, ui) = try await iPhone()
        let outcome = try await ringAndHandle("call-k1", on: device)
        XCTAssertEqual(outcome.outcome, .ring)
        let uuid = CallUUID.make(callId: "call-k1")
        // Reported before handleVoipPush returned, under the call's own UUID.
        XCTAssertEqual(callKit.incomingReports.map { $0.uuid }, [uuid])
        XCTAssertEqual(
            callKit.incomingReports.first?.display,
            CallDisplay(handle: "alice", name: "Alice Ødegård", hasVideo: true)
        )
        XCTAssertTrue(ui.isLive(callId: "call-k1"))
        await eventually("CallKit shows the call") { callKit.shown.contains(uuid) }

        // The user answers on the lock screen: the server learns it.
        let answered = await callKit.userAnswers(uuid)
        XCTAssertTrue(answered)
        XCTAssertEqual(device.client.call(callId: "call-k1")?.state, .answered)
        let status = try await server.call("call-k1")
        XCTAssertEqual(status["state"] as? String, "answered")
        XCTAssertEqual(callKit.requests, [], "CallKit's own answer needs no request")

        _ = try device.client.mediaConnected(callId: "call-k1")
        await callKit.userEnds(uuid)
        XCTAssertEqual(device.client.call(callId: "call-k1")?.endReason, .hungUp)
        XCTAssertTrue(callKit.endedReports.isEmpty, "CallKit's own end needs no report")
        XCTAssertFalse(ui.isLive(callId: "call-k1"))
    }

    func testTheUserDeclinesInCallKit() async throws {
        let (device, callKit, _) = try await iPhone()
        _ = try await ringAndHandle("call-k2", on: device)
        let uuid = CallUUID.make(callId: "call-k2")
        await eventually("CallKit shows the call") { callKit.shown.contains(uuid) }
        await callKit.userEnds(uuid)
        XCTAssertEqual(device.client.call(callId: "call-k2")?.endReason, .declined)
        let status = try await server.call("call-k2")
        XCTAssertEqual(status["state"] as? String, "declined")
    }

    func testAnswerAndHangUpInTheAppsOwnUiBecomeCallKitRequests() async throws {
        let (device, callKit, ui) = try await iPhone()
        _ = try await ringAndHandle("call-k3", on: device)
        let uuid = CallUUID.make(callId: "call-k3")
        await eventually("CallKit shows the call") { callKit.shown.contains(uuid) }

        let answered = try await device.client.answer(callId: "call-k3")
        XCTAssertEqual(answered.state, .answered)
        XCTAssertEqual(callKit.requests, [.answer(uuid)])
        _ = try await device.client.hangUp(callId: "call-k3")
        XCTAssertEqual(callKit.requests, [.answer(uuid), .end(uuid)])
        await eventually("CallKit ends the call") { !callKit.shown.contains(uuid) }
        XCTAssertTrue(callKit.endedReports.isEmpty, "ended through the end action, not reported")
        XCTAssertFalse(ui.isLive(callId: "call-k3"))
        XCTAssertEqual(device.client.call(callId: "call-k3")?.endReason, .hungUp)
    }

    func testADuplicatePushIsReportedUnderTheSameUuidAndTheCallRingsOn() async throws {
        let (device, callKit, ui) = try await iPhone()
        let push = try await ring("call-k4", device.client.installationId())
        let payload = try push.dictionaryPayload()
        XCTAssertEqual(device.callPush.handleVoipPush(dictionaryPayload: payload).outcome, .ring)
        let uuid = CallUUID.make(callId: "call-k4")
        await eventually("CallKit shows the call") { callKit.shown.contains(uuid) }

        let again = device.callPush.handleVoipPush(dictionaryPayload: payload)
        XCTAssertEqual(again.outcome, .duplicate)
        XCTAssertEqual(again.report, .reportAndEnd)
        // CallKit refuses the second report as already reported: the rule is met, the call rings on.
        XCTAssertEqual(callKit.incomingReports.map { $0.uuid }, [uuid, uuid])
        try await Task.sleep(nanoseconds: 200_000_000)
        XCTAssertTrue(callKit.endedReports.isEmpty)
        XCTAssertTrue(callKit.shown.contains(uuid))
        XCTAssertTrue(ui.isLive(callId: "call-k4"))
        XCTAssertEqual(device.client.call(callId: "call-k4")?.state, .ringing)
    }

    func testAPushThatIsNoCallIsReportedAndEndedUnderAUuidOfItsOwn() async throws {
        let (device, callKit, _) = try await iPhone()
        let outcome = device.callPush.handleVoipPush(dictionaryPayload: ["aps": ["content-available": 1], "other": "x"])
        XCTAssertEqual(outcome.outcome, .ignore)
        XCTAssertEqual(outcome.report, .reportAndEnd)
        let reported = try XCTUnwrap(callKit.incomingReports.first)
        XCTAssertEqual(callKit.incomingReports.count, 1)
        XCTAssertEqual(reported.display.name, "Call ended")
        await eventually("the call is ended") { callKit.endedReports.map { $0.uuid } == [reported.uuid] }
        XCTAssertEqual(callKit.endedReports.first?.reason, .failed)
        XCTAssertTrue(callKit.shown.isEmpty)

        // A forged call push: refused, reported and ended too, and the app is told.
        let forged = device.callPush.handleVoipPush(dictionaryPayload: ["aps": ["content-available": 1], "callpush": "a.b.c"])
        XCTAssertEqual(forged.outcome, .rejected)
        XCTAssertEqual(callKit.incomingReports.count, 2)
        await eventually("both are ended") { callKit.endedReports.count == 2 }
        _ = try await device.events.next("error") { $0.asError }
    }

    func testAPushAfterItsDeadlineIsReportedAndEndedAndTheMissedAlertMatchesTheMissedEvent() async throws {
        let (device, callKit, _) = try await iPhone()
        let id = device.client.installationId()
        // The phone was unreachable while the call rang: the ring push arrives after its deadline.
        let push = try await ring("call-k5", id, ringSeconds: 5)
        try await server.awaitCallState("call-k5", "missed")
        // Past the deadline on the phone's clock too, whatever its offset's rounding.
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let outcome = device.callPush.handleVoipPush(dictionaryPayload: try push.dictionaryPayload())
        XCTAssertEqual(outcome.outcome, .stale)
        XCTAssertEqual(outcome.report, .reportAndEnd)
        let reported = try XCTUnwrap(callKit.incomingReports.first)
        XCTAssertNotEqual(reported.uuid, CallUUID.make(callId: "call-k5"))
        await eventually("the call is ended") { callKit.endedReports.map { $0.uuid } == [reported.uuid] }
        XCTAssertEqual(callKit.endedReports.first?.reason, .remoteEnded)

        // The app's missed-call notification and the server's alert push share one id, so iOS
        // shows one of them.
        let missed = try await device.events.next("missed") { $0.asMissed }
        XCTAssertEqual(missed.call.callId, "call-k5")
        let alert = try await server.awaitPush("call-k5", to: id, kind: "missed")
        XCTAssertEqual(alert.platform, .apns)
        XCTAssertEqual(alert.missedAppMessageId, missed.appMessageId)
    }

    func testCallKitRefusingACallEndsItHereOnly() async throws {
        let (device, callKit, ui) = try await iPhone()
        callKit.refuseNextIncomingCall(.refused("filtered by Do Not Disturb"))
        let outcome = try await ringAndHandle("call-k6", on: device)
        XCTAssertEqual(outcome.outcome, .ring)
        await eventually("the call ends as failed") {
            device.client.call(callId: "call-k6")?.endReason == .failed
        }
        XCTAssertFalse(ui.isLive(callId: "call-k6"))
        XCTAssertTrue(callKit.shown.isEmpty)
        // The user's other devices ring on.
        let status = try await server.call("call-k6")
        XCTAssertEqual(status["state"] as? String, "ringing")
    }

    func testACallerWhoHangsUpEndsTheCallInCallKit() async throws {
        let (device, callKit, ui) = try await iPhone()
        _ = try await ringAndHandle("call-k7", on: device)
        let uuid = CallUUID.make(callId: "call-k7")
        await eventually("CallKit shows the call") { callKit.shown.contains(uuid) }
        try await server.cancel("call-k7")
        // No cancel push reaches an iPhone: the client learns it over its own connection.
        await eventually("CallKit is told the call ended") { callKit.endedReports.contains { $0.uuid == uuid } }
        XCTAssertEqual(callKit.endedReports.first?.reason, .remoteEnded)
        XCTAssertFalse(ui.isLive(callId: "call-k7"))
        let missed = try await device.events.next("missed") { $0.asMissed }
        XCTAssertEqual(missed.call.callId, "call-k7")
    }

    func testAnOutgoingCallStartsConnectsAndEndsThroughCallKit() async throws {
        let (device, callKit, ui) = try await iPhone()
        let uuid = CallUUID.make(callId: "out-1")
        let call = try device.client.reportOutgoingCall(callId: "out-1", calleeId: "carol", calleeName: "Carol", video: false)
        XCTAssertEqual(call.state, .dialing)
        XCTAssertEqual(callKit.requests, [.start(uuid, CallDisplay(handle: "carol", name: "Carol", hasVideo: false))])
        await eventually("CallKit started the call") { callKit.shown.contains(uuid) }
        _ = try device.client.mediaConnected(callId: "out-1")
        XCTAssertEqual(callKit.reports.last, .connected(uuid))
        _ = try await device.client.hangUp(callId: "out-1")
        await eventually("CallKit ends the call") { !callKit.shown.contains(uuid) }
        XCTAssertEqual(callKit.requests.last, .end(uuid))
        XCTAssertFalse(ui.isLive(callId: "out-1"))
    }

    func testEveryApnsVectorIsReportedToCallKitBeforeHandleVoipPushReturns() async throws {
        let vectors = try VectorsTests.vectors().filter { $0.platform == .apns }
        XCTAssertFalse(vectors.isEmpty)
        for vector in vectors {
            let provider = FakeCallProvider()
            let callKit = CallKitCallUi(provider: provider)
            let callPush = try CallPush.create(
                config: ClientConfig(
                    serverUrl: server.url,
                    dataDir: try newDataDir(),
                    platform: .apns,
                    pinnedKeysJson: vector.keysJson,
                    userId: "user-bob"
                ),
                tokens: server.tokens("bob"),
                ui: callKit
            )
            defer { callPush.close() }
            // PushKit hands over a dictionary; a vector that is no JSON object arrives as an empty one.
            let object = try? JSONSerialization.jsonObject(with: Data(vector.raw.utf8))
            let payload = (object as? [String: Any]).map { dictionary -> [AnyHashable: Any] in
                var payload: [AnyHashable: Any] = [:]
                for (key, value) in dictionary {
                    payload[key] = value
                }
                return payload
            } ?? [:]
            let outcome = callPush.handleVoipPush(dictionaryPayload: payload)
            XCTAssertEqual(provider.incomingReports.count, 1, "\(vector.name): one CallKit report")
            if outcome.outcome == .ring {
                XCTAssertEqual(
                    provider.incomingReports.first?.uuid,
                    outcome.call.map { CallUUID.make(callId: $0.callId) },
                    vector.name
                )
            }
        }
    }

    func testTheVoipSafetyNetReportsAPushTheClientDidNotReport() async throws {
        // An FCM client reports nothing for a push that is not ours; handleVoipPush still does.
        let provider = FakeCallProvider()
        let callKit = CallKitCallUi(provider: provider)
        let device = try makeDevice(.fcm, ui: callKit)
        let outcome = device.callPush.handleVoipPush(dictionaryPayload: ["aps": ["content-available": 1]])
        XCTAssertEqual(outcome.outcome, .ignore)
        XCTAssertEqual(outcome.report, SystemReport.none)
        XCTAssertEqual(provider.incomingReports.count, 1)
        await eventually("the call is ended") { provider.endedReports.count == 1 }
    }

    func testCallKitResettingEndsEveryCallHereAsFailed() async throws {
        let (device, callKit, ui) = try await iPhone()
        _ = try await ringAndHandle("call-k8", on: device)
        await eventually("CallKit shows the call") { callKit.shown.contains(CallUUID.make(callId: "call-k8")) }
        callKit.reset()
        XCTAssertEqual(device.client.call(callId: "call-k8")?.endReason, .failed)
        XCTAssertFalse(ui.isLive(callId: "call-k8"))
        XCTAssertTrue(callKit.endedReports.isEmpty)
    }
}
#endif
