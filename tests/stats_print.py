#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""cbm_pool_stats_print's three formats name every field of cbm_stats.

    stats_print.py STATS_PRINT_EXE CBM_H

The fields are read from cbm.h's struct, so a field added there without a
row in src/statsprint.c's table fails here. JSON must parse (json) and be
one object; the Prometheus text must parse with prometheus_client's own
parser where python3-prometheus-client is installed (a plain check of each
line otherwise), counters as counters and levels as gauges.
"""
import json
import re
import subprocess
import sys

exe, header = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def fields_of_cbm_stats():
    text = open(header).read()
    body = re.search(r"typedef struct cbm_stats \{(.*?)\} cbm_stats;", text,
                     re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return re.findall(r"\b(\w+)\s*;", body)


def run(*args, stream="stdout"):
    p = subprocess.run([exe, *args], capture_output=True, text=True,
                       timeout=60)
    check(p.returncode == 0, f"{args}: exit {p.returncode}: {p.stderr}")
    return p.stdout if stream == "stdout" else p.stderr


fields = fields_of_cbm_stats()
check(len(fields) >= 20, f"read only {len(fields)} fields from cbm.h")
gauges = {"free", "cached", "retired", "in_use"}

# JSON: one object, every field, right values.
out = run("J")
try:
    obj = json.loads(out)
except ValueError as e:
    obj = {}
    check(False, f"JSON does not parse: {e}: {out!r}")
check(isinstance(obj, dict), "JSON is not one object")
for f in fields:
    check(isinstance(obj.get(f), int), f"JSON lacks field {f}")
check(obj.get("name") == 'stats "print"\\test', f"JSON name {obj.get('name')!r}")
check(obj.get("capacity") == 64 and obj.get("in_use") == 5,
      "JSON capacity/in_use are not 64/5")
fill = obj.get("cache_fill")
check(isinstance(fill, list) and len(fill) >= 1 and
      all(isinstance(n, int) for n in fill), f"cache_fill {fill!r}")
check(sum(fill or []) == obj.get("cached"), "cache_fill does not sum to cached")

# Text: every field by name.
out = run()
for f in fields:
    check(re.search(rf"^\s+{f}\s+\d+", out, re.M) is not None,
          f"text lacks field {f}")
# write_cb NULL: the same text on stderr.
err = run("text", "stderr", stream="stderr")
check("in_use" in err and "capacity" in err, "NULL write_cb wrote no text")

# Prometheus.
out = run("P")
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None
if text_string_to_metric_families is not None:
    families = {fam.name: fam for fam in text_string_to_metric_families(out)}
    for f in fields:
        fam = families.get("cbm_" + f)
        check(fam is not None, f"Prometheus lacks cbm_{f}")
        if fam is None:
            continue
        if f in gauges:
            check(fam.type == "gauge", f"cbm_{f} is a {fam.type}")
        if f in ("allocs", "frees", "reclaimed", "steals"):
            check(fam.type == "counter", f"cbm_{f} is a {fam.type}")
        for s in fam.samples:
            check(s.labels.get("pool") == 'stats "print"\\test',
                  f"cbm_{f} pool label {s.labels!r}")
    check(families["cbm_in_use"].samples[0].value == 5, "cbm_in_use != 5")
    check(families["cbm_allocs"].samples[0].name == "cbm_allocs_total",
          "the allocs counter is not cbm_allocs_total")
    check("cbm_cache_fill" in families, "no cbm_cache_fill")
else:
    print("prometheus_client not installed: a plain check of the lines")
    for f in fields:
        check(re.search(rf"^cbm_{f}(_total)?\{{pool=", out, re.M),
              f"Prometheus lacks cbm_{f}")

for f in failures:
    print("FAIL:", f)
print(f"stats_print: {len(fields)} fields, {len(failures)} failures")
sys.exit(1 if failures else 0)
