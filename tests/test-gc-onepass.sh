#!/bin/bash
# The GC merges a run of hidden single-child layers in one pass: on the
# demo's 8-level SR (b00 .. b06 hidden, each with data, the VM's leaf on
# top, every snapshot deleted) `vhd gc run --once` runs one commit of
# b01..b07 into b00 (no pairwise coalesce) and one leaf-coalesce, and every
# visible VHD reads as before.  Then the journal's guard: a commit killed
# after its copy, a snapshot taken meanwhile of one of its middle layers,
# `vhd recover` re-points and deletes the layers above that one but refuses
# to delete it (the snapshot would point at a deleted file); once the
# snapshot is gone, recover finishes.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/gc-functions.sh"
SR=$TMP/sr
make_sr "$SR" 8 16 3 || fail "building the SR"
rm "$SR"/s*.vhd
cp -a "$SR" "$TMP/proto"
sr_sums "$SR" >"$TMP/want"
"$VHD" gc run --once --quiet-period 0 --interval 0.05 "$SR" 2>"$TMP/log" || { cat "$TMP/log"; fail "gc run"; }
grep -q "start commit b07.vhd into b00.vhd (layers b01.vhd/b02.vhd/b03.vhd/b04.vhd/b05.vhd/b06.vhd/b07.vhd," "$TMP/log" ||
	{ cat "$TMP/log"; fail "no commit of b01..b07"; }
[ "$(grep -c '] start \|: start ' "$TMP/log")" = 2 ] || { cat "$TMP/log"; fail "not two operations"; }
grep -q "start leaf-coalesce leaf.vhd into b00.vhd" "$TMP/log" || fail "no leaf-coalesce into b00"
sr_sums "$SR" >"$TMP/got"
diff "$TMP/want" "$TMP/got" || fail "a visible disk changed"
[ "$("$VHD" depth "$SR/leaf.vhd")" = 1 ] || fail "leaf not collapsed to depth 1"
[ "$(ls "$SR" | tr '\n' ' ')" = "leaf.vhd " ] || fail "files left: $(ls "$SR")"

# the guard: a commit (what the GC runs) killed once its copy is done
W=$TMP/w
phase() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["phase"])' "$W/.vhdkit-b00.vhd.journal" 2>/dev/null; }
commit=("$VHD" commit --relink --base "$W/b00.vhd" "$W/b07.vhd")
rm -rf "$W" && cp -a "$TMP/proto" "$W"
steps=$(crash_count "${commit[@]}") || fail "counting the commit's steps"
found=
for at in $(seq 1 "$steps"); do   # the first step after the copy
	rm -rf "$W" && cp -a "$TMP/proto" "$W"
	crash_run "$at" kill 1 "${commit[@]}" >/dev/null 2>&1
	case $(phase) in relink|delete) found=$at; break ;; esac
done
[ -n "$found" ] || fail "no crash point after the copy in $steps steps"
"$VHD" snapshot "$W/b03.vhd" "$W/snap.vhd" >/dev/null || fail "snapshot of b03"
want_snap=$(content_sha "$W/snap.vhd")
sr_sums "$W" >"$TMP/want-w"
expect_exit 4 "$VHD" recover "$W"   # 4: refused (EBUSY)
grep -q "b03.vhd: has a child the merge did not re-point, .*snap.vhd: not deleting it" "$TMP/.out" ||
	fail "recover: unclear refusal: $(cat "$TMP/.out")"
for f in b01 b02 b03; do [ -e "$W/$f.vhd" ] || fail "$f.vhd deleted under the snapshot"; done
for f in b04 b05 b06 b07; do [ -e "$W/$f.vhd" ] && fail "$f.vhd not deleted"; done
[ "$(content_sha "$W/snap.vhd")" = "$want_snap" ] || fail "the snapshot changed"
sr_sums "$W" >"$TMP/got-w"
diff "$TMP/want-w" "$TMP/got-w" || fail "a visible disk changed in the refused recovery"
rm "$W/snap.vhd"
"$VHD" recover "$W" >/dev/null || fail "recover once the snapshot is gone"
[ "$(ls "$W" | tr '\n' ' ')" = "b00.vhd leaf.vhd " ] || fail "files left: $(ls "$W")"
[ "$(content_sha "$W/leaf.vhd")" = "$(grep '^leaf.vhd ' "$TMP/want" | cut -d' ' -f2)" ] || fail "leaf changed"
pass "one pass: commit of 7 layers + leaf-coalesce, visible disks unchanged; recover refuses to delete a layer with a new child (crash at $found/$steps)"
