/*
 * test_blob_world.c — blobs through the node and the simulator: a blob added by one node
 * reaches every node of a lossy multi-hop network, neighbour by neighbour, byte-exact; an
 * edited second version moves only the changed chunks; a fetch survives its node crashing
 * (it resumes from the store); and the run is deterministic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scenario.h"
#include "world.h"

#define TEXT(extra)                                                                                \
    "duration: 4min\nseed: 9\n"                                                                    \
    "nodes: {count: 16, app: gossip}\n"                                                            \
    "topology: {kind: random_regular, degree: 3}\n"                                                \
    "link: {latency: 10ms, bandwidth: 4Mbps, queue: 128KiB, loss: 3%}\n"                           \
    "workload: {updates: 0}\n"                                                                     \
    "storage: {backend: memory}\n"                                                                 \
    "blob: {size: 1MiB, at: 2s, source: 5, edit: 700B, edit_at: 2min}\n" extra

struct outcome {
    uint64_t completed, v2_completed, fetched, dedup_saved, corrupt, restarts;
};

static struct outcome run(const char *text)
{
    struct sim_config cfg;
    char err[256];
    if (sim_scenario_parse(text, strlen(text), "t", ".", NULL, 0, &cfg, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    struct sim_world *w = NULL;
    assert_int_equal(sim_world_create(&cfg, NULL, &w, err, sizeof(err)), 0);
    int rc = sim_world_run(w, cfg.duration_ns, NULL, NULL);
    if (rc != 0) {
        fail_msg("run: %s %s", p4p_strerror(rc), sim_world_error(w));
    }
    struct outcome o = {0};
    o.restarts = sim_world_crash_stats(w)->restarts;
    o.completed = sim_world_blob_done(w, 0);
    o.v2_completed = sim_world_blob_done(w, 1);
    for (uint32_t i = 0; i < cfg.nodes.count && o.restarts == 0; i++) {
        struct p4p_stats s;
        p4p_node_stats(sim_world_node(w, i), &s);
        o.fetched += s.blob_bytes_fetched;
        o.dedup_saved += s.blob_bytes_dedup_saved;
        o.corrupt += s.blob_chunks_corrupt;
    }
    sim_world_destroy(w);
    return o;
}

static void test_blob_spreads_and_dedups(void **state)
{
    (void)state;
    struct outcome a = run(TEXT(""));
    /* 15 fetchers, two versions each. */
    assert_int_equal(a.completed, 15);
    assert_int_equal(a.v2_completed, 15);
    /* Version 1 whole to each (1 MiB x 15), version 2 only its changed chunks. */
    assert_true(a.fetched >= 15ull << 20);
    assert_true(a.fetched < (15ull << 20) + 15 * 65536 * 2);
    assert_true(a.dedup_saved > 14ull << 20);
    assert_int_equal(a.corrupt, 0);
    struct outcome b = run(TEXT(""));
    assert_memory_equal(&a, &b, sizeof(a)); /* deterministic */
}

static void test_blob_survives_crashes(void **state)
{
    (void)state;
    struct outcome o = run(TEXT("crash: {rate: 30/h, downtime: 3s}\n"));
    assert_true(o.restarts > 10);
    /* A fetch cut by a crash resumes from the store; every fetcher completes both versions. */
    assert_int_equal(o.completed, 15);
    assert_int_equal(o.v2_completed, 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blob_spreads_and_dedups),
        cmocka_unit_test(test_blob_survives_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
