/*
 * scenario.c — the scenario-file parser: YAML text (libyaml's event API) plus --set overrides
 * in, a validated struct sim_config out; and the config back out as a key list or JSON.
 *
 * One table, `fields`, describes every leaf key: dotted name, type, where it lives in struct
 * sim_config, its static range and its default (as text, parsed by the same code as a file
 * value). Everything else is driven by it:
 *
 *   YAML events --> walk mappings, build dotted keys --+
 *                                                      +--> parse_value(field, text)
 *   --set key=value -----------------------------------+          |
 *   defaults (table text) ---------------------------------------+
 *                                                                 v
 *                       check_range(field) for every field, then check_cross(): the rules
 *                       that tie keys together (topology vs nodes.count, payload vs mtu, ...)
 *
 *   sim_config_each / sim_config_json: format_value(field) for every field, in table order.
 *
 * While parsing we remember where each field was set (file line:column or override number),
 * so an error found later, after overrides, still points at the text that caused it.
 */
#include "scenario.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* Enum members are stored through an int pointer. */
_Static_assert(sizeof(enum sim_app) == sizeof(int), "enum sim_app must be int-sized");
_Static_assert(sizeof(enum sim_topology_kind) == sizeof(int), "enum must be int-sized");
_Static_assert(sizeof(enum sim_storage_backend) == sizeof(int), "enum must be int-sized");
_Static_assert(sizeof(enum sim_churn_dist) == sizeof(int), "enum must be int-sized");

/* Bytes the engine adds around an application payload in one frame (envelope, ids, signature);
 * see docs/PROTOCOL.md. A payload must fit in link.mtu together with them. */
#define WORKLOAD_OVERHEAD_BYTES 160u
#define SESSION_OVERHEAD_BYTES  27u /* SESSION_OVERHEAD in engine/session.h */

#define KEY_MAX   128 /* longest dotted key we build; longer user keys are simply unknown */
#define MSG_MAX   512 /* one message without its position prefix */
#define NUM_MAX   128 /* longest number text we hand to strtod */
#define SHOW_MAX  48  /* user text quoted in a message is cut to this */
#define RANGE_MAX 160 /* a formatted value or range */

/* ---- The table --------------------------------------------------------------------------- */

enum field_type {
    T_STRING,   /* char[], 1..max bytes, no control characters */
    T_PATH,     /* char[], 0..max bytes; "" = not set */
    T_U32,      /* uint32_t */
    T_U64,      /* uint64_t */
    T_DURATION, /* uint64_t ns: "90s", "1.5h", bare 0 */
    T_SIZE,     /* uint32_t bytes: "64KiB", "1200B", bare integer = bytes */
    T_BITRATE,  /* uint64_t bps: "1.5Mbps", bare 0 */
    T_PROB,     /* double: "0.05" or "5%" */
    T_REAL,     /* double */
    T_RATE,     /* double per second: "2/s", "10/h" */
    T_BOOL,     /* int: true/false, yes/no */
    T_ENUM,     /* int: one of field.names */
};

struct type_info {
    const char *expected; /* what a valid value looks like, for syntax errors */
    const char *whole;    /* "a whole number of <whole>" for inexact decimals */
    bool json_number;     /* JSON number rather than string */
};

static const struct type_info types[] = {
    [T_STRING] = {"a string", NULL, false},
    [T_PATH] = {"a path", NULL, false},
    [T_U32] = {"a whole number such as 42", NULL, true},
    [T_U64] = {"a whole number such as 42", NULL, true},
    [T_DURATION] = {"a duration such as 90s, 250ms or 1.5h (units ns us ms s min h d)",
                    "nanoseconds", false},
    [T_SIZE] = {"a size such as 1200B, 64KiB or 1.5MB (units B KB KiB MB MiB)", "bytes", false},
    [T_BITRATE] = {"a bit rate such as 1.5Mbps, or 0 for unlimited (units bps kbps Mbps Gbps)",
                   "bits per second", false},
    [T_PROB] = {"a probability such as 0.05 or 5%", NULL, true},
    [T_REAL] = {"a number such as 0.07", NULL, true},
    [T_RATE] = {"a rate such as 2/s, 0.5/s or 10/h (units ns us ms s min h d)", NULL, false},
    [T_BOOL] = {"true or false (or yes or no)", NULL, false},
    [T_ENUM] = {"one of", NULL, false},
};

/* Range flags. Without flags a value must lie in [min, max]. */
#define R_MIN_OPEN 1u /* value > min */
#define R_MAX_OPEN 2u /* value < max */
#define R_NO_MAX   4u /* no upper bound but the storage type's */
#define R_ZERO_OK  8u /* 0 (= unlimited) is allowed besides [min, ...] */

struct enum_name {
    const char *name;
    int value;
};

static const struct enum_name app_names[] = {
    {"flood", SIM_APP_FLOOD},
    {"gossip", SIM_APP_GOSSIP},
    {"null", SIM_APP_NULL},
    {NULL, 0},
};

static const struct enum_name topo_names[] = {
    {"random_regular", SIM_TOPO_RANDOM_REGULAR},
    {"erdos_renyi", SIM_TOPO_ERDOS_RENYI},
    {"barabasi_albert", SIM_TOPO_BARABASI_ALBERT},
    {"watts_strogatz", SIM_TOPO_WATTS_STROGATZ},
    {"random_geometric", SIM_TOPO_RANDOM_GEOMETRIC},
    {"grid", SIM_TOPO_GRID},
    {"file", SIM_TOPO_FILE},
    {NULL, 0},
};

static const struct enum_name storage_names[] = {
    {"none", SIM_STORAGE_NONE},
    {"memory", SIM_STORAGE_MEMORY},
    {"sqlite", SIM_STORAGE_SQLITE},
    {NULL, 0},
};

static const struct enum_name churn_names[] = {
    {"exponential", SIM_CHURN_EXPONENTIAL},
    {"weibull", SIM_CHURN_WEIBULL},
    {"pareto", SIM_CHURN_PARETO},
    {NULL, 0},
};

struct field {
    const char *key; /* dotted path in the YAML tree */
    enum field_type type;
    size_t offset; /* into struct sim_config */
    size_t size;   /* of the member, checked against the type */
    double min, max;
    unsigned flags;
    const char *def; /* default, as text the parser accepts */
    const struct enum_name *names;
};

#define FIELD(key, type, member, min, max, flags, def, names)                                      \
    {                                                                                              \
        key, type, offsetof(struct sim_config, member), sizeof(((struct sim_config *)0)->member),  \
            min, max, flags, def, names                                                            \
    }

#define U32_MAX_D 4294967295.0

