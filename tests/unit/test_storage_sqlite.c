/*
 * test_storage_sqlite.c — the SQLite storage backend: what only it has (WAL and synchronous
 * modes read back from SQLite, the counting VFS, schema migration from a hand-built version 1
 * file, refusal of newer, foreign and damaged files, the write fence between two connections,
 * the crash hooks), the damaged-file sweep (bit flips and truncations of a checkpointed file:
 * refused, or reported corrupt, or read back exactly, never different), and the shared
 * conformance suite (tests/unit/storage_suite.h) with files and with ":memory:".
 *
 * Files go to a mkdtemp directory under /tmp that the group teardown removes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "p4p/p4p.h"
#include "storage_sqlite.h"

#if __has_include("storage_suite.h")
#include "storage_suite.h"
#define HAVE_SUITE 1
#else
#define HAVE_SUITE 0
#endif

static char tmpdir[64];

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/p4p-sqlite-test-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d != NULL) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    return rmdir(tmpdir);
}

/* A fresh path in the temporary directory, with no leftovers of an earlier use. */
static const char *path_for(const char *name)
{
    static char p[256];
    char q[300];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    unlink(p);
    snprintf(q, sizeof q, "%s-wal", p);
    unlink(q);
    snprintf(q, sizeof q, "%s-shm", p);
    unlink(q);
    return p;
}

static struct storage_sqlite *open_ok(const char *path, const struct storage_sqlite_opts *o)
{
    struct storage_sqlite *s = NULL;
    char err[256];
    int rc = storage_sqlite_open(path, o, &s, err, sizeof err);
    if (rc != 0) {
        fail_msg("open %s: %d %s", path, rc, err);
    }
    return s;
}

/* ---- Small store helpers -------------------------------------------------------------------- */

struct collect {
    uint64_t n, first;
    uint8_t data[16][64];
    size_t len[16];
};

static int collect_fn(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    struct collect *c = arg;
    if (c->n == 0) {
        c->first = index;
    }
    if (c->n < 16 && len <= 64) {
        memcpy(c->data[c->n], rec, len);
        c->len[c->n] = len;
    }
    c->n++;
    return 0;
}

static const uint8_t id_a[P4P_CHUNK_ID_LEN] = {1, 2, 3};
static const uint8_t id_b[P4P_CHUNK_ID_LEN] = {9, 9, 9};

static void write_sample(struct p4p_storage st)
{
    const struct p4p_storage_ops *o = st.ops;
    uint64_t idx = 0;
    assert_int_equal(o->begin(st.ctx), 0);
    assert_int_equal(o->log_append(st.ctx, (const uint8_t *)"one", 3, &idx), 0);
    assert_int_equal(idx, 1);
    assert_int_equal(o->log_append(st.ctx, (const uint8_t *)"two", 3, &idx), 0);
    assert_int_equal(idx, 2);
    assert_int_equal(o->log_append(st.ctx, NULL, 0, &idx), 0); /* empty record */
    assert_int_equal(idx, 3);
    assert_int_equal(o->kv_put(st.ctx, (const uint8_t *)"k", 1, (const uint8_t *)"v1", 2), 0);
    assert_int_equal(o->kv_put(st.ctx, (const uint8_t *)"k", 1, (const uint8_t *)"val", 3), 0);
    assert_int_equal(o->kv_put(st.ctx, NULL, 0, NULL, 0), 0); /* empty key, empty value */
    assert_int_equal(o->chunk_put(st.ctx, id_a, (const uint8_t *)"chunk-a", 7), 0);
    assert_int_equal(o->chunk_put(st.ctx, id_a, (const uint8_t *)"other", 5), 0); /* dedup */
    assert_int_equal(o->commit(st.ctx), 0);
}

