#if !WINDOWS_UWP
using System;
using System.Collections.Generic;
using System.Text;
using System.Threading.Tasks;
using Microsoft.Windows.AppLifecycle;
using Microsoft.Windows.PushNotifications;

namespace Callpush.Windows
{
    /// <summary>
    /// The WNS channel and raw notifications of a Windows App SDK app (WinUI 3, WPF, WinForms),
    /// from <see cref="PushNotificationManager"/>: what <see cref="WnsChannelKeeper"/> needs.
    /// Create one per process, early in startup.
    /// </summary>
    /// <remarks>
    /// The constructor subscribes <see cref="PushNotificationManager.PushReceived"/> and then calls
    /// <see cref="PushNotificationManager.Register()"/>, in that order as Microsoft requires: with the
    /// handler in place, pushes that arrive while the app runs come to this process; without it,
    /// Windows starts another one. Pushes that arrive while the app does not run launch it with a
    /// push activation, which <see cref="HandleLaunchActivation"/> hands to the agent.
    /// </remarks>
    public sealed class AppSdkPushChannelSource : IWnsChannelSource, IDisposable
    {
        /// <summary>Pushes kept while nobody listens yet (between Register() and the keeper's subscription).</summary>
        private const int MaxEarly = 16;

        private readonly Guid remoteId;
        private readonly PushNotificationManager manager;
        private readonly object gate = new object();
        private readonly Queue<string> early = new Queue<string>();
        private EventHandler<string> received;

        /// <summary>
        /// Registers this process for pushes. <paramref name="remoteId"/> identifies the app to WNS:
        /// the object id of the Entra app registration's service principal (in the portal, the
        /// "Managed application in local directory" of the registration), not its client id.
        /// </summary>
        /// <exception cref="NotSupportedException">When Windows App SDK push is not available to this app (see <see cref="IsSupported"/>).</exception>
        public AppSdkPushChannelSource(Guid remoteId)
        {
            if (remoteId == Guid.Empty) throw new ArgumentException("the Entra object id of the app is required", nameof(remoteId));
            if (!PushNotificationManager.IsSupported())
            {
                throw new NotSupportedException(
                    "Windows App SDK push notifications are not supported for this app "
                    + "(PushNotificationManager.IsSupported() is false: a self-contained app without the Windows App SDK Singleton package?)");
            }
            this.remoteId = remoteId;
            manager = PushNotificationManager.Default;
            manager.PushReceived += OnPushReceived;
            manager.Register();
        }

        /// <summary>Whether this app can use Windows App SDK push (<see cref="PushNotificationManager.IsSupported"/>).</summary>
        public static bool IsSupported
        {
            get { return PushNotificationManager.IsSupported(); }
        }

        /// <summary>
        /// The UTF-8 content of a raw notification that arrived while the app runs (raised on a
        /// thread-pool thread). Pushes that arrived after <c>Register()</c> but before the first
        /// handler was added are raised to that handler when it is added, so none is lost at startup.
        /// </summary>
        public event EventHandler<string> RawNotificationReceived
        {
            add
            {
                string[] pending;
                lock (gate)
                {
                    received += value;
                    pending = early.ToArray();
                    early.Clear();
                }
                foreach (var content in pending) value(this, content);
            }
            remove
            {
                lock (gate) received -= value;
            }
        }

        /// <summary>
        /// Requests the app's channel. Windows retries internally for up to 15 minutes before it
        /// reports a failure.
        /// </summary>
        /// <exception cref="InvalidOperationException">When Windows could not create the channel; the inner exception is its error.</exception>
        public async Task<WnsChannel> OpenChannelAsync()
        {
            var result = await manager.CreateChannelAsync(remoteId).AsTask().ConfigureAwait(false);
            if (result.Status != PushNotificationChannelStatus.CompletedSuccess || result.Channel == null)
            {
                var error = result.ExtendedError;
                var detail = error == null ? string.Empty : ", 0x" + error.HResult.ToString("X8") + " " + error.Message;
                throw new InvalidOperationException(
                    "Windows could not create the push channel (" + result.Status + detail + "); check the remote id "
                    + remoteId + " (the Entra object id) and that Microsoft mapped the package family name to the app id",
                    error);
            }
            // OriginalString: the URI exactly as WNS issued it (the server must not see it re-escaped).
            return new WnsChannel(result.Channel.Uri.OriginalString, result.Channel.ExpirationTime);
        }

        /// <summary>
        /// When a push launched this process (the app was not running), hands its content to
        /// <paramref name="agent"/> and returns the outcome; returns null for any other launch.
        /// Call it once at startup, after creating the agent (and after any other Windows App SDK
        /// <c>Register()</c> the app makes: Windows reads the activation only after those).
        /// </summary>
        public HandleOutcome HandleLaunchActivation(CallAgent agent)
        {
            if (agent == null) throw new ArgumentNullException(nameof(agent));
            var activation = AppInstance.GetCurrent().GetActivatedEventArgs();
            if (activation == null || activation.Kind != ExtendedActivationKind.Push) return null;
            var push = activation.Data as PushNotificationReceivedEventArgs;
            if (push == null) return null;
            // The deferral keeps Windows from throttling the process while the push is handled.
            var deferral = push.GetDeferral();
            try
            {
                return agent.HandlePushNotification(Decode(push.Payload));
            }
            finally
            {
                deferral.Complete();
            }
        }

        /// <summary>
        /// Stops raising <see cref="RawNotificationReceived"/>. The process stays registered, so a
        /// push that arrives after the app closed still launches it.
        /// </summary>
        public void Dispose()
        {
            manager.PushReceived -= OnPushReceived;
        }

        private void OnPushReceived(PushNotificationManager sender, PushNotificationReceivedEventArgs args)
        {
            var content = Decode(args.Payload);
            EventHandler<string> handler;
            lock (gate)
            {
                handler = received;
                if (handler == null)
                {
                    if (early.Count < MaxEarly) early.Enqueue(content);
                    return;
                }
            }
            var deferral = args.GetDeferral();
            try
            {
                handler(this, content);
            }
            finally
            {
                deferral.Complete();
            }
        }

        private static string Decode(byte[] payload)
        {
            return payload == null ? string.Empty : Encoding.UTF8.GetString(payload);
        }
    }
}
#endif
