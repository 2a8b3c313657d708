/*
 * test_wifi.c — 802.11 OFDM airtime (hand-worked values and the TXTIME formula re-derived),
 * single-station throughput, Bianchi's fixed point against a slot-by-slot simulation of the
 * same backoff procedure, path loss and range; and the Gilbert-Elliott channel: closed forms
 * on known cases and a 10^6-step simulation against them with batch-means error bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>

#include <cmocka.h>

#include "gilbert.h"
#include "p4p/p4p.h"
#include "rng.h"
#include "wifi.h"

#define US 1000ull

static uint64_t ppdu(enum sim_wifi_std std, uint32_t kbps, uint32_t len)
{
    uint64_t ns = 0;
    assert_int_equal(sim_wifi_ppdu_ns(std, kbps, len, &ns), 0);
    return ns;
}

static void test_airtime(void **state)
{
    (void)state;
    /* 1500-byte IP packet + 36 bytes of MAC overhead at 54 Mb/s: (16 + 12288 + 6) / 216 =
     * 56.99 -> 57 symbols: 20 + 228 = 248 us. */
    assert_int_equal(ppdu(SIM_WIFI_11A, 54000, 1536), 248 * US);
    assert_int_equal(ppdu(SIM_WIFI_11A, 6000, 1536), (20 + 513 * 4) * US);
    assert_int_equal(ppdu(SIM_WIFI_11G, 54000, 1536), 254 * US); /* + signal extension */
    assert_int_equal(ppdu(SIM_WIFI_11N, 65000, 1536), (36 + 48 * 4) * US);
    /* ACK (14 bytes, 134 bits): 2 symbols at 24 Mb/s, 3 at 12, 6 at 6. */
    assert_int_equal(ppdu(SIM_WIFI_11A, 24000, 14), 28 * US);
    assert_int_equal(ppdu(SIM_WIFI_11A, 12000, 14), 32 * US);
    assert_int_equal(ppdu(SIM_WIFI_11A, 6000, 14), 44 * US);
    assert_int_equal(sim_wifi_ack_rate_kbps(54000), 24000);
    assert_int_equal(sim_wifi_ack_rate_kbps(18000), 12000);
    assert_int_equal(sim_wifi_ack_rate_kbps(9000), 6000);
    assert_int_equal(sim_wifi_ack_rate_kbps(6500), 6000);
    /* TXTIME = T_PREAMBLE + T_SIGNAL + T_SYM * ceil((16 + 8 LENGTH + 6) / N_DBPS) for every
     * rate and length, re-derived in floating point from the rate in Mb/s. */
    static const double mbps[] = {6, 9, 12, 18, 24, 36, 48, 54};
    for (int i = 0; i < 8; i++) {
        for (uint32_t len = 1; len <= 4095; len += 37) {
            double ndbps = mbps[i] * 4.0;
            double want_us = 16.0 + 4.0 + 4.0 * ceil((16.0 + 8.0 * len + 6.0) / ndbps);
            assert_int_equal(ppdu(SIM_WIFI_11A, (uint32_t)(mbps[i] * 1000), len),
                             (uint64_t)llround(want_us * 1000));
        }
    }
    uint64_t ns;
    uint32_t nd;
    assert_int_equal(sim_wifi_ppdu_ns(SIM_WIFI_11A, 11000, 100, &ns), P4P_EINVAL);
    assert_int_equal(sim_wifi_ppdu_ns(SIM_WIFI_11N, 54000, 100, &ns), P4P_EINVAL);
    assert_int_equal(sim_wifi_ppdu_ns(SIM_WIFI_11A, 54000, 0, &ns), P4P_EINVAL);
    assert_int_equal(sim_wifi_ppdu_ns(SIM_WIFI_11A, 54000, 4096, &ns), P4P_EINVAL);
    assert_int_equal(sim_wifi_ndbps(SIM_WIFI_11N, 58500, &nd), 0);
    assert_int_equal(nd, 234);
    assert_int_equal(sim_wifi_ndbps((enum sim_wifi_std)0, 6000, &nd), P4P_EINVAL);
}

