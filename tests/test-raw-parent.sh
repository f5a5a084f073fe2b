#!/bin/bash
# Raw parents (blktap's `vhd-util snapshot -m` / `modify -m`): a child on a
# random raw image reads through to its bytes, is valid, shows its parent;
# modify -m re-points it; coalesce writes the child's sectors into the raw
# file (growing it for a larger child) and survives kill -9 and power loss
# at any point.  Expected content is modelled with dd on a copy.
. "$(dirname "$0")/functions.sh"
requires dd cmp stat qemu-img vhdiinfo
VU=$B/vhd-util
D=$TMP/sr
mkdir -p "$D" "$TMP/w"
SIZE_MB=6
SECTORS=$(( SIZE_MB * 2048 ))
NW=0

# write_model CHILD OFFSET_SECTORS COUNT: random data into CHILD through
# libvhdkit, the same bytes recorded for the model
write_model() {
	NW=$((NW + 1))
	rand_sectors "$3" > "$TMP/w/$NW.$2"
	"$VHDIO" write "$1" $(( $2 * 512 )) < "$TMP/w/$NW.$2" || fail "vhd-io write $2+$3"
}
# model BASE OUT: OUT = BASE with every recorded write applied in order
model() {
	cp "$1" "$2"
	for f in $(ls "$TMP/w" | sort -n); do
		dd if="$TMP/w/$f" of="$2" bs=512 seek="${f#*.}" conv=notrunc status=none
	done
}

dd if=/dev/urandom of="$D/raw.img" bs=1M count=$SIZE_MB status=none
cp "$D/raw.img" "$TMP/raw.orig"
cd "$D" || fail "cd"

# ---- snapshot -m: what blktap writes
"$VU" snapshot -n child.vhd -p raw.img -m || fail "vhd-util snapshot -m failed"
"$VHD" info --json child.vhd > "$TMP/info" || fail "vhd info"
grep -q '"parent_uuid":"00000000-0000-0000-0000-000000000000"' "$TMP/info" || fail "parent uuid not nil"
grep -q '"parent_raw":true' "$TMP/info" || fail "info does not mark the raw parent"
grep -q '"parent_name":"raw.img"' "$TMP/info" || fail "parent name"
grep -q "\"virtual_size\":$(( SIZE_MB << 20 ))" "$TMP/info" || fail "size is not the raw file's"
want_ts=$(date -u -d "@$(stat -c %Y raw.img)" '+%Y-%m-%d %H:%M:%S UTC')
grep -q "\"parent_timestamp\":\"$want_ts\"" "$TMP/info" || fail "parent timestamp is not the raw file's mtime ($want_ts)"
grep -c '"path":"./raw.img"' "$TMP/info" | grep -qx 3 || fail "three locators naming ./raw.img expected"
[ "$("$VU" query -n child.vhd -p)" = "$D/raw.img" ] || fail "query -p: $("$VU" query -n child.vhd -p)"
[ "$("$VU" query -n child.vhd -d)" = "chain depth: 2" ] || fail "query -d"
[ "$("$VU" query -n child.vhd -v)" = "$SIZE_MB" ] || fail "query -v"
[ "$(content_sha child.vhd)" = "$(raw_sha raw.img)" ] || fail "an empty child does not read as its raw parent"

# ---- writes through the tools; the chain reads the model
write_model child.vhd 0 1
write_model child.vhd 4090 20             # across the first block boundary
write_model child.vhd 7000 700
write_model child.vhd 7100 50             # over an earlier write
write_model child.vhd $(( SECTORS - 3 )) 3  # the last sectors
for _ in 1 2 3 4 5 6; do
	n=$(( RANDOM % 300 + 1 )); write_model child.vhd $(( (RANDOM * 32768 + RANDOM) % (SECTORS - n) )) $n
done
model "$TMP/raw.orig" "$TMP/expect"
[ "$(content_sha child.vhd)" = "$(raw_sha "$TMP/expect")" ] || fail "chain does not read the model"
cmp -s raw.img "$TMP/raw.orig" || fail "writing the child changed the raw parent"

