/*
 * queue_bench.c — the event queue in the hold model: fill it with 100,000 pending events,
 * then repeat "pop the earliest, push one at its time plus an exponential increment"
 * 1,000,000 times. Prints events/s and bytes per pending event.
 */
#include <stdio.h>
#include <time.h>

#include "queue.h"
#include "rng.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    enum { PENDING = 100000, HOLDS = 1000000, ROUNDS = 5 };
    struct sim_rng r;
    sim_rng_derive(&r, 1, "bench-queue", 0);
    /* Increments drawn before timing, so the figure is the queue's alone. */
    static uint64_t incr[HOLDS];
    for (int i = 0; i < HOLDS; i++) {
        incr[i] = (uint64_t)sim_rng_exp(&r, 1e6) + 1;
    }
    double best = 0;
    size_t bytes = 0;
    for (int round = 0; round < ROUNDS; round++) {
        struct sim_queue q;
        if (sim_queue_init(&q, PENDING) != 0) {
            return 1;
        }
        for (int i = 0; i < PENDING; i++) {
            sim_queue_push(&q, incr[i], 1, (uint32_t)i, 0);
        }
        double t0 = now_s();
        struct sim_event ev;
        uint64_t check = 0;
        for (int i = 0; i < HOLDS; i++) {
            sim_queue_pop(&q, &ev);
            check += ev.node;
            sim_queue_push(&q, ev.time_ns + incr[i], 1, ev.node, 0);
        }
        double dt = now_s() - t0;
        double rate = HOLDS / dt;
        best = rate > best ? rate : best;
        bytes = sim_queue_bytes(&q) / sim_queue_size(&q);
        if (check == 0) {
            return 1;
        }
        sim_queue_free(&q);
    }
    printf(
        "queue hold model: %d pending, %d events: %.2fM events/s (best of %d), %zu bytes/event\n",
        PENDING, HOLDS, best / 1e6, ROUNDS, bytes);
    return 0;
}
