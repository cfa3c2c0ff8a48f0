package dev.callpush

import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.receiveAsFlow

/**
 * The callpush client for Kotlin: the generated [Client] with its events as a [Flow].
 *
 * Create one per app process and keep it. Every suspend function of [client] is safe to call
 * from any dispatcher; [Client.handlePush] and [Client.handlePushData] are synchronous on
 * purpose: call them inside the platform's push callback, which must report to the system call
 * UI before it returns.
 *
 * ```
 * val callPush = CallPush.create(
 *     ClientConfig(serverUrl, filesDir.resolve("callpush").path, Platform.FCM),
 *     tokens = myAccessTokens,
 *     ui = TelecomCallUi(context, phoneAccount),
 * )
 * scope.launch { callPush.events.collect { event -> ... } }
 * callPush.client.registerPush(fcmToken, RegisterPushOptions())
 * ```
 */
class CallPush private constructor(
    /** The client: register, handle, unregister, and the call actions. */
    val client: Client,
    private val channel: Channel<CallEvent>,
) : AutoCloseable {
    /**
     * Every event of the client, in order, none dropped. Events are produced on Rust threads;
     * collect on the dispatcher of your choice. Collect it once (fan out with `shareIn`).
     */
    val events: Flow<CallEvent> = channel.receiveAsFlow()

    /** Releases the native client. Calls after this fail. */
    override fun close() {
        client.close()
        channel.close()
    }

    companion object {
        /**
         * Creates a client for [config], restoring what its data directory holds.
         *
         * @param http the HTTP stack for the registrar; defaults to [UrlConnectionHttpClient].
         * @param tokens the app user's bearer token for the registrar.
         * @param ui the system call UI (Android: a Telecom `ConnectionService`, see callpush-android).
         * @throws CallpushException when the configuration is unusable.
         */
        fun create(
            config: ClientConfig,
            tokens: AccessTokenProvider,
            ui: SystemCallUi,
            http: HttpClient = UrlConnectionHttpClient(),
        ): CallPush {
            val channel = Channel<CallEvent>(Channel.UNLIMITED)
            val listener = object : CallListener {
                override fun onEvent(event: CallEvent) {
                    // An unlimited channel never refuses while open.
                    channel.trySend(event)
                }
            }
            return CallPush(Client(config, http, tokens, ui, listener), channel)
        }
    }
}
