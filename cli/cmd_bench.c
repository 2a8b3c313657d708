/*
 * cmd_bench.c — `p4p bench flood GRAPH [--messages M] [--app null|engine] [--json]`.
 *
 * The flood benchmark: node 0 originates M messages of 64 bytes, message m at m seconds;
 * every node forwards a message the first time it sees it to all neighbours but the one it
 * came from; links have the file's latency, no loss, unlimited bandwidth. `engine` runs the
 * real engine (signed, CBOR-encoded updates); `null` lets the simulator forward by itself, so
 * the two runs separate the cost of the simulator from the cost of the engine.
 * A connected graph gives M * (sum of degrees - (N - 1)) deliveries (frame arrivals).
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

static int usage(void)
{
    fputs("usage: p4p bench flood GRAPH [--messages M] [--app null|engine] [--json]"
          " [--no-sigcache]\n",
          stderr);
    return CLI_EXIT_USAGE;
}

struct flood_result {
    uint32_t nodes;
    uint64_t deliveries, expected;
    double last_delivery_s, setup_s, wall_s;
    long peak_rss_kb;
    double bytes_per_node;
};

static int flood(const char *graph, uint32_t messages, const char *app, int no_sigcache,
                 struct flood_result *r)
{
    char duration[32];
    snprintf(duration, sizeof(duration), "%us", messages + 600);
    const struct sim_override ov[] = {
        {"topology.kind", "file"},
        {"topology.file", graph},
        {"nodes.app", strcmp(app, "engine") == 0 ? "flood" : "null"},
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
    struct sim_config cfg;
    char err[1024];
    if (sim_scenario_parse(text, sizeof(text) - 1, "bench", ".", ov, sizeof(ov) / sizeof(ov[0]),
                           &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "p4p bench: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    if (cli_sodium_init_seeded(cfg.seed) != 0) {
        return CLI_EXIT_FAIL;
    }
    double t0 = cli_wall_s();
    struct sim_world *w = NULL;
    struct sim_world_opts wo = {.no_sigcache = no_sigcache};
    if (sim_world_create(&cfg, &wo, &w, err, sizeof(err)) != 0) {
        fprintf(stderr, "p4p bench: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    for (uint32_t m = 0; m < messages; m++) {
        sim_world_publish_at(w, 0, (uint64_t)m * 1000000000ull);
    }
    r->bytes_per_node = sim_world_bytes_per_node(w);
    double t1 = cli_wall_s();
    int rc = sim_world_run(w, cfg.duration_ns, NULL, NULL);
    double t2 = cli_wall_s();
    const struct sim_graph *g = sim_world_graph(w);
    const struct sim_counters *c = sim_world_counters(w);
    r->nodes = g->n;
    r->deliveries = c->arrivals;
    r->expected = (uint64_t)messages * (2 * g->edges - (g->n - 1));
    r->last_delivery_s = (double)c->last_arrival_ns / 1e9;
    r->setup_s = t1 - t0;
    r->wall_s = t2 - t1;
    r->peak_rss_kb = cli_peak_rss_kb();
    sim_world_destroy(w);
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
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

int cli_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"messages", required_argument, NULL, 'm'},
        {"app", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"no-sigcache", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    uint32_t messages = 10;
    const char *app = "engine";
    int json = 0, no_sigcache = 0, c;
    optind = 2; /* argv[0] = "bench", argv[1] = "flood" */
    if (argc < 3 || strcmp(argv[1], "flood") != 0) {
        return usage();
    }
    while ((c = getopt_long(argc, argv, "m:a:j", opts, NULL)) != -1) {
        if (c == 'm') {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (end == optarg || *end != '\0' || v == 0 || v > 1000000) {
                fprintf(stderr, "p4p bench: --messages takes 1..1000000\n");
                return CLI_EXIT_USAGE;
            }
            messages = (uint32_t)v;
        } else if (c == 'a') {
            app = optarg;
            if (strcmp(app, "null") != 0 && strcmp(app, "engine") != 0) {
                fprintf(stderr, "p4p bench: --app is null or engine\n");
                return CLI_EXIT_USAGE;
            }
        } else if (c == 'j') {
            json = 1;
        } else if (c == 'n') {
            no_sigcache = 1;
        } else {
            return usage();
        }
    }
    if (optind != argc - 1) {
        return usage();
    }
    struct flood_result r = {0};
    int rc = flood(argv[optind], messages, app, no_sigcache, &r);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    double per_s = r.wall_s > 0 ? (double)r.deliveries / r.wall_s : 0;
    if (json) {
        printf("{\"graph\":");
        json_string(argv[optind]);
        printf(",\"app\":\"%s\",\"nodes\":%u,\"messages\":%u,"
               "\"deliveries\":%llu,\"expected_deliveries\":%llu,\"last_delivery_s\":%.6f,"
               "\"setup_s\":%.3f,\"wall_s\":%.3f,\"deliveries_per_s\":%.0f,"
               "\"bytes_per_node\":%.0f,\"peak_rss_kb\":%ld}\n",
               app, r.nodes, messages, (unsigned long long)r.deliveries,
               (unsigned long long)r.expected, r.last_delivery_s, r.setup_s, r.wall_s, per_s,
               r.bytes_per_node, r.peak_rss_kb);
    } else {
        printf("flood %-40s app %-6s nodes %7u  deliveries %9llu (expected %llu)  last %.3f s  "
               "setup %.2f s  wall %.2f s  %.2fM deliveries/s  %.0f B/node  peak %ld KiB\n",
               argv[optind], app, r.nodes, (unsigned long long)r.deliveries,
               (unsigned long long)r.expected, r.last_delivery_s, r.setup_s, r.wall_s, per_s / 1e6,
               r.bytes_per_node, r.peak_rss_kb);
    }
    return r.deliveries == r.expected ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
