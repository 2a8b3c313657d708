/*
 * storage_mem.h — the in-memory storage backend (see p4p/storage.h), for simulations of
 * thousands of nodes, each with its own store.
 *
 * Two objects. A "disk" (struct storage_mem) plays the device: it outlives handles, so the
 * simulator keeps it when a node crashes and opens a new handle at restart. A handle (struct
 * p4p_storage from storage_mem_open) is what the engine writes through. Opening starts a new
 * epoch; an older handle's writes and commit get P4P_EFENCED and change nothing. Closing a
 * handle is a process death: its open transaction is lost.
 *
 * No allocation per item:
 *
 *   log    one growing arena of records  [len u32][crc u32][data]  where the CRC-32C covers
 *          (index, len, data), and an array of record offsets by index (8 bytes a record);
 *   items  kv pairs and chunks in a second arena  [klen|kind u32][vlen u32][crc u32][key][val]
 *          found through one open-addressing hash table of (hash, offset) slots (linear
 *          probing, backward-shift deletion, 16 bytes a slot, at most 70% full).
 *
 * Writes apply in place and append only; an undo log (the journal) remembers what each write
 * replaced, so reads see the open transaction at no cost, commit drops the undo log, and
 * abort, close, a newer open or a failed commit replay it backwards. Space freed by deletes,
 * overwrites and truncation is reclaimed at commit once it exceeds half an arena (amortised
 * O(1) a byte); a long transaction holds its garbage until it commits. Every read (log_scan,
 * kv_get, chunk_get) verifies the checksum: a mismatch is P4P_ECORRUPT and counts in
 * stats.corrupt. written_bytes counts every byte put in an arena (headers, checksums, bytes
 * moved by compaction) and every undo entry.
 *
 * Memory: an idle store (nothing written) is the struct alone (272 bytes), and an emptied one
 * returns to that. A log record costs its data plus 16 bytes (8 header, 8 offset) plus arena
 * slack, at most an eighth once an arena passes 64 KiB: 10,000 records of 200 bytes take 27
 * bytes a record beyond the data. An item costs its key and value, a 12-byte header and 23-46
 * bytes of table. Limits: a log record or value up to 4 GiB - 1, a key up to 2 GiB - 1 (else
 * P4P_ETOOBIG). The table hashes keys with an unkeyed CRC: fine for ids that are hashes and
 * keys the engine makes, not for keys an adversary picks.
 *
 * Errors: after any error from a write call, the batch is spoiled: further writes return the
 * same error and commit returns it and discards the batch. Single-threaded: one disk and its
 * handles belong to one thread at a time.
 */
#ifndef P4P_STORAGE_MEM_H
#define P4P_STORAGE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "p4p/storage.h"

struct storage_mem;

/* A fresh empty disk in *out. 0 or P4P_ENOMEM. */
int storage_mem_create(struct storage_mem **out);

/* Frees the disk. Handles still open keep working on it; it is freed when the last closes. */
void storage_mem_destroy(struct storage_mem *d);

/* Fills *out with a new handle on the disk and starts a new epoch: a transaction still open
 * on an older handle is rolled back, and that handle is fenced. 0, P4P_EINVAL or P4P_ENOMEM.
 * The handle stays valid until storage_mem_close. */
int storage_mem_open(struct storage_mem *d, struct p4p_storage *out);

/* Drops the handle like a process death (its open transaction is lost) and frees it. */
void storage_mem_close(struct p4p_storage *st);

/* Test hook, a power cut: the `writes`-th write call from now on this handle (log_append,
 * log_truncate, kv_put, kv_del, chunk_put, chunk_del, commit) and every one after it fail
 * with P4P_EIO and change nothing. Only calls inside a batch of a current handle count (those
 * refused with P4P_EINVAL or P4P_EFENCED do not). 0 disarms a cut not yet reached. */
void storage_mem_fail_after(struct p4p_storage *st, uint64_t writes);

/* Test hook: flips one bit of byte `byte` (from 0) of the data of log record `record` (from
 * 1), as the device would. 0, or P4P_EINVAL when there is no such record or byte. */
int storage_mem_corrupt(struct storage_mem *d, uint64_t byte, uint64_t record);

/* Test hook: the same for byte `byte` of the value of a kv pair (is_chunk 0) or of a chunk
 * (is_chunk 1, key = its id). 0, P4P_ENOTFOUND, or P4P_EINVAL when there is no such byte. */
int storage_mem_corrupt_item(struct storage_mem *d, int is_chunk, const uint8_t *key, size_t klen,
                             uint64_t byte);

/* Heap bytes the disk holds, the struct included (open handles are 32 bytes each more). */
size_t storage_mem_memory(const struct storage_mem *d);

#endif /* P4P_STORAGE_MEM_H */
