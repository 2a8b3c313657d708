/*
 * rng.c — stream derivation (BLAKE2b) and xoshiro256** (Blackman and Vigna, public domain
 * reference algorithm).
 */
#include "rng.h"

#include <math.h>
#include <string.h>

#include <sodium.h>

/* key = the seed as 8 little-endian bytes; message = label, a 0 byte, index (LE). */
static void derive(uint64_t seed, const char *label, uint64_t index, uint8_t out[32])
{
    uint8_t key[16] = {0};
    uint8_t idx[8];
    for (int i = 0; i < 8; i++) {
        key[i] = (uint8_t)(seed >> (8 * i));
        idx[i] = (uint8_t)(index >> (8 * i));
    }
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, sizeof(key), 32);
    crypto_generichash_update(&st, (const uint8_t *)label, strlen(label) + 1);
    crypto_generichash_update(&st, idx, sizeof(idx));
    crypto_generichash_final(&st, out, 32);
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

void sim_rng_derive(struct sim_rng *r, uint64_t seed, const char *label, uint64_t index)
{
    uint8_t h[32];
    derive(seed, label, index, h);
    for (int i = 0; i < 4; i++) {
        r->s[i] = load64(h + 8 * i);
    }
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) {
        r->s[0] = 1; /* the one state xoshiro cannot leave; astronomically unlikely */
    }
}

uint64_t sim_rng_derive_u64(uint64_t seed, const char *label, uint64_t index)
{
    uint8_t h[32];
    derive(seed, label, index, h);
    return load64(h);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t bound)
{
    /* Lemire's nearly-divisionless method. */
    unsigned __int128 m = (unsigned __int128)sim_rng_next(r) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t threshold = -bound % bound;
        while (low < threshold) {
            m = (unsigned __int128)sim_rng_next(r) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double sim_rng_uniform(struct sim_rng *r)
{
    return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

double sim_rng_exp(struct sim_rng *r, double mean)
{
    /* 1 - u is in (0, 1], so the log is finite. */
    return -mean * log(1.0 - sim_rng_uniform(r));
}

void sim_rng_bytes(struct sim_rng *r, uint8_t *out, size_t len)
{
    while (len >= 8) {
        uint64_t v = sim_rng_next(r);
        for (int i = 0; i < 8; i++) {
            out[i] = (uint8_t)(v >> (8 * i));
        }
        out += 8;
        len -= 8;
    }
    if (len > 0) {
        uint64_t v = sim_rng_next(r);
        for (size_t i = 0; i < len; i++) {
            out[i] = (uint8_t)(v >> (8 * i));
        }
    }
}
