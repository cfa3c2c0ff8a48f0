package dev.callpush

import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpServer
import java.net.InetSocketAddress
import java.security.KeyPairGenerator
import java.security.MessageDigest
import java.security.Signature
import java.util.Base64
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock
import org.json.JSONObject

/**
 * A small registrar speaking DESIGN §5 over real HTTP on loopback, with its own Ed25519 signer
 * (the JDK's, independent of the Rust core) standing in for the ring orchestrator and the push
 * provider: [ring] returns the push exactly as the platform would hand it to the app.
 *
 * Bearer tokens are `token-for:<user>`.
 */
class TestRegistrar : AutoCloseable {
    private val server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
    private val keys = KeyPairGenerator.getInstance("Ed25519").generateKeyPair()
    private val x = b64(keys.public.encoded.takeLast(32).toByteArray())
    val kid: String = b64(MessageDigest.getInstance("SHA-256")
        .digest("""{"crv":"Ed25519","kty":"OKP","x":"$x"}""".toByteArray()))
    /** The public key pushes are signed with, as a JWK. */
    val jwk: String get() = """{"kty":"OKP","crv":"Ed25519","x":"$x","kid":"$kid"}"""
    private val lock = ReentrantLock()
    private val changed = lock.newCondition()
    private val calls = HashMap<String, JSONObject>()
    val installations = ConcurrentHashMap<String, JSONObject>()
    val requests = CopyOnWriteArrayList<Pair<String, String>>()
    val url: String get() = "http://127.0.0.1:${server.address.port}"

    init {
        server.executor = Executors.newCachedThreadPool()
        server.createContext("/") { exchange -> exchange.use { route(it) } }
        server.start()
    }

    override fun close() {
        server.stop(0)
        (server.executor as java.util.concurrent.ExecutorService).shutdownNow()
    }

    /** Starts a call ringing and returns the push [platform] delivers for it. */
    fun ring(platform: Platform, callId: String, to: String, ringSeconds: Long = 30): String {
        lock.withLock { calls[callId] = JSONObject().put("call_id", callId).put("state", "ringing") }
        val now = System.currentTimeMillis() / 1000
        val claims = JSONObject()
            .put("iss", "kotlin-test").put("aud", to).put("jti", "$callId-ring").put("iat", now)
            .put("exp", now + ringSeconds).put("v", 1).put("evt", "ring").put("cid", callId)
            .put("from", JSONObject().put("id", "alice").put("name", "Alice Ødegård"))
            .put("video", true).put("data", JSONObject().put("room", "r-1"))
        return envelope(platform, sign(claims))
    }

    /** Changes a call's state, waking its long-polls. */
    fun setCall(callId: String, state: String, reason: String? = null, answeredBy: String? = null) {
        lock.withLock {
            calls[callId] = JSONObject().put("call_id", callId).put("state", state)
                .put("reason", reason ?: JSONObject.NULL).put("answered_by", answeredBy ?: JSONObject.NULL)
            changed.signalAll()
        }
    }

    fun callState(callId: String): String? = lock.withLock { calls[callId]?.getString("state") }

    private fun sign(claims: JSONObject): String {
        val header = JSONObject().put("alg", "EdDSA").put("kid", kid).put("typ", "callpush+jwt")
        val input = b64(header.toString().toByteArray()) + "." + b64(claims.toString().toByteArray())
        val signer = Signature.getInstance("Ed25519").apply { initSign(keys.private); update(input.toByteArray()) }
        return input + "." + b64(signer.sign())
    }

    private fun envelope(platform: Platform, jws: String): String {
        val body = JSONObject().put("callpush", jws).toString()
        return when (platform) {
            Platform.HARMONY -> JSONObject().put("callId", "sys-1").put("data", body)
                .put("header", JSONObject().put("token", "MAMz")).toString()
            Platform.FCM -> JSONObject().put("callpush", jws).put("google.message_id", "0:1").toString()
            Platform.APNS -> JSONObject().put("aps", JSONObject()).put("callpush", jws).toString()
            Platform.WNS -> " $body\n"
        }
    }

    private fun route(exchange: HttpExchange) {
        val method = exchange.requestMethod
        val path = exchange.requestURI.path
        requests.add(method to path)
        val user = exchange.requestHeaders.getFirst("Authorization")?.removePrefix("Bearer token-for:")
            ?.takeIf { it != exchange.requestHeaders.getFirst("Authorization") }
        if (user == null) return respond(exchange, 401, error("unauthorized", "missing or bad bearer token"))
        val body = exchange.requestBody.readBytes().toString(Charsets.UTF_8).ifEmpty { "{}" }.let(::JSONObject)
        val parts = path.trim('/').split('/')
        when {
            method == "PUT" && parts.size == 3 && parts[1] == "installations" -> {
                val ttl = body.getLong("ttl_seconds")
                if (ttl < 300) return respond(exchange, 400, error("invalid_ttl", "ttl_seconds below 300"))
                installations[parts[2]] = body.put("user", user)
                val now = System.currentTimeMillis() / 1000
                val jwk = JSONObject().put("kty", "OKP").put("crv", "Ed25519").put("x", x).put("kid", kid)
                respond(exchange, 200, JSONObject().put("installation_id", parts[2]).put("expires_at", now + ttl)
                    .put("server_time", now).put("signing_keys", listOf(jwk)).put("user_id", user))
            }
            method == "DELETE" && parts.size == 3 && parts[1] == "installations" ->
                if (installations.remove(parts[2]) != null) respond(exchange, 204, null)
                else respond(exchange, 404, error("not_found", "no such installation"))
            method == "GET" && parts.size == 3 && parts[1] == "calls" -> {
                val wait = exchange.requestURI.query?.substringAfter("wait=", "0")?.toLongOrNull() ?: 0
                val status = lock.withLock {
                    val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(wait)
                    while (calls[parts[2]]?.getString("state") == "ringing") {
                        val left = deadline - System.nanoTime()
                        if (left <= 0) break
                        changed.awaitNanos(left)
                    }
                    calls[parts[2]]
                }
                if (status == null) respond(exchange, 404, error("not_found", "no such call"))
                else respond(exchange, 200, status)
            }
            method == "POST" && parts.size == 4 && parts[1] == "calls" -> {
                val callId = parts[2]
                val current = lock.withLock { calls[callId] }
                    ?: return respond(exchange, 404, error("not_found", "no such call"))
                if (current.getString("state") != "ringing") {
                    return respond(exchange, 409, error("call_not_ringing", "the call no longer rings").put("call", current))
                }
                if (parts[3] == "answer") setCall(callId, "answered", answeredBy = body.getString("installation_id"))
                else setCall(callId, "declined")
                respond(exchange, 200, lock.withLock { calls[callId] })
            }
            else -> respond(exchange, 404, error("not_found", "no route for $method $path"))
        }
    }

    private fun error(code: String, message: String) =
        JSONObject().put("error", JSONObject().put("code", code).put("message", message))

    private fun respond(exchange: HttpExchange, status: Int, body: JSONObject?) {
        val bytes = body?.toString()?.toByteArray() ?: ByteArray(0)
        exchange.responseHeaders.add("Content-Type", "application/json")
        exchange.sendResponseHeaders(status, if (bytes.isEmpty()) -1 else bytes.size.toLong())
        if (bytes.isNotEmpty()) exchange.responseBody.use { it.write(bytes) }
    }

    private fun b64(bytes: ByteArray): String = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes)
}
