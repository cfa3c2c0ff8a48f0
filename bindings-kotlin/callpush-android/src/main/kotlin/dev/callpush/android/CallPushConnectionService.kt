package dev.callpush.android

import android.content.Context
import android.telecom.Connection
import android.telecom.ConnectionRequest
import android.telecom.ConnectionService
import android.telecom.DisconnectCause
import android.telecom.PhoneAccountHandle
import android.telecom.TelecomManager
import android.util.Log
import dev.callpush.Call
import dev.callpush.CallState
import dev.callpush.CallpushException
import dev.callpush.Client
import dev.callpush.EndReason
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.launch

/**
 * The app's self-managed Telecom `ConnectionService`: creates the [Connection] of each call
 * [TelecomCallUi] reported. The library's manifest declares it, protected by
 * `android.permission.BIND_TELECOM_CONNECTION_SERVICE`, and it merges into the app's (see the
 * README); it finds the client through [CallPushAndroid].
 */
class CallPushConnectionService : ConnectionService() {
    /** Telecom accepted an incoming call: its connection, ringing. */
    override fun onCreateIncomingConnection(
        connectionManagerPhoneAccount: PhoneAccountHandle?,
        request: ConnectionRequest?,
    ): Connection = connect(request)

    /** Telecom accepted an outgoing call: its connection, dialing. */
    override fun onCreateOutgoingConnection(
        connectionManagerPhoneAccount: PhoneAccountHandle?,
        request: ConnectionRequest?,
    ): Connection = connect(request)

    /**
     * Telecom refused an incoming call after all (an emergency call, too many calls). The call
     * ends here as failed, on this device only: the user's other devices keep ringing.
     */
    override fun onCreateIncomingConnectionFailed(
        connectionManagerPhoneAccount: PhoneAccountHandle?,
        request: ConnectionRequest?,
    ) {
        val callId = request.callId() ?: return
        Connections.forget(callId)
        Log.w(TAG, "Telecom refused incoming call $callId")
        try {
            CallPushAndroid.client.endCall(callId, EndReason.FAILED)
        } catch (e: CallpushException) {
            Log.w(TAG, "ending refused call $callId: ${e.message}")
        }
    }

    /** Telecom refused an outgoing call after all: the client ends it. */
    override fun onCreateOutgoingConnectionFailed(
        connectionManagerPhoneAccount: PhoneAccountHandle?,
        request: ConnectionRequest?,
    ) {
        val callId = request.callId() ?: return
        Connections.forget(callId)
        Log.w(TAG, "Telecom refused outgoing call $callId")
        CallPushAndroid.launch("ending refused outgoing call $callId") { hangUp(callId) }
    }

    /** Telecom unbound: no connection is left, so nothing may keep ringing. */
    override fun onDestroy() {
        Connections.ringer?.reset()
        super.onDestroy()
    }

    private fun connect(request: ConnectionRequest?): Connection {
        val callId = request.callId()
        val call = callId?.let(Connections::latest)
        if (callId == null || call == null) {
            Log.e(TAG, "Telecom asked for unknown call $callId")
            return Connection.createFailedConnection(DisconnectCause(DisconnectCause.ERROR, "unknown call"))
        }
        if (call.state == CallState.ENDED) {
            Connections.forget(callId)
            return Connection.createFailedConnection(call.disconnectCause())
        }
        val connection = CallPushConnection(this, call)
        Connections.attach(connection)
        connection.sync()
        return connection
    }

    private fun ConnectionRequest?.callId(): String? = this?.extras?.getString(EXTRA_CALL_ID)
}

/**
 * One call in Telecom. Telecom calls its `on…` methods when the user acts through the system
 * (a headset button, a car, a watch) or ends the call itself (for an emergency call); each becomes
 * the client's action. The app's own UI calls the client directly; either way the state comes
 * back through [TelecomCallUi.reportCallState] and [sync].
 */
internal class CallPushConnection(private val context: Context, call: Call) : Connection() {
    /** The call this connection shows. */
    val callId: String = call.callId

    init {
        connectionProperties = PROPERTY_SELF_MANAGED
        audioModeIsVoip = true
        setAddress(call.address(), TelecomManager.PRESENTATION_ALLOWED)
        setCallerDisplayName(call.displayName(), TelecomManager.PRESENTATION_ALLOWED)
        videoState = call.videoState()
    }

    /** Brings the connection, and the ringer, to the call's latest state; main thread. */
    fun sync() {
        val call = Connections.latest(callId) ?: return
        Connections.ringer?.update(call)
        when (call.state) {
            CallState.RINGING -> if (state == STATE_NEW) setRinging()
            CallState.DIALING -> if (state == STATE_NEW) setDialing()
            CallState.ANSWERED, CallState.ACTIVE -> if (state != STATE_ACTIVE && state != STATE_DISCONNECTED) setActive()
            CallState.ENDED -> end(call.disconnectCause())
        }
    }

    /**
     * Telecom lets the call ring: the glue starts ringing (Telecom never rings self-managed calls)
     * and the app shows its incoming-call UI.
     */
    override fun onShowIncomingCallUi() {
        val call = Connections.latest(callId) ?: return
        Connections.ringer?.ring(call)
        val presenter = CallPushAndroid.presenter
        if (presenter == null) {
            Log.e(TAG, "no IncomingCallPresenter installed; call $callId rings without UI")
            return
        }
        presenter.showIncomingCall(context, call)
    }

    /** The user answered through the system: ringing stops at once, before the client confirms. */
    override fun onAnswer() {
        Connections.ringer?.stop(callId)
        act("answer") { answer(callId) }
    }

    /** The user answered through the system, choosing [videoState]. */
    override fun onAnswer(videoState: Int) = onAnswer()

    /** The user declined through the system: ringing stops at once. */
    override fun onReject() {
        Connections.ringer?.stop(callId)
        act("decline") { decline(callId) }
    }

    /** The user hung up through the system, or Telecom ended the call. */
    override fun onDisconnect() {
        Connections.ringer?.stop(callId)
        act("hang up") { hangUp(callId) }
    }

    /**
     * The user silenced the ringer (a volume or power key; API 29+): ringing stops while the call
     * still rings on screen.
     */
    override fun onSilence() {
        Connections.ringer?.stop(callId)
    }

    /** Telecom gave up on the call before it was set up. */
    override fun onAbort() = onDisconnect()

    /**
     * Runs a call action on the client. Should it fail, the client's view wins: if it no longer
     * holds the call live, the connection ends, so Telecom is never left waiting for a disconnect.
     */
    private fun act(action: String, block: suspend Client.() -> Call) {
        val client = CallPushAndroid.clientOrNull()
            ?: return end(DisconnectCause(DisconnectCause.ERROR, "callpush not installed"))
        CallPushAndroid.scope.launch {
            try {
                client.block()
            } catch (e: CancellationException) {
                throw e
            } catch (e: Exception) {
                Log.w(TAG, "$action of call $callId failed: ${e.message}")
                val call = client.call(callId)
                if (call == null || call.state == CallState.ENDED) {
                    val cause = call?.disconnectCause() ?: DisconnectCause(DisconnectCause.ERROR, "unknown call")
                    Connections.onMain { end(cause) }
                }
            }
        }
    }

    /** Disconnects and destroys the connection, once, and stops its ringing; main thread. */
    private fun end(cause: DisconnectCause) {
        Connections.ringer?.ended(callId)
        if (state == STATE_DISCONNECTED) return
        setDisconnected(cause)
        destroy()
        Connections.detach(this)
    }
}
