package dev.callpush.android

import dev.callpush.HandleOutcome
import dev.callpush.Outcome
import dev.callpush.RegisterPushOptions

/**
 * The hand-off from the app's `FirebaseMessagingService`, which stays the app's own (Firebase is
 * not a dependency of this library): forward its two callbacks here.
 */
object CallPushMessaging {
    /**
     * Handles an FCM data message: pass `remoteMessage.data` from `onMessageReceived`.
     * Synchronous on purpose: a call is with Telecom before this returns, while FCM still grants
     * the app its high-priority window.
     *
     * @return what the message meant; [Outcome.IGNORE] means it is not a callpush message and
     *   belongs to the rest of the app.
     * @throws IllegalStateException when [CallPushAndroid.install] has not been called.
     */
    fun onMessageReceived(data: Map<String, String>): HandleOutcome =
        CallPushAndroid.client.handlePushData(data)

    /**
     * Registers an FCM token in the background: the new one from `onNewToken`, and the current
     * one on every launch. A failure is only logged (without the token); the next launch tries
     * again, and once registered, `Client.refresh(token)` re-registers a token that changed.
     */
    fun onNewToken(token: String, options: RegisterPushOptions = RegisterPushOptions()) {
        CallPushAndroid.launch("registering the new FCM token") { registerPush(token, options) }
    }
}
