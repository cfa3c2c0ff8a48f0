package dev.callpush.android

import dev.callpush.Call
import dev.callpush.CallState

/** The user's ringer switch, as phone apps read it. */
internal enum class RingerMode {
    /** Neither ringtone nor vibration. */
    SILENT,

    /** Vibration only. */
    VIBRATE,

    /** Ringtone and vibration. */
    NORMAL,
}

/**
 * What the [Ringer] does to the device, kept behind this seam so the ringing decisions run (and are
 * tested) on a plain JVM. [AndroidRingerDevice] is the real one. Every method may throw; the ringer
 * reports the failure and goes on.
 */
internal interface RingerDevice {
    /** The ringer mode now. */
    fun ringerMode(): RingerMode

    /** Takes transient audio focus for the ringtone, so music pauses while the call rings. */
    fun requestAudioFocus()

    /** Gives back the focus [requestAudioFocus] took; harmless when none is held. */
    fun abandonAudioFocus()

    /** Starts the ringtone, looping until [stopRingtone]. */
    fun playRingtone()

    /** Stops the ringtone; harmless when none plays. */
    fun stopRingtone()

    /** Starts the repeating vibration, until [cancelVibration]. */
    fun vibrate()

    /** Stops the vibration; harmless when none runs. */
    fun cancelVibration()
}

/**
 * When self-managed calls ring: Telecom leaves the ringtone and the vibration to the app.
 *
 * The device rings while at least one call rings audibly (Telecom showed it, see [ring]) and no
 * other call of ours is in progress: a second call during a call does not blast the ringtone over
 * it, and starts ringing once that call ends, as phone apps do. What it does follows the ringer
 * mode read when ringing starts: silent → nothing, vibrate → vibration, normal → audio focus,
 * ringtone and vibration. Every input is idempotent, and a device failure is passed to [report]
 * and never reaches the caller, so ringing can never break a call.
 *
 * @param enabled `false` when the app rings itself: nothing ever starts.
 * @param report told what failed (`"playing the ringtone"`) and why.
 */
internal class Ringer(
    private val device: RingerDevice,
    val enabled: Boolean,
    private val report: (what: String, error: Exception) -> Unit,
) {
    /** What was started, to stop exactly that. */
    private class Output(val ringtone: Boolean, val vibration: Boolean)

    /** Calls shown ringing and not yet stopped or silenced, in the order they arrived. */
    private val ringing = LinkedHashSet<String>()

    /** Calls in progress (dialing, answered, active): the device stays quiet for others meanwhile. */
    private val inProgress = HashSet<String>()

    /** What plays now; `null` while quiet. */
    private var output: Output? = null

    /** Whether the device is ringing (in whichever way the ringer mode allowed). */
    val isRinging: Boolean
        @Synchronized get() = output != null

    /** Telecom showed [call] ringing (`onShowIncomingCallUi`): ring, unless it no longer rings. */
    @Synchronized
    fun ring(call: Call) {
        if (!enabled || call.state != CallState.RINGING) return
        ringing += call.callId
        apply()
    }

    /**
     * The client's latest state of [call]: any state but ringing stops its ringing (answered,
     * declined, cancelled by the caller, missed, answered or declined elsewhere, failed).
     */
    @Synchronized
    fun update(call: Call) {
        when (call.state) {
            CallState.RINGING -> return
            CallState.DIALING, CallState.ANSWERED, CallState.ACTIVE -> {
                ringing -= call.callId
                inProgress += call.callId
            }
            CallState.ENDED -> {
                ringing -= call.callId
                inProgress -= call.callId
            }
        }
        apply()
    }

    /**
     * Stops ringing for [callId] at once, while the call goes on: the user answered or declined
     * through the system, or silenced the ringer.
     */
    @Synchronized
    fun stop(callId: String) {
        ringing -= callId
        apply()
    }

    /** [callId]'s connection is disconnected or destroyed: it neither rings nor holds others quiet. */
    @Synchronized
    fun ended(callId: String) {
        ringing -= callId
        inProgress -= callId
        apply()
    }

    /** Forgets every call and stops ringing: the connection service is gone. */
    @Synchronized
    fun reset() {
        ringing.clear()
        inProgress.clear()
        apply()
    }

    /** Starts or stops the device to match the calls. */
    private fun apply() {
        val ring = ringing.isNotEmpty() && inProgress.isEmpty()
        if (ring && output == null) start() else if (!ring && output != null) quiet()
    }

    private fun start() {
        // Unreadable ringer mode: vibrate, noticeable yet never loud against the user's choice.
        val mode = attempt("reading the ringer mode") { device.ringerMode() } ?: RingerMode.VIBRATE
        val started = Output(ringtone = mode == RingerMode.NORMAL, vibration = mode != RingerMode.SILENT)
        output = started
        if (started.ringtone) {
            // Focus only with sound: a vibration alone leaves the user's music playing, as Telecom does.
            attempt("requesting audio focus") { device.requestAudioFocus() }
            attempt("playing the ringtone") { device.playRingtone() }
        }
        if (started.vibration) attempt("vibrating") { device.vibrate() }
    }

    private fun quiet() {
        val started = output ?: return
        output = null
        if (started.ringtone) attempt("stopping the ringtone") { device.stopRingtone() }
        if (started.vibration) attempt("cancelling the vibration") { device.cancelVibration() }
        if (started.ringtone) attempt("abandoning audio focus") { device.abandonAudioFocus() }
    }

    /** Runs [block]; a failure is reported, never thrown. */
    private inline fun <T> attempt(what: String, block: () -> T): T? =
        try {
            block()
        } catch (e: Exception) {
            report(what, e)
            null
        }
}
