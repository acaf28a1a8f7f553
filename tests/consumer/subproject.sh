#!/bin/sh
# SPDX-License-Identifier: MIT
# cbm as a Meson subproject: a tiny project with this source tree in its
# subprojects/ (a symbolic link) gets cbm through dependency('cbm'), which
# cbm provides with meson.override_dependency, and builds and runs
# consumer.c. Cleans up after itself.
#
#   subproject.sh MESON SOURCE_ROOT
set -eu
meson=$1
src=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cbm-subproject.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

mkdir "$tmp/app" "$tmp/app/subprojects"
ln -s "$src" "$tmp/app/subprojects/cbm"
cp "$here/consumer.c" "$tmp/app/"
cat >"$tmp/app/meson.build" <<'MESON'
project('app', 'c', default_options : ['c_std=c11', 'buildtype=plain'])
cbm_dep = dependency('cbm', fallback : 'cbm')
executable('app', 'consumer.c', dependencies : cbm_dep)
MESON

# Always the subproject, even where a cbm is installed on the system.
"$meson" setup "$tmp/build" "$tmp/app" --force-fallback-for=cbm \
	>"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log"; exit 1; }
grep -q "Executing subproject cbm" "$tmp/setup.log" ||
	{ cat "$tmp/setup.log"; echo "cbm was not taken as a subproject"; exit 1; }
ninja -C "$tmp/build" >"$tmp/build.log" 2>&1 ||
	{ cat "$tmp/build.log"; exit 1; }
"$tmp/build/app"
echo "subproject: dependency('cbm') builds and links"
