#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Count one `meson test` run from its own JSON log.

    tally.py LOG STATUS

LOG is the run's JSON log (`meson test --logbase NAME` writes
meson-logs/NAME.json, or NAME-SETUP.json with --setup), removed by the
caller before the run; STATUS is meson's exit status. Prints "PASSED
FAILED" and always exits 0, so that the caller's count is this line.

A result passes if it is OK, SKIP or EXPECTEDFAIL; any other (FAIL,
TIMEOUT, ERROR, UNEXPECTEDPASS, INTERRUPT, or one this script has never
heard of) is a failure. So is the run itself, once, when its log is
missing, unreadable or holds no result (meson ran nothing: a suite or
setup that does not exist), and when meson exited non-zero although no
result in the log failed (meson could not run what it had to).
"""
import json
import sys

PASSING = {"OK", "SKIP", "EXPECTEDFAIL"}


def count(log, status):
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            results = [json.loads(line)["result"] for line in f if line.strip()]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"tally: {log}: no results ({e})", file=sys.stderr)
        return 0, 1
    if not results:
        print(f"tally: {log}: no results", file=sys.stderr)
        return 0, 1
    passed = sum(1 for r in results if r in PASSING)
    failed = len(results) - passed
    if status != 0 and failed == 0:
        print(f"tally: {log}: meson exited {status} with no failed result",
              file=sys.stderr)
        failed = 1
    return passed, failed


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        status = int(sys.argv[2])
    except ValueError:
        status = 1
    print(*count(sys.argv[1], status))


if __name__ == "__main__":
    main()
