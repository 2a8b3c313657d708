/*
 * test_ble.c — BLE packet airtime against the Core specification's figures, advertising PDU
 * sizes, the discovery simulation against its closed form (and its other start mode, duty
 * cycling, determinism and limits), and connection throughput by hand and by simulation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ble.h"
#include "p4p/p4p.h"
#include "rng.h"

#define US 1000ull
#define MS 1000000ull

static uint64_t air(enum sim_ble_phy phy, uint32_t len)
{
    uint64_t ns = 0;
    assert_int_equal(sim_ble_packet_airtime_ns(phy, len, &ns), 0);
    return ns;
}

/* Core spec v5.x Vol 6 Part B 4.5.10: the packet times of the smallest (27 + MIC) and
 * largest (251 + MIC) data PDUs: LE 1M 328 / 2120 us, LE 2M 2120/2 + 4 = 1064 us (its
 * preamble is 2 bytes), LE Coded S=8 2704 / 17040 us, S=2 4542 us for the largest. */
static void test_packet_airtime(void **state)
{
    (void)state;
    assert_int_equal(air(SIM_BLE_PHY_1M, 27 + 4), 328 * US);
    assert_int_equal(air(SIM_BLE_PHY_1M, 251 + 4), 2120 * US);
    assert_int_equal(air(SIM_BLE_PHY_2M, 251 + 4), 1064 * US);
    assert_int_equal(air(SIM_BLE_PHY_2M, 27 + 4), 168 * US);
    assert_int_equal(air(SIM_BLE_PHY_CODED_S8, 27 + 4), 2704 * US);
    assert_int_equal(air(SIM_BLE_PHY_CODED_S8, 251 + 4), 17040 * US);
    assert_int_equal(air(SIM_BLE_PHY_CODED_S2, 251 + 4), 4542 * US);
    /* Empty PDUs (the acknowledgements): 10 bytes at 1M, 11 at 2M. */
    assert_int_equal(air(SIM_BLE_PHY_1M, 0), 80 * US);
    assert_int_equal(air(SIM_BLE_PHY_2M, 0), 44 * US);
    assert_int_equal(air(SIM_BLE_PHY_CODED_S8, 0), 720 * US);
    assert_int_equal(air(SIM_BLE_PHY_CODED_S2, 0), 462 * US);
    /* Each extra byte: 8, 4, 64 and 16 us. */
    assert_int_equal(air(SIM_BLE_PHY_1M, 101) - air(SIM_BLE_PHY_1M, 100), 8 * US);
    assert_int_equal(air(SIM_BLE_PHY_2M, 101) - air(SIM_BLE_PHY_2M, 100), 4 * US);
    assert_int_equal(air(SIM_BLE_PHY_CODED_S8, 101) - air(SIM_BLE_PHY_CODED_S8, 100), 64 * US);
    assert_int_equal(air(SIM_BLE_PHY_CODED_S2, 101) - air(SIM_BLE_PHY_CODED_S2, 100), 16 * US);
    uint64_t ns;
    assert_int_equal(sim_ble_packet_airtime_ns(SIM_BLE_PHY_1M, 256, &ns), P4P_EINVAL);
    assert_int_equal(sim_ble_packet_airtime_ns((enum sim_ble_phy)9, 10, &ns), P4P_EINVAL);
}

static void test_adv_pdu(void **state)
{
    (void)state;
    uint32_t len;
    assert_int_equal(sim_ble_adv_pdu_len(0, 31, &len), 0);
    assert_int_equal(len, 37);
    assert_int_equal(air(SIM_BLE_PHY_1M, len), 376 * US); /* full ADV_IND: 47 bytes */
    assert_int_equal(sim_ble_adv_pdu_len(0, 32, &len), P4P_EINVAL);
    assert_int_equal(sim_ble_adv_pdu_len(1, 245, &len), 0);
    assert_int_equal(len, 255);
    assert_int_equal(sim_ble_adv_pdu_len(1, 246, &len), P4P_EINVAL);
    struct sim_ble_adv a;
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_1M, 100 * MS, 37), 0);
    assert_int_equal(a.pdu_ns, 376 * US);
    assert_int_equal(a.gap_ns, 526 * US);
    assert_int_equal(a.max_delay_ns, 10 * MS);
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_1M, 19 * MS, 37), P4P_EINVAL);
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_1M, 10241 * MS, 37), P4P_EINVAL);
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_1M, 10240 * MS, 37), 0);
}

