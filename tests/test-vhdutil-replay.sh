#!/bin/bash
# Replays every command of the corpus's expected/COMMANDS.tsv (blktap
# vhd-util 4.0.8 outputs) with build/vhd-util on a copy of the image's
# directory, and compares output and exit status.  Repairs are also checked
# against expected/REPAIR.tsv (size and sha256 of the repaired file).
. "$(dirname "$0")/functions.sh"
need_corpus
requires python3 sha256sum
VU=$B/vhd-util
[ -x "$VU" ] || fail "$VU missing (make)"

# Where vhdkit deliberately differs from blktap: "output_file<TAB>reason".
# The row's output must then differ from blktap's, and the reason says how.
# (Empty today: every corpus command prints exactly what blktap prints.)
DIFFERENCES=$(cat <<'EOF'
EOF
)

# The corpus was captured as text: bytes that are not UTF-8 became U+FFFD.
as_text() { python3 -c 'import sys; sys.stdout.write(sys.stdin.buffer.read().decode("utf-8", "replace"))'; }

# `check` rejects footers more than 30 minutes in the future; on a machine
# whose clock is before the corpus was made, the expected outputs need -t.
corpus_time=$(date -u -d '2026-11-22 04:51:44' +%s)
check_flags=
[ "$(date +%s)" -lt $((corpus_time - 1800)) ] && check_flags=" -t"

# blktap's `scan -f` lists in the order the recording machine's directory
# gave (glob with GLOB_NOSORT).  To compare byte for byte, copy a scan
# row's directory into a tmpfs, creating its files in the order that makes
# the tmpfs list them in the recorded order (a tmpfs lists in creation
# order or its reverse: probed), and check that it does before the run.
SHM=$(mktemp -d /dev/shm/vhdkit-replay.XXXXXX) || fail "no tmpfs at /dev/shm"
trap 'rm -rf "$TMP" "$SHM"' EXIT
touch "$SHM/first" "$SHM/second"
[ "$(ls -U "$SHM" | head -1)" = first ] && tmpfs_order=creation || tmpfs_order=reverse
rm -f "$SHM/first" "$SHM/second"
lay_out_as_recorded() {   # SRC DST EXPECTED: DST lists SRC's *.vhd as EXPECTED names them
	local src=$1 dst=$2 names f
	names=$(sed -n 's/^vhd=\([^ ]*\) .*/\1/p' "$3")
	mkdir -p "$dst" || return 1
	for f in $( [ $tmpfs_order = creation ] && echo "$names" || echo "$names" | tac); do
		cp "$src/$f" "$dst/$f" || return 1
	done
	[ "$(ls -U "$dst" | grep '\.vhd$')" = "$names" ] ||
		fail "$dst: the tmpfs does not list the files in the recorded order: $(ls -U "$dst" | tr '\n' ' ')"
	[ "$(ls "$src" | grep -c '\.vhd$')" = "$(ls "$dst" | wc -l)" ] || fail "$src: not every VHD is in the scan output"
}

run_row() {   # DIR ARGS... : run vhd-util ARGS inside DIR, output to $out
	local dir=$1; shift
	(cd "$dir" && "$VU" "$@") >"$TMP/raw" 2>&1
}

mismatches=0 rows=0 repairs=0
while IFS=$'\t' read -r outfile image command status note; do
	[ "$outfile" = output_file ] && continue
	rows=$((rows + 1))
	dir=${command#cd }; dir=${dir%% && *}
	args=${command#* && }; args=${args#TZ=UTC }; args=${args#timeout 10 }; args=${args#vhd-util }
	work=$TMP/w$rows
	mkdir -p "$work/$(dirname "$dir")"
	if [[ $outfile == *.scan-f.txt ]]; then
		work=$SHM/w$rows
		lay_out_as_recorded "$CORPUS/$dir" "$work/$dir" "$CORPUS/expected/$outfile"
	else
		cp -r "$CORPUS/$dir" "$work/$dir" && chmod -R u+w "$work"
	fi
	case $args in check*) args="$args$check_flags" ;; esac
	if [[ $outfile == *.repair-check.txt ]]; then   # the check runs on the repaired copy
		run_row "$work/$dir" repair -n "$(basename "$image")"
	fi
	eval "set -- $args"
	run_row "$work/$dir" "$@"; rc=$?
	sed "s|$work/|\$CORPUS/|g" "$TMP/raw" | as_text >"$TMP/got"
	want=$CORPUS/expected/$outfile
	reason=$(printf '%s\n' "$DIFFERENCES" | awk -F'\t' -v f="$outfile" '$1 == f {print $2}')
	if [ -n "$reason" ]; then
		if cmp -s "$TMP/got" "$want"; then
			echo "MISMATCH $outfile: expected the documented difference ($reason)"
			mismatches=$((mismatches + 1))
		fi
		continue
	fi
	if [ "$rc" != "$status" ] || ! cmp -s "$TMP/got" "$want"; then
		echo "MISMATCH $outfile (cd $dir && vhd-util $args): exit $rc, expected $status"
		diff "$want" "$TMP/got" | head -10
		mismatches=$((mismatches + 1))
	fi
	if [[ $outfile == *.repair.txt ]]; then
		read -r size sha < <(awk -F'\t' -v i="$image" '$1 == i {print $3, $4}' \
		                     "$CORPUS/expected/REPAIR.tsv")
		f=$work/$dir/$(basename "$image")
		got_size=$(stat -c %s "$f"); got_sha=$(raw_sha "$f")
		if [ "$got_size" != "$size" ] || [ "$got_sha" != "$sha" ]; then
			echo "MISMATCH repaired $image: size $got_size sha $got_sha, expected $size $sha"
			mismatches=$((mismatches + 1))
		fi
		repairs=$((repairs + 1))
	fi
	rm -rf "$work"
done <"$CORPUS/expected/COMMANDS.tsv"

[ "$rows" -gt 100 ] || fail "only $rows rows read from COMMANDS.tsv"
[ "$mismatches" -eq 0 ] || fail "$mismatches of $rows commands differ from blktap's output"
pass "$rows vhd-util commands match blktap's output and exit status; $repairs repaired files match REPAIR.tsv"
