/*
 * cmd_link.c — `p4p link lora|ble|wifi ...`: a calculator for the radio models in sim/lora.h,
 * sim/ble.h, sim/wifi.h and sim/gilbert.h.
 *
 *   p4p link lora --sf N --bw 125|250|500 --cr 4/5..4/8 --payload BYTES [--preamble N]
 *       [--implicit-header] [--no-crc] [--ldro auto|on|off] [--region EU868|US915]
 *       [--sub-band NAME] [--distance M [--tx-power DBM] [--pl-d0 DB] [--d0 M]
 *       [--exponent N]] [--json]
 *   p4p link ble --phy 1M|2M|coded|coded-s2 --adv-interval DURATION --payload BYTES
 *       [--extended] [--scan-interval DURATION] [--scan-window DURATION] [--loss P]
 *       [--trials N] [--seed N] [--conn-interval DURATION] [--data-length N] [--json]
 *   p4p link wifi --rate RATE --payload BYTES [--std a|g|n] [--stations N] [--distance M
 *       [--tx-power DBM] [--model log|two-ray] [--exponent N] [--freq HZ] [--height M]]
 *       [--ge-p P --ge-r R [--ge-h H] [--ge-k K]] [--json]
 *
 * Results go to stdout as text, or with --json as exactly one JSON object; a bad option is
 * one line on stderr naming the option and what it takes, exit code 2. Everything printed is
 * computed by the sim/ functions; the BLE discovery simulation is seeded (--seed, default 1)
 * so its output is reproducible.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ble.h"
#include "cli.h"
#include "gilbert.h"
#include "lora.h"
#include "rng.h"
#include "wifi.h"

static void usage_to(FILE *out)
{
    fputs("usage: p4p link lora --sf 7..12 --bw 125|250|500 --cr 4/5..4/8 --payload BYTES"
          " [--preamble N] [--implicit-header] [--no-crc] [--ldro auto|on|off]"
          " [--region EU868|US915] [--sub-band NAME] [--distance M [--tx-power DBM]"
          " [--pl-d0 DB] [--d0 M] [--exponent N]] [--json]\n"
          "       p4p link ble --phy 1M|2M|coded|coded-s2 --adv-interval DURATION"
          " --payload BYTES [--extended] [--scan-interval DURATION] [--scan-window DURATION]"
          " [--loss P] [--trials N] [--seed N] [--conn-interval DURATION]"
          " [--data-length 27..251] [--json]\n"
          "       p4p link wifi --rate RATE --payload BYTES [--std a|g|n] [--stations N]"
          " [--distance M [--tx-power DBM] [--model log|two-ray] [--exponent N] [--freq HZ]"
          " [--height M]] [--ge-p P --ge-r R [--ge-h H] [--ge-k K]] [--json]\n"
          "DURATION is a number with us, ms or s (100ms); RATE e.g. 54Mbps.\n",
          out);
}

static int usage(void)
{
    usage_to(stderr);
    return CLI_EXIT_USAGE;
}

/* getopt_long's '?': an unknown option or one missing its value, said in one line. */
static int unknown(char **argv, const char *radio)
{
    fprintf(stderr, "p4p link %s: unknown option or missing value at '%s' (p4p link --help)\n",
            radio, argv[optind - 1]);
    return CLI_EXIT_USAGE;
}

static int bad(const char *opt, const char *what)
{
    fprintf(stderr, "p4p link: %s takes %s\n", opt, what);
    return CLI_EXIT_USAGE;
}

static int parse_u32(const char *opt, const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || *end != '\0' || text[0] == '-' || v < min || v > max) {
        char what[64];
        snprintf(what, sizeof(what), "an integer %u..%u", min, max);
        return bad(opt, what);
    }
    *out = (uint32_t)v;
    return CLI_EXIT_OK;
}

static int parse_real(const char *opt, const char *text, double min, double max, double *out)
{
    char *end = NULL;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(v) || v < min || v > max) {
        char what[80];
        snprintf(what, sizeof(what), "a number %g..%g", min, max);
        return bad(opt, what);
    }
    *out = v;
    return CLI_EXIT_OK;
}

/* "100ms", "7.5ms", "1.25s", "625us": a duration in ns. */
static int parse_duration(const char *opt, const char *text, uint64_t *out_ns)
{
    char *end = NULL;
    double v = strtod(text, &end);
    double scale = 0;
    if (end != text && strcmp(end, "s") == 0) {
        scale = 1e9;
    } else if (end != text && strcmp(end, "ms") == 0) {
        scale = 1e6;
    } else if (end != text && strcmp(end, "us") == 0) {
        scale = 1e3;
    }
    if (scale == 0 || !isfinite(v) || v <= 0 || v * scale > 1e15) {
        return bad(opt, "a duration such as 100ms (units us, ms, s)");
    }
    *out_ns = (uint64_t)llround(v * scale);
    return CLI_EXIT_OK;
}

/* ---- JSON output: one object, keys in order ----------------------------------------- */

struct json {
    int n;
};

static void jkey(struct json *j, const char *key)
{
    printf("%s\"%s\":", j->n++ ? "," : "{", key);
}

static void jnum(struct json *j, const char *key, double v)
{
    jkey(j, key);
    if (isfinite(v)) {
        printf("%.10g", v);
    } else {
        fputs("null", stdout);
    }
}

static void jint(struct json *j, const char *key, long long v)
{
    jkey(j, key);
    printf("%lld", v);
}

static void jbool(struct json *j, const char *key, int v)
{
    jkey(j, key);
    fputs(v ? "true" : "false", stdout);
}

