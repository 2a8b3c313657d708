/*
 * world.h — the simulator's host: N engine nodes over a topology and a link model, driven by
 * one discrete-event loop on integer-nanosecond simulated time.
 *
 * The world is the simulation's counterpart of the live runtime (net/): it owns the clock,
 * the randomness (one seeded stream per node, derived from the run's seed) and the frames in
 * flight. Its loop is the host loop of the engine contract:
 *
 *   pop event (time, seq) -> feed the node (recv / timeout / publish)
 *                         -> drain frames into the link model, which schedules arrivals
 *                         -> drain events into metrics
 *                         -> reschedule the node's deadline
 *
 * The same scenario and seed give the same sequence of events and the same results.
 */
#ifndef SIM_WORLD_H
#define SIM_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "link.h"
#include "metrics.h"
#include "p4p/p4p.h"
#include "res.h"
#include "topology.h"

struct sim_world;

struct sim_counters {
    uint64_t events;          /* events processed */
    uint64_t arrivals;        /* frames handed to a node (each counts, duplicates too) */
    uint64_t last_arrival_ns; /* time of the latest arrival */
    uint64_t published;       /* updates published by the workload */
    uint64_t publish_failed;  /* publishes the engine refused */
    uint64_t frames_out;      /* frames nodes emitted */
    uint64_t bytes_out;
    uint64_t pool_failures; /* arrivals dropped because no buffer could be had */
};

/* Crashes and restarts (scenario `crash:`), and what they cost. */
struct sim_crash_stats {
    uint64_t crashes;          /* all of them */
    uint64_t crashes_on_write; /* of which: the store failed under a write (crash.every_writes) */
    uint64_t restarts;
    uint64_t caught_up;     /* restarts after which the node got every earlier update again */
    uint64_t dropped_down;  /* frames that arrived at a node that was down */
    uint64_t publish_down;  /* workload publishes that found their author down */
    double recovery_wall_s; /* host time spent restarting nodes (replay), summed */
    double recovery_wall_max_s;
};

/* How the host runs, as opposed to what it simulates: none of it changes a result. */
struct sim_world_opts {
    int no_sigcache; /* verify every signature at every node (slow; for checking the cache) */
    double (*wall_s)(void); /* a wall clock for the recovery-time figure; may be NULL */
};

/* Builds the topology, link model and nodes of cfg, brings every link up at time 0 and
 * schedules the workload; opts may be NULL. On error returns a negative code with a message
 * in err. */
int sim_world_create(const struct sim_config *cfg, const struct sim_world_opts *opts,
                     struct sim_world **out, char *err, size_t errlen);
void sim_world_destroy(struct sim_world *w);

/* Schedules one publish by `node` at `at_ns`, which must not be in the past (benchmarks and
 * tests; the scenario's workload schedules its own). 0 or P4P_EINVAL. */
int sim_world_publish_at(struct sim_world *w, uint32_t node, uint64_t at_ns);

typedef void (*sim_progress_fn)(void *ctx, uint64_t now_ns, uint64_t events);

/* Runs events up to and including time `until_ns`, then sets the clock to until_ns; calls
 * progress (may be NULL) every 2^18 events. Running to A and then to B is the same as
 * running to B. Returns 0 or a negative code (out of memory). */
int sim_world_run(struct sim_world *w, uint64_t until_ns, sim_progress_fn progress, void *ctx);

uint64_t sim_world_now(const struct sim_world *w);
const struct sim_counters *sim_world_counters(const struct sim_world *w);
const struct sim_metrics *sim_world_metrics(const struct sim_world *w);
const struct sim_graph *sim_world_graph(const struct sim_world *w);
const struct sim_link_stats *sim_world_link_stats(const struct sim_world *w);
/* NULL for the null application, and while node i is down. */
p4p_node *sim_world_node(struct sim_world *w, uint32_t i);
const struct sim_crash_stats *sim_world_crash_stats(const struct sim_world *w);

/* What node i's own clock reads now (clock.skew, clock.drift): the `now` its engine sees. */
uint64_t sim_world_node_clock(const struct sim_world *w, uint32_t i);

/* Churn so far: the mean length of completed online sessions and offline periods, seconds,
 * and how many of each (0 without churn). */
void sim_world_churn_means(const struct sim_world *w, double *session_s, uint64_t *sessions,
                           double *offline_s, uint64_t *offlines);

/* Fetchers that completed version v (0, or 1 for the edited one) of the scenario's blob. */
uint32_t sim_world_blob_done(const struct sim_world *w, int v);

/* Why the run stopped when sim_world_run returned P4P_ECORRUPT: a broken storage invariant
 * (a restarted node that does not hold what its log holds, or lost acknowledged updates),
 * with the node, the time and the seed. "" otherwise. */
const char *sim_world_error(const struct sim_world *w);

/* Crash testing: node i's store fails at its n-th write from now, which kills the node (it
 * restarts crash.downtime later). 0 or P4P_EINVAL (no storage, node down). */
int sim_world_fail_after(struct sim_world *w, uint32_t i, uint64_t writes);

/* The end-of-run check: every node's store (up or down) holds exactly the updates the node
 * acknowledged. Returns 0, or P4P_ECORRUPT with sim_world_error() set; *lost (may be NULL)
 * gets the number of acknowledged updates missing across all nodes. */
int sim_world_check_stores(struct sim_world *w, uint64_t *lost);

/* Heap bytes per node right now: engine state plus the world's per-node arrays. */
double sim_world_bytes_per_node(const struct sim_world *w);

/* Everything simulated into db: parameters are the caller's; this writes nodes, per-node and
 * network scalars, statistics, series, updates and deliveries. */
int sim_world_write_results(const struct sim_world *w, res_db *db);

#endif /* SIM_WORLD_H */
