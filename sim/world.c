/*
 * world.c — the simulator host (see world.h). The path of one frame, file by file:
 *
 *   engine/node.c  p4p_node_poll_frame()          node u emits a frame for neighbour v
 *   world.c        drain()                        hands it to the link model
 *   link_p2p.c     p2p_send()                     queue, loss, latency -> arrival time
 *   world.c        sim_world_arrive()             copies it into a pool packet, pushes EV_FRAME
 *   queue.c        sim_queue_pop()                ... in (time, seq) order ...
 *   world.c        on_frame()                     p4p_node_recv() on node v, releases the packet
 *   engine/node.c  p4p_node_recv()                decode, verify, deliver, forward
 */
#include "world.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "disk.h"
#include "pool.h"
#include "queue.h"
#include "rng.h"

enum {
    EV_FRAME = 1,      /* node = receiver, arg = packet handle */
    EV_TIMER = 2,      /* node = whose deadline; stale unless time == timer_at[node] */
    EV_PUBLISH = 3,    /* node = origin (explicit) or ignored (workload: arg = 1) */
    EV_SAMPLE = 4,     /* metrics sampling tick */
    EV_CRASH = 5,      /* node dies (arg 1: a random-rate crash, which schedules the next) */
    EV_RESTART = 6,    /* node starts again from its store */
    EV_BLOB = 7,       /* arg = blob version: the source adds it */
    EV_BLOB_ASK = 8,   /* node, arg = version: fetch it if a neighbour has it */
    EV_CHURN = 9,      /* node goes offline (arg 0) or comes back (arg 1) */
    EV_PARTITION = 10, /* the network splits (arg 0) or heals (arg 1) */
};

enum { BLOB_NOT_WANTED = 0, BLOB_WANTED, BLOB_FETCHING, BLOB_HAVE };

/* The scenario's blob (and its edited second version): who wants it, and how long it took. */
struct node_clock {
    uint64_t offset_ns; /* the clock's reading at simulated time 0 */
    double rate;        /* clock seconds per simulated second */
};

struct blob_job {
    uint8_t id[32];
    uint64_t added_ns; /* when the source added it */
    int added;
    int pending;    /* due while the source was down */
    double *took_s; /* per fetcher that completed: added -> BLOB_DONE */
    uint32_t done;
};

/* Per node, when the scenario crashes nodes: what the host saw acknowledged, its counters
 * from earlier lives, and the catch-up after the last restart. */
struct life {
    struct p4p_held acked;  /* ids of every PUBLISHED and DELIVERED event */
    struct p4p_stats past;  /* counters of earlier incarnations */
    uint8_t pk[32];         /* identity (kept while the node is down) */
    uint64_t restart_ns;    /* last restart, for the catch-up time */
    uint32_t catch_target;  /* updates published before the restart... */
    uint32_t catch_missing; /* ...that the node still lacks; 0 = caught up */
    uint8_t catching_up;
};

#define NULL_PAYLOAD 64

struct sim_world {
    struct sim_config cfg;
    struct sim_graph g;
    struct sim_link_model *link;
    struct sim_queue q;
    struct sim_pool pool;
    struct p4p_sigcache *sigcache;
    p4p_node **nodes;     /* NULL for the null application */
    struct sim_rng *rngs; /* per node: the engine's random stream */
    uint64_t *timer_at;   /* per node: scheduled deadline event, or P4P_TIME_NONE */
    struct sim_rng workload_rng;
    uint32_t workload_done; /* publishes the scenario's workload has made (explicit ones aside) */
    uint64_t now;
    uint32_t n;
    struct sim_counters c;
    struct sim_metrics metrics;
    struct p4p_config node_cfg; /* the engine configuration, for restarts */
    /* storage and crashes (NULL / zero when the scenario has none) */
    struct sim_disks *disks;
    struct life *life;
    struct sim_rng crash_rng;
    struct sim_crash_stats cs;
    double *catch_up_s; /* one per restart that caught up */
    double *replayed;   /* records replayed, one per restart */
    size_t restart_cap;
    double (*wall_s)(void);
    struct node_clock *clocks; /* NULL: every node reads simulated time */
    /* churn and partitions */
    uint8_t *offline;  /* per node, with churn: its device is off (state kept) */
    uint64_t *went_ns; /* per node: when it last went offline or came back */
    uint8_t *side;     /* per node, with a partition: which side of the cut */
    int partitioned;   /* the cut is in force */
    struct sim_rng churn_rng;
    double *session_s, *offline_s; /* completed online / offline periods */
    size_t session_n, offline_n, periods_cap;
    uint64_t dropped_offline, dropped_partition, cut_links;
    struct blob_job bj[2];
    uint8_t *bstate[2]; /* per node and version: BLOB_* */
    struct sim_rng blob_rng;
    char error[256];     /* why the run stopped, when a check failed */
    uint64_t lost_acked; /* acknowledged updates missing at the end (sim_world_check_stores) */
    /* null application: one bitmap of n bits per message */
    uint8_t **null_seen;
    uint32_t null_count, null_cap;
    int failed; /* out of memory while running */
    /* The packet made for the last arrival: a node that sends the same bytes to several
     * neighbours (flood) shares one packet among them. Valid within one drain only. */
    const uint8_t *share_data;
    uint32_t share_len, share_src, share_handle;
};

static void node_random(void *ctx, uint8_t *out, size_t len)
{
    sim_rng_bytes(ctx, out, len);
}

/* ---- Node clocks ---------------------------------------------------------------------------- */

/* What node i's own clock reads at simulated time t: offset + t * rate (clock.skew and
 * clock.drift; exact simulated time without them). The engine only ever sees this. */
static uint64_t local_at(const struct sim_world *w, uint32_t i, uint64_t t)
{
    if (w->clocks == NULL) {
        return t;
    }
    const struct node_clock *c = &w->clocks[i];
    return c->offset_ns + (uint64_t)((double)t * c->rate);
}

static uint64_t local_now(const struct sim_world *w, uint32_t i)
{
    return local_at(w, i, w->now);
}

/* The simulated time at which node i's clock reaches `local` (never before now). */
static uint64_t sim_at(const struct sim_world *w, uint32_t i, uint64_t local)
{
    if (w->clocks == NULL || local == P4P_TIME_NONE) {
        return local;
    }
    const struct node_clock *c = &w->clocks[i];
    if (local <= local_now(w, i)) {
        return w->now;
    }
    double t = (double)(local - c->offset_ns) / c->rate;
    uint64_t s = t >= 1.8e19 ? P4P_TIME_NONE - 1 : (uint64_t)t;
    while (local_at(w, i, s) < local) { /* rounding: the first instant the clock reaches it */
        s++;
    }
    return s;
}

/* ---- Frames in and out ---------------------------------------------------------------------- */

/* Starts a batch of sends from one node whose frames may share packets (see share_data). */
static void share_reset(struct sim_world *w)
{
    w->share_data = NULL;
}

void sim_world_arrive(struct sim_world *w, uint32_t dst, uint64_t at_ns, uint32_t src,
                      const struct p4p_frame *f)
{
    uint32_t h;
    if (w->share_data == f->data && w->share_len == f->len && w->share_src == src) {
        h = w->share_handle;
        sim_pool_get(&w->pool, h)->refs++;
    } else {
        h = sim_pool_alloc(&w->pool, f->len);
        if (h == SIM_POOL_NONE) {
            w->c.pool_failures++;
            return;
        }
        struct sim_packet *p = sim_pool_get(&w->pool, h);
        p->src = src;
        p->iface = f->iface;
        memcpy(p->data, f->data, f->len);
        w->share_data = f->data;
        w->share_len = (uint32_t)f->len;
        w->share_src = src;
        w->share_handle = h;
    }
    if (sim_queue_push(&w->q, at_ns, EV_FRAME, dst, h) != 0) {
        sim_pool_release(&w->pool, h);
        w->failed = 1;
    }
}