/* Table order is document order: sections stay contiguous (sim_config_json relies on it). */
static const struct field fields[] = {
    FIELD("name", T_STRING, name, 1, SIM_NAME_MAX - 1, 0, "scenario", NULL),
    FIELD("seed", T_U64, seed, 0, 0, R_NO_MAX, "1", NULL),
    FIELD("duration", T_DURATION, duration_ns, 0, 0, R_MIN_OPEN | R_NO_MAX, "5min", NULL),
    FIELD("nodes.count", T_U32, nodes.count, 1, 10000000, 0, "100", NULL),
    FIELD("nodes.app", T_ENUM, nodes.app, 0, 0, 0, "gossip", app_names),
    FIELD("topology.kind", T_ENUM, topology.kind, 0, 0, 0, "random_geometric", topo_names),
    FIELD("topology.degree", T_U32, topology.degree, 0, U32_MAX_D, 0, "8", NULL),
    FIELD("topology.p", T_PROB, topology.p, 0, 1, 0, "0.1", NULL),
    FIELD("topology.m", T_U32, topology.m, 0, U32_MAX_D, 0, "3", NULL),
    FIELD("topology.radius", T_REAL, topology.radius, 0, 1.5, R_MIN_OPEN, "0.07", NULL),
    FIELD("topology.width", T_U32, topology.width, 0, U32_MAX_D, 0, "0", NULL),
    FIELD("topology.height", T_U32, topology.height, 0, U32_MAX_D, 0, "0", NULL),
    FIELD("topology.torus", T_BOOL, topology.torus, 0, 0, 0, "false", NULL),
    FIELD("topology.file", T_PATH, topology.file, 0, SIM_PATH_MAX - 1, 0, "", NULL),
    FIELD("link.latency", T_DURATION, link.latency_ns, 0, 0, R_NO_MAX, "10ms", NULL),
    FIELD("link.latency_max", T_DURATION, link.latency_max_ns, 0, 0, R_NO_MAX, "0", NULL),
    FIELD("link.jitter", T_DURATION, link.jitter_ns, 0, 0, R_NO_MAX, "0", NULL),
    FIELD("link.bandwidth", T_BITRATE, link.bandwidth_bps, 1000, 0, R_NO_MAX | R_ZERO_OK, "0",
          NULL),
    FIELD("link.queue", T_SIZE, link.queue_bytes, 0, U32_MAX_D, 0, "0B", NULL),
    FIELD("link.loss", T_PROB, link.loss, 0, 1, R_MAX_OPEN, "0", NULL),
    FIELD("link.ge_p", T_PROB, link.ge_p, 0, 1, 0, "0", NULL),
    FIELD("link.ge_r", T_PROB, link.ge_r, 0, 1, 0, "0.5", NULL),
    FIELD("link.ge_k", T_PROB, link.ge_k, 0, 1, 0, "1", NULL),
    FIELD("link.ge_h", T_PROB, link.ge_h, 0, 1, 0, "0", NULL),
    FIELD("link.mtu", T_SIZE, link.mtu, 64, 65507, 0, "1200B", NULL),
    FIELD("gossip.interval", T_DURATION, gossip.interval_ns, 0, 0, R_MIN_OPEN | R_NO_MAX, "1s",
          NULL),
    FIELD("gossip.fanout", T_U32, gossip.fanout, 0, 64, 0, "3", NULL),
    FIELD("gossip.digest", T_U32, gossip.digest, 1, 4096, 0, "32", NULL),
    FIELD("gossip.seen", T_U32, gossip.seen, 16, 10000000, 0, "4096", NULL),
    FIELD("gossip.store", T_U32, gossip.store, 1, 10000000, 0, "256", NULL),
    FIELD("workload.updates", T_U32, workload.updates, 0, 100000000, 0, "100", NULL),
    FIELD("workload.rate", T_RATE, workload.rate_per_s, 0, 0, R_MIN_OPEN | R_NO_MAX, "1/s", NULL),
    FIELD("workload.start", T_DURATION, workload.start_ns, 0, 0, R_NO_MAX, "10s", NULL),
    FIELD("workload.payload", T_SIZE, workload.payload_bytes, 0, 65535, 0, "64B", NULL),
    FIELD("churn.session", T_DURATION, churn.session_ns, 0, 0, R_NO_MAX, "0", NULL),
    FIELD("churn.offline", T_DURATION, churn.offline_ns, 0, 0, R_NO_MAX, "1min", NULL),
    FIELD("churn.distribution", T_ENUM, churn.dist, 0, 0, 0, "exponential", churn_names),
    FIELD("churn.shape", T_REAL, churn.shape, 0.1, 100, 0, "1.5", NULL),
    FIELD("churn.diurnal", T_PROB, churn.diurnal, 0, 1, R_MAX_OPEN, "0", NULL),
    FIELD("partition.at", T_DURATION, partition.at_ns, 0, 0, R_NO_MAX, "0", NULL),
    FIELD("partition.heal", T_DURATION, partition.heal_ns, 0, 0, R_NO_MAX, "0", NULL),
    FIELD("partition.fraction", T_PROB, partition.fraction, 0, 1, 0, "0.5", NULL),
    FIELD("clock.skew", T_DURATION, clock.skew_ns, 0, 31536000e9, 0, "0", NULL),
    FIELD("clock.drift", T_REAL, clock.drift_ppm, 0, 100000, 0, "0", NULL),
    FIELD("blob.size", T_SIZE, blob.size_bytes, 0, U32_MAX_D, 0, "0B", NULL),
    FIELD("blob.at", T_DURATION, blob.at_ns, 0, 0, R_NO_MAX, "10s", NULL),
    FIELD("blob.source", T_U32, blob.source, 0, U32_MAX_D, 0, "0", NULL),
    FIELD("blob.fetchers", T_U32, blob.fetchers, 0, U32_MAX_D, 0, "0", NULL),
    FIELD("blob.edit", T_SIZE, blob.edit_bytes, 0, U32_MAX_D, 0, "0B", NULL),
    FIELD("blob.edit_at", T_DURATION, blob.edit_at_ns, 0, 0, R_NO_MAX, "0", NULL),
    FIELD("security.sessions", T_BOOL, security.sessions, 0, 0, 0, "false", NULL),
    FIELD("storage.backend", T_ENUM, storage.backend, 0, 0, 0, "none", storage_names),
    FIELD("storage.dir", T_PATH, storage.dir, 0, SIM_PATH_MAX - 1, 0, "", NULL),
    FIELD("storage.repair", T_BOOL, storage.repair, 0, 0, 0, "false", NULL),
    FIELD("crash.at", T_DURATION, crash.at_ns, 0, 0, R_NO_MAX, "0", NULL),
    FIELD("crash.fraction", T_PROB, crash.fraction, 0, 1, 0, "0", NULL),
    FIELD("crash.rate", T_RATE, crash.rate_per_s, 0, 0, R_NO_MAX, "0/s", NULL),
    FIELD("crash.every_writes", T_U32, crash.every_writes, 0, U32_MAX_D, 0, "0", NULL),
    FIELD("crash.downtime", T_DURATION, crash.downtime_ns, 0, 0, R_NO_MAX, "10s", NULL),
    FIELD("metrics.sample", T_DURATION, metrics.sample_ns, 0, 0, R_MIN_OPEN | R_NO_MAX, "1s", NULL),
    FIELD("metrics.deliveries", T_BOOL, metrics.deliveries, 0, 0, 0, "true", NULL),
};

#define FIELD_COUNT (sizeof fields / sizeof fields[0])

struct unit {
    const char *name;
    uint64_t scale;
};

/* Ascending, so the canonical form can take the largest unit that divides exactly. */
static const struct unit duration_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"ms", 1000000},
    {"s", 1000000000},
    {"min", 60ull * 1000000000},
    {"h", 3600ull * 1000000000},
    {"d", 86400ull * 1000000000},
    {NULL, 0},
};

static const struct unit size_units[] = {
    {"B", 1}, {"KB", 1000}, {"KiB", 1024}, {"MB", 1000000}, {"MiB", 1048576}, {NULL, 0},
};

static const struct unit bitrate_units[] = {
    {"bps", 1}, {"kbps", 1000}, {"Mbps", 1000000}, {"Gbps", 1000000000}, {NULL, 0},
};

