#!/usr/bin/env bash
# Build the one-file binary dist/labrunner (server and command line), or with --desktop
# dist/labrunner-desktop (plus the teacher's Qt window), with PyInstaller from the checked-in spec.
#
# Everything happens in a clean virtual environment under build/binary/ (gitignored): the project's
# wheel (packaging/build-wheel.sh) is installed into it with the `packaging` extra, so the binary
# carries exactly what the wheel does. The git commit is
# baked in (the binary has no .git). Prints the binary's size and the build's duration.
set -euo pipefail
cd "$(dirname "$0")/.."

variant=labrunner
extras=packaging
case "${1:-}" in
    "") ;;
    --desktop) variant=labrunner-desktop; extras=packaging,desktop ;;
    *) echo "usage: $0 [--desktop]" >&2; exit 2 ;;
esac

say() { printf 'build-binary: %s\n' "$*" >&2; }
started=$(date +%s)
work=build/binary/$variant
rm -rf "$work"
mkdir -p dist

python3 -m venv "$work/venv"
say "building the wheel"
wheel=$(bash packaging/build-wheel.sh "$work/wheel" "$work/venv/bin/python")
say "installing $(basename "$wheel")[$extras] into a clean environment"
"$work/venv/bin/python" -m pip --disable-pip-version-check --quiet install "$wheel[$extras]"
# pip records where the wheel was installed from (a path on the build machine, its user's name in
# it); the binary carries the package's metadata for --version, and that file must not go along.
rm -f "$work"/venv/lib/python3*/site-packages/labrunner-*.dist-info/direct_url.json

# From the checkout (python -c imports from the current folder): its commit, "-dirty" if edited.
"$work/venv/bin/python" -c \
    'import sys; from appliance.build_info import UNKNOWN, baked, git_commit; sys.stdout.write(baked(git_commit() or UNKNOWN))' \
    >"$work/build_info.json"
say "baked in: $(cat "$work/build_info.json")"

say "running PyInstaller (takes minutes)"
# PyInstaller compresses every file of the one-file archive with zlib at level 9 unless told; level 6
# packs Qt WebEngine's 204 MB library 0.2 % larger (85.3 MB, not 85.1 MB) in 12 s instead of 29 s,
# and the binary unpacks as fast. Its cache is this build's own (--clean empties it), so the two
# variants can be built side by side.
PYINSTALLER_ZLIB_COMPRESSION_LEVEL=${PYINSTALLER_ZLIB_COMPRESSION_LEVEL:-6} PYINSTALLER_CONFIG_DIR="$PWD/$work/cache" \
    LABRUNNER_BUILD_INFO="$PWD/$work/build_info.json" "$work/venv/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath dist --workpath "$work/pyinstaller" "packaging/$variant.spec"

size=$(stat -c %s "dist/$variant")
say "built dist/$variant: $((size / 1024 / 1024)) MB in $(( $(date +%s) - started )) s"
