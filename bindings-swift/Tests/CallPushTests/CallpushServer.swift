#if os(macOS)
import Darwin
import Foundation
import XCTest

@testable import CallPush

/// The real callpush server, `callpush serve`, as a child process on loopback: its own SQLite
/// database, HS256 device-token secret and API key in a temporary directory, and the `file`
/// sender, which appends every push it sends to ``pushesFile`` instead of calling a provider.
///
/// The test plays the app backend (``ring(_:to:ringSeconds:from:fromName:video:data:)``,
/// ``cancel(_:reason:)``, ``call(_:)`` with the API key) and the push provider (``awaitPush(_:to:kind:timeout:)``
/// turns what the server sent into what the platform hands the app); device bearer tokens come
/// from the server's own `callpush token` (``tokens(_:)``).
///
/// The binary is `CALLPUSH_SERVER`, else `target/debug/callpush` of this repository (built by
/// `cargo build -p callpush-server --bin callpush`).
final class CallpushServer: @unchecked Sendable {
    // @unchecked Sendable: the mutable state (`process`, `port`, `deviceTokens`) is only touched
    // with `lock` held; the rest is immutable.
    let dir: URL
    let config: URL
    let pushesFile: URL
    private let log: URL
    private let secret: String
    private let http: URLSession
    private let lock = NSLock()
    private var process: Process?
    private var currentPort = 0
    private var deviceTokens: [String: String] = [:]

    /// The `callpush` binary.
    static let binary: URL = {
        if let path = ProcessInfo.processInfo.environment["CALLPUSH_SERVER"] {
            return URL(fileURLWithPath: path)
        }
        return repositoryRoot.appendingPathComponent("target/debug/callpush")
    }()

    /// The app backend's API key.
    static let apiKey = "swift-test-backend-key-0001"

    /// How long the server may take to answer its health check after starting.
    static let startTimeout: TimeInterval = 30

