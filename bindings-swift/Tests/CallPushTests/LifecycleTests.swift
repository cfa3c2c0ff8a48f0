#if os(macOS)
import Foundation
import XCTest

@testable import CallPush

/// The whole lifecycle through the Swift API against the real server (`callpush serve`, one per
/// test, see ``CallpushServer``): register → ring → answer / decline / cancel / timeout →
/// unregister, other devices of the user, token rotation, typed errors, and callbacks on Rust
/// threads. Calls are rung through the server's backend API and every push a client handles is
/// one the server signed and sent. The same cases as the Kotlin suite's `LifecycleTest`.
final class LifecycleTests: ServerTestCase {
    func testRegisterRingAnswerConnectHangUpUnregister() async throws {
        let device = try makeDevice(.harmony)
        let registration = try await device.client.registerPush(
            token: "MAMzLg0123456789aZW",
            options: RegisterPushOptions(ttlSeconds: 3600)
        )
        let id = device.client.installationId()
        XCTAssertEqual(registration.installationId, id)
        XCTAssertEqual(registration.userId, "bob")
        XCTAssertEqual(registration.expiresAt - registration.serverTime, 3600)
        _ = try await device.events.next("registration changed") { $0.asRegistrationChanged }

        // The server rings the token just registered, over Push Kit; the system names the call.
        let sent = try await ring("call-1", id)
        XCTAssertEqual(sent.platform, .harmony)
        XCTAssertTrue(sent.token.hasPrefix("MAMzLg"), sent.token)
        let outcome = device.client.handlePush(raw: try sent.raw(systemCallId: "sys-1"))
        XCTAssertEqual(outcome.outcome, .ring)
        XCTAssertEqual(outcome.call?.systemCallId, "sys-1")
        XCTAssertEqual(ui.reports.first, "incoming call-1 Alice Ødegård")
        let incoming = try await device.events.next("incoming") { $0.asIncoming }
        XCTAssertEqual(incoming.data, ["room": "r-1"])
        XCTAssertTrue(incoming.video)

        let answered = try await device.client.answer(callId: "call-1")
        XCTAssertEqual(answered.state, .answered)
        let status = try await server.call("call-1")
        XCTAssertEqual(status["state"] as? String, "answered")
        XCTAssertEqual(status["answered_by"] as? String, id)
        _ = try device.client.mediaConnected(callId: "call-1")
        let ended = try await device.client.hangUp(callId: "call-1")
        XCTAssertEqual(ended.endReason, .hungUp)
        XCTAssertEqual(
            ui.reports.filter { $0.hasPrefix("state") },
            ["state call-1 answered nil", "state call-1 active nil", "state call-1 ended hungUp"]
        )

        try await device.client.unregisterPush()
        XCTAssertNil(device.client.registration())
        // Withdrawn on the server: the next call to bob rings nothing.
        let next = try await server.ring("call-1b")
        XCTAssertEqual(CallpushServer.deliveries(next), [])
    }

    func testAnsweringOnOneDeviceStopsTheUsersOtherDevicesByACancelPush() async throws {
        let phone = try makeDevice(.harmony)
        _ = try await phone.client.registerPush(token: "MAMzLg0123456789aZW", options: RegisterPushOptions())
        // The tablet's own connection gets nowhere, so only the cancel push can stop it ringing.
        let tabletUi = RecordingUi()
        let stalled = StalledLongPolls()
        let tablet = try makeDevice(.fcm, dir: try newDataDir(), ui: tabletUi, http: stalled)
        _ = try await tablet.client.registerPush(token: "fcm-token-1234567890", options: RegisterPushOptions())
        let phoneId = phone.client.installationId()
        let tabletId = tablet.client.installationId()

        let rang = try await ring("call-8", phoneId, tabletId)
        XCTAssertEqual(phone.client.handlePush(raw: try rang.raw()).outcome, .ring)
        let tabletRing = try await server.awaitPush("call-8", to: tabletId)
        XCTAssertEqual(tablet.client.handlePush(raw: try tabletRing.raw()).outcome, .ring)
        _ = try await tablet.events.next("incoming") { $0.asIncoming }

        _ = try await phone.client.answer(callId: "call-8")
        let cancel = try await server.awaitPush("call-8", to: tabletId, kind: "cancel")
        XCTAssertEqual(cancel.platform, .fcm)
        let outcome = tablet.client.handlePush(raw: try cancel.raw())
        XCTAssertEqual(outcome.outcome, .cancel)
        XCTAssertEqual(outcome.call?.reason, .answeredElsewhere)
        let cancelled = try await tablet.events.next("cancelled") { $0.asCancelled }
        XCTAssertEqual(cancelled.reason, .answeredElsewhere)
        XCTAssertEqual(tablet.client.call(callId: "call-8")?.endReason, .answeredElsewhere)
        XCTAssertEqual(tabletUi.reports.last, "state call-8 ended answeredElsewhere")
        XCTAssertGreaterThan(stalled.stalled, 0, "the tablet was watching the call")
        // The device that answered is not told to stop.
        XCTAssertEqual(server.pushes().filter { $0.installationId == phoneId }.map { $0.kind }, ["ring"])
        XCTAssertEqual(phone.client.call(callId: "call-8")?.state, .answered)
    }

