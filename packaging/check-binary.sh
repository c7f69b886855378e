#!/usr/bin/env bash
# Check a built binary the way a classroom machine would run it (yt-dlp's release check is the
# model): in a fresh temporary folder, with no virtual environment and only the system's PATH.
#   --version; `serve` on a free loopback port with a temporary data folder, polled until /healthz
#   says ok for the database, the runner and the sandbox image (prints the seconds); `selftest`;
#   for labrunner-desktop, the window opens under Xvfb (tests/desktop/binary_window.py, run with the
#   test tools' Python: LABRUNNER_CHECK_PYTHON, default the checkout's .venv).
# Prints the binary's size. Needs the Docker engine; the sandbox image is built from the binary
# only when its tag is missing (building prunes other tags of the image, so a present tag is reused).
# Usage: packaging/check-binary.sh BINARY
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 BINARY" >&2; exit 2; }
binary=$(realpath "$1")
checkout=$(realpath "$(dirname "$0")/..")
HEALTHY_WAIT_S=${LABRUNNER_CHECK_WAIT_S:-120}

say() { printf 'check-binary: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
[ -x "$binary" ] || die "$binary is not an executable file"

scratch=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT
cd "$scratch"
mkdir home data

# No venv, no PYTHONPATH, no inherited settings: only what a fresh login shell would have.
clean=(env -i "PATH=/usr/local/bin:/usr/bin:/bin" "HOME=$scratch/home" "LANG=C.UTF-8" "LABRUNNER_DATA_DIR=$scratch/data")
[ -n "${DOCKER_HOST:-}" ] && clean+=("DOCKER_HOST=$DOCKER_HOST")
run() { "${clean[@]}" "$binary" "$@"; }

say "size: $(( $(stat -c %s "$binary") / 1024 / 1024 )) MB ($(stat -c %s "$binary") bytes)"

version=$(run --version) || die "--version failed"
printf '%s\n' "$version"
image=$(printf '%s\n' "$version" | sed -n 's/^sandbox image //p')
[ -n "$image" ] || die "--version names no sandbox image"
printf '%s\n' "$version" | grep -q '^commit [0-9a-f]\{12\}' || die "--version has no baked-in commit"

if docker image inspect "$image" >/dev/null 2>&1; then
    say "sandbox image $image is present"
else
    say "sandbox image $image is missing: building it from the binary"
    run sandbox build || die "sandbox build failed"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
started=$(date +%s.%N)
# Not through run(): a function in the background is a subshell, and $! would be the shell's id.
"${clean[@]}" "$binary" serve --host 127.0.0.1 --port "$port" >"$scratch/serve.log" 2>&1 &
server=$!
health=
for _ in $(seq $((HEALTHY_WAIT_S * 4))); do
    kill -0 "$server" 2>/dev/null || { cat "$scratch/serve.log" >&2; die "serve exited"; }
    health=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' \
        "http://127.0.0.1:$port/healthz" 2>/dev/null) || health=
    if printf '%s' "$health" | python3 -c 'import json, sys; h = json.load(sys.stdin); sys.exit(not all(h[k] == "ok" for k in ("status", "db", "runner", "image")))' 2>/dev/null; then
        break
    fi
    health=
    sleep 0.25
done
[ -n "$health" ] || { cat "$scratch/serve.log" >&2; die "/healthz was not all ok within ${HEALTHY_WAIT_S}s"; }
say "healthy after $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)") s: $health"
kill -TERM "$server"
wait "$server" || die "serve did not stop cleanly on SIGTERM"
server=
# A binary is a classroom install: production unless told otherwise.
grep -q "(environment: production)" "$scratch/serve.log" || { cat "$scratch/serve.log" >&2; die "serve did not run production"; }

run selftest || die "selftest failed"

if [ "$(basename "$binary")" = labrunner-desktop ]; then
    # The window check drives the binary from the test tools (own Xvfb, CDP, X11 helpers).
    (cd "$checkout" && "${LABRUNNER_CHECK_PYTHON:-.venv/bin/python}" -m tests.desktop.binary_window "$binary" "$scratch/desktop") \
        || die "the desktop window did not open"
fi
say "all checks passed"
