#!/usr/bin/env bash
# Run the whole test suite from a fresh checkout: environment, Docker engine, browser, Node.js,
# desktop window libraries and Xvfb, an image registry (for sandbox pull), dpkg-deb and
# systemd-analyze (the Debian package), Redis (the runner hosts' broker), PostgreSQL's server
# binaries, sandbox image, lint and format checks (Python, and ui/static with Prettier), then every
# test on SQLite (the default store), then the core tests (tests/core) again on PostgreSQL, each on
# its own database in a throwaway cluster the run starts and stops (tests/pg_cluster.py).
# Extra arguments go to pytest instead, and then only that one pytest run happens.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/venv.sh test
bash packaging/ensure-docker.sh
bash packaging/ensure-browser.sh
bash packaging/ensure-node.sh
bash packaging/ensure-desktop.sh
bash packaging/ensure-registry.sh
bash packaging/ensure-deb-tools.sh
bash packaging/ensure-redis.sh
bash packaging/ensure-postgres.sh
.venv/bin/labrunner sandbox build
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports  # the layers and the no-cycles rule, from [tool.importlinter] in pyproject.toml
# --yes: fetch Prettier 3 from npm's registry without asking (cached after the first run).
npx --yes prettier@3 --check ui/static
if [ "$#" -gt 0 ]; then
    exec .venv/bin/pytest "$@"
fi
.venv/bin/pytest
.venv/bin/pytest --db=postgresql tests/core
