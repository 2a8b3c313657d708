/*
 * rng.h — seeded random streams for the simulator.
 *
 * One master seed per run; every stream (a node's engine randomness, a link model's loss
 * draws, the workload, igraph) is derived from it with a keyed BLAKE2b hash of the stream's
 * label and index — never `seed + 1` — so streams are independent, and adding a stream does
 * not shift the others. A stream is xoshiro256** seeded from that hash: fast, 32 bytes of
 * state, and identical on every platform.
 */
#ifndef SIM_RNG_H
#define SIM_RNG_H

#include <stddef.h>
#include <stdint.h>

struct sim_rng {
    uint64_t s[4];
};

/* The stream named (label, index) of the run with `seed`. */
void sim_rng_derive(struct sim_rng *r, uint64_t seed, const char *label, uint64_t index);

/* A 64-bit value derived the same way (for seeding other libraries, e.g. igraph). */
uint64_t sim_rng_derive_u64(uint64_t seed, const char *label, uint64_t index);

uint64_t sim_rng_next(struct sim_rng *r);

/* Uniform in [0, bound) without modulo bias; bound > 0. */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t bound);

/* Uniform double in [0, 1) with 53 random bits. */
double sim_rng_uniform(struct sim_rng *r);

/* Exponential with the given mean. */
double sim_rng_exp(struct sim_rng *r, double mean);

void sim_rng_bytes(struct sim_rng *r, uint8_t *out, size_t len);

#endif /* SIM_RNG_H */