# ---- check, tree, map
"$VHD" check child.vhd > "$TMP/out" 2>&1 || { cat "$TMP/out"; fail "vhd check"; }
grep -q "raw image" "$TMP/out" || fail "vhd check does not note the raw parent"
"$VHD" check --chain --data child.vhd > "$TMP/out" 2>&1 || { cat "$TMP/out"; fail "vhd check --chain"; }
[ "$("$VU" check -n child.vhd)" = "child.vhd is valid" ] || fail "vhd-util check"
"$VU" check -n child.vhd -p > "$TMP/out" || { cat "$TMP/out"; fail "vhd-util check -p"; }
"$VHD" tree . | grep -q "child.vhd .*raw parent: raw.img" || fail "tree does not mark the raw parent"
"$VHD" tree --json . | grep -q '"raw_parent":"raw.img"' || fail "tree --json"
"$VHD" map --chain child.vhd | grep -q " 1 raw.img$" || fail "map --chain shows no raw layer"
[ "$("$VHD" depth child.vhd)" = 2 ] || fail "depth"

# ---- a VHD is refused as raw parent; a missing one is an error
"$VHD" create d.vhd 1M >/dev/null
expect_exit 22 "$VU" snapshot -n bad.vhd -p d.vhd -m
expect_exit 2 "$VHD" snapshot --raw-parent d.vhd bad.vhd   # a wrong argument
grep -q "is a VHD" "$TMP/.out" || fail "refusal does not say why"
[ ! -e bad.vhd ] || fail "a refused snapshot left a file"
"$VHD" snapshot --raw-parent raw.img other.vhd || fail "vhd snapshot --raw-parent"
expect_exit 22 "$VU" modify -n other.vhd -p d.vhd -m
grep -q "failed to set parent to '$D/d.vhd': -22" "$TMP/.out" || fail "modify -m onto a VHD: $(cat "$TMP/.out")"
rm other.vhd

# ---- an unaligned raw file: size rounded up, the tail reads as zeros
head -c 1000000 /dev/urandom > odd.img
"$VU" snapshot -n odd.vhd -p odd.img -m || fail "snapshot of an unaligned raw file"
"$VHDIO" cat odd.vhd > "$TMP/odd"
[ "$(stat -c %s "$TMP/odd")" = 1000448 ] || fail "unaligned raw file: size $(stat -c %s "$TMP/odd")"
cmp -s -n 1000000 "$TMP/odd" odd.img || fail "unaligned raw file reads differently"
[ "$(tail -c 448 "$TMP/odd" | tr -d '\0' | wc -c)" = 0 ] || fail "past the raw file's end is not zeros"
rm odd.vhd odd.img

# ---- modify -m: re-point at another raw image, and back
dd if=/dev/urandom of=raw2.img bs=1M count=$SIZE_MB status=none
"$VU" modify -n child.vhd -p raw2.img -m || fail "modify -m"
[ "$("$VU" query -n child.vhd -p)" = "$D/raw2.img" ] || fail "query -p after modify -m"
model raw2.img "$TMP/expect2"
[ "$(content_sha child.vhd)" = "$(raw_sha "$TMP/expect2")" ] || fail "after modify -m the chain does not read raw2 + child"
"$VU" modify -n child.vhd -p raw.img -m || fail "modify -m back"
[ "$(content_sha child.vhd)" = "$(raw_sha "$TMP/expect")" ] || fail "after modify -m back"
[ "$("$VU" check -n child.vhd)" = "child.vhd is valid" ] || fail "check after modify -m"
rm raw2.img

# ---- other tools: qemu has no VHD parents at all; libvhdi parses the header
qemu-img info child.vhd | grep -q "virtual size: $SIZE_MB MiB" || fail "qemu-img info"
vhdiinfo child.vhd > "$TMP/vi" 2>&1 || { cat "$TMP/vi"; fail "vhdiinfo"; }
grep -q "Parent identifier.*: 00000000-0000-0000-0000-000000000000" "$TMP/vi" || fail "vhdiinfo parent uuid"
grep -q "Parent filename.*: raw.img" "$TMP/vi" || fail "vhdiinfo parent name"

# ---- coalesce: refused while another child of the same raw image exists
"$VU" snapshot -n sib.vhd -p raw.img -m
expect_exit 4 "$VHD" coalesce child.vhd
cmp -s raw.img "$TMP/raw.orig" || fail "a refused coalesce wrote the raw parent"
rm sib.vhd

