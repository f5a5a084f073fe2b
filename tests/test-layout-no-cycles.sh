#!/bin/bash
# The layers stay layers: no two source files of lib/, common/, cli/, gc/,
# vhdutil/ or server/ need each other, directly or round a longer circle (file A uses a
# symbol B defines and B, or a file B leads to, uses one of A's), and no file
# outside lib/, vhdutil/, fuzz/, tests/unit/ and bench/tools/ includes the
# library's private header internal.h.  The graph is read from the built
# objects (nm: the symbols each defines and the ones it leaves undefined).
. "$(dirname "$0")/functions.sh"
requires nm
cd "$ROOT" || fail "no $ROOT"

# ---- the file-level graph ----
objs=()
for src in lib/*.c common/*.c cli/*.c gc/*.c vhdutil/*.c server/*.c; do
	[ -e "$src" ] || continue
	obj=$B/${src%.c}.o
	case $src in server/*) obj=$B/pic/${src%.c}.o ;; esac   # a plugin: PIC only
	[ -f "$obj" ] || fail "$obj not built (make all)"
	[ "$obj" -nt "$src" ] || fail "$obj is older than $src (make all)"
	objs+=("$src=$obj")
done
: >"$TMP/syms"
for pair in "${objs[@]}"; do
	src=${pair%%=*} obj=${pair#*=}
	nm --defined-only -g "$obj" | awk -v f="$src" 'NF >= 3 { print "D", f, $3 }' >>"$TMP/syms"
	nm -u "$obj" | awk -v f="$src" '{ print "U", f, $NF }' >>"$TMP/syms"
done

# Strongly connected components of two or more files (a transitive closure:
# the graph has a few dozen files).  Each circle is printed with the symbols
# that tie its files together.
awk '
$1 == "D" { def[$3] = $2; files[$2] = 1; next }
$1 == "U" { use[$2, $3] = 1; files[$2] = 1 }
END {
	n = 0
	for (f in files) name[++n] = f
	for (k in use) {
		split(k, p, SUBSEP)
		if (!(p[2] in def) || def[p[2]] == p[1]) continue
		r[p[1], def[p[2]]] = 1
		via[p[1], def[p[2]]] = via[p[1], def[p[2]]] " " p[2]
	}
	for (k = 1; k <= n; k++)
		for (i = 1; i <= n; i++) {
			if (!((name[i], name[k]) in r)) continue
			for (j = 1; j <= n; j++)
				if ((name[k], name[j]) in r) r[name[i], name[j]] = 1
		}
	bad = 0
	for (i = 1; i <= n; i++) {
		if (name[i] in seen) continue
		comp = name[i]; members[1] = name[i]; m = 1
		for (j = 1; j <= n; j++)
			if (j != i && (name[i], name[j]) in r && (name[j], name[i]) in r) {
				comp = comp " " name[j]; members[++m] = name[j]; seen[name[j]] = 1
			}
		if (m < 2) continue
		bad++
		print "circle: " comp
		for (a = 1; a <= m; a++)
			for (b = 1; b <= m; b++)
				if ((members[a], members[b]) in via)
					print "    " members[a] " -> " members[b] ":" via[members[a], members[b]]
	}
	print n " files, " bad " circle(s)" > "/dev/stderr"
	exit bad ? 1 : 0
}' "$TMP/syms" >"$TMP/circles" 2>"$TMP/summary"
rc=$?
nfiles=$(sed -n 's/ files,.*//p' "$TMP/summary")
[ "${nfiles:-0}" -ge 30 ] || { cat "$TMP/summary"; fail "too few files in the graph ($nfiles)"; }
if [ $rc -ne 0 ]; then
	cat "$TMP/circles" >&2
	fail "files that need each other (move the function that lives in the wrong file)"
fi
edges=$(awk '$1 == "U"' "$TMP/syms" | wc -l)

# ---- the private header ----
leaks=$(grep -rlE --include='*.c' --include='*.h' '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]*/)?internal\.h[">]' \
        --exclude-dir=build --exclude-dir=.git . |
        sed 's|^\./||' | grep -vE '^(lib|vhdutil|fuzz|tests/unit|bench/tools)/' || true)
[ -z "$leaks" ] || fail "internal.h included outside lib/, vhdutil/, fuzz/, tests/unit/, bench/tools/: $leaks"
inside=$(grep -rlE --include='*.c' --include='*.h' '#[[:space:]]*include[[:space:]]*"internal\.h"' lib vhdutil | wc -l)
[ "$inside" -ge 5 ] || fail "the include check finds only $inside users of internal.h in lib/ and vhdutil/"

pass "$nfiles files ($edges undefined references) form no circle; internal.h is used by $inside files of lib/ and vhdutil/ and by none outside the allowed folders"
