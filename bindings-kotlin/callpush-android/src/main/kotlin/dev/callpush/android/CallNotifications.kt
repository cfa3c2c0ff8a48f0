package dev.callpush.android

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.app.Person
import android.content.Context
import android.media.AudioAttributes
import android.media.RingtoneManager
import dev.callpush.Call
import dev.callpush.CallEvent

/**
 * The notifications of calls: the missed call, and the ringing call of a self-managed call, which
 * Telecom leaves to the app. Posting needs `POST_NOTIFICATIONS` from API 33; without it Android
 * drops them silently.
 */
object CallNotifications {
    /** Channel of missed calls, created on first use. */
    const val MISSED_CHANNEL_ID = "callpush.missed"

    /**
     * Channel of ringing calls when the app rings them ([RingingOptions.ring] `false`), created on
     * first use: high importance, the ringtone as sound.
     */
    const val INCOMING_CHANNEL_ID = "callpush.incoming"

    /**
     * Channel of ringing calls when the glue rings them (the default), created on first use: high
     * importance and silent, so the ringtone never plays twice. A channel's sound cannot change
     * once created, hence two channels.
     */
    const val SILENT_INCOMING_CHANNEL_ID = "callpush.incoming.silent"

    /** Notification id of ringing calls; the call id is the tag. */
    private const val INCOMING_ID = 1

    /**
     * Posts the missed-call notification of [missed]. It is keyed by the event's
     * `appMessageId` (tag, and its hash as id), so the same missed call never shows twice, however
     * many times it is reported.
     *
     * @param smallIcon the app's monochrome notification icon.
     * @param contentIntent what a tap opens, typically the app's call history; `null` for nothing.
     * @param channelName the missed-call channel's user-visible name, used when it is created.
     * @param text the notification's text, under the caller's name.
     */
    fun showMissedCall(
        context: Context,
        missed: CallEvent.Missed,
        smallIcon: Int,
        contentIntent: PendingIntent? = null,
        channelName: CharSequence = "Missed calls",
        text: CharSequence = if (missed.call.video) "Missed video call" else "Missed call",
    ) {
        val manager = context.getSystemService(NotificationManager::class.java)
        manager.createNotificationChannel(
            NotificationChannel(MISSED_CHANNEL_ID, channelName, NotificationManager.IMPORTANCE_DEFAULT),
        )
        val notification = Notification.Builder(context, MISSED_CHANNEL_ID)
            .setSmallIcon(smallIcon)
            .setContentTitle(missed.call.callerName?.takeIf { it.isNotBlank() } ?: missed.call.callerId)
            .setContentText(text)
            .setCategory(Notification.CATEGORY_MISSED_CALL)
            .setShowWhen(true)
            .setAutoCancel(true)
            .setContentIntent(contentIntent)
            .build()
        manager.notify(missed.appMessageId, missed.appMessageId.hashCode(), notification)
    }

    /**
     * Builds the ringing notification of an incoming [call]: `CallStyle` with answer and decline
     * buttons and a full-screen intent that shows the app's call screen over the lock screen. Silent
     * when the glue rings the call ([RingingOptions.ring], the default); otherwise the ringtone plays
     * until the notification goes. Post it with [showIncomingCall] from
     * [IncomingCallPresenter.showIncomingCall]. API 31.
     *
     * Android 14 grants full-screen intents only to calling and alarm apps
     * (`NotificationManager.canUseFullScreenIntent`); otherwise the notification shows heads-up.
     *
     * @param smallIcon the app's monochrome notification icon.
     * @param fullScreenIntent the app's incoming-call activity; also what a tap opens.
     * @param answerIntent what the answer button sends; it should call `Client.answer`.
     * @param declineIntent what the decline button sends; it should call `Client.decline`.
     * @param channelName the incoming-call channel's user-visible name, used when it is created.
     * @param withRingtone whether the notification plays the ringtone; by default only when the glue
     *   does not ring calls itself.
     */
    fun incomingCall(
        context: Context,
        call: Call,
        smallIcon: Int,
        fullScreenIntent: PendingIntent,
        answerIntent: PendingIntent,
        declineIntent: PendingIntent,
        channelName: CharSequence = "Incoming calls",
        withRingtone: Boolean = Connections.ringer?.enabled != true,
    ): Notification {
        val channelId = if (withRingtone) INCOMING_CHANNEL_ID else SILENT_INCOMING_CHANNEL_ID
        val channel = NotificationChannel(channelId, channelName, NotificationManager.IMPORTANCE_HIGH).apply {
            if (withRingtone) {
                setSound(
                    RingtoneManager.getDefaultUri(RingtoneManager.TYPE_RINGTONE),
                    AudioAttributes.Builder()
                        .setUsage(AudioAttributes.USAGE_NOTIFICATION_RINGTONE)
                        .setContentType(AudioAttributes.CONTENT_TYPE_SONIFICATION)
                        .build(),
                )
            } else {
                setSound(null, null)
                enableVibration(false)
            }
        }
        context.getSystemService(NotificationManager::class.java).createNotificationChannel(channel)
        val caller = Person.Builder().setName(call.displayName()).setImportant(true).build()
        val notification = Notification.Builder(context, channelId)
            .setSmallIcon(smallIcon)
            .setStyle(Notification.CallStyle.forIncomingCall(caller, declineIntent, answerIntent).setIsVideo(call.video))
            .setFullScreenIntent(fullScreenIntent, true)
            .setContentIntent(fullScreenIntent)
            .setCategory(Notification.CATEGORY_CALL)
            .addPerson(caller)
            .setOngoing(true)
            .build()
        // Ring until answered, declined or cancelled, not once.
        if (withRingtone) notification.flags = notification.flags or Notification.FLAG_INSISTENT
        return notification
    }

    /** Posts the ringing [notification] of [call], replacing any earlier one for it. */
    fun showIncomingCall(context: Context, call: Call, notification: Notification) {
        context.getSystemService(NotificationManager::class.java).notify(call.callId, INCOMING_ID, notification)
    }

    /**
     * Removes the ringing notification of [callId]. [TelecomCallUi] does this once the call stops
     * ringing; apps call it only for notifications they post without Telecom.
     */
    fun cancelIncomingCall(context: Context, callId: String) {
        context.getSystemService(NotificationManager::class.java).cancel(callId, INCOMING_ID)
    }
}
