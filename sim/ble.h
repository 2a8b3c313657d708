/*
 * ble.h — Bluetooth Low Energy link arithmetic: packet airtime per PHY, neighbour discovery by
 * advertising and scanning, and connection throughput.
 *
 * Airtime follows the Core specification v5.x, Vol 6 Part B section 2.1 (uncoded: preamble,
 * access address, PDU header, payload, CRC at 1 or 2 Msym/s) and 2.2 (LE Coded: 80 us
 * preamble, then FEC block 1 = access address + coding indicator + TERM1 always at S=8, and
 * FEC block 2 = PDU + CRC + TERM2 at S=8 or S=2).
 *
 * Discovery is simulated event by event: an advertiser sends one PDU on each of channels 37,
 * 38 and 39 per advertising event, events every advInterval + advDelay (advDelay uniform in
 * [0, 10 ms]); a scanner listens for scanWindow at the start of every scanInterval, on 37, 38,
 * 39 in turn; a PDU is heard if it lies wholly inside a window on the channel being scanned
 * and is not lost (independent per-PDU loss). The randomness comes from the caller's sim_rng.
 *
 * Connections: a connection event every connInterval; inside it the sender's full data PDUs
 * alternate with the peer's empty PDUs, T_IFS = 150 us apart; the first lost data PDU ends
 * the event and is retransmitted in the next one. Application throughput counts only the
 * bytes above the L2CAP (4) and ATT (3) headers. docs/MODELS.md has the details.
 */
#ifndef SIM_BLE_H
#define SIM_BLE_H

#include <stdint.h>

#include "rng.h"

enum sim_ble_phy {
    SIM_BLE_PHY_1M = 1,
    SIM_BLE_PHY_2M = 2,
    SIM_BLE_PHY_CODED_S8 = 3, /* 125 kb/s */
    SIM_BLE_PHY_CODED_S2 = 4, /* 500 kb/s */
};

#define SIM_BLE_T_IFS_NS 150000ull

/* Airtime of one packet whose PDU payload (the header's Length field, MIC included) is
 * pdu_len bytes, 0..255. 0 or P4P_EINVAL. */
int sim_ble_packet_airtime_ns(enum sim_ble_phy phy, uint32_t pdu_len, uint64_t *airtime_ns);

/* PDU payload length of an advertising PDU carrying data_len bytes of AdvData:
 * legacy ADV_IND/ADV_NONCONN_IND = AdvA (6) + AdvData (0..31); extended (AUX_ADV_IND) =
 * extended header length/AdvMode (1) + flags (1) + AdvA (6) + ADI (2) + AdvData (0..245).
 * 0 or P4P_EINVAL. */
int sim_ble_adv_pdu_len(int extended, uint32_t data_len, uint32_t *pdu_len);

/* ---- Discovery ---------------------------------------------------------------------- */

struct sim_ble_adv {
    uint64_t interval_ns;  /* advInterval, 20 ms .. 10.24 s */
    uint64_t max_delay_ns; /* advDelay is uniform in [0, max_delay_ns]; the spec's is 10 ms */
    uint64_t pdu_ns;       /* airtime of one advertising PDU */
    uint64_t gap_ns;       /* start-to-start spacing of the PDUs on 37, 38, 39; >= pdu_ns */
};

/* An advertiser sending pdu_len-byte PDUs on `phy` every interval_ns: advDelay up to 10 ms,
 * channel spacing pdu airtime + T_IFS (the shortest an advertiser that listens for a scan or
 * connect request can use; real stacks use 0.2-1.5 ms). 0 or P4P_EINVAL. */
int sim_ble_adv_init(struct sim_ble_adv *a, enum sim_ble_phy phy, uint64_t interval_ns,
                     uint32_t pdu_len);

struct sim_ble_scan {
    uint64_t interval_ns; /* scanInterval, 2.5 ms .. 10.24 s */
    uint64_t window_ns;   /* scanWindow, <= scanInterval; equal means continuous scanning */
};

