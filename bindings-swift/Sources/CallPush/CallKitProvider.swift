#if os(iOS)
import AVFoundation
import CallKit
import Foundation

/// The app's call audio, which CallKit owns: it configures the shared `AVAudioSession` before a
/// call, activates it, and only then may audio start.
///
/// Start audio (and the media engine's audio unit) in ``didActivate(_:)``, never when the user
/// answers: CallKit activates the session after the answer (or start) action, with the priority
/// of a phone call, and a session activated by the app itself is interrupted by CallKit's.
public protocol CallAudio: AnyObject {
    /// Sets the session's category and mode for a call before CallKit activates it; called in the
    /// answer and start actions. Must not activate the session. By default `.playAndRecord` with
    /// mode `.voiceChat`, or `.videoChat` for a video call.
    func configure(_ session: AVAudioSession, video: Bool) throws

    /// CallKit activated the session: start audio now.
    func didActivate(_ session: AVAudioSession)

    /// CallKit deactivated the session (the call ended, or another took over): stop audio.
    func didDeactivate(_ session: AVAudioSession)

    /// The user muted (or unmuted) the call in the system call UI; `true` if the microphone now
    /// is. By default `false`: the mute action fails and the system call UI shows it unmuted.
    func setMuted(_ muted: Bool, callUUID: UUID) -> Bool
}

extension CallAudio {
    /// `.playAndRecord` with mode `.voiceChat`, or `.videoChat` for a video call.
    public func configure(_ session: AVAudioSession, video: Bool) throws {
        try CallKitProvider.configureForCall(session, video: video)
    }

    /// Refuses: the mute action fails.
    public func setMuted(_ muted: Bool, callUUID: UUID) -> Bool {
        false
    }
}

/// CallKit's `CXProvider` and `CXCallController` as the ``CallProvider`` of a ``CallKitCallUi``:
/// reports calls, requests the user's actions in the app's own UI, and hands CallKit's actions to
/// the call UI and its audio session to the app's ``CallAudio``.
///
/// Make one at launch, before the PushKit registry delivers pushes, and keep it for the life of
/// the process (``CallKitCallUi`` holds it).
public final class CallKitProvider: NSObject, CallProvider, CXProviderDelegate, @unchecked Sendable {
    // @unchecked Sendable: CXProvider and CXCallController may be called from any thread, and the
    // mutable properties (`handler`, `audio`) are read and written only with `lock` held.

    /// The provider CallKit knows the app by.
    public let provider: CXProvider
    /// The controller that asks CallKit for the user's actions in the app's own UI.
    public let callController: CXCallController
    private let lock = NSLock()
    private weak var handler: CallActionHandler?
    private weak var audio: CallAudio?

    /// A provider with `configuration`, whose delegate methods run on `queue` (`nil`: the main
    /// queue).
    ///
    /// - Parameter audio: the app's call audio, held weakly; without one the session is still
    ///   configured for a call, and the app learns that audio may start from nothing.
    public init(
        configuration: CXProviderConfiguration = CallKitProvider.configuration(),
        audio: CallAudio? = nil,
        queue: DispatchQueue? = nil
    ) {
        provider = CXProvider(configuration: configuration)
        callController = CXCallController()
        super.init()
        self.audio = audio
        provider.setDelegate(self, queue: queue)
    }

    /// A configuration for callpush calls: generic handles (user ids), one call per group, video
    /// if `supportsVideo`.
    ///
    /// - Parameters:
    ///   - includesCallsInRecents: whether calls appear in the Phone app's Recents.
    ///   - iconTemplateImageData: PNG data of the 40 × 40 pt glyph shown in the call UI.
    ///   - ringtoneSound: a sound file in the app bundle to ring with, instead of the default.
    public static func configuration(
        supportsVideo: Bool = true,
        includesCallsInRecents: Bool = true,
        iconTemplateImageData: Data? = nil,
        ringtoneSound: String? = nil
    ) -> CXProviderConfiguration {
        let configuration = CXProviderConfiguration()
        configuration.supportsVideo = supportsVideo
        configuration.maximumCallsPerCallGroup = 1
        configuration.supportedHandleTypes = [.generic]
        configuration.includesCallsInRecents = includesCallsInRecents
        configuration.iconTemplateImageData = iconTemplateImageData
        configuration.ringtoneSound = ringtoneSound
        return configuration
    }

