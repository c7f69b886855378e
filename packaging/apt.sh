# Sourced by the ensure-* scripts: install Debian packages by name, as root.
# Needs a `die` function in the sourcing script.

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no package lists yet; updating only then keeps reruns fast.
    if ! apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; then
        apt-get update -q >/dev/null || die "apt-get update failed"
        apt-get install -y --no-install-recommends "$@" || die "could not install $*"
    fi
}
