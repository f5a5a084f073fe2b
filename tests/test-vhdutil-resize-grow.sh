#!/bin/bash
# vhd-util resize -j when the BAT must grow (blocks in the way moved, BAT and
# batmap relocated): on a fresh tap disk with a batmap, one without (tap 1.1),
# the corpus's 256 MiB tap disk (its one BAT sector full) and its grown
# differencing leaf, the completed resize has the new size, the old content
# and zeros beyond (vhd-io and qemu-img), passes vhd check and vhd-util
# check, and leaves no journal.  Killed (SIGKILL and power loss) at points
# spread over the whole operation, a journal left behind is reverted byte
# for byte, alternately by vhd-util revert and by a reverter that follows
# blktap's rules (../shared/FORMAT-NOTES.md: metadata entries in blktap's
# order, data entries from the data offset, then a truncate); a journal that
# is refused leaves the image either untouched or completely resized.  A disk
# not made by tap is refused as blktap refuses it.
. "$(dirname "$0")/functions.sh"
need_corpus
requires python3 qemu-img
VU=$B/vhd-util
cd "$TMP" || fail "no tmp"
PY=$(python3 -c 'import sys; print(sys.executable)')   # not through a version shim each time
[ -f "$CRASHPOINT" ] || fail "$CRASHPOINT missing (make tests-bin)"

cat >blkrevert.py <<'PY'
# Reverts a resize journal as blktap's libvhd-journal does (written from
# ../shared/FORMAT-NOTES.md): footer, backup footer, header, one locator
# entry per locator in use, BAT (at the header's table offset, its padded
# size), batmap header and map (creator tap >= 1.2), then the data entries,
# then the VHD is cut at the recorded footer offset + 512.
import struct, sys
COOKIE = 0xaaaa12344321aaaa
vhd, jpath = sys.argv[1], sys.argv[2]
j = open(jpath, "rb").read()
assert j[:8] == b"vjournal", "journal cookie"
foff, ndata, nmeta, doff, moff = struct.unpack(">QIIQQ", j[24:56])
def entry(pos, want):
    cookie, typ, size, off, csum = struct.unpack(">QIIQI", j[pos:pos + 28])
    data = j[pos + 32:pos + 32 + size]
    hdr = bytearray(j[pos:pos + 32]); hdr[24:28] = b"\0" * 4
    assert cookie == COOKIE and size and size % 512 == 0 and len(data) == size, "entry"
    assert csum == (~(sum(hdr) + sum(data))) & 0xffffffff, "entry checksum"
    assert typ == want, "entry type %d, expected %d" % (typ, want)
    return off, data, pos + 32 + size
pad = lambda n: (n + 511) // 512 * 512
writes = []
_, footer, pos = entry(512, 1)
writes.append((foff, footer))
if struct.unpack(">I", footer[60:64])[0] in (3, 4):
    _, copy, pos = entry(pos, 2)
    hoff = struct.unpack(">Q", footer[16:24])[0]
    _, hdr, pos = entry(pos, 3)
    writes += [(0, copy), (hoff, hdr)]
    for i in range(8):
        code, _, _, _, loff = struct.unpack(">IIIIQ", hdr[576 + 24 * i:600 + 24 * i])
        if code:
            _, loc, pos = entry(pos, 4)
            writes.append((loff, loc))
    table, nbat = struct.unpack(">Q", hdr[16:24])[0], struct.unpack(">I", hdr[28:32])[0]
    off, bat, pos = entry(pos, 5)
    assert off == table and len(bat) == pad(nbat * 4), "BAT entry"
    writes.append((table, bat))
    if footer[28:31] == b"tap" and struct.unpack(">I", footer[32:36])[0] >= 0x00010002:
        _, bmh, pos = entry(pos, 6)
        moff_, msecs = struct.unpack(">QI", bmh[8:20])
        off, bmm, pos = entry(pos, 7)
        assert off == moff_ and len(bmm) == msecs * 512, "batmap entry"
        writes += [(table + len(bat), bmh), (moff_, bmm)]
assert pos == doff, "data offset %d, metadata ends at %d" % (doff, pos)
for _ in range(ndata):
    off, data, pos = entry(pos, 8)
    writes.append((off, data))
