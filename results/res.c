/*
 * res.c — writes one run's results file, and checks and hashes results files (see res.h).
 *
 * Writing is tuned for a file that one process writes once, start to finish:
 *
 *   open "<path>.tmp"  PRAGMA journal_mode=MEMORY, synchronous=OFF, locking_mode=EXCLUSIVE
 *   BEGIN; schema.sql; INSERT run (status 'running'); COMMIT
 *   unlink <path>      (old results must not outlive a rerun that crashes)
 *   BEGIN              every row of the run, through prepared statements reused per row
 *   UPDATE run SET status; COMMIT; close; fsync; rename "<path>.tmp" -> <path>
 *
 * Why these pragmas are safe here: nobody else opens the file while it is written, and a file
 * that did not reach res_finish is never renamed to its real name, so a crash can at worst
 * leave a broken "<path>.tmp" behind (its run.status still 'running' if it is readable). We
 * keep the rollback journal in memory rather than switching it off because a journal is what
 * lets a failed row (a duplicate key) be undone without losing the whole transaction; on a
 * fresh file it costs almost nothing, since pages appended during a transaction are not
 * journaled. Durability comes from one fsync before the rename instead of one per commit.
 *
 * Reading distrusts the file: res_open_check() refuses non-regular files, opens read-only
 * with SQLITE_DBCONFIG_DEFENSIVE and without trusted_schema, and checks the application id,
 * the schema version and every table and column before anything else reads it.
 */
#include "res.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "p4p/p4p.h"
#include "schema_sql.h"

/* ---- Writer -------------------------------------------------------------------------------- */

enum res_stmt {
    RES_STMT_PARAM,
    RES_STMT_NODE,
    RES_STMT_SCALAR,
    RES_STMT_STAT,
    RES_STMT_SERIES,
    RES_STMT_UPDATE,
    RES_STMT_DELIVERY,
    RES_STMT_WALL,
    RES_STMT_COUNT
};

static const char *const res_stmt_sql[RES_STMT_COUNT] = {
    [RES_STMT_PARAM] = "INSERT INTO parameter (key, value) VALUES (?1, ?2)",
    [RES_STMT_NODE] = "INSERT INTO node (node, peer_id, degree, x, y) VALUES (?1, ?2, ?3, ?4, ?5)",
    [RES_STMT_SCALAR] = "INSERT INTO scalar (node, name, value) VALUES (?1, ?2, ?3)",
    [RES_STMT_STAT] = "INSERT INTO statistic (name, count, mean, stddev, min, p50, p90, p99, max)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [RES_STMT_SERIES] = "INSERT INTO series (name, t_ns, value) VALUES (?1, ?2, ?3)",
    [RES_STMT_UPDATE] = "INSERT INTO updates (update_id, msg_id, origin, created_ns, size)"
                        " VALUES (?1, ?2, ?3, ?4, ?5)",
    [RES_STMT_DELIVERY] = "INSERT INTO delivery (update_id, node, delivered_ns, hops)"
                          " VALUES (?1, ?2, ?3, ?4)",
    [RES_STMT_WALL] = "INSERT INTO wall (name, value) VALUES (?1, ?2)",
};

struct res_db {
    sqlite3 *sql;
    sqlite3_stmt *stmt[RES_STMT_COUNT];
    char *path;     /* the final name */
    char *tmp_path; /* "<path>.tmp", the file written until res_finish */
    int err;        /* sticky: once the database failed, every call returns this */
    char errmsg[256];
};

static int res_is_hex(const char *s)
{
    size_t n = 0;
    if (s == NULL) {
        return 0;
    }
    for (; s[n] != '\0'; n++) {
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) {
            return 0;
        }
    }
    return n > 0 && n % 2 == 0;
}

