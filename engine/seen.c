/*
 * seen.c — see seen.h.
 */
#include "seen.h"

#include <stdlib.h>

#include "p4p/p4p.h"
#include "probe.h"

static inline uint32_t key_hash(struct seen_key k)
{
    /* The origin bytes are a public key (uniform); mixing in seq spreads one origin's keys. */
    uint64_t h = (k.origin ^ (k.seq * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    return (uint32_t)(h >> 32);
}

static inline int key_eq(struct seen_key a, struct seen_key b)
{
    return a.origin == b.origin && a.seq == b.seq;
}

void seen_init(struct seen_set *s, uint32_t max)
{
    *s = (struct seen_set){.max = max > 0 ? max : 1};
}

void seen_free(struct seen_set *s)
{
    free(s->slots); /* the ring lives in the same block */
    *s = (struct seen_set){.max = s->max};
}

/* The slot holding k, or the empty slot where it would go (*found says which). */
static uint32_t find_slot(const struct seen_set *s, struct seen_key k, int *found)
{
    uint32_t mask = s->slot_cap - 1;
    for (uint32_t i = key_hash(k) & mask;; i = (i + 1) & mask) {
        if (s->slots[i].seq == 0) {
            *found = 0;
            return i;
        }
        if (key_eq(s->slots[i], k)) {
            *found = 1;
            return i;
        }
    }
}

int seen_contains(const struct seen_set *s, struct seen_key k)
{
    int found = 0;
    if (s->count == 0) {
        return 0;
    }
    find_slot(s, k, &found);
    return found;
}

/* Empties slot i and shifts later members of its probe run back (see probe.h). */
static void slot_delete(struct seen_set *s, uint32_t i)
{
    uint32_t mask = s->slot_cap - 1;
    uint32_t j = i;
    for (;;) {
        s->slots[i].seq = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (s->slots[j].seq == 0) {
                return;
            }
            uint32_t home = key_hash(s->slots[j]) & mask;
            if (!probe_stays(i, j, home)) {
                break;
            }
        }
        s->slots[i] = s->slots[j];
        i = j;
    }
}

/* Doubles the capacity (unrolling the FIFO to start at 0) and rebuilds the table. */
static int grow(struct seen_set *s)
{
    uint32_t cap = s->ring_cap ? s->ring_cap * 2 : 8;
    if (cap > s->max) {
        cap = s->max;
    }
    uint32_t slot_cap = 1;
    while (slot_cap < 2 * cap) {
        slot_cap *= 2;
    }
    struct seen_key *block = calloc((size_t)slot_cap + cap, sizeof(*block));
    if (block == NULL) {
        return P4P_ENOMEM;
    }
    struct seen_key *ring = block + slot_cap;
    for (uint32_t n = 0; n < s->count; n++) {
        ring[n] = s->ring[(s->head + n) % s->ring_cap];
    }
    free(s->slots);
    s->slots = block;
    s->ring = ring;
    s->ring_cap = cap;
    s->slot_cap = slot_cap;
    s->head = 0;
    for (uint32_t n = 0; n < s->count; n++) {
        int found = 0;
        s->slots[find_slot(s, ring[n], &found)] = ring[n];
    }
    return 0;
}

int seen_insert(struct seen_set *s, struct seen_key k)
{
    int evicted = 0;
    if (s->count == s->ring_cap && s->ring_cap < s->max) {
        int rc = grow(s);
        if (rc != 0) {
            return rc;
        }
    }
    if (s->count == s->ring_cap) {
        /* Full at the bound: forget the oldest key. */
        int found = 0;
        uint32_t i = find_slot(s, s->ring[s->head], &found);
        if (found) {
            slot_delete(s, i);
        }
        s->head = (s->head + 1) % s->ring_cap;
        s->count--;
        evicted = 1;
    }
    s->ring[(s->head + s->count) % s->ring_cap] = k;
    s->count++;
    int found = 0;
    s->slots[find_slot(s, k, &found)] = k;
    return evicted;
}

size_t seen_memory(const struct seen_set *s)
{
    return ((size_t)s->slot_cap + s->ring_cap) * sizeof(struct seen_key);
}
