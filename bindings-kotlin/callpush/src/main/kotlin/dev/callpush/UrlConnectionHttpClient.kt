package dev.callpush

import java.io.IOException
import java.net.HttpURLConnection
import java.net.SocketTimeoutException
import java.net.URI
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runInterruptible

/**
 * [HttpClient] on `java.net.HttpURLConnection`: the platform's own stack, so Android's proxy,
 * VPN and network-security configuration apply, and the library carries no HTTP code.
 */
class UrlConnectionHttpClient : HttpClient {
    override suspend fun send(request: HttpRequest): HttpResponse = runInterruptible(Dispatchers.IO) {
        val connection = try {
            URI(request.url).toURL().openConnection() as HttpURLConnection
        } catch (e: Exception) {
            throw HttpException.Network("cannot open ${request.method} request: ${e.message}")
        }
        try {
            connection.requestMethod = request.method
            connection.connectTimeout = request.timeoutMs.toInt()
            connection.readTimeout = request.timeoutMs.toInt()
            connection.instanceFollowRedirects = false
            connection.useCaches = false
            for ((name, value) in request.headers) connection.setRequestProperty(name, value)
            val body = request.body
            if (body != null) {
                connection.doOutput = true
                connection.setFixedLengthStreamingMode(body.size)
                connection.outputStream.use { it.write(body) }
            }
            val status = connection.responseCode
            val stream = if (status >= 400) connection.errorStream else connection.inputStream
            val bytes = stream?.use { it.readBytes() } ?: ByteArray(0)
            val headers = connection.headerFields
                .filterKeys { it != null }
                .mapValues { (_, values) -> values.joinToString(", ") }
            HttpResponse(status.toUShort(), headers, bytes)
        } catch (e: SocketTimeoutException) {
            throw HttpException.Timeout("${request.method} timed out after ${request.timeoutMs} ms")
        } catch (e: IOException) {
            throw HttpException.Network("${request.method} failed: ${e.javaClass.simpleName}: ${e.message}")
        } finally {
            connection.disconnect()
        }
    }
}
