#!/bin/bash
# test-serve-fio.sh - fio's nbd engine through `vhd serve`: random writes of
# 4 KiB to 64 KiB at queue depth 16 on the leaf of a 2-level chain, each
# block verified by crc32c when read back (fio --verify), then `vhd check`;
# and the plugin as installed: `make install DESTDIR=` puts it in nbdkit's
# plugin directory, where nbdkit loads it and serves with it.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/serve-functions.sh"
requires nbdkit fio nbdinfo
make_chain "$TMP/c" 1 32 8 || fail "make_chain"
serve_start "$TMP/c/l1.vhd"
fio --name=verify --ioengine=nbd --uri="$URI" --rw=randwrite --bsrange=4k-64k --iodepth=16 \
    --size=32M --verify=crc32c --verify_fatal=1 --randseed=7 --verify_state_save=0 >"$TMP/fio.out" 2>&1 ||
	{ tail -20 "$TMP/fio.out"; fail "fio verify"; }
grep -q "err= 0" "$TMP/fio.out" || { tail -20 "$TMP/fio.out"; fail "fio reported errors"; }
serve_stop
"$VHD" check --chain "$TMP/c/l1.vhd" >/dev/null || fail "vhd check after fio"

plugindir=$(nbdkit --dump-config | sed -n 's/^plugindir=//p')
[ -n "$plugindir" ] || fail "nbdkit --dump-config gives no plugindir"
(cd "$ROOT" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s B="$B" install DESTDIR="$TMP/root" PREFIX=/usr) \
	>"$TMP/install.out" 2>&1 || { cat "$TMP/install.out"; fail "make install DESTDIR"; }
so=$TMP/root$plugindir/nbdkit-vhd-plugin.so
[ -f "$so" ] || fail "make install did not put the plugin in $plugindir"
nbdkit "$so" --dump-plugin >"$TMP/dump" 2>&1 || { cat "$TMP/dump"; fail "nbdkit cannot load the installed plugin"; }
grep -q "^name=vhd$" "$TMP/dump" && grep -q "^thread_model=parallel$" "$TMP/dump" ||
	{ cat "$TMP/dump"; fail "installed plugin: name or thread model"; }
nbdkit -f -U "$TMP/direct.sock" "$so" "$TMP/c/l1.vhd" readonly=true >"$TMP/direct.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$TMP/direct.sock" ] && break; sleep 0.05; done
[ "$(nbdinfo --size "nbd+unix:///?socket=$TMP/direct.sock")" = 33554432 ] ||
	{ cat "$TMP/direct.log"; fail "nbdkit with the installed plugin (file as its magic key) does not serve"; }
kill -TERM $pid; wait $pid || fail "nbdkit exited $? on SIGTERM"
pass "fio randwrite 4-64 KiB QD16 verified by crc32c through a chain leaf; make install puts a loadable plugin (name vhd, parallel) in $plugindir"
