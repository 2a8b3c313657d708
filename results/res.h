/*
 * res.h — the results of one run: a single SQLite file, its hash, and its plot.
 *
 * Every run (simulated or live) writes one SQLite database whose layout is results/schema.sql
 * (documented in results/SCHEMA.md). One file per run means parallel sweeps never contend for
 * a lock, and runs are merged by reading many files.
 *
 *   res_create(path)  -> path.tmp, schema, run row 'running', one big transaction begins
 *   res_param/res_node/res_scalar/res_stat/res_series/res_update/res_delivery/res_wall
 *   res_finish(status) -> status set, commit, fsync, rename path.tmp -> path
 *
 * Readers: res_check() (is this a results file we read?), res_open_check() (open it),
 * res_hash() (SHA-256 over the simulated results only, for same seed => same results),
 * res_plot() (one figure through gnuplot).
 *
 * Errors are 0 or a negative P4P_E* code (engine/include/p4p/p4p.h). Strings passed in are
 * borrowed for the duration of the call. Nothing here keeps global state; a res_db is used by
 * one thread at a time.
 */
#ifndef P4P_RES_H
#define P4P_RES_H

#include <stddef.h>
#include <stdint.h>

#define RES_APPLICATION_ID 0x50345031 /* 'P4P1', PRAGMA application_id of every results file */
#define RES_SCHEMA_VERSION 1          /* PRAGMA user_version this code writes and reads */

typedef struct res_db res_db;
struct sqlite3;

/* What the run row records. mode is "sim" or "live"; the other strings may be NULL (stored
 * as NULL). scenario_sha256 is the hex SHA-256 of the scenario file's bytes; config_json the
 * resolved configuration. */
struct res_run_info {
    const char *mode, *scenario_path, *scenario_sha256, *config_json, *tool_version, *git_commit;
    uint64_t seed;
};

/* Summary of a distribution; see res_summarize(). */
struct res_summary {
    uint64_t count;
    double mean, stddev, min, p50, p90, p99, max;
};

/* ---- Writing --------------------------------------------------------------------------------
 *
 * res_create writes to "<path>.tmp" (replacing a stale one), commits the schema and the run
 * row with status 'running', removes an existing file at path, and opens the one transaction
 * that holds all rows of the run. res_finish commits and renames the file to path, so a file
 * at path is always complete; a crashed run leaves only "<path>.tmp" (status 'running').
 * Returns 0 and *out, or P4P_EINVAL (bad argument), P4P_ENOMEM, P4P_EIO (cannot create). */
int res_create(const char *path, const struct res_run_info *run, res_db **out);

/* Row writers. Each returns 0, or:
 *   P4P_EINVAL     a bad argument (NULL or empty name, id not lowercase hex, a uint64 above
 *                  INT64_MAX, which SQLite cannot hold); nothing written, db still usable;
 *   P4P_EDUPLICATE a row with the same primary key exists; nothing written, db still usable;
 *   P4P_ETOOBIG    a string too long for SQLite; nothing written, db still usable;
 *   P4P_ENOMEM / P4P_EIO  the database failed (disk full, ...): every later call returns the
 *                  same code and res_finish fails; res_errmsg() tells what happened.
 * NaN values are stored as NULL. peer_id_hex may be NULL; xy is NULL or x,y in metres. */
int res_param(res_db *db, const char *key, const char *value);
int res_node(res_db *db, uint32_t node, const char *peer_id_hex, uint32_t degree,
             const double *xy /* NULL or [2] */);
int res_scalar(res_db *db, int64_t node /* -1 = network-wide */, const char *name, double value);
int res_stat(res_db *db, const char *name, const struct res_summary *s);
int res_series(res_db *db, const char *name, uint64_t t_ns, double value);
int res_update(res_db *db, uint64_t update_id, const char *msg_id_hex, uint32_t origin,
               uint64_t created_ns, uint32_t size);
int res_delivery(res_db *db, uint64_t update_id, uint32_t node, uint64_t delivered_ns,
                 uint32_t hops);
int res_wall(res_db *db, const char *name, double value);

/* The last database error in words ("" if none). Valid until the next call on db. */
const char *res_errmsg(const res_db *db);

/* Sets run.status ("ok" or "failed"), run.message (may be NULL) and run.sim_end_ns, commits,
 * closes, makes the file durable and renames it to path. Always releases db (invalid after),
 * whatever it returns. Returns 0, P4P_EINVAL (bad status or sim_end_ns; the run is aborted as
 * by res_abort), or the sticky error / P4P_EIO (nothing is left at path; "<path>.tmp" stays
 * only when the final fsync or rename failed). */
int res_finish(res_db *db, const char *status, const char *message, uint64_t sim_end_ns);

/* Closes without committing and removes "<path>.tmp" (error paths). NULL is a no-op. */
void res_abort(res_db *db);

/* ---- Reading ------------------------------------------------------------------------------ */

/* Sorts values in place (NaN last) and fills *out: count, mean, population standard deviation
 * (divides by n, so n = 1 gives 0), min, max and nearest-rank percentiles (p-th percentile =
 * the ceil(p/100 * n)-th smallest value). n = 0 gives all zeros. */
void res_summarize(double *values, size_t n, struct res_summary *out);

/* Checks that path is a p4p results file of a version we read: a regular SQLite file with
 * application_id RES_APPLICATION_ID, user_version RES_SCHEMA_VERSION, every table and column
 * the readers use, and exactly one run row. Returns 0, or P4P_ENOTFOUND / P4P_EIO (cannot
 * open), P4P_EMALFORMED (not SQLite, another application, missing table, corrupt),
 * P4P_EVERSION (another schema version), with a sentence naming the problem in err (err may
 * be NULL; it is always NUL-terminated when errlen > 0). */
int res_check(const char *path, char *err, size_t errlen);

/* res_check, then leaves the file open read-only in *out (close with sqlite3_close). The
 * connection distrusts the file's schema (SQLITE_DBCONFIG_DEFENSIVE, no trusted_schema). */
int res_open_check(const char *path, struct sqlite3 **out, char *err, size_t errlen);

/* SHA-256 (lowercase hex, NUL-terminated) over the simulated results: run.seed,
 * run.config_json and run.sim_end_ns, then the tables parameter, node, scalar, statistic,
 * series, updates and delivery, each read in primary-key order with a canonical, type-tagged
 * text encoding (REAL as %.17g in the C locale). Leaves out the wall table, run.mode, paths,
 * scenario_sha256, tool_version, git_commit, status and message. Same simulated results =>
 * same hash. Returns 0 or the codes of res_check (and P4P_ENOMEM). */
int res_hash(const char *path, char out_hex[65]);

/* Draws the run as one figure of three panels (delivery-latency CDF, coverage over time,
 * bytes sent per node) with gnuplot and results/plot.gp. format: "png" (pngcairo, else png),
 * "svg", "pdf" (pdfcairo) or "txt" (dumb terminal; out_path "-" writes to stdout). Panels
 * without data say "no data". Returns 0, or P4P_EINVAL (bad format or path),
 * P4P_ENOTFOUND (gnuplot not installed), P4P_EIO (gnuplot failed; its first error line is in
 * err), or the codes of res_check; err as for res_check. */
int res_plot(const char *db_path, const char *out_path, const char *format, char *err,
             size_t errlen);

#endif /* P4P_RES_H */
