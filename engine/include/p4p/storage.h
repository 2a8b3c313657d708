/*
 * storage.h — what the engine asks of durable storage. The engine calls it; the host provides
 * it (sans-I/O stays true: the engine never touches a file). Backends: storage/storage_mem.c
 * (in memory, for simulations) and storage/storage_sqlite.c (SQLite, for live mode and for
 * simulations that want it). Both pass one conformance suite (tests/unit/test_storage.c).
 *
 * Three stores behind one transaction:
 *   - an append-only operation log: records numbered 1, 2, 3... in append order;
 *   - a key-value store for indexes and metadata (byte keys, byte values);
 *   - a content-addressed chunk store (32-byte ids; the caller checks data against its id).
 *
 * Transactions and the durability point. Every write happens between begin() and commit().
 * commit() is the durability point: it returns 0 only once the whole batch would survive a
 * power loss; then, and only then, may the engine acknowledge it (to the application or to a
 * peer). abort() — or a crash, or a failed commit — discards the whole batch: all of it or
 * none of it is ever seen again. Reads see the open transaction's own writes.
 *
 * Integrity. Every stored item carries a checksum that reads verify: a corrupted or torn item
 * is reported as P4P_ECORRUPT (never returned as data). A backend may also refuse to open a
 * damaged store.
 *
 * Write fence. Opening a store starts a new epoch; a handle from an older epoch (a writer
 * that should be dead, e.g. the process before a restart) gets P4P_EFENCED from commit()
 * and writes nothing.
 *
 * Errors: 0 or a negative P4P_E* code. Any error from a write or commit leaves the handle
 * usable only for abort() and reads; the engine treats it as a crash of its node.
 */
#ifndef P4P_STORAGE_H
#define P4P_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#define P4P_CHUNK_ID_LEN 32

/* Called for each log record in order; return nonzero to stop the scan early. `rec` is valid
 * only during the call. */
typedef int (*p4p_log_fn)(void *arg, uint64_t index, const uint8_t *rec, size_t len);

/* Counters every backend keeps (bytes are what the backend itself writes, headers and
 * checksums included, so that written / logical is the write amplification). */
struct p4p_storage_stats {
    uint64_t commits;
    uint64_t aborts;
    uint64_t records;       /* log records appended (committed) */
    uint64_t logical_bytes; /* payload bytes the caller asked to store (committed) */
    uint64_t written_bytes; /* bytes the backend wrote to its medium */
    uint64_t stored_bytes;  /* bytes the store occupies now */
    uint64_t corrupt;       /* items that failed their checksum on read */
};

struct p4p_storage_ops {
    int (*begin)(void *ctx);
    int (*commit)(void *ctx);
    void (*abort)(void *ctx);

    /* Operation log. `index_out` (may be NULL) gets the new record's number. */
    int (*log_append)(void *ctx, const uint8_t *rec, size_t len, uint64_t *index_out);
    /* Records from `from` (1 = the first) to the end, in order. Returns 0, the callback's
     * nonzero value when it stopped the scan, or P4P_ECORRUPT at the first bad record
     * (*bad_index, when not NULL, gets its number). */
    int (*log_scan)(void *ctx, uint64_t from, p4p_log_fn fn, void *arg, uint64_t *bad_index);
    uint64_t (*log_count)(void *ctx);
    /* Keeps the first `count` records (repair after corruption); inside a transaction. */
    int (*log_truncate)(void *ctx, uint64_t count);

    /* Key-value. get: 0 and *vlen (the value is copied when it fits in `cap`, else
     * P4P_ETOOBIG with *vlen set), or P4P_ENOTFOUND. del of a missing key is 0. */
    int (*kv_put)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
    int (*kv_get)(void *ctx, const uint8_t *key, size_t klen, uint8_t *val, size_t cap,
                  size_t *vlen);
    int (*kv_del)(void *ctx, const uint8_t *key, size_t klen);

    /* Chunks by id. put of an id already present is 0 and stores nothing (deduplication).
     * get as kv_get. has: 1 present, 0 absent. */
    int (*chunk_put)(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN], const uint8_t *data,
                     size_t len);
    int (*chunk_get)(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN], uint8_t *buf, size_t cap,
                     size_t *len);
    int (*chunk_has)(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN]);
    int (*chunk_del)(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN]);

    void (*stats)(void *ctx, struct p4p_storage_stats *out);
};

/* A store as the engine sees it: the backend's operations and its handle. */
struct p4p_storage {
    const struct p4p_storage_ops *ops;
    void *ctx;
};

#endif /* P4P_STORAGE_H */
