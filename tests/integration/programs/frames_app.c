/*
 * frames_app.c - a bad free whose abort walks the frame-pointer chain, for
 * tests/integration/test_frames.c. Linked with the release libgcmalloc.so
 * and exporting its symbols (-rdynamic), it defines abort() itself: the
 * library's report calls it straight from gcmalloc's frames. Walking saved
 * frame pointers from there, as perf --call-graph=fp does, must pass
 * through gcmalloc's frames and reach main. Prints one line per frame
 * ("frame <object> <symbol>") and exits 0 when main was reached, 1 if not.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FRAMES 32

void abort(void) {
    uintptr_t *fp = __builtin_frame_address(0);
    for (int i = 0; i < MAX_FRAMES && fp; i++) {
        uintptr_t ret = fp[1], *next = (uintptr_t *)fp[0];
        Dl_info info;
        if (!dladdr((void *)ret, &info)) break;
        const char *obj = strrchr(info.dli_fname, '/');
        printf("frame %s %s\n", obj ? obj + 1 : info.dli_fname, info.dli_sname ? info.dli_sname : "?");
        if (info.dli_sname && !strcmp(info.dli_sname, "main")) {
            fflush(stdout);
            _exit(0);
        }
        /* A frame pointer chain runs up the stack, one frame at a time. */
        if (next <= fp || (uintptr_t)next - (uintptr_t)fp > (1u << 20)) break;
        fp = next;
    }
    fflush(stdout);
    _exit(1);
}

int main(void) {
    static char not_ours[64];
    char *volatile p = not_ours + 16;
    free(p); /* gcmalloc reports an invalid pointer and aborts */
    return 2;
}
