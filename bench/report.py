#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turn the Google Benchmark JSON of all peers into a table and a plot.

    report.py JSON_DIR OUT_DIR

Writes OUT_DIR/table.md (cbm / peer ratios, and cbm's retire numbers),
OUT_DIR/absolute.md (every peer's items/s, aggregate and per thread) and
OUT_DIR/bench.png (aggregate items/s against threads, one line per peer),
and prints table.md.

Each number is the median over the rounds of run.py of the median over
each round's repetitions (Google Benchmark's "median" aggregate); a run
with one repetition has no aggregates, and its single result stands in. A
ratio is paired: cbm's median over the peer's within each round, whose
peers ran minutes apart at most, then the median of those over the rounds.
The load that other jobs put on a shared machine comes and goes between
rounds; pairing keeps it from setting one round's cbm against another
round's peer.

A ratio is marked ~ when it is noisy: a coefficient of variation above
NOISY within either side's repetitions in a round, or across the rounds'
ratios; an absolute number, when its own repetitions or rounds vary that
much. Read those as rough. A number is marked ! when a repetition of either
side stalled past its time limit and was cut (run_clock.h): that side's
rate is what it achieved until then.
"""
import collections
import glob
import itertools
import json
import os
import re
import statistics
import sys

PEERS = ["cbm", "glibc", "jemalloc", "mimalloc", "tcmalloc", "dpdk", "mutex",
         "cbm_exact", "cbm_trusted", "cbm_inline"]
# cbm's variants, columns of the main table: cbm_exact, its pools with
# CBM_POOL_EXACT_STRIDE (cbm / cbm_exact: what cache colouring gains);
# cbm_trusted, with CBM_POOL_TRUST_BULK_FREES, on the bulk workloads only
# (cbm / cbm_trusted: what checking the freed pointers costs), also the
# subject of a table of its own; cbm_inline, its calls inline (CBM_INLINE),
# on every workload but the bulk ones, with a table of its own too.
TRUSTED = "cbm_trusted"
INLINE = "cbm_inline"
UNTOUCHED = ["pair", "depth32", "depth512", "bulk32", "pc"]
# Each also with every buffer's first cache line written when it is got
# (harness.h, touched<P>).
WORKLOADS = UNTOUCHED + [w + "-touched" for w in UNTOUCHED]
DESCRIBE = {
    "pair": "alloc+free, one buffer at a time",
    "depth32": "32 allocs then 32 frees",
    "depth512": "512 allocs then 512 frees",
    "bulk32": "bulk alloc/free of 32",
    "pc": "one thread allocates, its partner frees",
    "retire": "alloc + cbm_retire",
}
DESCRIBE.update({w + "-touched": DESCRIBE[w] + ", first line written"
                 for w in UNTOUCHED})
NOISY = 0.10
NAME = re.compile(r"^(?P<workload>[^/]+)/(?P<peer>[^/]+)/size:(?P<size>\d+)"
                  r"/(?:manual_time|real_time)/threads:(?P<threads>\d+)$")

# rss: resident bytes at the end of the run, where the binary reports them
# (mixed.h), else None.
Cell = collections.namedtuple(
    "Cell",
    "items_per_second per_thread cv cut label buffers_per_grace reps rounds "
    "round rss")
ROUND = re.compile(r"-r(\d+)\.json$")


def size_key(run_name):
    """(workload, peer, size, threads) of a run's name, or None."""
    m = NAME.match(run_name)
    if m is None:
        return None
    return (m["workload"], m["peer"], int(m["size"]), int(m["threads"]))


def read_runs(json_dir, key_of=size_key):
    """One Cell per (key, JSON file), and the files' contexts; key_of
    turns a run's name into its key (None: not ours)."""
    runs = collections.defaultdict(list)
    contexts = []
    for path in sorted(glob.glob(os.path.join(json_dir, "*.json"))):
        with open(path) as f:
            try:
                doc = json.load(f)
            except json.JSONDecodeError:
                print(f"report: {path}: not JSON, ignored", file=sys.stderr)
                continue
        contexts.append(doc.get("context", {}))
        m = ROUND.search(path)
        rnd = int(m[1]) if m else 1
        found, cvs, cuts = {}, {}, {}
        for b in doc.get("benchmarks", []):
            key = key_of(b.get("run_name", b.get("name", "")))
            if key is None or b.get("error_occurred"):
                continue
            kind = b.get("aggregate_name", "")
            if kind == "cv":
                cvs[key] = b.get("items_per_second", 0.0)
                continue
            if kind in ("mean", ""):
                cuts[key] = b.get("cut", 0.0) > 0
            if b.get("run_type") == "aggregate" and kind != "median":
                continue
            # A median beats the single result of a one-repetition run.
            if kind != "median" and key in found:
                continue
            found[key] = Cell(b["items_per_second"],
                              b.get("items_per_thread", 0.0), None, False,
                              b.get("label", ""),
                              b.get("buffers_per_grace"),
                              b.get("repetitions", 1), 1, rnd,
                              b.get("rss_bytes"))
        for key, c in found.items():
            runs[key].append(c._replace(cv=cvs.get(key),
                                        cut=cuts.get(key, False)))
    return runs, contexts


def combine(rounds):
    """One Cell from a key's rounds: medians, the worst noise, any cut."""
    ips = [c.items_per_second for c in rounds]
    cvs = [c.cv for c in rounds if c.cv is not None]
    if len(ips) > 1 and statistics.fmean(ips) > 0:
        cvs.append(statistics.pstdev(ips) / statistics.fmean(ips))
    bpg = [c.buffers_per_grace for c in rounds
           if c.buffers_per_grace is not None]
    rss = [c.rss for c in rounds if c.rss is not None]
    return Cell(statistics.median(ips),
                statistics.median(c.per_thread for c in rounds),
                max(cvs) if cvs else None,
                any(c.cut for c in rounds),
                rounds[0].label,
                statistics.median(bpg) if bpg else None,
                max(c.reps for c in rounds), len(rounds), None,
                statistics.median(rss) if rss else None)


def load(json_dir, key_of=size_key):
    """({key: [Cell per round]}, {key: combined Cell}, contexts), where a
    key is key_of's, by default (workload, peer, size, threads)."""
    runs, contexts = read_runs(json_dir, key_of)
    return runs, {k: combine(v) for k, v in runs.items()}, contexts


def paired_ratio(mine, theirs):
    """cbm's over the peer's, paired by round: (median over the rounds,
    noisy?), or None when they share no round."""
    by_round = {c.round: c for c in theirs}
    ratios, noisy = [], False
    for c in mine:
        other = by_round.get(c.round)
        if other is None or other.items_per_second <= 0:
            continue
        ratios.append(c.items_per_second / other.items_per_second)
        noisy |= any(x.cv is not None and x.cv > NOISY for x in (c, other))
    if not ratios:
        return None
    mean = statistics.fmean(ratios)
    noisy |= len(ratios) > 1 and statistics.pstdev(ratios) / mean > NOISY
    return statistics.median(ratios), noisy


def threads_label(threads, cpus):
    return f"{threads} (oversubscribed)" if threads > cpus else str(threads)


def marks(*cells):
    """! for a cut run, ~ for a noisy one."""
    m = "!" if any(c.cut for c in cells) else ""
    if any(c.cv is not None and c.cv > NOISY for c in cells):
        m += "~"
    return m


def mega(x):
    return f"{x / 1e6:.1f}"


def how_many(cells):
    """"R round(s) of K repetition(s)", from the most measured cell."""
    rounds = max((c.rounds for c in cells.values()), default=1)
    reps = max((c.reps for c in cells.values()), default=1)
    return f"{rounds} round(s) of {reps} repetition(s)"


def machine(contexts):
    """The first run's context (its date is the run's), and the CPUs."""
    c = min(contexts, key=lambda c: c.get("date", ""), default={})
    cpus = int(c.get("cpus_available", c.get("num_cpus", 1)))
    return c, cpus


def ratio_table(runs, cells, contexts, subject="cbm"):
    """subject's items/s over each other peer's, per workload, size and
    threads that subject ran."""
    ctx, cpus = machine(contexts)
    # The peers that ran a cell the subject ran.
    ran = {(w, s, t) for (w, p, s, t) in cells if p == subject}
    peers = [p for p in PEERS if p != subject and any(
        k[1] == p and (k[0], k[2], k[3]) in ran for k in cells)]
    out = []
    out.append(f"{subject} / peer: {subject}'s items/s divided by the "
               f"peer's, same "
               f"workload, size and threads, paired within rounds; above 1 "
               f"{subject} is faster. "
               f"Medians over {how_many(cells)} (report.py), all peers in "
               f"one run, "
               f"{ctx.get('date', '')} on {ctx.get('host_name', '?')} "
               f"({cpus} CPUs available; rows with more threads are "
               f"oversubscribed). ~: noisy (a coefficient of variation "
               f"above {NOISY:.0%} in either side's repetitions, or in the "
               f"ratio across rounds). "
               f"!: a repetition of {subject}'s or the peer's stalled and "
               f"was cut "
               f"at its time limit; the rate is what it achieved until "
               f"then. -: not measured.")
    out.append("")
    out.append(f"| workload | size | threads | {subject} Mitems/s | "
               + " | ".join(f"/ {p}" for p in peers) + " |")
    out.append("|---|---:|---|---:|" + "---:|" * len(peers))
    keys = sorted({(w, s, t) for (w, p, s, t) in cells
                   if p == subject and w in WORKLOADS},
                  key=lambda k: (WORKLOADS.index(k[0]), k[1], k[2]))
    for w, s, t in keys:
        mine = cells[(w, subject, s, t)]
        row = [w, str(s), threads_label(t, cpus),
               marks(mine) + mega(mine.items_per_second)]
        for p in peers:
            theirs = cells.get((w, p, s, t))
            r = None
            if theirs is not None:
                r = paired_ratio(runs[(w, subject, s, t)],
                                 runs[(w, p, s, t)])
            if r is None:
                row.append("-")
                continue
            ratio, noisy = r
            mark = ("!" if mine.cut or theirs.cut else "") + \
                ("~" if noisy else "")
            row.append(f"{mark}{ratio:.2f}x")
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def retire_table(cells, contexts):
    """cbm's retire runs (the peers have no deferred free), or ""."""
    _, cpus = machine(contexts)
    retire = sorted((t, c) for (w, p, s, t), c in cells.items()
                    if w == "retire" and p == "cbm")
    if not retire:
        return ""
    size = next(s for (w, p, s, t) in cells if w == "retire")
    out = ["", f"retire ({DESCRIBE['retire']}, {size} B; cbm only: the "
           f"peers have no deferred free):", "",
           "| threads | Mretired/s | per thread | buffers per grace period |",
           "|---|---:|---:|---:|"]
    for t, c in retire:
        bpg = c.buffers_per_grace
        out.append(f"| {threads_label(t, cpus)} | "
                   f"{marks(c)}{mega(c.items_per_second)}"
                   f" | {mega(c.per_thread)} | "
                   f"{'-' if bpg is None else f'{bpg:.0f}'} |")
    return "\n".join(out) + "\n"


def absolute_table(cells, contexts):
    _, cpus = machine(contexts)
    peers = [p for p in PEERS if any(k[1] == p for k in cells)]
    out = ["Median items/s in millions: aggregate (per thread); marks as "
           "in table.md.", ""]
    out.append("| workload | size | threads | " + " | ".join(peers) + " |")
    out.append("|---|---:|---|" + "---:|" * len(peers))
    keys = sorted({(w, s, t) for (w, p, s, t) in cells},
                  key=lambda k: ((WORKLOADS + ["retire"]).index(k[0]),
                                 k[1], k[2]))
    for w, s, t in keys:
        row = [w, str(s), threads_label(t, cpus)]
        for p in peers:
            c = cells.get((w, p, s, t))
            row.append("-" if c is None else
                       f"{marks(c)}{mega(c.items_per_second)} "
                       f"({mega(c.per_thread)})")
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def plot(cells, contexts, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ctx, cpus = machine(contexts)
    sizes = sorted({s for (w, p, s, t) in cells if w in WORKLOADS})
    rows = WORKLOADS + (["retire"] if any(k[0] == "retire" for k in cells)
                        else [])
    fig, axes = plt.subplots(len(rows), len(sizes),
                             figsize=(5 * len(sizes), 3.4 * len(rows)),
                             squeeze=False)
    colors = dict(zip(PEERS, itertools.cycle(
        plt.rcParams["axes.prop_cycle"].by_key()["color"])))
    for i, w in enumerate(rows):
        for j, s in enumerate(sizes):
            ax = axes[i][j]
            drawn = False
            for p in PEERS:
                pts = sorted((t, c.items_per_second / 1e6)
                             for (w2, p2, s2, t), c in cells.items()
                             if (w2, p2, s2) == (w, p, s))
                if not pts:
                    continue
                ax.plot([t for t, _ in pts], [v for _, v in pts],
                        marker="o", label=p, color=colors[p],
                        linewidth=2.5 if p == "cbm" else 1.2)
                drawn = True
            if not drawn:
                ax.set_visible(False)
                continue
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            # Plain numbers at 1, 2 and 5 per decade: throughputs span
            # decades, and 10^2 alone is hard to read off.
            ax.yaxis.set_major_locator(LogLocator(10, subs=(1, 2, 5)))
            ax.yaxis.set_major_formatter(FuncFormatter(
                lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ts = sorted({t for (w2, p2, s2, t) in cells
                         if (w2, s2) == (w, s)})
            ax.set_xticks(ts)
            ax.set_xticklabels([str(t) for t in ts])
            lo, hi = ax.get_xlim()
            over = [t for t in ts if t > cpus]
            if over:
                # From halfway (on the log axis) past the CPU count.
                edge = (max(cpus, lo) * over[0]) ** 0.5
                ax.axvspan(edge, hi, color="0.9", zorder=0)
                ax.text(0.98, 0.03, "oversubscribed", ha="right",
                        transform=ax.transAxes, fontsize=8, color="0.4")
            ax.set_xlim(lo, hi)
            ax.set_title(f"{w} ({DESCRIBE[w]}), {s} B", fontsize=9)
            ax.set_xlabel("threads", fontsize=8)
            ax.set_ylabel("Mitems/s, all threads", fontsize=8)
            ax.grid(True, which="both", alpha=0.3)
            ax.tick_params(labelsize=8)
    handles, labels = [], []
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="upper center", ncol=len(labels),
               bbox_to_anchor=(0.5, 0.995))
    fig.suptitle(f"Aggregate throughput against threads, medians over "
                 f"{how_many(cells)}; {ctx.get('host_name', '?')}, {cpus} "
                 f"CPUs,"
                 f" {ctx.get('date', '')[:10]}", y=0.975, fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(json_dir, out_dir):
    runs, cells, contexts = load(json_dir)
    if not any(k[1] == "cbm" for k in cells):
        sys.exit(f"report: no cbm results in {json_dir}")
    table = ratio_table(runs, cells, contexts) + retire_table(cells,
                                                               contexts)
    if any(k[1] == TRUSTED for k in cells):
        table += ("\nThe same pools made with CBM_POOL_TRUST_BULK_FREES "
                  "(cbm.h: bulk frees unchecked, as DPDK's are), bulk32 "
                  "only:\n\n" + ratio_table(runs, cells, contexts, TRUSTED))
    if any(k[1] == INLINE for k in cells):
        table += ("\nThe same pools, their calls inline (CBM_INLINE, "
                  "cbm/inline.h), as DPDK's are; the bulk calls are the "
                  "same inline or not:\n\n"
                  + ratio_table(runs, cells, contexts, INLINE))
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(table)
    with open(os.path.join(out_dir, "absolute.md"), "w") as f:
        f.write(absolute_table(cells, contexts))
    try:
        plot(cells, contexts, os.path.join(out_dir, "bench.png"))
    except ImportError:
        print("report: matplotlib missing (python3-matplotlib): no plot",
              file=sys.stderr)
    return table


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} JSON_DIR OUT_DIR")
    print(write_report(sys.argv[1], sys.argv[2]), end="")


if __name__ == "__main__":
    main()
