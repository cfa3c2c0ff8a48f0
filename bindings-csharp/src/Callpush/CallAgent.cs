using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace Callpush
{
    /// <summary>What a <see cref="CallAgent"/> needs: where the server is, where to keep state, who the user is.</summary>
    public sealed class CallAgentOptions
    {
        /// <summary>Base URL of the callpush server, e.g. <c>https://calls.example.com</c>.</summary>
        public string ServerUrl { get; set; }

        /// <summary>
        /// A directory only this app writes (<c>ApplicationData.Current.LocalFolder</c> on Windows);
        /// the installation id, the lease and the signing keys live there across launches.
        /// </summary>
        public string DataDirectory { get; set; }

        /// <summary>The signed-in user's bearer token for the server; see <see cref="AccessTokens"/>.</summary>
        public IAccessTokenProvider AccessTokens { get; set; }

        /// <summary>The incoming-call UI: <see cref="ToastCallUi"/> on Windows.</summary>
        public ISystemCallUi CallUi { get; set; }

        /// <summary>The HTTP stack; <see cref="SystemNetHttpClient"/> (System.Net.Http) when not set.</summary>
        public IHttpClient Http { get; set; }

        /// <summary>The user this device rings for; pushes addressed to anyone else are refused.</summary>
        public string UserId { get; set; }

        /// <summary>Push signing keys (JWKS JSON) to trust before the server has sent any.</summary>
        public string PinnedKeysJson { get; set; }

        /// <summary>
        /// Longest long-poll of a ringing call's status, seconds (default 25). 0 turns the
        /// long-poll off, for apps that learn of cancels over their own connection (Azure's
        /// <c>disableInternalPushForIncomingCall</c>): cancels then arrive by push.
        /// </summary>
        public uint? LongPollSeconds { get; set; }
    }

    /// <summary>A call with its event: <see cref="CallAgent.IncomingCallReceived"/> and <see cref="CallAgent.CallStateChanged"/>.</summary>
    public sealed class CallEventArgs : EventArgs
    {
        /// <summary>Creates one for <paramref name="call"/>.</summary>
        public CallEventArgs(Call call)
        {
            Call = call;
        }

        /// <summary>The call as it is now.</summary>
        public Call Call { get; }
    }

    /// <summary>A ringing call that stopped: the caller hung up, someone answered elsewhere, it rang out.</summary>
    public sealed class CallCancelledEventArgs : EventArgs
    {
        /// <summary>Creates one.</summary>
        public CallCancelledEventArgs(Call call, CancelReason reason)
        {
            Call = call;
            Reason = reason;
        }

        /// <summary>The call, ended.</summary>
        public Call Call { get; }

        /// <summary>Why it stopped.</summary>
        public CancelReason Reason { get; }
    }

    /// <summary>A call that rang while this device could not ring (it expired before its push arrived).</summary>
    public sealed class CallMissedEventArgs : EventArgs
    {
        /// <summary>Creates one.</summary>
        public CallMissedEventArgs(IncomingCall call)
        {
            Call = call;
        }

        /// <summary>The call, as its push described it.</summary>
        public IncomingCall Call { get; }
    }

    /// <summary>The push registration changed: renewed, replaced, or lapsed.</summary>
    public sealed class RegistrationChangedEventArgs : EventArgs
    {
        /// <summary>Creates one; <paramref name="registration"/> is null when it lapsed.</summary>
        public RegistrationChangedEventArgs(Registration registration)
        {
            Registration = registration;
        }

        /// <summary>The current lease, or null when the registration lapsed (pushes no longer arrive).</summary>
        public Registration Registration { get; }

        /// <summary>Whether the registration lapsed; call <see cref="CallAgent.RegisterForPushNotificationAsync"/> again.</summary>
        public bool Lapsed { get { return Registration == null; } }
    }

    /// <summary>Something went wrong that the app should know about.</summary>
    public sealed class CallAgentErrorEventArgs : EventArgs
    {
        /// <summary>Creates one.</summary>
        public CallAgentErrorEventArgs(ErrorKind kind, string message, string callId)
        {
            Kind = kind;
            Message = message;
            CallId = callId;
        }

        /// <summary>A stable kind, for logs and metrics.</summary>
        public ErrorKind Kind { get; }

        /// <summary>For the developer reading the log; never holds tokens or keys.</summary>
        public string Message { get; }

        /// <summary>The call concerned, if any.</summary>
        public string CallId { get; }
    }

    /// <summary>
    /// Incoming-call pushes for one app installation on Windows, in the shape of Azure
    /// Communication Services' <c>CallAgent</c>: register the WNS channel URI, hand every raw
    /// notification to <see cref="HandlePushNotification"/>, answer or decline from the toast.
    /// </summary>
    /// <remarks>
    /// Events are raised on the <see cref="SynchronizationContext"/> the agent was created on (the
    /// UI thread in WinUI 3, UWP and WPF); without one, on the thread that produced them. An
    /// exception a handler throws is written to <see cref="Trace"/> and goes no further: it never
    /// reaches the core. Dispose the agent when the app no longer needs pushes.
    /// </remarks>
    public sealed class CallAgent : IDisposable
    {
        private readonly SynchronizationContext context;
        private readonly ToastCallUi toasts;

        /// <summary>Creates the agent and restores what <see cref="CallAgentOptions.DataDirectory"/> holds.</summary>
        /// <exception cref="ArgumentException">When a required option is missing.</exception>
        /// <exception cref="CallpushException">When the configuration is invalid or the directory unusable.</exception>
        public CallAgent(CallAgentOptions options)
        {
            if (options == null) throw new ArgumentNullException("options");
            Require(options.ServerUrl, "ServerUrl");
            Require(options.DataDirectory, "DataDirectory");
            if (options.AccessTokens == null) throw new ArgumentException("CallAgentOptions.AccessTokens is required", "options");
            if (options.CallUi == null) throw new ArgumentException("CallAgentOptions.CallUi is required", "options");
            context = SynchronizationContext.Current;
            toasts = options.CallUi as ToastCallUi;
            var config = new ClientConfig(
                options.ServerUrl, options.DataDirectory, Platform.Wns,
                pinnedKeysJson: options.PinnedKeysJson, userId: options.UserId, longPollSeconds: options.LongPollSeconds);
            Client = new Client(config, options.Http ?? new SystemNetHttpClient(), options.AccessTokens, options.CallUi, new Listener(this));
        }

        /// <summary>The core client, for what the agent does not wrap (outgoing calls, media state).</summary>
        public Client Client { get; }

        /// <summary>A call is ringing: the toast is up; answer or decline from it or from the app.</summary>
        public event EventHandler<CallEventArgs> IncomingCallReceived;

        /// <summary>A ringing call stopped before anyone answered here.</summary>
        public event EventHandler<CallCancelledEventArgs> CallCancelled;

        /// <summary>A call changed state (answered, active, ended).</summary>
        public event EventHandler<CallEventArgs> CallStateChanged;

        /// <summary>A call rang while this device was unreachable.</summary>
        public event EventHandler<CallMissedEventArgs> CallMissed;

        /// <summary>The registration was renewed, replaced or lapsed.</summary>
        public event EventHandler<RegistrationChangedEventArgs> RegistrationChanged;

        /// <summary>Something went wrong in the background (a refused push, a failed renewal).</summary>
        public event EventHandler<CallAgentErrorEventArgs> ErrorOccurred;

        /// <summary>
        /// Registers this installation's WNS channel URI with the server. Call it on every launch
        /// and whenever the channel changes; a new URI replaces the old one.
        /// </summary>
        /// <exception cref="CallpushException">When the server refuses or cannot be reached.</exception>
        public Task<Registration> RegisterForPushNotificationAsync(string channelUri)
        {
            Require(channelUri, "channelUri");
            return Client.RegisterPushAsync(channelUri, new RegisterPushOptions());
        }

        /// <summary>
        /// Handles a WNS raw notification's content, as <c>RawNotification.Content</c> (UWP) or the
        /// UTF-8 payload (Windows App SDK) gives it. Synchronous: the toast is shown (or removed)
        /// before this returns. Never throws for a bad push: the outcome says what it was.
        /// </summary>
        public HandleOutcome HandlePushNotification(string rawContent)
        {
            return Client.HandlePush(rawContent ?? string.Empty);
        }

        /// <summary>Withdraws the registration: the server stops ringing this device.</summary>
        public Task UnregisterPushNotificationAsync()
        {
            return Client.UnregisterPushAsync();
        }

        /// <summary>The user answered <paramref name="callId"/>: the server stops the call ringing elsewhere.</summary>
        public Task<Call> AnswerAsync(string callId)
        {
            return Client.AnswerAsync(callId);
        }

        /// <summary>The user declined <paramref name="callId"/>.</summary>
        public Task<Call> DeclineAsync(string callId)
        {
            return Client.DeclineAsync(callId);
        }

        /// <summary>The user hung up <paramref name="callId"/> (a call still ringing is declined).</summary>
        public Task<Call> HangUpAsync(string callId)
        {
            return Client.HangUpAsync(callId);
        }

        /// <summary>
        /// Acts on a toast activation: the arguments of <c>ToastNotificationActivatedEventArgs</c>
        /// (UWP) or <c>AppNotificationActivatedEventArgs</c> (Windows App SDK). Answers or declines
        /// and returns the call; returns null for arguments that are not callpush's (the app's own
        /// toasts) and for a plain click on the toast body (the app just opens).
        /// </summary>
        /// <exception cref="CallpushException">When the call already ended or the server refused.</exception>
        public async Task<Call> HandleToastActivationAsync(string arguments)
        {
            ToastActivation activation;
            if (!ToastActivation.TryParse(arguments, out activation))
            {
                return null;
            }
            switch (activation.Action)
            {
                case ToastAction.Accept:
                    return await AnswerAsync(activation.CallId).ConfigureAwait(false);
                case ToastAction.Decline:
                    return await DeclineAsync(activation.CallId).ConfigureAwait(false);
                default:
                    return null;
            }
        }

        /// <summary>Frees the core client; the agent raises no events afterwards.</summary>
        public void Dispose()
        {
            Client.Dispose();
        }

        private static void Require(string value, string name)
        {
            if (string.IsNullOrEmpty(value)) throw new ArgumentException(name + " is required", name);
        }

        private void Dispatch(CallEvent e)
        {
            if (e is CallEvent.Incoming incoming)
            {
                Raise(IncomingCallReceived, new CallEventArgs(incoming.Call));
            }
            else if (e is CallEvent.Cancelled cancelled)
            {
                Raise(CallCancelled, new CallCancelledEventArgs(cancelled.Call, cancelled.Reason));
            }
            else if (e is CallEvent.StateChanged changed)
            {
                Raise(CallStateChanged, new CallEventArgs(changed.Call));
            }
            else if (e is CallEvent.Missed missed)
            {
                if (toasts != null)
                {
                    toasts.ShowMissedCall(missed.Call.CallId, missed.Call.CallerName ?? missed.Call.CallerId, missed.Call.Video);
                }
                Raise(CallMissed, new CallMissedEventArgs(missed.Call));
            }
            else if (e is CallEvent.RegistrationChanged registration)
            {
                Raise(RegistrationChanged, new RegistrationChangedEventArgs(registration.Registration));
            }
            else if (e is CallEvent.RegistrationLapsed)
            {
                Raise(RegistrationChanged, new RegistrationChangedEventArgs(null));
            }
            else if (e is CallEvent.Error error)
            {
                var ev = error.ErrorEvent;
                Raise(ErrorOccurred, new CallAgentErrorEventArgs(ev.Kind, ev.Message, ev.CallId));
            }
        }

        private void Raise<T>(EventHandler<T> handler, T args) where T : EventArgs
        {
            if (handler == null) return;
            if (context != null)
            {
                context.Post(_ => Invoke(handler, args), null);
            }
            else
            {
                Invoke(handler, args);
            }
        }

        private void Invoke<T>(EventHandler<T> handler, T args) where T : EventArgs
        {
            try
            {
                handler(this, args);
            }
            catch (Exception e)
            {
                // A handler's bug must not reach the core (it raised the event from a Rust thread).
                Trace.TraceError("callpush: a " + typeof(T).Name + " handler threw: " + e);
            }
        }

        /// <summary>The core's listener: turns its events into the agent's .NET events.</summary>
        private sealed class Listener : ICallListener
        {
            private readonly WeakReference<CallAgent> agent;

            internal Listener(CallAgent agent)
            {
                // Weak: the core holds the listener, and must not keep the agent alive.
                this.agent = new WeakReference<CallAgent>(agent);
            }

            public void OnEvent(CallEvent @event)
            {
                CallAgent target;
                if (agent.TryGetTarget(out target))
                {
                    target.Dispatch(@event);
                }
            }
        }
    }
}
