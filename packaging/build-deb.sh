#!/usr/bin/env bash
# Build the Debian package for school IT from the one-file server binary (build-binary.sh):
#   dist/labrunner_<version>_<arch>.deb, with dpkg-deb from a staged tree:
#   /usr/bin/labrunner, /lib/systemd/system/labrunner.service, /etc/labrunner/config.toml (a
#   conffile), /usr/share/doc/labrunner/, and the maintainer scripts of packaging/deb/.
# The version is the binary's own (`labrunner --version`) plus --version-suffix, which lets a test
# build a "previous" and a "next" package from one tree (e.g. +test1 and +test2).
# Usage: packaging/build-deb.sh [--version-suffix SUFFIX] [--out DIR] [BINARY (default dist/labrunner)]
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 [--version-suffix SUFFIX] [--out DIR] [BINARY]" >&2; }
say() { printf 'build-deb: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

suffix=
out=dist
binary=dist/labrunner
while [ $# -gt 0 ]; do
    case "$1" in
        --version-suffix) [ $# -ge 2 ] || { usage; exit 2; }; suffix=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || { usage; exit 2; }; out=$2; shift 2 ;;
        -*) usage; exit 2 ;;
        *) binary=$1; shift ;;
    esac
done
[ -x "$binary" ] || die "$binary is not an executable file (build it with packaging/build-binary.sh)"
# Debian's version syntax, and nothing a file name or the control file would trip over.
printf '%s' "$suffix" | grep -Eq '^[A-Za-z0-9.+~]*$' || die "--version-suffix may hold only letters, digits and . + ~"

started=$(date +%s)
version=$(env -i PATH=/usr/bin:/bin HOME=/nonexistent "$binary" --version | sed -n '1s/^labrunner //p')
printf '%s' "$version" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$' || die "the binary reports no usable version: '$version'"
version=$version$suffix
arch=$(dpkg --print-architecture)

stage=build/deb/labrunner_${version}_$arch
rm -rf "$stage"
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/labrunner" \
    "$stage/usr/share/doc/labrunner" "$out"
install -m 0755 "$binary" "$stage/usr/bin/labrunner"
install -m 0644 packaging/deb/labrunner.service "$stage/lib/systemd/system/labrunner.service"
install -m 0644 packaging/deb/config.toml "$stage/etc/labrunner/config.toml"
install -m 0644 README.md "$stage/usr/share/doc/labrunner/README.md"
cat >"$stage/usr/share/doc/labrunner/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: labrunner

Files: *
License: MIT
Comment: /usr/bin/labrunner is a one-file PyInstaller binary: it also carries CPython and the
 Python packages named in the project's pyproject.toml, each under its own license.
EOF
for script in preinst postinst prerm postrm; do
    install -m 0755 "packaging/deb/$script" "$stage/DEBIAN/$script"
done
echo /etc/labrunner/config.toml >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/control" <<EOF
Package: labrunner
Version: $version
Architecture: $arch
Maintainer: Labrunner project <labrunner@localhost>
Section: education
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: adduser, passwd, systemd, init-system-helpers, docker.io | docker-ce
Description: classroom code-runner appliance
 Students run and submit code from their browsers; every program runs in a
 locked-down Docker sandbox on this machine. The package runs the server as the
 systemd service labrunner.service (user labrunner, data in /var/lib/labrunner,
 settings in /etc/labrunner/config.toml, logs in the journal).
EOF

deb="$out/labrunner_${version}_$arch.deb"
# gzip: the binary is compressed already, and xz (dpkg-deb's default) takes 20 s to save 0.5 %.
dpkg-deb -Zgzip --root-owner-group --build "$stage" "$deb" >/dev/null
say "built $deb: $(( $(stat -c %s "$deb") / 1024 / 1024 )) MB in $(( $(date +%s) - started )) s"
printf '%s\n' "$deb"
