import Foundation

/// ``HttpClient`` on `URLSession`: the platform's own network stack, so the system's proxy, VPN
/// and App Transport Security settings apply, and the library carries no HTTP or TLS code.
///
/// Any HTTP status is an answer; only a request that got none throws: ``HttpError/Timeout(detail:)``
/// when it ran out of time, ``HttpError/Network(detail:)`` otherwise. Redirects are not followed
/// and nothing is cached or stored (no cookies), as the registrar API expects.
public final class URLSessionHttpClient: HttpClient, @unchecked Sendable {
    // @unchecked Sendable: both properties are immutable, and URLSession may be used from any
    // thread.
    private let session: URLSession
    private let ownsSession: Bool

    /// A client on its own ephemeral session, which follows no redirects.
    public init() {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.waitsForConnectivity = false
        session = URLSession(configuration: configuration, delegate: NoRedirects(), delegateQueue: nil)
        ownsSession = true
    }

    /// A client on `session`, which should not follow redirects (the registrar never sends one).
    public init(session: URLSession) {
        self.session = session
        ownsSession = false
    }

    deinit {
        // A session keeps its delegate until invalidated; one handed in stays the caller's.
        if ownsSession {
            session.finishTasksAndInvalidate()
        }
    }

    /// Sends `request` and returns whatever the server answered, whatever its status.
    ///
    /// - Throws: ``HttpError/Timeout(detail:)`` when no answer came within the request's timeout,
    ///   ``HttpError/Network(detail:)`` for any other failure (no connection, DNS, TLS, a URL that
    ///   is not http(s), cancellation).
    public func send(request: HttpRequest) async throws -> HttpResponse {
        guard let url = URL(string: request.url), url.scheme == "https" || url.scheme == "http" else {
            throw HttpError.Network(detail: "cannot send \(request.method) to a URL that is not http(s)")
        }
        var urlRequest = URLRequest(url: url)
        urlRequest.httpMethod = request.method
        urlRequest.timeoutInterval = TimeInterval(max(request.timeoutMs, 1)) / 1000
        urlRequest.cachePolicy = .reloadIgnoringLocalCacheData
        urlRequest.httpShouldHandleCookies = false
        for (name, value) in request.headers {
            urlRequest.setValue(value, forHTTPHeaderField: name)
        }
        urlRequest.httpBody = request.body

        let answer: (Data, URLResponse)
        do {
            answer = try await session.data(for: urlRequest)
        } catch let error as URLError where error.code == .timedOut {
            throw HttpError.Timeout(detail: "\(request.method) timed out after \(request.timeoutMs) ms")
        } catch let error as URLError {
            throw HttpError.Network(
                detail: "\(request.method) failed: URLError \(error.code.rawValue): \(error.localizedDescription)"
            )
        } catch is CancellationError {
            throw HttpError.Network(detail: "\(request.method) was cancelled")
        } catch {
            throw HttpError.Network(detail: "\(request.method) failed: \(error.localizedDescription)")
        }
        let (data, response) = answer
        guard let http = response as? HTTPURLResponse else {
            throw HttpError.Network(detail: "\(request.method) got an answer that is not HTTP")
        }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String {
                headers[name] = "\(value)"
            }
        }
        return HttpResponse(status: UInt16(clamping: http.statusCode), headers: headers, body: data)
    }
}

/// Refuses every redirect, so a 3xx is handed back as the answer.
private final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    // @unchecked Sendable: it has no state.

    func urlSession(
        _ session: URLSession,
        task: URLSessionTask,
        willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest
    ) async -> URLRequest? {
        nil
    }
}
