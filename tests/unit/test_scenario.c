/*
 * test_scenario.c — unit tests for sim/scenario.c: defaults, every value syntax, exact error
 * messages with line and column, --set overrides, the file topology, the key-list round trip,
 * JSON output, and garbage input that must fail cleanly. Run from the repository root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scenario.h"

#define GRAPH_1000 "../shared/data/bench/graph-1000.txt"

static char err[1024];

static int parse_ov(const char *yaml, const struct sim_override *ov, size_t n,
                    struct sim_config *cfg)
{
    err[0] = '\0';
    return sim_scenario_parse(yaml, strlen(yaml), "t.yaml", ".", ov, n, cfg, err, sizeof err);
}

static int parse(const char *yaml, struct sim_config *cfg)
{
    return parse_ov(yaml, NULL, 0, cfg);
}

static void expect_ok(const char *yaml, struct sim_config *cfg)
{
    int rc = parse(yaml, cfg);
    if (rc != 0) {
        print_error("unexpected error: %s\n", err);
    }
    assert_int_equal(rc, 0);
}

static void expect_error_ov(const char *yaml, const struct sim_override *ov, size_t n, int code,
                            const char *message)
{
    struct sim_config cfg;
    memset(&cfg, 0xAB, sizeof cfg);
    int rc = parse_ov(yaml, ov, n, &cfg);
    assert_string_equal(err, message);
    assert_int_equal(rc, code);
    /* The output is written only on success. */
    for (size_t i = 0; i < sizeof cfg; i++) {
        assert_int_equal(((unsigned char *)&cfg)[i], 0xAB);
    }
}

static void expect_error(const char *yaml, int code, const char *message)
{
    expect_error_ov(yaml, NULL, 0, code, message);
}

/* One key in a section: "SECTION:\n  KEY: VALUE\n". */
static int parse_one(const char *section, const char *key, const char *value,
                     struct sim_config *cfg)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%s:\n  %s: %s\n", section, key, value);
    return parse(yaml, cfg);
}

/* ---- Defaults and the shipped scenario --------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct sim_config c;
    sim_config_defaults(&c);
    assert_string_equal(c.name, "scenario");
    assert_int_equal(c.seed, 1);
    assert_int_equal(c.duration_ns, 300000000000ull);
    assert_int_equal(c.nodes.count, 100);
    assert_int_equal(c.nodes.app, SIM_APP_GOSSIP);
    assert_int_equal(c.topology.kind, SIM_TOPO_RANDOM_GEOMETRIC);
    assert_int_equal(c.topology.degree, 8);
    assert_true(c.topology.p == 0.1);
    assert_int_equal(c.topology.m, 3);
    assert_true(c.topology.radius == 0.07);
    assert_int_equal(c.topology.width, 0);
    assert_int_equal(c.topology.height, 0);
    assert_int_equal(c.topology.torus, 0);
    assert_string_equal(c.topology.file, "");
    assert_int_equal(c.link.latency_ns, 10000000);
    assert_int_equal(c.link.jitter_ns, 0);
    assert_int_equal(c.link.bandwidth_bps, 0);
    assert_int_equal(c.link.queue_bytes, 0);
    assert_true(c.link.loss == 0.0);
    assert_int_equal(c.link.mtu, 1200);
    assert_int_equal(c.gossip.interval_ns, 1000000000);
    assert_int_equal(c.gossip.fanout, 3);
    assert_int_equal(c.gossip.digest, 32);
    assert_int_equal(c.gossip.seen, 4096);
    assert_int_equal(c.gossip.store, 256);
    assert_int_equal(c.workload.updates, 100);
    assert_true(c.workload.rate_per_s == 1.0);
    assert_int_equal(c.workload.start_ns, 10000000000ull);
    assert_int_equal(c.workload.payload_bytes, 64);
    assert_int_equal(c.metrics.sample_ns, 1000000000);
    assert_int_equal(c.metrics.deliveries, 1);
}

static void test_empty_documents_are_defaults(void **state)
{
    (void)state;
    const char *texts[] = {"", "# nothing here\n", "---\n", "---\n...\n", "~\n"};
    struct sim_config want, got;
    sim_config_defaults(&want);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        memset(&got, 0, sizeof got);
        expect_ok(texts[i], &got);
        assert_memory_equal(&got, &want, sizeof want);
    }
}

static void test_default_yaml_loads(void **state)
{
    (void)state;
    struct sim_config c;
    int rc = sim_scenario_load("scenarios/default.yaml", NULL, 0, &c, err, sizeof err);
    if (rc != 0) {
        print_error("%s\n", err);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(c.name, "default");
    assert_int_equal(c.seed, 1);
    assert_int_equal(c.duration_ns, 180000000000ull);
    assert_int_equal(c.nodes.count, 1000);
    assert_int_equal(c.nodes.app, SIM_APP_GOSSIP);
    assert_int_equal(c.topology.kind, SIM_TOPO_RANDOM_GEOMETRIC);
    assert_true(c.topology.radius == 0.07);
    assert_int_equal(c.link.latency_ns, 20000000);
    assert_int_equal(c.link.jitter_ns, 5000000);
    assert_int_equal(c.link.bandwidth_bps, 1000000);
    assert_int_equal(c.link.queue_bytes, 65536);
    assert_true(c.link.loss == 0.05);
    assert_int_equal(c.link.mtu, 1200);
    assert_int_equal(c.gossip.interval_ns, 1000000000);
    assert_int_equal(c.gossip.fanout, 3);
    assert_int_equal(c.gossip.digest, 32);
    assert_int_equal(c.gossip.seen, 4096);
    assert_int_equal(c.gossip.store, 256);
    assert_int_equal(c.workload.updates, 300);
    assert_true(c.workload.rate_per_s == 2.0);
    assert_int_equal(c.workload.start_ns, 10000000000ull);
    assert_int_equal(c.workload.payload_bytes, 64);
    assert_int_equal(c.metrics.sample_ns, 1000000000);
    assert_int_equal(c.metrics.deliveries, 1);
}

/* ---- Value syntax ------------------------------------------------------------------------ */

static void test_duration_units(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t ns;
    } cases[] = {
        {"0", 0},
        {"1ns", 1},
        {"5us", 5000},
        {"250ms", 250000000},
        {"90s", 90000000000ull},
        {"1.5s", 1500000000},
        {"2min", 120000000000ull},
        {"6h", 21600000000000ull},
        {"1d", 86400000000000ull},
        {"0.5ms", 500000},
        {"1.000s", 1000000000},
        {"0.000000001s", 1},
        {"0.25min", 15000000000ull},
        {"\"250ms\"", 250000000},
        {"18446744073709551615ns", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sim_config c;
        assert_int_equal(parse_one("link", "latency", cases[i].text, &c), 0);
        assert_int_equal(c.link.latency_ns, cases[i].ns);
    }
}

