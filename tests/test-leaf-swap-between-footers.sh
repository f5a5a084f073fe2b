#!/bin/bash
# A crash between the two footer writes of a leaf swap (lib/leaf.c step 3:
# the primary footer has the leaf's UUID, the backup at offset 0 still the
# parent's) leaves a disk that reads as the leaf.  vhd check calls it an
# interrupted swap when the swap's journal agrees, and damage when it does
# not (no journal, another file's journal, other UUIDs, any other field
# different); vhd recover then writes the backup and drops the journal.
. "$(dirname "$0")/functions.sh"
requires python3
cd "$TMP" || fail "no tmp"

"$VHD" create leaf.vhd 16M >/dev/null || fail "create"
random_writes leaf.vhd 16 10 64 || fail "writes"
want=$(content_sha leaf.vhd)
uuid=$("$VHD" info --json leaf.vhd | python3 -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
other=6b1e6d1c-0000-4000-8000-00000000beef

# Rewrite the backup footer's UUID (and byte OFF, if given) with a valid checksum.
backup_footer() {
	python3 - "$1" "$2" "${3:-}" <<'PY'
import sys, uuid
path, u, off = sys.argv[1], uuid.UUID(sys.argv[2]).bytes, sys.argv[3]
with open(path, 'r+b') as f:
    b = bytearray(f.read(512))
    b[68:84] = u
    if off:
        b[int(off)] ^= 1
    b[64:68] = b'\0\0\0\0'
    b[64:68] = ((~sum(b)) & 0xffffffff).to_bytes(4, 'big')
    f.seek(0); f.write(b)
PY
}
journal() {   # leaf name, leaf uuid, parent uuid
	printf '{"vhdkit_leaf_journal":1,"leaf":"%s","leaf_uuid":"%s","parent":"gone.vhd","parent_uuid":"%s","hidden":false,"leaf_size":0,"leaf_mtime_ns":0}\n' \
		"$1" "$2" "$3" >.vhdleaf-leaf.vhd.journal
}
check_says() {   # expected exit, expected words, what
	local rc=0
	"$VHD" check leaf.vhd >check.out 2>&1 || rc=$?
	[ "$rc" = "$1" ] || { cat check.out; fail "$3: vhd check exit $rc, expected $1"; }
	grep -q "$2" check.out || { cat check.out; fail "$3: vhd check does not say '$2'"; }
	echo "ok: $3: exit $rc, '$2'"
}

backup_footer leaf.vhd "$other" || fail "backup"
check_says 3 "footers do not match" "no journal"
journal other.vhd "$uuid" "$other"
check_says 3 "footers do not match" "another leaf's journal"
journal leaf.vhd "$other" "$uuid"
check_says 3 "footers do not match" "journal with the UUIDs the other way round"
journal leaf.vhd "$uuid" "$other"
check_says 0 "a leaf swap is writing" "the swap's own journal"
backup_footer leaf.vhd "$other" 40 || fail "backup"
check_says 3 "footers do not match" "journal, but the backup's size differs too"
backup_footer leaf.vhd "$other" 40 || fail "backup"   # flip the size bit back
check_says 0 "a leaf swap is writing" "the swap's own journal again"

[ "$(content_sha leaf.vhd)" = "$want" ] || fail "the disk does not read as the leaf"
"$VHD" recover . >recover.out 2>&1 || { cat recover.out; fail "vhd recover"; }
[ ! -e .vhdleaf-leaf.vhd.journal ] || fail "vhd recover left the journal"
"$VHD" check leaf.vhd >check.out 2>&1 || { cat check.out; fail "vhd check after recover"; }
! grep -q "leaf swap" check.out || fail "vhd check still sees a swap after recover"
[ "$(content_sha leaf.vhd)" = "$want" ] || fail "vhd recover changed the content"
pass "an interrupted leaf swap's footers are recognised only with its journal; vhd recover finishes it"
