/*
 * pool.c — see pool.h. Handle layout: class in the top 4 bits, slot number below; slot n of
 * a class lives in chunk n >> shift at offset (n & mask) * slot_size.
 */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (256u * 1024u)

static size_t slot_size(unsigned c)
{
    return (size_t)64 << c;
}

/* log2 of slots per chunk: chunks are CHUNK_BYTES (2^18), slots are 2^(6 + c) bytes. */
static inline unsigned chunk_shift(unsigned c)
{
    return 12u - c;
}

void sim_pool_init(struct sim_pool *p)
{
    memset(p, 0, sizeof(*p));
    for (unsigned c = 0; c < SIM_POOL_CLASSES; c++) {
        p->cls[c].free_head = SIM_POOL_NONE;
    }
}

void sim_pool_free(struct sim_pool *p)
{
    for (unsigned c = 0; c < SIM_POOL_CLASSES; c++) {
        for (uint32_t i = 0; i < p->cls[c].chunk_count; i++) {
            free(p->cls[c].chunks[i]);
        }
        free(p->cls[c].chunks);
    }
    sim_pool_init(p);
}

static uint8_t *slot_ptr(const struct sim_pool *p, unsigned c, uint32_t n)
{
    unsigned shift = chunk_shift(c);
    return p->cls[c].chunks[n >> shift] + (size_t)(n & ((1u << shift) - 1)) * slot_size(c);
}

struct sim_packet *sim_pool_get(const struct sim_pool *p, uint32_t handle)
{
    return (struct sim_packet *)slot_ptr(p, handle >> 28, handle & 0x0fffffffu);
}

uint32_t sim_pool_alloc(struct sim_pool *p, size_t len)
{
    unsigned c = 0;
    while (c < SIM_POOL_CLASSES && slot_size(c) < len + sizeof(struct sim_packet)) {
        c++;
    }
    if (c == SIM_POOL_CLASSES) {
        return SIM_POOL_NONE;
    }
    struct sim_pool_class *k = &p->cls[c];
    uint32_t n;
    if (k->free_head != SIM_POOL_NONE) {
        n = k->free_head;
        memcpy(&k->free_head, slot_ptr(p, c, n), sizeof(uint32_t));
    } else {
        unsigned shift = chunk_shift(c);
        n = k->next_fresh;
        if (n >= 0x0fffffffu) {
            return SIM_POOL_NONE;
        }
        if ((n >> shift) == k->chunk_count) {
            if (k->chunk_count == k->chunk_cap) {
                uint32_t cap = k->chunk_cap ? k->chunk_cap * 2 : 16;
                uint8_t **ch = realloc(k->chunks, cap * sizeof(*ch));
                if (ch == NULL) {
                    return SIM_POOL_NONE;
                }
                k->chunks = ch;
                k->chunk_cap = cap;
            }
            size_t bytes = slot_size(c) << shift;
            uint8_t *chunk = malloc(bytes);
            if (chunk == NULL) {
                return SIM_POOL_NONE;
            }
            k->chunks[k->chunk_count++] = chunk;
            p->bytes += bytes;
        }
        k->next_fresh++;
    }
    k->used++;
    uint32_t handle = ((uint32_t)c << 28) | n;
    struct sim_packet *pkt = sim_pool_get(p, handle);
    pkt->refs = 1;
    pkt->len = (uint32_t)len;
    return handle;
}

void sim_pool_release(struct sim_pool *p, uint32_t handle)
{
    struct sim_packet *pkt = sim_pool_get(p, handle);
    if (--pkt->refs > 0) {
        return;
    }
    unsigned c = handle >> 28;
    uint32_t n = handle & 0x0fffffffu;
    memcpy(pkt, &p->cls[c].free_head, sizeof(uint32_t));
    p->cls[c].free_head = n;
    p->cls[c].used--;
}
