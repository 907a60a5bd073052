/*
 * stats.c - see stats.h. Printing formats into a stack buffer with snprintf
 * (which never allocates for these formats) and writes with write(2), so it is
 * safe at exit and with stdio in any state.
 */
#include "stats.h"
#include "mheap.h"
#include "os.h"
#include "sizeclass.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

gcm_gc_counters gcm_gc_stats;

/* Objects of s that the last collection found unreachable and that its owner
 * has not swept yet: they are free already, as far as statistics go. */
static size_t pending_garbage(const mspan *s) {
    if (!mspan_needs_sweep(s)) return 0;
    size_t n = 0;
    for (size_t w = 0; w < s->nwords; w++) n += gcm_popcount64(GCM_LOAD(&s->gcmarkBits[w]) & GCM_LOAD(&s->allocBits[w]));
    return n;
}

typedef struct count_ctx {
    struct gcm_stats *out;
    gcm_class_stats *per;
} count_ctx;

static void count_span(mspan *s, void *arg) {
    count_ctx *ctx = arg;
    /* Objects reserved in an owner's cache are free (racy read). */
    size_t objs = GCM_LOAD(&s->allocCount) - (size_t)gcm_popcount64(mspan_cached(s)) - pending_garbage(s);
    unsigned c = s->spanclass >> 1;
    ctx->out->allocated_objects += objs;
    ctx->out->allocated_bytes += objs * s->elemsize;
    if (c == 0) ctx->out->large_bytes += objs * s->elemsize;
    if (ctx->per) {
        ctx->per[c].spans++;
        ctx->per[c].objects += objs;
        ctx->per[c].span_bytes += s->npages << GCM_PAGE_SHIFT;
    }
}

void gcm_stats_read(struct gcm_stats *out, gcm_class_stats *per) {
    memset(out, 0, sizeof *out);
    if (per) memset(per, 0, sizeof(gcm_class_stats) * GCM_NUM_SIZE_CLASSES);
    mheap *h = &gcm_heap;
    if (!__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE)) return;
    gcm_mheap_flush_pending();
    gcm_lock_acquire(&h->lock);
    count_ctx ctx = {out, per};
    gcm_mheap_each_span(count_span, &ctx);
    out->mapped_bytes = gcm_mheap_mapped_locked();
    out->released_bytes = h->pages.free_scav_pages << GCM_PAGE_SHIFT;
    out->peak_mapped_bytes = h->peak_mapped > out->mapped_bytes ? h->peak_mapped : out->mapped_bytes;
    out->gc_cycles = gcm_gc_stats.cycles;
    out->gc_pause_total_ns = gcm_gc_stats.pause_total_ns;
    out->gc_pause_max_ns = gcm_gc_stats.pause_max_ns;
    out->gc_last_live_bytes = gcm_gc_stats.last_live_bytes;
    out->gc_freed_objects = GCM_LOAD(&gcm_sweep_freed_objects);
    out->gc_freed_bytes = GCM_LOAD(&gcm_sweep_freed_bytes);
    gcm_lock_release(&h->lock);
}

/* The report is built in one stack buffer and written at once, so that it
 * comes out whole even when other threads write to the same fd. */
typedef struct outbuf {
    char data[16384];
    size_t len;
} outbuf;

