#!/bin/bash
# vhd resize on the corpus's images (made by blktap, qemu-img, vhd-lib): every
# standalone disk grown past its BAT keeps the content MANIFEST.tsv records,
# reads zeros beyond it (through vhd-io and qemu-img) and passes blktap's
# check; the grow/ chain: the parent grown to its leaf's size leaves the
# leaf's content as recorded, and a coalesce then matches COALESCE.tsv; the
# grown leaf grown again, and the sr1 active leaf grown past its BAT, keep
# their chains' content and their parents untouched.
. "$(dirname "$0")/functions.sh"
need_corpus
requires qemu-img
manifest() {   # manifest PATH COLUMN
	awk -F'\t' -v p="$1" -v c="$2" \
		'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next } $1 == p { print $col[c] }' \
		"$CORPUS/MANIFEST.tsv"
}
field() { "$VHD" info --json "$1" | sed -n "s/.*\"$2\":\\([0-9]*\\).*/\\1/p"; }
vsize() { field "$1" virtual_size; }
# the BAT had to move (no room for the new entries where it was)
moved() { [ "$(field "$1" table_offset)" != "$2" ] || fail "$1: the BAT did not move"; }
zeros_sha() { head -c "$1" /dev/zero | sha256sum | cut -d' ' -f1; }
blktap_check() {
	(cd "$(dirname "$1")" && "$B/vhd-util" check -n "$(basename "$1")") >"$TMP/chk" 2>&1 ||
		{ cat "$TMP/chk"; fail "$1: blktap's check fails after resize"; }
}
# check_grown IMG CORPUS_PATH NEW_BYTES: content = recorded content + zeros
check_grown() {
	local img=$1 old_bytes want
	old_bytes=$(manifest "$2" virtual_size_bytes) want=$(manifest "$2" content_sha256)
	[ -n "$want" ] || fail "$2 is not in MANIFEST.tsv"
	[ "$(vsize "$img")" = "$3" ] || fail "$2: size $(vsize "$img") after resize, expected $3"
	"$VHDIO" cat "$img" > "$TMP/all" || fail "$2: unreadable after resize"
	[ "$(head -c "$old_bytes" "$TMP/all" | sha256sum | cut -d' ' -f1)" = "$want" ] ||
		fail "$2: content changed by the resize"
	[ "$(tail -c +$(( old_bytes + 1 )) "$TMP/all" | sha256sum | cut -d' ' -f1)" = \
	  "$(zeros_sha $(( $3 - old_bytes )))" ] || fail "$2: the new area is not zeros"
	[ "$(stat -c %s "$TMP/all")" = "$3" ] || fail "$2: vhd-io read $(stat -c %s "$TMP/all") bytes"
}

# standalone disks: 260 MiB needs 130 BAT entries, more than one sector's 128
for spec in qemu-dyn-data.vhd:260M qemu-dyn-forcesize.vhd:260M tap-dyn-data-256m.vhd:260M \
            vhdlib-pair/parent.vhd:260M qemu-fixed.vhd:5M tap-fixed.vhd:5M; do
	f=${spec%:*} size=${spec#*:}
	img=$TMP/$(basename "$f")
	cp "$CORPUS/good/$f" "$img" && chmod u+w "$img"
	table=$(field "$img" table_offset)
	expect_exit 0 "$VHD" resize "$img" "$size"
	[ -z "$table" ] || moved "$img" "$table"
	bytes=$(( ${size%M} << 20 ))
	check_grown "$img" "good/$f" "$bytes"
	# qemu sizes 'qemu'-made disks by their CHS geometry (less than the
	# footer's size): compare what it sees with the same prefix of ours
	qemu-img convert -f vpc -O raw "$img" "$TMP/q.raw" || fail "$f: qemu-img cannot read the grown disk"
	cmp -s -n "$(stat -c %s "$TMP/q.raw")" "$TMP/q.raw" "$TMP/all" || fail "$f: qemu-img reads the grown disk differently"
	[ "$(stat -c %s "$TMP/q.raw")" -gt "$(manifest "good/$f" virtual_size_bytes)" ] ||
		fail "$f: qemu-img does not see the disk grown"
	case $f in qemu-dyn-forcesize.vhd|vhdlib-pair/*) ;;   # geometry too large before
	*) blktap_check "$img" ;;
	esac
	rm -f "$TMP/all" "$TMP/q.raw" "$img"
done

# grow/: the parent (32 MiB) grown to its leaf's 64 MiB
cp -r "$CORPUS/good/grow" "$TMP/g" && chmod -R u+w "$TMP/g"
leaf_sha=$(manifest good/grow/leaf.vhd content_sha256)
expect_exit 0 "$VHD" resize "$TMP/g/parent.vhd" 64M
check_grown "$TMP/g/parent.vhd" good/grow/parent.vhd $((64 << 20))
[ "$(content_sha "$TMP/g/leaf.vhd")" = "$leaf_sha" ] || fail "grow/leaf.vhd reads differently over the grown parent"
blktap_check "$TMP/g/parent.vhd"
blktap_check "$TMP/g/leaf.vhd"
want=$(awk -F'\t' '$2 == "good/grow/leaf.vhd" && $9 == "true" { print $7 }' "$CORPUS/COALESCE.tsv")
[ -n "$want" ] || fail "no coalesce result for grow/ in COALESCE.tsv"
expect_exit 0 "$VHD" coalesce "$TMP/g/leaf.vhd"
[ "$(content_sha "$TMP/g/parent.vhd")" = "$want" ] || fail "grow/: coalesce after the resize differs from COALESCE.tsv"

# grow/: the leaf (over its smaller parent) grown again, past its BAT
cp -r "$CORPUS/good/grow" "$TMP/g2" && chmod -R u+w "$TMP/g2"
parent_raw=$(raw_sha "$TMP/g2/parent.vhd")
table=$(field "$TMP/g2/leaf.vhd" table_offset)
expect_exit 0 "$VHD" resize "$TMP/g2/leaf.vhd" 260M
moved "$TMP/g2/leaf.vhd" "$table"
check_grown "$TMP/g2/leaf.vhd" good/grow/leaf.vhd $((260 << 20))
blktap_check "$TMP/g2/leaf.vhd"
[ "$(raw_sha "$TMP/g2/parent.vhd")" = "$parent_raw" ] || fail "grow/: resizing the leaf changed its parent"

# sr1: the depth-6 active leaf grown past its BAT; the other leaves unchanged
cp -r "$CORPUS/good/sr1" "$TMP/sr1" && chmod -R u+w "$TMP/sr1"
active=6ffe6666-fa72-466d-ba90-0d4688e10883.vhd clone=b1082730-6a6d-48ec-b5d2-3309b6d2590d.vhd
table=$(field "$TMP/sr1/$active" table_offset)
expect_exit 0 "$VHD" resize "$TMP/sr1/$active" 260M
moved "$TMP/sr1/$active" "$table"
check_grown "$TMP/sr1/$active" "good/sr1/$active" $((260 << 20))
blktap_check "$TMP/sr1/$active"
[ "$(content_sha "$TMP/sr1/$clone")" = "$(manifest "good/sr1/$clone" content_sha256)" ] ||
	fail "sr1: the clone's content changed"
[ "$("$VHD" depth "$TMP/sr1/$active")" = 6 ] || fail "sr1: the grown leaf lost its chain"
pass "corpus disks grown past their BAT (content kept, zeros beyond, qemu-img agrees), grow/ chain parent and leaf, sr1 leaf"