static void send_frame(struct sim_world *w, uint32_t src, const struct p4p_frame *f)
{
    w->c.frames_out++;
    w->c.bytes_out += f->len;
    w->link->ops->send(w->link, w, src, f, w->now);
}

static void acknowledged(struct sim_world *w, uint32_t i, const struct p4p_event *ev)
{
    struct life *l = &w->life[i];
    p4p_held_add(&l->acked, ev->id);
    if (l->catching_up && ev->kind == P4P_EVENT_DELIVERED &&
        metrics_find(&w->metrics, ev->id) < l->catch_target && --l->catch_missing == 0) {
        l->catching_up = 0;
        w->catch_up_s[w->cs.caught_up++] = (double)(w->now - l->restart_ns) / 1e9;
    }
}

/* A node finished (or gave up) fetching a blob version: its neighbours may fetch from it, or it
 * asks again later. Fetches start from the event loop (EV_BLOB_ASK), never inside a drain. */
static void blob_event(struct sim_world *w, uint32_t i, const struct p4p_event *ev)
{
    for (int v = 0; v < 2; v++) {
        struct blob_job *j = &w->bj[v];
        if (!j->added || memcmp(j->id, ev->id, 32) != 0 || w->bstate[v][i] != BLOB_FETCHING) {
            continue;
        }
        if (ev->kind == P4P_EVENT_BLOB_DONE) {
            w->bstate[v][i] = BLOB_HAVE;
            j->took_s[j->done++] = (double)(w->now - j->added_ns) / 1e9;
            for (uint32_t k = w->g.off[i]; k < w->g.off[i + 1]; k++) {
                if (w->bstate[v][w->g.adj[k]] == BLOB_WANTED &&
                    sim_queue_push(&w->q, w->now, EV_BLOB_ASK, w->g.adj[k], (uint32_t)v) != 0) {
                    w->failed = 1;
                }
            }
        } else {
            w->bstate[v][i] = BLOB_WANTED; /* every peer dropped: ask again in a second */
            if (sim_queue_push(&w->q, w->now + 1000000000ull, EV_BLOB_ASK, i, (uint32_t)v) != 0) {
                w->failed = 1;
            }
        }
    }
}

/* Drains node i after an input: frames to the link model, events to metrics, deadline to
 * the queue. */
static void drain(struct sim_world *w, uint32_t i)
{
    p4p_node *node = w->nodes[i];
    struct p4p_frame f;
    share_reset(w);
    while (p4p_node_poll_frame(node, &f) == 0) {
        send_frame(w, i, &f);
    }
    struct p4p_event ev;
    while (p4p_node_poll_event(node, &ev) == 0) {
        int rc = 0;
        if (ev.kind == P4P_EVENT_DELIVERED) {
            rc = metrics_delivered(&w->metrics, i, ev.id, w->now, ev.hops);
        } else if (ev.kind == P4P_EVENT_PUBLISHED) {
            rc = metrics_published(&w->metrics, i, ev.id, w->now, (uint32_t)ev.payload_len);
        }
        if (rc == P4P_ENOMEM) {
            w->failed = 1;
        }
        if (ev.kind == P4P_EVENT_BLOB_DONE || ev.kind == P4P_EVENT_BLOB_FAILED) {
            blob_event(w, i, &ev);
            continue;
        }
        if (w->life != NULL) {
            acknowledged(w, i, &ev);
        }
    }
    p4p_time_ns d = sim_at(w, i, p4p_node_deadline(node));
    if (d != P4P_TIME_NONE && d < w->now) {
        d = w->now;
    }
    if (d != w->timer_at[i]) {
        w->timer_at[i] = d;
        if (d != P4P_TIME_NONE && sim_queue_push(&w->q, d, EV_TIMER, i, 0) != 0) {
            w->failed = 1;
        }
    }
}

/* ---- Nodes: start, crash, restart ------------------------------------------------------------ */

static int link_usable(const struct sim_world *w, uint32_t i, uint32_t j);

/* Creates node i (from its store, if the scenario has one) and brings its links up. */
static int start_node(struct sim_world *w, uint32_t i, char *err, size_t errlen)
{
    struct p4p_config pc = w->node_cfg;
    uint32_t degree = w->g.off[i + 1] - w->g.off[i];
    pc.neighbour_max = degree > 0 ? degree : 1;
    struct p4p_env env = {.ctx = &w->rngs[i], .random = node_random, .sigcache = w->sigcache};
    int rc = 0;
    if (w->disks != NULL) {
        rc = sim_disks_open(w->disks, i, &env.storage, err, errlen);
    }
    rc = rc ? rc : p4p_node_create(&pc, &env, &w->nodes[i]);
    if (rc == 0 && w->cfg.crash.every_writes > 0) {
        /* Counted from here: the writes of a running node, not those of its start. */
        sim_disks_fail_after(w->disks, i, w->cfg.crash.every_writes);
    }
    if (rc != 0) {
        if (err[0] == '\0') {
            snprintf(err, errlen, "node %u: %s", i, p4p_strerror(rc));
        }
        w->nodes[i] = NULL;
        return rc;
    }
    for (uint32_t k = w->g.off[i]; k < w->g.off[i + 1]; k++) {
        if (link_usable(w, i, w->g.adj[k])) {
            struct p4p_link_event le = {P4P_LINK_UP, 0, w->g.adj[k]};
            p4p_node_link(w->nodes[i], local_now(w, i), &le);
        }
    }
    drain(w, i);
    return 0;
}

static void add_stats(struct p4p_stats *a, const struct p4p_stats *b)
{
#define STAT_ADD_(name) a->name += b->name;
    P4P_STATS(STAT_ADD_)
#undef STAT_ADD_
}

/* Node i dies: its memory and its open transaction are gone, its store stays. */
static void crash(struct sim_world *w, uint32_t i, uint64_t random)
{
    struct life *l = &w->life[i];
    struct p4p_stats st;
    p4p_node_stats(w->nodes[i], &st);
    add_stats(&l->past, &st);
    p4p_node_public_key(w->nodes[i], l->pk);
    p4p_node_destroy(w->nodes[i]);
    w->nodes[i] = NULL;
    sim_disks_crash(w->disks, i);
    w->timer_at[i] = P4P_TIME_NONE;
    l->catching_up = 0;
    w->cs.crashes++;
    if (sim_queue_push(&w->q, w->now + w->cfg.crash.downtime_ns, EV_RESTART, i, random) != 0) {
        w->failed = 1;
    }
}

/* A node whose store failed under it (crash testing) dies on the spot. */
static void after_input(struct sim_world *w, uint32_t i)
{
    drain(w, i);
    if (w->disks != NULL && p4p_node_failed(w->nodes[i]) != 0) {
        w->cs.crashes_on_write++;
        crash(w, i, 0);
    }
}

static int same_held(const struct p4p_held *a, const struct p4p_held *b)
{
    return a->count == b->count && memcmp(a->sum, b->sum, sizeof(a->sum)) == 0;
}

