#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shared library exports exactly the functions cbm.h declares CBM_API,
each with a symbol version of src/cbm.map (CBM_MAJOR.MINOR).

    exports.py NM LIBCBM_SO CBM_H

Reads the header (comments and preprocessor lines dropped, each
declaration up to its ';'), and the library's dynamic symbol table
(NM -D --defined-only), and compares the two sets both ways.
"""
import re
import subprocess
import sys

# Defined by the linker in every shared object, not by cbm; older binutils
# list them in the dynamic symbol table.
LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}


def declared(header):
    text = open(header, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#.*?(?<!\\)$", " ", text, flags=re.M | re.S)
    names = set()
    for decl in text.split(";"):
        if not re.search(r"\bCBM_API\b", decl):
            continue
        m = re.search(r"(\w+)\s*\(", decl)
        if not m:
            sys.exit(f"exports: cannot read a declaration: {decl.strip()}")
        names.add(m.group(1))
    return names


VERSION = re.compile(r"CBM_\d+\.\d+")


def exported(nm, lib):
    """{name: (nm type, default version or None)}, and the version nodes."""
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    names = {}
    nodes = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue
        name, _, version = fields[2].partition("@@")
        if fields[1] == "A" and VERSION.fullmatch(name):
            nodes.add(name)  # a version definition, not a symbol
            continue
        names[name] = (fields[1], version if version else None)
    return names, nodes


def main():
    nm, lib, header = sys.argv[1:4]
    api = declared(header)
    syms, nodes = exported(nm, lib)
    for s in LINKER_SYMBOLS:
        syms.pop(s, None)
    ok = True
    if len(api) < 10:
        print(f"exports: only {len(api)} CBM_API declarations in {header}")
        ok = False
    extra = sorted(set(syms) - api)
    missing = sorted(api - set(syms))
    not_code = sorted(s for s in api & set(syms)
                      if syms[s][0] not in {"T", "W", "i"})
    unversioned = sorted(s for s in api & set(syms)
                         if syms[s][1] is None
                         or not VERSION.fullmatch(syms[s][1]))
    if not nodes:
        print("exports: no CBM_ symbol version defined (src/cbm.map)")
        ok = False
    if unversioned:
        print("exports: without a CBM_ symbol version:", " ".join(unversioned))
        ok = False
    if extra:
        print("exports: exported but not in cbm.h:", " ".join(extra))
        ok = False
    if missing:
        print("exports: in cbm.h but not exported:", " ".join(missing))
        ok = False
    if not_code:
        print("exports: exported, but not as functions:", " ".join(not_code))
        ok = False
    if ok:
        print(f"exports: the {len(api)} functions of cbm.h, nothing else,"
              f" versioned {' '.join(sorted(nodes))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
