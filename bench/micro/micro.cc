// Microbenchmarks of the allocator entry points, with Google Benchmark.
//
// The binary links no allocator: bench/run.py runs it under each one with
// LD_PRELOAD and reads --benchmark_format=json. Each benchmark reports
// items_per_second, one item being one allocation (with its free), so
// ns/op = 1e9 / items_per_second. Every block is written and read back; a
// wrong value or a misaligned block ends the benchmark with SkipWithError
// (error_occurred in the JSON), which the driver reports as a failure.
// The JSON context has malloc_lib: the object that provides malloc.
#include <benchmark/benchmark.h>

#include <dlfcn.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

inline void touch(void *p, size_t size, unsigned char tag) {
  unsigned char *b = static_cast<unsigned char *>(p);
  b[0] = tag;
  b[size - 1] = static_cast<unsigned char>(tag ^ 0x5a);
}

inline bool check(const void *p, size_t size, unsigned char tag) {
  const unsigned char *b = static_cast<const unsigned char *>(p);
  return b[0] == tag && b[size - 1] == static_cast<unsigned char>(tag ^ 0x5a);
}

void *xmalloc(benchmark::State &state, size_t size) {
  void *p = malloc(size);
  if (!p) state.SkipWithError("malloc returned NULL");
  return p;
}