static void check_failed(struct sim_world *w, uint32_t i, const char *what,
                         const struct p4p_held *got, const struct p4p_held *want)
{
    snprintf(w->error, sizeof(w->error),
             "node %u at %.3f s: %s (%" PRIu64 " updates, expected %" PRIu64
             "); replay with seed %" PRIu64,
             i, (double)w->now / 1e9, what, got->count, want->count, w->cfg.seed);
}

/* Doubles two parallel arrays of doubles (from 64 entries) once *cap is used up. */
static int grow_pair(double **a, double **b, size_t used, size_t *cap)
{
    if (used < *cap) {
        return 0;
    }
    size_t c = *cap ? *cap * 2 : 64;
    double *x = realloc(*a, c * sizeof(*x));
    if (x != NULL) {
        *a = x;
    }
    double *y = realloc(*b, c * sizeof(*y));
    if (y != NULL) {
        *b = y;
    }
    if (x == NULL || y == NULL) {
        return P4P_ENOMEM;
    }
    *cap = c;
    return 0;
}

/* Node i starts again from its store. Checked on the spot: the restarted node holds exactly
 * what its log holds, and that is exactly what it had acknowledged before it died. */
static void restart(struct sim_world *w, uint32_t i)
{
    struct life *l = &w->life[i];
    char err[256] = "";
    if (grow_pair(&w->catch_up_s, &w->replayed, w->cs.restarts, &w->restart_cap) != 0) {
        w->failed = 1;
        return;
    }
    double t0 = w->wall_s ? w->wall_s() : 0;
    int rc = start_node(w, i, err, sizeof(err));
    double t1 = w->wall_s ? w->wall_s() : 0;
    if (rc != 0) {
        snprintf(w->error, sizeof(w->error), "node %u at %.3f s: cannot restart: %.180s", i,
                 (double)w->now / 1e9, err);
        return;
    }
    w->cs.recovery_wall_s += t1 - t0;
    if (t1 - t0 > w->cs.recovery_wall_max_s) {
        w->cs.recovery_wall_max_s = t1 - t0;
    }
    struct p4p_held node, disk;
    p4p_node_held(w->nodes[i], &node);
    struct p4p_stats st;
    p4p_node_stats(w->nodes[i], &st);
    w->replayed[w->cs.restarts++] = (double)st.replayed;
    if (sim_disks_held(w->disks, i, &disk) != 0 || !same_held(&node, &disk)) {
        check_failed(w, i, "after restart the node's state differs from its log", &node, &disk);
        return;
    }
    if (!same_held(&disk, &l->acked)) {
        check_failed(w, i, "acknowledged updates are missing from the log after a crash", &disk,
                     &l->acked);
        return;
    }
    for (int v = 0; v < 2; v++) {
        if (w->bj[v].pending && i == w->cfg.blob.source) {
            w->bj[v].pending = 0;
            if (sim_queue_push(&w->q, w->now, EV_BLOB, i, (uint32_t)v) != 0) {
                w->failed = 1;
            }
        }
        /* a fetch under way resumes from the store */
        if (w->bstate[v] != NULL && w->bstate[v][i] == BLOB_FETCHING) {
            w->bstate[v][i] = BLOB_WANTED;
            if (sim_queue_push(&w->q, w->now, EV_BLOB_ASK, i, (uint32_t)v) != 0) {
                w->failed = 1;
            }
        }
    }
    l->restart_ns = w->now;
    l->catch_target = w->metrics.update_count;
    l->catch_missing = (uint32_t)(l->catch_target - l->acked.count);
    l->catching_up = l->catch_missing > 0;
    if (!l->catching_up) {
        w->catch_up_s[w->cs.caught_up++] = 0;
    }
}

static void schedule_random_crash(struct sim_world *w, uint32_t i)
{
    double gap_s = sim_rng_exp(&w->crash_rng, 1.0 / w->cfg.crash.rate_per_s);
    uint64_t at = w->now + (uint64_t)(gap_s * 1e9);
    if (at <= w->cfg.duration_ns && sim_queue_push(&w->q, at, EV_CRASH, i, 1) != 0) {
        w->failed = 1;
    }
}

/* The scenario's crash schedule: a fraction of the nodes at one time, and a Poisson process
 * of crashes per node. */
static int schedule_crashes(struct sim_world *w)
{
    const struct sim_config *c = &w->cfg;
    if (c->crash.at_ns > 0 && c->crash.fraction > 0) {
        uint32_t k = (uint32_t)(c->crash.fraction * w->n + 0.5);
        uint32_t *order = malloc((size_t)w->n * sizeof(*order));
        if (order == NULL) {
            return P4P_ENOMEM;
        }
        for (uint32_t i = 0; i < w->n; i++) {
            order[i] = i;
        }
        for (uint32_t i = 0; i < k && i < w->n; i++) {
            uint32_t j = i + (uint32_t)sim_rng_below(&w->crash_rng, w->n - i);
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
            if (sim_queue_push(&w->q, c->crash.at_ns, EV_CRASH, order[i], 0) != 0) {
                free(order);
                return P4P_ENOMEM;
            }
        }
        free(order);
    }
    for (uint32_t i = 0; i < w->n && c->crash.rate_per_s > 0; i++) {
        schedule_random_crash(w, i);
    }
    return w->failed ? P4P_ENOMEM : 0;
}

/* ---- Churn and partitions ------------------------------------------------------------------ */

/* Whether the link between i and j may be up: both devices on, and no cut between them. (A
 * crashed neighbour still counts: nobody is told of a crash, frames to it are lost.) */
static int link_usable(const struct sim_world *w, uint32_t i, uint32_t j)
{
    if (w->offline != NULL && (w->offline[i] || w->offline[j])) {
        return 0;
    }
    return !(w->partitioned && w->side[i] != w->side[j]);
}

/* Tells both ends that the link i - j came up or went down. */
static void link_event(struct sim_world *w, uint32_t i, uint32_t j, enum p4p_link_kind kind)
{
    uint32_t ends[2] = {i, j};
    for (int e = 0; e < 2; e++) {
        uint32_t a = ends[e], b = ends[1 - e];
        if (w->nodes[a] != NULL) {
            struct p4p_link_event le = {kind, 0, b};
            p4p_node_link(w->nodes[a], local_now(w, a), &le);
            after_input(w, a);
        }
    }
}

/* A session or offline length with the given mean, from churn.distribution. */
static double churn_sample(struct sim_world *w, double mean_s)
{
    const struct sim_config *c = &w->cfg;
    double u = 1.0 - sim_rng_uniform(&w->churn_rng); /* (0, 1] */
    switch (c->churn.dist) {
    case SIM_CHURN_WEIBULL: /* scale from the mean: mean = lambda Gamma(1 + 1/k) */
        return mean_s / tgamma(1.0 + 1.0 / c->churn.shape) * pow(-log(u), 1.0 / c->churn.shape);
    case SIM_CHURN_PARETO: /* x_m from the mean: mean = x_m alpha / (alpha - 1) */
        return mean_s * (c->churn.shape - 1.0) / c->churn.shape / pow(u, 1.0 / c->churn.shape);
    default:
        return -mean_s * log(u);
    }
}

/* Schedules node i's next churn change: going offline (online == 1 now) or coming back. */
static void churn_next(struct sim_world *w, uint32_t i, int online)
{
    const struct sim_config *c = &w->cfg;
    double day = cos(2.0 * M_PI * (double)w->now / 86400e9);
    double mean = online ? (double)c->churn.session_ns * (1.0 + c->churn.diurnal * day)
                         : (double)c->churn.offline_ns * (1.0 - c->churn.diurnal * day);
    double len = churn_sample(w, mean / 1e9) * 1e9;
    uint64_t at = w->now + (len < 1e18 ? (uint64_t)len : (uint64_t)1e18);
    if (at <= c->duration_ns && sim_queue_push(&w->q, at, EV_CHURN, i, online ? 0 : 1) != 0) {
        w->failed = 1;
    }
}