static void test_duration_errors(void **state)
{
    (void)state;
    expect_error("link:\n  latency: 10xs\n", P4P_EPARSE,
                 "t.yaml:2:12: link.latency: expected a duration such as 90s, 250ms or 1.5h "
                 "(units ns us ms s min h d), got '10xs'");
    expect_error("link:\n  latency: 10\n", P4P_EPARSE,
                 "t.yaml:2:12: link.latency: expected a duration such as 90s, 250ms or 1.5h "
                 "(units ns us ms s min h d), got '10'");
    expect_error("link:\n  latency: 1.5ns\n", P4P_EINVAL,
                 "t.yaml:2:12: link.latency: '1.5ns' is not a whole number of nanoseconds");
    expect_error("link:\n  latency: 213504d\n", P4P_EINVAL,
                 "t.yaml:2:12: link.latency: '213504d' is too large (must be in "
                 "0..18446744073709551615ns)");
    struct sim_config c;
    const char *bad[] = {"1 s", "-1s", "1.s", ".5s", "1e3ms", "1S", "s", "1.5.s", "0x10s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_one("link", "latency", bad[i], &c), P4P_EPARSE);
    }
    expect_error("duration: 0\n", P4P_EINVAL, "t.yaml:1:11: duration: 0 must be > 0");
}

static void test_size_units(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint32_t bytes;
    } cases[] = {
        {"0", 0},
        {"0B", 0},
        {"1200", 1200},
        {"1200B", 1200},
        {"2KB", 2000},
        {"64KiB", 65536},
        {"1MB", 1000000},
        {"1MiB", 1048576},
        {"1.5KiB", 1536},
        {"0.5KB", 500},
        {"4294967295B", 4294967295u},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sim_config c;
        assert_int_equal(parse_one("link", "queue", cases[i].text, &c), 0);
        assert_int_equal(c.link.queue_bytes, cases[i].bytes);
    }
    expect_error("link:\n  queue: 0.5B\n", P4P_EINVAL,
                 "t.yaml:2:10: link.queue: '0.5B' is not a whole number of bytes");
    expect_error("link:\n  queue: 64kib\n", P4P_EPARSE,
                 "t.yaml:2:10: link.queue: expected a size such as 1200B, 64KiB or 1.5MB (units B "
                 "KB KiB MB MiB), got '64kib'");
    expect_error("link:\n  queue: 5000MiB\n", P4P_EINVAL,
                 "t.yaml:2:10: link.queue: '5000MiB' is too large (must be in 0B..4294967295B)");
    expect_error("link:\n  mtu: 50\n", P4P_EINVAL,
                 "t.yaml:2:8: link.mtu: 50B must be in 64B..65507B");
    struct sim_config c;
    assert_int_equal(parse_one("link", "queue", "64 KiB", &c), P4P_EPARSE);
    assert_int_equal(parse_one("link", "queue", "1.5", &c), P4P_EPARSE);
}

static void test_bitrate_units(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bps;
    } cases[] = {
        {"0", 0},           {"1000bps", 1000},    {"56kbps", 56000},
        {"1Mbps", 1000000}, {"1.5Mbps", 1500000}, {"10Gbps", 10000000000ull},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sim_config c;
        assert_int_equal(parse_one("link", "bandwidth", cases[i].text, &c), 0);
        assert_int_equal(c.link.bandwidth_bps, cases[i].bps);
    }
    expect_error("link:\n  bandwidth: 999bps\n", P4P_EINVAL,
                 "t.yaml:2:14: link.bandwidth: 999bps must be 0 (unlimited) or >= 1000bps");
    expect_error("link:\n  bandwidth: 1Mbit\n", P4P_EPARSE,
                 "t.yaml:2:14: link.bandwidth: expected a bit rate such as 1.5Mbps, or 0 for "
                 "unlimited (units bps kbps Mbps Gbps), got '1Mbit'");
    struct sim_config c;
    assert_int_equal(parse_one("link", "bandwidth", "1000", &c), P4P_EPARSE);
    assert_int_equal(parse_one("link", "bandwidth", "0.5bps", &c), P4P_EINVAL);
}

static void test_probabilities(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double p;
    } cases[] = {
        {"0", 0},        {"0.05", 0.05},  {"5%", 0.05},     {"12.5%", 0.125},
        {"0.1%", 0.001}, {"1e-3", 0.001}, {"\"7%\"", 0.07}, {"0%", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sim_config c;
        assert_int_equal(parse_one("link", "loss", cases[i].text, &c), 0);
        assert_true(c.link.loss == cases[i].p); /* exactly: "5%" is read as 5e-2 */
    }
    expect_error("link:\n  loss: 1\n", P4P_EINVAL, "t.yaml:2:9: link.loss: 1 must be in [0, 1)");
    expect_error("link:\n  loss: 100%\n", P4P_EINVAL, "t.yaml:2:9: link.loss: 1 must be in [0, 1)");
    expect_error("link:\n  loss: -0.1\n", P4P_EINVAL,
                 "t.yaml:2:9: link.loss: -0.1 must be in [0, 1)");
    expect_error("link:\n  loss: five\n", P4P_EPARSE,
                 "t.yaml:2:9: link.loss: expected a probability such as 0.05 or 5%, got 'five'");
    expect_error("link:\n  loss: 1e999\n", P4P_EINVAL,
                 "t.yaml:2:9: link.loss: '1e999' is too large (must be in [0, 1))");
    /* p may be 1 (closed range), radius may not be 0 (open). */
    struct sim_config c;
    assert_int_equal(parse_one("topology", "p", "1", &c), 0);
    assert_true(c.topology.p == 1.0);
    const char *bad[] = {"5 %", "nan", "inf", "0x1p-3", "1e-2%", ".", "5%%"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_one("link", "loss", bad[i], &c), P4P_EPARSE);
    }
    expect_error("topology:\n  radius: 0\n", P4P_EINVAL,
                 "t.yaml:2:11: topology.radius: 0 must be in (0, 1.5]");
}

static void test_rates(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double per_s;
    } cases[] = {
        {"2/s", 2},     {"0.5/s", 0.5},       {"1/min", 1.0 / 60}, {"10/h", 10.0 / 3600},
        {"3/ms", 3000}, {"1/d", 1.0 / 86400}, {"2e3/us", 2e9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sim_config c;
        assert_int_equal(parse_one("workload", "rate", cases[i].text, &c), 0);
        assert_true(c.workload.rate_per_s == cases[i].per_s);
    }
    expect_error("workload:\n  rate: 0/s\n", P4P_EINVAL,
                 "t.yaml:2:9: workload.rate: 0/s must be > 0");
    expect_error("workload:\n  rate: 2\n", P4P_EPARSE,
                 "t.yaml:2:9: workload.rate: expected a rate such as 2/s, 0.5/s or 10/h (units "
                 "ns us ms s min h d), got '2'");
    struct sim_config c;
    const char *bad[] = {"2/sec", "/s", "2/", "2 /s", "1/2/s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_one("workload", "rate", bad[i], &c), P4P_EPARSE);
    }
}

