/*
 * gossip_bench.c — `make bench`: engine/plumtree measured: 10,000 nodes on a HyParView
 * overlay (active 5, passive 30), a discrete-event network with 5..25 ms one-way delays.
 *
 *   push gossip  mode PUSH, fanout 1, every informed node pushes every round (round = 1 s,
 *                much longer than a delay, so rounds are synchronous): rounds and PUSH frames
 *                until 99% / 100% of the nodes hold one message; compared with the epidemic
 *                estimate log2(N) + ln(N) (uniform peer choice on a complete graph, Pittel
 *                1987; Frieze & Grimmett 1985) and with a direct simulation of that model.
 *   plumtree     mode TREE: time, hops and frames until 99% / 100% for the first broadcast
 *                (every link eager: a flood that prunes itself) and for a settled one; then
 *                the same with 10% loss and with 10% of the nodes failed.
 *
 * Usage: gossip_bench [N] [seed] (default 10,000 nodes). Prints a table; nothing here is asserted.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plumtree.h"

#define MS  1000000ull
#define SEC 1000000000ull

static uint64_t splitmix_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void splitmix_fill(void *ctx, uint8_t *out, size_t len)
{
    uint64_t *s = ctx;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = splitmix_next(s);
        for (size_t k = 0; k < 8 && i + k < len; k++) {
            out[i + k] = (uint8_t)(v >> (8 * k));
        }
    }
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
    return n ? splitmix_next(s) % n : 0;
}

static void die(const char *what)
{
    fprintf(stderr, "measure: %s\n", what);
    exit(1);
}

enum ev_kind { EV_FRAME = 1, EV_TIMER = 2 };

struct ev {
    p4p_time_ns t;
    uint64_t seq;
    uint32_t kind, to, from, len;
    uint8_t *data;
};

struct snode {
    uint64_t rng;
    plumtree *pt;
    bool alive;
    p4p_time_ns sched;
    p4p_time_ns got_at; /* the tracked message; P4P_TIME_NONE until delivered */
    uint32_t hops;
};

struct sim {
    uint32_t n;
    struct snode *nodes;
    struct ev *heap;
    size_t heap_n, heap_cap;
    uint64_t seq;
    p4p_time_ns now;
    uint64_t rng;
    uint32_t loss_pct;
    uint64_t sent[16];
    uint64_t bytes;
    uint64_t tracked_push; /* PUSH frames carrying the tracked message */
    uint8_t track[PLUMTREE_ID_LEN];
};

