"""Sends through the FCM emulator with the Firebase Admin Python SDK (PyPI `firebase-admin`).

Usage: firebase_admin_send.py SERVICE_ACCOUNT_JSON BASE_URL GOOD_TOKEN UNREGISTERED_TOKEN

The SDK authenticates with the service-account file as it does against Google (its `token_uri`
names the emulator's token endpoint) and sends to the emulator's base URL: the SDK has no
option for the FCM endpoint, so its `_MessagingService.FCM_URL` template is pointed there
before the app is created. Prints one JSON line with what each call returned.
"""

import json
import sys

import firebase_admin
from firebase_admin import credentials, exceptions, messaging


def main() -> None:
    service_account, base_url, good_token, dead_token = sys.argv[1:5]
    messaging._MessagingService.FCM_URL = base_url.rstrip("/") + "/v1/projects/{0}/messages:send"
    app = firebase_admin.initialize_app(credentials.Certificate(service_account), name="callpush-emulator")

    def call_push(token: str) -> messaging.Message:
        return messaging.Message(
            token=token,
            data={"callpush": "sdk-jws"},
            android=messaging.AndroidConfig(priority="high", ttl=30, collapse_key="call-sdk"),
        )

    result = {
        "name": messaging.send(call_push(good_token), app=app),
        "dry_run": messaging.send(call_push(good_token), dry_run=True, app=app),
    }
    try:
        messaging.send(call_push(dead_token), app=app)
        result["unregistered"] = "sent"
    except exceptions.FirebaseError as error:
        result["unregistered"] = type(error).__name__
    try:
        messaging.send(call_push("not-a-token"), app=app)
        result["invalid_argument"] = "sent"
    except exceptions.FirebaseError as error:
        result["invalid_argument"] = type(error).__name__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
