/*
 * storage_bench.c — the storage backends (p4p/storage.h) under an append-only workload of
 * 200-byte log records: appends per second and bytes written per append, with a commit per
 * append (each one durable) and with 1000 appends per commit; recovery time (open, then a full
 * log_scan that verifies every record's checksum) of a 1,000,000-record log; and the memory a
 * store of the memory backend takes for 10,000 records.
 *
 * Backends: storage_mem (in memory), storage_sqlite on a file (synchronous=FULL, the default:
 * an fsync per commit, so that case runs 2,000 appends, not more) and storage_sqlite in memory
 * (":memory:"). Files go to a mkdtemp directory under /tmp, removed at the end. Prints one line
 * per figure, "name value unit"; fails only when a backend returns an error or a scan does not
 * give back what was written. About 20-40 s on two cores, most of it writing and reading the
 * million-record file.
 */
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "p4p/p4p.h"
#include "storage_mem.h"
#include "storage_sqlite.h"

enum { REC_LEN = 200, BATCH = 1000, RECOVERY_OPS = 1000000, MEMORY_OPS = 10000 };

static char dir[64];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "storage_bench: %s: %s (%d)\n", what, p4p_strerror(rc), rc);
    exit(1);
}

/* One backend instance behind the same three calls. */
struct backend {
    const char *name;
    int kind; /* 0 mem, 1 sqlite file, 2 sqlite memory */
    struct storage_mem *disk;
    struct storage_sqlite *db;
    struct p4p_storage st;
    char path[128];
};

static void be_open(struct backend *b, int fresh, int check)
{
    int rc;
    if (b->kind == 0) {
        if (fresh && (rc = storage_mem_create(&b->disk)) != 0) {
            die("storage_mem_create", rc);
        }
        if ((rc = storage_mem_open(b->disk, &b->st)) != 0) {
            die("storage_mem_open", rc);
        }
        return;
    }
    struct storage_sqlite_opts o = {.check_on_open = check ? STORAGE_SQLITE_CHECK_QUICK
                                                           : STORAGE_SQLITE_CHECK_NONE};
    char err[256];
    const char *path = b->kind == 1 ? b->path : ":memory:";
    if (b->kind == 1 && fresh) {
        char q[160];
        unlink(b->path);
        snprintf(q, sizeof q, "%s-wal", b->path);
        unlink(q);
        snprintf(q, sizeof q, "%s-shm", b->path);
        unlink(q);
    }
    if ((rc = storage_sqlite_open(path, &o, &b->db, err, sizeof err)) != 0) {
        fprintf(stderr, "%s\n", err);
        die("storage_sqlite_open", rc);
    }
    b->st = storage_sqlite_storage(b->db);
}

static void be_close(struct backend *b, int destroy)
{
    if (b->kind == 0) {
        storage_mem_close(&b->st);
        if (destroy) {
            storage_mem_destroy(b->disk);
            b->disk = NULL;
        }
    } else {
        storage_sqlite_close(b->db);
        b->db = NULL;
    }
}

/* `ops` appends of REC_LEN bytes, `per_commit` to a transaction. Returns the elapsed time. */
static double append_run(struct p4p_storage st, uint64_t ops, uint64_t per_commit)
{
    static uint8_t rec[REC_LEN];
    const struct p4p_storage_ops *o = st.ops;
    double t0 = now_s();
    for (uint64_t i = 0; i < ops; i += per_commit) {
        int rc = o->begin(st.ctx);
        for (uint64_t k = i; rc == 0 && k < i + per_commit && k < ops; k++) {
            memcpy(rec, &k, sizeof k); /* every record distinct */
            rc = o->log_append(st.ctx, rec, sizeof rec, NULL);
        }
        if (rc != 0 || (rc = o->commit(st.ctx)) != 0) {
            die("append", rc);
        }
    }
    return now_s() - t0;
}

static void figure_appends(struct backend *b, uint64_t ops, uint64_t per_commit, const char *note)
{
    be_open(b, 1, 1);
    struct p4p_storage_stats s0, s1;
    b->st.ops->stats(b->st.ctx, &s0);
    double dt = append_run(b->st, ops, per_commit);
    b->st.ops->stats(b->st.ctx, &s1);
    const char *mode = per_commit == 1 ? "commit_each" : "batch1000";
    printf("%s_append_%s %.0f appends/s%s\n", b->name, mode, (double)ops / dt, note);
    printf("%s_append_%s_written %.1f bytes/append\n", b->name, mode,
           (double)(s1.written_bytes - s0.written_bytes) / (double)ops);
    be_close(b, 1);
}

