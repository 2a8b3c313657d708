/*
 * storage_mem.c — the in-memory storage backend (see storage_mem.h for the layout).
 *
 * A transaction, from the disk's point of view:
 *
 *   begin      remember the arenas' fill marks and the log's record count (the "base")
 *   writes     append to an arena, then switch a pointer (a table slot, or a record offset
 *              that a truncation freed); an undo entry keeps the pointer's old value
 *   commit     forget the undo entries, add the batch to the stats, reclaim space
 *   rollback   replay the undo entries newest first, cut the arenas back to the base
 *
 * Because writes only ever append and committed bytes are never moved inside a transaction,
 * rollback needs no allocation and cannot fail. Compaction happens only at commit.
 */
#include "storage_mem.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "p4p/p4p.h"

#define REC_HDR     8u  /* len u32, crc u32 */
#define ITEM_HDR    12u /* klen | kind << 31 u32, vlen u32, crc u32 */
#define KIND_KV     0u
#define KIND_CHUNK  1u
#define KLEN_MAX    0x7fffffffu
#define RECLAIM_MIN 1024u /* dead bytes below this are not worth a compaction */

enum undo_kind {
    UNDO_LOG_OFF = 1, /* rec_off[a] was b */
    UNDO_ITEM = 2,    /* the key's item moved from a to b (positions, 0 = absent) */
};

struct mem_undo {
    uint64_t a, b;
    uint32_t kind;
};

struct mem_slot {
    uint64_t pos; /* item offset + 1; 0 = empty */
    uint32_t hash;
};

struct storage_mem {
    uint8_t *log; /* records [len][crc][data] */
    size_t log_used, log_cap, log_live;
    uint64_t *rec_off; /* offset of record i + 1 at [i] */
    size_t rec_count, rec_cap;

    uint8_t *heap; /* items [klen|kind][vlen][crc][key][value] */
    size_t heap_used, heap_cap, heap_dead;
    struct mem_slot *slots;
    size_t slot_cap, slot_count; /* slot_cap a power of two, or 0 */

    struct mem_undo *undo;
    size_t undo_count, undo_cap;
    int tx_open, tx_err; /* tx_err: first error of the open transaction */
    size_t base_rec_count, base_log_used, base_log_live, base_heap_used, base_heap_dead;
    uint64_t tx_records, tx_logical;

    struct p4p_storage_stats stats; /* stored_bytes filled on demand */
    uint64_t epoch;
    uint32_t handles;
    int orphan; /* destroy() called while handles were open */
};

struct mem_handle {
    struct storage_mem *d;
    uint64_t epoch;
    uint64_t fail_left; /* write calls until the simulated power cut; 0 = never */
    uint8_t in_tx, failed;
};

/* ---- Little helpers ------------------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Grows *buf (elements of `size` bytes) to hold at least `need`: by half while small, by an
 * eighth from 64 KiB on, which bounds the slack of a big store at 12.5% and still amortises
 * the copies (realloc of a block that large usually remaps pages rather than copying). */
static int reserve(void **buf, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap + (*cap * size >= 65536 ? *cap / 8 : *cap / 2);
    if (n < need) {
        n = need;
    }
    if (n < 256 / size) {
        n = 256 / size;
    }
    if (n > SIZE_MAX / size) {
        return P4P_ENOMEM;
    }
    void *p = realloc(*buf, n * size);
    if (!p) {
        return P4P_ENOMEM;
    }
    *buf = p;
    *cap = n;
    return 0;
}

/* Gives back capacity well beyond what is used (failure keeps the larger block). */
static void shrink(void **buf, size_t *cap, size_t used, size_t size)
{
    if (used == 0) {
        free(*buf);
        *buf = NULL;
        *cap = 0;
        return;
    }
    if (*cap / 2 > used + 256 / size) {
        size_t n = used + used / 8;
        void *p = realloc(*buf, n * size);
        if (p) {
            *buf = p;
            *cap = n;
        }
    }
}

static int push_undo(struct storage_mem *d, uint32_t kind, uint64_t a, uint64_t b)
{
    if (reserve((void **)&d->undo, &d->undo_cap, d->undo_count + 1, sizeof(*d->undo))) {
        return P4P_ENOMEM;
    }
    d->undo[d->undo_count++] = (struct mem_undo){a, b, kind};
    d->stats.written_bytes += sizeof(struct mem_undo);
    return 0;
}

