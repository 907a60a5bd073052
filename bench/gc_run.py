#!/usr/bin/env python3
"""GC benchmark driver: gcmalloc's collector against the Boehm collector.

    python3 bench/gc_run.py --quick          # 1 round: binary-trees 16/18, gcbench, pause 64/256 MiB (~2 min)
    python3 bench/gc_run.py                  # 3 rounds, adds binary-trees 20
    python3 bench/gc_run.py --full           # 3 rounds, adds binary-trees 20 and the 1 GiB pause probe
    python3 bench/gc_run.py --workloads 'pause-*' --rounds 5
    python3 bench/gc_run.py --update-docs    # also rewrite the table between the markers in docs/gc.md
    python3 bench/gc_run.py --list

The programs are bench/gc/{binary_trees,gcbench,pause}.c, each built twice
(build/bench/gc/<name>-gcmalloc and <name>-boehm, see bench/gc/gc_api.h). Runs go
in interleaved rounds (for each round, for each workload, both collectors, the
order alternating between rounds), each through build/bench/runone, which
reports the child's wait4() rusage (ru_maxrss = peak RSS), as bench/run.py does.
Boehm runs with GC_MARKERS=1 (one marker thread; the programs also call
GC_set_markers_count(1)); everything else is each collector's default.

Every program checks its own result (node counts, tags, checksums) and exits
non-zero when a collector reclaimed live objects; its checksum must also be the
same under both collectors. A failure is reported as such, never as a number,
and makes the exit status 1.

Writes bench/results/<stamp>-gc-raw.csv (every run), and for a run of a whole
set (no --workloads/--collectors) bench/results/gc-latest.md and gc-latest.csv
(the summary). --update-docs replaces only the text between
<!-- BEGIN gc benchmark table --> and <!-- END gc benchmark table --> in
docs/gc.md (created with a heading and the markers if it does not exist).
"""

import argparse
import atexit
import datetime
import fnmatch
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import git_rev, machine_desc, render_table, write_csv

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_BIN = REPO / "build" / "bench"
DEFAULT_DOCS = REPO / "docs" / "gc.md"
BEGIN_MARKER = "<!-- BEGIN gc benchmark table -->"
END_MARKER = "<!-- END gc benchmark table -->"
COLLECTORS = ["gcmalloc", "boehm"]

# (name, program, arguments, tier): tier 0 = --quick and up, 1 = default and
# --full, 2 = --full only. The pause probe: live MiB, link order, forced
# collections (3), garbage MiB allocated after each (16).
WORKLOADS = [
    ("binary-trees-16",     "binary_trees", "16",             0),
    ("binary-trees-18",     "binary_trees", "18",             0),
    ("binary-trees-20",     "binary_trees", "20",             1),
    ("gcbench",             "gcbench",      "",               0),
    ("pause-64-alloc",      "pause",        "64 alloc",       0),
    ("pause-64-shuffled",   "pause",        "64 shuffled",    0),
    ("pause-256-alloc",     "pause",        "256 alloc",      0),
    ("pause-256-shuffled",  "pause",        "256 shuffled",   0),
    ("pause-1024-alloc",    "pause",        "1024 alloc",     2),
    ("pause-1024-shuffled", "pause",        "1024 shuffled",  2),
]

RAW_FIELDS = ["round", "workload", "collector", "command", "status", "error", "time_s", "maxrss_kib",
              "wall_s", "utime_s", "stime_s", "pause_max_ms", "pause_total_ms", "gcs", "forced_pause_max_ms",
              "forced_pause_median_ms", "forced_wall_max_ms", "mark_rate_gbs", "build_s", "live_mb",
              "heap_live_mib", "self_hwm_kib", "checksum", "collector_lib"]
SUMMARY_FIELDS = ["workload", "collector", "runs_ok", "runs_failed", "time_median_s", "time_min_s", "time_max_s",
                  "cpu_median_s", "rss_median_kib", "pause_max_median_ms", "pause_max_worst_ms", "pause_total_median_ms",
                  "gcs_median", "forced_pause_median_ms", "mark_rate_median_gbs", "live_mb",
                  "time_vs_boehm", "rss_vs_boehm", "pause_vs_boehm", "checksum", "checksum_ok"]