/* Runs `n` trials and checks the mean against `want` within 4 standard errors; returns the
 * standard error so callers can check that the bound is tight enough to mean something. */
static double check_mean(const struct sim_ble_adv *a, const struct sim_ble_scan *s, double loss,
                         enum sim_ble_start start, uint32_t n, double want_ns, uint64_t seed)
{
    struct sim_rng r;
    sim_rng_derive(&r, seed, "test-ble-discovery", 0);
    struct sim_ble_discovery_stats st;
    assert_int_equal(sim_ble_discovery_stats(a, s, loss, start, n, &r, &st), 0);
    assert_int_equal(st.trials, n);
    double se = st.sd_ns / sqrt(n);
    if (fabs(st.mean_ns - want_ns) > 4 * se) {
        fail_msg("mean %.1f us, expected %.1f us (se %.1f us)", st.mean_ns / 1e3, want_ns / 1e3,
                 se / 1e3);
    }
    return se;
}

static void test_discovery_closed_form(void **state)
{
    (void)state;
    struct sim_ble_adv a;
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_1M, 100 * MS, 37), 0);
    double mean;
    /* E[X] = 105 ms, E[X^2] = 100^2 + 100 * 10 + 10^2 / 3 ms^2: residual 52.5397 ms. */
    assert_int_equal(sim_ble_discovery_mean_closed(&a, 0, &mean), 0);
    assert_true(fabs(mean - (11033.3333333 / 210.0 * 1e6 + 376e3)) < 1.0);
    /* Continuous scanning on one channel for the whole trial. */
    struct sim_ble_scan s = {.interval_ns = 10240 * MS, .window_ns = 10240 * MS};
    static const double losses[] = {0, 0.3, 0.7};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sim_ble_discovery_mean_closed(&a, losses[i], &mean), 0);
        double se = check_mean(&a, &s, losses[i], SIM_BLE_SCANNER_JOINS, 20000, mean, 1 + i);
        assert_true(4 * se < 0.03 * mean); /* the test can tell a 3 % error */
    }
    /* The shortest interval makes the length bias of the interval the scanner lands in
     * visible: residual (400 + 200 + 33.3) / 50 = 12.667 ms, not E[X] / 2 = 12.5 ms. */
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_1M, 20 * MS, 37), 0);
    assert_int_equal(sim_ble_discovery_mean_closed(&a, 0, &mean), 0);
    assert_true(fabs(mean - (633.333333333 / 50.0 * 1e6 + 376e3)) < 1.0);
    double se = check_mean(&a, &s, 0, SIM_BLE_SCANNER_JOINS, 200000, mean, 5);
    assert_true(4 * se < 0.5 * 0.167e6); /* can see the bias */
    /* A longer interval and no advDelay: the residual is exactly uniform, mean A/2. */
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_2M, 1000 * MS, 37), 0);
    a.max_delay_ns = 0;
    assert_int_equal(sim_ble_discovery_mean_closed(&a, 0.5, &mean), 0);
    assert_true(fabs(mean - (500e6 + 1000e6 + 192e3)) < 1.0);
    check_mean(&a, &s, 0.5, SIM_BLE_SCANNER_JOINS, 20000, mean, 7);
}

static void test_discovery_advertiser_joins(void **state)
{
    (void)state;
    /* A scanner that has been scanning continuously, at a uniform phase of its 37/38/39
     * cycle, hears the new advertiser's first event on whichever channel it is on: latency
     * c * gap + pdu for c = 0, 1, 2 equally likely, mean gap + pdu. */
    struct sim_ble_adv a;
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_1M, 100 * MS, 37), 0);
    a.gap_ns = 1000 * US;
    struct sim_ble_scan s = {.interval_ns = 10240 * MS, .window_ns = 10240 * MS};
    double se =
        check_mean(&a, &s, 0, SIM_BLE_ADVERTISER_JOINS, 20000, (double)(a.gap_ns + a.pdu_ns), 11);
    assert_true(4 * se < 0.05 * (double)(a.gap_ns + a.pdu_ns));
    struct sim_rng r;
    sim_rng_derive(&r, 5, "test-ble", 0);
    for (int i = 0; i < 1000; i++) {
        uint64_t l;
        assert_int_equal(sim_ble_discovery_trial(&a, &s, 0, SIM_BLE_ADVERTISER_JOINS, &r, &l), 0);
        assert_true(l == a.pdu_ns || l == a.gap_ns + a.pdu_ns || l == 2 * a.gap_ns + a.pdu_ns);
    }
}

