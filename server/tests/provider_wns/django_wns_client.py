"""Sends one raw notification with django-push-notifications' WNS client (an independent WNS
sender from PyPI), pointed at any token endpoint and channel URI.

Usage: django_wns_client.py ACCESS_URL CHANNEL_URI PACKAGE_SID CLIENT_SECRET PAYLOAD

Prints `ok` and exits 0 when the library reports success; otherwise prints
`error: <exception type>: <message>` and exits 1.
"""

import sys

import django
from django.conf import settings


def main() -> int:
    access_url, channel, package_sid, secret, payload = sys.argv[1:6]
    settings.configure(
        PUSH_NOTIFICATIONS_SETTINGS={
            "WNS_PACKAGE_SECURITY_ID": package_sid,
            "WNS_SECRET_KEY": secret,
            "WNS_ACCESS_URL": access_url,
        },
    )
    django.setup()
    from push_notifications.wns import wns_send_message

    try:
        wns_send_message(uri=channel, raw_data=payload)
    except Exception as error:  # report whatever the library raised, for the Rust test
        print(f"error: {type(error).__name__}: {error}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
