/*
 * test_lora.c — LoRa time on air against published calculator values and an independent
 * re-derivation, the EU868 sub-band table and US915 dwell limit, both duty-cycle ledger
 * modes (hand-worked cases and a brute-force check of the sliding hour), reception and range,
 * and the collision rules case by case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lora.h"
#include "p4p/p4p.h"
#include "rng.h"

#define MS 1000000ull
#define S  1000000000ull

static struct sim_lora_phy phy(uint8_t sf, uint32_t bw_hz, uint8_t cr)
{
    struct sim_lora_phy p;
    sim_lora_phy_default(&p, sf);
    p.bw_hz = bw_hz;
    p.cr = cr;
    return p;
}

static uint64_t airtime_ns(const struct sim_lora_phy *p, uint32_t len)
{
    struct sim_lora_airtime a;
    assert_int_equal(sim_lora_airtime(p, len, &a), 0);
    return a.airtime_ns;
}

static void test_reference_example(void **state)
{
    (void)state;
    struct sim_lora_phy p = phy(7, 125000, 1);
    struct sim_lora_airtime a;
    assert_int_equal(sim_lora_airtime(&p, 20, &a), 0);
    assert_int_equal(a.airtime_ns, 56576000);
    assert_int_equal(a.preamble_ns, 12544000);
    assert_int_equal(a.symbol_ns, 1024000);
    assert_int_equal(a.payload_symbols, 43);
    assert_int_equal(a.ldro, 0);
    assert_true(fabs(a.airtime_ms - 56.576) < 1e-9);
    assert_true(fabs(a.preamble_ms - 12.544) < 1e-9);
}

/*
 * Published time-on-air values, each checked by hand against the datasheet formula before
 * being put here. Columns: SF, BW kHz, CR (4/(4+cr)), preamble, implicit header, CRC, LDRO,
 * payload bytes, the published value in microseconds, and how precisely it was published.
 *
 * [S] Semtech LoRa Calculator (SX1261 and LR1110 editions), exact microseconds, as recorded
 *     in RadioLib's extras/test/unit/tests/TestTimeOnAir.cpp (jgromes/RadioLib); the
 *     SX126x formula equals the SX127x one for SF7-12. The SX1276 calculator values there
 *     are published to 10 us.
 * [L] loratools.nl airtime calculator, truncated to whole milliseconds, as recorded in
 *     lorareg_tests.erl (helium/lorareg).
 * [T] Thomas Telkamp's LoRa airtime spreadsheet (formulas from AN1200.13), shared by The
 *     Things Network: SF9, 13 bytes -> Tpacket 164.864 ms.
 * [C] The Things Network console as quoted on its forum ("About Duty Cycle and sub-bands",
 *     thethingsnetwork.org/forum/t/25583): SF12BW125, 4 + 13 bytes -> 1318.9 ms.
 * [P] lorawan_toa's unit tests (tanupoo/lorawan_toa), which compare with the Semtech
 *     calculator: 64 bytes SF12 DE=0 2465.792, DE=1 2793.472; 255 bytes SF7 BW500 DE=0
 *     99.904, DE=1 137.024 ms.
 * [B] The task's reference: SF7 BW125 CR4/5, 20 bytes -> 56.576 ms, and SF12 BW125 CR4/5
 *     51 bytes -> 2465.792 ms (TTN calculator). The task's other examples were mislabelled
 *     and are corrected here: 118.016 ms is SF7 with 64 bytes (not 51), 370.688 ms is SF10
 *     with 20 bytes, 698.368 ms is SF10 with 64 bytes; its "SF11 51 bytes = 1478.656 ms"
 *     matches no standard setting (SF11 51 bytes is 1314.816 ms, see [L]) and is left out.
 */
enum { ON = SIM_LORA_LDRO_ON, OFF = SIM_LORA_LDRO_OFF, AUTO = SIM_LORA_LDRO_AUTO };

struct published {
    uint8_t sf;
    uint16_t bw_khz;
    uint8_t cr;
    uint16_t preamble;
    uint8_t implicit, crc;
    int ldro;
    uint16_t len;
    uint64_t us;         /* the published value, microseconds */
    uint64_t resolution; /* 1: exact; 10: to 10 us; 100: to 0.1 ms; 1000: truncated ms */
};

