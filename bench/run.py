#!/usr/bin/env python3
"""Benchmark driver: every workload under every allocator, chosen by LD_PRELOAD.

    python3 bench/run.py                      # all workloads, all allocators, 5 rounds
    python3 bench/run.py --quick              # smaller runs, 3 rounds, about a minute
    python3 bench/run.py --workloads 'ring-*,pairs-cycle' --allocators glibc,gcmalloc
    python3 bench/run.py --list

Runs go in interleaved rounds (for each round, for each workload, every
allocator in turn), so drift in machine load hits all allocators alike. Each
run goes through build/bench/runone, which sets LD_PRELOAD for the workload
only and reports the child's wait4() rusage (ru_maxrss = peak RSS); the time is
the workload's own measured section (its `time_s=` line). The workload's
`checksum=` must be the same under every allocator, and its `malloc_lib=` must
name the preloaded library (so a preload that silently did not take is caught).

Writes to bench/results/: <stamp>-raw.csv (every run), <stamp>-summary.csv and
<stamp>-summary.md (the table printed on the terminal). Exit status 1 if any
run failed or any checksum differed.

To add a workload: build its program from bench/workloads/<name>.c (any .c
there is built into build/bench/<name>) or use any installed program, and add
one row to WORKLOADS below.
"""

import argparse
import atexit
import csv
import datetime
import fnmatch
import hashlib
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

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DEFAULT_BIN = REPO / "build" / "bench"
DEFAULT_GCMALLOC = REPO / "build" / "libgcmalloc.so"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")

# The workloads: (name, command line, n). In the command line, {bin} is the
# directory of the built workload programs and {n} the iteration count: n as
# given, or n // QUICK_DIVISOR under --quick (None: the command has no {n}).
# Sized for roughly 0.3-1 s of measured time each on glibc.
WORKLOADS = [
    ("pairs-cycle",  "{bin}/pairs cycle {n}",        60_000_000),  # malloc+free, sizes 16,32..1024 in turn
    ("pairs-random", "{bin}/pairs random {n}",       50_000_000),  # malloc+free, sizes random 16..1024
    ("ring-1k",      "{bin}/ring fifo 1000 {n}",     25_000_000),  # FIFO ring of 1000 live objects
    ("ring-100k",    "{bin}/ring fifo 100000 {n}",   12_000_000),  # FIFO ring of 100000 live objects
    ("lifo-1k",      "{bin}/ring lifo 1000 {n}",     12_000_000),  # push 1000, pop 1000 (stack order)
    ("prodcons",     "{bin}/prodcons {n}",            2_000_000),  # 2 threads: malloc in one, free in other
]
QUICK_DIVISOR = 5
QUICK_ROUNDS = 3

# Allocators: (name, library to preload; None = the C library's own malloc).
# gcmalloc's path comes from --gcmalloc. The first four are the "peers": each
# result is also given as a ratio to the best peer.
PEERS = [
    ("glibc", None),
    ("jemalloc", LIBDIR / "libjemalloc.so.2"),
    ("tcmalloc", LIBDIR / "libtcmalloc_minimal.so.4"),
    ("mimalloc", LIBDIR / "libmimalloc.so.2"),
]
PEER_NAMES = {name for name, _ in PEERS}

RAW_FIELDS = ["round", "workload", "allocator", "library", "command", "status", "error",
              "time_s", "maxrss_kib", "wall_s", "utime_s", "stime_s", "checksum",
              "malloc_lib", "ops", "self_hwm_kib"]
SUMMARY_FIELDS = ["workload", "allocator", "runs_ok", "runs_failed",
                  "time_median_s", "time_min_s", "time_max_s", "time_q1_s", "time_q3_s",
                  "time_vs_best_peer", "time_min_vs_best_peer_min", "rss_median_kib", "rss_min_kib", "rss_max_kib",
                  "rss_q1_kib", "rss_q3_kib", "rss_vs_best_peer", "checksum", "checksum_ok"]


