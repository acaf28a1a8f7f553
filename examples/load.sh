#!/bin/sh
# SPDX-License-Identifier: MIT
# Load both example servers with wrk, with their heap (the default), with
# one pool (--pool) and with --malloc, side by side: with one small GET
# each, and with requests of mixed sizes (mixed.lua: a third outgrow the
# first 4 KiB buffer, which a heap moves to a larger class and one pool
# refuses with 413); then overload them (more connections than the ceiling
# has buffers), and print the results as a Markdown table: requests/s,
# latency p50 and p99, answers that were not 200, how often the heap or
# pool ran dry (cbm_stats.alloc_failures, from the server's exit
# statistics), and the server's peak resident memory (VmHWM).
#
#   examples/load.sh [--seconds N] [--repeat N] [--check] [BUILD_DIR]
#
# Each configuration runs --repeat times (3), interleaved, for --seconds
# (10) each; the table shows the median of each column. BUILD_DIR (build)
# must hold the built examples; the client and the servers share this
# machine's CPUs. --check (for tests): one short round with the heap only
# (and the elastic pool overloaded), and fail unless every server exited 0
# with every buffer back and the runs that are not overloaded, mixed sizes
# included, answered only 200. Exits 77 when wrk is not installed.
set -eu

secs=10
repeat=3
check=0
build=build
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) secs=$2; shift 2 ;;
	--repeat) repeat=$2; shift 2 ;;
	--check) check=1; secs=1; repeat=1; shift ;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next }
		     NR > 1 { exit }' "$0"
		exit 0
		;;
	-*) echo "load.sh: unknown option $1" >&2; exit 2 ;;
	*) build=$1; shift ;;
	esac
done
command -v wrk >/dev/null 2>&1 ||
	{ echo "load.sh: wrk is not installed (./dev deps installs it)"; exit 77; }
bin=$build/examples
mixed=$(dirname "$0")/mixed.lua
[ -x "$bin/epoll_server" ] ||
	{ echo "load.sh: no $bin/epoll_server: build first (ninja -C $build)" >&2; exit 2; }

# Server workers, wrk threads, connections; overload: a pool of few
# buffers against many more connections.
workers=2
wrk_threads=2
conns=64
small_pool=256
tiny_pool=32
many=1000
# wrk holds a descriptor per connection.
ulimit -n 8192 2>/dev/null || true

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cbm-load.XXXXXX")
pid=""
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM

# run ID SERVER CONNECTIONS [SERVER ARGS...]: start the server, run wrk
# against it (with mixed.lua when ID ends in -mixed), stop it; append to
# $tmp/ID one line: requests/s, p50 and p99 in microseconds, non-2xx
# answers, socket errors, allocations, failed allocations, whether every
# buffer came back, the server's exit status, (io_uring) receives that
# found the provided-buffer ring empty, and its peak RSS in KiB.
run() {
	id=$1 server=$2 c=$3
	shift 3
	out=$tmp/server.out
	: >"$out"
	"$bin/$server" --port 0 --threads "$workers" "$@" </dev/null >"$out" 2>&1 &
	pid=$!
	port=""
	for _ in $(seq 50); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out")
		[ -n "$port" ] && break
		sleep 0.1
	done
	if [ -z "$port" ]; then
		cat "$out" >&2
		echo "load.sh: $server did not start" >&2
		exit 1
	fi
	script=""
	case $id in *-mixed) script="-s $mixed" ;; esac
	# shellcheck disable=SC2086
	wrk -t"$wrk_threads" -c"$c" -d"${secs}s" --latency $script \
		"http://127.0.0.1:$port/" </dev/null >"$tmp/wrk.out" 2>&1 || true
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || :)
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	pid=""
	awk -v rc="$rc" -v hwm="${hwm:-0}" '
	function us(v) {
		if (v ~ /us$/) return v + 0
		if (v ~ /ms$/) return (v + 0) * 1000
		if (v ~ /s$/) return (v + 0) * 1000000
		return v + 0
	}
	FILENAME ~ /wrk/ && /^Requests\/sec:/ { rps = $2 }
	FILENAME ~ /wrk/ && $1 == "50%" { p50 = us($2) }
	FILENAME ~ /wrk/ && $1 == "99%" { p99 = us($2) }
	FILENAME ~ /wrk/ && /Non-2xx/ { bad = $NF }
	FILENAME ~ /wrk/ && /Socket errors/ {
		gsub(/,/, ""); err = $4 + $6 + $8 + $10
	}
	FILENAME !~ /wrk/ && match($0, / allocs=[0-9]+/) {
		allocs = substr($0, RSTART + 8, RLENGTH - 8)
	}
	FILENAME !~ /wrk/ && match($0, /alloc_failures=[0-9]+/) {
		fails = substr($0, RSTART + 15, RLENGTH - 15)
	}
	FILENAME !~ /wrk/ && /^buffers: whole/ { whole = 1 }
	FILENAME !~ /wrk/ && match($0, /found it empty=[0-9]+/) {
		empty = substr($0, RSTART + 15, RLENGTH - 15)
	}
	END {
		printf "%d %d %d %d %d %d %d %d %d %d %d\n", rps, p50, p99, bad,
			err, allocs, fails, whole, rc, empty, hwm
	}' "$tmp/wrk.out" "$out" >>"$tmp/$id"
	if ! grep -q '^buffers: whole' "$out" || [ "$rc" != 0 ]; then
		sed -n '/stopping/,$p' "$out" >&2
	fi
}

