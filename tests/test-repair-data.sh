#!/bin/bash
# vhd repair on images with data, damaged here one way at a time: the
# repaired file must be byte-identical to the undamaged one where the damage
# hit redundant metadata (footers, checksums, batmap, trailing bytes); a
# truncated file repaired with --force reads as before except the lost part
# (zeros); a differencing child keeps its chain content; what cannot be
# repaired, or is in use, is left untouched.
. "$(dirname "$0")/functions.sh"
requires python3 flock sha256sum

"$VHD" create "$TMP/base.vhd" 16M >/dev/null || fail "create"
rand_sectors 4096 | "$VHDIO" write "$TMP/base.vhd" $((2 << 20)) || fail "full block write"
random_writes "$TMP/base.vhd" 16 20 300 || fail "random writes"
good_raw=$(raw_sha "$TMP/base.vhd")
good_content=$(content_sha "$TMP/base.vhd")

# poke FILE: python statements on bytearray d (the whole file), written back;
# helpers: be32/put32, fsum (footer checksum of 512 bytes), hsum (header).
poke() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
path, code = sys.argv[1], sys.argv[2]
d = bytearray(open(path, 'rb').read())
be32 = lambda o: struct.unpack('>I', d[o:o+4])[0]
be64 = lambda o: struct.unpack('>Q', d[o:o+8])[0]
def put32(o, v): d[o:o+4] = struct.pack('>I', v & 0xffffffff)
def csum(b, at): return ~sum(b[:at] + b'\0\0\0\0' + b[at+4:]) & 0xffffffff
hdr = be64(16)                       # backup footer's header offset
table, entries = be64(hdr + 16), be32(hdr + 28)
batmap_hdr = table + (entries * 4 + 511) // 512 * 512
end = len(d) // 512 * 512 - 512      # primary footer
exec(code)
open(path, 'wb').write(d)
EOF
}

# damaged NAME PYTHON: a fresh copy of the base with that damage.
damaged() {
	cp "$TMP/base.vhd" "$TMP/$1.vhd"
	poke "$TMP/$1.vhd" "$2" || fail "$1: could not damage"
	[ "$(raw_sha "$TMP/$1.vhd")" != "$good_raw" ] || fail "$1: damage did nothing"
}

# repaired_identical NAME WHAT-MUST-BE-SAID: repair restores the exact bytes.
repaired_identical() {
	local f=$TMP/$1.vhd before
	before=$(raw_sha "$f")
	"$VHD" repair --dry-run "$f" >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "$1: dry run failed"; }
	[ "$(raw_sha "$f")" = "$before" ] || fail "$1: dry run wrote"
	"$VHD" repair "$f" >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "$1: repair failed"; }
	grep -q "$2" "$TMP/out" || { cat "$TMP/out"; fail "$1: repair did not say '$2'"; }
	[ "$(raw_sha "$f")" = "$good_raw" ] || fail "$1: repaired file differs from the undamaged one"
	[ "$(content_sha "$f")" = "$good_content" ] || fail "$1: content differs"
}

damaged footer-sum 'put32(end + 64, 0x12345678)'
repaired_identical footer-sum 'primary footer restored from the backup (primary: invalid checksum)'
damaged backup-zero 'd[0:512] = bytes(512)'
repaired_identical backup-zero 'backup footer restored from the primary (backup: invalid cookie)'
damaged trailing 'd += bytes(range(256)) * 11 + b"xyz"'
repaired_identical trailing 'trailing garbage cut: 2819 bytes after the primary footer'
damaged footer-gone-trailing 'd[end:end+512] = b"\xee" * 512; d += b"\xaa" * 8192'
repaired_identical footer-gone-trailing 'primary footer restored from the backup at offset .* the 8192 bytes after it cut'
damaged header-sum 'put32(hdr + 36, 0x0badc0de)'
repaired_identical header-sum 'header checksum fixed (was 0x0badc0de'
damaged header-and-footer 'put32(hdr + 36, 1); put32(end + 64, 2)'
repaired_identical header-and-footer 'header checksum fixed'
# a partly written block marked full (checksum kept right), then a wrong checksum
damaged batmap-bit '
m = be64(batmap_hdr + 8)
partial = next(b for b in range(entries) if be32(table + 4*b) != 0xffffffff and
               d[be32(table + 4*b) * 512:be32(table + 4*b) * 512 + 512] != b"\xff" * 512)