    /// Sets the app's call audio (held weakly).
    public func setAudio(_ audio: CallAudio?) {
        synchronized { self.audio = audio }
    }

    /// Configures `session` for a call without activating it: `.playAndRecord` with mode
    /// `.voiceChat`, or `.videoChat` for a video call.
    public static func configureForCall(_ session: AVAudioSession, video: Bool) throws {
        try session.setCategory(.playAndRecord, mode: video ? .videoChat : .voiceChat, options: [])
    }

    // MARK: CallProvider

    /// Holds `handler` weakly.
    public func setActionHandler(_ handler: CallActionHandler) {
        synchronized { self.handler = handler }
    }

    /// `reportNewIncomingCall(with:update:completion:)`.
    public func reportNewIncomingCall(
        _ uuid: UUID,
        display: CallDisplay,
        completion: @escaping @Sendable (CallProviderError?) -> Void
    ) {
        provider.reportNewIncomingCall(with: uuid, update: CallKitProvider.update(display)) { error in
            completion(error.map { CallProviderError($0) })
        }
    }

    /// `reportCall(with:endedAt:reason:)`.
    public func reportCallEnded(_ uuid: UUID, at date: Date, reason: CallEndedReason) {
        provider.reportCall(with: uuid, endedAt: date, reason: CXCallEndedReason(reason))
    }

    /// `reportOutgoingCall(with:connectedAt:)`.
    public func reportOutgoingCallConnected(_ uuid: UUID, at date: Date) {
        provider.reportOutgoingCall(with: uuid, connectedAt: date)
    }

    /// `CXCallController.request(_:completion:)` with the request's one action.
    public func request(_ request: CallRequest, completion: @escaping @Sendable (CallProviderError?) -> Void) {
        let action: CXCallAction
        switch request {
        case let .start(uuid, display):
            let start = CXStartCallAction(call: uuid, handle: CXHandle(type: .generic, value: display.handle))
            start.isVideo = display.hasVideo
            action = start
        case let .answer(uuid):
            action = CXAnswerCallAction(call: uuid)
        case let .end(uuid):
            action = CXEndCallAction(call: uuid)
        }
        callController.request(CXTransaction(action: action)) { error in
            completion(error.map { CallProviderError($0) })
        }
    }

    // MARK: CXProviderDelegate

    /// CallKit ended every call (its server restarted): each ends here as failed.
    public func providerDidReset(_ provider: CXProvider) {
        currentHandler()?.providerDidReset()
    }

    /// The user placed a call that the app asked CallKit to start: the session is configured,
    /// the action fulfilled and the call reported connecting (CallKit then activates audio).
    public func provider(_ provider: CXProvider, perform action: CXStartCallAction) {
        let uuid = action.callUUID
        guard let handler = currentHandler(), handler.startCall(uuid) else {
            action.fail()
            return
        }
        configureAudio(video: action.isVideo)
        action.fulfill()
        provider.reportOutgoingCall(with: uuid, startedConnectingAt: Date())
        if let display = handler.callDisplay(uuid) {
            provider.reportCall(with: uuid, updated: CallKitProvider.update(display))
        }
    }

    /// The user answered in the system call UI (or the app asked CallKit to follow its own
    /// UI): the session is configured and the client answers; audio starts in `didActivate`.
    public func provider(_ provider: CXProvider, perform action: CXAnswerCallAction) {
        let uuid = action.callUUID
        guard let handler = currentHandler() else {
            action.fail()
            return
        }
        configureAudio(video: handler.callDisplay(uuid)?.hasVideo ?? false)
        let pending = PendingAction(action: action)
        Task {
            if await handler.answerCall(uuid) {
                pending.action.fulfill()
            } else {
                pending.action.fail()
            }
        }
    }

