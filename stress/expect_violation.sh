#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs a stress scenario (or a unit test that prints VIOLATION lines) with
# a planted fault; passes only if it caught it: exit status 1 and a
# VIOLATION line (a crash or a sanitizer report is not a catch); with
# --expect INVARIANT, a VIOLATION of that one (a run that breaks others too
# must still show the planted one). Exit status 77, a run that could not
# make its window here, is passed on: a skip.
#
#   expect_violation.sh [--expect INVARIANT] CBM_STRESS ARGS...
want=
if [ "$1" = "--expect" ]; then
	want=" $2:"
	shift 2
fi
out=$("$@" 2>&1)
rc=$?
echo "$out" | tail -25
# 77: the run could not make its window here (meson's skip).
if [ "$rc" -eq 77 ]; then
	echo "skipped"
	exit 77
fi
if [ "$rc" -eq 1 ] && echo "$out" | grep -q "^VIOLATION$want"; then
	echo "caught: $(echo "$out" | grep -m1 "^VIOLATION$want")"
	exit 0
fi
echo "NOT CAUGHT (exit status $rc)"
exit 1
