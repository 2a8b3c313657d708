/*
 * lora.c — LoRa time on air, EU868/US915 rules, the duty-cycle ledger, reception and
 * collisions. See lora.h for the API and docs/MODELS.md for the models and their sources.
 */
#include "lora.h"

#include <math.h>
#include <strings.h>

#include "p4p/p4p.h"

/* ---- Time on air ------------------------------------------------------------------------ */

void sim_lora_phy_default(struct sim_lora_phy *p, uint8_t sf)
{
    *p = (struct sim_lora_phy){
        .sf = sf,
        .bw_hz = 125000,
        .cr = 1,
        .preamble_symbols = 8,
        .implicit_header = 0,
        .crc = 1,
        .ldro = SIM_LORA_LDRO_AUTO,
    };
}

static int bw_ok(uint32_t bw_hz)
{
    return bw_hz == 125000 || bw_hz == 250000 || bw_hz == 500000;
}

static int sf_ok(uint8_t sf)
{
    return sf >= SIM_LORA_SF_MIN && sf <= SIM_LORA_SF_MAX;
}

int sim_lora_phy_check(const struct sim_lora_phy *p)
{
    if (p == NULL || !sf_ok(p->sf) || !bw_ok(p->bw_hz) || p->cr < 1 || p->cr > 4 ||
        p->preamble_symbols < 6 || p->implicit_header > 1 || p->crc > 1 ||
        (p->ldro != SIM_LORA_LDRO_AUTO && p->ldro != SIM_LORA_LDRO_ON &&
         p->ldro != SIM_LORA_LDRO_OFF)) {
        return P4P_EINVAL;
    }
    return 0;
}

/* 2^SF / BW in ns: exact, since 1e9 / BW is 8000, 4000 or 2000 ns. */
static uint64_t symbol_ns(uint8_t sf, uint32_t bw_hz)
{
    return ((uint64_t)1 << sf) * (1000000000ull / bw_hz);
}

int sim_lora_airtime(const struct sim_lora_phy *p, uint32_t payload_len,
                     struct sim_lora_airtime *out)
{
    if (sim_lora_phy_check(p) != 0 || payload_len < 1 || payload_len > SIM_LORA_PAYLOAD_MAX) {
        return P4P_EINVAL;
    }
    uint64_t ts = symbol_ns(p->sf, p->bw_hz);
    int de = p->ldro == SIM_LORA_LDRO_ON || (p->ldro == SIM_LORA_LDRO_AUTO && ts > 16000000);
    /* payloadSymbNb = 8 + max(ceil((8PL - 4SF + 28 + 16CRC - 20IH) / (4(SF - 2DE))) (CR+4), 0) */
    int64_t num = 8 * (int64_t)payload_len - 4 * p->sf + 28 + 16 * p->crc - 20 * p->implicit_header;
    int64_t den = 4 * (p->sf - 2 * de);
    int64_t blocks = num > 0 ? (num + den - 1) / den : 0;
    uint32_t symbols = 8 + (uint32_t)blocks * (p->cr + 4u);
    /* (n + 4.25) symbols = (4n + 17) / 4 symbols; ts is a multiple of 4 ns (2000 * 2^SF). */
    uint64_t preamble = (4ull * p->preamble_symbols + 17) * (ts / 4);
    uint64_t payload = (uint64_t)symbols * ts;
    *out = (struct sim_lora_airtime){
        .symbol_ns = ts,
        .preamble_ns = preamble,
        .payload_ns = payload,
        .airtime_ns = preamble + payload,
        .airtime_ms = (double)(preamble + payload) / 1e6,
        .preamble_ms = (double)preamble / 1e6,
        .payload_symbols = symbols,
        .ldro = (uint8_t)de,
    };
    return 0;
}

/* ---- Regional rules ------------------------------------------------------------------- */

/* ETSI EN 300 220-2 V3.2.1 (2018-06), Annex B table B.1, the bands a LoRaWAN EU868 device
 * uses (non-specific short range devices, duty-cycle access; LBT+AFA is not modelled). The
 * aliases are the older ERC Rec 70-03 / EN 300 220-1 V2 names g1..g4 used by LoRaWAN stacks
 * and The Things Network; "g" names 865-868 MHz, where LoRaWAN's additional channels
 * (867.1-867.9 MHz) live. Band O (869.3-869.4 MHz) is omitted: it is not duty-cycle
 * regulated for this device class. */