static int res_is_name(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Maps a failed SQLite call to a P4P code. A constraint or a too-long value fails only its
 * statement and leaves the transaction usable; anything else may have rolled the transaction
 * back, so it sticks and every later call reports it. */
static int res_fail(res_db *db, int rc)
{
    int err;
    snprintf(db->errmsg, sizeof db->errmsg, "%s", sqlite3_errstr(rc));
    if ((sqlite3_errcode(db->sql) & 0xff) == (rc & 0xff)) {
        snprintf(db->errmsg, sizeof db->errmsg, "%s", sqlite3_errmsg(db->sql));
    }
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        err = (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
                  ? P4P_EDUPLICATE
                  : P4P_EINVAL;
        break;
    case SQLITE_TOOBIG:
        err = P4P_ETOOBIG;
        break;
    case SQLITE_NOMEM:
        db->err = P4P_ENOMEM;
        return P4P_ENOMEM;
    default:
        db->err = P4P_EIO;
        return P4P_EIO;
    }
    if (sqlite3_get_autocommit(db->sql)) {
        /* SQLite rolled the whole transaction back: nothing written so far survives. */
        db->err = P4P_EIO;
        return P4P_EIO;
    }
    return err;
}

/* Keeps the first failure of a series of bind calls. */
static void res_keep(int *rc, int r)
{
    if (*rc == SQLITE_OK) {
        *rc = r;
    }
}

/* Text is bound SQLITE_STATIC: the statement is stepped and its bindings cleared before the
 * caller's string can go away. */
static int res_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s == NULL) {
        return sqlite3_bind_null(st, i);
    }
    return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int res_bind_real(sqlite3_stmt *st, int i, double v)
{
    if (isnan(v)) {
        return sqlite3_bind_null(st, i);
    }
    return sqlite3_bind_double(st, i, v);
}

/* Steps statement `id` whose parameters were bound with result bind_rc, then readies it for
 * the next row. */
static int res_step(res_db *db, enum res_stmt id, int bind_rc)
{
    sqlite3_stmt *st = db->stmt[id];
    int err = 0;
    int rc = bind_rc;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK) {
        err = res_fail(db, rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

static int res_usable(const res_db *db)
{
    if (db == NULL) {
        return P4P_EINVAL;
    }
    return db->err;
}

static int res_exec(res_db *db, const char *sql)
{
    int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(db->errmsg, sizeof db->errmsg, "%s", sqlite3_errmsg(db->sql));
        return (rc & 0xff) == SQLITE_NOMEM ? P4P_ENOMEM : P4P_EIO;
    }
    return 0;
}

static void res_free(res_db *db)
{
    for (int i = 0; i < RES_STMT_COUNT; i++) {
        sqlite3_finalize(db->stmt[i]);
        db->stmt[i] = NULL;
    }
    sqlite3_close(db->sql); /* rolls back an open transaction */
    db->sql = NULL;
    free(db->path);
    free(db->tmp_path);
    free(db);
}

void res_abort(res_db *db)
{
    if (db == NULL) {
        return;
    }
    char *tmp = db->tmp_path;
    db->tmp_path = NULL;
    res_free(db);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
}

static char *res_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL) {
        memcpy(p, s, n);
    }
    return p;
}

/* sqlite3_open_v2 on a plain file name. Debian's SQLite is built with SQLITE_USE_URI, which
 * would read a name starting with "file:" as a URI with options; "./" keeps it a name. */
static int res_sqlite_open(const char *path, sqlite3 **out, int flags)
{
    if (strncmp(path, "file:", 5) != 0) {
        return sqlite3_open_v2(path, out, flags, NULL);
    }
    size_t n = strlen(path);
    char *name = malloc(n + 3);
    if (name == NULL) {
        *out = NULL;
        return SQLITE_NOMEM;
    }
    memcpy(name, "./", 2);
    memcpy(name + 2, path, n + 1);
    int rc = sqlite3_open_v2(name, out, flags, NULL);
    free(name);
    return rc;
}

