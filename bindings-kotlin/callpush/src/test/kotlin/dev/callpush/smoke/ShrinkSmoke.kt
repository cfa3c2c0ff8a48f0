package dev.callpush.smoke

import dev.callpush.AccessTokenProvider
import dev.callpush.Call
import dev.callpush.CallEvent
import dev.callpush.CallPush
import dev.callpush.CallState
import dev.callpush.CallpushException
import dev.callpush.ClientConfig
import dev.callpush.EndReason
import dev.callpush.HttpClient
import dev.callpush.HttpRequest
import dev.callpush.HttpResponse
import dev.callpush.IncomingCallError
import dev.callpush.Outcome
import dev.callpush.Platform
import dev.callpush.RegisterPushOptions
import dev.callpush.SystemCallUi
import dev.callpush.inspectPush
import java.net.URI
import java.nio.file.Files
import java.security.KeyPairGenerator
import java.security.MessageDigest
import java.security.Signature
import java.util.Base64
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlin.system.exitProcess
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

/**
 * What an app does with callpush, as one program, for bindings-kotlin/check-package.sh: it runs
 * against the AAR's classes.jar and JNA after ProGuard has shrunk and obfuscated them with the
 * AAR's consumer rules (proguard.txt), and fails if those rules dropped or renamed anything JNA
 * finds by name. It covers every kind of FFI crossing the bindings make:
 *
 * - `inspectPush` of a shared vector: RustBuffer in and out, UniffiRustCallStatus, the checksums;
 * - a `Client` made by `CallPush.create` with Kotlin implementations of all its callback
 *   interfaces (vtable structures, Callback objects): `handlePush` of a ring push signed here
 *   calls the SystemCallUi and the listener from Rust, the event comes out of `CallPush.events`;
 * - `endCall`: a synchronous call that returns a record and calls back into the UI;
 * - `registerPush`: a suspend call (Rust future, continuation callback) whose Rust side awaits
 *   the Kotlin AccessTokenProvider and HttpClient (foreign futures); two 401s make it ask for a
 *   fresh token and then throw the typed `CallpushException.Unauthorized`.
 *
 *   ShrinkSmoke <platform> <raw> <keys json> <now> <expected outcome> <expected call id>
 *
 * Prints `smoke: ok ...` lines; exits 1 with `smoke: FAILED ...` on the first failure.
 */
fun main(args: Array<String>) {
    try {
        require(args.size == 6) { "usage: ShrinkSmoke <platform> <raw> <keys> <now> <outcome> <call id>" }
        run(args)
    } catch (e: Throwable) {
        System.err.println("smoke: FAILED: $e")
        e.printStackTrace()
        exitProcess(1)
    }
    // The client's native threads would otherwise keep the JVM alive for a moment.
    exitProcess(0)
}

private fun expect(condition: Boolean, what: String) {
    if (!condition) throw AssertionError(what)
    println("smoke: ok $what")
}

private fun run(args: Array<String>) {
    val (platformName, raw, keys, now, outcome, callId) = args.toList()
    // Not Platform.valueOf: ProGuard's enum optimizations break Enum.valueOf (R8's do not); this
    // program is about JNA, not about ProGuard.
    val platform = Platform.entries.single { it.name.equals(platformName, ignoreCase = true) }

    // 1. A shared vector, without a client.
    val decision = inspectPush(platform, raw, keys, now.toLong())
    expect(
        decision.outcome.name.equals(outcome, ignoreCase = true) && decision.call?.callId == callId,
        "inspectPush of the vector: ${decision.outcome} ${decision.call?.callId}",
    )

    // 2. A client with every callback interface implemented in Kotlin.
    val signer = LocalSigner()
    val ui = RecordingUi()
    val tokens = CountingTokens()
    val http = RefusingHttp()
    val dataDir = Files.createTempDirectory("callpush-smoke").toFile()
    val config = ClientConfig("http://127.0.0.1:9", dataDir.path, Platform.FCM)
        .copy(pinnedKeysJson = signer.jwk, userId = "bob")
    try {
        smokeClient(config, signer, ui, tokens, http)
    } finally {
        dataDir.deleteRecursively()
    }
}

