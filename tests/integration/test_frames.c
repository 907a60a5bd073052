/*
 * Frame pointers in the release library: perf --call-graph=fp and any
 * frame-pointer unwinder must get from inside gcmalloc back to the program.
 * programs/frames_app.c frees a pointer gcmalloc never gave out; gcmalloc
 * reports it and calls abort(), which the program defines and which walks
 * the saved frame pointers: the walk must pass gcmalloc's frames (the
 * report, free) and reach main.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

Test(frames, bad_free_walks_back_to_main, .timeout = 60) {
    const char *argv[] = {GCM_FRAMES_APP, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, NULL, NULL, 30, &r), 0, "frames_app timed out");
    cr_assert_not_null(strstr(r.err, "gcmalloc: free(): invalid pointer"), "no bad-free report:\n%s", r.err);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "main not reached:\n%s", r.out);
    size_t ours = 0;
    for (const char *l = r.out; (l = strstr(l, "frame libgcmalloc")); l++) ours++;
    /* gcm_fatal_ptr -> gcm_report_bad -> free */
    cr_assert_geq(ours, 3, "fewer than 3 gcmalloc frames before main:\n%s", r.out);
    cr_assert_not_null(strstr(r.out, "frame frames_app main\n"), "%s", r.out);
    run_result_free(&r);
}