static void check_sample(struct p4p_storage st)
{
    const struct p4p_storage_ops *o = st.ops;
    struct collect c = {0};
    uint8_t buf[16];
    size_t n = 0;
    assert_int_equal(o->log_count(st.ctx), 3);
    assert_int_equal(o->log_scan(st.ctx, 1, collect_fn, &c, NULL), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.len[0], 3);
    assert_memory_equal(c.data[0], "one", 3);
    assert_memory_equal(c.data[1], "two", 3);
    assert_int_equal(c.len[2], 0);
    assert_int_equal(o->kv_get(st.ctx, (const uint8_t *)"k", 1, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "val", 3);
    assert_int_equal(o->kv_get(st.ctx, (const uint8_t *)"k", 1, buf, 2, &n), P4P_ETOOBIG);
    assert_int_equal(n, 3);
    assert_int_equal(o->kv_get(st.ctx, NULL, 0, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(o->kv_get(st.ctx, (const uint8_t *)"x", 1, buf, sizeof buf, &n),
                     P4P_ENOTFOUND);
    assert_int_equal(o->chunk_get(st.ctx, id_a, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "chunk-a", 7);
    assert_int_equal(o->chunk_has(st.ctx, id_a), 1);
    assert_int_equal(o->chunk_has(st.ctx, id_b), 0);
}

/* ---- Basics, modes, counters ---------------------------------------------------------------- */

struct nested {
    struct p4p_storage st;
    uint64_t inner;
};

static int nested_fn(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    (void)index;
    (void)rec;
    (void)len;
    struct nested *n = arg;
    struct collect c = {0};
    if (n->st.ops->log_scan(n->st.ctx, 1, collect_fn, &c, NULL) != 0) {
        return -1;
    }
    n->inner += c.n;
    return 0;
}

static void test_roundtrip_and_reopen(void **state)
{
    (void)state;
    const char *p = path_for("basic.db");
    char path[256];
    snprintf(path, sizeof path, "%s", p);
    struct storage_sqlite *s = open_ok(path, NULL);
    struct p4p_storage st = storage_sqlite_storage(s);
    write_sample(st);
    check_sample(st);
    struct p4p_storage_stats stats;
    st.ops->stats(st.ctx, &stats);
    assert_int_equal(stats.commits, 1);
    assert_int_equal(stats.records, 3);
    /* 6 log bytes, (1 + 2) + (1 + 3) + 0 kv bytes, 7 chunk bytes (the duplicate stores 0). */
    assert_int_equal(stats.logical_bytes, 6 + 3 + 4 + 7);
    assert_true(stats.stored_bytes >= 4096);
    storage_sqlite_close(s);

    s = open_ok(path, NULL);
    st = storage_sqlite_storage(s);
    check_sample(st);
    /* An aborted batch leaves nothing, and reads saw its writes while it was open. */
    const struct p4p_storage_ops *o = st.ops;
    assert_int_equal(o->begin(st.ctx), 0);
    assert_int_equal(o->log_append(st.ctx, (const uint8_t *)"four", 4, NULL), 0);
    assert_int_equal(o->kv_del(st.ctx, (const uint8_t *)"k", 1), 0);
    assert_int_equal(o->chunk_del(st.ctx, id_a), 0);
    assert_int_equal(o->log_truncate(st.ctx, 1), 0);
    assert_int_equal(o->log_count(st.ctx), 1);
    assert_int_equal(o->chunk_has(st.ctx, id_a), 0);
    o->abort(st.ctx);
    check_sample(st);
    /* A scan from inside a scan's callback. */
    struct nested nest = {st, 0};
    assert_int_equal(o->log_scan(st.ctx, 2, nested_fn, &nest, NULL), 0);
    assert_int_equal(nest.inner, 2 * 3);
    /* Writes outside a transaction are refused. */
    assert_int_equal(o->log_append(st.ctx, (const uint8_t *)"x", 1, NULL), P4P_EINVAL);
    assert_int_equal(o->commit(st.ctx), P4P_EINVAL);
    assert_int_equal(o->log_scan(st.ctx, 0, collect_fn, NULL, NULL), P4P_EINVAL);
    storage_sqlite_close(s);
}

static void test_modes_read_back(void **state)
{
    (void)state;
    const char *p = path_for("modes.db");
    char path[256], text[32];
    snprintf(path, sizeof path, "%s", p);
    struct storage_sqlite_opts normal = {.synchronous_normal = 1};
    for (int mode = 0; mode < 3; mode++) {
        struct storage_sqlite *s =
            open_ok(mode == 2 ? ":memory:" : path, mode == 1 ? &normal : NULL);
        sqlite3 *db = storage_sqlite_db(s);
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        snprintf(text, sizeof text, "%s", (const char *)sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
        assert_string_equal(text, mode == 2 ? "memory" : "wal");
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), mode == 1 ? 1 : 2); /* NORMAL 1, FULL 2 */
        sqlite3_finalize(q);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), STORAGE_SQLITE_SCHEMA_VERSION);
        sqlite3_finalize(q);
        storage_sqlite_close(s);
    }
}

/* The VFS shim sees what SQLite writes: a commit in WAL mode appends whole frames (a 24-byte
 * header and a page each), plus the 32-byte WAL header when the WAL starts over. */
static void test_written_bytes_counted(void **state)
{
    (void)state;
    const char *p = path_for("count.db");
    char path[256];
    snprintf(path, sizeof path, "%s", p);
    struct storage_sqlite *s = open_ok(path, NULL);
    struct p4p_storage st = storage_sqlite_storage(s);
    struct storage_sqlite_size z;
    assert_int_equal(storage_sqlite_size(s, &z), 0);
    uint64_t frame = z.page_size + 24, before = z.written_bytes;
    assert_true(before > 0); /* the schema and the first epoch */
    uint8_t rec[200] = {0};
    assert_int_equal(st.ops->begin(st.ctx), 0);
    assert_int_equal(st.ops->log_append(st.ctx, rec, sizeof rec, NULL), 0);
    assert_int_equal(st.ops->commit(st.ctx), 0);
    assert_int_equal(storage_sqlite_size(s, &z), 0);
    uint64_t delta = z.written_bytes - before;
    assert_true(delta >= frame);
    assert_true(delta % frame == 0 || (delta - 32) % frame == 0);
    assert_true(z.wal_bytes > 0);
    struct p4p_storage_stats stats;
    st.ops->stats(st.ctx, &stats);
    assert_int_equal(stats.written_bytes, z.written_bytes);
    assert_int_equal(stats.stored_bytes, z.page_size * z.page_count + z.wal_bytes);
    /* A checkpoint copies pages into the database file: counted too, and the WAL empties. */
    assert_int_equal(storage_sqlite_checkpoint(s), 0);
    struct storage_sqlite_size after;
    assert_int_equal(storage_sqlite_size(s, &after), 0);
    assert_true(after.written_bytes > z.written_bytes);
    assert_int_equal(after.wal_bytes, 0);
    storage_sqlite_close(s);

    /* In memory, pages written into the memdb image are counted the same way. */
    s = open_ok(":memory:", NULL);
    st = storage_sqlite_storage(s);
    assert_int_equal(storage_sqlite_size(s, &z), 0);
    before = z.written_bytes;
    assert_int_equal(st.ops->begin(st.ctx), 0);
    assert_int_equal(st.ops->log_append(st.ctx, rec, sizeof rec, NULL), 0);
    assert_int_equal(st.ops->commit(st.ctx), 0);
    assert_int_equal(storage_sqlite_size(s, &z), 0);
    assert_true(z.written_bytes - before >= z.page_size);
    assert_int_equal(z.wal_bytes, 0);
    storage_sqlite_close(s);
}

/* ---- Schema: migration, newer, foreign ----------------------------------------------------- */

static void le64(uint8_t b[8], uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail_msg("%s: %s", sql, msg);
    }
}