def parse_kv(text):
    """key=value lines (runone's) and the RESULT line's key=value words -> dict."""
    out = {}
    for line in text.splitlines():
        if line.startswith("RESULT "):
            for word in line.split()[1:]:
                k, sep, v = word.partition("=")
                if sep:
                    out[k] = v
            out["_result"] = "1"
            continue
        k, sep, v = line.partition("=")
        if sep and k.startswith("runone_") and " " not in k:
            out[k] = v.strip()
    return out


def run_one(runone, argv, env, timeout):
    """One program run through runone: a dict of its figures, "error" if it failed."""
    cmd = [str(runone), "-t", str(int(timeout)), "--"] + argv
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        out, err = proc.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    kv = parse_kv(out)
    res = {k: kv.get(k, "") for k in RAW_FIELDS}
    res.update(status=kv.get("runone_status", str(proc.returncode)), maxrss_kib=kv.get("runone_maxrss_kib", ""),
               wall_s=kv.get("runone_wall_s", ""), utime_s=kv.get("runone_utime_s", ""),
               stime_s=kv.get("runone_stime_s", ""), error="")
    st = res["status"]
    if st != "0":
        why = {"124": "timeout", "127": "exec failed"}.get(st)
        if why is None and st.isdigit() and int(st) > 128:
            why = "killed by signal %d" % (int(st) - 128)
        lines = [l for l in err.strip().splitlines() if not l.startswith("collection ")]
        tail = lines[-1:] if lines else []
        res["error"] = "exit %s%s%s" % (st, " (%s)" % why if why else "", ": " + tail[0][:300] if tail else "")
    elif "_result" not in kv or not res["time_s"]:
        res["error"] = "no RESULT line in the output"
    res["stderr_tail"] = "\n".join(err.strip().splitlines()[-8:])
    return res


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def median_of(rs, key):
    xs = [fnum(r.get(key)) for r in rs]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs, workloads, collectors):
    rows, problems = [], []
    for w in workloads:
        per = {}
        for c in collectors:
            rs = [r for r in runs if r["workload"] == w and r["collector"] == c]
            ok = [r for r in rs if not r["error"]]
            for r in rs:
                if r["error"]:
                    problems.append("%s / %s round %s: %s\n    command: %s%s" % (
                        w, c, r["round"], r["error"], r["command"],
                        "\n    stderr: " + r["stderr_tail"].replace("\n", "\n            ") if r["stderr_tail"] else ""))
            s = {"workload": w, "collector": c, "runs_ok": len(ok), "runs_failed": len(rs) - len(ok)}
            if ok:
                times = [float(r["time_s"]) for r in ok]
                pmax = [fnum(r["pause_max_ms"]) for r in ok if fnum(r["pause_max_ms"]) is not None]
                cpu = [float(r["utime_s"]) + float(r["stime_s"]) for r in ok
                       if fnum(r["utime_s"]) is not None and fnum(r["stime_s"]) is not None]
                s.update(time_median_s=statistics.median(times), time_min_s=min(times), time_max_s=max(times),
                         cpu_median_s=statistics.median(cpu) if cpu else None,
                         rss_median_kib=median_of(ok, "maxrss_kib"),
                         pause_max_median_ms=statistics.median(pmax) if pmax else None,
                         pause_max_worst_ms=max(pmax) if pmax else None,
                         pause_total_median_ms=median_of(ok, "pause_total_ms"), gcs_median=median_of(ok, "gcs"),
                         forced_pause_median_ms=median_of(ok, "forced_pause_median_ms"),
                         mark_rate_median_gbs=median_of(ok, "mark_rate_gbs"), live_mb=ok[0].get("live_mb", ""))
                sums = sorted({r["checksum"] for r in ok})
                s["checksum"] = sums[0] if len(sums) == 1 else "differs: " + ",".join(sums)
                if len(sums) > 1:
                    problems.append("%s / %s: checksum differs between rounds: %s" % (w, c, ", ".join(sums)))
            per[c] = s
        ref = per.get("boehm", {})
        sums = {per[c].get("checksum") for c in collectors if per[c].get("checksum")}
        for c in collectors:
            s = per[c]
            s["checksum_ok"] = len(sums) <= 1
            if c != "boehm" and "time_median_s" in s and "time_median_s" in ref:
                s["time_vs_boehm"] = s["time_median_s"] / ref["time_median_s"]
                if s.get("rss_median_kib") and ref.get("rss_median_kib"):
                    s["rss_vs_boehm"] = s["rss_median_kib"] / ref["rss_median_kib"]
                if s.get("pause_max_median_ms") is not None and ref.get("pause_max_median_ms"):
                    s["pause_vs_boehm"] = s["pause_max_median_ms"] / ref["pause_max_median_ms"]
            rows.append(s)
        if len(sums) > 1:
            problems.append("%s: checksums differ between collectors: %s" % (
                w, ", ".join("%s=%s" % (c, per[c].get("checksum")) for c in collectors)))
    return rows, problems


