#!/bin/bash
# Three behaviours of blktap 4.0.8's vhd-util on damaged images, compared
# byte for byte with the corpus's recorded outputs of the images they are
# made from, changed only where blktap's source says the damage changes
# them:
# - a footer hidden byte of 225 prints as the signed char it is in blktap
#   (-31) in read -p, query -f and check's metadata dump;
# - a header whose BAT is far larger than the file: check says "invalid
#   table offset", dumps footer and header (blktap reads only the footer's
#   BAT entries) and ends with "failed to get batmap header" (reading past
#   the end is -EPIPE in libvhd); repair fails with -32, writing nothing;
# - scan -f lists in directory order (blktap globs with GLOB_NOSORT), scan
#   and scan -f -p sorted.
. "$(dirname "$0")/functions.sh"
need_corpus
requires python3 od
VU=$B/vhd-util
EXP=$CORPUS/expected
cd "$TMP" || fail "no tmp"
# check rejects footers more than 30 minutes in the future (see the replay test)
check_flags=
[ "$(date +%s)" -lt $(( $(date -u -d '2026-11-22 04:51:44' +%s) - 1800 )) ] && check_flags=-t

# poke FILE WHAT VALUE: WHAT = hidden (byte 85 of both footers) or maxbat
# (the header's max BAT entries); checksums recomputed.  Prints the new
# checksum as vhd-util does (0x%x).
poke() {
	python3 - "$@" <<'PY'
import struct, sys
path, what, value = sys.argv[1], sys.argv[2], int(sys.argv[3], 0)
f = open(path, "r+b"); end = f.seek(0, 2)
def fix(off, length, csum_at, change):
    f.seek(off); b = bytearray(f.read(length)); change(b)
    b[csum_at:csum_at + 4] = b"\0" * 4
    s = ~sum(b) & 0xffffffff
    struct.pack_into(">I", b, csum_at, s); f.seek(off); f.write(b)
    return s
if what == "hidden":
    for off in (0, end - 512):
        s = fix(off, 512, 64, lambda b: b.__setitem__(85, value))
else:
    s = fix(512, 1024, 36, lambda b: struct.pack_into(">I", b, 28, value))
print("0x%x" % s)
PY
}
# run NAME EXPECTED-FILE STATUS CMD...: output and exit status as expected
checked=0
run() {
	local name=$1 want=$2 status=$3; shift 3
	"$@" >"$TMP/got" 2>&1; local rc=$?
	cmp -s "$TMP/got" "$want" || { diff "$want" "$TMP/got" | head -20; fail "$name: output differs from blktap's"; }
	[ $rc = "$status" ] || fail "$name: exit $rc, blktap exits $status"
	checked=$((checked + 1))
}

# ---- hidden byte 225
cp "$CORPUS/good/tap-dyn-data-256m.vhd" h.vhd && chmod u+w h.vhd
sum=$(poke h.vhd hidden 225) || fail "poking the hidden byte"
old=$(sed -n '16s/.*: \(0x[0-9a-f]*\)|.*/\1/p' "$EXP/good__tap-dyn-data-256m.vhd.read-p.txt")
sed -e "s/tap-dyn-data-256m.vhd/h.vhd/g" -e '19s/: 0$/: -31/' -e "16s/$old|$old/$sum|$sum/" \
	"$EXP/good__tap-dyn-data-256m.vhd.read-p.txt" >read-p.want
grep -q '^Hidden              : -31$' read-p.want || fail "expected read -p not derived"
run "read -p, hidden 225" read-p.want 0 env TZ=UTC "$VU" read -p -n h.vhd
sed 's/^hidden: 0$/hidden: -31/' "$EXP/good__tap-dyn-data-256m.vhd.query.txt" >query.want
run "query -f, hidden 225" query.want 0 "$VU" query -n h.vhd -v -s -f -d -a
{ echo "primary footer invalid: invalid 'hidden' state"
  echo "h.vhd appears invalid; dumping metadata"; cat read-p.want; } >check.want
run "check, hidden 225" check.want 22 env TZ=UTC "$VU" check -n h.vhd $check_flags

# ---- a BAT of 2^27 entries in an 8 MiB file
cp "$CORPUS/bad/batmap-bad-checksum.vhd" big.vhd && chmod u+w big.vhd
rec=$EXP/bad__batmap-bad-checksum.vhd.check.txt
sum=$(poke big.vhd maxbat 0x08000000) || fail "poking the BAT size"
old=$(sed -n 's/^Checksum            : \(0x[0-9a-f]*\)|.*/\1/p' "$rec" | sed -n 2p)
{ echo "header is invalid: invalid table offset"
  sed -e 1d -e "s/batmap-bad-checksum.vhd/big.vhd/" -e 's/^\(Max BAT size        :\) 4$/\1 134217728/' \
      -e "s/$old|$old/$sum|$sum/" "$rec"; } >big.want
grep -q '^Max BAT size        : 134217728$' big.want && [ "$(tail -1 big.want)" = "failed to get batmap header" ] ||
	fail "expected check output not derived"
cp big.vhd big.orig
run "check, BAT past the end" big.want 22 env TZ=UTC "$VU" check -n big.vhd $check_flags
echo "error writing footer: -32" >repair.want
run "repair, BAT past the end" repair.want 32 "$VU" repair -n big.vhd
cmp -s big.vhd big.orig || fail "a failed repair changed the file"

# ---- scan order: a tmpfs lists in creation order or its reverse, never sorted here
D=$(mktemp -d /dev/shm/vhdkit-scan.XXXXXX) || fail "no tmpfs"
trap 'rm -rf "$TMP" "$D"' EXIT
for n in m c x a q; do "$VHD" create "$D/$n.vhd" 1M >/dev/null || fail create; done
listed=$(ls -U "$D" | tr '\n' ' ')
[ "$listed" != "a.vhd c.vhd m.vhd q.vhd x.vhd " ] || fail "the tmpfs lists sorted: cannot tell the orders apart"
got=$(cd "$D" && "$VU" scan -f -m '*.vhd' | sed 's/^vhd=\([^ ]*\) .*/\1/' | tr '\n' ' ')
[ "$got" = "$listed" ] || fail "scan -f: '$got', the directory lists '$listed'"
for opts in "" "-f -p"; do
	got=$(cd "$D" && "$VU" scan $opts -m '*.vhd' | sed 's/^vhd=\([^ ]*\) .*/\1/' | tr '\n' ' ')
	[ "$got" = "a.vhd c.vhd m.vhd q.vhd x.vhd " ] || fail "scan $opts: not sorted: '$got'"
done
pass "$checked outputs and statuses as blktap's (hidden byte -31, a BAT past the end: check dump, repair -32); scan -f in directory order ($listed), scan and -f -p sorted"
