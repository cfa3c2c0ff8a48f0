using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Json;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Callpush.Tests
{
    /// <summary>The generated binding against the host library: vectors, errors, async, callbacks, lifetimes.</summary>
    [TestFixture]
    public class BindingTests
    {
        private static readonly string Vectors = Path.Combine(CallpushServer.Workspace(), "tests", "vectors");

        /// <summary>Awaits a task from a synchronous test (NUnit 2.6 runs tests synchronously).</summary>
        internal static T Run<T>(Task<T> task)
        {
            return task.GetAwaiter().GetResult();
        }

        internal static E ThrowsAsync<E>(Func<Task> call) where E : Exception
        {
            try
            {
                call().GetAwaiter().GetResult();
            }
            catch (E e)
            {
                return e;
            }
            catch (Exception e)
            {
                Assert.Fail("expected " + typeof(E).Name + ", got " + e.GetType().FullName + ": " + e.Message);
            }
            Assert.Fail("expected " + typeof(E).Name + ", nothing was thrown");
            return null;
        }

        private static Client NewClient(IHttpClient http, RecordingListener listener = null, IAccessTokenProvider tokens = null, Platform platform = Platform.Wns)
        {
            var config = new ClientConfig("https://calls.example.com", TempDirs.New(), platform);
            return new Client(config, http, tokens ?? new FixedTokens(() => "device-token"), new RecordingUi(), listener ?? new RecordingListener());
        }

        private static string Lower(object value)
        {
            var text = value.ToString();
            var snake = new System.Text.StringBuilder();
            for (var i = 0; i < text.Length; i++)
            {
                if (i > 0 && char.IsUpper(text[i])) snake.Append('_');
                snake.Append(char.ToLowerInvariant(text[i]));
            }
            return snake.ToString();
        }

        /// <summary>The decision in the shape of the vectors (the <c>inspect</c> JSON, errors by kind).</summary>
        private static JsonObject ToJson(HandleOutcome d)
        {
            var json = new JsonObject { { "outcome", Lower(d.Outcome) }, { "report", Lower(d.Report) } };
            if (d.Call != null)
            {
                var c = d.Call;
                var data = new JsonObject();
                foreach (var entry in c.Data) data[entry.Key] = entry.Value;
                json["call"] = new JsonObject
                {
                    { "call_id", c.CallId }, { "caller_id", c.CallerId }, { "caller_name", Text(c.CallerName) },
                    { "video", c.Video }, { "callee", c.Callee }, { "issued_at", c.IssuedAt }, { "expires_at", c.ExpiresAt },
                    { "reason", c.Reason.HasValue ? (JsonValue)Lower(c.Reason.Value) : null },
                    { "system_call_id", Text(c.SystemCallId) }, { "data", data },
                };
            }
            if (d.Error != null)
            {
                Assert.IsNotEmpty(d.Error.Message, "errors carry a message");
                json["error"] = new JsonObject { { "kind", Lower(d.Error.Kind) } };
            }
            return json;
        }

        /// <summary>A string as JSON, null as JSON null (System.Json would write "").</summary>
        private static JsonValue Text(string value)
        {
            return value == null ? null : new JsonPrimitive(value);
        }

        /// <summary>JSON text with object keys sorted, to compare values regardless of key order.</summary>
        private static string Canonical(JsonValue value)
        {
            if (value == null) return "null";
            if (value.JsonType == JsonType.Object)
            {
                var o = (JsonObject)value;
                return "{" + string.Join(",", o.Keys.OrderBy(k => k, StringComparer.Ordinal).Select(k => "\"" + k + "\":" + Canonical(o[k]))) + "}";
            }
            if (value.JsonType == JsonType.Array)
            {
                return "[" + string.Join(",", ((JsonArray)value).Select(Canonical)) + "]";
            }
            return value.ToString();
        }

        private static IEnumerable<JsonValue> AllVectors()
        {
            return Directory.GetFiles(Vectors, "*.json").OrderBy(f => f, StringComparer.Ordinal).Select(f => JsonValue.Parse(File.ReadAllText(f)));
        }

        [Test]
        public void EveryVectorReachesItsExpectedDecision()
        {
            var vectors = AllVectors().ToList();
            Assert.GreaterOrEqual(vectors.Count, 145, "vectors found in " + Vectors);
            var failures = new List<string>();
            foreach (var v in vectors)
            {
                var platform = (Platform)Enum.Parse(typeof(Platform), (string)v["platform"], true);
                // device_key, the private X25519 JWK a wire v2 push is sealed to: absent on v1 vectors.
                var deviceKey = v.ContainsKey("device_key") && v["device_key"] != null ? v["device_key"].ToString() : null;
                var decision = CallpushMethods.InspectPush(platform, (string)v["raw"], v["keys"].ToString(), (long)v["now"], deviceKey);
                var actual = Canonical(ToJson(decision));
                var expected = Canonical(v["expected"]);
                if (actual != expected) failures.Add((string)v["name"] + ":\n  expected " + expected + "\n  actual   " + actual);
            }
            Assert.IsEmpty(failures, failures.Count + " of " + vectors.Count + " vectors failed:\n" + string.Join("\n", failures));
        }

        /// <summary>
        /// Every hostile WNS vector through the app's entry point, <c>HandlePushNotification</c>, on
        /// an agent trusting the vector's keys: the same refusal as the vector expects. (Pushes that
        /// ring are dated; the flow tests ring live ones through the same call.) Not the wire v2
        /// vectors decided for an installation holding their <c>device_key</c>: an agent makes its
        /// own device key and cannot be handed one.
        /// </summary>
        [Test]
        public void HostileWnsVectorsAreRefusedByHandlePushNotification()
        {
            var hostile = AllVectors().Where(v => (string)v["platform"] == "wns" && !v.ContainsKey("device_key")
                && ((string)v["expected"]["outcome"] == "rejected" || (string)v["expected"]["outcome"] == "ignore")).ToList();
            Assert.GreaterOrEqual(hostile.Count, 8);
            foreach (var v in hostile)
            {
                var presenter = new RecordingPresenter();
                using (var agent = new CallAgent(new CallAgentOptions
                {
                    ServerUrl = "https://calls.example.com",
                    DataDirectory = TempDirs.New(),
                    AccessTokens = new FixedTokens(() => "t"),
                    CallUi = new ToastCallUi(presenter),
                    Http = new ScriptedHttp { Answer = r => { throw new HttpException.Network("offline"); } },
                    UserId = "user-bob",
                    PinnedKeysJson = v["keys"].ToString(),
                }))
                {
                    var outcome = agent.HandlePushNotification((string)v["raw"]);
                    Assert.AreEqual((string)v["expected"]["outcome"], Lower(outcome.Outcome), (string)v["name"]);
                    Assert.AreEqual((string)v["expected"]["report"], Lower(outcome.Report), (string)v["name"]);
                    if (v["expected"].ContainsKey("error"))
                    {
                        Assert.AreEqual((string)v["expected"]["error"]["kind"], Lower(outcome.Error.Kind), (string)v["name"]);
                    }
                    Assert.IsEmpty(presenter.Shown, (string)v["name"] + " showed a toast");
                }
            }
        }

        [Test]
        public void AnUnusableKeySetIsATypedError()
        {
            Assert.Throws<CallpushException.InvalidKey>(() => CallpushMethods.InspectPush(Platform.Wns, "{}", "{\"kty\":\"RSA\"}", 0));
        }

        [Test]
        public void RustErrorsArriveAsTypedExceptions()
        {
            using (var client = NewClient(new ScriptedHttp { Answer = r => Task.FromResult(ScriptedHttp.Json(500, "{}")) }))
            {
                ThrowsAsync<CallpushException.InvalidToken>(() => client.RegisterPushAsync("https://evil.example.com/?token=x", new RegisterPushOptions()));
                ThrowsAsync<CallpushException.InvalidArgument>(() => client.RegisterPushAsync("https://a.notify.windows.com/?t=1", new RegisterPushOptions(ttlSeconds: 10)));
                ThrowsAsync<CallpushException.CallNotFound>(() => client.AnswerAsync("nope"));
                ThrowsAsync<CallpushException.NotRegistered>(() => client.UnregisterPushAsync());
                var e = Assert.Throws<CallpushException.CallNotFound>(() => client.EndCall("nope", EndReason.Failed));
                StringAssert.Contains("nope", e.Message);
            }
        }

        [Test]
        public void CsharpErrorsArriveInRustAsItsTypedErrors()
        {
            // A typed HttpException from the transport is the core's network error.
            var offline = new ScriptedHttp { Answer = r => { throw new HttpException.Network("no route to host"); } };
            using (var client = NewClient(offline))
            {
                var e = ThrowsAsync<CallpushException.Network>(() => client.RegisterPushAsync("https://a.notify.windows.com/?t=1", new RegisterPushOptions()));
                StringAssert.Contains("no route to host", e.Message);
            }
            // So is a faulted task with any other exception: it is reported, never unwound into Rust.
            var buggy = new ScriptedHttp { Answer = r => Task.Run(new Func<HttpResponse>(() => { throw new InvalidOperationException("bug in the app's transport"); })) };
            using (var client = NewClient(buggy))
            {
                var e = ThrowsAsync<CallpushException.Network>(() => client.RegisterPushAsync("https://a.notify.windows.com/?t=1", new RegisterPushOptions()));
                StringAssert.Contains("bug in the app's transport", e.Message);
            }
            // The token provider's typed error is the core's access-token error.
            var signedOut = AccessTokens.From(force => { throw new InvalidOperationException("signed out"); });
            using (var client = NewClient(new ScriptedHttp { Answer = r => Task.FromResult(ScriptedHttp.Json(500, "{}")) }, tokens: signedOut))
            {
                var e = ThrowsAsync<CallpushException.AccessToken>(() => client.RegisterPushAsync("https://a.notify.windows.com/?t=1", new RegisterPushOptions()));
                StringAssert.Contains("signed out", e.Message);
            }
        }

        [Test]
        public void NullArgumentsAreRefusedBeforeReachingRust()
        {
            using (var client = NewClient(new ScriptedHttp()))
            {
                var e = Assert.Throws<ArgumentNullException>(() => client.HandlePush(null));
                Assert.AreEqual("raw", e.ParamName);
                Assert.Throws<ArgumentNullException>(() => client.HandlePushData(new Dictionary<string, string> { { "k", null } }));
                Assert.Throws<ArgumentNullException>(() => new Client(null, new ScriptedHttp(), new FixedTokens(() => "t"), new RecordingUi(), new RecordingListener()));
            }
        }

        [Test]
        public void AsyncCallsCompleteAndCallbacksArriveFromRustThreads()
        {
            var listener = new RecordingListener();
            // The answer comes later than the first poll, so the core resumes on another thread
            // (an answer ready at once lets the first poll, on the calling thread, finish the call).
            var http = new ScriptedHttp
            {
                Answer = async r =>
                {
                    await Task.Delay(50).ConfigureAwait(false);
                    return ScriptedHttp.Registered(r, "bob", DateTimeOffset.UtcNow.ToUnixTimeSeconds());
                },
            };
            var testThread = Thread.CurrentThread.ManagedThreadId;
            using (var client = NewClient(http, listener))
            {
                var registration = Run(client.RegisterPushAsync(CallpushServer.NewChannelUri(), new RegisterPushOptions()));
                Assert.AreEqual(client.InstallationId(), registration.InstallationId);
                Assert.AreEqual("bob", registration.UserId);
                var changed = Wait.Until("the registration event", () => listener.Events.FirstOrDefault(e => e.Item1 is CallEvent.RegistrationChanged));
                Assert.AreEqual(registration, ((CallEvent.RegistrationChanged)changed.Item1).Registration);
                Assert.AreNotEqual(testThread, changed.Item2, "events come from the core's own thread");
                Assert.AreEqual("PUT", http.Requests.Single().Method);
            }
        }

        [Test]
        public void ConcurrentCallsAnsweredOutOfOrderEachGetTheirOwnResult()
        {
            const int n = 8;
            var pending = new ConcurrentQueue<Tuple<HttpRequest, TaskCompletionSource<HttpResponse>>>();
            var http = new ScriptedHttp
            {
                Answer = r =>
                {
                    var answer = new TaskCompletionSource<HttpResponse>();
                    pending.Enqueue(Tuple.Create(r, answer));
                    return answer.Task;
                },
            };
            var clients = Enumerable.Range(0, n).Select(_ => NewClient(http)).ToList();
            try
            {
                var calls = clients.Select(c => c.RegisterPushAsync(CallpushServer.NewChannelUri(), new RegisterPushOptions())).ToList();
                Wait.For(n + " requests in flight", () => pending.Count == n);
                // Answer the last request first, and so on.
                foreach (var p in pending.Reverse())
                {
                    p.Item2.SetResult(ScriptedHttp.Registered(p.Item1, "bob", DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
                }
                for (var i = 0; i < n; i++)
                {
                    Assert.AreEqual(clients[i].InstallationId(), Run(calls[i]).InstallationId);
                }
            }
            finally
            {
                foreach (var c in clients) c.Dispose();
            }
        }

        [Test]
        public void AListenerThatThrowsDoesNotStopTheCore()
        {
            var thrown = 0;
            var http = new ScriptedHttp { Answer = r => Task.FromResult(ScriptedHttp.Registered(r, "bob", DateTimeOffset.UtcNow.ToUnixTimeSeconds())) };
            var config = new ClientConfig("https://calls.example.com", TempDirs.New(), Platform.Wns);
            using (var client = new Client(config, http, new FixedTokens(() => "t"), new RecordingUi(), new ThrowingListener(() => Interlocked.Increment(ref thrown))))
            {
                Run(client.RegisterPushAsync(CallpushServer.NewChannelUri(), new RegisterPushOptions()));
                Run(client.RegisterPushAsync(CallpushServer.NewChannelUri(), new RegisterPushOptions()));
                Wait.For("two events, each thrown on", () => Volatile.Read(ref thrown) == 2);
                Assert.IsNotNull(client.Registration());
            }
        }

        private sealed class ThrowingListener : ICallListener
        {
            private readonly Action onEvent;

            internal ThrowingListener(Action onEvent)
            {
                this.onEvent = onEvent;
            }

            public void OnEvent(CallEvent @event)
            {
                onEvent();
                throw new InvalidOperationException("a buggy listener");
            }
        }

        [Test]
        public void DisposeFreesOnceAndLaterCallsThrowObjectDisposed()
        {
            var client = NewClient(new ScriptedHttp());
            var id = client.InstallationId();
            Assert.IsNotEmpty(id);
            client.Dispose();
            client.Dispose();
            Assert.Throws<ObjectDisposedException>(() => client.InstallationId());
            ThrowsAsync<ObjectDisposedException>(() => client.UnregisterPushAsync());
        }

        /// <summary>How many C# objects (transports, listeners, UIs) Rust holds right now.</summary>
        private static int ForeignObjectsHeldByRust()
        {
            var assembly = typeof(Client).Assembly;
            var total = 0;
            foreach (var name in new[] { "UniffiTraitHttpClient", "UniffiTraitAccessTokenProvider", "UniffiTraitSystemCallUi", "UniffiTraitCallListener" })
            {
                var trait = assembly.GetType("Callpush." + name, true);
                var handles = trait.GetField("Handles", BindingFlags.Static | BindingFlags.NonPublic).GetValue(null);
                total += (int)handles.GetType().GetProperty("Count", BindingFlags.Instance | BindingFlags.NonPublic).GetValue(handles, null);
            }
            return total;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void CreateAndForget(int count)
        {
            for (var i = 0; i < count; i++) NewClient(new ScriptedHttp()).InstallationId();
        }

        [Test]
        public void AForgottenClientIsFreedByFinalisationWithTheObjectsItHeld()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var before = ForeignObjectsHeldByRust();
            CreateAndForget(5);
            Assert.AreEqual(before + 5 * 4, ForeignObjectsHeldByRust(), "each client holds its four foreign objects");
            Wait.For("the finaliser to free the clients", () =>
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                return ForeignObjectsHeldByRust() == before;
            });
        }

        [Test]
        public void EveryDeclaredNativeFunctionExistsInTheLibrary()
        {
            var native = typeof(Client).Assembly.GetType("Callpush.UniffiNative", true);
            Assert.Greater(native.GetMethods(BindingFlags.Static | BindingFlags.NonPublic).Length, 50);
            Marshal.PrelinkAll(native);
        }

        [Test]
        public void RecordsAndVariantsCompareByValue()
        {
            Func<Call> make = () => new Call("call-1", CallDirection.Incoming, CallState.Ringing, null, "alice", "Alice", true, null, 1767225628,
                new Dictionary<string, string> { { "room", "r-1" } });
            Assert.AreEqual(make(), make());
            Assert.AreEqual(make().GetHashCode(), make().GetHashCode());
            Assert.AreEqual(new CallEvent.Incoming(make()), new CallEvent.Incoming(make()));
            var other = new Call("call-1", CallDirection.Incoming, CallState.Ringing, null, "alice", "Alice", true, null, 1767225628,
                new Dictionary<string, string> { { "room", "r-2" } });
            Assert.AreNotEqual(make(), other, "maps compare by content");
            Assert.AreNotEqual(new CallEvent.Incoming(make()), new CallEvent.StateChanged(make()));
            Assert.IsTrue(new RegisterPushOptions().Equals(new RegisterPushOptions(null, null, null, null)));
        }
    }
}