static void test_booleans_and_enums(void **state)
{
    (void)state;
    struct sim_config c;
    const char *yes[] = {"true", "yes"}, *no[] = {"false", "no"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(parse_one("metrics", "deliveries", no[i], &c), 0);
        assert_int_equal(c.metrics.deliveries, 0);
        assert_int_equal(parse_one("topology", "torus", yes[i], &c), 0);
        assert_int_equal(c.topology.torus, 1);
    }
    expect_error("metrics:\n  deliveries: maybe\n", P4P_EPARSE,
                 "t.yaml:2:15: metrics.deliveries: expected true or false (or yes or no), got "
                 "'maybe'");
    static const struct {
        const char *name;
        enum sim_topology_kind kind;
    } kinds[] = {
        {"random_regular", SIM_TOPO_RANDOM_REGULAR},
        {"erdos_renyi", SIM_TOPO_ERDOS_RENYI},
        {"barabasi_albert", SIM_TOPO_BARABASI_ALBERT},
        {"watts_strogatz", SIM_TOPO_WATTS_STROGATZ},
        {"random_geometric", SIM_TOPO_RANDOM_GEOMETRIC},
        {"grid", SIM_TOPO_GRID},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        assert_int_equal(parse_one("topology", "kind", kinds[i].name, &c), 0);
        assert_int_equal(c.topology.kind, kinds[i].kind);
    }
    assert_int_equal(parse_one("nodes", "app", "flood", &c), 0);
    assert_int_equal(c.nodes.app, SIM_APP_FLOOD);
    assert_int_equal(parse_one("nodes", "app", "null", &c), 0);
    assert_int_equal(c.nodes.app, SIM_APP_NULL);
    expect_error("nodes:\n  app: push\n", P4P_EPARSE,
                 "t.yaml:2:8: nodes.app: expected one of flood, gossip, null, got 'push'");
    expect_error("topology:\n  kind: ring\n", P4P_EPARSE,
                 "t.yaml:2:9: topology.kind: expected one of random_regular, erdos_renyi, "
                 "barabasi_albert, watts_strogatz, random_geometric, grid, file, got 'ring'");
}

/* Storage and crash keys, and the rules that tie them together. */
static void test_storage_and_crash(void **state)
{
    (void)state;
    struct sim_config c;
    expect_ok("storage:\n  backend: sqlite\n  dir: /tmp/x\ncrash:\n  rate: 2/h\n"
              "  at: 1min\n  fraction: 25%\n  every_writes: 100\n  downtime: 3s\n",
              &c);
    assert_int_equal(c.storage.backend, SIM_STORAGE_SQLITE);
    assert_string_equal(c.storage.dir, "/tmp/x");
    assert_true(fabs(c.crash.rate_per_s - 2.0 / 3600) < 1e-12);
    assert_int_equal(c.crash.at_ns, 60000000000ull);
    assert_true(c.crash.fraction == 0.25);
    assert_int_equal(c.crash.every_writes, 100);
    assert_int_equal(c.crash.downtime_ns, 3000000000ull);
    expect_error("crash:\n  rate: 1/h\n", P4P_EINVAL,
                 "t.yaml:2:9: crashes need storage: set storage.backend to memory or sqlite (a "
                 "node restarts from its store)");
    expect_error("crash:\n  every_writes: 5\n", P4P_EINVAL,
                 "t.yaml:2:17: crashes need storage: set storage.backend to memory or sqlite "
                 "(a node restarts from its store)");
    expect_error("storage:\n  dir: d\n", P4P_EINVAL,
                 "t.yaml:2:8: storage.dir is for the sqlite backend only");
    expect_error("nodes:\n  app: null\nstorage:\n  backend: memory\n", P4P_EINVAL,
                 "t.yaml:4:12: the null application stores nothing; use flood or gossip with "
                 "storage");
    expect_error("blob:\n  size: 1MiB\n", P4P_EINVAL,
                 "t.yaml:2:9: blobs need storage: set storage.backend to memory or sqlite (chunks "
                 "live in the chunk store)");
    expect_error("nodes:\n  count: 4\nstorage:\n  backend: memory\nblob:\n  size: 1MiB\n"
                 "  source: 7\n",
                 P4P_EINVAL, "t.yaml:7:11: blob.source 7 is not a node (nodes.count is 4)");
    expect_ok("storage: {backend: memory}\nblob: {size: 2MB, edit: 10B, edit_at: 1min}\n"
              "security: {sessions: true}\n",
              &c);
    assert_int_equal(c.blob.size_bytes, 2000000);
    assert_int_equal(c.blob.edit_at_ns, 60000000000ull);
    assert_int_equal(c.security.sessions, 1);
    expect_error("link:\n  loss: 1%\n  ge_p: 0.1\n", P4P_EINVAL,
                 "t.yaml:2:9: link.loss and link.ge_p are two loss models: set one of them");
    expect_error("link:\n  ge_p: 0.1\n  ge_r: 0\n", P4P_EINVAL,
                 "t.yaml:3:9: link.ge_r must be > 0: a Gilbert-Elliott channel that never leaves "
                 "its bad state loses everything");
    expect_error("storage:\n  backend: disk\n", P4P_EPARSE,
                 "t.yaml:2:12: storage.backend: expected one of none, memory, sqlite, got 'disk'");
    expect_error("crash:\n  fraction: 2\n", P4P_EINVAL,
                 "t.yaml:2:13: crash.fraction: 2 must be in [0, 1]");
}

static void test_integers_reject_garbage(void **state)
{
    (void)state;
    expect_error("nodes:\n  count: 10xs\n", P4P_EPARSE,
                 "t.yaml:2:10: nodes.count: expected a whole number such as 42, got '10xs'");
    struct sim_config c;
    const char *bad[] = {"1e3", "0x10", "+5", "-5", "10.0", "1_000", "ten", "10 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[64];
        snprintf(yaml, sizeof yaml, "nodes:\n  count: \"%s\"\n", bad[i]);
        assert_int_equal(parse(yaml, &c), P4P_EPARSE);
    }
    expect_error("seed: 18446744073709551616\n", P4P_EINVAL,
                 "t.yaml:1:7: seed: '18446744073709551616' is too large (must be in "
                 "0..18446744073709551615)");
    expect_ok("seed: 18446744073709551615\n", &c);
    assert_true(c.seed == UINT64_MAX);
    expect_error("nodes:\n  count: 0\n", P4P_EINVAL,
                 "t.yaml:2:10: nodes.count: 0 must be in 1..10000000");
    expect_error("gossip:\n  fanout: 65\n", P4P_EINVAL,
                 "t.yaml:2:11: gossip.fanout: 65 must be in 0..64");
    expect_error("nodes:\n  count: 99999999999\n", P4P_EINVAL,
                 "t.yaml:2:10: nodes.count: '99999999999' is too large (must be in "
                 "1..10000000)");
}

