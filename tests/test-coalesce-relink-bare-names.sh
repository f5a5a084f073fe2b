#!/bin/bash
# Every merge that re-points children, given bare file names from inside
# the directory (no '/' anywhere): `coalesce --relink`, `commit --relink`,
# a relink interrupted after re-pointing and finished by `recover .` and by
# a re-run, and the GC on `.` (coalesce of hidden nodes, leaf-coalesce).
# None may crash; each leaves the visible disks reading as before.
. "$(dirname "$0")/functions.sh"
mkdir "$TMP/a" && cd "$TMP/a" || fail "no dir"

# layers l0 (hidden) .. l3 (leaf), in the current directory, bare names
bare_chain() {
	"$VHD" create l0.vhd 16M >/dev/null || return 1
	random_writes l0.vhd 16 10 64 || return 1
	local i
	for i in 1 2 3; do
		"$VHD" snapshot "l$((i - 1)).vhd" "l$i.vhd" >/dev/null || return 1
		"$VHD" set "l$((i - 1)).vhd" hidden on || return 1
		random_writes "l$i.vhd" 16 10 64 || return 1
	done
}
parent_of() { "$VHD" info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["parent_name"])'; }
no_journal() { ! ls -a | grep -q journal || fail "$1: journal left: $(ls -a)"; }
requires python3

bare_chain || fail "chain"
want=$(content_sha l3.vhd)
expect_exit 0 "$VHD" coalesce --relink l1.vhd
[ ! -e l1.vhd ] || fail "coalesce --relink: l1.vhd not deleted"
[ "$(parent_of l2.vhd)" = l0.vhd ] || fail "coalesce --relink: l2 not re-pointed at l0"
[ "$(content_sha l3.vhd)" = "$want" ] || fail "coalesce --relink: the leaf changed"
no_journal "coalesce --relink"

expect_exit 0 "$VHD" commit --relink --base l0.vhd l2.vhd
[ ! -e l2.vhd ] || fail "commit --relink: l2.vhd not deleted"
[ "$(parent_of l3.vhd)" = l0.vhd ] || fail "commit --relink: l3 not re-pointed at l0"
[ "$(content_sha l3.vhd)" = "$want" ] || fail "commit --relink: the leaf changed"
no_journal "commit --relink"

# a relink stopped after the children are re-pointed, before the delete
cd "$TMP" && rm -rf a && mkdir a && cd a && bare_chain || fail "chain"
want=$(content_sha l3.vhd)
cp -a . ../orig
steps=$(crash_count "$VHD" coalesce --relink l1.vhd) || fail "counting steps"
at=
for n in $(seq "$steps" -1 1); do
	cd "$TMP" && rm -rf a && cp -a orig a && cd a || fail "copy"
	crash_run "$n" kill 1 "$VHD" coalesce --relink l1.vhd >/dev/null 2>&1
	if [ -e l1.vhd ] && [ "$(parent_of l2.vhd)" = l0.vhd ]; then at=$n; break; fi
done
[ -n "$at" ] || fail "no crash point left l1.vhd with l2 re-pointed"
cp -a . ../rerun
expect_exit 0 "$VHD" recover .
[ ! -e l1.vhd ] || fail "recover .: l1.vhd not deleted"
[ "$(content_sha l3.vhd)" = "$want" ] || fail "recover .: the leaf changed"
no_journal "recover ."
cd ../rerun || fail "no rerun dir"
expect_exit 0 "$VHD" coalesce --relink l1.vhd
[ ! -e l1.vhd ] || fail "re-run: l1.vhd not deleted"
[ "$(content_sha l3.vhd)" = "$want" ] || fail "re-run: the leaf changed"
no_journal "re-run"

# the GC on '.': hidden l1, l2 merged away, the leaf merged into l0
cd "$TMP" && rm -rf a && mkdir a && cd a && bare_chain || fail "chain"
want=$(content_sha l3.vhd)
expect_exit 0 timeout 120 "$VHD" gc run --once --quiet-period 0 .
[ "$(ls ./*.vhd | wc -l)" -le 2 ] || fail "gc on '.': chain not collapsed: $(ls)"
[ "$(content_sha l3.vhd)" = "$want" ] || fail "gc on '.': the leaf changed"
[ "$("$VHD" depth l3.vhd)" -le 2 ] || fail "gc on '.': depth $("$VHD" depth l3.vhd)"
no_journal "gc"
pass "coalesce --relink, commit --relink, a crashed relink (point $at of $steps) finished by 'recover .' and a re-run, and the GC on '.' with bare names"
