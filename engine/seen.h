/*
 * seen.h — bounded duplicate suppression: "have I accepted update (origin, seq) before?"
 *
 * Keys are (first 8 bytes of the origin's public key, sequence number). A key is inserted
 * only after the update's signature verified, so a forger cannot poison the set; a forged
 * copy of an already-accepted update is dropped as a duplicate, which is where it belongs.
 *
 * Memory grows with use up to `max` keys (an idle node holds none); beyond that the oldest
 * key is forgotten (FIFO) and counted by the caller. The table holds the keys themselves
 * (linear probing, backward-shift deletion, no tombstones), so the common question — a
 * duplicate arriving — costs one cache line; a FIFO ring of the same keys, in the same
 * allocation, remembers the order of eviction. 48 bytes per remembered update.
 */
#ifndef P4P_SEEN_H
#define P4P_SEEN_H

#include <stddef.h>
#include <stdint.h>

struct seen_key {
    uint64_t origin;
    uint64_t seq;
};

struct seen_set {
    struct seen_key *slots; /* hash table, slot_cap = 2 * ring_cap; seq == 0 marks empty */
    struct seen_key *ring;  /* FIFO of the same keys, oldest at head; same allocation */
    uint32_t ring_cap, slot_cap;
    uint32_t head, count;
    uint32_t max;
};

void seen_init(struct seen_set *s, uint32_t max);
void seen_free(struct seen_set *s);

int seen_contains(const struct seen_set *s, struct seen_key k);

/* Inserts k (which must not be present). Returns 1 when an old key was evicted to make
 * room, 0 otherwise, or P4P_ENOMEM. */
int seen_insert(struct seen_set *s, struct seen_key k);

size_t seen_memory(const struct seen_set *s);

#endif /* P4P_SEEN_H */
