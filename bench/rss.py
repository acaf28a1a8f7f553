#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RSS over time through a burst, for cbm and every peer (bench/rss.cc).

    rss.py BUILD_DIR OUT_DIR [--mib N] [--idle-ms N] [--block N]

Two runs per peer: the burst alone, and with one buffer more taken after
it and kept (--hold-one 1, rss.cc).

Runs BUILD_DIR/bench/rss_PEER for each peer built, one after another (each
in a process of its own: RSS is per process), keeps the samples in
OUT_DIR/rss/PEER.csv, and writes OUT_DIR/rss.md (the table, also printed)
and OUT_DIR/rss.png (one chart per peer on a shared time axis, time 0 when
the last buffer was given back). "Back within 10%" is the time from then
until RSS first reads within 10% of the burst above its pre-burst level,
that is with 90% of the burst given back; "never" when it did not within
the idle time.
"""
import os
import subprocess
import sys

PEERS = ["cbm", "glibc", "jemalloc", "mimalloc", "tcmalloc", "dpdk"]
MiB = 1 << 20


def run(build, out, args, hold_one):
    os.makedirs(os.path.join(out, "rss"), exist_ok=True)
    runs = {}
    for peer in PEERS:
        exe = os.path.join(build, "bench", "rss_" + peer)
        if not os.path.exists(exe):
            continue
        res = subprocess.run([exe] + args + ["--hold-one", str(hold_one)],
                             capture_output=True, text=True)
        path = os.path.join(out, "rss", f"{peer}-hold{hold_one}.csv")
        with open(path, "w") as f:
            f.write(res.stdout)
        if res.returncode != 0:
            print(f"rss: {peer} failed: {res.stderr.strip()}", file=sys.stderr)
            continue
        runs[peer] = parse(res.stdout)
    return runs


def parse(text):
    head, samples = {}, []
    for line in text.splitlines():
        if line.startswith("#"):
            for kv in line[1:].split():
                k, v = kv.split("=")
                head[k] = v
        elif line:
            t, rss, phase = line.split(",")
            samples.append((int(t), int(rss), int(phase)))
    return head, samples


def summarize(head, samples):
    before = [r for t, r, p in samples if p == 0]
    pre = sorted(before)[len(before) // 2]
    peak = max(r for _, r, _ in samples)
    t_idle = int(head["idle_ms"])
    burst = peak - pre
    back = None
    for t, r, p in samples:
        if p == 4 and t >= t_idle and r <= pre + burst / 10:
            back = t - t_idle
            break
    end = samples[-1][1]
    return pre, peak, end, back


def table(sets, args):
    lines = [
        "RSS through a burst of 2 KiB buffers (bench/rss.cc; "
        + " ".join(args) + "): two threads take the burst, write the "
        "first line of each buffer, hold it 300 ms, give it all back, "
        "then stay idle; in the second run each also keeps one buffer "
        "taken after the burst. Each allocator at its defaults; DPDK's "
        "pool is fixed, the reference that never gives back.",
        "",
        "| peer | before (MiB) | peak (MiB) | at the end (MiB) "
        "| back within 10% after | same, one buffer kept |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    alone, kept = sets
    for peer, (head, samples) in alone.items():
        pre, peak, end, back = summarize(head, samples)
        when = f"{back} ms" if back is not None else "never"
        when2 = "-"
        if peer in kept:
            back2 = summarize(*kept[peer])[3]
            when2 = f"{back2} ms" if back2 is not None else "never"
        lines.append(f"| {peer} | {pre / MiB:.1f} | {peak / MiB:.1f} "
                     f"| {end / MiB:.1f} | {when} | {when2} |")
    return "\n".join(lines) + "\n"


def plot(runs, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("rss: no matplotlib; no chart", file=sys.stderr)
        return
    n = len(runs)
    fig, axes = plt.subplots(n, 1, sharex=True, figsize=(8, 1.6 * n + 1))
    if n == 1:
        axes = [axes]
    for ax, (peer, (head, samples)) in zip(axes, runs.items()):
        t0 = int(head["idle_ms"])
        ax.plot([(t - t0) / 1000 for t, _, _ in samples],
                [r / MiB for _, r, _ in samples], lw=1.2)
        ax.axvline(0, color="grey", lw=0.6, ls=":")
        ax.set_ylabel("MiB")
        ax.set_title(peer, loc="left", fontsize=9)
    axes[-1].set_xlabel("seconds since the last buffer was given back")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    build, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    sets = (run(build, out, args, 0), run(build, out, args, 1))
    built = [p for p in PEERS
             if os.path.exists(os.path.join(build, "bench", "rss_" + p))]
    if not sets[0]:
        sys.exit(1)
    text = table(sets, args)
    with open(os.path.join(out, "rss.md"), "w") as f:
        f.write(text)
    print(text)
    plot(sets[1], os.path.join(out, "rss.png"))
    sys.exit(0 if all(len(s) == len(built) for s in sets) else 1)


if __name__ == "__main__":
    main()