static void test_discovery_duty_cycled_scanner(void **state)
{
    (void)state;
    struct sim_ble_adv a;
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_1M, 100 * MS, 37), 0);
    struct sim_ble_scan cont = {.interval_ns = 100 * MS, .window_ns = 100 * MS};
    struct sim_ble_scan duty = {.interval_ns = 100 * MS, .window_ns = 10 * MS};
    struct sim_rng r1, r2;
    sim_rng_derive(&r1, 3, "test-ble", 1);
    sim_rng_derive(&r2, 3, "test-ble", 1);
    struct sim_ble_discovery_stats c, d;
    assert_int_equal(sim_ble_discovery_stats(&a, &cont, 0, SIM_BLE_SCANNER_JOINS, 5000, &r1, &c),
                     0);
    assert_int_equal(sim_ble_discovery_stats(&a, &duty, 0, SIM_BLE_SCANNER_JOINS, 5000, &r2, &d),
                     0);
    /* Continuous scanning with channel changes every 100 ms: about the residual plus the
     * mean channel offset (one gap), minus nothing, plus rare straddles: near 53 ms. */
    assert_true(c.mean_ns > 50 * MS && c.mean_ns < 60 * MS);
    /* A 10 % scanner hears a given event on its channel with probability about
     * (10 - 0.376) / 100, so it needs about 10 events: roughly a second. */
    assert_true(d.mean_ns > 600 * MS && d.mean_ns < 1600 * MS);
    assert_true(d.max_ns > d.mean_ns);
    /* Every reception lies wholly inside a window (phase 0 when the scanner joins). */
    struct sim_rng r;
    sim_rng_derive(&r, 3, "test-ble", 4);
    for (int i = 0; i < 5000; i++) {
        uint64_t l;
        assert_int_equal(sim_ble_discovery_trial(&a, &duty, 0, SIM_BLE_SCANNER_JOINS, &r, &l), 0);
        uint64_t start = l - a.pdu_ns;
        assert_true(start % duty.interval_ns + a.pdu_ns <= duty.window_ns);
    }
}

static void test_discovery_deterministic_and_limits(void **state)
{
    (void)state;
    struct sim_ble_adv a;
    assert_int_equal(sim_ble_adv_init(&a, SIM_BLE_PHY_1M, 100 * MS, 37), 0);
    struct sim_ble_scan s = {.interval_ns = 60 * MS, .window_ns = 30 * MS};
    struct sim_rng r1, r2;
    sim_rng_derive(&r1, 99, "test-ble", 2);
    sim_rng_derive(&r2, 99, "test-ble", 2);
    for (int i = 0; i < 200; i++) {
        uint64_t l1, l2;
        assert_int_equal(sim_ble_discovery_trial(&a, &s, 0.2, SIM_BLE_SCANNER_JOINS, &r1, &l1), 0);
        assert_int_equal(sim_ble_discovery_trial(&a, &s, 0.2, SIM_BLE_SCANNER_JOINS, &r2, &l2), 0);
        assert_int_equal(l1, l2);
    }
    uint64_t l;
    struct sim_ble_scan tiny = {.interval_ns = 100 * MS, .window_ns = 300 * US}; /* < PDU */
    assert_int_equal(sim_ble_discovery_trial(&a, &tiny, 0, SIM_BLE_SCANNER_JOINS, &r1, &l),
                     P4P_EINVAL);
    assert_int_equal(sim_ble_discovery_trial(&a, &s, 1.0, SIM_BLE_SCANNER_JOINS, &r1, &l),
                     P4P_EINVAL);
    assert_int_equal(sim_ble_discovery_trial(&a, &s, -0.1, SIM_BLE_SCANNER_JOINS, &r1, &l),
                     P4P_EINVAL);
    assert_int_equal(sim_ble_discovery_trial(&a, &s, 0, (enum sim_ble_start)0, &r1, &l),
                     P4P_EINVAL);
    struct sim_ble_scan wide = {.interval_ns = 100 * MS, .window_ns = 101 * MS};
    assert_int_equal(sim_ble_discovery_trial(&a, &wide, 0, SIM_BLE_SCANNER_JOINS, &r1, &l),
                     P4P_EINVAL);
    /* Without advDelay, a 1 ms window locked at the wrong phase never hears anything: the
     * trial gives up after 10^6 events instead of looping. */
    a.max_delay_ns = 0;
    struct sim_ble_scan narrow = {.interval_ns = 100 * MS, .window_ns = 1 * MS};
    struct sim_rng r;
    sim_rng_derive(&r, 1, "test-ble", 3);
    assert_int_equal(sim_ble_discovery_trial(&a, &narrow, 0, SIM_BLE_SCANNER_JOINS, &r, &l),
                     P4P_EAGAIN);
}

