/*
 * lora.h — the arithmetic of a LoRa link: time on air, regional duty-cycle and dwell rules,
 * reception at a distance, and which of several overlapping frames a receiver decodes.
 *
 * Pure functions and caller-owned state, no globals; the only randomness (log-normal
 * shadowing) is drawn from a sim_rng stream the caller passes. The link model (sim/link*.c)
 * composes them: the duty-cycle ledger decides when a node may transmit, the airtime how long
 * the frame occupies the channel, reception whether each receiver hears it at all, and the
 * collision rule whether it survives the frames that overlap it.
 *
 * Time on air is the Semtech formula (SX1276/77/78/79 datasheet section 4.1.1.6-7, AN1200.13)
 * computed exactly in integer nanoseconds: for BW 125/250/500 kHz every symbol time is a whole
 * number of nanoseconds divisible by four, so airtimes such as 56.576 ms are exact.
 *
 * Duty cycle (EU868): one ledger per (node, sub-band), in one of two modes.
 *   PER_FRAME  after a frame of airtime T the sub-band is closed for T * (1/dc - 1)
 *              (LoRaWAN's reading of the rule, RP002 section "EU863-870");
 *   HOURLY     the airtime inside any sliding 3600 s window is at most dc * 3600 s
 *              (ETSI EN 300 220's definition of duty cycle), kept as a bounded ring of
 *              (start, airtime) records whose memory the caller supplies.
 * Times passed to one ledger must not go backwards.
 *
 * Models and their sources are described in docs/MODELS.md.
 */
#ifndef SIM_LORA_H
#define SIM_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#define SIM_LORA_SF_MIN      7
#define SIM_LORA_SF_MAX      12
#define SIM_LORA_SF_COUNT    6
#define SIM_LORA_PAYLOAD_MAX 255

/* ---- Time on air ------------------------------------------------------------------------ */

enum sim_lora_ldro {
    SIM_LORA_LDRO_AUTO = 0, /* on when the symbol time exceeds 16 ms (SF11/12 at 125 kHz,
                               SF12 at 250 kHz) */
    SIM_LORA_LDRO_ON = 1,
    SIM_LORA_LDRO_OFF = 2,
};

struct sim_lora_phy {
    uint8_t sf;                /* spreading factor 7..12 */
    uint32_t bw_hz;            /* 125000, 250000 or 500000 */
    uint8_t cr;                /* coding rate 4/(4+cr), cr = 1..4 */
    uint16_t preamble_symbols; /* programmed preamble length, 6..65535 (LoRaWAN: 8) */
    uint8_t implicit_header;   /* 1: no PHY header */
    uint8_t crc;               /* 1: 16-bit payload CRC present */
    enum sim_lora_ldro ldro;
};

/* LoRaWAN-style defaults: BW 125 kHz, CR 4/5, 8 preamble symbols, explicit header, CRC on,
 * LDRO auto. */
void sim_lora_phy_default(struct sim_lora_phy *p, uint8_t sf);

/* Checks every field; 0 or P4P_EINVAL. */
int sim_lora_phy_check(const struct sim_lora_phy *p);

struct sim_lora_airtime {
    uint64_t symbol_ns;       /* 2^SF / BW */
    uint64_t preamble_ns;     /* (preamble_symbols + 4.25) symbols */
    uint64_t payload_ns;      /* payload_symbols symbols */
    uint64_t airtime_ns;      /* preamble_ns + payload_ns */
    double airtime_ms;        /* the same, in milliseconds */
    double preamble_ms;       /* ditto */
    uint32_t payload_symbols; /* 8 + max(ceil(...) * (cr + 4), 0): header + payload + CRC */
    uint8_t ldro;             /* 1 if low-data-rate optimisation was in effect */
};

/* Time on air of a frame with payload_len (1..255) bytes. 0 or P4P_EINVAL; *out is written
 * only on success. */
int sim_lora_airtime(const struct sim_lora_phy *p, uint32_t payload_len,
                     struct sim_lora_airtime *out);

/* ---- Regional rules ------------------------------------------------------------------- */

/* One EU868 sub-band. Names are the band letters of ETSI EN 300 220-2 V3.2.1 Annex B (table
 * B.1); `alias` is the older name (ERC Rec 70-03 / EN 300 220 V2, as used by LoRaWAN tools
 * and The Things Network) or NULL. Frequencies in kHz, [low, high). */
struct sim_lora_subband {
    const char *name;
    const char *alias;
    uint32_t low_khz, high_khz;
    uint32_t duty_cycle_ppm; /* 10000 = 1 % */
    int16_t max_erp_dbm;     /* 14 (25 mW) or 27 (500 mW) */
};

/* The EU868 sub-band table (static, read-only); its length in *count. */
const struct sim_lora_subband *sim_lora_eu868_subbands(size_t *count);

/* The sub-band called `name` (its letter or its alias, case-insensitive), or NULL. */
const struct sim_lora_subband *sim_lora_eu868_subband(const char *name);

