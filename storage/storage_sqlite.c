/*
 * storage_sqlite.c — the SQLite storage backend (see storage_sqlite.h).
 *
 * Three parts. A VFS shim between SQLite and the real VFS: it seals and verifies the pages of
 * the database file (a CRC-32C in each page's reserved bytes) and counts the bytes written to
 * the database, WAL and journal files for the handle that opened them (found through a URI
 * parameter). Open: identify the file, check it, migrate the schema, prepare every statement,
 * start an epoch. And the operations of struct p4p_storage_ops, each one or two prepared
 * statements, with a CRC-32C on every row written and verified on every row read.
 */
#include "storage_sqlite.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crc32c.h"
#include "p4p/p4p.h"

#define APP_ID                  0x50345053        /* "P4PS" in PRAGMA application_id */
#define COUNTER_MAGIC           0x70347063746eull /* marks a live struct write_counter */
#define BUSY_TIMEOUT_DEFAULT_MS 5000

/* ---- The VFS shim: page checksums, written bytes ------------------------------------------- */

struct write_counter {
    uint64_t magic;
    uint64_t bytes;
};

/* Our file object; the real VFS's file object follows it in the same allocation. */
struct count_file {
    sqlite3_file base;
    sqlite3_file *real;
    struct write_counter *counter; /* NULL: not counted */
    uint8_t *scratch;              /* a page being sealed (main database only) */
    uint32_t page_size;            /* from the header of page 1, 0 until seen */
    int is_main;                   /* the main database file: pages carry checksums */
    int sealed;                    /* the header says PAGE_RESERVE: seal and verify pages */
    int no_verify;                 /* resealing: pages are sealed but not verified */
};

/* The real file object starts here, aligned for anything. */
#define CF_SIZE ((sizeof(struct count_file) + 15) & ~(size_t)15)
#define REAL(f) (((struct count_file *)(f))->real)

/*
 * Page checksums. A store's file reserves PAGE_RESERVE bytes at the end of every page (byte
 * 20 of the header); there the shim keeps a CRC-32C over the page number and the rest of the
 * page, written whenever a page goes to the database file and verified whenever a whole page
 * is read from it. A bit flipped anywhere in a used page — b-tree structure, keys, overflow
 * pages, the header — is SQLITE_IOERR_DATA on the first read of that page, and quick_check at
 * open reads them all. Pages in the WAL are not sealed (SQLite's frame checksums cover them
 * when the WAL is recovered); a checkpoint seals them on their way into the database file.
 */
#define PAGE_RESERVE 4

static void put_le32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t page_crc(const uint8_t *page, uint32_t size, uint64_t pgno)
{
    uint8_t b[4];
    put_le32(b, (uint32_t)pgno);
    return crc32c(crc32c(0, b, 4), page, size - PAGE_RESERVE);
}

static int page_ok(const uint8_t *page, uint32_t size, uint64_t pgno)
{
    uint8_t b[4];
    put_le32(b, page_crc(page, size, pgno));
    return memcmp(b, page + size - PAGE_RESERVE, 4) == 0;
}

/* Learns page size and reserve from page 1 as it passes (read or written). */
static void note_header(struct count_file *cf, const void *buf, int amt, sqlite3_int64 off)
{
    const uint8_t *d = buf;
    if (off != 0 || amt < 100 || memcmp(d, "SQLite format 3", 16) != 0) {
        return;
    }
    uint32_t size = (uint32_t)d[16] << 8 | d[17];
    size = size == 1 ? 65536 : size;
    int valid = size >= 512 && size <= 65536 && (size & (size - 1)) == 0;
    cf->page_size = valid ? size : 0;
    cf->sealed = valid && d[20] == PAGE_RESERVE;
}

static int is_page(const struct count_file *cf, int amt, sqlite3_int64 off)
{
    return cf->sealed && (uint32_t)amt == cf->page_size && off % amt == 0;
}

static int cf_close(sqlite3_file *f)
{
    struct count_file *cf = (struct count_file *)f;
    sqlite3_free(cf->scratch);
    cf->scratch = NULL;
    return cf->real->pMethods->xClose(cf->real);
}

static int cf_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off)
{
    struct count_file *cf = (struct count_file *)f;
    int rc = cf->real->pMethods->xRead(cf->real, buf, amt, off);
    if (!cf->is_main || (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)) {
        return rc;
    }
    note_header(cf, buf, amt, off);
    if (!is_page(cf, amt, off) || cf->no_verify) {
        return rc;
    }
    if (rc == SQLITE_OK) {
        return page_ok(buf, (uint32_t)amt, (uint64_t)(off / amt) + 1) ? SQLITE_OK
                                                                      : SQLITE_IOERR_DATA;
    }
    /* A page cut short (the file ends inside it) is damage; one wholly past the end is
     * SQLite's to judge. */
    sqlite3_int64 size = 0;
    if (cf->real->pMethods->xFileSize(cf->real, &size) == SQLITE_OK && size > off) {
        return SQLITE_IOERR_DATA;
    }
    return rc;
}

static int cf_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off)
{
    struct count_file *cf = (struct count_file *)f;
    if (cf->is_main) {
        note_header(cf, buf, amt, off);
        if (is_page(cf, amt, off)) {
            /* Sealed in a copy: SQLite's buffer stays as SQLite made it. */
            if (cf->scratch == NULL || sqlite3_msize(cf->scratch) < (sqlite3_uint64)amt) {
                sqlite3_free(cf->scratch);
                cf->scratch = sqlite3_malloc(amt);
                if (cf->scratch == NULL) {
                    return SQLITE_IOERR_NOMEM;
                }
            }
            memcpy(cf->scratch, buf, (size_t)amt);
            put_le32(cf->scratch + amt - PAGE_RESERVE,
                     page_crc(cf->scratch, (uint32_t)amt, (uint64_t)(off / amt) + 1));
            buf = cf->scratch;
        }
    }
    int rc = cf->real->pMethods->xWrite(cf->real, buf, amt, off);
    if (rc == SQLITE_OK && cf->counter != NULL && amt > 0) {
        cf->counter->bytes += (uint64_t)amt;
    }
    return rc;
}

static int cf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int cf_sync(sqlite3_file *f, int flags)
{
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int cf_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int cf_lock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xLock(REAL(f), level);
}

static int cf_unlock(sqlite3_file *f, int level)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int cf_check_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int cf_file_control(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int cf_sector_size(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int cf_device_characteristics(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int cf_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int cf_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void cf_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int cf_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), delete_flag);
}

/* Memory mapping is off (mmap_size 0), but forward it for a real VFS that offers it, unless
 * pages are sealed (a mapped page would skip verification); NULL makes the pager read. */
static int cf_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **pp)
{
    const sqlite3_io_methods *m = REAL(f)->pMethods;
    if (m->iVersion < 3 || m->xFetch == NULL || ((struct count_file *)f)->sealed) {
        *pp = NULL;
        return SQLITE_OK;
    }
    return m->xFetch(REAL(f), off, amt, pp);
}

static int cf_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    const sqlite3_io_methods *m = REAL(f)->pMethods;
    if (m->iVersion < 3 || m->xUnfetch == NULL) {
        return SQLITE_OK;
    }
    return m->xUnfetch(REAL(f), off, p);
}

