/*
 * ble.c — BLE packet airtime, discovery (simulated and closed form) and connection
 * throughput. See ble.h and docs/MODELS.md.
 */
#include "ble.h"

#include <math.h>

#include "p4p/p4p.h"

#define US 1000ull
#define MS 1000000ull

static int phy_ok(enum sim_ble_phy phy)
{
    return phy == SIM_BLE_PHY_1M || phy == SIM_BLE_PHY_2M || phy == SIM_BLE_PHY_CODED_S8 ||
           phy == SIM_BLE_PHY_CODED_S2;
}

int sim_ble_packet_airtime_ns(enum sim_ble_phy phy, uint32_t pdu_len, uint64_t *airtime_ns)
{
    if (!phy_ok(phy) || pdu_len > 255 || airtime_ns == NULL) {
        return P4P_EINVAL;
    }
    uint64_t us;
    switch (phy) {
    case SIM_BLE_PHY_1M: /* preamble 1 + access address 4 + header 2 + PDU + CRC 3, 8 us/B */
        us = (1 + 4 + 2 + pdu_len + 3) * 8ull;
        break;
    case SIM_BLE_PHY_2M: /* preamble 2 + 4 + 2 + PDU + 3, 4 us/B */
        us = (2 + 4 + 2 + pdu_len + 3) * 4ull;
        break;
    default: {
        /* Preamble 80 us; FEC block 1 at S=8: access address 32 bits (256 us), CI 2 bits
         * (16 us), TERM1 3 bits (24 us); FEC block 2: header 16 + payload 8L + CRC 24 +
         * TERM2 3 bits, 8 us per bit at S=8 and 2 us at S=2. */
        uint64_t per_bit = phy == SIM_BLE_PHY_CODED_S8 ? 8 : 2;
        us = 80 + 256 + 16 + 24 + (16 + 8ull * pdu_len + 24 + 3) * per_bit;
        break;
    }
    }
    *airtime_ns = us * US;
    return 0;
}

int sim_ble_adv_pdu_len(int extended, uint32_t data_len, uint32_t *pdu_len)
{
    if (pdu_len == NULL || (!extended && data_len > 31) || (extended && data_len > 245)) {
        return P4P_EINVAL;
    }
    *pdu_len = extended ? 10 + data_len : 6 + data_len;
    return 0;
}

/* ---- Discovery ---------------------------------------------------------------------- */

static int adv_ok(const struct sim_ble_adv *a)
{
    return a != NULL && a->interval_ns >= 20 * MS && a->interval_ns <= 10240 * MS &&
           a->max_delay_ns <= 10 * MS && a->pdu_ns > 0 && a->gap_ns >= a->pdu_ns &&
           2 * a->gap_ns + a->pdu_ns <= a->interval_ns;
}

static int scan_ok(const struct sim_ble_scan *s, uint64_t pdu_ns)
{
    return s != NULL && s->interval_ns >= 2500 * US && s->interval_ns <= 10240 * MS &&
           s->window_ns <= s->interval_ns && s->window_ns >= pdu_ns;
}

int sim_ble_adv_init(struct sim_ble_adv *a, enum sim_ble_phy phy, uint64_t interval_ns,
                     uint32_t pdu_len)
{
    uint64_t pdu_ns;
    int rc = sim_ble_packet_airtime_ns(phy, pdu_len, &pdu_ns);
    if (rc != 0 || a == NULL) {
        return P4P_EINVAL;
    }
    struct sim_ble_adv v = {
        .interval_ns = interval_ns,
        .max_delay_ns = 10 * MS,
        .pdu_ns = pdu_ns,
        .gap_ns = pdu_ns + SIM_BLE_T_IFS_NS,
    };
    if (!adv_ok(&v)) {
        return P4P_EINVAL;
    }
    *a = v;
    return 0;
}

static uint64_t adv_delay(const struct sim_ble_adv *a, struct sim_rng *r)
{
    return a->max_delay_ns == 0 ? 0 : sim_rng_below(r, a->max_delay_ns + 1);
}