static const struct published published[] = {
    /* [B] */
    {7, 125, 1, 8, 0, 1, AUTO, 20, 56576, 1},
    {12, 125, 1, 8, 0, 1, AUTO, 51, 2465792, 1},
    {7, 125, 1, 8, 0, 1, AUTO, 64, 118016, 1},
    {10, 125, 1, 8, 0, 1, AUTO, 20, 370688, 1},
    {10, 125, 1, 8, 0, 1, AUTO, 64, 698368, 1},
    /* [S] SX1261 calculator: SF7 BW125 CR4/5, preamble 8, explicit, CRC, LDRO forced on */
    {7, 125, 1, 8, 0, 1, ON, 1, 30976, 1},
    {7, 125, 1, 8, 0, 1, ON, 10, 46336, 1},
    {7, 125, 1, 8, 0, 1, ON, 50, 128256, 1},
    {7, 125, 1, 8, 0, 1, ON, 255, 548096, 1},
    /* [S] SX1261 calculator: SF11 BW250 CR4/8, preamble 16, implicit, no CRC, LDRO off */
    {11, 250, 4, 16, 1, 0, OFF, 5, 296960, 1},
    {11, 250, 4, 16, 1, 0, OFF, 15, 362496, 1},
    {11, 250, 4, 16, 1, 0, OFF, 100, 1411072, 1},
    {11, 250, 4, 16, 1, 0, OFF, 200, 2590720, 1},
    /* [S] LR1110 calculator: SF10 BW250 CR4/5, preamble 8, explicit, CRC, LDRO on */
    {10, 250, 1, 8, 0, 1, ON, 1, 103424, 1},
    {10, 250, 1, 8, 0, 1, ON, 20, 205824, 1},
    {10, 250, 1, 8, 0, 1, ON, 100, 615424, 1},
    /* [S] LR1110 calculator: SF11 BW500 CR4/6, preamble 32, implicit, no CRC, LDRO off */
    {11, 500, 2, 32, 1, 0, OFF, 10, 205824, 1},
    {11, 500, 2, 32, 1, 0, OFF, 25, 279552, 1},
    {11, 500, 2, 32, 1, 0, OFF, 200, 1065984, 1},
    /* [S] SX1276 calculator (10 us): SF8 BW250 CR4/8, preamble 32, implicit, CRC, LDRO off */
    {8, 250, 4, 32, 1, 1, OFF, 10, 69890, 10},
    {8, 250, 4, 32, 1, 1, OFF, 20, 86270, 10},
    {8, 250, 4, 32, 1, 1, OFF, 80, 209150, 10},
    {8, 250, 4, 32, 1, 1, OFF, 160, 372990, 10},
    /* [L] BW125 CR4/5, preamble 8, explicit, CRC; LDRO on for SF11/12 */
    {12, 125, 1, 8, 0, 1, ON, 7, 991000, 1000},
    {12, 125, 1, 8, 0, 1, ON, 51, 2465000, 1000},
    {11, 125, 1, 8, 0, 1, ON, 7, 495000, 1000},
    {11, 125, 1, 8, 0, 1, ON, 51, 1314000, 1000},
    {10, 125, 1, 8, 0, 1, OFF, 7, 247000, 1000},
    {10, 125, 1, 8, 0, 1, OFF, 51, 616000, 1000},
    {9, 125, 1, 8, 0, 1, OFF, 7, 123000, 1000},
    {9, 125, 1, 8, 0, 1, OFF, 51, 328000, 1000},
    {8, 125, 1, 8, 0, 1, OFF, 7, 72000, 1000},
    {8, 125, 1, 8, 0, 1, OFF, 51, 184000, 1000},
    {7, 125, 1, 8, 0, 1, OFF, 7, 36000, 1000},
    {7, 125, 1, 8, 0, 1, OFF, 51, 102000, 1000},
    /* [T] and [C] */
    {9, 125, 1, 8, 0, 1, OFF, 13, 164864, 1},
    {12, 125, 1, 8, 0, 1, AUTO, 17, 1318900, 100},
    /* [P] */
    {12, 125, 1, 8, 0, 1, OFF, 64, 2465792, 1},
    {12, 125, 1, 8, 0, 1, ON, 64, 2793472, 1},
    {7, 500, 1, 8, 0, 1, OFF, 255, 99904, 1},
    {7, 500, 1, 8, 0, 1, ON, 255, 137024, 1},
};

static void test_published_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(published) / sizeof(published[0]); i++) {
        const struct published *v = &published[i];
        struct sim_lora_phy p = {
            .sf = v->sf,
            .bw_hz = v->bw_khz * 1000u,
            .cr = v->cr,
            .preamble_symbols = v->preamble,
            .implicit_header = v->implicit,
            .crc = v->crc,
            .ldro = (enum sim_lora_ldro)v->ldro,
        };
        uint64_t us_exact = airtime_ns(&p, v->len) / 1000;
        uint64_t got;
        if (v->resolution == 1000) {
            got = us_exact / 1000 * 1000; /* truncated, as published */
        } else {
            got = (us_exact + v->resolution / 2) / v->resolution * v->resolution; /* rounded */
        }
        if (got != v->us) {
            fail_msg("row %zu: SF%u BW%u %u bytes: %llu us, published %llu", i, v->sf, v->bw_khz,
                     v->len, (unsigned long long)us_exact, (unsigned long long)v->us);
        }
    }
}

/* The datasheet formula written the SX126x way, in floating point: symbols =
 * Npre + 4.25 + 8 + ceil(max(8 PL + CRC bits - 4 SF + 8 + header bits, 0) / (4 (SF - 2 DE)))
 * * (CR + 4), times 2^SF / BW. */
static double rederived_ms(int sf, double bw_hz, int cr, int preamble, int implicit, int crc,
                           int ldro, int len)
{
    double tsym_ms = pow(2.0, sf) / bw_hz * 1000.0;
    int de = ldro == SIM_LORA_LDRO_ON || (ldro == SIM_LORA_LDRO_AUTO && tsym_ms > 16.0);
    double bits = 8.0 * len + (crc ? 16.0 : 0.0) - 4.0 * sf + 8.0 + (implicit ? 0.0 : 20.0);
    double blocks = ceil(fmax(bits, 0.0) / (4.0 * (sf - 2 * de)));
    return (preamble + 4.25 + 8.0 + blocks * (cr + 4)) * tsym_ms;
}