/* ---- Log records ---------------------------------------------------------------------------- */

static uint32_t rec_crc(uint64_t index, const uint8_t *data, uint32_t len)
{
    uint8_t h[12];
    put32(h, (uint32_t)index);
    put32(h + 4, (uint32_t)(index >> 32));
    put32(h + 8, len);
    return crc32c(crc32c(0, h, sizeof(h)), data, len);
}

static size_t rec_size(const struct storage_mem *d, size_t i)
{
    return REC_HDR + get32(d->log + d->rec_off[i]);
}

/* Record i (from 0), checked: 0 with *data and *len, or P4P_ECORRUPT. */
static int rec_read(struct storage_mem *d, size_t i, const uint8_t **data, uint32_t *len)
{
    uint64_t off = d->rec_off[i];
    if (off > d->log_used || d->log_used - off < REC_HDR) {
        return P4P_ECORRUPT;
    }
    const uint8_t *p = d->log + off;
    uint32_t n = get32(p);
    if (n > d->log_used - off - REC_HDR || rec_crc(i + 1, p + REC_HDR, n) != get32(p + 4)) {
        return P4P_ECORRUPT;
    }
    *data = p + REC_HDR;
    *len = n;
    return 0;
}

/* Slides the live records down over the dead ones (offsets only ever increase). */
static void log_compact(struct storage_mem *d)
{
    size_t w = 0;
    for (size_t i = 0; i < d->rec_count; i++) {
        size_t off = d->rec_off[i], n = rec_size(d, i);
        if (off != w) {
            memmove(d->log + w, d->log + off, n);
            d->stats.written_bytes += n;
            d->rec_off[i] = w;
        }
        w += n;
    }
    d->log_used = w;
    d->log_live = w;
}

/* ---- Items and their hash table ------------------------------------------------------------- */

static uint32_t item_hash(uint32_t kind, const uint8_t *key, size_t klen)
{
    uint32_t h = crc32c(kind ? 0x9e3779b9u : 0, key, klen);
    h ^= h >> 16; /* murmur3 finaliser: spread the CRC over the low bits the table uses */
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static size_t item_size(const struct storage_mem *d, uint64_t pos)
{
    const uint8_t *p = d->heap + pos - 1;
    return ITEM_HDR + (get32(p) & KLEN_MAX) + get32(p + 4);
}

static uint32_t item_crc(const uint8_t *p, uint32_t klen, uint32_t vlen)
{
    uint32_t c = crc32c(0, p, 8);
    return crc32c(c, p + ITEM_HDR, (size_t)klen + vlen);
}

/* The slot holding (kind, key), or SIZE_MAX. */
static size_t slot_find(const struct storage_mem *d, uint32_t kind, const uint8_t *key, size_t klen,
                        uint32_t h)
{
    if (d->slot_cap == 0) {
        return SIZE_MAX;
    }
    size_t mask = d->slot_cap - 1;
    uint32_t tag = (uint32_t)klen | kind << 31;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const struct mem_slot *s = &d->slots[i];
        if (s->pos == 0) {
            return SIZE_MAX;
        }
        const uint8_t *p = d->heap + s->pos - 1;
        if (s->hash == h && get32(p) == tag && (klen == 0 || !memcmp(p + ITEM_HDR, key, klen))) {
            return i;
        }
    }
}

static void slot_insert(struct storage_mem *d, uint64_t pos, uint32_t h)
{
    size_t mask = d->slot_cap - 1, i = h & mask;
    while (d->slots[i].pos) {
        i = (i + 1) & mask;
    }
    d->slots[i] = (struct mem_slot){pos, h};
    d->slot_count++;
}

/* Backward-shift deletion: no tombstones, probe chains stay short. */
static void slot_remove(struct storage_mem *d, size_t i)
{
    size_t mask = d->slot_cap - 1;
    for (size_t j = (i + 1) & mask; d->slots[j].pos; j = (j + 1) & mask) {
        size_t k = d->slots[j].hash & mask; /* where slot j would like to be */
        int movable = i <= j ? (k <= i || k > j) : (k <= i && k > j);
        if (movable) {
            d->slots[i] = d->slots[j];
            i = j;
        }
    }
    d->slots[i].pos = 0;
    d->slot_count--;
}

