#!/bin/bash
# vhd repair --force reaches its fixpoint in one run: a second repair of
# what the first left finds nothing to do and changes no byte (cmp and
# sha256 of the whole file), for every input saved by the fuzzer
# (fuzz/regressions/, among them a truncated image whose locators start
# near the end) and every damaged image of the corpus.  Where vhd check
# says where the footer of a truncated file belongs, the repair puts it
# there: check and repair share one notion of where the data ends.
. "$(dirname "$0")/functions.sh"
need_corpus
requires cmp

repaired=0 refused=0 predicted=0
for f in "$ROOT"/fuzz/regressions/*.vhd "$CORPUS"/bad/*.vhd; do
	name=$(basename "$f")
	cp "$f" "$TMP/w.vhd" && chmod u+w "$TMP/w.vhd"
	note=$("$VHD" check "$TMP/w.vhd" 2>&1 | sed -n 's/.*ends before its data and footer (\([0-9]*\) bytes).*/\1/p')
	before=$(raw_sha "$TMP/w.vhd")
	"$VHD" repair --force "$TMP/w.vhd" >"$TMP/first" 2>&1; rc=$?
	case $rc in
	0) ;;
	3|4) [ "$(raw_sha "$TMP/w.vhd")" = "$before" ] ||
	       fail "$name: repair exited $rc (refused) but changed the file"
	     refused=$((refused + 1)); continue ;;
	*) cat "$TMP/first" >&2; fail "$name: first repair exited $rc" ;;
	esac
	if [ -n "$note" ] && grep -q "file extended to" "$TMP/first"; then
		size=$(stat -c %s "$TMP/w.vhd")
		[ "$size" = "$note" ] ||
			fail "$name: check said the data and footer end at $note bytes, repair made $size"
		predicted=$((predicted + 1))
	fi
	cp "$TMP/w.vhd" "$TMP/once.vhd"
	once=$(raw_sha "$TMP/w.vhd")
	"$VHD" repair --force "$TMP/w.vhd" >"$TMP/second" 2>&1; rc=$?
	[ $rc -eq 0 ] || { cat "$TMP/first" "$TMP/second" >&2; fail "$name: second repair exited $rc"; }
	grep -qx "$TMP/w.vhd: nothing to repair" "$TMP/second" ||
		{ cat "$TMP/first" "$TMP/second" >&2; fail "$name: the second repair found more to do"; }
	cmp -s "$TMP/once.vhd" "$TMP/w.vhd" && [ "$(raw_sha "$TMP/w.vhd")" = "$once" ] ||
		fail "$name: the second repair changed the file"
	"$VHD" check "$TMP/w.vhd" >"$TMP/check" 2>&1
	grep -q "primary footer invalid" "$TMP/check" &&
		{ cat "$TMP/first" "$TMP/check" >&2; fail "$name: no valid primary footer after repair"; }
	repaired=$((repaired + 1))
done
[ -f "$ROOT/fuzz/regressions/repair-not-idempotent.vhd" ] || fail "regression input missing"
[ $repaired -ge 5 ] || fail "only $repaired images repaired"
[ $predicted -ge 1 ] || fail "no truncated image whose footer place check predicts"
pass "$repaired images repaired once and left alone by a second repair (cmp, sha256), $refused refused unchanged, $predicted footer places predicted by check"