/* Keys and values here are fixed ASCII words (no escaping needed). */
static void jstr(struct json *j, const char *key, const char *v)
{
    jkey(j, key);
    if (v == NULL) {
        fputs("null", stdout);
    } else {
        printf("\"%s\"", v);
    }
}

static void jend(struct json *j)
{
    fputs(j->n ? "}\n" : "{}\n", stdout);
}

/* ==== LoRa ============================================================================ */

struct lora_args {
    struct sim_lora_phy phy;
    uint32_t payload;
    const char *region, *sub_band;
    double distance_m;
    struct sim_lora_link link;
    int have_sf, have_bw, have_cr, have_payload, json;
};

static int lora_option(int c, const char *arg, struct lora_args *a)
{
    uint32_t u;
    int rc = CLI_EXIT_OK;
    switch (c) {
    case 's':
        rc = parse_u32("--sf", arg, 7, 12, &u);
        a->phy.sf = (uint8_t)u;
        a->have_sf = 1;
        break;
    case 'b': {
        char *end = NULL;
        double khz = strtod(arg, &end);
        if (end == arg ||
            (*end != '\0' && strcasecmp(end, "k") != 0 && strcasecmp(end, "kHz") != 0) ||
            (khz != 125 && khz != 250 && khz != 500)) {
            return bad("--bw", "125, 250 or 500 (kHz)");
        }
        a->phy.bw_hz = (uint32_t)khz * 1000;
        a->have_bw = 1;
        break;
    }
    case 'c':
        if (strlen(arg) != 3 || arg[0] != '4' || arg[1] != '/' || arg[2] < '5' || arg[2] > '8') {
            return bad("--cr", "4/5, 4/6, 4/7 or 4/8");
        }
        a->phy.cr = (uint8_t)(arg[2] - '4');
        a->have_cr = 1;
        break;
    case 'p':
        rc = parse_u32("--payload", arg, 1, SIM_LORA_PAYLOAD_MAX, &a->payload);
        a->have_payload = 1;
        break;
    case 'P':
        rc = parse_u32("--preamble", arg, 6, 65535, &u);
        a->phy.preamble_symbols = (uint16_t)u;
        break;
    case 'I':
        a->phy.implicit_header = 1;
        break;
    case 'N':
        a->phy.crc = 0;
        break;
    case 'L':
        if (strcmp(arg, "auto") == 0) {
            a->phy.ldro = SIM_LORA_LDRO_AUTO;
        } else if (strcmp(arg, "on") == 0) {
            a->phy.ldro = SIM_LORA_LDRO_ON;
        } else if (strcmp(arg, "off") == 0) {
            a->phy.ldro = SIM_LORA_LDRO_OFF;
        } else {
            return bad("--ldro", "auto, on or off");
        }
        break;
    case 'r':
        if (strcasecmp(arg, "EU868") != 0 && strcasecmp(arg, "US915") != 0) {
            return bad("--region", "EU868 or US915");
        }
        a->region = arg;
        break;
    case 'B':
        if (sim_lora_eu868_subband(arg) == NULL) {
            return bad("--sub-band", "an EU868 sub-band: K, L (g), M (g1), N (g2), P (g3), Q (g4)");
        }
        a->sub_band = arg;
        break;
    case 'd':
        rc = parse_real("--distance", arg, 1e-3, 1e7, &a->distance_m);
        break;
    case 't':
        rc = parse_real("--tx-power", arg, -30, 40, &a->link.tx_power_dbm);
        break;
    case 'D':
        rc = parse_real("--pl-d0", arg, 0, 300, &a->link.pl.pl_d0_db);
        break;
    case 'z':
        rc = parse_real("--d0", arg, 1e-3, 1e6, &a->link.pl.d0_m);
        break;
    case 'e':
        rc = parse_real("--exponent", arg, 0.1, 10, &a->link.pl.exponent);
        break;
    case 'j':
        a->json = 1;
        break;
    default:
        rc = usage(); /* not reached: '?' is handled by the caller */
    }
    return rc;
}

