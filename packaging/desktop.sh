#!/usr/bin/env bash
# Open the teacher's window on the classroom machine from a fresh checkout: Python environment
# with the window's Qt WebEngine, the libraries Qt loads, the Docker engine, then the window
# (which checks the sandbox image with progress, and starts or attaches to the server).
# Extra arguments go to `labrunner desktop` (e.g. --user ms-lee).
# The production environment, like packaging/start.sh, so the window attaches to the server that
# start.sh runs (same data folder); LABRUNNER_ENV chooses another.
set -euo pipefail
cd "$(dirname "$0")/.."
export LABRUNNER_ENV=${LABRUNNER_ENV:-production}
bash packaging/venv.sh desktop
bash packaging/ensure-desktop.sh
bash packaging/ensure-docker.sh
exec .venv/bin/labrunner desktop "$@"