struct scan_check {
    uint64_t n;
    int bad;
};

static int scan_fn(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    struct scan_check *c = arg;
    uint64_t k;
    memcpy(&k, rec, sizeof k);
    if (len != REC_LEN || k != index - 1) {
        c->bad = 1;
        return 1;
    }
    c->n++;
    return 0;
}

static void timed_scan(struct backend *b, const char *what, double t0, uint64_t stored)
{
    double t1 = now_s();
    struct scan_check c = {0};
    int rc = b->st.ops->log_scan(b->st.ctx, 1, scan_fn, &c, NULL);
    if (rc != 0 || c.bad || c.n != RECOVERY_OPS) {
        die("recovery scan", rc != 0 ? rc : P4P_ECORRUPT);
    }
    double t2 = now_s();
    printf("%s_recovery_1M%s %.3f s (%s %.3f s + scan %.3f s; %.1f MB stored)\n", b->name, what,
           t2 - t0, b->kind == 2 ? "restart" : "open", t1 - t0, t2 - t1, (double)stored / 1e6);
}

/* Writes RECOVERY_OPS records (1000 a commit); then a restart (close and open, or the crash
 * hook for ":memory:") and a full scan, timed. A file is reopened twice: with quick_check (the
 * default) and without. */
static void figure_recovery(struct backend *b)
{
    be_open(b, 1, 1);
    append_run(b->st, RECOVERY_OPS, BATCH);
    struct p4p_storage_stats s;
    b->st.ops->stats(b->st.ctx, &s);
    if (b->kind == 2) {
        double t0 = now_s();
        int rc = storage_sqlite_crash(b->db);
        if (rc != 0) {
            die("storage_sqlite_crash", rc);
        }
        timed_scan(b, "", t0, s.stored_bytes);
        be_close(b, 1);
        return;
    }
    for (int check = 1; check >= (b->kind == 1 ? 0 : 1); check--) {
        be_close(b, 0);
        double t0 = now_s();
        be_open(b, 0, check);
        timed_scan(b, b->kind == 0 ? "" : check ? "_quick_check" : "_no_check", t0, s.stored_bytes);
    }
    be_close(b, 1);
}

static void figure_memory(void)
{
    struct backend b = {.name = "storage_mem", .kind = 0};
    be_open(&b, 1, 1);
    append_run(b.st, MEMORY_OPS, 1);
    size_t bytes = storage_mem_memory(b.disk);
    printf("storage_mem_memory_10k %zu bytes (%.1f bytes/record of %d)\n", bytes,
           (double)bytes / MEMORY_OPS, REC_LEN);
    be_close(&b, 1);

    /* The same for SQLite in memory: heap SQLite holds (page cache, memdb image, schema). */
    sqlite3_int64 m0 = sqlite3_memory_used();
    struct backend q = {.name = "storage_sqlite_memory", .kind = 2};
    be_open(&q, 1, 1);
    append_run(q.st, MEMORY_OPS, 1);
    sqlite3_int64 m1 = sqlite3_memory_used();
    printf("storage_sqlite_memory_memory_10k %lld bytes (%.1f bytes/record of %d)\n",
           (long long)(m1 - m0), (double)(m1 - m0) / MEMORY_OPS, REC_LEN);
    be_close(&q, 1);
}

static void cleanup(void)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.') {
                snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/p4p-storage-bench-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    atexit(cleanup);
    struct backend mem = {.name = "storage_mem", .kind = 0};
    struct backend file = {.name = "storage_sqlite_file", .kind = 1};
    struct backend smem = {.name = "storage_sqlite_memory", .kind = 2};
    snprintf(file.path, sizeof file.path, "%s/bench.db", dir);

    figure_appends(&mem, 200000, 1, "");
    figure_appends(&mem, 1000000, BATCH, "");
    figure_appends(&file, 2000, 1, " (2,000 appends only: an fsync per commit)");
    figure_appends(&file, 200000, BATCH, "");
    figure_appends(&smem, 50000, 1, "");
    figure_appends(&smem, 500000, BATCH, "");

    figure_recovery(&mem);
    figure_recovery(&file);
    figure_recovery(&smem);

    figure_memory();
    return 0;
}
