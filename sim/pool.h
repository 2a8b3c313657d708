/*
 * pool.h — buffers for frames in flight in the simulator, by size class, referred to by a
 * 32-bit handle that fits in an event's `arg`.
 *
 * Size classes are powers of two from 64 bytes; each class is an array of fixed-size chunks
 * carved into slots with an intrusive free list, so after warm-up no frame allocates. A
 * packet carries a reference count so that a broadcast medium can hand one buffer to many
 * receivers.
 */
#ifndef SIM_POOL_H
#define SIM_POOL_H

#include <stddef.h>
#include <stdint.h>

#define SIM_POOL_CLASSES 12 /* slot sizes 64 B .. 128 KiB */
#define SIM_POOL_NONE    UINT32_MAX

struct sim_packet {
    uint32_t src;   /* sending node */
    uint32_t iface; /* interface it was sent on */
    uint32_t len;
    uint32_t refs;
    uint8_t data[];
};

struct sim_pool_class {
    uint8_t **chunks;
    uint32_t chunk_count, chunk_cap;
    uint32_t free_head; /* handle, or SIM_POOL_NONE */
    uint32_t used, next_fresh;
};

struct sim_pool {
    struct sim_pool_class cls[SIM_POOL_CLASSES];
    size_t bytes; /* held in chunks */
};

void sim_pool_init(struct sim_pool *p);
void sim_pool_free(struct sim_pool *p);

/* A packet with room for `len` bytes and refs = 1, or SIM_POOL_NONE (too big / no memory). */
uint32_t sim_pool_alloc(struct sim_pool *p, size_t len);
struct sim_packet *sim_pool_get(const struct sim_pool *p, uint32_t handle);
/* Drops one reference; the slot is reused when none remain. */
void sim_pool_release(struct sim_pool *p, uint32_t handle);

#endif /* SIM_POOL_H */
