#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Run every peer's benchmark binary, side by side, then report.

    run.py BUILD_DIR OUT_DIR [--full | --smoke] [--workloads W,...]
           [--peers P,...] [--rounds N]

Peers are measured side by side, under the same machine weather, at two
scales. For each workload in turn, every peer's binary runs that workload
only (--benchmark_filter), so the peers of one workload are measured
minutes apart at most, rather than one binary's whole matrix after
another's. And the full mode goes round all of that several times, in
alternating peer order, so that a burst of load from elsewhere on a shared
machine lands on every peer's results alike; the report takes the median
over the rounds of each round's median over its repetitions.

Each binary run writes Google Benchmark's JSON (the aggregates over its
repetitions only) to OUT_DIR/json/WORKLOAD-PEER-rROUND.json, and its
console output to OUT_DIR/log/. report.py then turns all the JSON into
OUT_DIR/table.md, OUT_DIR/absolute.md and OUT_DIR/bench.png.

A peer whose binary was not built (its library is missing) is skipped with
a message; one that cannot start (exit 77) likewise.
"""
import argparse
import os
import subprocess
import sys
import time

# report is imported from the source tree, which should stay clean.
sys.dont_write_bytecode = True
import report  # noqa: E402

PEERS = ["cbm", "cbm_exact", "cbm_trusted", "cbm_inline", "glibc",
         "jemalloc", "mimalloc", "tcmalloc", "dpdk", "mutex"]
UNTOUCHED = ["pair", "depth32", "depth512", "bulk32", "pc"]
# Each also as WORKLOAD-touched (harness.h), then cbm's retire.
WORKLOADS = UNTOUCHED + [w + "-touched" for w in UNTOUCHED] + ["retire"]

# Seconds per repetition at least, repetitions per binary run, rounds, and
# the time limit of one run in seconds. The short mode is a look, the full
# one a measurement; smoke only proves the pipeline works. A run that
# passes its limit (a pool that stalls when oversubscribed) is cut short and
# marked so (run_clock.h).
MODES = {
    "short": dict(min_time=0.05, reps=3, rounds=1, limit=1),
    "full": dict(min_time=0.2, reps=3, rounds=5, limit=2),
    "smoke": dict(min_time=0.0001, reps=1, rounds=1, limit=1),
}

SKIPPED = 77


def run_one(path, workload, mode, json_path, log_path, env):
    """Run one workload of one binary: (exit status, seconds taken)."""
    cmd = [path,
           f"--benchmark_filter=^{workload}/",
           f"--benchmark_min_time={mode['min_time']}",
           f"--benchmark_repetitions={mode['reps']}",
           "--benchmark_report_aggregates_only=true",
           f"--run_limit={mode['limit']}",
           f"--benchmark_out={json_path}",
           "--benchmark_out_format=json"]
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT,
                             env=env)
    return rc, time.monotonic() - t0


def empty_dirs(*dirs):
    """Make each directory, and empty it: a previous run's files would be
    mixed into this run's table."""
    for d in dirs:
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))


def find_binaries(build, prefix, peers, subject, tag):
    """{peer: path} of the peers' binaries that were built; exits when the
    subject's is not."""
    binaries = {}
    for peer in peers:
        path = os.path.join(build, "bench", prefix + peer)
        if os.access(path, os.X_OK):
            binaries[peer] = path
        else:
            print(f"{tag}: {peer}: not built (library missing?), skipped")
    if subject not in binaries:
        sys.exit(f"{tag}: {prefix}{subject} is not built: nothing to "
                 "compare")
    return binaries


