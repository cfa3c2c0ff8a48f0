package dev.callpush.android

import dev.callpush.Call
import dev.callpush.CallDirection
import dev.callpush.CallState
import dev.callpush.EndReason
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/** The ringing decisions of self-managed calls, against a device that records what it is told. */
class RingerTest {
    /** Records every call; [failing] names the calls that throw instead. */
    private class FakeDevice(var mode: RingerMode = RingerMode.NORMAL) : RingerDevice {
        val log = mutableListOf<String>()
        val failing = mutableSetOf<String>()

        private fun record(what: String) {
            log += what
            if (what in failing) throw IllegalStateException("$what broke")
        }

        override fun ringerMode(): RingerMode {
            record("mode")
            return mode
        }
        override fun requestAudioFocus() = record("focus")
        override fun abandonAudioFocus() = record("abandon")
        override fun playRingtone() = record("play")
        override fun stopRingtone() = record("stop")
        override fun vibrate() = record("vibrate")
        override fun cancelVibration() = record("cancel")

        /** What was recorded since the last call, then forgotten. */
        fun take(): List<String> = log.toList().also { log.clear() }
    }

    private val device = FakeDevice()
    private val reports = mutableListOf<Pair<String, Exception>>()
    private val ringer = Ringer(device, enabled = true) { what, e -> reports += what to e }

    private val ringAll = listOf("mode", "focus", "play", "vibrate")
    private val stopAll = listOf("stop", "cancel", "abandon")

    @Test
    fun ringsWhenAnIncomingCallIsShown() {
        ringer.ring(incoming("c1"))
        assertEquals(ringAll, device.take())
        assertTrue(ringer.isRinging)
        assertEquals(emptyList(), reports)
    }

    @Test
    fun aRingingStateAloneDoesNotRing() {
        // Ringing starts when Telecom shows the call, not when the client first reports it.
        ringer.update(incoming("c1"))
        assertEquals(emptyList(), device.take())
        assertFalse(ringer.isRinging)
    }

    @Test
    fun aCallThatStoppedRingingBeforeItWasShownNeverRings() {
        ringer.ring(incoming("c1").copy(state = CallState.ENDED, endReason = EndReason.CALLER_CANCELLED))
        assertEquals(emptyList(), device.take())
    }

    @Test
    fun stopsForEachWayTheCallStopsRinging() {
        val endings = listOf(
            "answered" to (CallState.ANSWERED to null),
            "declined" to (CallState.ENDED to EndReason.DECLINED),
            "caller cancelled" to (CallState.ENDED to EndReason.CALLER_CANCELLED),
            "missed at the deadline" to (CallState.ENDED to EndReason.MISSED),
            "answered elsewhere" to (CallState.ENDED to EndReason.ANSWERED_ELSEWHERE),
        )
        for ((ending, end) in endings) {
            val (state, reason) = end
            val ringer = Ringer(device, enabled = true) { what, e -> reports += what to e }
            ringer.ring(incoming("c1"))
            assertEquals(ringAll, device.take(), ending)
            ringer.update(incoming("c1").copy(state = state, endReason = reason))
            assertEquals(stopAll, device.take(), ending)
            assertFalse(ringer.isRinging, ending)
        }
        assertEquals(emptyList(), reports)
    }

    @Test
    fun stopsAtOnceWhenTheUserActsThroughTheSystem() {
        ringer.ring(incoming("c1"))
        device.take()
        ringer.stop("c1")
        assertEquals(stopAll, device.take())
    }

    @Test
    fun stopsWhenTheConnectionIsDisconnectedOrTheServiceDestroyed() {
        ringer.ring(incoming("c1"))
        device.take()
        ringer.ended("c1")
        assertEquals(stopAll, device.take())

        ringer.ring(incoming("c2"))
        device.take()
        ringer.reset()
        assertEquals(stopAll, device.take())
    }

    @Test
    fun neverRingsWithTheOptionOff() {
        val quiet = Ringer(device, enabled = false) { what, e -> reports += what to e }
        quiet.ring(incoming("c1"))
        quiet.update(incoming("c1").copy(state = CallState.ANSWERED))
        quiet.stop("c1")
        quiet.ended("c1")
        quiet.reset()
        assertEquals(emptyList(), device.take())
        assertFalse(quiet.isRinging)
    }

    @Test
    fun silentModeNeitherPlaysNorVibrates() {
        device.mode = RingerMode.SILENT
        ringer.ring(incoming("c1"))
        assertEquals(listOf("mode"), device.take())
        ringer.stop("c1")
        assertEquals(emptyList(), device.take())
    }

