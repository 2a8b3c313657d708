/*
 * trust.c — the bounded TOFU trust store (see trust.h).
 *
 * Layout: one block allocated at create time holds
 *
 *   entries[cap]          dense array of bindings, entries[0..count) in use
 *   by_name[slot_cap]     open addressing on SipHash(name):    entry index + 1, 0 = empty
 *   by_id[slot_cap]       open addressing on SipHash(peer ID): entry index + 1, 0 = empty
 *
 * with slot_cap the power of two at least 2 * cap, so probe runs stay short and always end
 * at an empty slot. Several entries may hold one key (one per name), so by_id has duplicate
 * keys; lookups by ID walk the whole run. Removing an entry shifts the following slots of
 * each run back (no tombstones) and moves the last entry into the hole, re-pointing its two
 * slots, so the array stays dense.
 */
#include "trust.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cbor.h"
#include "p4p/p4p.h"

#define TRUST_FORMAT_VERSION 1

struct slot_entry {
    struct trust_entry e;
    uint64_t name_hash;
    uint64_t id_hash;
};

struct trust_store {
    void *block;
    struct slot_entry *entries;
    uint32_t *by_name;
    uint32_t *by_id;
    uint32_t cap, count, mask;
    unsigned flags;
    uint8_t key[crypto_shorthash_KEYBYTES];
    struct trust_stats stats;
};

/* ---- Hashing and the two indexes ----------------------------------------------------------- */

static uint64_t hash_bytes(const trust_store *s, const uint8_t *p, size_t n)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v;

    crypto_shorthash(h, p, n, s->key);
    memcpy(&v, h, sizeof v);
    return v;
}

static uint64_t slot_hash(const struct slot_entry *e, int by_id)
{
    return by_id ? e->id_hash : e->name_hash;
}

static int64_t find_name(const trust_store *s, const uint8_t *name, size_t len, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & s->mask;; i = (i + 1) & s->mask) {
        uint32_t v = s->by_name[i];
        const struct slot_entry *e;
        if (v == 0) {
            return -1;
        }
        e = &s->entries[v - 1];
        if (e->name_hash == h && e->e.name_len == len && memcmp(e->e.name, name, len) == 0) {
            return v - 1;
        }
    }
}

/* The first entry holding this peer ID at or after probe position *pos, or -1; *pos moves past
 * it so that a loop visits every entry with the ID. */
static int64_t next_with_id(const trust_store *s, const struct peerid *id, uint64_t h,
                            uint32_t *pos)
{
    for (uint32_t i = *pos;; i = (i + 1) & s->mask) {
        uint32_t v = s->by_id[i];
        const struct slot_entry *e;
        if (v == 0) {
            *pos = i;
            return -1;
        }
        e = &s->entries[v - 1];
        if (e->id_hash == h && peerid_equal(&e->e.id, id)) {
            *pos = (i + 1) & s->mask;
            return v - 1;
        }
    }
}

static void index_insert(uint32_t *table, uint32_t mask, uint64_t h, uint32_t value)
{
    uint32_t i = (uint32_t)h & mask;

    while (table[i] != 0) {
        i = (i + 1) & mask;
    }
    table[i] = value;
}

/* Position of `value` in its probe run starting at h. The value must be present. */
static uint32_t index_find(const uint32_t *table, uint32_t mask, uint64_t h, uint32_t value)
{
    uint32_t i = (uint32_t)h & mask;

    while (table[i] != value) {
        i = (i + 1) & mask;
    }
    return i;
}

/* Empties slot i, moving back later members of the run that may live there. */
static void index_delete(trust_store *s, int by_id, uint32_t i)
{
    uint32_t *table = by_id ? s->by_id : s->by_name;
    uint32_t j = i;

    for (;;) {
        uint32_t home;
        j = (j + 1) & s->mask;
        if (table[j] == 0) {
            break;
        }
        home = (uint32_t)slot_hash(&s->entries[table[j] - 1], by_id) & s->mask;
        /* The entry at j may move to i unless its home lies cyclically in (i, j]. */
        if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
            table[i] = table[j];
            i = j;
        }
    }
    table[i] = 0;
}

/* ---- Entries ------------------------------------------------------------------------------- */

static void remove_entry(trust_store *s, uint32_t idx)
{
    struct slot_entry *e = &s->entries[idx];
    uint32_t last = s->count - 1;

    index_delete(s, 0, index_find(s->by_name, s->mask, e->name_hash, idx + 1));
    index_delete(s, 1, index_find(s->by_id, s->mask, e->id_hash, idx + 1));
    if (idx != last) {
        struct slot_entry *m = &s->entries[last];
        s->by_name[index_find(s->by_name, s->mask, m->name_hash, last + 1)] = idx + 1;
        s->by_id[index_find(s->by_id, s->mask, m->id_hash, last + 1)] = idx + 1;
        *e = *m;
    }
    s->count--;
}

