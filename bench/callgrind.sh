#!/bin/sh
# SPDX-License-Identifier: MIT
# Instructions per alloc+free pair for cbm and each peer, counted by
# callgrind: a number that machine noise cannot move.
#
#   bench/callgrind.sh BUILD_DIR OUT_DIR [PAIRS]        PAIRS: 1000000
#
# CALLGRIND_PEERS and CALLGRIND_SIZES (space-separated) narrow the runs.
#
# Method. Each peer has a driver, BUILD_DIR/bench/pairs_PEER (pairs.cc). It
# creates a pool, runs 100000 pairs in warm_pairs() so that every first-use
# path is behind it, then PAIRS pairs in measured_pairs(). Callgrind runs
# with --toggle-collect=measured_pairs: it counts the instructions executed
# inside that function and everything it calls, the loop included, and
# nothing else (a run with PAIRS=0 counts 3). Instructions per pair is that
# count divided by PAIRS. Each peer runs at 64, 2048 and 65536 bytes.
#
# cbm needs care: valgrind 3.19 does not implement rseq, so under it glibc
# registers no rseq area and cbm falls back to portable mode, which asks
# sched_getcpu() for the CPU (src/cpu.h). cbm is therefore counted twice:
# "cbm portable" as it runs under valgrind (in brackets: the instructions
# spent in sched_getcpu, which natively is one load of the rseq area), and
# "cbm rseq", its default mode natively. For that row the library runs in
# rseq mode without a registration (CBM_PERCPU=rseq, src/rseq.c) and the
# single-threaded driver writes CPU 0 into its own rseq area, standing in
# for the kernel: the sequences then run exactly as natively, minus the
# kernel's side (which executes only on preemption, migration or signal).
#
# Writes OUT_DIR/callgrind.md (also printed) and the raw profiles under
# OUT_DIR/callgrind/ (read them with callgrind_annotate).
set -eu

build=${1:?usage: callgrind.sh BUILD_DIR OUT_DIR [PAIRS]}
out=${2:?usage: callgrind.sh BUILD_DIR OUT_DIR [PAIRS]}
pairs=${3:-1000000}
peers=${CALLGRIND_PEERS:-cbm glibc jemalloc mimalloc tcmalloc dpdk mutex}
sizes=${CALLGRIND_SIZES:-64 2048 65536}

if ! command -v valgrind >/dev/null; then
	echo "callgrind: valgrind is not installed (Debian: valgrind)" >&2
	exit 1
fi
# glibc would fill every buffer it hands out and takes back.
unset MALLOC_PERTURB_ MALLOC_CHECK_
mkdir -p "$out/callgrind"
rm -f "$out/callgrind"/*.out
table="$out/callgrind.md"
status=0

# Instructions in the profile $1, in total and inside sched_getcpu.
counts() {
	callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
		awk '
		function num(s) { gsub(",", "", s); return s + 0 }
		/PROGRAM TOTALS/ { total = num($1) }
		/:sched_getcpu( |$)/ { v = num($1); if (v > getcpu) getcpu = v }
		END { printf "%d %d\n", total, getcpu }'
}

{
	echo "Instructions per alloc+free pair (callgrind, $pairs pairs after" \
		"a warm-up; the driver's loop included). cbm rseq is its" \
		"default mode natively; cbm portable is what runs under" \
		"valgrind, in brackets the part spent in sched_getcpu, which" \
		"portable mode calls only because valgrind has no rseq."
	echo
	printf "| peer |"
	for s in $sizes; do printf " %s B |" "$s"; done
	printf "\n|---|"
	for s in $sizes; do printf "%s" "---:|"; done
	printf "\n"
} >"$table"

# cbm is counted in both its modes (see above).
rows=""
for p in $peers; do
	case $p in
	cbm) rows="$rows cbm:rseq cbm:portable" ;;
	*) rows="$rows $p:" ;;
	esac
done

for r in $rows; do
	p=${r%%:*}
	mode=${r#*:}
	exe="$build/bench/pairs_$p"
	if [ ! -x "$exe" ]; then
		echo "callgrind: $p: not built (library missing?), skipped" >&2
		continue
	fi
	row="| $p${mode:+ $mode} |"
	for s in $sizes; do
		prof="$out/callgrind/$p${mode:+-$mode}-$s.out"
		rc=0
		CBM_PERCPU=$mode \
			valgrind --tool=callgrind --toggle-collect=measured_pairs \
			--callgrind-out-file="$prof" "$exe" "$s" "$pairs" \
			>"$prof.log" 2>&1 || rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "callgrind: $p at $s B: exit $rc (see $prof.log)" >&2
			row="$row failed |"
			status=1
			continue
		fi
		set -- $(counts "$prof")
		cell=$(awk -v t="$1" -v g="$2" -v n="$pairs" 'BEGIN {
			printf "%.1f", t / n
			if (g > 0) printf " (%.1f)", g / n }')
		row="$row $cell |"
	done
	echo "$row" >>"$table"
done
cat "$table"
exit $status
