import Foundation

/// The system call UI on iOS: CallKit, as the client's ``SystemCallUi``.
///
/// The client calls it synchronously from ``Client/handlePush(raw:)``, so a VoIP push has been
/// reported to CallKit before the PushKit callback returns: a new incoming call for a push that
/// rings, and for every other push a call reported and ended at once, as iOS 13 and later require.
/// The user's answer and end actions in the system call UI become ``Client/answer(callId:)`` and
/// ``Client/hangUp(callId:)``; what the app does in its own UI (answer, decline, hang up, place a
/// call) becomes a CallKit request, so the system call UI follows.
///
/// CallKit knows each call by ``CallUUID/make(callId:)``, the same UUID for the same call id on
/// every path, so a call that arrives twice is one call.
///
/// ```swift
/// let callKit = CallKitCallUi(provider: CallKitProvider(configuration: CallKitProvider.configuration()))
/// let callPush = try CallPush.create(config: config, tokens: tokens, ui: callKit)
/// ```
///
/// ``CallPush/create(config:tokens:ui:http:)`` attaches the client; with a ``Client`` made
/// directly, call ``attach(_:)``.
public final class CallKitCallUi: SystemCallUi, CallActionHandler, @unchecked Sendable {
    // @unchecked Sendable: every mutable property below is read and written only with `lock`
    // held, and the lock is never held while calling the provider or the client.
    private let provider: CallProvider
    private let placeholderName: String
    private let lock = NSLock()
    private weak var client: Client?
    /// The calls CallKit shows, by UUID: their call ids.
    private var live: [UUID: String] = [:]
    /// The live calls this user placed.
    private var outgoing: Set<UUID> = []
    /// Calls being answered by a CallKit answer action, which needs no answer request.
    private var answering: Set<UUID> = []
    /// Calls being ended by a CallKit end action, which needs no end report.
    private var ending: Set<UUID> = []
    private var incomingReports: UInt64 = 0

    /// A call UI reporting to `provider` (on iOS, a ``CallKitProvider``).
    ///
    /// - Parameter placeholderName: the name shown for the moment a VoIP push that describes no
    ///   call (garbage, not a call push) is reported and ended.
    public init(provider: CallProvider, placeholderName: String = "Call ended") {
        self.provider = provider
        self.placeholderName = placeholderName
        provider.setActionHandler(self)
    }

    /// Attaches the client whose calls CallKit's actions act on. Held weakly: the client holds
    /// this call UI.
    public func attach(_ client: Client) {
        synchronized { self.client = client }
    }

    /// How many incoming calls (ringing, or reported and ended) this has reported to CallKit: lets
    /// ``CallPush/handleVoipPush(dictionaryPayload:)`` check that a VoIP push was reported.
    public var incomingCallReports: UInt64 {
        synchronized { incomingReports }
    }

    /// Whether CallKit shows the call `callId` (ringing, dialing or in progress).
    public func isLive(callId: String) -> Bool {
        let uuid = CallUUID.make(callId: callId)
        return synchronized { live[uuid] != nil }
    }

    // MARK: SystemCallUi

    /// Reports a new incoming call to CallKit. It rings once CallKit's completion says so; if
    /// CallKit refuses it (Do Not Disturb, a blocked caller), the call ends on this device as
    /// failed, while the user's other devices keep ringing.
    public func reportIncomingCall(call: Call) throws {
        let uuid = CallUUID.make(callId: call.callId)
        let callId = call.callId
        synchronized {
            live[uuid] = callId
            incomingReports += 1
        }
        provider.reportNewIncomingCall(uuid, display: CallDisplay(call)) { [weak self] error in
            guard let self, let error else { return }
            self.incomingCallRefused(uuid, callId: callId, error: error)
        }
    }

    /// Reports a VoIP push that must not ring: a call reported and ended at once, which iOS
    /// requires of every VoIP push.
    ///
    /// When the push is about a call CallKit shows (a duplicate of a ringing call), that call is
    /// reported again under its own UUID: CallKit refuses it as already reported, which meets the
    /// rule and leaves the call on screen untouched. Otherwise a call of its own UUID is reported
    /// and, once CallKit has it, ended, so it can never end a call on screen.
    public func reportAndEndCall(call: Call?, reason: IncomingCallError) throws {
        let display = call.map { CallDisplay($0) } ?? CallDisplay(handle: "", name: placeholderName, hasVideo: false)
        let shown = call.map { CallUUID.make(callId: $0.callId) }
        let isShown = synchronized { () -> Bool in
            incomingReports += 1
            return shown.map { live[$0] != nil } ?? false
        }
        if let shown, isShown {
            provider.reportNewIncomingCall(shown, display: display) { _ in }
            return
        }
        let uuid = UUID()
        let provider = self.provider
        let ended = reason.endedReason
        provider.reportNewIncomingCall(uuid, display: display) { error in
            if error == nil {
                provider.reportCallEnded(uuid, at: Date(), reason: ended)
            }
        }
    }

    /// Does nothing: `reportIncomingCallError` is a HarmonyOS duty only.
    public func reportIncomingCallError(systemCallId: String?, reason: IncomingCallError) throws {}

    /// Asks CallKit to start the call the user places (`CXStartCallAction`); CallKit then shows
    /// it, and activates the audio session. If CallKit refuses, the call ends as failed.
    public func reportOutgoingCall(call: Call) throws {
        let uuid = CallUUID.make(callId: call.callId)
        let callId = call.callId
        synchronized {
            live[uuid] = callId
            outgoing.insert(uuid)
        }
        provider.request(.start(uuid, CallDisplay(call))) { [weak self] error in
            guard let self, error != nil else { return }
            self.forget(uuid)
            _ = try? self.attachedClient()?.endCall(callId: callId, reason: .failed)
        }
    }

