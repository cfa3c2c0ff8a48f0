package dev.callpush.android

import android.content.Context
import android.net.Uri
import android.os.Bundle
import android.telecom.DisconnectCause
import android.telecom.PhoneAccount
import android.telecom.PhoneAccountHandle
import android.telecom.TelecomManager
import android.telecom.VideoProfile
import dev.callpush.Call
import dev.callpush.CallState
import dev.callpush.CallUiException
import dev.callpush.EndReason
import dev.callpush.IncomingCallError
import dev.callpush.SystemCallUi

/**
 * The system call UI on Android: Telecom, through the app's self-managed phone account.
 *
 * Reports become Telecom requests; Telecom then has [CallPushConnectionService] create the
 * call's `Connection`, which this class keeps in step with the client's state. Pass it to
 * `CallPush.create`, one per process.
 *
 * Android does not ring self-managed calls: by default the glue plays the ringtone and vibrates
 * while a call rings (see [RingingOptions]).
 *
 * @param context any context; only the application context is kept.
 * @param phoneAccount the handle [CallPushAndroid.registerPhoneAccount] returned.
 * @param ringing whether the glue rings, and with what; [RingingOptions.ring] `false` leaves it to the app.
 */
class TelecomCallUi(
    context: Context,
    private val phoneAccount: PhoneAccountHandle,
    ringing: RingingOptions = RingingOptions(),
) : SystemCallUi {
    private val context: Context = context.applicationContext
    private val telecom: TelecomManager = context.getSystemService(TelecomManager::class.java)

    init {
        val device = AndroidRingerDevice(this.context, ringing, ::logRingerFailure)
        // A second instance replaces the first; whatever the first was ringing stops.
        val previous = Connections.ringer
        Connections.ringer = Ringer(device, ringing.ring, ::logRingerFailure)
        previous?.let { Connections.onMain(it::reset) }
    }

    /**
     * Asks Telecom to ring [call] (`addNewIncomingCall`). Returns at once; Telecom creates the
     * connection moments later and then asks for the app's UI through [IncomingCallPresenter].
     *
     * @throws CallUiException.Refused when Telecom refuses now: no `MANAGE_OWN_CALLS`, the phone
     *   account is not registered or enabled, or no further incoming call is permitted.
     */
    override fun reportIncomingCall(call: Call) {
        val extras = Bundle().apply {
            putParcelable(TelecomManager.EXTRA_INCOMING_CALL_ADDRESS, call.address())
            putInt(TelecomManager.EXTRA_INCOMING_VIDEO_STATE, call.videoState())
            putString(EXTRA_CALL_ID, call.callId)
        }
        Connections.update(call)
        refuseOnFailure(call.callId, "addNewIncomingCall") {
            check(telecom.isIncomingCallPermitted(phoneAccount)) { "Telecom permits no further incoming call now" }
            telecom.addNewIncomingCall(phoneAccount, extras)
        }
    }

    /** Does nothing: reporting a push that must not ring is an iOS (CallKit) duty only. */
    override fun reportAndEndCall(call: Call?, reason: IncomingCallError) = Unit

    /** Does nothing: `reportIncomingCallError` is a HarmonyOS duty only. */
    override fun reportIncomingCallError(systemCallId: String?, reason: IncomingCallError) = Unit

    /**
     * Asks Telecom to place [call] on the self-managed account (`placeCall`), addressed to
     * `sip:<peer id>`; Telecom then creates its connection, dialing.
     *
     * @throws CallUiException.Refused when Telecom refuses now, as for incoming calls.
     */
    override fun reportOutgoingCall(call: Call) {
        val extras = Bundle().apply {
            putParcelable(TelecomManager.EXTRA_PHONE_ACCOUNT_HANDLE, phoneAccount)
            putInt(TelecomManager.EXTRA_START_CALL_WITH_VIDEO_STATE, call.videoState())
            putBundle(TelecomManager.EXTRA_OUTGOING_CALL_EXTRAS, Bundle().apply { putString(EXTRA_CALL_ID, call.callId) })
        }
        Connections.update(call)
        refuseOnFailure(call.callId, "placeCall") {
            check(telecom.isOutgoingCallPermitted(phoneAccount)) { "Telecom permits no further outgoing call now" }
            telecom.placeCall(call.address(), extras)
        }
    }

    /**
     * Brings the call's connection to [call]'s state: answered or active makes it active (Telecom
     * then gives the call audio, which media needs to connect), ended disconnects it with the
     * [DisconnectCause] of its end reason. Removes the incoming-call notification once the call
     * stops ringing.
     */
    override fun reportCallState(call: Call) {
        if (call.state != CallState.RINGING) CallNotifications.cancelIncomingCall(context, call.callId)
        Connections.update(call)
    }

    /** Runs a Telecom request; a refusal forgets the call and becomes the error the client expects. */
    private inline fun refuseOnFailure(callId: String, request: String, block: () -> Unit) {
        try {
            block()
        } catch (e: RuntimeException) {
            Connections.forget(callId)
            throw CallUiException.Refused("$request: ${e.message ?: e.javaClass.simpleName}")
        }
    }
}

/** The request extra that carries the call id from [TelecomCallUi] to [CallPushConnectionService]. */
internal const val EXTRA_CALL_ID = "dev.callpush.android.CALL_ID"

/** The other party as Telecom shows it: `sip:<peer id>`. */
internal fun Call.address(): Uri = Uri.fromParts(PhoneAccount.SCHEME_SIP, peerId, null)

/** The other party's name to show: their display name, else their user id. */
internal fun Call.displayName(): String = peerName?.takeIf { it.isNotBlank() } ?: peerId

/** Telecom's video state for the call. */
internal fun Call.videoState(): Int = if (video) VideoProfile.STATE_BIDIRECTIONAL else VideoProfile.STATE_AUDIO_ONLY

/** Why the call ended, in Telecom's words. */
internal fun Call.disconnectCause(): DisconnectCause = when (endReason) {
    EndReason.DECLINED -> DisconnectCause(DisconnectCause.REJECTED, "declined")
    EndReason.HUNG_UP -> DisconnectCause(DisconnectCause.LOCAL, "hung up")
    EndReason.CALLER_CANCELLED -> DisconnectCause(DisconnectCause.REMOTE, "caller cancelled")
    EndReason.ANSWERED_ELSEWHERE -> DisconnectCause(DisconnectCause.ANSWERED_ELSEWHERE, "answered elsewhere")
    EndReason.DECLINED_ELSEWHERE -> DisconnectCause(DisconnectCause.REJECTED, "declined elsewhere")
    EndReason.MISSED -> DisconnectCause(DisconnectCause.MISSED, "missed")
    EndReason.FAILED -> DisconnectCause(DisconnectCause.ERROR, "failed")
    null -> DisconnectCause(DisconnectCause.UNKNOWN, "ended")
}
