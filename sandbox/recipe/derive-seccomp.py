"""Derive the sandbox's seccomp profile from Docker's default one.

    python3 sandbox/recipe/derive-seccomp.py DEFAULT_JSON > sandbox/recipe/seccomp.json

DEFAULT_JSON is profiles/seccomp/default.json of the engine's source, as Debian's
golang-github-docker-docker-dev package ships it (under /usr/share/gocode/src/github.com/docker/
docker/; `apt-get download` it and unpack it with `dpkg-deb -x`). The result is that profile with
the system calls below taken out of every allow rule, and some allowed again only on the calling
process: a custom profile replaces the engine's default, so it must be the default plus our
restrictions, and nothing it did not allow.
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


# Every program runs as the harness's uid, and for a process of the same uid the kernel lets these
# change another process's attributes, no ptrace needed: resource limits, nice value (also of a
# whole process group, or of every process of the uid), CPU affinity, scheduling policy and
# parameters, I/O priority. The harness (PID 1) forks every program, which inherits them: a hidden
# test's program could write its input into PID 1's attributes for the next test's program to read
# back. So each is allowed only on the caller itself, named by 0, the one argument a filter can
# tell apart (it cannot know the caller's pid: a program naming itself by number gets EPERM, and
# glibc's setrlimit/getrlimit, nice() and Python's resource and os calls pass 0). Reading another
# process's attributes (getpriority, sched_getaffinity, prlimit without a new limit, ...) carries
# nothing into it and stays allowed. (The filter compares whole registers: only an exact 0 passes,
# which the kernel takes as the caller. The setrlimit call acts only on the caller anyway.
# kcmp, pidfd_getfd and process_madvise need CAP_SYS_PTRACE, which no sandbox has;
# migrate_pages, move_pages and the keyring calls are not in Docker's default at all.)
# Each name maps to the rules that allow it, each a comment and the (argument index, value) pairs
# that must all match.
PRIO_PROCESS = 0
IOPRIO_WHO_PROCESS = 1
_ON_ITSELF = ("only on the calling process itself", ((0, 0),))  # the first argument, the pid, is 0
SELF_ONLY: dict[str, tuple[tuple[str, tuple[tuple[int, int], ...]], ...]] = {
    # prlimit64(pid, resource, new_limit, old_limit)
    "prlimit64": (_ON_ITSELF, ("only reading: no new limit", ((2, 0),))),
    # setpriority(which, who, nice), ioprio_set(which, who, ioprio): not a group, nor a uid
    "setpriority": (("only on the calling process itself", ((0, PRIO_PROCESS), (1, 0))),),
    "ioprio_set": (("only on the calling process itself", ((0, IOPRIO_WHO_PROCESS), (1, 0))),),
    "sched_setaffinity": (_ON_ITSELF,),
    "sched_setattr": (_ON_ITSELF,),
    "sched_setparam": (_ON_ITSELF,),
    "sched_setscheduler": (_ON_ITSELF,),
}


def derive(profile: dict) -> dict:
    unconditional = {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule["args"] and not rule["includes"] and not rule["excludes"]
        for name in rule["names"]
    }
    if missing := SELF_ONLY.keys() - unconditional:
        raise SystemExit(f"not allowed outright by the default profile, so not ours to allow: {sorted(missing)}")
    rules = []
    for rule in profile["syscalls"]:
        names = [name for name in rule["names"] if name not in REMOVED and name not in SELF_ONLY]
        if names:
            rules.append({**rule, "names": names})
    rules += [
        {
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": index, "op": "SCMP_CMP_EQ", "value": value} for index, value in conditions],
            "comment": comment,
            "excludes": {},
            "includes": {},
            "names": [name],
        }
        for name, alternatives in SELF_ONLY.items()
        for comment, conditions in alternatives
    ]
    return {**profile, "syscalls": rules}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as source:
        json.dump(derive(json.load(source)), sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