/* Version 1 as it shipped, written here independently of the backend's migration text. */
static void build_v1(const char *path)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    raw_exec(db, "BEGIN;"
                 "CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK (id = 1), created_by TEXT "
                 "NOT NULL);"
                 "INSERT INTO meta(id, created_by) VALUES (1, 'p4p');"
                 "CREATE TABLE log(idx INTEGER PRIMARY KEY, data BLOB NOT NULL, crc INTEGER "
                 "NOT NULL);"
                 "CREATE TABLE kv(key BLOB PRIMARY KEY, val BLOB NOT NULL, crc INTEGER NOT "
                 "NULL) WITHOUT ROWID;"
                 "CREATE TABLE chunk(id BLOB PRIMARY KEY, data BLOB NOT NULL, crc INTEGER NOT "
                 "NULL) WITHOUT ROWID;"
                 "PRAGMA application_id = 1345605715; PRAGMA user_version = 1; COMMIT;");
    sqlite3_stmt *ins;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO log VALUES (?, ?, ?)", -1, &ins, NULL),
                     SQLITE_OK);
    const char *recs[] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; i++) {
        uint8_t b[8];
        le64(b, (uint64_t)i + 1);
        uint32_t crc = crc32c(crc32c(0, b, 8), recs[i], strlen(recs[i]));
        sqlite3_bind_int64(ins, 1, i + 1);
        sqlite3_bind_blob(ins, 2, recs[i], (int)strlen(recs[i]), SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, crc);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO kv VALUES (?, ?, ?)", -1, &ins, NULL),
                     SQLITE_OK);
    uint8_t b[8];
    le64(b, 3);
    uint32_t crc = crc32c(crc32c(crc32c(0, b, 8), "key", 3), "value", 5);
    sqlite3_bind_blob(ins, 1, "key", 3, SQLITE_STATIC);
    sqlite3_bind_blob(ins, 2, "value", 5, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, crc);
    assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
    sqlite3_finalize(ins);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO chunk VALUES (?, ?, ?)", -1, &ins, NULL),
                     SQLITE_OK);
    crc = crc32c(crc32c(0, id_b, P4P_CHUNK_ID_LEN), "bytes", 5);
    sqlite3_bind_blob(ins, 1, id_b, P4P_CHUNK_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(ins, 2, "bytes", 5, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, crc);
    assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
    sqlite3_finalize(ins);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    int64_t v = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    if (sqlite3_step(q) == SQLITE_ROW) {
        v = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void test_migrates_v1(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", path_for("v1.db"));
    build_v1(path);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 1);

    struct storage_sqlite *s = open_ok(path, NULL);
    struct p4p_storage st = storage_sqlite_storage(s);
    struct collect c = {0};
    assert_int_equal(st.ops->log_count(st.ctx), 3);
    assert_int_equal(st.ops->log_scan(st.ctx, 2, collect_fn, &c, NULL), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.first, 2);
    assert_memory_equal(c.data[0], "beta", 4);
    assert_memory_equal(c.data[1], "gamma", 5);
    uint8_t buf[16];
    size_t n;
    assert_int_equal(st.ops->kv_get(st.ctx, (const uint8_t *)"key", 3, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "value", 5);
    assert_int_equal(st.ops->chunk_get(st.ctx, id_b, buf, sizeof buf, &n), 0);
    assert_memory_equal(buf, "bytes", 5);
    /* The migrated store takes new writes after the old ones. */
    uint64_t idx = 0;
    assert_int_equal(st.ops->begin(st.ctx), 0);
    assert_int_equal(st.ops->log_append(st.ctx, (const uint8_t *)"delta", 5, &idx), 0);
    assert_int_equal(st.ops->commit(st.ctx), 0);
    assert_int_equal(idx, 4);
    storage_sqlite_close(s);

    assert_int_equal(raw_int(path, "PRAGMA user_version"), STORAGE_SQLITE_SCHEMA_VERSION);
    assert_int_equal(raw_int(path, "SELECT epoch FROM meta"), 1); /* v2's column, one open */
    assert_int_equal(raw_int(path, "SELECT count(*) FROM log"), 4);
    /* v3: every page reserves 4 bytes for its checksum (header byte 20). */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 20, SEEK_SET), 0);
    assert_int_equal(fgetc(f), 4);
    fclose(f);
    s = open_ok(path, NULL);
    st = storage_sqlite_storage(s);
    assert_int_equal(st.ops->log_count(st.ctx), 4);
    storage_sqlite_close(s);
}

static void expect_refused(const char *path, const struct storage_sqlite_opts *o, int code,
                           const char *words)
{
    struct storage_sqlite *s = NULL;
    char err[256] = "";
    assert_int_equal(storage_sqlite_open(path, o, &s, err, sizeof err), code);
    assert_null(s);
    if (strstr(err, words) == NULL || strstr(err, path) == NULL) {
        fail_msg("message \"%s\" lacks \"%s\" or the path", err, words);
    }
}

