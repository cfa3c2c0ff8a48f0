using System;
using System.Collections.Generic;
using System.Linq;
using System.Xml.Linq;
using NUnit.Framework;

namespace Callpush.Tests
{
    /// <summary>The toast XML, the activation arguments and <see cref="ToastCallUi"/>'s decisions.</summary>
    [TestFixture]
    public class ToastTests
    {
        private static Call IncomingCall(string id, CallState state, EndReason? end = null, string name = "Alice")
        {
            return new Call(id, CallDirection.Incoming, state, end, "alice", name, true, null, 1767225628, new Dictionary<string, string>());
        }

        [Test]
        public void AnIncomingCallToastRingsWithAcceptAndDecline()
        {
            var toast = XElement.Parse(CallToasts.IncomingCall("call-1", "Alice", true));
            Assert.AreEqual("incomingCall", (string)toast.Attribute("scenario"));
            Assert.AreEqual(new[] { "Alice", "Incoming video call" }, toast.Descendants("text").Select(t => t.Value).ToArray());
            var audio = toast.Element("audio");
            Assert.AreEqual("ms-winsoundevent:Notification.Looping.Call", (string)audio.Attribute("src"));
            Assert.AreEqual("true", (string)audio.Attribute("loop"));
            var actions = toast.Element("actions").Elements("action").ToList();
            Assert.AreEqual(new[] { "Accept", "Decline" }, actions.Select(a => (string)a.Attribute("content")).ToArray());
            Assert.AreEqual(new[] { "foreground", "background" }, actions.Select(a => (string)a.Attribute("activationType")).ToArray());
            ToastActivation accept, decline, open;
            Assert.IsTrue(ToastActivation.TryParse((string)actions[0].Attribute("arguments"), out accept));
            Assert.IsTrue(ToastActivation.TryParse((string)actions[1].Attribute("arguments"), out decline));
            Assert.IsTrue(ToastActivation.TryParse((string)toast.Attribute("launch"), out open));
            Assert.AreEqual(ToastAction.Accept, accept.Action);
            Assert.AreEqual(ToastAction.Decline, decline.Action);
            Assert.AreEqual(ToastAction.Open, open.Action);
            Assert.AreEqual("call-1", accept.CallId);
            Assert.AreEqual("Incoming call", XElement.Parse(CallToasts.IncomingCall("c", "A", false)).Descendants("text").Last().Value);
        }

        [Test]
        public void ACallersNameIsTextAndCannotChangeTheToast()
        {
            const string hostile = "</text><action content=\"Pay\" arguments=\"x\"/><text>&amp; \"quoted\"";
            var toast = XElement.Parse(CallToasts.IncomingCall("call-1", hostile, false));
            Assert.AreEqual(hostile, toast.Descendants("text").First().Value);
            Assert.AreEqual(2, toast.Descendants("action").Count());
            Assert.AreEqual(2, toast.Descendants("text").Count());
        }

        [Test]
        public void WordsCanBeLocalised()
        {
            var words = new CallToasts.Words { Accept = "Annehmen", Decline = "Ablehnen", IncomingAudio = "Eingehender Anruf", Missed = "Verpasster Anruf" };
            var toast = XElement.Parse(CallToasts.IncomingCall("call-1", "Alice", false, words));
            Assert.AreEqual(new[] { "Annehmen", "Ablehnen" }, toast.Descendants("action").Select(a => (string)a.Attribute("content")).ToArray());
            Assert.AreEqual("Verpasster Anruf", XElement.Parse(CallToasts.MissedCall("call-1", "Alice", words)).Descendants("text").First().Value);
        }

        [Test]
        public void ActivationArgumentsRoundTripAndRefuseAnythingElse()
        {
            foreach (ToastAction action in Enum.GetValues(typeof(ToastAction)))
            {
                ToastActivation parsed;
                Assert.IsTrue(ToastActivation.TryParse(ToastActivation.Format(action, "a:b.c_d-e"), out parsed));
                Assert.AreEqual(action, parsed.Action);
                Assert.AreEqual("a:b.c_d-e", parsed.CallId);
            }
            var refused = new[]
            {
                null, "", "action=accept", "callpush=accept", "callpush=answer&callId=c1", "callpush=accept&callId=",
                "callpush=accept&callId=a%2Fb", "callpush=accept&callId=" + new string('a', 65), "callpush=accept&callId=c1&extra=1",
                "callpush=accept&callpush=decline&callId=c1", "callpush=accept&callId=c1&callId=c2", "callpush=accept&callId=%zz",
                "callpush=accept&callId=c%201", "=accept&callId=c1", "callpush&callId=c1", new string('x', 600),
            };
            foreach (var arguments in refused)
            {
                ToastActivation parsed;
                Assert.IsFalse(ToastActivation.TryParse(arguments, out parsed), arguments ?? "null");
                Assert.IsNull(parsed);
            }
        }

