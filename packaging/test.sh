#!/usr/bin/env bash
# Run the whole test suite from a fresh checkout: environment, Docker engine, browser, Node.js,
# desktop window libraries and Xvfb, an image registry (for sandbox pull), dpkg-deb and systemd-analyze (the Debian package), Redis (the runner hosts' broker), sandbox image, lint and format checks (Python, and ui/static with Prettier), then every test.
# Extra arguments go to pytest.
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
.venv/bin/labrunner sandbox build
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports  # the layers and the no-cycles rule, from [tool.importlinter] in pyproject.toml
# --yes: fetch Prettier 3 from npm's registry without asking (cached after the first run).
npx --yes prettier@3 --check ui/static
.venv/bin/pytest "$@"