# ---- coalesce: a raw parent outside the child's directory (a locator can
# name any file) is refused without --force
mkdir -p "$TMP/elsewhere"; cp "$TMP/raw.orig" "$TMP/elsewhere/victim.img"
"$VHD" snapshot --raw-parent "$TMP/elsewhere/victim.img" far.vhd || fail "snapshot --raw-parent"
head -c 4096 /dev/urandom | "$VHDIO" write far.vhd 0 || fail "vhd-io write far.vhd"
expect_exit 4 "$VHD" coalesce far.vhd
cmp -s "$TMP/elsewhere/victim.img" "$TMP/raw.orig" || fail "coalesce wrote a raw parent outside the SR"
expect_exit 1 "$VU" coalesce -n far.vhd      # blktap's FORCE semantics, but not this (EPERM)
cmp -s "$TMP/elsewhere/victim.img" "$TMP/raw.orig" || fail "vhd-util coalesce wrote a raw parent outside the SR"
"$VHD" coalesce --force far.vhd || fail "coalesce --force into an outside raw parent"
cmp -s "$TMP/elsewhere/victim.img" "$TMP/raw.orig" && fail "coalesce --force did not write"
rm far.vhd

# ---- coalesce, killed (kill -9, power loss) at points of the run, resumed
cp raw.img "$TMP/pristine.img"; cp child.vhd "$TMP/pristine.vhd"
restore() { rm -f .vhdkit-*; cp "$TMP/pristine.img" raw.img; cp "$TMP/pristine.vhd" child.vhd; }
# -B 1: a durable step (and a journal update) per 2 MiB of the raw file
steps=$(crash_count "$VHD" coalesce -B 1 child.vhd) || fail "clean coalesce failed"
cmp -s raw.img "$TMP/expect" || fail "coalesce: the raw file differs from the model"
[ "$(content_sha child.vhd)" = "$(raw_sha "$TMP/expect")" ] || fail "child changed by the coalesce"
[ "$steps" -ge 3 ] || fail "only $steps counted steps"
recovered=0 journals=0
crash_at() {   # crash_at AT MODE: crash there, check, finish, check
	local at=$1 mode=$2
	restore
	crash_run "$at" "$mode" "$RANDOM" "$VHD" coalesce -B 1 child.vhd >/dev/null 2>&1
	[ "$(content_sha child.vhd)" = "$(raw_sha "$TMP/expect")" ] || fail "$mode at $at/$steps: child reads differently"
	# a journal is finished by recover or by coalesce, in turn; without one
	# (killed before the first durable step), coalesce starts again
	if ls .vhdkit-*.journal >/dev/null 2>&1 && [ $(( journals++ % 2 )) = 0 ]; then
		"$VHD" recover . >/dev/null || fail "$mode at $at: recover failed"
		recovered=$((recovered + 1))
	else
		"$VHD" coalesce child.vhd >/dev/null || fail "$mode at $at: resume failed"
	fi
	cmp -s raw.img "$TMP/expect" || fail "$mode at $at/$steps: raw file differs after resuming"
	ls .vhdkit-*.journal >/dev/null 2>&1 && fail "$mode at $at: journal left behind"
	return 0
}
for at in $(seq "$steps"); do crash_at "$at" kill; done
for _ in 1 2 3 4 5 6; do crash_at $(( RANDOM % steps + 1 )) powerloss; done
[ "$recovered" -gt 0 ] || fail "no crash point left a journal for recover"

# ---- vhd-util coalesce; a larger child grows the raw file
restore
"$VU" coalesce -n child.vhd > "$TMP/out" || fail "vhd-util coalesce"
grep -q "^Coalesced [0-9]* sectors" "$TMP/out" || fail "vhd-util coalesce output: $(cat "$TMP/out")"
cmp -s raw.img "$TMP/expect" || fail "vhd-util coalesce: raw file differs"
"$VHD" resize child.vhd $(( SIZE_MB + 2 ))M >/dev/null || fail "resize"
write_model child.vhd $(( SECTORS + 1000 )) 40
cp "$TMP/raw.orig" "$TMP/base8"; truncate -s $(( (SIZE_MB + 2) << 20 )) "$TMP/base8"
model "$TMP/base8" "$TMP/expect8"
[ "$(content_sha child.vhd)" = "$(raw_sha "$TMP/expect8")" ] || fail "grown child reads differently"
"$VHD" coalesce child.vhd || fail "coalesce of a larger child"
[ "$(stat -c %s raw.img)" = $(( (SIZE_MB + 2) << 20 )) ] || fail "raw file not grown: $(stat -c %s raw.img)"
cmp -s raw.img "$TMP/expect8" || fail "grown raw file differs from the model"
pass "snapshot -m, reads, check/tree/map/query, modify -m, coalesce (kill -9 at each of $steps steps, 6 power losses, growth) on a raw parent"
