/*
 * cmd_bench.c — `p4p bench flood GRAPH [--messages M] [--app null|engine] [--repeat R]
 * [--json] [--no-sigcache]`.
 *
 * The flood benchmark: node 0 originates M messages of 64 bytes, message m at m seconds;
 * every node forwards a message the first time it sees it to all neighbours but the one it
 * came from; links have the file's latency, no loss, unlimited bandwidth. `engine` runs the
 * real engine (signed, CBOR-encoded updates); `null` lets the simulator forward by itself, so
 * the two runs separate the cost of the simulator from the cost of the engine.
 * A connected graph gives M * (sum of degrees - (N - 1)) deliveries (frame arrivals); the
 * command fails if the count is anything else.
 * --repeat R runs it R times and reports the median run time (shared machines are noisy).
 * --no-sigcache makes every node verify every signature itself (the cost the shared cache
 * saves; the deliveries are the same).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "scenario.h"
#include "world.h"

#define REPEAT_MAX 100

struct bench_args {
    const char *graph;
    const char *app;
    uint32_t messages, repeat;
    int json, no_sigcache;
};

struct flood_result {
    uint32_t nodes;
    uint64_t deliveries, expected;
    double last_delivery_s, setup_s, wall_s, wall_min_s, bytes_per_node;
    long peak_rss_kb;
};

static int usage(void)
{
    fputs("usage: p4p bench flood GRAPH [--messages M] [--app null|engine] [--repeat R]"
          " [--json] [--no-sigcache]\n",
          stderr);
    return CLI_EXIT_USAGE;
}

static int flood_config(const struct bench_args *a, struct sim_config *cfg)
{
    char duration[32];
    snprintf(duration, sizeof(duration), "%us", a->messages + 600);
    const struct sim_override ov[] = {
        {"topology.kind", "file"},
        {"topology.file", a->graph},
        {"nodes.app", strcmp(a->app, "engine") == 0 ? "flood" : "null"},
        {"duration", duration},
        {"workload.updates", "0"},
        {"metrics.sample", duration},
        {"metrics.deliveries", "false"},
        {"link.mtu", "1200"},
        {"link.loss", "0"},
        {"link.jitter", "0"},
        {"link.bandwidth", "0"},
    };
    static const char text[] = "name: flood\n";
    char err[1024];
    if (sim_scenario_parse(text, sizeof(text) - 1, "bench", ".", ov, sizeof(ov) / sizeof(ov[0]),
                           cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "p4p bench: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* One flood; fills r (wall_s is this run's). */