enum sim_ble_start {
    SIM_BLE_SCANNER_JOINS = 1,    /* the advertiser has been running (stationary phase);
                                     latency counts from the scanner's first window */
    SIM_BLE_ADVERTISER_JOINS = 2, /* the scanner has been running (uniform phase in its
                                     3-interval channel cycle); latency counts from the
                                     advertiser's first event */
};

/* One trial: the time until the end of the first advertising PDU the scanner receives.
 * loss is the per-PDU loss probability in [0, 1). 0; P4P_EINVAL for bad parameters
 * (including a window shorter than one PDU); P4P_EAGAIN if nothing was heard in 10^6
 * advertising events. */
int sim_ble_discovery_trial(const struct sim_ble_adv *a, const struct sim_ble_scan *s, double loss,
                            enum sim_ble_start start, struct sim_rng *r, uint64_t *latency_ns);

struct sim_ble_discovery_stats {
    double mean_ns, sd_ns; /* over the trials */
    uint64_t max_ns;
    uint32_t trials;
};

/* `trials` (>= 1) independent trials from stream r. 0 or the first trial's error. */
int sim_ble_discovery_stats(const struct sim_ble_adv *a, const struct sim_ble_scan *s, double loss,
                            enum sim_ble_start start, uint32_t trials, struct sim_rng *r,
                            struct sim_ble_discovery_stats *out);

/* Closed-form mean for SCANNER_JOINS with continuous scanning on one channel (scanWindow =
 * scanInterval, long against the latency, so the scanner stays on channel 37):
 *     E[L] = E[X^2] / (2 E[X]) + p / (1 - p) E[X] + pdu,
 * X = advInterval + advDelay, E[X] = A + D/2, E[X^2] = A^2 + A D + D^2/3 (D = max delay):
 * the residual time to the next event of a renewal process, plus whole intervals for lost
 * PDUs, plus the PDU itself. 0 or P4P_EINVAL. */
int sim_ble_discovery_mean_closed(const struct sim_ble_adv *a, double loss, double *mean_ns);

/* ---- Connections -------------------------------------------------------------------- */

struct sim_ble_conn {
    enum sim_ble_phy phy;
    uint64_t interval_ns;           /* connInterval: 7.5 ms .. 4 s in 1.25 ms steps */
    uint32_t data_length;           /* LL payload octets per data PDU (connMaxTxOctets), 27..251 */
    uint64_t max_event_ns;          /* length limit of a connection event; 0 = the whole interval */
    uint32_t max_packets_per_event; /* 0 = no limit (many phones allow 4-7) */
    int encrypted;                  /* 1: a 4-byte MIC on every non-empty data PDU */
};

struct sim_ble_conn_result {
    uint64_t data_packet_ns;  /* airtime of a full data PDU */
    uint64_t empty_packet_ns; /* airtime of the peer's empty PDU */
    uint64_t exchange_ns;     /* data + T_IFS + empty + T_IFS */
    uint32_t packets_per_event;
    uint32_t app_bytes_per_packet; /* data_length - 4 (L2CAP) - 3 (ATT notification header) */
    double packets_per_event_mean; /* delivered, with loss */
    double throughput_bps;         /* application bits per second */
};

/* 0 or P4P_EINVAL. */
int sim_ble_conn_check(const struct sim_ble_conn *c);

/* Bulk throughput with per-packet loss probability loss in [0, 1): expected delivered
 * packets per event sum_{i=1..k} (1 - loss)^i, since the first loss ends the event.
 * 0 or P4P_EINVAL. */
int sim_ble_conn_throughput(const struct sim_ble_conn *c, double loss,
                            struct sim_ble_conn_result *out);

/* Simulates sending `bytes` of application data (bytes >= 1) with random losses from r:
 * the time from the first connection event's anchor to the end of the exchange that carries
 * the last packet, and the number of events used. 0, P4P_EINVAL, or P4P_EAGAIN if it takes
 * more than 10^9 events. */
int sim_ble_conn_transfer(const struct sim_ble_conn *c, double loss, uint64_t bytes,
                          struct sim_rng *r, uint64_t *time_ns, uint64_t *events);

#endif /* SIM_BLE_H */
