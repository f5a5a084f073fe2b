#!/bin/bash
# README's "Source layout" stays true: it names every folder of the tree,
# every file of lib/ on a line of its own, every .c of common/, gc/ and
# server/, and no file that does not exist.
. "$(dirname "$0")/functions.sh"
cd "$ROOT" || fail "cd $ROOT"
sed -n '/^## Source layout$/,/^## /p' README.md | sed '$d' >"$TMP/layout"
[ -s "$TMP/layout" ] || fail "README has no 'Source layout' section"

# the folders: at the start of an entry ("    lib/", "      unit/")
for d in include lib common cli gc vhdutil server tests tests/unit tests/tools tests/preload \
	bench fuzz man contrib; do
	[ -d "$d" ] || fail "$d/ does not exist: update this test"
	grep -Eq "^ {4,6}(${d%/*}/)?${d##*/}(/|\.| )" "$TMP/layout" || fail "Source layout: no entry for $d/"
done
# lib/: one line per file, and each line's file exists
entries=$(sed -n '/^    lib\//,/^    [a-z]/p' "$TMP/layout" | sed -n 's/^      \([a-z][a-z0-9._-]*\) .*/\1/p')
for f in lib/*; do
	echo "$entries" | grep -qx "${f#lib/}" || fail "Source layout: $f has no line under lib/"
done
for f in $entries; do
	[ -e "lib/$f" ] || fail "Source layout: lib/$f is listed but does not exist"
done
# common/, gc/, server/: each .c named in its folder's entry
for d in common gc server; do
	sed -n "/^    $d\\//,/^    [a-z]/p" "$TMP/layout" | sed '$d' >"$TMP/entry"
	for f in "$d"/*.c; do
		grep -q "\\<$(basename "$f")\\>" "$TMP/entry" || fail "Source layout: $f is not named under $d/"
	done
done
pass "Source layout names $(echo "$entries" | wc -w) files of lib/, every .c of common/, gc/ and server/, and every folder"
