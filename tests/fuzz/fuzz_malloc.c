/*
 * fuzz_malloc.c - libFuzzer harness for the malloc family.
 *
 * The input is decoded into a sequence of operations (malloc, calloc,
 * realloc, reallocarray, posix_memalign / aligned_alloc / memalign / valloc /
 * pvalloc, free / free_sized / cfree, the gcm_ API, malloc_usable_size,
 * malloc_trim, impossible requests, thread restarts) on 64 slots, each
 * operation run by one of 4 threads (the caller and 3 workers), so that
 * objects move between threads and are freed remotely. A PAR operation runs
 * the next operations concurrently: each thread runs its own and touches only
 * the slots it owns (slot % 4), so the model stays exact.
 *
 * The model: every live object's size, requested alignment, usable size and
 * fill byte. Every object is filled over its whole usable size; before any
 * free or realloc, and for every live object at the end of the input, its
 * contents are checked byte for byte, its alignment, and that its usable size
 * has not changed. calloc's bytes must be zero, realloc must keep the prefix,
 * impossible requests must give NULL and ENOMEM (EINVAL for posix_memalign's
 * bad alignments). Any mismatch prints the operation and aborts, which
 * libFuzzer reports as a crash.
 *
 * Built three ways: with clang -fsanitize=fuzzer (tests/fuzz/CMakeLists.txt,
 * GCMALLOC_FUZZ=ON), and with gcc inside tests/fuzz/test_replay_malloc.c, which
 * replays the committed corpus (tests/fuzz/corpus/malloc) in the normal test
 * run. The allocator is linked statically: malloc here is gcmalloc's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>

void free_sized(void *p, size_t size);
void cfree(void *p);

#define FZ_NT 4          /* threads: 0 = the caller, 1..3 workers */
#define FZ_SLOTS 64
#define FZ_MAX_OPS 4096  /* per input */
#define FZ_MAX_LIVE ((size_t)96 << 20) /* skip allocations beyond this many live bytes */

enum {
    OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_ALIGNED, OP_FREE, OP_USABLE, OP_TRIM, OP_CHECK,
    OP_GCM, OP_RESTART, OP_PAR, OP_REALLOCARRAY, OP_FREE_ALL, OP_IMPOSSIBLE, OP_MALLOC2, OP_FREE2,
    OP_KINDS
};
static const char *const op_names[OP_KINDS] = {
    "malloc", "calloc", "realloc", "aligned", "free", "usable", "trim", "check",
    "gcm", "restart", "par", "reallocarray", "free_all", "impossible", "malloc", "free",
};

typedef struct {
    uint8_t kind, tid, slot, variant;
    uint32_t size, arg;
} fz_op;

typedef struct {
    unsigned char *p;
    size_t size;   /* requested */
    size_t usable; /* malloc_usable_size at allocation */
    size_t align;  /* alignment the result must have */
    uint8_t fill;
} fz_slot;

static fz_slot slots[FZ_SLOTS];
static _Atomic size_t live_bytes;
static uint8_t fill_gen;
static unsigned long long fz_inputs, fz_ops_total;
static atomic_ulong fz_ops_par;
/* Test hook (test_replay_malloc.c): corrupt a live object's byte, to show the
 * checks catch it. */
static int fz_selftest_corrupt;

/* ---------------------------------------------------------------- failure */

static __attribute__((noreturn, format(printf, 2, 3))) void fz_fail(const fz_op *op, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (op)
        fprintf(stderr, "fuzz_malloc: op %s (thread %u slot %u size %u arg %u variant %u): %s\n",
                op_names[op->kind], op->tid, op->slot, op->size, op->arg, op->variant, buf);
    else
        fprintf(stderr, "fuzz_malloc: %s\n", buf);
    abort();
}

/* ---------------------------------------------------------------- decoding */

typedef struct {
    const uint8_t *d;
    size_t n, i;
} fz_in;

static unsigned in_byte(fz_in *in) { return in->i < in->n ? in->d[in->i++] : 0; }

