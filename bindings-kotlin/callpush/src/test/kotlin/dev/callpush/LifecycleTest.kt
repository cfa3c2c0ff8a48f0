package dev.callpush

import java.nio.file.Files
import java.nio.file.Path
import java.util.Base64
import javax.crypto.Mac
import javax.crypto.spec.SecretKeySpec
import kotlin.test.AfterTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.json.JSONObject

/**
 * The whole lifecycle through the Kotlin API against the real server (`callpush serve`, one per
 * test, see [CallpushServer]): register → ring → answer / decline / cancel / timeout →
 * unregister, other devices of the user, token rotation, typed errors, and callbacks on Rust
 * threads. Calls are rung through the server's backend API and every push a client handles is
 * one the server signed and sent.
 *
 * Every test is `runBlocking<Unit>`: JUnit skips, without a word, a test method that returns a value.
 */
class LifecycleTest {
    private val server = CallpushServer()
    private val ui = RecordingUi()
    private val dirs = mutableListOf<Path>()
    private val dataDir = newDataDir()
    private val opened = mutableListOf<AutoCloseable>()

    @AfterTest
    fun tearDown() {
        opened.asReversed().forEach { runCatching { it.close() } }
        server.close()
        dirs.forEach { it.toFile().deleteRecursively() }
    }

    private fun newDataDir(): String = Files.createTempDirectory("callpush-kotlin").also { dirs.add(it) }.toString()

    private fun callPush(
        platform: Platform = Platform.FCM,
        user: String = "bob",
        dir: String = dataDir,
        ui: SystemCallUi = this.ui,
        http: HttpClient = UrlConnectionHttpClient(),
    ): CallPush = CallPush.create(ClientConfig(server.url, dir, platform), server.tokens(user), ui, http).also { opened.add(it) }

    private suspend inline fun <reified T : CallEvent> Flow<CallEvent>.next(): T =
        withTimeout(10_000) { first { it is T } as T }

    /** Rings [callId] to [to] through the server, checks it rang exactly [installations], and returns the push the first got. */
    private fun ring(callId: String, vararg installations: String, to: String = "bob", ringSeconds: Int? = null): SentPush {
        val created = server.ring(callId, to, ringSeconds)
        val rung = created.getJSONArray("deliveries").map { (it as JSONObject).getString("installation_id") }
        assertEquals(installations.toSet(), rung.toSet(), "installations rung for $callId")
        return server.awaitPush(callId, installations.first())
    }

    @Test
    fun `register, ring, answer, connect, hang up, unregister`() = runBlocking<Unit> {
        val push = callPush(Platform.HARMONY)
        val registration = push.client.registerPush("MAMzLg0123456789aZW", RegisterPushOptions(ttlSeconds = 3600u))
        val id = push.client.installationId()
        assertEquals(id, registration.installationId)
        assertEquals("bob", registration.userId)
        assertEquals(3600L, registration.expiresAt - registration.serverTime)
        push.events.next<CallEvent.RegistrationChanged>()

        // The server rings the token just registered, over Push Kit; the system names the call.
        val sent = ring("call-1", id)
        assertEquals(Platform.HARMONY, sent.platform)
        assertTrue(sent.token.startsWith("MAMzLg"), sent.token)
        val outcome = push.client.handlePush(sent.raw(systemCallId = "sys-1"))
        assertEquals(Outcome.RING, outcome.outcome)
        assertEquals("sys-1", outcome.call?.systemCallId)
        assertEquals("incoming call-1 Alice Ødegård", ui.reports.first())
        val incoming = push.events.next<CallEvent.Incoming>()
        assertEquals(mapOf("room" to "r-1"), incoming.call.data)
        assertTrue(incoming.call.video)

        val answered = push.client.answer("call-1")
        assertEquals(CallState.ANSWERED, answered.state)
        val status = server.call("call-1")
        assertEquals("answered", status.getString("state"))
        assertEquals(id, status.getString("answered_by"))
        push.client.mediaConnected("call-1")
        val ended = push.client.hangUp("call-1")
        assertEquals(EndReason.HUNG_UP, ended.endReason)
        assertEquals(
            listOf("state call-1 ANSWERED null", "state call-1 ACTIVE null", "state call-1 ENDED HUNG_UP"),
            ui.reports.filter { it.startsWith("state") },
        )

        push.client.unregisterPush()
        assertNull(push.client.registration())
        // Withdrawn on the server: the next call to bob rings nothing.
        assertEquals(0, server.ring("call-1b").getJSONArray("deliveries").length())
    }

