#!/usr/bin/env bash
# Make sure Debian's docker-registry (a real image registry) is installed for the tests of
# `labrunner sandbox pull`, which start their own on a loopback port; the package's own service is
# left stopped. The appliance itself never needs it.
#
# Idempotent, run as root by the test script.
set -euo pipefail

say() { printf 'ensure-registry: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# shellcheck source=packaging/apt.sh
. "$(dirname "$0")/apt.sh"

if command -v docker-registry >/dev/null 2>&1; then
    say "docker-registry already installed"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "docker-registry is missing and installing it needs root (run this script as root)"

say "installing docker-registry"
apt_install docker-registry
command -v docker-registry >/dev/null 2>&1 || die "docker-registry installed but its command is missing"
say "docker-registry ready"