/* Drops the TOFU entry seen least recently; 0, or P4P_EFULL when there is none. */
static int evict_one(trust_store *s)
{
    int64_t victim = -1;

    for (uint32_t i = 0; i < s->count; i++) {
        const struct trust_entry *e = &s->entries[i].e;
        if (e->state == TRUST_TOFU &&
            (victim < 0 || e->last_seen_ns < s->entries[victim].e.last_seen_ns)) {
            victim = i;
        }
    }
    if (victim < 0) {
        return P4P_EFULL;
    }
    remove_entry(s, (uint32_t)victim);
    s->stats.evicted++;
    return 0;
}

/* Appends a binding (the name must not be present), making room if allowed. Returns the new
 * index, or P4P_EFULL. */
static int64_t add_entry(trust_store *s, const uint8_t *name, size_t len, const uint8_t pk[32],
                         enum trust_state state, uint64_t now)
{
    struct slot_entry *e;

    if (s->count == s->cap) {
        if (!(s->flags & TRUST_EVICT_TOFU) || evict_one(s) != 0) {
            return P4P_EFULL;
        }
    }
    e = &s->entries[s->count];
    memset(e, 0, sizeof *e);
    memcpy(e->e.name, name, len);
    e->e.name_len = len;
    memcpy(e->e.pk, pk, 32);
    peerid_from_pk(&e->e.id, pk);
    e->e.state = state;
    e->e.first_seen_ns = now;
    e->e.last_seen_ns = now;
    e->name_hash = hash_bytes(s, name, len);
    e->id_hash = hash_bytes(s, e->e.id.hash, PEERID_HASH_LEN);
    index_insert(s->by_name, s->mask, e->name_hash, s->count + 1);
    index_insert(s->by_id, s->mask, e->id_hash, s->count + 1);
    return s->count++;
}

/* An entry holding a revoked copy of this ID, or -1. All entries of a revoked key are revoked,
 * so the first one found answers. */
static int64_t find_revoked(const trust_store *s, const struct peerid *id)
{
    uint64_t h = hash_bytes(s, id->hash, PEERID_HASH_LEN);
    uint32_t pos = (uint32_t)h & s->mask;
    int64_t i = next_with_id(s, id, h, &pos);

    return i >= 0 && s->entries[i].e.state == TRUST_REVOKED ? i : -1;
}

static int name_ok(const uint8_t *name, size_t len)
{
    return name != NULL && len >= 1 && len <= TRUST_NAME_MAX;
}

/* A name may be bound to the key with this ID: 1..TRUST_NAME_MAX bytes, and if it is some
 * key's binary peer ID (a key-only name), this key's. Reserving key-only names keeps "the
 * key-only entry of K" unambiguous. */
static int name_fits(const uint8_t *name, size_t len, const struct peerid *id)
{
    struct peerid other;

    if (!name_ok(name, len)) {
        return 0;
    }
    return peerid_from_bytes(name, len, &other) != 0 || peerid_equal(&other, id);
}

/* Turns (name, name_len) into the name the store uses: name_len 0 means the key's binary
 * peer ID, written into `keyname`. 0 or P4P_EINVAL. */
static int resolve_name(const uint8_t **name, size_t *len, const struct peerid *id,
                        uint8_t keyname[PEERID_BIN_LEN])
{
    if (*len == 0) {
        peerid_to_bytes(id, keyname);
        *name = keyname;
        *len = PEERID_BIN_LEN;
        return 0;
    }
    return name_fits(*name, *len, id) ? 0 : P4P_EINVAL;
}

/* ---- Create, destroy ----------------------------------------------------------------------- */

/* Allocates the block of a store with s->cap and s->mask set. 0 or P4P_ENOMEM. */
static int alloc_block(trust_store *s)
{
    size_t slots = (size_t)s->mask + 1;
    size_t ebytes = (size_t)s->cap * sizeof(struct slot_entry);
    uint8_t *block;

    /* cap <= TRUST_CAP_MAX = 2^20 keeps this under 2^28 bytes: no overflow, even in 32 bits. */
    block = calloc(1, ebytes + 2 * slots * sizeof(uint32_t));
    if (block == NULL) {
        return P4P_ENOMEM;
    }
    s->block = block;
    s->entries = (struct slot_entry *)(void *)block;
    s->by_name = (uint32_t *)(void *)(block + ebytes);
    s->by_id = s->by_name + slots;
    s->count = 0;
    return 0;
}

