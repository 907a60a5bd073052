#!/usr/bin/env python3
"""Benchmark driver: every workload under every allocator, chosen by LD_PRELOAD.

    python3 bench/run.py --quick              # everything, small sizes, 3 rounds, about 2 min
    python3 bench/run.py                      # everything, 5 rounds, about 14 min
    python3 bench/run.py --workloads 'ring-*,larson-*' --allocators glibc,gcmalloc
    python3 bench/run.py --workloads micro    # only the Google Benchmark microbenchmarks
    python3 bench/run.py --callgrind          # also instructions per malloc+free (valgrind)
    python3 bench/run.py --update-docs        # also rewrite docs/benchmarks.md's table
    python3 bench/run.py --list

Runs go in interleaved rounds (for each round, for each workload, every
allocator in turn), so drift in machine load hits all allocators alike. Each
run goes through build/bench/runone, which sets LD_PRELOAD for the program
only and reports the child's wait4() rusage (ru_maxrss = peak RSS).

Four kinds of workload:
  - workload programs (bench/workloads/*.c): the time is the program's own
    measured section (its `time_s=` line); its `checksum=` must be the same
    under every allocator, and its `malloc_lib=` must name the preloaded
    library (so a preload that silently did not take is caught);
  - micro: build/bench/micro (Google Benchmark, bench/micro/micro.cc), run
    with --benchmark_format=json; ns per operation per benchmark, its own table;
  - real programs (python, sqlite): the time is the wall time of the program;
    the checksum is a hash of its output, which must equal the output without
    LD_PRELOAD (glibc);
  - redis: redis-server under the allocator on a free 127.0.0.1 port, driven
    by redis-benchmark; the figure is requests/s (higher is better, so its
    ratio is inverted: best peer's req/s / this req/s, > 1 = slower), and a
    check script's result is the checksum.

Writes to bench/results/: <stamp>-raw.csv (every run), <stamp>-summary.csv,
<stamp>-summary.md (the tables printed on the terminal), <stamp>.png (chart
of the ratios, gnuplot), and copies latest-summary.{md,csv} and latest.png
(the ones meant to be committed). Exit status 1 if any run failed or any
checksum differed.

To add a workload: build its program from bench/workloads/<name>.c (any .c
there is built into build/bench/<name>) and add one row to WORKLOADS below.
"""

import argparse
import atexit
import datetime
import fnmatch
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import socket
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
DEFAULT_GCMALLOC = REPO / "build" / "libgcmalloc.so"
DEFAULT_DOCS = REPO / "docs" / "benchmarks.md"
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")
PROGRAMS = BENCH_DIR / "programs"

# The workloads: (name, kind, command line, n, quick n). In the command line,
# {bin} is the directory of the built workload programs, {programs} is
# bench/programs and {n} the size: n, or the quick n under --quick (None: n //
# QUICK_DIVISOR). Multi-threaded shapes run with 1, 2 and 8 threads (8 is
# oversubscribed on a 2-core machine); their n is per thread. Sized for
# roughly 0.2-0.6 s of measured time each on glibc (quick: ~0.05-0.1 s).
WORKLOADS = [
    # kind "micro": Google Benchmark; n = --benchmark_min_time in ms.
    ("micro",         "micro",    "{bin}/micro",                       100, 5),
    # kind "workload": bench/workloads/*.c
    ("pairs-cycle",   "workload", "{bin}/pairs cycle {n}",      60_000_000, 6_000_000),   # malloc+free, sizes 16,32..1024 in turn
    ("pairs-random",  "workload", "{bin}/pairs random {n}",     50_000_000, 5_000_000),   # malloc+free, sizes random 16..1024
    ("ring-1k",       "workload", "{bin}/ring fifo 1000 {n}",   25_000_000, 3_000_000),   # FIFO ring of 1000 live objects
    ("ring-100k",     "workload", "{bin}/ring fifo 100000 {n}", 12_000_000, 1_500_000),   # FIFO ring of 100000 live objects
    ("lifo-1k",       "workload", "{bin}/ring lifo 1000 {n}",   12_000_000, 1_500_000),   # push 1000, pop 1000 (stack order)
    ("prodcons",      "workload", "{bin}/prodcons {n}",          2_000_000, 250_000),     # 2 threads: malloc in one, free in other
    ("larson-1",      "workload", "{bin}/larson 1 {n}",          6_000_000, 800_000),     # server churn, objects handed between threads
    ("larson-2",      "workload", "{bin}/larson 2 {n}",          3_000_000, 400_000),
    ("larson-8",      "workload", "{bin}/larson 8 {n}",            500_000, 70_000),
    ("xmalloc-1",     "workload", "{bin}/xmalloc 1 {n}",         8_000_000, 1_000_000),   # producer/consumer ring of T threads, batches
    ("xmalloc-2",     "workload", "{bin}/xmalloc 2 {n}",         2_000_000, 250_000),
    ("xmalloc-8",     "workload", "{bin}/xmalloc 8 {n}",           300_000, 40_000),
    ("cache-scratch-1", "workload", "{bin}/cache scratch 1 {n} 100", 3_000_000, 400_000),  # passive false sharing
    ("cache-scratch-2", "workload", "{bin}/cache scratch 2 {n} 100", 1_500_000, 200_000),
    ("cache-scratch-8", "workload", "{bin}/cache scratch 8 {n} 100",   400_000, 80_000),
    ("cache-thrash-1",  "workload", "{bin}/cache thrash 1 {n} 100",  3_000_000, 400_000),  # active false sharing
    ("cache-thrash-2",  "workload", "{bin}/cache thrash 2 {n} 100",  1_500_000, 200_000),
    ("cache-thrash-8",  "workload", "{bin}/cache thrash 8 {n} 100",    400_000, 80_000),
    ("randmix-1",     "workload", "{bin}/randmix 1 {n}",         1_000_000, 150_000),     # alloc-test/rptest-like mix of sizes and lifetimes
    ("randmix-2",     "workload", "{bin}/randmix 2 {n}",           500_000, 75_000),
    ("randmix-8",     "workload", "{bin}/randmix 8 {n}",           100_000, 15_000),
    ("frag",          "workload", "{bin}/frag {n}",                500_000, 100_000),     # small, free every other, larger: peak + final RSS
    ("glibc-simple",  "workload", "{bin}/tight simple {n}",     40_000_000, 5_000_000),   # tight small-object loop, one thread
    ("glibc-thread-1", "workload", "{bin}/tight thread 1 {n}",   8_000_000, 2_500_000),   # tight loop on 128 live small objects
    ("glibc-thread-2", "workload", "{bin}/tight thread 2 {n}",   4_000_000, 1_250_000),
    ("glibc-thread-8", "workload", "{bin}/tight thread 8 {n}",   1_000_000, 300_000),
    ("large-alloc",   "workload", "{bin}/large alloc {n}",             200, 30),          # 256 KiB-16 MiB blocks, 8 live
    ("large-realloc", "workload", "{bin}/large realloc {n}",            50, 8),           # realloc growth 256 KiB -> 16 MiB
    # real programs: output compared with the run without LD_PRELOAD
    ("python",        "program",  "/usr/bin/python3 {programs}/pyrun.py {n}",    80_000, 15_000),
    ("sqlite",        "program",  "sqlite3 :memory: '.parameter set @n {n}' '.read {programs}/sqlite_workload.sql'",
                                                                    300_000, 40_000),
    # redis: n = requests per test (redis-benchmark -n)
    ("redis",         "redis",    "redis-server",                    50_000, 15_000),
]
QUICK_DIVISOR = 8
QUICK_ROUNDS = 3
REDIS_TESTS = "set,get,incr,lpush,lpop,sadd,hset"
REDIS_BENCH = ["-q", "-P", "8", "-c", "10", "-r", "100000", "-d", "64", "-t", REDIS_TESTS]