/* Sizes: mostly small, with the class boundaries and large objects. */
static uint32_t in_size(fz_in *in) {
    unsigned b = in_byte(in), c = in_byte(in);
    switch (b >> 5) {
    case 0: return b & 31;                                     /* 0 .. 31 */
    case 1: return ((b & 31) << 8 | c) % 512 + 1;              /* 1 .. 512 */
    case 2: return ((b & 31) << 8 | c) % 4096 + 1;             /* 1 .. 4 KiB */
    case 3: return ((b & 31) << 8 | c) * 4 + 1;                /* .. 32 KiB */
    case 4: {                                                  /* a power of two, +-1 */
        uint32_t s = (uint32_t)1 << ((b & 31) % 23);
        return c % 3 == 0 ? s - 1 : c % 3 == 1 ? s : s + 1;
    }
    case 5: return 32768 - 64 + (((b & 31) << 8 | c) % 256);  /* around the small/large edge */
    case 6: return 32768 + ((b & 31) << 8 | c) * 16;           /* large .. 160 KiB */
    default:                                                   /* large: .. 96 KiB, or .. 4 MiB */
        if (c & 15)
            return 32768 + ((b & 31) << 8 | c) * 8;
        return (((b & 31) << 4 | c >> 4) + 1) * 8192 + in_byte(in);
    }
}

static size_t decode(const uint8_t *data, size_t size, fz_op *ops) {
    fz_in in = {data, size, 0};
    size_t n = 0;
    while (in.i < in.n && n < FZ_MAX_OPS) {
        unsigned b = in_byte(&in);
        fz_op *op = &ops[n++];
        op->kind = (uint8_t)((b & 15) % OP_KINDS);
        op->tid = (uint8_t)((b >> 4) % FZ_NT);
        op->variant = (uint8_t)(b >> 6);
        op->slot = (uint8_t)(in_byte(&in) % FZ_SLOTS);
        op->size = 0;
        op->arg = 0;
        switch (op->kind) {
        case OP_MALLOC: case OP_MALLOC2: case OP_REALLOC: case OP_GCM:
            op->size = in_size(&in);
            break;
        case OP_CALLOC: case OP_REALLOCARRAY:
            op->size = in_size(&in);
            op->arg = in_byte(&in) % 16 + 1; /* element count */
            break;
        case OP_ALIGNED:
            op->size = in_size(&in);
            op->arg = in_byte(&in);          /* alignment code */
            break;
        case OP_TRIM: case OP_PAR: case OP_IMPOSSIBLE:
            op->arg = in_byte(&in);
            break;
        default:
            break;
        }
    }
    return n;
}

/* ---------------------------------------------------------------- the model */

static uint8_t next_fill(void) {
    uint8_t f = __atomic_add_fetch(&fill_gen, 1, __ATOMIC_RELAXED);
    return f ? f : 0x5a; /* never 0: calloc's zeroes must not pass as contents */
}

static void check_contents(const fz_op *op, const fz_slot *s, const char *when) {
    if ((uintptr_t)s->p & (s->align - 1))
        fz_fail(op, "%s: %p (size %zu) not aligned to %zu", when, (void *)s->p, s->size, s->align);
    size_t u = malloc_usable_size(s->p);
    if (u != s->usable)
        fz_fail(op, "%s: usable size of %p changed from %zu to %zu", when, (void *)s->p, s->usable, u);
    if (gcm_usable_size(s->p) != u)
        fz_fail(op, "%s: gcm_usable_size %zu != malloc_usable_size %zu", when, gcm_usable_size(s->p), u);
    uint64_t w = 0x0101010101010101ull * s->fill;
    const unsigned char *p = s->p;
    size_t i = 0;
    for (; i + 8 <= s->usable; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v != w)
            break;
    }
    for (; i < s->usable; i++)
        if (p[i] != s->fill)
            fz_fail(op, "%s: object %p (size %zu usable %zu) byte %zu is %#x, want %#x", when, (void *)s->p,
                    s->size, s->usable, i, p[i], s->fill);
}

/* A new object in slot s (which is empty): record and fill it. */
static void adopt(const fz_op *op, fz_slot *s, void *p, size_t size, size_t align) {
    if ((uintptr_t)p & (align - 1))
        fz_fail(op, "%p (size %zu) not aligned to %zu", p, size, align);
    size_t u = malloc_usable_size(p);
    if (u < size)
        fz_fail(op, "usable size %zu < size %zu for %p", u, size, p);
    s->p = p;
    s->size = size;
    s->usable = u;
    s->align = align;
    s->fill = next_fill();
    memset(p, s->fill, u);
    atomic_fetch_add(&live_bytes, u);
}