static void test_names(void **state)
{
    (void)state;
    struct sim_config c;
    expect_ok("name: \"Lossy LoRa, 5%\"\n", &c);
    assert_string_equal(c.name, "Lossy LoRa, 5%");
    char yaml[128];
    snprintf(yaml, sizeof yaml, "name: %063d\n", 0);
    expect_ok(yaml, &c);
    assert_int_equal(strlen(c.name), 63);
    snprintf(yaml, sizeof yaml, "name: %064d\n", 0);
    expect_error(yaml, P4P_EINVAL,
                 "t.yaml:1:7: name: '00000000000000000000000000000000000000000000...' is longer "
                 "than 63 bytes");
    expect_error("name: \"a\\tb\"\n", P4P_EINVAL,
                 "t.yaml:1:7: name: control characters are not allowed");
    expect_error("name: \"a\\0b\"\n", P4P_EPARSE,
                 "t.yaml:1:7: name: the value contains a NUL character");
    expect_error("name:\n", P4P_EPARSE, "t.yaml:1:6: name: missing value");
    expect_error("seed: null\n", P4P_EPARSE,
                 "t.yaml:1:7: seed: expected a whole number such as 42, got 'null'");
    expect_error("name: ~\n", P4P_EPARSE, "t.yaml:1:7: name: missing value");
}

/* ---- Structure errors -------------------------------------------------------------------- */

static void test_unknown_key_position(void **state)
{
    (void)state;
    expect_error("name: x\n"
                 "nodes:\n"
                 "  count: 10\n"
                 "link:\n"
                 "  lossy: 0.1\n",
                 P4P_EPARSE, "t.yaml:5:3: unknown key 'link.lossy' (did you mean 'link.loss'?)");
    expect_error("seed: 1\ncolour: red\n", P4P_EPARSE, "t.yaml:2:1: unknown key 'colour'");
    expect_error("loss: 5%\n", P4P_EPARSE,
                 "t.yaml:1:1: unknown key 'loss' (did you mean 'link.loss'?)");
    expect_error("lnik:\n  loss: 5%\n", P4P_EPARSE,
                 "t.yaml:1:1: unknown key 'lnik' (did you mean 'link'?)");
    expect_error("nodes:\n  count: 10\n  weird: {a: 1}\n", P4P_EPARSE,
                 "t.yaml:3:3: unknown key 'nodes.weird'");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    expect_error("link:\n  loss: 0.1\n  mtu: 1200\n  loss: 0.2\n", P4P_EPARSE,
                 "t.yaml:4:3: duplicate key 'link.loss' (first set on line 2)");
    expect_error("link:\n  loss: 0.1\nseed: 2\nlink:\n  mtu: 1000\n", P4P_EPARSE,
                 "t.yaml:4:1: duplicate key 'link' (first set on line 1)");
    expect_error("seed: 1\nseed: 1\n", P4P_EPARSE,
                 "t.yaml:2:1: duplicate key 'seed' (first set on line 1)");
    /* The dotted and the nested spelling of one key are the same key. */
    expect_error("link.loss: 0.1\nlink:\n  loss: 0.2\n", P4P_EPARSE,
                 "t.yaml:3:3: duplicate key 'link.loss' (first set on line 1)");
}

static void test_dotted_keys_and_empty_sections(void **state)
{
    (void)state;
    struct sim_config c;
    expect_ok("link.loss: 5%\nnodes:\ngossip: ~\nlink:\n  mtu: 1400\n", &c);
    assert_true(c.link.loss == 0.05);
    assert_int_equal(c.link.mtu, 1400);
    assert_int_equal(c.nodes.count, 100);
    expect_ok("{nodes: {count: 64, app: flood}, topology: {kind: grid}}", &c);
    assert_int_equal(c.nodes.count, 64);
    assert_int_equal(c.topology.width, 8);
}

static void test_wrong_node_types(void **state)
{
    (void)state;
    expect_error("nodes:\n  count:\n    a: 1\n", P4P_EPARSE,
                 "t.yaml:3:5: nodes.count takes a single value, not a mapping");
    expect_error("seed: [1, 2]\n", P4P_EPARSE, "t.yaml:1:7: seed takes a single value, not a list");
    expect_error("nodes: 5\n", P4P_EPARSE,
                 "t.yaml:1:8: 'nodes' must be a mapping of keys such as 'count', not a single "
                 "value");
    expect_error("link:\n  - loss: 0.1\n", P4P_EPARSE,
                 "t.yaml:2:3: 'link' must be a mapping of keys such as 'latency', not a list");
    expect_error("- seed: 1\n", P4P_EPARSE,
                 "t.yaml:1:1: the top level must be a mapping of keys such as 'nodes:' and "
                 "'link:', not a list");
    expect_error("hello\n", P4P_EPARSE,
                 "t.yaml:1:1: the top level must be a mapping of keys such as 'nodes:' and "
                 "'link:', not a single value");
    expect_error("? [a]\n: 1\n", P4P_EPARSE, "t.yaml:1:3: a key must be a plain name, not a list");
}

static void test_anchors_aliases_tags(void **state)
{
    (void)state;
    expect_error("link:\n  latency: &l 10ms\n  jitter: *l\n", P4P_EPARSE,
                 "t.yaml:2:12: anchors and aliases are not supported; write the value out");
    expect_error("link:\n  jitter: *l\n", P4P_EPARSE,
                 "t.yaml:2:11: anchors and aliases are not supported; write the value out");
    expect_error("base: &b {loss: 1}\n", P4P_EPARSE, "t.yaml:1:1: unknown key 'base'");
    expect_error("link: &b\n  loss: 0.1\n", P4P_EPARSE,
                 "t.yaml:1:7: anchors and aliases are not supported; write the value out");
    expect_error("seed: !!int 5\n", P4P_EPARSE,
                 "t.yaml:1:7: tags are not supported; write the value out");
}

static void test_multiple_documents(void **state)
{
    (void)state;
    expect_error("seed: 1\n---\nseed: 2\n", P4P_EPARSE,
                 "t.yaml:2:1: only one YAML document is allowed per file");
    expect_error("---\nseed: 1\n...\n---\n", P4P_EPARSE,
                 "t.yaml:4:1: only one YAML document is allowed per file");
}

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    expect_error("link: {loss: 0.1\n", P4P_EPARSE,
                 "t.yaml:2:1: invalid YAML: did not find expected ',' or '}' (while parsing a "
                 "flow mapping that started on line 1)");
    expect_error("nodes:\n  count: 10\n app: flood\n", P4P_EPARSE,
                 "t.yaml:3:2: invalid YAML: did not find expected key (while parsing a block "
                 "mapping that started on line 1)");
    expect_error("nodes:\n\tcount: 10\n", P4P_EPARSE,
                 "t.yaml:2:1: invalid YAML: found character that cannot start any token (while "
                 "scanning for the next token that started on line 2)");
    static const char nul[] = "seed: 1\nname: a\0b\n";
    struct sim_config c;
    int rc = sim_scenario_parse(nul, sizeof nul - 1, "t.yaml", ".", NULL, 0, &c, err, sizeof err);
    assert_int_equal(rc, P4P_EPARSE);
    assert_string_equal(err, "t.yaml:2:8: invalid YAML: control characters are not allowed");
}

/* ---- Rules between keys ------------------------------------------------------------------ */

