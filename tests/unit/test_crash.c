/*
 * test_crash.c — crashes and restarts in the simulator, with both storage backends: a crash
 * at every write index of a small workload, random crashes, scheduled crashes of many nodes
 * at once. After each restart the world itself checks that the node holds exactly its log
 * and its log exactly what it acknowledged; here we also check that nothing acknowledged is
 * lost at the end, that every node converges, and that crashing runs are deterministic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "scenario.h"
#include "world.h"

static void load(const char *text, struct sim_config *cfg)
{
    char err[512];
    if (sim_scenario_parse(text, strlen(text), "test", ".", NULL, 0, cfg, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
}

/* Six gossip nodes on a ring with chords, 12 updates in the first 6 s, then time to repair. */
#define SMALL(backend, crash)                                                                      \
    "duration: 60s\n"                                                                              \
    "seed: 7\n"                                                                                    \
    "nodes: {count: 6, app: gossip}\n"                                                             \
    "topology: {kind: watts_strogatz, degree: 4, p: 0.2}\n"                                        \
    "link: {latency: 20ms, loss: 5%}\n"                                                            \
    "gossip: {interval: 500ms, store: 64}\n"                                                       \
    "workload: {updates: 12, rate: 2/s, start: 1s}\n"                                              \
    "storage: {backend: " backend "}\n"                                                            \
    "crash: {" crash "}\n"

struct outcome {
    uint64_t crashes_on_write, restarts, lost;
    double coverage;
    uint32_t updates;
};

/* Runs the scenario; with `k` > 0 node `victim`'s store fails at its k-th write. */
static struct outcome run(const struct sim_config *cfg, uint32_t victim, uint64_t k)
{
    struct sim_world *w = NULL;
    char err[256] = "";
    int rc = sim_world_create(cfg, NULL, &w, err, sizeof(err));
    if (rc != 0) {
        fail_msg("create: %s", err);
    }
    if (k > 0) {
        assert_int_equal(sim_world_fail_after(w, victim, k), 0);
    }
    rc = sim_world_run(w, cfg->duration_ns, NULL, NULL);
    if (rc != 0) {
        fail_msg("k=%llu: run: %s %s", (unsigned long long)k, p4p_strerror(rc), sim_world_error(w));
    }
    struct outcome o = {0};
    rc = sim_world_check_stores(w, &o.lost);
    if (rc != 0) {
        fail_msg("k=%llu: %s", (unsigned long long)k, sim_world_error(w));
    }
    const struct sim_crash_stats *cs = sim_world_crash_stats(w);
    o.crashes_on_write = cs->crashes_on_write;
    o.restarts = cs->restarts;
    o.coverage = metrics_coverage(sim_world_metrics(w));
    o.updates = sim_world_metrics(w)->update_count;
    sim_world_destroy(w);
    return o;
}

/* Crash node 0 at its 1st, 2nd, ... write until a run sees no crash: every write index of
 * the workload, exhaustively. */
static void every_write_index(const char *text)
{
    struct sim_config cfg;
    load(text, &cfg);
    struct outcome clean = run(&cfg, 0, 0);
    assert_int_equal(clean.restarts, 0);
    assert_true(clean.coverage == 1.0);
    uint64_t k = 1;
    for (;; k++) {
        struct outcome o = run(&cfg, 0, k);
        assert_int_equal(o.lost, 0);
        if (o.crashes_on_write == 0) {
            break;
        }
        assert_int_equal(o.crashes_on_write, 1);
        assert_int_equal(o.restarts, 1);
        /* Every update that was published reaches everyone despite the crash. */
        if (o.coverage != 1.0) {
            fail_msg("k=%llu: coverage %.4f", (unsigned long long)k, o.coverage);
        }
    }
    /* The workload has more writes than updates (appends, sequence numbers, commits). */
    assert_true(k > 12);
    print_message("crashed at each of %llu write indices\n", (unsigned long long)(k - 1));
}

static void test_every_write_index_memory(void **state)
{
    (void)state;
    every_write_index(SMALL("memory", "downtime: 2s"));
}

static void test_every_write_index_sqlite(void **state)
{
    (void)state;
    every_write_index(SMALL("sqlite", "downtime: 2s"));
}

/* Random crashes at a high rate and a scheduled crash of half the network: nodes come back,
 * catch up, and nothing acknowledged is lost. */
static void test_random_and_scheduled(void **state)
{
    (void)state;
    static const char text[] = "duration: 5min\n"
                               "seed: 3\n"
                               "nodes: {count: 40, app: gossip}\n"
                               "topology: {kind: random_regular, degree: 4}\n"
                               "link: {latency: 20ms, loss: 2%}\n"
                               "gossip: {interval: 1s, store: 256}\n"
                               "workload: {updates: 60, rate: 0.5/s, start: 1s}\n"
                               "storage: {backend: memory}\n"
                               "crash: {rate: 20/h, at: 60s, fraction: 50%, downtime: 5s}\n";
    struct sim_config cfg;
    load(text, &cfg);
    struct outcome a = run(&cfg, 0, 0);
    assert_true(a.restarts >= 20 + 20); /* the scheduled 20 and the random ones */
    assert_int_equal(a.lost, 0);
    assert_true(a.coverage > 0.99);
    struct outcome b = run(&cfg, 0, 0);
    assert_memory_equal(&a, &b, sizeof(a));
}

/* crash.every_writes: every node crashes at every k-th write, all run long. */
static void test_every_writes(void **state)
{
    (void)state;
    struct sim_config cfg;
    load(SMALL("memory", "every_writes: 7, downtime: 1s"), &cfg);
    struct outcome o = run(&cfg, 0, 0);
    assert_true(o.crashes_on_write > 6);
    assert_int_equal(o.lost, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_write_index_memory),
        cmocka_unit_test(test_every_write_index_sqlite),
        cmocka_unit_test(test_random_and_scheduled),
        cmocka_unit_test(test_every_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
