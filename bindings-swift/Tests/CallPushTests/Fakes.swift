import Foundation
import XCTest

@testable import CallPush

/// A value shared between threads, read and changed only with its lock held.
final class Locked<Value>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only touched inside `withValue`, with `lock` held.
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    /// Runs `body` on the value with the lock held.
    func withValue<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }

    /// The value now.
    var current: Value {
        withValue { $0 }
    }
}

/// The app user's bearer token for the server, from `token`; counts forced refreshes.
final class Tokens: AccessTokenProvider {
    private let token: @Sendable () throws -> String
    private let forcedCount = Locked(0)

    init(_ token: @escaping @Sendable () throws -> String) {
        self.token = token
    }

    /// How often the client asked for a fresh token.
    var forced: Int {
        forcedCount.current
    }

    func accessToken(forceRefresh: Bool) async throws -> String {
        if forceRefresh {
            forcedCount.withValue { $0 += 1 }
        }
        do {
            return try token()
        } catch {
            throw AccessTokenError.Unavailable(detail: "\(error)")
        }
    }
}

/// A phone whose own connection gets nowhere (in Low Power Mode, on a captive network): a ringing
/// call's status long-polls time out, while VoIP pushes still arrive. Every other request goes
/// through `http`.
final class StalledLongPolls: HttpClient {
    private let http: HttpClient
    private let stalledCount = Locked(0)

    init(http: HttpClient = URLSessionHttpClient()) {
        self.http = http
    }

    /// How many long-polls got nowhere.
    var stalled: Int {
        stalledCount.current
    }

    func send(request: HttpRequest) async throws -> HttpResponse {
        if request.method == "GET", let path = URL(string: request.url)?.path, path.hasPrefix("/v1/calls/") {
            stalledCount.withValue { $0 += 1 }
            try? await Task.sleep(nanoseconds: UInt64(request.timeoutMs) * 1_000_000)
            throw HttpError.Timeout(detail: "GET timed out after \(request.timeoutMs) ms")
        }
        return try await http.send(request: request)
    }
}

/// Records what the system call UI is told.
final class RecordingUi: SystemCallUi {
    private let recorded = Locked<[String]>([])

    /// Every report so far, oldest first.
    var reports: [String] {
        recorded.current
    }

    private func record(_ what: String) {
        recorded.withValue { $0.append(what) }
    }

    func reportIncomingCall(call: Call) throws {
        record("incoming \(call.callId) \(call.peerName ?? "nil")")
    }

    func reportAndEndCall(call: Call?, reason: IncomingCallError) throws {
        record("and-end \(call?.callId ?? "nil") \(reason)")
    }

    func reportIncomingCallError(systemCallId: String?, reason: IncomingCallError) throws {
        record("error \(systemCallId ?? "nil") \(reason)")
    }

    func reportOutgoingCall(call: Call) throws {
        record("outgoing \(call.callId)")
    }

    func reportCallState(call: Call) throws {
        record("state \(call.callId) \(call.state) \(call.endReason.map { "\($0)" } ?? "nil")")
    }
}

/// Records events with the name of the thread they arrived on.
final class RecordingListener: CallListener {
    private let recorded = Locked<[(event: CallEvent, thread: String)]>([])

    /// Every event so far, oldest first.
    var events: [(event: CallEvent, thread: String)] {
        recorded.current
    }

    func onEvent(event: CallEvent) {
        let thread = currentThreadName()
        recorded.withValue { $0.append((event: event, thread: thread)) }
    }
}

