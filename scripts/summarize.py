#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Counts every TAP case of the meson test logs and the steps file in a results directory,
prints failures, and ends with "N passed, N failed, N skipped". Exits 1 when anything
failed or when nothing ran."""
import json
import os
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b")
SKIP = re.compile(r"#\s*SKIP\b", re.I)


def count_tap(text, label, totals, failures):
    seen = 0
    failed_here = 0
    for line in text.splitlines():
        m = TAP.match(line.strip())
        if not m:
            continue
        seen += 1
        if SKIP.search(line):
            totals["skipped"] += 1
        elif m.group(1) == "ok":
            totals["passed"] += 1
        else:
            totals["failed"] += 1
            failed_here += 1
            failures.append(f"{label}: {line.strip()}")
    return seen, failed_here


def main(results):
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    for name in sorted(os.listdir(results)):
        path = os.path.join(results, name)
        if name == "steps.tap":
            with open(path) as f:
                count_tap(f.read(), "step", totals, failures)
        elif name.endswith(".json"):
            build = name[:-5]
            with open(path) as f:
                for raw in f:
                    t = json.loads(raw)
                    label = f"{build}/{t['name']}"
                    seen, failed_here = count_tap(t.get("stdout") or "", label, totals, failures)
                    result = t.get("result")
                    if result == "SKIP" and seen == 0:
                        totals["skipped"] += 1
                    elif result not in ("OK", "EXPECTEDFAIL", "SKIP") and failed_here == 0:
                        # crashed, timed out, or failed outside its TAP cases
                        totals["failed"] += 1
                        failures.append(f"{label}: {result}")
    for f in failures:
        print("FAILED", f)
    print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    ran = totals["passed"] + totals["failed"]
    return 1 if totals["failed"] or ran == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
