#!/bin/bash
# install-deps.sh (`make deps`, `make demo`'s build half) installs exactly
# the missing packages, nothing when none is missing, refuses without root
# naming what is missing, and fails when apt-get fails.  Run against fake
# dpkg-query, apt-get and id on PATH (never touching this machine's
# packages); the fake dpkg-query reports installed the packages listed in
# $FAKE/installed.
. "$(dirname "$0")/functions.sh"
FAKE=$TMP/fake
mkdir -p "$FAKE/bin"
cat >"$FAKE/bin/dpkg-query" <<'EOF'
#!/bin/sh
# dpkg-query -W -f='${Status}' PKG
for p; do :; done
grep -qx "$p" "$FAKE/installed" && printf 'install ok installed' && exit 0
echo "dpkg-query: no packages found matching $p" >&2; exit 1
EOF
cat >"$FAKE/bin/apt-get" <<'EOF'
#!/bin/sh
echo "apt-get $*" >>"$FAKE/apt.log"
[ -e "$FAKE/apt-fails" ] && exit 100
exit 0
EOF
printf '#!/bin/sh\necho "${FAKE_UID:-0}"\n' >"$FAKE/bin/id"
chmod +x "$FAKE/bin"/*
export FAKE
# deps ARGS...: run install-deps.sh with the fakes; its output in $TMP/out
deps() { PATH=$FAKE/bin:$PATH sh "$ROOT/install-deps.sh" "$@" >"$TMP/out" 2>&1; }
# the packages a set asks for (the script's own lists, as it reads them)
pkgs_of() {
	awk -v n="$1" '$0 ~ "^" n "=\"" {on = 1} on {print; if ($0 ~ /"$/) exit}' "$ROOT/install-deps.sh" |
		sed "s/^$1=//" | tr -d '"' | tr -s ' \t\n' '\n' | grep .
}
build=$(pkgs_of BUILD) all=$(printf '%s\n' "$build" "$(pkgs_of TESTS)" "$(pkgs_of NBD)")
[ "$(echo "$build" | wc -l)" -ge 6 ] && [ "$(echo "$all" | wc -l)" -ge 30 ] || fail "package lists not found"
for p in gcc libc6-dev libjson-c-dev qemu-utils nbdkit python3-libnbd gnutls-bin; do
	echo "$all" | grep -qx "$p" || fail "$p is not in the package lists"
done
# what `make` (and so `make demo`) compiles against: every system header
# the sources include, and those they include in turn (gcc -M), belongs to
# a build package or comes with gcc or libc6-dev (dpkg -S on this machine)
requires gcc dpkg
(cd "$ROOT" && grep -ho '^#include <[^>]*>' include/*.h lib/*.[ch] common/*.[ch] cli/*.[ch] \
	gc/*.[ch] vhdutil/*.[ch] server/*.[ch]) | sort -u >"$TMP/includes.c"
gcc -D_GNU_SOURCE -x c -M -MT x "$TMP/includes.c" >"$TMP/deps" || fail "gcc cannot find the headers"
tr ' \\' '\n\n' <"$TMP/deps" | grep '^/usr/' | sort -u >"$TMP/headers"
headers=$(wc -l <"$TMP/headers")
[ "$headers" -ge 100 ] || fail "only $headers system headers found"
# shellcheck disable=SC2046 # one path per word
dpkg -S $(cat "$TMP/headers") | cut -d: -f1 | sort -u >"$TMP/packages" || fail "dpkg -S"
while read -r pkg; do
	case $pkg in libgcc-*-dev | linux-libc-dev) continue ;; esac   # gcc's, libc6-dev's
	echo "$build" | grep -qx "$pkg" || fail "the sources include headers of $pkg, not a build package: $(
		dpkg -L "$pkg" | grep -Fxf - "$TMP/headers" | head -3 | tr '\n' ' ')"
done <"$TMP/packages"

# everything installed: no apt-get, exit 0
echo "$all" >"$FAKE/installed"; rm -f "$FAKE/apt.log"
deps || fail "all installed: exit $?: $(cat "$TMP/out")"
[ -e "$FAKE/apt.log" ] && fail "all installed, yet apt-get ran: $(cat "$FAKE/apt.log")"

# two missing, one a build package: apt-get update, then install of those two
echo "$all" | grep -vx 'libjson-c-dev\|nbdkit' >"$FAKE/installed"
deps || fail "install: exit $?: $(cat "$TMP/out")"
grep -q '^apt-get .*update' "$FAKE/apt.log" || fail "no apt-get update: $(cat "$FAKE/apt.log")"
[ "$(grep ' install ' "$FAKE/apt.log" | sed 's/.*--no-install-recommends //')" = "libjson-c-dev nbdkit" ] ||
	fail "installed something else than the missing packages: $(cat "$FAKE/apt.log")"
grep -q 'DPkg::Lock::Timeout' "$FAKE/apt.log" || fail "apt-get does not wait for a concurrent dpkg"

# `build`: only the build packages are looked at
rm -f "$FAKE/apt.log"
deps build || fail "build: exit $?"
[ "$(sed -n 's/.* install .*--no-install-recommends //p' "$FAKE/apt.log")" = libjson-c-dev ] ||
	fail "build installed more than the missing build package: $(cat "$FAKE/apt.log")"
: >"$FAKE/installed"; rm -f "$FAKE/apt.log"
deps build || fail "build, nothing installed: exit $?"
[ "$(sed -n 's/.* install .*--no-install-recommends //p' "$FAKE/apt.log")" = "$(echo $build)" ] ||
	fail "build on a bare machine: $(cat "$FAKE/apt.log")"

# not root: fails, names what is missing, runs no apt-get
echo "$all" | grep -vx 'jq' >"$FAKE/installed"; rm -f "$FAKE/apt.log"
FAKE_UID=1000 deps && fail "not root, a package missing: exit 0"
grep -q 'please install: jq$' "$TMP/out" || fail "not root: does not name the missing package: $(cat "$TMP/out")"
[ -e "$FAKE/apt.log" ] && fail "not root, yet apt-get ran"

# apt-get failing is a failure; a bad argument is a usage error
touch "$FAKE/apt-fails"
deps && fail "apt-get failed, yet exit 0"
deps bogus; [ $? -eq 2 ] || fail "bad argument: exit not 2"
pass "install-deps.sh: $(echo "$all" | wc -l) packages ($(echo "$build" | wc -l) for building, which hold the $headers system headers the build reads); installs exactly the missing ones, none when complete, refuses without root, fails with apt-get"