static int find_field(const char *key)
{
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (strcmp(fields[i].key, key) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* A key that is not a leaf but the start of some ("link" for "link.loss"); the first such
 * leaf is returned, for hints. */
static const struct field *find_section(const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (strncmp(fields[i].key, key, n) == 0 && fields[i].key[n] == '.') {
            return &fields[i];
        }
    }
    return NULL;
}

/* ---- Field storage ----------------------------------------------------------------------- */

static void *field_ptr(struct sim_config *cfg, const struct field *f)
{
    return (char *)cfg + f->offset;
}

static const void *field_cptr(const struct sim_config *cfg, const struct field *f)
{
    return (const char *)cfg + f->offset;
}

static bool is_u32_type(enum field_type t)
{
    return t == T_U32 || t == T_SIZE;
}

static bool is_real_type(enum field_type t)
{
    return t == T_PROB || t == T_REAL || t == T_RATE;
}

static uint64_t storage_max(const struct field *f)
{
    return is_u32_type(f->type) ? UINT32_MAX : UINT64_MAX;
}

static uint64_t get_uint(const struct sim_config *cfg, const struct field *f)
{
    const void *p = field_cptr(cfg, f);
    uint32_t v32;
    uint64_t v64;
    int vi;
    switch (f->type) {
    case T_U32:
    case T_SIZE:
        memcpy(&v32, p, sizeof v32);
        return v32;
    case T_BOOL:
    case T_ENUM:
        memcpy(&vi, p, sizeof vi);
        return (uint64_t)(int64_t)vi;
    default:
        memcpy(&v64, p, sizeof v64);
        return v64;
    }
}

static void set_uint(struct sim_config *cfg, const struct field *f, uint64_t v)
{
    void *p = field_ptr(cfg, f);
    if (is_u32_type(f->type)) {
        uint32_t v32 = (uint32_t)v;
        memcpy(p, &v32, sizeof v32);
    } else {
        memcpy(p, &v, sizeof v);
    }
}

static void set_int(struct sim_config *cfg, const struct field *f, int v)
{
    memcpy(field_ptr(cfg, f), &v, sizeof v);
}

static double get_real(const struct sim_config *cfg, const struct field *f)
{
    double x;
    memcpy(&x, field_cptr(cfg, f), sizeof x);
    return x;
}

static void set_real(struct sim_config *cfg, const struct field *f, double x)
{
    memcpy(field_ptr(cfg, f), &x, sizeof x);
}

/* ---- Small text helpers ------------------------------------------------------------------ */

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_control(unsigned char ch)
{
    return ch < 0x20 || ch == 0x7f;
}

/* User text made safe to quote in a one-line message: control bytes become '?', long text is
 * cut with "...". */
static const char *show(const char *s, size_t n, char *buf, size_t cap)
{
    size_t keep = n < cap - 4 ? n : cap - 4;
    for (size_t i = 0; i < keep; i++) {
        buf[i] = is_control((unsigned char)s[i]) ? '?' : s[i];
    }
    if (keep < n) {
        memcpy(buf + keep, "...", 3);
        keep += 3;
    }
    buf[keep] = '\0';
    return buf;
}

static int msgf(char *msg, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int msgf(char *msg, size_t cap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- Numbers ----------------------------------------------------------------------------- */

enum num_status {
    NUM_OK,
    NUM_SYNTAX,
    NUM_OVERFLOW,
    NUM_INEXACT,
};

/* "digits" or "digits.digits", kept exactly: integer part and up to 19 significant fraction
 * digits (more can never scale to a whole number with our units). */
struct decimal {
    uint64_t ip, fp;
    unsigned fdigits;
    bool has_point;
    bool overflow;
    bool frac_too_long;
};

static size_t scan_decimal(const char *s, size_t n, struct decimal *d)
{
    size_t i = 0;
    memset(d, 0, sizeof *d);
    while (i < n && is_digit(s[i])) {
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (d->ip > (UINT64_MAX - digit) / 10) {
            d->overflow = true;
        } else {
            d->ip = d->ip * 10 + digit;
        }
        i++;
    }
    if (i == 0) {
        return 0;
    }
    if (i < n && s[i] == '.') {
        size_t start = i + 1, j = i + 1;
        while (j < n && is_digit(s[j])) {
            j++;
        }
        if (j == start) {
            return 0;
        }
        size_t end = j;
        while (end > start && s[end - 1] == '0') {
            end--;
        }
        if (end - start > 19) {
            d->frac_too_long = true;
        } else {
            for (size_t k = start; k < end; k++) {
                d->fp = d->fp * 10 + (uint64_t)(s[k] - '0');
            }
            d->fdigits = (unsigned)(end - start);
        }
        d->has_point = true;
        i = j;
    }
    return i;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* d * unit exactly, or NUM_INEXACT / NUM_OVERFLOW. The fraction part is computed as
 * (fp / (10^f / g)) * (unit / g) with g = gcd(unit, 10^f): it is below `unit`, so it cannot
 * overflow, and it is exact precisely when 10^f / g divides fp. */
static enum num_status scale_exact(const struct decimal *d, uint64_t unit, uint64_t *out)
{
    if (d->overflow) {
        return NUM_OVERFLOW;
    }
    if (d->frac_too_long) {
        return NUM_INEXACT;
    }
    uint64_t pow10 = 1;
    for (unsigned k = 0; k < d->fdigits; k++) {
        pow10 *= 10;
    }
    uint64_t g = gcd_u64(unit, pow10);
    uint64_t need = pow10 / g;
    if (d->fp % need != 0) {
        return NUM_INEXACT;
    }
    uint64_t frac = (d->fp / need) * (unit / g);
    if (d->ip > (UINT64_MAX - frac) / unit) {
        return NUM_OVERFLOW;
    }
    *out = d->ip * unit + frac;
    return NUM_OK;
}

/* A decimal number and a unit from `units` with nothing in between or after. Without a unit,
 * `bare_any` accepts a whole number (taken as unit 1); otherwise only a plain "0". */
static enum num_status parse_units(const char *s, size_t n, const struct unit *units, bool bare_any,
                                   uint64_t *out)
{
    struct decimal d;
    size_t k = scan_decimal(s, n, &d);
    if (k == 0) {
        return NUM_SYNTAX;
    }
    if (k == n) {
        if (d.has_point || (!bare_any && (d.overflow || d.ip != 0))) {
            return NUM_SYNTAX;
        }
        return scale_exact(&d, 1, out);
    }
    for (const struct unit *u = units; u->name != NULL; u++) {
        if (strlen(u->name) == n - k && memcmp(u->name, s + k, n - k) == 0) {
            return scale_exact(&d, u->scale, out);
        }
    }
    return NUM_SYNTAX;
}

static enum num_status parse_uint(const char *s, size_t n, uint64_t *out)
{
    struct decimal d;
    if (scan_decimal(s, n, &d) != n || d.has_point) {
        return NUM_SYNTAX;
    }
    return scale_exact(&d, 1, out);
}

/* Strict real syntax: [+-] digits [. digits] [e [+-] digits] (or .digits), then strtod in a
 * copy. `suffix` (e.g. "e-2" for percentages) is appended before conversion. */
static enum num_status parse_real(const char *s, size_t n, bool allow_exp, const char *suffix,
                                  double *out)
{
    size_t i = 0, digits = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        i++;
    }
    while (i < n && is_digit(s[i])) {
        i++;
        digits++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit(s[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0) {
        return NUM_SYNTAX;
    }
    if (allow_exp && i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        while (i < n && is_digit(s[i])) {
            i++;
            exp_digits++;
        }
        if (exp_digits == 0) {
            return NUM_SYNTAX;
        }
    }
    if (i != n) {
        return NUM_SYNTAX;
    }
    char buf[NUM_MAX];
    size_t slen = strlen(suffix);
    if (n + slen >= sizeof buf) {
        return NUM_SYNTAX;
    }
    memcpy(buf, s, n);
    memcpy(buf + n, suffix, slen + 1);
    char *end = NULL;
    double x = strtod(buf, &end);
    if (end != buf + n + slen) {
        return NUM_SYNTAX;
    }
    if (!isfinite(x)) {
        return NUM_OVERFLOW;
    }
    *out = x;
    return NUM_OK;
}

static enum num_status parse_prob(const char *s, size_t n, double *out)
{
    if (n > 0 && s[n - 1] == '%') {
        /* "5%" is read as "5e-2": one correctly rounded conversion, so "5%" == "0.05". */
        return parse_real(s, n - 1, false, "e-2", out);
    }
    return parse_real(s, n, true, "", out);
}

static enum num_status parse_rate(const char *s, size_t n, double *out)
{
    const char *slash = memchr(s, '/', n);
    if (slash == NULL) {
        return NUM_SYNTAX;
    }
    size_t k = (size_t)(slash - s);
    double x;
    enum num_status st = parse_real(s, k, true, "", &x);
    if (st != NUM_OK) {
        return st;
    }
    const char *u = slash + 1;
    size_t un = n - k - 1;
    for (const struct unit *p = duration_units; p->name != NULL; p++) {
        if (strlen(p->name) == un && memcmp(p->name, u, un) == 0) {
            /* Multiply or divide by an exact integer factor: one rounding at most. */
            if (p->scale <= 1000000000) {
                x *= (double)(1000000000 / p->scale);
            } else {
                x /= (double)(p->scale / 1000000000);
            }
            if (!isfinite(x)) {
                return NUM_OVERFLOW;
            }
            *out = x;
            return NUM_OK;
        }
    }
    return NUM_SYNTAX;
}

/* ---- Formatting values ------------------------------------------------------------------- */

/* The shortest %g text that reads back as exactly x; whole numbers below 1e15 without an
 * exponent ("100", not "1e+02"). */
static void format_real(double x, char *buf, size_t cap)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) {
            break;
        }
    }
    if (strchr(buf, 'e') != NULL && fabs(x) >= 1 && fabs(x) < 1e15) {
        snprintf(buf, cap, "%.0f", x);
    }
}

/* An integer-valued field's value `v` in the field's canonical text. */
static void format_uint(const struct field *f, uint64_t v, char *buf, size_t cap)
{
    switch (f->type) {
    case T_DURATION:
        if (v == 0) {
            snprintf(buf, cap, "0");
            return;
        }
        for (size_t i = sizeof duration_units / sizeof duration_units[0] - 1; i-- > 0;) {
            if (v % duration_units[i].scale == 0) {
                snprintf(buf, cap, "%" PRIu64 "%s", v / duration_units[i].scale,
                         duration_units[i].name);
                return;
            }
        }
        return;
    case T_SIZE:
        snprintf(buf, cap, "%" PRIu64 "B", v);
        return;
    case T_BITRATE:
        if (v == 0) {
            snprintf(buf, cap, "0");
        } else {
            snprintf(buf, cap, "%" PRIu64 "bps", v);
        }
        return;
    default:
        snprintf(buf, cap, "%" PRIu64, v);
        return;
    }
}

static void format_value(const struct field *f, const struct sim_config *cfg, char *buf, size_t cap)
{
    const char *s;
    int vi;
    switch (f->type) {
    case T_STRING:
    case T_PATH:
        s = field_cptr(cfg, f);
        snprintf(buf, cap, "%.*s", (int)strnlen(s, f->size), s);
        return;
    case T_PROB:
    case T_REAL:
        format_real(get_real(cfg, f), buf, cap);
        return;
    case T_RATE: {
        char num[64];
        format_real(get_real(cfg, f), num, sizeof num);
        snprintf(buf, cap, "%s/s", num);
        return;
    }
    case T_BOOL:
        snprintf(buf, cap, "%s", get_uint(cfg, f) ? "true" : "false");
        return;
    case T_ENUM:
        memcpy(&vi, field_cptr(cfg, f), sizeof vi);
        for (const struct enum_name *e = f->names; e->name != NULL; e++) {
            if (e->value == vi) {
                snprintf(buf, cap, "%s", e->name);
                return;
            }
        }
        snprintf(buf, cap, "%d", vi); /* not a valid config; never produced by the parser */
        return;
    default:
        format_uint(f, get_uint(cfg, f), buf, cap);
        return;
    }
}

/* "in 1..64", "> 0", "0 (unlimited) or >= 1000bps", "in [0, 1)". */
static void format_range(const struct field *f, char *buf, size_t cap)
{
    char lo[64], hi[64];
    if (is_real_type(f->type)) {
        format_real(f->min, lo, sizeof lo);
        format_real(f->max, hi, sizeof hi);
        if (f->flags & R_NO_MAX) {
            snprintf(buf, cap, "%s %s", (f->flags & R_MIN_OPEN) ? ">" : ">=", lo);
        } else {
            snprintf(buf, cap, "in %c%s, %s%c", (f->flags & R_MIN_OPEN) ? '(' : '[', lo, hi,
                     (f->flags & R_MAX_OPEN) ? ')' : ']');
        }
        return;
    }
    uint64_t max = (f->flags & R_NO_MAX) ? storage_max(f) : (uint64_t)f->max;
    format_uint(f, (uint64_t)f->min, lo, sizeof lo);
    format_uint(f, max, hi, sizeof hi);
    if (f->flags & R_ZERO_OK) {
        snprintf(buf, cap, "0 (unlimited) or >= %s", lo);
    } else if (f->flags & R_MIN_OPEN) {
        snprintf(buf, cap, "> %s", lo);
    } else {
        snprintf(buf, cap, "in %s..%s", lo, hi);
    }
}

/* ---- Parsing one value ------------------------------------------------------------------- */

static int parse_text(const struct field *f, const char *s, size_t n, struct sim_config *cfg,
                      char *msg, size_t cap)
{
    if (n < (size_t)f->min) {
        return msgf(msg, cap, P4P_EINVAL, "%s must not be empty", f->key);
    }
    if (n > (size_t)f->max) {
        char shown[SHOW_MAX];
        return msgf(msg, cap, P4P_EINVAL, "%s: '%s' is longer than %zu bytes", f->key,
                    show(s, n, shown, sizeof shown), (size_t)f->max);
    }
    for (size_t i = 0; i < n; i++) {
        if (is_control((unsigned char)s[i])) {
            return msgf(msg, cap, P4P_EINVAL, "%s: control characters are not allowed", f->key);
        }
    }
    char *dst = field_ptr(cfg, f);
    memset(dst, 0, f->size);
    memcpy(dst, s, n);
    return 0;
}

static int parse_choice(const struct field *f, const char *s, size_t n, struct sim_config *cfg,
                        char *msg, size_t cap)
{
    char shown[SHOW_MAX];
    static const struct enum_name bools[] = {
        {"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {NULL, 0},
    };
    const struct enum_name *names = f->type == T_BOOL ? bools : f->names;
    for (const struct enum_name *e = names; e->name != NULL; e++) {
        if (strlen(e->name) == n && memcmp(e->name, s, n) == 0) {
            set_int(cfg, f, e->value);
            return 0;
        }
    }
    if (f->type == T_BOOL) {
        return msgf(msg, cap, P4P_EPARSE, "%s: expected %s, got '%s'", f->key,
                    types[T_BOOL].expected, show(s, n, shown, sizeof shown));
    }
    char list[256] = "";
    size_t used = 0;
    for (const struct enum_name *e = names; e->name != NULL && used < sizeof list; e++) {
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", e == names ? "" : ", ",
                                 e->name);
    }
    return msgf(msg, cap, P4P_EPARSE, "%s: expected one of %s, got '%s'", f->key, list,
                show(s, n, shown, sizeof shown));
}

/* Parses text `s` (n bytes, no NUL inside) as field f's type and stores it in cfg. Range
 * checks come later, after all overrides. Returns 0, or an error code with a message. */
static int parse_value(const struct field *f, const char *s, size_t n, struct sim_config *cfg,
                       char *msg, size_t cap)
{
    char shown[SHOW_MAX];
    uint64_t v = 0;
    double x = 0;
    enum num_status st = NUM_SYNTAX;

    if (n == 0 && f->type != T_PATH) {
        return msgf(msg, cap, P4P_EPARSE, "%s: missing value", f->key);
    }
    switch (f->type) {
    case T_STRING:
    case T_PATH:
        return parse_text(f, s, n, cfg, msg, cap);
    case T_BOOL:
    case T_ENUM:
        return parse_choice(f, s, n, cfg, msg, cap);
    case T_U32:
    case T_U64:
        st = parse_uint(s, n, &v);
        break;
    case T_DURATION:
        st = parse_units(s, n, duration_units, false, &v);
        break;
    case T_SIZE:
        st = parse_units(s, n, size_units, true, &v);
        break;
    case T_BITRATE:
        st = parse_units(s, n, bitrate_units, false, &v);
        break;
    case T_PROB:
        st = parse_prob(s, n, &x);
        break;
    case T_REAL:
        st = parse_real(s, n, true, "", &x);
        break;
    case T_RATE:
        st = parse_rate(s, n, &x);
        break;
    }
    if (st == NUM_OK && !is_real_type(f->type) && v > storage_max(f)) {
        st = NUM_OVERFLOW;
    }
    switch (st) {
    case NUM_OK:
        break;
    case NUM_SYNTAX:
        return msgf(msg, cap, P4P_EPARSE, "%s: expected %s, got '%s'", f->key,
                    types[f->type].expected, show(s, n, shown, sizeof shown));
    case NUM_OVERFLOW: {
        char range[RANGE_MAX];
        format_range(f, range, sizeof range);
        return msgf(msg, cap, P4P_EINVAL, "%s: '%s' is too large (must be %s)", f->key,
                    show(s, n, shown, sizeof shown), range);
    }
    case NUM_INEXACT:
        return msgf(msg, cap, P4P_EINVAL, "%s: '%s' is not a whole number of %s", f->key,
                    show(s, n, shown, sizeof shown), types[f->type].whole);
    }
    if (is_real_type(f->type)) {
        set_real(cfg, f, x);
    } else {
        set_uint(cfg, f, v);
    }
    return 0;
}

/* The static range of one field (the table's min/max/flags). */
static int check_range(const struct field *f, const struct sim_config *cfg, char *msg, size_t cap)
{
    bool bad;
    if (is_real_type(f->type)) {
        double x = get_real(cfg, f);
        bad = (f->flags & R_MIN_OPEN) ? !(x > f->min) : !(x >= f->min);
        if (!(f->flags & R_NO_MAX)) {
            bad = bad || ((f->flags & R_MAX_OPEN) ? !(x < f->max) : !(x <= f->max));
        }
    } else if (f->type == T_STRING || f->type == T_PATH || f->type == T_BOOL || f->type == T_ENUM) {
        return 0; /* checked while parsing */
    } else {
        uint64_t v = get_uint(cfg, f);
        uint64_t lo = (uint64_t)f->min;
        uint64_t hi = (f->flags & R_NO_MAX) ? storage_max(f) : (uint64_t)f->max;
        bad = ((f->flags & R_MIN_OPEN) ? v <= lo : v < lo) || v > hi;
        if (v == 0 && (f->flags & R_ZERO_OK)) {
            bad = false;
        }
    }
    if (!bad) {
        return 0;
    }
    char value[RANGE_MAX], range[RANGE_MAX];
    format_value(f, cfg, value, sizeof value);
    format_range(f, range, sizeof range);
    return msgf(msg, cap, P4P_EINVAL, "%s: %s must be %s", f->key, value, range);
}

/* ---- Defaults ---------------------------------------------------------------------------- */

/* A table row that does not match struct sim_config is a programmer error: always checked,
 * fatal. */
static void table_fail(const struct field *f, const char *why)
{
    fprintf(stderr, "scenario.c: field table entry '%s': %s\n", f->key, why);
    abort();
}

static size_t type_size(enum field_type t)
{
    switch (t) {
    case T_U32:
    case T_SIZE:
        return sizeof(uint32_t);
    case T_U64:
    case T_DURATION:
    case T_BITRATE:
        return sizeof(uint64_t);
    case T_PROB:
    case T_REAL:
    case T_RATE:
        return sizeof(double);
    case T_BOOL:
    case T_ENUM:
        return sizeof(int);
    default:
        return 0; /* strings: any size */
    }
}

void sim_config_defaults(struct sim_config *cfg)
{
    char msg[MSG_MAX];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const struct field *f = &fields[i];
        size_t want = type_size(f->type);
        if (want != 0 && want != f->size) {
            table_fail(f, "type does not match the struct member's size");
        }
        if (parse_value(f, f->def, strlen(f->def), cfg, msg, sizeof msg) != 0 ||
            check_range(f, cfg, msg, sizeof msg) != 0) {
            table_fail(f, msg);
        }
    }
}

/* ---- Parse context and error reporting --------------------------------------------------- */

enum origin_kind {
    FROM_DEFAULT = 0,
    FROM_FILE,
    FROM_OVERRIDE,
};

/* Where a value (or key) came from, for messages. */
struct origin {
    enum origin_kind kind;
    unsigned long line, col; /* 1-based; for overrides, line = override number */
};

struct section_seen {
    char key[KEY_MAX];
    unsigned long line;
};

struct ctx {
    const char *name; /* stands for the file in messages */
    const char *base_dir;
    const char *text;
    size_t len;
    char *err;
    size_t errlen;
    struct sim_config cfg;
    struct origin from[FIELD_COUNT];
    struct section_seen sections[FIELD_COUNT];
    size_t section_count;
};

static int report(struct ctx *c, int code, const struct origin *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the one error line and returns `code`. */
static int report(struct ctx *c, int code, const struct origin *at, const char *fmt, ...)
{
    if (c->err == NULL || c->errlen == 0) {
        return code;
    }
    int n;
    if (at != NULL && at->kind == FROM_OVERRIDE) {
        n = snprintf(c->err, c->errlen, "--set:%lu:%lu: ", at->line, at->col);
    } else if (at != NULL && at->kind == FROM_FILE) {
        n = snprintf(c->err, c->errlen, "%s:%lu:%lu: ", c->name, at->line, at->col);
    } else {
        n = snprintf(c->err, c->errlen, "%s:1:1: ", c->name);
    }
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

static struct origin at_mark(yaml_mark_t m)
{
    struct origin o = {FROM_FILE, (unsigned long)m.line + 1, (unsigned long)m.column + 1};
    return o;
}

/* The origin to blame for a rule between several keys: the first one that was set
 * explicitly (the list is in order of preference), else the file's start. */
static const struct origin *blame(const struct ctx *c, const char *const *keys)
{
    static const struct origin nowhere = {FROM_DEFAULT, 1, 1};
    for (; *keys != NULL; keys++) {
        int i = find_field(*keys);
        if (i >= 0 && c->from[i].kind != FROM_DEFAULT) {
            return &c->from[i];
        }
    }
    return &nowhere;
}

#define BLAME(c, ...) blame((c), (const char *const[]){__VA_ARGS__, NULL})

/* ---- Unknown-key hints ------------------------------------------------------------------- */

/* Edits (insert, delete, replace, swap two neighbours) from a to b: "lnik" is 1 from "link". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    size_t d[3][KEY_MAX + 1]; /* rows i-2, i-1, i, rolling */
    if (na > KEY_MAX || nb > KEY_MAX) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= nb; j++) {
        d[0][j] = j;
    }
    for (size_t i = 1; i <= na; i++) {
        size_t *cur = d[i % 3], *up = d[(i - 1) % 3], *up2 = d[(i + 1) % 3];
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t best = up[j - 1] + (a[i - 1] != b[j - 1]);
            if (up[j] + 1 < best) {
                best = up[j] + 1;
            }
            if (cur[j - 1] + 1 < best) {
                best = cur[j - 1] + 1;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                up2[j - 2] + 1 < best) {
                best = up2[j - 2] + 1;
            }
            cur[j] = best;
        }
    }
    return d[na % 3][nb];
}