static void test_rederivation_everywhere(void **state)
{
    (void)state;
    static const uint32_t bws[] = {125000, 250000, 500000};
    static const uint16_t lens[] = {1, 2, 5, 12, 13, 20, 33, 51, 64, 100, 128, 222, 242, 255};
    static const int ldros[] = {AUTO, ON, OFF};
    size_t checked = 0;
    for (uint8_t sf = 7; sf <= 12; sf++) {
        for (size_t b = 0; b < 3; b++) {
            for (uint8_t cr = 1; cr <= 4; cr++) {
                for (int flags = 0; flags < 4; flags++) {
                    for (size_t d = 0; d < 3; d++) {
                        for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
                            struct sim_lora_phy p = {
                                .sf = sf,
                                .bw_hz = bws[b],
                                .cr = cr,
                                .preamble_symbols = (uint16_t)(6 + (flags + k) % 11),
                                .implicit_header = (uint8_t)(flags & 1),
                                .crc = (uint8_t)((flags >> 1) & 1),
                                .ldro = (enum sim_lora_ldro)ldros[d],
                            };
                            double want = rederived_ms(sf, bws[b], cr, p.preamble_symbols,
                                                       p.implicit_header, p.crc, ldros[d], lens[k]);
                            struct sim_lora_airtime a;
                            assert_int_equal(sim_lora_airtime(&p, lens[k], &a), 0);
                            if (fabs(a.airtime_ms - want) > 1e-6) {
                                fail_msg("SF%u BW%u CR4/%u pre %u IH %u CRC %u LDRO %d %u B: "
                                         "%.6f ms, rederived %.6f",
                                         sf, bws[b], cr + 4, p.preamble_symbols, p.implicit_header,
                                         p.crc, ldros[d], lens[k], a.airtime_ms, want);
                            }
                            assert_int_equal(a.airtime_ns, a.preamble_ns + a.payload_ns);
                            checked++;
                        }
                    }
                }
            }
        }
    }
    assert_int_equal(checked, 6 * 3 * 4 * 4 * 3 * 14);
}

static void test_ldro_auto_and_coding_rates(void **state)
{
    (void)state;
    struct sim_lora_airtime a;
    struct sim_lora_phy p = phy(11, 125000, 1); /* 16.384 ms symbols: on */
    assert_int_equal(sim_lora_airtime(&p, 10, &a), 0);
    assert_int_equal(a.ldro, 1);
    p = phy(12, 250000, 1); /* 16.384 ms: on */
    assert_int_equal(sim_lora_airtime(&p, 10, &a), 0);
    assert_int_equal(a.ldro, 1);
    p = phy(10, 125000, 1); /* 8.192 ms: off */
    assert_int_equal(sim_lora_airtime(&p, 10, &a), 0);
    assert_int_equal(a.ldro, 0);
    p = phy(12, 500000, 1); /* 8.192 ms: off */
    assert_int_equal(sim_lora_airtime(&p, 10, &a), 0);
    assert_int_equal(a.ldro, 0);
    /* SF7 BW125 20 bytes: ceil(176/28) = 7 blocks of (4 + cr) symbols after the first 8. */
    for (uint8_t cr = 1; cr <= 4; cr++) {
        p = phy(7, 125000, cr);
        assert_int_equal(sim_lora_airtime(&p, 20, &a), 0);
        assert_int_equal(a.payload_symbols, 8 + 7 * (4 + cr));
        assert_int_equal(a.airtime_ns, 12544000 + (8 + 7 * (4 + cr)) * 1024000ull);
    }
    /* A payload so short that the numerator is <= 0 still has its 8 header symbols:
     * implicit header, no CRC, SF12, 1 byte: 8 - 48 + 28 - 20 = -32. */
    p = phy(12, 125000, 1);
    p.implicit_header = 1;
    p.crc = 0;
    assert_int_equal(sim_lora_airtime(&p, 1, &a), 0);
    assert_int_equal(a.payload_symbols, 8);
}

static void test_invalid_phy(void **state)
{
    (void)state;
    struct sim_lora_airtime a = {0};
    struct sim_lora_phy p = phy(7, 125000, 1);
    assert_int_equal(sim_lora_airtime(&p, 0, &a), P4P_EINVAL);
    assert_int_equal(sim_lora_airtime(&p, 256, &a), P4P_EINVAL);
    p.sf = 6;
    assert_int_equal(sim_lora_airtime(&p, 10, &a), P4P_EINVAL);
    p.sf = 13;
    assert_int_equal(sim_lora_airtime(&p, 10, &a), P4P_EINVAL);
    p = phy(7, 200000, 1);
    assert_int_equal(sim_lora_airtime(&p, 10, &a), P4P_EINVAL);
    p = phy(7, 125000, 0);
    assert_int_equal(sim_lora_airtime(&p, 10, &a), P4P_EINVAL);
    p = phy(7, 125000, 5);
    assert_int_equal(sim_lora_airtime(&p, 10, &a), P4P_EINVAL);
    p = phy(7, 125000, 1);
    p.preamble_symbols = 5;
    assert_int_equal(sim_lora_airtime(&p, 10, &a), P4P_EINVAL);
    p.preamble_symbols = 8;
    p.ldro = (enum sim_lora_ldro)7;
    assert_int_equal(sim_lora_airtime(&p, 10, &a), P4P_EINVAL);
    assert_int_equal(a.airtime_ns, 0); /* untouched on error */
    assert_int_equal(sim_lora_airtime(NULL, 10, &a), P4P_EINVAL);
}

