using System;
using System.Collections.Generic;
using System.Net.Http;
using System.Threading;
using System.Threading.Tasks;

namespace Callpush
{
    /// <summary>
    /// The core's HTTP transport on <see cref="System.Net.Http.HttpClient"/>: the system's proxy,
    /// certificate and TLS settings, no HTTP code in the native library.
    /// </summary>
    public sealed class SystemNetHttpClient : IHttpClient
    {
        private static readonly HttpClient Shared = new HttpClient { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
        private readonly HttpClient http;

        /// <summary>Sends with one HttpClient shared by the process (as .NET recommends).</summary>
        public SystemNetHttpClient() : this(Shared) { }

        /// <summary>Sends with <paramref name="http"/> (its handler decides proxies and certificates).</summary>
        public SystemNetHttpClient(HttpClient http)
        {
            if (http == null) throw new ArgumentNullException("http");
            this.http = http;
        }

        /// <summary>Sends one request; any HTTP status is an answer, only transport failures throw.</summary>
        /// <exception cref="HttpException.Timeout">No answer within the request's timeout.</exception>
        /// <exception cref="HttpException.Network">No connection, a reset, DNS or TLS failure.</exception>
        public async Task<HttpResponse> SendAsync(HttpRequest request)
        {
            using (var message = new HttpRequestMessage(new HttpMethod(request.Method), request.Url))
            using (var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(request.TimeoutMs)))
            {
                if (request.Body != null)
                {
                    message.Content = new ByteArrayContent(request.Body);
                }
                foreach (var header in request.Headers)
                {
                    // Content headers (Content-Type, …) belong to the content in System.Net.Http.
                    if (!message.Headers.TryAddWithoutValidation(header.Key, header.Value) && message.Content != null)
                    {
                        message.Content.Headers.TryAddWithoutValidation(header.Key, header.Value);
                    }
                }
                try
                {
                    using (var response = await http.SendAsync(message, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false))
                    {
                        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                        foreach (var h in response.Headers) headers[h.Key] = string.Join(", ", h.Value);
                        foreach (var h in response.Content.Headers) headers[h.Key] = string.Join(", ", h.Value);
                        var body = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
                        return new HttpResponse((ushort)response.StatusCode, headers, body);
                    }
                }
                catch (OperationCanceledException) when (timeout.IsCancellationRequested)
                {
                    throw new HttpException.Timeout("no answer from " + Describe(request.Url) + " within " + request.TimeoutMs + " ms");
                }
                catch (HttpRequestException e)
                {
                    throw new HttpException.Network(Describe(request.Url) + ": " + (e.InnerException ?? e).Message);
                }
            }
        }

        /// <summary>The request's origin and path: never its query, which may carry a token.</summary>
        private static string Describe(string url)
        {
            Uri uri;
            return Uri.TryCreate(url, UriKind.Absolute, out uri) ? uri.GetLeftPart(UriPartial.Path) : "the server";
        }
    }

    /// <summary>Ways to give the agent the signed-in user's access token.</summary>
    public static class AccessTokens
    {
        /// <summary>
        /// A provider calling <paramref name="fetch"/> (with <c>forceRefresh</c> true after the
        /// server refused the last token), as Azure's <c>CommunicationTokenCredential</c> refreshes.
        /// </summary>
        public static IAccessTokenProvider From(Func<bool, Task<string>> fetch)
        {
            if (fetch == null) throw new ArgumentNullException("fetch");
            return new DelegateProvider(fetch);
        }

        private sealed class DelegateProvider : IAccessTokenProvider
        {
            private readonly Func<bool, Task<string>> fetch;

            internal DelegateProvider(Func<bool, Task<string>> fetch)
            {
                this.fetch = fetch;
            }

            public async Task<string> AccessTokenAsync(bool forceRefresh)
            {
                string token;
                try
                {
                    token = await fetch(forceRefresh).ConfigureAwait(false);
                }
                catch (AccessTokenException)
                {
                    throw;
                }
                catch (Exception e)
                {
                    throw new AccessTokenException.Unavailable(e.GetType().Name + ": " + e.Message);
                }
                if (string.IsNullOrEmpty(token))
                {
                    throw new AccessTokenException.Unavailable("the token provider returned no token");
                }
                return token;
            }
        }
    }
}
