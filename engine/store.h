/*
 * store.h — the newest updates a node holds, for gossip repair: a bounded FIFO of encoded
 * UPDATE frames, looked up by id prefix.
 *
 * Bytes live in one growing log that is compacted when the oldest records are dropped, so
 * there is no allocation per update; an idle node holds nothing. A hash index (linear
 * probing, backward-shift deletion) finds an entry by id prefix in O(1). The durable
 * operation log of the storage layer is a different thing.
 */
#ifndef P4P_STORE_H
#define P4P_STORE_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct store_entry {
    uint64_t prefix; /* first 8 bytes of the update id, as read little-endian */
    uint32_t off, len;
};

struct store {
    struct store_entry *fifo; /* ring of entries, newest last */
    uint32_t cap, head, count, max;
    uint32_t *index; /* ring position + 1 by prefix hash; 0 = empty; index_cap = 2 * cap */
    uint32_t index_cap;
    uint8_t *log; /* frame bytes; entries point into [log_start, log_used) */
    size_t log_cap, log_used;
};

void store_init(struct store *s, uint32_t max);
void store_free(struct store *s);

/* Adds a frame under the given id (dropping the oldest at the bound). 0 or P4P_ENOMEM. */
int store_add(struct store *s, const uint8_t id[32], const uint8_t *frame, size_t len);

/* The entry with this id prefix, or NULL. */
const struct store_entry *store_find(const struct store *s, uint64_t prefix);

/* The i-th newest entry (0 = newest); i < s->count. */
const struct store_entry *store_newest(const struct store *s, uint32_t i);

static inline const uint8_t *store_bytes(const struct store *s, const struct store_entry *e)
{
    return s->log + e->off;
}

/* The first 8 bytes of an id as a number (little-endian), the key of the index. */
static inline uint64_t store_prefix(const uint8_t *id8)
{
    uint64_t v;
    memcpy(&v, id8, sizeof(v));
    return le64toh(v);
}

/* The inverse: writes a prefix back as the 8 bytes it was read from. */
static inline void store_put_prefix(uint8_t *out8, uint64_t prefix)
{
    uint64_t v = htole64(prefix);
    memcpy(out8, &v, sizeof(v));
}

size_t store_memory(const struct store *s);

#endif /* P4P_STORE_H */
