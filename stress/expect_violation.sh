#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs a stress scenario with a planted fault; passes only if the scenario
# caught it: exit status 1 and a VIOLATION line (a crash or a sanitizer
# report is not a catch).
#
#   expect_violation.sh CBM_STRESS ARGS...
out=$("$@" 2>&1)
rc=$?
echo "$out" | tail -25
if [ "$rc" -eq 1 ] && echo "$out" | grep -q "^VIOLATION"; then
	echo "caught: $(echo "$out" | grep -m1 '^VIOLATION')"
	exit 0
fi
echo "NOT CAUGHT (exit status $rc)"
exit 1
