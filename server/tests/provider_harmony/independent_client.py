"""An independent Push Kit v3 client: Huawei's documented recipe with PyJWT and requests.

No Push Kit v3 server SDK that can target another endpoint is published on PyPI, npm,
crates.io or Maven Central, so this follows Huawei's "Generating a JWT Based on a Service
Account" and scenario-specific messaging pages with general-purpose libraries instead: a
PS256 JWT signed by PyJWT / cryptography (not the Rust crates the sender uses) sent as the
bearer token, and the documented request bodies.

Usage: independent_client.py BASE_URL SERVICE_ACCOUNT_JSON TOKEN
Prints one JSON line per request: {"push_type": ..., "status": ..., "answer": {...}}.
"""

import json
import sys
import time

import jwt
import requests


def service_account_jwt(account):
    now = int(time.time())
    claims = {
        "iss": account["sub_account"],
        "aud": "https://oauth-login.cloud.huawei.com/oauth2/v3/token",
        "iat": now,
        "exp": now + 3600,
    }
    headers = {"kid": account["key_id"], "typ": "JWT", "alg": "PS256"}
    return jwt.encode(claims, account["private_key"], algorithm="PS256", headers=headers)


def main():
    base_url, account_file, token = sys.argv[1:4]
    with open(account_file, encoding="utf-8") as f:
        account = json.load(f)
    url = f"{base_url}/v3/{account['project_id']}/messages:send"
    bearer = service_account_jwt(account)
    messages = [
        (
            "10",
            {
                "payload": {"extraData": json.dumps({"callpush": "a.b.c"})},
                "target": {"token": [token]},
                "pushOptions": {"ttl": 30, "biTag": "independent-client", "testMessage": False},
            },
        ),
        (
            "0",
            {
                "payload": {
                    "notification": {
                        "category": "MISS_CALL",
                        "title": "Missed call",
                        "body": "Alice called",
                        "clickAction": {"actionType": 0},
                        "appMessageId": "missed-independent",
                    }
                },
                "target": {"token": [token]},
                "pushOptions": {"ttl": 86400},
            },
        ),
    ]
    for push_type, body in messages:
        response = requests.post(
            url,
            data=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {bearer}",
                "push-type": push_type,
            },
            timeout=10,
        )
        print(json.dumps({"push_type": push_type, "status": response.status_code, "answer": response.json()}))


if __name__ == "__main__":
    main()
