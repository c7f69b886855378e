#!/usr/bin/env bash
# Make sure Debian's Redis server is installed: the runner-host tests (tests/scale/) start their own
# redis-server on a free loopback port as the broker between the server and its runner hosts.
# The package's own service is not needed and not started here. Idempotent, run as root by the
# test script.
set -euo pipefail

say() { printf 'ensure-redis: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# shellcheck source=packaging/apt.sh
. "$(dirname "$0")/apt.sh"

if command -v redis-server >/dev/null; then
    say "redis-server already installed ($(redis-server --version | cut -d' ' -f3))"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "redis-server is missing and installing needs root (run this script as root)"
say "installing redis-server"
apt_install redis-server
