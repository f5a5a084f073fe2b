#!/bin/bash
# vhd-util on block devices (as XenServer's LVM SRs keep VHDs in logical
# volumes): a corpus image on a loop device is queried, checked and read like
# the file; a snapshot whose parent is the device reads the same content; a
# VHD created on a blank device is valid.  Needs root (losetup).
. "$(dirname "$0")/functions.sh"
need_corpus
requires losetup
VU=$B/vhd-util
[ "$(id -u)" = 0 ] || fail "needs root for losetup"
loops=()
cleanup() { for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT
# attach FILE: sets $dev (a command substitution would lose loops+=)
attach() { dev=$(losetup -f --show "$1") || fail "losetup $1"; loops+=("$dev"); }

img=tap-dyn-data-256m.vhd
want=$(awk -F'\t' -v p="good/$img" '$1 == p {print $6}' "$CORPUS/MANIFEST.tsv")
cp "$CORPUS/good/$img" "$TMP/$img" && chmod u+w "$TMP/$img"
attach "$TMP/$img"

# same answers as for the file (query -s: the data's end, not the device's)
(cd "$CORPUS/good" && "$VU" query -n $img -v -s -f -d -a) >"$TMP/file.q"
"$VU" query -n "$dev" -v -s -f -d -a >"$TMP/dev.q" || fail "query on $dev"
cmp -s "$TMP/file.q" "$TMP/dev.q" || fail "query differs on the device: $(cat "$TMP/dev.q")"
[ "$("$VU" check -n "$dev")" = "$dev is valid" ] || fail "check on $dev"
(cd "$CORPUS/good" && "$VU" read -p -n $img) >"$TMP/file.p"
"$VU" read -p -n "$dev" >"$TMP/dev.p" && cmp -s "$TMP/file.p" "$TMP/dev.p" || fail "read -p differs"
"$VU" read -n "$dev" -r 0 -c $((256 * 2048)) | sha256sum | grep -q "^$want " ||
	fail "read -r of the device: wrong content"

# a snapshot on the device as parent
expect_exit 0 "$VU" snapshot -n "$TMP/child.vhd" -p "$dev" -e
[ "$("$VU" query -n "$TMP/child.vhd" -d)" = "chain depth: 2" ] || fail "child's depth"
[ "$("$VU" query -n "$TMP/child.vhd" -p)" = "$dev" ] || fail "child's parent: $("$VU" query -n "$TMP/child.vhd" -p)"
[ "$(content_sha "$TMP/child.vhd")" = "$want" ] || fail "child of the device reads wrong content"
[ "$("$VU" check -n "$TMP/child.vhd")" = "$TMP/child.vhd is valid" ] || fail "check child"

# create on a blank device
truncate -s 16M "$TMP/blank"
attach "$TMP/blank"; blank=$dev; dev=${loops[0]}
expect_exit 0 "$VU" create -n "$blank" -s 10
[ "$("$VU" query -n "$blank" -v)" = 10 ] || fail "create on $blank"
[ "$("$VU" check -n "$blank")" = "$blank is valid" ] || fail "created device VHD invalid: $("$VU" check -n "$blank")"
pass "query, check, read on $dev match the file; snapshot on the device; create on $blank"