/// The name of the calling thread as the system knows it (Rust names its threads).
func currentThreadName() -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    guard pthread_getname_np(pthread_self(), &buffer, buffer.count) == 0 else { return "" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// CallKit as ``CallKitCallUi`` sees it, played by the test: records every report and request,
/// keeps the calls on screen, completes reports later on another queue as CallKit does, performs
/// requested actions through the action handler, and plays the user's taps in the system call UI.
final class FakeCallProvider: CallProvider {
    /// What the call UI told CallKit.
    enum Report: Equatable {
        case incoming(UUID, CallDisplay)
        case ended(UUID, CallEndedReason)
        case connected(UUID)
        case request(CallRequest)
    }

    private let recorded = Locked<[Report]>([])
    private let onScreen = Locked<Set<UUID>>([])
    private let refusals = Locked<[CallProviderError]>([])
    private let handlerBox = Locked<WeakHandler>(WeakHandler())

    /// Everything reported or requested so far, oldest first.
    var reports: [Report] {
        recorded.current
    }

    /// The calls CallKit shows.
    var shown: Set<UUID> {
        onScreen.current
    }

    /// Makes CallKit refuse the next new incoming call with `error` (Do Not Disturb, …).
    func refuseNextIncomingCall(_ error: CallProviderError) {
        refusals.withValue { $0.append(error) }
    }

    /// The incoming calls reported so far, in order.
    var incomingReports: [(uuid: UUID, display: CallDisplay)] {
        reports.compactMap { report in
            if case let .incoming(uuid, display) = report { return (uuid: uuid, display: display) }
            return nil
        }
    }

    /// The calls reported ended so far, in order.
    var endedReports: [(uuid: UUID, reason: CallEndedReason)] {
        reports.compactMap { report in
            if case let .ended(uuid, reason) = report { return (uuid: uuid, reason: reason) }
            return nil
        }
    }

    /// The requests made so far, in order.
    var requests: [CallRequest] {
        reports.compactMap { report in
            if case let .request(request) = report { return request }
            return nil
        }
    }

    // MARK: The user, in the system call UI

    /// The user taps Answer: CallKit performs a `CXAnswerCallAction`; `true` if it was fulfilled.
    func userAnswers(_ uuid: UUID) async -> Bool {
        guard let handler = currentHandler() else { return false }
        return await handler.answerCall(uuid)
    }

    /// The user taps Decline or End: CallKit performs a `CXEndCallAction` and the call leaves the
    /// screen.
    func userEnds(_ uuid: UUID) async {
        if let handler = currentHandler() {
            await handler.endCall(uuid)
        }
        _ = onScreen.withValue { $0.remove(uuid) }
    }

    /// CallKit resets: every call leaves the screen.
    func reset() {
        onScreen.withValue { $0.removeAll() }
        currentHandler()?.providerDidReset()
    }

    // MARK: CallProvider

    func setActionHandler(_ handler: CallActionHandler) {
        handlerBox.withValue { $0.handler = handler }
    }

    func reportNewIncomingCall(
        _ uuid: UUID,
        display: CallDisplay,
        completion: @escaping @Sendable (CallProviderError?) -> Void
    ) {
        record(.incoming(uuid, display))
        let refusal = refusals.withValue { $0.isEmpty ? nil : $0.removeFirst() }
        let result: CallProviderError? = onScreen.withValue { shown in
            if shown.contains(uuid) {
                return .callAlreadyReported
            }
            if let refusal {
                return refusal
            }
            shown.insert(uuid)
            return nil
        }
        DispatchQueue.global().async { completion(result) }
    }

    func reportCallEnded(_ uuid: UUID, at date: Date, reason: CallEndedReason) {
        record(.ended(uuid, reason))
        _ = onScreen.withValue { $0.remove(uuid) }
    }

    func reportOutgoingCallConnected(_ uuid: UUID, at date: Date) {
        record(.connected(uuid))
    }

    func request(_ request: CallRequest, completion: @escaping @Sendable (CallProviderError?) -> Void) {
        record(.request(request))
        let handler = currentHandler()
        let onScreen = self.onScreen
        Task {
            guard let handler else {
                completion(.refused("no action handler"))
                return
            }
            switch request {
            case let .start(uuid, _):
                if handler.startCall(uuid) {
                    onScreen.withValue { _ = $0.insert(uuid) }
                    completion(nil)
                } else {
                    completion(.refused("CXStartCallAction failed"))
                }
            case let .answer(uuid):
                guard onScreen.current.contains(uuid) else {
                    completion(.refused("unknown call"))
                    return
                }
                let fulfilled = await handler.answerCall(uuid)
                completion(fulfilled ? nil : .refused("CXAnswerCallAction failed"))
            case let .end(uuid):
                guard onScreen.current.contains(uuid) else {
                    completion(.refused("unknown call"))
                    return
                }
                await handler.endCall(uuid)
                _ = onScreen.withValue { $0.remove(uuid) }
                completion(nil)
            }
        }
    }

    private func record(_ report: Report) {
        recorded.withValue { $0.append(report) }
    }

    private func currentHandler() -> CallActionHandler? {
        handlerBox.withValue { $0.handler }
    }

    /// The handler, held weakly as CallKit's provider holds its delegate.
    private struct WeakHandler {
        weak var handler: CallActionHandler?
    }
}

/// Waits until `condition` holds, checking every 20 ms; fails after `timeout` seconds.
func eventually(
    _ what: @autoclosure () -> String,
    timeout: TimeInterval = 10,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ condition: () throws -> Bool
) async rethrows {
    let deadline = Date().addingTimeInterval(timeout)
    while try !condition() {
        if Date() > deadline {
            XCTFail("timed out after \(timeout) s waiting for \(what())", file: file, line: line)
            return
        }
        try? await Task.sleep(nanoseconds: 20_000_000)
    }
}

/// Asserts that `body` throws an error for which `matches` holds.
func assertThrows<T>(
    _ what: String,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: () async throws -> T,
    matches: (Error) -> Bool
) async {
    do {
        let value = try await body()
        XCTFail("\(what): expected an error, got \(value)", file: file, line: line)
    } catch {
        XCTAssertTrue(matches(error), "\(what): unexpected error \(error)", file: file, line: line)
    }
}
