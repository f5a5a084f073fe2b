#!/bin/bash
# `vhd map` lists exactly the sectors that were written: for corpus images
# the extents predicted from WRITES.tsv (blktap: the written sectors; qemu:
# whole blocks, as qemu marks a new block fully present; fixed: the whole
# disk), for a constructed 4-layer chain those of the test's own write log.
# `map --chain` must give, for every sector, the nearest layer whose own
# map has it; --sectors and --json must agree with the byte output.
. "$(dirname "$0")/functions.sh"
need_corpus
requires /usr/bin/python3

# ---- a constructed chain with logged random writes ----
D=$TMP/chain
mkdir -p "$D"
"$VHD" create "$D/l0.vhd" 24M >/dev/null || fail "create"
total=$((24 * 2048))
for i in 0 1 2 3; do
	[ $i -gt 0 ] && { "$VHD" snapshot "$D/l$((i - 1)).vhd" "$D/l$i.vhd" >/dev/null || fail "snapshot"; }
	for _ in $(seq 12); do
		len=$(( (RANDOM * 32768 + RANDOM) % 9000 + 1 ))
		off=$(( (RANDOM * 32768 + RANDOM) % (total - len) ))
		rand_sectors "$len" | "$VHDIO" write "$D/l$i.vhd" $((off * 512)) || fail "write"
		printf 'l%s.vhd\t%s\t%s\n' "$i" "$off" "$len" >> "$D/log.tsv"
	done
done
"$VHD" create --fixed "$D/fixed.vhd" 3M >/dev/null || fail "create fixed"
"$VHD" create "$D/empty.vhd" 64M >/dev/null || fail "create empty"

cat > "$TMP/check.py" <<'EOF'
import csv, json, os, subprocess, sys
VHD, CORPUS, D = sys.argv[1:4]
checked = 0

def merge(iv):
    out = []
    for a, b in sorted(iv):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [tuple(x) for x in out]

def run(*args):
    p = subprocess.run([VHD, "map", *args], capture_output=True, text=True)
    if p.returncode:
        sys.exit("vhd map %s failed: %s" % (" ".join(args), p.stderr))
    return p.stdout

def own_map(path):
    """vhd map --sectors, cross-checked with the byte and JSON outputs."""
    sec = [tuple(map(int, l.split())) for l in run("--sectors", path).splitlines()]
    byt = [tuple(map(int, l.split())) for l in run(path).splitlines()]
    js = [(e["offset"], e["length"]) for e in json.loads(run("--json", path))]
    if byt != [(o * 512, n * 512) for o, n in sec] or js != byt:
        sys.exit("%s: --sectors, bytes and --json outputs disagree" % path)
    return [(o, o + n) for o, n in sec]