    @Test
    fun `answering on one device stops the user's other devices by a cancel push`() = runBlocking<Unit> {
        val phone = callPush(Platform.HARMONY)
        phone.client.registerPush("MAMzLg0123456789aZW", RegisterPushOptions())
        // The tablet dozes: its long-polls get nowhere, so only the cancel push can stop it ringing.
        val tabletUi = RecordingUi()
        val dozing = StalledLongPolls()
        val tablet = callPush(Platform.FCM, dir = newDataDir(), ui = tabletUi, http = dozing)
        tablet.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        val phoneId = phone.client.installationId()
        val tabletId = tablet.client.installationId()

        val rang = ring("call-8", phoneId, tabletId)
        assertEquals(Outcome.RING, phone.client.handlePush(rang.raw()).outcome)
        assertEquals(Outcome.RING, tablet.client.handlePush(server.awaitPush("call-8", tabletId).raw()).outcome)
        tablet.events.next<CallEvent.Incoming>()

        phone.client.answer("call-8")
        val cancel = server.awaitPush("call-8", tabletId, kind = "cancel")
        assertEquals(Platform.FCM, cancel.platform)
        val outcome = tablet.client.handlePush(cancel.raw())
        assertEquals(Outcome.CANCEL, outcome.outcome)
        assertEquals(CancelReason.ANSWERED_ELSEWHERE, outcome.call?.reason)
        assertEquals(CancelReason.ANSWERED_ELSEWHERE, tablet.events.next<CallEvent.Cancelled>().reason)
        assertEquals(EndReason.ANSWERED_ELSEWHERE, tablet.client.call("call-8")?.endReason)
        assertEquals("state call-8 ENDED ANSWERED_ELSEWHERE", tabletUi.reports.last())
        assertTrue(dozing.stalled > 0, "the tablet was watching the call")
        // The device that answered is not told to stop.
        assertEquals(listOf("ring"), server.pushes().filter { it.installationId == phoneId }.map { it.kind })
        assertEquals(CallState.ANSWERED, phone.client.call("call-8")?.state)
    }

    @Test
    fun `decline ends the call here and on the server`() = runBlocking<Unit> {
        val push = callPush()
        push.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        push.client.handlePush(ring("call-2", push.client.installationId()).raw())
        assertEquals(EndReason.DECLINED, push.client.decline("call-2").endReason)
        assertEquals("declined", server.call("call-2").getString("state"))
    }

    @Test
    fun `a cancel learned by long-poll arrives on a Rust thread`() = runBlocking<Unit> {
        val listener = RecordingListener()
        val client = Client(ClientConfig(server.url, dataDir, Platform.WNS), UrlConnectionHttpClient(), server.tokens("bob"), ui, listener)
        opened.add(client)
        client.registerPush("https://wns2-by3p.notify.windows.com/?token=AwYAAABa", RegisterPushOptions())
        val id = client.installationId()
        assertEquals(Outcome.RING, client.handlePush(ring("call-3", id).raw()).outcome)
        server.cancel("call-3")
        val (event, thread) = withTimeout(10_000) {
            while (listener.events.none { it.first is CallEvent.Cancelled }) delay(20)
            listener.events.first { it.first is CallEvent.Cancelled }
        }
        assertEquals(CancelReason.CALLER_CANCELLED, (event as CallEvent.Cancelled).reason)
        // The long-poll runs on the core's own Rust thread, which JNA attaches to the JVM for the call.
        val testThread = Thread.currentThread().name
        assertTrue(thread != testThread && !thread.startsWith("DefaultDispatcher") && !thread.startsWith("pool-"), thread)
        assertEquals(EndReason.CALLER_CANCELLED, client.call("call-3")?.endReason)

        // The cancel push WNS gets as well comes second and changes nothing.
        val cancel = server.awaitPush("call-3", id, kind = "cancel")
        assertEquals(Outcome.CANCEL, client.handlePush(cancel.raw()).outcome)
        assertEquals(1, listener.events.count { it.first is CallEvent.Cancelled })
    }

    @Test
    fun `a call nobody answers ends at its deadline as missed`() = runBlocking<Unit> {
        val push = callPush()
        push.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        // 5 s: the shortest ring the server allows.
        push.client.handlePush(ring("call-4", push.client.installationId(), ringSeconds = 5).raw())
        val missed = push.events.next<CallEvent.Missed>()
        assertEquals("call-4", missed.call.callId)
        assertTrue(missed.appMessageId.startsWith("missed-"))
        assertEquals(EndReason.MISSED, push.client.call("call-4")?.endReason)
        assertEquals("timeout", server.awaitCallState("call-4", "missed").getString("reason"))
    }

