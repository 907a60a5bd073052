/*
 * The sqlite3 CLI under LD_PRELOAD=libgcmalloc.so on a few hundred thousand
 * rows (bulk insert in a transaction, indexes, a join and a group by): the
 * output must be byte-for-byte the output without it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define SQLITE "/usr/bin/sqlite3"

static const char script[] =
    "PRAGMA journal_mode=WAL;\n"
    "CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, blob BLOB);\n"
    "CREATE TABLE grp(id INTEGER PRIMARY KEY, label TEXT);\n"
    "BEGIN;\n"
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)\n"
    "INSERT INTO item SELECT x, x % 1000, printf('name-%08d', (x * 7919) % 300007),\n"
    "       (x * 37 % 1001) / 7.0, zeroblob(x % 50) FROM c;\n"
    "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 999)\n"
    "INSERT INTO grp SELECT x, 'group-' || (x % 37) FROM c;\n"
    "COMMIT;\n"
    "CREATE INDEX item_name ON item(name);\n"
    "CREATE INDEX item_grp_val ON item(grp, val);\n"
    "SELECT count(*), sum(length(blob)), total(val) FROM item;\n"
    "SELECT g.label, count(*), printf('%.4f', sum(i.val)), min(i.name), max(i.name)\n"
    "  FROM item i JOIN grp g ON i.grp = g.id GROUP BY g.label ORDER BY g.label;\n"
    "SELECT count(DISTINCT name) FROM item;\n"
    "SELECT name, id FROM item WHERE name > 'name-00150000' ORDER BY name LIMIT 5;\n"
    "SELECT grp, count(*) FROM item WHERE val > 100 GROUP BY grp ORDER BY count(*) DESC, grp LIMIT 5;\n"
    "UPDATE item SET name = upper(name) WHERE id % 3 = 0;\n"
    "DELETE FROM item WHERE id % 5 = 0;\n"
    "SELECT count(*), count(DISTINCT substr(name, 1, 6)) FROM item;\n"
    "SELECT group_concat(name, ',') FROM (SELECT name FROM item ORDER BY id DESC LIMIT 20);\n"
    "PRAGMA integrity_check;\n";

Test(sqlite, cli_bulk_insert_index_join_group_by, .timeout = 280) {
    REQUIRE_PROGRAM(SQLITE);
    char dir[] = "/tmp/gcm_sqlite_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sql[256], db1[256], db2[256];
    snprintf(sql, sizeof sql, "%s/script.sql", dir);
    cr_assert_eq(write_file_all(sql, script, sizeof script - 1), 0);
    /* The same database file name for both runs (it is not printed, but
     * keep the runs identical); removed in between. */
    snprintf(db1, sizeof db1, "%s/test.db", dir);
    snprintf(db2, sizeof db2, "%s/test.db-wal", dir);
    const char *argv[] = {SQLITE, "-batch", "-bail", db1, NULL};
    /* Like compare_runs, with the database removed between the runs. */
    struct run_result plain, pre;
    int r = run_cmd(argv, NULL, NULL, sql, 240, &plain);
    cr_assert_eq(r, 0, "sqlite3 timed out");
    char shm[256];
    snprintf(shm, sizeof shm, "%s/test.db-shm", dir);
    unlink(db1);
    unlink(db2);
    unlink(shm);
    r = run_cmd(argv, GCM_LIB, NULL, sql, 240, &pre);
    cr_assert_eq(r, 0, "sqlite3 under gcmalloc timed out");
    char s1[64], s2[64];
    cr_assert(WIFEXITED(plain.status) && WEXITSTATUS(plain.status) == 0, "sqlite3 failed (%s): %s",
              status_str(plain.status, s1, sizeof s1), plain.err);
    cr_assert(WIFEXITED(pre.status) && WEXITSTATUS(pre.status) == 0, "sqlite3 under gcmalloc: %s; stderr: %s",
              status_str(pre.status, s2, sizeof s2), pre.err);
    long d = first_diff(plain.out, plain.out_len, pre.out, pre.out_len);
    cr_assert_eq(d, -1, "stdout differs at byte %ld: without: %.200s / with: %.200s", d,
                 d >= 0 ? plain.out + d : "", d >= 0 ? pre.out + d : "");
    d = first_diff(plain.err, plain.err_len, pre.err, pre.err_len);
    cr_assert_eq(d, -1, "stderr differs: without: %s / with: %s", plain.err, pre.err);
    cr_assert_not_null(strstr(plain.out, "300000|"), "unexpected output: %.300s", plain.out);
    cr_assert_not_null(strstr(plain.out, "\nok\n"), "integrity_check did not say ok: %.300s", plain.out);
    run_result_free(&plain);
    run_result_free(&pre);
    unlink(db1);
    unlink(db2);
    unlink(shm);
    unlink(sql);
    rmdir(dir);
}

/* An in-memory database (all pages in the allocator) through compare_runs. */
Test(sqlite, in_memory_database, .timeout = 280) {
    REQUIRE_PROGRAM(SQLITE);
    char dir[] = "/tmp/gcm_sqlite_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char sql[256];
    snprintf(sql, sizeof sql, "%s/script.sql", dir);
    cr_assert_eq(write_file_all(sql, script + strlen("PRAGMA journal_mode=WAL;\n"),
                                sizeof script - 1 - strlen("PRAGMA journal_mode=WAL;\n")),
                 0);
    const char *argv[] = {SQLITE, "-batch", "-bail", ":memory:", NULL};
    char *out = compare_runs(argv, NULL, sql, 240, 0);
    cr_assert_not_null(strstr(out, "300000|"), "unexpected output: %.300s", out);
    free(out);
    unlink(sql);
    rmdir(dir);
}