static void test_eu868_subbands(void **state)
{
    (void)state;
    const struct sim_lora_subband *b = sim_lora_eu868_subband("g1");
    assert_non_null(b);
    assert_string_equal(b->name, "M");
    assert_int_equal(b->low_khz, 868000);
    assert_int_equal(b->high_khz, 868600);
    assert_int_equal(b->duty_cycle_ppm, 10000);
    assert_ptr_equal(sim_lora_eu868_subband("m"), b);
    assert_ptr_equal(sim_lora_eu868_subband_at(868100), b); /* LoRaWAN default channels */
    assert_ptr_equal(sim_lora_eu868_subband_at(868500), b);
    b = sim_lora_eu868_subband("G2");
    assert_non_null(b);
    assert_int_equal(b->duty_cycle_ppm, 1000);
    assert_int_equal(b->low_khz, 868700);
    b = sim_lora_eu868_subband_at(869525); /* RX2 */
    assert_non_null(b);
    assert_string_equal(b->alias, "g3");
    assert_int_equal(b->duty_cycle_ppm, 100000);
    assert_int_equal(b->max_erp_dbm, 27);
    assert_int_equal(sim_lora_eu868_subband_at(867100)->duty_cycle_ppm, 10000);
    assert_int_equal(sim_lora_eu868_subband_at(864100)->duty_cycle_ppm, 1000);
    assert_int_equal(sim_lora_eu868_subband("g4")->low_khz, 869700);
    assert_null(sim_lora_eu868_subband_at(868650)); /* the gap between M and N */
    assert_null(sim_lora_eu868_subband_at(870000));
    assert_null(sim_lora_eu868_subband_at(433175));
    assert_null(sim_lora_eu868_subband("g9"));
    assert_null(sim_lora_eu868_subband(NULL));
    size_t n;
    const struct sim_lora_subband *t = sim_lora_eu868_subbands(&n);
    assert_int_equal(n, 6);
    for (size_t i = 1; i < n; i++) {
        assert_true(t[i].low_khz >= t[i - 1].high_khz); /* sorted, disjoint */
    }
}

static void test_off_period_and_dwell(void **state)
{
    (void)state;
    assert_int_equal(sim_lora_off_period_ns(56576000, 10000), 56576000ull * 99);
    assert_int_equal(sim_lora_off_period_ns(56576000, 1000), 56576000ull * 999);
    assert_int_equal(sim_lora_off_period_ns(56576000, 100000), 56576000ull * 9);
    assert_int_equal(sim_lora_off_period_ns(500 * MS, 10000), 49500 * MS); /* RP002 example */
    assert_int_equal(sim_lora_off_period_ns(7, 300000), 17);               /* 16.33 rounds up */
    assert_int_equal(sim_lora_off_period_ns(1, 1000000), 0);
    assert_int_equal(sim_lora_us915_dwell_check(400 * MS), 0);
    assert_int_equal(sim_lora_us915_dwell_check(400 * MS + 1), P4P_ETOOBIG);
    /* US915 DR0 is SF10 BW125; the dwell limit leaves 24 PHY bytes, i.e. 11 bytes of
     * application payload after LoRaWAN's 13 (RP002 US902-928, max payload N = 11). */
    struct sim_lora_phy p = phy(10, 125000, 1);
    uint32_t max_len = 0;
    for (uint32_t len = 1; len <= 255; len++) {
        if (sim_lora_us915_dwell_check(airtime_ns(&p, len)) == 0) {
            max_len = len;
        }
    }
    assert_int_equal(max_len, 24);
    assert_int_equal(airtime_ns(&p, 24), 370688000);
}

