#!/bin/bash
# A few rounds of tests/crash-loop.sh (kill -9, power loss, ENOSPC, EIO at
# random points of coalesce, coalesce --relink and commit); `make
# crash-test` runs many more.
CRASH_ROUNDS=${CRASH_ROUNDS_CHECK:-8} exec bash "$(dirname "$0")/crash-loop.sh"
