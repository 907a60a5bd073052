/*
 * The page-allocator fuzz harness (fuzz_pagealloc.c) in the normal test run:
 * its committed corpus, crash regressions included, plus pseudo-random
 * inputs; and a check that the harness's model does catch a difference.
 */
#include <criterion/criterion.h>

#include "testutil.h"
#include "fuzz_pagealloc.c"
#include "replay.h"

Test(fuzz_replay, pagealloc_corpus, .timeout = 120) {
    int n = replay_corpus("pagealloc");
    cr_assert_geq(n, 10, "tests/fuzz/corpus/pagealloc: %d inputs (missing corpus?)", n);
}

Test(fuzz_replay, pagealloc_random_inputs, .timeout = 120) {
    replay_random(200, 1024, 0xbb67ae8584caa73bull);
}

/* Flip one page of the model behind the allocator's back: the next check
 * must see the difference. */
static void lie_to_the_model(void *arg) {
    fp_init_pool();
    pm_init();
    grow(0);
    do_alloc(10, 5, "setup");
    H.used[12] = 0;
    check_all("after the lie");
}

Test(fuzz_replay, pagealloc_harness_detects_a_difference) {
    struct child_result r;
    cr_assert_eq(run_in_child(lie_to_the_model, NULL, 60, &r), 0, "timed out");
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "the harness did not abort; stderr: %s", r.err);
    cr_assert(strstr(r.err, "fuzz_pagealloc: ") && strstr(r.err, "page 12"), "stderr: %s", r.err);
}
