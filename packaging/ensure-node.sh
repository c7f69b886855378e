#!/usr/bin/env bash
# Make sure Node.js and npx are installed for the format check of ui/static (Prettier, which npx
# fetches from npm's registry); install Debian's packages if not. The appliance itself never needs Node.
#
# Idempotent, run as root by the test script.
set -euo pipefail

PACKAGES=(nodejs npm)

say() { printf 'ensure-node: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# shellcheck source=packaging/apt.sh
. "$(dirname "$0")/apt.sh"

if command -v node >/dev/null 2>&1 && command -v npx >/dev/null 2>&1; then
    say "node $(node --version) and npx already installed"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "node or npx is missing and installing them needs root (run this script as root)"

say "installing ${PACKAGES[*]}"
apt_install "${PACKAGES[@]}"
command -v node >/dev/null 2>&1 || die "nodejs installed but node is missing"
command -v npx >/dev/null 2>&1 || die "npm installed but npx is missing"
say "node ready: $(node --version)"