/* Another program writing the file (here SQLite without our VFS) leaves pages without their
 * checksum: the store is refused until resealed, and then reads back whole. */
static void test_foreign_writer_and_reseal(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", path_for("reseal.db"));
    struct storage_sqlite *s = open_ok(path, NULL);
    write_sample(storage_sqlite_storage(s));
    storage_sqlite_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    raw_exec(db, "UPDATE meta SET created_by = 'tool'");
    assert_int_equal(sqlite3_close(db), SQLITE_OK); /* checkpoints the WAL, unsealed */
    expect_refused(path, NULL, P4P_ECORRUPT, "checksum");
    struct storage_sqlite_opts reseal = {.reseal_pages = 1};
    s = open_ok(path, &reseal);
    check_sample(storage_sqlite_storage(s));
    storage_sqlite_close(s);
    s = open_ok(path, NULL);
    check_sample(storage_sqlite_storage(s));
    storage_sqlite_close(s);
}

static void test_newer_version_refused(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", path_for("newer.db"));
    storage_sqlite_close(open_ok(path, NULL));
    /* Written through the shim, which keeps the page checksums right. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, "p4p-count"), SQLITE_OK);
    raw_exec(db, "PRAGMA user_version = 99");
    sqlite3_close(db);
    expect_refused(path, NULL, P4P_EVERSION, "newer than this program");
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 99); /* untouched */
}

static void test_foreign_files_refused(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", path_for("other.db"));
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    raw_exec(db, "CREATE TABLE t(x)");
    sqlite3_close(db);
    expect_refused(path, NULL, P4P_ECORRUPT, "not a p4p store");

    snprintf(path, sizeof path, "%s", path_for("text.db"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++) {
        fputs("this is not a database at all\n", f);
    }
    fclose(f);
    expect_refused(path, NULL, P4P_ECORRUPT, "not an SQLite database");

    struct storage_sqlite_opts must = {.must_exist = 1};
    snprintf(path, sizeof path, "%s", path_for("missing.db"));
    expect_refused(path, &must, P4P_EIO, "cannot open");
    f = fopen(path, "w");
    fclose(f);
    expect_refused(path, &must, P4P_ECORRUPT, "empty");
}

/* ---- Fence, crash injection, corruption ---------------------------------------------------- */

static void test_fence_two_connections(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", path_for("fence.db"));
    struct storage_sqlite *a = open_ok(path, NULL);
    struct p4p_storage sa = storage_sqlite_storage(a);
    assert_int_equal(sa.ops->begin(sa.ctx), 0);
    assert_int_equal(sa.ops->log_append(sa.ctx, (const uint8_t *)"a1", 2, NULL), 0);
    assert_int_equal(sa.ops->commit(sa.ctx), 0);

    struct storage_sqlite *b = open_ok(path, NULL); /* a restart: the new epoch */
    struct p4p_storage sb = storage_sqlite_storage(b);
    struct storage_sqlite_size za, zb;
    assert_int_equal(storage_sqlite_size(a, &za), 0);
    assert_int_equal(storage_sqlite_size(b, &zb), 0);
    assert_int_equal(zb.epoch, za.epoch + 1);

    /* The old writer: its batch is refused and writes nothing, every time. */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(sa.ops->begin(sa.ctx), 0);
        int rc = sa.ops->log_append(sa.ctx, (const uint8_t *)"stale", 5, NULL);
        assert_true(rc == 0 || rc == P4P_EFENCED);
        assert_int_equal(sa.ops->commit(sa.ctx), P4P_EFENCED);
    }
    assert_int_equal(sb.ops->log_count(sb.ctx), 1);
    assert_int_equal(sb.ops->begin(sb.ctx), 0);
    assert_int_equal(sb.ops->log_append(sb.ctx, (const uint8_t *)"b2", 2, NULL), 0);
    assert_int_equal(sb.ops->commit(sb.ctx), 0);
    struct collect c = {0};
    assert_int_equal(sb.ops->log_scan(sb.ctx, 1, collect_fn, &c, NULL), 0);
    assert_int_equal(c.n, 2);
    assert_memory_equal(c.data[0], "a1", 2);
    assert_memory_equal(c.data[1], "b2", 2);
    /* The old handle still reads, and sees the new writer's committed data. */
    memset(&c, 0, sizeof c);
    assert_int_equal(sa.ops->begin(sa.ctx), 0);
    assert_int_equal(sa.ops->log_count(sa.ctx), 2);
    sa.ops->abort(sa.ctx);
    storage_sqlite_close(a);
    storage_sqlite_close(b);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM log WHERE data = x'7374616c65'"), 0);
}