/*
 * The advertising event in progress when a scanner arrives at a random time. Intervals are
 * X = A + D with D uniform on [0, d]; the one covering a random instant is length-biased,
 * density (A + x) / (A d + d^2 / 2) on [0, d], which inverts in closed form; the instant is
 * uniform inside it. Returns the start of that event (<= 0); the next starts at `*next`.
 */
static int64_t stationary_event(const struct sim_ble_adv *a, struct sim_rng *r, int64_t *next)
{
    double A = (double)a->interval_ns, d = (double)a->max_delay_ns;
    double len = A;
    if (d > 0) {
        double u = sim_rng_uniform(r);
        len = sqrt(A * A + 2.0 * u * (A * d + d * d / 2.0));
    }
    int64_t L = (int64_t)llround(len);
    int64_t R = (int64_t)floor(sim_rng_uniform(r) * (double)L);
    *next = R;
    return R - L;
}

int sim_ble_discovery_trial(const struct sim_ble_adv *a, const struct sim_ble_scan *s, double loss,
                            enum sim_ble_start start, struct sim_rng *r, uint64_t *latency_ns)
{
    if (!adv_ok(a) || !scan_ok(s, a->pdu_ns) || !(loss >= 0 && loss < 1) || r == NULL ||
        latency_ns == NULL ||
        (start != SIM_BLE_SCANNER_JOINS && start != SIM_BLE_ADVERTISER_JOINS)) {
        return P4P_EINVAL;
    }
    /* Scanner time = trial time + phase; window k covers [k SI, k SI + SW) on channel
     * 37 + k mod 3. */
    int64_t phase = 0, event, next;
    if (start == SIM_BLE_SCANNER_JOINS) {
        event = stationary_event(a, r, &next);
    } else {
        phase = (int64_t)sim_rng_below(r, 3 * s->interval_ns);
        event = 0;
        next = (int64_t)(a->interval_ns + adv_delay(a, r));
    }
    const int64_t si = (int64_t)s->interval_ns, sw = (int64_t)s->window_ns;
    const int64_t pdu = (int64_t)a->pdu_ns, gap = (int64_t)a->gap_ns;
    for (uint32_t n = 0; n < 1000000; n++) {
        for (int ch = 0; ch < 3; ch++) {
            int64_t t = event + ch * gap;
            if (t < 0) {
                continue; /* sent before the scanner was listening */
            }
            int64_t u = t + phase, k = u / si;
            if (k % 3 != ch || u - k * si + pdu > sw) {
                continue;
            }
            if (loss == 0 || sim_rng_uniform(r) >= loss) {
                *latency_ns = (uint64_t)(t + pdu);
                return 0;
            }
        }
        event = next;
        next += (int64_t)(a->interval_ns + adv_delay(a, r));
    }
    return P4P_EAGAIN;
}

int sim_ble_discovery_stats(const struct sim_ble_adv *a, const struct sim_ble_scan *s, double loss,
                            enum sim_ble_start start, uint32_t trials, struct sim_rng *r,
                            struct sim_ble_discovery_stats *out)
{
    if (trials == 0 || out == NULL) {
        return P4P_EINVAL;
    }
    double sum = 0, sum2 = 0;
    uint64_t max = 0;
    for (uint32_t i = 0; i < trials; i++) {
        uint64_t l;
        int rc = sim_ble_discovery_trial(a, s, loss, start, r, &l);
        if (rc != 0) {
            return rc;
        }
        double x = (double)l;
        sum += x;
        sum2 += x * x;
        max = l > max ? l : max;
    }
    double mean = sum / trials;
    double var = trials > 1 ? (sum2 - sum * mean) / (trials - 1) : 0;
    *out = (struct sim_ble_discovery_stats){
        .mean_ns = mean, .sd_ns = var > 0 ? sqrt(var) : 0, .max_ns = max, .trials = trials};
    return 0;
}

