#!/bin/bash
# vhd convert refuses to replace an existing OUT (exit 4, OUT untouched)
# unless --force, never replaces the input or one of its parents nor a
# non-file, rejects bad usage (exit 2), and a failed or interrupted convert
# leaves neither OUT nor a temporary file; the progress bar shows on a
# terminal only.
. "$(dirname "$0")/functions.sh"
requires script timeout
D=$TMP/d
mkdir "$D"
"$VHD" create "$D/base.vhd" 8M >/dev/null && "$VHD" snapshot "$D/base.vhd" "$D/leaf.vhd" >/dev/null \
	|| fail "setup"
rand_sectors 300 | "$VHDIO" write "$D/leaf.vhd" 1048576 || fail "write"
echo keep > "$D/out.raw"
expect_exit 4 "$VHD" convert "$D/leaf.vhd" "$D/out.raw"
[ "$(cat "$D/out.raw")" = keep ] || fail "existing OUT was changed"
"$VHD" convert --force "$D/leaf.vhd" "$D/out.raw" >/dev/null || fail "--force"
[ "$(raw_sha "$D/out.raw")" = "$(content_sha "$D/leaf.vhd")" ] || fail "--force output wrong"
before=$(raw_sha "$D/base.vhd")
expect_exit 4 "$VHD" convert --force "$D/leaf.vhd" "$D/base.vhd"
expect_exit 4 "$VHD" convert --force "$D/leaf.vhd" "$D/leaf.vhd"
[ "$(raw_sha "$D/base.vhd")" = "$before" ] || fail "the parent was changed"
mkdir "$D/dir.raw"
expect_exit 4 "$VHD" convert --force "$D/leaf.vhd" "$D/dir.raw"
rmdir "$D/dir.raw"
expect_exit 2 "$VHD" convert --raw --fixed "$D/leaf.vhd" "$D/a.vhd"
expect_exit 2 "$VHD" convert --from qcow2 "$D/leaf.vhd" "$D/a.vhd"
expect_exit 2 "$VHD" convert "$D/leaf.vhd"
expect_exit 1 "$VHD" convert "$D/missing.raw" "$D/a.vhd"

# a chain that cannot be read (parent gone): no OUT, no temporary file
mkdir "$D/lone" && cp "$D/leaf.vhd" "$D/lone/"
expect_exit 1 "$VHD" convert "$D/lone/leaf.vhd" "$D/lone/out.vhd"
left_over() { ls -A "$1" | grep -e "^$2\$" -e "^\.$2\."; }
[ -z "$(left_over "$D/lone" out.vhd)" ] || fail "failed convert left: $(ls -A "$D/lone")"

# interrupted half way: no OUT, no temporary file
yes vhdkit | head -c 1536M > "$TMP/big.raw"
timeout -s INT 0.5 "$VHD" convert "$TMP/big.raw" "$D/int.vhd" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -ne 0 ] || fail "convert of 1.5 GiB finished within 0.5 s: cannot test the interruption"
grep -q interrupted "$TMP/err" || fail "no 'interrupted' message: $(cat "$TMP/err")"
[ -z "$(left_over "$D" int.vhd)" ] || fail "interrupted convert left: $(ls -A "$D")"

# progress: on a terminal only
script -qec "'$VHD' convert '$D/leaf.vhd' '$D/p.raw'" /dev/null > "$TMP/tty" || fail "convert on a tty"
grep -q 'convert \[' "$TMP/tty" || fail "no progress bar on a terminal"
"$VHD" convert "$D/leaf.vhd" "$D/q.raw" 2> "$TMP/notty" >/dev/null || fail "convert"
[ ! -s "$TMP/notty" ] || fail "progress printed without a terminal"
pass "refusals, usage errors, failed and interrupted converts leave no OUT; progress on a tty"