static int res_insert_run(res_db *db, const struct res_run_info *run)
{
    static const char sql[] = "INSERT INTO run (id, mode, seed, scenario_path, scenario_sha256,"
                              " config_json, tool_version, git_commit, status)"
                              " VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running')";
    char seed[24];
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
    /* The seed is a uint64; SQLite integers are signed, so it is stored as decimal text. */
    snprintf(seed, sizeof seed, "%" PRIu64, run->seed);
    if (rc == SQLITE_OK) {
        res_keep(&rc, res_bind_text(st, 1, run->mode));
        res_keep(&rc, res_bind_text(st, 2, seed));
        res_keep(&rc, res_bind_text(st, 3, run->scenario_path));
        res_keep(&rc, res_bind_text(st, 4, run->scenario_sha256));
        res_keep(&rc, res_bind_text(st, 5, run->config_json));
        res_keep(&rc, res_bind_text(st, 6, run->tool_version));
        res_keep(&rc, res_bind_text(st, 7, run->git_commit));
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK) {
        snprintf(db->errmsg, sizeof db->errmsg, "%s", sqlite3_errmsg(db->sql));
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK) {
        return 0;
    }
    return (rc & 0xff) == SQLITE_NOMEM    ? P4P_ENOMEM
           : (rc & 0xff) == SQLITE_TOOBIG ? P4P_ETOOBIG
                                          : P4P_EIO;
}

static int res_run_info_ok(const struct res_run_info *run)
{
    if (run == NULL || run->mode == NULL) {
        return 0;
    }
    if (strcmp(run->mode, "sim") != 0 && strcmp(run->mode, "live") != 0) {
        return 0;
    }
    return run->scenario_sha256 == NULL || res_is_hex(run->scenario_sha256);
}