static void test_frame_times_and_single_station(void **state)
{
    (void)state;
    struct sim_wifi_frame f = {.std = SIM_WIFI_11A, .rate_kbps = 54000, .payload_len = 1500};
    struct sim_wifi_times t;
    assert_int_equal(sim_wifi_frame_times(&f, &t), 0);
    assert_int_equal(t.data_ns, 248 * US);
    assert_int_equal(t.ack_ns, 28 * US);
    assert_int_equal(t.success_ns, (248 + 16 + 28 + 34) * US);
    assert_int_equal(t.collision_ns, (248 + 34) * US);
    assert_int_equal(t.mean_backoff_ns, 67500);
    /* 12000 bits every 393.5 us: the well-known ~30 Mb/s ceiling of 54 Mb/s 802.11a. */
    assert_true(fabs(t.single_bps - 12000 / 393.5e-6) < 1e-3);
    /* 802.11g: SIFS 10, DIFS 28, 6 us extension on both frames. */
    f.std = SIM_WIFI_11G;
    assert_int_equal(sim_wifi_frame_times(&f, &t), 0);
    assert_int_equal(t.success_ns, (254 + 10 + 34 + 28) * US);
    /* 802.11n MCS7: HT data frame, legacy ACK at 24 Mb/s. */
    f = (struct sim_wifi_frame){.std = SIM_WIFI_11N, .rate_kbps = 65000, .payload_len = 1500};
    assert_int_equal(sim_wifi_frame_times(&f, &t), 0);
    assert_int_equal(t.data_ns, 228 * US);
    assert_int_equal(t.ack_ns, 28 * US);
    f.payload_len = 0;
    assert_int_equal(sim_wifi_frame_times(&f, &t), P4P_EINVAL);
    f.payload_len = SIM_WIFI_PAYLOAD_MAX + 1;
    assert_int_equal(sim_wifi_frame_times(&f, &t), P4P_EINVAL);
}

static void test_bianchi_fixed_point(void **state)
{
    (void)state;
    double tau, p;
    assert_int_equal(sim_wifi_bianchi_solve(16, 6, 1, &tau, &p), 0);
    assert_true(p == 0);
    assert_true(fabs(tau - 2.0 / 17.0) < 1e-15);
    double prev = 0;
    for (uint32_t n = 2; n <= 100; n++) {
        assert_int_equal(sim_wifi_bianchi_solve(16, 6, n, &tau, &p), 0);
        /* Both of Bianchi's equations hold, (7) in its original form. */
        assert_true(fabs(p - (1 - pow(1 - tau, n - 1))) < 1e-12);
        if (fabs(1 - 2 * p) > 1e-3) {
            double orig = 2 * (1 - 2 * p) / ((1 - 2 * p) * 17 + p * 16 * (1 - pow(2 * p, 6)));
            assert_true(fabs(tau - orig) < 1e-12);
        }
        assert_true(p > prev);
        prev = p;
    }
    assert_int_equal(sim_wifi_bianchi_solve(1, 6, 5, &tau, &p), P4P_EINVAL);
    assert_int_equal(sim_wifi_bianchi_solve(16, 6, 0, &tau, &p), P4P_EINVAL);
}

/*
 * The backoff procedure Bianchi models, simulated slot by slot (a "slot" being an idle slot,
 * a success or a collision): stations whose counter is 0 transmit; a collided station moves
 * to the next backoff stage (capped at m), a successful one to stage 0, and both draw a new
 * counter uniformly from [0, W 2^stage - 1]; the others count down. Returns the measured
 * collision probability per attempt and the throughput.
 */
