/*
 * dgram_ring.c — allocation of the datagram outbox (see dgram_ring.h).
 */
#include "dgram_ring.h"

#include <stdlib.h>

#include <sodium.h>

int dgram_ring_init(struct dgram_ring *r, uint32_t cap, uint32_t mtu)
{
    *r = (struct dgram_ring){.mtu = mtu, .cap = cap};
    r->buf = calloc(cap ? cap : 1, mtu ? mtu : 1);
    r->peer = calloc(cap ? cap : 1, sizeof(*r->peer));
    r->len = calloc(cap ? cap : 1, sizeof(*r->len));
    if (r->buf == NULL || r->peer == NULL || r->len == NULL) {
        dgram_ring_free(r, 0);
        return P4P_ENOMEM;
    }
    return 0;
}

void dgram_ring_free(struct dgram_ring *r, int wipe)
{
    if (wipe && r->buf != NULL) {
        sodium_memzero(r->buf, (size_t)r->cap * r->mtu);
    }
    free(r->buf);
    free(r->peer);
    free(r->len);
    r->buf = NULL;
    r->peer = NULL;
    r->len = NULL;
}

size_t dgram_ring_memory(const struct dgram_ring *r)
{
    return (size_t)r->cap * (r->mtu + sizeof(*r->peer) + sizeof(*r->len));
}
