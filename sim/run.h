/*
 * run.h — one simulation run from a resolved scenario to a finished results file: the
 * sequence `p4p run` performs and the scenario tests repeat.
 *
 *   sim_world_create -> res_create (run row, parameters) -> sim_world_run -> results -> finish
 */
#ifndef SIM_RUN_H
#define SIM_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "world.h"

struct sim_run_summary {
    uint32_t nodes;
    uint64_t edges;
    uint32_t components;
    uint64_t updates;
    uint64_t deliveries;
    double coverage;
    double latency_p50_s, latency_p90_s, latency_p99_s;
    uint64_t frames_sent, bytes_sent, frames_lost;
    uint64_t events;
    uint64_t sim_end_ns;
    double setup_s, wall_s, events_per_s, bytes_per_node;
    long peak_rss_kb;
};

struct sim_run_opts {
    const char *scenario_path; /* recorded with its SHA-256; may be NULL */
    const char *out_path;      /* results file to write */
    sim_progress_fn progress;  /* may be NULL */
    void *progress_ctx;
    double (*wall_s)(void);      /* wall clock for the wall table; NULL = none recorded */
    long (*peak_rss_kb)(void);   /* likewise */
    struct sim_world_opts world; /* host options, e.g. no signature cache */
};

/* Runs cfg to cfg->duration and writes opts->out_path. Returns 0, or a negative code with a
 * message in err; a run that fails after the file was created leaves it with status
 * 'failed'. */
int sim_run(const struct sim_config *cfg, const struct sim_run_opts *opts,
            struct sim_run_summary *summary, char *err, size_t errlen);

#endif /* SIM_RUN_H */
