/*
 * config.h — one scenario, resolved and validated: what sim/scenario.c fills from a YAML file
 * (plus --set/--seed overrides) and what the rest of the simulator reads. Plain data, no
 * pointers, so a config can be copied and compared.
 *
 * Units are in the field names: *_ns durations, *_bps bits per second, *_bytes sizes.
 * docs for every key: scenarios/README.md.
 */
#ifndef SIM_CONFIG_H
#define SIM_CONFIG_H

#include <stdint.h>

#include "p4p/p4p.h"

#define SIM_PATH_MAX 512
#define SIM_NAME_MAX 64

enum sim_topology_kind {
    SIM_TOPO_RANDOM_REGULAR = 1, /* degree */
    SIM_TOPO_ERDOS_RENYI,        /* degree = mean degree, p = degree / (count - 1) */
    SIM_TOPO_BARABASI_ALBERT,    /* m edges per new node */
    SIM_TOPO_WATTS_STROGATZ,     /* ring lattice of `degree` (even), rewiring probability p */
    SIM_TOPO_RANDOM_GEOMETRIC,   /* unit square, radius, optional torus */
    SIM_TOPO_GRID,               /* width x height, 4-neighbour lattice, optional torus */
    SIM_TOPO_FILE,               /* edge list "N D E SEED" then "u v latency_ms" lines */
};

enum sim_storage_backend {
    SIM_STORAGE_NONE = 0,
    SIM_STORAGE_MEMORY = 1, /* storage/storage_mem.c, one store per node */
    SIM_STORAGE_SQLITE = 2, /* storage/storage_sqlite.c: in-memory databases, or files in dir */
};

enum sim_churn_dist {
    SIM_CHURN_EXPONENTIAL = 1,
    SIM_CHURN_WEIBULL = 2, /* shape k */
    SIM_CHURN_PARETO = 3,  /* shape alpha > 1 */
};

enum sim_app {
    SIM_APP_FLOOD = P4P_APP_FLOOD,
    SIM_APP_GOSSIP = P4P_APP_GOSSIP,
    SIM_APP_NULL = 100, /* no engine: the simulator forwards like flood (benchmarks) */
};

struct sim_config {
    char name[SIM_NAME_MAX];
    uint64_t seed;
    uint64_t duration_ns;

    struct {
        uint32_t count;
        enum sim_app app;
    } nodes;

    struct {
        enum sim_topology_kind kind;
        uint32_t degree;
        double p;
        uint32_t m;
        double radius;
        uint32_t width, height;
        int torus;
        char file[SIM_PATH_MAX]; /* resolved: relative paths are taken from the scenario's dir */
    } topology;

    struct {
        uint64_t latency_ns;     /* per link, unless the topology file gives one ... */
        uint64_t latency_max_ns; /* ... or, when above latency_ns, uniform in between per link */
        uint64_t jitter_ns;      /* uniform extra delay in [0, jitter] per frame */
        uint64_t bandwidth_bps;  /* 0 = unlimited */
        uint32_t queue_bytes;    /* transmit queue per directed link; 0 = unlimited */
        double loss;             /* Bernoulli frame loss probability, [0, 1) */
        /* Gilbert-Elliott burst loss instead (ge_p > 0): per directed link, P(Good -> Bad),
         * P(Bad -> Good), P(delivered | Good), P(delivered | Bad); sim/gilbert.h */
        double ge_p, ge_r, ge_k, ge_h;
        uint32_t mtu; /* bytes */
    } link;

    struct {
        uint64_t interval_ns;
        uint32_t fanout;
        uint32_t digest;
        uint32_t seen;
        uint32_t store;
    } gossip;

    struct {
        uint32_t updates;  /* total updates published over the run */
        double rate_per_s; /* network-wide publish rate */
        uint64_t start_ns; /* first publish no earlier than this */
        uint32_t payload_bytes;
    } workload;

    struct {
        uint64_t session_ns; /* mean time online (0 = no churn) */
        uint64_t offline_ns; /* mean time offline */
        enum sim_churn_dist dist;
        double shape;   /* Weibull k or Pareto alpha */
        double diurnal; /* 0..1: how much longer sessions are at the daily peak (and offline
                           periods shorter), 1 + diurnal x cos(2 pi t / 1 d) */
    } churn;

    struct {
        uint64_t at_ns;   /* the network splits at this time (0 = never) ... */
        uint64_t heal_ns; /* ... and heals at this one (0 = never) */
        double fraction;  /* nodes on the far side: those with x < fraction, or without
                             positions each node with this probability */
    } partition;

    struct {
        uint64_t skew_ns; /* each node's clock starts up to this far ahead of the others */
        double drift_ppm; /* and runs fast or slow by up to this many parts per million */
    } clock;

    struct {
        uint32_t size_bytes; /* one blob of this size (0 = none) ... */
        uint64_t at_ns;      /* ... added by blob.source at this time ... */
        uint32_t source;
        uint32_t fetchers;   /* ... and fetched by this many other nodes (0 = all) */
        uint32_t edit_bytes; /* a second version with this many bytes changed mid-blob ... */
        uint64_t edit_at_ns; /* ... added at this time, fetched by the same nodes */
    } blob;

    struct {
        int sessions; /* every frame inside a Noise session, keys trusted on first use */
    } security;

    struct {
        enum sim_storage_backend backend;
        char dir[SIM_PATH_MAX]; /* sqlite: one file per node here; "" = in-memory databases */
        int repair;             /* a corrupt log: keep its good prefix, catch up from peers */
    } storage;

    struct {
        uint64_t at_ns;        /* scheduled: at this time (0 = none)... */
        double fraction;       /* ...this fraction of the nodes crash */
        double rate_per_s;     /* random: crashes per node per second (Poisson) */
        uint32_t every_writes; /* crash testing: a node crashes at every k-th storage write */
        uint64_t downtime_ns;  /* from a crash to the restart */
    } crash;

    struct {
        uint64_t sample_ns; /* time-series sampling period */
        int deliveries;     /* record one row per (update, node) delivery */
    } metrics;
};

#endif /* SIM_CONFIG_H */
