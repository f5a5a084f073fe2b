#!/bin/bash
# A few rounds of tests/gc-crash-loop.sh (15-level SR, GC killed at random
# points, restarted; every visible VHD unchanged).  `make crash-test` runs many.
exec env CRASH_ROUNDS=${CRASH_ROUNDS:-2} bash "$(dirname "$0")/gc-crash-loop.sh"