# Callgrind (--callgrind): instructions per operation from two iteration counts.
CALLGRIND_CASES = [
    ("pairs-cycle", "{bin}/pairs cycle {n}"),
    ("pairs-random", "{bin}/pairs random {n}"),
    ("ring-1k", "{bin}/ring fifo 1000 {n}"),
    ("lifo-1k", "{bin}/ring lifo 1000 {n}"),
]
CALLGRIND_N = (100_000, 300_000)

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

RAW_FIELDS = ["round", "workload", "kind", "allocator", "library", "command", "status", "error",
              "time_s", "unit", "maxrss_kib", "wall_s", "utime_s", "stime_s", "checksum",
              "malloc_lib", "ops", "self_hwm_kib", "rss_final_kib"]
# For kind micro (unit ns/op), redis (req/s) and callgrind (Ir/op), the time_*
# columns hold that figure instead of seconds.
SUMMARY_FIELDS = ["workload", "kind", "unit", "allocator", "runs_ok", "runs_failed",
                  "time_median_s", "time_min_s", "time_max_s", "time_q1_s", "time_q3_s",
                  "time_vs_best_peer", "time_min_vs_best_peer_min", "rss_median_kib", "rss_min_kib", "rss_max_kib",
                  "rss_q1_kib", "rss_q3_kib", "rss_vs_best_peer", "rss_final_median_kib",
                  "rss_final_vs_best_peer", "checksum", "checksum_ok"]
END_MARKER = "<!-- end of generated table -->"
START_MARKER = "<!-- generated by bench/run.py --update-docs: edit below the end marker only -->"


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


def clean_env():
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)  # runone sets it for the program only
    return env


def runone_cmd(runone, lib, argv, timeout):
    cmd = [str(runone), "-t", str(int(timeout))]
    if lib is not None:
        cmd += ["-p", str(lib)]
    return cmd + ["--"] + list(argv)


def finish(res, kv, err):
    """Fill in runone's figures and an error for a bad exit status."""
    res.update({
        "status": kv.get("runone_status", res.get("status", "?")),
        "maxrss_kib": kv.get("runone_maxrss_kib", ""),
        "wall_s": kv.get("runone_wall_s", ""),
        "utime_s": kv.get("runone_utime_s", ""),
        "stime_s": kv.get("runone_stime_s", ""),
    })
    if res["status"] != "0" and not res.get("error"):
        st = res["status"]
        why = {"124": "timeout", "127": "exec failed"}.get(st)
        if why is None and st.isdigit() and int(st) > 128:
            why = "killed by signal %d" % (int(st) - 128)
        tail = err.strip().splitlines()[-1:] if err.strip() else []
        res["error"] = "exit %s%s%s" % (st, " (%s)" % why if why else "",
                                        ": " + tail[0][:200] if tail else "")
    if not res.get("error") and "cannot be preloaded" in err:
        res["error"] = "preload failed: " + err.strip().splitlines()[0][:200]
    return res


