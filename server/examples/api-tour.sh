#!/usr/bin/env bash
# A tour of the callpush API with curl, exactly as server/README.md shows it. Run from a
# directory where `callpush serve --dev` runs with no configuration (it writes its development
# credentials there), or let the test suite run it: tests/run.sh does.
#
#   CALLPUSH=target/debug/callpush server/examples/api-tour.sh
set -euo pipefail
callpush=${CALLPUSH:-callpush}
base=${CALLPUSH_URL:-http://127.0.0.1:8080}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# Credentials: the API key of the app backend, and a device token for user bob.
API_KEY=$(json "['api_key']" < callpush-dev-credentials.json)
BOB=$("$callpush" token --user bob)

# 1. Bob's phone registers its FCM token (a device call, with Bob's token).
curl -sf -X PUT "$base/v1/installations/bob-phone" \
  -H "Authorization: Bearer $BOB" -H 'Content-Type: application/json' \
  -d '{"platform": "fcm", "token": "fcm-token-0123456789", "ttl_seconds": 86400}'
echo

# 2. The app backend rings Bob (a backend call, with the API key).
CALL=$(curl -sf -X POST "$base/v1/calls" \
  -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
  -d '{"from": {"id": "alice", "name": "Alice"}, "to": ["bob"], "video": true, "ring_seconds": 30}' \
  | tee /dev/stderr | json "['call_id']")

# 3. Bob's phone asks how the call stands (long-polling up to 5 s for a change)...
curl -sf "$base/v1/calls/$CALL?wait=5" -H "Authorization: Bearer $BOB"
echo

# 4. ...and answers.
curl -sf -X POST "$base/v1/calls/$CALL/answer" \
  -H "Authorization: Bearer $BOB" -H 'Content-Type: application/json' \
  -d '{"installation_id": "bob-phone"}'
echo

# 5. The backend reads the call with its per-device delivery timeline.
curl -sf "$base/v1/calls/$CALL" -H "Authorization: Bearer $API_KEY" | json "['state']"

# 6. Bob signs out: the phone withdraws its installation.
curl -sf -X DELETE "$base/v1/installations/bob-phone" -H "Authorization: Bearer $BOB" -o /dev/null -w '%{http_code}\n'
