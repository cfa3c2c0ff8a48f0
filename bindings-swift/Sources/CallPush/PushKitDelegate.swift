#if os(iOS)
import Foundation
import PushKit

/// The app's `PKPushRegistry` for VoIP pushes and its delegate: registers every VoIP token with
/// the server and hands every VoIP push to the client, which reports it to CallKit before the
/// delegate method returns.
///
/// Make it in `application(_:didFinishLaunchingWithOptions:)`, on every launch, and keep it (the
/// registry holds its delegate weakly): when a call wakes the app in the background, PushKit
/// delivers the push to the registry made at launch, and iOS 13 and later terminate an app that
/// does not report a VoIP push to CallKit before that delegate method returns (see the README).
///
/// ```swift
/// pushKit = PushKitDelegate(callPush: callPush) { error in
///     logger.error("callpush: \(error.localizedDescription)")
/// }
/// ```
public final class PushKitDelegate: NSObject, PKPushRegistryDelegate, @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable, and `PKPushRegistry` calls its
    // delegate on the one queue it was made with.

    /// The registry, for VoIP pushes only; its delegate is this object.
    public let registry: PKPushRegistry
    private let callPush: CallPush
    private let options: RegisterPushOptions
    private let onError: (@Sendable (Error) -> Void)?

    /// A VoIP registry whose delegate methods run on `queue`, feeding `callPush`.
    ///
    /// - Parameters:
    ///   - options: how to register each new token (lease length, app id, APNs environment).
    ///   - onError: told when registering or unregistering a token fails; the client retries on
    ///     the next launch, token or ``CallPush/refresh(voipToken:)``.
    public init(
        callPush: CallPush,
        options: RegisterPushOptions = RegisterPushOptions(),
        queue: DispatchQueue = .main,
        onError: (@Sendable (Error) -> Void)? = nil
    ) {
        self.callPush = callPush
        self.options = options
        self.onError = onError
        registry = PKPushRegistry(queue: queue)
        super.init()
        registry.delegate = self
        registry.desiredPushTypes = [.voIP]
    }

    /// The current VoIP token, if PushKit has handed one out.
    public var voipToken: Data? {
        registry.pushToken(for: .voIP)
    }

    /// A new (or the same) VoIP token: registered with the server, in the background.
    public func pushRegistry(
        _ registry: PKPushRegistry,
        didUpdate pushCredentials: PKPushCredentials,
        for type: PKPushType
    ) {
        guard type == .voIP else { return }
        let token = pushCredentials.token
        let callPush = self.callPush
        let options = self.options
        let onError = self.onError
        Task {
            do {
                try await callPush.register(voipToken: token, options: options)
            } catch {
                onError?(error)
            }
        }
    }

    /// A VoIP push: handed to the client, which reports it to CallKit (a ringing call, or a call
    /// reported and ended) before this returns; then PushKit is told it was handled.
    public func pushRegistry(
        _ registry: PKPushRegistry,
        didReceiveIncomingPushWith payload: PKPushPayload,
        for type: PKPushType,
        completion: @escaping () -> Void
    ) {
        defer { completion() }
        guard type == .voIP else { return }
        callPush.handleVoipPush(dictionaryPayload: payload.dictionaryPayload)
    }

    /// The VoIP token is no longer valid: the registration is withdrawn, so the server stops
    /// pushing to it. PushKit hands out a new token later, through `didUpdate`.
    public func pushRegistry(_ registry: PKPushRegistry, didInvalidatePushTokenFor type: PKPushType) {
        guard type == .voIP else { return }
        let client = callPush.client
        let onError = self.onError
        Task {
            do {
                try await client.unregisterPush()
            } catch CallpushError.NotRegistered {
                // Nothing to withdraw.
            } catch {
                onError?(error)
            }
        }
    }
}
#endif
