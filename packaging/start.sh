#!/usr/bin/env bash
# Start Labrunner on this machine from a fresh checkout: Python environment, Docker engine,
# sandbox image (built from Debian packages; reused when already built), then the server.
# Extra arguments go to `labrunner serve` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/venv.sh
bash packaging/ensure-docker.sh
.venv/bin/labrunner sandbox build
exec .venv/bin/labrunner serve "$@"