static int slots_resize(struct storage_mem *d, size_t cap)
{
    struct mem_slot *old = d->slots;
    size_t old_cap = d->slot_cap;
    if (cap == 0) {
        free(old);
        d->slots = NULL;
        d->slot_cap = 0;
        return 0;
    }
    struct mem_slot *s = calloc(cap, sizeof(*s));
    if (!s) {
        return P4P_ENOMEM;
    }
    d->slots = s;
    d->slot_cap = cap;
    d->slot_count = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].pos) {
            slot_insert(d, old[i].pos, old[i].hash);
        }
    }
    free(old);
    return 0;
}

/* Room for one more slot at most 70% full. */
static int slots_reserve(struct storage_mem *d)
{
    if ((d->slot_count + 1) * 10 <= d->slot_cap * 7) {
        return 0;
    }
    if (d->slot_cap > SIZE_MAX / 2 / sizeof(struct mem_slot)) {
        return P4P_ENOMEM;
    }
    return slots_resize(d, d->slot_cap ? d->slot_cap * 2 : 16);
}

/* Walks the arena in order and slides every item its slot still points at down over the dead
 * ones. Moves never overtake the walk, so each header is read before anything overwrites it. */
static void heap_compact(struct storage_mem *d)
{
    size_t w = 0;
    for (size_t r = 0; r < d->heap_used;) {
        const uint8_t *p = d->heap + r;
        uint32_t tag = get32(p), klen = tag & KLEN_MAX;
        size_t n = item_size(d, r + 1);
        size_t i =
            slot_find(d, tag >> 31, p + ITEM_HDR, klen, item_hash(tag >> 31, p + ITEM_HDR, klen));
        if (i != SIZE_MAX && d->slots[i].pos == r + 1) {
            if (w != r) {
                memmove(d->heap + w, d->heap + r, n);
                d->stats.written_bytes += n;
                d->slots[i].pos = w + 1;
            }
            w += n;
        }
        r += n;
    }
    d->heap_used = w;
    d->heap_dead = 0;
}

/* ---- Transactions --------------------------------------------------------------------------- */

static void rollback(struct storage_mem *d)
{
    for (size_t u = d->undo_count; u-- > 0;) {
        const struct mem_undo *e = &d->undo[u];
        if (e->kind == UNDO_LOG_OFF) {
            d->rec_off[e->a] = e->b;
            continue;
        }
        uint64_t old = e->a, now = e->b;
        const uint8_t *p = d->heap + (now ? now : old) - 1;
        uint32_t tag = get32(p), klen = tag & KLEN_MAX;
        uint32_t h = item_hash(tag >> 31, p + ITEM_HDR, klen);
        size_t i = slot_find(d, tag >> 31, p + ITEM_HDR, klen, h);
        if (now == 0) {
            slot_insert(d, old, h); /* the table never shrinks in a transaction: room is there */
        } else if (i != SIZE_MAX && old) {
            d->slots[i].pos = old;
        } else if (i != SIZE_MAX) {
            slot_remove(d, i);
        }
    }
    d->undo_count = 0;
    d->rec_count = d->base_rec_count;
    d->log_used = d->base_log_used;
    d->log_live = d->base_log_live;
    d->heap_used = d->base_heap_used;
    d->heap_dead = d->base_heap_dead;
    d->tx_open = 0;
    d->tx_err = 0;
}

/* Outside a transaction: gives back memory well beyond what is used, down to nothing for an
 * empty store. */
static void trim(struct storage_mem *d)
{
    if (d->slot_count == 0) {
        d->heap_used = 0;
        d->heap_dead = 0;
        slots_resize(d, 0);
    } else if (d->slot_cap > 16 && d->slot_count * 8 < d->slot_cap) {
        slots_resize(d, d->slot_cap / 4); /* on failure the larger table stays */
    }
    shrink((void **)&d->log, &d->log_cap, d->log_used, 1);
    shrink((void **)&d->rec_off, &d->rec_cap, d->rec_count, sizeof(*d->rec_off));
    shrink((void **)&d->heap, &d->heap_cap, d->heap_used, 1);
    if (d->undo_cap > 64 || (d->rec_count == 0 && d->slot_count == 0)) {
        shrink((void **)&d->undo, &d->undo_cap, 0, sizeof(*d->undo));
    }
}