static void test_ledger_per_frame(void **state)
{
    (void)state;
    struct sim_lora_dc_ledger l;
    uint64_t t;
    assert_int_equal(sim_lora_dc_init(&l, SIM_LORA_DC_PER_FRAME, 10000, NULL, 0), 0);
    assert_int_equal(sim_lora_dc_earliest(&l, 5 * S, 1 * S, &t), 0);
    assert_int_equal(t, 5 * S);
    assert_int_equal(sim_lora_dc_record(&l, 0, 1 * S), 0);
    assert_int_equal(sim_lora_dc_earliest(&l, 2 * S, 1 * S, &t), 0);
    assert_int_equal(t, 100 * S); /* 1 s on air + 99 s off */
    assert_int_equal(sim_lora_dc_record(&l, 50 * S, 1 * S), P4P_EFULL);
    assert_int_equal(sim_lora_dc_record(&l, S / 2, 1 * S), P4P_EINVAL); /* overlaps itself */
    assert_int_equal(sim_lora_dc_record(&l, 100 * S, 2 * S), 0);
    assert_int_equal(sim_lora_dc_earliest(&l, 0, 1, &t), 0);
    assert_int_equal(t, 300 * S);
    struct sim_lora_dc_usage u;
    sim_lora_dc_usage(&l, 300 * S, &u);
    assert_int_equal(u.total_airtime_ns, 3 * S);
    assert_int_equal(u.frames, 2);
    assert_int_equal(u.window_airtime_ns, 0); /* no ring: no window accounting */
    /* With a ring the same mode reports the last hour. */
    struct sim_lora_dc_record ring[4];
    assert_int_equal(sim_lora_dc_init(&l, SIM_LORA_DC_PER_FRAME, 10000, ring, 4), 0);
    assert_int_equal(sim_lora_dc_record(&l, 0, 1 * S), 0);
    assert_int_equal(sim_lora_dc_record(&l, 100 * S, 2 * S), 0);
    sim_lora_dc_usage(&l, 101 * S, &u);
    assert_int_equal(u.window_airtime_ns, 2 * S);
    assert_true(fabs(u.budget_fraction - 2.0 / 36.0) < 1e-12);
    sim_lora_dc_usage(&l, 3601 * S, &u); /* the first frame has left the hour */
    assert_int_equal(u.window_airtime_ns, 2 * S);
    /* Bad arguments. */
    assert_int_equal(sim_lora_dc_init(&l, SIM_LORA_DC_PER_FRAME, 0, NULL, 0), P4P_EINVAL);
    assert_int_equal(sim_lora_dc_init(&l, SIM_LORA_DC_PER_FRAME, 1000001, NULL, 0), P4P_EINVAL);
    assert_int_equal(sim_lora_dc_init(&l, SIM_LORA_DC_HOURLY, 10000, NULL, 0), P4P_EINVAL);
    assert_int_equal(sim_lora_dc_init(&l, (enum sim_lora_dc_mode)9, 10000, ring, 4), P4P_EINVAL);
}

static void test_ledger_hourly_by_hand(void **state)
{
    (void)state;
    struct sim_lora_dc_record ring[64];
    struct sim_lora_dc_ledger l;
    uint64_t t;
    assert_int_equal(sim_lora_dc_init(&l, SIM_LORA_DC_HOURLY, 10000, ring, 64), 0);
    assert_int_equal(l.budget_ns, 36 * S);
    /* 10 s frames at 0, 100 and 200 s use 30 of the 36 s budget. */
    for (uint64_t k = 0; k < 3; k++) {
        assert_int_equal(sim_lora_dc_earliest(&l, k * 100 * S, 10 * S, &t), 0);
        assert_int_equal(t, k * 100 * S);
        assert_int_equal(sim_lora_dc_record(&l, t, 10 * S), 0);
    }
    /* A 6 s frame still fits at once; a 10 s one must wait until only 6 s of the first frame
     * remain in its window: the window [4 s, 3604 s] then holds 6 + 10 + 10 + 10 = 36 s. */
    assert_int_equal(sim_lora_dc_earliest(&l, 300 * S, 6 * S, &t), 0);
    assert_int_equal(t, 300 * S);
    assert_int_equal(sim_lora_dc_earliest(&l, 300 * S, 10 * S, &t), 0);
    assert_int_equal(t, 3594 * S);
    assert_int_equal(sim_lora_dc_record(&l, 3594 * S - 1, 10 * S), P4P_EFULL);
    /* 15 s needs 9 s out: 9 s of the first frame, so the window starts at 9 s. */
    assert_int_equal(sim_lora_dc_earliest(&l, 300 * S, 15 * S, &t), 0);
    assert_int_equal(t, 9 * S + 3600 * S - 15 * S);
    /* 25 s: the first frame (10) and 9 s of the second -> window starts at 109 s. */
    assert_int_equal(sim_lora_dc_earliest(&l, 300 * S, 25 * S, &t), 0);
    assert_int_equal(t, 109 * S + 3600 * S - 25 * S);
    assert_int_equal(sim_lora_dc_earliest(&l, 300 * S, 36 * S + 1, &t), P4P_ETOOBIG);
    assert_int_equal(sim_lora_dc_record(&l, 3594 * S, 10 * S), 0);
    struct sim_lora_dc_usage u;
    sim_lora_dc_usage(&l, 3604 * S, &u);
    assert_int_equal(u.window_airtime_ns, 36 * S);
    assert_true(fabs(u.budget_fraction - 1.0) < 1e-12);
    assert_int_equal(u.frames, 4);
    /* Back-to-back 1 s frames: 36 of them fill the hour; the 37th waits for the window to
     * slide past the first. */
    assert_int_equal(sim_lora_dc_init(&l, SIM_LORA_DC_HOURLY, 10000, ring, 64), 0);
    uint64_t now = 0;
    for (int k = 0; k < 36; k++) {
        assert_int_equal(sim_lora_dc_earliest(&l, now, S, &t), 0);
        assert_int_equal(t, (uint64_t)k * S);
        assert_int_equal(sim_lora_dc_record(&l, t, S), 0);
        now = t + S;
    }
    assert_int_equal(sim_lora_dc_earliest(&l, now, S, &t), 0);
    assert_int_equal(t, 3600 * S);
}

