/*
 * test_link.c — the p2p link model on hand-built graphs: exact serialisation and latency,
 * queue-limit drops, Bernoulli loss rate, jitter bounds, MTU, missing links, broadcast.
 * The world is replaced by a recorder of arrivals (sim_world_arrive is defined here).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gilbert.h"
#include "link.h"
#include "scenario.h"

struct arrival {
    uint32_t dst, src;
    uint64_t at;
    size_t len;
};

static struct arrival arrivals[200000];
static size_t arrival_count;

void sim_world_arrive(struct sim_world *w, uint32_t dst, uint64_t at_ns, uint32_t src,
                      const struct p4p_frame *f)
{
    (void)w;
    assert_true(arrival_count < sizeof(arrivals) / sizeof(arrivals[0]));
    arrivals[arrival_count++] = (struct arrival){dst, src, at_ns, f->len};
}

/* A star: node 0 linked to 1..n-1. */
static void star(struct sim_graph *g, uint32_t n, uint32_t *off, uint32_t *adj)
{
    memset(g, 0, sizeof(*g));
    g->n = n;
    g->edges = n - 1;
    off[0] = 0;
    off[1] = n - 1;
    for (uint32_t i = 1; i < n; i++) {
        adj[i - 1] = i;
        off[i + 1] = off[i] + 1;
        adj[n - 1 + i - 1] = 0;
    }
    g->off = off;
    g->adj = adj;
}

static struct sim_link_model *model(const char *link_yaml, const struct sim_graph *g)
{
    struct sim_config cfg;
    char err[256];
    int rc =
        sim_scenario_parse(link_yaml, strlen(link_yaml), "t", ".", NULL, 0, &cfg, err, sizeof(err));
    if (rc != 0) {
        fail_msg("%s", err);
    }
    struct sim_link_model *m = NULL;
    assert_int_equal(sim_link_p2p_create(&cfg, g, 1, &m), 0);
    arrival_count = 0;
    return m;
}

static void send(struct sim_link_model *m, uint32_t src, p4p_addr dst, size_t len, uint64_t now)
{
    static uint8_t bytes[2000];
    struct p4p_frame f = {0, dst, bytes, len};
    m->ops->send(m, NULL, src, &f, now);
}

static void test_serialisation_and_latency(void **state)
{
    (void)state;
    uint32_t off[3], adj[2];
    struct sim_graph g;
    star(&g, 2, off, adj);
    /* 8000 bit/s = 1000 bytes/s: 100 bytes take 100 ms on the wire. */
    struct sim_link_model *m = model("link: {latency: 10ms, bandwidth: 8kbps}\n", &g);
    for (int i = 0; i < 3; i++) {
        send(m, 0, 1, 100, 0);
    }
    send(m, 0, 1, 100, 1000000000); /* the link is idle again by then */
    assert_int_equal(arrival_count, 4);
    const uint64_t want[] = {110000000, 210000000, 310000000, 1110000000};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(arrivals[i].at, want[i]);
        assert_int_equal(arrivals[i].dst, 1);
        assert_int_equal(arrivals[i].src, 0);
    }
    /* Each direction has its own transmitter. */
    send(m, 1, 0, 100, 0);
    assert_int_equal(arrivals[4].at, 110000000);
    assert_int_equal(m->stats.frames_sent, 5);
    assert_int_equal(m->stats.bytes_sent, 500);
    m->ops->destroy(m);
}

static void test_queue_limit(void **state)
{
    (void)state;
    uint32_t off[3], adj[2];
    struct sim_graph g;
    star(&g, 2, off, adj);
    struct sim_link_model *m = model("link: {latency: 0, bandwidth: 8kbps, queue: 250B}\n", &g);
    send(m, 0, 1, 100, 0); /* transmitting: 100 bytes ahead of the next */
    send(m, 0, 1, 100, 0); /* 200 bytes ahead */
    send(m, 0, 1, 100, 0); /* 200 + 100 > 250: dropped */
    send(m, 0, 1, 50, 0);  /* 200 + 50 fits */
    assert_int_equal(m->stats.lost_queue, 1);
    assert_int_equal(arrival_count, 3);
    assert_int_equal(arrivals[2].at, 250000000);
    /* At 100 ms, 150 bytes are still ahead (half the first frame and the others): 101 more
     * do not fit, 100 do. */
    send(m, 0, 1, 101, 100000000);
    assert_int_equal(m->stats.lost_queue, 2);
    send(m, 0, 1, 100, 100000000);
    assert_int_equal(m->stats.lost_queue, 2);
    assert_int_equal(arrivals[arrival_count - 1].at, 350000000);
    m->ops->destroy(m);
}