static int flood_once(const struct bench_args *a, const struct sim_config *cfg,
                      struct flood_result *r)
{
    char err[1024];
    double t0 = cli_wall_s();
    struct sim_world *w = NULL;
    struct sim_world_opts wo = {.no_sigcache = a->no_sigcache};
    if (sim_world_create(cfg, &wo, &w, err, sizeof(err)) != 0) {
        fprintf(stderr, "p4p bench: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    for (uint32_t m = 0; m < a->messages; m++) {
        sim_world_publish_at(w, 0, (uint64_t)m * 1000000000ull);
    }
    r->bytes_per_node = sim_world_bytes_per_node(w);
    double t1 = cli_wall_s();
    int rc = sim_world_run(w, cfg->duration_ns, NULL, NULL);
    double t2 = cli_wall_s();
    const struct sim_graph *g = sim_world_graph(w);
    const struct sim_counters *c = sim_world_counters(w);
    r->nodes = g->n;
    r->deliveries = c->arrivals;
    r->expected = (uint64_t)a->messages * (2 * g->edges - (g->n - 1));
    r->last_delivery_s = (double)c->last_arrival_ns / 1e9;
    r->setup_s = t1 - t0;
    r->wall_s = t2 - t1;
    sim_world_destroy(w);
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Runs the flood a->repeat times; the result is the last run's with the median wall time. */
static int flood(const struct bench_args *a, struct flood_result *r)
{
    struct sim_config cfg;
    int rc = flood_config(a, &cfg);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (cli_sodium_init_seeded(cfg.seed) != 0) {
        return CLI_EXIT_FAIL;
    }
    double walls[REPEAT_MAX];
    for (uint32_t i = 0; i < a->repeat; i++) {
        rc = flood_once(a, &cfg, r);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        walls[i] = r->wall_s;
    }
    qsort(walls, a->repeat, sizeof(walls[0]), cmp_double);
    r->wall_s = walls[a->repeat / 2];
    r->wall_min_s = walls[0];
    r->peak_rss_kb = cli_peak_rss_kb();
    return CLI_EXIT_OK;
}

/* A JSON string literal (the graph path is the user's). */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void report(const struct bench_args *a, const struct flood_result *r)
{
    double per_s = r->wall_s > 0 ? (double)r->deliveries / r->wall_s : 0;
    if (a->json) {
        printf("{\"graph\":");
        json_string(a->graph);
        printf(",\"app\":\"%s\",\"nodes\":%u,\"messages\":%u,\"runs\":%u,"
               "\"deliveries\":%llu,\"expected_deliveries\":%llu,\"last_delivery_s\":%.6f,"
               "\"setup_s\":%.3f,\"wall_s\":%.3f,\"wall_min_s\":%.3f,\"deliveries_per_s\":%.0f,"
               "\"bytes_per_node\":%.0f,\"peak_rss_kb\":%ld}\n",
               a->app, r->nodes, a->messages, a->repeat, (unsigned long long)r->deliveries,
               (unsigned long long)r->expected, r->last_delivery_s, r->setup_s, r->wall_s,
               r->wall_min_s, per_s, r->bytes_per_node, r->peak_rss_kb);
        return;
    }
    printf("flood %-40s app %-6s nodes %7u  deliveries %9llu (expected %llu)  last %.3f s  "
           "setup %.2f s  wall %.2f s%s  %.2fM deliveries/s  %.0f B/node  peak %ld KiB\n",
           a->graph, a->app, r->nodes, (unsigned long long)r->deliveries,
           (unsigned long long)r->expected, r->last_delivery_s, r->setup_s, r->wall_s,
           a->repeat > 1 ? " (median)" : "", per_s / 1e6, r->bytes_per_node, r->peak_rss_kb);
}

static int parse_count(const char *opt, const char *text, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    unsigned long v = strtoul(text, &end, 10);
    if (end == text || *end != '\0' || v == 0 || v > max || text[0] == '-') {
        fprintf(stderr, "p4p bench: %s takes 1..%u\n", opt, max);
        return CLI_EXIT_USAGE;
    }
    *out = (uint32_t)v;
    return CLI_EXIT_OK;
}

static int parse_args(int argc, char **argv, struct bench_args *a)
{
    static const struct option opts[] = {
        {"messages", required_argument, NULL, 'm'}, {"app", required_argument, NULL, 'a'},
        {"repeat", required_argument, NULL, 'r'},   {"json", no_argument, NULL, 'j'},
        {"no-sigcache", no_argument, NULL, 'n'},    {NULL, 0, NULL, 0},
    };
    *a = (struct bench_args){.app = "engine", .messages = 10, .repeat = 1};
    if (argc < 3 || strcmp(argv[1], "flood") != 0) {
        return usage();
    }
    optind = 2; /* argv[0] = "bench", argv[1] = "flood" */
    int c, rc = CLI_EXIT_OK;
    while (rc == CLI_EXIT_OK && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'm') {
            rc = parse_count("--messages", optarg, 1000000, &a->messages);
        } else if (c == 'r') {
            rc = parse_count("--repeat", optarg, REPEAT_MAX, &a->repeat);
        } else if (c == 'a' && (strcmp(optarg, "null") == 0 || strcmp(optarg, "engine") == 0)) {
            a->app = optarg;
        } else if (c == 'j') {
            a->json = 1;
        } else if (c == 'n') {
            a->no_sigcache = 1;
        } else {
            rc = usage();
        }
    }
    if (rc == CLI_EXIT_OK && optind != argc - 1) {
        rc = usage();
    }
    a->graph = rc == CLI_EXIT_OK ? argv[optind] : NULL;
    return rc;
}

int cli_bench(int argc, char **argv)
{
    struct bench_args a;
    struct flood_result r = {0};
    int rc = parse_args(argc, argv, &a);
    rc = rc == CLI_EXIT_OK ? flood(&a, &r) : rc;
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    report(&a, &r);
    return r.deliveries == r.expected ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