    func testDeclineEndsTheCallHereAndOnTheServer() async throws {
        let device = try makeDevice()
        _ = try await device.client.registerPush(token: "fcm-token-1234567890", options: RegisterPushOptions())
        let push = try await ring("call-2", device.client.installationId())
        _ = device.client.handlePush(raw: try push.raw())
        let declined = try await device.client.decline(callId: "call-2")
        XCTAssertEqual(declined.endReason, .declined)
        let status = try await server.call("call-2")
        XCTAssertEqual(status["state"] as? String, "declined")
    }

    func testACancelLearnedByLongPollArrivesOnARustThread() async throws {
        let listener = RecordingListener()
        let client = try Client(
            config: ClientConfig(serverUrl: server.url, dataDir: dataDir, platform: .wns),
            http: URLSessionHttpClient(),
            tokens: server.tokens("bob"),
            ui: ui,
            listener: listener
        )
        _ = try await client.registerPush(
            token: "https://wns2-by3p.notify.windows.com/?token=AwYAAABa",
            options: RegisterPushOptions()
        )
        let id = client.installationId()
        let push = try await ring("call-3", id)
        XCTAssertEqual(client.handlePush(raw: try push.raw()).outcome, .ring)
        try await server.cancel("call-3")
        await eventually("the cancel learned by long-poll") {
            listener.events.contains { $0.event.asCancelled != nil }
        }
        let (event, thread) = try XCTUnwrap(listener.events.first { $0.event.asCancelled != nil })
        XCTAssertEqual(event.asCancelled?.reason, .callerCancelled)
        // The long-poll runs on the core's own thread (tokio's, named by the core), not the test's.
        XCTAssertEqual(thread, "callpush")
        XCTAssertEqual(client.call(callId: "call-3")?.endReason, .callerCancelled)

        // The cancel push WNS gets as well comes second and changes nothing.
        let cancel = try await server.awaitPush("call-3", to: id, kind: "cancel")
        XCTAssertEqual(client.handlePush(raw: try cancel.raw()).outcome, .cancel)
        XCTAssertEqual(listener.events.filter { $0.event.asCancelled != nil }.count, 1)
    }

    func testACallNobodyAnswersEndsAtItsDeadlineAsMissed() async throws {
        let device = try makeDevice()
        _ = try await device.client.registerPush(token: "fcm-token-1234567890", options: RegisterPushOptions())
        // 5 s: the shortest ring the server allows.
        let push = try await ring("call-4", device.client.installationId(), ringSeconds: 5)
        _ = device.client.handlePush(raw: try push.raw())
        let missed = try await device.events.next("missed") { $0.asMissed }
        XCTAssertEqual(missed.call.callId, "call-4")
        XCTAssertTrue(missed.appMessageId.hasPrefix("missed-"), missed.appMessageId)
        XCTAssertEqual(device.client.call(callId: "call-4")?.endReason, .missed)
        let call = try await server.awaitCallState("call-4", "missed")
        XCTAssertEqual(call["reason"] as? String, "timeout")
    }

    func testADuplicatePushNeverRingsTwiceAndApnsReportsAndEndsIt() async throws {
        let device = try makeDevice(.apns)
        _ = try await device.client.registerPush(
            token: String(repeating: "ab", count: 32),
            options: RegisterPushOptions(apnsEnvironment: .sandbox)
        )
        let raw = try await ring("call-5", device.client.installationId()).raw()
        XCTAssertEqual(device.client.handlePush(raw: raw).outcome, .ring)
        let again = device.client.handlePush(raw: raw)
        XCTAssertEqual(again.outcome, .duplicate)
        XCTAssertEqual(again.report, .reportAndEnd)
        XCTAssertEqual(ui.reports.last, "and-end call-5 lineBusy")
    }

