using System;

namespace Callpush
{
    /// <summary>What the user did on a callpush toast.</summary>
    public enum ToastAction
    {
        /// <summary>Clicked the toast itself: open the app.</summary>
        Open,

        /// <summary>Pressed Accept.</summary>
        Accept,

        /// <summary>Pressed Decline.</summary>
        Decline,
    }

    /// <summary>
    /// The arguments of a callpush toast activation, <c>callpush=accept&amp;callId=…</c>: made when
    /// the toast is built and parsed back when Windows activates the app with them.
    /// </summary>
    public sealed class ToastActivation
    {
        private const string Key = "callpush";
        private const int MaxCallId = 64;

        private ToastActivation(ToastAction action, string callId)
        {
            Action = action;
            CallId = callId;
        }

        /// <summary>What the user did.</summary>
        public ToastAction Action { get; }

        /// <summary>The call the toast was for.</summary>
        public string CallId { get; }

        /// <summary>The activation arguments of <paramref name="action"/> on <paramref name="callId"/>.</summary>
        public static string Format(ToastAction action, string callId)
        {
            return Key + "=" + action.ToString().ToLowerInvariant() + "&callId=" + Uri.EscapeDataString(callId ?? string.Empty);
        }

        /// <summary>
        /// Reads activation arguments. False for anything that is not a well-formed callpush
        /// activation (the app's own toasts, or arguments tampered with): those are never acted on.
        /// </summary>
        public static bool TryParse(string arguments, out ToastActivation activation)
        {
            activation = null;
            if (string.IsNullOrEmpty(arguments) || arguments.Length > 512) return false;
            string action = null;
            string callId = null;
            foreach (var pair in arguments.Split('&'))
            {
                var eq = pair.IndexOf('=');
                if (eq <= 0) return false;
                var name = pair.Substring(0, eq);
                string value;
                try
                {
                    value = Uri.UnescapeDataString(pair.Substring(eq + 1));
                }
                catch (UriFormatException)
                {
                    return false;
                }
                if (name == Key && action == null) action = value;
                else if (name == "callId" && callId == null) callId = value;
                else return false;
            }
            ToastAction parsed;
            if (action == null || !TryAction(action, out parsed) || !IsCallId(callId)) return false;
            activation = new ToastActivation(parsed, callId);
            return true;
        }

        private static bool TryAction(string text, out ToastAction action)
        {
            switch (text)
            {
                case "open": action = ToastAction.Open; return true;
                case "accept": action = ToastAction.Accept; return true;
                case "decline": action = ToastAction.Decline; return true;
                default: action = ToastAction.Open; return false;
            }
        }

        /// <summary>A call id as the server issues them: 1 to 64 ASCII letters, digits and <c>-_.:</c>.</summary>
        private static bool IsCallId(string id)
        {
            if (string.IsNullOrEmpty(id) || id.Length > MaxCallId) return false;
            foreach (var c in id)
            {
                var ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '_' || c == '.' || c == ':';
                if (!ok) return false;
            }
            return true;
        }
    }
}
