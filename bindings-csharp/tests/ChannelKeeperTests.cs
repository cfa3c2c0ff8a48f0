using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading.Tasks;
using NUnit.Framework;

namespace Callpush.Tests
{
    /// <summary>The WNS channel policy and keeper, with a fake channel source and registrar.</summary>
    [TestFixture]
    public class ChannelKeeperTests
    {
        private static readonly DateTimeOffset Now = new DateTimeOffset(2026, 12, 6, 9, 0, 0, TimeSpan.Zero);

        /// <summary>Windows' channel manager: hands out <see cref="Uri"/>, or fails.</summary>
        private sealed class FakeSource : IWnsChannelSource
        {
            public string Uri = CallpushServer.NewChannelUri();
            public DateTimeOffset ExpiresAt = Now.AddDays(30);
            public Exception FailWith;

            public event EventHandler<string> RawNotificationReceived;

            public Task<WnsChannel> OpenChannelAsync()
            {
                if (FailWith != null) return Task.Run(new Func<WnsChannel>(() => { throw FailWith; }));
                return Task.FromResult(new WnsChannel(Uri, ExpiresAt));
            }

            public void Deliver(string content)
            {
                var handler = RawNotificationReceived;
                if (handler != null) handler(this, content);
            }
        }

        private static CallAgent NewAgent(ScriptedHttp http)
        {
            return new CallAgent(new CallAgentOptions
            {
                ServerUrl = "https://calls.example.com",
                DataDirectory = TempDirs.New(),
                AccessTokens = new FixedTokens(() => "t"),
                CallUi = new ToastCallUi(new RecordingPresenter()),
                Http = http,
            });
        }

        private static ScriptedHttp Registrar()
        {
            return new ScriptedHttp { Answer = r => Task.FromResult(ScriptedHttp.Registered(r, "bob", DateTimeOffset.UtcNow.ToUnixTimeSeconds())) };
        }

        [Test]
        public void AChannelIsRenewedFiveDaysBeforeItExpiresAndAtOnceWhenThatPassed()
        {
            Assert.AreEqual(Now.AddDays(25), WnsChannelPolicy.RenewAt(Now.AddDays(30), Now));
            Assert.AreEqual(Now, WnsChannelPolicy.RenewAt(Now.AddDays(2), Now));
            Assert.AreEqual(Now, WnsChannelPolicy.RenewAt(Now.AddDays(-1), Now));
        }

        [Test]
        public void OnlyANewUriNeedsRegistration()
        {
            Assert.IsTrue(WnsChannelPolicy.NeedsRegistration(null, "https://a.notify.windows.com/?token=1"));
        }

        [Test]
        public void TheKeeperRegistersOnceThenOnlyWhenTheUriChanges()
        {
            var http = Registrar();
            var source = new FakeSource();
            using (var agent = NewAgent(http))
            using (var keeper = new WnsChannelKeeper(agent, source, () => Now))
            {
                BindingTests.Run(keeper.RefreshAsync());
                BindingTests.Run(keeper.RefreshAsync());
                Assert.AreEqual(1, http.Requests.Count(r => r.Method == "PUT"), "the same URI is registered once");
                Assert.IsFalse(WnsChannelPolicy.NeedsRegistration(agent.Client.Registration(), source.Uri));
                Assert.AreEqual(Now.AddDays(25), keeper.NextRenewal);

                source.Uri = CallpushServer.NewChannelUri();
                BindingTests.Run(keeper.RefreshAsync());
                Assert.AreEqual(2, http.Requests.Count(r => r.Method == "PUT"));
                Assert.AreEqual(source.Uri, agent.Client.Registration().Token);
                Assert.AreEqual(source.Uri, keeper.Channel.Uri);
            }
        }

        [Test]
        public void AFailedRefreshIsTriedAgainInFifteenMinutes()
        {
            var source = new FakeSource { FailWith = new InvalidOperationException("WNS unreachable") };
            using (var agent = NewAgent(Registrar()))
            using (var keeper = new WnsChannelKeeper(agent, source, () => Now))
            {
                var e = BindingTests.ThrowsAsync<InvalidOperationException>(() => keeper.RefreshAsync());
                StringAssert.Contains("WNS unreachable", e.Message);
                Assert.AreEqual(Now.AddMinutes(15), keeper.NextRenewal);
                Assert.IsNull(keeper.Channel);
            }
        }

        [Test]
        public void RawNotificationsGoToTheAgentUntilTheKeeperIsDisposed()
        {
            var source = new FakeSource();
            var errors = new ConcurrentQueue<CallAgentErrorEventArgs>();
            using (var agent = NewAgent(Registrar()))
            {
                agent.ErrorOccurred += (s, e) => errors.Enqueue(e);
                var keeper = new WnsChannelKeeper(agent, source, () => Now);
                source.Deliver("{\"callpush\":\"not a token\"}");
                Wait.For("the malformed push to be reported", () => errors.Count == 1);
                Assert.AreEqual(ErrorKind.Malformed, errors.Single().Kind);
                keeper.Dispose();
                source.Deliver("{\"callpush\":\"not a token\"}");
                System.Threading.Thread.Sleep(100);
                Assert.AreEqual(1, errors.Count, "a disposed keeper hands nothing on");
            }
        }
    }
}