static const struct sim_lora_subband eu868[] = {
    {"K", NULL, 863000, 865000, 1000, 14},   /* 0.1 % */
    {"L", "g", 865000, 868000, 10000, 14},   /* 1 % */
    {"M", "g1", 868000, 868600, 10000, 14},  /* 1 % */
    {"N", "g2", 868700, 869200, 1000, 14},   /* 0.1 % */
    {"P", "g3", 869400, 869650, 100000, 27}, /* 10 %, 500 mW */
    {"Q", "g4", 869700, 870000, 10000, 14},  /* 1 % */
};

const struct sim_lora_subband *sim_lora_eu868_subbands(size_t *count)
{
    *count = sizeof(eu868) / sizeof(eu868[0]);
    return eu868;
}

const struct sim_lora_subband *sim_lora_eu868_subband(const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(eu868) / sizeof(eu868[0]); i++) {
        if (strcasecmp(name, eu868[i].name) == 0 ||
            (eu868[i].alias != NULL && strcasecmp(name, eu868[i].alias) == 0)) {
            return &eu868[i];
        }
    }
    return NULL;
}

const struct sim_lora_subband *sim_lora_eu868_subband_at(uint32_t freq_khz)
{
    for (size_t i = 0; i < sizeof(eu868) / sizeof(eu868[0]); i++) {
        if (freq_khz >= eu868[i].low_khz && freq_khz < eu868[i].high_khz) {
            return &eu868[i];
        }
    }
    return NULL;
}

uint64_t sim_lora_off_period_ns(uint64_t airtime_ns, uint32_t duty_cycle_ppm)
{
    if (duty_cycle_ppm == 0 || duty_cycle_ppm > 1000000) {
        return UINT64_MAX;
    }
    /* T (1/dc - 1) = T (1e6 - ppm) / ppm, rounded up; 128-bit so long airtimes cannot wrap. */
    unsigned __int128 n = (unsigned __int128)airtime_ns * (1000000u - duty_cycle_ppm);
    unsigned __int128 q = (n + duty_cycle_ppm - 1) / duty_cycle_ppm;
    return q > UINT64_MAX ? UINT64_MAX : (uint64_t)q;
}

int sim_lora_us915_dwell_check(uint64_t airtime_ns)
{
    return airtime_ns <= SIM_LORA_US915_DWELL_NS ? 0 : P4P_ETOOBIG;
}

/* ---- Duty-cycle ledger --------------------------------------------------------------- */

uint32_t sim_lora_dc_ring_size(uint32_t duty_cycle_ppm, uint64_t min_airtime_ns)
{
    if (duty_cycle_ppm == 0 || duty_cycle_ppm > 1000000 || min_airtime_ns == 0) {
        return 0;
    }
    uint64_t budget = SIM_LORA_DC_WINDOW_NS / 1000000 * duty_cycle_ppm;
    /* Frames fully inside the window, plus one straddling its start. */
    uint64_t n = budget / min_airtime_ns + 2;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int sim_lora_dc_init(struct sim_lora_dc_ledger *l, enum sim_lora_dc_mode mode,
                     uint32_t duty_cycle_ppm, struct sim_lora_dc_record *ring, uint32_t ring_cap)
{
    if (l == NULL || duty_cycle_ppm == 0 || duty_cycle_ppm > 1000000 ||
        (mode != SIM_LORA_DC_PER_FRAME && mode != SIM_LORA_DC_HOURLY) ||
        (ring == NULL) != (ring_cap == 0) || (mode == SIM_LORA_DC_HOURLY && ring_cap == 0)) {
        return P4P_EINVAL;
    }
    *l = (struct sim_lora_dc_ledger){
        .mode = mode,
        .duty_cycle_ppm = duty_cycle_ppm,
        .budget_ns = SIM_LORA_DC_WINDOW_NS / 1000000 * duty_cycle_ppm,
        .ring = ring,
        .ring_cap = ring_cap,
    };
    return 0;
}

static const struct sim_lora_dc_record *rec_at(const struct sim_lora_dc_ledger *l, uint32_t i)
{
    return &l->ring[(l->head + i) % l->ring_cap];
}

static uint64_t rec_end(const struct sim_lora_dc_record *r)
{
    return r->start_ns + r->airtime_ns;
}

/* Airtime of the recorded frames after time x (x may be negative: "before time 0"). */
static uint64_t airtime_after(const struct sim_lora_dc_ledger *l, int64_t x)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < l->count; i++) {
        const struct sim_lora_dc_record *r = rec_at(l, i);
        int64_t s = (int64_t)r->start_ns, e = (int64_t)rec_end(r);
        if (e > x) {
            sum += (uint64_t)(e - (s > x ? s : x));
        }
    }
    return sum;
}