with open(vhd, "r+b") as f:
    for off, data in writes:
        f.seek(off); f.write(data)
    f.truncate(foff + 512)
print("data entries: %d" % ndata)
PY

zeros_sha() { head -c "$1" /dev/zero | sha256sum | cut -d' ' -f1; }
in_dir() { (cd "$(dirname "$1")" && "${@:2}" "$(basename "$1")"); }
checks() {   # checks IMG WHAT: vhd check and vhd-util check pass
	"$VHD" check "$1" >"$1.chk" 2>&1 || { cat "$1.chk"; fail "$2: vhd check fails"; }
	in_dir "$1" "$VU" check -n >"$1.chk" 2>&1 || { cat "$1.chk"; fail "$2: vhd-util check fails"; }
	rm -f "$1.chk"
}
# content_ok IMG WHAT: the old content ($old_sha over $old_bytes), then zeros
# (the first 2 MiB of the new area; qemu-img reads all of it below)
content_ok() {
	local tail=2097152
	"$VHDIO" cat "$1" 2>/dev/null | head -c $(( old_bytes + tail )) >"$1.raw"
	[ "$(head -c "$old_bytes" "$1.raw" | sha256sum | cut -d' ' -f1)" = "$old_sha" ] ||
		fail "$2: content changed"
	[ "$(tail -c +$(( old_bytes + 1 )) "$1.raw" | sha256sum | cut -d' ' -f1)" = "$(zeros_sha "$tail")" ] ||
		fail "$2: the new area is not zeros"
	rm -f "$1.raw"
}

# revert IMG JOURNAL N: by vhd-util (N even) or by blktap's rules (N odd)
revert() {
	if [ $(( $3 % 2 )) = 0 ]; then
		in_dir "$1" "$VU" revert -j "$(basename "$2")" -n
	else
		"$PY" blkrevert.py "$1" "$2"
	fi
}
# qemu_head IMG: qemu-img reads the old content, then zeros (2 MiB)
qemu_head() {
	qemu-img dd -f vpc -O raw if="$1" of=q.raw bs=1M count=$(( (old_bytes >> 20) + 2 )) ||
		fail "$1: qemu-img cannot read the resized disk"
	[ "$(head -c "$old_bytes" q.raw | sha256sum | cut -d' ' -f1)" = "$old_sha" ] &&
	[ "$(tail -c +$(( old_bytes + 1 )) q.raw | sha256sum | cut -d' ' -f1)" = "$(zeros_sha 2097152)" ] ||
		fail "$1: qemu-img reads other content"
	rm -f q.raw
}
# qemu_zeros IMG MB: qemu-img maps MB MiB, nothing but zeros past the old end
qemu_zeros() {
	qemu-img map -f vpc --output=json "$1" >map.json || fail "$1: qemu-img map"
	"$PY" - map.json "$old_bytes" $(( $2 << 20 )) <<'PY' || fail "$1: qemu-img maps data past the old end"
import json, sys
m, old, new = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
assert sum(e["length"] for e in m) == new, "mapped size"
assert all(e["start"] + e["length"] <= old for e in m if e["data"] or not e["zero"]), "data"
PY
}
# crash_one PROTO IMG MB AT MODE: a resize of a copy of directory PROTO
# crashed at AT; then the journal (if any) is reverted
crash_one() {
	local w=w.$4.$5 what="$2: $5 at $4" img ndata
	rm -rf "$w" && cp -r "$1" "$w" && img=$w/$2
	in_dir "$img" crash_run "$4" "$5" "$4" "$VU" resize -s "$3" -j j -n >/dev/null 2>&1
	if [ -e "$w/j" ]; then
		ndata=$(od -An -tu4 --endian=big -j32 -N4 "$w/j" 2>/dev/null | tr -d ' ')
		ndata=${ndata:-0}
		if revert "$img" "$w/j" "$4" >"$w.out" 2>&1; then
			[ "$(raw_sha "$img")" = "$orig_raw" ] || fail "$what: revert did not restore the image byte for byte"
			echo reverted >>"$w.result"
			[ "$ndata" -gt 0 ] && echo data >>"$w.result"
			rm -rf "$w" "$w.out"
			return 0
		fi
		[ $(( $4 % 2 )) = 1 ] || grep -q "^opening journal failed: -" "$w.out" ||
			{ cat "$w.out"; fail "$what: revert failed without blktap's message"; }
	fi
	if [ "$(raw_sha "$img")" = "$orig_raw" ]; then
		echo untouched >>"$w.result"
	else   # a refused journal (incomplete or committed): the resize completed
		[ "$(raw_sha "$img")" = "$done_raw" ] ||
			fail "$what: the image is neither the original nor the completed resize's"
		echo completed >>"$w.result"
	fi
	rm -rf "$w" "$w.out"
}