/* A known key (leaf or section) the user probably meant, into buf; false if none is close.
 * "loss" and "nodes.loss" suggest "link.loss" (same last part); "link.los" too (spelling). */
static bool suggest(const char *key, char *buf, size_t cap)
{
    const char *last = strrchr(key, '.');
    last = last ? last + 1 : key;
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const char *fl = strrchr(fields[i].key, '.');
        fl = fl ? fl + 1 : fields[i].key;
        if (*last != '\0' && strcmp(fl, last) == 0) {
            snprintf(buf, cap, "%s", fields[i].key);
            return true;
        }
    }
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        /* Each leaf and each of its sections ("link", then "link.loss"). */
        const char *k = fields[i].key;
        for (const char *dot = k;; dot++) {
            if (*dot != '.' && *dot != '\0') {
                continue;
            }
            char cand[KEY_MAX];
            snprintf(cand, sizeof cand, "%.*s", (int)(dot - k), k);
            size_t d = edit_distance(key, cand);
            if (d < best) {
                best = d;
                snprintf(buf, cap, "%s", cand);
            }
            if (*dot == '\0') {
                break;
            }
        }
    }
    return best <= 2 && best * 3 <= strlen(key);
}

static int unknown_key(struct ctx *c, const struct origin *at, const char *key)
{
    char hint[KEY_MAX], shown[SHOW_MAX];
    show(key, strlen(key), shown, sizeof shown);
    if (suggest(key, hint, sizeof hint)) {
        return report(c, P4P_EPARSE, at, "unknown key '%s' (did you mean '%s'?)", shown, hint);
    }
    return report(c, P4P_EPARSE, at, "unknown key '%s'", shown);
}

