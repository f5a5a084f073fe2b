#!/bin/sh
# install-deps.sh - install the Debian 12 packages vhdkit needs, those that
# are missing (as root; otherwise say which are missing and fail).
#   sh install-deps.sh build   what building needs (`make demo` runs this)
#   sh install-deps.sh         everything: building, `make check`,
#                              crash-test, bench and fuzz (`make deps`)
# Concurrent runs wait for each other on dpkg's lock.
# (nbdkit-plugin-dev: `make` builds the NBD server's plugin, server/)
BUILD="gcc libc6-dev make pkg-config uuid-dev libjson-c-dev libmicrohttpd-dev
       nbdkit-plugin-dev"
# the tests and tools they run: qemu-img/qemu-io, libvhdi (vhdiinfo, pyvhdi),
# jq, curl (metrics), scdoc (man page), shellcheck (script shells), setpriv,
# flock, mount (util-linux, mount), script (bsdutils), fio and time (bench),
# chromium (the GC's web view, headless),
# clang with its sanitizer and libFuzzer runtimes (fuzz), git (.ci/run)
TESTS="qemu-utils libvhdi-utils python3-libvhdi python3 jq curl scdoc shellcheck
       procps util-linux mount bsdutils coreutils fio time clang libclang-rt-dev git
       chromium"
# the NBD server (`vhd serve`, server/): nbdkit to run it, its tests' clients
# (nbdsh, nbdcopy, nbdinfo) and TLS (GnuTLS's psktool)
NBD="nbdkit libnbd-bin python3-libnbd libgnutls28-dev gnutls-bin qemu-system-common"
case ${1:-all} in
build) PKGS=$BUILD ;;
all)   PKGS="$BUILD $TESTS $NBD" ;;
*)     echo "usage: install-deps.sh [build|all]" >&2; exit 2 ;;
esac
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: not root; please install:$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || exit 1
# shellcheck disable=SC2086 # one word per package
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null || exit 1