static void release(const fz_op *op, fz_slot *s, int how) {
    check_contents(op, s, "before free");
    atomic_fetch_sub(&live_bytes, s->usable);
    switch (how & 3) {
    case 0: free(s->p); break;
    case 1: free_sized(s->p, s->size); break;
    case 2: gcm_free(s->p); break;
    default: cfree(s->p); break;
    }
    s->p = NULL;
}

static int room_for(size_t n) { return atomic_load(&live_bytes) + n <= FZ_MAX_LIVE; }

static void check_zero(const fz_op *op, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            fz_fail(op, "calloc'ed %p byte %zu of %zu is %#x", (void *)p, i, n, p[i]);
}

static void do_realloc(const fz_op *op, fz_slot *s, size_t n, int array, size_t count) {
    if (!room_for(n))
        return;
    if (!s->p) {
        void *q = array ? reallocarray(NULL, count, n / count) : realloc(NULL, n);
        size_t want = array ? count * (n / count) : n;
        if (!q)
            fz_fail(op, "realloc(NULL, %zu) failed", want);
        adopt(op, s, q, want, 16);
        return;
    }
    check_contents(op, s, "before realloc");
    size_t want = array ? count * (n / count) : n;
    unsigned char *old = s->p;
    void *q;
    if (array)
        q = reallocarray(old, count, n / count);
    else if (op->variant & 1)
        q = gcm_realloc(old, n);
    else
        q = realloc(old, n);
    atomic_fetch_sub(&live_bytes, s->usable);
    if (want == 0) { /* realloc(p, 0) frees p and returns NULL */
        if (q)
            fz_fail(op, "realloc(%p, 0) returned %p, want NULL", (void *)old, q);
        s->p = NULL;
        return;
    }
    if (!q)
        fz_fail(op, "realloc(%p, %zu) failed", (void *)old, want);
    size_t keep = s->size < want ? s->size : want;
    for (size_t i = 0; i < keep; i++)
        if (((unsigned char *)q)[i] != s->fill)
            fz_fail(op, "realloc(%p, %zu -> %zu) = %p lost byte %zu (%#x, want %#x)", (void *)old, s->size, want,
                    q, i, ((unsigned char *)q)[i], s->fill);
    s->p = NULL;
    adopt(op, s, q, want, 16);
}

static size_t align_of(unsigned code) { return (size_t)1 << (code % 17); } /* 1 .. 64 KiB */

static void do_aligned(const fz_op *op, fz_slot *s) {
    size_t n = op->size, align = align_of(op->arg), want = align < 16 ? 16 : align;
    if (s->p)
        release(op, s, op->variant);
    if (!room_for(n + align))
        return;
    void *p = NULL;
    switch ((op->arg >> 5) % 5) {
    case 0: {
        int r = posix_memalign(&p, align, n);
        int bad = align < sizeof(void *);
        if (bad) {
            if (r != EINVAL)
                fz_fail(op, "posix_memalign(%zu, %zu) returned %d, want EINVAL", align, n, r);
            return;
        }
        if (r != 0)
            fz_fail(op, "posix_memalign(%zu, %zu) returned %d", align, n, r);
        break;
    }
    case 1: p = aligned_alloc(align, n); break;
    case 2: p = memalign(align, n); break;
    case 3: p = valloc(n); want = 4096; break;
    default:
        p = pvalloc(n);
        want = 4096;
        n = n ? (n + 4095) & ~(size_t)4095 : 4096;
        break;
    }
    if (!p)
        fz_fail(op, "aligned allocation (align %zu, size %zu) failed", align, n);
    adopt(op, s, p, n, want);
}