static int record_period(struct sim_world *w, int online, double s)
{
    size_t used = w->session_n > w->offline_n ? w->session_n : w->offline_n;
    if (grow_pair(&w->session_s, &w->offline_s, used, &w->periods_cap) != 0) {
        return P4P_ENOMEM;
    }
    if (online) {
        w->session_s[w->session_n++] = s;
    } else {
        w->offline_s[w->offline_n++] = s;
    }
    return 0;
}

/* Node i's device goes off (up == 0) or comes back: its links go down or come up at both
 * ends, its state stays. */
static void churn(struct sim_world *w, uint32_t i, int up)
{
    if (record_period(w, !up, (double)(w->now - w->went_ns[i]) / 1e9) != 0) {
        w->failed = 1;
        return;
    }
    w->went_ns[i] = w->now;
    if (!up) {
        for (uint32_t k = w->g.off[i]; k < w->g.off[i + 1]; k++) {
            if (link_usable(w, i, w->g.adj[k])) {
                link_event(w, i, w->g.adj[k], P4P_LINK_DOWN);
            }
        }
        w->offline[i] = 1;
    } else {
        w->offline[i] = 0;
        for (uint32_t k = w->g.off[i]; k < w->g.off[i + 1]; k++) {
            if (link_usable(w, i, w->g.adj[k])) {
                link_event(w, i, w->g.adj[k], P4P_LINK_UP);
            }
        }
    }
    churn_next(w, i, up);
}

/* The cut: every link between the two sides goes down (arg 0) or comes back (arg 1). */
static void partition(struct sim_world *w, int heal)
{
    if (!heal) {
        for (uint32_t i = 0; i < w->n; i++) {
            for (uint32_t k = w->g.off[i]; k < w->g.off[i + 1]; k++) {
                uint32_t j = w->g.adj[k];
                if (i < j && w->side[i] != w->side[j] && link_usable(w, i, j)) {
                    link_event(w, i, j, P4P_LINK_DOWN);
                    w->cut_links++;
                }
            }
        }
        w->partitioned = 1;
        return;
    }
    w->partitioned = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        for (uint32_t k = w->g.off[i]; k < w->g.off[i + 1]; k++) {
            uint32_t j = w->g.adj[k];
            if (i < j && w->side[i] != w->side[j] && link_usable(w, i, j)) {
                link_event(w, i, j, P4P_LINK_UP);
            }
        }
    }
}

static int churn_partition_setup(struct sim_world *w)
{
    const struct sim_config *c = &w->cfg;
    if (c->churn.session_ns > 0) {
        w->offline = calloc(w->n, 1);
        w->went_ns = calloc(w->n, sizeof(*w->went_ns));
        if (w->offline == NULL || w->went_ns == NULL) {
            return P4P_ENOMEM;
        }
        sim_rng_derive(&w->churn_rng, c->seed, "churn", 0);
        for (uint32_t i = 0; i < w->n; i++) {
            churn_next(w, i, 1);
        }
    }
    if (c->partition.at_ns > 0) {
        w->side = calloc(w->n, 1);
        if (w->side == NULL) {
            return P4P_ENOMEM;
        }
        struct sim_rng r;
        sim_rng_derive(&r, c->seed, "partition", 0);
        uint32_t far = (uint32_t)(c->partition.fraction * w->n + 0.5);
        for (uint32_t i = 0; i < w->n; i++) {
            /* By position when there is one (a geographic split), else at random. */
            w->side[i] = w->g.xy != NULL ? w->g.xy[2 * i] < c->partition.fraction
                                         : sim_rng_below(&r, w->n) < far;
        }
        if (sim_queue_push(&w->q, c->partition.at_ns, EV_PARTITION, 0, 0) != 0 ||
            (c->partition.heal_ns > 0 &&
             sim_queue_push(&w->q, c->partition.heal_ns, EV_PARTITION, 0, 1) != 0)) {
            return P4P_ENOMEM;
        }
    }
    return w->failed ? P4P_ENOMEM : 0;
}

/* ---- The scenario's blob ----------------------------------------------------------------------
 */

/* The bytes of version v: seeded random data; version 1 has blob.edit bytes in the middle
 * replaced. */
static uint8_t *blob_bytes(const struct sim_world *w, int v)
{
    const struct sim_config *c = &w->cfg;
    uint8_t *data = malloc(c->blob.size_bytes ? c->blob.size_bytes : 1);
    if (data == NULL) {
        return NULL;
    }
    struct sim_rng r;
    sim_rng_derive(&r, c->seed, "blob-data", 0);
    sim_rng_bytes(&r, data, c->blob.size_bytes);
    if (v == 1) {
        sim_rng_derive(&r, c->seed, "blob-data", 1);
        sim_rng_bytes(&r, data + (c->blob.size_bytes - c->blob.edit_bytes) / 2, c->blob.edit_bytes);
    }
    return data;
}

/* Version v is due: the source adds it, and its neighbours that want it start fetching. */
static void blob_add(struct sim_world *w, int v)
{
    uint32_t src = w->cfg.blob.source;
    struct blob_job *j = &w->bj[v];
    if (w->nodes[src] == NULL) {
        j->pending = 1; /* the source is down: it adds the blob when it is back */
        return;
    }
    uint8_t *data = blob_bytes(w, v);
    if (data == NULL) {
        w->failed = 1;
        return;
    }
    int rc =
        p4p_node_blob_add(w->nodes[src], local_now(w, src), data, w->cfg.blob.size_bytes, j->id);
    free(data);
    after_input(w, src);
    if (rc != 0) {
        return;
    }
    j->added = 1;
    j->added_ns = w->now;
    w->bstate[v][src] = BLOB_HAVE;
    for (uint32_t k = w->g.off[src]; k < w->g.off[src + 1]; k++) {
        if (sim_queue_push(&w->q, w->now, EV_BLOB_ASK, w->g.adj[k], (uint32_t)v) != 0) {
            w->failed = 1;
        }
    }
}

/* Node i wants version v: it fetches when a neighbour has it (the fetch asks every neighbour;
 * those without it drop out). */
static void blob_ask(struct sim_world *w, uint32_t i, int v)
{
    if (w->nodes[i] == NULL || w->bstate[v][i] != BLOB_WANTED || !w->bj[v].added) {
        return;
    }
    if ((w->offline != NULL && w->offline[i])) {
        if (sim_queue_push(&w->q, w->now + 1000000000ull, EV_BLOB_ASK, i, (uint32_t)v) != 0) {
            w->failed = 1; /* asked again once the device is back */
        }
        return;
    }
    int near = 0;
    for (uint32_t k = w->g.off[i]; k < w->g.off[i + 1] && !near; k++) {
        near = w->bstate[v][w->g.adj[k]] == BLOB_HAVE;
    }
    if (near && p4p_node_blob_fetch(w->nodes[i], local_now(w, i), w->bj[v].id) == 0) {
        w->bstate[v][i] = BLOB_FETCHING;
    }
    after_input(w, i);
}