/* With shared memory (WAL possible) and without (memdb: the pager must not try WAL). */
#define COUNT_IO_COMMON                                                                            \
    .xClose = cf_close, .xRead = cf_read, .xWrite = cf_write, .xTruncate = cf_truncate,            \
    .xSync = cf_sync, .xFileSize = cf_file_size, .xLock = cf_lock, .xUnlock = cf_unlock,           \
    .xCheckReservedLock = cf_check_reserved, .xFileControl = cf_file_control,                      \
    .xSectorSize = cf_sector_size, .xDeviceCharacteristics = cf_device_characteristics
static const sqlite3_io_methods count_io_shm = {
    .iVersion = 3,
    COUNT_IO_COMMON,
    .xShmMap = cf_shm_map,
    .xShmLock = cf_shm_lock,
    .xShmBarrier = cf_shm_barrier,
    .xShmUnmap = cf_shm_unmap,
    .xFetch = cf_fetch,
    .xUnfetch = cf_unfetch,
};
static const sqlite3_io_methods count_io_plain = {.iVersion = 1, COUNT_IO_COMMON};

#define REAL_VFS(v) ((sqlite3_vfs *)(v)->pAppData)

/* The counter's address travels in the URI ("p4p_counter=<hex>"), which SQLite hands to
 * xOpen for the database and, since 3.31, lets us read from WAL and journal names too. */
static struct write_counter *counter_from_name(sqlite3_filename name, int flags)
{
    if (name == NULL ||
        (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL)) == 0) {
        return NULL;
    }
    const char *hex = sqlite3_uri_parameter(name, "p4p_counter");
    if (hex == NULL) {
        return NULL;
    }
    char *end;
    unsigned long long v = strtoull(hex, &end, 16);
    if (*end != '\0' || v == 0) {
        return NULL;
    }
    struct write_counter *c = (struct write_counter *)(uintptr_t)v;
    return c->magic == COUNTER_MAGIC ? c : NULL;
}

static int cv_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                   int *out_flags)
{
    struct count_file *cf = (struct count_file *)f;
    memset(cf, 0, sizeof *cf);
    cf->real = (sqlite3_file *)((char *)f + CF_SIZE);
    cf->is_main = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    int rc = REAL_VFS(vfs)->xOpen(REAL_VFS(vfs), name, cf->real, flags, out_flags);
    const sqlite3_io_methods *m = cf->real->pMethods;
    if (m != NULL) {
        /* Set even on failure: SQLite then calls xClose, which must reach the real file. */
        cf->base.pMethods =
            (m->iVersion >= 2 && m->xShmMap != NULL) ? &count_io_shm : &count_io_plain;
        cf->counter = counter_from_name(name, flags);
    }
    return rc;
}

static int cv_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    return REAL_VFS(vfs)->xDelete(REAL_VFS(vfs), name, sync_dir);
}

static int cv_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    return REAL_VFS(vfs)->xAccess(REAL_VFS(vfs), name, flags, out);
}

static int cv_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    return REAL_VFS(vfs)->xFullPathname(REAL_VFS(vfs), name, n, out);
}

static void *cv_dl_open(sqlite3_vfs *vfs, const char *name)
{
    return REAL_VFS(vfs)->xDlOpen(REAL_VFS(vfs), name);
}

static void cv_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
    REAL_VFS(vfs)->xDlError(REAL_VFS(vfs), n, msg);
}

static void (*cv_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    return REAL_VFS(vfs)->xDlSym(REAL_VFS(vfs), h, sym);
}

static void cv_dl_close(sqlite3_vfs *vfs, void *h)
{
    REAL_VFS(vfs)->xDlClose(REAL_VFS(vfs), h);
}

static int cv_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    return REAL_VFS(vfs)->xRandomness(REAL_VFS(vfs), n, out);
}

static int cv_sleep(sqlite3_vfs *vfs, int us)
{
    return REAL_VFS(vfs)->xSleep(REAL_VFS(vfs), us);
}

static int cv_current_time(sqlite3_vfs *vfs, double *out)
{
    return REAL_VFS(vfs)->xCurrentTime(REAL_VFS(vfs), out);
}

static int cv_get_last_error(sqlite3_vfs *vfs, int n, char *msg)
{
    sqlite3_vfs *real = REAL_VFS(vfs);
    return real->xGetLastError != NULL ? real->xGetLastError(real, n, msg) : 0;
}

static int cv_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    sqlite3_vfs *real = REAL_VFS(vfs);
    if (real->iVersion >= 2 && real->xCurrentTimeInt64 != NULL) {
        return real->xCurrentTimeInt64(real, out);
    }
    double d;
    int rc = real->xCurrentTime(real, &d);
    *out = (sqlite3_int64)(d * 86400000.0);
    return rc;
}

static sqlite3_vfs vfs_file, vfs_mem;
static int vfs_status = SQLITE_ERROR, vfs_have_mem;
static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;

static void vfs_wrap(sqlite3_vfs *v, sqlite3_vfs *real, const char *name)
{
    memset(v, 0, sizeof *v);
    v->iVersion = 2;
    v->szOsFile = (int)CF_SIZE + real->szOsFile;
    v->mxPathname = real->mxPathname;
    v->zName = name;
    v->pAppData = real;
    v->xOpen = cv_open;
    v->xDelete = cv_delete;
    v->xAccess = cv_access;
    v->xFullPathname = cv_full_pathname;
    v->xDlOpen = cv_dl_open;
    v->xDlError = cv_dl_error;
    v->xDlSym = cv_dl_sym;
    v->xDlClose = cv_dl_close;
    v->xRandomness = cv_randomness;
    v->xSleep = cv_sleep;
    v->xCurrentTime = cv_current_time;
    v->xGetLastError = cv_get_last_error;
    v->xCurrentTimeInt64 = cv_current_time_int64;
}

static void vfs_register(void)
{
    vfs_status = sqlite3_initialize();
    if (vfs_status != SQLITE_OK) {
        return;
    }
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (real == NULL) {
        vfs_status = SQLITE_ERROR;
        return;
    }
    vfs_wrap(&vfs_file, real, "p4p-count");
    vfs_status = sqlite3_vfs_register(&vfs_file, 0);
    sqlite3_vfs *mem = sqlite3_vfs_find("memdb");
    if (vfs_status == SQLITE_OK && mem != NULL) {
        vfs_wrap(&vfs_mem, mem, "p4p-count-mem");
        vfs_have_mem = sqlite3_vfs_register(&vfs_mem, 0) == SQLITE_OK;
    }
}

/* ---- Handle, errors, helpers --------------------------------------------------------------- */

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_EPOCH_GET,
    ST_EPOCH_BUMP,
    ST_LOG_MAX,
    ST_LOG_INSERT,
    ST_LOG_SCAN,
    ST_LOG_TRUNC,
    ST_KV_PUT,
    ST_KV_GET,
    ST_KV_DEL,
    ST_CHUNK_PUT,
    ST_CHUNK_GET,
    ST_CHUNK_HAS,
    ST_CHUNK_DEL,
    ST_PAGE_COUNT,
    ST_PAGE_SIZE,
    ST_FREELIST,
    ST_COUNT_
};

