#!/bin/bash
# vhd-util revert with a damaged journal writes nothing: a journal left by a
# resize killed midway (its BAT moving, so it holds data entries) is garbled
# in a metadata entry, in a data entry, truncated, given an entry outside
# the image (valid checksum) and a footer offset past the image's end; each
# is refused with blktap's message and the image stays byte for byte as the
# crash left it (no half-restored, re-enabled image).  The intact journal
# then restores the original.  resize -j refuses an image whose metadata
# entry its own revert would refuse (a locator area over 64 MiB).
. "$(dirname "$0")/functions.sh"
requires python3
VU=$B/vhd-util
cd "$TMP" || fail "no tmp"
[ -f "$CRASHPOINT" ] || fail "$CRASHPOINT missing (make tests-bin)"

"$VU" create -n o.vhd -s 8 >/dev/null || fail create
rand_sectors 600 | "$VHDIO" write o.vhd 0 || fail write
orig=$(raw_sha o.vhd)

# a resize that must move the BAT, killed once the image is disabled
n=$(cp o.vhd w.vhd && crash_count "$VU" resize -n w.vhd -s 512 -j w.j) || fail "resize failed"
found=
for at in $(seq 1 "$n"); do
	cp o.vhd w.vhd; rm -f w.j
	crash_run "$at" kill 1 "$VU" resize -n w.vhd -s 512 -j w.j >/dev/null 2>&1
	[ -e w.j ] && [ "$(head -c 8 w.vhd)" = v_poison ] &&
		[ "$(od -An -tu4 --endian=big -j32 -N4 w.j | tr -d ' ')" -gt 0 ] &&
		[ "$(stat -c %s w.vhd)" -gt "$(stat -c %s o.vhd)" ] && { found=$at; break; }
done
[ -n "$found" ] || fail "no crash point left a disabled, grown image and a journal with data entries"
cp w.vhd crashed.vhd; cp w.j crashed.j

cat >jtool.py <<'PY'
# jtool.py JOURNAL what: prints the byte offsets of entry data ("meta N" or
# "data N": the Nth entry of that kind), or rewrites an entry ("move N OFF":
# metadata entry N to image offset OFF, checksum fixed), or sets the
# journal's footer offset ("footer OFF").
import struct, sys
path, what = sys.argv[1], sys.argv[2:]
j = bytearray(open(path, "rb").read())
foff, nd, nm, doff, moff = struct.unpack(">QIIQQ", j[24:56])
def entries(pos, n):
    out = []
    for _ in range(n):
        size = struct.unpack(">I", j[pos + 12:pos + 16])[0]
        out.append(pos); pos += 32 + size
    return out
meta, data = entries(moff, nm), entries(doff, nd)
if what[0] in ("meta", "data"):
    print((meta if what[0] == "meta" else data)[int(what[1])] + 32 + 100)
elif what[0] == "move":
    p = meta[int(what[1])]
    struct.pack_into(">Q", j, p + 16, int(what[2]))
    size = struct.unpack(">I", j[p + 12:p + 16])[0]
    j[p + 24:p + 28] = b"\0" * 4
    struct.pack_into(">I", j, p + 24, ~(sum(j[p:p + 32]) + sum(j[p + 32:p + 32 + size])) & 0xffffffff)
elif what[0] == "footer":
    struct.pack_into(">Q", j, 24, int(what[1]))
open(path, "wb").write(j)
PY

# damaged JOURNAL WHAT: revert refuses it, the image is left as it was
damaged() {
	cp crashed.vhd w.vhd
	out=$("$VU" revert -n w.vhd -j "$1"); rc=$?
	[ $rc -ne 0 ] || fail "$2: revert accepted a damaged journal"
	grep -q '^\(opening\|reverting\) journal failed: -' <<<"$out" || fail "$2: message '$out'"
	cmp -s w.vhd crashed.vhd || fail "$2: revert wrote to the image before refusing the journal"
	[ -e "$1" ] || fail "$2: the journal was removed"
}
flip() {   # flip JOURNAL OFFSET: one byte changed
	python3 -c 'import sys; f = open(sys.argv[1], "r+b"); o = int(sys.argv[2]); f.seek(o); b = f.read(1)[0]; f.seek(o); f.write(bytes([b ^ 0x5a]))' "$1" "$2"
}
last_meta=$(( $(od -An -tu4 --endian=big -j36 -N4 crashed.j | tr -d ' ') - 1 ))
cp crashed.j j1; flip j1 "$(python3 jtool.py j1 meta "$last_meta")"
damaged j1 "garbled last metadata entry"
cp crashed.j j2; flip j2 "$(python3 jtool.py j2 data 0)"
damaged j2 "garbled data entry"
cp crashed.j j3; truncate -s $(( $(stat -c %s crashed.j) - 700 )) j3
damaged j3 "truncated journal"
cp crashed.j j4; python3 jtool.py j4 move "$last_meta" $(( $(stat -c %s crashed.vhd) + 4096 ))
damaged j4 "an entry past the image's end"
cp crashed.j j5; python3 jtool.py j5 footer $(( 64 << 30 ))
damaged j5 "a footer offset past the image's end"
[ "$(stat -c %s w.vhd)" = "$(stat -c %s crashed.vhd)" ] || fail "the image's size changed"

# the intact journal restores the original byte for byte
cp crashed.vhd w.vhd; cp crashed.j w.j
expect_exit 0 "$VU" revert -n w.vhd -j w.j
[ "$(raw_sha w.vhd)" = "$orig" ] || fail "the intact journal did not restore the image"
[ ! -e w.j ] || fail "revert left the journal"

# resize -j: a differencing disk whose locator area is 80 MiB (inside the
# file) would give a journal entry its revert refuses: resize refuses first
"$VHD" snapshot o.vhd big.vhd >/dev/null || fail snapshot
python3 - big.vhd <<'PY' || fail "making the 80 MiB locator"
import struct, sys
f = open(sys.argv[1], "r+b"); end = f.seek(0, 2)
f.seek(end - 512); foot = f.read(512)
newend = 100 << 20
f.truncate(newend + 512); f.seek(newend); f.write(foot)
f.seek(512); h = bytearray(f.read(1024))
struct.pack_into(">I", h, 576 + 4, 80 << 20)          # locator 0: data space, bytes
h[36:40] = b"\0" * 4; struct.pack_into(">I", h, 36, ~sum(h) & 0xffffffff)
f.seek(512); f.write(h)
PY
before=$(raw_sha big.vhd)
out=$("$VU" resize -n big.vhd -s 64 -j big.j); rc=$?
[ $rc -ne 0 ] || fail "resize -j journaled an 80 MiB locator its revert cannot take"
[ "$out" = "creating journal failed: -22" ] || fail "big locator: '$out'"
[ ! -e big.j ] && [ "$(raw_sha big.vhd)" = "$before" ] || fail "big locator: something was written"
pass "5 damaged journals refused with the image untouched; the intact one reverted; an oversized locator refused by resize -j"