int trust_create(trust_store **out, uint32_t cap, unsigned flags, const uint8_t *hash_key)
{
    trust_store *s;
    uint32_t slots = 1;

    if (out == NULL || cap == 0 || cap > TRUST_CAP_MAX || (flags & ~TRUST_EVICT_TOFU) != 0) {
        return P4P_EINVAL;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        return P4P_ENOMEM;
    }
    while (slots < 2 * cap) {
        slots <<= 1;
    }
    s->cap = cap;
    s->mask = slots - 1;
    s->flags = flags;
    if (hash_key != NULL) {
        memcpy(s->key, hash_key, sizeof s->key);
    }
    if (alloc_block(s) != 0) {
        free(s);
        return P4P_ENOMEM;
    }
    *out = s;
    return 0;
}

void trust_destroy(trust_store *s)
{
    if (s != NULL) {
        free(s->block);
        free(s);
    }
}

/* ---- Queries and changes ------------------------------------------------------------------- */

int trust_check(trust_store *s, uint64_t now, const uint8_t *name, size_t name_len,
                const uint8_t pk[32], struct trust_entry *known)
{
    uint8_t keyname[PEERID_BIN_LEN];
    struct peerid id;
    int64_t idx, rev;
    int outcome;

    peerid_from_pk(&id, pk);
    if (resolve_name(&name, &name_len, &id, keyname) != 0) {
        return P4P_EINVAL;
    }
    idx = find_name(s, name, name_len, hash_bytes(s, name, name_len));
    rev = find_revoked(s, &id);
    if (rev >= 0) {
        outcome = TRUST_REFUSE_REVOKED;
        idx = rev;
    } else if (idx >= 0) {
        struct trust_entry *e = &s->entries[idx].e;
        if (memcmp(e->pk, pk, 32) == 0) {
            outcome = TRUST_ACCEPT_KNOWN;
            if (now > e->last_seen_ns) {
                e->last_seen_ns = now;
            }
        } else {
            outcome = TRUST_REFUSE_CHANGED_KEY;
        }
    } else {
        idx = -1; /* nothing to report */
        outcome = add_entry(s, name, name_len, pk, TRUST_TOFU, now) >= 0 ? TRUST_ACCEPT_NEW
                                                                         : TRUST_REFUSE_FULL;
    }
    if (known != NULL && idx >= 0) {
        *known = s->entries[idx].e;
    }
    s->stats.outcome[outcome]++;
    return outcome;
}

/* Frees the name of entry idx so that trust_pin() can bind it to another key. A TOFU or pinned
 * entry is removed. A revoked one may be the last record of its key's revocation; then it is
 * kept, renamed to the key-only name, which costs a free entry: checked first, so that
 * nothing changes on P4P_EFULL. */
static int unbind(trust_store *s, uint32_t idx)
{
    struct slot_entry *e = &s->entries[idx];
    uint8_t keyname[PEERID_BIN_LEN];
    uint64_t h = e->id_hash;
    uint32_t pos = (uint32_t)h & s->mask;
    int holders = 0;

    if (e->e.state != TRUST_REVOKED) {
        remove_entry(s, idx);
        return 0;
    }
    while (next_with_id(s, &e->e.id, h, &pos) >= 0) {
        holders++;
    }
    if (holders > 1) {
        remove_entry(s, idx);
        return 0;
    }
    if (s->count == s->cap) {
        int evictable = 0;
        for (uint32_t i = 0; i < s->count && !evictable; i++) {
            evictable = s->entries[i].e.state == TRUST_TOFU;
        }
        if (!(s->flags & TRUST_EVICT_TOFU) || !evictable) {
            return P4P_EFULL;
        }
    }
    /* The key-only name is free: only an entry with this key may hold it (name_fits). */
    peerid_to_bytes(&e->e.id, keyname);
    index_delete(s, 0, index_find(s->by_name, s->mask, e->name_hash, idx + 1));
    memcpy(e->e.name, keyname, sizeof keyname);
    e->e.name_len = sizeof keyname;
    e->name_hash = hash_bytes(s, keyname, sizeof keyname);
    index_insert(s->by_name, s->mask, e->name_hash, idx + 1);
    return 0;
}