wait_all() {   # a failed crash point has said why
	local p bad=0
	for p in "$@"; do wait "$p" || bad=1; done
	[ $bad = 0 ] || exit 1
}
# crash_loop PROTO IMG MB POINTS: POINTS crash points spread over the resize,
# each with SIGKILL and with a power loss (ENOSPC or EIO from there on at
# every other point: the immediate revert fails too), two at a time
crash_loop() {
	local steps n at i pids=()
	steps=$(rm -rf w && cp -r "$1" w && cd w && crash_count "$VU" resize -n "$2" -s "$3" -j j) ||
		fail "$2: clean resize failed"
	rm -rf w w.*.result
	n=$(( steps < $4 ? steps : $4 ))
	for i in $(seq 0 $((n - 1))); do
		at=$(( n == 1 ? 1 : 1 + i * (steps - 1) / (n - 1) ))
		for mode in kill powerloss $(case $((i % 4)) in 1) echo enospc ;; 3) echo eio ;; esac); do
			crash_one "$1" "$2" "$3" "$at" "$mode" &
			pids+=($!)
			[ ${#pids[@]} = 2 ] && { wait_all "${pids[@]}"; pids=(); }
		done
	done
	wait_all "${pids[@]}"
	cat w.*.result | grep -v '^data' >results
	local rev=$(grep -c '^reverted' results) data
	data=$(cat w.*.result | grep -c '^data')
	[ "$rev" -gt 0 ] && [ "$data" -gt 0 ] || fail "$2: no crash left a journal with data entries to revert"
	grep -q '^completed\|^untouched' results || fail "$2: no crash point before or after the journal's life"
	rm -f w.*.result
	summary="$summary $2:$steps steps/$(wc -l <results) crashes/$rev reverted"
}

# proto DIR IMG: sets orig_raw, old_bytes, old_sha from DIR/IMG
proto() {
	orig_raw=$(raw_sha "$1/$2")
	old_bytes=$(( $("$VU" query -n "$1/$2" -v) << 20 ))
	old_sha=$(content_sha "$1/$2")
}
# complete DIR IMG MB: a completed resize, checked; the BAT moved
complete() {
	local w=done.$2 table
	rm -rf "$w" && cp -r "$1" "$w"
	table=$("$VHD" info --json "$w/$2" | sed -n 's/.*"table_offset":\([0-9]*\).*/\1/p')
	in_dir "$w/$2" expect_exit 0 "$VU" resize -s "$3" -j j -n || exit 1
	[ ! -e "$w/j" ] || fail "$2: the journal is left after the resize"
	[ "$("$VU" query -n "$w/$2" -v)" = "$3" ] || fail "$2: not resized to $3 MiB"
	[ "$("$VHD" info --json "$w/$2" | sed -n 's/.*"table_offset":\([0-9]*\).*/\1/p')" != "$table" ] ||
		fail "$2: the BAT did not move"
	checks "$w/$2" "$2 resized"
	content_ok "$w/$2" "$2 resized"
	done_raw=$(raw_sha "$w/$2")
}
summary=
# grow_checked DIR NAME MB CRASHES: resize DIR/NAME to MB (completed, then
# compared with qemu-img), then the crash loop
grow_checked() {
	proto "$1" "$2"
	complete "$1" "$2" "$3"
	qemu_head "done.$2/$2"
	qemu_zeros "done.$2/$2" "$3"
	rm -rf "done.$2"
	crash_loop "$1" "$2" "$3" "$4"
}

# a fresh tap disk (batmap), data in the blocks the new BAT needs
mkdir a
"$VU" create -n a/a.vhd -s 8 >/dev/null || fail create
rand_sectors 4200 | "$VHDIO" write a/a.vhd 0 || fail write
rand_sectors 9 | "$VHDIO" write a/a.vhd 7000064 || fail write
grow_checked a a.vhd 260 12
# an error (the file may not grow: EFBIG) is reverted at once, as blktap does
cp a/a.vhd e.vhd
out=$(trap '' XFSZ; ulimit -f $(( $(stat -c %s e.vhd) / 1024 + 8 )); "$VU" resize -n e.vhd -s 260 -j e.j); rc=$?
[ "$rc" = 27 ] && [ "$out" = "resize failed: -27" ] || fail "EFBIG: exit $rc, '$out'"
[ ! -e e.j ] && [ "$(raw_sha e.vhd)" = "$orig_raw" ] || fail "EFBIG: the failed resize was not reverted"

# tap 1.1, no batmap: the new BAT lands on the old batmap's bytes
mkdir n
"$VU" create -n n/n.vhd -s 8 >/dev/null || fail create
"$PY" - n/n.vhd <<'PY' || fail "making a tap 1.1 disk"
import struct, sys
f = open(sys.argv[1], "r+b"); size = f.seek(0, 2)
for off in (0, size - 512):
    f.seek(off); ft = bytearray(f.read(512))
    ft[32:36] = struct.pack(">I", 0x00010001); ft[64:68] = b"\0" * 4
    ft[64:68] = struct.pack(">I", ~sum(ft) & 0xffffffff)
    f.seek(off); f.write(ft)
# a 1.1 disk has a batmap when its header validates (libvhd): wipe it, as a
# disk updated from 0.1 has none
f.seek(512 + 16); table = struct.unpack(">Q", f.read(8))[0]
f.seek(512 + 28); n = struct.unpack(">I", f.read(4))[0]
f.seek(table + (n * 4 + 511) // 512 * 512); f.write(bytes(512))
PY
rand_sectors 4100 | "$VHDIO" write n/n.vhd 2097152 || fail write
"$VHD" info --json n/n.vhd | grep -q '"batmap":null' || fail "the tap 1.1 disk has a batmap"
grow_checked n n.vhd 260 6

# the corpus's 256 MiB tap disk: its only BAT sector is full
mkdir c && cp "$CORPUS/good/tap-dyn-data-256m.vhd" c/ && chmod u+w c/*.vhd
orig_raw=$(raw_sha c/tap-dyn-data-256m.vhd) old_bytes=$(( 256 << 20 ))
old_sha=$(awk -F'\t' '$1 == "good/tap-dyn-data-256m.vhd" {print $6}' "$CORPUS/MANIFEST.tsv")
complete c tap-dyn-data-256m.vhd 300
qemu_zeros done.tap-dyn-data-256m.vhd/tap-dyn-data-256m.vhd 300
rm -rf done.tap-dyn-data-256m.vhd
crash_loop c tap-dyn-data-256m.vhd 300 5

# the corpus's grown differencing leaf (locators, parent beside it)
cp -r "$CORPUS/good/grow" g && chmod u+w g/*.vhd
proto g leaf.vhd
complete g leaf.vhd 300
rm -rf done.leaf.vhd
crash_loop g leaf.vhd 300 5

# a disk not made by tap: refused as blktap refuses it, nothing written
cp "$CORPUS/good/qemu-dyn-data.vhd" q.vhd && chmod u+w q.vhd
before=$(raw_sha q.vhd)
out=$("$VU" resize -n q.vhd -s 300 -j q.j); rc=$?
[ "$rc" = 22 ] && [ "$out" = "q.vhd not created by xen; resize not supported" ] ||
	fail "qemu disk: exit $rc, '$out'"
[ ! -e q.j ] && [ "$(raw_sha q.vhd)" = "$before" ] || fail "qemu disk: changed by a refused resize"
pass "completed resizes valid with old content and zeros; crashes:$summary; byte-exact reverts (vhd-util and blktap's rules)"
