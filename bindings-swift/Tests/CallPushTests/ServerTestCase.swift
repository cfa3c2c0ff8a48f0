#if os(macOS)
import CryptoKit
import Foundation
import XCTest

@testable import CallPush

/// A test case with its own `callpush serve` (one per test, see ``CallpushServer``), temporary
/// data directories, and the devices (clients) it opened, all cleaned up after the test.
class ServerTestCase: XCTestCase {
    private(set) var server: CallpushServer!
    private(set) var ui: RecordingUi!
    private(set) var dataDir: String!
    private var dirs: [URL] = []
    private var opened: [Device] = []

    override func setUp() async throws {
        try await super.setUp()
        server = try await CallpushServer()
        ui = RecordingUi()
        dataDir = try newDataDir()
    }

    override func tearDown() async throws {
        for device in opened.reversed() {
            device.callPush.close()
        }
        opened.removeAll()
        server?.close()
        for dir in dirs {
            try? FileManager.default.removeItem(at: dir)
        }
        dirs.removeAll()
        try await super.tearDown()
    }

    /// A new empty data directory, deleted after the test.
    func newDataDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("callpush-swift-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        dirs.append(dir)
        return dir.path
    }

    /// A device of `user`: a ``CallPush`` on this test's server, with its events collected.
    ///
    /// - Parameter keep: whether the test keeps it open to the end (else the test lets it go).
    func makeDevice(
        _ platform: Platform = .fcm,
        user: String = "bob",
        dir: String? = nil,
        ui: SystemCallUi? = nil,
        http: HttpClient = URLSessionHttpClient(),
        keep: Bool = true
    ) throws -> Device {
        let shown: SystemCallUi = ui ?? self.ui!
        let callPush = try CallPush.create(
            config: ClientConfig(serverUrl: server.url, dataDir: dir ?? dataDir!, platform: platform),
            tokens: server.tokens(user),
            ui: shown,
            http: http
        )
        let device = Device(callPush)
        if keep {
            opened.append(device)
        }
        return device
    }

    /// Rings `callId` to `to` through the server, checks it rang exactly `installations`, and
    /// returns the push the first of them got.
    func ring(
        _ callId: String,
        _ installations: String...,
        to: String = "bob",
        ringSeconds: Int? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws -> SentPush {
        let created = try await server.ring(callId, to: to, ringSeconds: ringSeconds)
        XCTAssertEqual(
            Set(CallpushServer.deliveries(created)),
            Set(installations),
            "installations rung for \(callId)",
            file: file,
            line: line
        )
        let first = try XCTUnwrap(installations.first, "no installation to ring", file: file, line: line)
        return try await server.awaitPush(callId, to: first)
    }
}

/// One app installation in a test: its ``CallPush`` and the events it produced.
final class Device {
    let callPush: CallPush
    let events: EventLog

    init(_ callPush: CallPush) {
        self.callPush = callPush
        events = EventLog(callPush.events)
    }

    var client: Client {
        callPush.client
    }
}

/// Collects the events of a stream as they come, for the test to wait on in order.
final class EventLog {
    private let seen: Locked<[CallEvent]>
    private let collector: Task<Void, Never>
    private var taken = 0

    init(_ events: AsyncStream<CallEvent>) {
        let seen = Locked<[CallEvent]>([])
        self.seen = seen
        collector = Task {
            for await event in events {
                seen.withValue { $0.append(event) }
            }
        }
    }

    deinit {
        collector.cancel()
    }

    /// Every event so far.
    var all: [CallEvent] {
        seen.current
    }

    /// Waits for the next event, after those taken before, that `pick` picks out; the events
    /// passed over are taken too (Kotlin's `first { … }` on the event flow).
    func next<T>(
        _ what: String,
        timeout: TimeInterval = 10,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ pick: (CallEvent) -> T?
    ) async throws -> T {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let events = seen.current
            while taken < events.count {
                let event = events[taken]
                taken += 1
                if let picked = pick(event) {
                    return picked
                }
            }
            guard Date() < deadline else {
                XCTFail("no \(what) event within \(timeout) s; events: \(events)", file: file, line: line)
                throw ServerFailure("no \(what) event")
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
    }
}

extension CallEvent {
    /// The call of an `incoming` event.
    var asIncoming: Call? {
        if case let .incoming(call) = self { return call }
        return nil
    }

    /// The call and reason of a `cancelled` event.
    var asCancelled: (call: Call, reason: CancelReason)? {
        if case let .cancelled(call, reason) = self { return (call: call, reason: reason) }
        return nil
    }

    /// The call of a `stateChanged` event.
    var asStateChanged: Call? {
        if case let .stateChanged(call) = self { return call }
        return nil
    }

    /// The call and notification id of a `missed` event.
    var asMissed: (call: IncomingCall, appMessageId: String)? {
        if case let .missed(call, appMessageId) = self { return (call: call, appMessageId: appMessageId) }
        return nil
    }

    /// The lease of a `registrationChanged` event.
    var asRegistrationChanged: Registration? {
        if case let .registrationChanged(registration) = self { return registration }
        return nil
    }

    /// The error of an `error` event.
    var asError: ErrorEvent? {
        if case let .error(error) = self { return error }
        return nil
    }
}

/// The case of a ``CallpushError``, by name; `nil` for any other error.
func callpushErrorKind(_ error: Error) -> String? {
    guard let error = error as? CallpushError else { return nil }
    switch error {
    case .InvalidToken: return "InvalidToken"
    case .InvalidArgument: return "InvalidArgument"
    case .PayloadTooLarge: return "PayloadTooLarge"
    case .InvalidKey: return "InvalidKey"
    case .NotRegistered: return "NotRegistered"
    case .Unauthorized: return "Unauthorized"
    case .AccessToken: return "AccessToken"
    case .Registrar: return "Registrar"
    case .Network: return "Network"
    case .CallNotFound: return "CallNotFound"
    case .InvalidCallState: return "InvalidCallState"
    case .CallEnded: return "CallEnded"
    case .Storage: return "Storage"
    }
}

/// A JWT of `claims` signed with HS256 and `secret`.
func hs256(_ claims: [String: Any], secret: String) throws -> String {
    func b64(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
    let header = b64(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
    let input = header + "." + b64(try JSONSerialization.data(withJSONObject: claims))
    let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(secret.utf8)))
    return input + "." + b64(Data(mac))
}
#endif