    /// Keeps CallKit in step with the call: an answer or end the user gave in the app's own UI
    /// becomes a CallKit request, an outgoing call's media is reported connected, and a call that
    /// ended for any other reason is reported ended with the matching `CXCallEndedReason`.
    public func reportCallState(call: Call) throws {
        let uuid = CallUUID.make(callId: call.callId)
        let (isLive, isOutgoing, byAnswerAction, byEndAction) = synchronized {
            (live[uuid] != nil, outgoing.contains(uuid), answering.contains(uuid), ending.contains(uuid))
        }
        guard isLive else { return }
        switch call.state {
        case .ringing, .dialing:
            return
        case .answered:
            if !byAnswerAction {
                provider.request(.answer(uuid)) { _ in }
            }
        case .active:
            if isOutgoing {
                provider.reportOutgoingCallConnected(uuid, at: Date())
            }
        case .ended:
            forget(uuid)
            if byEndAction {
                return
            }
            switch call.endReason {
            case .declined?, .hungUp?:
                // The user ended it in the app's own UI: CallKit ends it through an end action.
                let provider = self.provider
                provider.request(.end(uuid)) { error in
                    if error != nil {
                        provider.reportCallEnded(uuid, at: Date(), reason: .remoteEnded)
                    }
                }
            case let reason:
                provider.reportCallEnded(uuid, at: Date(), reason: CallEndedReason(reason))
            }
        }
    }

    // MARK: CallActionHandler

    /// Answers the call through the client, which tells the server (and so stops the user's
    /// other devices). Fulfilled when the call is answered here, even if the server could not be
    /// told; failed when the call already ended.
    public func answerCall(_ uuid: UUID) async -> Bool {
        guard case let (client, callId)? = liveCall(uuid) else { return false }
        if let state = client.call(callId: callId)?.state, state == .answered || state == .active {
            // The app answered in its own UI and asked CallKit to follow.
            return true
        }
        synchronized { _ = answering.insert(uuid) }
        defer { synchronized { _ = answering.remove(uuid) } }
        do {
            _ = try await client.answer(callId: callId)
            return true
        } catch {
            let state = client.call(callId: callId)?.state
            return state == .answered || state == .active
        }
    }

    /// Declines a ringing call or hangs up any other, through the client.
    public func endCall(_ uuid: UUID) async {
        guard case let (client, callId)? = liveCall(uuid) else { return }
        synchronized { _ = ending.insert(uuid) }
        defer { synchronized { _ = ending.remove(uuid) } }
        do {
            _ = try await client.hangUp(callId: callId)
        } catch {
            // The call is over in CallKit whatever the server said: end it here too.
            if let call = client.call(callId: callId), call.state != .ended {
                _ = try? client.endCall(callId: callId, reason: .failed)
            }
        }
        forget(uuid)
    }

    /// Whether `uuid` is a call the user placed that CallKit may start.
    public func startCall(_ uuid: UUID) -> Bool {
        synchronized { live[uuid] != nil && outgoing.contains(uuid) }
    }

    /// What to show of the call `uuid`, if CallKit shows it.
    public func callDisplay(_ uuid: UUID) -> CallDisplay? {
        guard case let (client, callId)? = liveCall(uuid) else { return nil }
        return client.call(callId: callId).map { CallDisplay($0) }
    }

    /// CallKit ended every call: each ends on this device as failed (the user's other devices are
    /// not told, as for any failure here).
    public func providerDidReset() {
        let (client, callIds) = synchronized { () -> (Client?, [String]) in
            let callIds = Array(live.values)
            live.removeAll()
            outgoing.removeAll()
            return (self.client, callIds)
        }
        for callId in callIds {
            _ = try? client?.endCall(callId: callId, reason: .failed)
        }
    }

    // MARK: Private

    private func incomingCallRefused(_ uuid: UUID, callId: String, error: CallProviderError) {
        if error == .callAlreadyReported {
            // CallKit shows this call already (reported before this process started).
            return
        }
        forget(uuid)
        _ = try? attachedClient()?.endCall(callId: callId, reason: .failed)
    }

    private func liveCall(_ uuid: UUID) -> (Client, String)? {
        synchronized { () -> (Client, String)? in
            guard let client = self.client, let callId = live[uuid] else { return nil }
            return (client, callId)
        }
    }

    private func attachedClient() -> Client? {
        synchronized { client }
    }

    private func forget(_ uuid: UUID) {
        synchronized {
            live[uuid] = nil
            outgoing.remove(uuid)
        }
    }

    private func synchronized<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

extension CallEndedReason {
    /// CallKit's reason for a call that ended on this device for `reason`; `nil` (not said) is
    /// `.failed`.
    public init(_ reason: EndReason?) {
        switch reason {
        case .callerCancelled?:
            self = .remoteEnded
        case .answeredElsewhere?:
            self = .answeredElsewhere
        case .declinedElsewhere?:
            self = .declinedElsewhere
        case .missed?:
            self = .unanswered
        case .declined?, .hungUp?:
            self = .remoteEnded
        case .failed?, nil:
            self = .failed
        }
    }
}

extension IncomingCallError {
    /// How a VoIP push that must not ring ends the call reported for it.
    var endedReason: CallEndedReason {
        switch self {
        case .lineBusy:
            return .failed
        case .callEnded:
            return .remoteEnded
        case .invalidPush:
            return .failed
        }
    }
}