static void test_topology_rules(void **state)
{
    (void)state;
    expect_error("nodes:\n  count: 5\ntopology:\n  kind: random_regular\n  degree: 3\n", P4P_EINVAL,
                 "t.yaml:5:11: random_regular needs nodes.count * topology.degree to be even (5 "
                 "* 3 is odd)");
    expect_error("nodes:\n  count: 10\ntopology:\n  kind: random_regular\n  degree: 10\n",
                 P4P_EINVAL,
                 "t.yaml:5:11: topology.degree: 10 must be in 1..9 for random_regular with 10 "
                 "nodes");
    /* Degree left at its default (8): the count is blamed. */
    expect_error("nodes:\n  count: 1\ntopology:\n  kind: erdos_renyi\n", P4P_EINVAL,
                 "t.yaml:2:10: topology.kind erdos_renyi needs nodes.count >= 2");
    expect_error("topology:\n  kind: watts_strogatz\n  degree: 3\n", P4P_EINVAL,
                 "t.yaml:3:11: topology.degree: 3 must be even and in 2..99 for watts_strogatz "
                 "with 100 nodes");
    expect_error("topology:\n  kind: barabasi_albert\n  m: 0\n", P4P_EINVAL,
                 "t.yaml:3:6: topology.m: 0 must be in 1..99 for barabasi_albert with 100 nodes");
    /* Parameters of other kinds are not checked. */
    struct sim_config c;
    expect_ok("topology:\n  kind: random_geometric\n  degree: 0\n  m: 0\n", &c);
}

