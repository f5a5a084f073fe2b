#!/bin/bash
# vhd-util resize -j / revert: the journal has blktap's layout (checked by an
# independent parser written from ../shared/FORMAT-NOTES.md, including the
# little-endian journal_eof); a resize killed at every write is undone by
# revert byte for byte; a journal written by that parser (as blktap would)
# is reverted by vhd-util revert.
. "$(dirname "$0")/functions.sh"
requires python3
VU=$B/vhd-util
cd "$TMP" || fail "no tmp"
[ -f "$CRASHPOINT" ] || fail "$CRASHPOINT missing (make tests-bin)"

cat >journal.py <<'PY'
import struct, sys
COOKIE = 0xaaaa12344321aaaa
def entries(buf, off, n):
    for _ in range(n):
        cookie, typ, size, where, csum = struct.unpack(">QIIQI", buf[off:off + 28])
        data = buf[off + 32:off + 32 + size]
        hdr = bytearray(buf[off:off + 32]); hdr[24:28] = b"\0\0\0\0"
        assert cookie == COOKIE, "entry cookie"
        assert csum == (~(sum(hdr) + sum(data))) & 0xffffffff, "entry checksum"
        yield typ, where, data
        off += 32 + size
def check(path):
    buf = open(path, "rb").read()
    assert buf[:8] == b"vjournal", "journal cookie"
    foff, ndata, nmeta, doff, moff = struct.unpack(">QIIQQ", buf[24:56])
    eof = struct.unpack("<Q", buf[56:64])[0]      # little-endian, as blktap
    assert eof == len(buf), "journal_eof %d != size %d" % (eof, len(buf))
    types = [t for t, _, _ in entries(buf, moff, nmeta)]
    list(entries(buf, doff, ndata))
    assert types[:3] == [1, 2, 3] and 5 in types, "metadata entries %s" % types
def committed(path):   # blktap's commit: entry counts zeroed
    buf = open(path, "rb").read(512)
    assert buf[:8] == b"vjournal" and buf[32:40] == b"\0" * 8, "not a committed journal"
def write(vhd, path):
    img = open(vhd, "rb").read()
    foot = len(img) - 512
    hdr = img[512:1536]
    table = struct.unpack(">Q", hdr[16:24])[0]
    nbat = struct.unpack(">I", hdr[28:32])[0]
    batlen = (nbat * 4 + 511) // 512 * 512
    bm = img[table + batlen:table + batlen + 512]
    moff, msecs = struct.unpack(">QI", bm[8:20])
    parts = [(1, foot, 512), (2, 0, 512), (3, 512, 1024), (5, table, batlen),
             (6, table + batlen, 512), (7, moff, msecs * 512)]
    body = b""
    for typ, off, size in parts:
        data = img[off:off + size]
        e = struct.pack(">QIIQI", COOKIE, typ, size, off, 0) + b"\0" * 4
        csum = (~(sum(e) + sum(data))) & 0xffffffff
        body += struct.pack(">QIIQI", COOKIE, typ, size, off, csum) + b"\0" * 4 + data
    eof = 512 + len(body)
    head = b"vjournal" + img[foot + 68:foot + 84]
    head += struct.pack(">QIIQQ", foot, 0, len(parts), eof, 512) + struct.pack("<Q", eof)
    open(path, "wb").write(head.ljust(512, b"\0") + body)
{"check": check, "committed": committed, "write": write}[sys.argv[1]](*sys.argv[2:])
PY

"$VU" create -n orig.vhd -s 8 >/dev/null || fail create
rand_sectors 700 >d && "$VHDIO" write orig.vhd 512000 <d || fail write
orig=$(raw_sha orig.vhd)
cp orig.vhd w.vhd
n=$(crash_count "$VU" resize -n w.vhd -s 64 -j w.journal) || fail "resize failed"
[ "$n" -gt 3 ] || fail "resize made only $n writes"
reverted=0
for at in $(seq 1 "$n"); do
	cp orig.vhd w.vhd; rm -f w.journal
	crash_run "$at" kill 1 "$VU" resize -n w.vhd -s 64 -j w.journal >/dev/null 2>&1
	if [ -e w.journal ] && [ "$(stat -c %s w.journal)" -gt 512 ]; then
		# unreadable: not yet complete (image untouched) or committed (resized)
		python3 journal.py check w.journal 2>/dev/null || { [ "$(raw_sha w.vhd)" = "$orig" ] ||
			{ python3 journal.py committed w.journal && [ "$("$VU" query -n w.vhd -v)" = 64 ] &&
			  "$VU" check -n w.vhd >/dev/null; } ||
			fail "crash at $at: unreadable journal and a changed image"; continue; }
		expect_exit 0 "$VU" revert -n w.vhd -j w.journal
		[ "$(raw_sha w.vhd)" = "$orig" ] || fail "crash at $at: revert did not restore the image"
		[ ! -e w.journal ] || fail "revert left the journal"
		reverted=$((reverted + 1))
	elif [ "$(raw_sha w.vhd)" != "$orig" ]; then
		[ "$("$VU" query -n w.vhd -v)" = 64 ] && "$VU" check -n w.vhd >/dev/null ||
			fail "crash at $at: no journal, image neither old nor resized"
	fi
done
[ "$reverted" -gt 0 ] || fail "no crash point left a journal to revert"

# a complete resize: the journal is gone, the image valid; then a journal
# written as blktap writes it undoes that resize
cp orig.vhd w.vhd; rm -f w.journal
python3 journal.py write w.vhd blk.journal || fail "writing a blktap journal"
python3 journal.py check blk.journal || fail "own parser rejects its journal"
expect_exit 0 "$VU" resize -n w.vhd -s 64 -j w.journal
[ ! -e w.journal ] && [ "$("$VU" query -n w.vhd -v)" = 64 ] || fail "resize"
expect_exit 0 "$VU" revert -n w.vhd -j blk.journal
[ "$(raw_sha w.vhd)" = "$orig" ] || fail "revert of a blktap-layout journal did not restore the image"
pass "resize killed at $n points: $reverted journals in blktap's layout reverted byte-exact; blktap-layout journal reverted"
