#!/usr/bin/env bash
# Make sure Debian's PostgreSQL server binaries are installed: `pytest --db=postgresql` (run by the
# test script on tests/core) starts its own throwaway cluster from them (tests/pg_cluster.py: initdb
# and pg_ctl, as the package's `postgres` user when run as root, on a Unix socket in a temporary
# directory). The package's own cluster and service are not needed and not started here.
# Idempotent, run as root by the test script.
set -euo pipefail

say() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
# shellcheck source=packaging/apt.sh
. "$(dirname "$0")/apt.sh"

# Where tests/pg_cluster.py looks: pg_config's bindir, else Debian's versioned directories.
server_bindir() {
    local dir
    for dir in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    return 1
}

if dir=$(server_bindir); then
    say "PostgreSQL server already installed ($("$dir/initdb" --version))"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "PostgreSQL's server binaries are missing and installing needs root (run this script as root)"
say "installing postgresql (the distribution's server version)"
apt_install postgresql
dir=$(server_bindir) || die "postgresql is installed but no initdb was found under /usr/lib/postgresql/*/bin"
getent passwd postgres >/dev/null || die "the postgresql package did not create the postgres user"
say "installed $("$dir/initdb" --version)"
