#!/usr/bin/env bash
# Run the whole test suite from a fresh checkout: environment, Docker engine, sandbox image,
# lint, then every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/venv.sh test
bash packaging/ensure-docker.sh
bash packaging/ensure-browser.sh
.venv/bin/labrunner sandbox build
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest "$@"
