using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Xml.Linq;
using NUnit.Framework;

namespace Callpush.Tests
{
    /// <summary>
    /// Whole calls as a Windows app makes them: the agent, the toast UI (only the WinRT call
    /// faked) and the channel keeper against the real server, which sends through its real WNS
    /// sender to the WNS emulator, which delivers to this "PC" connected on its channel.
    /// </summary>
    [TestFixture]
    public class FlowTests
    {
        private CallpushServer server;
        private int users;

        [TestFixtureSetUp]
        public void StartServer()
        {
            server = new CallpushServer();
            server.StartServer();
        }

        [TestFixtureTearDown]
        public void StopServer()
        {
            if (server != null) server.Dispose();
        }

        /// <summary>One Windows PC of a fresh user, registered, with everything it saw.</summary>
        private sealed class Pc : IDisposable
        {
            public readonly string User;
            public readonly RecordingPresenter Toasts = new RecordingPresenter();
            public readonly ConcurrentQueue<EventArgs> Events = new ConcurrentQueue<EventArgs>();
            public readonly CallAgent Agent;
            public readonly WnsDevice Device;
            public readonly WnsChannelKeeper Keeper;

            /// <summary>Every request the agent sent, through the real System.Net.Http transport.</summary>
            public readonly ScriptedHttp Http = new ScriptedHttp();

            public Pc(CallpushServer server, string user, uint? longPollSeconds = null)
            {
                User = user;
                var transport = new SystemNetHttpClient();
                Http.Answer = transport.SendAsync;
                Agent = new CallAgent(new CallAgentOptions
                {
                    ServerUrl = server.Url,
                    DataDirectory = TempDirs.New(),
                    AccessTokens = AccessTokens.From(force => System.Threading.Tasks.Task.FromResult(server.Token(user))),
                    CallUi = new ToastCallUi(Toasts),
                    Http = Http,
                    UserId = user,
                    LongPollSeconds = longPollSeconds,
                });
                Agent.IncomingCallReceived += (s, e) => Events.Enqueue(e);
                Agent.CallCancelled += (s, e) => Events.Enqueue(e);
                Agent.CallStateChanged += (s, e) => Events.Enqueue(e);
                Agent.ErrorOccurred += (s, e) => Events.Enqueue(e);
                Device = new WnsDevice(server.WnsUrl, CallpushServer.NewChannelUri());
                Keeper = new WnsChannelKeeper(Agent, Device);
                BindingTests.Run(Keeper.RefreshAsync());
            }

            public Toast AwaitRinging(string callId)
            {
                return Wait.Until("the incoming-call toast of " + callId,
                    () => Toasts.OnScreen().FirstOrDefault(t => t.Tag == callId && t.Group == CallToasts.IncomingGroup));
            }

            public void AwaitNoRinging(string callId)
            {
                Wait.For("the toast of " + callId + " to go", () => !Toasts.OnScreen().Any(t => t.Tag == callId && t.Group == CallToasts.IncomingGroup));
            }

            public T AwaitEvent<T>(Func<T, bool> match) where T : EventArgs
            {
                return Wait.Until("a " + typeof(T).Name, () => Events.OfType<T>().FirstOrDefault(match));
            }

            public void Dispose()
            {
                Keeper.Dispose();
                Device.Dispose();
                Agent.Dispose();
            }
        }

        private Pc NewPc(uint? longPollSeconds = null)
        {
            return new Pc(server, "win-user-" + System.Threading.Interlocked.Increment(ref users), longPollSeconds);
        }

        private static int CallPolls(Pc pc)
        {
            return pc.Http.Requests.Count(r => r.Method == "GET" && r.Url.Contains("/v1/calls/"));
        }

        [Test]
        public void AnAppThatSignalsCallsItselfTurnsTheLongPollOff()
        {
            using (var polling = NewPc())
            using (var quiet = NewPc(longPollSeconds: 0))
            {
                server.Ring("win-call-poll", polling.User);
                server.Ring("win-call-nopoll", quiet.User);
                polling.AwaitRinging("win-call-poll");
                quiet.AwaitRinging("win-call-nopoll");
                Wait.For("the default agent to long-poll its ringing call", () => CallPolls(polling) > 0);
                System.Threading.Thread.Sleep(300);
                Assert.AreEqual(0, CallPolls(quiet), "LongPollSeconds = 0: no long-poll");
                // Cancels still arrive by push.
                server.Cancel("win-call-nopoll");
                quiet.AwaitNoRinging("win-call-nopoll");
            }
        }

        private static string ButtonArguments(Toast toast, string content)
        {
            return (string)XElement.Parse(toast.Xml).Descendants("action").Single(a => (string)a.Attribute("content") == content).Attribute("arguments");
        }