/* Opens "<path>.tmp" fresh and commits the schema and the run row. */
static int res_create_file(res_db *db, const struct res_run_info *run)
{
    int err;
    if (unlink(db->tmp_path) != 0 && errno != ENOENT) {
        return P4P_EIO;
    }
    int rc = res_sqlite_open(db->tmp_path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (rc != SQLITE_OK) {
        if (db->sql != NULL) {
            snprintf(db->errmsg, sizeof db->errmsg, "%s", sqlite3_errmsg(db->sql));
        }
        return rc == SQLITE_NOMEM ? P4P_ENOMEM : P4P_EIO;
    }
    sqlite3_extended_result_codes(db->sql, 1);
    err = res_exec(db, "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;"
                       " PRAGMA locking_mode = EXCLUSIVE; PRAGMA temp_store = MEMORY;"
                       " PRAGMA cache_size = -32768; BEGIN");
    if (err == 0) {
        err = res_exec(db, schema_sql);
    }
    if (err == 0) {
        err = res_insert_run(db, run);
    }
    if (err == 0) {
        err = res_exec(db, "COMMIT");
    }
    return err;
}

int res_create(const char *path, const struct res_run_info *run, res_db **out)
{
    int err = P4P_ENOMEM;
    if (path == NULL || path[0] == '\0' || out == NULL || !res_run_info_ok(run)) {
        return P4P_EINVAL;
    }
    res_db *db = calloc(1, sizeof *db);
    if (db == NULL) {
        return P4P_ENOMEM;
    }
    size_t n = strlen(path);
    db->path = res_strdup(path);
    db->tmp_path = malloc(n + sizeof ".tmp");
    if (db->path == NULL || db->tmp_path == NULL) {
        goto fail_db;
    }
    memcpy(db->tmp_path, path, n);
    memcpy(db->tmp_path + n, ".tmp", sizeof ".tmp");

    err = res_create_file(db, run);
    if (err != 0) {
        goto fail_db;
    }
    /* Old results must not outlive this run: a crash from here on leaves no file at path. */
    if (unlink(db->path) != 0 && errno != ENOENT) {
        snprintf(db->errmsg, sizeof db->errmsg, "cannot replace %s: %s", db->path, strerror(errno));
        err = P4P_EIO;
        goto fail_db;
    }
    for (int i = 0; i < RES_STMT_COUNT; i++) {
        int rc = sqlite3_prepare_v3(db->sql, res_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &db->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            err = rc == SQLITE_NOMEM ? P4P_ENOMEM : P4P_EIO;
            goto fail_db;
        }
    }
    err = res_exec(db, "BEGIN");
    if (err != 0) {
        goto fail_db;
    }
    *out = db;
    return 0;

fail_db:
    res_abort(db);
    return err;
}

int res_param(res_db *db, const char *key, const char *value)
{
    int err = res_usable(db);
    if (err != 0) {
        return err;
    }
    if (!res_is_name(key) || value == NULL) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = db->stmt[RES_STMT_PARAM];
    int rc = res_bind_text(st, 1, key);
    res_keep(&rc, res_bind_text(st, 2, value));
    return res_step(db, RES_STMT_PARAM, rc);
}

int res_node(res_db *db, uint32_t node, const char *peer_id_hex, uint32_t degree, const double *xy)
{
    int err = res_usable(db);
    if (err != 0) {
        return err;
    }
    if (peer_id_hex != NULL && !res_is_hex(peer_id_hex)) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = db->stmt[RES_STMT_NODE];
    int rc = sqlite3_bind_int64(st, 1, node);
    res_keep(&rc, res_bind_text(st, 2, peer_id_hex));
    res_keep(&rc, sqlite3_bind_int64(st, 3, degree));
    if (xy != NULL) {
        res_keep(&rc, res_bind_real(st, 4, xy[0]));
        res_keep(&rc, res_bind_real(st, 5, xy[1]));
    }
    return res_step(db, RES_STMT_NODE, rc);
}

int res_scalar(res_db *db, int64_t node, const char *name, double value)
{
    int err = res_usable(db);
    if (err != 0) {
        return err;
    }
    if (node < -1 || !res_is_name(name)) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = db->stmt[RES_STMT_SCALAR];
    int rc = sqlite3_bind_int64(st, 1, node);
    res_keep(&rc, res_bind_text(st, 2, name));
    res_keep(&rc, res_bind_real(st, 3, value));
    return res_step(db, RES_STMT_SCALAR, rc);
}

int res_stat(res_db *db, const char *name, const struct res_summary *s)
{
    int err = res_usable(db);
    if (err != 0) {
        return err;
    }
    if (!res_is_name(name) || s == NULL || s->count > INT64_MAX) {
        return P4P_EINVAL;
    }
    const double v[7] = {s->mean, s->stddev, s->min, s->p50, s->p90, s->p99, s->max};
    sqlite3_stmt *st = db->stmt[RES_STMT_STAT];
    int rc = res_bind_text(st, 1, name);
    res_keep(&rc, sqlite3_bind_int64(st, 2, (sqlite3_int64)s->count));
    for (int i = 0; i < 7; i++) {
        res_keep(&rc, res_bind_real(st, 3 + i, v[i]));
    }
    return res_step(db, RES_STMT_STAT, rc);
}

int res_series(res_db *db, const char *name, uint64_t t_ns, double value)
{
    int err = res_usable(db);
    if (err != 0) {
        return err;
    }
    if (!res_is_name(name) || t_ns > INT64_MAX) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = db->stmt[RES_STMT_SERIES];
    int rc = res_bind_text(st, 1, name);
    res_keep(&rc, sqlite3_bind_int64(st, 2, (sqlite3_int64)t_ns));
    res_keep(&rc, res_bind_real(st, 3, value));
    return res_step(db, RES_STMT_SERIES, rc);
}

int res_update(res_db *db, uint64_t update_id, const char *msg_id_hex, uint32_t origin,
               uint64_t created_ns, uint32_t size)
{
    int err = res_usable(db);
    if (err != 0) {
        return err;
    }
    if (update_id > INT64_MAX || created_ns > INT64_MAX || !res_is_hex(msg_id_hex)) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = db->stmt[RES_STMT_UPDATE];
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)update_id);
    res_keep(&rc, res_bind_text(st, 2, msg_id_hex));
    res_keep(&rc, sqlite3_bind_int64(st, 3, origin));
    res_keep(&rc, sqlite3_bind_int64(st, 4, (sqlite3_int64)created_ns));
    res_keep(&rc, sqlite3_bind_int64(st, 5, size));
    return res_step(db, RES_STMT_UPDATE, rc);
}