/* The sub-band containing freq_khz, or NULL (outside 863-870 MHz or in a gap). */
const struct sim_lora_subband *sim_lora_eu868_subband_at(uint32_t freq_khz);

/* LoRaWAN's per-frame off period: airtime * (1/dc - 1), rounded up to whole nanoseconds.
 * duty_cycle_ppm must be 1..1000000. */
uint64_t sim_lora_off_period_ns(uint64_t airtime_ns, uint32_t duty_cycle_ppm);

/* US902-928: a frame may occupy a channel at most 400 ms (FCC 15.247(a)(1)(i) dwell time,
 * LoRaWAN RP002 "US902-928"). 0 if airtime_ns is allowed, else P4P_ETOOBIG. */
#define SIM_LORA_US915_DWELL_NS 400000000ull
int sim_lora_us915_dwell_check(uint64_t airtime_ns);

/* ---- Duty-cycle ledger --------------------------------------------------------------- */

enum sim_lora_dc_mode {
    SIM_LORA_DC_PER_FRAME = 1, /* mode A: per-frame off period */
    SIM_LORA_DC_HOURLY = 2,    /* mode B: sliding one-hour budget */
};

#define SIM_LORA_DC_WINDOW_NS 3600000000000ull

struct sim_lora_dc_record {
    uint64_t start_ns, airtime_ns;
};

struct sim_lora_dc_ledger {
    enum sim_lora_dc_mode mode;
    uint32_t duty_cycle_ppm;
    uint64_t budget_ns;        /* dc * 3600 s */
    uint64_t busy_until_ns;    /* end of the last frame: one radio sends one frame at a time */
    uint64_t closed_until_ns;  /* PER_FRAME: end of the last frame's off period */
    uint64_t total_airtime_ns; /* since init */
    uint64_t frames;           /* since init */
    struct sim_lora_dc_record *ring; /* caller's memory, ring_cap records, oldest at head */
    uint32_t ring_cap, head, count;
};

/* Records a node keeps for one hour of frames of at least min_airtime_ns at this duty cycle:
 * the ring capacity that never limits HOURLY mode (a smaller ring is still correct, only
 * stricter: a frame then waits until the oldest record leaves the window). */
uint32_t sim_lora_dc_ring_size(uint32_t duty_cycle_ppm, uint64_t min_airtime_ns);

/* Prepares a ledger. HOURLY needs ring_cap >= 1; PER_FRAME may pass (NULL, 0), and with a
 * ring also reports the airtime of the last hour in sim_lora_dc_usage(). The ring must stay
 * valid while the ledger is used. 0 or P4P_EINVAL. */
int sim_lora_dc_init(struct sim_lora_dc_ledger *l, enum sim_lora_dc_mode mode,
                     uint32_t duty_cycle_ppm, struct sim_lora_dc_record *ring, uint32_t ring_cap);

/* The earliest start >= now_ns at which a frame of airtime_ns may begin. 0, or P4P_ETOOBIG
 * when the frame can never fit (HOURLY: longer than the whole budget). */
int sim_lora_dc_earliest(const struct sim_lora_dc_ledger *l, uint64_t now_ns, uint64_t airtime_ns,
                         uint64_t *start_ns);

/* Records a frame. 0; P4P_EFULL if starting at start_ns would break the rule (ask
 * sim_lora_dc_earliest first); P4P_EINVAL if start_ns is before the end of the previous
 * frame or airtime_ns is 0. */
int sim_lora_dc_record(struct sim_lora_dc_ledger *l, uint64_t start_ns, uint64_t airtime_ns);

struct sim_lora_dc_usage {
    uint64_t total_airtime_ns;  /* since init */
    uint64_t frames;            /* since init */
    uint64_t window_airtime_ns; /* inside (now - 3600 s, now], from the ring */
    double budget_fraction;     /* window_airtime_ns / budget_ns */
};

void sim_lora_dc_usage(const struct sim_lora_dc_ledger *l, uint64_t now_ns,
                       struct sim_lora_dc_usage *out);

/* ---- Reception ---------------------------------------------------------------------- */

/* Log-distance path loss with log-normal shadowing,
 *     PL(d) = PL(d0) + 10 n log10(d / d0) + X_sigma.
 * Defaults (Bor et al., "Do LoRa Low-Power Wide-Area Networks Scale?", MSWiM 2016, and
 * their simulator LoRaSim): d0 = 40 m, PL(d0) = 127.41 dB, n = 2.08, sigma = 3.57 dB. */
struct sim_lora_path_loss {
    double d0_m, pl_d0_db, exponent, sigma_db;
};

void sim_lora_path_loss_default(struct sim_lora_path_loss *pl);

/* Mean path loss (no shadowing) at distance_m > 0, dB. */
double sim_lora_path_loss_db(const struct sim_lora_path_loss *pl, double distance_m);

/* One draw of X_sigma ~ N(0, sigma^2), dB (Box-Muller on two uniforms of r). */
double sim_lora_shadowing_db(struct sim_rng *r, double sigma_db);