        [Test]
        public void RegisterRingAnswerFromTheToastHangUpAndUnregister()
        {
            using (var pc = NewPc())
            {
                Assert.AreEqual(pc.Device.ChannelUri, pc.Agent.Client.Registration().Token);
                var rung = server.Ring("win-call-1", pc.User, fromName: "Alice Ødegård");
                Assert.AreEqual(1, rung["deliveries"].Count);
                var toast = pc.AwaitRinging("win-call-1");
                StringAssert.Contains("Alice Ødegård", toast.Xml);
                var incoming = pc.AwaitEvent<CallEventArgs>(e => e.Call.State == CallState.Ringing);
                Assert.AreEqual("alice", incoming.Call.PeerId);
                Assert.IsTrue(incoming.Call.Video);

                var answered = BindingTests.Run(pc.Agent.HandleToastActivationAsync(ButtonArguments(toast, "Accept")));
                Assert.AreEqual(CallState.Answered, answered.State);
                var status = server.AwaitCallState("win-call-1", "answered");
                Assert.AreEqual(pc.Agent.Client.InstallationId(), (string)status["answered_by"]);
                pc.AwaitNoRinging("win-call-1");

                var ended = BindingTests.Run(pc.Agent.HangUpAsync("win-call-1"));
                Assert.AreEqual(CallState.Ended, ended.State);
                Assert.AreEqual(EndReason.HungUp, ended.EndReason);
                Assert.IsFalse(pc.Toasts.OnScreen().Any(), "no toast left, no missed call");

                BindingTests.Run(pc.Agent.UnregisterPushNotificationAsync().ContinueWith(t => { t.Wait(); return true; }));
                Assert.IsNull(pc.Agent.Client.Registration());
                Assert.AreEqual(0, server.Ring("win-call-2", pc.User)["deliveries"].Count, "an unregistered PC is not rung");
            }
        }

        [Test]
        public void DeclineFromTheToastEndsTheCallOnTheServer()
        {
            using (var pc = NewPc())
            {
                server.Ring("win-call-decline", pc.User);
                var toast = pc.AwaitRinging("win-call-decline");
                var declined = BindingTests.Run(pc.Agent.HandleToastActivationAsync(ButtonArguments(toast, "Decline")));
                Assert.AreEqual(EndReason.Declined, declined.EndReason);
                server.AwaitCallState("win-call-decline", "declined");
                pc.AwaitNoRinging("win-call-decline");
                Assert.IsFalse(pc.Toasts.OnScreen().Any(t => t.Group == CallToasts.MissedGroup));
            }
        }

        [Test]
        public void AnsweredElsewhereTheToastGoesWithoutAMissedCall()
        {
            using (var pc = NewPc())
            {
                server.RegisterOtherDevice(pc.User, "other-pc");
                server.Ring("win-call-elsewhere", pc.User);
                pc.AwaitRinging("win-call-elsewhere");
                server.AnswerOnOtherDevice(pc.User, "other-pc", "win-call-elsewhere");
                var cancelled = pc.AwaitEvent<CallCancelledEventArgs>(e => e.Call.CallId == "win-call-elsewhere");
                Assert.AreEqual(CancelReason.AnsweredElsewhere, cancelled.Reason);
                pc.AwaitNoRinging("win-call-elsewhere");
                Assert.IsFalse(pc.Toasts.OnScreen().Any(t => t.Group == CallToasts.MissedGroup));
            }
        }

        [Test]
        public void TheCallerHangingUpLeavesAMissedCallToast()
        {
            using (var pc = NewPc())
            {
                server.Ring("win-call-cancel", pc.User);
                pc.AwaitRinging("win-call-cancel");
                server.Cancel("win-call-cancel");
                var cancelled = pc.AwaitEvent<CallCancelledEventArgs>(e => e.Call.CallId == "win-call-cancel");
                Assert.AreEqual(CancelReason.CallerCancelled, cancelled.Reason);
                pc.AwaitNoRinging("win-call-cancel");
                var missed = Wait.Until("the missed-call toast", () => pc.Toasts.OnScreen().FirstOrDefault(t => t.Group == CallToasts.MissedGroup));
                Assert.AreEqual("win-call-cancel", missed.Tag);
                StringAssert.Contains("Alice Ødegård", missed.Xml);
            }
        }

        [Test]
        public void ACallNobodyAnswersRingsOutAsMissed()
        {
            using (var pc = NewPc())
            {
                server.Ring("win-call-missed", pc.User, ringSeconds: 5);
                pc.AwaitRinging("win-call-missed");
                Wait.Until("the missed-call toast", () => pc.Toasts.OnScreen().FirstOrDefault(t => t.Group == CallToasts.MissedGroup), 15000);
                pc.AwaitNoRinging("win-call-missed");
                var call = pc.Agent.Client.Call("win-call-missed");
                Assert.AreEqual(CallState.Ended, call.State);
                Assert.AreEqual(EndReason.Missed, call.EndReason);
                server.AwaitCallState("win-call-missed", "missed");
            }
        }

        [Test]
        public void ANewChannelIsRegisteredAndRungThere()
        {
            using (var pc = NewPc())
            {
                var first = pc.Device.ChannelUri;
                pc.Device.Rotate(CallpushServer.NewChannelUri());
                BindingTests.Run(pc.Keeper.RefreshAsync());
                Assert.AreNotEqual(first, pc.Agent.Client.Registration().Token);
                Assert.AreEqual(pc.Device.ChannelUri, pc.Agent.Client.Registration().Token);
                server.Ring("win-call-rotated", pc.User);
                pc.AwaitRinging("win-call-rotated");
            }
        }
    }
}
