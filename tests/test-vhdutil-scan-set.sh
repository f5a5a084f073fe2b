#!/bin/bash
# vhd-util repair, set and scan, pinned to blktap's vhd-util-repair.c,
# -set-field.c, -scan.c and libvhd (open flags, footer reads, markers):
# messages, stdout/stderr, exit status (the positive errno), usage texts,
# and the deliberate differences listed in the man page.  Every expected line
# is built from values this test wrote.
. "$(dirname "$0")/functions.sh"
requires python3 cmp
VU=$B/vhd-util
cd "$TMP" || fail "no tmp"

# footer FILE OFFSET FIELD=VALUE...: edit the footer copy at OFFSET (0, or
# -512 for the last sector) and fix its checksum. FIELDs: hidden, uuid (hex
# or "nil"), creator_version, cookie.
footer() {
	python3 - "$@" <<'PY' || fail "footer edit $*"
import struct, sys
name, off = sys.argv[1], int(sys.argv[2])
f = open(name, "r+b")
f.seek(off, 0 if off >= 0 else 2)
pos = f.tell()
b = bytearray(f.read(512))
for kv in sys.argv[3:]:
    k, v = kv.split("=")
    if k == "hidden": b[85] = int(v)
    elif k == "uuid": b[68:84] = bytes(16) if v == "nil" else bytes.fromhex(v)
    elif k == "creator_version": b[32:36] = struct.pack(">I", int(v, 0))
    elif k == "cookie": b[0:8] = v.encode()
b[64:68] = bytes(4)
b[64:68] = struct.pack(">I", ~sum(b) & 0xffffffff)
f.seek(pos); f.write(b)
PY
}
# field FILE OFFSET START LEN: hex of footer bytes
field() {
	python3 -c 'import sys
f = open(sys.argv[1], "rb"); o = int(sys.argv[2]); f.seek(o, 0 if o >= 0 else 2)
b = f.read(512); print(b[int(sys.argv[3]):int(sys.argv[3]) + int(sys.argv[4])].hex())' "$@"
}
NIL=00000000000000000000000000000000
# run CMD...: $out = stdout, $err = stderr, $rc
run() { out=$("$@" 2>"$TMP/.err"); rc=$?; err=$(cat "$TMP/.err"); }

"$VU" create -n a.vhd -s 10 >/dev/null || fail "create a"
"$VU" create -n fixed.vhd -s 2 -r >/dev/null || fail "create fixed"

# ---------------------------------------------------------------- repair
run "$VU" repair -h
[ $rc -eq 22 ] && [ "$out" = "options: <-n name> <-b use the back-up footer> [-h help]" ] ||
	fail "repair -h: $rc $out"
# -b: only the footer copy at offset 0 is read; an invalid one fails the open
cp a.vhd r.vhd && printf X | dd of=r.vhd bs=1 conv=notrunc status=none
cp r.vhd r.before
run "$VU" repair -n r.vhd -b
[ $rc -eq 22 ] && [ "$out" = "error opening r.vhd: -22" ] || fail "repair -b bad backup: $rc $out"
cmp -s r.vhd r.before || fail "repair -b changed a file it could not open"
# ... a fixed disk has no copy at 0
run "$VU" repair -n fixed.vhd -b
[ $rc -eq 22 ] && [ "$out" = "error opening fixed.vhd: -22" ] || fail "repair -b fixed: $rc $out"
# ... without -b the primary is used and the backup rewritten from it
expect_exit 0 "$VU" repair -n r.vhd
cmp -s r.vhd a.vhd || fail "repair did not restore the backup from the primary"
# -b copies the backup over the primary, whatever the primary says
cp a.vhd r.vhd && footer r.vhd 0 hidden=1
expect_exit 0 "$VU" repair -n r.vhd -b
[ "$(field r.vhd -512 85 1)" = 01 ] || fail "repair -b: primary not taken from the backup"
[ "$("$VU" check -n r.vhd)" = "r.vhd is valid" ] || fail "repair -b: invalid result"
# a nil UUID is replaced by a new one (with and without -b), in both copies
for opt in "" -b; do
	cp a.vhd r.vhd && footer r.vhd 0 uuid=nil && footer r.vhd -512 uuid=nil
	expect_exit 0 "$VU" repair -n r.vhd $opt
	u0=$(field r.vhd 0 68 16) u1=$(field r.vhd -512 68 16)
	[ "$u0" != $NIL ] && [ "$u0" = "$u1" ] || fail "repair $opt: uuid $u0 / $u1"
	[ "$u0" != "$(field a.vhd 0 68 16)" ] || fail "repair $opt: uuid not new"