static struct sim_ble_conn conn(enum sim_ble_phy phy, uint64_t interval_ns, uint32_t dl)
{
    return (struct sim_ble_conn){.phy = phy, .interval_ns = interval_ns, .data_length = dl};
}

static double tput(struct sim_ble_conn c, double loss, uint32_t *k)
{
    struct sim_ble_conn_result o;
    assert_int_equal(sim_ble_conn_throughput(&c, loss, &o), 0);
    if (k != NULL) {
        *k = o.packets_per_event;
    }
    return o.throughput_bps;
}

static void test_conn_throughput(void **state)
{
    (void)state;
    uint32_t k;
    /* 1M, 251-byte PDUs: exchange 2088 + 150 + 80 + 150 = 2468 us; 3 per 7.5 ms event;
     * 244 application bytes each. */
    assert_true(fabs(tput(conn(SIM_BLE_PHY_1M, 7500 * US, 251), 0, &k) - 3 * 244 * 8 / 7.5e-3) <
                1e-6);
    assert_int_equal(k, 3);
    /* 2M: 1048 + 44 + 300 = 1392 us -> 5 per event. */
    assert_true(fabs(tput(conn(SIM_BLE_PHY_2M, 7500 * US, 251), 0, &k) - 5 * 244 * 8 / 7.5e-3) <
                1e-6);
    assert_int_equal(k, 5);
    /* 27-byte PDUs (20-byte notifications): 296 + 80 + 300 = 676 us -> 11 per event. */
    assert_true(fabs(tput(conn(SIM_BLE_PHY_1M, 7500 * US, 27), 0, &k) - 11 * 20 * 8 / 7.5e-3) <
                1e-6);
    /* Coded S=8: 2448 + 720 + 300 = 3468 us -> 2 per event. */
    assert_true(fabs(tput(conn(SIM_BLE_PHY_CODED_S8, 7500 * US, 27), 0, &k) - 2 * 20 * 8 / 7.5e-3) <
                1e-6);
    /* A 1 s interval approaches the per-exchange limit 244 * 8 / 2.468 ms. */
    assert_true(fabs(tput(conn(SIM_BLE_PHY_1M, 1000 * MS, 251), 0, &k) - 405 * 244 * 8.0) < 1e-6);
    /* Limits: packets per event, event length, encryption. */
    struct sim_ble_conn c = conn(SIM_BLE_PHY_1M, 30 * MS, 251);
    c.max_packets_per_event = 4;
    assert_true(fabs(tput(c, 0, &k) - 4 * 244 * 8 / 30e-3) < 1e-6);
    c = conn(SIM_BLE_PHY_1M, 30 * MS, 251);
    c.max_event_ns = 5 * MS;
    tput(c, 0, &k);
    assert_int_equal(k, 2);
    c.max_event_ns = 3 * 2468 * US - 100 * US; /* the third exchange's closing T_IFS overruns */
    tput(c, 0, &k);
    assert_int_equal(k, 2);
    c.max_event_ns = 3 * 2468 * US;
    tput(c, 0, &k);
    assert_int_equal(k, 3);
    c = conn(SIM_BLE_PHY_1M, 7500 * US, 251);
    c.encrypted = 1;
    struct sim_ble_conn_result o;
    assert_int_equal(sim_ble_conn_throughput(&c, 0, &o), 0);
    assert_int_equal(o.data_packet_ns, 2120 * US);
    assert_int_equal(o.exchange_ns, 2500 * US);
    assert_int_equal(o.packets_per_event, 3);
    /* Loss: the first lost packet ends the event. */
    assert_int_equal(sim_ble_conn_throughput(&c, 0.1, &o), 0);
    assert_true(fabs(o.packets_per_event_mean - (0.9 + 0.81 + 0.729)) < 1e-12);
    /* Bad parameters. */
    c = conn(SIM_BLE_PHY_1M, 7500 * US + 1, 251);
    assert_int_equal(sim_ble_conn_check(&c), P4P_EINVAL);
    c = conn(SIM_BLE_PHY_1M, 6250 * US, 251);
    assert_int_equal(sim_ble_conn_check(&c), P4P_EINVAL);
    c = conn(SIM_BLE_PHY_1M, 4001250 * US, 251);
    assert_int_equal(sim_ble_conn_check(&c), P4P_EINVAL);
    c = conn(SIM_BLE_PHY_1M, 4000 * MS, 251);
    assert_int_equal(sim_ble_conn_check(&c), 0);
    c = conn(SIM_BLE_PHY_1M, 30 * MS, 26);
    assert_int_equal(sim_ble_conn_check(&c), P4P_EINVAL);
    c = conn(SIM_BLE_PHY_1M, 30 * MS, 252);
    assert_int_equal(sim_ble_conn_check(&c), P4P_EINVAL);
    c = conn(SIM_BLE_PHY_1M, 30 * MS, 251);
    assert_int_equal(sim_ble_conn_throughput(&c, 1.0, &o), P4P_EINVAL);
}

