#!/usr/bin/env bash
# Make sure the Debian package can be built and its unit checked here: dpkg-deb (dpkg) builds it,
# systemd-analyze (systemd) verifies the unit and scores its hardening. Idempotent, run as root by
# the test script; tests/packaging/test_deb.py needs both.
set -euo pipefail

say() { printf 'ensure-deb-tools: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# shellcheck source=packaging/apt.sh
. "$(dirname "$0")/apt.sh"

if command -v dpkg-deb >/dev/null && command -v systemd-analyze >/dev/null; then
    say "dpkg-deb and systemd-analyze already installed"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "dpkg-deb or systemd-analyze is missing and installing needs root (run this script as root)"
say "installing dpkg and systemd"
apt_install dpkg systemd
