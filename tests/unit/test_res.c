/*
 * test_res.c — unit tests for results/res.{h,c} and results/res_plot.c: the per-run SQLite
 * results file, its hash, its checks and its plot.
 *
 * Every file goes into a private directory made with mkdtemp under /tmp and removed at the
 * end. The tests reopen what res_* wrote with plain sqlite3 and compare exact values; the
 * hash is checked against the documented canonical encoding computed here by hand; the plot
 * tests need gnuplot (a declared dependency of the project) and check the output's magic
 * bytes or text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "p4p/p4p.h"
#include "res.h"

/* ---- Helpers ------------------------------------------------------------------------------- */

struct ctx {
    char dir[64];
};

static void path_in(void **state, const char *name, char out[256])
{
    const struct ctx *c = *state;
    snprintf(out, 256, "%s/%s", c->dir, name);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Reads a whole file into a NUL-terminated buffer (caller frees). */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = NULL;
    size_t n = 0;
    size_t cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap * 2 + 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static double query_real(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(st, 0), SQLITE_FLOAT);
    double v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The first column of the first row as text ("(null)" for NULL), into out. */
static void query_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(out, outlen, "%s", t != NULL ? (const char *)t : "(null)");
    sqlite3_finalize(st);
}

static void exec_sql(sqlite3 *db, const char *sql)
{
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static const struct res_run_info base_run = {
    .mode = "sim",
    .scenario_path = "scenarios/flood_small.yaml",
    .scenario_sha256 = "00ff",
    .config_json = "{\"nodes\":3}",
    .tool_version = "0.1.0",
    .git_commit = "abc123",
    .seed = 42,
};

/* Writes the sample results. `mutate` 0 is the base content; 1..N each change one simulated
 * value. `reverse` inserts the rows in the opposite order. tool/git/wall/path vary the parts
 * the hash must ignore. */
static void write_sample(const char *path, int mutate, int reverse, const char *tool,
                         const char *git, double wall, const char *scenario)
{
    struct res_run_info run = base_run;
    res_db *db = NULL;
    run.tool_version = tool;
    run.git_commit = git;
    run.scenario_path = scenario;
    run.seed = mutate == 10 ? 43 : 42;
    /* Paths may differ between machines: the config's copy of them is not hashed. */
    run.config_json = strcmp(scenario, "/elsewhere/x.yaml") == 0 ? "{\"file\":\"/elsewhere\"}"
                                                                 : "{\"file\":\"here\"}";
    assert_int_equal(res_create(path, &run, &db), 0);
    assert_int_equal(res_wall(db, "wall_s", wall), 0);
    assert_int_equal(res_param(db, "nodes", mutate == 1 ? "4" : "3"), 0);
    assert_int_equal(res_param(db, "app", "flood"), 0);
    assert_int_equal(res_param(db, "topology.file", scenario), 0);
    assert_int_equal(res_param(db, "topology.file_sha256", mutate == 11 ? "01" : "00"), 0);
    for (int k = 0; k < 3; k++) {
        uint32_t i = reverse ? (uint32_t)(2 - k) : (uint32_t)k;
        double xy[2] = {mutate == 3 && i == 1 ? nextafter(1.5, 2.0) : 1.5 * i, -2.0};
        const char *peer = mutate == 14 && i == 0 ? NULL : "0a0b";
        assert_int_equal(res_node(db, i, peer, mutate == 2 && i == 2 ? 4 : 2, xy), 0);
        assert_int_equal(res_scalar(db, i, "bytes_out", 100.0 * (i + 1)), 0);
    }
    assert_int_equal(res_scalar(db, -1, "mean_latency_s", mutate == 4 ? 0.30000000000000004 : 0.3),
                     0);
    struct res_summary s = {3, 1.0, 0.5, 0.5, 1.0, 1.5, mutate == 5 ? 1.6 : 1.5, 1.5};
    assert_int_equal(res_stat(db, "latency_s", &s), 0);
    for (int k = 0; k < 3; k++) {
        int t = reverse ? 2 - k : k;
        assert_int_equal(res_series(db, "coverage", (uint64_t)t * 1000000000u,
                                    mutate == 6 && t == 1 ? 0.6 : t / 2.0),
                         0);
    }
    if (mutate == 13) {
        assert_int_equal(res_series(db, "coverage", 3000000000u, 1.0), 0);
    }
    assert_int_equal(res_update(db, 7, "beef", 0, 500, mutate == 7 ? 65 : 64), 0);
    for (int k = 0; k < 2; k++) {
        uint32_t n = reverse ? (uint32_t)(2 - k) : (uint32_t)(k + 1);
        uint64_t t = mutate == 9 && n == 2 ? 1000000600u : 1000000500u * n;
        assert_int_equal(res_delivery(db, 7, n, t, mutate == 8 && n == 1 ? 2 : n), 0);
    }
    assert_int_equal(res_wall(db, "events_per_s", wall * 2), 0);
    assert_int_equal(res_finish(db, "ok", "done", mutate == 12 ? 5000000001u : 5000000000u), 0);
}

static void write_small_run(const char *path);

/* ---- Writing ------------------------------------------------------------------------------- */

static void test_write_all_kinds(void **state)
{
    char path[256];
    char tmp[300];
    char text[256];
    path_in(state, "all.sqlite", path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    struct res_run_info run = base_run;
    run.seed = UINT64_MAX;
    res_db *db = NULL;
    assert_int_equal(res_create(path, &run, &db), 0);
    assert_non_null(db);
    assert_true(file_exists(tmp));
    assert_false(file_exists(path));

    double xy[2] = {12.5, -3.25};
    assert_int_equal(res_param(db, "radio.lora.sf", "7"), 0);
    assert_int_equal(res_node(db, 0, "00112233", 3, xy), 0);
    assert_int_equal(res_node(db, 1, NULL, 0, NULL), 0);
    assert_int_equal(res_scalar(db, -1, "delivered", 12.0), 0);
    assert_int_equal(res_scalar(db, 1, "bytes_out", NAN), 0);
    struct res_summary s = {4, 2.5, 1.25, 1.0, 2.0, 4.0, 4.0, 4.0};
    assert_int_equal(res_stat(db, "hops", &s), 0);
    assert_int_equal(res_series(db, "coverage", 1500000000u, 0.75), 0);
    assert_int_equal(res_update(db, 9, "deadbeef", 1, 1000, 48), 0);
    assert_int_equal(res_delivery(db, 9, 0, 3000, 2), 0);
    assert_int_equal(res_wall(db, "peak_rss_kb", 2048.0), 0);
    assert_int_equal(res_finish(db, "ok", "all delivered", 99000), 0);
    assert_false(file_exists(tmp));
    assert_true(file_exists(path));

    sqlite3 *sql = open_db(path);
    assert_int_equal(query_int(sql, "PRAGMA application_id"), RES_APPLICATION_ID);
    assert_int_equal(query_int(sql, "PRAGMA application_id"), 0x50345031);
    assert_int_equal(query_int(sql, "PRAGMA user_version"), RES_SCHEMA_VERSION);
    query_text(sql, "SELECT seed FROM run", text, sizeof text);
    assert_string_equal(text, "18446744073709551615");
    query_text(sql,
               "SELECT mode || '|' || status || '|' || message || '|' || scenario_path"
               " || '|' || scenario_sha256 || '|' || config_json || '|' || tool_version"
               " || '|' || git_commit FROM run",
               text, sizeof text);
    assert_string_equal(text, "sim|ok|all delivered|scenarios/flood_small.yaml|00ff|"
                              "{\"nodes\":3}|0.1.0|abc123");
    assert_int_equal(query_int(sql, "SELECT sim_end_ns FROM run"), 99000);
    query_text(sql, "SELECT value FROM parameter WHERE key = 'radio.lora.sf'", text, sizeof text);
    assert_string_equal(text, "7");
    query_text(sql,
               "SELECT peer_id || ',' || degree || ',' || x || ',' || y FROM node"
               " WHERE node = 0",
               text, sizeof text);
    assert_string_equal(text, "00112233,3,12.5,-3.25");
    assert_int_equal(query_int(sql, "SELECT count(*) FROM node WHERE node = 1 AND peer_id IS NULL"
                                    " AND degree = 0 AND x IS NULL AND y IS NULL"),
                     1);
    assert_true(query_real(sql, "SELECT value FROM scalar WHERE node = -1") == 12.0);
    assert_int_equal(query_int(sql, "SELECT value IS NULL FROM scalar WHERE node = 1"), 1);
    query_text(sql,
               "SELECT count || ',' || mean || ',' || stddev || ',' || min || ',' || p50"
               " || ',' || p90 || ',' || p99 || ',' || max FROM statistic WHERE name = 'hops'",
               text, sizeof text);
    assert_string_equal(text, "4,2.5,1.25,1.0,2.0,4.0,4.0,4.0");
    assert_int_equal(query_int(sql, "SELECT t_ns FROM series WHERE name = 'coverage'"), 1500000000);
    assert_true(query_real(sql, "SELECT value FROM series") == 0.75);
    query_text(sql,
               "SELECT msg_id || ',' || origin || ',' || created_ns || ',' || size"
               " FROM updates WHERE update_id = 9",
               text, sizeof text);
    assert_string_equal(text, "deadbeef,1,1000,48");
    query_text(sql,
               "SELECT delivered_ns || ',' || hops FROM delivery WHERE update_id = 9"
               " AND node = 0",
               text, sizeof text);
    assert_string_equal(text, "3000,2");
    assert_int_equal(query_int(sql, "SELECT latency_ns FROM delivery_latency"), 2000);
    assert_true(query_real(sql, "SELECT value FROM wall WHERE name = 'peak_rss_kb'") == 2048.0);
    sqlite3_close(sql);

    char err[256];
    assert_int_equal(res_check(path, err, sizeof err), 0);
    assert_string_equal(err, "");
}

static void test_write_rejects_bad_rows(void **state)
{
    char path[256];
    path_in(state, "bad.sqlite", path);
    res_db *db = NULL;
    assert_int_equal(res_create(path, &base_run, &db), 0);

    assert_int_equal(res_param(db, "k", "v"), 0);
    assert_int_equal(res_param(db, "k", "w"), P4P_EDUPLICATE);
    assert_non_null(strstr(res_errmsg(db), "UNIQUE constraint failed"));
    assert_int_equal(res_param(db, "", "v"), P4P_EINVAL);
    assert_int_equal(res_param(db, NULL, "v"), P4P_EINVAL);
    assert_int_equal(res_param(db, "k2", NULL), P4P_EINVAL);
    assert_int_equal(res_node(db, 0, "ABCD", 1, NULL), P4P_EINVAL); /* not lowercase */
    assert_int_equal(res_node(db, 0, "abc", 1, NULL), P4P_EINVAL);  /* odd length */
    assert_int_equal(res_node(db, 0, "", 1, NULL), P4P_EINVAL);
    assert_int_equal(res_node(db, 0, "ab", 1, NULL), 0);
    assert_int_equal(res_node(db, 0, "ab", 1, NULL), P4P_EDUPLICATE);
    assert_int_equal(res_scalar(db, -2, "x", 1.0), P4P_EINVAL);
    assert_int_equal(res_scalar(db, 0, "", 1.0), P4P_EINVAL);
    assert_int_equal(res_series(db, "s", (uint64_t)INT64_MAX + 1, 1.0), P4P_EINVAL);
    assert_int_equal(res_series(db, "s", (uint64_t)INT64_MAX, 1.0), 0);
    assert_int_equal(res_update(db, (uint64_t)INT64_MAX + 1, "ab", 0, 0, 0), P4P_EINVAL);
    assert_int_equal(res_update(db, 1, "xyz0", 0, 0, 0), P4P_EINVAL);
    assert_int_equal(res_update(db, 1, NULL, 0, 0, 0), P4P_EINVAL);
    assert_int_equal(res_update(db, 1, "ab", 0, P4P_TIME_NONE, 0), P4P_EINVAL);
    assert_int_equal(res_delivery(db, 1, 0, P4P_TIME_NONE, 0), P4P_EINVAL);
    assert_int_equal(res_delivery(db, 1, 0, 10, 0), 0);
    assert_int_equal(res_delivery(db, 1, 0, 11, 0), P4P_EDUPLICATE);
    struct res_summary s = {0};
    assert_int_equal(res_stat(db, "x", NULL), P4P_EINVAL);
    s.count = UINT64_MAX;
    assert_int_equal(res_stat(db, "x", &s), P4P_EINVAL);
    assert_int_equal(res_wall(db, NULL, 1.0), P4P_EINVAL);
    assert_int_equal(res_param(NULL, "k", "v"), P4P_EINVAL);
    /* The failed rows did not break the transaction. */
    assert_int_equal(res_finish(db, "failed", NULL, 0), 0);

    sqlite3 *sql = open_db(path);
    assert_int_equal(query_int(sql, "SELECT count(*) FROM parameter"), 1);
    assert_int_equal(query_int(sql, "SELECT count(*) FROM node"), 1);
    assert_int_equal(query_int(sql, "SELECT count(*) FROM delivery"), 1);
    assert_int_equal(query_int(sql, "SELECT count(*) FROM series"), 1);
    assert_int_equal(query_int(sql, "SELECT count(*) FROM run WHERE status = 'failed'"
                                    " AND message IS NULL"),
                     1);
    sqlite3_close(sql);
}

static void test_create_bad_arguments(void **state)
{
    char path[256];
    path_in(state, "args.sqlite", path);
    res_db *db = (res_db *)&db; /* must stay untouched on failure */
    res_db *const sentinel = db;
    struct res_run_info run = base_run;
    assert_int_equal(res_create(NULL, &run, &db), P4P_EINVAL);
    assert_int_equal(res_create("", &run, &db), P4P_EINVAL);
    assert_int_equal(res_create(path, NULL, &db), P4P_EINVAL);
    assert_int_equal(res_create(path, &run, NULL), P4P_EINVAL);
    run.mode = "replay";
    assert_int_equal(res_create(path, &run, &db), P4P_EINVAL);
    run.mode = NULL;
    assert_int_equal(res_create(path, &run, &db), P4P_EINVAL);
    run.mode = "live";
    run.scenario_sha256 = "not hex";
    assert_int_equal(res_create(path, &run, &db), P4P_EINVAL);
    assert_ptr_equal(db, sentinel);
    assert_false(file_exists(path));
}

static void test_create_unwritable(void **state)
{
    const struct ctx *c = *state;
    char path[256];
    char tmp[300];
    res_db *db = NULL;
    /* A missing directory. */
    path_in(state, "no/such/dir/x.sqlite", path);
    assert_int_equal(res_create(path, &base_run, &db), P4P_EIO);
    assert_null(db);
    /* A path that is a directory: the old "file" cannot be replaced; nothing is left behind. */
    path_in(state, "adir", path);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(res_create(path, &base_run, &db), P4P_EIO);
    assert_null(db);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_false(file_exists(tmp));
    assert_int_equal(rmdir(path), 0);
    (void)c;
}

static void test_create_replaces_and_abort(void **state)
{
    char path[256];
    char tmp[300];
    path_in(state, "replace.sqlite", path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    write_file(path, "old results", 11);
    write_file(tmp, "stale temp", 10);

    res_db *db = NULL;
    assert_int_equal(res_create(path, &base_run, &db), 0);
    /* Old results are gone as soon as the new run starts. */
    assert_false(file_exists(path));
    assert_int_equal(res_param(db, "a", "b"), 0);
    res_abort(db);
    assert_false(file_exists(path));
    assert_false(file_exists(tmp));
    res_abort(NULL);

    /* A bad status aborts too, and releases the handle. */
    assert_int_equal(res_create(path, &base_run, &db), 0);
    assert_int_equal(res_finish(db, "running", NULL, 0), P4P_EINVAL);
    assert_false(file_exists(path));
    assert_false(file_exists(tmp));
    assert_int_equal(res_create(path, &base_run, &db), 0);
    assert_int_equal(res_finish(db, "ok", NULL, P4P_TIME_NONE), P4P_EINVAL);
    assert_false(file_exists(tmp));
    assert_int_equal(res_finish(NULL, "ok", NULL, 0), P4P_EINVAL);

    /* A file that did reach res_finish replaces the junk. */
    write_file(path, "old results", 11);
    assert_int_equal(res_create(path, &base_run, &db), 0);
    assert_int_equal(res_finish(db, "ok", NULL, 1), 0);
    assert_int_equal(res_check(path, NULL, 0), 0);
}

/* The disk fills up (a file size limit stands in for it): the commit fails, res_finish
 * reports it, and neither the file nor its temporary is left behind. */
static void test_disk_full(void **state)
{
    char path[256];
    char tmp[300];
    struct rlimit old_limit;
    struct rlimit limit;
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    struct sigaction old_action;
    path_in(state, "full.sqlite", path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    assert_int_equal(sigaction(SIGXFSZ, &ignore, &old_action), 0);
    limit = old_limit;
    limit.rlim_cur = 128 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);

    res_db *db = NULL;
    int rc = res_create(path, &base_run, &db);
    int row_rc = 0;
    for (uint32_t i = 0; rc == 0 && row_rc == 0 && i < 20000; i++) {
        row_rc = res_delivery(db, i, 1, 1000u + i, 1);
    }
    int finish_rc = rc == 0 ? res_finish(db, "ok", NULL, 1) : 0;

    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    assert_int_equal(sigaction(SIGXFSZ, &old_action, NULL), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(row_rc, 0); /* rows wait in the page cache */
    assert_int_equal(finish_rc, P4P_EIO);
    assert_false(file_exists(path));
    assert_false(file_exists(tmp));
}

static void test_thousand_rows(void **state)
{
    char path[256];
    path_in(state, "rows.sqlite", path);
    res_db *db = NULL;
    assert_int_equal(res_create(path, &base_run, &db), 0);
    for (uint32_t u = 0; u < 10; u++) {
        char id[9];
        snprintf(id, sizeof id, "%08x", u);
        assert_int_equal(res_update(db, u, id, u % 7, 1000u * u, 100), 0);
    }
    /* Interleaved like a real run: deliveries in time order, update ids mixed. */
    for (uint32_t i = 0; i < 1000; i++) {
        assert_int_equal(res_delivery(db, i % 10, i / 10, 1000u * (i % 10) + 10u * i, i % 5), 0);
    }
    assert_int_equal(res_finish(db, "ok", NULL, 100000), 0);
    sqlite3 *sql = open_db(path);
    assert_int_equal(query_int(sql, "SELECT count(*) FROM delivery"), 1000);
    assert_int_equal(query_int(sql, "SELECT sum(hops) FROM delivery"), 2000);
    assert_int_equal(query_int(sql, "SELECT sum(latency_ns) FROM delivery_latency"), 4995000);
    assert_int_equal(query_int(sql, "SELECT count(DISTINCT node) FROM delivery"), 100);
    sqlite3_close(sql);
}

/* ---- Hash ---------------------------------------------------------------------------------- */

static void test_hash_matches_spec(void **state)
{
    char path[256];
    char got[65];
    char want[65];
    unsigned char digest[crypto_hash_sha256_BYTES];
    path_in(state, "spec.sqlite", path);
    struct res_run_info run = base_run;
    run.config_json = "{}";
    run.seed = 7;
    res_db *db = NULL;
    double xy[2] = {1.5, -2.0};
    assert_int_equal(res_create(path, &run, &db), 0);
    assert_int_equal(res_param(db, "a", "1"), 0);
    assert_int_equal(res_node(db, 0, "abcd", 2, xy), 0);
    assert_int_equal(res_scalar(db, -1, "sum", 0.1), 0);
    assert_int_equal(res_update(db, 5, "ff", 0, 10, 100), 0);
    assert_int_equal(res_delivery(db, 5, 1, 20, 3), 0);
    assert_int_equal(res_wall(db, "wall_s", 1.0), 0);
    assert_int_equal(res_finish(db, "ok", NULL, 1000), 0);

    static const char canonical[] = "p4p-results-hash 1\n"
                                    "table run\nt1:7,i1000\nend 1\n"
                                    "table parameter\nt1:a,t1:1\nend 1\n"
                                    "table node\ni0,t4:abcd,i2,r1.5,r-2\nend 1\n"
                                    "table scalar\ni-1,t3:sum,r0.10000000000000001\nend 1\n"
                                    "table statistic\nend 0\n"
                                    "table series\nend 0\n"
                                    "table updates\ni5,t2:ff,i0,i10,i100\nend 1\n"
                                    "table delivery\ni5,i1,i20,i3\nend 1\n";
    crypto_hash_sha256(digest, (const unsigned char *)canonical, sizeof canonical - 1);
    sodium_bin2hex(want, sizeof want, digest, sizeof digest);
    assert_int_equal(res_hash(path, got), 0);
    assert_string_equal(got, want);
}

static void test_hash_ignores_wall_and_tooling(void **state)
{
    char a[256];
    char b[256];
    char ha[65];
    char hb[65];
    path_in(state, "hash_a.sqlite", a);
    path_in(state, "hash_b.sqlite", b);
    write_sample(a, 0, 0, "0.1.0", "abc123", 1.5, "scenarios/x.yaml");
    write_sample(b, 0, 1, "0.2.0-dev", "fff000-dirty", 99.25, "/elsewhere/x.yaml");
    assert_int_equal(res_hash(a, ha), 0);
    assert_int_equal(res_hash(b, hb), 0);
    assert_int_equal(strlen(ha), 64);
    assert_string_equal(ha, hb);
    /* Hashing does not change the file. */
    assert_int_equal(res_hash(a, hb), 0);
    assert_string_equal(ha, hb);
}

static void test_hash_sees_every_simulated_value(void **state)
{
    char base[256];
    char other[256];
    char hbase[65];
    char h[65];
    path_in(state, "hash_base.sqlite", base);
    write_sample(base, 0, 0, "t", "g", 1.0, "s.yaml");
    assert_int_equal(res_hash(base, hbase), 0);
    for (int m = 1; m <= 14; m++) {
        char name[64];
        snprintf(name, sizeof name, "hash_m%d.sqlite", m);
        path_in(state, name, other);
        write_sample(other, m, 0, "t", "g", 1.0, "s.yaml");
        assert_int_equal(res_hash(other, h), 0);
        if (strcmp(h, hbase) == 0) {
            fail_msg("mutation %d did not change the hash", m);
        }
    }
}

/* ---- Summaries ----------------------------------------------------------------------------- */

static void test_summarize(void **state)
{
    (void)state;
    struct res_summary s;
    double five[] = {5, 1, 4, 2, 3};
    res_summarize(five, 5, &s);
    assert_int_equal(s.count, 5);
    assert_true(s.mean == 3.0);
    assert_true(fabs(s.stddev - sqrt(2.0)) < 1e-15);
    assert_true(s.min == 1.0 && s.p50 == 3.0 && s.p90 == 5.0 && s.p99 == 5.0 && s.max == 5.0);
    assert_true(five[0] == 1.0 && five[4] == 5.0); /* sorted in place */

    double ten[10];
    for (int i = 0; i < 10; i++) {
        ten[i] = 10 - i;
    }
    res_summarize(ten, 10, &s);
    assert_true(s.p50 == 5.0 && s.p90 == 9.0 && s.p99 == 10.0 && s.mean == 5.5);

    double hundred[100];
    for (int i = 0; i < 100; i++) {
        hundred[i] = (i * 37) % 100 + 1; /* 1..100 shuffled */
    }
    res_summarize(hundred, 100, &s);
    assert_true(s.min == 1.0 && s.p50 == 50.0 && s.p90 == 90.0 && s.p99 == 99.0);
    assert_true(s.max == 100.0 && s.mean == 50.5);

    double many[101];
    for (int i = 0; i < 101; i++) {
        many[i] = i;
    }
    res_summarize(many, 101, &s); /* ranks ceil(50.5)=51, ceil(90.9)=91, ceil(99.99)=100 */
    assert_true(s.p50 == 50.0 && s.p90 == 90.0 && s.p99 == 99.0 && s.max == 100.0);

    double one[] = {-2.5};
    res_summarize(one, 1, &s);
    assert_int_equal(s.count, 1);
    assert_true(s.mean == -2.5 && s.stddev == 0.0 && s.min == -2.5 && s.p50 == -2.5);
    assert_true(s.p90 == -2.5 && s.p99 == -2.5 && s.max == -2.5);

    memset(&s, 0xff, sizeof s);
    res_summarize(NULL, 0, &s);
    assert_int_equal(s.count, 0);
    assert_true(s.mean == 0.0 && s.stddev == 0.0 && s.min == 0.0 && s.p50 == 0.0);
    assert_true(s.p90 == 0.0 && s.p99 == 0.0 && s.max == 0.0);

    double with_nan[] = {NAN, 2.0, 1.0};
    res_summarize(with_nan, 3, &s);
    assert_true(with_nan[0] == 1.0 && with_nan[1] == 2.0 && isnan(with_nan[2]));
}

/* ---- Checks -------------------------------------------------------------------------------- */

static void test_check_rejects(void **state)
{
    char path[256];
    char err[256];
    char hex[65] = "unchanged";

    path_in(state, "missing.sqlite", path);
    assert_int_equal(res_check(path, err, sizeof err), P4P_ENOTFOUND);
    assert_non_null(strstr(err, "No such file"));

    path_in(state, "text.sqlite", path);
    write_file(path, "this is not a database, just some text that is long enough......", 64);
    assert_int_equal(res_check(path, err, sizeof err), P4P_EMALFORMED);
    assert_non_null(strstr(err, "not an SQLite database"));
    assert_int_equal(res_hash(path, hex), P4P_EMALFORMED);
    assert_string_equal(hex, "unchanged");

    path_in(state, "empty.sqlite", path);
    write_file(path, "", 0);
    assert_int_equal(res_check(path, err, sizeof err), P4P_EMALFORMED);
    assert_non_null(strstr(err, "application_id 0x00000000"));

    const struct ctx *c = *state;
    assert_int_equal(res_check(c->dir, err, sizeof err), P4P_EMALFORMED);
    assert_non_null(strstr(err, "not a regular file"));

    path_in(state, "other.sqlite", path);
    sqlite3 *sql = NULL;
    assert_int_equal(sqlite3_open(path, &sql), SQLITE_OK);
    exec_sql(sql, "PRAGMA application_id = 1234; CREATE TABLE t (x)");
    sqlite3_close(sql);
    assert_int_equal(res_check(path, err, sizeof err), P4P_EMALFORMED);
    assert_non_null(strstr(err, "not a p4p results file (application_id 0x000004d2"));

    path_in(state, "notables.sqlite", path);
    assert_int_equal(sqlite3_open(path, &sql), SQLITE_OK);
    exec_sql(sql, "PRAGMA application_id = 0x50345031; PRAGMA user_version = 1;"
                  " CREATE TABLE run (id)");
    sqlite3_close(sql);
    assert_int_equal(res_check(path, err, sizeof err), P4P_EMALFORMED);
    assert_non_null(strstr(err, "table 'run' is not as expected"));

    /* A real results file, then altered. */
    path_in(state, "version.sqlite", path);
    write_sample(path, 0, 0, "t", "g", 1.0, "s.yaml");
    sql = open_db(path);
    exec_sql(sql, "PRAGMA user_version = 2");
    sqlite3_close(sql);
    assert_int_equal(res_check(path, err, sizeof err), P4P_EVERSION);
    assert_non_null(strstr(err, "results schema version 2"));
    assert_int_equal(res_hash(path, hex), P4P_EVERSION);

    path_in(state, "nowall.sqlite", path);
    write_sample(path, 0, 0, "t", "g", 1.0, "s.yaml");
    sql = open_db(path);
    exec_sql(sql, "DROP TABLE wall; CREATE VIEW wall AS SELECT 1 AS name, 2 AS value");
    sqlite3_close(sql);
    assert_int_equal(res_check(path, err, sizeof err), P4P_EMALFORMED);
    assert_non_null(strstr(err, "lacks the table 'wall'"));

    path_in(state, "tworuns.sqlite", path);
    write_sample(path, 0, 0, "t", "g", 1.0, "s.yaml");
    sql = open_db(path);
    exec_sql(sql, "PRAGMA ignore_check_constraints = 1;"
                  " INSERT INTO run (id, mode, seed, status) VALUES (2, 'sim', '1', 'ok')");
    sqlite3_close(sql);
    assert_int_equal(res_check(path, err, sizeof err), P4P_EMALFORMED);
    assert_non_null(strstr(err, "has 2 rows"));

    /* Truncated in the middle of its pages. */
    path_in(state, "truncated.sqlite", path);
    write_sample(path, 0, 0, "t", "g", 1.0, "s.yaml");
    assert_int_equal(truncate(path, 4096 + 100), 0);
    assert_true(res_check(path, err, sizeof err) < 0);
    assert_true(res_hash(path, hex) < 0);
    assert_true(res_plot(path, "/dev/null", "txt", err, sizeof err) < 0);

    /* err may be NULL or tiny. */
    path_in(state, "missing.sqlite", path);
    assert_int_equal(res_check(path, NULL, 0), P4P_ENOTFOUND);
    err[0] = 'x';
    assert_int_equal(res_check(path, err, 1), P4P_ENOTFOUND);
    assert_int_equal(err[0], '\0');
    assert_int_equal(res_check(NULL, err, sizeof err), P4P_EINVAL);
    assert_int_equal(res_hash(path, NULL), P4P_EINVAL);
}

/* A name that looks like an SQLite URI is still just a file name. */
static void test_uri_like_name(void **state)
{
    const struct ctx *c = *state;
    char cwd[4096];
    char hex[65];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(c->dir), 0);
    write_sample("file:uri.sqlite?mode=memory", 0, 0, "t", "g", 1.0, "s.yaml");
    int exists = file_exists("file:uri.sqlite?mode=memory");
    int check = res_check("file:uri.sqlite?mode=memory", NULL, 0);
    int hash = res_hash("file:uri.sqlite?mode=memory", hex);
    assert_int_equal(chdir(cwd), 0);
    assert_true(exists);
    assert_int_equal(check, 0);
    assert_int_equal(hash, 0);
}

/* Damaged files (bytes flipped by a fixed-seed generator) give errors, never crashes. */
static void test_corrupt_files(void **state)
{
    char good[256];
    char bad[256];
    char err[256];
    char hex[65];
    size_t n;
    uint64_t x = 0x9e3779b97f4a7c15u;
    path_in(state, "fuzz_good.sqlite", good);
    path_in(state, "fuzz_bad.sqlite", bad);
    write_small_run(good);
    char *orig = read_all(good, &n);
    char *copy = malloc(n);
    assert_non_null(copy);
    int accepted = 0;
    for (int iter = 0; iter < 200; iter++) {
        memcpy(copy, orig, n);
        for (int k = 0; k < 1 + iter % 8; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t at = iter % 2 == 0 ? (size_t)(x % 200) : (size_t)(x % n); /* header or any */
            copy[at] = (char)(copy[at] ^ (char)(1u << (x >> 61)));
        }
        write_file(bad, copy, n);
        int rc = res_check(bad, err, sizeof err);
        assert_true(rc <= 0);
        if (rc < 0) {
            assert_true(err[0] != '\0');
        } else {
            accepted++;
        }
        rc = res_hash(bad, hex);
        assert_true(rc <= 0);
        if (iter % 25 == 0) {
            assert_true(res_plot(bad, "/dev/null", "txt", err, sizeof err) <= 0);
        }
    }
    free(copy);
    free(orig);
    assert_true(accepted < 200); /* some damage must be noticed */
}

/* ---- Plot ---------------------------------------------------------------------------------- */

static void write_small_run(const char *path)
{
    res_db *db = NULL;
    assert_int_equal(res_create(path, &base_run, &db), 0);
    for (uint32_t n = 0; n < 20; n++) {
        assert_int_equal(res_scalar(db, n, "bytes_out", 1000.0 * (n * n % 7 + 1)), 0);
    }
    for (uint32_t u = 0; u < 5; u++) {
        char id[5];
        snprintf(id, sizeof id, "%04x", u);
        assert_int_equal(res_update(db, u, id, u, 1000000000ull * u, 64), 0);
        for (uint32_t n = 0; n < 20; n++) {
            uint64_t t = 1000000000ull * u + 50000000ull * (n + 1) + 1000ull * u;
            assert_int_equal(res_delivery(db, u, n, t, n % 4 + 1), 0);
        }
    }
    for (uint32_t s = 0; s <= 10; s++) {
        assert_int_equal(res_series(db, "coverage", 500000000ull * s, s / 10.0), 0);
    }
    assert_int_equal(res_finish(db, "ok", NULL, 6000000000ull), 0);
}

static void test_plot_formats(void **state)
{
    char db[256];
    char out[256];
    char err[512];
    size_t n;
    path_in(state, "plot.sqlite", db);
    write_small_run(db);

    path_in(state, "plot.png", out);
    assert_int_equal(res_plot(db, out, "png", err, sizeof err), 0);
    char *buf = read_all(out, &n);
    assert_true(n > 1000);
    assert_memory_equal(buf, "\x89PNG\r\n\x1a\n", 8);
    free(buf);

    path_in(state, "plot.txt", out);
    assert_int_equal(res_plot(db, out, "txt", err, sizeof err), 0);
    buf = read_all(out, &n);
    assert_non_null(strstr(buf, "flood_small, seed 42, sim"));
    assert_non_null(strstr(buf, "Delivery latency CDF: 100 deliveries"));
    assert_non_null(strstr(buf, "Coverage over time"));
    assert_non_null(strstr(buf, "Bytes sent per node: 20 nodes"));
    assert_null(strstr(buf, "no data"));
    free(buf);

    path_in(state, "plot.svg", out);
    assert_int_equal(res_plot(db, out, "svg", err, sizeof err), 0);
    buf = read_all(out, &n);
    assert_non_null(strstr(buf, "<svg"));
    free(buf);

    path_in(state, "plot.pdf", out);
    assert_int_equal(res_plot(db, out, "pdf", err, sizeof err), 0);
    buf = read_all(out, &n);
    assert_memory_equal(buf, "%PDF", 4);
    free(buf);

    /* txt to standard output: catch it in a file. */
    path_in(state, "stdout.txt", out);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_int_equal(dup2(fd, 1), 1);
    close(fd);
    int rc = res_plot(db, "-", "txt", err, sizeof err);
    fflush(stdout);
    assert_int_equal(dup2(saved, 1), 1);
    close(saved);
    assert_int_equal(rc, 0);
    buf = read_all(out, &n);
    assert_non_null(strstr(buf, "Coverage over time"));
    free(buf);
}

static void test_plot_empty_run(void **state)
{
    char db[256];
    char out[256];
    char err[512];
    size_t n;
    path_in(state, "empty_run.sqlite", db);
    res_db *w = NULL;
    struct res_run_info run = base_run;
    run.scenario_path = NULL;
    assert_int_equal(res_create(db, &run, &w), 0);
    assert_int_equal(res_update(w, 1, "aa", 0, 0, 10), 0); /* published, never delivered */
    assert_int_equal(res_finish(w, "failed", "no links", 0), 0);

    path_in(state, "empty.png", out);
    assert_int_equal(res_plot(db, out, "png", err, sizeof err), 0);
    char *buf = read_all(out, &n);
    assert_memory_equal(buf, "\x89PNG\r\n\x1a\n", 8);
    free(buf);

    path_in(state, "empty.txt", out);
    assert_int_equal(res_plot(db, out, "txt", err, sizeof err), 0);
    buf = read_all(out, &n);
    int count = 0;
    for (const char *p = buf; (p = strstr(p, "no data")) != NULL; p++) {
        count++;
    }
    assert_int_equal(count, 3);
    assert_non_null(strstr(buf, "(no scenario), seed 42, sim, status failed"));
    free(buf);
}

static void test_plot_odd_data(void **state)
{
    char db[256];
    char out[256];
    char err[512];
    path_in(state, "odd.sqlite", db);
    /* One delivery with latency 0, one coverage sample, one node sending nothing, and a
     * scenario name that would be gnuplot syntax if it were not quoted. */
    res_db *w = NULL;
    struct res_run_info run = base_run;
    run.scenario_path = "/x/it's `touch pwned` @x\n{}.yaml";
    assert_int_equal(res_create(db, &run, &w), 0);
    assert_int_equal(res_update(w, 1, "aa", 0, 5, 10), 0);
    assert_int_equal(res_delivery(w, 1, 1, 5, 1), 0);
    assert_int_equal(res_series(w, "coverage", 0, 1.0), 0);
    assert_int_equal(res_scalar(w, 0, "bytes_out", 0.0), 0);
    assert_int_equal(res_finish(w, "ok", NULL, 5), 0);
    path_in(state, "odd.txt", out);
    assert_int_equal(res_plot(db, out, "txt", err, sizeof err), 0);
    size_t n;
    char *buf = read_all(out, &n);
    assert_non_null(strstr(buf, "it's `touch pwned` @x?{}, seed 42"));
    free(buf);
    assert_false(file_exists("pwned"));
}

static void test_plot_errors(void **state)
{
    char db[256];
    char out[256];
    char err[512];
    path_in(state, "plot_err.sqlite", db);
    write_small_run(db);
    path_in(state, "x.out", out);
    assert_int_equal(res_plot(db, out, "jpeg", err, sizeof err), P4P_EINVAL);
    assert_non_null(strstr(err, "unknown plot format 'jpeg'"));
    assert_int_equal(res_plot(db, "-", "png", err, sizeof err), P4P_EINVAL);
    assert_int_equal(res_plot(db, "", "png", err, sizeof err), P4P_EINVAL);
    assert_int_equal(res_plot(db, "a\nb.png", "png", err, sizeof err), P4P_EINVAL);
    assert_int_equal(res_plot(NULL, out, "png", NULL, 0), P4P_EINVAL);
    path_in(state, "missing.sqlite", db);
    assert_int_equal(res_plot(db, out, "png", err, sizeof err), P4P_ENOTFOUND);
    path_in(state, "plot_err.sqlite", db);
    path_in(state, "no/such/dir/x.png", out);
    assert_int_equal(res_plot(db, out, "png", err, sizeof err), P4P_EIO);
    assert_non_null(strstr(err, "gnuplot failed: cannot write "));
    assert_non_null(strstr(err, "no/such/dir/x.png"));
    assert_false(file_exists(out));
}

/* ---- Main ---------------------------------------------------------------------------------- */

/* Removes the test directory; every test writes plain files directly in it. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(dir);
}

int main(void)
{
    struct ctx c;
    snprintf(c.dir, sizeof c.dir, "/tmp/p4p-test-res-XXXXXX");
    if (mkdtemp(c.dir) == NULL || sodium_init() < 0) {
        perror("test_res setup");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_write_all_kinds, &c),
        cmocka_unit_test_prestate(test_write_rejects_bad_rows, &c),
        cmocka_unit_test_prestate(test_create_bad_arguments, &c),
        cmocka_unit_test_prestate(test_create_unwritable, &c),
        cmocka_unit_test_prestate(test_create_replaces_and_abort, &c),
        cmocka_unit_test_prestate(test_disk_full, &c),
        cmocka_unit_test_prestate(test_thousand_rows, &c),
        cmocka_unit_test_prestate(test_hash_matches_spec, &c),
        cmocka_unit_test_prestate(test_hash_ignores_wall_and_tooling, &c),
        cmocka_unit_test_prestate(test_hash_sees_every_simulated_value, &c),
        cmocka_unit_test_prestate(test_summarize, &c),
        cmocka_unit_test_prestate(test_check_rejects, &c),
        cmocka_unit_test_prestate(test_uri_like_name, &c),
        cmocka_unit_test_prestate(test_corrupt_files, &c),
        cmocka_unit_test_prestate(test_plot_formats, &c),
        cmocka_unit_test_prestate(test_plot_empty_run, &c),
        cmocka_unit_test_prestate(test_plot_odd_data, &c),
        cmocka_unit_test_prestate(test_plot_errors, &c),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    remove_dir(c.dir);
    return failed;
}