static void test_ledger_hourly_small_ring(void **state)
{
    (void)state;
    /* Three records only: the fourth frame waits until the oldest has left its window, even
     * though the budget (36 s) is far from used. */
    struct sim_lora_dc_record ring[3];
    struct sim_lora_dc_ledger l;
    uint64_t t;
    assert_int_equal(sim_lora_dc_init(&l, SIM_LORA_DC_HOURLY, 10000, ring, 3), 0);
    for (uint64_t k = 0; k < 3; k++) {
        assert_int_equal(sim_lora_dc_record(&l, k * 10 * S, S), 0);
    }
    assert_int_equal(sim_lora_dc_earliest(&l, 30 * S, S, &t), 0);
    assert_int_equal(t, 1 * S + 3600 * S - 1 * S);
    assert_int_equal(sim_lora_dc_record(&l, t, S), 0);
    assert_int_equal(l.count, 3);
    assert_int_equal(sim_lora_dc_ring_size(10000, 56576000), 36000000000ull / 56576000 + 2);
}

/* Brute force: the sliding-hour rule holds in every window, and each start the ledger gives
 * is the earliest (one nanosecond earlier breaks the rule). */
static uint64_t window_sum(const uint64_t *st, const uint64_t *at, size_t n, int64_t lo, int64_t hi)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t s = (int64_t)st[i], e = (int64_t)(st[i] + at[i]);
        int64_t a = s > lo ? s : lo, b = e < hi ? e : hi;
        if (b > a) {
            sum += (uint64_t)(b - a);
        }
    }
    return sum;
}

static void test_ledger_hourly_brute_force(void **state)
{
    (void)state;
    enum { N = 400 };
    static uint64_t st[N + 1], at[N + 1];
    static struct sim_lora_dc_record ring[N];
    const int64_t w = (int64_t)SIM_LORA_DC_WINDOW_NS;
    static const uint32_t caps[] = {N, 7};
    for (size_t c = 0; c < 2; c++) {
        struct sim_rng r;
        sim_rng_derive(&r, 42, "test-ledger", c);
        struct sim_lora_dc_ledger l;
        assert_int_equal(sim_lora_dc_init(&l, SIM_LORA_DC_HOURLY, 10000, ring, caps[c]), 0);
        uint64_t now = 0;
        size_t waited = 0;
        for (size_t i = 0; i < N; i++) {
            uint64_t air = 20 * MS + sim_rng_below(&r, 3000 * MS);
            now += sim_rng_below(&r, 120 * S);
            uint64_t t;
            assert_int_equal(sim_lora_dc_earliest(&l, now, air, &t), 0);
            assert_true(t >= now);
            st[i] = t;
            at[i] = air;
            /* The rule at t: the window ending at t + air (the binding one). */
            int64_t hi = (int64_t)(t + air);
            assert_true(window_sum(st, at, i + 1, hi - w, hi) <= l.budget_ns);
            if (t > now && caps[c] == N) {
                /* Starting 1 ns earlier breaks the rule (or overlaps the previous frame). */
                st[i] = t - 1;
                int64_t hi2 = hi - 1;
                int broken = window_sum(st, at, i + 1, hi2 - w, hi2) > l.budget_ns ||
                             (i > 0 && st[i] < st[i - 1] + at[i - 1]);
                assert_true(broken);
                st[i] = t;
                waited++;
            }
            assert_int_equal(sim_lora_dc_record(&l, t, air), 0);
            now = t + air;
        }
        /* Every window ending at a frame end respects the budget. */
        for (size_t i = 0; i < N; i++) {
            int64_t hi = (int64_t)(st[i] + at[i]);
            assert_true(window_sum(st, at, N, hi - w, hi) <= l.budget_ns);
        }
        if (caps[c] == N) {
            assert_true(waited > 10); /* the budget did bind */
        }
    }
}

static void test_reception(void **state)
{
    (void)state;
    struct sim_lora_link l;
    sim_lora_link_default(&l);
    assert_true(fabs(sim_lora_path_loss_db(&l.pl, 40.0) - 127.41) < 1e-9);
    assert_true(fabs(sim_lora_path_loss_db(&l.pl, 400.0) - (127.41 + 20.8)) < 1e-9);
    assert_true(fabs(sim_lora_noise_floor_dbm(125000, 6.0) - (-174 + 10 * log10(125e3) + 6)) <
                1e-12);
    static const double sens125[] = {-123, -126, -129, -132, -133, -136};
    static const double snr[] = {-7.5, -10, -12.5, -15, -17.5, -20};
    for (uint8_t sf = 7; sf <= 12; sf++) {
        assert_true(sim_lora_sensitivity_dbm(sf, 125000) == sens125[sf - 7]);
        assert_true(sim_lora_snr_floor_db(sf) == snr[sf - 7]);
    }
    assert_true(sim_lora_sensitivity_dbm(12, 250000) == -133);
    assert_true(sim_lora_sensitivity_dbm(7, 500000) == -116);
    assert_true(isnan(sim_lora_sensitivity_dbm(6, 125000)));
    assert_true(isnan(sim_lora_snr_floor_db(13)));
    /* 400 m: -134.21 dBm, SNR -17.18 dB: only SF12 receives. */
    struct sim_lora_rx rx;
    for (uint8_t sf = 7; sf <= 12; sf++) {
        assert_int_equal(sim_lora_receive(&l, sf, 125000, 400.0, 0.0, &rx), 0);
        assert_true(fabs(rx.rx_power_dbm - (14 - 148.21)) < 1e-9);
        assert_true(fabs(rx.snr_db - (rx.rx_power_dbm - rx.noise_floor_dbm)) < 1e-12);
        assert_int_equal(rx.receives, sf == 12);
    }
    /* Shadowing moves the verdict. */
    assert_int_equal(sim_lora_receive(&l, 12, 125000, 400.0, 3.0, &rx), 0);
    assert_int_equal(rx.receives, 0);
    assert_int_equal(sim_lora_receive(&l, 11, 125000, 400.0, -2.0, &rx), 0);
    assert_int_equal(rx.receives, 1);
    /* Max range sits exactly on the verdict boundary and grows with SF. */
    double prev = 0;
    for (uint8_t sf = 7; sf <= 12; sf++) {
        double d;
        assert_int_equal(sim_lora_max_range_m(&l, sf, 125000, &d), 0);
        assert_true(d > prev);
        prev = d;
        assert_int_equal(sim_lora_receive(&l, sf, 125000, d * 0.999, 0.0, &rx), 0);
        assert_int_equal(rx.receives, 1);
        assert_int_equal(sim_lora_receive(&l, sf, 125000, d * 1.001, 0.0, &rx), 0);
        assert_int_equal(rx.receives, 0);
    }
    /* SF12 BW125 is sensitivity-limited at -136 dBm: PL 150 dB. */
    double d12;
    assert_int_equal(sim_lora_max_range_m(&l, 12, 125000, &d12), 0);
    assert_true(fabs(d12 - 40.0 * pow(10.0, (150.0 - 127.41) / 20.8)) < 1e-6);
    assert_int_equal(sim_lora_receive(&l, 12, 125000, 0.0, 0.0, &rx), P4P_EINVAL);
    assert_int_equal(sim_lora_receive(&l, 12, 125000, NAN, 0.0, &rx), P4P_EINVAL);
    assert_int_equal(sim_lora_receive(&l, 6, 125000, 10.0, 0.0, &rx), P4P_EINVAL);
    l.pl.exponent = 0;
    assert_int_equal(sim_lora_max_range_m(&l, 12, 125000, &d12), P4P_EINVAL);
}