/* After a commit: drops the dead tail of the log, compacts arenas more than half dead. */
static void reclaim(struct storage_mem *d)
{
    if (d->rec_count == 0) {
        d->log_used = 0;
    } else {
        size_t last = d->rec_count - 1, end = d->rec_off[last] + rec_size(d, last);
        if (end < d->log_used) {
            d->log_used = end;
        }
    }
    size_t dead = d->log_used - d->log_live;
    if (dead >= RECLAIM_MIN && dead * 2 > d->log_used) {
        log_compact(d);
    }
    if (d->heap_dead >= RECLAIM_MIN && d->heap_dead * 2 > d->heap_used) {
        heap_compact(d);
    }
    trim(d);
}

static int is_current(const struct mem_handle *h)
{
    return h->epoch == h->d->epoch;
}

/* The simulated power cut: from the armed call on, every write fails. */
static int power_gate(struct mem_handle *h)
{
    if (!h->failed && h->fail_left && --h->fail_left == 0) {
        h->failed = 1;
    }
    return h->failed ? P4P_EIO : 0;
}

/* Every write call passes here: outside a transaction, fenced off, after a power cut or after
 * an earlier error of the batch it is refused. */
static int write_gate(struct mem_handle *h)
{
    if (!h->in_tx) {
        return P4P_EINVAL;
    }
    if (!is_current(h)) {
        return P4P_EFENCED;
    }
    int rc = power_gate(h);
    return rc ? rc : h->d->tx_err;
}

/* Records the first error of a batch: the batch can then only be aborted. */
static int tx_fail(struct mem_handle *h, int rc)
{
    if (rc && h->in_tx && is_current(h) && !h->d->tx_err) {
        h->d->tx_err = rc;
    }
    return rc;
}

static int mem_begin(void *ctx)
{
    struct mem_handle *h = ctx;
    struct storage_mem *d = h->d;
    if (h->in_tx) {
        return P4P_EINVAL;
    }
    h->in_tx = 1;
    if (!is_current(h)) {
        return 0; /* writes and commit will say P4P_EFENCED */
    }
    d->tx_open = 1;
    d->tx_err = 0;
    d->undo_count = 0;
    d->tx_records = 0;
    d->tx_logical = 0;
    d->base_rec_count = d->rec_count;
    d->base_log_used = d->log_used;
    d->base_log_live = d->log_live;
    d->base_heap_used = d->heap_used;
    d->base_heap_dead = d->heap_dead;
    return 0;
}

static int mem_commit(void *ctx)
{
    struct mem_handle *h = ctx;
    struct storage_mem *d = h->d;
    if (!h->in_tx) {
        return P4P_EINVAL;
    }
    h->in_tx = 0;
    if (!is_current(h)) {
        return P4P_EFENCED; /* it wrote nothing: every write was refused */
    }
    int rc = power_gate(h);
    if (rc == 0) {
        rc = d->tx_err;
    }
    if (rc) {
        rollback(d); /* a failed commit discards the batch */
        d->stats.aborts++;
        trim(d);
        return rc;
    }
    d->undo_count = 0;
    d->tx_open = 0;
    d->stats.commits++;
    d->stats.records += d->tx_records;
    d->stats.logical_bytes += d->tx_logical;
    reclaim(d);
    return 0;
}

static void mem_abort(void *ctx)
{
    struct mem_handle *h = ctx;
    if (!h->in_tx) {
        return;
    }
    h->in_tx = 0;
    if (is_current(h)) {
        rollback(h->d);
        h->d->stats.aborts++;
        trim(h->d);
    }
}

/* ---- Log operations ------------------------------------------------------------------------- */

static int log_append_(struct storage_mem *d, const uint8_t *rec, size_t len, uint64_t *index_out)
{
    if (!rec && len) {
        return P4P_EINVAL;
    }
    if (len > UINT32_MAX || len > SIZE_MAX - REC_HDR - d->log_used) {
        return P4P_ETOOBIG;
    }
    size_t i = d->rec_count, n = REC_HDR + len;
    if (reserve((void **)&d->log, &d->log_cap, d->log_used + n, 1) ||
        reserve((void **)&d->rec_off, &d->rec_cap, i + 1, sizeof(*d->rec_off))) {
        return P4P_ENOMEM;
    }
    if (i < d->base_rec_count && push_undo(d, UNDO_LOG_OFF, i, d->rec_off[i])) {
        return P4P_ENOMEM; /* the slot held a committed record, cut off by a truncate */
    }
    uint8_t *p = d->log + d->log_used;
    put32(p, (uint32_t)len);
    put32(p + 4, rec_crc(i + 1, rec, (uint32_t)len));
    if (len) {
        memcpy(p + REC_HDR, rec, len);
    }
    d->rec_off[i] = d->log_used;
    d->rec_count = i + 1;
    d->log_used += n;
    d->log_live += n;
    d->stats.written_bytes += n;
    d->tx_records++;
    d->tx_logical += len;
    if (index_out) {
        *index_out = i + 1;
    }
    return 0;
}