static void simulate_dcf(uint32_t n, const struct sim_wifi_times *ft, double slot_ns,
                         double payload_bits, uint64_t slots, uint64_t seed, double *p_out,
                         double *bps_out)
{
    enum { NMAX = 64, W = 16, M = 6 };
    assert_true(n <= NMAX);
    uint32_t stage[NMAX], counter[NMAX];
    struct sim_rng r;
    sim_rng_derive(&r, seed, "test-dcf", n);
    for (uint32_t i = 0; i < n; i++) {
        stage[i] = 0;
        counter[i] = (uint32_t)sim_rng_below(&r, W);
    }
    uint64_t attempts = 0, collided = 0, successes = 0;
    double time_ns = 0;
    for (uint64_t s = 0; s < slots; s++) {
        uint32_t tx = 0;
        for (uint32_t i = 0; i < n; i++) {
            tx += counter[i] == 0;
        }
        time_ns += tx == 0 ? slot_ns : tx == 1 ? (double)ft->success_ns : (double)ft->collision_ns;
        attempts += tx;
        successes += tx == 1;
        collided += tx > 1 ? tx : 0;
        for (uint32_t i = 0; i < n; i++) {
            if (counter[i] > 0) {
                counter[i]--;
                continue;
            }
            stage[i] = tx > 1 ? (stage[i] < M ? stage[i] + 1 : M) : 0;
            counter[i] = (uint32_t)sim_rng_below(&r, (uint64_t)W << stage[i]);
        }
    }
    *p_out = (double)collided / (double)attempts;
    *bps_out = (double)successes * payload_bits * 1e9 / time_ns;
}

static void test_bianchi_against_simulation(void **state)
{
    (void)state;
    struct sim_wifi_frame f = {
        .std = SIM_WIFI_11A, .rate_kbps = 54000, .payload_len = 1500, .prop_delay_ns = 1000};
    struct sim_wifi_times ft;
    assert_int_equal(sim_wifi_frame_times(&f, &ft), 0);
    struct sim_wifi_bianchi b;
    /* One station: Bianchi's throughput is the single-station formula. */
    assert_int_equal(sim_wifi_bianchi(&f, 1, &b), 0);
    assert_true(fabs(b.throughput_bps - ft.single_bps) < 1e-6 * ft.single_bps);
    assert_true(b.p == 0);
    static const uint32_t ns[] = {2, 5, 10, 20, 50};
    double prev_p = 0;
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(sim_wifi_bianchi(&f, ns[i], &b), 0);
        double p_sim, bps_sim;
        simulate_dcf(ns[i], &ft, 9000, 12000, 400000, 5, &p_sim, &bps_sim);
        /* Bianchi reports close agreement; the decoupling approximation (each station sees
         * a constant collision probability) is worst for few stations: measured here 5 %
         * in p at n = 2, under 1.5 % from n = 5, and under 0.5 % in throughput. */
        double p_tol = ns[i] == 2 ? 0.06 : 0.025;
        if (fabs(b.p - p_sim) > p_tol * b.p || fabs(b.throughput_bps / bps_sim - 1) > 0.01) {
            fail_msg("n=%u: model p %.4f S %.3f Mb/s, simulated p %.4f S %.3f Mb/s", ns[i], b.p,
                     b.throughput_bps / 1e6, p_sim, bps_sim / 1e6);
        }
        assert_true(b.p > prev_p);
        prev_p = b.p;
        assert_true(fabs(b.efficiency - b.throughput_bps / 54e6) < 1e-12);
    }
    assert_int_equal(sim_wifi_bianchi(&f, 0, &b), P4P_EINVAL);
}