static const char *const stmt_sql[ST_COUNT_] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_EPOCH_GET] = "SELECT epoch FROM meta WHERE id = 1",
    [ST_EPOCH_BUMP] = "UPDATE meta SET epoch = epoch + 1 WHERE id = 1",
    [ST_LOG_MAX] = "SELECT max(idx) FROM log",
    [ST_LOG_INSERT] = "INSERT INTO log(idx, data, crc) VALUES (?1, ?2, ?3)",
    [ST_LOG_SCAN] = "SELECT idx, data, crc FROM log WHERE idx BETWEEN ?1 AND ?2 ORDER BY idx",
    [ST_LOG_TRUNC] = "DELETE FROM log WHERE idx > ?1",
    [ST_KV_PUT] = "INSERT INTO kv(key, val, crc) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT(key) DO UPDATE SET val = excluded.val, crc = excluded.crc",
    [ST_KV_GET] = "SELECT val, crc FROM kv WHERE key = ?1",
    [ST_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
    [ST_CHUNK_PUT] = "INSERT OR IGNORE INTO chunk(id, data, crc) VALUES (?1, ?2, ?3)",
    [ST_CHUNK_GET] = "SELECT data, crc FROM chunk WHERE id = ?1",
    [ST_CHUNK_HAS] = "SELECT 1 FROM chunk WHERE id = ?1",
    [ST_CHUNK_DEL] = "DELETE FROM chunk WHERE id = ?1",
    [ST_PAGE_COUNT] = "PRAGMA page_count",
    [ST_PAGE_SIZE] = "PRAGMA page_size",
    [ST_FREELIST] = "PRAGMA freelist_count",
};

struct storage_sqlite {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT_];
    int is_memory;
    char *wal_path; /* NULL in memory */
    int64_t epoch;
    uint64_t log_count;           /* records visible here, the open transaction's included */
    uint64_t log_count_committed; /* as of the last begin/commit/abort */
    int in_tx;
    int tx_err; /* first error of the open transaction: it can only be aborted now */
    int dead;   /* injected power cut: every write and commit fails with dead_err */
    int dead_err;
    int scanning; /* log_scan's prepared statement is in use */
    uint64_t fail_countdown;
    uint64_t pend_records, pend_logical;
    struct p4p_storage_stats stats;
    struct write_counter counter;
};

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* SQLite's primary result codes to ours. Damage of any kind is P4P_ECORRUPT. */
static int map_rc(int rc)
{
    if (rc == SQLITE_IOERR_DATA) {
        return P4P_ECORRUPT; /* a page failed its checksum */
    }
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return P4P_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
    case SQLITE_MISMATCH:
    case SQLITE_CONSTRAINT: /* only a damaged table can make our inserts collide */
        return P4P_ECORRUPT;
    case SQLITE_TOOBIG:
        return P4P_ETOOBIG;
    case SQLITE_RANGE:
    case SQLITE_MISUSE:
        return P4P_EINVAL;
    default: /* IOERR, FULL, BUSY, LOCKED, READONLY, CANTOPEN, PROTOCOL, PERM, ERROR... */
        return P4P_EIO;
    }
}

/* Steps a statement that returns no row (or whose rows we ignore) and resets it. */
static int run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : map_rc(rc);
}

/* A zero-length blob must be bound from a non-NULL pointer, or SQLite stores NULL. */
static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    return sqlite3_bind_blob64(st, i, n == 0 ? "" : p, (sqlite3_uint64)n, SQLITE_STATIC);
}

static void le64(uint8_t b[8], uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
}

/* The checksums cover the row's address, so data moved to another row fails too. */
static uint32_t crc_addr(uint64_t a, const void *d, size_t n)
{
    uint8_t b[8];
    le64(b, a);
    return crc32c(crc32c(0, b, 8), d, n);
}

static uint32_t crc_kv(const uint8_t *k, size_t kn, const uint8_t *v, size_t vn)
{
    uint8_t b[8];
    le64(b, kn);
    return crc32c(crc32c(crc32c(0, b, 8), k, kn), v, vn);
}

static uint32_t crc_chunk(const uint8_t id[P4P_CHUNK_ID_LEN], const uint8_t *d, size_t n)
{
    return crc32c(crc32c(0, id, P4P_CHUNK_ID_LEN), d, n);
}

/* Reads a blob column and its checksum column strictly: wrong types are damage too. */
static int read_blob_crc(sqlite3_stmt *st, int col, const uint8_t **p, size_t *n, uint32_t *crc)
{
    if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
        sqlite3_column_type(st, col + 1) != SQLITE_INTEGER) {
        return P4P_ECORRUPT;
    }
    sqlite3_int64 c = sqlite3_column_int64(st, col + 1);
    if (c < 0 || c > (sqlite3_int64)UINT32_MAX) {
        return P4P_ECORRUPT;
    }
    *p = sqlite3_column_blob(st, col);
    int len = sqlite3_column_bytes(st, col);
    if (*p == NULL && len == 0) {
        *p = (const uint8_t *)""; /* callers get a pointer even for no bytes */
    }
    if (len < 0 || *p == NULL) {
        return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? P4P_ENOMEM : P4P_ECORRUPT;
    }
    *n = (size_t)len;
    *crc = (uint32_t)c;
    return 0;
}

/* One integer from a one-row statement (NULL reads as 0); resets it. */
static int query_int(sqlite3_stmt *st, int64_t *out)
{
    int rc = sqlite3_step(st);
    int err = 0;
    if (rc == SQLITE_ROW) {
        int t = sqlite3_column_type(st, 0);
        if (t == SQLITE_INTEGER) {
            *out = sqlite3_column_int64(st, 0);
        } else if (t == SQLITE_NULL) {
            *out = 0;
        } else {
            err = P4P_ECORRUPT;
        }
    } else {
        err = rc == SQLITE_DONE ? P4P_ECORRUPT : map_rc(rc);
    }
    sqlite3_reset(st);
    return err;
}

static int refresh_log_count(struct storage_sqlite *s)
{
    int64_t max = 0;
    int rc = query_int(s->st[ST_LOG_MAX], &max);
    if (rc != 0) {
        return rc;
    }
    if (max < 0) {
        return P4P_ECORRUPT;
    }
    s->log_count = s->log_count_committed = (uint64_t)max;
    return 0;
}

/* Ends the open transaction without committing; counts it as an abort. */
static void rollback_tx(struct storage_sqlite *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        run(s->st[ST_ROLLBACK]);
    }
    if (s->in_tx) {
        s->stats.aborts++;
    }
    s->in_tx = 0;
    s->tx_err = 0;
    s->log_count = s->log_count_committed;
    s->pend_records = s->pend_logical = 0;
}

/* Crash injection: counts write calls; the armed one cuts the power. */
static int injected(struct storage_sqlite *s)
{
    if (s->fail_countdown == 0 || --s->fail_countdown > 0) {
        return 0;
    }
    rollback_tx(s);
    s->dead = 1;
    s->dead_err = P4P_EIO;
    return 1;
}

/* What every write call checks first. */
static int write_gate(struct storage_sqlite *s)
{
    if (s->dead) {
        return s->dead_err;
    }
    if (injected(s)) {
        return P4P_EIO;
    }
    if (!s->in_tx) {
        return P4P_EINVAL;
    }
    if (s->tx_err == 0 && sqlite3_get_autocommit(s->db)) {
        /* SQLite rolled the transaction back by itself (it may, after an I/O error or
         * running out of memory or disk): a write now would commit at once, unfenced. */
        s->tx_err = P4P_EIO;
    }
    return s->tx_err;
}

/* A failed write poisons the transaction: only abort() is left. */
static int tx_fail(struct storage_sqlite *s, int err)
{
    if (s->tx_err == 0) {
        s->tx_err = err;
    }
    return err;
}

