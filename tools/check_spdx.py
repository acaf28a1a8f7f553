#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every source, script and build file carries its licence line.

    check_spdx.py [FILE...]

Without arguments, checks the files git tracks (`git ls-files`). A file is
one of ours to check when it is C or C++ (.c .h .cc), Python, shell, a
linker script (.map), a Meson file, or any file that starts with #!,
outside the fuzzers' corpus (tests/fuzz/corpus/: inputs, not sources). It
passes when one of its first three lines holds
"SPDX-License-Identifier: MIT". Prints each file without one; exits 1 if
there is any.
"""
import os
import subprocess
import sys

LINE = "SPDX-License-Identifier: MIT"
SUFFIXES = (".c", ".h", ".cc", ".py", ".sh", ".map")
NAMES = {"meson.build", "meson_options.txt"}


def ours(path):
    name = os.path.basename(path)
    if "/corpus/" in "/" + path.replace(os.sep, "/"):
        return False
    if name in NAMES or name.endswith(SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def has_line(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return any(LINE in f.readline() for _ in range(3))


def main():
    files = sys.argv[1:]
    if not files:
        files = subprocess.run(["git", "ls-files", "-z"], check=True,
                               capture_output=True,
                               text=True).stdout.split("\0")
        files = [f for f in files if f and os.path.isfile(f)]
    checked = [f for f in files if ours(f)]
    missing = [f for f in checked if not has_line(f)]
    for f in missing:
        print(f"spdx: no '{LINE}' in the first lines of {f}")
    if not checked:
        print("spdx: no file to check")
        return 1
    if not missing:
        print(f"spdx: all {len(checked)} source, script and build files")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