static void test_grid(void **state)
{
    (void)state;
    struct sim_config c;
    static const struct {
        const char *yaml;
        uint32_t w, h;
    } ok[] = {
        {"topology:\n  kind: grid\n", 10, 10},
        {"nodes:\n  count: 12\ntopology:\n  kind: grid\n", 4, 3},
        {"nodes:\n  count: 20\ntopology:\n  kind: grid\n  width: 5\n", 5, 4},
        {"nodes:\n  count: 20\ntopology:\n  kind: grid\n  height: 2\n", 10, 2},
        {"nodes:\n  count: 1\ntopology:\n  kind: grid\n", 1, 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        expect_ok(ok[i].yaml, &c);
        assert_int_equal(c.topology.width, ok[i].w);
        assert_int_equal(c.topology.height, ok[i].h);
    }
    expect_error("nodes:\n  count: 7\ntopology:\n  kind: grid\n", P4P_EINVAL,
                 "t.yaml:2:10: grid 3x2 has 6 nodes but nodes.count is 7 (hint: width 7 and "
                 "height 1 fit, or nodes.count 9 with width and height left at 0)");
    expect_error("nodes:\n  count: 99\ntopology:\n  kind: grid\n  width: 10\n  height: 10\n",
                 P4P_EINVAL,
                 "t.yaml:5:10: grid 10x10 has 100 nodes but nodes.count is 99 (hint: width 11 "
                 "and height 9 fit, or nodes.count 100 with width and height left at 0)");
}

static void test_workload_rules(void **state)
{
    (void)state;
    expect_error("duration: 5min\nworkload:\n  start: 300s\n", P4P_EINVAL,
                 "t.yaml:3:10: workload.start 5min must be before the end of the run (duration "
                 "5min)");
    expect_error("workload:\n  payload: 1100B\n", P4P_EINVAL,
                 "t.yaml:2:12: workload.payload 1100B does not fit: payload + 160B overhead must "
                 "be <= link.mtu 1200B, so at most 1040B");
    expect_error("link:\n  mtu: 100B\n", P4P_EINVAL,
                 "t.yaml:2:8: workload.payload 64B does not fit: link.mtu 100B is below the 160B "
                 "frame overhead");
    struct sim_config c;
    /* With nothing to publish, the start time is irrelevant. */
    expect_ok("duration: 5s\nworkload:\n  updates: 0\n", &c);
    assert_int_equal(c.workload.start_ns, 10000000000ull);
    expect_ok("workload:\n  payload: 1040B\n", &c);
    assert_int_equal(c.workload.payload_bytes, 1040);
}

/* ---- Overrides --------------------------------------------------------------------------- */

static void test_overrides_apply(void **state)
{
    (void)state;
    const struct sim_override ov[] = {
        {"link.loss", "0.1"},
        {"nodes.count", "49"},
        {"topology.kind", "grid"},
        {"seed", "7"},
        {"seed", "42"},
        {"link.bandwidth", "1.5Mbps"},
        {"name", "from command"},
    };
    struct sim_config c;
    int rc = sim_scenario_load("scenarios/default.yaml", ov, sizeof ov / sizeof ov[0], &c, err,
                               sizeof err);
    if (rc != 0) {
        print_error("%s\n", err);
    }
    assert_int_equal(rc, 0);
    assert_true(c.link.loss == 0.1);
    assert_int_equal(c.nodes.count, 49);
    assert_int_equal(c.topology.kind, SIM_TOPO_GRID);
    assert_int_equal(c.topology.width, 7);
    assert_int_equal(c.seed, 42);
    assert_int_equal(c.link.bandwidth_bps, 1500000);
    assert_string_equal(c.name, "from command");
    assert_int_equal(c.link.latency_ns, 20000000); /* untouched file value */
}

static void test_override_errors(void **state)
{
    (void)state;
    const struct sim_override unknown[] = {{"link.loss", "0.1"}, {"link.los", "0.2"}};
    expect_error_ov("", unknown, 2, P4P_EPARSE,
                    "--set:2:1: unknown key 'link.los' (did you mean 'link.loss'?)");
    const struct sim_override bad[] = {{"link.loss", "abc"}};
    expect_error_ov("", bad, 1, P4P_EPARSE,
                    "--set:1:11: link.loss: expected a probability such as 0.05 or 5%, got 'abc'");
    const struct sim_override section[] = {{"link", "x"}};
    expect_error_ov("", section, 1, P4P_EPARSE,
                    "--set:1:1: 'link' is a section; set one of its keys, such as 'link.latency'");
    const struct sim_override no_value[] = {{"seed", NULL}};
    expect_error_ov("", no_value, 1, P4P_EPARSE,
                    "--set:1:5: missing '=' and value (expected key=value)");
    const struct sim_override empty[] = {{"seed", ""}};
    expect_error_ov("", empty, 1, P4P_EPARSE, "--set:1:6: seed: missing value");
    const struct sim_override no_key[] = {{"", "1"}};
    expect_error_ov("", no_key, 1, P4P_EPARSE, "--set:1:1: missing key (expected key=value)");
    /* A range error caused by an override points at the override. */
    const struct sim_override fanout[] = {{"gossip.fanout", "65"}};
    expect_error_ov("gossip:\n  fanout: 4\n", fanout, 1, P4P_EINVAL,
                    "--set:1:15: gossip.fanout: 65 must be in 0..64");
    /* ...and a cross-key error blames the override that set the key. */
    const struct sim_override count[] = {{"nodes.count", "7"}};
    expect_error_ov("topology:\n  kind: grid\n", count, 1, P4P_EINVAL,
                    "--set:1:13: grid 3x2 has 6 nodes but nodes.count is 7 (hint: width 7 and "
                    "height 1 fit, or nodes.count 9 with width and height left at 0)");
}

static void test_overrides_before_validation(void **state)
{
    (void)state;
    /* Out of range in the file, fixed on the command line: fine. */
    const struct sim_override fix[] = {{"gossip.fanout", "4"}};
    struct sim_config c;
    assert_int_equal(parse_ov("gossip:\n  fanout: 100\n", fix, 1, &c), 0);
    assert_int_equal(c.gossip.fanout, 4);
    /* A syntax error in the file is still an error. */
    expect_error_ov("gossip:\n  fanout: lots\n", fix, 1, P4P_EPARSE,
                    "t.yaml:2:11: gossip.fanout: expected a whole number such as 42, got 'lots'");
}

/* ---- File topology ----------------------------------------------------------------------- */

static void test_file_topology(void **state)
{
    (void)state;
    struct sim_config c;
    expect_ok("topology:\n  kind: file\n  file: " GRAPH_1000 "\n", &c);
    assert_int_equal(c.nodes.count, 1000);
    assert_int_equal(c.topology.kind, SIM_TOPO_FILE);
    const char *tail = "/shared/data/bench/graph-1000.txt";
    size_t n = strlen(c.topology.file);
    assert_true(c.topology.file[0] == '/');
    assert_true(n > strlen(tail));
    assert_string_equal(c.topology.file + n - strlen(tail), tail);
    assert_int_equal(access(c.topology.file, R_OK), 0);

    /* Relative to the scenario's directory. */
    const char *yaml = "topology:\n  kind: file\n  file: ../../shared/data/bench/graph-1000.txt\n";
    assert_int_equal(
        sim_scenario_parse(yaml, strlen(yaml), "s.yaml", "scenarios", NULL, 0, &c, err, sizeof err),
        0);
    assert_int_equal(c.nodes.count, 1000);

    /* From --set: relative to the working directory. */
    const struct sim_override ov[] = {{"topology.kind", "file"}, {"topology.file", GRAPH_1000}};
    assert_int_equal(sim_scenario_parse("", 0, "s.yaml", "scenarios", ov, 2, &c, err, sizeof err),
                     0);
    assert_int_equal(c.nodes.count, 1000);

    expect_ok("nodes:\n  count: 1000\ntopology:\n  kind: file\n  file: " GRAPH_1000 "\n", &c);
}

static void test_file_topology_errors(void **state)
{
    (void)state;
    expect_error("nodes:\n  count: 500\ntopology:\n  kind: file\n  file: " GRAPH_1000 "\n",
                 P4P_EINVAL,
                 "t.yaml:2:10: nodes.count is 500 but topology file '" GRAPH_1000
                 "' has 1000 nodes (leave nodes.count out to take it from the file)");
    expect_error("topology:\n  kind: file\n  file: nope/graph.txt\n", P4P_EIO,
                 "t.yaml:3:9: topology.file: cannot open 'nope/graph.txt': No such file or "
                 "directory");
    expect_error("topology:\n  kind: file\n", P4P_EINVAL,
                 "t.yaml:2:9: topology.file is required when topology.kind is file");
    expect_error("topology:\n  kind: file\n  file: \"\"\n", P4P_EINVAL,
                 "t.yaml:2:9: topology.file is required when topology.kind is file");

    char dir[] = "/tmp/test_scenario.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], yaml[512], want[1024];
    snprintf(path, sizeof path, "%s/bad.txt", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("1000 8 4000\n0 1 5\n", fp);
    fclose(fp);
    snprintf(yaml, sizeof yaml, "topology:\n  kind: file\n  file: %s\n", path);
    snprintf(want, sizeof want,
             "t.yaml:3:9: topology.file: the first line of '%s' must be \"N D E SEED\" (four "
             "unsigned integers)",
             path);
    expect_error(yaml, P4P_EMALFORMED, want);
    snprintf(yaml, sizeof yaml, "topology:\n  kind: file\n  file: %s\n", dir);
    struct sim_config c;
    assert_int_equal(parse(yaml, &c), P4P_EIO);
    unlink(path);
    rmdir(dir);
}

/* ---- Loading files ----------------------------------------------------------------------- */

static void test_load_name_and_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_scenario.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], gpath[256];
    snprintf(path, sizeof path, "%s/my-run.v2.yaml", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("seed: 3\ntopology:\n  kind: file\n  file: g.txt\n", fp);
    fclose(fp);
    snprintf(gpath, sizeof gpath, "%s/g.txt", dir);
    fp = fopen(gpath, "w");
    assert_non_null(fp);
    fputs("2 1 1 9\r\n0 1 5\r\n", fp);
    fclose(fp);

    struct sim_config c;
    assert_int_equal(sim_scenario_load(path, NULL, 0, &c, err, sizeof err), 0);
    assert_string_equal(c.name, "my-run.v2"); /* base name, last extension dropped */
    assert_int_equal(c.seed, 3);
    assert_int_equal(c.nodes.count, 2); /* from the file next to the scenario */

    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("seed: 3\n\nnodes:\n  cnt: 5\n", fp);
    fclose(fp);
    char want[512];
    snprintf(want, sizeof want, "%s:4:3: unknown key 'nodes.cnt' (did you mean 'nodes.count'?)",
             path);
    assert_int_equal(sim_scenario_load(path, NULL, 0, &c, err, sizeof err), P4P_EPARSE);
    assert_string_equal(err, want);

    fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i <= SIM_SCENARIO_MAX_BYTES / 64; i++) {
        fprintf(fp, "# %61d\n", i);
    }
    fclose(fp);
    snprintf(want, sizeof want, "%s:1:1: the file is larger than %d bytes", path,
             SIM_SCENARIO_MAX_BYTES);
    assert_int_equal(sim_scenario_load(path, NULL, 0, &c, err, sizeof err), P4P_ETOOBIG);
    assert_string_equal(err, want);

    unlink(path);
    unlink(gpath);
    rmdir(dir);

    assert_int_equal(sim_scenario_load("no/such.yaml", NULL, 0, &c, err, sizeof err), P4P_EIO);
    assert_string_equal(
        err, "no/such.yaml:1:1: cannot read the scenario file: No such file or directory");
    assert_int_equal(sim_scenario_load("scenarios", NULL, 0, &c, err, sizeof err), P4P_EIO);
    assert_string_equal(err, "scenarios:1:1: cannot read the scenario file: Is a directory");
}

static void test_error_buffer_limits(void **state)
{
    (void)state;
    struct sim_config c;
    char small[12];
    memset(small, 'x', sizeof small);
    assert_int_equal(
        sim_scenario_parse("seed: x\n", 8, "t.yaml", ".", NULL, 0, &c, small, sizeof small),
        P4P_EPARSE);
    assert_string_equal(small, "t.yaml:1:7:");
    assert_int_equal(sim_scenario_parse("seed: x\n", 8, "t.yaml", ".", NULL, 0, &c, NULL, 0),
                     P4P_EPARSE);
    /* Not NUL-terminated input: only len bytes are read. */
    assert_int_equal(
        sim_scenario_parse("seed: 12345", 8, "t.yaml", ".", NULL, 0, &c, err, sizeof err), 0);
    assert_int_equal(c.seed, 12);
}

/* ---- Round trip and JSON ----------------------------------------------------------------- */