static bool ev_before(const struct ev *a, const struct ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(struct sim *s, struct ev e)
{
    if (s->heap_n == s->heap_cap) {
        s->heap_cap = s->heap_cap ? 2 * s->heap_cap : 4096;
        s->heap = realloc(s->heap, s->heap_cap * sizeof(*s->heap));
        if (!s->heap) {
            die("out of memory");
        }
    }
    e.seq = s->seq++;
    size_t i = s->heap_n++;
    while (i > 0 && ev_before(&e, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = e;
}

static struct ev heap_pop(struct sim *s)
{
    struct ev top = s->heap[0];
    struct ev last = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_n) {
            break;
        }
        if (c + 1 < s->heap_n && ev_before(&s->heap[c + 1], &s->heap[c])) {
            c++;
        }
        if (!ev_before(&s->heap[c], &last)) {
            break;
        }
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->heap_n > 0) {
        s->heap[i] = last;
    }
    return top;
}

static void drain(struct sim *s, uint32_t i)
{
    struct snode *nd = &s->nodes[i];
    struct plumtree_frame f;
    while (plumtree_poll(nd->pt, &f) == 0) {
        s->sent[f.data[0] & 0x0f]++;
        s->bytes += f.len;
        /* PUSH = [0xd?][0x83][0x58 0x20][id]... */
        if ((f.data[0] & 0x0f) == PLUMTREE_PUSH && f.len > 36 &&
            memcmp(f.data + 4, s->track, 32) == 0) {
            s->tracked_push++;
        }
        if (rnd_below(&s->rng, 100) < s->loss_pct) {
            continue;
        }
        struct ev e = {.t = s->now + 5 * MS + rnd_below(&s->rng, 20 * MS),
                       .kind = EV_FRAME,
                       .to = f.peer,
                       .from = i,
                       .len = (uint32_t)f.len};
        e.data = malloc(f.len);
        if (!e.data) {
            die("out of memory");
        }
        memcpy(e.data, f.data, f.len);
        heap_push(s, e);
    }
    struct plumtree_event ev;
    while (plumtree_poll_event(nd->pt, &ev) == 0) {
        if (ev.kind == PLUMTREE_EVENT_DELIVERED && memcmp(ev.id, s->track, 32) == 0 &&
            nd->got_at == P4P_TIME_NONE) {
            nd->got_at = s->now;
            nd->hops = ev.hops;
        }
    }
    p4p_time_ns d = plumtree_deadline(nd->pt);
    if (d < nd->sched) {
        nd->sched = d < s->now ? s->now : d;
        heap_push(s, (struct ev){.t = nd->sched, .kind = EV_TIMER, .to = i});
    }
}

static void step(struct sim *s)
{
    struct ev e = heap_pop(s);
    s->now = e.t;
    struct snode *nd = &s->nodes[e.to];
    if (e.kind == EV_FRAME) {
        if (nd->alive) {
            plumtree_recv(nd->pt, s->now, e.from, e.data, e.len);
            drain(s, e.to);
        }
        free(e.data);
    } else if (nd->alive && e.t == nd->sched) {
        nd->sched = P4P_TIME_NONE;
        plumtree_timeout(nd->pt, s->now);
        drain(s, e.to);
    }
}

static void run_until(struct sim *s, p4p_time_ns t)
{
    while (s->heap_n > 0 && s->heap[0].t <= t) {
        step(s);
    }
    s->now = t;
}

static void sim_init(struct sim *s, uint32_t n, const struct plumtree_config *cfg, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->rng = seed;
    s->nodes = calloc(n, sizeof(*s->nodes));
    if (!s->nodes) {
        die("out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        struct snode *nd = &s->nodes[i];
        nd->rng = seed * 1000003ull + i;
        nd->alive = true;
        nd->sched = P4P_TIME_NONE;
        nd->got_at = P4P_TIME_NONE;
        struct plumtree_env env = {.ctx = &nd->rng, .random = splitmix_fill};
        if (plumtree_create(cfg, &env, i, &nd->pt) != 0) {
            die("plumtree_create");
        }
    }
    /* Joins: node i through a random earlier node, one every 10 ms. */
    for (uint32_t i = 1; i < n; i++) {
        run_until(s, s->now + 10 * MS);
        plumtree_join(s->nodes[i].pt, s->now, (p4p_addr)rnd_below(&s->rng, i));
        drain(s, i);
    }
    run_until(s, s->now + 60 * SEC);
}

static void sim_free(struct sim *s)
{
    for (size_t k = 0; k < s->heap_n; k++) {
        free(s->heap[k].data);
    }
    free(s->heap);
    for (uint32_t i = 0; i < s->n; i++) {
        plumtree_destroy(s->nodes[i].pt);
    }
    free(s->nodes);
}

static void overlay_stats(const struct sim *s)
{
    uint64_t act = 0, pas = 0, asym = 0;
    uint32_t amin = UINT32_MAX, amax = 0;
    p4p_addr v[64];
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t k = plumtree_active_view(s->nodes[i].pt, v, 64);
        act += k;
        amin = k < amin ? k : amin;
        amax = k > amax ? k : amax;
        pas += plumtree_passive_view(s->nodes[i].pt, NULL, 0);
        for (uint32_t j = 0; j < k; j++) {
            p4p_addr w[64];
            uint32_t kk = plumtree_active_view(s->nodes[v[j]].pt, w, 64);
            bool back = false;
            for (uint32_t q = 0; q < kk; q++) {
                back |= w[q] == i;
            }
            asym += !back;
        }
    }
    printf("overlay: N=%u active mean %.2f (min %u, max %u), passive mean %.1f, "
           "one-sided links %llu\n",
           s->n, (double)act / s->n, amin, amax, (double)pas / s->n, (unsigned long long)asym);
}

static void make_id(uint32_t m, uint8_t id[32])
{
    uint64_t st = 0xabcdef + m;
    splitmix_fill(&st, id, 32);
}

struct result {
    p4p_time_ns t99, t100;
    uint64_t frames99[16], frames100[16];
    uint64_t push99, push100;
    uint32_t reached, alive;
    uint32_t max_hops;
    double mean_hops;
};

static uint32_t reached(const struct sim *s, uint32_t *alive)
{
    uint32_t r = 0, a = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->nodes[i].alive) {
            a++;
            r += s->nodes[i].got_at != P4P_TIME_NONE;
        }
    }
    *alive = a;
    return r;
}

