/*
 * leak.c - see leak.h.
 */
#include "leak.h"
#include "alloc/mheap.h"
#include "alloc/os.h"

#include <stdio.h>

#define LEAK_GROUPS 4096 /* distinct sizes tracked; the rest count as one group */
#define LEAK_SHOWN 10

typedef struct group {
    size_t size, count;
} group;

static group groups[LEAK_GROUPS];
static size_t ngroups, other_count, other_bytes;
static size_t leak_objects, leak_bytes;

static void add(size_t size) {
    leak_objects++;
    leak_bytes += size;
    size_t h = (size * 0x9e3779b97f4a7c15ull) >> 52; /* 12 bits */
    for (size_t i = 0; i < LEAK_GROUPS; i++, h = (h + 1) & (LEAK_GROUPS - 1)) {
        if (groups[h].count == 0) {
            if (ngroups * 4 >= LEAK_GROUPS * 3) break;
            groups[h].size = size;
            groups[h].count = 1;
            ngroups++;
            return;
        }
        if (groups[h].size == size) {
            groups[h].count++;
            return;
        }
    }
    other_count++;
    other_bytes += size;
}

static void scan_span(mspan *s, void *ctx) {
    if (mspan_is_large(s)) {
        if ((s->allocBits[0] & 1) && !(s->gcmarkBits[0] & 1)) add(s->reqsize);
        return;
    }
    for (size_t w = 0; w < s->nwords; w++) {
        for (uint64_t lost = mspan_allocated_word(s, w) & ~s->gcmarkBits[w]; lost; lost &= lost - 1) {
            size_t idx = w * 64 + (size_t)__builtin_ctzll(lost);
            uint32_t req = s->reqsizes ? s->reqsizes[idx] : 0;
            add(req ? req : s->elemsize);
        }
    }
}

size_t gcm_leak_scan_count(void) { return leak_objects; }

size_t gcm_leak_scan(void) {
    for (size_t i = 0; i < LEAK_GROUPS; i++) groups[i].count = 0;
    ngroups = other_count = other_bytes = leak_objects = leak_bytes = 0;
    gcm_mheap_each_span(scan_span, NULL);
    return leak_objects;
}

void gcm_leak_print(int fd) {
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "gcmalloc: leaks: %zu objects, %zu bytes\n", leak_objects, leak_bytes);
    /* The largest groups by total bytes: a selection, LEAK_SHOWN times. */
    bool shown[LEAK_GROUPS] = {false};
    for (int k = 0; k < LEAK_SHOWN; k++) {
        size_t best = LEAK_GROUPS;
        for (size_t i = 0; i < LEAK_GROUPS; i++) {
            if (!groups[i].count || shown[i]) continue;
            if (best == LEAK_GROUPS || groups[i].count * groups[i].size > groups[best].count * groups[best].size)
                best = i;
        }
        if (best == LEAK_GROUPS) break;
        shown[best] = true;
        n += snprintf(buf + n, sizeof buf - (size_t)n, "gcmalloc:   %zu bytes in %zu objects of %zu bytes\n",
                      groups[best].count * groups[best].size, groups[best].count, groups[best].size);
        if ((size_t)n >= sizeof buf - 128) break;
    }
    if (other_count)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "gcmalloc:   %zu bytes in %zu objects of other sizes\n",
                      other_bytes, other_count);
    gcm_os_write(fd, buf, (size_t)n);
}