    func testAPushForAnotherUserIsRefusedWithAnErrorEvent() async throws {
        let bob = try makeDevice()
        _ = try await bob.client.registerPush(token: "fcm-token-1234567890", options: RegisterPushOptions())
        let carol = try makeDevice(user: "carol", dir: try newDataDir(), ui: RecordingUi())
        _ = try await carol.client.registerPush(token: "fcm-token-0987654321", options: RegisterPushOptions())
        let forCarol = try await ring("call-6", carol.client.installationId(), to: "carol")

        let outcome = bob.client.handlePushData(data: forCarol.data())
        XCTAssertEqual(outcome.outcome, .rejected)
        // Wire v2: the server sealed it to carol's device key, which bob's installation does not
        // hold, so it is refused before its audience is read (`.wrongAudience` is for v1 pushes).
        XCTAssertEqual(outcome.error?.kind, .undecryptable)
        let error = try await bob.events.next("error") { $0.asError }
        XCTAssertEqual(error.kind, .undecryptable)
        // It was a good push, for carol.
        XCTAssertEqual(carol.client.handlePushData(data: forCarol.data()).outcome, .ring)
    }

    func testTokenRotationReplacesTheTokenUnderTheSameInstallation() async throws {
        let device = try makeDevice()
        let first = try await device.client.registerPush(token: "aaaaaa-fcm-token-1", options: RegisterPushOptions())
        let renewed = try await device.client.refresh(token: "bbbbbb-fcm-token-2")
        guard case let .renewed(registration) = renewed else {
            return XCTFail("not renewed: \(renewed)")
        }
        XCTAssertEqual(registration.installationId, first.installationId)
        XCTAssertEqual(registration.token, "bbbbbb-fcm-token-2")
        // One installation, rung at the new token.
        let rung = try await ring("call-9", first.installationId)
        XCTAssertTrue(rung.token.hasPrefix("bbbbbb"), rung.token)
        let again = try await device.client.refresh(token: nil)
        guard case .notDue = again else {
            return XCTFail("due again at once: \(again)")
        }
        XCTAssertNotNil(device.client.nextWakeup())
    }

    func testErrorsAreTypedErrors() async throws {
        let device = try makeDevice(.wns)
        await assertThrows("a channel URI off notify.windows.com", {
            try await device.client.registerPush(token: "https://evil.example.com/?token=x", options: RegisterPushOptions())
        }, matches: { callpushErrorKind($0) == "InvalidToken" })
        await assertThrows("a lease shorter than five minutes", {
            try await device.client.registerPush(
                token: "https://a.notify.windows.com/?t=1",
                options: RegisterPushOptions(ttlSeconds: 10)
            )
        }, matches: { callpushErrorKind($0) == "InvalidArgument" })
        await assertThrows("an unknown call", {
            try await device.client.answer(callId: "nope")
        }, matches: { callpushErrorKind($0) == "CallNotFound" })
        await assertThrows("nothing to unregister", {
            try await device.client.unregisterPush()
        }, matches: { callpushErrorKind($0) == "NotRegistered" })

        // A token the server does not accept: asked for afresh once, then refused.
        let expires = Int(Date().timeIntervalSince1970) + 600
        let foreign = Tokens {
            try hs256(["sub": "bob", "exp": expires], secret: "a secret this server has never seen")
        }
        let stranger = try makeDevice(dir: try newDataDir(), ui: RecordingUi())
        let refused = try CallPush.create(
            config: ClientConfig(serverUrl: server.url, dataDir: try newDataDir(), platform: .fcm),
            tokens: foreign,
            ui: RecordingUi()
        )
        defer { refused.close() }
        await assertThrows("a token the server refuses", {
            try await refused.client.registerPush(token: "fcm-token-1234567890", options: RegisterPushOptions())
        }, matches: { callpushErrorKind($0) == "Unauthorized" })
        XCTAssertEqual(foreign.forced, 1)
        // The server's own token still works.
        _ = try await stranger.client.registerPush(token: "fcm-token-1234567890", options: RegisterPushOptions())

        server.stop()
        await assertThrows("the server is down", {
            try await device.client.registerPush(token: "https://a.notify.windows.com/?t=1", options: RegisterPushOptions())
        }, matches: { callpushErrorKind($0) == "Network" })
    }

    func testARestartedClientKeepsItsInstallationAndDedupesAcrossTheRestart() async throws {
        let id: String
        let raw: String
        do {
            let first = try makeDevice(keep: false)
            _ = try await first.client.registerPush(token: "fcm-token-1234567890", options: RegisterPushOptions())
            id = first.client.installationId()
            raw = try await ring("call-7", id).raw()
            XCTAssertEqual(first.client.handlePush(raw: raw).outcome, .ring)
            first.callPush.close()
        }
        let second = try makeDevice()
        XCTAssertEqual(second.client.installationId(), id)
        XCTAssertEqual(second.client.handlePush(raw: raw).outcome, .duplicate)
    }
}
#endif