int res_delivery(res_db *db, uint64_t update_id, uint32_t node, uint64_t delivered_ns,
                 uint32_t hops)
{
    int err = res_usable(db);
    if (err != 0) {
        return err;
    }
    if (update_id > INT64_MAX || delivered_ns > INT64_MAX) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = db->stmt[RES_STMT_DELIVERY];
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)update_id);
    res_keep(&rc, sqlite3_bind_int64(st, 2, node));
    res_keep(&rc, sqlite3_bind_int64(st, 3, (sqlite3_int64)delivered_ns));
    res_keep(&rc, sqlite3_bind_int64(st, 4, hops));
    return res_step(db, RES_STMT_DELIVERY, rc);
}

int res_wall(res_db *db, const char *name, double value)
{
    int err = res_usable(db);
    if (err != 0) {
        return err;
    }
    if (!res_is_name(name)) {
        return P4P_EINVAL;
    }
    sqlite3_stmt *st = db->stmt[RES_STMT_WALL];
    int rc = res_bind_text(st, 1, name);
    res_keep(&rc, res_bind_real(st, 2, value));
    return res_step(db, RES_STMT_WALL, rc);
}

const char *res_errmsg(const res_db *db)
{
    return db == NULL ? "no results database" : db->errmsg;
}

static int res_set_status(res_db *db, const char *status, const char *message, uint64_t end_ns)
{
    static const char sql[] = "UPDATE run SET status = ?1, message = ?2, sim_end_ns = ?3";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        res_keep(&rc, res_bind_text(st, 1, status));
        res_keep(&rc, res_bind_text(st, 2, message));
        res_keep(&rc, sqlite3_bind_int64(st, 3, (sqlite3_int64)end_ns));
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        return (rc & 0xff) == SQLITE_NOMEM ? P4P_ENOMEM : P4P_EIO;
    }
    return 0;
}

/* Makes the closed file's bytes durable before the rename publishes it. */
static int res_sync(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return P4P_EIO;
    }
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? 0 : P4P_EIO;
}

int res_finish(res_db *db, const char *status, const char *message, uint64_t sim_end_ns)
{
    int err = res_usable(db);
    if (db == NULL) {
        return P4P_EINVAL;
    }
    if (err == 0 && (status == NULL || sim_end_ns > INT64_MAX ||
                     (strcmp(status, "ok") != 0 && strcmp(status, "failed") != 0))) {
        err = P4P_EINVAL;
    }
    if (err == 0) {
        err = res_set_status(db, status, message, sim_end_ns);
    }
    if (err == 0) {
        err = res_exec(db, "COMMIT");
    }
    if (err != 0) {
        res_abort(db);
        return err;
    }
    /* Committed: close the file, then publish it under its real name. */
    char *path = db->path;
    char *tmp = db->tmp_path;
    db->path = NULL;
    db->tmp_path = NULL;
    res_free(db);
    err = res_sync(tmp);
    if (err == 0 && rename(tmp, path) != 0) {
        err = P4P_EIO;
    }
    free(path);
    free(tmp);
    return err;
}

/* ---- Summaries ----------------------------------------------------------------------------- */

static int res_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    int xn = isnan(x) != 0;
    int yn = isnan(y) != 0;
    if (xn || yn) {
        return xn - yn;
    }
    return (x > y) - (x < y);
}

/* Index of the nearest-rank p-th percentile of n > 0 sorted values: ceil(p * n / 100) - 1,
 * computed without overflow. */
static size_t res_rank(size_t n, unsigned p)
{
    size_t rank = n / 100 * p + (n % 100 * p + 99) / 100;
    return rank > 0 ? rank - 1 : 0;
}

void res_summarize(double *values, size_t n, struct res_summary *out)
{
    double sum = 0.0;
    double sq = 0.0;
    memset(out, 0, sizeof *out);
    if (n == 0 || values == NULL) {
        return;
    }
    qsort(values, n, sizeof *values, res_cmp_double);
    for (size_t i = 0; i < n; i++) {
        sum += values[i];
    }
    double mean = sum / (double)n;
    for (size_t i = 0; i < n; i++) {
        sq += (values[i] - mean) * (values[i] - mean);
    }
    out->count = n;
    out->mean = mean;
    out->stddev = sqrt(sq / (double)n);
    out->min = values[0];
    out->p50 = values[res_rank(n, 50)];
    out->p90 = values[res_rank(n, 90)];
    out->p99 = values[res_rank(n, 99)];
    out->max = values[n - 1];
}

