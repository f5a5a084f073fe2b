#!/bin/bash
# A few rounds of tests/gc-crash-loop.sh on the demo's 8-level SR, merged in
# one pass (one commit of seven hidden layers): the GC killed with kill -9
# or a power cut at random points of the commit, its relink and its deletes,
# finished by the GC's restart or by `vhd recover`; every visible VHD
# unchanged.  `make crash-test` runs many.
exec env GC_CRASH_SHAPE=onepass CRASH_ROUNDS=${CRASH_ROUNDS:-4} bash "$(dirname "$0")/gc-crash-loop.sh"
