#!/usr/bin/env bash
# Make sure the desktop window can open on this machine: Xvfb (a virtual screen for the window's
# tests), ImageMagick's `import` (its screenshots), xdotool (finds the window to close it) and the shared libraries Qt WebEngine from
# PyPI loads. Idempotent, run as root by the test script; pywebview and PyQt6 themselves come
# with the venv's `desktop` extra.
set -euo pipefail

PACKAGES=(
    xvfb xauth imagemagick xdotool
    libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
    libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1 libnss3
    libxcomposite1 libxdamage1 libxrandr2 libxtst6 libasound2 libxkbfile1 libfontconfig1
    libdbus-1-3 fonts-dejavu-core
)

say() { printf 'ensure-desktop: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# shellcheck source=packaging/apt.sh
. "$(dirname "$0")/apt.sh"

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    say "desktop libraries already installed"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "${missing[*]} missing and installing needs root (run this script as root)"
say "installing ${missing[*]}"
apt_install "${missing[@]}"
command -v Xvfb >/dev/null || die "xvfb installed but Xvfb is missing"
say "desktop libraries ready"
