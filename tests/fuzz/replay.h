/*
 * replay.h - the main() of the fuzz harnesses in the normal (gcc) test run:
 * feed every file of a committed corpus directory (tests/fuzz/corpus/<name>,
 * which holds a minimised corpus and every input that ever crashed a
 * harness) to LLVMFuzzerTestOneInput, then a fixed number of pseudo-random
 * inputs. A failed check inside the harness aborts, which fails the test.
 */
#ifndef GCM_FUZZ_REPLAY_H
#define GCM_FUZZ_REPLAY_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns the number of files replayed (-1: no directory). */
static int replay_corpus(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", GCM_SOURCE_DIR, name);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len;
        char *data = read_file_all(path, &len);
        if (!data)
            continue;
        LLVMFuzzerTestOneInput((const uint8_t *)data, len);
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

/* count inputs of up to maxlen pseudo-random bytes (fixed seed);
 * GCM_FUZZ_RANDOM_INPUTS overrides count (scripts/sanitize.sh lowers it). */
static void replay_random(unsigned count, size_t maxlen, uint64_t seed) {
    const char *env = getenv("GCM_FUZZ_RANDOM_INPUTS");
    if (env && atoi(env) >= 0)
        count = (unsigned)atoi(env);
    uint8_t *buf = malloc(maxlen);
    for (unsigned i = 0; i < count; i++) {
        size_t len = (size_t)(tu_rand(&seed) % maxlen) + 1;
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)(tu_rand(&seed) >> 24);
        LLVMFuzzerTestOneInput(buf, len);
    }
    free(buf);
}

#endif
