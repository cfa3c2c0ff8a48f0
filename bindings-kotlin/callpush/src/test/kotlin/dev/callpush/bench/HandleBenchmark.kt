package dev.callpush.bench

import dev.callpush.AccessTokenProvider
import dev.callpush.Call
import dev.callpush.CallEvent
import dev.callpush.CallListener
import dev.callpush.Client
import dev.callpush.HttpClient
import dev.callpush.HttpRequest
import dev.callpush.HttpResponse
import dev.callpush.IncomingCallError
import dev.callpush.Outcome
import dev.callpush.Platform
import dev.callpush.SystemCallUi
import dev.callpush.ClientConfig
import dev.callpush.inspectPush
import java.nio.file.Files
import java.security.KeyPairGenerator
import java.security.MessageDigest
import java.security.Signature
import java.util.Base64
import org.json.JSONObject

/**
 * Times, through Kotlin and JNA, per platform:
 * - `Client.handlePush` of a new ring push (decode, verify, dedupe, state, and the Kotlin system
 *   call UI and listener callbacks, which do nothing here);
 * - `inspectPush`, the same decision without a client and without callbacks;
 * - a call that does nothing (`installationId`): the fixed cost of one uniffi call.
 *
 * Compare with `cargo bench -p callpush-client --bench handle` (the `client` and `inspect_push` groups); the ratios
 * are recorded in docs/performance.md. Run with `bindings-kotlin/bench.sh`.
 */
fun main() {
    val signer = LocalSigner()
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
    val noTokens = object : AccessTokenProvider {
        override suspend fun accessToken(forceRefresh: Boolean) = "unused"
    }
    // The server knows none of these calls: each call's watch stops at once, leaving handlePush alone.
    val quietHttp = object : HttpClient {
        override suspend fun send(request: HttpRequest) =
            HttpResponse(404u, emptyMap(), """{"error":{"code":"not_found","message":""}}""".toByteArray())
    }
    println("median µs per call (p10 .. p90), batches of 500 after 2000 warm-up calls")
    println("platform  handlePush               inspectPush              no-op call")
    for (platform in Platform.entries) {
        val config = ClientConfig("http://127.0.0.1:9", Files.createTempDirectory("bench").toString(), platform)
            .copy(pinnedKeysJson = signer.jwk, userId = "bob")
        val client = Client(config, quietHttp, noTokens, quietUi, quietListener)
        val pushes = (0 until 12_000).map { signer.ring(platform, "bench-${platform.name}-$it", "bob", 3600) }
        val now = System.currentTimeMillis() / 1000
        val first = inspectPush(platform, pushes.first(), signer.jwk, now)
        check(first.outcome == Outcome.RING) { "the benchmark's pushes must ring: ${first.error?.message}" }
        pushes.take(2_000).forEach { client.handlePush(it); inspectPush(platform, it, signer.jwk, now) }
        val handle = timed(pushes.drop(2_000)) { client.handlePush(it) }
        val inspect = timed(pushes.drop(2_000)) { inspectPush(platform, it, signer.jwk, now) }
        val noop = timed(pushes.drop(2_000)) { client.installationId() }
        println("%-8s  %-23s  %-23s  %s".format(platform.name.lowercase(), handle, inspect, noop))
        client.close()
    }
}

/**
 * Signs ring pushes with the JDK's own Ed25519 (independent of the Rust core) and wraps them as
 * each platform hands them to the app, so the benchmark needs no server. The client trusts
 * [jwk] as a pinned key.
 */
private class LocalSigner {
    private val keys = KeyPairGenerator.getInstance("Ed25519").generateKeyPair()
    private val x = b64(keys.public.encoded.takeLast(32).toByteArray())
    private val kid = b64(MessageDigest.getInstance("SHA-256").digest("""{"crv":"Ed25519","kty":"OKP","x":"$x"}""".toByteArray()))
    val jwk: String = """{"kty":"OKP","crv":"Ed25519","x":"$x","kid":"$kid"}"""

    /** The push [platform] delivers for a call ringing [to]. */
    fun ring(platform: Platform, callId: String, to: String, ringSeconds: Long): String {
        val now = System.currentTimeMillis() / 1000
        val claims = JSONObject()
            .put("iss", "kotlin-bench").put("aud", to).put("jti", "$callId-ring").put("iat", now)
            .put("exp", now + ringSeconds).put("v", 1).put("evt", "ring").put("cid", callId)
            .put("from", JSONObject().put("id", "alice").put("name", "Alice Ødegård"))
            .put("video", true).put("data", JSONObject().put("room", "r-1"))
        val header = JSONObject().put("alg", "EdDSA").put("kid", kid).put("typ", "callpush+jwt")
        val input = b64(header.toString().toByteArray()) + "." + b64(claims.toString().toByteArray())
        val signature = Signature.getInstance("Ed25519").apply { initSign(keys.private); update(input.toByteArray()) }.sign()
        val jws = input + "." + b64(signature)
        val body = JSONObject().put("callpush", jws).toString()
        return when (platform) {
            Platform.HARMONY -> JSONObject().put("callId", "sys-1").put("data", body)
                .put("header", JSONObject().put("token", "MAMz")).toString()
            Platform.FCM -> JSONObject().put("callpush", jws).put("google.message_id", "0:1").toString()
            Platform.APNS -> JSONObject().put("aps", JSONObject()).put("callpush", jws).toString()
            Platform.WNS -> " $body\n"
        }
    }

    private fun b64(bytes: ByteArray): String = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes)
}

private fun timed(inputs: List<String>, call: (String) -> Unit): String {
    val perCall = inputs.chunked(500).map { batch ->
        val start = System.nanoTime()
        batch.forEach(call)
        (System.nanoTime() - start) / 1000.0 / batch.size
    }.sorted()
    return "%.1f (%.1f .. %.1f)".format(perCall[perCall.size / 2], perCall[perCall.size / 10], perCall[perCall.size * 9 / 10])
}
