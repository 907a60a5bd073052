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

void gcm_stats_read(struct gcm_stats *out, gcm_class_stats *per) {
    memset(out, 0, sizeof *out);
    if (per) memset(per, 0, sizeof(gcm_class_stats) * GCM_NUM_SIZE_CLASSES);
    mheap *h = &gcm_heap;
    if (!__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE)) return;
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) mcentral_flush_pending(&h->central[i]);
    gcm_lock_acquire(&h->lock);
    for (uint32_t ai = 0; ai < h->pages.narenas; ai++) {
        heapArena *a = h->pages.arenas[ai];
        for (size_t w = 0; w < GCM_ARENA_BITMAP_WORDS; w++) {
            for (uint64_t bits = a->page_in_use[w]; bits; bits &= bits - 1) {
                mspan *s = a->spans[w * 64 + (size_t)__builtin_ctzll(bits)];
                /* Objects reserved in an owner's cache are free (racy read). */
                size_t objs = GCM_LOAD(&s->allocCount) - (size_t)gcm_popcount64(GCM_LOAD(&s->allocCache));
                unsigned c = s->spanclass >> 1;
                out->allocated_objects += objs;
                out->allocated_bytes += objs * s->elemsize;
                if (c == 0) out->large_bytes += objs * s->elemsize;
                if (per) {
                    per[c].spans++;
                    per[c].objects += objs;
                    per[c].span_bytes += s->npages << GCM_PAGE_SHIFT;
                }
            }
        }
    }
    out->mapped_bytes = gcm_mheap_mapped_locked();
    out->released_bytes = h->pages.free_scav_pages << GCM_PAGE_SHIFT;
    out->peak_mapped_bytes = h->peak_mapped > out->mapped_bytes ? h->peak_mapped : out->mapped_bytes;
    gcm_lock_release(&h->lock);
}

static void put(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(int fd, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) gcm_os_write(fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

#define MIB(x) ((double)(x) / 1048576.0)

void gcm_stats_print(int fd) {
    struct gcm_stats st;
    gcm_class_stats per[GCM_NUM_SIZE_CLASSES];
    gcm_stats_read(&st, per);
    put(fd,
        "gcmalloc: heap mapped %.1f MiB (peak %.1f MiB), allocated %.1f MiB in %zu objects "
        "(large %.1f MiB), released to the OS %.1f MiB\n",
        MIB(st.mapped_bytes), MIB(st.peak_mapped_bytes), MIB(st.allocated_bytes), st.allocated_objects,
        MIB(st.large_bytes), MIB(st.released_bytes));
    put(fd, "gcmalloc: %6s %8s %8s %10s %12s %6s\n", "class", "size", "spans", "objects", "bytes", "frag%");
    for (unsigned c = 0; c < GCM_NUM_SIZE_CLASSES; c++) {
        if (per[c].spans == 0) continue;
        size_t used = c ? per[c].objects * gcm_class_size[c] : per[c].span_bytes;
        double frag = per[c].span_bytes ? 100.0 * (double)(per[c].span_bytes - used) / (double)per[c].span_bytes : 0;
        if (c == 0)
            put(fd, "gcmalloc: %6s %8s %8zu %10zu %12zu %6.1f\n", "large", ">32K", per[c].spans, per[c].objects,
                used, frag);
        else
            put(fd, "gcmalloc: %6u %8u %8zu %10zu %12zu %6.1f\n", c, gcm_class_size[c], per[c].spans, per[c].objects,
                used, frag);
    }
}
