#!/bin/sh
# SPDX-License-Identifier: MIT
# Plants one result for ./dev test to count (its check of tools/tally.py):
# meson reads exit status 0 as OK, 77 as SKIP, 99 as ERROR, any other as
# FAIL, and a test still running at its timeout as TIMEOUT.
#
#   tally_probe.sh ok|skip|fail|error|timeout
case ${1:-} in
ok) exit 0 ;;
skip) exit 77 ;;
fail) exit 1 ;;
error) exit 99 ;;
timeout) exec sleep 600 ;;
*)
	echo "usage: tally_probe.sh ok|skip|fail|error|timeout" >&2
	exit 1
	;;
esac