    @Test
    fun `a duplicate push never rings twice and APNs reports and ends it`() = runBlocking<Unit> {
        val push = callPush(Platform.APNS)
        push.client.registerPush("ab".repeat(32), RegisterPushOptions(apnsEnvironment = ApnsEnvironment.SANDBOX))
        val raw = ring("call-5", push.client.installationId()).raw()
        assertEquals(Outcome.RING, push.client.handlePush(raw).outcome)
        val again = push.client.handlePush(raw)
        assertEquals(Outcome.DUPLICATE, again.outcome)
        assertEquals(SystemReport.REPORT_AND_END, again.report)
        assertEquals("and-end call-5 LINE_BUSY", ui.reports.last())
    }

    @Test
    fun `a push for another user is refused with an error event`() = runBlocking<Unit> {
        val bob = callPush()
        bob.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        val carol = callPush(user = "carol", dir = newDataDir(), ui = RecordingUi())
        carol.client.registerPush("fcm-token-0987654321", RegisterPushOptions())
        val forCarol = ring("call-6", carol.client.installationId(), to = "carol")

        val outcome = bob.client.handlePushData(forCarol.data())
        assertEquals(Outcome.REJECTED, outcome.outcome)
        // Wire v2: the server sealed it to carol's device key, which bob's installation does not
        // hold, so it is refused before its audience is read (`WRONG_AUDIENCE` is for v1 pushes).
        assertEquals(RejectionKind.UNDECRYPTABLE, outcome.error?.kind)
        assertEquals(ErrorKind.UNDECRYPTABLE, bob.events.next<CallEvent.Error>().error.kind)
        // It was a good push, for carol.
        assertEquals(Outcome.RING, carol.client.handlePushData(forCarol.data()).outcome)
    }

    @Test
    fun `token rotation replaces the token under the same installation`() = runBlocking<Unit> {
        val push = callPush()
        val first = push.client.registerPush("aaaaaa-fcm-token-1", RegisterPushOptions())
        val renewed = push.client.refresh("bbbbbb-fcm-token-2")
        assertIs<RefreshOutcome.Renewed>(renewed)
        assertEquals(first.installationId, renewed.registration.installationId)
        assertEquals("bbbbbb-fcm-token-2", renewed.registration.token)
        // One installation, rung at the new token.
        assertTrue(ring("call-9", first.installationId).token.startsWith("bbbbbb"))
        assertIs<RefreshOutcome.NotDue>(push.client.refresh(null))
        assertNotNull(push.client.nextWakeup())
    }

    @Test
    fun `errors are typed exceptions`() = runBlocking<Unit> {
        val push = callPush(Platform.WNS)
        assertFailsWith<CallpushException.InvalidToken> {
            push.client.registerPush("https://evil.example.com/?token=x", RegisterPushOptions())
        }
        assertFailsWith<CallpushException.InvalidArgument> {
            push.client.registerPush("https://a.notify.windows.com/?t=1", RegisterPushOptions(ttlSeconds = 10u))
        }
        assertFailsWith<CallpushException.CallNotFound> { push.client.answer("nope") }
        assertFailsWith<CallpushException.NotRegistered> { push.client.unregisterPush() }

        // A token the server does not accept: asked for afresh once, then refused.
        val foreign = Tokens { hs256(JSONObject().put("sub", "bob").put("exp", System.currentTimeMillis() / 1000 + 600), "a secret this server has never seen") }
        val stranger = CallPush.create(ClientConfig(server.url, newDataDir(), Platform.FCM), foreign, RecordingUi()).also { opened.add(it) }
        assertFailsWith<CallpushException.Unauthorized> {
            stranger.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        }
        assertEquals(1, foreign.forced)

        server.stop()
        assertFailsWith<CallpushException.Network> {
            push.client.registerPush("https://a.notify.windows.com/?t=1", RegisterPushOptions())
        }
    }

    @Test
    fun `a restarted client keeps its installation and dedupes across the restart`() = runBlocking<Unit> {
        val first = callPush()
        first.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        val id = first.client.installationId()
        val raw = ring("call-7", id).raw()
        assertEquals(Outcome.RING, first.client.handlePush(raw).outcome)
        first.close()
        opened.remove(first)
        val second = callPush()
        assertEquals(id, second.client.installationId())
        assertEquals(Outcome.DUPLICATE, second.client.handlePush(raw).outcome)
    }

    /** A JWT signed with HS256 and [secret]. */
    private fun hs256(claims: JSONObject, secret: String): String {
        fun b64(bytes: ByteArray) = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes)
        val input = b64("""{"alg":"HS256","typ":"JWT"}""".toByteArray()) + "." + b64(claims.toString().toByteArray())
        val mac = Mac.getInstance("HmacSHA256").apply { init(SecretKeySpec(secret.toByteArray(), "HmacSHA256")) }
        return input + "." + b64(mac.doFinal(input.toByteArray()))
    }
}