int sim_ble_discovery_mean_closed(const struct sim_ble_adv *a, double loss, double *mean_ns)
{
    if (!adv_ok(a) || !(loss >= 0 && loss < 1) || mean_ns == NULL) {
        return P4P_EINVAL;
    }
    double A = (double)a->interval_ns, d = (double)a->max_delay_ns;
    double ex = A + d / 2, ex2 = A * A + A * d + d * d / 3;
    *mean_ns = ex2 / (2 * ex) + loss / (1 - loss) * ex + (double)a->pdu_ns;
    return 0;
}

/* ---- Connections -------------------------------------------------------------------- */

int sim_ble_conn_check(const struct sim_ble_conn *c)
{
    if (c == NULL || !phy_ok(c->phy) || c->interval_ns < 7500 * US || c->interval_ns > 4000 * MS ||
        c->interval_ns % 1250000 != 0 || c->data_length < 27 || c->data_length > 251 ||
        c->max_event_ns > c->interval_ns || c->encrypted < 0 || c->encrypted > 1) {
        return P4P_EINVAL;
    }
    return 0;
}

static void conn_shape(const struct sim_ble_conn *c, struct sim_ble_conn_result *o)
{
    uint32_t len = c->data_length + (c->encrypted ? 4 : 0);
    sim_ble_packet_airtime_ns(c->phy, len, &o->data_packet_ns);
    sim_ble_packet_airtime_ns(c->phy, 0, &o->empty_packet_ns);
    o->exchange_ns = o->data_packet_ns + o->empty_packet_ns + 2 * SIM_BLE_T_IFS_NS;
    uint64_t event = c->max_event_ns != 0 ? c->max_event_ns : c->interval_ns;
    /* k exchanges take k * exchange: the last T_IFS separates the event from the next
     * anchor, which the event may not overrun. */
    uint64_t k = event / o->exchange_ns;
    if (c->max_packets_per_event != 0 && k > c->max_packets_per_event) {
        k = c->max_packets_per_event;
    }
    o->packets_per_event = (uint32_t)k;
    o->app_bytes_per_packet = c->data_length - 4 - 3;
}

int sim_ble_conn_throughput(const struct sim_ble_conn *c, double loss,
                            struct sim_ble_conn_result *out)
{
    if (sim_ble_conn_check(c) != 0 || !(loss >= 0 && loss < 1) || out == NULL) {
        return P4P_EINVAL;
    }
    struct sim_ble_conn_result o;
    conn_shape(c, &o);
    double q = 1 - loss, delivered = 0, qi = 1;
    for (uint32_t i = 1; i <= o.packets_per_event; i++) {
        qi *= q;
        delivered += qi;
    }
    o.packets_per_event_mean = delivered;
    o.throughput_bps = delivered * o.app_bytes_per_packet * 8.0 * 1e9 / (double)c->interval_ns;
    *out = o;
    return 0;
}

int sim_ble_conn_transfer(const struct sim_ble_conn *c, double loss, uint64_t bytes,
                          struct sim_rng *r, uint64_t *time_ns, uint64_t *events)
{
    if (sim_ble_conn_check(c) != 0 || !(loss >= 0 && loss < 1) || bytes == 0 || r == NULL ||
        time_ns == NULL || events == NULL) {
        return P4P_EINVAL;
    }
    struct sim_ble_conn_result o;
    conn_shape(c, &o);
    if (o.packets_per_event == 0) {
        return P4P_EINVAL; /* not even one exchange fits in an event */
    }
    uint64_t left = (bytes + o.app_bytes_per_packet - 1) / o.app_bytes_per_packet;
    for (uint64_t e = 0; e < 1000000000ull; e++) {
        for (uint32_t i = 0; i < o.packets_per_event; i++) {
            if (loss > 0 && sim_rng_uniform(r) < loss) {
                break; /* no response: the event closes, the packet goes again next time */
            }
            if (--left == 0) {
                *time_ns = e * c->interval_ns + (i + 1) * o.exchange_ns - SIM_BLE_T_IFS_NS;
                *events = e + 1;
                return 0;
            }
        }
    }
    return P4P_EAGAIN;
}