static int mem_log_append(void *ctx, const uint8_t *rec, size_t len, uint64_t *index_out)
{
    struct mem_handle *h = ctx;
    int rc = write_gate(h);
    if (rc == 0) {
        rc = log_append_(h->d, rec, len, index_out);
    }
    return tx_fail(h, rc);
}

static int mem_log_scan(void *ctx, uint64_t from, p4p_log_fn fn, void *arg, uint64_t *bad_index)
{
    struct mem_handle *h = ctx;
    struct storage_mem *d = h->d;
    if (from == 0 || !fn) {
        return P4P_EINVAL;
    }
    size_t end = d->rec_count; /* records the callback appends are not part of this scan */
    for (uint64_t i = from - 1; i < end && i < d->rec_count; i++) {
        const uint8_t *data;
        uint32_t len;
        if (rec_read(d, (size_t)i, &data, &len)) {
            d->stats.corrupt++;
            if (bad_index) {
                *bad_index = i + 1;
            }
            return P4P_ECORRUPT;
        }
        int rc = fn(arg, i + 1, data, len);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

static uint64_t mem_log_count(void *ctx)
{
    struct mem_handle *h = ctx;
    return h->d->rec_count;
}

static int mem_log_truncate(void *ctx, uint64_t count)
{
    struct mem_handle *h = ctx;
    struct storage_mem *d = h->d;
    int rc = write_gate(h);
    if (rc) {
        return tx_fail(h, rc);
    }
    /* The bytes stay where they are until commit: the batch may still be aborted. */
    while (d->rec_count > count) {
        d->log_live -= rec_size(d, d->rec_count - 1);
        d->rec_count--;
    }
    return 0;
}

/* ---- Items (kv pairs and chunks) ------------------------------------------------------------ */

/* Puts (kind, key) = val. With `keep`, an existing item stays as it is (chunk dedup). */
static int item_put(struct storage_mem *d, uint32_t kind, const uint8_t *key, size_t klen,
                    const uint8_t *val, size_t vlen, int keep)
{
    if ((!key && klen) || (!val && vlen)) {
        return P4P_EINVAL;
    }
    if (klen > KLEN_MAX || vlen > UINT32_MAX || klen + vlen > SIZE_MAX - ITEM_HDR - d->heap_used) {
        return P4P_ETOOBIG;
    }
    d->tx_logical += klen + vlen;
    uint32_t h = item_hash(kind, key, klen);
    size_t i = slot_find(d, kind, key, klen, h);
    if (i != SIZE_MAX && keep) {
        return 0;
    }
    size_t n = ITEM_HDR + klen + vlen;
    if (reserve((void **)&d->heap, &d->heap_cap, d->heap_used + n, 1) || slots_reserve(d) ||
        reserve((void **)&d->undo, &d->undo_cap, d->undo_count + 1, sizeof(*d->undo))) {
        d->tx_logical -= klen + vlen;
        return P4P_ENOMEM;
    }
    i = slot_find(d, kind, key, klen, h); /* the table may have been rebuilt */
    uint8_t *p = d->heap + d->heap_used;
    put32(p, (uint32_t)klen | kind << 31);
    put32(p + 4, (uint32_t)vlen);
    if (klen) {
        memcpy(p + ITEM_HDR, key, klen);
    }
    if (vlen) {
        memcpy(p + ITEM_HDR + klen, val, vlen);
    }
    put32(p + 8, item_crc(p, (uint32_t)klen, (uint32_t)vlen));
    uint64_t pos = d->heap_used + 1, old = 0;
    d->heap_used += n;
    d->stats.written_bytes += n;
    if (i != SIZE_MAX) {
        old = d->slots[i].pos;
        d->heap_dead += item_size(d, old);
        d->slots[i].pos = pos;
    } else {
        slot_insert(d, pos, h);
    }
    return push_undo(d, UNDO_ITEM, old, pos); /* cannot fail: reserved above */
}

static int item_get(struct storage_mem *d, uint32_t kind, const uint8_t *key, size_t klen,
                    uint8_t *val, size_t cap, size_t *vlen)
{
    if ((!key && klen) || (!val && cap)) {
        return P4P_EINVAL;
    }
    size_t i = slot_find(d, kind, key, klen, item_hash(kind, key, klen));
    if (i == SIZE_MAX) {
        return P4P_ENOTFOUND;
    }
    const uint8_t *p = d->heap + d->slots[i].pos - 1;
    uint32_t kl = get32(p) & KLEN_MAX, vl = get32(p + 4);
    if (item_crc(p, kl, vl) != get32(p + 8)) {
        d->stats.corrupt++;
        return P4P_ECORRUPT;
    }
    if (vlen) {
        *vlen = vl;
    }
    if (vl > cap) {
        return P4P_ETOOBIG;
    }
    if (vl) {
        memcpy(val, p + ITEM_HDR + kl, vl);
    }
    return 0;
}

static int item_del(struct storage_mem *d, uint32_t kind, const uint8_t *key, size_t klen)
{
    if (!key && klen) {
        return P4P_EINVAL;
    }
    size_t i = slot_find(d, kind, key, klen, item_hash(kind, key, klen));
    if (i == SIZE_MAX) {
        return 0;
    }
    uint64_t old = d->slots[i].pos;
    if (push_undo(d, UNDO_ITEM, old, 0)) {
        return P4P_ENOMEM;
    }
    d->heap_dead += item_size(d, old);
    slot_remove(d, i);
    return 0;
}

static int mem_kv_put(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct mem_handle *h = ctx;
    int rc = write_gate(h);
    if (rc == 0) {
        rc = item_put(h->d, KIND_KV, key, klen, val, vlen, 0);
    }
    return tx_fail(h, rc);
}

static int mem_kv_get(void *ctx, const uint8_t *key, size_t klen, uint8_t *val, size_t cap,
                      size_t *vlen)
{
    struct mem_handle *h = ctx;
    return item_get(h->d, KIND_KV, key, klen, val, cap, vlen);
}

static int mem_kv_del(void *ctx, const uint8_t *key, size_t klen)
{
    struct mem_handle *h = ctx;
    int rc = write_gate(h);
    if (rc == 0) {
        rc = item_del(h->d, KIND_KV, key, klen);
    }
    return tx_fail(h, rc);
}

static int mem_chunk_put(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN], const uint8_t *data,
                         size_t len)
{
    struct mem_handle *h = ctx;
    int rc = write_gate(h);
    if (rc == 0) {
        rc = id ? item_put(h->d, KIND_CHUNK, id, P4P_CHUNK_ID_LEN, data, len, 1) : P4P_EINVAL;
    }
    return tx_fail(h, rc);
}

static int mem_chunk_get(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN], uint8_t *buf, size_t cap,
                         size_t *len)
{
    struct mem_handle *h = ctx;
    if (!id) {
        return P4P_EINVAL;
    }
    return item_get(h->d, KIND_CHUNK, id, P4P_CHUNK_ID_LEN, buf, cap, len);
}

