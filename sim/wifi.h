/*
 * wifi.h — 802.11 OFDM link arithmetic: frame airtime, DCF saturation throughput and
 * collision probability by Bianchi's model, and path loss / range.
 *
 * Airtime (IEEE 802.11-2012 clause 18, OFDM PHY, 20 MHz): a PLCP preamble and SIGNAL field
 * (20 us), then ceil((16 service + 8 * PSDU + 6 tail bits) / N_DBPS) symbols of 4 us. 802.11g
 * (ERP-OFDM, clause 19) adds a 6 us signal extension; 802.11n (HT-mixed, clause 20, one
 * spatial stream, long guard interval) has a 36 us preamble and the HT MCS 0-7 rates. ACKs are
 * legacy OFDM at the highest mandatory rate (6, 12, 24 Mb/s) not above the data rate.
 *
 * Bianchi, "Performance Analysis of the IEEE 802.11 Distributed Coordination Function", IEEE
 * JSAC 18(3), 2000: n saturated stations, binary exponential backoff from W = CWmin + 1 up to
 * 2^m W = CWmax + 1, basic access (DATA-ACK). The fixed point of
 *     tau = 2 / (1 + W + p W sum_{k=0}^{m-1} (2p)^k),   p = 1 - (1 - tau)^(n-1)
 * (Bianchi's equation (7), rewritten without its removable singularity at p = 1/2) is found by
 * bisection; throughput is his equation (13) with T_s and T_c of equation (17).
 *
 * All functions are pure. docs/MODELS.md lists the constants and sources.
 */
#ifndef SIM_WIFI_H
#define SIM_WIFI_H

#include <stdint.h>

enum sim_wifi_std {
    SIM_WIFI_11A = 1, /* OFDM, 5 GHz */
    SIM_WIFI_11G = 2, /* ERP-OFDM, 2.4 GHz, short slot (no 802.11b stations) */
    SIM_WIFI_11N = 3, /* HT-mixed, 5 GHz, 20 MHz, 1 stream, 800 ns GI */
};

struct sim_wifi_timing {
    uint64_t slot_ns, sifs_ns, difs_ns; /* DIFS = SIFS + 2 slots */
    uint64_t preamble_ns;               /* everything before the first data symbol */
    uint64_t ext_ns;                    /* signal extension after each frame (11g: 6 us) */
    uint32_t cw_min, cw_max;            /* 15, 1023 */
};

/* 0 or P4P_EINVAL. */
int sim_wifi_timing(enum sim_wifi_std std, struct sim_wifi_timing *t);

/* Data bits per 4 us symbol for rate_kbps, which must be one of std's rates:
 * 11a/g 6000, 9000, 12000, 18000, 24000, 36000, 48000, 54000; 11n 6500, 13000, 19500,
 * 26000, 39000, 52000, 58500, 65000 (MCS 0-7). 0 or P4P_EINVAL. */
int sim_wifi_ndbps(enum sim_wifi_std std, uint32_t rate_kbps, uint32_t *ndbps);

/* Airtime of a PPDU carrying psdu_len bytes (1..4095). 0 or P4P_EINVAL. */
int sim_wifi_ppdu_ns(enum sim_wifi_std std, uint32_t rate_kbps, uint32_t psdu_len,
                     uint64_t *airtime_ns);

/* The control-response rate for an 11a/g data rate or 11n MCS rate: 24, 12 or 6 Mb/s. */
uint32_t sim_wifi_ack_rate_kbps(uint32_t data_rate_kbps);

#define SIM_WIFI_MAC_OVERHEAD 36 /* MAC header 24 + LLC/SNAP 8 + FCS 4 */
#define SIM_WIFI_ACK_LEN      14
#define SIM_WIFI_PAYLOAD_MAX  2296 /* MSDU 2304 - LLC/SNAP 8 */