static void test_conn_transfer_matches_closed_form(void **state)
{
    (void)state;
    static const double losses[] = {0, 0.05, 0.2, 0.5};
    struct sim_ble_conn c = conn(SIM_BLE_PHY_1M, 30 * MS, 251);
    for (size_t i = 0; i < 4; i++) {
        struct sim_rng r;
        sim_rng_derive(&r, 17, "test-ble-transfer", i);
        uint64_t t, events;
        const uint64_t bytes = 10000000;
        assert_int_equal(sim_ble_conn_transfer(&c, losses[i], bytes, &r, &t, &events), 0);
        double sim = bytes * 8.0 / ((double)t / 1e9);
        double want = tput(c, losses[i], NULL);
        if (fabs(sim / want - 1) > 0.02) {
            fail_msg("loss %.2f: simulated %.0f b/s, closed form %.0f b/s", losses[i], sim, want);
        }
        if (losses[i] == 0) {
            /* 40984 packets, 12 per event: 3416 events, the last carrying 4. */
            assert_int_equal(events, 3416);
            assert_int_equal(t, 3415 * 30 * MS + 4 * 2468 * US - 150 * US);
        }
    }
    struct sim_rng r;
    sim_rng_derive(&r, 1, "x", 0);
    uint64_t t, e;
    assert_int_equal(sim_ble_conn_transfer(&c, 0, 0, &r, &t, &e), P4P_EINVAL);
    c.max_event_ns = 1 * MS; /* not even one exchange fits */
    assert_int_equal(sim_ble_conn_transfer(&c, 0, 100, &r, &t, &e), P4P_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packet_airtime),
        cmocka_unit_test(test_adv_pdu),
        cmocka_unit_test(test_discovery_closed_form),
        cmocka_unit_test(test_discovery_advertiser_joins),
        cmocka_unit_test(test_discovery_duty_cycled_scanner),
        cmocka_unit_test(test_discovery_deterministic_and_limits),
        cmocka_unit_test(test_conn_throughput),
        cmocka_unit_test(test_conn_transfer_matches_closed_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
