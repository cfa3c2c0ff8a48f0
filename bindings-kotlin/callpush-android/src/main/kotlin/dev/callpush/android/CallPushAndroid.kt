package dev.callpush.android

import android.content.ComponentName
import android.content.Context
import android.telecom.PhoneAccount
import android.telecom.PhoneAccountHandle
import android.telecom.TelecomManager
import android.util.Log
import dev.callpush.Call
import dev.callpush.CallPush
import dev.callpush.Client
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineExceptionHandler
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.launch

/** Log tag of the glue. Nothing logged under it holds a push token or an access token. */
internal const val TAG = "callpush"

/**
 * The process-wide link between the app's one [CallPush] and the components Android creates on
 * its own ([CallPushConnectionService], the app's `FirebaseMessagingService`), which cannot be
 * handed the client and find it here.
 *
 * In `Application.onCreate`, which runs before any of those components: register the phone
 * account with [registerPhoneAccount], create the [CallPush] with a [TelecomCallUi] for it, then
 * [install] it.
 */
object CallPushAndroid {
    @Volatile
    private var installed: CallPush? = null

    @Volatile
    internal var presenter: IncomingCallPresenter? = null
        private set

    /**
     * Where the glue runs the client's suspend actions: off the main thread, and one failure never
     * cancels the others.
     */
    internal val scope = CoroutineScope(
        SupervisorJob() + Dispatchers.Default +
            CoroutineExceptionHandler { _, e -> Log.e(TAG, "unexpected failure in callpush", e) },
    )

    /**
     * Makes [callPush] the client of this process and [presenter] the app's incoming-call UI.
     * Installing again replaces both; closing the previous client is up to the caller.
     */
    fun install(callPush: CallPush, presenter: IncomingCallPresenter) {
        this.presenter = presenter
        installed = callPush
    }

    /**
     * The installed client.
     *
     * @throws IllegalStateException when [install] has not been called in this process.
     */
    val client: Client
        get() = checkNotNull(installed) {
            "CallPushAndroid.install was not called; call it in Application.onCreate"
        }.client

    /** The installed client, or `null` (logged) before [install]. */
    internal fun clientOrNull(): Client? {
        val callPush = installed
        if (callPush == null) Log.e(TAG, "CallPushAndroid.install was not called")
        return callPush?.client
    }

    /** Runs [action] on the installed client in [scope]; a failure is logged as [what]. */
    internal fun launch(what: String, action: suspend Client.() -> Unit) {
        val client = clientOrNull() ?: return
        scope.launch {
            try {
                client.action()
            } catch (e: CancellationException) {
                throw e
            } catch (e: Exception) {
                Log.w(TAG, "$what failed: ${e.message}")
            }
        }
    }

    /**
     * Registers (or updates) the app's self-managed Telecom phone account, served by
     * [CallPushConnectionService], and returns its handle for [TelecomCallUi].
     *
     * Self-managed means the app shows its own call UI (see [IncomingCallPresenter]) while Telecom
     * still arbitrates audio focus, Bluetooth, cars and watches, and other calls. Needs the
     * `MANAGE_OWN_CALLS` permission and API 26. Cheap; call it on every launch.
     *
     * @param label the account's user-visible name, usually the app's name.
     * @param accountId the account's id within the app; one account is enough.
     * @throws SecurityException when the app does not hold `MANAGE_OWN_CALLS`.
     */
    fun registerPhoneAccount(
        context: Context,
        label: CharSequence,
        accountId: String = "callpush",
    ): PhoneAccountHandle {
        val handle = PhoneAccountHandle(ComponentName(context, CallPushConnectionService::class.java), accountId)
        val account = PhoneAccount.builder(handle, label)
            .setCapabilities(
                PhoneAccount.CAPABILITY_SELF_MANAGED or
                    PhoneAccount.CAPABILITY_VIDEO_CALLING or
                    PhoneAccount.CAPABILITY_SUPPORTS_VIDEO_CALLING,
            )
            .setSupportedUriSchemes(listOf(PhoneAccount.SCHEME_SIP))
            .build()
        context.getSystemService(TelecomManager::class.java).registerPhoneAccount(account)
        return handle
    }
}

/**
 * The app's own incoming-call UI. Telecom shows nothing for a self-managed call: when it lets a
 * call ring, the app must post a notification with a full-screen intent (see
 * [CallNotifications.incomingCall]) or bring up its call screen.
 */
fun interface IncomingCallPresenter {
    /**
     * Shows [call] ringing, from `Connection.onShowIncomingCallUi`, on the main thread; [context]
     * is the [CallPushConnectionService]. A notification posted with
     * [CallNotifications.showIncomingCall] is removed by the glue once the call stops ringing.
     */
    fun showIncomingCall(context: Context, call: Call)
}