/* Broadcasts message m from `origin` and steps the simulation in `tick` increments until
 * everyone has it or `limit` passed; frame counts are taken at the first tick reaching 99%
 * and 100%. */
static struct result broadcast(struct sim *s, uint32_t origin, uint32_t m, p4p_time_ns tick,
                               p4p_time_ns limit)
{
    struct result r = {.t99 = P4P_TIME_NONE, .t100 = P4P_TIME_NONE};
    uint64_t base[16];
    memcpy(base, s->sent, sizeof(base));
    s->tracked_push = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        s->nodes[i].got_at = P4P_TIME_NONE;
    }
    make_id(m, s->track);
    uint8_t payload[32] = {0};
    p4p_time_ns t0 = s->now;
    if (plumtree_broadcast(s->nodes[origin].pt, s->now, s->track, payload, sizeof(payload))) {
        die("broadcast");
    }
    s->nodes[origin].got_at = s->now;
    s->nodes[origin].hops = 0;
    drain(s, origin);
    while (s->now - t0 < limit) {
        run_until(s, s->now + tick);
        uint32_t alive;
        uint32_t got = reached(s, &alive);
        if (r.t99 == P4P_TIME_NONE && (uint64_t)got * 100 >= (uint64_t)alive * 99) {
            r.t99 = s->now - t0;
            r.push99 = s->tracked_push;
            for (int k = 0; k < 16; k++) {
                r.frames99[k] = s->sent[k] - base[k];
            }
        }
        if (got == alive) {
            r.t100 = s->now - t0;
            r.push100 = s->tracked_push;
            for (int k = 0; k < 16; k++) {
                r.frames100[k] = s->sent[k] - base[k];
            }
            break;
        }
    }
    r.reached = reached(s, &r.alive);
    uint64_t hs = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->nodes[i].alive && s->nodes[i].got_at != P4P_TIME_NONE) {
            hs += s->nodes[i].hops;
            r.max_hops = s->nodes[i].hops > r.max_hops ? s->nodes[i].hops : r.max_hops;
        }
    }
    r.mean_hops = r.reached ? (double)hs / r.reached : 0;
    return r;
}

static struct plumtree_config base_config(enum plumtree_mode mode)
{
    struct plumtree_config c;
    plumtree_config_default(&c);
    c.mode = mode;
    c.mtu = 512;
    c.outbox_max = 48;
    c.event_max = 32;
    c.payload_max = 64;
    c.seen_max = 256;
    c.cache_max = 32;
    c.missing_max = 64;
    c.ihave_max = 64;
    return c;
}

/* Push gossip on the complete graph, the model behind log2(N) + ln(N): every informed node
 * tells one uniformly random node per synchronous round. */