static void test_fail_after_is_a_power_cut(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", path_for("cut.db"));
    struct storage_sqlite *s = open_ok(path, NULL);
    struct p4p_storage st = storage_sqlite_storage(s);
    write_sample(st);
    storage_sqlite_fail_after(s, 3);
    const struct p4p_storage_ops *o = st.ops;
    assert_int_equal(o->begin(st.ctx), 0);
    assert_int_equal(o->log_append(st.ctx, (const uint8_t *)"x", 1, NULL), 0);
    assert_int_equal(o->kv_put(st.ctx, (const uint8_t *)"k", 1, (const uint8_t *)"new", 3), 0);
    assert_int_equal(o->chunk_put(st.ctx, id_b, (const uint8_t *)"b", 1), P4P_EIO);
    /* The batch is gone at once: reads see the committed state. */
    assert_int_equal(o->log_count(st.ctx), 3);
    assert_int_equal(o->log_append(st.ctx, (const uint8_t *)"y", 1, NULL), P4P_EIO);
    assert_int_equal(o->commit(st.ctx), P4P_EIO);
    o->abort(st.ctx);
    assert_int_equal(o->begin(st.ctx), P4P_EIO);
    check_sample(st);
    storage_sqlite_close(s);
    s = open_ok(path, NULL);
    check_sample(storage_sqlite_storage(s));
    /* A cut at the commit itself: nothing of the batch survives. */
    st = storage_sqlite_storage(s);
    storage_sqlite_fail_after(s, 2);
    assert_int_equal(o->begin(st.ctx), 0);
    assert_int_equal(o->log_append(st.ctx, (const uint8_t *)"x", 1, NULL), 0);
    assert_int_equal(o->commit(st.ctx), P4P_EIO);
    storage_sqlite_close(s);
    s = open_ok(path, NULL);
    check_sample(storage_sqlite_storage(s));
    storage_sqlite_close(s);
}

static void test_memory_crash_keeps_committed(void **state)
{
    (void)state;
    struct storage_sqlite *s = open_ok(":memory:", NULL);
    struct p4p_storage st = storage_sqlite_storage(s);
    write_sample(st);
    struct storage_sqlite_size z0, z1;
    assert_int_equal(storage_sqlite_size(s, &z0), 0);
    assert_int_equal(st.ops->begin(st.ctx), 0);
    assert_int_equal(st.ops->log_append(st.ctx, (const uint8_t *)"lost", 4, NULL), 0);
    assert_int_equal(st.ops->kv_del(st.ctx, (const uint8_t *)"k", 1), 0);
    assert_int_equal(storage_sqlite_crash(s), 0);
    assert_int_equal(storage_sqlite_size(s, &z1), 0);
    assert_int_equal(z1.epoch, z0.epoch + 1);
    check_sample(st);
    struct p4p_storage_stats stats;
    st.ops->stats(st.ctx, &stats);
    assert_int_equal(stats.commits, 0); /* a new process counts from zero */
    /* An injected cut is cleared by the restart too. */
    storage_sqlite_fail_after(s, 1);
    assert_int_equal(st.ops->begin(st.ctx), 0);
    assert_int_equal(st.ops->log_append(st.ctx, (const uint8_t *)"x", 1, NULL), P4P_EIO);
    assert_int_equal(storage_sqlite_crash(s), 0);
    assert_int_equal(st.ops->begin(st.ctx), 0);
    assert_int_equal(st.ops->log_append(st.ctx, (const uint8_t *)"four", 4, NULL), 0);
    assert_int_equal(st.ops->commit(st.ctx), 0);
    assert_int_equal(st.ops->log_count(st.ctx), 4);
    storage_sqlite_close(s);
}

