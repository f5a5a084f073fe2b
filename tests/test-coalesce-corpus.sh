#!/bin/bash
# `vhd coalesce --force` of every child->parent pair of the corpus leaves the
# parent reading exactly like the child's chain (COALESCE.tsv's
# child_chain_sha256, also what blktap produced where it succeeded), keeps
# the child's own content, and leaves no journal behind.
. "$(dirname "$0")/functions.sh"
need_corpus
n=0
while IFS=$'\t' read -r parent child kind method status output after chain_sha equal rest; do
	[ "$parent" = parent ] && continue
	case $method in *vhd-util\ coalesce*) ;; *) continue ;; esac
	case $method in *resize*) continue ;; esac   # same pair as the row before
	dir=$(dirname "$child")
	rm -rf "$TMP/w" && mkdir "$TMP/w" && cp -r "$CORPUS/$dir/." "$TMP/w/"
	c=$TMP/w/$(basename "$child") p=$TMP/w/$(basename "$parent")
	before=$(content_sha "$c") || fail "$child: unreadable"
	[ "$before" = "$chain_sha" ] || fail "$child: chain sha $before, COALESCE.tsv $chain_sha"
	"$VHD" coalesce --force "$c" >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "coalesce $child failed"; }
	[ "$(content_sha "$p")" = "$chain_sha" ] || fail "$parent: content after coalesce differs from the child's chain"
	[ "$(content_sha "$c")" = "$chain_sha" ] || fail "$child: content changed by the coalesce"
	if [ "$equal" = true ] && [ "$after" != - ]; then
		[ "$after" = "$chain_sha" ] || fail "$child: blktap's result differs unexpectedly"
	fi
	ls -a "$TMP/w" | grep -q '\.journal$' && fail "$child: journal left behind"
	n=$((n + 1))
done < "$CORPUS/COALESCE.tsv"
[ $n -ge 10 ] || fail "only $n pairs coalesced"
pass "$n corpus pairs coalesced; each parent now reads as its child's chain"
