#!/bin/bash
# vhd tree on a constructed directory: a chain with two children, a copy of
# the base (same UUID: children stay with the file their locators name), a
# fixed disk without the .vhd suffix (found by its footer), a child whose
# parent is in another directory (depth through it), one whose parent is
# gone, a parent loop (made by editing a header: must terminate, be cut
# and marked), an unreadable .vhd; dot files and non-VHD files are ignored.
. "$(dirname "$0")/functions.sh"
requires /usr/bin/python3
D=$TMP/sr
mkdir -p "$D" "$TMP/other"
"$VHD" create "$D/base.vhd" 8M >/dev/null || fail "create"
"$VHD" snapshot "$D/base.vhd" "$D/a.vhd" >/dev/null && "$VHD" snapshot "$D/a.vhd" "$D/b.vhd" >/dev/null \
	&& "$VHD" snapshot "$D/base.vhd" "$D/c.vhd" >/dev/null || fail "snapshot"
"$VHD" set "$D/base.vhd" hidden on >/dev/null && "$VHD" set "$D/a.vhd" hidden on >/dev/null || fail "set"
cp "$D/base.vhd" "$D/0copy.vhd"   # sorts first: only the locators tell
"$VHD" create --fixed "$D/disk.img" 1M >/dev/null || fail "create fixed"
echo "not a disk" > "$D/notes.txt"
"$VHD" create "$D/.hidden.vhd" 1M >/dev/null || fail "create"
"$VHD" create "$TMP/other/ob.vhd" 8M >/dev/null && "$VHD" snapshot "$TMP/other/ob.vhd" "$D/o.vhd" >/dev/null \
	|| fail "outside parent"
"$VHD" create "$D/gone.vhd" 8M >/dev/null && "$VHD" snapshot "$D/gone.vhd" "$D/m.vhd" >/dev/null && rm "$D/gone.vhd" \
	|| fail "missing parent"
"$VHD" create "$D/l0.vhd" 8M >/dev/null && "$VHD" snapshot "$D/l0.vhd" "$D/x.vhd" >/dev/null \
	&& "$VHD" snapshot "$D/x.vhd" "$D/y.vhd" >/dev/null || fail "loop setup"
# x's parent UUID := y's: x -> y -> x
/usr/bin/python3 - "$D/x.vhd" "$D/y.vhd" <<'EOF2' || fail "header edit"
import struct, sys
x, y = sys.argv[1:]
yu = open(y, "rb").read(512)[68:84]
with open(x, "r+b") as f:
    f.seek(512); h = bytearray(f.read(1024))
    h[40:56] = yu; h[36:40] = b"\0" * 4
    h[36:40] = struct.pack(">I", ~sum(h) & 0xffffffff)
    f.seek(512); f.write(h)
EOF2
head -c 5000 /dev/urandom > "$D/junk.vhd"

"$VHD" tree --json "$D" > "$TMP/t.json" || fail "tree --json"
"$VHD" tree "$D" > "$TMP/t.txt" || fail "tree"
/usr/bin/python3 - "$TMP/t.json" <<'EOF2' || { cat "$TMP/t.txt" >&2; fail "forest is wrong"; }
import json, sys
t = json.load(open(sys.argv[1]))
def shape(n):
    return (n["name"], n["depth"], n.get("problem"), n["hidden"], [shape(c) for c in n["children"]])
got = [shape(n) for n in t["trees"]]
want = [
    ("0copy.vhd", 1, None, True, []),
    ("base.vhd", 1, None, True, [("a.vhd", 2, None, True, [("b.vhd", 3, None, False, [])]),
                                 ("c.vhd", 2, None, False, [])]),
    ("disk.img", 1, None, False, []),
    ("l0.vhd", 1, None, False, []),
    ("m.vhd", None, "parent missing", False, []),
    ("o.vhd", 2, "parent not in this directory", False, []),
    ("x.vhd", None, "parent loop", False, [("y.vhd", None, None, False, [])]),
]
assert got == want, "\n%s\n%s" % (got, want)
assert [u["name"] for u in t["unreadable"]] == ["junk.vhd"], t["unreadable"]
assert t["unreadable"][0]["error"], t["unreadable"]
assert t["trees"][5]["parent_name"] == "ob.vhd"
EOF2
grep -q '^unreadable: junk.vhd: ' "$TMP/t.txt" || fail "text: no unreadable line"
grep -q '^12 file(s), 7 tree(s), 1 unreadable$' "$TMP/t.txt" || fail "text: summary wrong"
grep -q 'm.vhd .*(parent missing: gone.vhd)' "$TMP/t.txt" || fail "text: missing parent not shown"
grep -q 'x.vhd .*(parent loop: y.vhd)' "$TMP/t.txt" || fail "text: loop not shown"
expect_exit 1 "$VHD" tree "$TMP/nonexistent"
expect_exit 2 "$VHD" tree
mkdir "$TMP/empty"
"$VHD" tree "$TMP/empty" | grep -q '^0 file(s), 0 tree(s), 0 unreadable$' || fail "empty directory"
pass "forest with copies, orphans, a loop and an unreadable file"
