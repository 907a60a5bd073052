#!/bin/sh
# Build gcmalloc and its unit, stress and fuzz-replay tests with UBSan and
# with TSan (GCMALLOC_SANITIZE, cmake/sanitize.cmake), each in a build
# directory of its own, and run those tests there. The allocator is linked
# into the tests (not preloaded). `make check` runs this after ctest.
#
#   scripts/sanitize.sh [undefined] [thread]   (default: both)
#   SANITIZE_DIR=/tmp  put build-ubsan/ and build-tsan/ there (default: the
#                      source tree, next to build/)
#   GCM_SOAK_SECONDS   the soak test's duration here (default 10 per sanitizer)
#   GCM_FORK_STORM_FORKS  forks of the fork storm here (default 100; 1000 in ctest)
#   GCM_FUZZ_RANDOM_INPUTS  random inputs per fuzz replay here (default 40; 150/200 in ctest)
#
# What runs under TSan and what does not, and why: docs/reliability.md.
set -e
SRC=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SANITIZE_DIR:-$SRC}
JOBS=${JOBS:-2}
kinds=${*:-undefined thread}

# The unit and stress tests, and the fuzz harnesses' corpus replay.
tests=""
for f in "$SRC"/tests/unit/*/test_*.c "$SRC"/tests/stress/test_*.c "$SRC"/tests/fuzz/test_*.c; do
  rel=${f#"$SRC"/tests/}
  dir=$(dirname "$rel" | tr / _)
  tests="$tests ${dir}_$(basename "$f" .c)"
done

for kind in $kinds; do
  case $kind in
    undefined) b=$DIR/build-ubsan; skip=""; skip_cases="" ;;
    # TSan (docs/reliability.md has the reasons in full; UBSan runs all of
    # these): the single-threaded page-allocator tests (nothing for TSan to
    # see, 5-10x slower under it); the fork storm (TSan cannot follow a fork
    # of a multi-threaded process: its deadlock detector overflows on the
    # fork handler's 140 held locks, and each fork takes seconds); the
    # collector's stress tests (TSan's runtime starts threads of its own,
    # which the collector cannot scan, so it never collects); and two test
    # cases: one measures RSS, which TSan's shadow memory inflates, and the
    # longest stress case, whose code paths the shorter stress cases run too.
    # And the single-threaded test: it re-executes itself to be a
    # single-threaded process, which TSan's own threads prevent (and its
    # fork from the runner overflows the deadlock detector, as above).
    # Why the malloc family is renamed under TSan: cmake/sanitize.cmake.
    thread) b=$DIR/build-tsan
            skip="unit_pagealloc_test_pagealloc fuzz_test_replay_pagealloc stress_test_fork_storm stress_test_gc_threads stress_test_gc_stw stress_test_gc_remote_frees unit_mspan_test_single_threaded"
            skip_cases="mheap::freeing_a_large_heap_returns_memory_to_the_os,stress::eight_threads_mixed" ;;
    *) echo "sanitize.sh: unknown sanitizer $kind (undefined or thread)" >&2; exit 2 ;;
  esac
  echo "== $kind: $b" >&2
  cmake -S "$SRC" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGCMALLOC_SANITIZE="$kind" \
        -DGCMALLOC_BENCH=OFF >/dev/null
  want=""
  for t in $tests; do
    case " $skip " in *" $t "*) continue ;; esac
    want="$want $t"
  done
  # shellcheck disable=SC2086
  cmake --build "$b" -j"$JOBS" --target $want >/dev/null
  regex="^($(echo $want | tr ' ' '|'))\$"
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1" \
  TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0${TSAN_EXTRA:+:$TSAN_EXTRA}" \
  GCM_SOAK_SECONDS=${GCM_SOAK_SECONDS:-10} GCM_FORK_STORM_FORKS=${GCM_FORK_STORM_FORKS:-100} \
  GCM_FUZZ_RANDOM_INPUTS=${GCM_FUZZ_RANDOM_INPUTS:-40} GCMCR_SKIP="$skip_cases" \
    ctest --test-dir "$b" --output-on-failure -j"$JOBS" -R "$regex"
done