static void do_impossible(const fz_op *op, fz_slot *s) {
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, PTRDIFF_MAX, (size_t)1 << 48, SIZE_MAX / 2 + 1};
    volatile size_t n = huge[op->arg % 5];
    void *p = NULL;
    int r = 0;
    errno = 0;
    switch ((op->arg / 5) % 6) {
    case 0: p = malloc(n); break;
    case 1: p = calloc(n, 3); break;
    case 2: p = aligned_alloc(64, n); break;
    case 3: p = gcm_malloc(n); break;
    case 4:
        r = posix_memalign(&p, 4096, n);
        if (r != ENOMEM)
            fz_fail(op, "posix_memalign(4096, %zu) returned %d, want ENOMEM", (size_t)n, r);
        return;
    default:
        if (!s->p)
            return;
        check_contents(op, s, "before impossible realloc");
        p = realloc(s->p, n);
        if (p == NULL && errno == ENOMEM) { /* the old block is untouched */
            check_contents(op, s, "after failed realloc");
            return;
        }
        break;
    }
    if (p != NULL || errno != ENOMEM)
        fz_fail(op, "impossible request of %zu bytes returned %p, errno %d", (size_t)n, p, errno);
}

/* Run one operation on thread `tid` (the caller guarantees exclusive use of
 * the slot). */
static void run_op(const fz_op *op) {
    fz_slot *s = &slots[op->slot];
    switch (op->kind) {
    case OP_MALLOC:
    case OP_MALLOC2:
    case OP_GCM:
        if (s->p)
            release(op, s, op->variant);
        if (!room_for(op->size))
            break;
        {
            void *p = op->kind == OP_GCM ? ((op->variant & 1) ? gcm_calloc(1, op->size) : gcm_malloc(op->size))
                                         : malloc(op->size);
            if (!p)
                fz_fail(op, "malloc(%u) failed", op->size);
            if (op->kind == OP_GCM && (op->variant & 1))
                check_zero(op, p, op->size);
            adopt(op, s, p, op->size, 16);
        }
        break;
    case OP_CALLOC: {
        if (s->p)
            release(op, s, op->variant);
        size_t n = op->size / op->arg;
        if (!room_for(n * op->arg))
            break;
        void *p = calloc(op->arg, n);
        if (!p)
            fz_fail(op, "calloc(%u, %zu) failed", op->arg, n);
        check_zero(op, p, n * op->arg);
        adopt(op, s, p, n * op->arg, 16);
        break;
    }
    case OP_REALLOC:
        do_realloc(op, s, op->size, 0, 1);
        break;
    case OP_REALLOCARRAY:
        do_realloc(op, s, op->size, 1, op->arg);
        break;
    case OP_ALIGNED:
        do_aligned(op, s);
        break;
    case OP_FREE:
    case OP_FREE2:
        if (s->p)
            release(op, s, op->variant);
        else
            free(NULL);
        break;
    case OP_USABLE:
    case OP_CHECK:
        if (s->p)
            check_contents(op, s, "check");
        break;
    case OP_TRIM: /* rarely: released pages cost page faults when reused */
        if (op->arg < 16)
            malloc_trim(op->arg & 1 ? 0 : (size_t)op->arg << 16);
        else if (s->p)
            check_contents(op, s, "check");
        break;
    case OP_IMPOSSIBLE:
        do_impossible(op, s);
        break;
    case OP_FREE_ALL: /* the thread's own slots */
        for (unsigned k = op->tid; k < FZ_SLOTS; k += FZ_NT)
            if (slots[k].p)
                release(op, &slots[k], op->variant + k);
        break;
    default: /* OP_RESTART and OP_PAR are handled by the scheduler */
        break;
    }
}

/* ---------------------------------------------------------------- threads */

typedef struct {
    pthread_t th;
    sem_t go, done;
    const fz_op *ops; /* the batch to run */
    size_t n;
    int par;  /* concurrent batch: run only ops of this thread, on own slots */
    int quit;
    int running;
} fz_worker;

static fz_worker workers[FZ_NT];

static void run_batch(unsigned tid, const fz_op *ops, size_t n, int par) {
    for (size_t i = 0; i < n; i++) {
        if (par) {
            if (ops[i].tid != tid || ops[i].kind == OP_RESTART || ops[i].kind == OP_PAR)
                continue;
            fz_op o = ops[i];
            o.slot = (uint8_t)(o.slot - o.slot % FZ_NT + tid); /* a slot this thread owns */
            run_op(&o);
            atomic_fetch_add_explicit(&fz_ops_par, 1, memory_order_relaxed);
        } else {
            run_op(&ops[i]);
        }
    }
}