def launch(runone, lib, argv, timeout, cwd=None):
    """Run argv under the allocator lib through runone; (stdout, stderr, kv, res)."""
    proc = subprocess.Popen(runone_cmd(runone, lib, argv, timeout), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env(), text=True, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    kv = parse_kv(out)
    res = {"status": str(proc.returncode), "error": "", "time_s": "", "checksum": "",
           "malloc_lib": kv.get("malloc_lib", ""), "ops": kv.get("ops", ""),
           "self_hwm_kib": kv.get("self_hwm_kib", ""), "rss_final_kib": kv.get("rss_final_kib", ""),
           "unit": "s"}
    return out, err, kv, finish(res, kv, err)


def run_workload(runone, lib, argv, timeout):
    """A bench/workloads program: its time_s, checksum and malloc_lib lines."""
    out, err, kv, res = launch(runone, lib, argv, timeout)
    res["time_s"] = kv.get("time_s", "")
    res["checksum"] = kv.get("checksum", "")
    if res["error"]:
        pass
    elif not res["time_s"] or not res["checksum"]:
        res["error"] = "no time_s/checksum in output"
    elif not malloc_lib_ok(lib, res["malloc_lib"]):
        res["error"] = "malloc came from %s, not %s" % (res["malloc_lib"] or "?", lib or "libc")
    return res


def output_digest(out):
    """Hash of a program's output, without runone's lines and malloc_lib."""
    lines = [l for l in out.splitlines() if not l.startswith(("runone_", "malloc_lib="))]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def run_program(runone, lib, argv, timeout, tmp):
    """A real program: wall time, hash of its output (compared across allocators)."""
    out, err, kv, res = launch(runone, lib, argv, timeout, cwd=tmp)
    res["time_s"] = res["wall_s"]
    res["checksum"] = output_digest(out)
    if not res["error"] and res["malloc_lib"] and not malloc_lib_ok(lib, res["malloc_lib"]):
        res["error"] = "malloc came from %s, not %s" % (res["malloc_lib"], lib or "libc")
    return res


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_pid(pid):
    try:
        kids = Path("/proc/%d/task/%d/children" % (pid, pid)).read_text().split()
        return int(kids[0]) if kids else None
    except (OSError, ValueError):
        return None


REDIS_CHECK = """
local s = 0
for _, k in ipairs(redis.call('keys', 'counter:*')) do s = s + tonumber(redis.call('get', k)) end
for i = 1, 20000 do
  redis.call('hset', 'chk:h', 'f' .. i, string.rep('v', i % 97))
  redis.call('rpush', 'chk:l', i * 7)
  redis.call('sadd', 'chk:s', i % 5000)
end
local r = {s, redis.call('hlen', 'chk:h'), redis.call('llen', 'chk:l'), redis.call('scard', 'chk:s'),
           redis.call('hget', 'chk:h', 'f777'), redis.call('lindex', 'chk:l', 12345),
           redis.call('strlen', 'chk:x')}
redis.call('del', 'chk:h', 'chk:l', 'chk:s')
return r
"""


def run_redis(runone, lib, n, timeout, tmp):
    """redis-server under lib (the C library's malloc: preload libc itself, as
    Debian's redis-server links jemalloc), redis-benchmark against it."""
    res = {"status": "?", "error": "", "time_s": "", "checksum": "", "malloc_lib": "", "ops": "",
           "self_hwm_kib": "", "rss_final_kib": "", "unit": "req/s"}
    preload = lib if lib is not None else LIBC
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
            "--dir", str(tmp), "--protected-mode", "no"]
    proc = subprocess.Popen(runone_cmd(runone, preload, argv, timeout), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env(), text=True)

    def cli(*args, t=30):
        r = subprocess.run(["redis-cli", "-p", str(port)] + list(args), capture_output=True,
                           text=True, timeout=t, env=clean_env())
        return r.stdout.strip()

    try:
        deadline = time.monotonic() + 15
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if cli("ping", t=5) == "PONG":
                    up = True
                    break
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.05)
        if not up:
            res["error"] = "redis-server did not start"
        else:
            pid = child_pid(proc.pid)
            try:
                maps = Path("/proc/%d/maps" % pid).read_text() if pid else ""
            except OSError:
                maps = ""
            real = os.path.realpath(preload)
            mapped = any(os.path.realpath(l.split()[-1]) == real for l in maps.splitlines()
                         if l.split() and l.split()[-1].startswith("/"))
            res["malloc_lib"] = str(preload) if mapped else "?"
            if not mapped:
                res["error"] = "%s not mapped in redis-server" % preload
            t0 = time.monotonic()
            b = subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(n)] + REDIS_BENCH,
                               capture_output=True, text=True, timeout=timeout, env=clean_env())
            wall = time.monotonic() - t0
            rps = []
            for line in re.split(r"[\r\n]+", b.stdout):
                m = re.match(r"\s*([A-Z_0-9]+[^:]*): ([\d.]+) requests per second", line)
                if m and "needed to" not in m.group(1):
                    rps.append(float(m.group(2)))
            want = len(REDIS_TESTS.split(","))
            check = cli("eval", REDIS_CHECK, "0")
            if not res["error"]:
                if b.returncode != 0 or len(rps) != want:
                    res["error"] = "redis-benchmark: %d of %d results (exit %d)" % (len(rps), want, b.returncode)
                elif check.splitlines()[:1] != [str(n)]:
                    res["error"] = "wrong INCR total: %r, expected %d" % (check.splitlines()[:1], n)
                elif any(r <= 0 for r in rps):
                    res["error"] = "zero throughput"
            if rps and all(r > 0 for r in rps):
                # total requests / total time over the tests (harmonic mean)
                res["time_s"] = "%.1f" % (len(rps) / sum(1.0 / r for r in rps))
            res["checksum"] = hashlib.sha256(check.encode()).hexdigest()[:16]
            res["ops"] = str(n * want)
            res["bench_wall_s"] = wall
            cli("shutdown", "nosave", t=10)
    except subprocess.TimeoutExpired:
        res["error"] = res["error"] or "timeout"
    finally:
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # runone: its child dies with it (PR_SET_PDEATHSIG)
            out, err = proc.communicate()
            res["error"] = res["error"] or "redis-server did not shut down"
    kv = parse_kv(out)
    finish(res, kv, err)
    return res


def run_micro(runone, lib, argv, timeout):
    """Google Benchmark binary: ns/op per benchmark (1e9 / items_per_second)."""
    out, err, kv, res = launch(runone, lib, argv, timeout)
    res["unit"] = "ns/op"
    res["bench"] = {}
    if res["error"]:
        return res
    try:
        i = out.index("{")
        doc, _ = json.JSONDecoder().raw_decode(out[i:])
    except ValueError as e:
        res["error"] = "no JSON output (%s)" % e
        return res
    res["malloc_lib"] = doc.get("context", {}).get("malloc_lib", "")
    if not malloc_lib_ok(lib, res["malloc_lib"]):
        res["error"] = "malloc came from %s, not %s" % (res["malloc_lib"] or "?", lib or "libc")
        return res
    errors = []
    for b in doc.get("benchmarks", []):
        name = b["name"].replace("BM_", "").replace("/real_time", "")
        if b.get("error_occurred"):
            errors.append("%s: %s" % (name, b.get("error_message", "error")))
        elif b.get("items_per_second"):
            res["bench"][name] = 1e9 / b["items_per_second"]
    if errors:
        res["error"] = "; ".join(errors)[:300]
    elif not res["bench"]:
        res["error"] = "no benchmarks in output"
    res["time_s"] = "%.3f" % math.exp(statistics.fmean(math.log(v) for v in res["bench"].values())) \
        if res["bench"] else ""
    res["checksum"] = "-"
    return res


