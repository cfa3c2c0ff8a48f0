import Foundation

/// The callpush client for Swift: the generated ``Client`` with its events as an `AsyncStream`.
///
/// Create one when the app launches (in `application(_:didFinishLaunchingWithOptions:)`: PushKit
/// may launch the app in the background for a call) and keep it. The `async` methods of
/// ``client`` may be called from any task; ``Client/handlePush(raw:)`` is synchronous on purpose:
/// it runs inside the PushKit callback, which must report to CallKit before it returns
/// (``handleVoipPush(dictionaryPayload:)``, which `PushKitDelegate` calls, does this).
///
/// ```swift
/// let callKit = CallKitCallUi(provider: CallKitProvider())
/// let callPush = try CallPush.create(
///     config: ClientConfig(serverUrl: "https://calls.example.com", dataDir: dir.path, platform: .apns),
///     tokens: MyAccessTokens(),
///     ui: callKit
/// )
/// Task { for await event in callPush.events { ... } }
/// ```
public final class CallPush: @unchecked Sendable {
    // @unchecked Sendable: every property is immutable and safe to use from any thread (the
    // client, the stream and its continuation). Only the generated records stand in the way of a
    // checked conformance: uniffi declares them Sendable for Swift 6 compilers only.

    /// The client: register, handle, unregister, and the call actions.
    public let client: Client

    /// Every event of the client, in order, none dropped. Events are produced on the thread that
    /// caused them, often one of the client's own; iterate on the actor of your choice. Iterate it
    /// once: each event goes to one iterator.
    public let events: AsyncStream<CallEvent>

    /// The CallKit call UI the client reports to, when it is one.
    public let callKit: CallKitCallUi?

    private let continuation: AsyncStream<CallEvent>.Continuation

    private init(
        client: Client,
        events: AsyncStream<CallEvent>,
        continuation: AsyncStream<CallEvent>.Continuation,
        callKit: CallKitCallUi?
    ) {
        self.client = client
        self.events = events
        self.continuation = continuation
        self.callKit = callKit
    }

    /// Creates a client for `config`, restoring what its data directory holds.
    ///
    /// - Parameters:
    ///   - tokens: the app user's bearer token for the registrar.
    ///   - ui: the system call UI: on iOS a ``CallKitCallUi``, which this attaches to the client
    ///     so that CallKit's answer and end actions reach it.
    ///   - http: the HTTP stack for the registrar; a ``URLSessionHttpClient`` by default.
    /// - Throws: ``CallpushError`` when the configuration is unusable (an empty data directory, a
    ///   server URL that is not http(s), pinned keys that do not parse) or the data directory
    ///   cannot be read.
    public static func create(
        config: ClientConfig,
        tokens: AccessTokenProvider,
        ui: SystemCallUi,
        http: HttpClient = URLSessionHttpClient()
    ) throws -> CallPush {
        let (events, continuation) = AsyncStream.makeStream(of: CallEvent.self, bufferingPolicy: .unbounded)
        let client = try Client(
            config: config,
            http: http,
            tokens: tokens,
            ui: ui,
            listener: StreamListener(continuation: continuation)
        )
        let callKit = ui as? CallKitCallUi
        callKit?.attach(client)
        return CallPush(client: client, events: events, continuation: continuation, callKit: callKit)
    }

    /// Registers a PushKit VoIP token, `PKPushCredentials.token`, hex-encoded as APNs expects.
    /// Call it on every launch and whenever PushKit hands out a new token.
    @discardableResult
    public func register(
        voipToken: Data,
        options: RegisterPushOptions = RegisterPushOptions()
    ) async throws -> Registration {
        try await client.registerPush(token: CallPush.hex(voipToken), options: options)
    }

    /// Keeps the registration alive (what a `BGAppRefreshTask` calls): renews the lease once it
    /// is due, and re-registers when `voipToken` differs from the registered one.
    @discardableResult
    public func refresh(voipToken: Data?) async throws -> RefreshOutcome {
        try await client.refresh(token: voipToken.map { CallPush.hex($0) })
    }

    /// Handles a PushKit VoIP payload, `PKPushPayload.dictionaryPayload`, synchronously: CallKit
    /// has been told what it needs before this returns — a new incoming call for a push that
    /// rings, a call reported and ended for any other. `PushKitDelegate` calls it.
    ///
    /// The client reports every VoIP push itself; should one ever reach CallKit through neither
    /// path, a call is reported and ended here, so that iOS never terminates the app for it.
    @discardableResult
    public func handleVoipPush(dictionaryPayload: [AnyHashable: Any]) -> HandleOutcome {
        let reportsBefore = callKit?.incomingCallReports
        let outcome = client.handlePush(raw: CallPush.json(dictionaryPayload))
        if let callKit = callKit, callKit.incomingCallReports == reportsBefore {
            _ = try? callKit.reportAndEndCall(call: nil, reason: .invalidPush)
        }
        return outcome
    }

    /// When the app should next call ``refresh(voipToken:)`` (or ``Client/tick()``): the earliest
    /// of a ringing call's deadline and the lease's renewal time; `nil` when there is nothing to
    /// do. Good as a `BGAppRefreshTaskRequest`'s `earliestBeginDate`.
    public var nextWakeup: Date? {
        client.nextWakeup().map { Date(timeIntervalSince1970: TimeInterval($0)) }
    }

    /// Ends ``events``. The client itself lives on while anything holds it.
    public func close() {
        continuation.finish()
    }

    deinit {
        continuation.finish()
    }

    /// Lowercase hex of `bytes`: the form APNs device tokens travel in.
    static func hex(_ bytes: Data) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// A PushKit payload as the JSON object APNs delivered. A payload that is not JSON (it always
    /// is) becomes `{}`, which the client treats as not a call push, and still reports to CallKit.
    static func json(_ payload: [AnyHashable: Any]) -> String {
        guard JSONSerialization.isValidJSONObject(payload),
              let data = try? JSONSerialization.data(
                  withJSONObject: payload,
                  options: [.sortedKeys, .withoutEscapingSlashes]
              )
        else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Hands the client's events to the stream; called on whichever thread produced them.
private final class StreamListener: CallListener, @unchecked Sendable {
    // @unchecked Sendable: an AsyncStream continuation may be yielded to from any thread; its
    // element type is Sendable only for Swift 6 compilers (see ``CallPush``).
    private let continuation: AsyncStream<CallEvent>.Continuation

    init(continuation: AsyncStream<CallEvent>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: CallEvent) {
        continuation.yield(event)
    }
}
