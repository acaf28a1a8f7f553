#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""GET /metrics of an example server, read by Prometheus's own parser.

    metrics_check.py HTTP_PROBE SERVER [SERVER ARGS...]

Runs http_probe's metrics check against the server (which starts it, and
checks that it exits with every buffer back), then parses the body it
saved with prometheus_client's text parser (python3-prometheus-client):
every family is named cbm_*, carries the pool's name as its label (a
heap's: each class used as NAME/SIZE, and the heap's own cbm_heap_bytes
under NAME), the counters are counters (cbm_allocs_total) and the levels
gauges (cbm_in_use), and the numbers add up (free + cached + retired +
in_use = capacity, per class; the heap's bytes within its ceiling).
Exit 77 (skip) where the parser is not installed or the server cannot run.
"""
import os
import subprocess
import sys
import tempfile

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("python3-prometheus-client is not installed: skipped")
    sys.exit(77)

probe, server = sys.argv[1], sys.argv[2:]
with tempfile.TemporaryDirectory() as tmp:
    body = os.path.join(tmp, "metrics.txt")
    run = subprocess.run([probe, "--checks", "metrics", "--metrics-out", body,
                          "--", *server], timeout=120)
    if run.returncode != 0:
        sys.exit(run.returncode)
    text = open(body).read()

failures = []
parsed = list(text_string_to_metric_families(text))
families = {f.name: f for f in parsed}
# Prometheus refuses a scrape with a family's TYPE line twice, or its
# samples apart; the parser takes the first quietly and the second as a
# new family.
types = [l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")]
for name in sorted(set(types)):
    if types.count(name) > 1:
        failures.append(f"TYPE {name} {types.count(name)} times")
for name in sorted(families):
    if sum(f.name == name for f in parsed) > 1:
        failures.append(f"family {name} in pieces")
want = {"cbm_in_use": "gauge", "cbm_free": "gauge", "cbm_cached": "gauge",
        "cbm_retired": "gauge", "cbm_capacity": "gauge",
        "cbm_allocs": "counter", "cbm_frees": "counter",
        "cbm_alloc_failures": "counter", "cbm_reclaimed": "counter"}
for name, kind in want.items():
    fam = families.get(name)
    if fam is None:
        failures.append(f"no family {name}")
    elif fam.type != kind:
        failures.append(f"{name} is a {fam.type}, not a {kind}")
pools = set()
for fam in families.values():
    if not fam.name.startswith("cbm_"):
        failures.append(f"family {fam.name} lacks the cbm_ prefix")
    for s in fam.samples:
        if "pool" not in s.labels:
            failures.append(f"{s.name} has no pool label")
        pools.add(s.labels.get("pool"))
# A pool: one label. A heap (the servers' default): its name on the
# cbm_heap_* families, and each class used as the class pool's name,
# NAME/SIZE, on the others.
classes = {p for p in pools if p and "/" in p}
heap = pools - classes
if len(heap) != 1:
    failures.append(f"pool labels {pools}")
elif classes:
    name = next(iter(heap))
    for fam in ("cbm_heap_bytes", "cbm_heap_max_bytes"):
        if fam not in families:
            failures.append(f"a heap without {fam}")
    for c in classes:
        if c.split("/")[0] != name:
            failures.append(f"class {c} is not of heap {name}")
if not failures:
    for label in sorted(classes) or heap:
        value = {}
        for n in want:
            got = [s.value for s in families[n].samples
                   if s.labels["pool"] == label]
            value[n] = got[0] if got else 0
        total = sum(value[n] for n in ("cbm_free", "cbm_cached",
                                       "cbm_retired", "cbm_in_use"))
        # The server is live while it answers: the sum may be off by the
        # buffers in flight; it must not exceed the capacity.
        if total > value["cbm_capacity"] or value["cbm_allocs"] < 1:
            failures.append(f"{label}: numbers do not add up: {value}")
        if classes:
            size = [s.value for s in families["cbm_block_size"].samples
                    if s.labels["pool"] == label]
            if size != [int(label.split("/")[1])]:
                failures.append(f"{label}: block_size {size}")
    if classes:
        held = families["cbm_heap_bytes"].samples[0].value
        most = families["cbm_heap_max_bytes"].samples[0].value
        if not 0 < held <= most:
            failures.append(f"heap bytes {held}, ceiling {most}")
for f in failures:
    print("metrics_check: FAIL:", f)
print(f"metrics_check: {len(families)} families from {sorted(pools)}, "
      f"{len(failures)} failures")
sys.exit(1 if failures else 0)