/* ---- YAML -------------------------------------------------------------------------------- */

static int yaml_fail(struct ctx *c, const yaml_parser_t *p)
{
    struct origin at = {FROM_FILE, 1, 1};
    if (p->error == YAML_MEMORY_ERROR) {
        return report(c, P4P_ENOMEM, &at, "out of memory");
    }
    if (p->error == YAML_READER_ERROR) {
        /* Reader errors carry a byte offset, not a mark. */
        size_t end = p->problem_offset < c->len ? p->problem_offset : c->len;
        for (size_t i = 0; i < end; i++) {
            if (c->text[i] == '\n') {
                at.line++;
                at.col = 1;
            } else {
                at.col++;
            }
        }
    } else {
        at = at_mark(p->problem_mark);
    }
    const char *problem = p->problem != NULL ? p->problem : "syntax error";
    if (p->context != NULL) {
        return report(c, P4P_EPARSE, &at, "invalid YAML: %s (%s that started on line %lu)", problem,
                      p->context, (unsigned long)p->context_mark.line + 1);
    }
    return report(c, P4P_EPARSE, &at, "invalid YAML: %s", problem);
}

/* The next event, refusing aliases, anchors and tags. The caller deletes *ev on success. */
static int next_event(struct ctx *c, yaml_parser_t *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(p, ev)) {
        return yaml_fail(c, p);
    }
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        anchor = ev->data.alias.anchor;
        break;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default:
        break;
    }
    if (anchor != NULL || tag != NULL) {
        struct origin at = at_mark(ev->start_mark);
        yaml_event_delete(ev);
        return report(c, P4P_EPARSE, &at, "%s are not supported; write the value out",
                      anchor != NULL ? "anchors and aliases" : "tags");
    }
    return 0;
}

static const char *node_kind(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    default:
        return "a single value";
    }
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    const char *s = (const char *)ev->data.scalar.value;
    return ev->data.scalar.length == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int take_leaf(struct ctx *c, int fi, const yaml_event_t *key, const yaml_event_t *val)
{
    const struct field *f = &fields[fi];
    struct origin at = at_mark(val->start_mark);
    char msg[MSG_MAX];
    if (c->from[fi].kind == FROM_FILE) {
        struct origin kat = at_mark(key->start_mark);
        return report(c, P4P_EPARSE, &kat, "duplicate key '%s' (first set on line %lu)", f->key,
                      c->from[fi].line);
    }
    if (val->type != YAML_SCALAR_EVENT) {
        return report(c, P4P_EPARSE, &at, "%s takes a single value, not %s", f->key,
                      node_kind(val));
    }
    /* Only an empty value or "~" is missing: "null" is a value of nodes.app. */
    if (val->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        (val->data.scalar.length == 0 || strcmp((const char *)val->data.scalar.value, "~") == 0)) {
        return report(c, P4P_EPARSE, &at, "%s: missing value", f->key);
    }
    const char *s = (const char *)val->data.scalar.value;
    size_t n = val->data.scalar.length;
    if (memchr(s, '\0', n) != NULL) {
        return report(c, P4P_EPARSE, &at, "%s: the value contains a NUL character", f->key);
    }
    int rc = parse_value(f, s, n, &c->cfg, msg, sizeof msg);
    if (rc != 0) {
        return report(c, rc, &at, "%s", msg);
    }
    c->from[fi] = at;
    return 0;
}

static int parse_mapping(struct ctx *c, yaml_parser_t *p, const char *prefix);

static int take_section(struct ctx *c, yaml_parser_t *p, const char *key, const yaml_event_t *kev,
                        const yaml_event_t *val)
{
    struct origin kat = at_mark(kev->start_mark);
    for (size_t i = 0; i < c->section_count; i++) {
        if (strcmp(c->sections[i].key, key) == 0) {
            return report(c, P4P_EPARSE, &kat, "duplicate key '%s' (first set on line %lu)", key,
                          c->sections[i].line);
        }
    }
    if (c->section_count < FIELD_COUNT) {
        snprintf(c->sections[c->section_count].key, KEY_MAX, "%s", key);
        c->sections[c->section_count].line = kat.line;
        c->section_count++;
    }
    if (val->type == YAML_MAPPING_START_EVENT) {
        return parse_mapping(c, p, key);
    }
    if (is_null_scalar(val)) {
        return 0; /* "link:" with nothing under it: all defaults */
    }
    struct origin at = at_mark(val->start_mark);
    const struct field *first = find_section(key);
    return report(c, P4P_EPARSE, &at, "'%s' must be a mapping of keys such as '%s', not %s", key,
                  first->key + strlen(key) + 1, node_kind(val));
}

/* One "key: value" pair whose key event is kev. */
static int take_pair(struct ctx *c, yaml_parser_t *p, const char *prefix, const yaml_event_t *kev)
{
    struct origin kat = at_mark(kev->start_mark);
    if (kev->type != YAML_SCALAR_EVENT) {
        return report(c, P4P_EPARSE, &kat, "a key must be a plain name, not %s", node_kind(kev));
    }
    const char *name = (const char *)kev->data.scalar.value;
    size_t n = kev->data.scalar.length;
    char key[KEY_MAX];
    int len = snprintf(key, sizeof key, "%s%s%.*s", prefix, *prefix ? "." : "",
                       (int)(n < KEY_MAX ? n : KEY_MAX), name);
    int fi = -1;
    const struct field *section = NULL;
    if (len > 0 && (size_t)len < sizeof key && memchr(name, '\0', n) == NULL) {
        fi = find_field(key);
        section = fi < 0 ? find_section(key) : NULL;
    }
    if (fi < 0 && section == NULL) {
        return unknown_key(c, &kat, key);
    }
    yaml_event_t val;
    int rc = next_event(c, p, &val);
    if (rc != 0) {
        return rc;
    }
    rc = fi >= 0 ? take_leaf(c, fi, kev, &val) : take_section(c, p, key, kev, &val);
    yaml_event_delete(&val);
    return rc;
}