static void put(outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(outbuf *o, const char *fmt, ...) {
    if (o->len >= sizeof o->data - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->data + o->len, sizeof o->data - o->len, fmt, ap);
    va_end(ap);
    if (n > 0) o->len = o->len + (size_t)n < sizeof o->data ? o->len + (size_t)n : sizeof o->data - 1;
}

/* "812 B", "12.5 KiB", "3.2 MiB", "1.1 GiB". */
typedef struct hsize {
    char s[24];
} hsize;
static hsize human(size_t b) {
    hsize h;
    if (b < 1024)
        snprintf(h.s, sizeof h.s, "%zu B", b);
    else if (b < ((size_t)1 << 20))
        snprintf(h.s, sizeof h.s, "%.1f KiB", (double)b / 1024.0);
    else if (b < ((size_t)1 << 30))
        snprintf(h.s, sizeof h.s, "%.1f MiB", (double)b / 1048576.0);
    else
        snprintf(h.s, sizeof h.s, "%.2f GiB", (double)b / 1073741824.0);
    return h;
}

typedef struct report {
    struct gcm_stats st;
    gcm_class_stats per[GCM_NUM_SIZE_CLASSES];
    size_t in_use; /* bytes of all in-use spans (small and large) */
} report;

static void report_read(report *r) {
    gcm_stats_read(&r->st, r->per);
    r->in_use = 0;
    for (unsigned c = 0; c < GCM_NUM_SIZE_CLASSES; c++) r->in_use += r->per[c].span_bytes;
}

/* Object bytes in use in class c and the fragmentation of its spans. */
static size_t class_used(const report *r, unsigned c) {
    return c ? r->per[c].objects * gcm_class_size[c] : r->st.large_bytes;
}
static double class_frag(const report *r, unsigned c) {
    size_t sb = r->per[c].span_bytes, used = class_used(r, c);
    return sb && used < sb ? 100.0 * (double)(sb - used) / (double)sb : 0.0;
}

void gcm_stats_print(int fd) {
    report r; /* 2 KiB and 16 KiB of stack: no shared state, safe in a forked child */
    outbuf o;
    o.len = 0;
    report_read(&r);
    put(&o, "gcmalloc: heap mapped %s, in use %s, released to the OS %s, peak mapped %s\n",
        human(r.st.mapped_bytes).s, human(r.in_use).s, human(r.st.released_bytes).s,
        human(r.st.peak_mapped_bytes).s);
    put(&o, "gcmalloc: allocated %s in %zu objects; large objects %s in %zu\n", human(r.st.allocated_bytes).s,
        r.st.allocated_objects, human(r.st.large_bytes).s, r.per[0].objects);
    if (r.st.gc_cycles)
        put(&o, "gcmalloc: gc %llu cycles, pauses %.3f ms total, %.3f ms max; last live %s; freed %s in %zu objects\n",
            (unsigned long long)r.st.gc_cycles, (double)r.st.gc_pause_total_ns / 1e6,
            (double)r.st.gc_pause_max_ns / 1e6, human(r.st.gc_last_live_bytes).s, human(r.st.gc_freed_bytes).s,
            r.st.gc_freed_objects);
    put(&o, "gcmalloc: %6s %8s %8s %10s %12s %6s\n", "class", "size", "spans", "objects", "bytes", "frag%");
    for (unsigned c = 1; c < GCM_NUM_SIZE_CLASSES; c++) {
        if (r.per[c].spans == 0) continue;
        put(&o, "gcmalloc: %6u %8u %8zu %10zu %12zu %6.1f\n", c, gcm_class_size[c], r.per[c].spans,
            r.per[c].objects, class_used(&r, c), class_frag(&r, c));
    }
    put(&o, "gcmalloc: %6s %8s %8zu %10zu %12zu %6.1f\n", "large", ">32K", r.per[0].spans, r.per[0].objects,
        class_used(&r, 0), class_frag(&r, 0));
    gcm_os_write(fd, o.data, o.len);
}

void gcm_stats_print_json(int fd) {
    report r;
    outbuf o;
    o.len = 0;
    report_read(&r);
    put(&o,
        "{\"heap\": {\"mapped\": %zu, \"in_use\": %zu, \"released\": %zu, \"peak_mapped\": %zu}, "
        "\"allocated\": {\"bytes\": %zu, \"objects\": %zu}, "
        "\"gc\": {\"cycles\": %llu, \"pause_total_ns\": %llu, \"pause_max_ns\": %llu, \"last_live\": %zu, "
        "\"freed_bytes\": %zu, \"freed_objects\": %zu}, "
        "\"large\": {\"spans\": %zu, \"objects\": %zu, \"bytes\": %zu, \"span_bytes\": %zu}, \"classes\": [",
        r.st.mapped_bytes, r.in_use, r.st.released_bytes, r.st.peak_mapped_bytes, r.st.allocated_bytes,
        r.st.allocated_objects, (unsigned long long)r.st.gc_cycles, (unsigned long long)r.st.gc_pause_total_ns,
        (unsigned long long)r.st.gc_pause_max_ns, r.st.gc_last_live_bytes, r.st.gc_freed_bytes,
        r.st.gc_freed_objects, r.per[0].spans, r.per[0].objects, r.st.large_bytes, r.per[0].span_bytes);
    bool first = true;
    for (unsigned c = 1; c < GCM_NUM_SIZE_CLASSES; c++) {
        if (r.per[c].spans == 0) continue;
        put(&o,
            "%s{\"class\": %u, \"size\": %u, \"spans\": %zu, \"objects\": %zu, \"bytes\": %zu, "
            "\"span_bytes\": %zu, \"frag_pct\": %.1f}",
            first ? "" : ", ", c, gcm_class_size[c], r.per[c].spans, r.per[c].objects, class_used(&r, c),
            r.per[c].span_bytes, class_frag(&r, c));
        first = false;
    }
    put(&o, "]}\n");
    gcm_os_write(fd, o.data, o.len);
}
