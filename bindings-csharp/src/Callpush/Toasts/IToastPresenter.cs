using System;

namespace Callpush
{
    /// <summary>A toast to show: its XML payload and where it sits in the notification center.</summary>
    public sealed class Toast
    {
        /// <summary>Creates one.</summary>
        public Toast(string xml, string tag, string group, DateTimeOffset? expiresAt)
        {
            Xml = xml;
            Tag = tag;
            Group = group;
            ExpiresAt = expiresAt;
        }

        /// <summary>The toast's XML (the Windows toast schema).</summary>
        public string Xml { get; }

        /// <summary>Identifies the toast within its group, so it can be replaced or removed: the call id.</summary>
        public string Tag { get; }

        /// <summary><see cref="CallToasts.IncomingGroup"/> or <see cref="CallToasts.MissedGroup"/>.</summary>
        public string Group { get; }

        /// <summary>When Windows removes it by itself (an incoming call's ring deadline), if ever.</summary>
        public DateTimeOffset? ExpiresAt { get; }
    }

    /// <summary>
    /// Shows and removes toasts: the one WinRT call <see cref="ToastCallUi"/> needs. Callpush.Windows
    /// implements it for UWP (<c>ToastNotificationManager</c>) and the Windows App SDK
    /// (<c>AppNotificationManager</c>); tests implement it with a list.
    /// </summary>
    public interface IToastPresenter
    {
        /// <summary>Shows <paramref name="toast"/>, replacing one with the same tag and group.</summary>
        void Show(Toast toast);

        /// <summary>Removes the toast with <paramref name="tag"/> in <paramref name="group"/>, if it is there.</summary>
        void Remove(string tag, string group);
    }
}