done
# an intact image is left byte for byte as it was
cp a.vhd r.vhd && expect_exit 0 "$VU" repair -n r.vhd && cmp -s r.vhd a.vhd || fail "repair of a good image"

# ---------------------------------------------------------------- set
USAGE="options: <-n name> <-f field> <-v value> [-h help]"
for args in "-n a.vhd -f hidden" "-h" "-n a.vhd -f hidden -v 1 extra"; do
	run "$VU" set $args
	[ $rc -eq 22 ] && [ "$out" = "$USAGE" ] || fail "set $args: $rc $out"
done
# the field is checked before the value; both then print the usage
run "$VU" set -n a.vhd -f bogus -v 300
[ $rc -eq 22 ] && [ "$out" = "$(printf 'invalid field bogus\n%s' "$USAGE")" ] || fail "set bogus: $rc $out"
run "$VU" set -n a.vhd -f hiddenhiddenhiddenhiddenh -v 1
[ $rc -eq 22 ] && [ "$out" = "$(printf 'invalid field\n%s' "$USAGE")" ] || fail "set long field: $rc $out"
for v in 256 -1; do
	run "$VU" set -n a.vhd -f hidden -v $v
	[ $rc -eq 22 ] && [ "$out" = "$(printf 'invalid value %s\n%s' $v "$USAGE")" ] || fail "set -v $v: $rc $out"
done
run "$VU" set -n missing.vhd -f hidden -v 1
[ $rc -eq 2 ] && [ "$out" = "error opening missing.vhd: -2" ] || fail "set missing: $rc $out"
# strtol: trailing text ignored; any byte value is stored as given
cp a.vhd s.vhd
expect_exit 0 "$VU" set -n s.vhd -f hidden -v 2x
[ "$("$VU" query -n s.vhd -f)" = "hidden: 2" ] || fail "set hidden 2: $("$VU" query -n s.vhd -f)"
[ "$(field s.vhd 0 85 1)$(field s.vhd -512 85 1)" = 0202 ] || fail "set hidden: both copies"
expect_exit 0 "$VU" set -n s.vhd -f hidden -v 0
[ "$("$VU" query -n s.vhd -f)" = "hidden: 0" ] || fail "set hidden 0"
# marker with a batmap: the batmap header's byte, batmap still valid
expect_exit 0 "$VU" set -n s.vhd -f marker -v 7
[ "$("$VU" query -n s.vhd -m)" = "marker: 7" ] && [ "$("$VU" check -n s.vhd)" = "s.vhd is valid" ] ||
	fail "set marker (batmap)"
# marker without a batmap: blktap's extended attribute on the file
if python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.vhdkit-probe", b"1")' fixed.vhd 2>/dev/null; then
	expect_exit 0 "$VU" set -n fixed.vhd -f marker -v 200
	[ "$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.com.citrix.xenclient.backend.marker").hex())' fixed.vhd)" = c8 ] ||
		fail "set marker: xattr not written"
	[ "$("$VU" query -n fixed.vhd -m)" = "marker: -56" ] || fail "query -m after set (xattr)"
	[ "$("$VU" scan -M fixed.vhd)" = "vhd=fixed.vhd capacity=2097152 size=2097664 hidden=0 marker=200 keyhash= parent=none" ] ||
		fail "scan -M (xattr): $("$VU" scan -M fixed.vhd)"
else   # no user xattrs on this filesystem: blktap's -EOPNOTSUPP
	expect_exit 95 "$VU" set -n fixed.vhd -f marker -v 200
fi