static int blob_setup(struct sim_world *w)
{
    const struct sim_config *c = &w->cfg;
    if (c->blob.size_bytes == 0) {
        return 0;
    }
    int versions = c->blob.edit_bytes > 0 ? 2 : 1;
    uint32_t want = c->blob.fetchers ? c->blob.fetchers : w->n - 1;
    uint32_t *order = malloc((size_t)w->n * sizeof(*order));
    if (order == NULL) {
        return P4P_ENOMEM;
    }
    for (int v = 0; v < versions; v++) {
        w->bstate[v] = calloc(w->n, 1);
        w->bj[v].took_s = calloc(w->n, sizeof(double));
        if (w->bstate[v] == NULL || w->bj[v].took_s == NULL) {
            free(order);
            return P4P_ENOMEM;
        }
    }
    uint32_t m = 0;
    for (uint32_t i = 0; i < w->n; i++) {
        if (i != c->blob.source) {
            order[m++] = i;
        }
    }
    sim_rng_derive(&w->blob_rng, c->seed, "blob", 0);
    for (uint32_t k = 0; k < want && k < m; k++) { /* partial Fisher-Yates: who wants it */
        uint32_t j = k + (uint32_t)sim_rng_below(&w->blob_rng, m - k);
        uint32_t t = order[k];
        order[k] = order[j];
        order[j] = t;
        for (int v = 0; v < versions; v++) {
            w->bstate[v][order[k]] = BLOB_WANTED;
        }
    }
    free(order);
    int rc = sim_queue_push(&w->q, c->blob.at_ns, EV_BLOB, c->blob.source, 0);
    if (rc == 0 && versions == 2) {
        rc = sim_queue_push(&w->q, c->blob.edit_at_ns, EV_BLOB, c->blob.source, 1);
    }
    return rc;
}

/* ---- The null application: flood without an engine, to measure the simulator alone ---------- */

/* A null frame is NULL_PAYLOAD bytes: message number (u32), hops so far (u32), zeros. Its
 * update id for metrics is the message number followed by zeros and "null". */
static void null_id(uint32_t m, uint8_t id[32])
{
    memset(id, 0, 32);
    memcpy(id, &m, sizeof(m));
    memcpy(id + 28, "null", 4);
}

static void null_send(struct sim_world *w, uint32_t from, p4p_addr except, uint32_t m,
                      uint32_t hops)
{
    uint8_t payload[NULL_PAYLOAD] = {0};
    memcpy(payload, &m, sizeof(m));
    memcpy(payload + 4, &hops, sizeof(hops));
    struct p4p_frame f = {0, 0, payload, sizeof(payload)};
    share_reset(w);
    for (uint32_t s = w->g.off[from]; s < w->g.off[from + 1]; s++) {
        if (w->g.adj[s] != except) {
            f.peer = w->g.adj[s];
            send_frame(w, from, &f);
        }
    }
    share_reset(w);
}

static int null_publish(struct sim_world *w, uint32_t origin)
{
    if (w->null_count == w->null_cap) {
        uint32_t cap = w->null_cap ? w->null_cap * 2 : 16;
        uint8_t **s = realloc(w->null_seen, cap * sizeof(*s));
        if (s == NULL) {
            return P4P_ENOMEM;
        }
        w->null_seen = s;
        w->null_cap = cap;
    }
    uint8_t *bits = calloc((w->n + 7) / 8, 1);
    uint8_t id[32];
    if (bits == NULL) {
        return P4P_ENOMEM;
    }
    uint32_t m = w->null_count++;
    w->null_seen[m] = bits;
    bits[origin / 8] |= (uint8_t)(1u << (origin % 8));
    null_id(m, id);
    if (metrics_published(&w->metrics, origin, id, w->now, NULL_PAYLOAD) != 0) {
        w->failed = 1;
    }
    null_send(w, origin, P4P_ADDR_BROADCAST, m, 0);
    return 0;
}

static void null_frame(struct sim_world *w, uint32_t v, const struct sim_packet *p)
{
    uint32_t m, hops;
    memcpy(&m, p->data, sizeof(m));
    memcpy(&hops, p->data + 4, sizeof(hops));
    uint8_t *bits = w->null_seen[m];
    if (bits[v / 8] & (1u << (v % 8))) {
        return;
    }
    bits[v / 8] |= (uint8_t)(1u << (v % 8));
    uint8_t id[32];
    null_id(m, id);
    if (metrics_delivered(&w->metrics, v, id, w->now, hops + 1) == P4P_ENOMEM) {
        w->failed = 1;
    }
    null_send(w, v, p->src, m, hops + 1);
}

/* ---- Events ---------------------------------------------------------------------------------- */

static void on_frame(struct sim_world *w, const struct sim_event *ev)
{
    struct sim_packet *p = sim_pool_get(&w->pool, ev->arg);
    w->c.arrivals++;
    w->c.last_arrival_ns = w->now;
    if (w->nodes == NULL) {
        null_frame(w, ev->node, p);
    } else if (w->nodes[ev->node] == NULL) {
        w->cs.dropped_down++; /* the receiver is down: the frame falls on deaf ears */
    } else if (w->offline != NULL && w->offline[ev->node]) {
        w->dropped_offline++; /* its device is off */
    } else if (w->partitioned && w->side[p->src] != w->side[ev->node]) {
        w->dropped_partition++; /* in flight when the cut came */
    } else {
        struct p4p_frame f = {p->iface, p->src, p->data, p->len};
        p4p_node_recv(w->nodes[ev->node], local_now(w, ev->node), &f);
        after_input(w, ev->node);
    }
    sim_pool_release(&w->pool, ev->arg);
}

static void publish(struct sim_world *w, uint32_t origin)
{
    int rc;
    if (w->nodes == NULL) {
        rc = null_publish(w, origin);
    } else {
        uint8_t payload[65536];
        uint32_t len = w->cfg.workload.payload_bytes;
        sim_rng_bytes(&w->workload_rng, payload, len);
        if (w->nodes[origin] == NULL || (w->offline != NULL && w->offline[origin])) {
            w->cs.publish_down++; /* the author's device is off: nothing is written */
            return;
        }
        rc = p4p_node_publish(w->nodes[origin], local_now(w, origin), payload, len, NULL);
        after_input(w, origin);
    }
    if (rc == 0) {
        w->c.published++;
    } else {
        w->c.publish_failed++;
    }
}

/* The scenario's workload: a Poisson process of `rate`, origins uniform over the nodes. */
static void workload_next(struct sim_world *w)
{
    const struct sim_config *c = &w->cfg;
    if (w->workload_done >= c->workload.updates) {
        return;
    }
    double gap_s = sim_rng_exp(&w->workload_rng, 1.0 / c->workload.rate_per_s);
    uint64_t at = w->now + (uint64_t)(gap_s * 1e9);
    if (at < c->workload.start_ns) {
        at = c->workload.start_ns;
    }
    if (at <= c->duration_ns && sim_queue_push(&w->q, at, EV_PUBLISH, 0, 1) != 0) {
        w->failed = 1;
    }
}