static int lora_args_parse(int argc, char **argv, struct lora_args *a)
{
    static const struct option opts[] = {
        {"sf", required_argument, NULL, 's'},
        {"bw", required_argument, NULL, 'b'},
        {"cr", required_argument, NULL, 'c'},
        {"payload", required_argument, NULL, 'p'},
        {"preamble", required_argument, NULL, 'P'},
        {"implicit-header", no_argument, NULL, 'I'},
        {"no-crc", no_argument, NULL, 'N'},
        {"ldro", required_argument, NULL, 'L'},
        {"region", required_argument, NULL, 'r'},
        {"sub-band", required_argument, NULL, 'B'},
        {"distance", required_argument, NULL, 'd'},
        {"tx-power", required_argument, NULL, 't'},
        {"pl-d0", required_argument, NULL, 'D'},
        {"d0", required_argument, NULL, 'z'},
        {"exponent", required_argument, NULL, 'e'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    sim_lora_phy_default(&a->phy, 7);
    sim_lora_link_default(&a->link);
    int c, rc = CLI_EXIT_OK;
    while (rc == CLI_EXIT_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        rc = c == '?' ? unknown(argv, "lora") : lora_option(c, optarg, a);
    }
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (optind != argc) {
        fprintf(stderr, "p4p link lora: unexpected argument '%s'\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (!a->have_sf || !a->have_payload) {
        return bad(a->have_sf ? "--payload" : "--sf",
                   a->have_sf ? "the payload length 1..255 (required)" : "7..12 (required)");
    }
    if (a->sub_band != NULL && (a->region == NULL || strcasecmp(a->region, "EU868") != 0)) {
        fprintf(stderr, "p4p link: --sub-band needs --region EU868\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static const char *cr_name(uint8_t cr)
{
    static const char *const names[] = {"4/5", "4/6", "4/7", "4/8"};
    return names[cr - 1];
}

struct lora_region_out {
    const struct sim_lora_subband *band;
    double off_period_s;
    uint64_t frames_per_hour, frames_per_hour_off;
    int is_us915, dwell_ok;
};

static void lora_region(const struct lora_args *a, const struct sim_lora_airtime *t,
                        struct lora_region_out *o)
{
    memset(o, 0, sizeof(*o));
    if (strcasecmp(a->region, "US915") == 0) {
        o->is_us915 = 1;
        o->dwell_ok = sim_lora_us915_dwell_check(t->airtime_ns) == 0;
        return;
    }
    o->band = sim_lora_eu868_subband(a->sub_band != NULL ? a->sub_band : "M");
    uint64_t off = sim_lora_off_period_ns(t->airtime_ns, o->band->duty_cycle_ppm);
    o->off_period_s = (double)off / 1e9;
    uint64_t budget = SIM_LORA_DC_WINDOW_NS / 1000000 * o->band->duty_cycle_ppm;
    o->frames_per_hour = budget / t->airtime_ns;
    o->frames_per_hour_off = SIM_LORA_DC_WINDOW_NS / (t->airtime_ns + off);
}

static void lora_text(const struct lora_args *a, const struct sim_lora_airtime *t,
                      const struct lora_region_out *g)
{
    const struct sim_lora_phy *p = &a->phy;
    printf("LoRa SF%u BW%u kHz CR%s, %u-byte payload, preamble %u, %s header, CRC %s, "
           "LDRO %s (%s)\n",
           p->sf, p->bw_hz / 1000, cr_name(p->cr), a->payload, p->preamble_symbols,
           p->implicit_header ? "implicit" : "explicit", p->crc ? "on" : "off",
           t->ldro ? "on" : "off", p->ldro == SIM_LORA_LDRO_AUTO ? "auto" : "forced");
    printf("time on air       %12.3f ms\n", t->airtime_ms);
    printf("preamble          %12.3f ms  (%u + 4.25 symbols of %.3f ms)\n", t->preamble_ms,
           p->preamble_symbols, (double)t->symbol_ns / 1e6);
    printf("payload symbols   %12u\n", t->payload_symbols);
    if (a->region == NULL) {
        return;
    }
    if (g->is_us915) {
        printf("US915 dwell time  %s (airtime %s the 400 ms limit)\n",
               g->dwell_ok ? "ok" : "EXCEEDED", g->dwell_ok ? "within" : "over");
        return;
    }
    printf("EU868 sub-band %s%s%s%s %.3f-%.3f MHz, duty cycle %g %%\n", g->band->name,
           g->band->alias ? " (" : "", g->band->alias ? g->band->alias : "",
           g->band->alias ? ")" : "", g->band->low_khz / 1e3, g->band->high_khz / 1e3,
           g->band->duty_cycle_ppm / 1e4);
    printf("off period        %12.3f s   (airtime x (1/dc - 1))\n", g->off_period_s);
    printf("frames per hour   %12llu     (hourly budget %g s / airtime; %llu with the "
           "per-frame off period)\n",
           (unsigned long long)g->frames_per_hour, g->band->duty_cycle_ppm * 3600 / 1e6,
           (unsigned long long)g->frames_per_hour_off);
}

static void lora_reception_text(const struct lora_args *a)
{
    struct sim_lora_rx rx;
    sim_lora_receive(&a->link, a->phy.sf, a->phy.bw_hz, a->distance_m, 0, &rx);
    printf("at %.1f m (tx %.1f dBm, PL(d0) %.2f dB at %.1f m, exponent %.2f, no shadowing):\n",
           a->distance_m, a->link.tx_power_dbm, a->link.pl.pl_d0_db, a->link.pl.d0_m,
           a->link.pl.exponent);
    printf("path loss         %12.2f dB\n", rx.path_loss_db);
    printf("received power    %12.2f dBm\n", rx.rx_power_dbm);
    printf("noise floor       %12.2f dBm (NF %.1f dB)\n", rx.noise_floor_dbm,
           a->link.noise_figure_db);
    printf("SNR               %12.2f dB\n", rx.snr_db);
    printf("SNR margin        %12.2f dB  (SF%u floor %.1f dB)\n", rx.snr_margin_db, a->phy.sf,
           rx.snr_floor_db);
    printf("  SF  sensitivity  SNR floor  RSSI margin  SNR margin  receives  max range\n");
    for (uint8_t sf = SIM_LORA_SF_MIN; sf <= SIM_LORA_SF_MAX; sf++) {
        double range;
        sim_lora_receive(&a->link, sf, a->phy.bw_hz, a->distance_m, 0, &rx);
        sim_lora_max_range_m(&a->link, sf, a->phy.bw_hz, &range);
        printf("  %2u  %7.1f dBm  %6.1f dB  %8.2f dB  %7.2f dB  %-8s  %8.0f m\n", sf,
               rx.sensitivity_dbm, rx.snr_floor_db, rx.rssi_margin_db, rx.snr_margin_db,
               rx.receives ? "yes" : "no", range);
    }
}

static void lora_json(const struct lora_args *a, const struct sim_lora_airtime *t,
                      const struct lora_region_out *g)
{
    struct json j = {0};
    const struct sim_lora_phy *p = &a->phy;
    jint(&j, "sf", p->sf);
    jint(&j, "bw_khz", p->bw_hz / 1000);
    jstr(&j, "cr", cr_name(p->cr));
    jint(&j, "payload_bytes", a->payload);
    jint(&j, "preamble_symbols", p->preamble_symbols);
    jbool(&j, "implicit_header", p->implicit_header);
    jbool(&j, "crc", p->crc);
    jbool(&j, "ldro", t->ldro);
    jnum(&j, "airtime_ms", t->airtime_ms);
    jint(&j, "airtime_ns", (long long)t->airtime_ns);
    jnum(&j, "preamble_ms", t->preamble_ms);
    jnum(&j, "symbol_ms", (double)t->symbol_ns / 1e6);
    jint(&j, "payload_symbols", t->payload_symbols);
    if (a->region != NULL && g->is_us915) {
        jstr(&j, "region", "US915");
        jbool(&j, "dwell_ok", g->dwell_ok);
        jnum(&j, "dwell_limit_ms", SIM_LORA_US915_DWELL_NS / 1e6);
    } else if (a->region != NULL) {
        jstr(&j, "region", "EU868");
        jstr(&j, "sub_band", g->band->name);
        jstr(&j, "sub_band_alias", g->band->alias);
        jnum(&j, "duty_cycle", g->band->duty_cycle_ppm / 1e6);
        jnum(&j, "off_period_s", g->off_period_s);
        jint(&j, "frames_per_hour", (long long)g->frames_per_hour);
        jint(&j, "frames_per_hour_off_period", (long long)g->frames_per_hour_off);
    }
    if (a->distance_m > 0) {
        struct sim_lora_rx rx;
        sim_lora_receive(&a->link, p->sf, p->bw_hz, a->distance_m, 0, &rx);
        jnum(&j, "distance_m", a->distance_m);
        jnum(&j, "tx_power_dbm", a->link.tx_power_dbm);
        jnum(&j, "path_loss_db", rx.path_loss_db);
        jnum(&j, "rx_power_dbm", rx.rx_power_dbm);
        jnum(&j, "noise_floor_dbm", rx.noise_floor_dbm);
        jnum(&j, "snr_db", rx.snr_db);
        jnum(&j, "snr_margin_db", rx.snr_margin_db);
        jnum(&j, "rssi_margin_db", rx.rssi_margin_db);
        jbool(&j, "receives", rx.receives);
        jkey(&j, "per_sf");
        for (uint8_t sf = SIM_LORA_SF_MIN; sf <= SIM_LORA_SF_MAX; sf++) {
            double range;
            sim_lora_receive(&a->link, sf, p->bw_hz, a->distance_m, 0, &rx);
            sim_lora_max_range_m(&a->link, sf, p->bw_hz, &range);
            printf("%s{\"sf\":%u,\"sensitivity_dbm\":%g,\"snr_floor_db\":%g,"
                   "\"rssi_margin_db\":%.4f,\"snr_margin_db\":%.4f,\"receives\":%s,"
                   "\"max_range_m\":%.3f}",
                   sf == SIM_LORA_SF_MIN ? "[" : ",", sf, rx.sensitivity_dbm, rx.snr_floor_db,
                   rx.rssi_margin_db, rx.snr_margin_db, rx.receives ? "true" : "false", range);
        }
        putchar(']');
    }
    jend(&j);
}

static int link_lora(int argc, char **argv)
{
    struct lora_args a;
    int rc = lora_args_parse(argc, argv, &a);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    struct sim_lora_airtime t;
    if (sim_lora_airtime(&a.phy, a.payload, &t) != 0) {
        fprintf(stderr, "p4p link lora: invalid radio settings\n");
        return CLI_EXIT_USAGE;
    }
    struct lora_region_out g = {0};
    if (a.region != NULL) {
        lora_region(&a, &t, &g);
    }
    if (a.json) {
        lora_json(&a, &t, &g);
        return CLI_EXIT_OK;
    }
    lora_text(&a, &t, &g);
    if (a.distance_m > 0) {
        lora_reception_text(&a);
    }
    return CLI_EXIT_OK;
}

/* ==== BLE ============================================================================= */

struct ble_args {
    enum sim_ble_phy phy;
    uint64_t adv_interval_ns, scan_interval_ns, scan_window_ns, conn_interval_ns;
    uint32_t payload, trials, data_length;
    uint64_t seed;
    double loss;
    int extended, have_adv, have_payload, json;
};

static int ble_phy(const char *arg, enum sim_ble_phy *phy)
{
    static const struct {
        const char *name;
        enum sim_ble_phy phy;
    } names[] = {{"1M", SIM_BLE_PHY_1M},
                 {"2M", SIM_BLE_PHY_2M},
                 {"coded", SIM_BLE_PHY_CODED_S8},
                 {"coded-s8", SIM_BLE_PHY_CODED_S8},
                 {"coded-s2", SIM_BLE_PHY_CODED_S2}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(arg, names[i].name) == 0) {
            *phy = names[i].phy;
            return CLI_EXIT_OK;
        }
    }
    return bad("--phy", "1M, 2M, coded (S=8) or coded-s2");
}

static int ble_option(int c, const char *arg, struct ble_args *a)
{
    uint32_t u;
    int rc = CLI_EXIT_OK;
    switch (c) {
    case 'y':
        return ble_phy(arg, &a->phy);
    case 'a':
        rc = parse_duration("--adv-interval", arg, &a->adv_interval_ns);
        a->have_adv = 1;
        if (rc == CLI_EXIT_OK &&
            (a->adv_interval_ns < 20000000ull || a->adv_interval_ns > 10240000000ull)) {
            rc = bad("--adv-interval", "a duration from 20ms to 10.24s");
        }
        break;
    case 'p':
        rc = parse_u32("--payload", arg, 0, 245, &a->payload);
        a->have_payload = 1;
        break;
    case 'x':
        a->extended = 1;
        break;
    case 'i':
        rc = parse_duration("--scan-interval", arg, &a->scan_interval_ns);
        break;
    case 'w':
        rc = parse_duration("--scan-window", arg, &a->scan_window_ns);
        break;
    case 'l':
        rc = parse_real("--loss", arg, 0, 0.99, &a->loss);
        break;
    case 'T':
        rc = parse_u32("--trials", arg, 1, 10000000, &a->trials);
        break;
    case 'S':
        rc = parse_u32("--seed", arg, 0, UINT32_MAX, &u);
        a->seed = u;
        break;
    case 'C':
        rc = parse_duration("--conn-interval", arg, &a->conn_interval_ns);
        if (rc == CLI_EXIT_OK &&
            (a->conn_interval_ns < 7500000 || a->conn_interval_ns > 4000000000ull ||
             a->conn_interval_ns % 1250000 != 0)) {
            rc = bad("--conn-interval", "7.5ms..4s in steps of 1.25ms");
        }
        break;
    case 'L':
        rc = parse_u32("--data-length", arg, 27, 251, &a->data_length);
        break;
    case 'j':
        a->json = 1;
        break;
    default:
        rc = usage(); /* not reached: '?' is handled by the caller */
    }
    return rc;
}

static int ble_args_check(struct ble_args *a)
{
    if (!a->have_adv || !a->have_payload) {
        return bad(a->have_adv ? "--payload" : "--adv-interval", "a value (required)");
    }
    if (!a->extended && a->payload > 31) {
        return bad("--payload", "0..31 bytes of AdvData (0..245 with --extended)");
    }
    if (a->scan_interval_ns == 0) {
        a->scan_interval_ns = a->scan_window_ns != 0 ? a->scan_window_ns : 10240000000ull;
    }
    if (a->scan_window_ns == 0) {
        a->scan_window_ns = a->scan_interval_ns;
    }
    if (a->scan_interval_ns < 2500000 || a->scan_interval_ns > 10240000000ull) {
        return bad("--scan-interval", "a duration from 2.5ms to 10.24s");
    }
    if (a->scan_window_ns > a->scan_interval_ns) {
        return bad("--scan-window", "a duration no longer than --scan-interval");
    }
    return CLI_EXIT_OK;
}

static int ble_args_parse(int argc, char **argv, struct ble_args *a)
{
    static const struct option opts[] = {
        {"phy", required_argument, NULL, 'y'},
        {"adv-interval", required_argument, NULL, 'a'},
        {"payload", required_argument, NULL, 'p'},
        {"extended", no_argument, NULL, 'x'},
        {"scan-interval", required_argument, NULL, 'i'},
        {"scan-window", required_argument, NULL, 'w'},
        {"loss", required_argument, NULL, 'l'},
        {"trials", required_argument, NULL, 'T'},
        {"seed", required_argument, NULL, 'S'},
        {"conn-interval", required_argument, NULL, 'C'},
        {"data-length", required_argument, NULL, 'L'},
        {"json", no_argument, NULL, 'j'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    a->phy = SIM_BLE_PHY_1M;
    a->trials = 10000;
    a->seed = 1;
    a->data_length = 251;
    int c, rc = CLI_EXIT_OK;
    while (rc == CLI_EXIT_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        rc = c == '?' ? unknown(argv, "ble") : ble_option(c, optarg, a);
    }
    if (rc == CLI_EXIT_OK && optind != argc) {
        fprintf(stderr, "p4p link ble: unexpected argument '%s'\n", argv[optind]);
        rc = CLI_EXIT_USAGE;
    }
    return rc == CLI_EXIT_OK ? ble_args_check(a) : rc;
}

static const char *ble_phy_name(enum sim_ble_phy phy)
{
    return phy == SIM_BLE_PHY_1M         ? "1M"
           : phy == SIM_BLE_PHY_2M       ? "2M"
           : phy == SIM_BLE_PHY_CODED_S8 ? "coded-s8"
                                         : "coded-s2";
}

struct ble_out {
    uint32_t pdu_len;
    struct sim_ble_adv adv;
    struct sim_ble_scan scan;
    struct sim_ble_discovery_stats sim;
    double closed_ns; /* NAN unless scanning is continuous */
    int have_conn;
    struct sim_ble_conn_result conn;
};

static void ble_text(const struct ble_args *a, const struct ble_out *o)
{
    printf("BLE %s, %s advertising PDU: %u bytes of AdvData (PDU payload %u bytes)\n",
           ble_phy_name(a->phy), a->extended ? "extended" : "legacy", a->payload, o->pdu_len);
    printf("PDU airtime              %10.3f ms\n", o->adv.pdu_ns / 1e6);
    printf("advertising              every %.3f ms + advDelay 0-10 ms on 37, 38, 39, %.3f ms "
           "apart\n",
           o->adv.interval_ns / 1e6, o->adv.gap_ns / 1e6);
    printf("scanner                  interval %.3f ms, window %.3f ms%s\n",
           o->scan.interval_ns / 1e6, o->scan.window_ns / 1e6,
           o->scan.window_ns == o->scan.interval_ns ? " (continuous)" : "");
    if (!isnan(o->closed_ns)) {
        printf("mean discovery latency   %10.3f ms (closed form: continuous scan on one "
               "channel, per-PDU loss %g)\n",
               o->closed_ns / 1e6, a->loss);
    }
    printf("mean discovery latency   %10.3f ms (simulated: %u trials, seed %llu, scanner joins "
           "a running advertiser; sd %.3f ms, max %.3f ms)\n",
           o->sim.mean_ns / 1e6, o->sim.trials, (unsigned long long)a->seed, o->sim.sd_ns / 1e6,
           o->sim.max_ns / 1e6);
    if (o->have_conn) {
        printf("connection               interval %.2f ms, data length %u, %u packets per "
               "event (%.3f ms each exchange)\n",
               a->conn_interval_ns / 1e6, a->data_length, o->conn.packets_per_event,
               o->conn.exchange_ns / 1e6);
        printf("throughput               %10.1f kbit/s of application data (%u bytes per "
               "packet after L2CAP and ATT headers)\n",
               o->conn.throughput_bps / 1e3, o->conn.app_bytes_per_packet);
    }
}

static void ble_json(const struct ble_args *a, const struct ble_out *o)
{
    struct json j = {0};
    jstr(&j, "phy", ble_phy_name(a->phy));
    jbool(&j, "extended", a->extended);
    jint(&j, "adv_data_bytes", a->payload);
    jint(&j, "pdu_payload_bytes", o->pdu_len);
    jnum(&j, "pdu_airtime_ms", o->adv.pdu_ns / 1e6);
    jnum(&j, "adv_interval_ms", o->adv.interval_ns / 1e6);
    jnum(&j, "scan_interval_ms", o->scan.interval_ns / 1e6);
    jnum(&j, "scan_window_ms", o->scan.window_ns / 1e6);
    jnum(&j, "loss", a->loss);
    jnum(&j, "discovery_mean_ms_closed_form", o->closed_ns / 1e6);
    jnum(&j, "discovery_mean_ms", o->sim.mean_ns / 1e6);
    jnum(&j, "discovery_sd_ms", o->sim.sd_ns / 1e6);
    jnum(&j, "discovery_max_ms", o->sim.max_ns / 1e6);
    jint(&j, "trials", o->sim.trials);
    jint(&j, "seed", (long long)a->seed);
    if (o->have_conn) {
        jnum(&j, "conn_interval_ms", a->conn_interval_ns / 1e6);
        jint(&j, "data_length", a->data_length);
        jint(&j, "packets_per_event", o->conn.packets_per_event);
        jnum(&j, "throughput_kbps", o->conn.throughput_bps / 1e3);
        jint(&j, "app_bytes_per_packet", o->conn.app_bytes_per_packet);
    }
    jend(&j);
}

static int link_ble(int argc, char **argv)
{
    struct ble_args a;
    int rc = ble_args_parse(argc, argv, &a);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    struct ble_out o = {.closed_ns = NAN};
    sim_ble_adv_pdu_len(a.extended, a.payload, &o.pdu_len);
    if (sim_ble_adv_init(&o.adv, a.phy, a.adv_interval_ns, o.pdu_len) != 0) {
        return bad("--adv-interval", "an interval long enough for three PDUs of this size");
    }
    o.scan =
        (struct sim_ble_scan){.interval_ns = a.scan_interval_ns, .window_ns = a.scan_window_ns};
    if (o.scan.window_ns < o.adv.pdu_ns) {
        return bad("--scan-window", "a duration at least one PDU long");
    }
    if (o.scan.window_ns == o.scan.interval_ns) {
        sim_ble_discovery_mean_closed(&o.adv, a.loss, &o.closed_ns);
    }
    struct sim_rng r;
    sim_rng_derive(&r, a.seed, "link-ble-discovery", 0);
    rc = sim_ble_discovery_stats(&o.adv, &o.scan, a.loss, SIM_BLE_SCANNER_JOINS, a.trials, &r,
                                 &o.sim);
    if (rc != 0) {
        fprintf(stderr, "p4p link ble: the scanner never heard the advertiser in 10^6 "
                        "advertising events\n");
        return CLI_EXIT_FAIL;
    }
    if (a.conn_interval_ns != 0) {
        struct sim_ble_conn c = {
            .phy = a.phy, .interval_ns = a.conn_interval_ns, .data_length = a.data_length};
        o.have_conn = sim_ble_conn_throughput(&c, a.loss, &o.conn) == 0;
    }
    if (a.json) {
        ble_json(&a, &o);
    } else {
        ble_text(&a, &o);
    }
    return CLI_EXIT_OK;
}

/* ==== Wi-Fi =========================================================================== */

struct wifi_args {
    struct sim_wifi_frame frame;
    const char *rate_text;
    uint32_t stations;
    double distance_m, tx_power_dbm, exponent, freq_hz, height_m;
    enum sim_wifi_prop_model model;
    struct sim_ge_params ge;
    int have_ge_p, have_ge_r, have_payload, json;
};

/* "54Mbps", "54M", "54", "6.5Mbps" -> kb/s; checked against the standard's rates later. */
static int parse_rate(const char *text, uint32_t *kbps)
{
    char *end = NULL;
    double v = strtod(text, &end);
    if (end == text || !(v > 0) || v > 1000 ||
        (strcmp(end, "") != 0 && strcasecmp(end, "M") != 0 && strcasecmp(end, "Mbps") != 0 &&
         strcasecmp(end, "Mb/s") != 0)) {
        return CLI_EXIT_USAGE;
    }
    *kbps = (uint32_t)llround(v * 1000);
    return CLI_EXIT_OK;
}

static int wifi_option(int c, const char *arg, struct wifi_args *a)
{
    switch (c) {
    case 'R':
        a->rate_text = arg;
        return CLI_EXIT_OK;
    case 'p':
        a->have_payload = 1;
        return parse_u32("--payload", arg, 1, SIM_WIFI_PAYLOAD_MAX, &a->frame.payload_len);
    case 'X':
        if (strcasecmp(arg, "a") == 0 || strcasecmp(arg, "g") == 0 || strcasecmp(arg, "n") == 0) {
            char s = (char)(arg[0] | 0x20);
            a->frame.std = s == 'a' ? SIM_WIFI_11A : s == 'g' ? SIM_WIFI_11G : SIM_WIFI_11N;
            return CLI_EXIT_OK;
        }
        return bad("--std", "a, g or n");
    case 'n':
        return parse_u32("--stations", arg, 1, 10000, &a->stations);
    case 'd':
        return parse_real("--distance", arg, 1e-3, 1e7, &a->distance_m);
    case 't':
        return parse_real("--tx-power", arg, -30, 40, &a->tx_power_dbm);
    case 'm':
        if (strcmp(arg, "log") == 0 || strcmp(arg, "two-ray") == 0) {
            a->model = arg[0] == 'l' ? SIM_WIFI_LOG_DISTANCE : SIM_WIFI_TWO_RAY;
            return CLI_EXIT_OK;
        }
        return bad("--model", "log or two-ray");
    case 'e':
        return parse_real("--exponent", arg, 0.1, 10, &a->exponent);
    case 'f':
        return parse_real("--freq", arg, 1e6, 1e12, &a->freq_hz);
    case 'h':
        return parse_real("--height", arg, 0.01, 1000, &a->height_m);
    case 'P':
        a->have_ge_p = 1;
        return parse_real("--ge-p", arg, 0, 1, &a->ge.p);
    case 'Q':
        a->have_ge_r = 1;
        return parse_real("--ge-r", arg, 0, 1, &a->ge.r);
    case 'H':
        return parse_real("--ge-h", arg, 0, 1, &a->ge.h);
    case 'K':
        return parse_real("--ge-k", arg, 0, 1, &a->ge.k);
    case 'j':
        a->json = 1;
        return CLI_EXIT_OK;
    default:
        return usage(); /* not reached: '?' is handled by the caller */
    }
}

static int wifi_args_check(struct wifi_args *a)
{
    if (a->rate_text == NULL || !a->have_payload) {
        return bad(a->rate_text == NULL ? "--rate" : "--payload", "a value (required)");
    }
    uint32_t nd;
    if (parse_rate(a->rate_text, &a->frame.rate_kbps) != CLI_EXIT_OK ||
        sim_wifi_ndbps(a->frame.std, a->frame.rate_kbps, &nd) != 0) {
        return bad("--rate", a->frame.std == SIM_WIFI_11N
                                 ? "an 802.11n MCS 0-7 rate: 6.5, 13, 19.5, 26, 39, 52, 58.5, "
                                   "65Mbps"
                                 : "an 802.11a/g rate: 6, 9, 12, 18, 24, 36, 48, 54Mbps");
    }
    if (a->have_ge_p != a->have_ge_r) {
        return bad(a->have_ge_p ? "--ge-r" : "--ge-p", "a value (--ge-p and --ge-r go together)");
    }
    if (a->have_ge_p && sim_ge_check(&a->ge) != 0) {
        return bad("--ge-p", "a value with --ge-p + --ge-r > 0");
    }
    if (a->freq_hz == 0) {
        a->freq_hz = a->frame.std == SIM_WIFI_11G ? 2.412e9 : 5.18e9;
    }
    return CLI_EXIT_OK;
}

static int wifi_args_parse(int argc, char **argv, struct wifi_args *a)
{
    static const struct option opts[] = {
        {"rate", required_argument, NULL, 'R'},     {"payload", required_argument, NULL, 'p'},
        {"std", required_argument, NULL, 'X'},      {"stations", required_argument, NULL, 'n'},
        {"distance", required_argument, NULL, 'd'}, {"tx-power", required_argument, NULL, 't'},
        {"model", required_argument, NULL, 'm'},    {"exponent", required_argument, NULL, 'e'},
        {"freq", required_argument, NULL, 'f'},     {"height", required_argument, NULL, 'h'},
        {"ge-p", required_argument, NULL, 'P'},     {"ge-r", required_argument, NULL, 'Q'},
        {"ge-h", required_argument, NULL, 'H'},     {"ge-k", required_argument, NULL, 'K'},
        {"json", no_argument, NULL, 'j'},           {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    a->frame = (struct sim_wifi_frame){.std = SIM_WIFI_11A, .prop_delay_ns = 1000};
    a->stations = 1;
    a->tx_power_dbm = 20;
    a->exponent = 3;
    a->height_m = 1.5;
    a->model = SIM_WIFI_LOG_DISTANCE;
    a->ge = (struct sim_ge_params){.k = 1, .h = 0};
    int c, rc = CLI_EXIT_OK;
    while (rc == CLI_EXIT_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        rc = c == '?' ? unknown(argv, "wifi") : wifi_option(c, optarg, a);
    }
    if (rc == CLI_EXIT_OK && optind != argc) {
        fprintf(stderr, "p4p link wifi: unexpected argument '%s'\n", argv[optind]);
        rc = CLI_EXIT_USAGE;
    }
    return rc == CLI_EXIT_OK ? wifi_args_check(a) : rc;
}

struct wifi_out {
    struct sim_wifi_times t;
    struct sim_wifi_bianchi b;
    struct sim_wifi_prop prop;
    double path_loss_db, rx_dbm, sens_dbm, range_m;
};

static const char *wifi_std_name(enum sim_wifi_std s)
{
    return s == SIM_WIFI_11A ? "802.11a" : s == SIM_WIFI_11G ? "802.11g" : "802.11n";
}

static void wifi_text(const struct wifi_args *a, const struct wifi_out *o)
{
    const struct sim_wifi_frame *f = &a->frame;
    printf("%s %g Mb/s, %u-byte payload (%u-byte MPDU)\n", wifi_std_name(f->std),
           f->rate_kbps / 1e3, f->payload_len, f->payload_len + SIM_WIFI_MAC_OVERHEAD);
    printf("data frame airtime     %10.1f us\n", o->t.data_ns / 1e3);
    printf("ACK airtime            %10.1f us at %g Mb/s\n", o->t.ack_ns / 1e3,
           sim_wifi_ack_rate_kbps(f->rate_kbps) / 1e3);
    printf("single station         %10.3f Mb/s (DIFS + mean backoff + DATA + SIFS + ACK)\n",
           o->t.single_bps / 1e6);
    printf("%u station%s (Bianchi)  %10.3f Mb/s total, collision probability %.4f, tau %.5f\n",
           a->stations, a->stations == 1 ? " " : "s", o->b.throughput_bps / 1e6, o->b.p, o->b.tau);
    if (a->distance_m > 0) {
        printf("at %.1f m (%s, %.3f GHz, tx %.1f dBm): path loss %.2f dB, received %.2f dBm, "
               "sensitivity %.0f dBm, margin %.2f dB, range %.1f m\n",
               a->distance_m, a->model == SIM_WIFI_TWO_RAY ? "two-ray ground" : "log-distance",
               a->freq_hz / 1e9, a->tx_power_dbm, o->path_loss_db, o->rx_dbm, o->sens_dbm,
               o->rx_dbm - o->sens_dbm, o->range_m);
    }
    if (a->have_ge_p) {
        printf("Gilbert-Elliott        loss rate %.6f, mean loss burst %.4f packets (p %g, r %g, "
               "k %g, h %g)\n",
               sim_ge_loss_rate(&a->ge), sim_ge_mean_burst(&a->ge), a->ge.p, a->ge.r, a->ge.k,
               a->ge.h);
    }
}

static void wifi_json(const struct wifi_args *a, const struct wifi_out *o)
{
    struct json j = {0};
    const struct sim_wifi_frame *f = &a->frame;
    jstr(&j, "std", wifi_std_name(f->std));
    jnum(&j, "rate_mbps", f->rate_kbps / 1e3);
    jint(&j, "payload_bytes", f->payload_len);
    jnum(&j, "airtime_us", o->t.data_ns / 1e3);
    jnum(&j, "ack_airtime_us", o->t.ack_ns / 1e3);
    jnum(&j, "single_station_mbps", o->t.single_bps / 1e6);
    jint(&j, "stations", a->stations);
    jnum(&j, "bianchi_throughput_mbps", o->b.throughput_bps / 1e6);
    jnum(&j, "collision_probability", o->b.p);
    jnum(&j, "tau", o->b.tau);
    if (a->distance_m > 0) {
        jnum(&j, "distance_m", a->distance_m);
        jstr(&j, "model", a->model == SIM_WIFI_TWO_RAY ? "two-ray" : "log");
        jnum(&j, "path_loss_db", o->path_loss_db);
        jnum(&j, "rx_power_dbm", o->rx_dbm);
        jnum(&j, "sensitivity_dbm", o->sens_dbm);
        jnum(&j, "range_m", o->range_m);
    }
    if (a->have_ge_p) {
        jnum(&j, "ge_loss_rate", sim_ge_loss_rate(&a->ge));
        jnum(&j, "ge_mean_burst", sim_ge_mean_burst(&a->ge));
    }
    jend(&j);
}

static int link_wifi(int argc, char **argv)
{
    struct wifi_args a;
    int rc = wifi_args_parse(argc, argv, &a);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    struct wifi_out o;
    if (sim_wifi_frame_times(&a.frame, &o.t) != 0 ||
        sim_wifi_bianchi(&a.frame, a.stations, &o.b) != 0) {
        fprintf(stderr, "p4p link wifi: invalid frame settings\n");
        return CLI_EXIT_USAGE;
    }
    if (a.distance_m > 0) {
        sim_wifi_prop_default(&o.prop, a.model, a.freq_hz);
        o.prop.exponent = a.exponent;
        o.prop.ht_m = o.prop.hr_m = a.height_m;
        o.path_loss_db = sim_wifi_path_loss_db(&o.prop, a.distance_m);
        o.rx_dbm = a.tx_power_dbm - o.path_loss_db;
        o.sens_dbm = sim_wifi_sensitivity_dbm(a.frame.std, a.frame.rate_kbps);
        sim_wifi_range_m(&o.prop, a.tx_power_dbm - o.sens_dbm, &o.range_m);
    }
    if (a.json) {
        wifi_json(&a, &o);
    } else {
        wifi_text(&a, &o);
    }
    return CLI_EXIT_OK;
}

/* ==== Dispatch ======================================================================== */

int cli_link(int argc, char **argv)
{
    /* argv[0] = "link", argv[1] = the radio; options from argv[2]. */
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage_to(stdout);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        return usage();
    }
    optind = 2;
    opterr = 0;
    if (strcmp(argv[1], "lora") == 0) {
        return link_lora(argc, argv);
    }
    if (strcmp(argv[1], "ble") == 0) {
        return link_ble(argc, argv);
    }
    if (strcmp(argv[1], "wifi") == 0) {
        return link_wifi(argc, argv);
    }
    fprintf(stderr, "p4p link: unknown radio '%s' (lora, ble or wifi)\n", argv[1]);
    return CLI_EXIT_USAGE;
}