# ---------------------------------------------------------------- scan
SUSAGE="usage: [OPTIONS] FILES
options: [-m match filter] [-f fast] [-c continue on failure] [-l LVM volume] [-p pretty print] [-a scan parents] [-v verbose] [-h help] [-M show markers]"
run "$VU" scan
[ $rc -eq 22 ] && [ "$out" = "$SUSAGE" ] || fail "scan without targets: $rc"
run "$VU" scan -h
[ $rc -eq 0 ] && [ "$out" = "$SUSAGE" ] || fail "scan -h: $rc"
# a raw parent (snapshot -m): -a lists it as a raw target
mkdir raw && cd raw || fail "mkdir"
head -c 4194304 /dev/urandom >base.img
"$VU" snapshot -n c.vhd -p base.img -m >/dev/null || fail "snapshot -m"
rand_sectors 8 | "$VHDIO" write c.vhd 0 || fail "write c"
"$VU" snapshot -n d.vhd -p c.vhd >/dev/null || fail "snapshot d"
run "$VU" scan -a d.vhd
want="vhd=d.vhd capacity=4194304 size=5120 hidden=0 parent=c.vhd
vhd=c.vhd capacity=4194304 size=$(stat -c %s c.vhd) hidden=0 parent=base.img
vhd=base.img capacity=4194304 size=4194304 hidden=1 parent=none"
[ $rc -eq 0 ] && [ "$out" = "$want" ] || fail "scan -a raw parent: $rc
$out"
run "$VU" scan -a -p d.vhd
want="vhd=base.img capacity=4194304 size=4194304 hidden=1 parent=none
   vhd=c.vhd capacity=4194304 size=$(stat -c %s c.vhd) hidden=0 parent=base.img
      vhd=d.vhd capacity=4194304 size=5120 hidden=0 parent=c.vhd"
[ $rc -eq 0 ] && [ "$out" = "$want" ] || fail "scan -a -p raw parent: $rc
$out"
run "$VU" scan -a -v -M c.vhd
want="vhd=c.vhd capacity=4194304 size=$(stat -c %s c.vhd) hidden=0 marker=0 keyhash= parent=$PWD/base.img
vhd=$PWD/base.img capacity=4194304 size=4194304 hidden=1 marker=0 keyhash= parent=none"
[ $rc -eq 0 ] && [ "$out" = "$want" ] || fail "scan -a -v -M raw parent: $rc
$out"
# the raw image named directly is not a VHD
run "$VU" scan base.img
[ $rc -eq 22 ] && [ "$out" = "vhd=base.img scan-error=-22 error-message='opening file'" ] || fail "scan raw: $rc $out"
cd "$TMP" || fail cd

# -f reads the footer copy at offset 0 (and the header's parent name)
cp a.vhd b.vhd && footer b.vhd 0 hidden=1
[ "$("$VU" scan b.vhd)" = "vhd=b.vhd capacity=10485760 size=3584 hidden=0 parent=none" ] || fail "scan b"
[ "$("$VU" scan -f b.vhd)" = "vhd=b.vhd capacity=10485760 size=3584 hidden=1 parent=none" ] ||
	fail "scan -f does not read the copy at 0: $("$VU" scan -f b.vhd)"
# ... -p turns -f off
[ "$("$VU" scan -f -p b.vhd)" = "vhd=b.vhd capacity=10485760 size=3584 hidden=0 parent=none" ] || fail "scan -f -p"
# ... a fixed VHD is listed (deliberate: blktap's fast open fails with -22)
[ "$("$VU" scan -f fixed.vhd)" = "vhd=fixed.vhd capacity=2097152 size=2097664 hidden=0 parent=none" ] ||
	fail "scan -f fixed: $("$VU" scan -f fixed.vhd)"
# early tap images (creator 1.1): hidden comes from the footer copy at 0
cp a.vhd e.vhd && footer e.vhd -512 creator_version=0x00010001 && footer e.vhd 0 creator_version=0x00010001 hidden=1
[ "$("$VU" scan e.vhd)" = "vhd=e.vhd capacity=10485760 size=3584 hidden=1 parent=none" ] ||
	fail "scan early tap hidden: $("$VU" scan e.vhd)"
[ "$("$VU" query -n e.vhd -f)" = "hidden: 1" ] || fail "query -f early tap: $("$VU" query -n e.vhd -f)"
# query -f, like scan, needs the footer copy at 0 to validate (checksum too)
cp e.vhd e2.vhd
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(64); f.write(b"\xde\xad\xbe\xef")' e2.vhd
run "$VU" query -n e2.vhd -f
[ $rc -eq 22 ] && [ "$out" = "error checking 'hidden' field: -22" ] ||
	fail "query -f early tap, bad backup checksum: $rc $out"
footer e.vhd 0 cookie=garbage!
run "$VU" scan e.vhd
[ $rc -eq 22 ] && [ "$out" = "vhd=e.vhd scan-error=-22 error-message='checking 'hidden' field'" ] ||
	fail "scan early tap, bad backup: $rc $out"
# -M with a batmap: its marker (unsigned) and an empty key hash
[ "$("$VU" scan -M s.vhd)" = "vhd=s.vhd capacity=10485760 size=3584 hidden=0 marker=7 keyhash= parent=none" ] ||
	fail "scan -M batmap: $("$VU" scan -M s.vhd)"

