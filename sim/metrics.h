/*
 * metrics.h — what a simulation measures while it runs, and how it lands in the results
 * file: the update registry (one row per published update), per-(update, node) delivery
 * records with latency and hops, and time series sampled every metrics.sample.
 *
 * The world feeds it engine events (published, delivered) and sample ticks; at the end,
 * metrics_write() turns it into res_* rows and summary statistics. Memory: 32 bytes per
 * update and 24 bytes per delivery, in growing arrays (no allocation per record).
 */
#ifndef SIM_METRICS_H
#define SIM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "res.h"

struct sim_update {
    uint8_t id[32];
    uint64_t created_ns;
    uint32_t origin;
    uint32_t size;
    uint32_t reached; /* nodes other than the origin that have it */
};

struct sim_delivery {
    uint64_t t_ns;
    uint32_t update;
    uint32_t node;
    uint32_t hops;
};

struct sim_sample {
    uint64_t t_ns;
    double coverage;
    uint64_t deliveries;
    uint64_t frames_sent;
    uint64_t bytes_sent;
};

struct sim_metrics {
    uint32_t nodes;
    struct sim_update *updates;
    uint32_t update_count, update_cap;
    uint32_t *index; /* open addressing on id prefix: update number + 1, 0 = empty */
    uint32_t index_cap;
    struct sim_delivery *deliveries;
    size_t delivery_count, delivery_cap;
    struct sim_sample *samples;
    size_t sample_count, sample_cap;
    uint64_t unknown; /* deliveries of ids never published (must stay 0) */
};

int metrics_init(struct sim_metrics *m, uint32_t nodes);
void metrics_free(struct sim_metrics *m);

int metrics_published(struct sim_metrics *m, uint32_t node, const uint8_t id[32], uint64_t t_ns,
                      uint32_t size);
int metrics_delivered(struct sim_metrics *m, uint32_t node, const uint8_t id[32], uint64_t t_ns,
                      uint32_t hops);
/* The number of a published update (publish order, from 0), or UINT32_MAX. */
uint32_t metrics_find(const struct sim_metrics *m, const uint8_t id[32]);

int metrics_sample(struct sim_metrics *m, uint64_t t_ns, uint64_t frames_sent, uint64_t bytes_sent);

/* Fraction of (update, non-origin node) pairs delivered so far; 0 with no updates. */
double metrics_coverage(const struct sim_metrics *m);

/* Summary of delivery latency in seconds (delivered - created) over all deliveries. */
int metrics_latency(const struct sim_metrics *m, struct res_summary *out);

/* Updates, deliveries (rows only when `rows`), series and statistics. */
int metrics_write(const struct sim_metrics *m, res_db *db, int rows);

#endif /* SIM_METRICS_H */
