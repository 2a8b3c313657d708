/*
 * test_churn.c — devices that come and go, and networks that split: session and offline
 * lengths follow their distributions (means within tolerance of the configured ones over
 * long runs), the engine is told of every link change, a partition stops updates at the cut
 * and healing lets them through, and all of it replays identically from the seed.
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

static struct sim_world *run(const char *text)
{
    struct sim_config cfg;
    char err[256];
    if (sim_scenario_parse(text, strlen(text), "t", ".", NULL, 0, &cfg, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    struct sim_world *w = NULL;
    assert_int_equal(sim_world_create(&cfg, NULL, &w, err, sizeof(err)), 0);
    assert_int_equal(sim_world_run(w, cfg.duration_ns, NULL, NULL), 0);
    return w;
}

static void check_means(const char *dist, double tolerance)
{
    char text[512];
    snprintf(text, sizeof(text),
             "duration: 1d\nseed: 5\nnodes: {count: 100, app: flood}\n"
             "topology: {kind: random_regular, degree: 4}\nworkload: {updates: 0}\n"
             "churn: {session: 60s, offline: 30s, distribution: %s, shape: 3}\n",
             dist);
    struct sim_world *w = run(text);
    double session, offline;
    uint64_t n_session, n_offline;
    sim_world_churn_means(w, &session, &n_session, &offline, &n_offline);
    print_message("%s: %llu sessions, mean %.2f s; %llu offline periods, mean %.2f s\n", dist,
                  (unsigned long long)n_session, session, (unsigned long long)n_offline, offline);
    assert_true(n_session > 50000 && n_offline > 50000);
    assert_true(session > 60 * (1 - tolerance) && session < 60 * (1 + tolerance));
    assert_true(offline > 30 * (1 - tolerance) && offline < 30 * (1 + tolerance));
    sim_world_destroy(w);
}

static void test_exponential(void **state)
{
    (void)state;
    check_means("exponential", 0.02);
}

static void test_weibull(void **state)
{
    (void)state;
    check_means("weibull", 0.02);
}

static void test_pareto(void **state)
{
    (void)state;
    check_means("pareto", 0.04); /* heavier tail: a looser but still tight bound */
}

/* Gossip across a cut: nothing crosses while it lasts, everything after it heals. */
static void test_partition_and_heal(void **state)
{
    (void)state;
    static const char text[] = "duration: 3min\nseed: 2\n"
                               "nodes: {count: 120, app: gossip}\n"
                               "topology: {kind: random_geometric, radius: 0.2}\n"
                               "link: {latency: 20ms}\n"
                               "workload: {updates: 40, rate: 1/s, start: 40s}\n"
                               "partition: {at: 30s, heal: 100s, fraction: 0.5}\n"
                               "metrics: {sample: 1s}\n";
    struct sim_world *w = run(text);
    const struct sim_metrics *m = sim_world_metrics(w);
    double during = 1.0, after = 0;
    for (size_t k = 0; k < m->sample_count; k++) {
        if (m->samples[k].t_ns == 99000000000ull) {
            during = m->samples[k].coverage;
        }
    }
    after = metrics_coverage(m);
    assert_true(during < 0.75); /* about half the network is out of reach */
    assert_true(after == 1.0);
    sim_world_destroy(w);
}

/* Churn with gossip and diurnal sessions: deterministic, and the node counters move. */
static void test_churn_gossip_deterministic(void **state)
{
    (void)state;
    static const char text[] = "duration: 10min\nseed: 8\n"
                               "nodes: {count: 50, app: gossip}\n"
                               "topology: {kind: random_regular, degree: 4}\n"
                               "workload: {updates: 100, rate: 0.5/s, start: 5s}\n"
                               "churn: {session: 2min, offline: 20s, diurnal: 0.5}\n";
    uint64_t deliveries[2];
    for (int k = 0; k < 2; k++) {
        struct sim_world *w = run(text);
        deliveries[k] = sim_world_metrics(w)->delivery_count;
        assert_true(metrics_coverage(sim_world_metrics(w)) > 0.9);
        sim_world_destroy(w);
    }
    assert_int_equal(deliveries[0], deliveries[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_weibull),
        cmocka_unit_test(test_pareto),
        cmocka_unit_test(test_partition_and_heal),
        cmocka_unit_test(test_churn_gossip_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
