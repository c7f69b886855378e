#!/usr/bin/env bash
# Start Labrunner on this machine from a fresh checkout: Python environment, Docker engine,
# sandbox image (built from Debian packages; reused when already built), then the server.
# Extra arguments go to `labrunner serve` (e.g. --port 8080).
# A classroom machine runs the production environment (its data folder, production's checks);
# LABRUNNER_ENV chooses another.
set -euo pipefail
cd "$(dirname "$0")/.."
export LABRUNNER_ENV=${LABRUNNER_ENV:-production}
bash packaging/venv.sh
bash packaging/ensure-docker.sh
.venv/bin/labrunner sandbox build
exec .venv/bin/labrunner serve "$@"