static void dispatch(struct sim_world *w, const struct sim_event *ev)
{
    switch (SIM_EVENT_KIND(ev)) {
    case EV_FRAME:
        on_frame(w, ev);
        break;
    case EV_TIMER:
        if (w->timer_at[ev->node] == ev->time_ns && w->nodes[ev->node] != NULL &&
            (w->offline == NULL || !w->offline[ev->node])) {
            w->timer_at[ev->node] = P4P_TIME_NONE;
            p4p_node_timeout(w->nodes[ev->node], local_now(w, ev->node));
            after_input(w, ev->node);
        }
        break;
    case EV_CRASH:
        if (w->nodes[ev->node] != NULL) {
            crash(w, ev->node, ev->arg);
        } else if (ev->arg == 1) {
            schedule_random_crash(w, ev->node); /* down already: the process goes on */
        }
        break;
    case EV_BLOB:
        blob_add(w, (int)ev->arg);
        break;
    case EV_CHURN:
        churn(w, ev->node, (int)ev->arg);
        break;
    case EV_PARTITION:
        partition(w, (int)ev->arg);
        break;
    case EV_BLOB_ASK:
        blob_ask(w, ev->node, (int)ev->arg);
        break;
    case EV_RESTART:
        restart(w, ev->node);
        if (ev->arg == 1 && w->nodes[ev->node] != NULL) {
            schedule_random_crash(w, ev->node);
        }
        break;
    case EV_PUBLISH:
        if (ev->arg == 1) {
            publish(w, (uint32_t)sim_rng_below(&w->workload_rng, w->n));
            w->workload_done++;
            workload_next(w);
        } else {
            publish(w, ev->node);
        }
        break;
    case EV_SAMPLE:
        if (metrics_sample(&w->metrics, w->now, w->c.frames_out, w->c.bytes_out) != 0) {
            w->failed = 1;
        }
        if (w->now + w->cfg.metrics.sample_ns <= w->cfg.duration_ns &&
            sim_queue_push(&w->q, w->now + w->cfg.metrics.sample_ns, EV_SAMPLE, 0, 0) != 0) {
            w->failed = 1;
        }
        break;
    default:
        break;
    }
}

int sim_world_run(struct sim_world *w, uint64_t until_ns, sim_progress_fn progress, void *ctx)
{
    if (w->error[0] != '\0') {
        return P4P_ECORRUPT;
    }
    struct sim_event ev;
    while (!w->failed && sim_queue_peek_time(&w->q) <= until_ns) {
        sim_queue_pop(&w->q, &ev);
        w->now = ev.time_ns;
        dispatch(w, &ev);
        if ((++w->c.events & 0x3ffff) == 0 && progress != NULL) {
            progress(ctx, w->now, w->c.events);
        }
    }
    if (w->now < until_ns && until_ns != UINT64_MAX) {
        w->now = until_ns;
    }
    if (w->error[0] != '\0') {
        return P4P_ECORRUPT;
    }
    return w->failed ? P4P_ENOMEM : 0;
}

/* ---- Set-up ---------------------------------------------------------------------------------- */

static int create_nodes(struct sim_world *w, char *err, size_t errlen)
{
    const struct sim_config *c = &w->cfg;
    struct p4p_config pc;
    p4p_config_default(&pc);
    pc.app = (enum p4p_app)c->nodes.app;
    pc.mtu = c->link.mtu;
    pc.seen_max = c->gossip.seen;
    pc.store_max = c->gossip.store;
    pc.gossip_interval_ns = c->gossip.interval_ns;
    pc.gossip_fanout = c->gossip.fanout;
    pc.gossip_digest_max = c->gossip.digest;
    pc.payload_max =
        c->workload.payload_bytes > pc.payload_max ? c->workload.payload_bytes : pc.payload_max;
    pc.storage_repair = c->storage.repair;
    pc.secure = c->security.sessions;
    w->node_cfg = pc;
    int rc = sim_disks_create(c, w->n, &w->disks, err, errlen);
    if (rc == 0 && w->disks != NULL) {
        w->life = calloc(w->n, sizeof(*w->life));
        rc = w->life ? 0 : P4P_ENOMEM;
    }
    for (uint32_t i = 0; i < w->n && rc == 0; i++) {
        rc = start_node(w, i, err, errlen);
    }
    rc = rc ? rc : schedule_crashes(w);
    rc = rc ? rc : churn_partition_setup(w);
    return rc ? rc : blob_setup(w);
}

int sim_world_create(const struct sim_config *cfg, const struct sim_world_opts *opts,
                     struct sim_world **out, char *err, size_t errlen)
{
    struct sim_world *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return P4P_ENOMEM;
    }
    w->cfg = *cfg;
    sim_pool_init(&w->pool);
    int rc = sim_graph_build(cfg, sim_rng_derive_u64(cfg->seed, "topology", 0), &w->g, err, errlen);
    if (rc != 0) {
        goto fail;
    }
    w->n = w->g.n;
    rc = sim_link_p2p_create(cfg, &w->g, cfg->seed, &w->link);
    if (rc != 0) {
        snprintf(err, errlen, "link model: %s", p4p_strerror(rc));
        goto fail;
    }
    rc = sim_queue_init(&w->q, (size_t)w->n * 2);
    rc = rc ? rc : metrics_init(&w->metrics, w->n);
    w->rngs = calloc(w->n, sizeof(*w->rngs));
    w->timer_at = malloc((size_t)w->n * sizeof(*w->timer_at));
    if (rc != 0 || w->rngs == NULL || w->timer_at == NULL) {
        rc = P4P_ENOMEM;
        snprintf(err, errlen, "out of memory for %u nodes", w->n);
        goto fail;
    }
    for (uint32_t i = 0; i < w->n; i++) {
        sim_rng_derive(&w->rngs[i], cfg->seed, "node", i);
        w->timer_at[i] = P4P_TIME_NONE;
    }
    sim_rng_derive(&w->workload_rng, cfg->seed, "workload", 0);
    sim_rng_derive(&w->crash_rng, cfg->seed, "crash", 0);
    if (cfg->clock.skew_ns > 0 || cfg->clock.drift_ppm > 0) {
        w->clocks = malloc((size_t)w->n * sizeof(*w->clocks));
        if (w->clocks == NULL) {
            rc = P4P_ENOMEM;
            goto fail;
        }
        for (uint32_t i = 0; i < w->n; i++) {
            struct sim_rng r;
            sim_rng_derive(&r, cfg->seed, "clock", i);
            w->clocks[i].offset_ns = sim_rng_below(&r, cfg->clock.skew_ns + 1);
            w->clocks[i].rate = 1.0 + (2 * sim_rng_uniform(&r) - 1) * cfg->clock.drift_ppm * 1e-6;
        }
    }
    w->wall_s = opts != NULL ? opts->wall_s : NULL;
    if (cfg->nodes.app != SIM_APP_NULL) {
        w->nodes = calloc(w->n, sizeof(*w->nodes));
        rc = w->nodes ? 0 : P4P_ENOMEM;
        if (rc == 0 && (opts == NULL || !opts->no_sigcache)) {
            rc = p4p_sigcache_create(0, &w->sigcache);
        }
        rc = rc ? rc : create_nodes(w, err, errlen);
        if (rc != 0) {
            goto fail;
        }
    }
    if (cfg->workload.updates > 0) {
        workload_next(w);
    }
    if (cfg->metrics.sample_ns > 0 && sim_queue_push(&w->q, 0, EV_SAMPLE, 0, 0) != 0) {
        rc = P4P_ENOMEM;
        goto fail;
    }
    *out = w;
    return 0;
fail:
    if (rc == P4P_ENOMEM && err[0] == '\0') {
        snprintf(err, errlen, "out of memory");
    }
    sim_world_destroy(w);
    return rc;
}