d[m + partial // 8] |= 0x80 >> (partial % 8)
put32(batmap_hdr + 24, ~sum(d[m:m + 512]) & 0xffffffff)'
repaired_identical batmap-bit 'batmap rebuilt from the block bitmaps: 1 block marked full that is not (block [0-9]* not fully written)'
damaged batmap-sum 'put32(batmap_hdr + 24, 7)'
repaired_identical batmap-sum 'batmap checksum fixed (was 0x00000007'

# nothing to repair: unchanged
"$VHD" repair "$TMP/base.vhd" >"$TMP/out" 2>&1 || fail "repair of a good image failed"
grep -q ': nothing to repair$' "$TMP/out" || fail "good image: not 'nothing to repair'"
[ "$(raw_sha "$TMP/base.vhd")" = "$good_raw" ] || fail "repair of a good image changed it"

# refused, untouched: both footers bad; a header field wrong beside a bad checksum
for dmg in 'put32(end + 64, 1); put32(64, 2)' 'put32(hdr + 36, 1); put32(hdr + 28, 1)'; do
	damaged refused "$dmg"
	before=$(raw_sha "$TMP/refused.vhd")
	expect_exit 4 "$VHD" repair --force "$TMP/refused.vhd"
	[ "$(raw_sha "$TMP/refused.vhd")" = "$before" ] || fail "refused ($dmg), but the file changed"
done

# in use: refused while another process holds the write lock
cp "$TMP/base.vhd" "$TMP/busy.vhd"
poke "$TMP/busy.vhd" 'put32(end + 64, 5)'
before=$(raw_sha "$TMP/busy.vhd")
flock -x "$TMP/busy.vhd" -c "\"$VHD\" repair \"$TMP/busy.vhd\"" >"$TMP/out" 2>&1
rc=$?
[ $rc = 4 ] || { cat "$TMP/out"; fail "repair of a locked file exited $rc, expected 4"; }
grep -q "in use" "$TMP/out" || fail "locked file: message does not say it is in use"
[ "$(raw_sha "$TMP/busy.vhd")" = "$before" ] || fail "locked file changed"

# truncated inside the last block: refused, then with --force the cut part
# reads as zeros and all else as before
cp "$TMP/base.vhd" "$TMP/cut.vhd"
read -r last cut vstart < <(python3 - "$TMP/cut.vhd" <<'EOF'
import struct, sys
d = open(sys.argv[1], 'rb').read()
be = lambda o, n: int.from_bytes(d[o:o+n], 'big')
hdr = be(16, 8); table, entries, bs = be(hdr + 16, 8), be(hdr + 28, 4), be(hdr + 32, 4)
blocks = [(be(table + 4*b, 4), b) for b in range(entries) if be(table + 4*b, 4) != 0xffffffff]
sec, b = max(blocks)
data = sec * 512 + 512
print(b, data + 300 * 512 + 77, b * bs)    # cut 300 sectors and 77 bytes into its data
EOF
)
truncate -s "$cut" "$TMP/cut.vhd"
before=$(raw_sha "$TMP/cut.vhd")
expect_exit 4 "$VHD" repair "$TMP/cut.vhd"
[ "$(raw_sha "$TMP/cut.vhd")" = "$before" ] || fail "truncated: refused without --force, but changed"
"$VHD" repair --force "$TMP/cut.vhd" >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "truncated: --force failed"; }
grep -q "block $last cut short" "$TMP/out" || { cat "$TMP/out"; fail "truncated: cut block not named"; }
want=$("$VHDIO" cat "$TMP/base.vhd" | python3 -c '
import sys
d = bytearray(sys.stdin.buffer.read()); start = int(sys.argv[1]) + 300 * 512
end = int(sys.argv[1]) + 2 * 1024 * 1024
d[start:end] = bytes(end - start); sys.stdout.buffer.write(d)' "$vstart" | sha256sum | cut -d' ' -f1)
[ "$(content_sha "$TMP/cut.vhd")" = "$want" ] || fail "truncated: content is not the original with the cut part zeroed"
(cd "$TMP" && "$B/vhd-util" check -n cut.vhd) >"$TMP/chk" 2>&1 || { cat "$TMP/chk"; fail "truncated: check fails"; }

# a differencing child: damaged footers and a BAT entry past the end
"$VHD" snapshot "$TMP/base.vhd" "$TMP/child.vhd" >/dev/null || fail "snapshot"
rand_sectors 64 | "$VHDIO" write "$TMP/child.vhd" $((5 << 20)) || fail "child write"
rand_sectors 8 | "$VHDIO" write "$TMP/child.vhd" $((9 << 20)) || fail "child write"
child_raw=$(raw_sha "$TMP/child.vhd") child_content=$(content_sha "$TMP/child.vhd")
"$VHDIO" cat "$TMP/child.vhd" >"$TMP/child.raw" || fail "child: read"
"$VHDIO" cat "$TMP/base.vhd" >"$TMP/base.raw" || fail "base: read"
poke "$TMP/child.vhd" 'put32(end + 64, 9); d += b"junk" * 100'
"$VHD" repair "$TMP/child.vhd" >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "child: repair failed"; }
[ "$(raw_sha "$TMP/child.vhd")" = "$child_raw" ] || fail "child: repaired file differs from the undamaged one"
[ "$(content_sha "$TMP/child.vhd")" = "$child_content" ] || fail "child: chain content differs"
# BAT entry of the block at 9 MiB pointed past the end: lost, reads from the parent
poke "$TMP/child.vhd" 'put32(table + 4 * 4, 0x7ffffff0)'
expect_exit 4 "$VHD" repair "$TMP/child.vhd"
"$VHD" repair --force --json "$TMP/child.vhd" >"$TMP/j" 2>&1 || { cat "$TMP/j"; fail "child: --force failed"; }
python3 - "$TMP/j" <<'EOF' || fail "child: --json output wrong"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["refused"] is None and j["dry_run"] is False, j
assert len(j["actions"]) == 1 and "reads from the parent" in j["actions"][0], j
EOF
# expected: the child's content before, with block 4 (8-10 MiB) the base's
dd if="$TMP/base.raw" of="$TMP/child.raw" bs=1M skip=8 seek=8 count=2 conv=notrunc status=none
want=$(raw_sha "$TMP/child.raw")
[ "$want" != "$child_content" ] || fail "child: the lost block held nothing of its own"
[ "$(content_sha "$TMP/child.vhd")" = "$want" ] || fail "child: lost block does not read from the parent"
"$VHD" repair "$TMP/child.vhd" | grep -q ': nothing to repair$' || fail "child: second repair did more"
pass "footer, backup, trailing garbage, header and batmap damage restored byte-exact; refusals and a locked file untouched; truncation with --force; differencing child"
