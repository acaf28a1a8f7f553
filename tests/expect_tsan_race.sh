#!/bin/sh
# SPDX-License-Identifier: MIT
# Proves the TSan model of RCU grace periods is load-bearing (src/rcu.h):
# the reader/retire test, run with the annotation planted out, must make
# ThreadSanitizer report a data race on a buffer between a reader and the
# buffer's next owner. (The same test without the plant runs clean in the
# unit suite of the same build.)
#
#   expect_tsan_race.sh TEST_BINARY TEST_NAME
set -u
out=$(CBM_PLANT=no-rcu-annotation CBM_TEST_FILTER="$2" \
	TSAN_OPTIONS="halt_on_error=0 exitcode=66" "$1" 2>&1)
rc=$?
if [ "$rc" -ne 66 ]; then
	echo "expected TSan's exit code 66, got $rc"
	echo "$out" | tail -20
	exit 1
fi
if ! echo "$out" | grep -q "WARNING: ThreadSanitizer: data race"; then
	echo "no data race reported"
	exit 1
fi
# The race must be the one the annotation models: a reader's load against
# a later owner's store into the same buffer.
if ! echo "$out" | grep -A30 "WARNING: ThreadSanitizer: data race" |
	grep -q " reader "; then
	echo "a race was reported, but not the reader's"
	echo "$out" | grep -A30 "WARNING: ThreadSanitizer" | head -40
	exit 1
fi
echo "planted: TSan reported the reader/reuse race, as it must"