    @Test
    fun vibrateModeOnlyVibratesAndLeavesAudioFocusAlone() {
        device.mode = RingerMode.VIBRATE
        ringer.ring(incoming("c1"))
        assertEquals(listOf("mode", "vibrate"), device.take())
        ringer.stop("c1")
        assertEquals(listOf("cancel"), device.take())
    }

    @Test
    fun normalModePlaysAndVibratesWithAudioFocus() {
        ringer.ring(incoming("c1"))
        assertEquals(ringAll, device.take())
        ringer.stop("c1")
        assertEquals(stopAll, device.take())
    }

    @Test
    fun startAndStopAreIdempotent() {
        ringer.ring(incoming("c1"))
        ringer.ring(incoming("c1"))
        assertEquals(ringAll, device.take())

        ringer.stop("c1")
        ringer.stop("c1")
        ringer.update(incoming("c1").copy(state = CallState.ENDED, endReason = EndReason.DECLINED))
        ringer.ended("c1")
        ringer.reset()
        assertEquals(stopAll, device.take())
        assertEquals(emptyList(), reports)
    }

    @Test
    fun keepsRingingWhileAnyCallRings() {
        ringer.ring(incoming("c1"))
        ringer.ring(incoming("c2"))
        assertEquals(ringAll, device.take())
        ringer.stop("c1")
        assertEquals(emptyList(), device.take())
        ringer.update(incoming("c2").copy(state = CallState.ENDED, endReason = EndReason.MISSED))
        assertEquals(stopAll, device.take())
    }

    @Test
    fun aCallDuringAnotherCallStaysQuietUntilThatCallEnds() {
        ringer.update(incoming("active").copy(state = CallState.ACTIVE))
        ringer.ring(incoming("c2"))
        assertEquals(emptyList(), device.take())

        ringer.update(incoming("active").copy(state = CallState.ENDED, endReason = EndReason.HUNG_UP))
        assertEquals(ringAll, device.take())
    }

    @Test
    fun answeringOneOfTwoRingingCallsSilencesTheOther() {
        ringer.ring(incoming("c1"))
        ringer.ring(incoming("c2"))
        device.take()
        ringer.update(incoming("c1").copy(state = CallState.ANSWERED))
        assertEquals(stopAll, device.take())
    }

    @Test
    fun aThrowingPlayerIsReportedAndTheCallGoesOn() {
        device.failing += "play"
        ringer.ring(incoming("c1"))
        // The vibration still starts, and nothing is thrown at the connection.
        assertEquals(ringAll, device.take())
        assertEquals(listOf("playing the ringtone"), reports.map { it.first })
        assertEquals("play broke", reports.single().second.message)
        assertTrue(ringer.isRinging)

        // Stopping still cleans up everything, so a partly started player is released too.
        device.failing.clear()
        ringer.update(incoming("c1").copy(state = CallState.ENDED, endReason = EndReason.DECLINED))
        assertEquals(stopAll, device.take())

        // And the next call rings normally.
        ringer.ring(incoming("c2"))
        assertEquals(ringAll, device.take())
    }

    @Test
    fun failuresWhileStoppingAreReportedAndTheRestStillStops() {
        ringer.ring(incoming("c1"))
        device.take()
        device.failing += listOf("stop", "abandon")
        ringer.stop("c1")
        assertEquals(stopAll, device.take())
        assertEquals(listOf("stopping the ringtone", "abandoning audio focus"), reports.map { it.first })
        assertFalse(ringer.isRinging)
        ringer.stop("c1")
        assertEquals(emptyList(), device.take())
    }

    @Test
    fun anUnreadableRingerModeVibratesOnly() {
        device.failing += "mode"
        ringer.ring(incoming("c1"))
        assertEquals(listOf("mode", "vibrate"), device.take())
        assertEquals(listOf("reading the ringer mode"), reports.map { it.first })
    }

    @Test
    fun refusedAudioFocusStillRings() {
        device.failing += "focus"
        ringer.ring(incoming("c1"))
        assertEquals(ringAll, device.take())
        assertEquals(listOf("requesting audio focus"), reports.map { it.first })
    }

    private fun incoming(callId: String) = Call(
        callId = callId,
        direction = CallDirection.INCOMING,
        state = CallState.RINGING,
        endReason = null,
        peerId = "alice",
        peerName = "Alice",
        video = false,
        systemCallId = null,
        expiresAt = null,
        data = emptyMap(),
    )
}
