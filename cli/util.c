/*
 * util.c — what the subcommands share: wall clock, peak memory, seeded libsodium.
 */
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <sodium.h>

#include "cli.h"
#include "rng.h"

double cli_wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long cli_peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return -1;
    }
    return ru.ru_maxrss; /* KiB on Linux */
}

/* libsodium's randombytes, answered from a simulator stream. The engine never calls it (its
 * randomness comes through p4p_env), so this only guarantees that nothing else can. */
static struct sim_rng sodium_stream;

static const char *seeded_name(void)
{
    return "p4p-seeded";
}

static uint32_t seeded_random(void)
{
    return (uint32_t)sim_rng_next(&sodium_stream);
}

static void seeded_stir(void)
{
}

static uint32_t seeded_uniform(const uint32_t upper_bound)
{
    return upper_bound < 2 ? 0 : (uint32_t)sim_rng_below(&sodium_stream, upper_bound);
}

static void seeded_buf(void *const buf, const size_t size)
{
    sim_rng_bytes(&sodium_stream, buf, size);
}

static int seeded_close(void)
{
    return 0;
}

static randombytes_implementation seeded_impl = {
    .implementation_name = seeded_name,
    .random = seeded_random,
    .stir = seeded_stir,
    .uniform = seeded_uniform,
    .buf = seeded_buf,
    .close = seeded_close,
};

int cli_sodium_init_seeded(uint64_t seed)
{
    sim_rng_derive(&sodium_stream, seed, "libsodium", 0);
    if (randombytes_set_implementation(&seeded_impl) != 0) {
        return -1;
    }
    return sodium_init() < 0 ? -1 : 0;
}
