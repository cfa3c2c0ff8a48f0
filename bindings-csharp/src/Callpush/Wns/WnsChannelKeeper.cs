using System;
using System.Threading;
using System.Threading.Tasks;

namespace Callpush
{
    /// <summary>A WNS channel as Windows hands it out.</summary>
    public sealed class WnsChannel
    {
        /// <summary>Creates one.</summary>
        public WnsChannel(string uri, DateTimeOffset expiresAt)
        {
            Uri = uri;
            ExpiresAt = expiresAt;
        }

        /// <summary>The channel URI: the device token the server pushes to.</summary>
        public string Uri { get; }

        /// <summary>When Windows stops delivering to it (30 days after it was created).</summary>
        public DateTimeOffset ExpiresAt { get; }
    }

    /// <summary>
    /// Where WNS channels and raw notifications come from: <c>PushNotificationChannelManager</c>
    /// (UWP) or <c>PushNotificationManager</c> (Windows App SDK), in Callpush.Windows.
    /// </summary>
    public interface IWnsChannelSource
    {
        /// <summary>Requests the app's channel (the same URI while it is valid, a new one after).</summary>
        Task<WnsChannel> OpenChannelAsync();

        /// <summary>
        /// A raw notification's content arrived while the app runs. Implementations raise it
        /// synchronously from the WinRT event, so the toast is up before the event returns.
        /// </summary>
        event EventHandler<string> RawNotificationReceived;
    }

    /// <summary>When a channel is renewed: pure functions of the channel's expiry and now.</summary>
    public static class WnsChannelPolicy
    {
        /// <summary>Renewals start this long before a channel expires.</summary>
        public static readonly TimeSpan RenewBefore = TimeSpan.FromDays(5);

        /// <summary>A failed renewal is tried again after this long.</summary>
        public static readonly TimeSpan RetryAfter = TimeSpan.FromMinutes(15);

        /// <summary>When to request the channel again: five days before it expires, at once if that has passed.</summary>
        public static DateTimeOffset RenewAt(DateTimeOffset expiresAt, DateTimeOffset now)
        {
            var at = expiresAt - RenewBefore;
            return at > now ? at : now;
        }

        /// <summary>Whether <paramref name="channelUri"/> must be registered: it differs from the registered token.</summary>
        public static bool NeedsRegistration(Registration current, string channelUri)
        {
            return current == null || !string.Equals(current.Token, channelUri, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// Keeps the WNS channel registered: requests it at start (Microsoft asks apps to do so at
    /// every launch), registers it when the URI differs from the registered one, renews it five
    /// days before its 30 days run out, and hands every raw notification to the agent.
    /// </summary>
    public sealed class WnsChannelKeeper : IDisposable
    {
        private readonly CallAgent agent;
        private readonly IWnsChannelSource source;
        private readonly Func<DateTimeOffset> clock;
        private readonly object gate = new object();
        private Timer timer;
        private bool disposed;

        /// <summary>Keeps <paramref name="agent"/>'s channel from <paramref name="source"/>; <paramref name="clock"/> is for tests.</summary>
        public WnsChannelKeeper(CallAgent agent, IWnsChannelSource source, Func<DateTimeOffset> clock = null)
        {
            if (agent == null) throw new ArgumentNullException("agent");
            if (source == null) throw new ArgumentNullException("source");
            this.agent = agent;
            this.source = source;
            this.clock = clock ?? (() => DateTimeOffset.UtcNow);
            source.RawNotificationReceived += OnRaw;
        }

        /// <summary>The channel last opened, if any.</summary>
        public WnsChannel Channel { get; private set; }

        /// <summary>When the channel is requested again, if scheduled.</summary>
        public DateTimeOffset? NextRenewal { get; private set; }

        /// <summary>
        /// Opens the channel, registers it if it changed, and schedules its renewal. Call it at
        /// every launch; a failure is thrown here and tried again after <see cref="WnsChannelPolicy.RetryAfter"/>.
        /// </summary>
        /// <exception cref="CallpushException">When the server refuses the registration.</exception>
        public async Task<WnsChannel> RefreshAsync()
        {
            try
            {
                var channel = await source.OpenChannelAsync().ConfigureAwait(false);
                if (channel == null || string.IsNullOrEmpty(channel.Uri))
                {
                    throw new InvalidOperationException("Windows returned no push channel");
                }
                if (WnsChannelPolicy.NeedsRegistration(agent.Client.Registration(), channel.Uri))
                {
                    await agent.RegisterForPushNotificationAsync(channel.Uri).ConfigureAwait(false);
                }
                Channel = channel;
                Schedule(WnsChannelPolicy.RenewAt(channel.ExpiresAt, clock()));
                return channel;
            }
            catch (Exception)
            {
                Schedule(clock() + WnsChannelPolicy.RetryAfter);
                throw;
            }
        }

        /// <summary>Stops renewing and listening.</summary>
        public void Dispose()
        {
            lock (gate)
            {
                disposed = true;
                if (timer != null) timer.Dispose();
                timer = null;
            }
            source.RawNotificationReceived -= OnRaw;
        }

        private void OnRaw(object sender, string content)
        {
            agent.HandlePushNotification(content);
        }

        private void Schedule(DateTimeOffset at)
        {
            lock (gate)
            {
                if (disposed) return;
                NextRenewal = at;
                var delay = at - clock();
                // Timer periods cap near 49 days; a channel lives 30.
                var ms = (long)Math.Max(0, Math.Min(delay.TotalMilliseconds, int.MaxValue - 1));
                if (timer != null) timer.Dispose();
                timer = new Timer(_ => Renew(), null, ms, Timeout.Infinite);
            }
        }

        private void Renew()
        {
            // Failures were rescheduled by RefreshAsync; the task is observed so none goes unnoticed.
            RefreshAsync().ContinueWith(t => { var ignored = t.Exception; }, TaskContinuationOptions.OnlyOnFaulted);
        }
    }
}
