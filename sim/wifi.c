/*
 * wifi.c — 802.11 OFDM airtime, Bianchi's DCF model and propagation. See wifi.h and
 * docs/MODELS.md.
 */
#include "wifi.h"

#include <math.h>
#include <stddef.h>

#include "p4p/p4p.h"

#define US 1000ull

static int std_ok(enum sim_wifi_std std)
{
    return std == SIM_WIFI_11A || std == SIM_WIFI_11G || std == SIM_WIFI_11N;
}

int sim_wifi_timing(enum sim_wifi_std std, struct sim_wifi_timing *t)
{
    if (!std_ok(std) || t == NULL) {
        return P4P_EINVAL;
    }
    /* 11a (clause 18 PHY characteristics): slot 9 us, SIFS 16 us. 11g ERP short slot
     * (clause 19): slot 9, SIFS 10, plus 6 us signal extension. 11n at 5 GHz: as 11a, with the
     * HT-mixed preamble L-STF 8 + L-LTF 8 + L-SIG 4 + HT-SIG 8 + HT-STF 4 + HT-LTF 4 us. */
    uint64_t sifs = std == SIM_WIFI_11G ? 10 : 16;
    *t = (struct sim_wifi_timing){
        .slot_ns = 9 * US,
        .sifs_ns = sifs * US,
        .difs_ns = (sifs + 2 * 9) * US,
        .preamble_ns = (std == SIM_WIFI_11N ? 36 : 20) * US,
        .ext_ns = (std == SIM_WIFI_11G ? 6 : 0) * US,
        .cw_min = 15,
        .cw_max = 1023,
    };
    return 0;
}

static const uint32_t ofdm_kbps[] = {6000, 9000, 12000, 18000, 24000, 36000, 48000, 54000};
static const uint32_t ht_kbps[] = {6500, 13000, 19500, 26000, 39000, 52000, 58500, 65000};

/* Index of rate_kbps in std's rate list, or -1. */
static int rate_index(enum sim_wifi_std std, uint32_t rate_kbps)
{
    const uint32_t *set = std == SIM_WIFI_11N ? ht_kbps : ofdm_kbps;
    for (int i = 0; i < 8; i++) {
        if (set[i] == rate_kbps) {
            return i;
        }
    }
    return -1;
}

int sim_wifi_ndbps(enum sim_wifi_std std, uint32_t rate_kbps, uint32_t *ndbps)
{
    if (!std_ok(std) || rate_index(std, rate_kbps) < 0 || ndbps == NULL) {
        return P4P_EINVAL;
    }
    *ndbps = rate_kbps * 4 / 1000; /* bits per 4 us symbol: 6 Mb/s -> 24 */
    return 0;
}

static uint64_t ppdu(const struct sim_wifi_timing *t, uint32_t ndbps, uint32_t psdu_len)
{
    uint64_t bits = 16 + 8ull * psdu_len + 6;
    uint64_t symbols = (bits + ndbps - 1) / ndbps;
    return t->preamble_ns + symbols * 4 * US + t->ext_ns;
}

int sim_wifi_ppdu_ns(enum sim_wifi_std std, uint32_t rate_kbps, uint32_t psdu_len,
                     uint64_t *airtime_ns)
{
    struct sim_wifi_timing t;
    uint32_t ndbps;
    if (sim_wifi_timing(std, &t) != 0 || sim_wifi_ndbps(std, rate_kbps, &ndbps) != 0 ||
        psdu_len < 1 || psdu_len > 4095 || airtime_ns == NULL) {
        return P4P_EINVAL;
    }
    *airtime_ns = ppdu(&t, ndbps, psdu_len);
    return 0;
}

uint32_t sim_wifi_ack_rate_kbps(uint32_t data_rate_kbps)
{
    return data_rate_kbps >= 24000 ? 24000 : data_rate_kbps >= 12000 ? 12000 : 6000;
}

