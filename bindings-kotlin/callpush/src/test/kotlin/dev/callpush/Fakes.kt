package dev.callpush

import java.net.URI
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.delay

/** The app user's bearer token for the server, from [token]; counts forced refreshes. */
class Tokens(private val token: () -> String) : AccessTokenProvider {
    @Volatile var forced = 0
    override suspend fun accessToken(forceRefresh: Boolean): String {
        if (forceRefresh) forced++
        return token()
    }
}

/**
 * A phone in Doze: its own connection gets nowhere, so a ringing call's status long-polls time
 * out, while high-priority pushes still arrive. Every other request goes through [http].
 */
class StalledLongPolls(private val http: HttpClient = UrlConnectionHttpClient()) : HttpClient {
    @Volatile var stalled = 0
    override suspend fun send(request: HttpRequest): HttpResponse {
        if (request.method == "GET" && URI(request.url).path.startsWith("/v1/calls/")) {
            stalled++
            delay(request.timeoutMs.toLong())
            throw HttpException.Timeout("GET timed out after ${request.timeoutMs} ms")
        }
        return http.send(request)
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