/* SX1276 sensitivity, band 1 (862-1020 MHz), dBm; NAN for an unsupported (sf, bw). */
double sim_lora_sensitivity_dbm(uint8_t sf, uint32_t bw_hz);

/* The SNR the demodulator needs at this SF (SX1276 datasheet table 13), dB; NAN if invalid. */
double sim_lora_snr_floor_db(uint8_t sf);

/* Thermal noise in bw_hz plus the receiver's noise figure: -174 + 10 log10(BW) + NF, dBm. */
double sim_lora_noise_floor_dbm(uint32_t bw_hz, double noise_figure_db);

struct sim_lora_link {
    double tx_power_dbm;    /* default 14 (EU868 25 mW ERP) */
    double tx_gain_dbi;     /* default 0 */
    double rx_gain_dbi;     /* default 0 */
    double noise_figure_db; /* default 6 */
    struct sim_lora_path_loss pl;
};

void sim_lora_link_default(struct sim_lora_link *l);

struct sim_lora_rx {
    double path_loss_db; /* mean path loss plus the shadowing passed in */
    double rx_power_dbm; /* tx power + gains - path loss */
    double noise_floor_dbm;
    double snr_db;          /* rx power - noise floor */
    double sensitivity_dbm; /* datasheet */
    double snr_floor_db;    /* demodulation floor */
    double rssi_margin_db;  /* rx power - sensitivity */
    double snr_margin_db;   /* snr - snr floor */
    int receives;           /* both margins >= 0 */
};

/* Would a frame at (sf, bw_hz) from distance_m be received, with shadowing_db added to the
 * mean path loss (0 for the mean, or a sim_lora_shadowing_db() draw)? 0 or P4P_EINVAL. */
int sim_lora_receive(const struct sim_lora_link *l, uint8_t sf, uint32_t bw_hz, double distance_m,
                     double shadowing_db, struct sim_lora_rx *out);

/* The distance at which the mean received power meets the tighter of sensitivity and the SNR
 * floor (no shadowing). 0 or P4P_EINVAL. */
int sim_lora_max_range_m(const struct sim_lora_link *l, uint8_t sf, uint32_t bw_hz,
                         double *range_m);

/* ---- Collisions --------------------------------------------------------------------- */

/* A frame as one receiver sees it. */
struct sim_lora_frame {
    uint64_t start_ns, end_ns;
    double rx_power_dbm;
    uint8_t sf;
    uint32_t bw_hz;
    uint32_t channel; /* frames on different channels never interfere */
    uint16_t preamble_symbols;
};

struct sim_lora_capture {
    double capture_db;     /* same SF: wins only if this much stronger; default 6 */
    uint16_t lock_symbols; /* preamble symbols the receiver needs intact; default 5 */
    int lock_on_first;     /* 1: a receiver synchronised to an earlier same-SF frame does not
                              switch to a later one once that frame's preamble is over */
};

void sim_lora_capture_default(struct sim_lora_capture *c);

enum sim_lora_fate {
    SIM_LORA_RECEIVED = 0,
    SIM_LORA_LOST_CAPTURE = 1,  /* same SF, not stronger than an interferer by capture_db */
    SIM_LORA_LOST_LOCKED = 2,   /* same SF, the receiver was busy with an earlier frame */
    SIM_LORA_LOST_INTER_SF = 3, /* another SF, SIR below the Croce et al. threshold */
};

/* Croce et al. 2018 SIR threshold (dB) for a frame at sf_desired against one at
 * sf_interferer, both 7..12; the diagonal is their 1 dB co-SF value (not used by
 * sim_lora_survives, which applies capture_db to the same SF). NAN if out of range. */
double sim_lora_sir_threshold_db(uint8_t sf_desired, uint8_t sf_interferer);

/* Does frame f survive the n frames in others (which may include frames that do not overlap
 * it in time, or are on other channels: those are ignored; f itself must not be among them)?
 * Writes the fate and, when lost, the index in others of the first frame that destroyed it.
 * Returns 1 received, 0 lost, or P4P_EINVAL. The rules, in order, for each other frame j:
 *   1. j on another channel, or not overlapping f in time: harmless.
 *   2. j ends before f's last lock_symbols preamble symbols begin: harmless (f's receiver
 *      still detects its preamble; Bor et al. 2016, LoRaSim "timingCollision").
 *   3. same SF: f must be >= capture_db stronger (Bor et al. power capture) and, with
 *      lock_on_first, if j started first, f must start before j's preamble has ended.
 *   4. other SF: P_f - P_j >= sim_lora_sir_threshold_db(f.sf, j.sf).
 * docs/MODELS.md explains the choice. */
int sim_lora_survives(const struct sim_lora_capture *c, const struct sim_lora_frame *f,
                      const struct sim_lora_frame *others, size_t n, enum sim_lora_fate *fate,
                      size_t *culprit);

#endif /* SIM_LORA_H */
