#if WINDOWS_UWP
using System;
using Windows.ApplicationModel.Background;
using Windows.Data.Xml.Dom;
using Windows.UI.Notifications;

namespace Callpush.Windows
{
    /// <summary>
    /// Shows and removes callpush's toasts in a UWP app, with <see cref="ToastNotificationManager"/>:
    /// the presenter of <see cref="ToastCallUi"/>.
    /// </summary>
    /// <remarks>
    /// A UWP app receives the toast's activations itself: Accept and a click on the toast in
    /// <c>Application.OnActivated</c> (<c>ToastNotificationActivatedEventArgs.Argument</c>), Decline
    /// (a background button) in its background task registered with a
    /// <see cref="ToastNotificationActionTrigger"/>, read with <see cref="ArgumentOf"/>. Both go to
    /// <see cref="CallAgent.HandleToastActivationAsync"/>.
    /// </remarks>
    public sealed class UwpToastPresenter : IToastPresenter
    {
        private readonly ToastNotifier notifier;

        /// <summary>Creates the app's toast notifier.</summary>
        public UwpToastPresenter()
        {
            notifier = ToastNotificationManager.CreateToastNotifier();
        }

        /// <summary>Shows <paramref name="toast"/>; one with the same tag and group is replaced.</summary>
        public void Show(Toast toast)
        {
            if (toast == null) throw new ArgumentNullException(nameof(toast));
            var xml = new XmlDocument();
            xml.LoadXml(toast.Xml);
            var notification = new ToastNotification(xml)
            {
                Tag = toast.Tag,
                Group = toast.Group,
                ExpirationTime = toast.ExpiresAt,
            };
            notifier.Show(notification);
        }

        /// <summary>Removes the toast with <paramref name="tag"/> in <paramref name="group"/> from the screen and the notification center.</summary>
        public void Remove(string tag, string group)
        {
            ToastNotificationManager.History.Remove(tag, group);
        }

        /// <summary>
        /// The arguments of the toast button that started a background task, or null when the
        /// task was started by another trigger. For the app's <c>OnBackgroundActivated</c> with a
        /// <see cref="ToastNotificationActionTrigger"/> registration.
        /// </summary>
        public static string ArgumentOf(IBackgroundTaskInstance taskInstance)
        {
            if (taskInstance == null) throw new ArgumentNullException(nameof(taskInstance));
            var detail = taskInstance.TriggerDetails as ToastNotificationActionTriggerDetail;
            return detail == null ? null : detail.Argument;
        }
    }
}
#endif
