/*
 * sigcache.c — a direct-mapped table of signatures that verified, shared by the nodes of one
 * host (see p4p_sigcache_create in p4p.h).
 *
 * Why it is safe: the key is the update id, BLAKE2b-256 of the signed body, which contains
 * the author's public key; the entry holds the 64 signature bytes that verified against that
 * body. A later frame with the same id and the same signature bytes is the same
 * (key, message, signature) triple, so Ed25519 verification would give the same answer.
 * Anything else misses and is verified in full. Only successes are stored, so the cache can
 * change CPU time but never a result.
 */
#include <stdlib.h>
#include <string.h>

#include "p4p/p4p.h"
#include "sigcache.h"

struct sigcache_entry {
    uint8_t id[32];
    uint8_t sig[64];
    uint8_t used;
};

struct p4p_sigcache {
    struct sigcache_entry *entries;
    size_t mask;
};

int p4p_sigcache_create(size_t capacity, struct p4p_sigcache **out)
{
    size_t cap = 1;
    if (capacity == 0) {
        capacity = 1u << 16;
    }
    while (cap < capacity) {
        cap *= 2;
    }
    struct p4p_sigcache *c = malloc(sizeof(*c));
    struct sigcache_entry *e = calloc(cap, sizeof(*e));
    if (c == NULL || e == NULL) {
        free(c);
        free(e);
        return P4P_ENOMEM;
    }
    c->entries = e;
    c->mask = cap - 1;
    *out = c;
    return 0;
}

void p4p_sigcache_destroy(struct p4p_sigcache *c)
{
    if (c != NULL) {
        free(c->entries);
        free(c);
    }
}

static struct sigcache_entry *slot(const struct p4p_sigcache *c, const uint8_t id[32])
{
    size_t h;
    memcpy(&h, id, sizeof(h)); /* the id is a hash: its bytes are already uniform */
    return &c->entries[h & c->mask];
}

int sigcache_hit(const struct p4p_sigcache *c, const uint8_t id[32], const uint8_t sig[64])
{
    const struct sigcache_entry *e = slot(c, id);
    return e->used && memcmp(e->id, id, 32) == 0 && memcmp(e->sig, sig, 64) == 0;
}

void sigcache_put(struct p4p_sigcache *c, const uint8_t id[32], const uint8_t sig[64])
{
    struct sigcache_entry *e = slot(c, id);
    memcpy(e->id, id, 32);
    memcpy(e->sig, sig, 64);
    e->used = 1;
}