static void test_loss_rate_and_jitter(void **state)
{
    (void)state;
    uint32_t off[3], adj[2];
    struct sim_graph g;
    star(&g, 2, off, adj);
    struct sim_link_model *m = model("link: {latency: 20ms, jitter: 4ms, loss: 30%}\n", &g);
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        send(m, 0, 1, 64, 1000);
    }
    double lost = (double)m->stats.lost_loss / n;
    assert_true(lost > 0.29 && lost < 0.31); /* 7 standard deviations */
    assert_int_equal(arrival_count + m->stats.lost_loss, n);
    double sum = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < arrival_count; i++) {
        uint64_t d = arrivals[i].at - 1000 - 20000000;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += (double)d;
    }
    assert_true(hi <= 4000000);
    assert_true(lo < 100000 && hi > 3900000);
    double mean = sum / (double)arrival_count;
    assert_true(mean > 1.98e6 && mean < 2.02e6);
    m->ops->destroy(m);
}

/* Gilbert-Elliott on a link: over a long run the loss rate and the mean run of consecutive
 * losses match the closed forms (sim/gilbert.h). */
static void test_gilbert_elliott(void **state)
{
    (void)state;
    uint32_t off[3], adj[2];
    struct sim_graph g;
    star(&g, 2, off, adj);
    struct sim_link_model *m =
        model("link: {latency: 1ms, ge_p: 0.02, ge_r: 0.25, ge_k: 0.99, ge_h: 0.3}\n", &g);
    const struct sim_ge_params prm = {0.02, 0.25, 0.99, 0.3};
    const int n = 200000;
    uint64_t runs = 0, prev_lost = 0;
    for (int i = 0; i < n; i++) {
        uint64_t before = m->stats.lost_loss;
        send(m, 0, 1, 64, 1000);
        uint64_t lost = m->stats.lost_loss > before;
        runs += lost && !prev_lost;
        prev_lost = lost;
    }
    double rate = (double)m->stats.lost_loss / n, burst = (double)m->stats.lost_loss / (double)runs;
    double want_rate = sim_ge_loss_rate(&prm), want_burst = sim_ge_mean_burst(&prm);
    assert_true(fabs(rate - want_rate) < 0.1 * want_rate);
    assert_true(fabs(burst - want_burst) < 0.1 * want_burst);
    assert_true(burst > 1.3); /* bursty, unlike Bernoulli loss of the same rate (~1.07) */
    m->ops->destroy(m);
}

/* link.latency_max: one latency per link, uniform in [latency, latency_max], both ways. */
static void test_uniform_latency(void **state)
{
    (void)state;
    enum { N = 200 };
    static uint32_t off[N + 1], adj[2 * (N - 1)];
    struct sim_graph g;
    star(&g, N, off, adj);
    struct sim_link_model *m = model("link: {latency: 10ms, latency_max: 30ms}\n", &g);
    arrival_count = 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint32_t v = 1; v < N; v++) {
        send(m, 0, v, 64, 0);
        send(m, v, 0, 64, 0);
        uint64_t a = arrivals[arrival_count - 2].at, b = arrivals[arrival_count - 1].at;
        assert_int_equal(a, b); /* the same latency both ways */
        assert_true(a >= 10000000 && a <= 30000000);
        lo = a < lo ? a : lo;
        hi = a > hi ? a : hi;
    }
    assert_true(lo < 12000000 && hi > 28000000); /* spread over the range */
    m->ops->destroy(m);
}

static void test_mtu_no_link_broadcast(void **state)
{
    (void)state;
    uint32_t off[5], adj[6];
    struct sim_graph g;
    star(&g, 4, off, adj);
    struct sim_link_model *m = model("link: {latency: 1ms, mtu: 500B}\n", &g);
    send(m, 0, 1, 501, 0);
    assert_int_equal(m->stats.lost_mtu, 1);
    send(m, 1, 2, 10, 0); /* leaves are not linked to each other */
    send(m, 1, 77, 10, 0);
    assert_int_equal(m->stats.lost_no_link, 2);
    assert_int_equal(arrival_count, 0);
    send(m, 0, P4P_ADDR_BROADCAST, 10, 5);
    assert_int_equal(arrival_count, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(arrivals[i].dst, i + 1);
        assert_int_equal(arrivals[i].at, 1000005);
    }
    m->ops->destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serialisation_and_latency),
        cmocka_unit_test(test_queue_limit),
        cmocka_unit_test(test_loss_rate_and_jitter),
        cmocka_unit_test(test_gilbert_elliott),
        cmocka_unit_test(test_uniform_latency),
        cmocka_unit_test(test_mtu_no_link_broadcast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