private fun smokeClient(config: ClientConfig, signer: LocalSigner, ui: RecordingUi, tokens: CountingTokens, http: RefusingHttp) {
    CallPush.create(config, tokens, ui, http).use { callPush ->
        val client = callPush.client
        expect(client.installationId().isNotEmpty(), "Client created; installation id ${client.installationId()}")

        val handled = client.handlePush(signer.ringFcm("smoke-call-1", "bob"))
        expect(handled.outcome == Outcome.RING, "handlePush of a signed ring push: ${handled.outcome}")
        expect(ui.reports.contains("incoming smoke-call-1"), "SystemCallUi.reportIncomingCall called from Rust: ${ui.reports}")
        val incoming = runBlocking {
            withTimeout(10_000) { callPush.events.filterIsInstance<CallEvent.Incoming>().first() }
        }
        expect(incoming.call.callId == "smoke-call-1", "CallListener event through CallPush.events: Incoming ${incoming.call.callId}")

        val ended = client.endCall("smoke-call-1", EndReason.FAILED)
        expect(ended.state == CallState.ENDED && ui.reports.any { it.startsWith("state smoke-call-1 ENDED") }, "endCall: ${ended.state}, reported to the UI")

        val refused = runCatching { runBlocking { withTimeout(30_000) { client.registerPush("fcm-token", RegisterPushOptions()) } } }
            .exceptionOrNull()
        expect(refused is CallpushException.Unauthorized, "registerPush through the Kotlin HttpClient: CallpushException.Unauthorized (${refused?.message})")
        expect(tokens.calls.get() >= 2 && tokens.forced.get() == 1, "AccessTokenProvider awaited from Rust: ${tokens.calls} calls, ${tokens.forced} forced")
        expect(http.installations.get() == 2, "HttpClient awaited from Rust: ${http.installations} PUTs")
    }
}

private class CountingTokens : AccessTokenProvider {
    val calls = AtomicInteger()
    val forced = AtomicInteger()
    override suspend fun accessToken(forceRefresh: Boolean): String {
        calls.incrementAndGet()
        if (forceRefresh) forced.incrementAndGet()
        return "token-${calls.get()}"
    }
}

/** Knows no call (a ringing call's watch stops at once) and refuses every token. */
private class RefusingHttp : HttpClient {
    val installations = AtomicInteger()
    override suspend fun send(request: HttpRequest): HttpResponse {
        if (URI(request.url).path.startsWith("/v1/installations/")) {
            installations.incrementAndGet()
            return HttpResponse(401u, mapOf("Content-Type" to "application/json"), """{"error":{"code":"unauthorized","message":"no"}}""".toByteArray())
        }
        return HttpResponse(404u, mapOf("Content-Type" to "application/json"), """{"error":{"code":"not_found","message":""}}""".toByteArray())
    }
}

private class RecordingUi : SystemCallUi {
    val reports = CopyOnWriteArrayList<String>()
    override fun reportIncomingCall(call: Call) { reports.add("incoming ${call.callId}") }
    override fun reportAndEndCall(call: Call?, reason: IncomingCallError) { reports.add("and-end ${call?.callId} $reason") }
    override fun reportIncomingCallError(systemCallId: String?, reason: IncomingCallError) { reports.add("error $systemCallId $reason") }
    override fun reportOutgoingCall(call: Call) { reports.add("outgoing ${call.callId}") }
    override fun reportCallState(call: Call) { reports.add("state ${call.callId} ${call.state} ${call.endReason}") }
}

/** Signs ring pushes with the JDK's Ed25519; the client trusts [jwk] as a pinned key. */
private class LocalSigner {
    private val keys = KeyPairGenerator.getInstance("Ed25519").generateKeyPair()
    private val x = b64(keys.public.encoded.takeLast(32).toByteArray())
    private val kid = b64(MessageDigest.getInstance("SHA-256").digest("""{"crv":"Ed25519","kty":"OKP","x":"$x"}""".toByteArray()))
    val jwk: String = """{"kty":"OKP","crv":"Ed25519","x":"$x","kid":"$kid"}"""

    /** The FCM data message (as JSON) of a call ringing [to] for a minute. */
    fun ringFcm(callId: String, to: String): String {
        val now = System.currentTimeMillis() / 1000
        val claims = """{"iss":"smoke","aud":"$to","jti":"$callId-ring","iat":$now,"exp":${now + 60},"v":1,""" +
            """"evt":"ring","cid":"$callId","from":{"id":"alice","name":"Alice"},"video":false}"""
        val header = """{"alg":"EdDSA","kid":"$kid","typ":"callpush+jwt"}"""
        val input = b64(header.toByteArray()) + "." + b64(claims.toByteArray())
        val signature = Signature.getInstance("Ed25519").apply { initSign(keys.private); update(input.toByteArray()) }.sign()
        return """{"callpush":"$input.${b64(signature)}","google.message_id":"0:1"}"""
    }

    private fun b64(bytes: ByteArray): String = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes)
}

private operator fun <T> List<T>.component6(): T = this[5]
