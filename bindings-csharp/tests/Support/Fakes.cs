using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Json;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Callpush.Tests
{
    /// <summary>Fresh directories for client data, removed after the test run (<see cref="TestRun"/>).</summary>
    public static class TempDirs
    {
        private static readonly ConcurrentBag<string> Made = new ConcurrentBag<string>();

        public static string New()
        {
            var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "callpush-cs-" + Guid.NewGuid().ToString("N"));
            System.IO.Directory.CreateDirectory(dir);
            Made.Add(dir);
            return dir;
        }

        /// <summary>Removes every directory <see cref="New"/> made; one a client still holds open stays.</summary>
        public static void RemoveAll()
        {
            string dir;
            while (Made.TryTake(out dir))
            {
                try
                {
                    System.IO.Directory.Delete(dir, true);
                }
                catch (System.IO.IOException)
                {
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }
    }

    /// <summary>Polls a condition; fails the test with <paramref name="what"/> when it does not hold in time.</summary>
    public static class Wait
    {
        public static T Until<T>(string what, Func<T> check, int timeoutMs = 10000) where T : class
        {
            var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
            while (true)
            {
                var value = check();
                if (value != null) return value;
                if (DateTime.UtcNow > deadline) Assert.Fail("timed out after " + timeoutMs + " ms waiting for " + what);
                Thread.Sleep(10);
            }
        }

        public static void For(string what, Func<bool> check, int timeoutMs = 10000)
        {
            Until(what, () => check() ? "ok" : null, timeoutMs);
        }
    }

    /// <summary>An access token that never changes; counts forced refreshes.</summary>
    public sealed class FixedTokens : IAccessTokenProvider
    {
        private readonly Func<string> token;
        public int Forced;

        public FixedTokens(Func<string> token)
        {
            this.token = token;
        }

        public Task<string> AccessTokenAsync(bool forceRefresh)
        {
            if (forceRefresh) Interlocked.Increment(ref Forced);
            return Task.FromResult(token());
        }
    }

    /// <summary>Records what the core tells the system call UI, with the thread it was told on.</summary>
    public sealed class RecordingUi : ISystemCallUi
    {
        public readonly ConcurrentQueue<string> Reports = new ConcurrentQueue<string>();

        public void ReportIncomingCall(Call call) { Reports.Enqueue("incoming " + call.CallId); }
        public void ReportAndEndCall(Call call, IncomingCallError reason) { Reports.Enqueue("and-end " + (call == null ? "-" : call.CallId) + " " + reason); }
        public void ReportIncomingCallError(string systemCallId, IncomingCallError reason) { Reports.Enqueue("error " + systemCallId + " " + reason); }
        public void ReportOutgoingCall(Call call) { Reports.Enqueue("outgoing " + call.CallId); }
        public void ReportCallState(Call call) { Reports.Enqueue("state " + call.CallId + " " + call.State + " " + call.EndReason); }
    }

    /// <summary>Records the core's events with the managed thread they arrived on.</summary>
    public sealed class RecordingListener : ICallListener
    {
        public readonly ConcurrentQueue<Tuple<CallEvent, int>> Events = new ConcurrentQueue<Tuple<CallEvent, int>>();

        public void OnEvent(CallEvent @event)
        {
            Events.Enqueue(Tuple.Create(@event, Thread.CurrentThread.ManagedThreadId));
        }

        public T First<T>() where T : CallEvent
        {
            return Events.Select(e => e.Item1).OfType<T>().FirstOrDefault();
        }
    }

    /// <summary>Records toasts as the Windows presenter would show and remove them.</summary>
    public sealed class RecordingPresenter : IToastPresenter
    {
        private readonly object gate = new object();
        private readonly List<Toast> shown = new List<Toast>();
        private readonly List<string> removed = new List<string>();
        // Shows and removals in order, by "group/tag": what is on screen is the replay of it.
        private readonly List<Tuple<string, Toast>> log = new List<Tuple<string, Toast>>();

        /// <summary>When set, Show and Remove throw it (a WinRT failure).</summary>
        public Exception FailWith;

        public void Show(Toast toast)
        {
            if (FailWith != null) throw FailWith;
            lock (gate)
            {
                shown.Add(toast);
                log.Add(Tuple.Create(toast.Group + "/" + toast.Tag, toast));
            }
        }

        public void Remove(string tag, string group)
        {
            if (FailWith != null) throw FailWith;
            lock (gate)
            {
                removed.Add(group + "/" + tag);
                log.Add(Tuple.Create<string, Toast>(group + "/" + tag, null));
            }
        }

        public List<Toast> Shown { get { lock (gate) return shown.ToList(); } }

        public List<string> Removed { get { lock (gate) return removed.ToList(); } }

        /// <summary>Toasts on screen now: shown and not removed or replaced since.</summary>
        public List<Toast> OnScreen()
        {
            lock (gate)
            {
                var live = new Dictionary<string, Toast>();
                foreach (var entry in log)
                {
                    if (entry.Item2 == null) live.Remove(entry.Item1);
                    else live[entry.Item1] = entry.Item2;
                }
                return live.Values.ToList();
            }
        }
    }

    /// <summary>An HTTP client whose answers the test writes: <see cref="Answer"/> decides each request.</summary>
    public sealed class ScriptedHttp : IHttpClient
    {
        public Func<HttpRequest, Task<HttpResponse>> Answer;
        public readonly ConcurrentQueue<HttpRequest> Requests = new ConcurrentQueue<HttpRequest>();

        public Task<HttpResponse> SendAsync(HttpRequest request)
        {
            Requests.Enqueue(request);
            return Answer(request);
        }

        /// <summary>A 200 JSON answer.</summary>
        public static HttpResponse Json(int status, string json)
        {
            return new HttpResponse((ushort)status, new Dictionary<string, string> { { "content-type", "application/json" } }, Encoding.UTF8.GetBytes(json));
        }

        /// <summary>What <c>PUT /v1/installations/{id}</c> answers, for the id in the request's URL.</summary>
        public static HttpResponse Registered(HttpRequest request, string user, long serverTime)
        {
            var id = new Uri(request.Url).Segments.Last();
            var body = new JsonObject
            {
                { "installation_id", id },
                { "user_id", user },
                { "expires_at", serverTime + 3600 },
                { "server_time", serverTime },
                { "signing_keys", new JsonArray() },
            };
            return Json(200, body.ToString());
        }
    }
}