def quartiles(xs):
    if len(xs) < 2:
        return xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def summarize(runs, workloads, allocators, kinds):
    """Per (workload, allocator) stats, ratios to the best peer, checksum check.
    kinds: workload -> kind; for redis (req/s) higher is better and the ratio
    is inverted (best peer / this), so > 1 means slower everywhere."""
    rows, problems = [], []
    for w in workloads:
        higher = kinds[w] == "redis"
        per = {}
        for a in allocators:
            rs = [r for r in runs if r["workload"] == w and r["allocator"] == a]
            ok = [r for r in rs if not r["error"]]
            s = {"workload": w, "kind": kinds[w], "unit": rs[0]["unit"] if rs else "s",
                 "allocator": a, "runs_ok": len(ok), "runs_failed": len(rs) - len(ok)}
            for r in rs:
                if r["error"]:
                    problems.append("%s / %s round %s: %s" % (w, a, r["round"], r["error"]))
            if ok:
                t = sorted(float(r["time_s"]) for r in ok)
                m = sorted(int(r["maxrss_kib"]) for r in ok if r["maxrss_kib"])
                f = sorted(int(r["rss_final_kib"]) for r in ok if r.get("rss_final_kib"))
                s.update(time_median_s=statistics.median(t), time_min_s=t[0], time_max_s=t[-1])
                if higher:  # the "best" run is the highest
                    s["time_min_s"], s["time_max_s"] = t[-1], t[0]
                s["time_q1_s"], s["time_q3_s"] = quartiles(t)
                if m:
                    s.update(rss_median_kib=statistics.median(m), rss_min_kib=m[0], rss_max_kib=m[-1])
                    s["rss_q1_kib"], s["rss_q3_kib"] = quartiles(m)
                if f:
                    s["rss_final_median_kib"] = statistics.median(f)
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
        # The reference is the checksum most peers agree on (or most allocators);
        # for real programs, the output without LD_PRELOAD (glibc) if there is one.
        votes = {c: ("glibc" in al and kinds[w] == "program", len(al & PEER_NAMES), len(al))
                 for c, al in by_sum.items()}
        ref = max(votes, key=votes.get) if votes else None
        for a in allocators:
            if "checksum" in per[a]:
                per[a]["checksum_ok"] = per[a]["checksum"] == ref
        peers = [per[a] for a in allocators if a in PEER_NAMES and "time_median_s" in per[a]]
        pick = max if higher else min
        best_t = pick((p["time_median_s"] for p in peers), default=None)
        best_tmin = pick((p["time_min_s"] for p in peers), default=None)
        best_m = min((p["rss_median_kib"] for p in peers if "rss_median_kib" in p), default=None)
        best_f = min((p["rss_final_median_kib"] for p in peers if "rss_final_median_kib" in p), default=None)
        for a in allocators:
            s = per[a]
            if best_t and s.get("time_median_s"):
                if higher:
                    s["time_vs_best_peer"] = best_t / s["time_median_s"]
                    s["time_min_vs_best_peer_min"] = best_tmin / s["time_min_s"]
                else:
                    s["time_vs_best_peer"] = s["time_median_s"] / best_t
                    s["time_min_vs_best_peer_min"] = s["time_min_s"] / best_tmin
            if best_m and "rss_median_kib" in s:
                s["rss_vs_best_peer"] = s["rss_median_kib"] / best_m
            if best_f and "rss_final_median_kib" in s:
                s["rss_final_vs_best_peer"] = s["rss_final_median_kib"] / best_f
            rows.append(s)
    return rows, problems


def summarize_micro(micro_runs, allocators):
    """micro_runs: (round, allocator, {bench: ns/op}) -> rows per (bench, allocator)."""
    names = []
    for _, _, d in micro_runs:
        for b in d:
            if b not in names:
                names.append(b)
    rows = []
    for b in names:
        per = {}
        for a in allocators:
            v = sorted(d[b] for _, al, d in micro_runs if al == a and b in d)
            s = {"workload": "micro/" + b, "kind": "micro", "unit": "ns/op", "allocator": a,
                 "runs_ok": len(v), "runs_failed": 0}
            if v:
                s.update(time_median_s=statistics.median(v), time_min_s=v[0], time_max_s=v[-1])
                s["time_q1_s"], s["time_q3_s"] = quartiles(v)
            per[a] = s
        peers = [per[a] for a in allocators if a in PEER_NAMES and "time_median_s" in per[a]]
        best = min((p["time_median_s"] for p in peers), default=None)
        best_min = min((p["time_min_s"] for p in peers), default=None)
        for a in allocators:
            if best and "time_median_s" in per[a]:
                per[a]["time_vs_best_peer"] = per[a]["time_median_s"] / best
                per[a]["time_min_vs_best_peer_min"] = per[a]["time_min_s"] / best_min
            rows.append(per[a])
    return rows


def fmt_ratio(x):
    return "" if x is None else "%.2f" % x


def fmt_value(v, unit):
    if unit == "req/s":
        return "%.0f req/s" % v
    if unit in ("ns/op", "Ir/op"):
        return "%.1f" % v
    return "%.3f" % v