def parse_kv(text):
    """key=value lines -> dict (other lines ignored)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and " " not in key:
            out[key.strip()] = value.strip()
    return out


def malloc_lib_ok(alloc_lib, reported):
    """Did malloc come from where it should (catches a preload that did not take)?"""
    if not reported or reported == "?":
        return False
    if alloc_lib is None:
        return os.path.basename(reported).startswith("libc.so")
    return os.path.realpath(reported) == os.path.realpath(alloc_lib)


def run_one(runone, lib, argv, timeout):
    """Run argv under the allocator lib; return a dict of results."""
    cmd = [str(runone), "-t", str(int(timeout))]
    if lib is not None:
        cmd += ["-p", str(lib)]
    cmd += ["--"] + argv
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)  # runone sets it for the workload only
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    try:
        out, err = proc.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    kv = parse_kv(out)
    res = {
        "status": kv.get("runone_status", str(proc.returncode)),
        "time_s": kv.get("time_s", ""),
        "maxrss_kib": kv.get("runone_maxrss_kib", ""),
        "wall_s": kv.get("runone_wall_s", ""),
        "utime_s": kv.get("runone_utime_s", ""),
        "stime_s": kv.get("runone_stime_s", ""),
        "checksum": kv.get("checksum", ""),
        "malloc_lib": kv.get("malloc_lib", ""),
        "ops": kv.get("ops", ""),
        "self_hwm_kib": kv.get("self_hwm_kib", ""),
        "error": "",
    }
    if res["status"] != "0":
        st = res["status"]
        why = {"124": "timeout", "127": "exec failed"}.get(st)
        if why is None and st.isdigit() and int(st) > 128:
            why = "killed by signal %d" % (int(st) - 128)
        tail = err.strip().splitlines()[-1:] if err.strip() else []
        res["error"] = "exit %s%s%s" % (st, " (%s)" % why if why else "",
                                        ": " + tail[0][:200] if tail else "")
    elif not res["time_s"] or not res["checksum"]:
        res["error"] = "no time_s/checksum in output"
    elif not malloc_lib_ok(lib, res["malloc_lib"]):
        res["error"] = "malloc came from %s, not %s" % (res["malloc_lib"] or "?", lib or "libc")
    return res


def quartiles(xs):
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def summarize(runs, workloads, allocators):
    """Per (workload, allocator) stats, ratios to the best peer, checksum check."""
    rows, problems = [], []
    for w in workloads:
        per = {}
        for a in allocators:
            rs = [r for r in runs if r["workload"] == w and r["allocator"] == a]
            ok = [r for r in rs if not r["error"]]
            s = {"workload": w, "allocator": a, "runs_ok": len(ok), "runs_failed": len(rs) - len(ok)}
            for r in rs:
                if r["error"]:
                    problems.append("%s / %s round %s: %s" % (w, a, r["round"], r["error"]))
            if ok:
                t = sorted(float(r["time_s"]) for r in ok)
                m = sorted(int(r["maxrss_kib"]) for r in ok if r["maxrss_kib"])
                s.update(time_median_s=statistics.median(t), time_min_s=t[0], time_max_s=t[-1])
                s["time_q1_s"], s["time_q3_s"] = quartiles(t)
                if m:
                    s.update(rss_median_kib=statistics.median(m), rss_min_kib=m[0], rss_max_kib=m[-1])
                    s["rss_q1_kib"], s["rss_q3_kib"] = quartiles(m)
                sums = sorted({r["checksum"] for r in ok})
                s["checksum"] = " ".join(sums)
            per[a] = s
        # Checksums must agree across every successful run of this workload.
        by_sum = {}
        for r in runs:
            if r["workload"] == w and not r["error"]:
                by_sum.setdefault(r["checksum"], set()).add(r["allocator"])
        if len(by_sum) > 1:
            problems.append("%s: CHECKSUM MISMATCH: %s" % (w, "; ".join(
                "%s from %s" % (c, ",".join(sorted(al))) for c, al in sorted(by_sum.items()))))
        # The reference is the checksum most peers agree on (or most allocators).
        votes = {c: (len(al & PEER_NAMES), len(al)) for c, al in by_sum.items()}
        ref = max(votes, key=votes.get) if votes else None
        for a in allocators:
            if "checksum" in per[a]:
                per[a]["checksum_ok"] = per[a]["checksum"] == ref
        peers = [per[a] for a in allocators if a in PEER_NAMES and "time_median_s" in per[a]]
        best_t = min((p["time_median_s"] for p in peers), default=None)
        best_tmin = min((p["time_min_s"] for p in peers), default=None)
        best_m = min((p["rss_median_kib"] for p in peers if "rss_median_kib" in p), default=None)
        for a in allocators:
            s = per[a]
            if best_t and "time_median_s" in s:
                s["time_vs_best_peer"] = s["time_median_s"] / best_t
                s["time_min_vs_best_peer_min"] = s["time_min_s"] / best_tmin
            if best_m and "rss_median_kib" in s:
                s["rss_vs_best_peer"] = s["rss_median_kib"] / best_m
            rows.append(s)
    return rows, problems


def fmt_ratio(x):
    return "" if x is None else "%.2f" % x


def markdown_table(rows):
    head = ["workload", "allocator", "time median (s)", "time min–max (s)", "time ×best peer", "min ×best min",
            "peak RSS median (MiB)", "RSS min–max (MiB)", "RSS ×best peer", "runs"]
    body = []
    for s in rows:
        if "time_median_s" not in s:
            body.append([s["workload"], s["allocator"], "FAILED", "", "", "", "", "", "",
                         "%d ok / %d failed" % (s["runs_ok"], s["runs_failed"])])
            continue
        mib = lambda k: s[k] / 1024 if k in s else None
        rss = "" if mib("rss_median_kib") is None else "%.1f" % mib("rss_median_kib")
        rss_rng = "" if mib("rss_min_kib") is None else "%.1f–%.1f" % (mib("rss_min_kib"), mib("rss_max_kib"))
        runs = "%d" % s["runs_ok"] + (" (+%d failed)" % s["runs_failed"] if s["runs_failed"] else "")
        if not s.get("checksum_ok", True):
            runs += " CHECKSUM MISMATCH"
        body.append([s["workload"], s["allocator"], "%.3f" % s["time_median_s"],
                     "%.3f–%.3f" % (s["time_min_s"], s["time_max_s"]),
                     fmt_ratio(s.get("time_vs_best_peer")),
                     fmt_ratio(s.get("time_min_vs_best_peer_min")), rss, rss_rng,
                     fmt_ratio(s.get("rss_vs_best_peer")), runs])
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    right = {2, 3, 4, 5, 6, 7, 8}
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
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="all",
                    help="comma-separated names or globs (default: all; see --list)")
    ap.add_argument("--allocators", default="all",
                    help="comma-separated among glibc,jemalloc,tcmalloc,mimalloc,gcmalloc (default: all)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="interleaved rounds (default 5, or %d with --quick)" % QUICK_ROUNDS)
    ap.add_argument("--quick", action="store_true",
                    help="iterations / %d and %d rounds: a smoke run of about a minute"
                    % (QUICK_DIVISOR, QUICK_ROUNDS))
    ap.add_argument("--gcmalloc", default=str(DEFAULT_GCMALLOC), help="gcmalloc library (default %(default)s)")
    ap.add_argument("--bin", default=str(DEFAULT_BIN), help="built workload programs (default %(default)s)")
    ap.add_argument("--out", default=str(BENCH_DIR / "results"), help="results directory (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per run (default %(default)s)")
    ap.add_argument("--list", action="store_true", help="list workloads and allocators, then exit")
    args = ap.parse_args()

    allocs_all = PEERS + [("gcmalloc", Path(args.gcmalloc))]
    if args.list:
        for name, cmd, n in WORKLOADS:
            print("%-14s %s" % (name, cmd.format(bin=args.bin, n=n)))
        for name, lib in allocs_all:
            print("%-14s %s" % (name, lib or "(no preload)"))
        return 0

    if args.workloads == "all":
        workloads = list(WORKLOADS)
    else:
        pats = [p.strip() for p in args.workloads.split(",") if p.strip()]
        workloads = [w for w in WORKLOADS if any(fnmatch.fnmatchcase(w[0], p) for p in pats)]
        for p in pats:
            if not any(fnmatch.fnmatchcase(w[0], p) for w in WORKLOADS):
                ap.error("no workload matches %r (see --list)" % p)
    if args.allocators == "all":
        wanted = [a for a, _ in allocs_all]
    else:
        wanted = [a.strip() for a in args.allocators.split(",") if a.strip()]
        for a in wanted:
            if a not in dict(allocs_all):
                ap.error("unknown allocator %r (see --list)" % a)
    allocators = []
    for name, lib in allocs_all:
        if name not in wanted:
            continue
        if lib is not None and not lib.is_file():
            print("warning: skipping %s: %s not found" % (name, lib), file=sys.stderr)
            continue
        allocators.append((name, lib))
    if not allocators or not workloads:
        print("error: nothing to run", file=sys.stderr)
        return 2

    bindir = Path(args.bin)
    runone = bindir / "runone"
    if not runone.is_file():
        print("error: %s not found; build the benchmarks first:\n"
              "  cmake -S %s -B %s/build && cmake --build %s/build --target bench -j2"
              % (runone, REPO, REPO, REPO), file=sys.stderr)
        return 2
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else 5)
    cmds = []
    for name, cmd, n in workloads:
        if n is not None and args.quick:
            n = max(1, n // QUICK_DIVISOR)
        argv = shlex.split(cmd.format(bin=bindir, n=n))
        if not (os.path.isfile(argv[0]) or "/" not in argv[0]):
            print("error: %s: %s not found (build the benchmarks)" % (name, argv[0]), file=sys.stderr)
            return 2
        cmds.append((name, argv))

    # Preload a snapshot of libraries that are not installed system libraries
    # (gcmalloc's build output), so a rebuild during the run cannot mix versions.
    snap_dir = Path(tempfile.mkdtemp(prefix="gcm-bench-"))
    atexit.register(shutil.rmtree, snap_dir, True)
    lib_desc = {}  # allocator -> how the report names its library
    for i, (name, lib) in enumerate(allocators):
        lib_desc[name] = str(lib) if lib else "libc"
        if lib is not None and LIBDIR not in lib.resolve().parents:
            copy = snap_dir / name / lib.name
            copy.parent.mkdir()
            shutil.copy2(lib, copy)
            digest = hashlib.sha256(copy.read_bytes()).hexdigest()[:12]
            built = datetime.datetime.fromtimestamp(lib.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
            lib_desc[name] = "%s (sha256 %s, built %s)" % (lib, digest, built)
            allocators[i] = (name, copy)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    info = ("%s, %s, %s, git %s, %d round(s)%s, allocators: %s" % (
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), platform.node(), platform.release(),
        git_rev(), rounds, " (--quick)" if args.quick else "",
        ", ".join("%s=%s" % (a, lib_desc[a]) for a, _ in allocators)))
    print(info)
    load0 = os.getloadavg()

    runs, total, k, t_start = [], rounds * len(cmds) * len(allocators), 0, time.monotonic()
    interrupted = False
    try:
        for rnd in range(1, rounds + 1):
            for wname, argv in cmds:
                for aname, lib in allocators:
                    k += 1
                    res = run_one(runone, lib, argv, args.timeout)
                    res.update(round=rnd, workload=wname, allocator=aname,
                               library=lib_desc[aname], command=" ".join(argv))
                    runs.append(res)
                    if res["error"]:
                        desc = "FAILED: " + res["error"]
                    else:
                        desc = "time_s=%-9s rss=%7.1f MiB  checksum=%s" % (
                            res["time_s"], int(res["maxrss_kib"] or 0) / 1024, res["checksum"])
                    print("[%3d/%d] round %d/%d  %-13s %-9s %s" % (
                        k, total, rnd, rounds, wname, aname, desc), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: summarizing the runs so far", file=sys.stderr)

    names = [a for a, _ in allocators]
    rows, problems = summarize(runs, [w for w, _ in cmds], names)
    table = markdown_table(rows)
    load1 = os.getloadavg()
    notes = ("time: the workload's measured section (CLOCK_MONOTONIC); peak RSS: ru_maxrss; "
             "median over rounds, min–max spread; ×best peer: median / the best median among "
             "glibc, jemalloc, tcmalloc, mimalloc; min ×best min: fastest run / the fastest "
             "peer run (less sensitive to a busy machine). Load average %.2f before, %.2f after; "
             "%.0f s in all." % (load0[0], load1[0], time.monotonic() - t_start))

    raw_path = out_dir / ("%s-raw.csv" % stamp)
    sum_path = out_dir / ("%s-summary.csv" % stamp)
    md_path = out_dir / ("%s-summary.md" % stamp)
    write_csv(raw_path, RAW_FIELDS, runs)
    write_csv(sum_path, SUMMARY_FIELDS, rows, fmt_floats=True)
    with open(md_path, "w") as f:
        f.write("# Allocator benchmarks %s\n\n%s\n\n%s\n\n%s\n" % (stamp, info, table, notes))
        if problems:
            f.write("\n## Problems\n\n" + "".join("- %s\n" % p for p in problems))

    print()
    print(table)
    print()
    print(notes)
    print("wrote %s, %s, %s" % (raw_path, sum_path, md_path))
    if problems:
        print("\nPROBLEMS:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
    return 1 if (problems or interrupted) else 0


if __name__ == "__main__":
    sys.exit(main())