/* ---- Operations ---------------------------------------------------------------------------- */

static int sq_begin(void *ctx)
{
    struct storage_sqlite *s = ctx;
    if (s->dead) {
        return s->dead_err;
    }
    if (s->in_tx) {
        return P4P_EINVAL;
    }
    int rc = run(s->st[ST_BEGIN]);
    if (rc != 0) {
        return rc;
    }
    /* Another connection (one that will fence us) may have appended since. */
    int64_t epoch = 0;
    rc = refresh_log_count(s);
    if (rc == 0) {
        rc = query_int(s->st[ST_EPOCH_GET], &epoch);
    }
    if (rc != 0) {
        run(s->st[ST_ROLLBACK]);
        return rc;
    }
    s->in_tx = 1;
    /* Fenced already: the writes and the commit will say so, and write nothing. */
    s->tx_err = epoch == s->epoch ? 0 : P4P_EFENCED;
    s->pend_records = s->pend_logical = 0;
    return 0;
}

static int sq_commit(void *ctx)
{
    struct storage_sqlite *s = ctx;
    if (s->dead) {
        return s->dead_err;
    }
    if (injected(s)) {
        return P4P_EIO;
    }
    if (!s->in_tx) {
        return P4P_EINVAL;
    }
    int err = s->tx_err;
    if (err == 0) {
        /* The fence: inside our IMMEDIATE transaction nobody can change the epoch. */
        int64_t epoch = 0;
        err = query_int(s->st[ST_EPOCH_GET], &epoch);
        if (err == 0 && epoch != s->epoch) {
            err = P4P_EFENCED;
        }
    }
    if (err == 0) {
        err = run(s->st[ST_COMMIT]);
    }
    if (err != 0) {
        rollback_tx(s);
        return err;
    }
    s->in_tx = 0;
    s->stats.commits++;
    s->stats.records += s->pend_records;
    s->stats.logical_bytes += s->pend_logical;
    s->log_count_committed = s->log_count;
    s->pend_records = s->pend_logical = 0;
    return 0;
}

static void sq_abort(void *ctx)
{
    struct storage_sqlite *s = ctx;
    if (s->in_tx) {
        rollback_tx(s);
    }
}

static int sq_log_append(void *ctx, const uint8_t *rec, size_t len, uint64_t *index_out)
{
    struct storage_sqlite *s = ctx;
    if (rec == NULL && len > 0) {
        return P4P_EINVAL;
    }
    int rc = write_gate(s);
    if (rc != 0) {
        return rc;
    }
    uint64_t idx = s->log_count + 1;
    if (idx > INT64_MAX) {
        return tx_fail(s, P4P_EFULL);
    }
    sqlite3_stmt *st = s->st[ST_LOG_INSERT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)idx);
    int b = bind_blob(st, 2, rec, len);
    if (b != SQLITE_OK) {
        sqlite3_reset(st);
        return tx_fail(s, map_rc(b));
    }
    sqlite3_bind_int64(st, 3, crc_addr(idx, rec, len));
    rc = run(st);
    if (rc != 0) {
        return tx_fail(s, rc);
    }
    s->log_count = idx;
    s->pend_records++;
    s->pend_logical += len;
    if (index_out != NULL) {
        *index_out = idx;
    }
    return 0;
}

/* Verifies one scanned row; 0 and the record, or P4P_ECORRUPT. */
static int scan_row(struct storage_sqlite *s, sqlite3_stmt *st, uint64_t expect, const uint8_t **p,
                    size_t *n)
{
    uint32_t crc;
    if (sqlite3_column_type(st, 0) != SQLITE_INTEGER ||
        sqlite3_column_int64(st, 0) != (sqlite3_int64)expect) {
        s->stats.corrupt++; /* a gap or a damaged index: a record is missing */
        return P4P_ECORRUPT;
    }
    int rc = read_blob_crc(st, 1, p, n, &crc);
    if (rc == 0 && crc != crc_addr(expect, *p, *n)) {
        rc = P4P_ECORRUPT;
    }
    if (rc == P4P_ECORRUPT) {
        s->stats.corrupt++;
    }
    return rc;
}

static int sq_log_scan(void *ctx, uint64_t from, p4p_log_fn fn, void *arg, uint64_t *bad_index)
{
    struct storage_sqlite *s = ctx;
    if (fn == NULL || from == 0) {
        return P4P_EINVAL;
    }
    uint64_t end = s->log_count; /* records the callback appends are not part of this scan */
    if (from > end) {
        return 0;
    }
    /* A scan from inside a scan's callback gets a statement of its own. */
    sqlite3_stmt *st = s->st[ST_LOG_SCAN];
    if (s->scanning) {
        int prc = sqlite3_prepare_v2(s->db, stmt_sql[ST_LOG_SCAN], -1, &st, NULL);
        if (prc != SQLITE_OK) {
            return map_rc(prc);
        }
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)from);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)end);
    int outer = s->scanning;
    s->scanning = 1;
    uint64_t expect = from;
    int ret = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const uint8_t *p;
        size_t n;
        ret = scan_row(s, st, expect, &p, &n);
        if (ret == 0) {
            ret = fn(arg, expect, p, n);
        }
        if (ret != 0) {
            break;
        }
        expect++;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ret = map_rc(rc);
    }
    if (ret == 0 && expect <= end && expect <= s->log_count) {
        ret = P4P_ECORRUPT; /* records missing at the end */
        s->stats.corrupt++;
    }
    if (outer) {
        sqlite3_finalize(st);
    } else {
        sqlite3_reset(st);
    }
    s->scanning = outer;
    if (ret == P4P_ECORRUPT && bad_index != NULL) {
        *bad_index = expect;
    }
    return ret;
}

static uint64_t sq_log_count(void *ctx)
{
    const struct storage_sqlite *s = ctx;
    return s->log_count;
}

static int sq_log_truncate(void *ctx, uint64_t count)
{
    struct storage_sqlite *s = ctx;
    int rc = write_gate(s);
    if (rc != 0) {
        return rc;
    }
    if (count >= s->log_count) {
        return 0;
    }
    sqlite3_bind_int64(s->st[ST_LOG_TRUNC], 1, (sqlite3_int64)count);
    rc = run(s->st[ST_LOG_TRUNC]);
    if (rc != 0) {
        return tx_fail(s, rc);
    }
    s->log_count = count;
    return 0;
}

/* The common body of kv_put and chunk_put: one row (key, value, checksum) written by the
 * given statement. Returns the number of rows changed (a duplicate chunk changes none), or a
 * negative code. */
static int put_row(struct storage_sqlite *s, int stmt, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen, uint32_t crc)
{
    int rc = write_gate(s);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = s->st[stmt];
    int b = bind_blob(st, 1, key, klen);
    if (b == SQLITE_OK) {
        b = bind_blob(st, 2, val, vlen);
    }
    if (b != SQLITE_OK) {
        sqlite3_reset(st);
        return tx_fail(s, map_rc(b));
    }
    sqlite3_bind_int64(st, 3, crc);
    rc = run(st);
    if (rc != 0) {
        return tx_fail(s, rc);
    }
    return sqlite3_changes(s->db);
}

static int sq_kv_put(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct storage_sqlite *s = ctx;
    if ((key == NULL && klen > 0) || (val == NULL && vlen > 0)) {
        return P4P_EINVAL;
    }
    int rc = put_row(s, ST_KV_PUT, key, klen, val, vlen, crc_kv(key, klen, val, vlen));
    if (rc < 0) {
        return rc;
    }
    s->pend_logical += klen + vlen;
    return 0;
}

