/* prodcons: two threads. The producer mallocs N blocks (sizes uniform in
 * [16, 1024], fixed seed), writes into each, and passes them through a
 * bounded lock-free single-producer/single-consumer queue; the consumer reads
 * and frees them. Every block is freed by a thread other than the one that
 * allocated it (remote frees).
 *
 *   prodcons N [QCAP]      QCAP: queue capacity, a power of two (default 1024)
 *
 * Timed from the start of both threads until both have finished. */
#include "bench_common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define CACHE_LINE 64

typedef struct {
  void *p;
  size_t size;
} item;

static struct {
  _Alignas(CACHE_LINE) _Atomic uint64_t tail; /* written by the producer */
  _Alignas(CACHE_LINE) _Atomic uint64_t head; /* written by the consumer */
  _Alignas(CACHE_LINE) item *slots;
  uint64_t mask;
  uint64_t n;
  _Atomic int go;
} q;

static uint64_t consumer_sum;

static inline void cpu_relax(unsigned *spins) {
  if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    /* The machine may have fewer free cores than threads: let the peer run. */
    *spins = 0;
    sched_yield();
  }
}

static void *producer(void *arg) {
  (void)arg;
  bench_rng rng = {42};
  uint64_t head_cache = 0;
  while (!atomic_load_explicit(&q.go, memory_order_acquire)) {}
  for (uint64_t i = 0; i < q.n; i++) {
    size_t size = bench_rand_size(&rng);
    void *p = bench_xmalloc(size);
    bench_touch(p, size, i);
    unsigned spins = 0;
    while (i - head_cache > q.mask) {
      head_cache = atomic_load_explicit(&q.head, memory_order_acquire);
      if (i - head_cache > q.mask) cpu_relax(&spins);
    }
    q.slots[i & q.mask] = (item){p, size};
    atomic_store_explicit(&q.tail, i + 1, memory_order_release);
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  uint64_t tail_cache = 0, sum = 0;
  while (!atomic_load_explicit(&q.go, memory_order_acquire)) {}
  for (uint64_t i = 0; i < q.n; i++) {
    unsigned spins = 0;
    while (i >= tail_cache) {
      tail_cache = atomic_load_explicit(&q.tail, memory_order_acquire);
      if (i >= tail_cache) cpu_relax(&spins);
    }
    item it = q.slots[i & q.mask];
    atomic_store_explicit(&q.head, i + 1, memory_order_release);
    sum += bench_read(it.p, it.size);
    free(it.p);
  }
  consumer_sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  q.n = bench_arg_u64(argc, argv, 1, 5000000);
  uint64_t cap = bench_arg_u64(argc, argv, 2, 1024);
  if (cap & (cap - 1)) {
    fprintf(stderr, "usage: %s N [QCAP]   (QCAP a power of two)\n", argv[0]);
    return 2;
  }
  q.mask = cap - 1;
  q.slots = bench_xmalloc(cap * sizeof *q.slots);

  pthread_t tp, tc;
  if (pthread_create(&tc, NULL, consumer, NULL) || pthread_create(&tp, NULL, producer, NULL)) {
    fprintf(stderr, "pthread_create failed\n");
    return 2;
  }
  double t0 = bench_now();
  atomic_store_explicit(&q.go, 1, memory_order_release);
  pthread_join(tp, NULL);
  pthread_join(tc, NULL);
  double t1 = bench_now();

  free(q.slots);
  bench_report(t1 - t0, consumer_sum, q.n);
  return 0;
}
