#!/bin/sh
# SPDX-License-Identifier: MIT
# cbm.h compiles cleanly in every standard a consumer may use: header.c as
# C89 (gnu89 too), C99 and C11, and as C++98 and C++17, with -Wall -Wextra
# -pedantic -Werror, by each compiler given (gcc and g++, clang and
# clang++ where present); each once more with CBM_INLINE (which below C99
# and C++11 leaves the calls exported).
#
#   header.sh INCLUDE_DIR CC CXX [CC CXX...]
set -eu
inc=$1
shift
here=$(dirname "$0")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cbm-header.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
flags="-Wall -Wextra -pedantic -Werror -I$inc -c"
n=0
bad=0
while [ $# -ge 2 ]; do
	cc=$1
	cxx=$2
	shift 2
	for inline in "" -DCBM_INLINE=1; do
		for std in c89 gnu89 c99 c11; do
			n=$((n + 1))
			$cc -std=$std $flags $inline -o "$tmp/h.o" \
				"$here/header.c" || {
				echo "header: $cc -std=$std $inline fails"
				bad=$((bad + 1))
			}
		done
		for std in c++98 c++17; do
			n=$((n + 1))
			$cxx -x c++ -std=$std $flags $inline -o "$tmp/h.o" \
				"$here/header.c" || {
				echo "header: $cxx -std=$std $inline fails"
				bad=$((bad + 1))
			}
		done
	done
done
[ "$bad" -eq 0 ] || exit 1
echo "header: cbm.h compiles in all $n compiler and standard pairs"
