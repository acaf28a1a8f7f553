#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Run the mixed-size benchmarks, cbm_heap against every malloc, and report.

    mixed.py BUILD_DIR OUT_DIR [--full | --smoke]

The binaries are BUILD_DIR/bench/mixed_PEER (mixed.h): cbm_heap, and
glibc, jemalloc, mimalloc and tcmalloc calling malloc/free, each asked for
the same sizes in the same order (mixed_sizes.h). They run as run.py runs
the single-size suite, in the same modes: workload by workload, every
allocator's binary in turn, each in a process of its own (its RSS is its
own), the full mode several rounds in alternating order.

Writes OUT_DIR/mixed/json/WORKLOAD-PEER-rROUND.json and OUT_DIR/mixed/log/,
then OUT_DIR/mixed.md (also printed): per workload and thread count,
cbm_heap's items/s over each malloc's and over the best malloc's (the
fastest in that round), the resident memory each process held at the end
of the run, with cbm_heap's over the lowest malloc's, and every
allocator's items/s. Numbers are
report.py's: medians over each round's repetitions, ratios paired within a
round, then the median over the rounds; marks as in report.py.
"""
import os
import re
import statistics
import sys

# run and report are imported from the source tree, which should stay
# clean.
sys.dont_write_bytecode = True
import report  # noqa: E402
import run  # noqa: E402

SUBJECT = "cbm_heap"
MALLOCS = ["glibc", "jemalloc", "mimalloc", "tcmalloc"]
WORKLOADS = ["pair", "depth32", "depth512", "pc"]
DESCRIBE = {
    "pair": "alloc+free, one buffer at a time",
    "depth32": "32 allocs then 32 frees",
    "depth512": "512 allocs then 512 frees",
    "pc": "one thread allocates, its partner frees",
}
# What issue 15 asks of cbm_heap in every cell.
TARGET_SPEED = 1.5
TARGET_RSS = 1.25
NAME = re.compile(r"^(?P<workload>[^/]+)/(?P<peer>[^/]+)/mixed"
                  r"/(?:manual_time|real_time)/threads:(?P<threads>\d+)$")
MiB = 1 << 20


def mixed_key(run_name):
    """(workload, peer, threads) of a mixed-size run's name, or None."""
    m = NAME.match(run_name)
    if m is None:
        return None
    return (m["workload"], m["peer"], int(m["threads"]))


def measure(build, out, mode_name):
    """Every workload of every allocator built, round by round: the names
    of the runs that failed."""
    json_dir = os.path.join(out, "mixed", "json")
    log_dir = os.path.join(out, "mixed", "log")
    run.empty_dirs(json_dir, log_dir)
    binaries = run.find_binaries(build, "mixed_", [SUBJECT] + MALLOCS,
                                 SUBJECT, "mixed")
    failed = run.run_rounds("mixed", mode_name, binaries, WORKLOADS,
                            json_dir, log_dir)
    return json_dir, failed


def best_ratio(mine, theirs):
    """cbm_heap's items/s over the fastest malloc's, paired by round:
    (median over the rounds, noisy?), or None when no round has both."""
    ratios, noisy = [], False
    for c in mine:
        rivals = [r for rounds in theirs for r in rounds
                  if r.round == c.round and r.items_per_second > 0]
        if not rivals:
            continue
        best = max(rivals, key=lambda r: r.items_per_second)
        ratios.append(c.items_per_second / best.items_per_second)
        noisy |= any(x.cv is not None and x.cv > report.NOISY
                     for x in (c, best))
    if not ratios:
        return None
    mean = statistics.fmean(ratios)
    noisy |= len(ratios) > 1 and \
        statistics.pstdev(ratios) / mean > report.NOISY
    return statistics.median(ratios), noisy


def ratio_cell(r, cut):
    if r is None:
        return "-"
    ratio, noisy = r
    return ("!" if cut else "") + ("~" if noisy else "") + f"{ratio:.2f}x"