static void test_propagation(void **state)
{
    (void)state;
    /* The usual engineering form: 20 log d[km] + 20 log f[MHz] + 32.45. */
    assert_true(fabs(sim_wifi_fspl_db(1000.0, 1e9) - 92.45) < 0.01);
    assert_true(fabs(sim_wifi_fspl_db(10.0, 2.4e9) - sim_wifi_fspl_db(1.0, 2.4e9) - 20.0) < 1e-9);
    struct sim_wifi_prop ld, tr;
    sim_wifi_prop_default(&ld, SIM_WIFI_LOG_DISTANCE, 5.18e9);
    sim_wifi_prop_default(&tr, SIM_WIFI_TWO_RAY, 2.412e9);
    assert_true(fabs(sim_wifi_path_loss_db(&ld, 1.0) - sim_wifi_fspl_db(1.0, 5.18e9)) < 1e-9);
    assert_true(fabs(sim_wifi_path_loss_db(&ld, 100.0) - sim_wifi_path_loss_db(&ld, 10.0) - 30) <
                1e-9);
    /* Two-ray: free space below the crossover, 40 dB/decade above, continuous at it. */
    double dc = sim_wifi_two_ray_crossover_m(1.5, 1.5, 2.412e9);
    assert_true(fabs(dc - 4 * M_PI * 2.25 / (SIM_WIFI_C_M_PER_S / 2.412e9)) < 1e-9);
    assert_true(fabs(sim_wifi_path_loss_db(&tr, dc) - sim_wifi_fspl_db(dc, 2.412e9)) < 1e-9);
    assert_true(fabs(sim_wifi_path_loss_db(&tr, dc * 1.000001) - sim_wifi_fspl_db(dc, 2.412e9)) <
                1e-3);
    assert_true(fabs(sim_wifi_path_loss_db(&tr, 10 * dc) - sim_wifi_path_loss_db(&tr, dc * 1.0) -
                     40) < 1e-6);
    assert_true(fabs(sim_wifi_path_loss_db(&tr, 10.0) - sim_wifi_fspl_db(10.0, 2.412e9)) < 1e-9);
    /* Range inverts path loss in both models and both regimes. */
    static const double pls[] = {60, 80, 100, 120};
    for (int i = 0; i < 4; i++) {
        double d;
        assert_int_equal(sim_wifi_range_m(&ld, pls[i], &d), 0);
        assert_true(fabs(sim_wifi_path_loss_db(&ld, d) - pls[i]) < 1e-9);
        assert_int_equal(sim_wifi_range_m(&tr, pls[i], &d), 0);
        assert_true(fabs(sim_wifi_path_loss_db(&tr, d) - pls[i]) < 1e-9);
    }
    /* 20 dBm, 54 Mb/s needs -65 dBm: 85 dB, about 18.9 m indoors (n = 3). */
    double d;
    assert_int_equal(sim_wifi_range_m(&ld, 20 - sim_wifi_sensitivity_dbm(SIM_WIFI_11A, 54000), &d),
                     0);
    assert_true(fabs(d - pow(10, (85 - sim_wifi_fspl_db(1, 5.18e9)) / 30)) < 1e-9);
    assert_true(d > 18 && d < 20);
    assert_true(sim_wifi_sensitivity_dbm(SIM_WIFI_11A, 6000) == -82);
    assert_true(sim_wifi_sensitivity_dbm(SIM_WIFI_11G, 24000) == -74);
    assert_true(sim_wifi_sensitivity_dbm(SIM_WIFI_11N, 65000) == -64);
    assert_true(isnan(sim_wifi_sensitivity_dbm(SIM_WIFI_11A, 65000)));
    assert_true(isnan(sim_wifi_path_loss_db(&ld, 0)));
    ld.exponent = 0;
    assert_int_equal(sim_wifi_range_m(&ld, 80, &d), P4P_EINVAL);
}

/* ---- Gilbert-Elliott ----------------------------------------------------------------- */

