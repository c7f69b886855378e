#!/bin/sh
# What the harness expects of an image, whichever base it was built on (Dockerfile and
# Dockerfile.online both run this as root at build time).
set -eu

# The sandbox uid exists inside the image only (the host has no such user), so that Java, whoami
# and friends find a name for it.
echo 'sandbox:x:65432:65432:sandbox:/tmp:/usr/sbin/nologin' >>/etc/passwd
echo 'sandbox:x:65432:' >>/etc/group

# Mount points of the tmpfs the host puts over the read-only root file system.
mkdir -p /work /opt/labrunner