def fmt(x, f="%.3f"):
    return "" if x is None else f % x


def main_table(rows, workloads, collectors):
    """One row per workload: both collectors side by side, ratios, mark rates."""
    get = {(s["workload"], s["collector"]): s for s in rows}
    both = collectors == COLLECTORS
    head = []
    for c in collectors:
        head += ["%s time (s)" % c, "%s peak RSS (MiB)" % c, "%s max pause (ms)" % c]
    if both:
        head += ["time ×Boehm", "RSS ×Boehm", "pause ×Boehm"]
    head += ["%s mark rate (GB/s)" % c for c in collectors]
    if both:
        head += ["≤ Boehm: time/RSS/pause"]
    head = ["workload"] + head
    body = []
    for w in workloads:
        cells = [w]
        for c in collectors:
            s = get.get((w, c), {})
            if "time_median_s" not in s:
                cells += ["FAILED", "", ""]
                continue
            rss = s.get("rss_median_kib")
            cells += [fmt(s["time_median_s"]), fmt(rss / 1024 if rss else None, "%.1f"),
                      fmt(s.get("pause_max_median_ms"), "%.1f")]
        g = get.get((w, "gcmalloc"), {})
        if both:
            cells += [fmt(g.get("time_vs_boehm"), "%.2f"), fmt(g.get("rss_vs_boehm"), "%.2f"),
                      fmt(g.get("pause_vs_boehm"), "%.2f")]
        for c in collectors:
            cells.append(fmt(get.get((w, c), {}).get("mark_rate_median_gbs"), "%.2f"))
        if both:
            marks = []
            for k in ("time_vs_boehm", "rss_vs_boehm", "pause_vs_boehm"):
                v = g.get(k)
                marks.append("?" if v is None else ("yes" if v <= 1.0 else "no"))
            cells.append("/".join(marks))
        body.append(cells)
    return render_table(head, body, set(range(1, len(head))))


def detail_table(rows):
    head = ["workload", "collector", "runs", "time median (s)", "time min–max (s)", "CPU (s)", "peak RSS (MiB)",
            "max pause (ms)", "worst max pause (ms)", "total pause (ms)", "GCs", "forced pause median (ms)",
            "mark rate (GB/s)", "live (MiB)"]
    body = []
    for s in rows:
        runs = "%d" % s["runs_ok"] + (" (+%d failed)" % s["runs_failed"] if s["runs_failed"] else "")
        if not s.get("checksum_ok", True):
            runs += " CHECKSUM MISMATCH"
        if "time_median_s" not in s:
            body.append([s["workload"], s["collector"], runs, "FAILED"] + [""] * (len(head) - 4))
            continue
        rss = s.get("rss_median_kib")
        body.append([s["workload"], s["collector"], runs, fmt(s["time_median_s"]),
                     "%.3f–%.3f" % (s["time_min_s"], s["time_max_s"]), fmt(s.get("cpu_median_s")),
                     fmt(rss / 1024 if rss else None, "%.1f"),
                     fmt(s.get("pause_max_median_ms"), "%.2f"), fmt(s.get("pause_max_worst_ms"), "%.2f"),
                     fmt(s.get("pause_total_median_ms"), "%.1f"), fmt(s.get("gcs_median"), "%.0f"),
                     fmt(s.get("forced_pause_median_ms"), "%.2f"), fmt(s.get("mark_rate_median_gbs"), "%.3f"),
                     str(s.get("live_mb", ""))])
    return render_table(head, body, set(range(3, len(head))))


