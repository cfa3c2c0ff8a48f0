package dev.callpush

import java.io.File
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import kotlin.test.fail
import org.json.JSONObject

/** Every shared vector in tests/vectors, through the core as Kotlin apps call it. */
class VectorsTest {
    private val dir = File(System.getProperty("callpush.vectors") ?: "../../tests/vectors")

    @Test
    fun `every vector reaches its expected decision`() {
        val files = dir.listFiles { f -> f.name.endsWith(".json") }!!.sortedBy { it.name }
        assertTrue(files.size >= 145, "vectors found in $dir: ${files.size}")
        val failures = files.mapNotNull { file ->
            val vector = JSONObject(file.readText())
            val platform = Platform.valueOf(vector.getString("platform").uppercase())
            // `device_key`, the private X25519 JWK a wire v2 push is sealed to: absent on v1 vectors.
            val deviceKey = vector.optJSONObject("device_key")?.toString()
            val decision = inspectPush(
                platform, vector.getString("raw"), vector.getJSONObject("keys").toString(), vector.getLong("now"), deviceKey,
            )
            val actual = toJson(decision)
            val expected = vector.getJSONObject("expected")
            if (actual.similar(expected)) null else "${file.name}:\n  expected $expected\n  actual   $actual"
        }
        if (failures.isNotEmpty()) fail("${failures.size} of ${files.size} vectors failed:\n" + failures.joinToString("\n"))
    }

    @Test
    fun `an unusable key set is a typed error`() {
        val e = runCatching { inspectPush(Platform.FCM, "{}", "{\"kty\":\"RSA\"}", 0) }.exceptionOrNull()
        assertTrue(e is CallpushException.InvalidKey, "got $e")
    }

    /** The decision in the shape of the vectors (the `inspect` JSON, errors by kind). */
    private fun toJson(d: HandleOutcome): JSONObject {
        val out = JSONObject().put("outcome", d.outcome.name.lowercase()).put("report", d.report.name.lowercase())
        d.call?.let { c ->
            out.put("call", JSONObject()
                .put("call_id", c.callId).put("caller_id", c.callerId).put("caller_name", c.callerName ?: JSONObject.NULL)
                .put("video", c.video).put("callee", c.callee).put("issued_at", c.issuedAt).put("expires_at", c.expiresAt)
                .put("reason", c.reason?.name?.lowercase() ?: JSONObject.NULL)
                .put("system_call_id", c.systemCallId ?: JSONObject.NULL)
                .put("data", JSONObject(c.data)))
        }
        d.error?.let { e ->
            assertTrue(e.message.isNotEmpty(), "errors carry a message")
            out.put("error", JSONObject().put("kind", e.kind.name.lowercase()))
        }
        return out
    }
}
