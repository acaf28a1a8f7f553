#!/bin/sh
# SPDX-License-Identifier: MIT
# Instructions per call for cbm and each peer, counted by callgrind: a
# number that machine noise cannot move.
#
#   bench/callgrind.sh BUILD_DIR OUT_DIR [PAIRS]        PAIRS: 1000000
#
# CALLGRIND_PEERS and CALLGRIND_SIZES (space-separated) narrow the runs.
#
# Method. Each peer has a driver, BUILD_DIR/bench/pairs_PEER (pairs.cc). It
# creates a pool, warms every path it will run, then runs PAIRS alloc+free
# pairs in measured_pairs(), PAIRS/32 rounds of a bulk alloc of 32 and a
# bulk free of them in measured_bulk(), and the pairs' loop with no
# allocator in it in measured_loop(). Callgrind runs with
# --toggle-collect=measured_*: it counts the instructions executed inside
# those functions and everything they call, and nothing else. Reported:
#  - pair: (measured_pairs - measured_loop) / PAIRS, the pair without the
#    driver's loop (the calls and their argument moves stay in);
#  - bulk-32: measured_bulk / PAIRS, per buffer (its loop, once per 32
#    buffers, stays in).
# Each peer runs at 64, 2048 and 65536 bytes.
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
# "cbm inline" rows are the same driver built with CBM_INLINE
# (pairs_cbm_inline), where it is built; "cbm trusted rseq", the default
# driver on pools made with CBM_POOL_TRUST_BULK_FREES (pairs_cbm_trusted:
# its bulk frees check no pointer; its pair is cbm's).
#
# Mixed sizes. A second table counts, per allocator, the pair of
# cbm_heap_alloc/cbm_heap_free or malloc/free at sizes that change every
# pair, the mixed-size benchmarks' sequence (bench/mixed_sizes.h): driver
# BUILD_DIR/bench/mixed_pairs_PEER (mixed_pairs.cc), PAIRS pairs in
# measured_mixed_pairs() less the same loop, reading the same sizes, with
# no allocator in measured_mixed_loop(), per pair. cbm_heap (from "cbm" in
# CALLGRIND_PEERS) is counted in rseq and portable mode as above; the
# mallocs are glibc, jemalloc, mimalloc and tcmalloc. CALLGRIND_SIZES does
# not apply.
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
rm -f "$out/callgrind"/*.out "$out/callgrind"/*.out.*
table="$out/callgrind.md"
status=0

# Instructions in the profile $1: measured_pairs, measured_bulk and
# measured_loop with what they call, and sched_getcpu.
counts() {
	callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
		awk '
		function num(s) { gsub(",", "", s); return s + 0 }
		function top(name) { v = num($1); if (v > c[name]) c[name] = v }
		/:measured_pairs( |$)/ { top("pairs") }
		/:measured_bulk( |$)/ { top("bulk") }
		/:measured_loop( |$)/ { top("loop") }
		/:sched_getcpu( |$)/ { top("getcpu") }
		END { printf "%d %d %d %d\n", c["pairs"], c["bulk"], c["loop"],
			c["getcpu"] }'
}

{
	echo "Instructions per alloc+free pair (pair: the driver's loop taken" \
		"out) and per buffer of a bulk alloc+free of 32 (bulk-32)," \
		"callgrind, $pairs pairs after a warm-up. cbm rseq is its" \
		"default mode natively; cbm portable is what runs under" \
		"valgrind, in brackets the part spent in sched_getcpu, which" \
		"portable mode calls only because valgrind has no rseq."
	echo
	printf "| peer |"
	for s in $sizes; do printf " %s B pair | %s B bulk-32 |" "$s" "$s"; done
	printf "\n|---|"
	for s in $sizes; do printf "%s" "---:|---:|"; done
	printf "\n"
} >"$table"

# cbm is counted in both its modes, and inline where built (see above).
rows=""
for p in $peers; do
	case $p in
	cbm) rows="$rows cbm:rseq cbm:portable cbm_inline:rseq cbm_inline:portable cbm_trusted:rseq" ;;
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
	name=$(echo "$p" | tr _ ' ')
	row="| $name${mode:+ $mode} |"
	for s in $sizes; do
		prof="$out/callgrind/$p${mode:+-$mode}-$s.out"
		rc=0
		# A dump before the bulk rounds: sched_getcpu's count in the
		# first part is the pairs' alone.
		rm -f "$prof" "$prof".*
		CBM_PERCPU=$mode \
			valgrind --tool=callgrind --toggle-collect='measured_*' \
			--dump-before=measured_bulk \
			--callgrind-out-file="$prof" "$exe" "$s" "$pairs" \
			>"$prof.log" 2>&1 || rc=$?
		if [ "$rc" -ne 0 ]; then
			echo "callgrind: $p at $s B: exit $rc (see $prof.log)" >&2
			row="$row failed | failed |"
			status=1
			continue
		fi
		# The parts: pairs (and their sched_getcpu), then the rest.
		set -- 0 0 0 0
		for part in "$prof" "$prof".*; do
			[ -f "$part" ] || continue
			set -- $(counts "$part" | awk -v a="$1" -v b="$2" \
				-v c="$3" -v d="$4" '{
				if ($1 > 0) d = $4
				print a + $1, b + $2, c + $3, d }')
		done
		cell=$(awk -v p="$1" -v b="$2" -v l="$3" -v g="$4" -v n="$pairs" \
			'BEGIN {
			bufs = int(n / 32) * 32
			printf "%.1f", (p - l) / n
			if (g > 0) printf " (%.1f)", g / n
			printf " | %.1f", (bufs > 0 ? b / bufs : 0) }')
		row="$row $cell |"
	done
	echo "$row" >>"$table"
done

# Instructions in the mixed-size profile $1: measured_mixed_pairs and
# measured_mixed_loop with what they call, and sched_getcpu.
mixed_counts() {
	callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
		awk '
		function num(s) { gsub(",", "", s); return s + 0 }
		function top(name) { v = num($1); if (v > c[name]) c[name] = v }
		/:measured_mixed_pairs( |$)/ { top("pairs") }
		/:measured_mixed_loop( |$)/ { top("loop") }
		/:sched_getcpu( |$)/ { top("getcpu") }
		END { printf "%d %d %d\n", c["pairs"], c["loop"], c["getcpu"] }'
}

mixed_rows=""
for p in $peers; do
	case $p in
	cbm) mixed_rows="$mixed_rows cbm_heap:rseq cbm_heap:portable" ;;
	glibc | jemalloc | mimalloc | tcmalloc) mixed_rows="$mixed_rows $p:" ;;
	esac
done
if [ -n "$mixed_rows" ]; then
	{
		echo
		echo "Instructions per mixed-size pair: an alloc and a free of" \
			"the next size of the mixed-size benchmarks' sequence" \
			"(bench/mixed_sizes.h), the driver's loop taken out," \
			"callgrind, $pairs pairs after a warm-up; cbm_heap through" \
			"cbm_heap_alloc/cbm_heap_free on a default heap, the" \
			"others through malloc/free; rseq and portable as above."
		echo
		echo "| allocator | mixed-size pair |"
		echo "|---|---:|"
	} >>"$table"
fi
for r in $mixed_rows; do
	p=${r%%:*}
	mode=${r#*:}
	exe="$build/bench/mixed_pairs_$p"
	name="$(echo "$p" | tr _ ' ')${mode:+ $mode}"
	if [ ! -x "$exe" ]; then
		echo "callgrind: mixed $p: not built (library missing?)," \
			"skipped" >&2
		continue
	fi
	prof="$out/callgrind/mixed-$p${mode:+-$mode}.out"
	rm -f "$prof" "$prof".*
	rc=0
	CBM_PERCPU=$mode \
		valgrind --tool=callgrind --toggle-collect='measured_*' \
		--callgrind-out-file="$prof" "$exe" "$pairs" \
		>"$prof.log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "callgrind: mixed $p: exit $rc (see $prof.log)" >&2
		echo "| $name | failed |" >>"$table"
		status=1
		continue
	fi
	set -- $(mixed_counts "$prof")
	cell=$(awk -v p="$1" -v l="$2" -v g="$3" -v n="$pairs" 'BEGIN {
		printf "%.1f", (n > 0 ? (p - l) / n : 0)
		if (g > 0) printf " (%.1f)", g / n }')
	echo "| $name | $cell |" >>"$table"
done
cat "$table"
exit $status
