#!/usr/bin/env bash
# Build the sandbox base image from Debian packages: no image registry is needed.
#
#   build-base.sh IMAGE_REF
#
# mmdebstrap bootstraps Debian bookworm with the packages in packages.txt and streams the root
# file system as a tar straight into `docker import`. Packages come from this machine's own apt
# sources (LABRUNNER_APT_SOURCES may name another sources file), so whatever Debian mirror the
# site uses is used here too. runner/image.py derives the base tag from this file and
# packages.txt, so editing either yields a new base image.
set -euo pipefail

ref=${1:?usage: build-base.sh IMAGE_REF}
here=$(cd "$(dirname "$0")" && pwd)

include=$(grep -v '^\s*#' "$here/packages.txt" | xargs | tr ' ' ,)

sources=${LABRUNNER_APT_SOURCES:-}
if [ -z "$sources" ]; then
    for candidate in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [ -s "$candidate" ]; then sources=$candidate; break; fi
    done
fi
[ -n "$sources" ] || { echo "build-base: no apt sources file found; set LABRUNNER_APT_SOURCES" >&2; exit 1; }

# Documentation, man pages and translations are left out: nobody reads them in a sandbox and
# they are a good part of the image (copyright files stay, for the licences). The JDK's
# post-install still links its man pages with update-alternatives, which fails unless the man
# directory exists, hence the hook.
if ! mmdebstrap \
    --variant=apt \
    --mode=root \
    --format=tar \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
    --include="$include" \
    bookworm - "$sources" \
    | docker import --change 'ENV LANG=C.UTF-8' - "$ref"
then
    # docker import happily imports the truncated tar of a failed bootstrap: drop it.
    docker image rm -f "$ref" >/dev/null 2>&1 || true
    echo "build-base: building $ref failed" >&2
    exit 1
fi
