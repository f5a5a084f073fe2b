#!/bin/bash
# Every subcommand `vhd --help` lists has --help text with an example, is
# described in the man page (which scdoc builds) and in the README; the
# README begins with `make demo` and `make check` and names `make deps`.
. "$(dirname "$0")/functions.sh"
requires scdoc
scdoc < "$ROOT/man/vhd.1.scd" > "$TMP/vhd.1" || fail "man page does not build"
cmds=$("$VHD" --help | sed -n 's/^  \([a-z-]*\) .*/\1/p')
[ "$(echo "$cmds" | wc -w)" -ge 10 ] || fail "vhd --help lists too few commands: $cmds"
for c in $cmds; do
	"$VHD" "$c" --help > "$TMP/help" 2>&1 || fail "vhd $c --help failed"
	grep -q "^usage: vhd $c" "$TMP/help" || fail "vhd $c --help has no usage line"
	grep -qi "example" "$TMP/help" || fail "vhd $c --help has no example"
	grep -q "^\*$c\*" "$ROOT/man/vhd.1.scd" || fail "man page does not describe $c"
	grep -q "vhd $c" "$ROOT/README.md" || fail "README does not mention vhd $c"
done
# a newcomer's two commands come first; the packages they install are named
[ "$(head -2 "$ROOT/README.md" | awk '{print $1, $2}' | tr '\n' ,)" = "make demo,make check," ] ||
	fail "README does not begin with the two commands make demo and make check"
grep -q '`make deps`' "$ROOT/README.md" || fail "README does not mention make deps"
pass "$(echo $cmds | wc -w) subcommands documented in --help, the man page and the README; README begins with make demo, make check"