static int mem_chunk_has(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN])
{
    struct mem_handle *h = ctx;
    if (!id) {
        return 0;
    }
    uint32_t hh = item_hash(KIND_CHUNK, id, P4P_CHUNK_ID_LEN);
    return slot_find(h->d, KIND_CHUNK, id, P4P_CHUNK_ID_LEN, hh) != SIZE_MAX;
}

static int mem_chunk_del(void *ctx, const uint8_t id[P4P_CHUNK_ID_LEN])
{
    struct mem_handle *h = ctx;
    int rc = write_gate(h);
    if (rc == 0) {
        rc = id ? item_del(h->d, KIND_CHUNK, id, P4P_CHUNK_ID_LEN) : P4P_EINVAL;
    }
    return tx_fail(h, rc);
}

static void mem_stats(void *ctx, struct p4p_storage_stats *out)
{
    struct mem_handle *h = ctx;
    *out = h->d->stats;
    out->stored_bytes = h->d->log_used + h->d->heap_used;
}

static const struct p4p_storage_ops mem_ops = {
    .begin = mem_begin,
    .commit = mem_commit,
    .abort = mem_abort,
    .log_append = mem_log_append,
    .log_scan = mem_log_scan,
    .log_count = mem_log_count,
    .log_truncate = mem_log_truncate,
    .kv_put = mem_kv_put,
    .kv_get = mem_kv_get,
    .kv_del = mem_kv_del,
    .chunk_put = mem_chunk_put,
    .chunk_get = mem_chunk_get,
    .chunk_has = mem_chunk_has,
    .chunk_del = mem_chunk_del,
    .stats = mem_stats,
};

