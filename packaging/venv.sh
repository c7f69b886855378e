#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install Labrunner into it.
# Usage: packaging/venv.sh [EXTRAS]   e.g. packaging/venv.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-}
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