def chain_map(path):
    rows = [l.split(" ", 3) for l in run("--chain", "--sectors", path).splitlines()]
    js = json.loads(run("--chain", "--json", path))
    if [(e["offset"] // 512, e["length"] // 512, e["layer"], e["path"]) for e in js] != \
       [(int(o), int(n), int(l), p) for o, n, l, p in rows]:
        sys.exit("%s: --chain text and --json outputs disagree" % path)
    return [(int(o), int(o) + int(n), int(l), os.path.basename(p)) for o, n, l, p in rows]

def expect_chain(layers):
    """layers: [(name, own extents)], leaf first: nearest layer per sector."""
    cuts = sorted({x for _, ext in layers for a, b in ext for x in (a, b)})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        for l, (name, ext) in enumerate(layers):
            if any(s <= a and b <= e for s, e in ext):
                if out and out[-1][1] == a and out[-1][2] == l:
                    out[-1] = (out[-1][0], b, l, name)
                else:
                    out.append((a, b, l, name))
                break
    return out

def check_chain(leaf, chain):
    """chain: file paths leaf first."""
    global checked
    layers = [(os.path.basename(p), own_map(p)) for p in chain]
    got, want = chain_map(leaf), expect_chain(layers)
    if got != want:
        sys.exit("%s: map --chain\n got  %s\n want %s" % (leaf, got[:8], want[:8]))
    checked += 1
    return layers

# corpus: single files predicted from WRITES.tsv
manifest = {r["path"]: r for r in csv.DictReader(open(CORPUS + "/MANIFEST.tsv"), delimiter="\t")}
writes = {}
for r in csv.DictReader(open(CORPUS + "/WRITES.tsv"), delimiter="\t"):
    a = int(r["first_sector"])
    writes.setdefault(r["image"], []).append((a, a + int(r["sectors"])))
BLOCK = 4096
for path, m in sorted(manifest.items()):
    f = CORPUS + "/" + path
    if m["disk_type"] == "fixed":
        want = [(0, int(m["virtual_size_bytes"]) // 512)]
    elif path in writes and m["maker"] == "qemu-img":
        want = merge((a // BLOCK * BLOCK, (b + BLOCK - 1) // BLOCK * BLOCK) for a, b in writes[path])
    elif path in writes and int(m["allocated_blocks"]) == len({a // BLOCK for a, _ in writes[path]}):
        want = merge(writes[path])    # every write of it is still in this file
    elif m["allocated_blocks"] == "0":
        want = []
    else:
        continue                       # data moved by SR-style renames: below
    if own_map(f) != want:
        sys.exit("%s: map %s, WRITES.tsv predicts %s" % (path, own_map(f)[:8], want[:8]))
    checked += 1

# corpus chains: every leaf, by the MANIFEST parent column
def chain_of(path):
    out = [path]
    while manifest[out[-1]]["parent"] != "-":
        out.append(os.path.dirname(path) + "/" + manifest[out[-1]]["parent"])
    return out
for path in sorted(manifest):
    if manifest[path]["parent"] == "-" or path.startswith("good/vhdlib-pair"):
        continue
    chain = chain_of(path)
    layers = check_chain(CORPUS + "/" + path, [CORPUS + "/" + p for p in chain])
    # every write labelled with a chain member is in some layer of it
    union = merge(e for _, ext in layers for e in ext)
    written = merge(e for p in chain for e in writes.get(p, []))
    if merge(union + written) != union:
        sys.exit("%s: chain holds %s, lacks writes of %s" % (path, union[:8], written[:8]))
# a chain directory holds exactly what was written into it (sr1: the active
# leaf's name labels every write made while the SR grew, whichever file
# holds that data now)
for d in ("good/sr1", "good/grow"):
    files = [p for p in manifest if os.path.dirname(p) == d]
    held = merge(e for p in files for e in own_map(CORPUS + "/" + p))
    written = merge(e for p in files for e in writes.get(p, []))
    if held != written:
        sys.exit("%s: files hold %s, WRITES.tsv says %s" % (d, held[:8], written[:8]))
    checked += 1

# the constructed chain and images
log = {}
for line in open(D + "/log.tsv"):
    name, off, n = line.split()
    log.setdefault(name, []).append((int(off), int(off) + int(n)))
for i in range(4):
    if own_map("%s/l%d.vhd" % (D, i)) != merge(log["l%d.vhd" % i]):
        sys.exit("l%d.vhd: map differs from the write log" % i)
check_chain(D + "/l3.vhd", ["%s/l%d.vhd" % (D, i) for i in (3, 2, 1, 0)])
if own_map(D + "/fixed.vhd") != [(0, 6144)] or own_map(D + "/empty.vhd") != []:
    sys.exit("fixed or empty disk map wrong")
print(checked)
EOF
n=$(/usr/bin/python3 "$TMP/check.py" "$VHD" "$CORPUS" "$D") || fail "map check failed"

# without --chain a child whose parent is gone still maps; --chain fails
mkdir "$TMP/orphan" && cp "$D/l2.vhd" "$TMP/orphan/"
"$VHD" map "$TMP/orphan/l2.vhd" > "$TMP/o.txt" || fail "map of an orphan failed"
"$VHD" map "$D/l2.vhd" | cmp -s - "$TMP/o.txt" || fail "orphan map differs"
expect_exit 1 "$VHD" map --chain "$TMP/orphan/l2.vhd"
expect_exit 2 "$VHD" map
pass "map of $n corpus images/chains and a 4-layer chain matches the writes"
