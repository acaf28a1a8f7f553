#!/bin/sh
# SPDX-License-Identifier: MIT
# The user's own memory checkers see pool buffers, against the library as
# installed (built without any sanitizer, as a distribution ships it):
# misuse.c's planted use after free and write after free, built with the
# user's -fsanitize=address, are ASan reports; the same program, built
# plainly and run under valgrind, gives memcheck errors for them and for a
# buffer whose last pointer it lost. The program without a bug passes
# under both, so the reports are the bugs'.
#
#   checkers.sh MESON SOURCE_ROOT [VALGRIND]
set -eu
meson=$1
src=$2
valgrind=${3:-}
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cbm-checkers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# As installed.sh does; buildtype plain: no sanitizer, no optimizer.
"$meson" setup "$tmp/build" "$src" --prefix="$tmp/prefix" --libdir=lib \
	-Dbuildtype=plain -Db_sanitize=none >"$tmp/setup.log" 2>&1 ||
	{ cat "$tmp/setup.log"; exit 1; }
# The shared library's file carries the project's version.
version=$(sed -n "s/^  version : '\(.*\)',\$/\1/p" "$src/meson.build")
ninja -C "$tmp/build" "src/libcbm.so.$version" src/libcbm.a \
	>"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log"; exit 1; }
"$meson" install -C "$tmp/build" --no-rebuild >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; exit 1; }
lib="$tmp/prefix/lib"
if nm -D "$lib/libcbm.so" | grep -q ' U __asan'; then
	echo "the installed libcbm is itself built with ASan"
	exit 1
fi
export PKG_CONFIG_PATH="$lib/pkgconfig" LD_LIBRARY_PATH="$lib"
here=$(dirname "$0")
status=0

# expect NAME PATTERN RUN...: RUN fails and its output matches PATTERN.
expect() {
	name=$1
	pattern=$2
	shift 2
	if "$@" >"$tmp/out" 2>&1; then
		echo "FAIL: $name: not reported"
		cat "$tmp/out"
		status=1
	elif grep -q "$pattern" "$tmp/out"; then
		echo "ok: $name: reported ($pattern)"
	else
		echo "FAIL: $name: failed without '$pattern'"
		cat "$tmp/out"
		status=1
	fi
}

# expect_clean NAME RUN...
expect_clean() {
	name=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		echo "ok: $name: clean"
	else
		echo "FAIL: $name"
		cat "$tmp/out"
		status=1
	fi
}

# shellcheck disable=SC2046
$cc -g -fsanitize=address -o "$tmp/misuse-asan" "$here/misuse.c" \
	$(pkg-config --cflags --libs cbm)
export ASAN_OPTIONS=detect_leaks=0
expect_clean "asan clean" "$tmp/misuse-asan" clean
expect "asan use-after-free" "use-after-poison.*" \
	"$tmp/misuse-asan" use-after-free
expect "asan write-after-free" "WRITE of size 1" \
	"$tmp/misuse-asan" write-after-free

if [ -n "$valgrind" ]; then
	# shellcheck disable=SC2046
	$cc -g -o "$tmp/misuse" "$here/misuse.c" \
		$(pkg-config --cflags --libs cbm)
	vg="$valgrind -q --error-exitcode=1"
	expect_clean "memcheck clean" $vg "$tmp/misuse" clean
	expect "memcheck use-after-free" "Invalid read of size 1" \
		$vg "$tmp/misuse" use-after-free
	expect "memcheck write-after-free" "Invalid write of size 1" \
		$vg "$tmp/misuse" write-after-free
	expect "memcheck leak" "definitely lost in loss record" \
		$vg --leak-check=full --errors-for-leak-kinds=definite \
		"$tmp/misuse" leak
else
	echo "valgrind not found: memcheck checks skipped"
fi
exit $status
