/*
 * test_world.c — scenario tests: tiny simulations with a fixed seed and exact expected
 * results, the flood benchmark's known answer on graph-1000, and the determinism check
 * (same scenario + seed => identical results hash; another seed => a different one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "metrics.h"
#include "res.h"
#include "run.h"
#include "scenario.h"
#include "world.h"

static void load(const char *text, const struct sim_override *ov, size_t n, struct sim_config *cfg)
{
    char err[512];
    int rc = sim_scenario_parse(text, strlen(text), "test", ".", ov, n, cfg, err, sizeof(err));
    if (rc != 0) {
        fail_msg("%s", err);
    }
}

/* Flood along a 5-node line with latencies 10, 20, 30, 40.5 ms: node k hears the update
 * exactly at the sum of the first k latencies, k hops away. */
static void test_flood_line_exact(void **state)
{
    (void)state;
    static const char text[] = "duration: 20s\n"
                               "nodes: {app: flood}\n"
                               "topology: {kind: file, file: tests/data/line5.txt}\n"
                               "workload: {updates: 0}\n";
    struct sim_config cfg;
    load(text, NULL, 0, &cfg);
    assert_int_equal(cfg.nodes.count, 5);
    struct sim_world *w = NULL;
    char err[256];
    assert_int_equal(sim_world_create(&cfg, NULL, &w, err, sizeof(err)), 0);
    assert_int_equal(sim_world_publish_at(w, 0, 1000000000ull), 0);
    assert_int_equal(sim_world_run(w, cfg.duration_ns, NULL, NULL), 0);
    const struct sim_metrics *m = sim_world_metrics(w);
    assert_int_equal(m->update_count, 1);
    assert_int_equal(m->delivery_count, 4);
    const uint64_t at[] = {0, 10000000, 30000000, 60000000, 100500000};
    for (size_t i = 0; i < m->delivery_count; i++) {
        const struct sim_delivery *d = &m->deliveries[i];
        assert_int_equal(d->node, i + 1);
        assert_int_equal(d->hops, i + 1);
        assert_int_equal(d->t_ns, 1000000000ull + at[i + 1]);
    }
    assert_int_equal(sim_world_counters(w)->arrivals, 4);
    sim_world_destroy(w);
}

/* The benchmark graph's documented answer: 10 messages, 70,010 deliveries, the last at
 * 9.177 s; the same for the simulator alone (null) and the real engine. */
static uint64_t flood_graph_1000(const char *app)
{
    const struct sim_override ov[] = {
        {"topology.kind", "file"}, {"topology.file", "../shared/data/bench/graph-1000.txt"},
        {"nodes.app", app},        {"duration", "30s"},
        {"workload.updates", "0"},
    };
    struct sim_config cfg;
    load("name: flood\n", ov, sizeof(ov) / sizeof(ov[0]), &cfg);
    struct sim_world *w = NULL;
    char err[256];
    assert_int_equal(sim_world_create(&cfg, NULL, &w, err, sizeof(err)), 0);
    for (uint64_t m = 0; m < 10; m++) {
        assert_int_equal(sim_world_publish_at(w, 0, m * 1000000000ull), 0);
    }
    assert_int_equal(sim_world_run(w, cfg.duration_ns, NULL, NULL), 0);
    const struct sim_counters *c = sim_world_counters(w);
    assert_int_equal(c->arrivals, 70010);
    assert_int_equal((c->last_arrival_ns + 500000) / 1000000, 9177);
    const struct sim_metrics *m = sim_world_metrics(w);
    assert_int_equal(m->update_count, 10);
    assert_int_equal(m->delivery_count, 10 * 999);
    assert_int_equal(m->unknown, 0);
    uint64_t hop_sum = 0;
    for (size_t i = 0; i < m->delivery_count; i++) {
        hop_sum += m->deliveries[i].hops;
    }
    sim_world_destroy(w);
    return hop_sum;
}

/* The engine's flood and the simulator's own (null) give the same arrivals, deliveries and
 * hop counts: frames travel the same paths at the same times. */
static void test_flood_graph_1000(void **state)
{
    (void)state;
    assert_int_equal(flood_graph_1000("null"), flood_graph_1000("flood"));
}

static const char small_gossip[] = "name: small\n"
                                   "seed: 7\n"
                                   "duration: 60s\n"
                                   "nodes: {count: 60, app: gossip}\n"
                                   "topology: {kind: random_regular, degree: 4}\n"
                                   "link: {latency: 20ms, jitter: 5ms, bandwidth: 1Mbps,"
                                   " queue: 16KiB, loss: 10%}\n"
                                   "gossip: {interval: 1s, fanout: 2}\n"
                                   "workload: {updates: 40, rate: 2/s, start: 1s}\n";