def markdown_table(rows):
    has_final = any("rss_final_median_kib" in s for s in rows)
    head = ["workload", "allocator", "time median (s)", "time min–max (s)", "time ×best peer", "min ×best min",
            "peak RSS median (MiB)", "RSS min–max (MiB)", "RSS ×best peer"]
    if has_final:
        head += ["final RSS (MiB)", "final ×best"]
    head += ["runs"]
    body = []
    for s in rows:
        if "time_median_s" not in s:
            body.append([s["workload"], s["allocator"], "FAILED"] + [""] * (len(head) - 4) +
                        ["%d ok / %d failed" % (s["runs_ok"], s["runs_failed"])])
            continue
        mib = lambda k: s[k] / 1024 if k in s else None
        rss = "" if mib("rss_median_kib") is None else "%.1f" % mib("rss_median_kib")
        rss_rng = "" if mib("rss_min_kib") is None else "%.1f–%.1f" % (mib("rss_min_kib"), mib("rss_max_kib"))
        runs = "%d" % s["runs_ok"] + (" (+%d failed)" % s["runs_failed"] if s["runs_failed"] else "")
        if not s.get("checksum_ok", True):
            runs += " CHECKSUM MISMATCH"
        u = s.get("unit", "s")
        lo, hi = sorted((s["time_min_s"], s["time_max_s"]))
        rng = ("%.0f–%.0f" if u == "req/s" else "%.3f–%.3f") % (lo, hi)
        cells = [s["workload"], s["allocator"], fmt_value(s["time_median_s"], u), rng,
                 fmt_ratio(s.get("time_vs_best_peer")), fmt_ratio(s.get("time_min_vs_best_peer_min")),
                 rss, rss_rng, fmt_ratio(s.get("rss_vs_best_peer"))]
        if has_final:
            f = mib("rss_final_median_kib")
            cells += ["" if f is None else "%.1f" % f, fmt_ratio(s.get("rss_final_vs_best_peer"))]
        body.append(cells + [runs])
    right = set(range(2, len(head) - 1))
    return render_table(head, body, right)


def pivot_table(rows, allocators, first="benchmark", unit=""):
    """One row per workload, one column per allocator: 'value (ratio×)'."""
    order, cells = [], {}
    for s in rows:
        if s["workload"] not in cells:
            order.append(s["workload"])
            cells[s["workload"]] = {}
        if "time_median_s" in s:
            v = fmt_value(s["time_median_s"], s.get("unit", unit))
            r = s.get("time_vs_best_peer")
            cells[s["workload"]][s["allocator"]] = v + ("" if r is None else " (%.2f×)" % r)
        else:
            cells[s["workload"]][s["allocator"]] = "FAILED"
    head = [first] + list(allocators)
    body = [[w.split("/", 1)[1] if w.startswith(("micro/", "callgrind/")) else w] +
            [cells[w].get(a, "") for a in allocators] for w in order]
    return render_table(head, body, set(range(1, len(head))))


def callgrind_ir(outfile):
    for line in open(outfile):
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError("no summary line in %s" % outfile)


def run_callgrind(allocators, bindir, tmp, progress):
    """Ir per operation: (Ir(N2) - Ir(N1)) / (N2 - N1), LD_PRELOAD in
    valgrind's environment (valgrind passes it on to the workload)."""
    runs, problems = [], []
    if not shutil.which("valgrind"):
        return runs, ["--callgrind: valgrind not found"]
    total, k = len(CALLGRIND_CASES) * len(allocators), 0
    for cname, cmd in CALLGRIND_CASES:
        for aname, lib in allocators:
            k += 1
            irs, sums, err = [], set(), ""
            for n in CALLGRIND_N:
                argv = shlex.split(cmd.format(bin=bindir, n=n))
                out_file = tmp / ("cg-%s-%s-%d.out" % (cname, aname, n))
                env = clean_env()
                if lib is not None:
                    env["LD_PRELOAD"] = str(lib)
                p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=%s" % out_file]
                                   + argv, capture_output=True, text=True, env=env, timeout=600)
                kv = parse_kv(p.stdout)
                if p.returncode != 0:
                    err = "valgrind exit %d: %s" % (p.returncode, (p.stderr.strip().splitlines() or [""])[-1][:200])
                    break
                if not malloc_lib_ok(lib, kv.get("malloc_lib")):
                    err = "malloc came from %s" % kv.get("malloc_lib", "?")
                    break
                irs.append(callgrind_ir(out_file))
                sums.add((n, kv.get("checksum")))
            r = {"round": 1, "workload": "callgrind/" + cname, "kind": "callgrind", "allocator": aname,
                 "unit": "Ir/op", "error": err, "checksum": " ".join("%d:%s" % x for x in sorted(sums)),
                 "maxrss_kib": "", "status": "0" if not err else "1"}
            if not err:
                r["time_s"] = (irs[1] - irs[0]) / (CALLGRIND_N[1] - CALLGRIND_N[0])
            runs.append(r)
            progress("[%3d/%d] callgrind  %-13s %-9s %s" % (
                k, total, cname, aname, ("FAILED: " + err) if err else "%.1f Ir per op" % r["time_s"]))
    return runs, problems


GNUPLOT = r"""
set terminal pngcairo size 1800,1250 font "sans,11"
set output '{png}'
set datafile separator "\t"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set ytics ("1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64, "128" 128)
set grid ytics lc rgb "#bbbbbb"
set xtics rotate by -40 left font "sans,10" nomirror
set key top left horizontal reverse Left samplen 2 width 2 font "sans,11" opaque box
set lmargin 10
set bmargin 7
set multiplot layout 2,1 title "{title}" font "sans,13"
set ylabel "time ÷ best peer (log)"
set yrange [{tlo}:{thi}]
set title "Time relative to the best of glibc/jemalloc/tcmalloc/mimalloc (median; lower is better; redis: best req/s ÷ req/s)"
plot for [i=2:{ncol}] '{tdat}' using i:xtic(1) title columnheader(i) lc rgb word("{colors}", i-1), 1 with lines dt 2 lc rgb "black" notitle
set ylabel "peak RSS ÷ best peer (log)"
set yrange [{rlo}:{rhi}]
set title "Peak RSS relative to the best peer (frag-final: RSS at the end of frag; lower is better)"
plot for [i=2:{ncol}] '{rdat}' using i:xtic(1) title columnheader(i) lc rgb word("{colors}", i-1), 1 with lines dt 2 lc rgb "black" notitle
unset multiplot
"""
COLORS = {"glibc": "#9e9e9e", "jemalloc": "#4e79a7", "tcmalloc": "#f28e2b", "mimalloc": "#59a14f",
          "gcmalloc": "#d62728"}