# names that cannot be stat'ed: reported, then "scan failed" on stderr
run "$VU" scan missing.vhd a.vhd
[ $rc -eq 2 ] && [ "$out" = "vhd=missing.vhd scan-error=-2 error-message='failure scanning target'" ] &&
	[ "$err" = "scan failed: -2. Check syslog for details" ] || fail "scan missing: $rc $out / $err"
run "$VU" scan -c missing.vhd a.vhd
[ $rc -eq 0 ] && [ "$out" = "vhd=missing.vhd scan-error=-2 error-message='failure scanning target'
vhd=a.vhd capacity=10485760 size=3584 hidden=0 parent=none" ] && [ -z "$err" ] || fail "scan -c missing: $rc $out / $err"
# glob: a missing directory is reported by glob's callback (positive errno),
# then the pattern (-EIO); a name without wildcards that does not exist: -ENOENT
run "$VU" scan -m 'nodir/*.vhd'
[ $rc -eq 5 ] && [ "$out" = "vhd=nodir scan-error=2 error-message='failure scanning target'
vhd=nodir/*.vhd scan-error=-5 error-message='failure scanning target'" ] &&
	[ "$err" = "scan failed: -5. Check syslog for details" ] || fail "scan -m nodir: $rc $out / $err"
run "$VU" scan -m missing.vhd
[ $rc -eq 2 ] && [ "$out" = "vhd=missing.vhd scan-error=-2 error-message='failure scanning target'" ] ||
	fail "scan -m missing: $rc $out"
run "$VU" scan -m '*.none'
[ $rc -eq 0 ] && [ -z "$out" ] && [ -z "$err" ] || fail "scan -m no match: $rc $out / $err"
# a bad image stops the scan (exit = its error), -c goes on and exits 0
head -c 1024 /dev/zero >bad.vhd
run "$VU" scan bad.vhd a.vhd
[ $rc -eq 22 ] && [ "$out" = "vhd=bad.vhd scan-error=-22 error-message='opening file'" ] || fail "scan bad: $rc $out"
run "$VU" scan -c bad.vhd a.vhd
[ $rc -eq 0 ] && [ "$out" = "vhd=bad.vhd scan-error=-22 error-message='opening file'
vhd=a.vhd capacity=10485760 size=3584 hidden=0 parent=none" ] || fail "scan -c bad: $rc $out"
# -a: a parent already among the targets (same base name) is not added again
"$VU" snapshot -n k.vhd -p a.vhd >/dev/null || fail "snapshot k"
[ "$("$VU" scan -a k.vhd a.vhd | wc -l)" = 2 ] || fail "scan -a duplicate parent"
# tap 1.1 images (libvhd): a batmap when its header validates at its place,
# none when it does not (an image updated from 0.1)
cp s.vhd t11.vhd && footer t11.vhd -512 creator_version=0x00010001 && footer t11.vhd 0 creator_version=0x00010001
[ "$("$VU" query -n t11.vhd -m)" = "marker: 7" ] || fail "tap 1.1 with batmap: $("$VU" query -n t11.vhd -m)"
"$VHD" info t11.vhd | grep -q '^Batmap: *1 sector' || fail "vhd info: tap 1.1 batmap not seen"
"$VHD" check t11.vhd >/dev/null || fail "vhd check: tap 1.1 with batmap"
python3 -c 'import sys, struct
f = open(sys.argv[1], "r+b"); f.seek(512 + 16); table = struct.unpack(">Q", f.read(8))[0]
f.seek(512 + 28); n = struct.unpack(">I", f.read(4))[0]
f.seek(table + (n * 4 + 511) // 512 * 512); f.write(bytes(512))' t11.vhd
[ "$("$VU" query -n t11.vhd -m)" = "marker: 0" ] || fail "tap 1.1 without batmap: $("$VU" query -n t11.vhd -m)"
"$VHD" info t11.vhd | grep -q '^Batmap: *none$' || fail "vhd info: a batmap on a tap 1.1 image without one"
"$VHD" check t11.vhd >/dev/null && [ "$("$VU" check -n t11.vhd)" = "t11.vhd is valid" ] ||
	fail "tap 1.1 without batmap: not valid"
pass "tap 1.1 batmap, repair -b/-h/uuid, set checks/values/xattr marker, scan -a raw parent, -f, -M, -c, -m, hidden, usage"