/* The pairs of a mapping whose start event was just read, up to its end. Keys may be dotted
 * ("link.loss: 5%"), so the tree depth is bounded by the table's, not the input's. */
static int parse_mapping(struct ctx *c, yaml_parser_t *p, const char *prefix)
{
    for (;;) {
        yaml_event_t kev;
        int rc = next_event(c, p, &kev);
        if (rc != 0) {
            return rc;
        }
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        rc = take_pair(c, p, prefix, &kev);
        yaml_event_delete(&kev);
        if (rc != 0) {
            return rc;
        }
    }
}

/* The document's root node, whose first event is ev. */
static int parse_root(struct ctx *c, yaml_parser_t *p, const yaml_event_t *ev)
{
    if (ev->type == YAML_MAPPING_START_EVENT) {
        return parse_mapping(c, p, "");
    }
    if (is_null_scalar(ev)) {
        return 0;
    }
    struct origin at = at_mark(ev->start_mark);
    return report(c, P4P_EPARSE, &at,
                  "the top level must be a mapping of keys such as 'nodes:' and 'link:', not %s",
                  node_kind(ev));
}

/* Reads one event and requires it to be of type `want` (the parser guarantees the order, so
 * anything else is a syntax error reported by next_event). */
static int expect_event(struct ctx *c, yaml_parser_t *p, yaml_event_type_t want, yaml_event_t *ev)
{
    int rc = next_event(c, p, ev);
    if (rc == 0 && ev->type != want) {
        struct origin at = at_mark(ev->start_mark);
        yaml_event_delete(ev);
        return report(c, P4P_EPARSE, &at, "invalid YAML: unexpected structure");
    }
    return rc;
}

static int parse_yaml(struct ctx *c)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int rc;
    if (!yaml_parser_initialize(&p)) {
        return report(c, P4P_ENOMEM, NULL, "out of memory");
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)c->text, c->len);
    rc = expect_event(c, &p, YAML_STREAM_START_EVENT, &ev);
    if (rc != 0) {
        goto done;
    }
    yaml_event_delete(&ev);
    for (unsigned docs = 0;; docs++) {
        rc = next_event(c, &p, &ev);
        if (rc != 0) {
            goto done;
        }
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            goto done; /* an empty stream is an empty scenario: all defaults */
        }
        if (docs > 0) {
            struct origin at = at_mark(ev.start_mark);
            yaml_event_delete(&ev);
            rc = report(c, P4P_EPARSE, &at, "only one YAML document is allowed per file");
            goto done;
        }
        yaml_event_delete(&ev); /* DOCUMENT_START */
        rc = next_event(c, &p, &ev);
        if (rc != 0) {
            goto done;
        }
        rc = parse_root(c, &p, &ev);
        yaml_event_delete(&ev);
        if (rc != 0) {
            goto done;
        }
        rc = expect_event(c, &p, YAML_DOCUMENT_END_EVENT, &ev);
        if (rc != 0) {
            goto done;
        }
        yaml_event_delete(&ev);
    }
done:
    yaml_parser_delete(&p);
    return rc;
}

/* ---- Overrides --------------------------------------------------------------------------- */

static int apply_overrides(struct ctx *c, const struct sim_override *ov, size_t count)
{
    char msg[MSG_MAX];
    for (size_t i = 0; i < count; i++) {
        struct origin at = {FROM_OVERRIDE, (unsigned long)i + 1, 1};
        const char *key = ov[i].key;
        if (key == NULL || *key == '\0') {
            return report(c, P4P_EPARSE, &at, "missing key (expected key=value)");
        }
        size_t klen = strlen(key);
        int fi = find_field(key);
        if (fi < 0) {
            const struct field *section = find_section(key);
            if (section != NULL) {
                return report(c, P4P_EPARSE, &at,
                              "'%s' is a section; set one of its keys, such as '%s'", key,
                              section->key);
            }
            return unknown_key(c, &at, key);
        }
        if (ov[i].value == NULL) {
            at.col = (unsigned long)klen + 1;
            return report(c, P4P_EPARSE, &at, "missing '=' and value (expected key=value)");
        }
        at.col = (unsigned long)klen + 2;
        int rc =
            parse_value(&fields[fi], ov[i].value, strlen(ov[i].value), &c->cfg, msg, sizeof msg);
        if (rc != 0) {
            return report(c, rc, &at, "%s", msg);
        }
        c->from[fi] = at;
    }
    return 0;
}

/* ---- Rules between keys ------------------------------------------------------------------ */

/* First line of an edge-list file: "N D E SEED", four unsigned integers separated by spaces or
 * tabs (as sim_graph_load_edges reads it). Stores N. */
static bool parse_topology_header(const char *line, uint64_t *n_out)
{
    uint64_t v[4];
    const char *s = line;
    for (int i = 0; i < 4; i++) {
        const char *start = s;
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        if (i > 0 && s == start) {
            return false;
        }
        const char *digits = s;
        while (is_digit(*s)) {
            s++;
        }
        if (s == digits || parse_uint(digits, (size_t)(s - digits), &v[i]) != NUM_OK) {
            return false;
        }
    }
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s == '\r') {
        s++;
    }
    if (*s != '\n' && *s != '\0') {
        return false;
    }
    *n_out = v[0];
    return true;
}

/* The node count N from the first line of the topology file `real` (`shown` in messages). */
static int read_topology_nodes(struct ctx *c, const struct origin *at, const char *shown,
                               const char *real, uint64_t *n)
{
    char line[256];
    int rc = 0;
    FILE *fp = fopen(real, "r");
    if (fp == NULL) {
        return report(c, P4P_EIO, at, "topology.file: cannot open '%s': %s", shown,
                      strerror(errno));
    }
    if (fgets(line, sizeof line, fp) == NULL) {
        rc = ferror(fp) ? report(c, P4P_EIO, at, "topology.file: cannot read '%s'", shown)
                        : report(c, P4P_EMALFORMED, at, "topology.file: '%s' is empty", shown);
    } else if (!parse_topology_header(line, n)) {
        rc = report(c, P4P_EMALFORMED, at,
                    "topology.file: the first line of '%s' must be \"N D E SEED\" (four "
                    "unsigned integers)",
                    shown);
    }
    fclose(fp);
    return rc;
}

/* kind: file — resolve the path, read the header, derive or check nodes.count. */
static int check_topology_file(struct ctx *c)
{
    struct sim_config *cfg = &c->cfg;
    int ci = find_field("nodes.count");
    const struct origin *at = &c->from[find_field("topology.file")];
    const char *file = cfg->topology.file;
    char joined[2 * SIM_PATH_MAX];
    uint64_t n = 0;
    int rc;

    if (file[0] == '\0') {
        return report(c, P4P_EINVAL, BLAME(c, "topology.kind"),
                      "topology.file is required when topology.kind is file");
    }
    /* From the file, relative to its directory; from --set, relative to the working
     * directory, like any path typed on a command line. */
    const char *base = at->kind == FROM_FILE ? c->base_dir : ".";
    int len = file[0] == '/' || strcmp(base, ".") == 0
                  ? snprintf(joined, sizeof joined, "%s", file)
                  : snprintf(joined, sizeof joined, "%s/%s", base, file);
    if (len < 0 || (size_t)len >= sizeof joined) {
        return report(c, P4P_EINVAL, at, "topology.file: path is too long");
    }
    /* Absolute, so the resolved config means the same from any directory. */
    char *real = realpath(joined, NULL);
    if (real == NULL) {
        return report(c, errno == ENOMEM ? P4P_ENOMEM : P4P_EIO, at,
                      "topology.file: cannot open '%s': %s", joined, strerror(errno));
    }
    if (strlen(real) >= SIM_PATH_MAX) {
        rc = report(c, P4P_EINVAL, at, "topology.file: '%s' is longer than %d bytes", real,
                    SIM_PATH_MAX - 1);
    } else {
        rc = read_topology_nodes(c, at, joined, real, &n);
    }
    if (rc == 0 && (n < (uint64_t)fields[ci].min || n > (uint64_t)fields[ci].max)) {
        rc = report(c, P4P_EINVAL, at,
                    "topology.file: '%s' has %" PRIu64 " nodes; nodes.count must be in 1..10000000",
                    joined, n);
    }
    if (rc == 0 && c->from[ci].kind != FROM_DEFAULT && cfg->nodes.count != n) {
        rc = report(c, P4P_EINVAL, &c->from[ci],
                    "nodes.count is %" PRIu32 " but topology file '%s' has %" PRIu64
                    " nodes (leave nodes.count out to take it from the file)",
                    cfg->nodes.count, joined, n);
    }
    if (rc == 0) {
        cfg->nodes.count = (uint32_t)n;
        memcpy(cfg->topology.file, real, strlen(real) + 1);
    }
    free(real);
    return rc;
}