def tables(runs, cells, contexts):
    ctx, cpus = report.machine(contexts)
    mallocs = [p for p in MALLOCS if any(k[1] == p for k in cells)]
    keys = sorted({(w, t) for (w, p, t) in cells
                   if p == SUBJECT and w in WORKLOADS},
                  key=lambda k: (WORKLOADS.index(k[0]), k[1]))
    out = [f"Mixed sizes ({ctx.get('sizes', '?')}; mean "
           f"{ctx.get('mean_size', '?')} B, the same sizes in the same "
           f"order for every allocator; the first 64 bytes of every buffer "
           f"written). {SUBJECT}: cbm_heap_alloc/cbm_heap_free on one "
           f"default heap shared by the threads; the others: malloc/free. "
           f"{SUBJECT} / peer: {SUBJECT}'s items/s over the peer's, paired "
           f"within rounds; best: over the fastest malloc of each round. "
           f"Medians over {report.how_many(cells)}, every allocator in one "
           f"run, {ctx.get('date', '')} on {ctx.get('host_name', '?')} "
           f"({cpus} CPUs available; rows with more threads are "
           f"oversubscribed). Marks as in table.md: ~ noisy, ! cut at the "
           f"time limit, - not measured. Target (issue 15): "
           f"{TARGET_SPEED}x the best malloc in every cell.",
           "",
           f"| workload | threads | {SUBJECT} Mitems/s | "
           + "".join(f"/ {p} | " for p in mallocs) + "/ best malloc |",
           "|---|---|---:|" + "---:|" * (len(mallocs) + 1)]
    met, speed_cells = 0, 0
    for w, t in keys:
        mine = cells[(w, SUBJECT, t)]
        row = [w, report.threads_label(t, cpus),
               report.marks(mine) + report.mega(mine.items_per_second)]
        theirs = []
        for p in mallocs:
            if (w, p, t) not in cells:
                row.append("-")
                continue
            theirs.append(runs[(w, p, t)])
            row.append(ratio_cell(
                report.paired_ratio(runs[(w, SUBJECT, t)], runs[(w, p, t)]),
                mine.cut or cells[(w, p, t)].cut))
        best = best_ratio(runs[(w, SUBJECT, t)], theirs)
        cut = mine.cut or any(cells[(w, p, t)].cut for p in mallocs
                              if (w, p, t) in cells)
        row.append(ratio_cell(best, cut))
        if best is not None:
            speed_cells += 1
            met += best[0] >= TARGET_SPEED
        out.append("| " + " | ".join(row) + " |")

    out += ["",
            f"Resident memory (MiB) of each allocator's process at the end "
            f"of the run, every buffer given back (/proc/self/statm; the "
            f"workload's earlier runs in the same process included), and "
            f"{SUBJECT}'s over the lowest malloc's. Target (issue 15): at "
            f"most {TARGET_RSS}x.",
            "",
            f"| workload | threads | {SUBJECT} | "
            + "".join(f"{p} | " for p in mallocs) + f"{SUBJECT} / lowest |",
            "|---|---|---:|" + "---:|" * (len(mallocs) + 1)]
    rss_met, rss_cells = 0, 0
    for w, t in keys:
        mine = cells[(w, SUBJECT, t)].rss
        row = [w, report.threads_label(t, cpus),
               "-" if mine is None else f"{mine / MiB:.1f}"]
        theirs = []
        for p in mallocs:
            c = cells.get((w, p, t))
            if c is None or c.rss is None:
                row.append("-")
                continue
            theirs.append(c.rss)
            row.append(f"{c.rss / MiB:.1f}")
        if mine is None or not theirs:
            row.append("-")
        else:
            ratio = mine / min(theirs)
            rss_cells += 1
            rss_met += ratio <= TARGET_RSS
            row.append(f"{ratio:.2f}x")
        out.append("| " + " | ".join(row) + " |")
    out += ["",
            "Median items/s in millions, all threads together, every "
            "allocator:",
            "",
            "| workload | threads | " + " | ".join([SUBJECT] + mallocs)
            + " |",
            "|---|---|" + "---:|" * (len(mallocs) + 1)]
    for w, t in keys:
        row = [w, report.threads_label(t, cpus)]
        for p in [SUBJECT] + mallocs:
            c = cells.get((w, p, t))
            row.append("-" if c is None else
                       report.marks(c) + report.mega(c.items_per_second))
        out.append("| " + " | ".join(row) + " |")
    out += ["",
            f"Targets met: speed in {met} of {speed_cells} cells, RSS in "
            f"{rss_met} of {rss_cells}."]
    return "\n".join(out) + "\n"


def write_report(json_dir, out_dir):
    runs, cells, contexts = report.load(json_dir, mixed_key)
    if not any(k[1] == SUBJECT for k in cells):
        sys.exit(f"mixed: no {SUBJECT} results in {json_dir}")
    # Every run reports its RSS (mixed.h): a table without it would hide
    # half of what it is for.
    missing = sorted("/".join(map(str, k)) for k, c in cells.items()
                     if c.rss is None)
    if missing:
        sys.exit("mixed: runs without rss_bytes: " + " ".join(missing))
    text = tables(runs, cells, contexts)
    with open(os.path.join(out_dir, "mixed.md"), "w") as f:
        f.write(text)
    return text


def main():
    args = run.arguments(__doc__).parse_args()

    json_dir, failed = measure(args.build, args.out, args.mode)
    text = write_report(json_dir, args.out)
    print()
    print(text)
    if failed:
        sys.exit("mixed: failed: " + " ".join(failed))


if __name__ == "__main__":
    main()
