/*
 * store.c — see store.h.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "p4p/p4p.h"
#include "probe.h"

void store_init(struct store *s, uint32_t max)
{
    *s = (struct store){.max = max > 0 ? max : 1};
}

void store_free(struct store *s)
{
    free(s->fifo);
    free(s->index);
    free(s->log);
    *s = (struct store){.max = s->max};
}

/* Ids are hashes, so the prefix's own bits are a fine hash. */
static inline uint32_t slot_of(const struct store *s, uint64_t prefix)
{
    return (uint32_t)(prefix >> 32) & (s->index_cap - 1);
}

static void index_put(struct store *s, uint32_t pos)
{
    uint32_t mask = s->index_cap - 1;
    uint32_t i = slot_of(s, s->fifo[pos].prefix);
    while (s->index[i] != 0) {
        i = (i + 1) & mask;
    }
    s->index[i] = pos + 1;
}

/* Removes ring position pos from the index, shifting back the rest of its probe run. */
static void index_del(struct store *s, uint32_t pos)
{
    uint32_t mask = s->index_cap - 1;
    uint32_t i = slot_of(s, s->fifo[pos].prefix);
    while (s->index[i] != pos + 1) {
        i = (i + 1) & mask;
    }
    for (uint32_t j = i;;) {
        s->index[i] = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (s->index[j] == 0) {
                return;
            }
            uint32_t home = slot_of(s, s->fifo[s->index[j] - 1].prefix);
            if (!probe_stays(i, j, home)) {
                break;
            }
        }
        s->index[i] = s->index[j];
        i = j;
    }
}

static struct store_entry *at(const struct store *s, uint32_t i)
{
    return &s->fifo[(s->head + i) % s->cap];
}

static int grow_fifo(struct store *s)
{
    uint32_t cap = s->cap ? s->cap * 2 : 8;
    if (cap > s->max) {
        cap = s->max;
    }
    uint32_t index_cap = 1;
    while (index_cap < 2 * cap) {
        index_cap *= 2;
    }
    struct store_entry *f = malloc((size_t)cap * sizeof(*f));
    uint32_t *index = calloc(index_cap, sizeof(*index));
    if (f == NULL || index == NULL) {
        free(f);
        free(index);
        return P4P_ENOMEM;
    }
    for (uint32_t i = 0; i < s->count; i++) {
        f[i] = *at(s, i);
    }
    free(s->fifo);
    free(s->index);
    s->fifo = f;
    s->index = index;
    s->cap = cap;
    s->index_cap = index_cap;
    s->head = 0;
    for (uint32_t i = 0; i < s->count; i++) {
        index_put(s, i);
    }
    return 0;
}

/* Makes room for `len` more log bytes: first by sliding live records to the front, then by
 * doubling. Entries are re-pointed; callers hold no pointers across store_add. */
static int reserve_log(struct store *s, size_t len)
{
    if (s->log_used + len <= s->log_cap) {
        return 0;
    }
    size_t start = s->count ? at(s, 0)->off : s->log_used;
    if (start > 0) {
        memmove(s->log, s->log + start, s->log_used - start);
        s->log_used -= start;
        for (uint32_t i = 0; i < s->count; i++) {
            at(s, i)->off -= (uint32_t)start;
        }
    }
    if (s->log_used + len <= s->log_cap && s->log_used <= s->log_cap / 2) {
        return 0;
    }
    size_t cap = s->log_cap ? s->log_cap : 1024;
    while (cap < s->log_used + len || cap < 2 * s->log_used) {
        cap *= 2;
    }
    uint8_t *log = realloc(s->log, cap);
    if (log == NULL) {
        return P4P_ENOMEM;
    }
    s->log = log;
    s->log_cap = cap;
    return 0;
}

int store_add(struct store *s, const uint8_t id[32], const uint8_t *frame, size_t len)
{
    if (s->count == s->cap && s->cap < s->max && grow_fifo(s) != 0) {
        return P4P_ENOMEM;
    }
    if (s->count == s->cap) {
        index_del(s, s->head); /* drop the oldest */
        s->head = (s->head + 1) % s->cap;
        s->count--;
    }
    if (reserve_log(s, len) != 0) {
        return P4P_ENOMEM;
    }
    memcpy(s->log + s->log_used, frame, len);
    *at(s, s->count) = (struct store_entry){
        .prefix = store_prefix(id),
        .off = (uint32_t)s->log_used,
        .len = (uint32_t)len,
    };
    s->log_used += len;
    index_put(s, (s->head + s->count) % s->cap);
    s->count++;
    return 0;
}

const struct store_entry *store_find(const struct store *s, uint64_t prefix)
{
    if (s->count == 0) {
        return NULL;
    }
    uint32_t mask = s->index_cap - 1;
    for (uint32_t i = slot_of(s, prefix); s->index[i] != 0; i = (i + 1) & mask) {
        const struct store_entry *e = &s->fifo[s->index[i] - 1];
        if (e->prefix == prefix) {
            return e;
        }
    }
    return NULL;
}

const struct store_entry *store_newest(const struct store *s, uint32_t i)
{
    return at(s, s->count - 1 - i);
}

size_t store_memory(const struct store *s)
{
    return (size_t)s->cap * sizeof(*s->fifo) + (size_t)s->index_cap * sizeof(*s->index) +
           s->log_cap;
}
