# Convenience wrapper around CMake; see README.md.
#   make bench   build, then run the benchmark against glibc, jemalloc, tcmalloc, mimalloc
#   make check   build, then run every test
#   make run     build, then run a real program under gcmalloc with its statistics
BUILD ?= build
JOBS ?= 2

.PHONY: all build check bench run clean

all: build

build:
	@scripts/deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

check:
	@scripts/deps.sh test
	$(MAKE) build
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)
	JOBS=$(JOBS) scripts/sanitize.sh

run: build
	$(BUILD)/gcmalloc --stats /usr/bin/python3 bench/programs/pyworkload.py

bench:
	@scripts/deps.sh bench
	$(MAKE) build
	/usr/bin/python3 bench/run.py --quick --gcmalloc $(CURDIR)/$(BUILD)/libgcmalloc.so
	/usr/bin/python3 bench/gc_run.py --quick --bin $(CURDIR)/$(BUILD)/bench

clean:
	rm -rf $(BUILD)
