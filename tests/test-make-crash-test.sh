#!/bin/bash
# `make crash-test`, as documented, with 3 rounds of each loop (kill -9,
# power loss, ENOSPC, EIO in merges; the GC crashed and killed; 2 crashes of
# vhd serve's nbdkit under NBD writes): the target
# runs, with each loop under its own shell, and every loop passes.  The full
# target runs 60 + 40 + 40 rounds; tests/test-coalesce-crash.sh and
# tests/test-gc-crash.sh run more rounds of the loops themselves.
. "$(dirname "$0")/functions.sh"
cd "$ROOT" || fail "cd $ROOT"
# (a make of its own: not the jobserver of the make running this test)
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL CRASH_ROUNDS=3 GC_CRASH_ROUNDS=3 ONEPASS_CRASH_ROUNDS=2 SERVE_CRASH_ROUNDS=2 \
	make -s B="$B" crash-test >"$TMP/out" 2>&1 || { tail -30 "$TMP/out"; fail "make crash-test failed"; }
grep -E '^(crash-loop|gc-crash-loop|ok:)' "$TMP/out"
grep -q '^ok: crash-loop.sh: 3 crash rounds' "$TMP/out" || fail "the merge crash loop did not run its 3 rounds"
grep -q '^ok: gc-crash-loop.sh: 3 GC crash rounds (xen SR' "$TMP/out" || fail "the GC crash loop did not run its 3 rounds"
grep -q '^ok: gc-crash-loop.sh: 2 GC crash rounds (onepass SR' "$TMP/out" ||
	fail "the one-pass GC crash loop did not run its 2 rounds"
grep -q '^ok: test-serve-crash.sh: 2 crashes' "$TMP/out" || fail "the NBD server's crash test did not run its 2 rounds"
pass "make crash-test: 3 merge crash rounds, 3 + 2 (one-pass) GC crash rounds and 2 NBD server crashes passed"