/*
 * HOURLY. A frame [t, t+T] is allowed when every 3600 s window holds at most the budget B.
 * Past frames do not overlap each other, so of all windows containing part of the new frame
 * the one ending at t+T holds the most (moving its end earlier drops new airtime at least as
 * fast as it can pick up old), so the rule is
 *     T + airtime_after(t + T - W) <= B.
 * The left side falls as t grows; we slide the window start x = t + T - W forward through
 * the records until enough old airtime has left it.
 */
static int earliest_hourly(const struct sim_lora_dc_ledger *l, uint64_t t0, uint64_t airtime_ns,
                           uint64_t *start_ns)
{
    const int64_t w = (int64_t)SIM_LORA_DC_WINDOW_NS;
    if (airtime_ns > l->budget_ns) {
        return P4P_ETOOBIG;
    }
    if (l->count == l->ring_cap) {
        /* Full ring: wait until the oldest record has left every window the frame touches. */
        uint64_t need = rec_end(rec_at(l, 0)) + SIM_LORA_DC_WINDOW_NS;
        need = need > airtime_ns ? need - airtime_ns : 0;
        t0 = need > t0 ? need : t0;
    }
    int64_t x = (int64_t)t0 + (int64_t)airtime_ns - w;
    uint64_t allow = l->budget_ns - airtime_ns;
    uint64_t used = airtime_after(l, x);
    if (used > allow) {
        uint64_t excess = used - allow;
        for (uint32_t i = 0; i < l->count && excess > 0; i++) {
            const struct sim_lora_dc_record *r = rec_at(l, i);
            int64_t s = (int64_t)r->start_ns, e = (int64_t)rec_end(r);
            if (e <= x) {
                continue;
            }
            int64_t from = s > x ? s : x;
            uint64_t avail = (uint64_t)(e - from);
            if (excess <= avail) {
                x = from + (int64_t)excess;
                excess = 0;
            } else {
                excess -= avail;
                x = e;
            }
        }
        t0 = (uint64_t)(x - (int64_t)airtime_ns + w);
    }
    *start_ns = t0;
    return 0;
}

int sim_lora_dc_earliest(const struct sim_lora_dc_ledger *l, uint64_t now_ns, uint64_t airtime_ns,
                         uint64_t *start_ns)
{
    if (l == NULL || start_ns == NULL) {
        return P4P_EINVAL;
    }
    uint64_t t0 = now_ns > l->busy_until_ns ? now_ns : l->busy_until_ns;
    if (l->mode == SIM_LORA_DC_PER_FRAME) {
        *start_ns = t0 > l->closed_until_ns ? t0 : l->closed_until_ns;
        return 0;
    }
    return earliest_hourly(l, t0, airtime_ns, start_ns);
}

/* Drops records that can no longer matter once a frame ending at t is recorded: every later
 * frame starts at >= t, so its window begins after t - W. */
static void prune(struct sim_lora_dc_ledger *l, uint64_t t)
{
    while (l->count > 0) {
        uint64_t e = rec_end(rec_at(l, 0));
        if (e + SIM_LORA_DC_WINDOW_NS > t) {
            break;
        }
        l->head = (l->head + 1) % l->ring_cap;
        l->count--;
    }
}