/* The common end of kv_get and chunk_get: verify, then copy if it fits. */
static int get_verified(struct storage_sqlite *s, sqlite3_stmt *st, int kind, const uint8_t *key,
                        size_t klen, uint8_t *buf, size_t cap, size_t *len)
{
    int rc = sqlite3_step(st);
    int ret;
    if (rc == SQLITE_ROW) {
        const uint8_t *p;
        size_t n;
        uint32_t crc;
        ret = read_blob_crc(st, 0, &p, &n, &crc);
        if (ret == 0) {
            uint32_t want = kind == 0 ? crc_kv(key, klen, p, n) : crc_chunk(key, p, n);
            ret = crc == want ? 0 : P4P_ECORRUPT;
        }
        if (ret == P4P_ECORRUPT) {
            s->stats.corrupt++;
        } else if (ret == 0) {
            *len = n;
            if (n > cap) {
                ret = P4P_ETOOBIG;
            } else if (n > 0) {
                memcpy(buf, p, n);
            }
        }
    } else {
        ret = rc == SQLITE_DONE ? P4P_ENOTFOUND : map_rc(rc);
    }
    sqlite3_reset(st);
    return ret;
}

static int sq_kv_get(void *ctx, const uint8_t *key, size_t klen, uint8_t *val, size_t cap,
                     size_t *vlen)
{
    struct storage_sqlite *s = ctx;
    if ((key == NULL && klen > 0) || (val == NULL && cap > 0) || vlen == NULL) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = s->st[ST_KV_GET];
    int b = bind_blob(st, 1, key, klen);
    if (b != SQLITE_OK) {
        sqlite3_reset(st);
        return map_rc(b);
    }
    return get_verified(s, st, 0, key, klen, val, cap, vlen);
}

static int del_by(struct storage_sqlite *s, int which, const uint8_t *key, size_t klen)
{
    int rc = write_gate(s);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = s->st[which];
    int b = bind_blob(st, 1, key, klen);
    if (b != SQLITE_OK) {
        sqlite3_reset(st);
        return tx_fail(s, map_rc(b));
    }
    rc = run(st);
    return rc != 0 ? tx_fail(s, rc) : 0;
}

static int sq_kv_del(void *ctx, const uint8_t *key, size_t klen)
{
    if (key == NULL && klen > 0) {
        return P4P_EINVAL;
    }
    return del_by(ctx, ST_KV_DEL, key, klen);
}

static int sq_chunk_put(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN], const uint8_t *data,
                        size_t len)
{
    struct storage_sqlite *s = ctx;
    if (id == NULL || (data == NULL && len > 0)) {
        return P4P_EINVAL;
    }
    int rc = put_row(s, ST_CHUNK_PUT, id, P4P_CHUNK_ID_LEN, data, len, crc_chunk(id, data, len));
    if (rc < 0) {
        return rc;
    }
    if (rc > 0) {
        s->pend_logical += len; /* a duplicate stores nothing */
    }
    return 0;
}

static int sq_chunk_get(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN], uint8_t *buf, size_t cap,
                        size_t *len)
{
    struct storage_sqlite *s = ctx;
    if (id == NULL || (buf == NULL && cap > 0) || len == NULL) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = s->st[ST_CHUNK_GET];
    int b = bind_blob(st, 1, id, P4P_CHUNK_ID_LEN);
    if (b != SQLITE_OK) {
        sqlite3_reset(st);
        return map_rc(b);
    }
    return get_verified(s, st, 1, id, P4P_CHUNK_ID_LEN, buf, cap, len);
}

static int sq_chunk_has(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN])
{
    struct storage_sqlite *s = ctx;
    if (id == NULL) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = s->st[ST_CHUNK_HAS];
    int b = bind_blob(st, 1, id, P4P_CHUNK_ID_LEN);
    if (b != SQLITE_OK) {
        sqlite3_reset(st);
        return map_rc(b);
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : map_rc(rc);
}

static int sq_chunk_del(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN])
{
    if (id == NULL) {
        return P4P_EINVAL;
    }
    return del_by(ctx, ST_CHUNK_DEL, id, P4P_CHUNK_ID_LEN);
}

int storage_sqlite_size(struct storage_sqlite *s, struct storage_sqlite_size *out)
{
    if (s == NULL || out == NULL) {
        return P4P_EINVAL;
    }
    int64_t size = 0, count = 0, freelist = 0;
    int rc = query_int(s->st[ST_PAGE_SIZE], &size);
    if (rc == 0) {
        rc = query_int(s->st[ST_PAGE_COUNT], &count);
    }
    if (rc == 0) {
        rc = query_int(s->st[ST_FREELIST], &freelist);
    }
    if (rc != 0) {
        return rc;
    }
    memset(out, 0, sizeof *out);
    out->page_size = size > 0 ? (uint64_t)size : 0;
    out->page_count = count > 0 ? (uint64_t)count : 0;
    out->freelist_count = freelist > 0 ? (uint64_t)freelist : 0;
    struct stat sb;
    if (s->wal_path != NULL && stat(s->wal_path, &sb) == 0 && sb.st_size > 0) {
        out->wal_bytes = (uint64_t)sb.st_size;
    }
    out->written_bytes = s->counter.bytes;
    out->epoch = s->epoch;
    return 0;
}

static void sq_stats(void *ctx, struct p4p_storage_stats *out)
{
    struct storage_sqlite *s = ctx;
    *out = s->stats;
    out->written_bytes = s->counter.bytes;
    struct storage_sqlite_size z;
    if (storage_sqlite_size(s, &z) == 0) {
        out->stored_bytes = z.page_size * z.page_count + z.wal_bytes;
    }
}

static const struct p4p_storage_ops sqlite_ops = {
    .begin = sq_begin,
    .commit = sq_commit,
    .abort = sq_abort,
    .log_append = sq_log_append,
    .log_scan = sq_log_scan,
    .log_count = sq_log_count,
    .log_truncate = sq_log_truncate,
    .kv_put = sq_kv_put,
    .kv_get = sq_kv_get,
    .kv_del = sq_kv_del,
    .chunk_put = sq_chunk_put,
    .chunk_get = sq_chunk_get,
    .chunk_has = sq_chunk_has,
    .chunk_del = sq_chunk_del,
    .stats = sq_stats,
};

struct p4p_storage storage_sqlite_storage(struct storage_sqlite *s)
{
    struct p4p_storage st = {&sqlite_ops, s};
    return st;
}

/* ---- Open: identify, check, migrate, prepare, new epoch ------------------------------------ */

/* One integer from an SQL text, for open-time queries. */
static int sql_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return map_rc(rc);
    }
    rc = query_int(st, out);
    sqlite3_finalize(st);
    return rc;
}