int trust_pin(trust_store *s, uint64_t now, const uint8_t *name, size_t name_len,
              const uint8_t pk[32])
{
    uint8_t keyname[PEERID_BIN_LEN];
    struct peerid id;
    int64_t idx;

    peerid_from_pk(&id, pk);
    if (resolve_name(&name, &name_len, &id, keyname) != 0 || find_revoked(s, &id) >= 0) {
        return P4P_EINVAL;
    }
    idx = find_name(s, name, name_len, hash_bytes(s, name, name_len));
    if (idx >= 0 && memcmp(s->entries[idx].e.pk, pk, 32) == 0) {
        s->entries[idx].e.state = TRUST_PINNED;
        return 0;
    }
    if (idx >= 0) {
        /* Rebinding to another key: the entry's ID changes, so it is replaced whole. */
        int rc = unbind(s, (uint32_t)idx);
        if (rc != 0) {
            return rc;
        }
    }
    return add_entry(s, name, name_len, pk, TRUST_PINNED, now) >= 0 ? 0 : P4P_EFULL;
}

int trust_unpin(trust_store *s, const uint8_t *name, size_t name_len)
{
    int64_t idx;

    if (!name_ok(name, name_len)) {
        return P4P_EINVAL;
    }
    idx = find_name(s, name, name_len, hash_bytes(s, name, name_len));
    if (idx < 0) {
        return P4P_ENOTFOUND;
    }
    if (s->entries[idx].e.state == TRUST_REVOKED) {
        return P4P_EINVAL;
    }
    s->entries[idx].e.state = TRUST_TOFU;
    return 0;
}

int trust_revoke(trust_store *s, uint64_t now, const uint8_t pk[32])
{
    uint8_t keyname[PEERID_BIN_LEN];
    struct peerid id;
    uint64_t h;
    uint32_t pos;
    int64_t i;
    int found = 0;

    peerid_from_pk(&id, pk);
    h = hash_bytes(s, id.hash, PEERID_HASH_LEN);
    pos = (uint32_t)h & s->mask;
    while ((i = next_with_id(s, &id, h, &pos)) >= 0) {
        s->entries[i].e.state = TRUST_REVOKED;
        found = 1;
    }
    if (found) {
        return 0;
    }
    peerid_to_bytes(&id, keyname);
    return add_entry(s, keyname, sizeof keyname, pk, TRUST_REVOKED, now) >= 0 ? 0 : P4P_EFULL;
}

int trust_forget(trust_store *s, const uint8_t *name, size_t name_len)
{
    int64_t idx;

    if (!name_ok(name, name_len)) {
        return P4P_EINVAL;
    }
    idx = find_name(s, name, name_len, hash_bytes(s, name, name_len));
    if (idx < 0) {
        return P4P_ENOTFOUND;
    }
    if (s->entries[idx].e.state != TRUST_TOFU) {
        return P4P_EINVAL;
    }
    remove_entry(s, (uint32_t)idx);
    return 0;
}

int trust_lookup(const trust_store *s, const uint8_t *name, size_t name_len,
                 struct trust_entry *out)
{
    int64_t idx;

    if (!name_ok(name, name_len)) {
        return P4P_ENOTFOUND;
    }
    idx = find_name(s, name, name_len, hash_bytes(s, name, name_len));
    if (idx < 0) {
        return P4P_ENOTFOUND;
    }
    *out = s->entries[idx].e;
    return 0;
}

int trust_is_revoked(const trust_store *s, const uint8_t pk[32])
{
    struct peerid id;

    peerid_from_pk(&id, pk);
    return find_revoked(s, &id) >= 0;
}

uint32_t trust_count(const trust_store *s)
{
    return s->count;
}

uint32_t trust_capacity(const trust_store *s)
{
    return s->cap;
}

int trust_entry_at(const trust_store *s, uint32_t i, struct trust_entry *out)
{
    if (i >= s->count) {
        return P4P_ENOTFOUND;
    }
    *out = s->entries[i].e;
    return 0;
}

void trust_get_stats(const trust_store *s, struct trust_stats *out)
{
    *out = s->stats;
}

size_t trust_memory(const trust_store *s)
{
    return sizeof *s + (size_t)s->cap * sizeof(struct slot_entry) +
           2 * ((size_t)s->mask + 1) * sizeof(uint32_t);
}

/* ---- Persistence --------------------------------------------------------------------------- */

/* Bytewise order of names, a proper prefix first. */
static int name_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);

    if (r != 0) {
        return r;
    }
    return (an > bn) - (an < bn);
}

static int entry_ptr_cmp(const void *pa, const void *pb)
{
    const struct trust_entry *a = *(const struct trust_entry *const *)pa;
    const struct trust_entry *b = *(const struct trust_entry *const *)pb;

    return name_cmp(a->name, a->name_len, b->name, b->name_len);
}