struct kv {
    char key[64][64];
    char value[64][600];
    size_t n;
};

static void collect(void *ctx, const char *key, const char *value)
{
    struct kv *kv = ctx;
    assert_true(kv->n < 64);
    snprintf(kv->key[kv->n], sizeof kv->key[0], "%s", key);
    snprintf(kv->value[kv->n], sizeof kv->value[0], "%s", value);
    kv->n++;
}

/* A nested YAML document from the key list, every value double-quoted. */
static void build_yaml(const struct kv *kv, char *out, size_t cap)
{
    size_t len = 0;
    char section[64] = "";
    for (size_t i = 0; i < kv->n; i++) {
        const char *key = kv->key[i], *dot = strchr(key, '.');
        if (dot != NULL) {
            if (strlen(section) != (size_t)(dot - key) ||
                strncmp(section, key, (size_t)(dot - key)) != 0) {
                snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
                len += (size_t)snprintf(out + len, cap - len, "%s:\n", section);
            }
            len += (size_t)snprintf(out + len, cap - len, "  %s: \"", dot + 1);
        } else {
            len += (size_t)snprintf(out + len, cap - len, "%s: \"", key);
        }
        for (const char *s = kv->value[i]; *s; s++) {
            if (*s == '"' || *s == '\\') {
                out[len++] = '\\';
            }
            out[len++] = *s;
        }
        len += (size_t)snprintf(out + len, cap - len, "\"\n");
        assert_true(len < cap);
    }
}

static void check_round_trip(const struct sim_config *orig)
{
    static struct kv a, b;
    static char yaml[16384];
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    sim_config_each(orig, collect, &a);
    build_yaml(&a, yaml, sizeof yaml);
    struct sim_config back;
    int rc = sim_scenario_parse(yaml, strlen(yaml), "rt.yaml", "/nonexistent", NULL, 0, &back, err,
                                sizeof err);
    if (rc != 0) {
        print_error("%s\n%s", err, yaml);
    }
    assert_int_equal(rc, 0);
    sim_config_each(&back, collect, &b);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_string_equal(a.key[i], b.key[i]);
        assert_string_equal(a.value[i], b.value[i]);
    }
    assert_memory_equal(orig, &back, sizeof back);

    /* The same strings work as --set values on an empty file. */
    struct sim_override ov[64];
    for (size_t i = 0; i < a.n; i++) {
        ov[i].key = a.key[i];
        ov[i].value = a.value[i];
    }
    assert_int_equal(parse_ov("", ov, a.n, &back), 0);
    assert_memory_equal(orig, &back, sizeof back);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct sim_config c;
    sim_config_defaults(&c);
    check_round_trip(&c);

    assert_int_equal(sim_scenario_load("scenarios/default.yaml", NULL, 0, &c, err, sizeof err), 0);
    check_round_trip(&c);

    expect_ok(
        "name: 'odd \"name\" \\\\ here'\nseed: 18446744073709551615\nduration: 90061001001001ns\n"
        "nodes: {count: 10, app: flood}\n"
        "topology: {kind: watts_strogatz, degree: 4, p: 0.3, radius: 1.5, torus: yes}\n"
        "link: {latency: 1.5s, jitter: 1us, bandwidth: 1.5Gbps, queue: 1.5KiB, loss: "
        "0.1%, mtu: 65507}\n"
        "workload: {rate: 1/min, start: 0, payload: 0, updates: 0}\n"
        "metrics: {sample: 1d, deliveries: no}\n",
        &c);
    check_round_trip(&c);

    expect_ok("topology:\n  kind: file\n  file: " GRAPH_1000 "\n", &c);
    check_round_trip(&c);

    static struct kv kv;
    memset(&kv, 0, sizeof kv);
    sim_config_defaults(&c);
    c.duration_ns = 90000000000ull;
    c.link.bandwidth_bps = 1500000;
    c.link.queue_bytes = 65536;
    c.workload.rate_per_s = 0.5;
    sim_config_each(&c, collect, &kv);
    assert_int_equal(kv.n, 61);
    assert_string_equal(kv.key[0], "name");
    assert_string_equal(kv.key[2], "duration");
    assert_string_equal(kv.value[2], "90s");
    assert_string_equal(kv.key[3], "nodes.count");
    assert_string_equal(kv.key[17], "link.bandwidth");
    assert_string_equal(kv.value[17], "1500000bps");
    assert_string_equal(kv.value[18], "65536B");
    assert_string_equal(kv.value[14], "10ms");
    assert_string_equal(kv.value[16], "0");
    assert_string_equal(kv.value[7], "0.1");
    assert_string_equal(kv.key[31], "workload.rate");
    assert_string_equal(kv.value[31], "0.5/s");
    assert_string_equal(kv.key[53], "storage.repair");
    assert_string_equal(kv.value[53], "false");
    assert_string_equal(kv.key[57], "crash.every_writes");
    assert_string_equal(kv.key[60], "metrics.deliveries");
    assert_string_equal(kv.value[60], "true");
}

/* A strict little JSON checker: objects, strings, numbers, true/false/null. */
static const char *json_value(const char *s, int depth);

static const char *json_ws(const char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
        s++;
    }
    return s;
}

static const char *json_string(const char *s)
{
    if (*s++ != '"') {
        return NULL;
    }
    while (*s != '"') {
        if ((unsigned char)*s < 0x20) {
            return NULL;
        }
        if (*s == '\\') {
            s++;
            if (*s == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0') {
                        return NULL;
                    }
                }
                s += 4;
            } else if (strchr("\"\\/bfnrt", *s) == NULL || *s == '\0') {
                return NULL;
            }
        }
        s++;
    }
    return s + 1;
}

static const char *json_number(const char *s)
{
    const char *start = s;
    if (*s == '-') {
        s++;
    }
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    } else {
        return NULL;
    }
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9')) {
            return NULL;
        }
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') {
            s++;
        }
        if (!(*s >= '0' && *s <= '9')) {
            return NULL;
        }
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    }
    return s > start ? s : NULL;
}

static const char *json_object(const char *s, int depth)
{
    s = json_ws(s + 1);
    if (*s == '}') {
        return s + 1;
    }
    for (;;) {
        s = json_string(json_ws(s));
        if (s == NULL) {
            return NULL;
        }
        s = json_ws(s);
        if (*s++ != ':') {
            return NULL;
        }
        s = json_value(s, depth + 1);
        if (s == NULL) {
            return NULL;
        }
        s = json_ws(s);
        if (*s == '}') {
            return s + 1;
        }
        if (*s++ != ',') {
            return NULL;
        }
    }
}

static const char *json_value(const char *s, int depth)
{
    s = json_ws(s);
    if (depth > 16) {
        return NULL;
    }
    if (*s == '{') {
        return json_object(s, depth);
    }
    if (*s == '"') {
        return json_string(s);
    }
    if (strncmp(s, "true", 4) == 0 || strncmp(s, "null", 4) == 0) {
        return s + 4;
    }
    if (strncmp(s, "false", 5) == 0) {
        return s + 5;
    }
    return json_number(s);
}

