#!/bin/sh
# SPDX-License-Identifier: MIT
# cbm as a user gets it from `meson install`: configure the source tree into
# a temporary build directory with a temporary prefix, build and install
# only the library, then build consumer.c with pkg-config, against the
# shared library, against the static one (which needs cbm.pc's
# Libs.private) and as a fully static program, and run all three. Checks
# that pkg-config gives consumers cbm's include path alone. Cleans up after
# itself.
#
#   installed.sh MESON SOURCE_ROOT
set -eu
meson=$1
src=$2
cc=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cbm-installed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# buildtype plain: no optimizer, the whole test takes about a second.
"$meson" setup "$tmp/build" "$src" --prefix="$tmp/prefix" --libdir=lib \
	-Dbuildtype=plain >"$tmp/setup.log" 2>&1 ||
	{ cat "$tmp/setup.log"; exit 1; }
ninja -C "$tmp/build" src/libcbm.so.0.3.0 src/libcbm.a >"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log"; exit 1; }
"$meson" install -C "$tmp/build" --no-rebuild >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; exit 1; }

lib="$tmp/prefix/lib"
for f in include/cbm.h include/cbm/inline.h lib/libcbm.so lib/libcbm.so.1 \
	lib/libcbm.a \
	lib/pkgconfig/cbm.pc; do
	[ -e "$tmp/prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
# The SONAME carries the ABI version.
soname=$(readelf -d "$lib/libcbm.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libcbm.so.1" ] || { echo "SONAME is '$soname'"; exit 1; }

export PKG_CONFIG_PATH="$lib/pkgconfig"
# Consumers see cbm's include directory and nothing else (no ck or liburcu
# flags: cbm.h needs neither), static link or not.
for how in "" --static; do
	# shellcheck disable=SC2086
	cflags=$(echo $(pkg-config $how --cflags cbm))
	[ "$cflags" = "-I$tmp/prefix/include" ] ||
		{ echo "pkg-config $how --cflags cbm says '$cflags'"; exit 1; }
done
here=$(dirname "$0")
warn="-std=c11 -Wall -Wextra -Wpedantic -Werror"

# Shared: exactly the line the README gives.
# shellcheck disable=SC2046
$cc $warn -o "$tmp/consumer" "$here/consumer.c" \
	$(pkg-config --cflags --libs cbm)
LD_LIBRARY_PATH="$lib" "$tmp/consumer"
# The same program with the inline fast path (cbm/inline.h).
# shellcheck disable=SC2046
$cc $warn -DCBM_INLINE=1 -o "$tmp/consumer-inline" "$here/consumer.c" \
	$(pkg-config --cflags --libs cbm)
LD_LIBRARY_PATH="$lib" "$tmp/consumer-inline"

# Static: libcbm.a, and whatever cbm.pc says a static link needs. The
# shared -lcbm that pkg-config also prints is left unused (--as-needed).
# shellcheck disable=SC2046
$cc $warn -o "$tmp/consumer-static" "$here/consumer.c" \
	$(pkg-config --cflags cbm) -Wl,--as-needed \
	-L"$lib" -Wl,-Bstatic -lcbm -Wl,-Bdynamic \
	$(pkg-config --static --libs cbm)
if readelf -d "$tmp/consumer-static" | grep -q 'NEEDED.*libcbm'; then
	echo "the static consumer still needs libcbm.so"
	exit 1
fi
"$tmp/consumer-static"

# Fully static: libcbm.a, liburcu's and ck's archives, static glibc;
# exactly the line the README gives.
# shellcheck disable=SC2046
$cc $warn -static -o "$tmp/consumer-full-static" "$here/consumer.c" \
	$(pkg-config --cflags --static --libs cbm)
if readelf -d "$tmp/consumer-full-static" 2>/dev/null | grep -q NEEDED; then
	echo "the fully static consumer still needs a shared library:"
	readelf -d "$tmp/consumer-full-static" | grep NEEDED
	exit 1
fi
"$tmp/consumer-full-static"
echo "installed: pkg-config builds against the shared and the static" \
	"library, fully static, and with CBM_INLINE"