static void *worker_main(void *arg) {
    fz_worker *w = arg;
    unsigned tid = (unsigned)(w - workers);
    for (;;) {
        while (sem_wait(&w->go) != 0) {
        }
        if (w->quit) {
            sem_post(&w->done);
            return NULL;
        }
        run_batch(tid, w->ops, w->n, w->par);
        sem_post(&w->done);
    }
}

static void start_worker(unsigned t) {
    fz_worker *w = &workers[t];
    w->quit = 0;
    if (pthread_create(&w->th, NULL, worker_main, w) != 0)
        fz_fail(NULL, "pthread_create failed");
    w->running = 1;
}

static void init_workers(void) {
    for (unsigned t = 1; t < FZ_NT; t++) {
        sem_init(&workers[t].go, 0, 0);
        sem_init(&workers[t].done, 0, 0);
        start_worker(t);
    }
}

/* Run a batch on thread t and wait for it. */
static void on_thread(unsigned t, const fz_op *ops, size_t n) {
    if (t == 0) {
        run_batch(0, ops, n, 0);
        return;
    }
    fz_worker *w = &workers[t];
    w->ops = ops;
    w->n = n;
    w->par = 0;
    sem_post(&w->go);
    while (sem_wait(&w->done) != 0) {
    }
}

/* The worker exits (its cache is given back while its objects live on in the
 * slots) and a new thread takes its place. */
static void restart_worker(unsigned t) {
    if (t == 0)
        return;
    fz_worker *w = &workers[t];
    w->quit = 1;
    sem_post(&w->go);
    while (sem_wait(&w->done) != 0) {
    }
    pthread_join(w->th, NULL);
    start_worker(t);
}

static void run_parallel(const fz_op *ops, size_t n) {
    for (unsigned t = 1; t < FZ_NT; t++) {
        workers[t].ops = ops;
        workers[t].n = n;
        workers[t].par = 1;
        sem_post(&workers[t].go);
    }
    run_batch(0, ops, n, 1);
    for (unsigned t = 1; t < FZ_NT; t++)
        while (sem_wait(&workers[t].done) != 0) {
        }
}

static fz_op op_buf[FZ_MAX_OPS];

static void fz_report(void) {
    if (getenv("FUZZ_MALLOC_STATS"))
        fprintf(stderr, "fuzz_malloc: %llu inputs, %llu operations (%lu in parallel segments)\n", fz_inputs,
                fz_ops_total, atomic_load(&fz_ops_par));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int started;
    if (!started) {
        started = 1;
        init_workers();
        atexit(fz_report);
    }
    size_t n = decode(data, size, op_buf);
    fz_inputs++;
    fz_ops_total += n;
    size_t i = 0;
    while (i < n) {
        const fz_op *op = &op_buf[i];
        if (op->kind == OP_PAR) {
            size_t len = op->arg % 64 + 1;
            if (len > n - i - 1)
                len = n - i - 1;
            run_parallel(op_buf + i + 1, len);
            i += 1 + len;
        } else if (op->kind == OP_RESTART) {
            restart_worker(op->tid);
            i++;
        } else {
            size_t j = i + 1; /* a run of operations of the same thread */
            while (j < n && op_buf[j].tid == op->tid && op_buf[j].kind != OP_PAR && op_buf[j].kind != OP_RESTART)
                j++;
            on_thread(op->tid, op, j - i);
            i = j;
        }
    }
    if (fz_selftest_corrupt) {
        for (unsigned k = 0; k < FZ_SLOTS; k++)
            if (slots[k].p) {
                slots[k].p[slots[k].usable / 2] ^= 0x10;
                break;
            }
    }
    /* Every live object, then free them all (from alternating threads). */
    static const fz_op end = {OP_CHECK, 0, 0, 0, 0, 0};
    for (unsigned k = 0; k < FZ_SLOTS; k++)
        if (slots[k].p)
            release(&end, &slots[k], (int)k);
    if (atomic_load(&live_bytes) != 0)
        fz_fail(NULL, "model: %zu live bytes after freeing everything", atomic_load(&live_bytes));
    return 0;
}
