/*
 * storage_sqlite.h — the SQLite storage backend (see engine/include/p4p/storage.h): one
 * database per node, a file in live mode, or an in-memory database for simulations.
 *
 * Layout. Four tables: meta (one row: the epoch), log (idx INTEGER PRIMARY KEY, data, crc),
 * kv (key, val, crc) and chunk (id, data, crc), the last two WITHOUT ROWID (a key is stored
 * once). Every row carries a CRC-32C over its address and its bytes — (idx, data), (key, val),
 * (id, data) — verified on every read, so a changed row, or one moved to another address, is
 * P4P_ECORRUPT (counted in stats.corrupt), never returned. Log indices run 1..n without a gap;
 * a gap is corruption too. The file carries PRAGMA application_id 0x50345053 ("P4PS"): another
 * SQLite database is refused rather than written into.
 *
 * Schema versions (PRAGMA user_version), applied in order at open, each step in a transaction
 * of its own: 1 the four tables; 2 meta.epoch, the write fence; 3 page checksums (below). A
 * file from a newer program is refused with a message saying so.
 *
 * Page checksums. Row checksums cannot see damage to SQLite's own structure — a flipped bit
 * in a b-tree page can make a present key unreachable (P4P_ENOTFOUND, which is wrong data).
 * So the file reserves 4 bytes at the end of every page, where the VFS shim keeps a CRC-32C of
 * the page and its number, written whenever a page goes into the database file and verified
 * whenever one is read from it (SQLITE_IOERR_DATA, mapped to P4P_ECORRUPT). PRAGMA quick_check
 * at open reads every page, so a damaged file is refused at open, saying which page failed.
 * Pages still in the WAL carry SQLite's frame checksums instead, checked when the WAL is
 * recovered; a checkpoint seals them on their way into the database file. The price: the file
 * must be written through this module's VFS only. Any other writer — including the sqlite3
 * shell, which checkpoints the WAL when it closes — leaves unsealed pages that read as damage;
 * inspect a store read-only (sqlite3 -readonly), and repair one a tool wrote with
 * opts.reseal_pages. Memory stores have no page checksums (nothing there flips bits).
 *
 * Transactions. begin() is BEGIN IMMEDIATE (it takes the write lock at once, so a commit never
 * fails for a lock), commit() is COMMIT, abort() is ROLLBACK. All statements are prepared once
 * at open. The write fence: open() increments meta.epoch in a transaction of its own and
 * remembers the value; begin() and commit() re-read it inside the IMMEDIATE transaction, and
 * on a handle a newer open has fenced off, writes return P4P_EFENCED and commit rolls back and
 * returns P4P_EFENCED, every time: nothing of that handle's is ever written again.
 *
 * Durability. A file is in WAL mode (journal_mode=WAL): a commit appends the changed pages to
 * the -wal file and syncs it; checkpoints copy them into the database later. synchronous=FULL
 * is the default, because a commit is our durability point: the engine acknowledges what
 * commit() accepted, to the application and to peers, so it must survive a power loss. With
 * NORMAL, SQLite in WAL mode does not sync at each commit (only at checkpoints): the database
 * stays consistent, but the last commits before a power loss may vanish — acknowledged data
 * lost. NORMAL is offered for simulations and batch tools, which can redo their work.
 *
 * Damaged files. A file that is not an SQLite database, is truncated or has flipped bits is
 * refused at open with a one-line message naming the file and the reason, or its damage shows
 * as P4P_ECORRUPT (or P4P_EIO) when read: never as different bytes. tests/unit/
 * test_storage_sqlite.c flips bits and truncates a file at thousands of positions to check it.
 * With check_on_open NONE the same holds, found at the first read of a damaged page instead.
 *
 * In memory. The path ":memory:" gives a private database that lives as long as its handle
 * (SQLite's "memdb" VFS; journal_mode=MEMORY, as WAL needs shared memory). A restart of the
 * node is simulated with storage_sqlite_crash(), which loses the open transaction and starts
 * a new epoch but keeps the committed data, as a process restart would with a file. The path
 * ":memory:NAME" gives an in-memory database shared by every handle of this process opened
 * with the same NAME, which lives while one of them is open: closing a handle and opening
 * another is then a restart exactly as with a file (fence included).
 *
 * A live older writer. SQLite lets one connection write at a time, so a newer open waits (up
 * to busy_timeout) while an older handle holds an open transaction, and then fails with
 * P4P_EIO. Across processes that is right: the new process waits for the old to die or
 * finish, then fences it. Within one process (tests, simulations), end the older handle's
 * batch first with storage_sqlite_preempt() or storage_sqlite_close(), as its death would.
 *
 * The VFS shim. Databases are opened through "p4p-count" (over the default VFS) or
 * "p4p-count-mem" (over memdb), registered once per process. It forwards everything to the
 * real VFS, seals and verifies pages (above), and adds the bytes of every xWrite on the
 * database, WAL and journal files to the handle's counter: stats.written_bytes is what SQLite
 * really wrote (WAL frames with their headers, checkpoint copies). stats.stored_bytes is
 * page_count * page_size plus the size of the WAL file.
 *
 * Errors. Every SQLite error is mapped to a P4P_E* code (corrupt/not a database ->
 * P4P_ECORRUPT, out of memory -> P4P_ENOMEM, too big -> P4P_ETOOBIG, anything else, e.g. I/O,
 * disk full, lock timeout -> P4P_EIO). A handle is used by one thread at a time.
 */