int sim_lora_dc_record(struct sim_lora_dc_ledger *l, uint64_t start_ns, uint64_t airtime_ns)
{
    if (l == NULL || airtime_ns == 0 || (l->frames > 0 && start_ns < l->busy_until_ns)) {
        return P4P_EINVAL;
    }
    uint64_t ok_at;
    int rc = sim_lora_dc_earliest(l, start_ns, airtime_ns, &ok_at);
    if (rc == P4P_ETOOBIG || (rc == 0 && ok_at != start_ns)) {
        return P4P_EFULL;
    }
    if (rc != 0) {
        return rc;
    }
    if (l->ring_cap > 0) {
        prune(l, start_ns + airtime_ns);
        if (l->count == l->ring_cap) {
            /* Only PER_FRAME gets here (HOURLY waited until the oldest record could go):
             * forget the oldest, which makes the usage report a lower bound. */
            l->head = (l->head + 1) % l->ring_cap;
            l->count--;
        }
        l->ring[(l->head + l->count) % l->ring_cap] =
            (struct sim_lora_dc_record){.start_ns = start_ns, .airtime_ns = airtime_ns};
        l->count++;
    }
    l->busy_until_ns = start_ns + airtime_ns;
    if (l->mode == SIM_LORA_DC_PER_FRAME) {
        uint64_t off = sim_lora_off_period_ns(airtime_ns, l->duty_cycle_ppm);
        l->closed_until_ns = l->busy_until_ns + off;
    }
    l->total_airtime_ns += airtime_ns;
    l->frames++;
    return 0;
}

void sim_lora_dc_usage(const struct sim_lora_dc_ledger *l, uint64_t now_ns,
                       struct sim_lora_dc_usage *out)
{
    uint64_t in_window = 0;
    if (l->ring_cap > 0) {
        int64_t x = (int64_t)now_ns - (int64_t)SIM_LORA_DC_WINDOW_NS;
        for (uint32_t i = 0; i < l->count; i++) {
            const struct sim_lora_dc_record *r = rec_at(l, i);
            int64_t s = (int64_t)r->start_ns, e = (int64_t)rec_end(r);
            int64_t lo = s > x ? s : x, hi = e < (int64_t)now_ns ? e : (int64_t)now_ns;
            if (hi > lo) {
                in_window += (uint64_t)(hi - lo);
            }
        }
    }
    *out = (struct sim_lora_dc_usage){
        .total_airtime_ns = l->total_airtime_ns,
        .frames = l->frames,
        .window_airtime_ns = in_window,
        .budget_fraction = (double)in_window / (double)l->budget_ns,
    };
}

/* ---- Reception ---------------------------------------------------------------------- */

void sim_lora_path_loss_default(struct sim_lora_path_loss *pl)
{
    *pl = (struct sim_lora_path_loss){
        .d0_m = 40.0, .pl_d0_db = 127.41, .exponent = 2.08, .sigma_db = 3.57};
}

double sim_lora_path_loss_db(const struct sim_lora_path_loss *pl, double distance_m)
{
    return pl->pl_d0_db + 10.0 * pl->exponent * log10(distance_m / pl->d0_m);
}

