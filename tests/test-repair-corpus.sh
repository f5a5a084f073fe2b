#!/bin/bash
# vhd repair on every bad case of the corpus (BAD.tsv), judged against
# blktap's own repair (expected/REPAIR.tsv): what blktap repairs (repair and
# check afterwards both succeed) we repair too, byte for byte the same where
# we do the same thing; the result passes blktap's check (and `vhd check`
# when it exists) and reads back the content of the image the case was made
# from.  Refused cases exit 4 (3: not a VHD) and leave the file unchanged;
# --dry-run changes nothing and lists the same actions as the real run.
. "$(dirname "$0")/functions.sh"
need_corpus
requires sha256sum od python3

# Our decision per case (a policy, not a result): repair, force (data
# already lost: refused without --force), refuse, notvhd.
declare -A policy=(
	[bad/backup-footer-bad.vhd]=repair [bad/footer-bad-checksum.vhd]=repair
	[bad/footer-bad-cookie.vhd]=repair [bad/footers-differ.vhd]=repair
	[bad/trailing-garbage.vhd]=repair [bad/data-where-bitmap-clear.vhd]=repair
	[bad/batmap-bad-checksum.vhd]=repair [bad/batmap-full-unallocated.vhd]=repair
	[bad/header-bad-checksum.vhd]=repair [bad/parent-name-mismatch/child.vhd]=repair
	[bad/truncated-mid-block.vhd]=force [bad/bat-past-eof.vhd]=force
	[bad/bat-into-headers.vhd]=refuse [bad/bat-overlap.vhd]=refuse
	[bad/header-bad-cookie.vhd]=refuse [bad/parent-uuid-mismatch/child.vhd]=refuse
	[bad/random-511-bytes.vhd]=notvhd [bad/zero-length.vhd]=notvhd
)
# Where we deliberately do better than blktap (it extends the file to where
# the bad block would end; we clear the entry).
declare -A differs_from_blktap=([bad/bat-past-eof.vhd]=1)

have_vhd_check=0
"$VHD" check --help >/dev/null 2>&1 && have_vhd_check=1

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# check_valid FILE: blktap's check (our vhd-util) and vhd check must pass.
check_valid() {
	(cd "$(dirname "$1")" && "$B/vhd-util" check -n "$(basename "$1")") >"$TMP/chk" 2>&1 ||
		{ cat "$TMP/chk" >&2; fail "$2: vhd-util check fails after repair"; }
	if [ $have_vhd_check = 1 ]; then
		"$VHD" check "$1" >"$TMP/chk" 2>&1 || { cat "$TMP/chk" >&2; fail "$2: vhd check fails after repair"; }
	fi
	"$VHD" info "$1" >/dev/null 2>&1 || fail "$2: vhd info fails after repair"
}