static int frame_ok(const struct sim_wifi_frame *f)
{
    return f != NULL && std_ok(f->std) && rate_index(f->std, f->rate_kbps) >= 0 &&
           f->payload_len >= 1 && f->payload_len <= SIM_WIFI_PAYLOAD_MAX &&
           f->prop_delay_ns <= 1000 * US;
}

int sim_wifi_frame_times(const struct sim_wifi_frame *f, struct sim_wifi_times *out)
{
    struct sim_wifi_timing t;
    if (!frame_ok(f) || out == NULL || sim_wifi_timing(f->std, &t) != 0) {
        return P4P_EINVAL;
    }
    struct sim_wifi_timing legacy;
    sim_wifi_timing(f->std == SIM_WIFI_11N ? SIM_WIFI_11A : f->std, &legacy);
    uint32_t ack_rate = sim_wifi_ack_rate_kbps(f->rate_kbps);
    struct sim_wifi_times o;
    o.data_ns = ppdu(&t, f->rate_kbps * 4 / 1000, f->payload_len + SIM_WIFI_MAC_OVERHEAD);
    o.ack_ns = ppdu(&legacy, ack_rate * 4 / 1000, SIM_WIFI_ACK_LEN);
    o.success_ns =
        o.data_ns + t.sifs_ns + f->prop_delay_ns + o.ack_ns + t.difs_ns + f->prop_delay_ns;
    o.collision_ns = o.data_ns + t.difs_ns + f->prop_delay_ns;
    o.mean_backoff_ns = t.cw_min * t.slot_ns / 2;
    o.single_bps = 8.0 * f->payload_len * 1e9 / (double)(o.mean_backoff_ns + o.success_ns);
    *out = o;
    return 0;
}

static double bianchi_tau(double p, double w, uint32_t m)
{
    double sum = 0, term = 1;
    for (uint32_t k = 0; k < m; k++) {
        sum += term;
        term *= 2 * p;
    }
    return 2.0 / (1.0 + w + p * w * sum);
}

