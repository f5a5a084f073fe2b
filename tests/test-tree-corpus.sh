#!/bin/bash
# vhd tree on the corpus chain directories (good/sr1: XenServer-like, depth
# 6 with snapshot and clone leaves; good/grow; good/vhdlib-pair, whose child
# has no locators) and on good/ itself: every MANIFEST image appears once,
# under the parent of the MANIFEST parent column, with its hidden flag,
# sizes and chain depth; children in name order; the text drawing puts
# each file under its parent.
. "$(dirname "$0")/functions.sh"
need_corpus
requires /usr/bin/python3
for d in good/sr1 good/grow good/vhdlib-pair good; do
	"$VHD" tree --json "$CORPUS/$d" > "$TMP/t.json" || fail "tree --json $d"
	"$VHD" tree "$CORPUS/$d" > "$TMP/t.txt" || fail "tree $d"
	/usr/bin/python3 - "$CORPUS" "$d" "$TMP/t.json" "$TMP/t.txt" <<'EOF2' || fail "$d: tree differs from MANIFEST.tsv"
import csv, json, os, re, sys
corpus, d, js, txt = sys.argv[1:]
rows = {os.path.basename(r["path"]): r for r in csv.DictReader(open(corpus + "/MANIFEST.tsv"), delimiter="\t")
        if os.path.dirname(r["path"]) == d}
def depth(name):
    p = rows[name]["parent"]
    return 1 if p == "-" else 1 + depth(p)
t = json.load(open(js))
assert t["unreadable"] == [], t["unreadable"]
seen = {}
def walk(node, parent):
    n = node["name"]
    assert n not in seen, n + " twice"
    seen[n] = 1
    r = rows[n]
    assert (parent or "-") == r["parent"], (n, parent, r["parent"])
    assert node["hidden"] == (r["hidden"] == "1"), n
    assert node["virtual_size"] == int(r["virtual_size_bytes"]), n
    assert node["file_size"] == int(r["file_size_bytes"]), n
    assert node["depth"] == depth(n), (n, node["depth"], depth(n))
    assert node["type"] == r["disk_type"], n
    assert "problem" not in node, (n, node.get("problem"))
    kids = [c["name"] for c in node["children"]]
    assert kids == sorted(kids), (n, kids)
    for c in node["children"]:
        walk(c, n)
for root in t["trees"]:
    walk(root, None)
assert sorted(seen) == sorted(rows), (sorted(seen), sorted(rows))
assert [r["name"] for r in t["trees"]] == sorted(r["name"] for r in t["trees"])
# text: 4 columns of drawing per level; a file's parent is the nearest
# line above it one level up
lines = open(txt).read().splitlines()
assert lines[0] == corpus + "/" + d and lines[-1] == "%d file(s), %d tree(s), 0 unreadable" % (len(rows), len(t["trees"])), lines[-1]
stack = []
for l in lines[1:-2]:
    m = re.match(r"((?:│   |    )*)(?:├── |└── )(\S+)  ", l)
    level, name = len(m.group(1)) // 4, m.group(2)
    assert level == depth(name) - 1, l
    stack[level:] = [name]
    assert (stack[level - 1] if level else "-") == rows[name]["parent"], l
    assert ("hidden" in l.split("  ", 1)[1]) == (rows[name]["hidden"] == "1"), l
assert len(lines) == len(rows) + 3, len(lines)
# └── marks a last child: no sibling follows before the level closes
body = lines[1:-2]
levels = [len(re.match(r"((?:│   |    )*)", l).group(1)) // 4 for l in body]
for i, l in enumerate(body):
    rest = [v for v in levels[i + 1:]]
    follows = next((v for v in rest if v <= levels[i]), None) == levels[i]
    assert ("├── " in l) == follows and ("└── " in l) != follows, l
EOF2
done
pass "tree of 4 corpus directories matches MANIFEST parents, flags, sizes and depths"