/* The first column of the first row as text, for journal_mode and the checks. */
static int sql_text(sqlite3 *db, const char *sql, char *buf, size_t cap)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return map_rc(rc);
    }
    rc = sqlite3_step(st);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(buf, cap, "%s", t != NULL ? (const char *)t : "");
    } else {
        ret = rc == SQLITE_DONE ? P4P_ECORRUPT : map_rc(rc);
    }
    sqlite3_finalize(st);
    return ret;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    return map_rc(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/* The message for the connection's last error; a page that failed its checksum says so. */
static const char *db_errmsg(sqlite3 *db)
{
    if (sqlite3_extended_errcode(db) == SQLITE_IOERR_DATA) {
        return "a page failed its checksum";
    }
    return sqlite3_errmsg(db);
}

/* Our VFS's object for the main database file. */
static struct count_file *main_file(sqlite3 *db)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || f == NULL ||
        f->pMethods == NULL || (f->pMethods != &count_io_shm && f->pMethods != &count_io_plain)) {
        return NULL;
    }
    return (struct count_file *)f;
}

/* 2 -> 3, before its transaction: reserve PAGE_RESERVE bytes a page for the checksums. That
 * takes a VACUUM (outside any transaction; atomic by itself), then a checkpoint that seals
 * every page on its way into the database file. In memory there is nothing to seal. */
static int add_page_checksums(struct storage_sqlite *s)
{
    int n = -1;
    if (s->is_memory ||
        (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &n) == SQLITE_OK &&
         n == PAGE_RESERVE)) {
        return 0;
    }
    if (n != 0) {
        return P4P_ECORRUPT; /* another reserve: not ours to change (it cannot shrink) */
    }
    n = PAGE_RESERVE;
    sqlite3_file_control(s->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &n);
    int rc = exec_sql(s->db, "VACUUM");
    if (rc == 0) {
        rc = map_rc(
            sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL));
    }
    struct count_file *cf = main_file(s->db);
    if (rc == 0 && (cf == NULL || !cf->sealed)) {
        rc = P4P_EIO;
    }
    return rc;
}

/* The schema, one step per version, each in its own transaction (`before` runs just ahead
 * of it, outside). Never edit a step that has shipped: add one. */
static const struct migration {
    const char *sql;
    int (*before)(struct storage_sqlite *s);
} migrations[STORAGE_SQLITE_SCHEMA_VERSION] = {
    /* 0 -> 1: the four tables. */
    {"CREATE TABLE meta(id INTEGER PRIMARY KEY CHECK (id = 1), created_by TEXT NOT NULL);"
     "INSERT INTO meta(id, created_by) VALUES (1, 'p4p');"
     "CREATE TABLE log(idx INTEGER PRIMARY KEY, data BLOB NOT NULL, crc INTEGER NOT NULL);"
     "CREATE TABLE kv(key BLOB PRIMARY KEY, val BLOB NOT NULL, crc INTEGER NOT NULL)"
     " WITHOUT ROWID;"
     "CREATE TABLE chunk(id BLOB PRIMARY KEY, data BLOB NOT NULL, crc INTEGER NOT NULL)"
     " WITHOUT ROWID;"
     "PRAGMA application_id = 1345605715;", /* APP_ID */
     NULL},
    /* 1 -> 2: the write fence's epoch. */
    {"ALTER TABLE meta ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;", NULL},
    /* 2 -> 3: page checksums (see PAGE_RESERVE). */
    {"", add_page_checksums},
};

/* Is this ours, and of a version we know? Fresh (empty) databases pass with *version 0. */
static int identify(sqlite3 *db, const char *path, int64_t *version, char *err, size_t cap)
{
    int64_t app = 0, objects = 0;
    int rc = sql_int(db, "PRAGMA application_id", &app);
    if (rc == 0) {
        rc = sql_int(db, "PRAGMA user_version", version);
    }
    if (rc == 0) {
        rc = sql_int(db, "SELECT count(*) FROM sqlite_schema", &objects);
    }
    if (rc != 0) {
        set_err(err, cap, "%s: cannot read the database (%s): %s", path, db_errmsg(db),
                rc == P4P_ECORRUPT ? "not an SQLite database, or a damaged one" : "I/O error");
        return rc;
    }
    if (*version > STORAGE_SQLITE_SCHEMA_VERSION && app == APP_ID) {
        set_err(err, cap,
                "%s: store schema version %" PRId64 " is newer than this program's (%d); "
                "open it with a newer p4p",
                path, *version, STORAGE_SQLITE_SCHEMA_VERSION);
        return P4P_EVERSION;
    }
    if (app == 0 && *version == 0 && objects == 0) {
        return 0; /* empty: a new store */
    }
    if (app != APP_ID || *version <= 0) {
        set_err(err, cap,
                "%s: an SQLite database but not a p4p store (application_id 0x%08" PRIx64
                ", user_version %" PRId64 ")",
                path, (uint64_t)app & 0xffffffffu, *version);
        return P4P_ECORRUPT;
    }
    return 0;
}

/* A new file gets its page reserve before its first page is written. A store from version 3
 * on must have it (a flip of header byte 20 would otherwise switch verification off). */
static int check_pages(struct storage_sqlite *s, const char *path, int64_t version, char *err,
                       size_t cap)
{
    if (s->is_memory) {
        return 0;
    }
    if (version == 0) {
        int n = PAGE_RESERVE;
        sqlite3_file_control(s->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &n);
        return 0;
    }
    struct count_file *cf = main_file(s->db);
    if (version >= 3 && cf != NULL && cf->page_size != 0 && !cf->sealed) {
        set_err(err, cap, "%s: the database is damaged (its header lost the page checksums)", path);
        return P4P_ECORRUPT;
    }
    return 0;
}

/* SQLite's check report, first problem only, on one line: "*** in database main ***" goes,
 * and a page the VFS refused (SQLITE_IOERR_DATA, code 8202) is called what it is. */
static const char *one_line(char *res)
{
    static const char banner[] = "*** in database main ***\n";
    static const char unreadable[] = "unable to get the page. error code=8202";
    char *p = res;
    if (strncmp(p, banner, sizeof banner - 1) == 0) {
        p += sizeof banner - 1;
    }
    char *nl = strchr(p, '\n');
    if (nl != NULL) {
        *nl = '\0';
    }
    char *u = strstr(p, unreadable);
    if (u != NULL) {
        snprintf(u, (size_t)(res + 256 - u), "failed its checksum");
    }
    return p;
}

static int check_integrity(sqlite3 *db, const char *path, int level, char *err, size_t cap)
{
    if (level == STORAGE_SQLITE_CHECK_NONE) {
        return 0;
    }
    const char *what = level == STORAGE_SQLITE_CHECK_FULL ? "integrity_check" : "quick_check";
    char sql[64], res[256];
    snprintf(sql, sizeof sql, "PRAGMA %s(1)", what);
    int rc = sql_text(db, sql, res, sizeof res);
    if (rc == 0 && strcmp(res, "ok") == 0) {
        return 0;
    }
    set_err(err, cap, "%s: the database is damaged (%s: %s)", path, what,
            rc == 0 ? one_line(res) : db_errmsg(db));
    return rc == 0 ? P4P_ECORRUPT : rc;
}

/* Runs each missing step in its own IMMEDIATE transaction, re-reading the version inside it
 * (another process may be migrating the same file). */
