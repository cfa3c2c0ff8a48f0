package dev.callpush

import java.util.concurrent.CopyOnWriteArrayList

/** Hands out `token-for:<user>`; counts forced refreshes. */
class Tokens(private val user: String) : AccessTokenProvider {
    @Volatile var forced = 0
    override suspend fun accessToken(forceRefresh: Boolean): String {
        if (forceRefresh) forced++
        return "token-for:$user"
    }
}

/** Records what the system call UI is told, with the thread it was told on. */
class RecordingUi : SystemCallUi {
    val reports = CopyOnWriteArrayList<String>()
    val threads = CopyOnWriteArrayList<String>()

    private fun record(what: String) {
        reports.add(what)
        threads.add(Thread.currentThread().name)
    }

    override fun reportIncomingCall(call: Call) = record("incoming ${call.callId} ${call.peerName}")
    override fun reportAndEndCall(call: Call?, reason: IncomingCallError) = record("and-end ${call?.callId} $reason")
    override fun reportIncomingCallError(systemCallId: String?, reason: IncomingCallError) =
        record("error $systemCallId $reason")
    override fun reportOutgoingCall(call: Call) = record("outgoing ${call.callId}")
    override fun reportCallState(call: Call) = record("state ${call.callId} ${call.state} ${call.endReason}")
}

/** Records events with the thread they arrived on. */
class RecordingListener : CallListener {
    val events = CopyOnWriteArrayList<Pair<CallEvent, String>>()
    override fun onEvent(event: CallEvent) {
        events.add(event to Thread.currentThread().name)
    }
}
