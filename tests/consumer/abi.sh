#!/bin/sh
# SPDX-License-Identifier: MIT
# The ABI of the built libcbm.so against the dump of the last release of
# its SONAME kept in the tree (abi/libcbm.so.N.abi), with abidiff (abigail-tools): a
# function removed or changed, a type of cbm.h changed in size or layout, a
# symbol version or the SONAME changed, all fail. Functions added are no
# break and pass. A deliberate break is a new SONAME and a new dump: see
# abi/README.md.
#
# --exported-interfaces-only: abidiff 2.2 otherwise misses exported
# functions whose name other files declare first (cbm_pool_stats, so
# cbm_stats). The suppressions leave out struct cbm_pool, which is opaque.
#
#   abi.sh ABIDIFF DUMP LIBCBM_SO SUPPRESSIONS
set -eu
abidiff=$1
dump=$2
lib=$3
suppr=$4
[ -f "$dump" ] || {
	echo "abi: no dump $dump for this SONAME; after a deliberate SONAME"
	echo "abi: bump, write it with ./dev abi-dump (abi/README.md)"
	exit 1
}
status=0
"$abidiff" --exported-interfaces-only --no-added-syms --suppressions "$suppr" \
	"$dump" "$lib" || status=$?
# abidiff's status is a bit set: 1 error, 2 usage, 4 ABI change, 8 an
# incompatible change.
if [ "$status" -ne 0 ]; then
	echo "abi: $lib differs from $dump (abidiff status $status)."
	echo "abi: if the break is meant, see abi/README.md (SONAME bump, ./dev abi-dump)"
	exit 1
fi
echo "abi: $lib keeps the ABI of $dump"