static void complete_graph_push(uint32_t n, uint64_t seed, uint32_t *r99, uint32_t *r100,
                                uint64_t *m99, uint64_t *m100)
{
    uint8_t *inf = calloc(n, 1), *next = calloc(n, 1);
    uint64_t rng = seed, msgs = 0;
    uint32_t count = 1;
    inf[0] = 1;
    *r99 = 0;
    for (uint32_t round = 1;; round++) {
        memcpy(next, inf, n);
        for (uint32_t i = 0; i < n; i++) {
            if (inf[i]) {
                uint32_t j;
                do {
                    j = (uint32_t)rnd_below(&rng, n);
                } while (j == i);
                msgs++;
                if (!next[j]) {
                    next[j] = 1;
                    count++;
                }
            }
        }
        memcpy(inf, next, n);
        if (!*r99 && (uint64_t)count * 100 >= (uint64_t)n * 99) {
            *r99 = round;
            *m99 = msgs;
        }
        if (count == n) {
            *r100 = round;
            *m100 = msgs;
            break;
        }
    }
    free(inf);
    free(next);
}

static void run_push(uint32_t n, uint64_t seed)
{
    struct plumtree_config c = base_config(PLUMTREE_MODE_PUSH);
    c.push_rounds = 1000; /* informed nodes push for ever (within the run) */
    c.fanout = 1;
    c.round_ns = 1 * SEC;
    struct sim s;
    sim_init(&s, n, &c, seed);
    overlay_stats(&s);
    double est = log2((double)n) + log((double)n);
    double reg = (1.0 / log(2.0 * (1 - 1.0 / 5)) - 1.0 / (5 * log(1 - 1.0 / 5))) * log((double)n);
    printf("\npush gossip, fanout 1, synchronous 1 s rounds, N=%u\n", n);
    printf("  estimate log2(N) + ln(N)                    = %.1f rounds\n", est);
    printf("  estimate for random 5-regular graphs        = %.1f rounds "
           "(Fountoulakis & Panagiotou)\n",
           reg);
    for (uint32_t k = 0; k < 5; k++) {
        uint32_t r99 = 0, r100 = 0;
        uint64_t m99 = 0, m100 = 0;
        complete_graph_push(n, seed + k, &r99, &r100, &m99, &m100);
        printf("  complete graph (direct model), run %u: 99%% after %u rounds (%llu msgs), "
               "100%% after %u rounds (%llu msgs)\n",
               k, r99, (unsigned long long)m99, r100, (unsigned long long)m100);
    }
    for (uint32_t k = 0; k < 5; k++) {
        /* Broadcast just after a round boundary; count whole rounds elapsed. */
        run_until(&s, (s.now / SEC + 1) * SEC + 1 * MS);
        struct result r = broadcast(&s, (uint32_t)rnd_below(&s.rng, n), k, SEC, 200 * SEC);
        printf("  HyParView overlay, module, run %u: 99%% after %llu rounds (%llu PUSH), 100%% "
               "after %llu rounds (%llu PUSH); max hops %u, mean %.1f\n",
               k, (unsigned long long)(r.t99 / SEC), (unsigned long long)r.push99,
               (unsigned long long)(r.t100 / SEC), (unsigned long long)r.push100, r.max_hops,
               r.mean_hops);
        run_until(&s, s.now + 10 * SEC); /* let the rumour die down between runs */
    }
    sim_free(&s);
}

static void print_tree(const char *what, const struct result *r)
{
    printf("  %-34s reached %u/%u; 99%% at %4llu ms, 100%% at %4llu ms; hops max %u mean %.1f\n",
           what, r->reached, r->alive, (unsigned long long)(r->t99 / MS),
           r->t100 == P4P_TIME_NONE ? 99999ull : (unsigned long long)(r->t100 / MS), r->max_hops,
           r->mean_hops);
    const uint64_t *f = r->t100 != P4P_TIME_NONE ? r->frames100 : r->frames99;
    printf("  %-34s frames to 100%%: GOSSIP %llu, IHAVE %llu, ANNOUNCE %llu, GRAFT %llu, PRUNE "
           "%llu (GOSSIP to 99%%: %llu)\n",
           "", (unsigned long long)f[PLUMTREE_GOSSIP], (unsigned long long)f[PLUMTREE_IHAVE],
           (unsigned long long)f[PLUMTREE_ANNOUNCE], (unsigned long long)f[PLUMTREE_GRAFT],
           (unsigned long long)f[PLUMTREE_PRUNE], (unsigned long long)r->frames99[PLUMTREE_GOSSIP]);
}

