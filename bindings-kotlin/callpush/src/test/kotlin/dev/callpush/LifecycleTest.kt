package dev.callpush

import java.nio.file.Files
import kotlin.test.AfterTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

/**
 * The whole lifecycle through the Kotlin API against a real local HTTP registrar:
 * register → ring → answer / decline / cancel / timeout → unregister, token rotation, typed errors,
 * and callbacks on Rust threads.
 */
class LifecycleTest {
    private val registrar = TestRegistrar()
    private val ui = RecordingUi()
    private val dataDir = Files.createTempDirectory("callpush-kotlin").toString()
    private val opened = mutableListOf<AutoCloseable>()

    @AfterTest
    fun tearDown() {
        opened.forEach { it.close() }
        registrar.close()
    }

    private fun callPush(platform: Platform = Platform.FCM, user: String = "bob"): CallPush =
        CallPush.create(ClientConfig(registrar.url, dataDir, platform), Tokens(user), ui).also { opened.add(it) }

    private suspend inline fun <reified T : CallEvent> Flow<CallEvent>.next(): T =
        withTimeout(10_000) { first { it is T } as T }

    @Test
    fun `register, ring, answer, connect, hang up, unregister`() = runBlocking {
        val push = callPush(Platform.HARMONY)
        val registration = push.client.registerPush("MAMzLg0123456789aZW", RegisterPushOptions(ttlSeconds = 3600u))
        assertEquals(push.client.installationId(), registration.installationId)
        assertEquals("bob", registration.userId)
        assertEquals("MAMzLg0123456789aZW", registrar.installations[registration.installationId]!!.getString("token"))
        assertIs<CallEvent.RegistrationChanged>(push.events.next<CallEvent.RegistrationChanged>())

        val outcome = push.client.handlePush(registrar.ring(Platform.HARMONY, "call-1", "bob"))
        assertEquals(Outcome.RING, outcome.outcome)
        assertEquals("sys-1", outcome.call?.systemCallId)
        assertEquals("incoming call-1 Alice Ødegård", ui.reports.first())
        val incoming = push.events.next<CallEvent.Incoming>()
        assertEquals(mapOf("room" to "r-1"), incoming.call.data)

        val answered = push.client.answer("call-1")
        assertEquals(CallState.ANSWERED, answered.state)
        assertEquals("answered", registrar.callState("call-1"))
        push.client.mediaConnected("call-1")
        val ended = push.client.hangUp("call-1")
        assertEquals(EndReason.HUNG_UP, ended.endReason)
        assertEquals(
            listOf("state call-1 ANSWERED null", "state call-1 ACTIVE null", "state call-1 ENDED HUNG_UP"),
            ui.reports.filter { it.startsWith("state") },
        )

        push.client.unregisterPush()
        assertTrue(registrar.installations.isEmpty())
        assertNull(push.client.registration())
    }

    @Test
    fun `decline ends the call here and on the server`() = runBlocking {
        val push = callPush()
        push.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        push.client.handlePush(registrar.ring(Platform.FCM, "call-2", "bob"))
        assertEquals(EndReason.DECLINED, push.client.decline("call-2").endReason)
        assertEquals("declined", registrar.callState("call-2"))
    }

    @Test
    fun `a cancel learned by long-poll arrives on a Rust thread`() = runBlocking {
        val listener = RecordingListener()
        val client = Client(ClientConfig(registrar.url, dataDir, Platform.WNS), UrlConnectionHttpClient(), Tokens("bob"), ui, listener)
        opened.add(client)
        client.registerPush("https://wns2-by3p.notify.windows.com/?token=AwYAAABa", RegisterPushOptions())
        assertEquals(Outcome.RING, client.handlePush(registrar.ring(Platform.WNS, "call-3", "bob")).outcome)
        registrar.setCall("call-3", "cancelled", reason = "caller_cancelled")
        val (event, thread) = withTimeout(10_000) {
            while (listener.events.none { it.first is CallEvent.Cancelled }) kotlinx.coroutines.delay(20)
            listener.events.first { it.first is CallEvent.Cancelled }
        }
        assertEquals(CancelReason.CALLER_CANCELLED, (event as CallEvent.Cancelled).reason)
        // The long-poll runs on the core's own Rust thread, which JNA attaches to the JVM for the call.
        val testThread = Thread.currentThread().name
        assertTrue(thread != testThread && !thread.startsWith("DefaultDispatcher") && !thread.startsWith("pool-"), thread)
        assertEquals(EndReason.CALLER_CANCELLED, client.call("call-3")?.endReason)
    }

