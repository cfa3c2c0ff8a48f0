package dev.callpush.android

import android.Manifest
import android.content.Context
import android.content.pm.PackageManager
import android.media.AudioAttributes
import android.media.AudioFocusRequest
import android.media.AudioManager
import android.media.MediaPlayer
import android.media.RingtoneManager
import android.net.Uri
import android.os.Build
import android.os.VibrationAttributes
import android.os.VibrationEffect
import android.os.Vibrator
import android.os.VibratorManager
import android.util.Log

/**
 * How self-managed calls ring. Android rings only the calls Telecom manages itself; for a
 * self-managed call the app plays the ringtone and vibrates, and by default the glue does that
 * for it. Pass to [TelecomCallUi].
 *
 * @param ring `true` (default): the glue rings while a call rings, following the ringer mode
 *   (silent: nothing, vibrate: vibration, normal: ringtone and vibration). `false` leaves ringing to
 *   the app, for example to the sound of the ringing notification ([CallNotifications.incomingCall]).
 * @param ringtone what to play: `null` for the user's default ringtone, or the app's own, such as
 *   `android.resource://<package>/raw/ring`. One that cannot be played falls back to the default.
 * @param vibrationPattern off and on durations in milliseconds, as for
 *   `VibrationEffect.createWaveform`, repeated while the call rings; by default 1 s on, 1 s off.
 */
class RingingOptions(
    val ring: Boolean = true,
    val ringtone: Uri? = null,
    val vibrationPattern: LongArray = longArrayOf(0, 1000, 1000),
)

/** Audio attributes of a ringtone: the ring volume, muted by Do Not Disturb when calls are. */
private val RINGTONE_ATTRIBUTES: AudioAttributes = AudioAttributes.Builder()
    .setUsage(AudioAttributes.USAGE_NOTIFICATION_RINGTONE)
    .setContentType(AudioAttributes.CONTENT_TYPE_SONIFICATION)
    .build()

/**
 * The [RingerDevice] of Android: a looping [MediaPlayer] with ringtone attributes, the default
 * [Vibrator] with ringtone usage (which Android lets ring even from the background), and transient
 * audio focus. Called on the main thread, where [CallPushConnection] runs.
 */
internal class AndroidRingerDevice(
    context: Context,
    private val options: RingingOptions,
    private val report: (what: String, error: Exception) -> Unit,
) : RingerDevice {
    private val context: Context = context.applicationContext
    private val audio: AudioManager by lazy { this.context.getSystemService(AudioManager::class.java) }
    private val vibrator: Vibrator? by lazy {
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
            this.context.getSystemService(VibratorManager::class.java)?.defaultVibrator
        } else {
            this.context.getSystemService(Vibrator::class.java)
        }
    }
    private val focus: AudioFocusRequest by lazy {
        AudioFocusRequest.Builder(AudioManager.AUDIOFOCUS_GAIN_TRANSIENT).setAudioAttributes(RINGTONE_ATTRIBUTES).build()
    }
    private var player: MediaPlayer? = null

    override fun ringerMode(): RingerMode = when (audio.ringerMode) {
        AudioManager.RINGER_MODE_SILENT -> RingerMode.SILENT
        AudioManager.RINGER_MODE_VIBRATE -> RingerMode.VIBRATE
        else -> RingerMode.NORMAL
    }

    override fun requestAudioFocus() {
        // Refused during another app's call, for one; the ringtone still plays.
        check(audio.requestAudioFocus(focus) != AudioManager.AUDIOFOCUS_REQUEST_FAILED) { "audio focus refused" }
    }

    override fun abandonAudioFocus() {
        audio.abandonAudioFocusRequest(focus)
    }

    override fun playRingtone() {
        stopRingtone()
        val default = RingtoneManager.getDefaultUri(RingtoneManager.TYPE_RINGTONE)
        val custom = options.ringtone
        player = if (custom == null || custom == default) {
            start(default)
        } else {
            try {
                start(custom)
            } catch (e: Exception) {
                report("playing the app's ringtone $custom", e)
                start(default)
            }
        }
    }

    /**
     * A player looping [uri], started. Prepared on the calling thread: ringtones are local files,
     * and a failure then surfaces here, where the ringer reports it.
     */
    private fun start(uri: Uri): MediaPlayer {
        val player = MediaPlayer()
        try {
            player.setAudioAttributes(RINGTONE_ATTRIBUTES)
            player.isLooping = true
            // The default ringtone URI resolves to the ringtone's cached copy, readable without permissions.
            player.setDataSource(context, uri)
            player.setOnErrorListener { failed, what, extra ->
                report("playing the ringtone", IllegalStateException("MediaPlayer error $what ($extra)"))
                failed.release()
                if (this.player === failed) this.player = null
                true
            }
            player.prepare()
            player.start()
        } catch (e: Exception) {
            player.release()
            throw e
        }
        return player
    }

    override fun stopRingtone() {
        val playing = player ?: return
        player = null
        playing.release()
    }

    override fun vibrate() {
        val vibrator = vibrator?.takeIf { it.hasVibrator() } ?: return
        if (context.checkSelfPermission(Manifest.permission.VIBRATE) != PackageManager.PERMISSION_GRANTED) {
            throw SecurityException("the app does not hold android.permission.VIBRATE")
        }
        val effect = VibrationEffect.createWaveform(options.vibrationPattern, 0)
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            vibrator.vibrate(effect, VibrationAttributes.createForUsage(VibrationAttributes.USAGE_RINGTONE))
        } else {
            @Suppress("DEPRECATION")
            vibrator.vibrate(effect, RINGTONE_ATTRIBUTES)
        }
    }

    override fun cancelVibration() {
        vibrator?.cancel()
    }
}

/** How the glue reports a ringing failure: logged, like its other failures; the call goes on. */
internal fun logRingerFailure(what: String, error: Exception) {
    Log.w(TAG, "ringing: $what failed: ${error.message ?: error.javaClass.simpleName}")
}