/* ---- Checking ------------------------------------------------------------------------------ */

static void res_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int res_read_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return P4P_ENOMEM;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_FORMAT:
    case SQLITE_ERROR:
        return P4P_EMALFORMED;
    default:
        return P4P_EIO;
    }
}

/* Every table with every column, as the readers (hash, plot, reports) expect them. */
static const char *const res_tables[] = {
    "run", "parameter", "node", "scalar", "statistic", "series", "updates", "delivery", "wall",
};
static const char *const res_columns_sql[] = {
    "SELECT id, mode, seed, scenario_path, scenario_sha256, config_json, tool_version,"
    " git_commit, status, message, sim_end_ns FROM run",
    "SELECT key, value FROM parameter",
    "SELECT node, peer_id, degree, x, y FROM node",
    "SELECT node, name, value FROM scalar",
    "SELECT name, count, mean, stddev, min, p50, p90, p99, max FROM statistic",
    "SELECT name, t_ns, value FROM series",
    "SELECT update_id, msg_id, origin, created_ns, size FROM updates",
    "SELECT update_id, node, delivered_ns, hops FROM delivery",
    "SELECT name, value FROM wall",
};

/* Runs a query returning one integer. */
static int res_query_int(sqlite3 *sql, const char *q, sqlite3_int64 *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_CORRUPT; /* the pragmas and count(*) always give a row */
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int res_check_tables(sqlite3 *sql, const char *path, char *err, size_t errlen)
{
    static const char q[] = "SELECT type FROM sqlite_master WHERE name = ?1";
    int rc = SQLITE_OK;
    for (size_t i = 0; i < sizeof res_tables / sizeof res_tables[0]; i++) {
        sqlite3_stmt *st = NULL;
        int is_table = 0;
        rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_bind_text(st, 1, res_tables[i], -1, SQLITE_STATIC);
        }
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) {
                const unsigned char *type = sqlite3_column_text(st, 0);
                is_table = type != NULL && strcmp((const char *)type, "table") == 0;
                rc = SQLITE_OK;
            } else if (rc == SQLITE_DONE) {
                rc = SQLITE_OK;
            }
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK) {
            res_set_err(err, errlen, "%s: %s", path, sqlite3_errstr(rc));
            return res_read_code(rc);
        }
        if (!is_table) {
            res_set_err(err, errlen, "%s: results file lacks the table '%s'", path, res_tables[i]);
            return P4P_EMALFORMED;
        }
        rc = sqlite3_prepare_v2(sql, res_columns_sql[i], -1, &st, NULL);
        if (rc != SQLITE_OK) {
            res_set_err(err, errlen, "%s: table '%s' is not as expected: %s", path, res_tables[i],
                        sqlite3_errmsg(sql));
            return res_read_code(rc);
        }
        sqlite3_finalize(st);
    }
    return 0;
}

static int res_check_open(sqlite3 *sql, const char *path, char *err, size_t errlen)
{
    sqlite3_int64 app = 0;
    sqlite3_int64 version = 0;
    sqlite3_int64 runs = 0;
    int rc = res_query_int(sql, "PRAGMA application_id", &app);
    if (rc != SQLITE_OK) {
        res_set_err(err, errlen, "%s: not an SQLite database (%s)", path, sqlite3_errstr(rc));
        return res_read_code(rc);
    }
    if (app != RES_APPLICATION_ID) {
        res_set_err(err, errlen,
                    "%s: not a p4p results file (application_id 0x%08" PRIx32 ", expected 0x%08x)",
                    path, (uint32_t)app, RES_APPLICATION_ID);
        return P4P_EMALFORMED;
    }
    rc = res_query_int(sql, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK) {
        res_set_err(err, errlen, "%s: %s", path, sqlite3_errstr(rc));
        return res_read_code(rc);
    }
    if (version != RES_SCHEMA_VERSION) {
        res_set_err(err, errlen,
                    "%s: results schema version %" PRId64 ", this p4p reads version %d only", path,
                    (int64_t)version, RES_SCHEMA_VERSION);
        return P4P_EVERSION;
    }
    int e = res_check_tables(sql, path, err, errlen);
    if (e != 0) {
        return e;
    }
    rc = res_query_int(sql, "SELECT count(*) FROM run", &runs);
    if (rc != SQLITE_OK) {
        res_set_err(err, errlen, "%s: %s", path, sqlite3_errstr(rc));
        return res_read_code(rc);
    }
    if (runs != 1) {
        res_set_err(err, errlen, "%s: table 'run' has %" PRId64 " rows, expected 1", path,
                    (int64_t)runs);
        return P4P_EMALFORMED;
    }
    return 0;
}