        [Test]
        public void ARingingCallShowsItsToastUntilItsDeadline()
        {
            var presenter = new RecordingPresenter();
            new ToastCallUi(presenter).ReportIncomingCall(IncomingCall("call-1", CallState.Ringing));
            var toast = presenter.Shown.Single();
            Assert.AreEqual("call-1", toast.Tag);
            Assert.AreEqual(CallToasts.IncomingGroup, toast.Group);
            Assert.AreEqual(DateTimeOffset.FromUnixTimeSeconds(1767225628), toast.ExpiresAt);
            StringAssert.Contains("scenario=\"incomingCall\"", toast.Xml);
        }

        [Test]
        public void TheToastGoesWhenTheCallIsAnsweredAndAMissedCallLeavesANote()
        {
            var cases = new[]
            {
                Tuple.Create(CallState.Answered, (EndReason?)null, false),
                Tuple.Create(CallState.Active, (EndReason?)null, false),
                Tuple.Create(CallState.Ended, (EndReason?)EndReason.Declined, false),
                Tuple.Create(CallState.Ended, (EndReason?)EndReason.AnsweredElsewhere, false),
                Tuple.Create(CallState.Ended, (EndReason?)EndReason.DeclinedElsewhere, false),
                Tuple.Create(CallState.Ended, (EndReason?)EndReason.HungUp, false),
                Tuple.Create(CallState.Ended, (EndReason?)EndReason.Failed, false),
                Tuple.Create(CallState.Ended, (EndReason?)EndReason.Missed, true),
                Tuple.Create(CallState.Ended, (EndReason?)EndReason.CallerCancelled, true),
            };
            foreach (var c in cases)
            {
                var presenter = new RecordingPresenter();
                var ui = new ToastCallUi(presenter);
                ui.ReportIncomingCall(IncomingCall("call-1", CallState.Ringing));
                ui.ReportCallState(IncomingCall("call-1", c.Item1, c.Item2));
                var label = c.Item1 + " " + c.Item2;
                Assert.IsFalse(presenter.OnScreen().Any(t => t.Group == CallToasts.IncomingGroup), label + ": the ringing toast is gone");
                var missed = presenter.OnScreen().Where(t => t.Group == CallToasts.MissedGroup).ToList();
                Assert.AreEqual(c.Item3 ? 1 : 0, missed.Count, label);
                if (c.Item3)
                {
                    Assert.AreEqual("call-1", missed[0].Tag);
                    Assert.IsNull(missed[0].ExpiresAt);
                    StringAssert.Contains("Missed call", missed[0].Xml);
                }
            }
        }

        [Test]
        public void StillRingingNeedsNothingAndOutgoingCallsShowNoToast()
        {
            var presenter = new RecordingPresenter();
            var ui = new ToastCallUi(presenter);
            ui.ReportCallState(IncomingCall("call-1", CallState.Ringing));
            ui.ReportOutgoingCall(new Call("call-2", CallDirection.Outgoing, CallState.Dialing, null, "carol", null, false, null, null, new Dictionary<string, string>()));
            ui.ReportIncomingCallError(null, IncomingCallError.InvalidPush);
            ui.ReportAndEndCall(null, IncomingCallError.CallEnded);
            Assert.IsEmpty(presenter.Shown);
            Assert.IsEmpty(presenter.Removed);
            ui.ReportAndEndCall(IncomingCall("call-3", CallState.Ended, EndReason.Missed), IncomingCallError.CallEnded);
            Assert.AreEqual(new[] { CallToasts.IncomingGroup + "/call-3" }, presenter.Removed.ToArray());
        }

        [Test]
        public void AToastTheSystemRefusesIsTheRefusalTheCoreExpects()
        {
            var presenter = new RecordingPresenter { FailWith = new UnauthorizedAccessException("notifications are off") };
            var e = Assert.Throws<CallUiException.Refused>(() => new ToastCallUi(presenter).ReportIncomingCall(IncomingCall("call-1", CallState.Ringing)));
            StringAssert.Contains("notifications are off", e.Detail);
        }
    }
}
