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
    // client, the stream and its continuation; the tokens are behind their own lock). Only the
    // generated records stand in the way of a checked conformance: uniffi declares them Sendable
    // for Swift 6 compilers only.

    /// The client: register, handle, unregister, and the call actions.
    public let client: Client

    /// Every event of the client, in order, none dropped. Events are produced on the thread that
    /// caused them, often one of the client's own; iterate on the actor of your choice. Iterate it
    /// once: each event goes to one iterator.
    public let events: AsyncStream<CallEvent>

    /// The CallKit call UI the client reports to, when it is one.
    public let callKit: CallKitCallUi?

    private let continuation: AsyncStream<CallEvent>.Continuation

    /// The VoIP token and options last registered, and the alert token, so that each of the two
    /// token callbacks can register both.
    private let tokens = Tokens()

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
    ///
    /// The alert token given to ``setAlertToken(_:)`` (else the one registered before) goes
    /// with it, unless `options` names one.
    @discardableResult
    public func register(
        voipToken: Data,
        options: RegisterPushOptions = RegisterPushOptions()
    ) async throws -> Registration {
        let token = CallPush.hex(voipToken)
        var options = options
        if options.apnsAlertToken == nil {
            // The one given this launch, else the one registered before: PushKit may hand out
            // the VoIP token before iOS hands out the device token.
            options.apnsAlertToken = tokens.alertToken ?? client.registration()?.apnsAlertToken
        }
        tokens.registered(voipToken: token, options: options)
        return try await client.registerPush(token: token, options: options)
    }

    /// Registers the app's regular APNs device token, for the missed-call alert: call it from
    /// `application(_:didRegisterForRemoteNotificationsWithDeviceToken:)` with the token given
    /// there. The VoIP token cannot carry alerts (APNs refuses them), so without this token iOS
    /// gets no missed-call notification and the app shows missed calls when it next runs.
    ///
    /// Re-registers the VoIP token (the last one given to ``register(voipToken:options:)``, else
    /// the registered one) together with this token. Before any VoIP token is known it only
    /// remembers the token, for the next ``register(voipToken:options:)``, and returns `nil`.
    ///
    /// - Throws: ``CallpushError`` as ``register(voipToken:options:)`` does; `InvalidToken` when
    ///   the token is the VoIP token.
    @discardableResult
    public func setAlertToken(_ deviceToken: Data) async throws -> Registration? {
        let alertToken = CallPush.hex(deviceToken)
        let registration = client.registration()
        var voip: (token: String, options: RegisterPushOptions)? = tokens.last
        if voip == nil, let registration = registration {
            let options = RegisterPushOptions(
                ttlSeconds: registration.ttlSeconds,
                apnsEnvironment: registration.apnsEnvironment,
                appId: registration.appId
            )
            voip = (token: registration.token, options: options)
        }
        guard let last = voip else {
            tokens.alertToken = alertToken
            return nil
        }
        if let registration = registration, registration.token == last.token,
           registration.apnsAlertToken == alertToken {
            // Registered with both already (iOS hands out the same token on every launch).
            return registration
        }
        var options = last.options
        options.apnsAlertToken = alertToken
        let registered = try await client.registerPush(token: last.token, options: options)
        // Kept only once the server took it, so a refused token never spoils later registrations.
        tokens.alertToken = alertToken
        tokens.registered(voipToken: last.token, options: options)
        return registered
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

/// The tokens ``CallPush`` registers, shared by the PushKit and remote-notification callbacks,
/// which may run on different threads.
private final class Tokens: @unchecked Sendable {
    // @unchecked Sendable: every access holds the lock.
    private let lock = NSLock()
    private var voip: (token: String, options: RegisterPushOptions)?
    private var alert: String?

    /// The alert token (hex) the app gave, if any.
    var alertToken: String? {
        get { lock.lock(); defer { lock.unlock() }; return alert }
        set { lock.lock(); defer { lock.unlock() }; alert = newValue }
    }

    /// The VoIP token (hex) and options last registered, if any.
    var last: (token: String, options: RegisterPushOptions)? {
        lock.lock(); defer { lock.unlock() }
        return voip
    }

    func registered(voipToken: String, options: RegisterPushOptions) {
        lock.lock(); defer { lock.unlock() }
        voip = (voipToken, options)
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
