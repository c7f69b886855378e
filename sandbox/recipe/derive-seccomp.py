"""Derive the sandbox's seccomp profile from Docker's default one.

    python3 sandbox/recipe/derive-seccomp.py DEFAULT_JSON > sandbox/recipe/seccomp.json

DEFAULT_JSON is profiles/seccomp/default.json of the engine's source, as Debian's
golang-github-docker-docker-dev package ships it (under /usr/share/gocode/src/github.com/docker/
docker/). The result is that profile with the system calls below taken out of every allow rule:
a custom profile replaces the engine's default, so it must be the default plus our removals.
"""

from __future__ import annotations

import json
import sys

# Why each one goes:
# - io_uring_*: a large kernel attack surface no classroom program needs (newer engines drop it too).
# - ptrace, process_vm_readv/writev: no debugger runs in the sandbox; a program has no business
#   inspecting another process (the harness is out of reach anyway, as PID 1 and not dumpable).
# - fadvise64, readahead, mincore: they evict pages from, or ask about, the host's page cache,
#   which every sandbox shares through the image's files: a channel from one job to a later one.
REMOVED = frozenset(
    {
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "fadvise64",
        "readahead",
        "mincore",
    }
)


def derive(profile: dict) -> dict:
    rules = []
    for rule in profile["syscalls"]:
        names = [name for name in rule["names"] if name not in REMOVED]
        if names:
            rules.append({**rule, "names": names})
    return {**profile, "syscalls": rules}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as source:
        json.dump(derive(json.load(source)), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
