"""Seeds the server for tests/openapi/run.sh: the installation and the ringing call the OpenAPI
document's examples name, so the examples phase reaches real state (a device answering a call it
is rung for, an app backend reading a call's deliveries and timeline) instead of 404s.

Usage: seed.py BASE_URL DEVICE_TOKEN API_KEY  (the device token is the callee's, `bob`)
"""

import json
import sys
import urllib.error
import urllib.request


def call(method, url, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def example(doc, path, method, name):
    for parameter in doc["paths"][path][method].get("parameters", []):
        if parameter["name"] == name:
            return parameter["example"]
    raise KeyError(f"{method.upper()} {path} documents no example for {name}")


def main():
    base, device_token, api_key = sys.argv[1:4]
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:
        doc = json.load(response)
    path = "/v1/installations/{installation_id}"
    installation = example(doc, path, "put", "installation_id")
    withdrawn = example(doc, path, "delete", "installation_id")
    call_id = example(doc, "/v1/calls/{call_id}", "get", "call_id")
    body = doc["paths"][path]["put"]["requestBody"]["content"]["application/json"]["example"]

    # The installation the examples answer and decline with, and the one DELETE's example
    # withdraws. A token rings one installation only, so the second gets a token of its own.
    for name, token in [(installation, body["token"]), (withdrawn, body["token"] + "-old")]:
        status, answer = call("PUT", f"{base}/v1/installations/{name}", device_token, {**body, "token": token})
        if status != 200:
            sys.exit(f"seeding installation {name}: {status} {answer}")
    user = answer["user_id"]
    ring = {"call_id": call_id, "from": {"id": "alice"}, "to": [user], "ring_seconds": 120}
    status, answer = call("POST", f"{base}/v1/calls", api_key, ring)
    if status != 202 or len(answer["deliveries"]) != 2:
        sys.exit(f"seeding call {call_id}: {status} {answer}")
    print(f"openapi: seeded {user}'s installations `{installation}` and `{withdrawn}`, and call `{call_id}` ringing them")


if __name__ == "__main__":
    main()
