#!/bin/bash
# vhd coalesce refuses, changing nothing: a visible parent (exit 4, unless
# --force), a parent with another child (exit 4), a --relink of a child in
# use (exit 4), a parent whose filesystem lacks the space (exit 4, with the
# figure), a fixed or non-differencing file (exit 2: a wrong argument, not a
# damaged image).
. "$(dirname "$0")/functions.sh"
requires mount umount
snap() { find "$1" -type f -name '*.vhd' -exec sha256sum {} + | sort; }

make_chain "$TMP/a" 1 16 10 || fail chain
"$VHD" set "$TMP/a/l0.vhd" hidden off >/dev/null
before=$(snap "$TMP/a")
expect_exit 4 "$VHD" coalesce "$TMP/a/l1.vhd"
grep -q "not hidden" "$TMP/.out" || fail "visible parent: message does not say why"
[ "$(snap "$TMP/a")" = "$before" ] || fail "visible parent: files changed"
want=$(content_sha "$TMP/a/l1.vhd")
expect_exit 0 "$VHD" coalesce --force "$TMP/a/l1.vhd"
[ "$(content_sha "$TMP/a/l0.vhd")" = "$want" ] || fail "--force: parent does not read as the child"

make_chain "$TMP/b" 1 16 10 || fail chain
"$VHD" snapshot "$TMP/b/l0.vhd" "$TMP/b/other.vhd" >/dev/null
before=$(snap "$TMP/b")
expect_exit 4 "$VHD" coalesce "$TMP/b/l1.vhd"
grep -q "another child.*other.vhd" "$TMP/.out" || fail "shared parent: message does not name the other child"
[ "$(snap "$TMP/b")" = "$before" ] || fail "shared parent: files changed"

# --relink of a leaf that a writer holds (flock, as vhd_open RDWR takes it)
make_chain "$TMP/c" 1 16 10 || fail chain
before=$(snap "$TMP/c")
# the holder locks, then becomes the sleep (exec): $! is the one process
# holding the lock, so killing it releases the lock
bash -c 'exec 9<"$1" && flock -x 9 && exec sleep 30' holder "$TMP/c/l1.vhd" &
holder=$!
sleep 0.5
expect_exit 4 "$VHD" coalesce --relink "$TMP/c/l1.vhd"
grep -q "in use" "$TMP/.out" || fail "in-use child: message does not say so"
kill "$holder"; wait "$holder"
[ -e "/proc/$holder" ] && fail "lock holder $holder still running"
flock -n "$TMP/c/l1.vhd" true || fail "l1.vhd still locked after its holder was killed"
[ -e "$TMP/c/l1.vhd" ] || fail "in-use child deleted"

# not enough space: a 24 MiB tmpfs holding a parent and a child with 16 MiB of data
mkdir "$TMP/small"
mount -t tmpfs -o size=24M tmpfs "$TMP/small" || fail "cannot mount a tmpfs (run as root)"
trap 'umount "$TMP/small" 2>/dev/null; rm -rf "$TMP"' EXIT
"$VHD" create "$TMP/small/p.vhd" 64M >/dev/null
"$VHD" snapshot "$TMP/small/p.vhd" "$TMP/small/c.vhd" >/dev/null
"$VHD" set "$TMP/small/p.vhd" hidden on >/dev/null
rand_sectors 32768 | "$VHDIO" write "$TMP/small/c.vhd" 0 || fail "filling the child"
before=$(snap "$TMP/small")
expect_exit 4 "$VHD" coalesce "$TMP/small/c.vhd"
grep -Eq "needs [0-9]+ MiB more and the filesystem has [0-9]+ MiB free" "$TMP/.out" || fail "no space figure: $(cat "$TMP/.out")"
[ "$(snap "$TMP/small")" = "$before" ] || fail "no space: files changed"
ls -a "$TMP/small" | grep -q journal && fail "no space: journal left"

"$VHD" create "$TMP/fixed.vhd" 4M --fixed >/dev/null
expect_exit 2 "$VHD" coalesce "$TMP/fixed.vhd"
expect_exit 2 "$VHD" coalesce "$TMP/a/l0.vhd"
pass "refused visible/shared parents, an in-use relink, a full filesystem and non-children without changing files"
