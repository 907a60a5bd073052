/*
 * The malloc fuzz harness (fuzz_malloc.c) in the normal test run: its
 * committed corpus, crash regressions included, plus pseudo-random inputs;
 * and a check that the harness does catch a corrupted object.
 */
#include <criterion/criterion.h>

#include "testutil.h"
#include "fuzz_malloc.c"
#include "replay.h"

Test(fuzz_replay, malloc_corpus, .timeout = 120) {
    int n = replay_corpus("malloc");
    cr_assert_geq(n, 10, "tests/fuzz/corpus/malloc: %d inputs (missing corpus?)", n);
}

Test(fuzz_replay, malloc_random_inputs, .timeout = 120) {
    replay_random(150, 1024, 0x6a09e667f3bcc908ull);
}

/* A fixed input that leaves objects live at its end. */
static void corrupt_one(void *arg) {
    static const uint8_t in[] = {OP_MALLOC, 1, 0x40, 0x10, OP_MALLOC, 2, 0x20, 0x30, OP_CALLOC, 3, 0x41, 0x00, 3};
    fz_selftest_corrupt = 1;
    LLVMFuzzerTestOneInput(in, sizeof in);
}

Test(fuzz_replay, harness_detects_corruption) {
    struct child_result r;
    cr_assert_eq(run_in_child(corrupt_one, NULL, 60, &r), 0, "timed out");
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "the harness did not abort; stderr: %s", r.err);
    cr_assert(strstr(r.err, "fuzz_malloc: ") && strstr(r.err, "byte"), "stderr: %s", r.err);
}