/* Gossip over lossy links repairs what push loses: every node ends with every update. */
static void test_gossip_converges_under_loss(void **state)
{
    (void)state;
    struct sim_config cfg;
    load(small_gossip, NULL, 0, &cfg);
    struct sim_world *w = NULL;
    char err[256];
    assert_int_equal(sim_world_create(&cfg, NULL, &w, err, sizeof(err)), 0);
    assert_int_equal(sim_world_run(w, cfg.duration_ns, NULL, NULL), 0);
    const struct sim_metrics *m = sim_world_metrics(w);
    assert_int_equal(m->update_count, 40);
    assert_int_equal(m->delivery_count, 40 * 59);
    assert_true(sim_world_link_stats(w)->lost_loss > 0);
    /* Each node's delivery of each update is recorded exactly once. */
    uint8_t *got = calloc(40 * 60, 1);
    assert_non_null(got);
    for (size_t i = 0; i < m->delivery_count; i++) {
        const struct sim_delivery *d = &m->deliveries[i];
        assert_int_equal(got[d->update * 60 + d->node], 0);
        assert_int_not_equal(d->node, m->updates[d->update].origin);
        got[d->update * 60 + d->node] = 1;
    }
    free(got);
    sim_world_destroy(w);
}

static void run_to(const char *text, const char *seed, int no_sigcache, const char *path,
                   char hash[65])
{
    const struct sim_override ov[] = {{"seed", seed}};
    struct sim_config cfg;
    load(text, ov, 1, &cfg);
    struct sim_run_opts o = {.out_path = path, .world.no_sigcache = no_sigcache};
    struct sim_run_summary s;
    char err[512];
    int rc = sim_run(&cfg, &o, &s, err, sizeof(err));
    if (rc != 0) {
        fail_msg("%s", err);
    }
    assert_int_equal(s.updates, 40);
    assert_int_equal(res_hash(path, hash), 0);
}

static void test_determinism(void **state)
{
    (void)state;
    char dir[] = "/tmp/p4p-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char a[64], b[64], c[64];
    snprintf(a, sizeof(a), "%s/a.sqlite", dir);
    snprintf(b, sizeof(b), "%s/b.sqlite", dir);
    snprintf(c, sizeof(c), "%s/c.sqlite", dir);
    char ha[65], hb[65], hc[65];
    run_to(small_gossip, "7", 0, a, ha);
    run_to(small_gossip, "7", 0, b, hb);
    run_to(small_gossip, "8", 0, c, hc);
    assert_string_equal(ha, hb);
    assert_string_not_equal(ha, hc);
    /* The shared signature cache saves work and changes nothing simulated. */
    run_to(small_gossip, "7", 1, b, hb);
    assert_string_equal(ha, hb);
    unlink(a);
    unlink(b);
    unlink(c);
    rmdir(dir);
}

/* What the run writes is readable and complete: one row per delivery and the run row. */
static void test_results_file_contents(void **state)
{
    (void)state;
    char dir[] = "/tmp/p4p-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], hash[65], err[256];
    snprintf(path, sizeof(path), "%s/r.sqlite", dir);
    run_to(small_gossip, "7", 0, path, hash);
    assert_int_equal(res_check(path, err, sizeof(err)), 0);
    struct sqlite3 *db = NULL;
    assert_int_equal(res_open_check(path, &db, err, sizeof(err)), 0);
    sqlite3_stmt *st = NULL;
    const char *q = "SELECT (SELECT count(*) FROM delivery), (SELECT status FROM run),"
                    " (SELECT count(*) FROM node), (SELECT value FROM scalar"
                    "  WHERE node = -1 AND name = 'coverage'),"
                    " (SELECT value FROM parameter WHERE key = 'link.loss')";
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 40 * 59);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "ok");
    assert_int_equal(sqlite3_column_int(st, 2), 60);
    assert_true(sqlite3_column_double(st, 3) == 1.0);
    assert_string_equal((const char *)sqlite3_column_text(st, 4), "0.1");
    sqlite3_finalize(st);
    sqlite3_close(db);
    unlink(path);
    rmdir(dir);
}

/* Skewed, drifting node clocks: each engine sees its own time, timers still fire when its
 * clock says so, and the network behaves (every update everywhere). */
static void test_node_clocks(void **state)
{
    (void)state;
    static const char text[] = "duration: 100s\nseed: 3\n"
                               "nodes: {count: 40, app: gossip}\n"
                               "topology: {kind: random_regular, degree: 4}\n"
                               "workload: {updates: 30, rate: 1/s, start: 5s}\n"
                               "clock: {skew: 5s, drift: 200}\n";
    struct sim_config cfg;
    load(text, NULL, 0, &cfg);
    struct sim_world *w = NULL;
    char err[256];
    assert_int_equal(sim_world_create(&cfg, NULL, &w, err, sizeof(err)), 0);
    assert_int_equal(sim_world_run(w, cfg.duration_ns, NULL, NULL), 0);
    assert_true(metrics_coverage(sim_world_metrics(w)) == 1.0);
    const double t = 100e9;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint32_t i = 0; i < 40; i++) {
        uint64_t c = sim_world_node_clock(w, i);
        assert_true((double)c >= t * (1 - 200e-6) - 1);
        assert_true((double)c <= t * (1 + 200e-6) + 5e9 + 1);
        lo = c < lo ? c : lo;
        hi = c > hi ? c : hi;
    }
    assert_true(hi - lo > 1000000000ull); /* they really disagree */
    sim_world_destroy(w);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_clocks),      cmocka_unit_test(test_flood_line_exact),
        cmocka_unit_test(test_flood_graph_1000), cmocka_unit_test(test_gossip_converges_under_loss),
        cmocka_unit_test(test_determinism),      cmocka_unit_test(test_results_file_contents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