void sim_world_destroy(struct sim_world *w)
{
    if (w == NULL) {
        return;
    }
    if (w->nodes != NULL) {
        for (uint32_t i = 0; i < w->n; i++) {
            p4p_node_destroy(w->nodes[i]);
        }
        free(w->nodes);
    }
    for (uint32_t m = 0; m < w->null_count; m++) {
        free(w->null_seen[m]);
    }
    free(w->null_seen);
    p4p_sigcache_destroy(w->sigcache);
    sim_disks_destroy(w->disks);
    free(w->life);
    free(w->clocks);
    free(w->offline);
    free(w->went_ns);
    free(w->side);
    free(w->session_s);
    free(w->offline_s);
    free(w->catch_up_s);
    free(w->replayed);
    for (int v = 0; v < 2; v++) {
        free(w->bstate[v]);
        free(w->bj[v].took_s);
    }
    if (w->link != NULL) {
        w->link->ops->destroy(w->link);
    }
    free(w->rngs);
    free(w->timer_at);
    metrics_free(&w->metrics);
    sim_queue_free(&w->q);
    sim_pool_free(&w->pool);
    sim_graph_free(&w->g);
    free(w);
}

int sim_world_publish_at(struct sim_world *w, uint32_t node, uint64_t at_ns)
{
    if (node >= w->n || at_ns < w->now) {
        return P4P_EINVAL;
    }
    return sim_queue_push(&w->q, at_ns, EV_PUBLISH, node, 0);
}

/* ---- Accessors and results ------------------------------------------------------------------- */

uint64_t sim_world_now(const struct sim_world *w)
{
    return w->now;
}

const struct sim_counters *sim_world_counters(const struct sim_world *w)
{
    return &w->c;
}

const struct sim_metrics *sim_world_metrics(const struct sim_world *w)
{
    return &w->metrics;
}

const struct sim_graph *sim_world_graph(const struct sim_world *w)
{
    return &w->g;
}

const struct sim_link_stats *sim_world_link_stats(const struct sim_world *w)
{
    return &w->link->stats;
}

p4p_node *sim_world_node(struct sim_world *w, uint32_t i)
{
    return w->nodes != NULL && i < w->n ? w->nodes[i] : NULL;
}

const struct sim_crash_stats *sim_world_crash_stats(const struct sim_world *w)
{
    return &w->cs;
}

void sim_world_churn_means(const struct sim_world *w, double *session_s, uint64_t *sessions,
                           double *offline_s, uint64_t *offlines)
{
    double a = 0, b = 0;
    for (size_t k = 0; k < w->session_n; k++) {
        a += w->session_s[k];
    }
    for (size_t k = 0; k < w->offline_n; k++) {
        b += w->offline_s[k];
    }
    *session_s = w->session_n ? a / (double)w->session_n : 0;
    *offline_s = w->offline_n ? b / (double)w->offline_n : 0;
    *sessions = w->session_n;
    *offlines = w->offline_n;
}

uint64_t sim_world_node_clock(const struct sim_world *w, uint32_t i)
{
    return local_now(w, i);
}

uint32_t sim_world_blob_done(const struct sim_world *w, int v)
{
    return v >= 0 && v < 2 ? w->bj[v].done : 0;
}

int sim_world_fail_after(struct sim_world *w, uint32_t i, uint64_t writes)
{
    if (w->disks == NULL || i >= w->n || w->nodes[i] == NULL) {
        return P4P_EINVAL;
    }
    sim_disks_fail_after(w->disks, i, writes);
    return 0;
}

const char *sim_world_error(const struct sim_world *w)
{
    return w->error;
}

int sim_world_check_stores(struct sim_world *w, uint64_t *lost)
{
    uint64_t missing = 0;
    for (uint32_t i = 0; w->life != NULL && i < w->n; i++) {
        struct p4p_held disk;
        int down = w->nodes[i] == NULL;
        char err[256] = "";
        struct p4p_storage st;
        int rc = down ? sim_disks_open(w->disks, i, &st, err, sizeof(err)) : 0;
        rc = rc ? rc : sim_disks_held(w->disks, i, &disk);
        if (down) {
            sim_disks_crash(w->disks, i);
        }
        if (rc != 0) {
            snprintf(w->error, sizeof(w->error), "node %u: cannot read its store: %.180s", i,
                     err[0] ? err : p4p_strerror(rc));
            return P4P_ECORRUPT;
        }
        const struct p4p_held *acked = &w->life[i].acked;
        if (!same_held(&disk, acked)) {
            missing += acked->count > disk.count ? acked->count - disk.count : 1;
            if (w->error[0] == '\0') {
                check_failed(w, i, "the store lacks acknowledged updates at the end", &disk, acked);
            }
        }
    }
    w->lost_acked = missing;
    if (lost != NULL) {
        *lost = missing;
    }
    return w->error[0] != '\0' ? P4P_ECORRUPT : 0;
}

double sim_world_bytes_per_node(const struct sim_world *w)
{
    double total = (double)w->n * (sizeof(*w->rngs) + sizeof(*w->timer_at));
    if (w->nodes != NULL) {
        total += (double)w->n * sizeof(*w->nodes);
        for (uint32_t i = 0; i < w->n; i++) {
            total += w->nodes[i] ? (double)p4p_node_memory(w->nodes[i]) : 0;
        }
    }
    if (w->disks != NULL) {
        total += (double)sim_disks_memory(w->disks) + (double)w->n * sizeof(*w->life);
    }
    return w->n ? total / w->n : 0;
}

static const char *const stat_names[] = {
#define STAT_NAME_(name) #name,
    P4P_STATS(STAT_NAME_)
#undef STAT_NAME_
};
#define STAT_COUNT (sizeof(stat_names) / sizeof(stat_names[0]))

static size_t stat_index(const char *name)
{
    size_t k = 0;
    while (k < STAT_COUNT && strcmp(stat_names[k], name) != 0) {
        k++;
    }
    return k < STAT_COUNT ? k : 0;
}

static void stats_array(const struct p4p_stats *st, uint64_t out[STAT_COUNT])
{
    const struct p4p_stats s = *st;
    size_t k = 0;
#define STAT_COPY_(name) out[k++] = s.name;
    P4P_STATS(STAT_COPY_)
#undef STAT_COPY_
}

/* The signature counters describe the host's work (how often the shared cache answered), not
 * the protocol: every node logically verifies every update it accepts. They go to the wall
 * table, so the simulated results are the same with or without the cache. */
static int is_host_counter(const char *name)
{
    return strncmp(name, "sig_", 4) == 0;
}

/* Nodes, their counters, network sums, and the bytes-sent distribution. */
static int write_nodes(const struct sim_world *w, res_db *db)
{
    uint64_t sum[STAT_COUNT] = {0};
    double *bytes = malloc((w->n ? w->n : 1) * sizeof(*bytes));
    if (bytes == NULL) {
        return P4P_ENOMEM;
    }
    int rc = 0;
    for (uint32_t i = 0; i < w->n && rc == 0; i++) {
        char pk_hex[65] = "";
        uint64_t v[STAT_COUNT] = {0};
        struct p4p_stats st = {0};
        if (w->nodes != NULL) {
            uint8_t pk[32];
            if (w->nodes[i] != NULL) {
                p4p_node_public_key(w->nodes[i], pk);
                p4p_node_stats(w->nodes[i], &st);
            } else {
                memcpy(pk, w->life[i].pk, 32); /* down at the end */
            }
            if (w->life != NULL) {
                add_stats(&st, &w->life[i].past); /* earlier lives count too */
            }
            sodium_bin2hex(pk_hex, sizeof(pk_hex), pk, 32);
            stats_array(&st, v);
        }
        rc = res_node(db, i, w->nodes ? pk_hex : NULL, w->g.off[i + 1] - w->g.off[i],
                      w->g.xy ? &w->g.xy[2 * i] : NULL);
        for (size_t k = 0; k < STAT_COUNT && rc == 0 && w->nodes != NULL; k++) {
            sum[k] += v[k];
            if (!is_host_counter(stat_names[k])) {
                rc = res_scalar(db, i, stat_names[k], (double)v[k]);
            }
        }
        bytes[i] = (double)st.bytes_out;
    }
    for (size_t k = 0; k < STAT_COUNT && rc == 0 && w->nodes != NULL; k++) {
        rc = is_host_counter(stat_names[k]) ? res_wall(db, stat_names[k], (double)sum[k])
                                            : res_scalar(db, -1, stat_names[k], (double)sum[k]);
    }
    size_t sealed = stat_index("sess_sealed"), overhead = stat_index("sess_overhead_bytes");
    if (rc == 0 && w->nodes != NULL && sum[sealed] > 0) { /* bytes sessions add to a message */
        rc = res_scalar(db, -1, "sess_overhead_per_message",
                        (double)sum[overhead] / (double)sum[sealed]);
    }
    struct res_summary s;
    res_summarize(bytes, w->n, &s);
    rc = rc ? rc : res_stat(db, "bytes_out_per_node", &s);
    free(bytes);
    return rc;
}

