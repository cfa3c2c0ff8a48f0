#if WINDOWS_UWP
using System;
using System.Threading.Tasks;
using Windows.ApplicationModel.Background;
using Windows.Networking.PushNotifications;

namespace Callpush.Windows
{
    /// <summary>
    /// The WNS channel and raw notifications of a UWP app, from
    /// <see cref="PushNotificationChannelManager"/>: what <see cref="WnsChannelKeeper"/> needs.
    /// </summary>
    /// <remarks>
    /// <para>
    /// While the app runs, raw notifications arrive on the channel's
    /// <see cref="PushNotificationChannel.PushNotificationReceived"/> event and are raised here as
    /// <see cref="RawNotificationReceived"/>, synchronously. When the app does not run, Windows
    /// starts its background task registered with a <see cref="PushNotificationTrigger"/> instead;
    /// <see cref="RawContentOf"/> reads the notification there.
    /// </para>
    /// <para>
    /// Every raw notification is handed on, callpush's or not (the agent ignores the others), and
    /// is marked handled (<see cref="PushNotificationReceivedEventArgs.Cancel"/>) so the background
    /// task does not get it a second time. Nothing is marked while no one listens.
    /// </para>
    /// </remarks>
    public sealed class UwpPushChannelSource : IWnsChannelSource, IDisposable
    {
        private readonly object gate = new object();
        private PushNotificationChannel channel;
        private bool disposed;

        /// <summary>The content of a raw notification that arrived while the app runs.</summary>
        public event EventHandler<string> RawNotificationReceived;

        /// <summary>
        /// Requests the app's channel. Windows returns a new channel object each time (with the
        /// same URI while it is valid); the source listens to the newest one only.
        /// </summary>
        /// <exception cref="Exception">The WinRT error when Windows cannot create the channel (no network, WNS unreachable).</exception>
        public async Task<WnsChannel> OpenChannelAsync()
        {
            var opened = await PushNotificationChannelManager.CreatePushNotificationChannelForApplicationAsync()
                .AsTask().ConfigureAwait(false);
            lock (gate)
            {
                if (disposed) throw new ObjectDisposedException(nameof(UwpPushChannelSource));
                if (!ReferenceEquals(opened, channel))
                {
                    // The old object is only unsubscribed: Close() would invalidate the URI at WNS,
                    // and the new object usually carries that same URI.
                    if (channel != null) channel.PushNotificationReceived -= OnPushNotificationReceived;
                    opened.PushNotificationReceived += OnPushNotificationReceived;
                    channel = opened;
                }
            }
            return new WnsChannel(opened.Uri, opened.ExpirationTime);
        }

        /// <summary>
        /// The content of the raw notification that started a background task, or null when the
        /// task was started by another trigger. For the app's <c>OnBackgroundActivated</c> (or its
        /// <c>IBackgroundTask.Run</c>) with a <see cref="PushNotificationTrigger"/> registration.
        /// </summary>
        public static string RawContentOf(IBackgroundTaskInstance taskInstance)
        {
            if (taskInstance == null) throw new ArgumentNullException(nameof(taskInstance));
            var raw = taskInstance.TriggerDetails as RawNotification;
            return raw == null ? null : raw.Content;
        }

        /// <summary>Stops listening to the channel; the channel itself stays valid at WNS.</summary>
        public void Dispose()
        {
            lock (gate)
            {
                disposed = true;
                if (channel != null) channel.PushNotificationReceived -= OnPushNotificationReceived;
                channel = null;
            }
        }

        private void OnPushNotificationReceived(PushNotificationChannel sender, PushNotificationReceivedEventArgs args)
        {
            if (args.NotificationType != PushNotificationType.Raw || args.RawNotification == null) return;
            var handler = RawNotificationReceived;
            if (handler == null) return;
            args.Cancel = true;
            handler(this, args.RawNotification.Content);
        }
    }
}
#endif
