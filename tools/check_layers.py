#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Check the layering rule of src/ (docs/design.md, "Layers").

    check_layers.py SRC_DIR

Every header of the library has a layer, from the primitives up to the
pool; a header includes only headers of lower layers, and the tier files
(layers 1 to 4: stack primitive, arena, depot, global tier, per-CPU
caches) include nothing above their own layer, pool.h least of all: each
takes the part of the pool it owns. The layer-5 and -6 files (registry,
reclaim, trim, fork; the pool's own) may use the whole pool. A layer's files are listed in
the order they may include each other (rseq.h builds on percpu.h). A file
this table does not know is an error too, so the table stays true.

Prints each breach and exits 1 if there is one; prints the include graph
by layer with -v.
"""
import os
import re
import sys

# Layer of each header, and the order within a layer.
LAYERS = [
    (0, ["compiler.h", "contract.h", "atomics.h", "plant.h", "cpu.h"]),
    (1, ["istack.h", "transit.h", "arena.h", "budget.h", "frontier.h",
         "colour.h", "sizeclass.h", "report.h"]),
    (2, ["magazine.h", "depot.h", "watch.h", "debug.h"]),
    (3, ["global.h"]),
    (4, ["percpu.h", "rseq.h"]),
    (5, ["rcu.h", "reclaim.h", "trim.h", "release.h", "fork.h"]),
    (6, ["regions.h", "pool.h", "check.h", "dry.h", "stats.h", "verify.h", "leaks.h", "statsprint.h",
         "fastpath.h"]),
    (7, ["heap.h"]),
]

RANK = {}
for layer, names in LAYERS:
    for order, name in enumerate(names):
        RANK[name] = (layer, order)

# A .c file sits at the layer of the header it implements; the ones that
# implement no header of their own are named here.
SOURCES = {
    "freelist.c": "istack.h",
    "istack.c": "istack.h",
    "alloc.c": "pool.h",
    "fastpath_x86_64.c": "fastpath.h",
    "version.c": "pool.h",
    "plant.c": "plant.h",
    "regions.c": "pool.h",
    "region_hooks.c": "regions.h",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def rank_of(path):
    name = os.path.basename(path)
    if name.endswith(".c"):
        name = SOURCES.get(name, name[:-2] + ".h")
    return RANK.get(name)


def main():
    args = [a for a in sys.argv[1:] if a != "-v"]
    verbose = "-v" in sys.argv[1:]
    if len(args) != 1:
        sys.exit(__doc__)
    src = args[0]
    breaches = []
    graph = []
    for name in sorted(os.listdir(src)):
        if not name.endswith((".c", ".h")):
            continue
        mine = rank_of(name)
        if mine is None:
            breaches.append(f"{name}: not in the layer table "
                            "(tools/check_layers.py)")
            continue
        with open(os.path.join(src, name), encoding="utf-8") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            if inc in ("cbm.h", "cbm/inline.h"):
                continue  # the public headers: below every layer
            theirs = RANK.get(inc)
            if theirs is None:
                breaches.append(f"{name}: includes {inc}, not in the table")
                continue
            graph.append((mine, name, theirs, inc))
            if name.endswith(".h") and theirs >= mine:
                breaches.append(f"{name} (layer {mine[0]}) includes {inc} "
                                f"(layer {theirs[0]}): headers include only "
                                "lower layers")
            elif (name.endswith(".c") and mine[0] <= 4 and
                  theirs[0] > mine[0]):
                breaches.append(f"{name} (layer {mine[0]}) includes {inc} "
                                f"(layer {theirs[0]}): the tier files take "
                                "only the part of the pool they own")
    if verbose:
        for mine, name, theirs, inc in sorted(graph):
            print(f"L{mine[0]} {name:12} -> L{theirs[0]} {inc}")
    for b in breaches:
        print(f"layers: {b}")
    if breaches:
        sys.exit(1)
    print(f"layers: OK ({len(graph)} includes, every one downwards)")


if __name__ == "__main__":
    main()
