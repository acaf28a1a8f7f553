#!/bin/sh
# SPDX-License-Identifier: MIT
# The file server's benchmark: its three modes side by side, and what
# registration saves per disk read. Prints three Markdown tables:
#
#  1. one big file (--big-mib, 1024) downloaded with curl over loopback,
#     one download at a time: MiB/s and the server's CPU seconds (user +
#     system, from /proc) per GiB sent;
#  2. many concurrent small-file downloads: wrk, 64 connections, on a
#     16 KiB file: requests/s and the server's CPU microseconds per request;
#  3. disk only (disk_bench): READ_FIXED into registered pool buffers,
#     READ into the same buffers unregistered, pread into malloc'd ones, at
#     queue depths 1, 8 and 32.
#
#   examples/file_load.sh [--rounds N] [--big-mib N] [--seconds N]
#                         [--check] [BUILD_DIR]
#
# Medians of --rounds (3) interleaved rounds. The files are made in
# BUILD_DIR/file-bench (a real file system: O_DIRECT; /tmp may be tmpfs)
# and left there for the next run. The pool mode reads with O_DIRECT, so
# every download of it comes from the disk, while --malloc and --sendfile
# read through the page cache, which keeps the file after their first
# round if memory allows: table 1 compares a disk path with cached ones,
# and says so. --check (for tests): a 16 MiB file, one round of everything,
# 1 s of wrk; fails unless every server exited 0 with every buffer back
# and every download was whole. Exits 77 without curl or wrk.
set -eu

rounds=3
big_mib=1024
secs=5
check=0
build=build
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--big-mib) big_mib=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--check) check=1; rounds=1; big_mib=16; secs=1; shift ;;
	-h | --help)
		awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next }
		     NR > 1 { exit }' "$0"
		exit 0
		;;
	-*) echo "file_load.sh: unknown option $1" >&2; exit 2 ;;
	*) build=$1; shift ;;
	esac
done
for tool in curl wrk; do
	command -v $tool >/dev/null 2>&1 ||
		{ echo "file_load.sh: $tool is not installed"; exit 77; }
done
bin=$build/examples
[ -x "$bin/file_server" ] ||
	{ echo "file_load.sh: no $bin/file_server: build first" >&2; exit 2; }
dir=$build/file-bench
mkdir -p "$dir"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cbm-file-load.XXXXXX")
pid=""
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM
fail=0

big=$dir/big-$big_mib
if [ ! -f "$big" ] || [ "$(stat -c %s "$big")" -ne $((big_mib << 20)) ]; then
	echo "file_load.sh: writing $big_mib MiB to $big" >&2
	head -c $((big_mib << 20)) /dev/urandom >"$big.tmp" && mv "$big.tmp" "$big"
fi
[ -f "$dir/small" ] || head -c 16384 /dev/urandom >"$dir/small"

# Server CPU time so far, in clock ticks (utime + stime).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# start MODE: the server on a free port, in $pid and $port.
start() {
	out=$tmp/server-$1.out
	# Emptied here, not only by the redirection below, which the
	# server's shell does later: no stale port is read.
	: >"$out"
	flag=""
	[ "$1" = pool ] || flag=--$1
	"$bin/file_server" --root "$dir" --port 0 --threads 2 $flag \
		</dev/null >"$out" 2>&1 &
	pid=$!
	port=""
	for _ in $(seq 50); do
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || { cat "$out" >&2; echo "file_load.sh: no server" >&2; exit 1; }
	# The workers register the pool (pinning it) as they start: let that
	# finish before the server's CPU time counts.
	curl -s -o /dev/null "http://127.0.0.1:$port/small" || true
	sleep 0.5
}

stop() {
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	pid=""
	if [ "$rc" != 0 ] || ! grep -q '^buffers: whole' "$out"; then
		sed -n '/stopping/,$p' "$out" >&2
		echo "file_load.sh: $1: the server exited $rc or lost buffers" >&2
		fail=1
	fi
}

median() {
	sort -n "$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

modes="pool malloc sendfile"
for r in $(seq "$rounds"); do
	for m in $modes; do
		echo "file_load.sh: round $r/$rounds: $m" >&2
		start "$m"
		t0=$(ticks "$pid")
		res=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' \
			"http://127.0.0.1:$port/big-$big_mib") || res="0 1"
		t1=$(ticks "$pid")
		set -- $res
		if [ "$1" -ne $((big_mib << 20)) ]; then
			echo "file_load.sh: $m: $1 of $((big_mib << 20)) bytes" >&2
			fail=1
		fi
		awk -v b="$1" -v t="$2" 'BEGIN { printf "%.0f\n", b / t / 1048576 }' \
			>>"$tmp/big-rate-$m"
		awk -v d=$((t1 - t0)) -v hz="$hz" -v mib="$big_mib" \
			'BEGIN { printf "%.3f\n", d / hz / (mib / 1024) }' \
			>>"$tmp/big-cpu-$m"
		t0=$(ticks "$pid")
		wrk -t2 -c64 -d"${secs}s" "http://127.0.0.1:$port/small" \
			</dev/null >"$tmp/wrk.out" 2>&1 || true
		t1=$(ticks "$pid")
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk.out")
		reqs=$(awk '/requests in/ { print $1 }' "$tmp/wrk.out")
		# Answers other than 200, or connections that failed; a
		# timeout on a loaded machine is only slow.
		if grep -q 'Non-2xx' "$tmp/wrk.out" ||
			awk '/Socket errors/ { gsub(/,/, "")
				if ($4 + $6 + $8 > 0) bad = 1 }
				END { exit !bad }' "$tmp/wrk.out"; then
			grep 'Non-2xx\|Socket errors' "$tmp/wrk.out" >&2
			fail=1
		fi
		echo "${rps:-0}" >>"$tmp/small-rate-$m"
		awk -v d=$((t1 - t0)) -v hz="$hz" -v n="${reqs:-1}" \
			'BEGIN { printf "%.1f\n", d / hz / n * 1e6 }' \
			>>"$tmp/small-cpu-$m"
		stop "$m"
	done
done

name() {
	case $1 in
	pool) echo "pool: O_DIRECT READ_FIXED, SEND_ZC fixed" ;;
	malloc) echo "--malloc: buffered READ, SEND" ;;
	sendfile) echo "--sendfile" ;;
	esac
}
echo "| mode | big file MiB/s | server CPU s per GiB |"
echo "|---|---:|---:|"
for m in $modes; do
	echo "| $(name $m) | $(median "$tmp/big-rate-$m") | $(median "$tmp/big-cpu-$m") |"
done
echo
echo "$big_mib MiB file, curl over loopback, one download at a time, median of $rounds."
echo
echo "| mode | 16 KiB file, requests/s | server CPU us per request |"
echo "|---|---:|---:|"
for m in $modes; do
	echo "| $(name $m) | $(median "$tmp/small-rate-$m") | $(median "$tmp/small-cpu-$m") |"
done
echo
echo "wrk -t2 -c64, ${secs}s, median of $rounds; server --threads 2."
echo
if [ "$check" = 1 ]; then
	"$bin/disk_bench" --file "$dir/disk" --size $((16 << 20)) --mib 4 \
		--rounds 1 --depths 1,8 || fail=1
else
	"$bin/disk_bench" --file "$dir/disk" --size $((big_mib << 20)) \
		--rounds "$rounds" || fail=1
fi
exit "$fail"
