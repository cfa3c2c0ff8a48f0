package dev.callpush.bench

import dev.callpush.Call
import dev.callpush.CallEvent
import dev.callpush.CallListener
import dev.callpush.Client
import dev.callpush.HttpClient
import dev.callpush.HttpRequest
import dev.callpush.HttpResponse
import dev.callpush.IncomingCallError
import dev.callpush.Platform
import dev.callpush.SystemCallUi
import dev.callpush.TestRegistrar
import dev.callpush.Tokens
import dev.callpush.ClientConfig
import dev.callpush.inspectPush
import java.nio.file.Files

/**
 * Times, through Kotlin and JNA, per platform:
 * - `Client.handlePush` of a new ring push (decode, verify, dedupe, state, and the Kotlin system
 *   call UI and listener callbacks, which do nothing here);
 * - `inspectPush`, the same decision without a client and without callbacks;
 * - a call that does nothing (`installationId`): the fixed cost of one uniffi call.
 *
 * Compare with `cargo bench -p callpush --bench handle` (the `client` and `inspect_push` groups); the ratios
 * are recorded in docs/performance.md. Run with `bindings-kotlin/bench.sh`.
 */
fun main() {
    val registrar = TestRegistrar()
    val quietListener = object : CallListener {
        override fun onEvent(event: CallEvent) {}
    }
    val quietUi = object : SystemCallUi {
        override fun reportIncomingCall(call: Call) {}
        override fun reportAndEndCall(call: Call?, reason: IncomingCallError) {}
        override fun reportIncomingCallError(systemCallId: String?, reason: IncomingCallError) {}
        override fun reportOutgoingCall(call: Call) {}
        override fun reportCallState(call: Call) {}
    }
    // The server knows none of these calls: each call's watch stops at once, leaving handlePush alone.
    val quietHttp = object : HttpClient {
        override suspend fun send(request: HttpRequest) =
            HttpResponse(404u, emptyMap(), """{"error":{"code":"not_found","message":""}}""".toByteArray())
    }
    println("median µs per call (p10 .. p90), batches of 500 after 2000 warm-up calls")
    println("platform  handlePush               inspectPush              no-op call")
    for (platform in Platform.entries) {
        val config = ClientConfig(registrar.url, Files.createTempDirectory("bench").toString(), platform)
            .copy(pinnedKeysJson = registrar.jwk, userId = "bob")
        val client = Client(config, quietHttp, Tokens("bob"), quietUi, quietListener)
        val pushes = (0 until 12_000).map { registrar.ring(platform, "bench-${platform.name}-$it", "bob", 3600) }
        val now = System.currentTimeMillis() / 1000
        pushes.take(2_000).forEach { client.handlePush(it); inspectPush(platform, it, registrar.jwk, now) }
        val handle = timed(pushes.drop(2_000)) { client.handlePush(it) }
        val inspect = timed(pushes.drop(2_000)) { inspectPush(platform, it, registrar.jwk, now) }
        val noop = timed(pushes.drop(2_000)) { client.installationId() }
        println("%-8s  %-23s  %-23s  %s".format(platform.name.lowercase(), handle, inspect, noop))
        client.close()
    }
    registrar.close()
}

private fun timed(inputs: List<String>, call: (String) -> Unit): String {
    val perCall = inputs.chunked(500).map { batch ->
        val start = System.nanoTime()
        batch.forEach(call)
        (System.nanoTime() - start) / 1000.0 / batch.size
    }.sorted()
    return "%.1f (%.1f .. %.1f)".format(perCall[perCall.size / 2], perCall[perCall.size / 10], perCall[perCall.size * 9 / 10])
}