/* v must be in lo..count-1 (and even if `even`) for a generator that needs it. */
static int check_per_count(struct ctx *c, const char *key, uint32_t v, uint32_t lo, bool even,
                           const char *kind)
{
    uint32_t n = c->cfg.nodes.count;
    const struct origin *at = BLAME(c, key, "nodes.count", "topology.kind");
    if (n < lo + 1u) {
        return report(c, P4P_EINVAL, at, "topology.kind %s needs nodes.count >= %" PRIu32, kind,
                      lo + 1u);
    }
    if (v < lo || v > n - 1 || (even && v % 2 != 0)) {
        return report(c, P4P_EINVAL, at,
                      "%s: %" PRIu32 " must be %sin %" PRIu32 "..%" PRIu32 " for %s with %" PRIu32
                      " nodes",
                      key, v, even ? "even and " : "", lo, n - 1, kind, n);
    }
    return 0;
}

/* The smallest s with s * s >= n. */
static uint32_t ceil_sqrt(uint32_t n)
{
    uint64_t s = (uint64_t)sqrt((double)n);
    while (s * s > n) {
        s--;
    }
    while (s * s < n) {
        s++;
    }
    return (uint32_t)s;
}

static int check_grid(struct ctx *c)
{
    struct sim_config *cfg = &c->cfg;
    uint32_t n = cfg->nodes.count, w = cfg->topology.width, h = cfg->topology.height;
    if (w == 0 && h == 0) {
        w = ceil_sqrt(n);
        h = n / w;
    } else if (w == 0) {
        w = n / h;
    } else if (h == 0) {
        h = n / w;
    }
    if ((uint64_t)w * h != n) {
        /* Hint: the most square factor pair of n, and the next square count. */
        uint32_t hh = ceil_sqrt(n);
        while (hh > 1 && (hh * hh > n || n % hh != 0)) {
            hh--;
        }
        uint64_t sq = (uint64_t)ceil_sqrt(n) * ceil_sqrt(n);
        return report(c, P4P_EINVAL,
                      BLAME(c, "topology.width", "topology.height", "nodes.count", "topology.kind"),
                      "grid %" PRIu32 "x%" PRIu32 " has %" PRIu64
                      " nodes but nodes.count is %" PRIu32 " (hint: width %" PRIu32
                      " and height %" PRIu32 " fit, or nodes.count %" PRIu64
                      " with width and height left at 0)",
                      w, h, (uint64_t)w * h, n, n / hh, hh, sq);
    }
    cfg->topology.width = w;
    cfg->topology.height = h;
    return 0;
}

static int check_topology(struct ctx *c)
{
    const struct sim_config *cfg = &c->cfg;
    switch (cfg->topology.kind) {
    case SIM_TOPO_RANDOM_REGULAR: {
        int rc =
            check_per_count(c, "topology.degree", cfg->topology.degree, 1, false, "random_regular");
        if (rc == 0 && (uint64_t)cfg->nodes.count * cfg->topology.degree % 2 != 0) {
            rc = report(c, P4P_EINVAL, BLAME(c, "topology.degree", "nodes.count"),
                        "random_regular needs nodes.count * topology.degree to be even (%" PRIu32
                        " * %" PRIu32 " is odd)",
                        cfg->nodes.count, cfg->topology.degree);
        }
        return rc;
    }
    case SIM_TOPO_ERDOS_RENYI:
        return check_per_count(c, "topology.degree", cfg->topology.degree, 1, false, "erdos_renyi");
    case SIM_TOPO_WATTS_STROGATZ:
        return check_per_count(c, "topology.degree", cfg->topology.degree, 2, true,
                               "watts_strogatz");
    case SIM_TOPO_BARABASI_ALBERT:
        return check_per_count(c, "topology.m", cfg->topology.m, 1, false, "barabasi_albert");
    case SIM_TOPO_GRID:
        return check_grid(c);
    case SIM_TOPO_FILE:
        return check_topology_file(c);
    default:
        return 0;
    }
}

static int check_cross(struct ctx *c)
{
    const struct sim_config *cfg = &c->cfg;
    int rc = check_topology(c);
    if (rc != 0) {
        return rc;
    }
    if (cfg->workload.updates > 0 && cfg->workload.start_ns >= cfg->duration_ns) {
        char start[64], dur[64];
        format_uint(&fields[find_field("workload.start")], cfg->workload.start_ns, start,
                    sizeof start);
        format_uint(&fields[find_field("duration")], cfg->duration_ns, dur, sizeof dur);
        return report(c, P4P_EINVAL, BLAME(c, "workload.start", "duration"),
                      "workload.start %s must be before the end of the run (duration %s)", start,
                      dur);
    }
    /* Sessions add their header and tag to every frame (engine/session.h). */
    unsigned overhead =
        WORKLOAD_OVERHEAD_BYTES + (cfg->security.sessions ? SESSION_OVERHEAD_BYTES : 0);
    if ((uint64_t)cfg->workload.payload_bytes + overhead > cfg->link.mtu) {
        const struct origin *at = BLAME(c, "workload.payload", "link.mtu", "security.sessions");
        if (cfg->link.mtu < overhead) {
            return report(c, P4P_EINVAL, at,
                          "workload.payload %" PRIu32 "B does not fit: link.mtu %" PRIu32
                          "B is below the %uB frame overhead",
                          cfg->workload.payload_bytes, cfg->link.mtu, overhead);
        }
        return report(c, P4P_EINVAL, at,
                      "workload.payload %" PRIu32 "B does not fit: payload + %uB overhead must "
                      "be <= link.mtu %" PRIu32 "B, so at most %" PRIu32 "B",
                      cfg->workload.payload_bytes, overhead, cfg->link.mtu,
                      cfg->link.mtu - overhead);
    }
    if (cfg->link.latency_max_ns > 0 && cfg->link.latency_max_ns < cfg->link.latency_ns) {
        return report(c, P4P_EINVAL, BLAME(c, "link.latency_max", "link.latency"),
                      "link.latency_max must be at least link.latency (or 0 for fixed latency)");
    }
    if (cfg->link.ge_p > 0 && cfg->link.loss > 0) {
        return report(c, P4P_EINVAL, BLAME(c, "link.loss", "link.ge_p"),
                      "link.loss and link.ge_p are two loss models: set one of them");
    }
    if (cfg->link.ge_p > 0 && cfg->link.ge_r == 0) {
        return report(c, P4P_EINVAL, BLAME(c, "link.ge_r", "link.ge_p"),
                      "link.ge_r must be > 0: a Gilbert-Elliott channel that never leaves its "
                      "bad state loses everything");
    }
    if (cfg->churn.session_ns > 0 && cfg->churn.dist == SIM_CHURN_PARETO && cfg->churn.shape <= 1) {
        return report(c, P4P_EINVAL, BLAME(c, "churn.shape", "churn.distribution"),
                      "churn.shape must be > 1 for pareto (its mean is infinite otherwise)");
    }
    if (cfg->churn.session_ns > 0 && cfg->churn.offline_ns == 0) {
        return report(c, P4P_EINVAL, BLAME(c, "churn.offline", "churn.session"),
                      "churn.offline must be > 0 when churn.session is set");
    }
    if (cfg->partition.heal_ns > 0 && cfg->partition.heal_ns <= cfg->partition.at_ns) {
        return report(c, P4P_EINVAL, BLAME(c, "partition.heal", "partition.at"),
                      "partition.heal must be after partition.at");
    }
    if (cfg->churn.session_ns > 0 && cfg->nodes.app == SIM_APP_NULL) {
        return report(c, P4P_EINVAL, BLAME(c, "churn.session", "nodes.app"),
                      "churn needs an engine: use flood or gossip");
    }
    if (cfg->partition.at_ns > 0 && cfg->nodes.app == SIM_APP_NULL) {
        return report(c, P4P_EINVAL, BLAME(c, "partition.at", "nodes.app"),
                      "partitions need an engine: use flood or gossip");
    }
    int crashes = (cfg->crash.at_ns > 0 && cfg->crash.fraction > 0) || cfg->crash.rate_per_s > 0 ||
                  cfg->crash.every_writes > 0;
    if (crashes && cfg->storage.backend == SIM_STORAGE_NONE) {
        return report(c, P4P_EINVAL,
                      BLAME(c, "storage.backend", "crash.every_writes", "crash.rate",
                            "crash.fraction", "crash.at"),
                      "crashes need storage: set storage.backend to memory or sqlite (a node "
                      "restarts from its store)");
    }
    if (crashes && cfg->nodes.app == SIM_APP_NULL) {
        return report(c, P4P_EINVAL,
                      BLAME(c, "nodes.app", "crash.every_writes", "crash.rate", "crash.fraction"),
                      "the null application has no engine to crash; use flood or gossip");
    }
    if (cfg->blob.size_bytes > 0) {
        if (cfg->storage.backend == SIM_STORAGE_NONE) {
            return report(c, P4P_EINVAL, BLAME(c, "blob.size", "storage.backend"),
                          "blobs need storage: set storage.backend to memory or sqlite (chunks "
                          "live in the chunk store)");
        }
        if (cfg->blob.source >= cfg->nodes.count) {
            return report(c, P4P_EINVAL, BLAME(c, "blob.source"),
                          "blob.source %" PRIu32 " is not a node (nodes.count is %" PRIu32 ")",
                          cfg->blob.source, cfg->nodes.count);
        }
        if (cfg->blob.fetchers >= cfg->nodes.count) {
            return report(c, P4P_EINVAL, BLAME(c, "blob.fetchers"),
                          "blob.fetchers %" PRIu32 " must be below nodes.count %" PRIu32
                          " (0 means all other nodes)",
                          cfg->blob.fetchers, cfg->nodes.count);
        }
        if (cfg->blob.edit_bytes > cfg->blob.size_bytes ||
            (cfg->blob.edit_bytes > 0 && cfg->blob.edit_at_ns <= cfg->blob.at_ns)) {
            return report(c, P4P_EINVAL, BLAME(c, "blob.edit", "blob.edit_at"),
                          "blob.edit must be at most blob.size, and blob.edit_at after blob.at");
        }
    }
    if (cfg->storage.dir[0] != '\0' && cfg->storage.backend != SIM_STORAGE_SQLITE) {
        return report(c, P4P_EINVAL, BLAME(c, "storage.dir", "storage.backend"),
                      "storage.dir is for the sqlite backend only");
    }
    if (cfg->storage.backend != SIM_STORAGE_NONE && cfg->nodes.app == SIM_APP_NULL) {
        return report(c, P4P_EINVAL, BLAME(c, "storage.backend", "nodes.app"),
                      "the null application stores nothing; use flood or gossip with storage");
    }
    return 0;
}