# expected_truncated ORIG VSIZE > content: each allocated block (all written,
# per BAD.tsv) keeps what the cut file still holds; the rest reads as zeros.
expected_truncated() {
	local f=$1 vsize=$2 info table bs entries fsize b hex start n
	info=$("$VHD" info --json "$f")
	table=$(json_field table_offset <<<"$info")
	bs=$(json_field block_size <<<"$info")
	entries=$(json_field max_bat_entries <<<"$info")
	fsize=$(stat -c %s "$f")
	truncate -s "$vsize" "$TMP/expected"
	for b in $(seq 0 $((entries - 1))); do
		hex=$(od -An -tx1 -j $((table + 4 * b)) -N4 "$f" | tr -d ' \n')
		[ "$hex" = ffffffff ] && continue
		start=$((16#$hex * 512 + (bs / 4096 + 511) / 512 * 512))
		n=$((fsize - start)); [ $n -gt "$bs" ] && n=$bs
		[ $n -gt 0 ] && dd if="$f" of="$TMP/expected" bs=512 skip=$((start / 512)) \
			seek=$((b * bs / 512)) count=$((n / 512)) conv=notrunc status=none
	done
	sha256sum <"$TMP/expected" | cut -d' ' -f1
}

checked=0
while IFS=$'\t' read -r path defect how base; do
	[ "$path" = path ] && continue
	want=${policy[$path]:-}
	[ -n "$want" ] || fail "$path: no policy for this new corpus case ($defect)"
	rep=$(awk -F'\t' -v p="$path" '$1==p' "$CORPUS/expected/REPAIR.tsv")
	[ -n "$rep" ] || fail "$path: not in REPAIR.tsv"
	blk_rc=$(cut -f2 <<<"$rep") blk_sha=$(cut -f4 <<<"$rep") blk_check=$(cut -f5 <<<"$rep")

	# a blktap success must be ours too (possibly with --force)
	if [ "$blk_rc" = 0 ] && [ "$blk_check" = 0 ]; then
		case $want in repair|force) ;; *) fail "$path: blktap repairs it, we would $want" ;; esac
	fi

	rm -rf "$TMP/c"; mkdir "$TMP/c"
	case $path in
	bad/*/*) cp -r "$CORPUS/$(dirname "$path")" "$TMP/c/"; f=$TMP/c/$(basename "$(dirname "$path")")/$(basename "$path") ;;
	*) cp "$CORPUS/$path" "$TMP/c/"; f=$TMP/c/$(basename "$path") ;;
	esac
	orig=$(raw_sha "$f")
	before=$("$VHDIO" cat "$f" 2>/dev/null | sha256sum | cut -d' ' -f1)
	"$VHDIO" cat "$f" >/dev/null 2>&1 || before=
	vsize=$("$VHD" info --json "$f" 2>/dev/null | json_field virtual_size 2>/dev/null) || vsize=

	# dry run: nothing written, in every case
	"$VHD" repair --dry-run "$f" >"$TMP/dry" 2>&1; dry_rc=$?
	[ "$(raw_sha "$f")" = "$orig" ] || fail "$path: --dry-run changed the file"

	case $want in
	refuse|notvhd)
		code=4; [ $want = notvhd ] && code=3
		expect_exit $code "$VHD" repair --force "$f"
		[ "$(raw_sha "$f")" = "$orig" ] || fail "$path: refused, but the file changed"
		[ "$dry_rc" = $code ] || fail "$path: --dry-run exited $dry_rc, expected $code"
		"$VHD" repair --json "$f" >"$TMP/j" 2>/dev/null
		[ "$(json_field refused <"$TMP/j")" != None ] || fail "$path: --json does not say why it refused"
		checked=$((checked + 1)); continue ;;
	force)
		expect_exit 4 "$VHD" repair "$f"
		grep -q -- --force "$TMP/.out" || fail "$path: refusal does not mention --force"
		[ "$(raw_sha "$f")" = "$orig" ] || fail "$path: refused without --force, but the file changed"
		"$VHD" repair --dry-run --force "$f" >"$TMP/dry" 2>&1 || fail "$path: --dry-run --force failed"
		[ "$(raw_sha "$f")" = "$orig" ] || fail "$path: --dry-run --force changed the file"
		opt=--force ;;
	repair)
		[ "$dry_rc" = 0 ] || { cat "$TMP/dry"; fail "$path: --dry-run exited $dry_rc"; }
		opt= ;;
	esac

	"$VHD" repair $opt "$f" >"$TMP/out" 2>&1 || { cat "$TMP/out"; fail "$path: repair failed"; }
	# the dry run announced exactly the actions taken
	grep -v ': dry run: nothing written$' "$TMP/dry" | diff - "$TMP/out" >/dev/null ||
		{ diff "$TMP/dry" "$TMP/out"; fail "$path: --dry-run listed other actions than the repair"; }
	check_valid "$f" "$path"
	if [ "$blk_rc" = 0 ] && [ "$blk_check" = 0 ] && [ -z "${differs_from_blktap[$path]:-}" ]; then
		[ "$(raw_sha "$f")" = "$blk_sha" ] || fail "$path: repaired file differs from blktap's repair"
	fi
	after=$(content_sha "$f")
	[ -n "$vsize" ] || vsize=$("$VHD" info --json "$f" | json_field virtual_size)
	case $base in
	*empty*) want_sha=$(head -c "$vsize" /dev/zero | sha256sum | cut -d' ' -f1) ;;
	*) if [ $want = force ]; then want_sha=$(expected_truncated "$CORPUS/$path" "$vsize")
	   else want_sha=$before; fi ;;
	esac
	[ -n "$want_sha" ] || fail "$path: no expected content (unreadable before repair)"
	[ "$after" = "$want_sha" ] || fail "$path: content after repair is not the base image's"
	# repaired means nothing left to repair
	"$VHD" repair "$f" >"$TMP/again" 2>&1 || fail "$path: second repair failed"
	grep -q ': nothing to repair$' "$TMP/again" || { cat "$TMP/again"; fail "$path: second repair did more"; }
	checked=$((checked + 1))
done <"$CORPUS/BAD.tsv"
[ $checked = ${#policy[@]} ] || fail "checked $checked cases of ${#policy[@]}"
pass "$checked bad cases: repaired (blktap-identical where alike), checked and read back, or refused untouched; dry runs write nothing (vhd check used: $have_vhd_check)"