NOTES = (
    "time: the program's own measured run (CLOCK_MONOTONIC, from after the collector's initialisation to "
    "the end of its self-check); CPU: the whole process's user + system time (less sensitive than the time to a busy machine); peak RSS: the child's ru_maxrss (through bench/tools/runone.c); max pause: "
    "the longest collection of the run (gcmalloc: gcm_get_stats() gc_pause_max_ns; Boehm: GC_EVENT_START to "
    "GC_EVENT_END); all medians over rounds; ×Boehm: gcmalloc's median / Boehm's (lower is better; \"≤ Boehm\" "
    "is the issue's target). Mark rate (pause probe only): live bytes (the requested 32-byte nodes) / the "
    "median of 3 forced full collections (gcm_collect / GC_gcollect), 10^9 bytes/s. Boehm: default settings, "
    "one marker (GC_set_markers_count(1), GC_MARKERS=1); its GC_MALLOC adds one byte to every request by "
    "default (interior pointers), so 16-byte tree nodes take 32 bytes and 32-byte list nodes 48. "
    "Workloads: binary-trees N (the Benchmarks Game's, one thread: stretch tree N+1, long-lived tree N, "
    "2^(N-d+4) trees of each depth d = 4, 6, ..., N); gcbench (Ellis/Kovac/Boehm GCBench: long-lived tree "
    "of depth 16 and a 500000-double pointer-free array, top-down and bottom-up trees of depth 4..16); "
    "pause-M-alloc/shuffled (a linked list of M MiB of 32-byte nodes, linked in allocation order or in a "
    "random order, then 3 forced collections, each followed by 16 MiB of garbage; the shuffled variant's "
    "RSS includes an 8-byte-per-node index, unmapped before the collections).")


def docs_section(table, info_date, machine, command, load):
    return "\n".join([
        "",
        "Measured by `bench/gc_run.py` (`make bench` runs its quick mode); generated: edit outside the markers.",
        "",
        "Latest run: %s, %s; load average %s. Command: `%s`." % (info_date, machine, load, command),
        "",
        table,
        "",
        NOTES,
        "",
    ])


