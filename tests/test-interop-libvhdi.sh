#!/bin/bash
# libvhdi (pyvhdi, vhdiinfo) reads what vhdkit writes: a 4-layer chain with
# random 4 KiB-aligned writes crossing blocks (libvhdi misreads bitmap runs
# that do not end on an 8-sector boundary, so nothing unaligned here), read
# with each parent attached by set_parent, gives vhdkit's content sha256;
# so do a converted dynamic and fixed VHD; vhdiinfo parses every file and
# reports its size, type and parent.
. "$(dirname "$0")/functions.sh"
requires /usr/bin/python3 vhdiinfo
D=$TMP/c
mkdir -p "$D"
total=$((40 * 256))   # 4 KiB units in 40 MiB
"$VHD" create "$D/l0.vhd" 40M >/dev/null || fail "create"
for i in 0 1 2 3; do
	[ $i -gt 0 ] && { "$VHD" snapshot "$D/l$((i - 1)).vhd" "$D/l$i.vhd" >/dev/null || fail "snapshot"; }
	for _ in $(seq 10); do
		len=$(( RANDOM % 700 + 1 )); off=$(( (RANDOM * 32768 + RANDOM) % (total - len) ))
		rand_sectors $((len * 8)) | "$VHDIO" write "$D/l$i.vhd" $((off * 4096)) || fail "write"
	done
done

cat > "$TMP/read.py" <<'EOF2'
import hashlib, os, sys
import pyvhdi
keep = []   # a parent must outlive its child's use of it
def open_chain(path):
    f = pyvhdi.file()
    f.open(path)
    keep.append(f)
    if f.get_parent_identifier() is not None:
        f.set_parent(open_chain(os.path.join(os.path.dirname(path), f.get_parent_filename())))
    return f
f = open_chain(sys.argv[1])
h, left = hashlib.sha256(), f.get_media_size()
f.seek_offset(0, os.SEEK_SET)
while left:
    b = f.read_buffer(min(left, 1 << 22))
    if not b:
        sys.exit("short read")
    h.update(b)
    left -= len(b)
print(h.hexdigest())
EOF2
libvhdi_sha() { /usr/bin/python3 "$TMP/read.py" "$1"; }

for i in 0 1 2 3; do
	[ "$(libvhdi_sha "$D/l$i.vhd")" = "$(content_sha "$D/l$i.vhd")" ] || fail "libvhdi reads l$i.vhd differently"
	vhdiinfo "$D/l$i.vhd" > "$TMP/info" 2>&1 || { cat "$TMP/info" >&2; fail "vhdiinfo l$i.vhd"; }
	grep -q "Media size.*(41943040 bytes)" "$TMP/info" || fail "vhdiinfo: size of l$i.vhd"
	if [ $i -gt 0 ]; then
		grep -q "Disk type.*Differential" "$TMP/info" && grep -q "Parent filename.*l$((i - 1)).vhd" "$TMP/info" \
			|| fail "vhdiinfo: l$i.vhd type or parent"
	fi
done
want=$(content_sha "$D/l3.vhd")
"$VHD" convert "$D/l3.vhd" "$TMP/flat.vhd" >/dev/null || fail "chain -> dynamic"
"$VHD" convert --fixed "$D/l3.vhd" "$TMP/fixed.vhd" >/dev/null || fail "chain -> fixed"
for f in flat fixed; do
	[ "$(libvhdi_sha "$TMP/$f.vhd")" = "$want" ] || fail "libvhdi reads $f.vhd differently"
	vhdiinfo "$TMP/$f.vhd" >/dev/null 2>&1 || fail "vhdiinfo $f.vhd"
done
pass "libvhdi reads a 4-layer chain, its flattened and fixed converts as vhdkit does"
