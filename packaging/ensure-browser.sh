#!/usr/bin/env bash
# Make sure Debian's Chromium is installed for the browser tests (tests/ui); install it if not.
#
# Idempotent, run as root by the test script. Playwright drives this browser
# (executable_path=/usr/bin/chromium) because it cannot download its own builds here.
set -euo pipefail

BROWSER=/usr/bin/chromium
# Without recommends a fresh machine has no fonts at all, and every screenshot shows boxes.
PACKAGES=(chromium fonts-dejavu-core)

say() { printf 'ensure-browser: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# shellcheck source=packaging/apt.sh
. "$(dirname "$0")/apt.sh"

if [ -x "$BROWSER" ] && [ -n "$(fc-list 2>/dev/null | head -n 1)" ]; then
    say "chromium already installed"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "chromium is missing and installing it needs root (run this script as root)"

say "installing ${PACKAGES[*]}"
apt_install "${PACKAGES[@]}"
[ -x "$BROWSER" ] || die "chromium installed but $BROWSER is missing"
say "chromium ready: $("$BROWSER" --version 2>/dev/null || echo unknown version)"
