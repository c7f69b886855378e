#!/usr/bin/env bash
# Build Labrunner's wheel into OUTDIR from a copy of the checkout (tracked and untracked, not
# ignored, files), not from the checkout itself: setuptools' in-tree build/lib would carry stale
# files along. Prints the wheel's path. Used by build-binary.sh and tests/packaging/test_wheel.py.
# Usage: packaging/build-wheel.sh OUTDIR [PYTHON]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [PYTHON]" >&2; exit 2; }
out=$(realpath -m "$1")
python=${2:-python3}
cd "$(dirname "$0")/.."

src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git ls-files -z --cached --others --exclude-standard \
    | tar --null --files-from=- --ignore-failed-read -cf - | tar -xf - -C "$src"
mkdir -p "$out"
"$python" -m pip --disable-pip-version-check --quiet wheel --no-deps --wheel-dir "$out" "$src" >&2
ls "$out"/labrunner-*.whl
