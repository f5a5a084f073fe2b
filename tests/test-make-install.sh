#!/bin/bash
# `make install PREFIX=/usr/local DESTDIR=...`, as the README documents it:
# the binaries, the vhd-util symlink, the library, header, pkg-config file,
# man page and nbdkit plugin land under DESTDIR, and a program built with
# `pkg-config --cflags --libs vhdkit` against them opens a VHD.
. "$(dirname "$0")/functions.sh"
requires pkg-config cc nm
cd "$ROOT" || fail "cd $ROOT"
D=$TMP/root
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s B="$B" install PREFIX=/usr/local DESTDIR="$D" \
	>"$TMP/out" 2>&1 || { tail -20 "$TMP/out"; fail "make install failed"; }
P=$D/usr/local
for f in bin/vhd include/vhdkit.h lib/libvhdkit.a lib/libvhdkit.so.0 lib/pkgconfig/vhdkit.pc \
	share/man/man1/vhd.1; do
	[ -f "$P/$f" ] || fail "make install did not install $f"
done
[ "$(readlink "$P/bin/vhd-util")" = vhd ] || fail "bin/vhd-util is not a symlink to vhd"
[ "$(readlink "$P/lib/libvhdkit.so")" = libvhdkit.so.0 ] || fail "lib/libvhdkit.so is not a symlink to the .so.0"
ls "$D"/usr/lib/*/nbdkit/plugins/nbdkit-vhd-plugin.so >/dev/null 2>&1 || fail "the nbdkit plugin is not installed"
"$P/bin/vhd" create "$TMP/a.vhd" 8M >/dev/null || fail "the installed vhd does not run"

# the README's library example, built as a user of the installed library
cat >"$TMP/user.c" <<'C'
#include <stdio.h>
#include <vhdkit.h>
int main(int argc, char **argv)
{
	vhd_t *v = vhd_open(argv[1], VHD_OPEN_RDONLY);
	if (!v) { fprintf(stderr, "%s\n", vhd_get_error()); return 1; }
	char buf[65536];
	if (vhd_pread(v, buf, sizeof buf, 0)) { fprintf(stderr, "%s\n", vhd_get_error()); return 1; }
	vhd_close(v);
	return argc > 2 && vhd_open(argv[2], VHD_OPEN_RDONLY) ? 1 : 0;
}
C
flags=$(sed "s|^prefix=.*|prefix=$P|" "$P/lib/pkgconfig/vhdkit.pc" >"$TMP/vhdkit.pc" &&
	PKG_CONFIG_PATH=$TMP pkg-config --cflags --libs vhdkit) || fail "pkg-config vhdkit"
# (a library built with SANITIZE=1 wants its users sanitized too)
nm -D "$P/lib/libvhdkit.so.0" | grep -q ' U __asan' && flags="$flags -fsanitize=address,undefined"
# shellcheck disable=SC2086 # pkg-config's flags are words
cc -o "$TMP/user" "$TMP/user.c" $flags || fail "a program using the installed header and library does not build"
LD_LIBRARY_PATH=$P/lib "$TMP/user" "$TMP/a.vhd" "$TMP/missing.vhd" || fail "the installed library does not open a VHD"
pass "make install: binaries, vhd-util, library, header, pkg-config file, man page, plugin; a pkg-config user reads a VHD"