    @Test
    fun `a call nobody answers ends at its deadline as missed`() = runBlocking {
        val push = callPush()
        push.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        push.client.handlePush(registrar.ring(Platform.FCM, "call-4", "bob", ringSeconds = 2))
        val missed = push.events.next<CallEvent.Missed>()
        assertEquals("call-4", missed.call.callId)
        assertTrue(missed.appMessageId.startsWith("missed-"))
        assertEquals(EndReason.MISSED, push.client.call("call-4")?.endReason)
    }

    @Test
    fun `a duplicate push never rings twice and APNs reports and ends it`() = runBlocking {
        val push = callPush(Platform.APNS)
        push.client.registerPush("ab".repeat(32), RegisterPushOptions(apnsEnvironment = ApnsEnvironment.SANDBOX))
        val raw = registrar.ring(Platform.APNS, "call-5", "bob")
        assertEquals(Outcome.RING, push.client.handlePush(raw).outcome)
        val again = push.client.handlePush(raw)
        assertEquals(Outcome.DUPLICATE, again.outcome)
        assertEquals(SystemReport.REPORT_AND_END, again.report)
        assertEquals("and-end call-5 LINE_BUSY", ui.reports.last())
    }

    @Test
    fun `a push for another user is refused with an error event`() = runBlocking {
        val push = callPush()
        push.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        val outcome = push.client.handlePushData(mapOf("callpush" to extractJws(registrar.ring(Platform.FCM, "call-6", "carol"))))
        assertEquals(Outcome.REJECTED, outcome.outcome)
        assertEquals(RejectionKind.WRONG_AUDIENCE, outcome.error?.kind)
        assertEquals(ErrorKind.WRONG_AUDIENCE, push.events.next<CallEvent.Error>().error.kind)
    }

    @Test
    fun `token rotation replaces the token under the same installation`() = runBlocking {
        val push = callPush()
        val first = push.client.registerPush("fcm-token-aaaaaaaaaa", RegisterPushOptions())
        val renewed = push.client.refresh("fcm-token-bbbbbbbbbb")
        assertIs<RefreshOutcome.Renewed>(renewed)
        assertEquals(first.installationId, renewed.registration.installationId)
        assertEquals("fcm-token-bbbbbbbbbb", registrar.installations[first.installationId]!!.getString("token"))
        assertEquals(1, registrar.installations.size)
        assertIs<RefreshOutcome.NotDue>(push.client.refresh(null))
        assertNotNull(push.client.nextWakeup())
    }

    @Test
    fun `errors are typed exceptions`() = runBlocking {
        val push = callPush(Platform.WNS)
        assertFailsWith<CallpushException.InvalidToken> {
            push.client.registerPush("https://evil.example.com/?token=x", RegisterPushOptions())
        }
        assertFailsWith<CallpushException.InvalidArgument> {
            push.client.registerPush("https://a.notify.windows.com/?t=1", RegisterPushOptions(ttlSeconds = 10u))
        }
        assertFailsWith<CallpushException.CallNotFound> { push.client.answer("nope") }
        assertFailsWith<CallpushException.NotRegistered> { push.client.unregisterPush() }
        registrar.close()
        assertFailsWith<CallpushException.Network> {
            push.client.registerPush("https://a.notify.windows.com/?t=1", RegisterPushOptions())
        }
    }

    @Test
    fun `a restarted client keeps its installation and dedupes across the restart`() = runBlocking {
        val first = callPush()
        first.client.registerPush("fcm-token-1234567890", RegisterPushOptions())
        val raw = registrar.ring(Platform.FCM, "call-7", "bob")
        assertEquals(Outcome.RING, first.client.handlePush(raw).outcome)
        val id = first.client.installationId()
        first.close()
        opened.remove(first)
        val second = callPush()
        assertEquals(id, second.client.installationId())
        assertEquals(Outcome.DUPLICATE, second.client.handlePush(raw).outcome)
    }

    private fun extractJws(fcmJson: String): String = org.json.JSONObject(fcmJson).getString("callpush")
}
