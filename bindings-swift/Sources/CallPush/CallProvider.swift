import Foundation

/// What ``CallKitCallUi`` tells the system about calls: CallKit's `CXProvider` and
/// `CXCallController`, seen through a protocol without CallKit types.
///
/// On iOS it is ``CallKitProvider``. The seam exists so that the rules of the glue (report every
/// VoIP push, one UUID per call id, which end reason, which action) are tested with a fake on
/// macOS, where CallKit's call UI is not available. Apps do not implement it.
public protocol CallProvider: AnyObject, Sendable {
    /// Where the user's actions in the system call UI go (CallKit's `perform` actions). Set once,
    /// by ``CallKitCallUi``; the provider must hold the handler weakly.
    func setActionHandler(_ handler: CallActionHandler)

    /// `reportNewIncomingCall(with:update:completion:)`: must reach CallKit before this returns
    /// (PushKit's rule); `completion` runs later, on any queue, with `nil` once the call shows.
    func reportNewIncomingCall(
        _ uuid: UUID,
        display: CallDisplay,
        completion: @escaping @Sendable (CallProviderError?) -> Void
    )

    /// `reportCall(with:endedAt:reason:)`: a call ended other than by the user's action in the
    /// system call UI.
    func reportCallEnded(_ uuid: UUID, at date: Date, reason: CallEndedReason)

    /// `reportOutgoingCall(with:connectedAt:)`: an outgoing call's media connected.
    func reportOutgoingCallConnected(_ uuid: UUID, at date: Date)

    /// `CXCallController.request(_:completion:)` with one action: what the user did in the app's
    /// own UI, so that the system call UI follows. CallKit then performs the action, through the
    /// handler. `completion` runs later, on any queue, with `nil` once CallKit accepted it.
    func request(_ request: CallRequest, completion: @escaping @Sendable (CallProviderError?) -> Void)
}

/// The user's actions in the system call UI (CallKit's `perform` actions), which
/// ``CallKitCallUi`` turns into the client's calls.
public protocol CallActionHandler: AnyObject, Sendable {
    /// `CXAnswerCallAction`: answers the call; `true` to fulfill the action, `false` to fail it.
    func answerCall(_ uuid: UUID) async -> Bool

    /// `CXEndCallAction`: declines a ringing call, hangs up any other. The action is fulfilled
    /// whatever happened: the call is over on this device either way.
    func endCall(_ uuid: UUID) async

    /// `CXStartCallAction`: `true` to fulfill it (a call the app placed and still dials), `false`
    /// to fail it.
    func startCall(_ uuid: UUID) -> Bool

    /// What the system call UI shows of the call `uuid` (whether it has video, and the name for
    /// `reportCall(with:updated:)` once an outgoing call starts), if it is a live call.
    func callDisplay(_ uuid: UUID) -> CallDisplay?

    /// `providerDidReset(_:)`: the system ended every call.
    func providerDidReset()
}

/// What the system call UI shows of a call (a `CXCallUpdate`).
public struct CallDisplay: Equatable, Sendable {
    /// The other party's user id: the call's `CXHandle`, of type `.generic`.
    public var handle: String
    /// The name shown: the other party's display name, else their user id.
    public var name: String
    /// Whether video is offered.
    public var hasVideo: Bool

    /// A display of `name` for `handle`.
    public init(handle: String, name: String, hasVideo: Bool) {
        self.handle = handle
        self.name = name
        self.hasVideo = hasVideo
    }

    /// What to show of `call`.
    public init(_ call: Call) {
        let name = call.peerName?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        self.init(handle: call.peerId, name: name.isEmpty ? call.peerId : name, hasVideo: call.video)
    }
}

/// Why a call ended, other than by the user's own action in the system call UI
/// (`CXCallEndedReason`).
public enum CallEndedReason: Equatable, Sendable {
    /// `.failed`: it could not be set up or carried on.
    case failed
    /// `.remoteEnded`: the other party ended it.
    case remoteEnded
    /// `.unanswered`: nobody answered before its deadline.
    case unanswered
    /// `.answeredElsewhere`: another device of the user answered it.
    case answeredElsewhere
    /// `.declinedElsewhere`: another device of the user declined it.
    case declinedElsewhere
}

/// What the app asks of the system: a `CXTransaction` with one action.
public enum CallRequest: Equatable, Sendable {
    /// `CXStartCallAction`: the user placed a call.
    case start(UUID, CallDisplay)
    /// `CXAnswerCallAction`: the user answered in the app's own UI.
    case answer(UUID)
    /// `CXEndCallAction`: the user declined or hung up in the app's own UI.
    case end(UUID)
}

/// The system refused a report or a request.
public enum CallProviderError: Error, Equatable, Sendable {
    /// A call with this UUID is already reported
    /// (`CXErrorCodeIncomingCallError.Code.callUUIDAlreadyExists`): the call is on screen already.
    case callAlreadyReported
    /// Any other refusal (Do Not Disturb, a blocked caller, a missing entitlement, …), with what
    /// the system said.
    case refused(String)
}