def write_chart(rows, allocators, png, title, tmp):
    """PNG with gnuplot: time ratio and RSS ratio per workload and allocator."""
    if not shutil.which("gnuplot"):
        return "gnuplot not found (apt-get install gnuplot-nox): no chart"
    rows = [s for s in rows if s["kind"] in ("workload", "program", "redis")]
    order = []
    for s in rows:
        if s["workload"] not in order:
            order.append(s["workload"])
    get = {(s["workload"], s["allocator"]): s for s in rows}

    def val(w, a, key):
        v = get.get((w, a), {}).get(key)
        return "NaN" if v is None else "%.4f" % v
    tdat, rdat = tmp / "time.dat", tmp / "rss.dat"
    with open(tdat, "w") as f:
        f.write("workload\t" + "\t".join(allocators) + "\n")
        for w in order:
            f.write(w + "\t" + "\t".join(val(w, a, "time_vs_best_peer") for a in allocators) + "\n")
    with open(rdat, "w") as f:
        f.write("workload\t" + "\t".join(allocators) + "\n")
        for w in order:
            f.write(w + "\t" + "\t".join(val(w, a, "rss_vs_best_peer") for a in allocators) + "\n")
            if any(get.get((w, a), {}).get("rss_final_vs_best_peer") for a in allocators):
                f.write(w + "-final\t" + "\t".join(val(w, a, "rss_final_vs_best_peer")
                                                   for a in allocators) + "\n")
    def span(keys):
        vs = [s[k] for s in rows for k in keys if s.get(k)]
        lo = min([0.5] + [v / 1.15 for v in vs])
        hi = max([2.0] + [v * 1.6 for v in vs])  # room for the key above the bars
        return "%.4g" % lo, "%.4g" % hi
    (tlo, thi), (rlo, rhi) = span(["time_vs_best_peer"]), span(["rss_vs_best_peer", "rss_final_vs_best_peer"])
    script = GNUPLOT.format(png=png, tdat=tdat, rdat=rdat, ncol=len(allocators) + 1,
                            tlo=tlo, thi=thi, rlo=rlo, rhi=rhi,
                            title=title.replace('"', "'"),
                            colors=" ".join(COLORS.get(a, "#000000") for a in allocators))
    (tmp / "chart.gp").write_text(script)
    p = subprocess.run(["gnuplot", str(tmp / "chart.gp")], capture_output=True, text=True)
    if p.returncode != 0:
        return "gnuplot failed: " + p.stderr.strip()[-300:]
    return None


def docs_section(rows, micro_rows, cg_rows, allocators, info_date, machine, command, load, png_rel):
    """The generated part of docs/benchmarks.md."""
    main = [s for s in rows if s["kind"] in ("workload", "program", "redis")]
    order = []
    for s in main:
        if s["workload"] not in order:
            order.append(s["workload"])
    get = {(s["workload"], s["allocator"]): s for s in main}
    peers = [a for a in allocators if a != "gcmalloc"]
    has_gcm = "gcmalloc" in allocators
    head = "| workload | " + " | ".join(("**%s**" % a) if a == "gcmalloc" else a for a in allocators)
    if has_gcm:
        head += " | gcmalloc peak RSS (MiB) | RSS ×best peer |"
    else:
        head += " |"
    sep = "|---|" + "--:|" * (len(allocators) + (2 if has_gcm else 0))
    lines = [head, sep]
    for w in order:
        cells = []
        for a in allocators:
            s = get.get((w, a), {})
            if "time_median_s" not in s:
                cells.append("FAILED")
                continue
            v = fmt_value(s["time_median_s"], s.get("unit", "s"))
            v = v + " s" if s.get("unit", "s") == "s" else v
            r = s.get("time_vs_best_peer")
            cells.append(v + ("" if r is None else " (%.2f×)" % r))
        if has_gcm:
            g = get.get((w, "gcmalloc"), {})
            rss = "%.1f" % (g["rss_median_kib"] / 1024) if "rss_median_kib" in g else ""
            rr = fmt_ratio(g.get("rss_vs_best_peer"))
            if "rss_final_median_kib" in g:
                rss += " (final %.1f)" % (g["rss_final_median_kib"] / 1024)
                rr += " (final %s)" % fmt_ratio(g.get("rss_final_vs_best_peer"))
            cells += [rss, rr]
        lines.append("| %s | %s |" % (w, " | ".join(cells)))
    out = [
        "# Benchmarks", "", START_MARKER, "",
        "Measured side by side in one run by `bench/run.py` (`make bench` runs its quick mode): every",
        "workload under glibc (no preload), jemalloc, tcmalloc (minimal), mimalloc and gcmalloc via",
        "LD_PRELOAD, in interleaved rounds. Figures are medians; \"×\" is the ratio to the best of the",
        "peers (%s) in the same run, lower is better; for redis the figure is requests/s and" % ", ".join(
            a for a in peers),
        "the ratio is inverted (best peer's req/s ÷ this one's). Peak RSS is the child's `ru_maxrss`.",
        "",
        "Latest run: %s, %s; load average %s. Command: `%s`." % (info_date, machine, load, command),
        "",
    ] + lines
    if micro_rows:
        out += ["", "Microbenchmarks (Google Benchmark, `build/bench/micro`), ns per allocation + free:", "",
                pivot_table(micro_rows, allocators)]
    if cg_rows:
        out += ["", "Instructions per operation (callgrind, (Ir(N2) − Ir(N1)) / (N2 − N1), including the "
                "workload's own instructions, the same for every allocator):", "",
                pivot_table(cg_rows, allocators, first="workload")]
    out += ["", "![time and RSS ratios per workload](%s)" % png_rel, "", END_MARKER]
    return "\n".join(out) + "\n"


