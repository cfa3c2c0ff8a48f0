using System;

namespace Callpush
{
    /// <summary>
    /// The system call UI of Windows: an incoming-call toast per ringing call, removed when the
    /// call is answered (here or elsewhere), declined or cancelled, and a missed-call toast when
    /// it rang out or the caller gave up. The core calls it synchronously while it handles a push.
    /// </summary>
    /// <remarks>
    /// Windows has no system call log or lock-screen call UI for apps to report to, so outgoing
    /// calls and push errors need nothing here: those reports are accepted and do nothing.
    /// </remarks>
    public sealed class ToastCallUi : ISystemCallUi
    {
        private readonly IToastPresenter presenter;
        private readonly CallToasts.Words words;

        /// <summary>Shows toasts with <paramref name="presenter"/>, in <paramref name="words"/> (English when null).</summary>
        public ToastCallUi(IToastPresenter presenter, CallToasts.Words words = null)
        {
            if (presenter == null) throw new ArgumentNullException("presenter");
            this.presenter = presenter;
            this.words = words ?? new CallToasts.Words();
        }

        /// <summary>A call is ringing: show its toast until its ring deadline.</summary>
        public void ReportIncomingCall(Call call)
        {
            Present(() =>
            {
                var xml = CallToasts.IncomingCall(call.CallId, Caller(call), call.Video, words);
                presenter.Show(new Toast(xml, call.CallId, CallToasts.IncomingGroup, Deadline(call)));
            });
        }

        /// <summary>A call changed state: its toast goes once it is no longer ringing.</summary>
        public void ReportCallState(Call call)
        {
            if (call.State == CallState.Ringing || call.State == CallState.Dialing) return;
            Present(() =>
            {
                presenter.Remove(call.CallId, CallToasts.IncomingGroup);
                if (call.State == CallState.Ended && call.Direction == CallDirection.Incoming
                    && (call.EndReason == EndReason.Missed || call.EndReason == EndReason.CallerCancelled))
                {
                    ShowMissed(call.CallId, Caller(call));
                }
            });
        }

        /// <summary>A call that ended before it could ring: remove any toast it had.</summary>
        public void ReportAndEndCall(Call call, IncomingCallError reason)
        {
            if (call == null) return;
            Present(() => presenter.Remove(call.CallId, CallToasts.IncomingGroup));
        }

        /// <summary>Nothing to tell on Windows (no system call UI knows the call).</summary>
        public void ReportIncomingCallError(string systemCallId, IncomingCallError reason)
        {
        }

        /// <summary>Nothing to show on Windows for a call this user places.</summary>
        public void ReportOutgoingCall(Call call)
        {
        }

        /// <summary>A missed-call toast for a call that rang while the device was unreachable.</summary>
        public void ShowMissedCall(string callId, string caller, bool video)
        {
            Present(() => ShowMissed(callId, caller));
        }

        private void ShowMissed(string callId, string caller)
        {
            presenter.Show(new Toast(CallToasts.MissedCall(callId, caller, words), callId, CallToasts.MissedGroup, null));
        }

        private static string Caller(Call call)
        {
            return string.IsNullOrEmpty(call.PeerName) ? call.PeerId : call.PeerName;
        }

        private static DateTimeOffset? Deadline(Call call)
        {
            if (!call.ExpiresAt.HasValue) return null;
            return DateTimeOffset.FromUnixTimeSeconds(call.ExpiresAt.Value);
        }

        /// <summary>Runs a presenter call; a WinRT failure becomes the refusal the core expects.</summary>
        private static void Present(Action show)
        {
            try
            {
                show();
            }
            catch (Exception e)
            {
                throw new CallUiException.Refused("the toast could not be shown: " + e.GetType().Name + ": " + e.Message);
            }
        }
    }
}
