#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Smoke check of `m2mtls bench ... --json|--csv`: runs the command given after
the format, requires exit 0 and output that parses, names the machine and has
rows. Asserts nothing about speed.
usage: check_output.py json|csv COMMAND [ARGS...]"""
import csv
import json
import subprocess
import sys

fmt, cmd = sys.argv[1], sys.argv[2:]
out = subprocess.run(cmd + ["--" + fmt], stdout=subprocess.PIPE, check=True, text=True).stdout
if fmt == "json":
    d = json.loads(out)
    assert d["machine"]["cpus"] > 0 and d["machine"]["openssl"], d["machine"]
    assert d["tables"] and all(t["rows"] for t in d["tables"]), "empty table"
    for t in d["tables"]:
        keys = set(t["rows"][0])
        assert all(set(r) == keys for r in t["rows"]), "rows with different columns"
else:
    assert out.startswith("# machine: "), out[:80]
    rows = list(csv.reader(l for l in out.splitlines() if not l.startswith("#")))
    assert len(rows) >= 2 and all(len(r) == len(rows[0]) or r == [] for r in rows), rows
print(fmt, "ok:", " ".join(cmd[1:]))
