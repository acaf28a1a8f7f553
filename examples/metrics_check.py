#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""GET /metrics of an example server, read by Prometheus's own parser.

    metrics_check.py HTTP_PROBE SERVER [SERVER ARGS...]

Runs http_probe's metrics check against the server (which starts it, and
checks that it exits with every buffer back), then parses the body it
saved with prometheus_client's text parser (python3-prometheus-client):
every family is named cbm_*, carries the pool's name as its label, the
counters are counters (cbm_allocs_total) and the levels gauges (cbm_in_use),
and the numbers add up (free + cached + retired + in_use = capacity).
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
families = {f.name: f for f in text_string_to_metric_families(text)}
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
if len(pools) != 1:
    failures.append(f"pool labels {pools}")
if not failures:
    value = {n: families[n].samples[0].value for n in want}
    total = sum(value[n] for n in ("cbm_free", "cbm_cached", "cbm_retired",
                                   "cbm_in_use"))
    # The server is live while it answers: the sum may be off by the
    # buffers in flight; it must not exceed the capacity.
    if total > value["cbm_capacity"] or value["cbm_allocs"] < 1:
        failures.append(f"numbers do not add up: {value}")
for f in failures:
    print("metrics_check: FAIL:", f)
print(f"metrics_check: {len(families)} families from pool {pools}, "
      f"{len(failures)} failures")
sys.exit(1 if failures else 0)
