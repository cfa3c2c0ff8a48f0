package dev.callpush

import java.io.IOException
import java.net.InetAddress
import java.net.ServerSocket
import java.net.URI
import java.net.http.HttpClient as JdkHttpClient
import java.net.http.HttpRequest as JdkHttpRequest
import java.net.http.HttpResponse as JdkHttpResponse
import java.nio.file.Files
import java.nio.file.Path
import java.security.SecureRandom
import java.time.Duration
import java.util.Base64
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import org.json.JSONObject

/**
 * The real callpush server, `callpush serve`, as a child process on loopback: its own SQLite
 * database, HS256 device-token secret and API key in a temporary directory, and the `file` sender,
 * which appends every push it sends to [pushesFile] instead of calling a provider.
 *
 * The test plays the app backend ([ring], [cancel], [call] with the API key) and the push
 * provider ([awaitPush] turns what the server sent into what the platform hands the app);
 * device bearer tokens come from the server's own `callpush token` ([tokens]).
 *
 * The binary is `callpush.server` (set by the pom to the copy `generate.sh` makes).
 */
class CallpushServer : AutoCloseable {
    val dir: Path = Files.createTempDirectory("callpush-server")
    val config: Path = dir.resolve("callpush.toml")
    val pushesFile: Path = dir.resolve("pushes.jsonl")
    private val log: Path = dir.resolve("server.log")
    private val http = JdkHttpClient.newBuilder()
        .version(JdkHttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build()
    private val secret: String =
        Base64.getUrlEncoder().withoutPadding().encodeToString(ByteArray(32).also { SecureRandom().nextBytes(it) })
    private val deviceTokens = ConcurrentHashMap<String, String>()
    private val stopOnExit = Thread { process?.destroyForcibly() }
    @Volatile private var process: Process? = null
    var port: Int = 0
        private set
    val url: String get() = "http://127.0.0.1:$port"

    init {
        Runtime.getRuntime().addShutdownHook(stopOnExit)
        try {
            start()
        } catch (e: Throwable) {
            close()
            throw e
        }
    }

    /** Starts the server, on a new free port if the one picked was taken in the meantime. */
    private fun start() {
        check(Files.isExecutable(binary)) {
            "no callpush server at $binary: run the tests through Maven (generate.sh builds it) or set -Dcallpush.server"
        }
        var attempt = 0
        while (true) {
            port = ServerSocket(0, 1, InetAddress.getLoopbackAddress()).use { it.localPort }
            writeConfig()
            val started = ProcessBuilder(binary.toString(), "serve", "--config", config.toString())
                .directory(dir.toFile())
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .also { scrubEnvironment(it.environment()) }
                .start()
            process = started
            if (awaitHealthy(started)) return
            if (started.isAlive) {
                stop(graceful = false)
                error("callpush serve did not become healthy within ${START_TIMEOUT.seconds} s\n${log()}")
            }
            if (++attempt >= 5 || "listening on" !in log()) {
                error("callpush serve exited with ${started.exitValue()}\n${log()}")
            }
        }
    }

    private fun writeConfig() {
        Files.writeString(
            config,
            """
            listen = "127.0.0.1:$port"
            database_url = ${toml("sqlite://${dir.resolve("callpush.db")}")}
            database_connections = 4
            data_dir = ${toml(dir.toString())}
            api_keys = [${toml(API_KEY)}]

            [auth]
            hs256_secret = ${toml(secret)}

            [ring]
            default_ring_seconds = 30
            max_ring_seconds = 120
            concurrency = 8
            claim_batch = 16

            [sender]
            kind = "file"
            path = ${toml(pushesFile.toString())}
            """.trimIndent() + "\n",
        )
    }

    private fun awaitHealthy(process: Process): Boolean {
        val deadline = System.nanoTime() + START_TIMEOUT.toNanos()
        while (System.nanoTime() < deadline && process.isAlive) {
            try {
                val response = http.send(
                    JdkHttpRequest.newBuilder(URI("$url/healthz")).timeout(Duration.ofSeconds(1)).GET().build(),
                    JdkHttpResponse.BodyHandlers.ofString(),
                )
                if (response.statusCode() == 200) return true
            } catch (_: IOException) {
                // Not listening yet.
            }
            Thread.sleep(20)
        }
        return false
    }

    /** What the server logged (warnings and errors only: `CALLPUSH_LOG=warn`). */
    fun log(): String = if (Files.exists(log)) Files.readString(log) else ""

    /**
     * Stops the server; requests to it then fail. Gracefully: SIGTERM, and SIGKILL if it is still
     * running after two seconds — a graceful stop waits for the long-polls in flight, up to a
     * minute. Otherwise SIGKILL at once.
     */
    fun stop(graceful: Boolean = true) {
        val running = process ?: return
        if (graceful) running.destroy()
        if (!graceful || !running.waitFor(2, TimeUnit.SECONDS)) {
            running.destroyForcibly()
            running.waitFor(10, TimeUnit.SECONDS)
        }
        process = null
    }

    /** Kills the server (its database is thrown away) and deletes its directory. */
    override fun close() {
        stop(graceful = false)
        runCatching { Runtime.getRuntime().removeShutdownHook(stopOnExit) }
        val logged = log()
        if (logged.isNotBlank()) System.err.println("---- callpush serve ($dir) logged:\n$logged----")
        dir.toFile().deleteRecursively()
    }

    // ---- devices ----

    /** A device token for [user], minted by `callpush token` with this server's configuration. */
    fun token(user: String): String = deviceTokens.getOrPut(user) {
        val minted = ProcessBuilder(binary.toString(), "token", "--config", config.toString(), "--user", user)
            .also { scrubEnvironment(it.environment()) }
            .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start()
        val out = minted.inputStream.readBytes().toString(Charsets.UTF_8).trim()
        check(minted.waitFor(30, TimeUnit.SECONDS) && minted.exitValue() == 0 && out.isNotEmpty()) {
            "callpush token --user $user failed\n${log()}"
        }
        out
    }

    /** The app user's bearer tokens for the client. */
    fun tokens(user: String): Tokens = Tokens { token(user) }

    // ---- the app backend ----

    /**
     * `POST /v1/calls`: rings every live installation of [to]. Returns the server's answer, whose
     * `deliveries` name the installations rung.
     */
    fun ring(
        callId: String,
        to: String = "bob",
        ringSeconds: Int? = null,
        from: String = "alice",
        fromName: String? = "Alice Ødegård",
        video: Boolean = true,
        data: Map<String, String> = mapOf("room" to "r-1"),
    ): JSONObject {
        val body = JSONObject()
            .put("call_id", callId)
            .put("from", JSONObject().put("id", from).put("name", fromName ?: JSONObject.NULL))
            .put("to", listOf(to))
            .put("video", video)
            .put("data", JSONObject(data))
        ringSeconds?.let { body.put("ring_seconds", it) }
        return backend("POST", "/v1/calls", body, expect = 202)
    }

    /** `POST /v1/calls/{id}/cancel`: the caller hung up (or [reason]). */
    fun cancel(callId: String, reason: String? = null): JSONObject =
        backend("POST", "/v1/calls/$callId/cancel", JSONObject().apply { reason?.let { put("reason", it) } })

    /** `GET /v1/calls/{id}` with the API key: the call, its deliveries and timeline. */
    fun call(callId: String): JSONObject = backend("GET", "/v1/calls/$callId", null)

    /** Waits until the server has [callId] in [state] (its deadline sweep runs four times a second). */
    fun awaitCallState(callId: String, state: String, timeoutMs: Long = 10_000): JSONObject {
        val deadline = System.currentTimeMillis() + timeoutMs
        while (true) {
            val call = call(callId)
            if (call.getString("state") == state) return call
            check(System.currentTimeMillis() < deadline) { "$callId is still ${call.getString("state")}, not $state: $call" }
            Thread.sleep(50)
        }
    }

    private fun backend(method: String, path: String, body: JSONObject?, expect: Int = 200): JSONObject {
        val request = JdkHttpRequest.newBuilder(URI(url + path))
            .timeout(Duration.ofSeconds(10))
            .header("Authorization", "Bearer $API_KEY")
            .apply {
                if (body == null) {
                    method(method, JdkHttpRequest.BodyPublishers.noBody())
                } else {
                    header("Content-Type", "application/json")
                    method(method, JdkHttpRequest.BodyPublishers.ofString(body.toString()))
                }
            }
            .build()
        val response = http.send(request, JdkHttpResponse.BodyHandlers.ofString())
        check(response.statusCode() == expect) {
            "$method $path answered ${response.statusCode()}, not $expect: ${response.body()}\n${log()}"
        }
        return JSONObject(response.body())
    }

    // ---- the push provider ----

    /** Every push the server sent so far, oldest first. */
    fun pushes(): List<SentPush> =
        if (!Files.exists(pushesFile)) emptyList()
        else Files.readAllLines(pushesFile).filter { it.isNotBlank() }.map { SentPush(JSONObject(it)) }

    /** Waits for the server's [kind] push (`ring`, `cancel` or `missed`) of [callId] to [installationId]. */
    fun awaitPush(callId: String, installationId: String, kind: String = "ring", timeoutMs: Long = 10_000): SentPush {
        val deadline = System.currentTimeMillis() + timeoutMs
        while (true) {
            pushes().firstOrNull { it.callId == callId && it.installationId == installationId && it.kind == kind }
                ?.let { return it }
            check(System.currentTimeMillis() < deadline) {
                "no $kind push of $callId to $installationId within $timeoutMs ms; sent: ${pushes()}\n${log()}"
            }
            Thread.sleep(20)
        }
    }

    companion object {
        /** The `callpush` binary. */
        val binary: Path = Path.of(System.getProperty("callpush.server") ?: "target/server/callpush").toAbsolutePath()
        const val API_KEY = "kotlin-test-backend-key-0001"
        private val START_TIMEOUT: Duration = Duration.ofSeconds(30)

        /** A TOML basic string. */
        private fun toml(value: String): String =
            "\"" + value.replace("\\", "\\\\").replace("\"", "\\\"") + "\""

        /** Only `CALLPUSH_LOG` of the test's environment: other `CALLPUSH_*` variables override the configuration. */
        private fun scrubEnvironment(env: MutableMap<String, String>) {
            env.keys.removeIf { it.startsWith("CALLPUSH_") }
            env["CALLPUSH_LOG"] = "warn"
        }
    }
}

/** One line of the `file` sender: a push as the server handed it to the provider. */
class SentPush(val json: JSONObject) {
    val callId: String get() = json.getString("call_id")
    val installationId: String get() = json.getString("installation_id")
    val platform: Platform get() = Platform.valueOf(json.getString("platform").uppercase())
    /** `ring`, `cancel` or `missed`. */
    val kind: String get() = json.getString("kind")
    /** The push token, redacted as the server logs it (its first six characters and its length). */
    val token: String get() = json.getString("token")

    /** FCM: the data map `onMessageReceived` sees. */
    fun data(): Map<String, String> {
        val data = json.getJSONObject("payload").getJSONObject("data")
        return data.keySet().associateWith { data.getString(it) }
    }

    /**
     * The push as its platform hands it to the app: HarmonyOS the `receiveMessage('VoIP')` data
     * (the system's [systemCallId] and the server's extraData), FCM the data map as JSON, APNs
     * the PushKit payload, WNS the raw notification's content. Ring and cancel pushes only: a
     * `missed` push is a notification the system shows, never handed to the app.
     */
    fun raw(systemCallId: String = "sys-$callId"): String {
        check(kind != "missed") { "a missed-call notification is shown by the system, not handed to the app: $json" }
        val payload = json.getJSONObject("payload")
        return when (platform) {
            Platform.HARMONY -> JSONObject()
                .put("callId", systemCallId)
                .put("data", payload.getString("extraData"))
                .put("header", JSONObject().put("token", token))
                .toString()
            Platform.FCM -> payload.getJSONObject("data").toString()
            Platform.APNS, Platform.WNS -> payload.getString("body")
        }
    }

    override fun toString(): String = "$kind:$callId→$installationId"
}