    /// The user declined or hung up in the system call UI (or the app asked CallKit to follow
    /// its own UI): the client declines or hangs up.
    public func provider(_ provider: CXProvider, perform action: CXEndCallAction) {
        let uuid = action.callUUID
        guard let handler = currentHandler() else {
            action.fulfill()
            return
        }
        let pending = PendingAction(action: action)
        Task {
            await handler.endCall(uuid)
            pending.action.fulfill()
        }
    }

    /// The user muted or unmuted: the app's ``CallAudio`` decides.
    public func provider(_ provider: CXProvider, perform action: CXSetMutedCallAction) {
        if currentAudio()?.setMuted(action.isMuted, callUUID: action.callUUID) == true {
            action.fulfill()
        } else {
            action.fail()
        }
    }

    /// Holding is not offered (`supportsHolding` is off); fails.
    public func provider(_ provider: CXProvider, perform action: CXSetHeldCallAction) {
        action.fail()
    }

    /// An action that took too long fails.
    public func provider(_ provider: CXProvider, timedOutPerforming action: CXAction) {
        action.fail()
    }

    /// CallKit activated the call's audio session: the app's ``CallAudio`` starts audio.
    public func provider(_ provider: CXProvider, didActivate audioSession: AVAudioSession) {
        currentAudio()?.didActivate(audioSession)
    }

    /// CallKit deactivated the call's audio session: the app's ``CallAudio`` stops audio.
    public func provider(_ provider: CXProvider, didDeactivate audioSession: AVAudioSession) {
        currentAudio()?.didDeactivate(audioSession)
    }

    // MARK: Private

    /// What CallKit shows of a call: a generic handle, the name, video, and nothing callpush does
    /// not do (hold, group, DTMF).
    static func update(_ display: CallDisplay) -> CXCallUpdate {
        let update = CXCallUpdate()
        update.remoteHandle = CXHandle(type: .generic, value: display.handle)
        update.localizedCallerName = display.name
        update.hasVideo = display.hasVideo
        update.supportsHolding = false
        update.supportsGrouping = false
        update.supportsUngrouping = false
        update.supportsDTMF = false
        return update
    }

    private func configureAudio(video: Bool) {
        let session = AVAudioSession.sharedInstance()
        do {
            if let audio = currentAudio() {
                try audio.configure(session, video: video)
            } else {
                try CallKitProvider.configureForCall(session, video: video)
            }
        } catch {
            // Not fatal: CallKit still activates the session, in its current category.
        }
    }

    private func currentHandler() -> CallActionHandler? {
        synchronized { handler }
    }

    private func currentAudio() -> CallAudio? {
        synchronized { audio }
    }

    private func synchronized<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// A CallKit action handed to the task that completes it.
private struct PendingAction<Action: CXAction>: @unchecked Sendable {
    // @unchecked Sendable: CallKit lets an action be fulfilled or failed once, from any thread.
    let action: Action
}

extension CallProviderError {
    /// The refusal CallKit gave.
    init(_ error: Error) {
        if let incoming = error as? CXErrorCodeIncomingCallError, incoming.code == .callUUIDAlreadyExists {
            self = .callAlreadyReported
        } else {
            self = .refused(error.localizedDescription)
        }
    }
}

extension CXCallEndedReason {
    /// CallKit's reason for `reason`.
    init(_ reason: CallEndedReason) {
        switch reason {
        case .failed:
            self = .failed
        case .remoteEnded:
            self = .remoteEnded
        case .unanswered:
            self = .unanswered
        case .answeredElsewhere:
            self = .answeredElsewhere
        case .declinedElsewhere:
            self = .declinedElsewhere
        }
    }
}
#endif
