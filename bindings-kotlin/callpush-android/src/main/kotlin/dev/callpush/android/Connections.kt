package dev.callpush.android

import android.os.Handler
import android.os.Looper
import dev.callpush.Call

/**
 * The calls reported to Telecom and their live connections, by call id.
 *
 * [TelecomCallUi] records each call's latest state from whatever thread the client reports on;
 * Telecom creates the connection later, on the main thread. All changes to a connection happen on
 * the main thread and apply the latest recorded state, so reports that overtake each other, or
 * arrive before Telecom created the connection, still leave it right.
 */
internal object Connections {
    /** Most calls kept without a connection, should Telecom never claim some. */
    private const val MAX_UNCLAIMED = 64

    /** Latest state of each call reported and not yet settled with Telecom, oldest first. */
    private val calls = LinkedHashMap<String, Call>()
    private val live = HashMap<String, CallPushConnection>()
    private val main by lazy { Handler(Looper.getMainLooper()) }

    /**
     * Rings the calls Telecom shows; set by [TelecomCallUi], `null` before it exists. Driven by the
     * connections, on the main thread.
     */
    @Volatile
    var ringer: Ringer? = null

    /** Records [call]'s state and brings its live connection, if any, up to date. */
    fun update(call: Call) {
        val connection = synchronized(this) {
            calls[call.callId] = call
            if (calls.size > live.size + MAX_UNCLAIMED) calls.keys.firstOrNull { it !in live }?.let(calls::remove)
            live[call.callId]
        }
        connection?.let { main.post(it::sync) }
    }

    /** The latest state recorded for [callId]. */
    fun latest(callId: String): Call? = synchronized(this) { calls[callId] }

    /** Registers [connection], just created by Telecom. */
    fun attach(connection: CallPushConnection) {
        synchronized(this) { live[connection.callId] = connection }
    }

    /** Drops [connection] once it is destroyed, with the state of its call. */
    fun detach(connection: CallPushConnection) {
        synchronized(this) {
            if (live[connection.callId] === connection) live.remove(connection.callId)
            calls.remove(connection.callId)
        }
    }

    /** Drops [callId], which Telecom refused or will never create a connection for. */
    fun forget(callId: String) {
        synchronized(this) {
            calls.remove(callId)
            live.remove(callId)
        }
    }

    /** Runs [block] on the main thread, where connections are changed. */
    fun onMain(block: () -> Unit) {
        main.post(block)
    }
}