    /// Starts a server on a free loopback port.
    init() async throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("callpush-server-\(UUID().uuidString)", isDirectory: true)
        config = dir.appendingPathComponent("callpush.toml")
        pushesFile = dir.appendingPathComponent("pushes.jsonl")
        log = dir.appendingPathComponent("server.log")
        let bytes = (0..<32).map { _ in UInt8.random(in: UInt8.min...UInt8.max) }
        secret = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 10
        http = URLSession(configuration: configuration)
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try await start()
        } catch {
            close()
            throw error
        }
    }

    /// The port the server listens on.
    var port: Int {
        synchronized { currentPort }
    }

    /// The server's base URL.
    var url: String {
        "http://127.0.0.1:\(port)"
    }

    /// Starts the server, on a new free port if the one picked was taken in the meantime.
    private func start() async throws {
        guard FileManager.default.isExecutableFile(atPath: CallpushServer.binary.path) else {
            throw ServerFailure(
                "no callpush server at \(CallpushServer.binary.path): build it with "
                    + "`cargo build -p callpush-server --bin callpush`, or set CALLPUSH_SERVER"
            )
        }
        var attempt = 0
        while true {
            let port = try CallpushServer.freePort()
            synchronized { currentPort = port }
            try writeConfig(port: port)
            if !FileManager.default.fileExists(atPath: log.path) {
                FileManager.default.createFile(atPath: log.path, contents: nil)
            }
            let output = try FileHandle(forWritingTo: log)
            _ = try output.seekToEnd()
            let started = Process()
            started.executableURL = CallpushServer.binary
            started.arguments = ["serve", "--config", config.path]
            started.currentDirectoryURL = dir
            started.environment = CallpushServer.environment()
            started.standardOutput = output
            started.standardError = output
            try started.run()
            try? output.close()
            synchronized { process = started }
            if await awaitHealthy(started) {
                return
            }
            if started.isRunning {
                stop(graceful: false)
                throw ServerFailure("callpush serve did not become healthy within \(CallpushServer.startTimeout) s\n\(logText())")
            }
            attempt += 1
            if attempt >= 5 || !logText().contains("listening on") {
                throw ServerFailure("callpush serve exited with \(started.terminationStatus)\n\(logText())")
            }
        }
    }

    private func writeConfig(port: Int) throws {
        let text = """
            listen = "127.0.0.1:\(port)"
            database_url = \(toml("sqlite://" + dir.appendingPathComponent("callpush.db").path))
            database_connections = 4
            data_dir = \(toml(dir.path))
            api_keys = [\(toml(CallpushServer.apiKey))]

            [auth]
            hs256_secret = \(toml(secret))

            [ring]
            default_ring_seconds = 30
            max_ring_seconds = 120
            concurrency = 8
            claim_batch = 16

            [sender]
            kind = "file"
            path = \(toml(pushesFile.path))

            """
        try text.write(to: config, atomically: true, encoding: .utf8)
    }

    private func awaitHealthy(_ process: Process) async -> Bool {
        let deadline = Date().addingTimeInterval(CallpushServer.startTimeout)
        while Date() < deadline && process.isRunning {
            if let health = URL(string: "\(url)/healthz") {
                var request = URLRequest(url: health)
                request.timeoutInterval = 1
                if let answer = try? await http.data(for: request),
                   (answer.1 as? HTTPURLResponse)?.statusCode == 200
                {
                    return true
                }
            }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return false
    }

    /// What the server logged (warnings and errors only: `CALLPUSH_LOG=warn`).
    func logText() -> String {
        (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    }

    /// Stops the server; requests to it then fail. Gracefully: SIGTERM, and SIGKILL if it is
    /// still running after two seconds (a graceful stop waits for the long-polls in flight, up to
    /// a minute). Otherwise SIGKILL at once.
    func stop(graceful: Bool = true) {
        let running = synchronized { () -> Process? in
            defer { process = nil }
            return process
        }
        guard let running else { return }
        if graceful {
            running.terminate()
        }
        if !graceful || !CallpushServer.wait(for: running, seconds: 2) {
            kill(running.processIdentifier, SIGKILL)
            _ = CallpushServer.wait(for: running, seconds: 10)
        }
    }

    /// Kills the server (its database is thrown away) and deletes its directory, printing what
    /// it logged.
    func close() {
        stop(graceful: false)
        let logged = logText()
        if !logged.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            print("---- callpush serve (\(dir.path)) logged:\n\(logged)----")
        }
        try? FileManager.default.removeItem(at: dir)
    }

    // MARK: Devices

    /// A device token for `user`, minted by `callpush token` with this server's configuration.
    func token(_ user: String) throws -> String {
        if let known = synchronized({ deviceTokens[user] }) {
            return known
        }
        let minted = Process()
        minted.executableURL = CallpushServer.binary
        minted.arguments = ["token", "--config", config.path, "--user", user]
        minted.environment = CallpushServer.environment()
        let out = Pipe()
        let err = Pipe()
        minted.standardOutput = out
        minted.standardError = err
        try minted.run()
        let printed = out.fileHandleForReading.readDataToEndOfFile()
        let complaint = err.fileHandleForReading.readDataToEndOfFile()
        minted.waitUntilExit()
        let token = String(decoding: printed, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard minted.terminationStatus == 0, !token.isEmpty else {
            throw ServerFailure("callpush token --user \(user) failed: \(String(decoding: complaint, as: UTF8.self))")
        }
        synchronized { deviceTokens[user] = token }
        return token
    }

    /// The app user's bearer tokens for the client.
    func tokens(_ user: String) -> Tokens {
        Tokens { [self] in try self.token(user) }
    }

    // MARK: The app backend

    /// `POST /v1/calls`: rings every live installation of `to`. Returns the server's answer, whose
    /// `deliveries` name the installations rung.
    @discardableResult
    func ring(
        _ callId: String,
        to: String = "bob",
        ringSeconds: Int? = nil,
        from: String = "alice",
        fromName: String? = "Alice Ødegård",
        video: Bool = true,
        data: [String: String] = ["room": "r-1"]
    ) async throws -> [String: Any] {
        let name: Any = fromName ?? NSNull()
        let caller: [String: Any] = ["id": from, "name": name]
        var body: [String: Any] = ["call_id": callId, "from": caller, "to": [to], "video": video, "data": data]
        if let ringSeconds {
            body["ring_seconds"] = ringSeconds
        }
        return try await backend("POST", "/v1/calls", body: body, expect: 202)
    }

    /// The installation ids a `POST /v1/calls` answer says were rung.
    static func deliveries(_ created: [String: Any]) -> [String] {
        let deliveries = created["deliveries"] as? [[String: Any]] ?? []
        return deliveries.compactMap { $0["installation_id"] as? String }
    }

    /// `POST /v1/calls/{id}/cancel`: the caller hung up (or `reason`).
    @discardableResult
    func cancel(_ callId: String, reason: String? = nil) async throws -> [String: Any] {
        var body: [String: Any] = [:]
        if let reason {
            body["reason"] = reason
        }
        return try await backend("POST", "/v1/calls/\(callId)/cancel", body: body)
    }

    /// `GET /v1/calls/{id}` with the API key: the call, its deliveries and timeline.
    func call(_ callId: String) async throws -> [String: Any] {
        try await backend("GET", "/v1/calls/\(callId)", body: nil)
    }

    /// Waits until the server has `callId` in `state` (its deadline sweep runs four times a
    /// second).
    @discardableResult
    func awaitCallState(_ callId: String, _ state: String, timeout: TimeInterval = 10) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let current = try await call(callId)
            if current["state"] as? String == state {
                return current
            }
            guard Date() < deadline else {
                throw ServerFailure("\(callId) is still \(current["state"] ?? "?"), not \(state): \(current)")
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    private func backend(_ method: String, _ path: String, body: [String: Any]?, expect: Int = 200) async throws -> [String: Any] {
        guard let target = URL(string: url + path) else {
            throw ServerFailure("not a URL: \(url + path)")
        }
        var request = URLRequest(url: target)
        request.httpMethod = method
        request.setValue("Bearer \(CallpushServer.apiKey)", forHTTPHeaderField: "Authorization")
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let (data, response) = try await http.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == expect else {
            throw ServerFailure(
                "\(method) \(path) answered \(status), not \(expect): \(String(decoding: data, as: UTF8.self))\n\(logText())"
            )
        }
        guard let answer = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ServerFailure("\(method) \(path) answered no JSON object: \(String(decoding: data, as: UTF8.self))")
        }
        return answer
    }

    // MARK: The push provider

    /// Every push the server sent so far, oldest first.
    func pushes() -> [SentPush] {
        guard let text = try? String(contentsOf: pushesFile, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                return nil
            }
            return SentPush(json: object)
        }
    }

    /// Waits for the server's `kind` push (`ring`, `cancel` or `missed`) of `callId` to
    /// `installationId`.
    func awaitPush(
        _ callId: String,
        to installationId: String,
        kind: String = "ring",
        timeout: TimeInterval = 10
    ) async throws -> SentPush {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let sent = pushes()
            if let push = sent.first(where: { $0.callId == callId && $0.installationId == installationId && $0.kind == kind }) {
                return push
            }
            guard Date() < deadline else {
                throw ServerFailure("no \(kind) push of \(callId) to \(installationId) within \(timeout) s; sent: \(sent)\n\(logText())")
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    // MARK: Helpers

    /// A free TCP port on 127.0.0.1, as the system hands one out.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        guard fd >= 0 else { throw ServerFailure("socket() failed: errno \(errno)") }
        defer { Darwin.close(fd) }
        var address = sockaddr_in()
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw ServerFailure("bind() failed: errno \(errno)") }
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw ServerFailure("getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The test's environment with only `CALLPUSH_LOG` of the `CALLPUSH_*` variables, which
    /// would override the configuration.
    static func environment() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CALLPUSH_") }
        environment["CALLPUSH_LOG"] = "warn"
        return environment
    }

    /// Waits up to `seconds` for `process` to exit; whether it did.
    static func wait(for process: Process, seconds: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            if Date() > deadline {
                return false
            }
            usleep(10_000)
        }
        return true
    }

    /// A TOML basic string.
    private func toml(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private func synchronized<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// The test server failed, with what it said.
struct ServerFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// One line of the `file` sender: a push as the server handed it to the provider.
struct SentPush: CustomStringConvertible {
    let json: [String: Any]

    var callId: String { json["call_id"] as? String ?? "" }
    var installationId: String { json["installation_id"] as? String ?? "" }
    /// `ring`, `cancel` or `missed`.
    var kind: String { json["kind"] as? String ?? "" }
    /// The push token, redacted as the server logs it (its first six characters and its length).
    var token: String { json["token"] as? String ?? "" }
    /// The platform it went to.
    var platform: Platform? { (json["platform"] as? String).flatMap { try? VectorsTests.platform($0) } }
    /// A missed-call notification's id (APNs: the alert's `apns-collapse-id`).
    var missedAppMessageId: String? { (json["missed"] as? [String: Any])?["app_message_id"] as? String }
    private var payload: [String: Any] { json["payload"] as? [String: Any] ?? [:] }

    /// FCM: the data map `onMessageReceived` sees.
    func data() -> [String: String] {
        payload["data"] as? [String: String] ?? [:]
    }

    /// APNs: the VoIP push as PushKit hands it to the app, `PKPushPayload.dictionaryPayload`.
    func dictionaryPayload() throws -> [AnyHashable: Any] {
        let body = try raw()
        guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            throw ServerFailure("the APNs body is not a JSON object: \(body)")
        }
        var payload: [AnyHashable: Any] = [:]
        for (key, value) in object {
            payload[key] = value
        }
        return payload
    }

    /// The push as its platform hands it to the app: HarmonyOS the `receiveMessage('VoIP')` data
    /// (the system's call id and the server's extraData), FCM the data map as JSON, APNs the
    /// PushKit payload as JSON, WNS the raw notification's content. Ring and cancel pushes only:
    /// a `missed` push is a notification the system shows, never handed to the app.
    func raw(systemCallId: String? = nil) throws -> String {
        guard kind != "missed" else {
            throw ServerFailure("a missed-call notification is shown by the system, not handed to the app: \(self)")
        }
        switch platform {
        case .harmony?:
            let wrapped: [String: Any] = [
                "callId": systemCallId ?? "sys-\(callId)",
                "data": payload["extraData"] as? String ?? "",
                "header": ["token": token],
            ]
            return String(decoding: try JSONSerialization.data(withJSONObject: wrapped), as: UTF8.self)
        case .fcm?:
            return String(decoding: try JSONSerialization.data(withJSONObject: data()), as: UTF8.self)
        case .apns?, .wns?:
            return payload["body"] as? String ?? ""
        case nil:
            throw ServerFailure("a push to an unknown platform: \(json)")
        }
    }

    var description: String {
        "\(kind):\(callId)→\(installationId)"
    }
}
#endif