static void test_checksums_catch_damage(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "%s", path_for("crc.db"));
    struct storage_sqlite *s = open_ok(path, NULL);
    struct p4p_storage st = storage_sqlite_storage(s);
    const struct p4p_storage_ops *o = st.ops;
    write_sample(st);
    assert_int_equal(o->begin(st.ctx), 0);
    assert_int_equal(o->kv_put(st.ctx, (const uint8_t *)"k2", 2, (const uint8_t *)"val", 3), 0);
    assert_int_equal(o->chunk_put(st.ctx, id_b, (const uint8_t *)"chunk-a", 7), 0);
    assert_int_equal(o->commit(st.ctx), 0);

    assert_int_equal(storage_sqlite_corrupt_record(s, 2, 1), 0);
    assert_int_equal(storage_sqlite_corrupt_record(s, 9, 0), P4P_ENOTFOUND);
    assert_int_equal(storage_sqlite_corrupt_record(s, 1, 3), P4P_EINVAL);
    struct collect c = {0};
    uint64_t bad = 0;
    assert_int_equal(o->log_scan(st.ctx, 1, collect_fn, &c, &bad), P4P_ECORRUPT);
    assert_int_equal(bad, 2);
    assert_int_equal(c.n, 1); /* record 1 came out, record 2 did not */
    /* Rows that moved: same bytes under another address fail their checksum. */
    sqlite3 *db = storage_sqlite_db(s);
    raw_exec(db, "UPDATE kv SET crc = (SELECT crc FROM kv WHERE key = x'6b') WHERE key = x'6b32'");
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "UPDATE chunk SET crc = (SELECT crc FROM chunk WHERE id = "
                                        "?1) WHERE id = ?2",
                                        -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(q, 1, id_a, P4P_CHUNK_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, id_b, P4P_CHUNK_ID_LEN, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    raw_exec(db, "UPDATE log SET crc = (SELECT crc FROM log WHERE idx = 1), data = x'6f6e65' "
                 "WHERE idx = 3");
    uint8_t buf[16];
    size_t n;
    assert_int_equal(o->kv_get(st.ctx, (const uint8_t *)"k2", 2, buf, sizeof buf, &n),
                     P4P_ECORRUPT);
    assert_int_equal(o->kv_get(st.ctx, (const uint8_t *)"k", 1, buf, sizeof buf, &n), 0);
    assert_int_equal(o->chunk_get(st.ctx, id_b, buf, sizeof buf, &n), P4P_ECORRUPT);
    assert_int_equal(o->log_scan(st.ctx, 3, collect_fn, &c, &bad), P4P_ECORRUPT);
    assert_int_equal(bad, 3);
    /* A gap in the log is corruption too. */
    raw_exec(db, "DELETE FROM log WHERE idx = 2");
    assert_int_equal(o->log_scan(st.ctx, 1, collect_fn, &c, &bad), P4P_ECORRUPT);
    assert_int_equal(bad, 2);
    struct p4p_storage_stats stats;
    o->stats(st.ctx, &stats);
    assert_int_equal(stats.corrupt, 5);
    /* Repair: keep the good prefix. */
    assert_int_equal(o->begin(st.ctx), 0);
    assert_int_equal(o->log_truncate(st.ctx, 1), 0);
    assert_int_equal(o->commit(st.ctx), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(o->log_scan(st.ctx, 1, collect_fn, &c, &bad), 0);
    assert_int_equal(c.n, 1);
    storage_sqlite_close(s);
}

/* ---- Damaged files: flip a bit or truncate, anywhere --------------------------------------- */

#define DMG_LOG    240
#define DMG_KV     120
#define DMG_CHUNKS 10

static uint64_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* The sample's content is a function of (kind, number), so a reader can check any item. */
static size_t item(int kind, uint32_t i, uint8_t *out)
{
    uint64_t save = rng_state;
    rng_state = 0x9e3779b97f4a7c15ull ^ ((uint64_t)kind << 32) ^ i;
    rnd();
    uint32_t r = rnd();
    size_t n;
    if (kind == 2) {
        n = i % 5 == 0 ? 5000 + r % 3000 : r % 500; /* chunks: some overflow pages */
    } else if (kind == 1) {
        n = r % 300;
    } else {
        n = i % 37 == 0 ? 4500 + r % 100 : r % 300;
    }
    for (size_t k = 0; k < n; k++) {
        out[k] = (uint8_t)rnd();
    }
    rng_state = save;
    return n;
}

static void key_of(uint32_t i, uint8_t key[P4P_CHUNK_ID_LEN], size_t *klen)
{
    memset(key, 0, P4P_CHUNK_ID_LEN);
    snprintf((char *)key, P4P_CHUNK_ID_LEN, "key-%u-%0*u", i, (int)(i % 20), i);
    *klen = strlen((char *)key);
}

static void build_damage_sample(const char *path)
{
    static uint8_t buf[16384];
    struct storage_sqlite *s = open_ok(path, NULL);
    struct p4p_storage st = storage_sqlite_storage(s);
    const struct p4p_storage_ops *o = st.ops;
    assert_int_equal(o->begin(st.ctx), 0);
    for (uint32_t i = 0; i < DMG_LOG; i++) {
        assert_int_equal(o->log_append(st.ctx, buf, item(0, i, buf), NULL), 0);
    }
    for (uint32_t i = 0; i < DMG_KV; i++) {
        uint8_t key[P4P_CHUNK_ID_LEN];
        size_t klen;
        key_of(i, key, &klen);
        assert_int_equal(o->kv_put(st.ctx, key, klen, buf, item(1, i, buf)), 0);
    }
    for (uint32_t i = 0; i < DMG_CHUNKS; i++) {
        uint8_t id[P4P_CHUNK_ID_LEN] = {0};
        id[0] = (uint8_t)i;
        id[31] = 0xc5;
        assert_int_equal(o->chunk_put(st.ctx, id, buf, item(2, i, buf)), 0);
    }
    assert_int_equal(o->commit(st.ctx), 0);
    assert_int_equal(storage_sqlite_checkpoint(s), 0);
    storage_sqlite_close(s);
}

struct verify {
    uint32_t next;
    int wrong;
};

static int verify_fn(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    static uint8_t want[16384];
    struct verify *v = arg;
    size_t n = item(0, (uint32_t)(index - 1), want);
    if (index != (uint64_t)v->next + 1 || n != len || memcmp(want, rec, n) != 0) {
        v->wrong = 1;
        return 1;
    }
    v->next++;
    return 0;
}

enum outcome { REFUSED, REPORTED, IDENTICAL, WRONG };

/* Opens a damaged copy and reads everything: refused at open, or an error on some read
 * (P4P_ECORRUPT or P4P_EIO), or every item exactly as written. A missing item is wrong. */
static enum outcome read_damaged(const char *path, int check, char *why, size_t cap)
{
    static uint8_t buf[16384], want[16384];
    /* NORMAL: the sweep's thousands of opens need not wait for the disk. */
    struct storage_sqlite_opts o = {
        .must_exist = 1, .synchronous_normal = 1, .check_on_open = check};
    struct storage_sqlite *s = NULL;
    char err[256];
    int rc = storage_sqlite_open(path, &o, &s, err, sizeof err);
    if (rc != 0) {
        if (rc != P4P_ECORRUPT && rc != P4P_EIO && rc != P4P_EVERSION) {
            snprintf(why, cap, "open: unexpected %d (%s)", rc, err);
            return WRONG;
        }
        if (getenv("P4P_TEST_VERBOSE") != NULL) {
            fprintf(stderr, "%s\n", err);
        }
        if (strstr(err, path) == NULL) {
            snprintf(why, cap, "open message without the path: %s", err);
            return WRONG;
        }
        return REFUSED;
    }
    struct p4p_storage st = storage_sqlite_storage(s);
    const struct p4p_storage_ops *op = st.ops;
    enum outcome out = IDENTICAL;
    struct verify v = {0};
    uint64_t count = op->log_count(st.ctx);
    rc = op->log_scan(st.ctx, 1, verify_fn, &v, NULL);
    if (v.wrong) {
        snprintf(why, cap, "log record %u differs", v.next + 1);
        out = WRONG;
    } else if (rc == P4P_ECORRUPT || rc == P4P_EIO) {
        out = REPORTED;
    } else if (rc != 0 || count != DMG_LOG || v.next != DMG_LOG) {
        snprintf(why, cap, "log: rc %d, count %" PRIu64 ", read %u", rc, count, v.next);
        out = WRONG;
    }
    for (uint32_t i = 0; i < DMG_KV + DMG_CHUNKS && out != WRONG; i++) {
        uint8_t key[P4P_CHUNK_ID_LEN] = {0};
        size_t klen, n = 0, wn;
        if (i < DMG_KV) {
            key_of(i, key, &klen);
            rc = op->kv_get(st.ctx, key, klen, buf, sizeof buf, &n);
            wn = item(1, i, want);
        } else {
            key[0] = (uint8_t)(i - DMG_KV);
            key[31] = 0xc5;
            rc = op->chunk_get(st.ctx, key, buf, sizeof buf, &n);
            wn = item(2, i - DMG_KV, want);
        }
        if (rc == P4P_ECORRUPT || rc == P4P_EIO) {
            out = REPORTED;
        } else if (rc != 0 || n != wn || memcmp(buf, want, n) != 0) {
            snprintf(why, cap, "%s %u: rc %d, %zu bytes", i < DMG_KV ? "kv" : "chunk", i, rc, n);
            out = WRONG;
        }
    }
    storage_sqlite_close(s);
    return out;
}

static void write_file(const char *path, const uint8_t *data, size_t n)
{
    char q[300];
    snprintf(q, sizeof q, "%s-wal", path);
    unlink(q);
    snprintf(q, sizeof q, "%s-shm", path);
    unlink(q);
    /* A new file, not a truncated one: ext4 flushes a file rewritten in place at close. */
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

static void test_damaged_files(void **state)
{
    (void)state;
    char orig_path[256], path[256], why[512];
    snprintf(orig_path, sizeof orig_path, "%s", path_for("good.db"));
    build_damage_sample(orig_path);
    snprintf(path, sizeof path, "%s", path_for("damaged.db"));
    struct stat sb;
    assert_int_equal(stat(orig_path, &sb), 0);
    size_t size = (size_t)sb.st_size;
    uint8_t *orig = malloc(size), *copy = malloc(size);
    assert_non_null(orig);
    assert_non_null(copy);
    FILE *f = fopen(orig_path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(orig, 1, size, f), size);
    fclose(f);
    /* The original reads back whole. */
    write_file(path, orig, size);
    assert_int_equal(read_damaged(path, STORAGE_SQLITE_CHECK_QUICK, why, sizeof why), IDENTICAL);

    /* With the check at open, and without it (damage then shows on the first read). */
    static const int checks[2] = {STORAGE_SQLITE_CHECK_QUICK, STORAGE_SQLITE_CHECK_NONE};
    int counts[2][2][4] = {{{0}}};
    size_t last_page = size - 4096;
    for (int c = 0; c < 2; c++) {
        for (size_t pos = 0; pos < size; pos++) {
            /* Without the check most opens succeed, write an epoch and sync at close: a
             * sparser sweep keeps the test quick. */
            size_t step = c == 0 ? 97 : 5 * 97;
            int flip =
                pos < 100 || pos % step == 0 || (pos >= last_page && pos % (step / 97 * 7) == 0);
            int cut = pos % step == 0 || pos % 4096 == 0 || pos < 100;
            for (int kind = 0; kind < 2; kind++) {
                if (kind == 0 ? !flip : !cut) {
                    continue;
                }
                memcpy(copy, orig, size);
                if (kind == 0) {
                    copy[pos] ^= (uint8_t)(1u << (pos % 8));
                }
                write_file(path, copy, kind == 0 ? size : pos);
                why[0] = '\0';
                enum outcome out = read_damaged(path, checks[c], why, sizeof why);
                counts[c][kind][out]++;
                if (out == WRONG) {
                    fail_msg("%s at byte %zu of %zu, check %d: %s",
                             kind == 0 ? "bit flip" : "truncation", pos, size, checks[c], why);
                }
            }
        }
        print_message("damage sweep on %zu bytes, %s: flips refused %d, reported %d, identical "
                      "%d; truncations refused %d, reported %d, identical %d\n",
                      size, c == 0 ? "quick_check" : "no check", counts[c][0][REFUSED],
                      counts[c][0][REPORTED], counts[c][0][IDENTICAL], counts[c][1][REFUSED],
                      counts[c][1][REPORTED], counts[c][1][IDENTICAL]);
        /* Damage was seen (a cut inside the last page's unused tail could read back whole). */
        assert_true(counts[c][1][REFUSED] + counts[c][1][REPORTED] > 0);
    }
    /* Every page of the sample is in use and sealed: with quick_check reading them all, no
     * flip goes unnoticed, and the open refuses it before any read. */
    assert_int_equal(counts[0][0][IDENTICAL], 0);
    assert_int_equal(counts[0][0][REPORTED], 0);
    assert_true(counts[1][0][REPORTED] > 0); /* found by reads, checksums, not at open */
    free(orig);
    free(copy);
}

/* ---- The shared conformance suite ---------------------------------------------------------- */

#if HAVE_SUITE
/* A suite "disk" is a path: a file in the temporary directory, or ":memory:NAME", whose
 * database a keeper handle holds while the suite opens and closes handles on it. open()
 * first preempts the disk's live handles, as the death of their process would (see
 * storage_sqlite_preempt): SQLite cannot open a newer writer beside a live open batch. */
struct suite_disk {
    char path[256];
    struct storage_sqlite *keeper;
    struct storage_sqlite *live[16];
    int live_n;
};

#define SUITE_DISKS_MAX 8
static struct suite_disk *suite_disks[SUITE_DISKS_MAX];
static int suite_disk_seq;

static void *suite_create(int memory)
{
    struct suite_disk *d = calloc(1, sizeof *d);
    assert_non_null(d);
    if (memory) {
        snprintf(d->path, sizeof d->path, ":memory:suite-%d", suite_disk_seq++);
        d->keeper = open_ok(d->path, NULL);
    } else {
        char name[64];
        snprintf(name, sizeof name, "suite-%d.db", suite_disk_seq++);
        snprintf(d->path, sizeof d->path, "%s", path_for(name));
    }
    for (int i = 0; i < SUITE_DISKS_MAX; i++) {
        if (suite_disks[i] == NULL) {
            suite_disks[i] = d;
            return d;
        }
    }
    fail_msg("too many suite disks at once");
    return NULL;
}

static void *suite_create_file(void)
{
    return suite_create(0);
}

static void *suite_create_memory(void)
{
    return suite_create(1);
}

static int suite_open(void *disk, struct p4p_storage *out)
{
    struct suite_disk *d = disk;
    /* NORMAL: a unit test cannot tell a synced commit from an unsynced one (no power is
     * cut), and thousands of fsyncs would only make it slow; the rest is the real thing. */
    struct storage_sqlite_opts o = {.busy_timeout_ms = 200, .synchronous_normal = 1};
    struct storage_sqlite *s = NULL;
    char err[256];
    for (int i = 0; i < d->live_n; i++) {
        storage_sqlite_preempt(d->live[i]);
    }
    assert_true(d->live_n < 16);
    int rc = storage_sqlite_open(d->path, &o, &s, err, sizeof err);
    if (rc != 0) {
        print_error("open %s: %s\n", d->path, err);
        return rc;
    }
    d->live[d->live_n++] = s;
    *out = storage_sqlite_storage(s);
    return 0;
}

static void suite_close(struct p4p_storage *st)
{
    struct storage_sqlite *s = st->ctx;
    for (int i = 0; i < SUITE_DISKS_MAX; i++) {
        struct suite_disk *d = suite_disks[i];
        for (int k = 0; d != NULL && k < d->live_n; k++) {
            if (d->live[k] == s) {
                d->live[k] = d->live[--d->live_n];
            }
        }
    }
    storage_sqlite_close(s);
    memset(st, 0, sizeof *st);
}

static void suite_destroy(void *disk)
{
    struct suite_disk *d = disk;
    for (int i = 0; i < d->live_n; i++) {
        storage_sqlite_close(d->live[i]);
    }
    storage_sqlite_close(d->keeper);
    if (d->keeper == NULL) {
        path_for(d->path + strlen(tmpdir) + 1); /* removes the file, -wal and -shm */
    }
    for (int i = 0; i < SUITE_DISKS_MAX; i++) {
        if (suite_disks[i] == d) {
            suite_disks[i] = NULL;
        }
    }
    free(d);
}

static void suite_fail_after(struct p4p_storage *st, uint64_t writes)
{
    storage_sqlite_fail_after(st->ctx, writes);
}

/* Through the newest live handle: the UPDATE commits at once and its next read sees it. */
static int suite_corrupt(void *disk, uint64_t nth_byte, uint64_t record)
{
    struct suite_disk *d = disk;
    struct storage_sqlite *s = d->live_n > 0 ? d->live[d->live_n - 1] : d->keeper;
    assert_non_null(s);
    assert_int_equal(storage_sqlite_corrupt_record(s, record, nth_byte), 0);
    return 0;
}

static const struct suite_backend suite_sqlite_file = {
    .name = "storage_suite sqlite file",
    .create = suite_create_file,
    .open = suite_open,
    .close = suite_close,
    .destroy = suite_destroy,
    .fail_after = suite_fail_after,
    .corrupt = suite_corrupt,
};

static const struct suite_backend suite_sqlite_memory = {
    .name = "storage_suite sqlite :memory:",
    .create = suite_create_memory,
    .open = suite_open,
    .close = suite_close,
    .destroy = suite_destroy,
    .fail_after = suite_fail_after,
    .corrupt = suite_corrupt,
};
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_reopen),
        cmocka_unit_test(test_modes_read_back),
        cmocka_unit_test(test_written_bytes_counted),
        cmocka_unit_test(test_migrates_v1),
        cmocka_unit_test(test_foreign_writer_and_reseal),
        cmocka_unit_test(test_newer_version_refused),
        cmocka_unit_test(test_foreign_files_refused),
        cmocka_unit_test(test_fence_two_connections),
        cmocka_unit_test(test_fail_after_is_a_power_cut),
        cmocka_unit_test(test_memory_crash_keeps_committed),
        cmocka_unit_test(test_checksums_catch_damage),
        cmocka_unit_test(test_damaged_files),
    };
    /* The suite's groups run inside our temporary directory's lifetime. */
    if (group_setup(NULL) != 0) {
        return 1;
    }
    int failed = cmocka_run_group_tests_name("storage_sqlite", tests, NULL, NULL);
#if HAVE_SUITE
    failed += storage_suite_run(&suite_sqlite_file);
    failed += storage_suite_run(&suite_sqlite_memory);
#else
    print_message("tests/unit/storage_suite.h not found: the conformance suite did not run\n");
#endif
    if (group_teardown(NULL) != 0) {
        failed++;
    }
    return failed != 0;
}