static void test_shadowing_distribution(void **state)
{
    (void)state;
    struct sim_rng r;
    sim_rng_derive(&r, 7, "test-shadowing", 0);
    enum { N = 200000 };
    double sum = 0, sum2 = 0;
    size_t beyond = 0;
    for (int i = 0; i < N; i++) {
        double x = sim_lora_shadowing_db(&r, 3.57);
        sum += x;
        sum2 += x * x;
        beyond += fabs(x) > 3.57;
    }
    double mean = sum / N, sd = sqrt(sum2 / N - mean * mean);
    assert_true(fabs(mean) < 4 * 3.57 / sqrt(N));
    assert_true(fabs(sd - 3.57) < 0.02);
    /* P(|X| > sigma) = 0.3173 for a normal; binomial sd 0.001. */
    assert_true(fabs((double)beyond / N - 0.3173) < 0.005);
}

/* Collisions. SF7 BW125: 1.024 ms symbols, 8 preamble symbols, so the critical section
 * (last 5 preamble symbols) starts 3.072 ms into the frame and the preamble (with its 4.25
 * sync symbols) ends 12.544 ms in. */
static struct sim_lora_frame frame(double start_ms, double len_ms, double dbm, uint8_t sf,
                                   uint32_t channel)
{
    return (struct sim_lora_frame){
        .start_ns = (uint64_t)llround(start_ms * 1e6),
        .end_ns = (uint64_t)llround((start_ms + len_ms) * 1e6),
        .rx_power_dbm = dbm,
        .sf = sf,
        .bw_hz = 125000,
        .channel = channel,
        .preamble_symbols = 8,
    };
}

static enum sim_lora_fate fate_of(const struct sim_lora_capture *c, struct sim_lora_frame f,
                                  const struct sim_lora_frame *o, size_t n, size_t *culprit)
{
    enum sim_lora_fate fate;
    size_t who = (size_t)-1;
    int rc = sim_lora_survives(c, &f, o, n, &fate, &who);
    assert_true(rc == 0 || rc == 1);
    assert_int_equal(rc, fate == SIM_LORA_RECEIVED);
    if (culprit != NULL) {
        *culprit = who;
    }
    return fate;
}

