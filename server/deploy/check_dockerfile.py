#!/usr/bin/env python3
"""What server/deploy/Dockerfile must keep, beyond what a linter knows.

    python3 server/deploy/check_dockerfile.py DOCKERFILE

Prints one line per rule broken and exits 1 if any is; exits 0 silently otherwise. Rules:

- the build stage is a pinned `rust:X.Y.Z-bookworm` and runs
  `cargo build --release --locked -p callpush-server`;
- the runtime (last) stage is `debian:bookworm-slim` or distroless `cc`, and copies into itself
  exactly one file, the `callpush` binary from the build stage (nothing from the build context);
- it runs as a non-root user, named by a numeric uid (so Kubernetes' runAsNonRoot can check it);
- it has `HEALTHCHECK` calling `/healthz`, `VOLUME /var/lib/callpush`, `EXPOSE`,
  `STOPSIGNAL SIGTERM` and the `callpush` binary as its entrypoint.
"""

import json
import re
import shlex
import sys


def instructions(text):
    """(line number, INSTRUCTION, arguments) for each instruction, continuations joined."""
    result = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, args = pending.partition(" ")
        result.append((start, keyword.upper(), args.strip()))
        pending = ""
    return result


def words(args):
    """An instruction's arguments, exec form (JSON) or shell form."""
    if args.startswith("["):
        try:
            return json.loads(args)
        except ValueError:
            pass
    return shlex.split(args)


def check(text):
    problems = []
    stages = []
    for number, keyword, args in instructions(text):
        if keyword == "FROM":
            stages.append({"line": number, "from": args, "steps": []})
        elif stages:
            stages[-1]["steps"].append((number, keyword, args))
    if len(stages) < 2:
        return ["a multi-stage build is expected: a build stage and a runtime stage"]

    for stage in stages[:-1]:
        base = stage["from"].split()[0]
        if not re.fullmatch(r"rust:\d+\.\d+\.\d+-bookworm(@sha256:[0-9a-f]{64})?", base.strip()):
            problems.append(
                f"line {stage['line']}: a build stage's image is `{base.strip()}`, not a pinned "
                "rust:X.Y.Z-bookworm"
            )
    cargo = [
        args
        for stage in stages[:-1]
        for _, keyword, args in stage["steps"]
        if keyword == "RUN" and re.search(r"cargo build --release --locked -p callpush-server\b", args)
    ]
    if not cargo:
        problems.append("no build stage runs `cargo build --release --locked -p callpush-server`")

    runtime = stages[-1]
    base = runtime["from"].split()[0]
    if not re.fullmatch(r"debian:bookworm-slim|gcr\.io/distroless/cc-debian12(:[\w.-]+)?", base.split("@")[0]):
        problems.append(f"line {runtime['line']}: the runtime image is `{base}`, not debian:bookworm-slim or distroless cc")
    steps = runtime["steps"]

    def last(keyword):
        found = [(number, args) for number, k, args in steps if k == keyword]
        return found[-1] if found else (None, None)

    copies = [(number, args) for number, k, args in steps if k in ("COPY", "ADD")]
    binaries = []
    for number, args in copies:
        parts = words(args)
        flags = [p for p in parts if p.startswith("--")]
        paths = [p for p in parts if not p.startswith("--")]
        source = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        if source is None:
            problems.append(f"line {number}: the runtime stage copies from the build context: `{args}`")
        elif len(paths) != 2 or not re.fullmatch(r"\S*/callpush", paths[0]):
            problems.append(f"line {number}: the runtime stage copies more than the `callpush` binary: `{args}`")
        else:
            binaries.append(number)
    if len(binaries) != 1:
        problems.append(f"the runtime stage copies the `callpush` binary {len(binaries)} times, not once")

    number, user = last("USER")
    if user is None:
        problems.append("the runtime stage has no USER: it would run as root")
    else:
        uid = user.split(":")[0]
        if uid in ("root", "0"):
            problems.append(f"line {number}: the runtime stage runs as root (USER {user})")
        elif not uid.isdigit():
            problems.append(f"line {number}: USER {user}: name the user by its numeric uid (runAsNonRoot)")

    number, health = last("HEALTHCHECK")
    if health is None:
        problems.append("the runtime stage has no HEALTHCHECK")
    elif health.strip().upper() == "NONE" or "/healthz" not in health:
        problems.append(f"line {number}: the HEALTHCHECK does not call /healthz")

    volumes = [v for _, k, args in steps if k == "VOLUME" for v in words(args)]
    if "/var/lib/callpush" not in volumes:
        problems.append("the runtime stage has no VOLUME /var/lib/callpush (the SQLite file's directory)")
    if last("EXPOSE")[1] is None:
        problems.append("the runtime stage has no EXPOSE")
    number, signal = last("STOPSIGNAL")
    if signal not in ("SIGTERM", "15"):
        problems.append("the runtime stage has no STOPSIGNAL SIGTERM (the server drains on SIGTERM)")
    number, entrypoint = last("ENTRYPOINT")
    if entrypoint is None or not words(entrypoint) or not words(entrypoint)[0].endswith("/callpush"):
        problems.append("the runtime stage's ENTRYPOINT is not the `callpush` binary")
    return problems


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        problems = check(f.read())
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