int sim_wifi_bianchi_solve(uint32_t w, uint32_t m, uint32_t n, double *tau, double *p)
{
    if (w < 2 || m > 20 || n < 1 || tau == NULL || p == NULL) {
        return P4P_EINVAL;
    }
    /* g(p) = 1 - (1 - tau(p))^(n-1) - p falls strictly from g(0) >= 0 to g(1) < 0. */
    double lo = 0, hi = 1;
    for (int i = 0; i < 200 && hi - lo > 1e-15; i++) {
        double mid = (lo + hi) / 2;
        double g = 1 - pow(1 - bianchi_tau(mid, w, m), (double)(n - 1)) - mid;
        if (g > 0) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    *p = n == 1 ? 0 : (lo + hi) / 2;
    *tau = bianchi_tau(*p, w, m);
    return 0;
}

int sim_wifi_bianchi(const struct sim_wifi_frame *f, uint32_t n, struct sim_wifi_bianchi *out)
{
    struct sim_wifi_times ft;
    struct sim_wifi_timing t;
    if (n < 1 || n > 10000 || out == NULL || sim_wifi_frame_times(f, &ft) != 0) {
        return P4P_EINVAL;
    }
    sim_wifi_timing(f->std, &t);
    uint32_t w = t.cw_min + 1, m = 0;
    while ((w << m) < t.cw_max + 1) {
        m++;
    }
    struct sim_wifi_bianchi b;
    sim_wifi_bianchi_solve(w, m, n, &b.tau, &b.p);
    b.p_tr = 1 - pow(1 - b.tau, (double)n);
    b.p_s = n * b.tau * pow(1 - b.tau, (double)(n - 1)) / b.p_tr;
    double payload_bits = 8.0 * f->payload_len;
    double slot_time = (1 - b.p_tr) * (double)t.slot_ns + b.p_tr * b.p_s * (double)ft.success_ns +
                       b.p_tr * (1 - b.p_s) * (double)ft.collision_ns;
    b.throughput_bps = b.p_s * b.p_tr * payload_bits * 1e9 / slot_time;
    b.efficiency = b.throughput_bps / (f->rate_kbps * 1000.0);
    *out = b;
    return 0;
}

/* ---- Propagation -------------------------------------------------------------------- */

double sim_wifi_fspl_db(double distance_m, double freq_hz)
{
    return 20.0 * log10(4.0 * M_PI * distance_m * freq_hz / SIM_WIFI_C_M_PER_S);
}

void sim_wifi_prop_default(struct sim_wifi_prop *p, enum sim_wifi_prop_model model, double freq_hz)
{
    *p = (struct sim_wifi_prop){
        .model = model, .freq_hz = freq_hz, .d0_m = 1.0, .exponent = 3.0, .ht_m = 1.5, .hr_m = 1.5};
}

double sim_wifi_two_ray_crossover_m(double ht_m, double hr_m, double freq_hz)
{
    return 4.0 * M_PI * ht_m * hr_m * freq_hz / SIM_WIFI_C_M_PER_S;
}

static int prop_ok(const struct sim_wifi_prop *p)
{
    if (p == NULL || !(p->freq_hz > 0) || !isfinite(p->freq_hz)) {
        return 0;
    }
    if (p->model == SIM_WIFI_LOG_DISTANCE) {
        return p->d0_m > 0 && isfinite(p->d0_m) && p->exponent > 0 && isfinite(p->exponent);
    }
    return p->model == SIM_WIFI_TWO_RAY && p->ht_m > 0 && p->hr_m > 0 && isfinite(p->ht_m) &&
           isfinite(p->hr_m);
}

double sim_wifi_path_loss_db(const struct sim_wifi_prop *p, double distance_m)
{
    if (!prop_ok(p) || !(distance_m > 0) || !isfinite(distance_m)) {
        return NAN;
    }
    if (p->model == SIM_WIFI_LOG_DISTANCE) {
        return sim_wifi_fspl_db(p->d0_m, p->freq_hz) +
               10.0 * p->exponent * log10(distance_m / p->d0_m);
    }
    if (distance_m <= sim_wifi_two_ray_crossover_m(p->ht_m, p->hr_m, p->freq_hz)) {
        return sim_wifi_fspl_db(distance_m, p->freq_hz);
    }
    return 40.0 * log10(distance_m) - 20.0 * log10(p->ht_m * p->hr_m);
}

int sim_wifi_range_m(const struct sim_wifi_prop *p, double max_path_loss_db, double *range_m)
{
    if (!prop_ok(p) || !isfinite(max_path_loss_db) || range_m == NULL) {
        return P4P_EINVAL;
    }
    double lambda = SIM_WIFI_C_M_PER_S / p->freq_hz;
    if (p->model == SIM_WIFI_LOG_DISTANCE) {
        double pl0 = sim_wifi_fspl_db(p->d0_m, p->freq_hz);
        *range_m = p->d0_m * pow(10.0, (max_path_loss_db - pl0) / (10.0 * p->exponent));
        return 0;
    }
    double dc = sim_wifi_two_ray_crossover_m(p->ht_m, p->hr_m, p->freq_hz);
    if (max_path_loss_db <= sim_wifi_fspl_db(dc, p->freq_hz)) {
        *range_m = lambda / (4.0 * M_PI) * pow(10.0, max_path_loss_db / 20.0);
    } else {
        *range_m = pow(10.0, (max_path_loss_db + 20.0 * log10(p->ht_m * p->hr_m)) / 40.0);
    }
    return 0;
}

double sim_wifi_sensitivity_dbm(enum sim_wifi_std std, uint32_t rate_kbps)
{
    static const double ofdm[] = {-82, -81, -79, -77, -74, -70, -66, -65};
    static const double ht[] = {-82, -79, -77, -74, -70, -66, -65, -64};
    int i = std_ok(std) ? rate_index(std, rate_kbps) : -1;
    if (i < 0) {
        return NAN;
    }
    return std == SIM_WIFI_11N ? ht[i] : ofdm[i];
}