def update_docs(path, section):
    """Replace the text between the markers of path with section; nothing else."""
    path = Path(path)
    if not path.exists():
        path.write_text("# Garbage collection\n\n%s\n%s\n" % (BEGIN_MARKER, END_MARKER))
    text = path.read_text()
    if BEGIN_MARKER not in text or END_MARKER not in text or text.index(BEGIN_MARKER) > text.index(END_MARKER):
        # Keep everything there is; add the markers at the end.
        text = text.rstrip("\n") + "\n\n%s\n%s\n" % (BEGIN_MARKER, END_MARKER)
        print("%s: no markers; added them at the end" % path, file=sys.stderr)
    before, _, rest = text.partition(BEGIN_MARKER)
    _, _, after = rest.partition(END_MARKER)
    path.write_text(before + BEGIN_MARKER + "\n" + section.strip("\n") + "\n" + END_MARKER + after)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="1 round of binary-trees 16/18, gcbench and the 64/256 MiB pause probes")
    ap.add_argument("--full", action="store_true", help="also the 1 GiB pause probes (~3 GiB RSS under Boehm)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3, 1 with --quick)")
    ap.add_argument("--workloads", default="all", help="comma-separated names or globs among the mode's (see --list)")
    ap.add_argument("--collectors", default="all", help="gcmalloc,boehm (default: both)")
    ap.add_argument("--bin", default=str(DEFAULT_BIN),
                    help="the built benchmarks: runone and gc/ (default %(default)s)")
    ap.add_argument("--gcmalloc", default=None,
                    help="libgcmalloc.so to run the gcmalloc programs with (default: BIN/../libgcmalloc.so); "
                    "a copy is used, so a rebuild during the run cannot change it")
    ap.add_argument("--out", default=str(BENCH_DIR / "results"), help="results directory (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per run (default %(default)s)")
    ap.add_argument("--update-docs", action="store_true",
                    help="replace the table between the markers in --docs")
    ap.add_argument("--docs", default=str(DEFAULT_DOCS), help="document for --update-docs (default %(default)s)")
    ap.add_argument("--list", action="store_true", help="list the workloads, then exit")
    args = ap.parse_args()
    if args.quick and args.full:
        ap.error("--quick and --full exclude each other")

    bindir = Path(args.bin).resolve()
    tier = 0 if args.quick else (2 if args.full else 1)
    mode = [w for w in WORKLOADS if w[3] <= tier]
    if args.list:
        for name, prog, wargs, t in WORKLOADS:
            print("%-20s %-34s %s" % (name, "%s/gc/%s-{gcmalloc,boehm} %s" % (bindir, prog, wargs),
                                      ["--quick", "default", "--full"][t] + " and up"))
        return 0
    if args.workloads == "all":
        workloads = mode
    else:
        pats = [p.strip() for p in args.workloads.split(",") if p.strip()]
        workloads = [w for w in WORKLOADS if any(fnmatch.fnmatchcase(w[0], p) for p in pats)]
        for p in pats:
            if not any(fnmatch.fnmatchcase(w[0], p) for w in WORKLOADS):
                ap.error("no workload matches %r (see --list)" % p)
    collectors = COLLECTORS if args.collectors == "all" else [c.strip() for c in args.collectors.split(",")]
    for c in collectors:
        if c not in COLLECTORS:
            ap.error("unknown collector %r" % c)
    rounds = args.rounds or (1 if args.quick else 3)

    runone = bindir / "runone"
    missing = [p for p in [runone] + [bindir / "gc" / ("%s-%s" % (prog, c)) for _, prog, _, _ in workloads
                                      for c in collectors] if not p.is_file()]
    if missing:
        print("error: not built: %s\n  build them: cmake -S %s -B build && cmake --build build --target bench -j2"
              "\n  (the *-boehm programs need libgc-dev)" % (", ".join(str(m) for m in sorted(set(missing))), REPO),
              file=sys.stderr)
        return 2

    # A snapshot of libgcmalloc.so, found through LD_LIBRARY_PATH (it comes
    # before the programs' RUNPATH), so a rebuild during the run cannot mix versions.
    snap = Path(tempfile.mkdtemp(prefix="gcm-gcbench-"))
    atexit.register(shutil.rmtree, snap, True)
    env_common = dict(os.environ)
    env_common.pop("LD_PRELOAD", None)
    env_common["GC_MARKERS"] = "1"
    lib_desc = {"boehm": "libgc (system)"}
    gcm_copy = None
    if "gcmalloc" in collectors:
        lib = Path(args.gcmalloc) if args.gcmalloc else bindir.parent / "libgcmalloc.so"
        if not lib.exists():
            print("error: %s not found (--gcmalloc)" % lib, file=sys.stderr)
            return 2
        gcm_copy = snap / "libgcmalloc.so.0"
        shutil.copy2(lib.resolve(), gcm_copy)
        built = datetime.datetime.fromtimestamp(lib.resolve().stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
        lib_desc["gcmalloc"] = "%s (built %s)" % (lib.resolve(), built)
    envs = {}
    for c in collectors:
        e = dict(env_common)
        if c == "gcmalloc":
            e["LD_LIBRARY_PATH"] = str(snap) + (":" + e["LD_LIBRARY_PATH"] if e.get("LD_LIBRARY_PATH") else "")
        envs[c] = e

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now()
    stamp = now.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "-full" if args.full else "")
    info = "%s, %s, %s, git %s, %d round(s) (%s), collectors: %s" % (
        now.strftime("%Y-%m-%d %H:%M"), platform.node(), platform.release(), git_rev(), rounds,
        "--quick" if args.quick else "--full" if args.full else "default",
        ", ".join("%s=%s" % (c, lib_desc[c]) for c in collectors))
    print(info, flush=True)
    load0 = os.getloadavg()
    t_start = time.monotonic()

    runs, interrupted = [], False
    total, k = rounds * len(workloads) * len(collectors), 0
    try:
        for rnd in range(1, rounds + 1):
            order = collectors if rnd % 2 else list(reversed(collectors))
            for wname, prog, wargs, _ in workloads:
                for c in order:
                    k += 1
                    argv = [str(bindir / "gc" / ("%s-%s" % (prog, c)))] + shlex.split(wargs)
                    res = run_one(runone, argv, envs[c], args.timeout)
                    res.update(round=rnd, workload=wname, collector=c,
                               command=("LD_LIBRARY_PATH=%s " % snap if c == "gcmalloc" else "GC_MARKERS=1 ")
                               + " ".join(argv))
                    if not res["error"] and res.get("collector") != c:
                        res["error"] = "RESULT names collector %r" % res.get("collector")
                    if not res["error"] and c == "gcmalloc" and \
                            os.path.realpath(res["collector_lib"]) != os.path.realpath(gcm_copy):
                        res["error"] = "gcmalloc came from %s, not the snapshot %s" % (res["collector_lib"], gcm_copy)
                    res["collector"] = c
                    runs.append(res)
                    if res["error"]:
                        desc = "FAILED: " + res["error"]
                    else:
                        desc = "time_s=%-8s rss=%7.1f MiB  max pause=%9s ms  gcs=%-5s" % (
                            res["time_s"], int(res["maxrss_kib"] or 0) / 1024, res["pause_max_ms"], res["gcs"])
                        if res.get("mark_rate_gbs"):
                            desc += " mark rate=%s GB/s" % res["mark_rate_gbs"]
                    print("[%2d/%d] round %d/%d  %-19s %-8s %s" % (k, total, rnd, rounds, wname, c, desc), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: summarizing the runs so far", file=sys.stderr)

    names = [w[0] for w in workloads]
    rows, problems = summarize(runs, names, collectors)
    load1 = os.getloadavg()
    elapsed = time.monotonic() - t_start
    table = main_table(rows, names, collectors)
    details = detail_table(rows)
    tail = "Load average %.2f before, %.2f after; %.0f s in all." % (load0[0], load1[0], elapsed)

    raw_path = out_dir / ("%s-gc-raw.csv" % stamp)
    write_csv(raw_path, RAW_FIELDS, runs, fmt_floats=True)
    complete = args.workloads == "all" and args.collectors == "all" and not interrupted
    md = "# GC benchmarks %s\n\n%s\n\n%s\n\n## Per collector\n\n%s\n\n%s %s\n" % (
        stamp, info, table, details, NOTES, tail)
    if problems:
        md += "\n## Problems\n\n" + "".join("- %s\n" % p.replace("\n", "\n  ") for p in problems)
    if complete:
        (out_dir / "gc-latest.md").write_text(md)
        write_csv(out_dir / "gc-latest.csv", SUMMARY_FIELDS, rows, fmt_floats=True)
    print()
    print(table)
    print()
    print(details)
    print()
    print(NOTES, tail)
    print("wrote %s%s" % (raw_path, ", %s, %s" % (out_dir / "gc-latest.md", out_dir / "gc-latest.csv")
                          if complete else " (a partial run: gc-latest.* left alone)"))

    if args.update_docs:
        if interrupted or not any("time_median_s" in s for s in rows):
            print("--update-docs: not updating %s (interrupted or no results)" % args.docs, file=sys.stderr)
        else:
            cmdline = "python3 bench/gc_run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
            update_docs(args.docs, docs_section(table, now.strftime("%Y-%m-%d"), machine_desc(), cmdline,
                                                "%.1f before, %.1f after" % (load0[0], load1[0])))
            print("updated %s" % args.docs)
    if problems:
        print("\nPROBLEMS:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
    return 1 if (problems or interrupted) else 0


if __name__ == "__main__":
    sys.exit(main())