def update_docs(path, section):
    """Replace the generated part of path (from its start, or from the start
    marker, to the end marker) with section; keep everything after the end
    marker. Without an end marker: replace up to the end of the first
    Markdown table (and add the marker there)."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    lines = text.splitlines(keepends=True)
    if END_MARKER in text:
        before_end, _, after = text.partition(END_MARKER)
        after = after[1:] if after.startswith("\n") else after
    else:
        end = 0
        in_table = False
        for i, l in enumerate(lines):
            if l.startswith("|"):
                in_table = True
            elif in_table:
                end = i
                break
        else:
            end = len(lines) if in_table else 0
        after = "".join(lines[end:])
        if not in_table:  # no table: keep the whole old text after the new section
            after = text
    path.write_text(section + (after if after.startswith("\n") or not after else "\n" + after))


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
                    help="small sizes and %d rounds: everything in about 2 minutes" % QUICK_ROUNDS)
    ap.add_argument("--callgrind", action="store_true",
                    help="also count instructions per malloc+free with valgrind --tool=callgrind "
                    "(pairs, ring, lifo; about a minute)")
    ap.add_argument("--callgrind-only", action="store_true", help="only the --callgrind part")
    ap.add_argument("--update-docs", action="store_true",
                    help="rewrite the generated table section of --docs (text after the line %s is kept)"
                    % END_MARKER)
    ap.add_argument("--docs", default=str(DEFAULT_DOCS), help="document for --update-docs (default %(default)s)")
    ap.add_argument("--no-chart", action="store_true", help="do not draw the PNG chart")
    ap.add_argument("--gcmalloc", default=str(DEFAULT_GCMALLOC), help="gcmalloc library (default %(default)s)")
    ap.add_argument("--bin", default=str(DEFAULT_BIN), help="built workload programs (default %(default)s)")
    ap.add_argument("--out", default=str(BENCH_DIR / "results"), help="results directory (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per run (default %(default)s)")
    ap.add_argument("--list", action="store_true", help="list workloads and allocators, then exit")
    args = ap.parse_args()

    allocs_all = PEERS + [("gcmalloc", Path(args.gcmalloc))]
    if args.list:
        for name, kind, cmd, n, qn in WORKLOADS:
            print("%-16s %-8s %s" % (name, kind, cmd.format(bin=args.bin, n=n, programs=PROGRAMS)))
        for name, lib in allocs_all:
            print("%-16s %s" % (name, lib or "(no preload)"))
        return 0

    if args.callgrind_only:
        workloads = []
        args.callgrind = True
    elif args.workloads == "all":
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
    if not allocators or (not workloads and not args.callgrind):
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
    cmds, kinds = [], {}
    for name, kind, cmd, n, qn in workloads:
        if args.quick:
            n = qn if qn is not None else max(1, n // QUICK_DIVISOR)
        if kind == "micro":
            argv = shlex.split(cmd.format(bin=bindir)) + [
                "--benchmark_format=json", "--benchmark_min_time=%g" % (n / 1000.0)]
        elif kind == "redis":
            argv = [cmd, str(n)]
        else:
            argv = shlex.split(cmd.format(bin=bindir, n=n, programs=PROGRAMS))
        exe = argv[0]
        if not (os.path.isfile(exe) or ("/" not in exe and shutil.which(exe))):
            print("error: %s: %s not found (build the benchmarks, or install it)" % (name, exe), file=sys.stderr)
            return 2
        if kind == "redis" and not shutil.which("redis-benchmark"):
            print("error: redis: redis-benchmark not found (apt-get install redis-tools)", file=sys.stderr)
            return 2
        cmds.append((name, kind, argv))
        kinds[name] = kind

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
    work_dir = snap_dir / "work"
    work_dir.mkdir()

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now()
    stamp = now.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    info = ("%s, %s, %s, git %s, %d round(s)%s, allocators: %s" % (
        now.strftime("%Y-%m-%d %H:%M"), platform.node(), platform.release(),
        git_rev(), rounds, " (--quick)" if args.quick else "",
        ", ".join("%s=%s" % (a, lib_desc[a]) for a, _ in allocators)))
    print(info)
    load0 = os.getloadavg()

    runs, micro_runs = [], []
    total, k, t_start = rounds * len(cmds) * len(allocators), 0, time.monotonic()
    interrupted = False
    try:
        for rnd in range(1, rounds + 1):
            for wname, kind, argv in cmds:
                for aname, lib in allocators:
                    k += 1
                    if kind == "micro":
                        res = run_micro(runone, lib, argv, args.timeout)
                        if not res["error"]:
                            micro_runs.append((rnd, aname, res["bench"]))
                    elif kind == "redis":
                        res = run_redis(runone, lib, int(argv[1]), args.timeout, work_dir)
                    elif kind == "program":
                        res = run_program(runone, lib, argv, args.timeout, work_dir)
                    else:
                        res = run_workload(runone, lib, argv, args.timeout)
                    res.update(round=rnd, workload=wname, kind=kind, allocator=aname,
                               library=lib_desc[aname], command=" ".join(argv))
                    runs.append(res)
                    if res["error"]:
                        desc = "FAILED: " + res["error"]
                    elif kind == "micro":
                        desc = "%d benchmarks, geometric mean %s ns/op" % (len(res["bench"]), res["time_s"])
                    else:
                        desc = "%s=%-9s rss=%7.1f MiB  checksum=%s" % (
                            "req/s" if kind == "redis" else "time_s", res["time_s"],
                            int(res["maxrss_kib"] or 0) / 1024, res["checksum"])
                        if res.get("rss_final_kib"):
                            desc += "  rss_final=%.1f MiB" % (int(res["rss_final_kib"]) / 1024)
                    print("[%3d/%d] round %d/%d  %-15s %-9s %s" % (
                        k, total, rnd, rounds, wname, aname, desc), flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: summarizing the runs so far", file=sys.stderr)

    names = [a for a, _ in allocators]
    cg_runs, cg_problems = [], []
    if args.callgrind and not interrupted:
        try:
            cg_runs, cg_problems = run_callgrind(allocators, bindir, work_dir, lambda s: print(s, flush=True))
        except KeyboardInterrupt:
            interrupted = True
    main_cmds = [(w, kd) for w, kd, _ in cmds if kd != "micro"]
    rows, problems = summarize([r for r in runs if r["kind"] != "micro"], [w for w, _ in main_cmds],
                               names, kinds)
    for r in runs:
        if r["kind"] == "micro" and r["error"]:
            problems.append("micro / %s round %s: %s" % (r["allocator"], r["round"], r["error"]))
    micro_rows = summarize_micro(micro_runs, names)
    cg_rows = []
    if cg_runs:
        cg_kinds = {r["workload"]: "callgrind" for r in cg_runs}
        cg_rows, p2 = summarize(cg_runs, list(dict.fromkeys(r["workload"] for r in cg_runs)), names, cg_kinds)
        problems += p2
    problems += cg_problems

    load1 = os.getloadavg()
    elapsed = time.monotonic() - t_start
    sections = []
    if rows:
        sections.append(("Workloads and programs", markdown_table(rows)))
    if micro_rows:
        sections.append(("Microbenchmarks: ns per operation (median over rounds; ×best peer)",
                         pivot_table(micro_rows, names)))
    if cg_rows:
        sections.append(("Callgrind: instructions per malloc+free, (Ir(N2) - Ir(N1)) / (N2 - N1), "
                         "N = %d, %d (includes the workload's own loop, the same for every allocator)"
                         % CALLGRIND_N, pivot_table(cg_rows, names, first="workload")))
    notes = ("time: the workload's measured section (CLOCK_MONOTONIC), or for python/sqlite the "
             "program's wall time; redis: requests/s (total requests / total time over %s), higher "
             "is better, so its ×best peer is inverted (best peer / this: > 1 = slower, like the rest); "
             "peak RSS: ru_maxrss; final RSS: frag's own figure at its end (/proc/self/statm); "
             "median over rounds, min–max spread; ×best peer: median / the best median among "
             "glibc, jemalloc, tcmalloc, mimalloc; min ×best min: fastest run / the fastest "
             "peer run (less sensitive to a busy machine); micro: 1e9 / items_per_second. "
             "redis under 'glibc' preloads libc.so.6 (Debian's redis-server links jemalloc). "
             "Load average %.2f before, %.2f after; %.0f s in all." % (
                 REDIS_TESTS, load0[0], load1[0], elapsed))
    body = "\n\n".join("## %s\n\n%s" % (t, tab) for t, tab in sections)

    raw_path = out_dir / ("%s-raw.csv" % stamp)
    sum_path = out_dir / ("%s-summary.csv" % stamp)
    md_path = out_dir / ("%s-summary.md" % stamp)
    png_path = out_dir / ("%s.png" % stamp)
    micro_raw = [{"round": rnd, "workload": "micro/" + b, "kind": "micro", "allocator": a, "unit": "ns/op",
                  "time_s": "%.3f" % v, "status": "0", "error": ""}
                 for rnd, a, d in micro_runs for b, v in d.items()]
    write_csv(raw_path, RAW_FIELDS, runs + micro_raw + cg_runs)
    write_csv(sum_path, SUMMARY_FIELDS, rows + micro_rows + cg_rows, fmt_floats=True)
    chart_note = None
    if not args.no_chart and rows:
        chart_note = write_chart(rows, names, png_path, "gcmalloc vs peers, %s%s" % (
            now.strftime("%Y-%m-%d %H:%M"), " (--quick)" if args.quick else ""), work_dir)
    with open(md_path, "w") as f:
        f.write("# Allocator benchmarks %s\n\n%s\n\n%s\n\n%s\n" % (stamp, info, body, notes))
        if chart_note is None and rows and not args.no_chart:
            f.write("\n![time and RSS ratios](%s)\n" % png_path.name)
        if problems:
            f.write("\n## Problems\n\n" + "".join("- %s\n" % p for p in problems))
    # The latest-* copies (the files meant to be committed) only for a run of
    # every workload, so a partial run does not replace them.
    complete = args.workloads == "all" and not args.callgrind_only and not interrupted
    if complete:
        shutil.copy2(md_path, out_dir / "latest-summary.md")
        shutil.copy2(sum_path, out_dir / "latest-summary.csv")
        if chart_note is None and not args.no_chart:
            shutil.copy2(png_path, out_dir / "latest.png")
    if complete and chart_note is None and not args.no_chart:
        # latest-summary.md sits next to latest.png
        txt = (out_dir / "latest-summary.md").read_text().replace("(%s)" % png_path.name, "(latest.png)")
        (out_dir / "latest-summary.md").write_text(txt)

    print()
    print(body)
    print()
    print(notes)
    print("wrote %s, %s, %s%s%s" % (
        raw_path, sum_path, md_path, ", " + str(png_path) if png_path.exists() else "",
        (" (and latest-summary.md/.csv%s)" % (", latest.png" if png_path.exists() else ""))
        if complete else " (a partial run: latest-summary.* and latest.png left alone)"))
    if chart_note and rows and not args.no_chart:
        print("chart: " + chart_note, file=sys.stderr)

    if args.update_docs:
        if interrupted or not rows:
            print("--update-docs: not updating %s (interrupted or no workload results)" % args.docs,
                  file=sys.stderr)
        else:
            cmdline = "python3 bench/run.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
            docs = Path(args.docs)
            try:
                png_rel = os.path.relpath(out_dir / "latest.png", docs.resolve().parent)
            except ValueError:
                png_rel = str(out_dir / "latest.png")
            section = docs_section(rows, micro_rows, cg_rows, names, now.strftime("%Y-%m-%d"),
                                   machine_desc(), cmdline, "%.1f before, %.1f after" % (load0[0], load1[0]),
                                   png_rel)
            update_docs(docs, section)
            print("updated %s" % docs)
    if problems:
        print("\nPROBLEMS:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
    return 1 if (problems or interrupted) else 0


if __name__ == "__main__":
    sys.exit(main())