int res_open_check(const char *path, struct sqlite3 **out, char *err, size_t errlen)
{
    struct stat st;
    sqlite3 *sql = NULL;
    res_set_err(err, errlen, "%s", "");
    if (path == NULL || out == NULL) {
        res_set_err(err, errlen, "no results file given");
        return P4P_EINVAL;
    }
    if (stat(path, &st) != 0) {
        res_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? P4P_ENOTFOUND : P4P_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        res_set_err(err, errlen, "%s: not a regular file", path);
        return P4P_EMALFORMED;
    }
    int rc = res_sqlite_open(path, &sql, SQLITE_OPEN_READONLY);
    if (rc != SQLITE_OK) {
        res_set_err(err, errlen, "%s: cannot open: %s", path, sqlite3_errstr(rc));
        sqlite3_close(sql);
        return rc == SQLITE_NOMEM ? P4P_ENOMEM : P4P_EIO;
    }
    sqlite3_extended_result_codes(sql, 1);
    sqlite3_db_config(sql, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(sql, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    int e = res_check_open(sql, path, err, errlen);
    if (e != 0) {
        sqlite3_close(sql);
        return e;
    }
    *out = sql;
    return 0;
}

int res_check(const char *path, char *err, size_t errlen)
{
    sqlite3 *sql = NULL;
    int e = res_open_check(path, &sql, err, errlen);
    if (e == 0) {
        sqlite3_close(sql);
    }
    return e;
}

/* ---- Hashing ------------------------------------------------------------------------------- */

/* The canonical encoding, fed to SHA-256:
 *
 *   "p4p-results-hash 1\n"
 *   for each table:  "table <name>\n", one line per row, "end <row count>\n"
 *   a row:           values separated by ',' and ended by '\n'
 *   a value:         n (NULL) | i<decimal> | r<%.17g> | t<bytes>:<text> | b<bytes>:<blob>
 *
 * Text is length-prefixed, so no content can fake a separator. */
static const struct res_hash_table {
    const char *name;
    const char *sql;
} res_hash_tables[] = {
    {"run", "SELECT seed, sim_end_ns FROM run"},
    {"parameter", "SELECT key, value FROM parameter WHERE key <> 'topology.file'"
                  " ORDER BY key COLLATE BINARY"},
    {"node", "SELECT node, peer_id, degree, x, y FROM node ORDER BY node"},
    {"scalar", "SELECT node, name, value FROM scalar ORDER BY node, name COLLATE BINARY"},
    {"statistic", "SELECT name, count, mean, stddev, min, p50, p90, p99, max FROM statistic"
                  " ORDER BY name COLLATE BINARY"},
    {"series", "SELECT name, t_ns, value FROM series ORDER BY name COLLATE BINARY, t_ns"},
    {"updates", "SELECT update_id, msg_id, origin, created_ns, size FROM updates"
                " ORDER BY update_id"},
    {"delivery", "SELECT update_id, node, delivered_ns, hops FROM delivery"
                 " ORDER BY update_id, node"},
};

/* Batches the many small pieces of the encoding into few SHA-256 updates. */
struct res_hasher {
    crypto_hash_sha256_state sha;
    size_t len;
    unsigned char buf[8192];
};

static void res_hash_flush(struct res_hasher *h)
{
    crypto_hash_sha256_update(&h->sha, h->buf, h->len);
    h->len = 0;
}

static void res_hash_put(struct res_hasher *h, const void *data, size_t n)
{
    if (n > sizeof h->buf - h->len) {
        res_hash_flush(h);
        if (n > sizeof h->buf) {
            crypto_hash_sha256_update(&h->sha, data, n);
            return;
        }
    }
    memcpy(h->buf + h->len, data, n);
    h->len += n;
}

static void res_hash_str(struct res_hasher *h, const char *s)
{
    res_hash_put(h, s, strlen(s));
}

static void res_hash_value(struct res_hasher *h, sqlite3_stmt *st, int col)
{
    char tmp[48];
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
        snprintf(tmp, sizeof tmp, "i%" PRId64, (int64_t)sqlite3_column_int64(st, col));
        res_hash_str(h, tmp);
        break;
    case SQLITE_FLOAT:
        snprintf(tmp, sizeof tmp, "r%.17g", sqlite3_column_double(st, col));
        res_hash_str(h, tmp);
        break;
    case SQLITE_TEXT: {
        const unsigned char *text = sqlite3_column_text(st, col);
        int n = sqlite3_column_bytes(st, col);
        snprintf(tmp, sizeof tmp, "t%d:", n);
        res_hash_str(h, tmp);
        res_hash_put(h, text, (size_t)n);
        break;
    }
    case SQLITE_BLOB: {
        const void *blob = sqlite3_column_blob(st, col);
        int n = sqlite3_column_bytes(st, col);
        snprintf(tmp, sizeof tmp, "b%d:", n);
        res_hash_str(h, tmp);
        res_hash_put(h, blob, (size_t)n);
        break;
    }
    default:
        res_hash_str(h, "n");
        break;
    }
}

static int res_hash_table(struct res_hasher *h, sqlite3 *sql, const struct res_hash_table *t)
{
    char tmp[64];
    sqlite3_stmt *st = NULL;
    uint64_t rows = 0;
    int rc = sqlite3_prepare_v2(sql, t->sql, -1, &st, NULL);
    snprintf(tmp, sizeof tmp, "table %s\n", t->name);
    res_hash_str(h, tmp);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int cols = sqlite3_column_count(st);
        for (int c = 0; c < cols; c++) {
            if (c > 0) {
                res_hash_put(h, ",", 1);
            }
            res_hash_value(h, st, c);
        }
        res_hash_put(h, "\n", 1);
        rows++;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return res_read_code(rc);
    }
    snprintf(tmp, sizeof tmp, "end %" PRIu64 "\n", rows);
    res_hash_str(h, tmp);
    return 0;
}

