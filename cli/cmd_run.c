/*
 * cmd_run.c — `p4p run SCENARIO [--seed N] [--set KEY=VALUE]... [--out FILE] [--quiet]`.
 *
 * Loads the scenario (errors: FILE:LINE:COLUMN: message, exit 2), runs it with sim_run(),
 * shows progress on stderr (one line redrawn in place on a terminal, plain lines otherwise)
 * and prints a summary table on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "run.h"
#include "scenario.h"

#define OVERRIDES_MAX 256

struct progress {
    double start_s, last_s;
    uint64_t duration_ns;
    int tty;
    int quiet;
};

static void on_progress(void *ctx, uint64_t now_ns, uint64_t events)
{
    struct progress *p = ctx;
    double t = cli_wall_s();
    if (p->quiet || t - p->last_s < (p->tty ? 0.2 : 5.0)) {
        return;
    }
    p->last_s = t;
    double elapsed = t - p->start_s;
    double frac = p->duration_ns ? (double)now_ns / (double)p->duration_ns : 0;
    double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    fprintf(stderr, "%ssim %.1fs / %.1fs (%3.0f%%)  %.2fM events  %.2fM ev/s  ETA %.0fs%s",
            p->tty ? "\r" : "", (double)now_ns / 1e9, (double)p->duration_ns / 1e9, frac * 100,
            (double)events / 1e6, elapsed > 0 ? (double)events / elapsed / 1e6 : 0, eta,
            p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

static void print_summary(const char *out, const struct sim_config *cfg,
                          const struct sim_run_summary *s)
{
    printf("results      %s\n", out);
    printf("scenario     %s (seed %llu)\n", cfg->name, (unsigned long long)cfg->seed);
    printf("nodes        %u (%llu links, %u component%s)\n", s->nodes, (unsigned long long)s->edges,
           s->components, s->components == 1 ? "" : "s");
    printf("simulated    %.3f s, %llu events\n", (double)s->sim_end_ns / 1e9,
           (unsigned long long)s->events);
    printf("updates      %llu published, %llu deliveries, coverage %.4f\n",
           (unsigned long long)s->updates, (unsigned long long)s->deliveries, s->coverage);
    printf("latency      p50 %.3f s, p90 %.3f s, p99 %.3f s\n", s->latency_p50_s, s->latency_p90_s,
           s->latency_p99_s);
    printf("traffic      %llu frames, %llu bytes, %llu lost on links\n",
           (unsigned long long)s->frames_sent, (unsigned long long)s->bytes_sent,
           (unsigned long long)s->frames_lost);
    printf("wall         %.2f s setup, %.2f s run, %.2fM events/s, peak %ld KiB, %.0f B/node\n",
           s->setup_s, s->wall_s, s->events_per_s / 1e6, s->peak_rss_kb, s->bytes_per_node);
}

/* Fails fast, with the reason, when the results file could not be written: better before a
 * long simulation than after. */
static int writable_dir_of(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", path);
    const char *dir = dirname(copy);
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "p4p run: cannot write %s: %s: %s\n", path, dir, strerror(errno));
        return 0;
    }
    return 1;
}

static int usage(void)
{
    fputs("usage: p4p run SCENARIO [--seed N] [--set KEY=VALUE]... [--out FILE] [--quiet]\n",
          stderr);
    return CLI_EXIT_USAGE;
}

struct run_args {
    const char *scenario, *out;
    struct sim_override ov[OVERRIDES_MAX];
    size_t ov_count;
    int quiet;
};

/* Returns CLI_EXIT_OK with *a filled, -1 after --help, or CLI_EXIT_USAGE. --set arguments
 * are split in place (argv outlives the run). */
static int parse_args(int argc, char **argv, struct run_args *a)
{
    static const struct option opts[] = {
        {"seed", required_argument, NULL, 's'}, {"set", required_argument, NULL, 'S'},
        {"out", required_argument, NULL, 'o'},  {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    int c;
    a->out = NULL;
    a->ov_count = 0;
    a->quiet = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qho:", opts, NULL)) != -1) {
        char *eq = c == 'S' ? strchr(optarg, '=') : NULL;
        if ((c == 'S' || c == 's') && ((c == 'S' && eq == NULL) || a->ov_count == OVERRIDES_MAX)) {
            fprintf(stderr, "p4p run: --set takes KEY=VALUE (at most %d)\n", OVERRIDES_MAX);
            return CLI_EXIT_USAGE;
        }
        if (c == 'S') {
            *eq = '\0';
            a->ov[a->ov_count++] = (struct sim_override){optarg, eq + 1};
        } else if (c == 's') {
            a->ov[a->ov_count++] = (struct sim_override){"seed", optarg};
        } else if (c == 'o') {
            a->out = optarg;
        } else if (c == 'q') {
            a->quiet = 1;
        } else if (c == 'h') {
            usage();
            return -1;
        } else {
            return usage();
        }
    }
    if (optind != argc - 1) {
        return usage();
    }
    a->scenario = argv[optind];
    return CLI_EXIT_OK;
}

static int run(const struct run_args *a, const struct sim_config *cfg, const char *out)
{
    char err[1024];
    if (!writable_dir_of(out)) {
        return CLI_EXIT_FAIL;
    }
    if (cli_sodium_init_seeded(cfg->seed) != 0) {
        fputs("p4p run: libsodium failed to initialise\n", stderr);
        return CLI_EXIT_FAIL;
    }
    struct progress prog = {cli_wall_s(), 0, cfg->duration_ns, isatty(STDERR_FILENO), a->quiet};
    struct sim_run_opts o = {
        .scenario_path = a->scenario,
        .out_path = out,
        .progress = on_progress,
        .progress_ctx = &prog,
        .wall_s = cli_wall_s,
        .peak_rss_kb = cli_peak_rss_kb,
    };
    if (!a->quiet) {
        fprintf(stderr, "p4p run: %s, %u nodes, %.1f s simulated, seed %llu\n", cfg->name,
                cfg->nodes.count, (double)cfg->duration_ns / 1e9, (unsigned long long)cfg->seed);
    }
    struct sim_run_summary s;
    int rc = sim_run(cfg, &o, &s, err, sizeof(err));
    if (prog.tty && !a->quiet && prog.last_s > 0) {
        fputs("\r\033[K", stderr);
    }
    if (rc != 0) {
        fprintf(stderr, "p4p run: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    print_summary(out, cfg, &s);
    return CLI_EXIT_OK;
}

int cli_run(int argc, char **argv)
{
    struct run_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != CLI_EXIT_OK) {
        return rc == -1 ? CLI_EXIT_OK : rc;
    }
    struct sim_config cfg;
    char err[1024];
    if (sim_scenario_load(a.scenario, a.ov, a.ov_count, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return CLI_EXIT_USAGE;
    }
    char default_out[SIM_NAME_MAX + 64];
    if (a.out == NULL) {
        snprintf(default_out, sizeof(default_out), "%s-seed%llu.sqlite", cfg.name,
                 (unsigned long long)cfg.seed);
    }
    return run(&a, &cfg, a.out != NULL ? a.out : default_out);
}
