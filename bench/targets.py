"""Figures against their targets, one line each, and one table of them all.

Every benchmark part prints a figure as

    agent binary 6.12 MB (target <= 6 MB): OVER

MET when the figure is at or under its target, OVER when it is above. A
figure is printed as measured: nothing is clamped, and a missed target
does not fail the benchmark (only a failed run does). Figures with no
target set are printed beside them, marked "no target".

When STEWARD_BENCH_TARGETS names a file, each line is also appended to it
(one JSON object a line), and `python bench/targets.py FILE` prints the
table of every figure recorded there: bench/scale.sh does so at its end.
"""

import json
import os
import sys


def _record(row):
    path = os.environ.get("STEWARD_BENCH_TARGETS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def check(figure, value, target, unit, digits=2, note="", prefix=""):
    """Prints `figure` against `target` (at most), records it; returns
    whether it is met. `prefix` goes before the numbers ("$")."""
    met = value <= target
    shown = f"{prefix}{value:.{digits}f} {unit}".strip()
    goal = f"<= {prefix}{target:g} {unit}".strip()
    verdict = "MET" if met else "OVER"
    print(f"{figure} {shown} (target {goal}): {verdict}" + (f"; {note}" if note else ""))
    _record({"figure": figure, "value": shown, "target": goal, "verdict": verdict, "note": note})
    return met


def info(figure, shown, note=""):
    """A figure with no target set: printed and recorded as such."""
    print(f"{figure} {shown} (no target set)" + (f"; {note}" if note else ""))
    _record({"figure": figure, "value": shown, "target": "-", "verdict": "no target", "note": note})


def missing(figure, target, why):
    """A figure that could not be measured in this run, and why."""
    print(f"{figure}: NOT MEASURED (target {target}): {why}")
    _record({"figure": figure, "value": "not measured", "target": target, "verdict": "NOT MEASURED", "note": why})


def table(path):
    rows = []
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except OSError:
        pass
    if not rows:
        print("no figures were recorded")
        return
    w = max(len(r["figure"]) for r in rows)
    v = max(len(r["value"]) for r in rows)
    t = max(len(r["target"]) for r in rows)
    print("Every figure against its target:")
    print(f"  {'figure':<{w}}  {'measured':<{v}}  {'target':<{t}}  verdict")
    for r in rows:
        print(f"  {r['figure']:<{w}}  {r['value']:<{v}}  {r['target']:<{t}}  {r['verdict']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python bench/targets.py FILE")
    table(sys.argv[1])