# median ID COLUMN
median() {
	awk -v k="$2" '{ print $k }' "$tmp/$1" | sort -n |
		awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Configurations: ID SERVER CONNECTIONS ARGS... (--check: the heap's only,
# and the elastic pool). The io_uring server's connections hold no buffer
# while idle, and by default its rings take at most half the ceiling, so
# it also gets a small one that its rings take whole: that one runs dry.
configs() {
	uring=0
	[ -x "$bin/uring_server" ] && uring=1
	for server in epoll uring; do
		[ $server = uring ] && [ $uring = 0 ] && continue
		for load in "" -mixed; do
			echo "$server-heap$load ${server}_server $conns"
			[ "$check" = 1 ] && continue
			echo "$server-pool$load ${server}_server $conns --pool"
			echo "$server-malloc$load ${server}_server $conns --malloc"
		done
	done
	echo "epoll-over epoll_server $many --buffers $small_pool"
	echo "epoll-over-elastic epoll_server $many --pool --buffers $small_pool --max-buffers 65536"
	[ "$check" = 1 ] || echo "epoll-over-malloc epoll_server $many --malloc"
	[ $uring = 1 ] && echo "uring-over uring_server $many --buffers $small_pool"
	[ $uring = 1 ] && [ "$check" = 0 ] &&
		echo "uring-tiny uring_server $many --buffers $tiny_pool" \
			"--ring-entries $((tiny_pool / workers))"
	[ $uring = 1 ] && [ "$check" = 0 ] &&
		echo "uring-over-malloc uring_server $many --malloc"
	return 0
}

for r in $(seq "$repeat"); do
	configs | while read -r id server c args; do
		echo "load.sh: round $r/$repeat: $id ($c connections, ${secs}s)" >&2
		# shellcheck disable=SC2086
		run "$id" "$server" "$c" $args
	done
done

fail=0
printf '| server | buffers | requests | connections | requests/s | p50 | p99 | not 200 | ran dry (alloc_failures) | buffers back | peak RSS |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
configs | while read -r id server c args; do
	case $id in
	*malloc*) bufs="malloc" ;;
	*over-elastic*) bufs="pool of $small_pool growing to 65536" ;;
	*over*) bufs="heap, ceiling $small_pool x 4 KiB" ;;
	*tiny*) bufs="heap, ceiling $tiny_pool x 4 KiB, all in the rings" ;;
	*pool*) bufs="pool of 4096" ;;
	*) bufs="heap, ceiling 4096 x 4 KiB" ;;
	esac
	case $id in
	*-mixed) load="mixed" ;;
	*) load="GET" ;;
	esac
	rps=$(median "$id" 1)
	p50=$(median "$id" 2)
	p99=$(median "$id" 3)
	bad=$(median "$id" 4)
	allocs=$(median "$id" 6)
	fails=$(median "$id" 7)
	empty=$(median "$id" 10)
	rss=$(median "$id" 11)
	if [ "$(awk '$8 != 1 || $9 != 0' "$tmp/$id")" = "" ]; then
		back="all, every run"
	else
		back="**NO**"
	fi
	case $bufs in
	malloc) dry="-" ;;
	*) dry=$(awk -v f="$fails" -v a="$allocs" 'BEGIN {
		if (f == 0) print "never"
		else printf "%d times (%.1f%% of %d allocations)\n", f,
			100 * f / (a + f), a + f }') ;;
	esac
	case $server.$bufs in
	uring_server.malloc) ;;
	uring_server.*) dry="$dry; ring empty $empty times" ;;
	esac
	printf '| %s | %s | %s | %s | %s | %.2f ms | %.2f ms | %s | %s | %s | %.1f MiB |\n' \
		"${server%_server}" "$bufs" "$load" "$c" "$rps" \
		"$(awk -v v="$p50" 'BEGIN { print v / 1000 }')" \
		"$(awk -v v="$p99" 'BEGIN { print v / 1000 }')" \
		"$bad" "$dry" "$back" \
		"$(awk -v v="$rss" 'BEGIN { print v / 1024 }')"
done
printf '\n%s; wrk -t%s, %ss per run, median of %s; server --threads %s.\n' \
	"$(uname -sr)" "$wrk_threads" "$secs" "$repeat" "$workers"

# --check: every server whole and exited 0, and no errors unless overloaded.
if [ "$check" = 1 ]; then
	for f in "$tmp"/*-*; do
		id=$(basename "$f")
		if awk '$8 != 1 || $9 != 0' "$f" | grep -q .; then
			echo "load.sh: $id: a server lost buffers or exited non-zero" >&2
			fail=1
		fi
		case $id in
		*over* | *tiny*) ;;
		*) if awk '$4 != 0 || $5 != 0' "$f" | grep -q .; then
			echo "load.sh: $id: answers other than 200, or socket errors" >&2
			fail=1
		fi ;;
		esac
	done
fi
exit "$fail"