/* Storage and crash figures: what writing costs, and what crashes cost. */
static int write_storage(const struct sim_world *w, res_db *db)
{
    if (w->disks == NULL) {
        return 0;
    }
    struct p4p_storage_stats sum = {0};
    int rc = 0;
    for (uint32_t i = 0; i < w->n && rc == 0; i++) {
        struct p4p_storage_stats st;
        sim_disks_stats(w->disks, i, &st);
        rc = res_scalar(db, i, "storage_stored_bytes", (double)st.stored_bytes);
        sum.commits += st.commits;
        sum.records += st.records;
        sum.logical_bytes += st.logical_bytes;
        sum.written_bytes += st.written_bytes;
        sum.stored_bytes += st.stored_bytes;
        sum.corrupt += st.corrupt;
    }
    const struct sim_crash_stats *cs = &w->cs;
    double ops = sum.records ? (double)sum.records : 1;
    struct {
        const char *name;
        double v;
    } net[] = {
        {"storage_commits", (double)sum.commits},
        {"storage_records", (double)sum.records},
        {"storage_logical_bytes", (double)sum.logical_bytes},
        {"storage_written_bytes", (double)sum.written_bytes},
        {"storage_stored_bytes", (double)sum.stored_bytes},
        {"storage_corrupt", (double)sum.corrupt},
        {"write_amplification",
         sum.logical_bytes ? (double)sum.written_bytes / (double)sum.logical_bytes : 0},
        {"stored_bytes_per_op", (double)sum.stored_bytes / ops},
        {"crashes", (double)cs->crashes},
        {"crashes_on_write", (double)cs->crashes_on_write},
        {"restarts", (double)cs->restarts},
        {"restarts_caught_up", (double)cs->caught_up},
        {"arrivals_dropped_down", (double)cs->dropped_down},
        {"publish_down", (double)cs->publish_down},
        {"ops_lost_acked", (double)w->lost_acked},
    };
    for (size_t k = 0; k < sizeof(net) / sizeof(net[0]) && rc == 0; k++) {
        rc = res_scalar(db, -1, net[k].name, net[k].v);
    }
    struct res_summary s;
    res_summarize(w->catch_up_s, (size_t)cs->caught_up, &s);
    rc = rc ? rc : res_stat(db, "catch_up_s", &s);
    res_summarize(w->replayed, (size_t)cs->restarts, &s);
    rc = rc ? rc : res_stat(db, "replayed_records", &s);
    rc = rc ? rc : res_wall(db, "recovery_wall_s", cs->recovery_wall_s);
    rc = rc ? rc : res_wall(db, "recovery_wall_max_s", cs->recovery_wall_max_s);
    return rc;
}

/* Churn and partition figures: the periods as they happened, and what they cost. */
static int write_churn(const struct sim_world *w, res_db *db)
{
    int rc = 0;
    if (w->offline != NULL) {
        struct res_summary s;
        res_summarize(w->session_s, w->session_n, &s);
        rc = res_stat(db, "churn_session_s", &s);
        res_summarize(w->offline_s, w->offline_n, &s);
        rc = rc ? rc : res_stat(db, "churn_offline_s", &s);
        rc = rc ? rc : res_scalar(db, -1, "arrivals_dropped_offline", (double)w->dropped_offline);
    }
    if (rc == 0 && w->side != NULL) {
        rc = res_scalar(db, -1, "partition_cut_links", (double)w->cut_links);
        rc = rc ? rc
                : res_scalar(db, -1, "arrivals_dropped_partition", (double)w->dropped_partition);
    }
    return rc;
}

/* Blob figures: how many wanted each version, how many got it, and how long it took. */
static int write_blobs(const struct sim_world *w, res_db *db)
{
    int rc = 0;
    static const char *const names[2][3] = {
        {"blob_wanted", "blob_completed", "blob_transfer_s"},
        {"blob_v2_wanted", "blob_v2_completed", "blob_v2_transfer_s"},
    };
    for (int v = 0; v < 2 && rc == 0; v++) {
        if (w->bstate[v] == NULL) {
            continue;
        }
        uint32_t wanted = 0;
        for (uint32_t i = 0; i < w->n; i++) {
            wanted += w->bstate[v][i] != BLOB_NOT_WANTED && i != w->cfg.blob.source;
        }
        struct res_summary s;
        rc = res_scalar(db, -1, names[v][0], wanted);
        rc = rc ? rc : res_scalar(db, -1, names[v][1], w->bj[v].done);
        res_summarize(w->bj[v].took_s, w->bj[v].done, &s);
        rc = rc ? rc : res_stat(db, names[v][2], &s);
    }
    return rc;
}

int sim_world_write_results(const struct sim_world *w, res_db *db)
{
    int rc = write_nodes(w, db);
    const struct sim_link_stats *ls = &w->link->stats;
#define LINK_SCALAR_(name) rc = rc ? rc : res_scalar(db, -1, "link_" #name, (double)ls->name);
    SIM_LINK_STATS(LINK_SCALAR_)
#undef LINK_SCALAR_
    rc = rc ? rc : res_scalar(db, -1, "events", (double)w->c.events);
    rc = rc ? rc : res_scalar(db, -1, "arrivals", (double)w->c.arrivals);
    rc = rc ? rc : res_scalar(db, -1, "publish_failed", (double)w->c.publish_failed);
    rc = rc ? rc : res_scalar(db, -1, "pool_failures", (double)w->c.pool_failures);
    rc = rc ? rc : res_scalar(db, -1, "topology_edges", (double)w->g.edges);
    uint32_t comps = 0, largest = 0;
    sim_graph_components(&w->g, &comps, &largest);
    rc = rc ? rc : res_scalar(db, -1, "topology_components", comps);
    rc = rc ? rc : res_scalar(db, -1, "topology_largest_component", largest);
    rc = rc ? rc : write_storage(w, db);
    rc = rc ? rc : write_blobs(w, db);
    rc = rc ? rc : write_churn(w, db);
    for (uint32_t i = 0; i < w->n && rc == 0 && w->clocks != NULL; i++) {
        rc = res_scalar(db, i, "clock_offset_s", (double)w->clocks[i].offset_ns / 1e9);
        rc = rc ? rc : res_scalar(db, i, "clock_drift_ppm", (w->clocks[i].rate - 1.0) * 1e6);
    }
    rc = rc ? rc : metrics_write(&w->metrics, db, w->cfg.metrics.deliveries);
    return rc;
}