static int migrate(struct storage_sqlite *s, const char *path, char *err, size_t cap)
{
    sqlite3 *db = s->db;
    for (;;) {
        int64_t v = 0;
        int rc = sql_int(db, "PRAGMA user_version", &v);
        if (rc == 0 && v >= 0 && v < STORAGE_SQLITE_SCHEMA_VERSION &&
            migrations[v].before != NULL) {
            rc = migrations[v].before(s);
        }
        if (rc == 0) {
            rc = exec_sql(db, "BEGIN IMMEDIATE");
        }
        if (rc == 0) {
            rc = sql_int(db, "PRAGMA user_version", &v);
        }
        if (rc == 0 && (v < 0 || v > STORAGE_SQLITE_SCHEMA_VERSION)) {
            rc = P4P_EVERSION;
        }
        int done = rc == 0 && v == STORAGE_SQLITE_SCHEMA_VERSION;
        if (rc == 0 && !done) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version = %d", (int)v + 1);
            rc = exec_sql(db, migrations[v].sql);
            if (rc == 0) {
                rc = exec_sql(db, sql);
            }
        }
        if (rc == 0) {
            rc = exec_sql(db, "COMMIT");
        }
        if (rc != 0) {
            set_err(err, cap, "%s: schema migration to version %d failed: %s", path, (int)v + 1,
                    rc == P4P_ECORRUPT ? "the page layout is not ours" : db_errmsg(db));
            if (!sqlite3_get_autocommit(db)) {
                exec_sql(db, "ROLLBACK");
            }
            return rc;
        }
        if (done) {
            return 0;
        }
    }
}

/* open() and crash() both start an epoch in a committed transaction of its own. */
static int new_epoch(struct storage_sqlite *s)
{
    int rc = run(s->st[ST_BEGIN]);
    if (rc != 0) {
        return rc;
    }
    rc = run(s->st[ST_EPOCH_BUMP]);
    if (rc == 0 && sqlite3_changes(s->db) != 1) {
        rc = P4P_ECORRUPT; /* the meta row is gone */
    }
    int64_t epoch = 0;
    if (rc == 0) {
        rc = query_int(s->st[ST_EPOCH_GET], &epoch);
    }
    if (rc == 0) {
        rc = run(s->st[ST_COMMIT]);
    }
    if (rc != 0) {
        if (!sqlite3_get_autocommit(s->db)) {
            run(s->st[ST_ROLLBACK]);
        }
        return rc;
    }
    s->epoch = epoch;
    return refresh_log_count(s);
}

/* "file:" URI of a path, percent-encoding what a URI would read otherwise, plus the counter. */
static char *make_uri(const char *path, const struct write_counter *c)
{
    size_t n = strlen(path);
    char *u = malloc(3 * n + 64);
    if (u == NULL) {
        return NULL;
    }
    char *w = u + sprintf(u, "file:%s", path[0] == '/' ? "//" : "");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)path[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~/", ch) != NULL) {
            *w++ = (char)ch;
        } else {
            w += sprintf(w, "%%%02X", ch);
        }
    }
    sprintf(w, "?p4p_counter=%" PRIxPTR, (uintptr_t)c);
    return u;
}

static int open_connection(struct storage_sqlite *s, const char *path,
                           const struct storage_sqlite_opts *o, char *err, size_t cap)
{
    char *uri;
    const char *vfs = "p4p-count";
    if (s->is_memory && path[8] != '\0') {
        /* A named memdb database: a leading '/' shares it between this process's
         * connections; it lives while one of them is open. */
        char name[300];
        if (strlen(path + 8) > 200) {
            set_err(err, cap, "%s: the name of an in-memory store is too long", path);
            return P4P_EINVAL;
        }
        snprintf(name, sizeof name, "/p4p-memory-%s", path + 8);
        uri = make_uri(name, &s->counter);
        vfs = "p4p-count-mem";
    } else if (s->is_memory) {
        /* A private memdb database (no leading '/': not shared with other connections). */
        uri = malloc(64);
        if (uri != NULL) {
            snprintf(uri, 64, "file:p4p-memory?p4p_counter=%" PRIxPTR, (uintptr_t)&s->counter);
        }
        vfs = "p4p-count-mem";
    } else {
        uri = make_uri(path, &s->counter);
    }
    if (uri == NULL) {
        set_err(err, cap, "%s: out of memory", path);
        return P4P_ENOMEM;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX |
                SQLITE_OPEN_EXRESCODE | (o->must_exist ? 0 : SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(uri, &s->db, flags, vfs);
    free(uri);
    if (rc != SQLITE_OK) {
        set_err(err, cap, "%s: cannot open: %s", path,
                s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        return map_rc(rc) == P4P_ENOMEM ? P4P_ENOMEM : P4P_EIO;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db,
                         o->busy_timeout_ms > 0 ? o->busy_timeout_ms : BUSY_TIMEOUT_DEFAULT_MS);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    /* cell_size_check: SQLite verifies each b-tree cell's size as it reads it, so damage
     * inside a page is caught on read instead of being interpreted. */
    rc = exec_sql(s->db, "PRAGMA cell_size_check = ON; PRAGMA temp_store = MEMORY");
    if (rc != 0) {
        set_err(err, cap, "%s: cannot configure: %s", path, db_errmsg(s->db));
    }
    return rc;
}

/* journal_mode and synchronous, read back to be sure they took. */
static int set_modes(struct storage_sqlite *s, const char *path,
                     const struct storage_sqlite_opts *o, char *err, size_t cap)
{
    const char *want = s->is_memory ? "memory" : "wal";
    char got[32];
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode = %s", want);
    int rc = sql_text(s->db, sql, got, sizeof got);
    if (rc == 0 && strcmp(got, want) != 0) {
        rc = P4P_EIO;
    }
    if (rc != 0) {
        set_err(err, cap, "%s: cannot set journal_mode=%s (%s)", path, want,
                rc == P4P_EIO && strcmp(got, want) != 0 ? got : db_errmsg(s->db));
        return rc;
    }
    int64_t sync_level = -1, want_sync = o->synchronous_normal ? 1 : 2;
    rc = exec_sql(s->db, o->synchronous_normal ? "PRAGMA synchronous = NORMAL"
                                               : "PRAGMA synchronous = FULL");
    if (rc == 0) {
        rc = sql_int(s->db, "PRAGMA synchronous", &sync_level);
    }
    if (rc == 0 && sync_level != want_sync) {
        rc = P4P_EIO;
    }
    if (rc != 0) {
        set_err(err, cap, "%s: cannot set synchronous: %s", path, db_errmsg(s->db));
    }
    return rc;
}

/* opts.reseal_pages: every page rewritten (VACUUM) and sealed on its way into the file
 * (checkpoint); verification stays off until then. */
static int reseal(struct storage_sqlite *s, const char *path, char *err, size_t cap)
{
    struct count_file *cf = main_file(s->db);
    int rc = exec_sql(s->db, "VACUUM");
    if (rc == 0) {
        rc = map_rc(
            sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL));
    }
    if (rc != 0) {
        set_err(err, cap, "%s: cannot reseal the pages: %s", path, db_errmsg(s->db));
    }
    if (cf != NULL) {
        cf->no_verify = 0;
    }
    return rc;
}

static int prepare_all(struct storage_sqlite *s, const char *path, char *err, size_t cap)
{
    for (int i = 0; i < ST_COUNT_; i++) {
        int rc =
            sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            set_err(err, cap, "%s: the store's schema is damaged (%s)", path, db_errmsg(s->db));
            return map_rc(rc) == P4P_ENOMEM ? P4P_ENOMEM : P4P_ECORRUPT;
        }
    }
    return 0;
}

/* must_exist: a missing file, or an empty or too short one with no WAL beside it, is not a
 * store. */
static int check_exists(const char *path, char *err, size_t cap)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        set_err(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return P4P_EIO;
    }
    if (sb.st_size >= 512) {
        return 0; /* SQLite's smallest page; its unix VFS even reads a 1-byte file as empty */
    }
    size_t n = strlen(path);
    char *wal = malloc(n + 5);
    if (wal == NULL) {
        return P4P_ENOMEM;
    }
    memcpy(wal, path, n);
    memcpy(wal + n, "-wal", 5);
    int has_wal = stat(wal, &sb) == 0 && sb.st_size > 0;
    free(wal);
    if (!has_wal) {
        set_err(err, cap, "%s: the file is empty or too short (%lld bytes) to be a store", path,
                (long long)sb.st_size);
        return P4P_ECORRUPT;
    }
    return 0;
}