def run_rounds(tag, mode_name, binaries, workloads, json_dir, log_dir,
               wanted=lambda workload, peer: True, rounds=None):
    """Every wanted (workload, peer) of the binaries, round by round (the
    mode's number of rounds, unless rounds says), the peers' order
    reversed every other round: the names of the runs that failed."""
    mode = dict(MODES[mode_name])
    if rounds is not None:
        mode["rounds"] = rounds
    print(f"{tag}: {mode_name} run: {mode['rounds']} round(s) of "
          f"{mode['reps']} repetitions of at least {mode['min_time']} s "
          f"per cell, each cut at {mode['limit']} s")
    # glibc would fill every buffer it hands out and takes back (meson
    # test sets this one).
    env = {k: v for k, v in os.environ.items()
           if k not in ("MALLOC_PERTURB_", "MALLOC_CHECK_")}
    began = time.monotonic()
    failed = []
    for rnd in range(1, mode["rounds"] + 1):
        order = list(binaries.items())
        if rnd % 2 == 0:
            order.reverse()
        for workload in workloads:
            print(f"  round {rnd} {workload:9}", end="", flush=True)
            for peer, path in order:
                if not wanted(workload, peer):
                    continue
                name = f"{workload}-{peer}-r{rnd}"
                rc, took = run_one(path, workload, mode,
                                   os.path.join(json_dir, name + ".json"),
                                   os.path.join(log_dir, name + ".txt"), env)
                if rc == SKIPPED:
                    print(f" {peer} (could not start: skipped)", end="")
                elif rc != 0:
                    print(f" {peer} (FAILED, exit {rc})", end="")
                    failed.append(name)
                else:
                    print(f" {peer} {took:.0f}s", end="")
                sys.stdout.flush()
            print()
    print(f"{tag}: ran for {time.monotonic() - began:.0f} s")
    return failed


def arguments(doc):
    """The arguments run.py and mixed.py share: the build and output
    directories, and the mode (short unless --full or --smoke)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("build", help="meson build directory")
    ap.add_argument("out", help="output directory")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--full", action="store_const", dest="mode",
                       const="full", help="the long version")
    which.add_argument("--smoke", action="store_const", dest="mode",
                       const="smoke", help="token runs, to test the pipeline")
    ap.set_defaults(mode="short")
    return ap


def names(known):
    """An argparse type: a comma-separated list of some of known."""
    def parse(text):
        chosen = [n for n in text.split(",") if n]
        bad = [n for n in chosen if n not in known]
        if bad or not chosen:
            raise argparse.ArgumentTypeError(
                f"not one of {', '.join(known)}: {text}")
        return chosen
    return parse


def wanted(workload, peer):
    """retire is cbm's alone; cbm_trusted differs from cbm only in its
    bulk frees, cbm_inline only in its calls of one buffer (cbm_exact in
    its layout, everywhere)."""
    if workload == "retire":
        return peer == "cbm"
    if peer == "cbm_trusted":
        return workload.startswith("bulk32")
    if peer == "cbm_inline":
        return not workload.startswith("bulk32")
    return True


def main():
    ap = arguments(__doc__)
    ap.add_argument("--workloads", type=names(WORKLOADS), default=WORKLOADS,
                    help="only these, comma-separated (default: all)")
    ap.add_argument("--peers", type=names(PEERS), default=PEERS,
                    help="only these, comma-separated (default: all; cbm "
                    "always)")
    ap.add_argument("--rounds", type=int,
                    help="this many rounds instead of the mode's")
    args = ap.parse_args()
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds: at least 1")

    json_dir = os.path.join(args.out, "json")
    log_dir = os.path.join(args.out, "log")
    empty_dirs(json_dir, log_dir)
    binaries = find_binaries(args.build, "bench_",
                             ["cbm"] + [p for p in args.peers if p != "cbm"],
                             "cbm", "bench")
    failed = run_rounds("bench", args.mode, binaries, args.workloads,
                        json_dir, log_dir, wanted, args.rounds)

    table = report.write_report(json_dir, args.out)
    print()
    print(table)
    if failed:
        sys.exit("bench: failed: " + " ".join(failed))


if __name__ == "__main__":
    main()