double sim_lora_shadowing_db(struct sim_rng *r, double sigma_db)
{
    /* Box-Muller: u1 in (0, 1] keeps the log finite. One of the pair is used, so the stream
     * advances by exactly two draws per sample and no state is kept between calls. */
    double u1 = 1.0 - sim_rng_uniform(r);
    double u2 = sim_rng_uniform(r);
    return sigma_db * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* SX1276/77/78/79 datasheet rev. 7 (2020), table 10, RFS_L125_HF, RFS_L250_HF, RFS_L500_HF
 * (band 1, highest LNA gain, LNA boost), SF7..SF12. */
static const double sensitivity_dbm[3][SIM_LORA_SF_COUNT] = {
    {-123, -126, -129, -132, -133, -136}, /* 125 kHz */
    {-120, -123, -125, -128, -130, -133}, /* 250 kHz */
    {-116, -119, -122, -125, -128, -130}, /* 500 kHz */
};

double sim_lora_sensitivity_dbm(uint8_t sf, uint32_t bw_hz)
{
    if (!sf_ok(sf) || !bw_ok(bw_hz)) {
        return NAN;
    }
    int row = bw_hz == 125000 ? 0 : bw_hz == 250000 ? 1 : 2;
    return sensitivity_dbm[row][sf - SIM_LORA_SF_MIN];
}

double sim_lora_snr_floor_db(uint8_t sf)
{
    /* Datasheet table 13: -7.5 dB at SF7, 2.5 dB lower per SF step, -20 dB at SF12. */
    return sf_ok(sf) ? -7.5 - 2.5 * (sf - SIM_LORA_SF_MIN) : NAN;
}

double sim_lora_noise_floor_dbm(uint32_t bw_hz, double noise_figure_db)
{
    return -174.0 + 10.0 * log10((double)bw_hz) + noise_figure_db;
}

void sim_lora_link_default(struct sim_lora_link *l)
{
    *l = (struct sim_lora_link){.tx_power_dbm = 14.0, .noise_figure_db = 6.0};
    sim_lora_path_loss_default(&l->pl);
}

static int link_ok(const struct sim_lora_link *l)
{
    return l != NULL && isfinite(l->tx_power_dbm) && isfinite(l->tx_gain_dbi) &&
           isfinite(l->rx_gain_dbi) && isfinite(l->noise_figure_db) && l->pl.d0_m > 0 &&
           isfinite(l->pl.d0_m) && isfinite(l->pl.pl_d0_db) && l->pl.exponent > 0 &&
           isfinite(l->pl.exponent);
}

int sim_lora_receive(const struct sim_lora_link *l, uint8_t sf, uint32_t bw_hz, double distance_m,
                     double shadowing_db, struct sim_lora_rx *out)
{
    if (!link_ok(l) || !sf_ok(sf) || !bw_ok(bw_hz) || !(distance_m > 0) || !isfinite(distance_m) ||
        !isfinite(shadowing_db)) {
        return P4P_EINVAL;
    }
    struct sim_lora_rx rx;
    rx.path_loss_db = sim_lora_path_loss_db(&l->pl, distance_m) + shadowing_db;
    rx.rx_power_dbm = l->tx_power_dbm + l->tx_gain_dbi + l->rx_gain_dbi - rx.path_loss_db;
    rx.noise_floor_dbm = sim_lora_noise_floor_dbm(bw_hz, l->noise_figure_db);
    rx.snr_db = rx.rx_power_dbm - rx.noise_floor_dbm;
    rx.sensitivity_dbm = sim_lora_sensitivity_dbm(sf, bw_hz);
    rx.snr_floor_db = sim_lora_snr_floor_db(sf);
    rx.rssi_margin_db = rx.rx_power_dbm - rx.sensitivity_dbm;
    rx.snr_margin_db = rx.snr_db - rx.snr_floor_db;
    rx.receives = rx.rssi_margin_db >= 0 && rx.snr_margin_db >= 0;
    *out = rx;
    return 0;
}

int sim_lora_max_range_m(const struct sim_lora_link *l, uint8_t sf, uint32_t bw_hz, double *range_m)
{
    if (!link_ok(l) || !sf_ok(sf) || !bw_ok(bw_hz)) {
        return P4P_EINVAL;
    }
    double need = sim_lora_sensitivity_dbm(sf, bw_hz);
    double by_snr = sim_lora_noise_floor_dbm(bw_hz, l->noise_figure_db) + sim_lora_snr_floor_db(sf);
    if (by_snr > need) {
        need = by_snr;
    }
    double max_pl = l->tx_power_dbm + l->tx_gain_dbi + l->rx_gain_dbi - need;
    *range_m = l->pl.d0_m * pow(10.0, (max_pl - l->pl.pl_d0_db) / (10.0 * l->pl.exponent));
    return 0;
}

/* ---- Collisions --------------------------------------------------------------------- */

void sim_lora_capture_default(struct sim_lora_capture *c)
{
    *c = (struct sim_lora_capture){.capture_db = 6.0, .lock_symbols = 5, .lock_on_first = 1};
}

/* Croce, Gucciardo, Mangione, Santaromita, Tinnirello, "Impact of LoRa Imperfect
 * Orthogonality: Analysis of Link-Level Performance", IEEE Communications Letters 22(4), 2018,
 * table I: SIR thresholds in dB, rows the desired SF 7..12, columns the interferer's. */
static const double croce_sir_db[SIM_LORA_SF_COUNT][SIM_LORA_SF_COUNT] = {
    /*  7    8    9   10   11   12 */
    {1, -8, -9, -9, -9, -9},      /* SF7 */
    {-11, 1, -11, -12, -13, -13}, /* SF8 */
    {-15, -13, 1, -13, -14, -15}, /* SF9 */
    {-19, -18, -17, 1, -17, -18}, /* SF10 */
    {-22, -22, -21, -20, 1, -20}, /* SF11 */
    {-25, -25, -25, -24, -23, 1}, /* SF12 */
};

double sim_lora_sir_threshold_db(uint8_t sf_desired, uint8_t sf_interferer)
{
    if (!sf_ok(sf_desired) || !sf_ok(sf_interferer)) {
        return NAN;
    }
    return croce_sir_db[sf_desired - SIM_LORA_SF_MIN][sf_interferer - SIM_LORA_SF_MIN];
}

static int frame_ok(const struct sim_lora_frame *f)
{
    return sf_ok(f->sf) && bw_ok(f->bw_hz) && f->end_ns > f->start_ns && isfinite(f->rx_power_dbm);
}

/* Where f's last `lock` preamble symbols begin: an interferer that has ended by then only
 * hit preamble symbols the receiver can do without. */
static uint64_t critical_start(const struct sim_lora_frame *f, uint16_t lock)
{
    uint16_t spare = f->preamble_symbols > lock ? (uint16_t)(f->preamble_symbols - lock) : 0;
    return f->start_ns + spare * symbol_ns(f->sf, f->bw_hz);
}

/* End of f's preamble including the 4.25 sync/start-of-frame symbols. */
static uint64_t preamble_end(const struct sim_lora_frame *f)
{
    return f->start_ns + (4ull * f->preamble_symbols + 17) * (symbol_ns(f->sf, f->bw_hz) / 4);
}

static enum sim_lora_fate judge(const struct sim_lora_capture *c, const struct sim_lora_frame *f,
                                const struct sim_lora_frame *j)
{
    if (j->channel != f->channel || j->end_ns <= f->start_ns || j->start_ns >= f->end_ns) {
        return SIM_LORA_RECEIVED;
    }
    if (j->end_ns <= critical_start(f, c->lock_symbols)) {
        return SIM_LORA_RECEIVED;
    }
    double sir = f->rx_power_dbm - j->rx_power_dbm;
    if (j->sf != f->sf) {
        return sir >= sim_lora_sir_threshold_db(f->sf, j->sf) ? SIM_LORA_RECEIVED
                                                              : SIM_LORA_LOST_INTER_SF;
    }
    if (sir < c->capture_db) {
        return SIM_LORA_LOST_CAPTURE;
    }
    if (c->lock_on_first && j->start_ns < f->start_ns && f->start_ns >= preamble_end(j)) {
        return SIM_LORA_LOST_LOCKED;
    }
    return SIM_LORA_RECEIVED;
}

int sim_lora_survives(const struct sim_lora_capture *c, const struct sim_lora_frame *f,
                      const struct sim_lora_frame *others, size_t n, enum sim_lora_fate *fate,
                      size_t *culprit)
{
    if (c == NULL || f == NULL || (others == NULL && n > 0) || fate == NULL || !frame_ok(f) ||
        !isfinite(c->capture_db)) {
        return P4P_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!frame_ok(&others[i])) {
            return P4P_EINVAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        enum sim_lora_fate v = judge(c, f, &others[i]);
        if (v != SIM_LORA_RECEIVED) {
            *fate = v;
            if (culprit != NULL) {
                *culprit = i;
            }
            return 0;
        }
    }
    *fate = SIM_LORA_RECEIVED;
    return 1;
}
