#if !WINDOWS_UWP
using System;
using System.Diagnostics;
using System.Threading.Tasks;
using Microsoft.Windows.AppLifecycle;
using Microsoft.Windows.AppNotifications;

namespace Callpush.Windows
{
    /// <summary>
    /// Shows and removes callpush's toasts in a Windows App SDK app, with
    /// <see cref="AppNotificationManager"/>: the presenter of <see cref="ToastCallUi"/>, and the
    /// source of the toasts' activations. Create one per process, early in startup.
    /// </summary>
    /// <remarks>
    /// <para>
    /// The constructor subscribes <see cref="AppNotificationManager.NotificationInvoked"/> and then
    /// calls <see cref="AppNotificationManager.Register()"/>, in that order as Microsoft requires:
    /// clicks on a toast while the app runs then come to this process as
    /// <see cref="ToastActivated"/>. A click while the app does not run launches it;
    /// <see cref="LaunchArgument"/> reads that activation.
    /// </para>
    /// <para>
    /// The Windows App SDK ignores <c>activationType="background"</c> in desktop apps: Decline
    /// activates the app like Accept does, and the app decides not to show a window.
    /// </para>
    /// </remarks>
    public sealed class AppSdkToastPresenter : IToastPresenter, IDisposable
    {
        private readonly AppNotificationManager manager;
        private bool registered;

        /// <summary>Registers this process as the target of the app's toast activations.</summary>
        /// <exception cref="NotSupportedException">When Windows App SDK notifications are not available to this app.</exception>
        public AppSdkToastPresenter()
        {
            if (!AppNotificationManager.IsSupported())
            {
                throw new NotSupportedException("Windows App SDK app notifications are not supported for this app (AppNotificationManager.IsSupported() is false)");
            }
            manager = AppNotificationManager.Default;
            manager.NotificationInvoked += OnNotificationInvoked;
            manager.Register();
            registered = true;
        }

        /// <summary>
        /// The user clicked a toast or one of its buttons while the app runs: the activation's
        /// arguments, for <see cref="CallAgent.HandleToastActivationAsync"/>. Raised on a
        /// thread-pool thread; bring a window forward through its <c>DispatcherQueue</c>.
        /// </summary>
        public event EventHandler<string> ToastActivated;

        /// <summary>Shows <paramref name="toast"/>; one with the same tag and group is replaced.</summary>
        public void Show(Toast toast)
        {
            if (toast == null) throw new ArgumentNullException(nameof(toast));
            var notification = new AppNotification(toast.Xml)
            {
                Tag = toast.Tag,
                Group = toast.Group,
            };
            if (toast.ExpiresAt.HasValue) notification.Expiration = toast.ExpiresAt.Value;
            manager.Show(notification);
        }

        /// <summary>
        /// Removes the toast with <paramref name="tag"/> in <paramref name="group"/>. The Windows App
        /// SDK removes asynchronously; the removal is started here and a failure written to
        /// <see cref="Trace"/>.
        /// </summary>
        public void Remove(string tag, string group)
        {
            manager.RemoveByTagAndGroupAsync(tag, group).AsTask().ContinueWith(
                t => Trace.TraceError("callpush: removing the toast " + group + "/" + tag + " failed: " + t.Exception.GetBaseException().Message),
                TaskContinuationOptions.OnlyOnFaulted);
        }

        /// <summary>
        /// The arguments of the toast click that launched this process, or null when something
        /// else launched it. Call it once at startup, after creating the presenter (Windows reads
        /// the activation only after <c>Register()</c>).
        /// </summary>
        public string LaunchArgument()
        {
            var activation = AppInstance.GetCurrent().GetActivatedEventArgs();
            if (activation == null || activation.Kind != ExtendedActivationKind.AppNotification) return null;
            var notification = activation.Data as AppNotificationActivatedEventArgs;
            return notification == null ? null : notification.Argument;
        }

        /// <summary>
        /// Stops raising <see cref="ToastActivated"/> and unregisters the process (Microsoft asks
        /// apps to do so when they exit), so a later click launches the app again.
        /// </summary>
        public void Dispose()
        {
            manager.NotificationInvoked -= OnNotificationInvoked;
            if (registered)
            {
                registered = false;
                manager.Unregister();
            }
        }

        private void OnNotificationInvoked(AppNotificationManager sender, AppNotificationActivatedEventArgs args)
        {
            var handler = ToastActivated;
            if (handler != null) handler(this, args.Argument);
        }
    }
}
#endif
