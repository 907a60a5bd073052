"""Shared pieces of the benchmark runners (run.py, gc_run.py): Markdown tables,
CSV files, and the description of the machine and the build that produced the
figures."""
import csv
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def render_table(head, body, right):
    """A Markdown table; columns whose index is in `right` are right-aligned."""
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2))
                         for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in body])


def write_csv(path, fields, rows, fmt_floats=False):
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        wr.writeheader()
        for r in rows:
            if fmt_floats:
                r = {k: ("%.6g" % v if isinstance(v, float) else v) for k, v in r.items()}
            wr.writerow(r)


def git_rev():
    try:
        return subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except Exception:
        return "?"


def machine_desc():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "%s, %d CPU(s) (%s), Linux %s" % (platform.node(), os.cpu_count() or 0, cpu, platform.release())
