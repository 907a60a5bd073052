/*
 * arena.c - reserving heap arenas and publishing them in the arena index.
 *
 * Arenas are reserved as one mapping of n * 64 MiB, aligned to 64 MiB; the
 * heapArena metadata (about 70 KiB each) is mapped separately so that the
 * arena's pages hold only objects. The heap asks for the address right after
 * its last arena first, so that arenas usually touch and large free runs can
 * cross them (heapArena.contig_prev).
 */
#include "arena.h"
#include "os.h"

heapArena *gcm_arena_index[GCM_ARENA_INDEX_LEN];

void gcm_arena_index_set(heapArena *a) {
    GCM_STORE_REL(&gcm_arena_index[a->base >> GCM_ARENA_SHIFT], a);
}

heapArena *gcm_arena_reserve(size_t n, uintptr_t hint) {
    size_t len = n * GCM_ARENA_SIZE;
    if (n == 0 || len / GCM_ARENA_SIZE != n) return NULL;
    char *base = gcm_os_map_aligned(len, GCM_ARENA_SIZE, (void *)hint);
    if (!base) return NULL;
    if (((uintptr_t)base + len - 1) >> GCM_ADDR_BITS) { /* beyond what the index covers */
        gcm_os_unmap(base, len);
        return NULL;
    }
    heapArena *first = gcm_os_map(NULL, GCM_ARENA_META_SIZE * n);
    if (!first) {
        gcm_os_unmap(base, len);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) gcm_arena_nth(first, i)->base = (uintptr_t)base + i * GCM_ARENA_SIZE;
    return first;
}