// malloc immediately followed by free.
void BM_pairs(benchmark::State &state) {
  const size_t size = static_cast<size_t>(state.range(0));
  unsigned char tag = 0;
  for (auto _ : state) {
    void *p = xmalloc(state, size);
    if (!p) break;
    touch(p, size, ++tag);
    benchmark::DoNotOptimize(p);
    if (!check(p, size, tag)) { state.SkipWithError("block content changed"); free(p); break; }
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// LIFO: allocate 100 blocks, free them newest first.
void BM_lifo(benchmark::State &state) {
  const size_t size = static_cast<size_t>(state.range(0));
  constexpr int kBurst = 100;
  void *p[kBurst];
  unsigned char tag = 0;
  for (auto _ : state) {
    for (int i = 0; i < kBurst; i++) {
      p[i] = xmalloc(state, size);
      if (!p[i]) return;
      touch(p[i], size, static_cast<unsigned char>(tag + i));
    }
    for (int i = kBurst; i-- > 0;) {
      if (!check(p[i], size, static_cast<unsigned char>(tag + i))) {
        state.SkipWithError("block content changed");
        return;
      }
      free(p[i]);
    }
    tag++;
  }
  state.SetItemsProcessed(state.iterations() * kBurst);
}

// FIFO ring of live blocks (1000, or fewer for big sizes: at most 16 MiB):
// each step frees the oldest block and allocates a new one.
void BM_fifo(benchmark::State &state) {
  const size_t size = static_cast<size_t>(state.range(0));
  size_t live = (16u << 20) / size;
  if (live > 1000) live = 1000;
  std::vector<void *> ring(live);
  std::vector<unsigned char> tags(live);
  for (size_t i = 0; i < live; i++) {
    ring[i] = xmalloc(state, size);
    if (!ring[i]) return;
    tags[i] = static_cast<unsigned char>(i);
    touch(ring[i], size, tags[i]);
  }
  size_t idx = 0;
  unsigned char tag = 0;
  for (auto _ : state) {
    if (!check(ring[idx], size, tags[idx])) { state.SkipWithError("block content changed"); break; }
    free(ring[idx]);
    ring[idx] = xmalloc(state, size);
    if (!ring[idx]) break;
    tags[idx] = ++tag;
    touch(ring[idx], size, tag);
    if (++idx == live) idx = 0;
  }
  for (size_t i = 0; i < live; i++) free(ring[i]);
  state.SetItemsProcessed(state.iterations());
}

// calloc + free; the block must read as zero.
void BM_calloc(benchmark::State &state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    unsigned char *p = static_cast<unsigned char *>(calloc(1, size));
    if (!p) { state.SkipWithError("calloc returned NULL"); break; }
    if (p[0] | p[size / 2] | p[size - 1]) { state.SkipWithError("calloc block not zeroed"); free(p); break; }
    p[0] = p[size - 1] = 1;
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// realloc growth: 16 B doubled up to 64 KiB (13 reallocs), then free.
// One item = one malloc or realloc.
void BM_realloc_growth(benchmark::State &state) {
  for (auto _ : state) {
    size_t size = 16;
    unsigned char *p = static_cast<unsigned char *>(xmalloc(state, size));
    if (!p) break;
    p[0] = 7;
    p[size - 1] = 9;
    while (size < (64u << 10)) {
      size_t ns = size * 2;
      unsigned char *q = static_cast<unsigned char *>(realloc(p, ns));
      if (!q) { state.SkipWithError("realloc returned NULL"); free(p); return; }
      if (q[0] != 7 || q[size - 1] != 9) { state.SkipWithError("realloc lost data"); free(q); return; }
      q[size - 1] = 0;
      q[ns - 1] = 9;
      p = q;
      size = ns;
    }
    free(p);
  }
  state.SetItemsProcessed(state.iterations() * 14);
}

// posix_memalign(align, size) + free. Args: {align, size}.
void BM_memalign(benchmark::State &state) {
  const size_t align = static_cast<size_t>(state.range(0));
  const size_t size = static_cast<size_t>(state.range(1));
  unsigned char tag = 0;
  for (auto _ : state) {
    void *p = nullptr;
    if (posix_memalign(&p, align, size) != 0 || !p) { state.SkipWithError("posix_memalign failed"); break; }
    if (reinterpret_cast<uintptr_t>(p) & (align - 1)) { state.SkipWithError("misaligned block"); free(p); break; }
    touch(p, size, ++tag);
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// Free from another thread: this thread allocates and hands each block to a
// freeing thread through a single-producer/single-consumer ring.
void BM_remote_free(benchmark::State &state) {
  const size_t size = static_cast<size_t>(state.range(0));
  constexpr size_t kCap = 1024;
  static void *slots[kCap];
  std::atomic<uint64_t> tail{0}, head{0};
  std::atomic<bool> done{false}, bad{false};
  std::thread freer([&] {
    uint64_t h = 0;
    unsigned spins = 0;
    for (;;) {
      uint64_t t = tail.load(std::memory_order_acquire);
      if (h == t) {
        if (done.load(std::memory_order_acquire) && h == tail.load(std::memory_order_acquire)) break;
        if (++spins > 64) { spins = 0; sched_yield(); }
        continue;
      }
      while (h < t) {
        unsigned char *p = static_cast<unsigned char *>(slots[h % kCap]);
        if (p[0] != static_cast<unsigned char>(h)) bad.store(true);
        free(p);
        h++;
      }
      head.store(h, std::memory_order_release);
    }
  });
  uint64_t t = 0;
  for (auto _ : state) {
    unsigned char *p = static_cast<unsigned char *>(xmalloc(state, size));
    if (!p) break;
    p[0] = static_cast<unsigned char>(t);
    p[size - 1] = 1;
    unsigned spins = 0;
    while (t - head.load(std::memory_order_acquire) >= kCap)
      if (++spins > 64) { spins = 0; sched_yield(); }
    slots[t % kCap] = p;
    tail.store(++t, std::memory_order_release);
  }
  done.store(true, std::memory_order_release);
  freer.join();
  if (bad.load()) state.SkipWithError("block content changed before the remote free");
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(BM_pairs)->Arg(8)->Arg(64)->Arg(512)->Arg(4096)->Arg(65536);
BENCHMARK(BM_lifo)->Arg(8)->Arg(64)->Arg(512)->Arg(4096)->Arg(65536);
BENCHMARK(BM_fifo)->Arg(8)->Arg(64)->Arg(512)->Arg(4096)->Arg(65536);
BENCHMARK(BM_calloc)->Arg(64)->Arg(4096);
BENCHMARK(BM_realloc_growth);
BENCHMARK(BM_memalign)->Args({64, 200})->Args({4096, 4096});
BENCHMARK(BM_remote_free)->Arg(64)->UseRealTime();

int main(int argc, char **argv) {
  Dl_info info;
  void *(*m)(size_t) = malloc;
  const char *lib = "?";
  if (dladdr(reinterpret_cast<void *>(m), &info) && info.dli_fname) lib = info.dli_fname;
  benchmark::AddCustomContext("malloc_lib", lib);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
