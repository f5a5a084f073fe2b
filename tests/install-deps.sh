#!/bin/sh
# install-deps.sh - install the Debian packages the build, the tests and the
# benchmarks (fio: bench-coalesce.sh) need,
# when missing (as root; otherwise say what is missing and fail).
PKGS="gcc make pkg-config uuid-dev libjson-c-dev libmicrohttpd-dev qemu-utils
      libvhdi-utils python3-libvhdi clang scdoc procps util-linux coreutils
      python3 fio"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: not root; please install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || exit 1
apt-get install -y -qq --no-install-recommends $missing >/dev/null || exit 1
