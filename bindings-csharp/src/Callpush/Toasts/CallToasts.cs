using System;
using System.Xml.Linq;

namespace Callpush
{
    /// <summary>
    /// The XML of callpush's toasts. Windows shows an incoming call as a toast with the
    /// <c>incomingCall</c> scenario: it stays on screen, rings with the looping call sound and
    /// offers its buttons until the user acts or the toast is removed.
    /// </summary>
    public static class CallToasts
    {
        /// <summary>The toast group of ringing calls.</summary>
        public const string IncomingGroup = "callpush.incoming";

        /// <summary>The toast group of missed calls.</summary>
        public const string MissedGroup = "callpush.missed";

        /// <summary>The words on the toasts; replace them to localise.</summary>
        public sealed class Words
        {
            /// <summary>Second line of an incoming audio call.</summary>
            public string IncomingAudio { get; set; } = "Incoming call";

            /// <summary>Second line of an incoming video call.</summary>
            public string IncomingVideo { get; set; } = "Incoming video call";

            /// <summary>The accept button.</summary>
            public string Accept { get; set; } = "Accept";

            /// <summary>The decline button.</summary>
            public string Decline { get; set; } = "Decline";

            /// <summary>Title of a missed-call toast.</summary>
            public string Missed { get; set; } = "Missed call";
        }

        /// <summary>
        /// An incoming-call toast for <paramref name="callId"/> from <paramref name="caller"/>:
        /// Accept (brings the app to the foreground) and Decline (handled in the background).
        /// Text is escaped by the XML writer: a caller name cannot change the toast's structure.
        /// </summary>
        public static string IncomingCall(string callId, string caller, bool video, Words words = null)
        {
            words = words ?? new Words();
            var toast = new XElement("toast",
                new XAttribute("scenario", "incomingCall"),
                new XAttribute("launch", ToastActivation.Format(ToastAction.Open, callId)),
                new XAttribute("activationType", "foreground"),
                Visual(caller, video ? words.IncomingVideo : words.IncomingAudio),
                new XElement("audio",
                    new XAttribute("src", "ms-winsoundevent:Notification.Looping.Call"),
                    new XAttribute("loop", "true")),
                new XElement("actions",
                    Action(words.Accept, ToastAction.Accept, callId, "foreground"),
                    Action(words.Decline, ToastAction.Decline, callId, "background")));
            return toast.ToString(SaveOptions.DisableFormatting);
        }

        /// <summary>A missed-call toast: clicking it opens the app on the call.</summary>
        public static string MissedCall(string callId, string caller, Words words = null)
        {
            words = words ?? new Words();
            var toast = new XElement("toast",
                new XAttribute("launch", ToastActivation.Format(ToastAction.Open, callId)),
                new XAttribute("activationType", "foreground"),
                Visual(words.Missed, caller));
            return toast.ToString(SaveOptions.DisableFormatting);
        }

        private static XElement Visual(string first, string second)
        {
            return new XElement("visual",
                new XElement("binding",
                    new XAttribute("template", "ToastGeneric"),
                    new XElement("text", first ?? string.Empty),
                    new XElement("text", second ?? string.Empty)));
        }

        private static XElement Action(string content, ToastAction action, string callId, string activation)
        {
            return new XElement("action",
                new XAttribute("content", content),
                new XAttribute("arguments", ToastActivation.Format(action, callId)),
                new XAttribute("activationType", activation));
        }
    }
}
