#!/bin/sh
# SPDX-License-Identifier: MIT
# One harness for a fixed time: from the corpus kept in the tree (read, not
# written: what it finds goes to a scratch directory), stopping at the
# first crash or violation. Prints libFuzzer's executions and coverage.
# A failing input is left in $FUZZ_ARTIFACTS (default: a scratch
# directory, whose name is printed).
#
#   run.sh HARNESS CORPUS SECONDS
set -eu
harness=$1
corpus=$2
seconds=$3
[ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ] ||
	{ echo "fuzz: no corpus in $corpus"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cbm-fuzz.XXXXXX")
artifacts=${FUZZ_ARTIFACTS:-$tmp/artifacts}
mkdir -p "$tmp/new" "$artifacts"
status=0
# -timeout: one input taking 10 s is a hang. LeakSanitizer stays on.
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1} \
	"$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
	-print_final_stats=1 -artifact_prefix="$artifacts/" \
	"$tmp/new" "$corpus" >"$tmp/log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
	tail -n 60 "$tmp/log"
	echo "fuzz: $(basename "$harness") failed (status $status);" \
		"input kept in $artifacts"
	ls "$artifacts"
	exit 1
fi
# The last status line (cov: edges, ft: features, corp: corpus) and the
# final counts.
grep -E '^#[0-9]+' "$tmp/log" | tail -n 1
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$tmp/log"
rm -rf "$tmp"
echo "fuzz: $(basename "$harness") ran $seconds s: no crash, no violation"