int res_hash(const char *path, char out_hex[65])
{
    sqlite3 *sql = NULL;
    struct res_hasher *h = NULL;
    locale_t c_locale = (locale_t)0;
    locale_t old_locale;
    unsigned char digest[crypto_hash_sha256_BYTES];
    if (out_hex == NULL) {
        return P4P_EINVAL;
    }
    int err = res_open_check(path, &sql, NULL, 0);
    if (err != 0) {
        return err;
    }
    h = malloc(sizeof *h);
    /* %.17g must print '.' whatever locale the program chose; uselocale is per thread. */
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (h == NULL || c_locale == (locale_t)0) {
        err = P4P_ENOMEM;
        goto cleanup;
    }
    old_locale = uselocale(c_locale);
    crypto_hash_sha256_init(&h->sha);
    h->len = 0;
    res_hash_str(h, "p4p-results-hash 1\n");
    for (size_t i = 0; i < sizeof res_hash_tables / sizeof res_hash_tables[0] && err == 0; i++) {
        err = res_hash_table(h, sql, &res_hash_tables[i]);
    }
    uselocale(old_locale);
    if (err == 0) {
        res_hash_flush(h);
        crypto_hash_sha256_final(&h->sha, digest);
        sodium_bin2hex(out_hex, 65, digest, sizeof digest);
    }

cleanup:
    if (c_locale != (locale_t)0) {
        freelocale(c_locale);
    }
    free(h);
    sqlite3_close(sql);
    return err;
}
