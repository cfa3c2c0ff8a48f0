"""Drives a fresh `callpush serve --dev` and reads its /metrics with Prometheus' own parser.

Usage: check.py BASE_URL API_KEY DEVICE_TOKEN README

Registers a device, rings it, long-polls the call (1 s), answers, reads the call as the backend,
asks for a route that does not exist; then fetches /metrics and checks, with
`prometheus_client.parser.text_string_to_metric_families` (Prometheus' text format 0.0.4, the
content type the server declares):

- the content type is `text/plain; version=0.0.4; charset=utf-8`;
- every family parses with its declared type: counter, gauge or histogram, never `unknown`;
- every counter sample is named `..._total`;
- every histogram series is complete: buckets up to `+Inf`, cumulative, `_count` equal to the
  `+Inf` bucket, a `_sum`;
- the process metrics (Linux), `callpush_build_info{version} 1`, and the long-poll in
  `callpush_http_long_poll_seconds`, not in `callpush_http_request_seconds`;
- every family is named in server/README.md.

Exits non-zero with every problem listed; prints a one-line summary otherwise.
"""

import json
import math
import sys
import urllib.error
import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TYPES = {"counter", "gauge", "histogram"}
PROCESS = {
    "process_cpu_seconds": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
CALL_ROUTE = "/v1/calls/{call_id}"


def request(base, method, path, token=None, body=None):
    """(status, parsed JSON body or None, headers)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw, status, headers = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, headers = e.read(), e.code, e.headers
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode()
    return status, parsed, headers


def expect(status, wanted, what, body):
    if status != wanted:
        sys.exit(f"metrics: {what}: {status}, not {wanted}: {body}")


def drive(base, api_key, device):
    """A registration, a ring, a 1 s long-poll, an answer, a backend read, a 404."""
    status, body, _ = request(
        base, "PUT", "/v1/installations/metrics-phone", device,
        {"platform": "fcm", "token": "fcm-token-metrics-0123456789", "ttl_seconds": 600},
    )
    expect(status, 200, "registering", body)
    status, body, _ = request(
        base, "POST", "/v1/calls", api_key, {"from": {"id": "alice"}, "to": ["bob"], "video": False}
    )
    expect(status, 202, "ringing", body)
    call = body["call_id"]
    status, body, _ = request(base, "GET", f"/v1/calls/{call}?wait=1", device)
    expect(status, 200, "long-polling", body)
    status, body, _ = request(
        base, "POST", f"/v1/calls/{call}/answer", device, {"installation_id": "metrics-phone"}
    )
    expect(status, 200, "answering", body)
    status, body, _ = request(base, "GET", f"/v1/calls/{call}", api_key)
    expect(status, 200, "reading the call", body)
    status, body, _ = request(base, "GET", "/no/such/route")
    expect(status, 404, "an unknown route", body)


def check(text, readme):
    """Every problem with the exposition `text`, and the families by name."""
    problems = []
    families = {}
    try:
        parsed = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser's own error, whatever its class
        return [f"the text parser refused the exposition: {e!r}"], families
    for family in parsed:
        if family.name in families:
            problems.append(f"{family.name}: two families of one name")
        families[family.name] = family
        if family.type not in TYPES:
            problems.append(f"{family.name}: parsed as `{family.type}`")
        if family.type == "counter":
            for s in family.samples:
                if s.name != family.name + "_total":
                    problems.append(f"{family.name}: counter sample {s.name} is not `{family.name}_total`")
        if family.type == "histogram":
            problems += check_histogram(family)
    for line in text.splitlines():
        if line.startswith("# TYPE ") and line.split()[3] == "counter" and not line.split()[2].endswith("_total"):
            problems.append(f"a counter family named without _total: {line}")
        if line.startswith("# EOF") or line.startswith("# UNIT"):
            problems.append(f"an OpenMetrics line in Prometheus text: {line}")
    for name, typ in PROCESS.items():
        if sys.platform.startswith("linux") and (name not in families or families[name].type != typ):
            problems.append(f"{name}: missing, or not a {typ}")
    build = families.get("callpush_build_info")
    samples = [] if build is None else [(sorted(s.labels), s.labels.get("version"), s.value) for s in build.samples]
    if build is None or build.type != "gauge" or len(samples) != 1 or samples[0][0] != ["version"] \
            or not samples[0][1] or samples[0][2] != 1:
        problems.append(f"callpush_build_info{{version=...}} 1 missing: {samples}")
    problems += check_long_poll(families)
    for name in families:
        exposed = name + "_total" if families[name].type == "counter" else name
        if f"`{exposed}" not in readme:
            problems.append(f"{exposed} is not documented in server/README.md")
    return problems, families


def check_histogram(family):
    problems = []
    series = defaultdict(dict)
    for s in family.samples:
        labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        suffix = s.name[len(family.name):]
        if suffix == "_bucket":
            series[labels].setdefault("_bucket", []).append((float(s.labels["le"]), s.value))
        elif suffix in ("_sum", "_count"):
            series[labels][suffix] = s.value
        else:
            problems.append(f"{family.name}: stray sample {s.name}")
    for labels, parts in series.items():
        where = f"{family.name}{dict(labels)}"
        buckets = sorted(parts.get("_bucket", []))
        if not buckets or buckets[-1][0] != math.inf:
            problems.append(f"{where}: no +Inf bucket")
            continue
        if any(a[1] > b[1] for a, b in zip(buckets, buckets[1:])):
            problems.append(f"{where}: buckets are not cumulative")
        if "_sum" not in parts or "_count" not in parts:
            problems.append(f"{where}: _sum or _count missing")
        elif parts["_count"] != buckets[-1][1]:
            problems.append(f"{where}: _count {parts['_count']} is not the +Inf bucket {buckets[-1][1]}")
    return problems


def count(family, **labels):
    return sum(
        s.value for s in family.samples
        if s.name == family.name + "_count" and all(s.labels.get(k) == v for k, v in labels.items())
    )


def check_long_poll(families):
    polls, requests = families.get("callpush_http_long_poll_seconds"), families.get("callpush_http_request_seconds")
    if polls is None or requests is None:
        return ["callpush_http_long_poll_seconds or callpush_http_request_seconds missing"]
    problems = []
    if count(polls, status="200") != 1:
        problems.append(f"one long-poll, {count(polls, status='200')} in callpush_http_long_poll_seconds")
    # The backend's read of the call, not the long-poll.
    if count(requests, route=CALL_ROUTE) != 1:
        problems.append(f"callpush_http_request_seconds counts {count(requests, route=CALL_ROUTE)} reads of the call, not 1")
    return problems


def main():
    base, api_key, device, readme_path = sys.argv[1:5]
    drive(base, api_key, device)
    status, _, _ = request(base, "GET", "/healthz")
    expect(status, 200, "healthz", "")
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        content_type, text = r.headers.get("Content-Type"), r.read().decode()
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    problems, families = check(text, readme)
    if content_type != CONTENT_TYPE:
        problems.insert(0, f"content type {content_type!r}, not {CONTENT_TYPE!r}")
    if problems:
        print("metrics: the exposition is not what Prometheus reads:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        print("---- the families of /metrics ----", file=sys.stderr)
        print("\n".join(line for line in text.splitlines() if line.startswith("# TYPE ")), file=sys.stderr)
        sys.exit(1)
    kinds = defaultdict(int)
    for f in families.values():
        kinds[f.type] += 1
    summary = ", ".join(f"{n} {k}s" for k, n in sorted(kinds.items()))
    print(f"metrics: {len(families)} families parsed by prometheus_client's text parser ({summary}); "
          "counters _total, histograms complete, long-polls apart, every name in server/README.md")


if __name__ == "__main__":
    main()