#ifndef P4P_STORAGE_SQLITE_H
#define P4P_STORAGE_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include "p4p/storage.h"

struct sqlite3;
struct storage_sqlite;

/* Newest schema version this code writes (PRAGMA user_version). */
#define STORAGE_SQLITE_SCHEMA_VERSION 3

enum storage_sqlite_check {
    STORAGE_SQLITE_CHECK_QUICK = 0, /* PRAGMA quick_check: reads every page (default) */
    STORAGE_SQLITE_CHECK_NONE = 1,  /* no check at open; checksums are still verified on read */
    STORAGE_SQLITE_CHECK_FULL = 2,  /* PRAGMA integrity_check: slower, adds cross-checks */
};

/* All-zero (or NULL) gives the defaults, which are the safe settings. */
struct storage_sqlite_opts {
    int synchronous_normal; /* 0: synchronous=FULL (default; see above why); 1: NORMAL */
    int check_on_open;      /* enum storage_sqlite_check */
    int must_exist;         /* refuse a missing, empty or too short file instead of creating
                               a store: for a restart, an empty file where a store was is
                               damage, not a new store */
    int busy_timeout_ms;    /* wait for another connection's lock; 0 = 5000 ms */
    int reseal_pages;       /* repair after a foreign writer: read pages unverified, rewrite
                               and seal them all (VACUUM); row checksums still apply */
};

/* Opens (creating if needed, unless must_exist) the store at `path`, a file name, ":memory:"
 * or ":memory:NAME", checks it (check_on_open), migrates its schema to
 * STORAGE_SQLITE_SCHEMA_VERSION and starts a new epoch (fencing off any older handle on the same
 * file). On failure returns P4P_EINVAL (bad argument), P4P_ENOMEM, P4P_EVERSION (a schema newer
 * than this code), P4P_ECORRUPT (damaged, not a database, or an SQLite database that is not a p4p
 * store) or P4P_EIO, and writes a one-line human message naming the path and the reason into `err`
 * (may be NULL). `*out` is written only on success. */
int storage_sqlite_open(const char *path, const struct storage_sqlite_opts *o,
                        struct storage_sqlite **out, char *err, size_t errcap);

/* Rolls back any open transaction, finalizes every statement, closes the database. NULL is
 * a no-op. A ":memory:" store's data is gone afterwards. */
void storage_sqlite_close(struct storage_sqlite *s);

/* The engine's view of the store; valid until storage_sqlite_close(). */
struct p4p_storage storage_sqlite_storage(struct storage_sqlite *s);

/* Crash injection: the `writes`-th write call from now (1 = the next one) fails with P4P_EIO,
 * and so does every write and commit after it, as after a power cut: the open transaction is
 * rolled back at that moment. Write calls are log_append, log_truncate, kv_put, kv_del,
 * chunk_put, chunk_del and commit. 0 disarms. Reads keep working (committed data). */
void storage_sqlite_fail_after(struct storage_sqlite *s, uint64_t writes);

/* Ends the handle's open transaction as the death of its process would: rolled back at
 * once, releasing SQLite's write lock; the batch's remaining writes and its commit return
 * P4P_EFENCED (the caller is about to open a newer handle) and write nothing. The handle
 * stays usable for reads and abort(); its later batches meet the fence as usual. */
void storage_sqlite_preempt(struct storage_sqlite *s);

/* A restart without losing the database (what closing and reopening a file does; needed for
 * ":memory:", which dies with its connection): rolls back the open transaction, clears an
 * injected failure, starts a new epoch (this handle is the current writer again), and resets
 * the counters in stats, which a new process would not have. 0 or a P4P_E* code. */
int storage_sqlite_crash(struct storage_sqlite *s);

/* Test hook: flips the lowest bit of byte `nth_byte` of log record `index`'s data with an SQL
 * UPDATE that leaves the stored checksum alone, so reads must report P4P_ECORRUPT. Runs in the
 * open transaction if there is one, else commits at once (bypassing the fence). 0, or
 * P4P_ENOTFOUND (no such record), P4P_EINVAL (nth_byte beyond the record), P4P_E* from SQLite. */
int storage_sqlite_corrupt_record(struct storage_sqlite *s, uint64_t index, uint64_t nth_byte);

/* Copies every WAL frame into the database file and truncates the WAL to zero bytes (PRAGMA
 * wal_checkpoint(TRUNCATE)); for backups and tests. 0 or a P4P_E* code. */
int storage_sqlite_checkpoint(struct storage_sqlite *s);

/* Size figures, read from SQLite now. */
struct storage_sqlite_size {
    uint64_t page_size;
    uint64_t page_count; /* pages in the database, WAL content included */
    uint64_t freelist_count;
    uint64_t wal_bytes;     /* size of the -wal file (0 in memory) */
    uint64_t written_bytes; /* bytes written through the VFS since open (or crash) */
    int64_t epoch;          /* this handle's epoch */
};
int storage_sqlite_size(struct storage_sqlite *s, struct storage_sqlite_size *out);

/* The underlying connection, for tests and tools that read PRAGMAs; owned by the handle.
 * Writing through it bypasses the row checksums and the fence (pages stay sealed). */
struct sqlite3 *storage_sqlite_db(struct storage_sqlite *s);

#endif /* P4P_STORAGE_SQLITE_H */
