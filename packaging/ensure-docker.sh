#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine; start one if not.
#
# Idempotent, run as root by the start script and by CI. Machines here come without a running
# engine (and often without a service manager), so dockerd is started in the background by hand.
# crun is registered as an extra runtime so the sandbox can choose it (settings: runtime).
set -euo pipefail

LOG=${LABRUNNER_DOCKERD_LOG:-/var/log/labrunner-dockerd.log}
SOCK=/var/run/docker.sock
WAIT_SECONDS=${LABRUNNER_DOCKERD_WAIT:-60}

say() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# shellcheck source=packaging/apt.sh
. "$(dirname "$0")/apt.sh"

engine_ok() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_ok; then
    say "engine already running"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "the engine is not running and starting it needs root (run this script as root)"

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v crun >/dev/null 2>&1 || missing+=(crun)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if [ ${#missing[@]} -gt 0 ]; then
    # Deduplicate (docker.io can be listed twice).
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but not answering yet; waiting for it"
else
    args=()
    # dockerd refuses a runtime given both as a flag and in daemon.json, so only add the flag when
    # the site's daemon.json does not configure runtimes itself.
    if ! grep -qs '"runtimes"' /etc/docker/daemon.json; then
        args+=(--add-runtime "crun=$(command -v crun)")
    fi
    mkdir -p "$(dirname "$LOG")"
    say "starting dockerd (log: $LOG)"
    # Its own session: the engine must outlive the shell (or CI step) that started it.
    setsid dockerd "${args[@]}" >>"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq "$WAIT_SECONDS"); do
    if [ -S "$SOCK" ] && engine_ok; then
        say "engine ready"
        exit 0
    fi
    sleep 1
done

say "last lines of $LOG:"
tail -n 20 "$LOG" >&2 || true
die "the Docker engine did not answer within ${WAIT_SECONDS}s"