static void test_collision_same_sf(void **state)
{
    (void)state;
    struct sim_lora_capture c;
    sim_lora_capture_default(&c);
    struct sim_lora_frame f = frame(100, 56.576, -100, 7, 0);
    struct sim_lora_frame j;
    /* Capture win: a later interferer 10 dB weaker. */
    j = frame(120, 56.576, -110, 7, 0);
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    /* Exactly the threshold still wins; just under loses. */
    j.rx_power_dbm = -106;
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    j.rx_power_dbm = -105.9;
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_LOST_CAPTURE);
    /* Capture loss: 3 dB apart, or the interferer stronger. */
    j.rx_power_dbm = -103;
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_LOST_CAPTURE);
    j.rx_power_dbm = -90;
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_LOST_CAPTURE);
    /* An earlier, much stronger frame that ends within f's first 3 preamble symbols leaves
     * the last 5 intact: f survives. Ending 1 us into the critical section destroys it. */
    j = frame(40, 62.0, -80, 7, 0); /* ends at 102 ms < 103.072 */
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    j = frame(40, 63.073, -80, 7, 0);
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_LOST_CAPTURE);
    j = frame(40, 63.072, -80, 7, 0); /* ends exactly where the critical section begins */
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    /* Preamble destroyed by an earlier frame of similar power. */
    j = frame(60, 50.0, -101, 7, 0);
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_LOST_CAPTURE);
    /* Receiver lock: f is 10 dB stronger but arrives after the earlier frame's preamble
     * (which ended at 62.544 ms): the receiver is demodulating that frame and misses f. */
    j = frame(50, 56.576, -110, 7, 0);
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_LOST_LOCKED);
    struct sim_lora_capture nolock = c;
    nolock.lock_on_first = 0;
    assert_int_equal(fate_of(&nolock, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    j = frame(87.456, 56.576, -110, 7, 0); /* its preamble ends exactly as f starts */
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_LOST_LOCKED);
    j = frame(87.457, 56.576, -110, 7, 0); /* 1 us later: f starts inside that preamble */
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    /* ...so arriving during the earlier preamble, f (stronger) takes the receiver. */
    j = frame(90, 56.576, -110, 7, 0); /* preamble until 102.544 ms; f starts at 100 */
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    /* Touching is not overlapping. */
    j = frame(156.576, 50, -60, 7, 0);
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    j = frame(50, 50, -60, 7, 0);
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    /* A larger capture threshold turns a win into a loss. */
    struct sim_lora_capture strict = c;
    strict.capture_db = 12;
    j = frame(120, 56.576, -110, 7, 0);
    assert_int_equal(fate_of(&strict, f, &j, 1, NULL), SIM_LORA_LOST_CAPTURE);
}

static void test_collision_inter_sf_and_channels(void **state)
{
    (void)state;
    struct sim_lora_capture c;
    sim_lora_capture_default(&c);
    assert_true(sim_lora_sir_threshold_db(12, 7) == -25);
    assert_true(sim_lora_sir_threshold_db(7, 12) == -9);
    assert_true(sim_lora_sir_threshold_db(9, 8) == -13);
    assert_true(sim_lora_sir_threshold_db(10, 10) == 1);
    assert_true(isnan(sim_lora_sir_threshold_db(6, 7)));
    /* SF12 wanted, SF7 interferer: needs SIR >= -25 dB. */
    struct sim_lora_frame f = frame(0, 1318.912, -120, 12, 3);
    struct sim_lora_frame j = frame(500, 56.576, -95, 7, 3); /* SIR -25 */
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    j.rx_power_dbm = -94.5; /* SIR -25.5 */
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_LOST_INTER_SF);
    /* SF7 wanted, SF12 interferer: needs SIR >= -9 dB. */
    f = frame(500, 56.576, -100, 7, 3);
    j = frame(0, 1318.912, -91, 12, 3); /* SIR -9 */
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    j.rx_power_dbm = -90; /* SIR -10 */
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_LOST_INTER_SF);
    /* No receiver lock across SFs: an earlier SF12 frame 20 dB weaker does not block f. */
    j.rx_power_dbm = -120;
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    /* Different channels never interfere, whatever the power, SF or timing. */
    j = frame(510, 56.576, -40, 7, 4);
    assert_int_equal(fate_of(&c, f, &j, 1, NULL), SIM_LORA_RECEIVED);
    /* Several interferers: the culprit is the first that destroys f. */
    struct sim_lora_frame many[4] = {
        frame(510, 56.576, -40, 7, 4),    /* other channel */
        frame(700, 10, -30, 7, 3),        /* after f ended */
        frame(520, 56.576, -120, 7, 3),   /* same SF, 20 dB weaker: captured */
        frame(530, 1318.912, -80, 12, 3), /* SF12 20 dB stronger: SIR -20 < -9 */
    };
    size_t who = 0;
    assert_int_equal(fate_of(&c, f, many, 4, &who), SIM_LORA_LOST_INTER_SF);
    assert_int_equal(who, 3);
    assert_int_equal(fate_of(&c, f, many, 3, &who), SIM_LORA_RECEIVED);
    assert_int_equal(fate_of(&c, f, NULL, 0, &who), SIM_LORA_RECEIVED);
    /* Malformed frames are rejected, not judged. */
    enum sim_lora_fate fate;
    struct sim_lora_frame bad = f;
    bad.end_ns = bad.start_ns;
    assert_int_equal(sim_lora_survives(&c, &bad, many, 4, &fate, NULL), P4P_EINVAL);
    bad = f;
    bad.sf = 13;
    assert_int_equal(sim_lora_survives(&c, &f, &bad, 1, &fate, NULL), P4P_EINVAL);
    assert_int_equal(sim_lora_survives(&c, &f, NULL, 1, &fate, NULL), P4P_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_example),
        cmocka_unit_test(test_published_values),
        cmocka_unit_test(test_rederivation_everywhere),
        cmocka_unit_test(test_ldro_auto_and_coding_rates),
        cmocka_unit_test(test_invalid_phy),
        cmocka_unit_test(test_eu868_subbands),
        cmocka_unit_test(test_off_period_and_dwell),
        cmocka_unit_test(test_ledger_per_frame),
        cmocka_unit_test(test_ledger_hourly_by_hand),
        cmocka_unit_test(test_ledger_hourly_small_ring),
        cmocka_unit_test(test_ledger_hourly_brute_force),
        cmocka_unit_test(test_reception),
        cmocka_unit_test(test_shadowing_distribution),
        cmocka_unit_test(test_collision_same_sf),
        cmocka_unit_test(test_collision_inter_sf_and_channels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