int trust_save(const trust_store *s, uint8_t *out, size_t cap, size_t *out_len)
{
    const struct trust_entry **order = NULL;
    struct cbor_writer w;

    if (s->count > 0) {
        order = malloc(s->count * sizeof *order);
        if (order == NULL) {
            return P4P_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < s->count; i++) {
        order[i] = &s->entries[i].e;
    }
    if (s->count > 1) {
        qsort(order, s->count, sizeof *order, entry_ptr_cmp);
    }
    cbor_writer_init(&w, out, cap);
    cbor_put_array(&w, 2);
    cbor_put_uint(&w, TRUST_FORMAT_VERSION);
    cbor_put_array(&w, s->count);
    for (uint32_t i = 0; i < s->count; i++) {
        const struct trust_entry *e = order[i];
        cbor_put_array(&w, 5);
        cbor_put_bstr(&w, e->name, e->name_len);
        cbor_put_bstr(&w, e->pk, 32);
        cbor_put_uint(&w, (uint64_t)e->state);
        cbor_put_uint(&w, e->first_seen_ns);
        cbor_put_uint(&w, e->last_seen_ns);
    }
    free(order);
    *out_len = w.len;
    return cbor_writer_ok(&w) ? 0 : P4P_ETOOBIG;
}

/* Reads one saved entry into t (a fresh store being filled). `prev`/`prev_len` is the name of
 * the entry before, which this one must sort after. */
static int load_entry(struct cbor_reader *r, trust_store *t, const uint8_t **prev, size_t *prev_len)
{
    const uint8_t *name, *pk;
    size_t name_len, pk_len;
    uint64_t n, state, first, last;
    struct peerid id;
    int64_t idx;

    if (cbor_get_array(r, &n) != 0 || n != 5 || cbor_get_bstr(r, &name, &name_len) != 0 ||
        cbor_get_bstr(r, &pk, &pk_len) != 0 || cbor_get_uint(r, &state) != 0 ||
        cbor_get_uint(r, &first) != 0 || cbor_get_uint(r, &last) != 0) {
        return P4P_EMALFORMED;
    }
    if (!name_ok(name, name_len) || pk_len != 32 || state < TRUST_TOFU || state > TRUST_REVOKED ||
        first > last) {
        return P4P_EMALFORMED;
    }
    peerid_from_pk(&id, pk);
    if (!name_fits(name, name_len, &id)) {
        return P4P_EMALFORMED; /* another key's key-only name */
    }
    if (*prev != NULL && name_cmp(*prev, *prev_len, name, name_len) >= 0) {
        return P4P_EMALFORMED; /* out of order, or a duplicate name */
    }
    idx = add_entry(t, name, name_len, pk, (enum trust_state)state, first);
    if (idx < 0) {
        return P4P_EFULL;
    }
    t->entries[idx].e.last_seen_ns = last;
    *prev = name;
    *prev_len = name_len;
    return 0;
}

/* Every entry of a revoked key must be revoked, as trust_revoke() leaves them. */
static int check_revocations(const trust_store *t)
{
    for (uint32_t i = 0; i < t->count; i++) {
        const struct trust_entry *e = &t->entries[i].e;
        if (e->state != TRUST_REVOKED && find_revoked(t, &e->id) >= 0) {
            return P4P_EMALFORMED;
        }
    }
    return 0;
}

int trust_load(trust_store *s, const uint8_t *buf, size_t len)
{
    struct cbor_reader r;
    trust_store t = *s;
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    uint64_t n, version, count;
    int rc;

    cbor_reader_init(&r, buf, len);
    if (cbor_get_array(&r, &n) != 0 || n != 2 || cbor_get_uint(&r, &version) != 0) {
        return P4P_EMALFORMED;
    }
    if (version != TRUST_FORMAT_VERSION) {
        return P4P_EVERSION;
    }
    if (cbor_get_array(&r, &count) != 0) {
        return P4P_EMALFORMED;
    }
    if (count > s->cap) {
        return P4P_EFULL;
    }
    t.flags = 0; /* a loaded store never evicts to fit its own entries */
    rc = alloc_block(&t);
    if (rc != 0) {
        return rc;
    }
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        rc = load_entry(&r, &t, &prev, &prev_len);
    }
    if (rc == 0 && !cbor_reader_done(&r)) {
        rc = P4P_EMALFORMED;
    }
    if (rc == 0) {
        rc = check_revocations(&t);
    }
    if (rc != 0) {
        free(t.block);
        return rc;
    }
    free(s->block);
    s->block = t.block;
    s->entries = t.entries;
    s->by_name = t.by_name;
    s->by_id = t.by_id;
    s->count = t.count;
    return 0;
}
