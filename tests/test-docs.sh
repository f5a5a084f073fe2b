#!/bin/bash
# Every subcommand `vhd --help` lists has --help text with an example, is
# described in the man page (which scdoc builds) and in the README.
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
pass "$(echo $cmds | wc -w) subcommands documented in --help, the man page and the README"