static void test_ge_closed_forms(void **state)
{
    (void)state;
    /* Simple Gilbert: losses exactly in Bad, bursts are Bad sojourns, mean 1 / r. */
    struct sim_ge_params g = {.p = 0.01, .r = 0.25, .k = 1, .h = 0};
    assert_true(fabs(sim_ge_loss_rate(&g) - 0.01 / 0.26) < 1e-15);
    assert_true(fabs(sim_ge_mean_burst(&g) - 4.0) < 1e-12);
    /* Bernoulli (k = h): runs of losses are geometric, mean 1 / (1 - q). */
    g = (struct sim_ge_params){.p = 0.2, .r = 0.3, .k = 0.9, .h = 0.9};
    assert_true(fabs(sim_ge_loss_rate(&g) - 0.1) < 1e-15);
    assert_true(fabs(sim_ge_mean_burst(&g) - 1 / 0.9) < 1e-12);
    /* Gilbert-Elliott by hand: pi_B = 0.05 / 0.35 = 1/7. */
    g = (struct sim_ge_params){.p = 0.05, .r = 0.3, .k = 0.99, .h = 0.3};
    double pib = 1.0 / 7, pig = 6.0 / 7;
    double loss = pig * 0.01 + pib * 0.7;
    double starts = pig * 0.99 * (0.95 * 0.01 + 0.05 * 0.7) + pib * 0.3 * (0.3 * 0.01 + 0.7 * 0.7);
    assert_true(fabs(sim_ge_loss_rate(&g) - loss) < 1e-15);
    assert_true(fabs(sim_ge_mean_burst(&g) - loss / starts) < 1e-12);
    /* Edges. */
    g = (struct sim_ge_params){.p = 0.1, .r = 0.1, .k = 1, .h = 1};
    assert_true(sim_ge_loss_rate(&g) == 0 && sim_ge_mean_burst(&g) == 0);
    g = (struct sim_ge_params){.p = 0.1, .r = 0.1, .k = 0, .h = 0};
    assert_true(sim_ge_loss_rate(&g) == 1 && isinf(sim_ge_mean_burst(&g)));
    g = (struct sim_ge_params){.p = 0, .r = 0, .k = 1, .h = 0};
    assert_int_equal(sim_ge_check(&g), P4P_EINVAL);
    assert_true(isnan(sim_ge_loss_rate(&g)));
    g = (struct sim_ge_params){.p = 1.5, .r = 0.1, .k = 1, .h = 0};
    assert_int_equal(sim_ge_check(&g), P4P_EINVAL);
    g.p = NAN;
    assert_int_equal(sim_ge_check(&g), P4P_EINVAL);
    struct sim_ge ge;
    struct sim_rng r;
    sim_rng_derive(&r, 1, "x", 0);
    assert_int_equal(sim_ge_init(&ge, &g, &r), P4P_EINVAL);
}

/*
 * 10^6 steps in 100 batches of 10^4. The loss indicator is autocorrelated (its correlation
 * decays as (1 - p - r)^lag), so the standard error comes from the spread of the batch
 * means, which are nearly independent when a batch is much longer than 1 / (p + r). The mean
 * burst is a ratio (losses / burst starts); its error follows from the batch residuals
 * L_i - R B_i (delta method). Each estimate must be within 4 standard errors, and the
 * standard errors must be small enough (< 2 % / 5 % of the value) for that to mean something.
 */
