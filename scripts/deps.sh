#!/bin/sh
# Install what gcmalloc's build, tests and benchmarks need, from Debian 12's
# packages only. Usage: scripts/deps.sh build|test|bench
# As root, missing packages are installed with apt-get; otherwise the missing
# ones are listed with the command to install them.
set -e
BUILD="gcc g++ make cmake pkg-config python3"
TEST="libcriterion-dev sqlite3 redis-server redis-tools libpython3.11-testsuite valgrind"
BENCH="libjemalloc2 libtcmalloc-minimal4 libmimalloc2.0 libbenchmark-dev gnuplot-nox valgrind sqlite3 redis-server redis-tools libgc-dev"
case "$1" in
  build) want="$BUILD" ;;
  test) want="$BUILD $TEST" ;;
  bench) want="$BUILD $BENCH" ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $missing >/dev/null
else
  echo "deps: missing Debian packages:$missing" >&2
  echo "deps: install them with: sudo apt-get install$missing" >&2
  exit 1
fi