struct sim_wifi_frame {
    enum sim_wifi_std std;
    uint32_t rate_kbps;
    uint32_t payload_len;   /* bytes above LLC/SNAP (e.g. an IP packet), 1..2296 */
    uint64_t prop_delay_ns; /* propagation delay delta; Bianchi used 1 us */
};

struct sim_wifi_times {
    uint64_t data_ns;         /* PPDU with payload + 36 bytes of MAC overhead */
    uint64_t ack_ns;          /* 14-byte ACK at the control-response rate */
    uint64_t success_ns;      /* T_s = data + SIFS + delta + ACK + DIFS + delta */
    uint64_t collision_ns;    /* T_c = data + DIFS + delta */
    uint64_t mean_backoff_ns; /* CWmin / 2 slots */
    double single_bps;        /* payload bits / (mean backoff + T_s): one station, no loss */
};

/* 0 or P4P_EINVAL. */
int sim_wifi_frame_times(const struct sim_wifi_frame *f, struct sim_wifi_times *out);

/* Bianchi's fixed point for w = CWmin + 1 >= 2, m backoff stages (0..20), n >= 1
 * stations. 0 or P4P_EINVAL. */
int sim_wifi_bianchi_solve(uint32_t w, uint32_t m, uint32_t n, double *tau, double *p);

struct sim_wifi_bianchi {
    double tau;            /* probability a station transmits in a slot */
    double p;              /* probability an attempt collides */
    double p_tr;           /* probability a slot is busy */
    double p_s;            /* probability a busy slot is a success */
    double throughput_bps; /* payload bits per second, all stations together */
    double efficiency;     /* throughput / PHY rate */
};

/* Saturation throughput of n (1..10000) stations sending frame f. 0 or P4P_EINVAL. */
int sim_wifi_bianchi(const struct sim_wifi_frame *f, uint32_t n, struct sim_wifi_bianchi *out);

/* ---- Propagation -------------------------------------------------------------------- */

#define SIM_WIFI_C_M_PER_S 299792458.0

/* Free-space (Friis) loss 20 log10(4 pi d f / c), dB; d, f > 0. */
double sim_wifi_fspl_db(double distance_m, double freq_hz);

enum sim_wifi_prop_model {
    SIM_WIFI_LOG_DISTANCE = 1, /* PL(d0) + 10 n log10(d / d0), PL(d0) free-space */
    SIM_WIFI_TWO_RAY = 2,      /* free space up to the crossover, 40 log d - 20 log(ht hr)
                                  beyond */
};

struct sim_wifi_prop {
    enum sim_wifi_prop_model model;
    double freq_hz;
    double d0_m, exponent; /* log-distance */
    double ht_m, hr_m;     /* two-ray antenna heights */
};

/* Defaults: log-distance with d0 = 1 m, n = 3 (the ns-3 LogDistancePropagationLossModel
 * defaults), two-ray heights 1.5 m; freq_hz as given. */
void sim_wifi_prop_default(struct sim_wifi_prop *p, enum sim_wifi_prop_model model, double freq_hz);

/* 4 pi ht hr / lambda: where the ground reflection starts to dominate. */
double sim_wifi_two_ray_crossover_m(double ht_m, double hr_m, double freq_hz);

/* Path loss at distance_m > 0, dB; NAN for bad parameters. */
double sim_wifi_path_loss_db(const struct sim_wifi_prop *p, double distance_m);

/* The distance at which the path loss reaches max_path_loss_db (the inverse of the above).
 * 0 or P4P_EINVAL. */
int sim_wifi_range_m(const struct sim_wifi_prop *p, double max_path_loss_db, double *range_m);

/* Minimum receiver sensitivity the standard requires at this rate (20 MHz; the "receiver
 * minimum input sensitivity" tables of 802.11-2012 clause 18 for OFDM and clause 20 for HT
 * MCS 0-7), dBm; NAN for an unknown rate. Real receivers are typically 5-10 dB better. */
double sim_wifi_sensitivity_dbm(enum sim_wifi_std std, uint32_t rate_kbps);

#endif /* SIM_WIFI_H */