/* fixed: the first broadcast comes from a random node (it shapes the tree), the following
 * ones all from node 0, to show what the optimisation does for one steady source. */
static void run_tree(uint32_t n, uint64_t seed, enum plumtree_mode mode, uint32_t optimize,
                     bool fixed)
{
    struct plumtree_config c = base_config(mode);
    c.optimize_threshold = optimize;
    struct sim s;
    sim_init(&s, n, &c, seed);
    printf("\n%s, N=%u, delays 5..25 ms, optimisation threshold %u, sources %s\n",
           mode == PLUMTREE_MODE_TREE ? "plumtree" : "flood", n, optimize,
           fixed ? "random then node 0" : "random");
    overlay_stats(&s);
    char what[64];
    uint32_t m = 100;
    for (uint32_t k = 0; k < (fixed ? 8 : 4); k++, m++) {
        uint32_t origin = (uint32_t)rnd_below(&s.rng, n);
        struct result r = broadcast(&s, fixed && k > 0 ? 0 : origin, m, 5 * MS, 20 * SEC);
        snprintf(what, sizeof(what), "broadcast %u, no loss", k + 1);
        print_tree(what, &r);
        run_until(&s, s.now + 2 * SEC);
    }
    if (mode != PLUMTREE_MODE_TREE || fixed) {
        sim_free(&s);
        return;
    }
    s.loss_pct = 10;
    for (uint32_t k = 0; k < 3; k++, m++) {
        struct result r = broadcast(&s, (uint32_t)rnd_below(&s.rng, n), m, 5 * MS, 20 * SEC);
        snprintf(what, sizeof(what), "10%% loss, broadcast %u", k + 1);
        print_tree(what, &r);
        run_until(&s, s.now + 2 * SEC);
    }
    for (uint32_t i = 7; i < n; i += 10) {
        s.nodes[i].alive = false;
    }
    for (uint32_t k = 0; k < 4; k++, m++) {
        uint32_t origin;
        do {
            origin = (uint32_t)rnd_below(&s.rng, n);
        } while (!s.nodes[origin].alive);
        struct result r = broadcast(&s, origin, m, 5 * MS, 20 * SEC);
        snprintf(what, sizeof(what), "10%% loss, 10%% failed, bcast %u", k + 1);
        print_tree(what, &r);
        run_until(&s, s.now + (k == 1 ? 12 : 2) * SEC);
    }
    struct plumtree_stats tot = {0}, st;
    for (uint32_t i = 0; i < n; i++) {
        plumtree_stats(s.nodes[i].pt, &st);
        tot.peers_failed += st.peers_failed;
        tot.dropped_outbox_full += st.dropped_outbox_full;
        tot.missing_expired += st.missing_expired;
    }
    printf("  totals: peers failed %llu, outbox drops %llu, missing given up %llu\n",
           (unsigned long long)tot.peers_failed, (unsigned long long)tot.dropped_outbox_full,
           (unsigned long long)tot.missing_expired);
    sim_free(&s);
}

int main(int argc, char **argv)
{
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 10000;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    const char *only = argc > 3 ? argv[3] : "all";
    if (!strcmp(only, "all") || !strcmp(only, "push")) {
        run_push(n, seed);
    }
    if (!strcmp(only, "all") || !strcmp(only, "tree")) {
        run_tree(n, seed, PLUMTREE_MODE_TREE, 0, false);
    }
    if (!strcmp(only, "all") || !strcmp(only, "treeopt")) {
        run_tree(n, seed, PLUMTREE_MODE_TREE, 0, true);
        run_tree(n, seed, PLUMTREE_MODE_TREE, 3, true);
        run_tree(n, seed, PLUMTREE_MODE_TREE, 3, false);
    }
    if (!strcmp(only, "all") || !strcmp(only, "flood")) {
        run_tree(n, seed, PLUMTREE_MODE_FLOOD, 0, false);
    }
    return 0;
}