static int validate(struct ctx *c)
{
    char msg[MSG_MAX];
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        int rc = check_range(&fields[i], &c->cfg, msg, sizeof msg);
        if (rc != 0) {
            return report(c, rc, &c->from[i], "%s", msg);
        }
    }
    return check_cross(c);
}

/* ---- Entry points ------------------------------------------------------------------------ */

/* Copies a file's base name without its extension into name: at most SIM_NAME_MAX - 1 bytes,
 * cut on a UTF-8 character boundary, control bytes replaced; "scenario" if nothing is left. */
static void name_from_path(const char *path, char name[SIM_NAME_MAX])
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot != NULL && dot != base) {
        n = (size_t)(dot - base);
    }
    if (n > SIM_NAME_MAX - 1) {
        n = SIM_NAME_MAX - 1;
        while (n > 0 && ((unsigned char)base[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    for (size_t i = 0; i < n; i++) {
        name[i] = is_control((unsigned char)base[i]) ? '_' : base[i];
    }
    name[n] = '\0';
    if (n == 0) {
        snprintf(name, SIM_NAME_MAX, "scenario");
    }
}

static int run(struct ctx *c, const char *default_name, const struct sim_override *ov,
               size_t ov_count, struct sim_config *out)
{
    sim_config_defaults(&c->cfg);
    if (default_name != NULL) {
        name_from_path(default_name, c->cfg.name);
    }
    int rc = parse_yaml(c);
    if (rc == 0 && ov_count > 0) {
        rc = ov != NULL ? apply_overrides(c, ov, ov_count)
                        : report(c, P4P_EINVAL, NULL, "overrides missing");
    }
    if (rc == 0) {
        rc = validate(c);
    }
    if (rc == 0) {
        memcpy(out, &c->cfg, sizeof *out);
    }
    return rc;
}

int sim_scenario_parse(const char *text, size_t len, const char *name, const char *base_dir,
                       const struct sim_override *ov, size_t ov_count, struct sim_config *out,
                       char *err, size_t errlen)
{
    struct ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s:1:1: out of memory", name ? name : "scenario");
        }
        return P4P_ENOMEM;
    }
    c->name = name != NULL ? name : "scenario";
    c->base_dir = base_dir != NULL ? base_dir : ".";
    c->text = text != NULL ? text : "";
    c->len = text != NULL ? len : 0;
    c->err = err;
    c->errlen = errlen;
    int rc = run(c, NULL, ov, ov_count, out);
    free(c);
    return rc;
}

/* The whole file, NUL-terminated, in *buf (caller frees). */
static int read_file(const char *path, char **buf, size_t *len, int *err_no)
{
    FILE *fp = fopen(path, "rb");
    char *data = NULL;
    size_t n = 0;
    int rc = 0;
    if (fp == NULL) {
        *err_no = errno;
        return P4P_EIO;
    }
    data = malloc(SIM_SCENARIO_MAX_BYTES + 2);
    if (data == NULL) {
        rc = P4P_ENOMEM;
        goto cleanup;
    }
    n = fread(data, 1, SIM_SCENARIO_MAX_BYTES + 1, fp);
    if (ferror(fp)) {
        *err_no = errno;
        rc = P4P_EIO;
        goto cleanup;
    }
    if (n > SIM_SCENARIO_MAX_BYTES) {
        rc = P4P_ETOOBIG;
        goto cleanup;
    }
    data[n] = '\0';
    *buf = data;
    *len = n;
    data = NULL;
cleanup:
    free(data);
    fclose(fp);
    return rc;
}

int sim_scenario_load(const char *path, const struct sim_override *ov, size_t ov_count,
                      struct sim_config *out, char *err, size_t errlen)
{
    struct ctx *c = NULL;
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    int err_no = 0;
    int rc;

    if (path == NULL) {
        path = "(null)";
    }
    c = calloc(1, sizeof *c);
    dir = malloc(strlen(path) + 2); /* room for "." when path is "" */
    if (c == NULL || dir == NULL) {
        rc = P4P_ENOMEM;
        if (err != NULL && errlen > 0) {
            snprintf(err, errlen, "%s:1:1: out of memory", path);
        }
        goto cleanup;
    }
    memcpy(dir, path, strlen(path) + 1);
    c->name = path;
    c->err = err;
    c->errlen = errlen;
    rc = read_file(path, &text, &len, &err_no);
    if (rc != 0) {
        if (rc == P4P_ETOOBIG) {
            report(c, rc, NULL, "the file is larger than %d bytes", SIM_SCENARIO_MAX_BYTES);
        } else if (rc == P4P_EIO) {
            report(c, rc, NULL, "cannot read the scenario file: %s", strerror(err_no));
        } else {
            report(c, rc, NULL, "out of memory");
        }
        goto cleanup;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    c->base_dir = dir;
    c->text = text;
    c->len = len;
    rc = run(c, path, ov, ov_count, out);
cleanup:
    free(text);
    free(dir);
    free(c);
    return rc;
}

/* ---- Output ------------------------------------------------------------------------------ */

void sim_config_each(const struct sim_config *cfg,
                     void (*cb)(void *ctx, const char *key, const char *value), void *ctx)
{
    char buf[SIM_PATH_MAX + 64];
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        format_value(&fields[i], cfg, buf, sizeof buf);
        cb(ctx, fields[i].key, buf);
    }
}

/* An output buffer with snprintf semantics: counts everything, stores what fits. */
struct sbuf {
    char *p;
    size_t cap, len;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->cap > 0 && b->len < b->cap - 1) {
        size_t room = b->cap - 1 - b->len;
        memcpy(b->p + b->len, s, n < room ? n : room);
    }
    b->len += n;
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_json_string(struct sbuf *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            sb_put(b, esc, 2);
        } else if (is_control(ch)) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, s + i, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* How many leading sections two dotted keys share ("link.loss", "link.mtu" -> 1). */
static size_t common_sections(const char *a, const char *b)
{
    size_t n = 0, i = 0;
    for (;;) {
        while (a[i] != '\0' && a[i] == b[i] && a[i] != '.') {
            i++;
        }
        if (a[i] != '.' || b[i] != '.') {
            return n;
        }
        n++;
        i++;
    }
}

static size_t section_count(const char *key)
{
    size_t n = 0;
    for (; *key != '\0'; key++) {
        n += *key == '.';
    }
    return n;
}

/* The i-th dot-separated part of key. */
static const char *key_part(const char *key, size_t i, size_t *len)
{
    for (; i > 0; i--) {
        key = strchr(key, '.') + 1;
    }
    const char *dot = strchr(key, '.');
    *len = dot != NULL ? (size_t)(dot - key) : strlen(key);
    return key;
}

size_t sim_config_json(const struct sim_config *cfg, char *out, size_t cap)
{
    struct sbuf b = {out, cap, 0};
    char value[SIM_PATH_MAX + 64];
    const char *prev = "";
    bool need_comma = false;
    sb_str(&b, "{");
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        const struct field *f = &fields[i];
        size_t depth = section_count(f->key), shared = common_sections(prev, f->key);
        for (size_t d = section_count(prev); d > shared; d--) {
            sb_str(&b, "}");
            need_comma = true;
        }
        for (size_t d = shared; d <= depth; d++) {
            size_t plen;
            const char *part = key_part(f->key, d, &plen);
            if (need_comma) {
                sb_str(&b, ",");
            }
            sb_json_string(&b, part, plen);
            sb_str(&b, d < depth ? ":{" : ":");
            need_comma = false;
        }
        format_value(f, cfg, value, sizeof value);
        if (is_real_type(f->type) && !isfinite(get_real(cfg, f))) {
            sb_str(&b, "null"); /* only in a config that did not come from the parser */
        } else if (types[f->type].json_number || f->type == T_BOOL) {
            sb_str(&b, value);
        } else {
            sb_json_string(&b, value, strlen(value));
        }
        need_comma = true;
        prev = f->key;
    }
    for (size_t d = section_count(prev); d > 0; d--) {
        sb_str(&b, "}");
    }
    sb_str(&b, "}");
    if (cap > 0) {
        b.p[b.len < cap ? b.len : cap - 1] = '\0';
    }
    return b.len;
}