/* ---- Disks and handles ---------------------------------------------------------------------- */

int storage_mem_create(struct storage_mem **out)
{
    if (!out) {
        return P4P_EINVAL;
    }
    struct storage_mem *d = calloc(1, sizeof(*d));
    if (!d) {
        return P4P_ENOMEM;
    }
    *out = d;
    return 0;
}

static void disk_free(struct storage_mem *d)
{
    free(d->log);
    free(d->rec_off);
    free(d->heap);
    free(d->slots);
    free(d->undo);
    free(d);
}

void storage_mem_destroy(struct storage_mem *d)
{
    if (!d) {
        return;
    }
    if (d->handles) {
        d->orphan = 1;
        return;
    }
    disk_free(d);
}

int storage_mem_open(struct storage_mem *d, struct p4p_storage *out)
{
    if (!d || !out || d->orphan) {
        return P4P_EINVAL;
    }
    struct mem_handle *h = calloc(1, sizeof(*h));
    if (!h) {
        return P4P_ENOMEM;
    }
    if (d->tx_open) {
        rollback(d); /* the older writer's batch dies with its epoch */
        trim(d);
    }
    h->d = d;
    h->epoch = ++d->epoch;
    d->handles++;
    out->ops = &mem_ops;
    out->ctx = h;
    return 0;
}

void storage_mem_close(struct p4p_storage *st)
{
    if (!st || !st->ctx) {
        return;
    }
    struct mem_handle *h = st->ctx;
    struct storage_mem *d = h->d;
    if (h->in_tx && is_current(h)) {
        rollback(d);
        trim(d);
    }
    free(h);
    st->ops = NULL;
    st->ctx = NULL;
    if (--d->handles == 0 && d->orphan) {
        disk_free(d);
    }
}

void storage_mem_fail_after(struct p4p_storage *st, uint64_t writes)
{
    if (st && st->ctx) {
        struct mem_handle *h = st->ctx;
        h->fail_left = writes;
    }
}

int storage_mem_corrupt(struct storage_mem *d, uint64_t byte, uint64_t record)
{
    if (!d || record == 0 || record > d->rec_count) {
        return P4P_EINVAL;
    }
    uint8_t *p = d->log + d->rec_off[record - 1];
    if (byte >= get32(p)) {
        return P4P_EINVAL;
    }
    p[REC_HDR + byte] ^= (uint8_t)(1u << (byte % 8));
    return 0;
}

int storage_mem_corrupt_item(struct storage_mem *d, int is_chunk, const uint8_t *key, size_t klen,
                             uint64_t byte)
{
    if (!d || (!key && klen) || (is_chunk && klen != P4P_CHUNK_ID_LEN) || klen > KLEN_MAX) {
        return P4P_EINVAL;
    }
    uint32_t kind = is_chunk ? KIND_CHUNK : KIND_KV;
    size_t i = slot_find(d, kind, key, klen, item_hash(kind, key, klen));
    if (i == SIZE_MAX) {
        return P4P_ENOTFOUND;
    }
    uint8_t *p = d->heap + d->slots[i].pos - 1;
    if (byte >= get32(p + 4)) {
        return P4P_EINVAL;
    }
    p[ITEM_HDR + klen + byte] ^= (uint8_t)(1u << (byte % 8));
    return 0;
}

size_t storage_mem_memory(const struct storage_mem *d)
{
    if (!d) {
        return 0;
    }
    return sizeof(*d) + d->log_cap + d->rec_cap * sizeof(*d->rec_off) + d->heap_cap +
           d->slot_cap * sizeof(*d->slots) + d->undo_cap * sizeof(*d->undo);
}