static bool json_valid(const char *s)
{
    const char *end = json_value(s, 0);
    return end != NULL && *json_ws(end) == '\0';
}

static void test_json(void **state)
{
    (void)state;
    struct sim_config c;
    char out[4096];
    sim_config_defaults(&c);
    size_t n = sim_config_json(&c, out, sizeof out);
    assert_int_equal(n, strlen(out));
    assert_true(json_valid(out));
    assert_string_equal(
        out,
        "{\"name\":\"scenario\",\"seed\":1,\"duration\":\"5min\","
        "\"nodes\":{\"count\":100,\"app\":\"gossip\"},"
        "\"topology\":{\"kind\":\"random_geometric\",\"degree\":8,\"p\":0.1,\"m\":3,"
        "\"radius\":0.07,\"width\":0,\"height\":0,\"torus\":false,\"file\":\"\"},"
        "\"link\":{\"latency\":\"10ms\",\"latency_max\":\"0\",\"jitter\":\"0\",\"bandwidth\":\"0\","
        "\"queue\":\"0B\","
        "\"loss\":0,\"ge_p\":0,\"ge_r\":0.5,\"ge_k\":1,\"ge_h\":0,\"mtu\":\"1200B\"},"
        "\"gossip\":{\"interval\":\"1s\",\"fanout\":3,\"digest\":32,\"seen\":4096,\"store\":256},"
        "\"workload\":{\"updates\":100,\"rate\":\"1/s\",\"start\":\"10s\",\"payload\":\"64B\"},"
        "\"churn\":{\"session\":\"0\",\"offline\":\"1min\",\"distribution\":\"exponential\","
        "\"shape\":1.5,\"diurnal\":0},"
        "\"partition\":{\"at\":\"0\",\"heal\":\"0\",\"fraction\":0.5},"
        "\"clock\":{\"skew\":\"0\",\"drift\":0},"
        "\"blob\":{\"size\":\"0B\",\"at\":\"10s\",\"source\":0,\"fetchers\":0,\"edit\":\"0B\","
        "\"edit_at\":\"0\"},"
        "\"security\":{\"sessions\":false},"
        "\"storage\":{\"backend\":\"none\",\"dir\":\"\",\"repair\":false},"
        "\"crash\":{\"at\":\"0\",\"fraction\":0,\"rate\":\"0/s\",\"every_writes\":0,"
        "\"downtime\":\"10s\"},"
        "\"metrics\":{\"sample\":\"1s\",\"deliveries\":true}}");

    /* snprintf semantics: the size needed whatever the capacity, output cut and terminated. */
    char small[10];
    assert_int_equal(sim_config_json(&c, small, sizeof small), n);
    assert_string_equal(small, "{\"name\":\"");
    assert_int_equal(sim_config_json(&c, NULL, 0), n);

    /* Strings are escaped; tiny and huge numbers stay valid JSON numbers. */
    expect_ok("name: 'say \"hi\" \\ there'\nlink:\n  loss: 1e-300\nworkload:\n  rate: 1e300/s\n",
              &c);
    n = sim_config_json(&c, out, sizeof out);
    assert_true(n < sizeof out);
    assert_true(json_valid(out));
    assert_non_null(strstr(out, "\"name\":\"say \\\"hi\\\" \\\\ there\""));
    assert_non_null(strstr(out, "\"loss\":1e-300"));
    assert_non_null(strstr(out, "\"rate\":\"1e+300/s\""));
}

/* ---- Robustness -------------------------------------------------------------------------- */

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Any input: no crash, 0 or a negative code, and then exactly one "f.yaml:L:C: ..." line. */
static void check_survives(const char *text, size_t len)
{
    struct sim_config c;
    char e[512];
    e[0] = '\0';
    int rc = sim_scenario_parse(text, len, "f.yaml", ".", NULL, 0, &c, e, sizeof e);
    assert_true(rc <= 0);
    if (rc < 0) {
        unsigned long line = 0, col = 0;
        int used = 0;
        assert_int_equal(sscanf(e, "f.yaml:%lu:%lu: %n", &line, &col, &used), 2);
        assert_true(line >= 1 && col >= 1 && used > 0 && e[used] != '\0');
        assert_null(strchr(e, '\n'));
    }
}

static void test_garbage_never_crashes(void **state)
{
    (void)state;
    FILE *fp = fopen("scenarios/default.yaml", "rb");
    assert_non_null(fp);
    static char text[16384];
    size_t len = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    assert_true(len > 100);
    for (size_t n = 0; n <= len; n++) {
        check_survives(text, n); /* every prefix */
    }
    uint64_t seed = 12345;
    static const char alphabet[] = "abcz019.:-_ \n\t\"'#&*!%|>[]{},?~/\\@`";
    static char buf[16384];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = lcg(&seed) % 300;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = lcg(&seed);
            buf[i] = (r & 3) == 0 ? (char)(r >> 8) : alphabet[(r >> 8) % (sizeof alphabet - 1)];
        }
        check_survives(buf, n);
    }
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(buf, text, len);
        int edits = 1 + (int)(lcg(&seed) % 4);
        for (int k = 0; k < edits; k++) {
            uint64_t r = lcg(&seed);
            size_t at = (size_t)(r % len);
            buf[at] = (r >> 40) & 1 ? alphabet[(r >> 20) % (sizeof alphabet - 1)] : (char)(r >> 24);
        }
        check_survives(buf, len);
    }
}

static void test_readme_documents_every_key(void **state)
{
    (void)state;
    FILE *fp = fopen("scenarios/README.md", "rb");
    assert_non_null(fp);
    static char text[65536];
    size_t len = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[len] = '\0';
    static struct kv kv;
    memset(&kv, 0, sizeof kv);
    struct sim_config c;
    sim_config_defaults(&c);
    sim_config_each(&c, collect, &kv);
    for (size_t i = 0; i < kv.n; i++) {
        char needle[80];
        snprintf(needle, sizeof needle, "`%s`", kv.key[i]);
        if (strstr(text, needle) == NULL) {
            print_error("scenarios/README.md does not mention %s\n", needle);
        }
        assert_non_null(strstr(text, needle));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_documents_are_defaults),
        cmocka_unit_test(test_default_yaml_loads),
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_errors),
        cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_bitrate_units),
        cmocka_unit_test(test_probabilities),
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_booleans_and_enums),
        cmocka_unit_test(test_storage_and_crash),
        cmocka_unit_test(test_integers_reject_garbage),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_unknown_key_position),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_dotted_keys_and_empty_sections),
        cmocka_unit_test(test_wrong_node_types),
        cmocka_unit_test(test_anchors_aliases_tags),
        cmocka_unit_test(test_multiple_documents),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_topology_rules),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_workload_rules),
        cmocka_unit_test(test_overrides_apply),
        cmocka_unit_test(test_override_errors),
        cmocka_unit_test(test_overrides_before_validation),
        cmocka_unit_test(test_file_topology),
        cmocka_unit_test(test_file_topology_errors),
        cmocka_unit_test(test_load_name_and_errors),
        cmocka_unit_test(test_error_buffer_limits),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_garbage_never_crashes),
        cmocka_unit_test(test_readme_documents_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
