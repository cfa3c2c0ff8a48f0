#!/usr/bin/env python3
"""Whether a run of the server, traced with `strace -f`, stays inside a unit's sandbox.

    python3 server/deploy/check_syscalls.py UNIT STRACE_OUTPUT

Reads the unit's SystemCallFilter= lines (allow-lists and `~` deny-lists, in order, groups
expanded with `systemd-analyze syscall-filter`) and RestrictAddressFamilies=, and the system
calls and socket families the traced run used. Prints the ones the unit would refuse, one a line,
and exits 1 if there are any; prints a one-line summary and exits 0 otherwise.
"""

import re
import subprocess
import sys


def groups():
    """Every @group systemd knows, with its members (names and nested @groups)."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter"], check=True, capture_output=True, text=True
    ).stdout
    table, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = table.setdefault(line.strip(), [])
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return table


def expand(names, table, seen=None):
    seen = set() if seen is None else seen
    calls = set()
    for name in names:
        if name.startswith("@"):
            if name in seen:
                continue
            seen.add(name)
            calls |= expand(table.get(name, []), table, seen)
        else:
            calls.add(name)
    return calls


def unit_settings(path, key):
    values = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith(key + "="):
                values.append(line.split("=", 1)[1].strip())
    return values


def main():
    unit, trace = sys.argv[1], sys.argv[2]
    table = groups()
    allowed = None  # None: everything (no allow-list yet)
    denied = set()
    for value in unit_settings(unit, "SystemCallFilter"):
        deny = value.startswith("~")
        names = expand(value.lstrip("~").split(), table)
        if deny:
            denied |= names
        else:
            allowed = names if allowed is None else allowed | names
    families = set()
    for value in unit_settings(unit, "RestrictAddressFamilies"):
        families |= set(value.split())

    used, used_families = {}, set()
    call = re.compile(r"^(?:\[pid\s+)?\d+\]?\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]")
    socket_call = re.compile(r"\bsocket\((AF_[A-Z0-9]+)")
    with open(trace, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = call.match(line)
            if not m:
                continue  # signals (---), exits (+++)
            name = m.group(1)
            used[name] = used.get(name, 0) + 1
            s = socket_call.search(line)
            if s:
                used_families.add(s.group(1))

    refused = []
    for name in sorted(used):
        if (allowed is not None and name not in allowed) or name in denied:
            refused.append(f"system call {name} ({used[name]}×) is outside SystemCallFilter=")
    if families:
        for family in sorted(used_families - families):
            refused.append(f"socket family {family} is outside RestrictAddressFamilies=")
    for line in refused:
        print(line)
    if refused:
        return 1
    print(
        f"{len(used)} distinct system calls and socket families {', '.join(sorted(used_families)) or 'none'}, "
        "all inside the unit's filters"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