static void check_ge(struct sim_ge_params prm, uint64_t seed)
{
    enum { BATCHES = 100, STEPS = 10000 };
    struct sim_rng r;
    sim_rng_derive(&r, seed, "test-ge", 0);
    struct sim_ge g;
    assert_int_equal(sim_ge_init(&g, &prm, &r), 0);
    double losses[BATCHES], starts[BATCHES];
    int prev_lost = 0;
    for (int b = 0; b < BATCHES; b++) {
        losses[b] = starts[b] = 0;
        for (int s = 0; s < STEPS; s++) {
            int lost = sim_ge_step(&g, &r);
            losses[b] += lost;
            starts[b] += lost && !prev_lost;
            prev_lost = lost;
        }
    }
    double sl = 0, ss = 0;
    for (int b = 0; b < BATCHES; b++) {
        sl += losses[b];
        ss += starts[b];
    }
    double rate = sl / ((double)BATCHES * STEPS), burst = sl / ss;
    double vr = 0, vb = 0;
    for (int b = 0; b < BATCHES; b++) {
        double d = losses[b] / STEPS - rate, e = losses[b] - burst * starts[b];
        vr += d * d;
        vb += e * e;
    }
    double se_rate = sqrt(vr / (BATCHES * (BATCHES - 1.0)));
    double se_burst = sqrt(vb / (BATCHES * (BATCHES - 1.0))) / (ss / BATCHES);
    double want_rate = sim_ge_loss_rate(&prm), want_burst = sim_ge_mean_burst(&prm);
    if (fabs(rate - want_rate) > 4 * se_rate || fabs(burst - want_burst) > 4 * se_burst) {
        fail_msg("p %.3f r %.3f k %.3f h %.3f: loss %.5f (want %.5f, se %.5f), burst %.4f "
                 "(want %.4f, se %.4f)",
                 prm.p, prm.r, prm.k, prm.h, rate, want_rate, se_rate, burst, want_burst, se_burst);
    }
    assert_true(se_rate < 0.02 * want_rate);
    assert_true(se_burst < 0.05 * want_burst);
}

static void test_ge_simulation(void **state)
{
    (void)state;
    check_ge((struct sim_ge_params){.p = 0.01, .r = 0.25, .k = 1, .h = 0}, 1); /* Gilbert */
    check_ge((struct sim_ge_params){.p = 0.05, .r = 0.5, .k = 1, .h = 0}, 2);  /* Gilbert */
    check_ge((struct sim_ge_params){.p = 0.05, .r = 0.3, .k = 0.99, .h = 0.3}, 3);
    check_ge((struct sim_ge_params){.p = 0.005, .r = 0.1, .k = 0.995, .h = 0.2}, 4);
    check_ge((struct sim_ge_params){.p = 0.3, .r = 0.6, .k = 0.8, .h = 0.1}, 5);
    check_ge((struct sim_ge_params){.p = 0.5, .r = 0.5, .k = 0.9, .h = 0.9}, 6); /* Bernoulli */
}

static void test_ge_stationary_start_and_determinism(void **state)
{
    (void)state;
    /* The initial state is drawn from the stationary distribution: pi_B = 0.2. */
    struct sim_ge_params prm = {.p = 0.05, .r = 0.2, .k = 1, .h = 0};
    struct sim_rng r;
    sim_rng_derive(&r, 8, "test-ge-init", 0);
    int bad = 0;
    for (int i = 0; i < 100000; i++) {
        struct sim_ge g;
        assert_int_equal(sim_ge_init(&g, &prm, &r), 0);
        bad += g.bad;
    }
    assert_true(fabs(bad / 100000.0 - 0.2) < 4 * sqrt(0.2 * 0.8 / 100000));
    struct sim_rng r1, r2;
    sim_rng_derive(&r1, 9, "test-ge", 1);
    sim_rng_derive(&r2, 9, "test-ge", 1);
    struct sim_ge g1, g2;
    assert_int_equal(sim_ge_init(&g1, &prm, &r1), 0);
    assert_int_equal(sim_ge_init(&g2, &prm, &r2), 0);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(sim_ge_step(&g1, &r1), sim_ge_step(&g2, &r2));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_airtime),
        cmocka_unit_test(test_frame_times_and_single_station),
        cmocka_unit_test(test_bianchi_fixed_point),
        cmocka_unit_test(test_bianchi_against_simulation),
        cmocka_unit_test(test_propagation),
        cmocka_unit_test(test_ge_closed_forms),
        cmocka_unit_test(test_ge_simulation),
        cmocka_unit_test(test_ge_stationary_start_and_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
