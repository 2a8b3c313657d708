/*
 * dgram_ring.h — the outbox of the engine's datagram state machines (session.c, blob.c,
 * plumtree.c): a bounded FIFO of outgoing datagrams in fixed slots of `mtu` bytes, all
 * allocated at init. A sender reserves the next slot, writes the datagram into it and commits
 * it with its destination; the host pops them in order. A popped datagram's bytes stay valid
 * until the slot is reserved again, i.e. until the next input call of the owner.
 */
#ifndef P4P_DGRAM_RING_H
#define P4P_DGRAM_RING_H

#include <stddef.h>
#include <stdint.h>

#include "p4p/p4p.h"

struct dgram_ring {
    uint8_t *buf;   /* cap slots of mtu bytes */
    p4p_addr *peer; /* destination of each slot */
    uint32_t *len;  /* length of each slot's datagram */
    uint32_t mtu, cap, head, count;
};

/* 0 or P4P_ENOMEM (then nothing is held; dgram_ring_free is still safe). */
int dgram_ring_init(struct dgram_ring *r, uint32_t cap, uint32_t mtu);
/* Frees the slots, wiping them first when `wipe` (datagrams that held key material). */
void dgram_ring_free(struct dgram_ring *r, int wipe);
size_t dgram_ring_memory(const struct dgram_ring *r);

/* The next free slot (mtu bytes), or NULL when every slot holds an unpolled datagram. */
static inline uint8_t *dgram_ring_reserve(const struct dgram_ring *r)
{
    if (r->count >= r->cap) {
        return NULL;
    }
    return r->buf + (size_t)((r->head + r->count) % r->cap) * r->mtu;
}

/* Queues the datagram written into the slot dgram_ring_reserve returned. */
static inline void dgram_ring_commit(struct dgram_ring *r, p4p_addr peer, size_t len)
{
    uint32_t i = (r->head + r->count) % r->cap;
    r->peer[i] = peer;
    r->len[i] = (uint32_t)len;
    r->count++;
}

/* The oldest datagram: 0, or P4P_EAGAIN when there is none. */
static inline int dgram_ring_pop(struct dgram_ring *r, p4p_addr *peer, const uint8_t **data,
                                 size_t *len)
{
    if (r->count == 0) {
        return P4P_EAGAIN;
    }
    *peer = r->peer[r->head];
    *len = r->len[r->head];
    *data = r->buf + (size_t)r->head * r->mtu;
    r->head = (r->head + 1) % r->cap;
    r->count--;
    return 0;
}

#endif /* P4P_DGRAM_RING_H */