/* Everything open does once the handle exists; each step writes `err` when it fails. */
static int open_steps(struct storage_sqlite *s, const char *path,
                      const struct storage_sqlite_opts *o, char *err, size_t errcap)
{
    int64_t version = 0;
    int rc = open_connection(s, path, o, err, errcap);
    if (rc == 0 && o->reseal_pages && !s->is_memory && main_file(s->db) != NULL) {
        main_file(s->db)->no_verify = 1;
    }
    if (rc == 0) {
        rc = identify(s->db, path, &version, err, errcap);
    }
    if (rc == 0) {
        rc = check_pages(s, path, version, err, errcap);
    }
    if (rc == 0 && version > 0) {
        rc = check_integrity(s->db, path, o->check_on_open, err, errcap);
    }
    if (rc == 0) {
        rc = set_modes(s, path, o, err, errcap);
    }
    if (rc == 0) {
        rc = migrate(s, path, err, errcap);
    }
    if (rc == 0 && o->reseal_pages && !s->is_memory) {
        rc = reseal(s, path, err, errcap);
    }
    if (rc == 0) {
        rc = prepare_all(s, path, err, errcap);
    }
    if (rc == 0) {
        rc = new_epoch(s);
        if (rc != 0) {
            set_err(err, errcap, "%s: cannot start a new epoch: %s", path,
                    rc == P4P_ECORRUPT ? "the store's meta row is missing or damaged"
                                       : db_errmsg(s->db));
        }
    }
    if (rc == 0 && !s->is_memory) {
        const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->db, "main"));
        s->wal_path = wal != NULL ? strdup(wal) : NULL;
        if (wal != NULL && s->wal_path == NULL) {
            set_err(err, errcap, "%s: out of memory", path);
            rc = P4P_ENOMEM;
        }
    }
    return rc;
}

int storage_sqlite_open(const char *path, const struct storage_sqlite_opts *o,
                        struct storage_sqlite **out, char *err, size_t errcap)
{
    static const struct storage_sqlite_opts defaults;
    set_err(err, errcap, "%s", "");
    if (path == NULL || out == NULL || path[0] == '\0') {
        set_err(err, errcap, "storage_sqlite_open: no path");
        return P4P_EINVAL;
    }
    o = o != NULL ? o : &defaults;
    if (o->check_on_open < STORAGE_SQLITE_CHECK_QUICK ||
        o->check_on_open > STORAGE_SQLITE_CHECK_FULL) {
        set_err(err, errcap, "%s: unknown check_on_open %d", path, o->check_on_open);
        return P4P_EINVAL;
    }
    pthread_once(&vfs_once, vfs_register);
    if (vfs_status != SQLITE_OK) {
        set_err(err, errcap, "%s: cannot register the p4p-count VFS: %s", path,
                sqlite3_errstr(vfs_status));
        return P4P_EIO;
    }
    int is_memory = strncmp(path, ":memory:", 8) == 0;
    if (is_memory && !vfs_have_mem) {
        set_err(err, errcap, "%s: this SQLite has no memdb VFS for in-memory stores", path);
        return P4P_EIO;
    }
    if (!is_memory && o->must_exist) {
        int rc = check_exists(path, err, errcap);
        if (rc != 0) {
            return rc;
        }
    }
    struct storage_sqlite *s = calloc(1, sizeof *s);
    if (s == NULL) {
        set_err(err, errcap, "%s: out of memory", path);
        return P4P_ENOMEM;
    }
    s->is_memory = is_memory;
    s->counter.magic = COUNTER_MAGIC;
    int rc = open_steps(s, path, o, err, errcap);
    if (rc != 0) {
        storage_sqlite_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void storage_sqlite_close(struct storage_sqlite *s)
{
    if (s == NULL) {
        return;
    }
    if (s->db != NULL && !sqlite3_get_autocommit(s->db)) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    for (int i = 0; i < ST_COUNT_; i++) {
        sqlite3_finalize(s->st[i]);
    }
    sqlite3_close_v2(s->db);
    s->counter.magic = 0;
    free(s->wal_path);
    free(s);
}

/* ---- Test and simulation hooks ------------------------------------------------------------- */

void storage_sqlite_fail_after(struct storage_sqlite *s, uint64_t writes)
{
    if (s != NULL) {
        s->fail_countdown = writes;
    }
}

void storage_sqlite_preempt(struct storage_sqlite *s)
{
    if (s == NULL || !s->in_tx) {
        return;
    }
    if (!sqlite3_get_autocommit(s->db)) {
        run(s->st[ST_ROLLBACK]);
    }
    /* in_tx stays set: the batch's remaining calls fail, and write nothing. */
    s->tx_err = P4P_EFENCED;
    s->log_count = s->log_count_committed;
}

int storage_sqlite_crash(struct storage_sqlite *s)
{
    if (s == NULL) {
        return P4P_EINVAL;
    }
    rollback_tx(s);
    s->dead = 0;
    s->dead_err = 0;
    s->fail_countdown = 0;
    memset(&s->stats, 0, sizeof s->stats);
    s->counter.bytes = 0;
    return new_epoch(s);
}

int storage_sqlite_corrupt_record(struct storage_sqlite *s, uint64_t index, uint64_t nth_byte)
{
    if (s == NULL || index == 0 || index > INT64_MAX) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *sel = NULL, *upd = NULL;
    uint8_t *copy = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT data FROM log WHERE idx = ?1", -1, &sel, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(s->db, "UPDATE log SET data = ?2 WHERE idx = ?1", -1, &upd, NULL);
    }
    int ret = map_rc(rc);
    if (ret == 0) {
        sqlite3_bind_int64(sel, 1, (sqlite3_int64)index);
        rc = sqlite3_step(sel);
        ret = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? P4P_ENOTFOUND : map_rc(rc);
    }
    size_t n = ret == 0 ? (size_t)sqlite3_column_bytes(sel, 0) : 0;
    if (ret == 0 && nth_byte >= n) {
        ret = P4P_EINVAL;
    }
    if (ret == 0 && (copy = malloc(n)) == NULL) {
        ret = P4P_ENOMEM;
    }
    if (ret == 0) {
        memcpy(copy, sqlite3_column_blob(sel, 0), n);
        copy[nth_byte] ^= 1;
        sqlite3_reset(sel);
        sqlite3_bind_int64(upd, 1, (sqlite3_int64)index);
        bind_blob(upd, 2, copy, n);
        ret = run(upd);
    }
    free(copy);
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return ret;
}

int storage_sqlite_checkpoint(struct storage_sqlite *s)
{
    if (s == NULL || s->in_tx) {
        return P4P_EINVAL;
    }
    int rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    return map_rc(rc);
}

struct sqlite3 *storage_sqlite_db(struct storage_sqlite *s)
{
    return s != NULL ? s->db : NULL;
}
