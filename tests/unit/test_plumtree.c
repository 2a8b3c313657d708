/*
 * test_plumtree.c — unit tests for engine/plumtree.{h,c}: HyParView membership, Plumtree
 * broadcast and the push / pull / push-pull anti-entropy baseline.
 *
 * A small discrete-event harness runs N nodes: frames polled from a node are delivered after
 * a random delay (5..25 ms) or lost with a given probability; node timers are events too
 * (re-scheduled from plumtree_deadline() after every call, stale ones skipped). Failed nodes
 * drop everything silently, so their neighbours find out by keepalive silence (or, with
 * `notify_dead`, by the host telling the sender that its frame could not be delivered, the
 * way a TCP connection reset would). Everything is deterministic: one seeded splitmix
 * stream for the network, one per node for the module's random callback; no real time.
 *
 * "Quiescent" checks of the views first step the simulation until no membership message
 * (JOIN .. DISCONNECT) is in flight, so that half-finished handshakes do not count.
 *
 * Covered: (a) HyParView invariants after joins and shuffles: symmetric active views, sizes
 * within bounds, every node in some active view, a connected overlay; the same after 20% of
 * the nodes fail, found by silence or reported by the host. (b) Plumtree: every broadcast
 * reaches every node exactly once; the eager links become a spanning tree and a settled
 * broadcast costs exactly N-1 payloads, against ~N*(degree-1) for flooding; with 10% loss
 * and 10% of the nodes failing mid-run, every broadcast reaches every live node (GRAFT, the
 * repair exchange and view repair); with the optimisation delivery stays complete and the
 * cost near N-1. (c) the seen table stays bounded, forgets oldest first, memory never grows. (d)
 * malformed frames: every prefix of a valid frame of each type, a trailing byte, every
 * other version, specific field violations, and a fixed-seed fuzz loop of 200,000 frames are
 * rejected and counted, never crash. (e) push, pull and push-pull reach every node. Also:
 * protocol steps driven by hand (JOIN, NEIGHBOR priorities, DISCONNECT, promotion from the
 * passive view, keepalive silence, PRUNE, GRAFT timing and retries), configuration
 * validation, and a determinism check.
 *
 * Build with -DTEST_SEED_BASE=k to run every scenario under other seeds (0..60 pass).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cbor.h"
#include "plumtree.h"

/* Build with -DTEST_SEED_BASE=k to run every scenario under other seeds. */
#ifndef TEST_SEED_BASE
#define TEST_SEED_BASE 0
#endif

#define MS      1000000ull
#define SEC     1000000000ull
#define MSG_MAX 64

/* ---- Random -------------------------------------------------------------------------------- */

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

/* Message ids: bytes 0..3 hold the message's index, the rest is derived from it. */
static void make_id(uint32_t msg, uint8_t id[PLUMTREE_ID_LEN])
{
    uint64_t s = msg * 7919ull + 1;
    splitmix_fill(&s, id, PLUMTREE_ID_LEN);
    for (int k = 0; k < 4; k++) {
        id[k] = (uint8_t)(msg >> (8 * k));
    }
}

static uint32_t id_msg(const uint8_t id[PLUMTREE_ID_LEN])
{
    return (uint32_t)id[0] | (uint32_t)id[1] << 8 | (uint32_t)id[2] << 16 | (uint32_t)id[3] << 24;
}

/* ---- Harness ------------------------------------------------------------------------------- */

enum ev_kind { EV_FRAME = 1, EV_TIMER = 2, EV_DOWN = 3 };

struct ev {
    p4p_time_ns t;
    uint64_t seq;
    enum ev_kind kind;
    uint32_t to, from;
    uint32_t len;
    uint8_t *data;
};

struct snode {
    uint64_t rng; /* first: env.ctx points at the node, splitmix_fill reads it as this */
    plumtree *pt;
    bool alive;
    p4p_time_ns sched; /* the timer event that counts; others are stale */
    uint8_t got[MSG_MAX];
    uint32_t same_time_calls;
    p4p_time_ns last_timeout;
};

struct sim {
    struct plumtree_config cfg;
    uint32_t n;
    struct snode *nodes;
    struct ev *heap;
    size_t heap_n, heap_cap;
    uint64_t seq;
    p4p_time_ns now;
    uint64_t rng;
    uint32_t loss_pct;
    bool notify_dead;
    uint64_t sent_by_type[16];
    uint64_t membership_in_flight;
    uint64_t lost;
    uint64_t double_deliveries;
};

static bool ev_before(const struct ev *a, const struct ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(struct sim *s, struct ev e)
{
    if (s->heap_n == s->heap_cap) {
        s->heap_cap = s->heap_cap ? 2 * s->heap_cap : 1024;
        s->heap = realloc(s->heap, s->heap_cap * sizeof(*s->heap));
        assert_non_null(s->heap);
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

static bool is_membership(uint8_t head)
{
    uint8_t type = head & 0x0f;
    return type >= PLUMTREE_JOIN && type <= PLUMTREE_DISCONNECT;
}

/* Carries out node i's frames and records its events, then re-arms its timer. */
static void sim_drain(struct sim *s, uint32_t i)
{
    struct snode *nd = &s->nodes[i];
    struct plumtree_frame f;
    while (plumtree_poll(nd->pt, &f) == 0) {
        assert_true(f.len >= 2);
        assert_true(f.peer < s->n);
        s->sent_by_type[f.data[0] & 0x0f]++;
        if (rnd_below(&s->rng, 100) < s->loss_pct) {
            s->lost++;
            continue;
        }
        struct ev e = {.t = s->now + 5 * MS + rnd_below(&s->rng, 20 * MS),
                       .kind = EV_FRAME,
                       .to = f.peer,
                       .from = i,
                       .len = (uint32_t)f.len};
        e.data = malloc(f.len);
        assert_non_null(e.data);
        memcpy(e.data, f.data, f.len);
        if (is_membership(e.data[0])) {
            s->membership_in_flight++;
        }
        heap_push(s, e);
    }
    struct plumtree_event ev;
    while (plumtree_poll_event(nd->pt, &ev) == 0) {
        if (ev.kind == PLUMTREE_EVENT_DELIVERED) {
            uint32_t m = id_msg(ev.id);
            assert_true(m < MSG_MAX);
            if (nd->got[m]) {
                s->double_deliveries++;
            }
            nd->got[m]++;
            /* The payload is the message index as text. */
            char want[16];
            snprintf(want, sizeof(want), "m%u", m);
            assert_int_equal(ev.payload_len, strlen(want));
            assert_memory_equal(ev.payload, want, ev.payload_len);
        }
    }
    p4p_time_ns d = plumtree_deadline(nd->pt);
    if (d < nd->sched) {
        nd->sched = d < s->now ? s->now : d;
        heap_push(s, (struct ev){.t = nd->sched, .kind = EV_TIMER, .to = i});
    }
}

static void sim_init(struct sim *s, uint32_t n, const struct plumtree_config *cfg, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    seed += (uint64_t)TEST_SEED_BASE * 1000;
    s->cfg = *cfg;
    s->n = n;
    s->rng = seed;
    s->nodes = calloc(n, sizeof(*s->nodes));
    assert_non_null(s->nodes);
    for (uint32_t i = 0; i < n; i++) {
        struct snode *nd = &s->nodes[i];
        nd->rng = seed * 1000003ull + i;
        nd->alive = true;
        nd->sched = P4P_TIME_NONE;
        struct plumtree_env env = {.ctx = &nd->rng, .random = splitmix_fill};
        assert_int_equal(plumtree_create(cfg, &env, i, &nd->pt), 0);
    }
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

static void sim_step(struct sim *s)
{
    struct ev e = heap_pop(s);
    s->now = e.t;
    struct snode *nd = &s->nodes[e.to];
    if (e.kind == EV_FRAME) {
        if (is_membership(e.data[0])) {
            s->membership_in_flight--;
        }
        if (nd->alive) {
            plumtree_recv(nd->pt, s->now, e.from, e.data, e.len);
            sim_drain(s, e.to);
        } else if (s->notify_dead && s->nodes[e.from].alive) {
            heap_push(
                s, (struct ev){.t = s->now + 10 * MS, .kind = EV_DOWN, .to = e.from, .from = e.to});
        }
        free(e.data);
    } else if (e.kind == EV_DOWN) {
        if (nd->alive) {
            plumtree_peer_down(nd->pt, s->now, e.from);
            sim_drain(s, e.to);
        }
    } else if (nd->alive && e.t == nd->sched) {
        nd->sched = P4P_TIME_NONE;
        /* A deadline that never moves past now would spin the host: catch it. */
        nd->same_time_calls = nd->last_timeout == s->now ? nd->same_time_calls + 1 : 0;
        nd->last_timeout = s->now;
        assert_true(nd->same_time_calls < 100);
        plumtree_timeout(nd->pt, s->now);
        sim_drain(s, e.to);
    }
}

static void sim_run_until(struct sim *s, p4p_time_ns t)
{
    while (s->heap_n > 0 && s->heap[0].t <= t) {
        sim_step(s);
    }
    s->now = t;
}

/* Steps until no membership message is in flight. */
static void sim_quiesce(struct sim *s)
{
    while (s->membership_in_flight > 0 && s->heap_n > 0) {
        sim_step(s);
    }
}

/* Node 0 starts alone; node i joins through a random earlier node every `gap`. */
static void sim_build(struct sim *s, p4p_time_ns gap)
{
    for (uint32_t i = 1; i < s->n; i++) {
        sim_run_until(s, s->now + gap);
        uint32_t contact = (uint32_t)rnd_below(&s->rng, i);
        assert_int_equal(plumtree_join(s->nodes[i].pt, s->now, contact), 0);
        sim_drain(s, i);
    }
}

static void sim_broadcast(struct sim *s, uint32_t origin, uint32_t msg)
{
    uint8_t id[PLUMTREE_ID_LEN];
    char text[16];
    make_id(msg, id);
    snprintf(text, sizeof(text), "m%u", msg);
    assert_int_equal(
        plumtree_broadcast(s->nodes[origin].pt, s->now, id, (const uint8_t *)text, strlen(text)),
        0);
    s->nodes[origin].got[msg]++; /* the origin holds it */
    sim_drain(s, origin);
}

static uint32_t sim_reached(const struct sim *s, uint32_t msg)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        n += s->nodes[i].alive && s->nodes[i].got[msg] > 0;
    }
    return n;
}

static uint32_t sim_alive(const struct sim *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        n += s->nodes[i].alive;
    }
    return n;
}

static struct plumtree_stats sim_total(const struct sim *s)
{
    struct plumtree_stats tot = {0}, st;
    for (uint32_t i = 0; i < s->n; i++) {
        plumtree_stats(s->nodes[i].pt, &st);
#define ADD_(name) tot.name += st.name;
        PLUMTREE_STATS(ADD_)
#undef ADD_
    }
    return tot;
}

static bool in_active(const struct sim *s, uint32_t a, uint32_t b)
{
    p4p_addr v[64];
    uint32_t n = plumtree_active_view(s->nodes[a].pt, v, 64);
    for (uint32_t k = 0; k < n; k++) {
        if (v[k] == b) {
            return true;
        }
    }
    return false;
}

/* Breadth-first search over links chosen by `eager_only`: the number of live nodes reached
 * from the first live node. */
static uint32_t sim_component(const struct sim *s, bool eager_only)
{
    uint32_t *queue = calloc(s->n, sizeof(*queue));
    bool *mark = calloc(s->n, sizeof(*mark));
    assert_non_null(queue);
    assert_non_null(mark);
    uint32_t head = 0, tail = 0;
    for (uint32_t i = 0; i < s->n && tail == 0; i++) {
        if (s->nodes[i].alive) {
            queue[tail++] = i;
            mark[i] = true;
        }
    }
    while (head < tail) {
        uint32_t a = queue[head++];
        p4p_addr v[64];
        uint32_t n = plumtree_active_view(s->nodes[a].pt, v, 64);
        for (uint32_t k = 0; k < n; k++) {
            if (mark[v[k]] || !s->nodes[v[k]].alive) {
                continue;
            }
            if (eager_only && (plumtree_is_eager(s->nodes[a].pt, v[k]) != 1 ||
                               plumtree_is_eager(s->nodes[v[k]].pt, a) != 1)) {
                continue;
            }
            mark[v[k]] = true;
            queue[tail++] = v[k];
        }
    }
    free(queue);
    free(mark);
    return tail;
}

/* HyParView's invariants over the live nodes (a). */
static void check_views(const struct sim *s)
{
    uint32_t *in_some = calloc(s->n, sizeof(*in_some));
    assert_non_null(in_some);
    for (uint32_t a = 0; a < s->n; a++) {
        if (!s->nodes[a].alive) {
            continue;
        }
        p4p_addr v[64];
        uint32_t n = plumtree_active_view(s->nodes[a].pt, v, 64);
        assert_true(n >= 1);
        assert_true(n <= s->cfg.active_max);
        assert_true(plumtree_passive_view(s->nodes[a].pt, NULL, 0) <= s->cfg.passive_max);
        for (uint32_t k = 0; k < n; k++) {
            assert_true(v[k] != a);
            assert_true(s->nodes[v[k]].alive);
            if (!in_active(s, v[k], a)) {
                fail_msg("asymmetric link %u -> %u", a, v[k]);
            }
            in_some[v[k]]++;
        }
    }
    for (uint32_t a = 0; a < s->n; a++) {
        if (s->nodes[a].alive) {
            assert_true(in_some[a] > 0);
        }
    }
    free(in_some);
    assert_int_equal(sim_component(s, false), sim_alive(s));
}

static struct plumtree_config test_config(enum plumtree_mode mode)
{
    struct plumtree_config c;
    plumtree_config_default(&c);
    c.mode = mode;
    c.payload_max = 256;
    c.mtu = 512;
    c.outbox_max = 128;
    c.seen_max = 256;
    c.cache_max = 64;
    return c;
}

/* ---- (a) HyParView invariants --------------------------------------------------------------- */

static void test_views_stabilise(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    struct sim s;
    sim_init(&s, 200, &cfg, 1);
    sim_build(&s, 50 * MS);
    sim_run_until(&s, s.now + 60 * SEC);
    sim_quiesce(&s);
    check_views(&s);
    /* The views fill: the average active view is close to active_max, the passive views
     * hold shuffled samples. */
    uint64_t act = 0, pas = 0;
    for (uint32_t i = 0; i < s.n; i++) {
        act += plumtree_active_view(s.nodes[i].pt, NULL, 0);
        pas += plumtree_passive_view(s.nodes[i].pt, NULL, 0);
    }
    assert_true(act * 10 >= (uint64_t)s.n * cfg.active_max * 9);
    assert_true(pas >= (uint64_t)s.n * cfg.passive_max / 2);
    struct plumtree_stats tot = sim_total(&s);
    assert_true(tot.shuffles_sent > 0);
    assert_true(tot.shuffles_in > 0);
    assert_int_equal(tot.dropped_malformed, 0);
    assert_int_equal(tot.dropped_outbox_full, 0);
    sim_free(&s);
}

static void test_views_repair_after_failures(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    for (int notify = 0; notify <= 1; notify++) {
        struct sim s;
        sim_init(&s, 150, &cfg, 2 + notify);
        s.notify_dead = notify;
        sim_build(&s, 50 * MS);
        sim_run_until(&s, s.now + 30 * SEC);
        /* 20% of the nodes fail silently at once. */
        for (uint32_t i = 0; i < s.n; i += 5) {
            s.nodes[i].alive = false;
        }
        sim_run_until(&s, s.now + (notify ? 5 : 30) * SEC);
        sim_quiesce(&s);
        check_views(&s);
        struct plumtree_stats tot = sim_total(&s);
        assert_true(tot.peers_failed > 0);
        assert_true(tot.neighbor_accepted > 0);
        sim_free(&s);
    }
}

/* ---- (b) Plumtree --------------------------------------------------------------------------- */

/* Builds a stable overlay, sends `count` broadcasts from random nodes two seconds apart, and
 * returns the fewest GOSSIP frames one of them (after the first two) cost.
 *
 * "Stable" is not absolute: a node whose active view is not full keeps asking passive peers,
 * and now and then a new link comes up (eager at both ends, so it closes a cycle until the
 * next broadcast prunes it) or replaces one. Such a change costs at most a couple of extra
 * payloads, so each broadcast is held to N-1 plus twice the view additions (peers_up, counted
 * at both ends) since the previous broadcast began. */
static uint64_t run_broadcasts(enum plumtree_mode mode, uint32_t n, uint32_t count,
                               uint64_t *first_cost)
{
    struct plumtree_config cfg = test_config(mode);
    struct sim s;
    sim_init(&s, n, &cfg, 7);
    sim_build(&s, 50 * MS);
    sim_run_until(&s, s.now + 60 * SEC);
    sim_quiesce(&s);
    check_views(&s);
    uint64_t best = UINT64_MAX;
    uint64_t ups_prev = sim_total(&s).peers_up, ups_last = ups_prev;
    for (uint32_t m = 0; m < count; m++) {
        uint64_t before = s.sent_by_type[PLUMTREE_GOSSIP];
        ups_prev = ups_last;
        ups_last = sim_total(&s).peers_up;
        sim_broadcast(&s, (uint32_t)rnd_below(&s.rng, n), m);
        sim_run_until(&s, s.now + 2 * SEC);
        assert_int_equal(sim_reached(&s, m), n);
        uint64_t cost = s.sent_by_type[PLUMTREE_GOSSIP] - before;
        if (m == 0 && first_cost) {
            *first_cost = cost;
        }
        if (m >= 2) {
            best = cost < best ? cost : best;
        }
        if (m >= 2 && mode == PLUMTREE_MODE_TREE) {
            assert_true(cost >= n - 1);
            assert_true(cost <= n - 1 + 2 * (sim_total(&s).peers_up - ups_prev));
        }
    }
    assert_int_equal(s.double_deliveries, 0);
    if (mode == PLUMTREE_MODE_TREE) {
        /* The eager links (eager at both ends) form a spanning tree: connected, N-1 edges
         * (plus the links that came up since the last broadcast began, not pruned yet). */
        assert_int_equal(sim_component(&s, true), n);
        uint32_t edges = 0;
        for (uint32_t a = 0; a < n; a++) {
            p4p_addr v[64];
            uint32_t k = plumtree_active_view(s.nodes[a].pt, v, 64);
            for (uint32_t j = 0; j < k; j++) {
                edges += a < v[j] && plumtree_is_eager(s.nodes[a].pt, v[j]) == 1 &&
                         plumtree_is_eager(s.nodes[v[j]].pt, a) == 1;
            }
        }
        assert_true(edges >= n - 1);
        assert_true(edges <= n - 1 + (sim_total(&s).peers_up - ups_last));
    }
    sim_free(&s);
    return best;
}

static void test_broadcast_tree_vs_flood(void **state)
{
    (void)state;
    const uint32_t n = 200;
    uint64_t first = 0;
    uint64_t tree = run_broadcasts(PLUMTREE_MODE_TREE, n, 8, &first);
    uint64_t flood = run_broadcasts(PLUMTREE_MODE_FLOOD, n, 3, NULL);
    print_message("payloads per broadcast: plumtree first %llu, settled %llu; flood %llu "
                  "(N-1 = %u)\n",
                  (unsigned long long)first, (unsigned long long)tree, (unsigned long long)flood,
                  n - 1);
    /* A settled tree carries a broadcast exactly once to each node. */
    assert_int_equal(tree, n - 1);
    /* Flooding sends over every link but the one it came in on: ~N * (degree - 1). */
    assert_true(flood >= 3 * (uint64_t)n);
    assert_true(flood >= 3 * tree);
    /* The first broadcast floods (every link starts eager) and prunes as it goes. */
    assert_true(first > 3 * tree);
}

static void test_broadcast_loss_and_failures(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    const uint32_t n = 200;
    struct sim s;
    sim_init(&s, n, &cfg, 11);
    sim_build(&s, 50 * MS);
    sim_run_until(&s, s.now + 30 * SEC);
    s.loss_pct = 10;
    uint32_t m = 0;
    /* Broadcasts under loss only. */
    for (; m < 10; m++) {
        sim_broadcast(&s, (uint32_t)rnd_below(&s.rng, n), m);
        sim_run_until(&s, s.now + 1 * SEC);
    }
    sim_run_until(&s, s.now + 5 * SEC);
    for (uint32_t k = 0; k < 10; k++) {
        assert_int_equal(sim_reached(&s, k), n);
    }
    /* 10% of the nodes fail silently, mid-run; broadcasts go on, one a second. */
    for (uint32_t i = 3; i < n; i += 10) {
        s.nodes[i].alive = false;
    }
    uint32_t alive = sim_alive(&s);
    uint32_t fail_at = m;
    for (; m < 40; m++) {
        uint32_t origin;
        do {
            origin = (uint32_t)rnd_below(&s.rng, n);
        } while (!s.nodes[origin].alive);
        sim_broadcast(&s, origin, m);
        sim_run_until(&s, s.now + 1 * SEC);
    }
    sim_run_until(&s, s.now + 5 * SEC);
    /* Every broadcast reaches every live node, also those sent while the failures were not
     * detected yet (dead_ns 10 s): GRAFT, the repair exchange and view repair fill the
     * gaps. */
    for (uint32_t k = fail_at; k < 40; k++) {
        assert_int_equal(sim_reached(&s, k), alive);
    }
    struct plumtree_stats tot = sim_total(&s);
    print_message("loss+failures: grafts %llu, answered %llu, announces %llu, peers failed %llu\n",
                  (unsigned long long)tot.graft_sent, (unsigned long long)tot.graft_answered,
                  (unsigned long long)tot.announces_sent, (unsigned long long)tot.peers_failed);
    assert_true(tot.graft_answered > 0);
    assert_true(tot.peers_failed >= 2 * (n - alive)); /* a failed node had ~5 links */
    assert_int_equal(s.double_deliveries, 0);
    /* With the loss gone, the views settle back to HyParView's invariants. */
    s.loss_pct = 0;
    sim_run_until(&s, s.now + 30 * SEC);
    sim_quiesce(&s);
    check_views(&s);
    sim_free(&s);
}

static void test_broadcast_optimisation(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    cfg.optimize_threshold = 2;
    const uint32_t n = 150;
    struct sim s;
    sim_init(&s, n, &cfg, 13);
    sim_build(&s, 50 * MS);
    sim_run_until(&s, s.now + 30 * SEC);
    uint64_t last = 0;
    for (uint32_t m = 0; m < 20; m++) {
        uint64_t before = s.sent_by_type[PLUMTREE_GOSSIP];
        sim_broadcast(&s, (uint32_t)rnd_below(&s.rng, n), m);
        sim_run_until(&s, s.now + 2 * SEC);
        assert_int_equal(sim_reached(&s, m), n);
        last = s.sent_by_type[PLUMTREE_GOSSIP] - before;
    }
    struct plumtree_stats tot = sim_total(&s);
    assert_true(tot.optimizations > 0);
    /* Still a tree: a rewired link was pruned for each one grafted. */
    assert_true(last <= n - 1 + n / 20);
    assert_int_equal(s.double_deliveries, 0);
    sim_free(&s);
}

/* ---- (e) Anti-entropy modes ----------------------------------------------------------------- */

static void run_epidemic(enum plumtree_mode mode, uint32_t *rounds_out)
{
    struct plumtree_config cfg = test_config(mode);
    cfg.push_rounds = 64;
    const uint32_t n = 200;
    struct sim s;
    sim_init(&s, n, &cfg, 17);
    sim_build(&s, 50 * MS);
    sim_run_until(&s, s.now + 30 * SEC);
    sim_quiesce(&s);
    check_views(&s);
    sim_broadcast(&s, 0, 0);
    uint32_t r = 0;
    for (; r < 64 && sim_reached(&s, 0) < n; r++) {
        sim_run_until(&s, s.now + cfg.round_ns);
    }
    assert_int_equal(sim_reached(&s, 0), n);
    assert_int_equal(s.double_deliveries, 0);
    assert_int_equal(s.sent_by_type[PLUMTREE_GOSSIP], 0);
    if (mode != PLUMTREE_MODE_PULL) {
        assert_true(s.sent_by_type[PLUMTREE_PUSH] > 0);
    }
    if (mode != PLUMTREE_MODE_PUSH) {
        assert_true(s.sent_by_type[PLUMTREE_PULL] > 0);
    }
    *rounds_out = r;
    sim_free(&s);
}

static void test_epidemic_modes(void **state)
{
    (void)state;
    uint32_t push, pull, pp;
    run_epidemic(PLUMTREE_MODE_PUSH, &push);
    run_epidemic(PLUMTREE_MODE_PULL, &pull);
    run_epidemic(PLUMTREE_MODE_PUSH_PULL, &pp);
    print_message("rounds to reach 200 nodes: push %u, pull %u, push-pull %u\n", push, pull, pp);
    assert_true(pp <= push);
    assert_true(pp <= pull);
}

/* ---- Hand-driven protocol steps ------------------------------------------------------------- */

struct pair {
    uint64_t rng[3];
    plumtree *t[3];
};

static void pair_init(struct pair *p, const struct plumtree_config *cfg)
{
    for (int i = 0; i < 3; i++) {
        p->rng[i] = 100 + i;
        struct plumtree_env env = {.ctx = &p->rng[i], .random = splitmix_fill};
        assert_int_equal(plumtree_create(cfg, &env, (p4p_addr)i, &p->t[i]), 0);
    }
}

static void pair_free(struct pair *p)
{
    for (int i = 0; i < 3; i++) {
        plumtree_destroy(p->t[i]);
    }
}

/* Delivers every frame queued at the three nodes, repeatedly, until none is left. Returns the
 * frames of `type` seen. */
static uint32_t pair_settle(struct pair *p, p4p_time_ns now, int type)
{
    uint32_t seen = 0;
    for (bool again = true; again;) {
        again = false;
        for (int i = 0; i < 3; i++) {
            struct plumtree_frame f;
            uint8_t buf[2048];
            while (plumtree_poll(p->t[i], &f) == 0) {
                again = true;
                seen += (f.data[0] & 0x0f) == type;
                assert_true(f.peer < 3);
                memcpy(buf, f.data, f.len);
                assert_int_equal(plumtree_recv(p->t[f.peer], now, (p4p_addr)i, buf, f.len), 0);
            }
            struct plumtree_event ev;
            while (plumtree_poll_event(p->t[i], &ev) == 0) {
            }
        }
    }
    return seen;
}

static void test_join_and_neighbor_priorities(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    cfg.active_max = 1;
    struct pair p;
    pair_init(&p, &cfg);
    p4p_addr v[4];
    /* 1 joins through 0: both hold each other. */
    assert_int_equal(plumtree_join(p.t[1], 0, 0), 0);
    pair_settle(&p, 0, 0);
    assert_int_equal(plumtree_active_view(p.t[0], v, 4), 1);
    assert_int_equal(v[0], 1);
    assert_int_equal(plumtree_active_view(p.t[1], v, 4), 1);
    assert_int_equal(v[0], 0);
    /* A low-priority NEIGHBOR from 2 to the full node 0 is refused. */
    uint8_t low[] = {PLUMTREE_VERSION << 4 | PLUMTREE_NEIGHBOR, 0x81, 0xf4};
    uint8_t high[] = {PLUMTREE_VERSION << 4 | PLUMTREE_NEIGHBOR, 0x81, 0xf5};
    assert_int_equal(plumtree_recv(p.t[0], 1, 2, low, sizeof(low)), 0);
    struct plumtree_frame f;
    assert_int_equal(plumtree_poll(p.t[0], &f), 0);
    assert_int_equal(f.peer, 2);
    uint8_t refused[] = {PLUMTREE_VERSION << 4 | PLUMTREE_NEIGHBOR_REPLY, 0x81, 0xf4};
    assert_int_equal(f.len, sizeof(refused));
    assert_memory_equal(f.data, refused, sizeof(refused));
    assert_int_equal(plumtree_poll(p.t[0], &f), P4P_EAGAIN);
    /* A high-priority one is accepted: 0 drops 1 (DISCONNECT) and takes 2. */
    assert_int_equal(plumtree_recv(p.t[0], 2, 2, high, sizeof(high)), 0);
    assert_int_equal(plumtree_active_view(p.t[0], v, 4), 1);
    assert_int_equal(v[0], 2);
    assert_int_equal(plumtree_poll(p.t[0], &f), 0);
    assert_int_equal(f.peer, 1);
    assert_int_equal(f.data[0] & 0x0f, PLUMTREE_DISCONNECT);
    uint8_t buf[64];
    memcpy(buf, f.data, f.len);
    size_t len = f.len;
    assert_int_equal(plumtree_poll(p.t[0], &f), 0);
    assert_int_equal(f.peer, 2);
    assert_int_equal(f.data[0] & 0x0f, PLUMTREE_NEIGHBOR_REPLY);
    /* 1 gets DISCONNECT: 0 moves to its passive view. With no neighbour left, 1 ignores
     * the backoff and asks 0 back at once, with high priority. */
    assert_int_equal(plumtree_recv(p.t[1], 3, 0, buf, len), 0);
    assert_int_equal(plumtree_active_view(p.t[1], v, 4), 0);
    assert_int_equal(plumtree_passive_view(p.t[1], v, 4), 1);
    assert_int_equal(v[0], 0);
    assert_int_equal(plumtree_poll(p.t[1], &f), 0);
    assert_int_equal(f.peer, 0);
    assert_int_equal(f.len, sizeof(high));
    assert_memory_equal(f.data, high, sizeof(high));
    assert_int_equal(plumtree_poll(p.t[1], &f), P4P_EAGAIN);
    /* 0 takes 1 back, dropping 2. */
    assert_int_equal(plumtree_recv(p.t[0], 4, 1, high, sizeof(high)), 0);
    assert_int_equal(plumtree_active_view(p.t[0], v, 4), 1);
    assert_int_equal(v[0], 1);
    struct plumtree_stats st;
    plumtree_stats(p.t[0], &st);
    assert_int_equal(st.disconnects_sent, 2); /* 1, then 2 */
    pair_free(&p);
}

/* A triangle: 1 and 2 join through 0, then 1 asks 2 directly. Then a broadcast from 0
 * (message 1) reaches 1 and 2, which send it to each other: duplicates, answered by PRUNE,
 * so the link 1-2 ends up lazy at both ends. */
static void triangle(struct pair *p, const struct plumtree_config *cfg)
{
    pair_init(p, cfg);
    assert_int_equal(plumtree_join(p->t[1], 0, 0), 0);
    pair_settle(p, 0, 0);
    assert_int_equal(plumtree_join(p->t[2], 0, 0), 0);
    pair_settle(p, 0, 0);
    uint8_t high[] = {PLUMTREE_VERSION << 4 | PLUMTREE_NEIGHBOR, 0x81, 0xf5};
    assert_int_equal(plumtree_recv(p->t[2], 0, 1, high, sizeof(high)), 0);
    pair_settle(p, 0, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(plumtree_active_view(p->t[i], NULL, 0), 2);
    }
    uint8_t id[32];
    make_id(1, id);
    assert_int_equal(plumtree_broadcast(p->t[0], 0, id, (const uint8_t *)"x", 1), 0);
    uint32_t prunes = pair_settle(p, 0, PLUMTREE_PRUNE);
    assert_true(prunes >= 1);
}

static void test_prune(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    struct pair p;
    triangle(&p, &cfg);
    assert_int_equal(plumtree_is_eager(p.t[1], 2), 0);
    assert_int_equal(plumtree_is_eager(p.t[2], 1), 0);
    assert_int_equal(plumtree_is_eager(p.t[0], 1), 1);
    assert_int_equal(plumtree_is_eager(p.t[1], 0), 1);
    assert_int_equal(plumtree_is_eager(p.t[0], 2), 1);
    assert_int_equal(plumtree_is_eager(p.t[2], 0), 1);
    struct plumtree_stats st1, st2;
    plumtree_stats(p.t[1], &st1);
    plumtree_stats(p.t[2], &st2);
    assert_int_equal(st1.delivered + st2.delivered, 2);
    assert_int_equal(st1.duplicates + st2.duplicates, 2);
    /* The next broadcast goes along the tree only: two payloads, no duplicate. */
    uint8_t id[32];
    make_id(2, id);
    assert_int_equal(plumtree_broadcast(p.t[1], 1, id, (const uint8_t *)"y", 1), 0);
    assert_int_equal(pair_settle(&p, 1, PLUMTREE_GOSSIP), 2);
    plumtree_stats(p.t[2], &st2);
    assert_int_equal(st2.delivered, 2);
    assert_int_equal(st2.duplicates, 1);
    pair_free(&p);
}

static void test_graft_timer(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    struct pair p;
    triangle(&p, &cfg);
    uint8_t id[32];
    make_id(1, id);
    /* An IHAVE for a message 2 does not have starts the GRAFT timer: nothing happens before
     * graft_timeout_ns, then GRAFT goes to the announcer, which becomes eager. */
    uint8_t id2[32];
    make_id(2, id2);
    uint8_t ihave[64];
    struct cbor_writer w;
    cbor_writer_init(&w, ihave, sizeof(ihave));
    uint8_t head = PLUMTREE_VERSION << 4 | PLUMTREE_IHAVE;
    cbor_put_raw(&w, &head, 1);
    cbor_put_array(&w, 2);
    cbor_put_bstr(&w, id2, 32);
    cbor_put_uint(&w, 3);
    p4p_time_ns t0 = 1 * SEC;
    assert_int_equal(plumtree_recv(p.t[2], t0, 1, ihave, w.len), 0);
    struct plumtree_frame f;
    assert_int_equal(plumtree_poll(p.t[2], &f), P4P_EAGAIN);
    assert_true(plumtree_deadline(p.t[2]) <= t0 + cfg.graft_timeout_ns);
    assert_int_equal(plumtree_timeout(p.t[2], t0 + cfg.graft_timeout_ns - 1), 0);
    while (plumtree_poll(p.t[2], &f) == 0) {
        assert_true((f.data[0] & 0x0f) != PLUMTREE_GRAFT);
    }
    assert_int_equal(plumtree_timeout(p.t[2], t0 + cfg.graft_timeout_ns), 0);
    bool grafted = false;
    while (plumtree_poll(p.t[2], &f) == 0) {
        if ((f.data[0] & 0x0f) == PLUMTREE_GRAFT) {
            assert_int_equal(f.peer, 1);
            grafted = true;
        }
    }
    assert_true(grafted);
    assert_int_equal(plumtree_is_eager(p.t[2], 1), 1);
    /* Retries follow every graft_retry_ns until graft_attempts_max, then it gives up. */
    p4p_time_ns t = t0 + cfg.graft_timeout_ns;
    for (uint32_t k = 1; k <= cfg.graft_attempts_max; k++) {
        t += cfg.graft_retry_ns;
        assert_int_equal(plumtree_timeout(p.t[2], t), 0);
        while (plumtree_poll(p.t[2], &f) == 0) {
        }
    }
    struct plumtree_stats st;
    plumtree_stats(p.t[2], &st);
    assert_int_equal(st.graft_sent, cfg.graft_attempts_max);
    assert_int_equal(st.missing_expired, 1);
    /* A GRAFT for a cached message is answered with the payload. */
    cbor_writer_init(&w, ihave, sizeof(ihave));
    head = PLUMTREE_VERSION << 4 | PLUMTREE_GRAFT;
    cbor_put_raw(&w, &head, 1);
    cbor_put_array(&w, 2);
    cbor_put_bstr(&w, id, 32);
    cbor_put_bool(&w, 1);
    assert_int_equal(plumtree_recv(p.t[1], t, 2, ihave, w.len), 0);
    assert_int_equal(plumtree_poll(p.t[1], &f), 0);
    assert_int_equal(f.data[0] & 0x0f, PLUMTREE_GOSSIP);
    assert_int_equal(f.peer, 2);
    pair_free(&p);
}

static void test_peer_down_promotes_passive(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    struct pair p;
    pair_init(&p, &cfg);
    assert_int_equal(plumtree_join(p.t[1], 0, 0), 0);
    pair_settle(&p, 0, 0);
    /* 1 learns of 2 through a SHUFFLE_REPLY, so 2 sits in its passive view. */
    uint8_t reply[] = {PLUMTREE_VERSION << 4 | PLUMTREE_SHUFFLE_REPLY, 0x81, 0x81, 0x02};
    assert_int_equal(plumtree_recv(p.t[1], 0, 0, reply, sizeof(reply)), 0);
    p4p_addr v[4];
    assert_int_equal(plumtree_passive_view(p.t[1], v, 4), 1);
    assert_int_equal(v[0], 2);
    /* Its active view not being full, 1 asks 2 at once, with low priority (lost here). */
    struct plumtree_frame f;
    assert_int_equal(plumtree_poll(p.t[1], &f), 0);
    assert_int_equal(f.peer, 2);
    uint8_t low[] = {PLUMTREE_VERSION << 4 | PLUMTREE_NEIGHBOR, 0x81, 0xf4};
    assert_int_equal(f.len, sizeof(low));
    assert_memory_equal(f.data, low, sizeof(low));
    /* The host says 0 is unreachable: with an empty view, 1 asks 2 again with high
     * priority; 2 accepts. */
    assert_int_equal(plumtree_peer_down(p.t[1], 1, 0), 0);
    assert_int_equal(plumtree_poll(p.t[1], &f), 0);
    assert_int_equal(f.peer, 2);
    uint8_t want[] = {PLUMTREE_VERSION << 4 | PLUMTREE_NEIGHBOR, 0x81, 0xf5};
    assert_int_equal(f.len, sizeof(want));
    assert_memory_equal(f.data, want, sizeof(want));
    assert_int_equal(plumtree_poll(p.t[1], &f), P4P_EAGAIN);
    assert_int_equal(plumtree_recv(p.t[2], 1, 1, f.data, f.len), 0);
    assert_int_equal(plumtree_poll(p.t[2], &f), 0);
    assert_int_equal(plumtree_recv(p.t[1], 2, 2, f.data, f.len), 0);
    assert_int_equal(plumtree_active_view(p.t[1], v, 4), 1);
    assert_int_equal(v[0], 2);
    struct plumtree_stats st;
    plumtree_stats(p.t[1], &st);
    assert_int_equal(st.peers_failed, 1);
    assert_int_equal(st.neighbor_accepted, 2); /* the JOIN, then 2 */
    /* Silence: with no traffic from 2, 1 sends keepalives, then declares 2 failed. */
    p4p_time_ns now = 2;
    uint32_t keepalives = 0;
    while (plumtree_active_view(p.t[1], NULL, 0) > 0) {
        now = plumtree_deadline(p.t[1]);
        assert_true(now < 60 * SEC);
        plumtree_timeout(p.t[1], now);
        while (plumtree_poll(p.t[1], &f) == 0) {
            keepalives += (f.data[0] & 0x0f) == PLUMTREE_KEEPALIVE;
        }
    }
    assert_true(now >= 2 + cfg.dead_ns);
    assert_true(keepalives >= cfg.dead_ns / cfg.keepalive_ns - 2);
    pair_free(&p);
}

/* ---- (c) Bounded duplicate suppression ------------------------------------------------------ */

static size_t gossip_frame(uint8_t *buf, size_t cap, uint32_t msg, uint32_t hops)
{
    struct cbor_writer w;
    uint8_t id[32];
    make_id(msg, id);
    cbor_writer_init(&w, buf, cap);
    uint8_t head = PLUMTREE_VERSION << 4 | PLUMTREE_GOSSIP;
    cbor_put_raw(&w, &head, 1);
    cbor_put_array(&w, 3);
    cbor_put_bstr(&w, id, 32);
    cbor_put_uint(&w, hops);
    cbor_put_bstr(&w, "payload", 7);
    assert_true(cbor_writer_ok(&w));
    return w.len;
}

static void test_seen_bounded(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    cfg.seen_max = 100;
    uint64_t rng = 5;
    struct plumtree_env env = {.ctx = &rng, .random = splitmix_fill};
    plumtree *t;
    assert_int_equal(plumtree_create(&cfg, &env, 0, &t), 0);
    size_t mem = plumtree_memory(t);
    uint8_t buf[256];
    const uint32_t total = 10000;
    for (uint32_t m = 0; m < total; m++) {
        size_t len = gossip_frame(buf, sizeof(buf), m, 1);
        assert_int_equal(plumtree_recv(t, m, 1 + m % 7, buf, len), 0);
        struct plumtree_frame f;
        while (plumtree_poll(t, &f) == 0) {
        }
        struct plumtree_event ev;
        while (plumtree_poll_event(t, &ev) == 0) {
        }
        assert_true(plumtree_seen_count(t) <= cfg.seen_max);
        assert_int_equal(plumtree_memory(t), mem);
    }
    assert_int_equal(plumtree_seen_count(t), cfg.seen_max);
    struct plumtree_stats st;
    plumtree_stats(t, &st);
    assert_int_equal(st.delivered, total);
    assert_int_equal(st.seen_evicted, total - cfg.seen_max);
    /* The newest seen_max ids are remembered, older ones forgotten (FIFO). */
    uint8_t id[32];
    for (uint32_t m = 0; m < total; m++) {
        make_id(m, id);
        assert_int_equal(plumtree_has_seen(t, id), m >= total - cfg.seen_max);
    }
    /* Duplicates of remembered ids are suppressed: counted, not delivered. */
    for (uint32_t m = total - 50; m < total; m++) {
        size_t len = gossip_frame(buf, sizeof(buf), m, 2);
        assert_int_equal(plumtree_recv(t, total, 1, buf, len), 0);
        struct plumtree_event ev;
        assert_int_equal(plumtree_poll_event(t, &ev), P4P_EAGAIN);
    }
    plumtree_stats(t, &st);
    assert_int_equal(st.duplicates, 50);
    assert_int_equal(st.delivered, total);
    assert_int_equal(plumtree_broadcast(t, total, id, NULL, 0), P4P_EDUPLICATE);
    assert_int_equal(plumtree_memory(t), mem);
    plumtree_destroy(t);
}

/* ---- (d) Malformed input -------------------------------------------------------------------- */

struct frame {
    uint8_t b[600];
    size_t len;
};

static void begin(struct cbor_writer *w, struct frame *f, int type)
{
    cbor_writer_init(w, f->b, sizeof(f->b));
    uint8_t head = (uint8_t)(PLUMTREE_VERSION << 4 | type);
    cbor_put_raw(w, &head, 1);
}

/* One valid frame of every type. */
static uint32_t valid_frames(struct frame *out)
{
    struct cbor_writer w;
    uint8_t id[32];
    make_id(3, id);
    uint32_t n = 0;
    const int empty[] = {PLUMTREE_JOIN, PLUMTREE_DISCONNECT, PLUMTREE_KEEPALIVE, PLUMTREE_PRUNE};
    for (size_t k = 0; k < 4; k++) {
        begin(&w, &out[n], empty[k]);
        cbor_put_array(&w, 0);
        out[n++].len = w.len;
    }
    begin(&w, &out[n], PLUMTREE_FORWARD_JOIN);
    cbor_put_array(&w, 2);
    cbor_put_uint(&w, 70000);
    cbor_put_uint(&w, 6);
    out[n++].len = w.len;
    begin(&w, &out[n], PLUMTREE_NEIGHBOR);
    cbor_put_array(&w, 1);
    cbor_put_bool(&w, 1);
    out[n++].len = w.len;
    begin(&w, &out[n], PLUMTREE_NEIGHBOR_REPLY);
    cbor_put_array(&w, 1);
    cbor_put_bool(&w, 0);
    out[n++].len = w.len;
    begin(&w, &out[n], PLUMTREE_SHUFFLE);
    cbor_put_array(&w, 3);
    cbor_put_uint(&w, 9);
    cbor_put_uint(&w, 4);
    cbor_put_array(&w, 3);
    cbor_put_uint(&w, 9);
    cbor_put_uint(&w, 300);
    cbor_put_uint(&w, 4000000000u);
    out[n++].len = w.len;
    begin(&w, &out[n], PLUMTREE_SHUFFLE_REPLY);
    cbor_put_array(&w, 1);
    cbor_put_array(&w, 2);
    cbor_put_uint(&w, 11);
    cbor_put_uint(&w, 12);
    out[n++].len = w.len;
    const int payload[] = {PLUMTREE_GOSSIP, PLUMTREE_PUSH};
    for (size_t k = 0; k < 2; k++) {
        begin(&w, &out[n], payload[k]);
        cbor_put_array(&w, 3);
        cbor_put_bstr(&w, id, 32);
        cbor_put_uint(&w, 2);
        cbor_put_bstr(&w, "hello", 5);
        out[n++].len = w.len;
        id[31]++;
    }
    const int batch[] = {PLUMTREE_IHAVE, PLUMTREE_ANNOUNCE};
    for (size_t k = 0; k < 2; k++) {
        begin(&w, &out[n], batch[k]);
        if (batch[k] == PLUMTREE_ANNOUNCE) {
            cbor_put_array(&w, 5);
            cbor_put_bool(&w, 1);
        } else {
            cbor_put_array(&w, 4);
        }
        cbor_put_bstr(&w, id, 32);
        cbor_put_uint(&w, 1);
        id[30]++;
        cbor_put_bstr(&w, id, 32);
        cbor_put_uint(&w, 1000);
        out[n++].len = w.len;
    }
    begin(&w, &out[n], PLUMTREE_GRAFT);
    cbor_put_array(&w, 2);
    cbor_put_bstr(&w, id, 32);
    cbor_put_bool(&w, 1);
    out[n++].len = w.len;
    begin(&w, &out[n], PLUMTREE_PULL);
    cbor_put_array(&w, 2);
    cbor_put_bstr(&w, id, 32);
    cbor_put_bstr(&w, id, 32);
    out[n++].len = w.len;
    assert_true(cbor_writer_ok(&w));
    return n;
}

static void drain_all(plumtree *t)
{
    struct plumtree_frame f;
    struct plumtree_event ev;
    while (plumtree_poll(t, &f) == 0) {
    }
    while (plumtree_poll_event(t, &ev) == 0) {
    }
}

static uint64_t rejected(plumtree *t)
{
    struct plumtree_stats st;
    plumtree_stats(t, &st);
    return st.dropped_malformed + st.dropped_version;
}

static void expect_reject(plumtree *t, const uint8_t *b, size_t len)
{
    uint64_t before = rejected(t);
    int rc = plumtree_recv(t, 1, 1, b, len);
    if (rc >= 0) {
        fail_msg("accepted a bad frame of %zu bytes starting %02x", len, len ? b[0] : 0);
    }
    assert_int_equal(rejected(t), before + 1);
    drain_all(t);
}

static void test_malformed_every_length(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    uint64_t rng = 9;
    struct plumtree_env env = {.ctx = &rng, .random = splitmix_fill};
    plumtree *t;
    assert_int_equal(plumtree_create(&cfg, &env, 0, &t), 0);
    struct frame fr[16];
    uint32_t n = valid_frames(fr);
    assert_int_equal(n, 15);
    for (uint32_t k = 0; k < n; k++) {
        /* The frame itself is accepted ... */
        assert_int_equal(plumtree_recv(t, 1, 1, fr[k].b, fr[k].len), 0);
        drain_all(t);
        /* ... every prefix of it is rejected, ... */
        for (size_t len = 0; len < fr[k].len; len++) {
            expect_reject(t, fr[k].b, len);
        }
        /* ... and so is one trailing byte, and any other version. */
        uint8_t b[700];
        memcpy(b, fr[k].b, fr[k].len);
        b[fr[k].len] = 0;
        expect_reject(t, b, fr[k].len + 1);
        for (int v = 0; v < 16; v++) {
            if (v != PLUMTREE_VERSION) {
                b[0] = (uint8_t)(v << 4 | (fr[k].b[0] & 0x0f));
                assert_int_equal(plumtree_recv(t, 1, 1, b, fr[k].len), P4P_EVERSION);
            }
        }
    }
    plumtree_destroy(t);
}

static void test_malformed_fields(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    uint64_t rng = 9;
    struct plumtree_env env = {.ctx = &rng, .random = splitmix_fill};
    plumtree *t;
    assert_int_equal(plumtree_create(&cfg, &env, 0, &t), 0);
    struct frame fr[16];
    valid_frames(fr);
    struct frame f;
    struct cbor_writer w;
    uint8_t id[40] = {1};
    const uint8_t bad[][8] = {
        {0x10, 0x80},                   /* type 0 */
        {0x1f, 0x80},                   /* ANNOUNCE without its flag */
        {0x1f, 0x81, 0xf5},             /* ... without ids */
        {0x11, 0x81, 0x00},             /* JOIN with a field */
        {0x13, 0x81, 0x01},             /* NEIGHBOR priority not a bool */
        {0x13, 0x81, 0xf6},             /* ... null */
        {0x14, 0x80},                   /* NEIGHBOR_REPLY without field */
        {0x12, 0x82, 0x18, 0x05, 0x01}, /* FORWARD_JOIN with a non-shortest uint */
        {0x12, 0x82, 0x05, 0x11},       /* ttl 17 > PLUMTREE_TTL_MAX */
        {0x12, 0x82, 0x20, 0x01},       /* negative address */
        {0x11, 0x9f, 0xff},             /* indefinite-length array */
        {0x17, 0x81, 0x81, 0x61, 0x61}, /* text where an address goes */
    };
    const size_t bad_len[] = {2, 2, 3, 3, 3, 3, 2, 5, 4, 4, 3, 5};
    for (size_t k = 0; k < sizeof(bad_len) / sizeof(bad_len[0]); k++) {
        expect_reject(t, bad[k], bad_len[k]);
    }
    /* Address UINT32_MAX. */
    begin(&w, &f, PLUMTREE_FORWARD_JOIN);
    cbor_put_array(&w, 2);
    cbor_put_uint(&w, UINT32_MAX);
    cbor_put_uint(&w, 1);
    expect_reject(t, f.b, w.len);
    /* A shuffle list over PLUMTREE_LIST_MAX. */
    begin(&w, &f, PLUMTREE_SHUFFLE_REPLY);
    cbor_put_array(&w, 1);
    cbor_put_array(&w, PLUMTREE_LIST_MAX + 1);
    for (int k = 0; k <= PLUMTREE_LIST_MAX; k++) {
        cbor_put_uint(&w, (uint64_t)k + 10);
    }
    expect_reject(t, f.b, w.len);
    /* A 31-byte id, a 33-byte id. */
    for (size_t idlen = 31; idlen <= 33; idlen += 2) {
        begin(&w, &f, PLUMTREE_GRAFT);
        cbor_put_array(&w, 2);
        cbor_put_bstr(&w, id, idlen);
        cbor_put_bool(&w, 1);
        expect_reject(t, f.b, w.len);
    }
    /* IHAVE with an odd item count, and an empty one (PULL may be empty). */
    begin(&w, &f, PLUMTREE_IHAVE);
    cbor_put_array(&w, 1);
    cbor_put_bstr(&w, id, 32);
    expect_reject(t, f.b, w.len);
    begin(&w, &f, PLUMTREE_IHAVE);
    cbor_put_array(&w, 0);
    expect_reject(t, f.b, w.len);
    /* A payload over payload_max. */
    static uint8_t big[600];
    begin(&w, &f, PLUMTREE_GOSSIP);
    cbor_put_array(&w, 3);
    cbor_put_bstr(&w, id, 32);
    cbor_put_uint(&w, 1);
    cbor_put_bstr(&w, big, cfg.payload_max + 1);
    assert_true(cbor_writer_ok(&w));
    expect_reject(t, f.b, w.len);
    /* A frame over mtu. */
    expect_reject(t, big, cfg.mtu + 1);
    /* From ourselves or from the broadcast address. */
    assert_int_equal(plumtree_recv(t, 1, 0, fr[0].b, fr[0].len), P4P_EINVAL);
    assert_int_equal(plumtree_recv(t, 1, P4P_ADDR_BROADCAST, fr[0].b, fr[0].len), P4P_EINVAL);
    /* The node still works: a GOSSIP is delivered. */
    uint8_t buf[256];
    size_t len = gossip_frame(buf, sizeof(buf), 40, 1);
    assert_int_equal(plumtree_recv(t, 2, 5, buf, len), 0);
    struct plumtree_event ev;
    bool delivered = false;
    while (plumtree_poll_event(t, &ev) == 0) {
        delivered |= ev.kind == PLUMTREE_EVENT_DELIVERED && id_msg(ev.id) == 40;
    }
    assert_true(delivered);
    plumtree_destroy(t);
}

static void test_fuzz(void **state)
{
    (void)state;
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    cfg.active_max = 3;
    cfg.passive_max = 6;
    uint64_t rng = 21, fz = 77;
    struct plumtree_env env = {.ctx = &rng, .random = splitmix_fill};
    plumtree *t;
    assert_int_equal(plumtree_create(&cfg, &env, 0, &t), 0);
    size_t mem = plumtree_memory(t);
    struct frame fr[16];
    uint32_t n = valid_frames(fr);
    uint64_t errors = 0;
    p4p_time_ns now = 0;
    for (uint32_t it = 0; it < 200000; it++) {
        uint8_t b[600];
        size_t len;
        uint32_t mode = (uint32_t)rnd_below(&fz, 3);
        if (mode == 0) { /* random bytes behind a valid header byte */
            len = 1 + rnd_below(&fz, 80);
            for (size_t k = 0; k < len; k++) {
                b[k] = (uint8_t)splitmix_next(&fz);
            }
            b[0] = (uint8_t)(PLUMTREE_VERSION << 4 | (b[0] & 0x0f));
        } else { /* a valid frame with a few bytes flipped, cut or extended */
            const struct frame *src = &fr[rnd_below(&fz, n)];
            len = src->len;
            memcpy(b, src->b, len);
            for (uint32_t k = 0, flips = 1 + (uint32_t)rnd_below(&fz, 3); k < flips; k++) {
                b[rnd_below(&fz, len)] ^= (uint8_t)(1u << rnd_below(&fz, 8));
            }
            if (mode == 2) {
                len = rnd_below(&fz, len + 8);
            }
        }
        uint64_t before = rejected(t);
        now += rnd_below(&fz, 50 * MS);
        int rc = plumtree_recv(t, now, 1 + (p4p_addr)rnd_below(&fz, 20), b, len);
        if (rc < 0) {
            errors++;
            assert_int_equal(rejected(t), before + 1);
        } else {
            assert_int_equal(rejected(t), before);
        }
        if (plumtree_deadline(t) <= now) {
            plumtree_timeout(t, now);
        }
        drain_all(t);
        assert_true(plumtree_active_view(t, NULL, 0) <= cfg.active_max);
        assert_true(plumtree_passive_view(t, NULL, 0) <= cfg.passive_max);
    }
    assert_true(errors > 100000);
    assert_int_equal(rejected(t), errors);
    assert_int_equal(plumtree_memory(t), mem);
    plumtree_destroy(t);
}

/* ---- Configuration, determinism ------------------------------------------------------------- */

static void test_config_validation(void **state)
{
    (void)state;
    uint64_t rng = 1;
    struct plumtree_env env = {.ctx = &rng, .random = splitmix_fill};
    struct plumtree_config ok = test_config(PLUMTREE_MODE_TREE);
    plumtree *t = NULL;
    assert_int_equal(plumtree_create(&ok, &env, 0, &t), 0);
    plumtree_destroy(t);
    struct plumtree_config c;
#define BAD_(stmt)                                                                                 \
    do {                                                                                           \
        c = ok;                                                                                    \
        stmt;                                                                                      \
        t = NULL;                                                                                  \
        assert_int_equal(plumtree_create(&c, &env, 0, &t), P4P_EINVAL);                            \
        assert_null(t);                                                                            \
    } while (0)
    BAD_(c.mode = 0);
    BAD_(c.mode = 6);
    BAD_(c.mtu = PLUMTREE_MTU_MIN - 1);
    BAD_(c.payload_max = c.mtu);
    BAD_(c.active_max = 0);
    BAD_(c.passive_max = 0);
    BAD_(c.arwl = 0);
    BAD_(c.arwl = PLUMTREE_TTL_MAX + 1);
    BAD_(c.prwl = c.arwl + 1);
    BAD_(c.shuffle_ka = PLUMTREE_LIST_MAX);
    BAD_(c.seen_max = 0);
    BAD_(c.cache_max = 0);
    BAD_(c.graft_timeout_ns = 0);
    BAD_(c.graft_retry_ns = 0);
    BAD_(c.keepalive_ns = c.dead_ns);
    BAD_(c.digest_max = PLUMTREE_BATCH_MAX + 1);
    BAD_((c.mode = PLUMTREE_MODE_PUSH, c.round_ns = 0));
    BAD_((c.mode = PLUMTREE_MODE_PULL, c.fanout = 0));
#undef BAD_
    assert_int_equal(plumtree_create(&ok, &env, P4P_ADDR_BROADCAST, &t), P4P_EINVAL);
    struct plumtree_env noenv = {0};
    assert_int_equal(plumtree_create(&ok, &noenv, 0, &t), P4P_EINVAL);
    assert_int_equal(plumtree_create(&ok, &env, 0, &t), 0);
    assert_int_equal(plumtree_join(t, 0, 0), P4P_EINVAL);
    uint8_t id[32] = {0};
    static uint8_t big[300];
    assert_int_equal(plumtree_broadcast(t, 0, id, big, ok.payload_max + 1), P4P_ETOOBIG);
    assert_int_equal(plumtree_broadcast(t, 0, NULL, big, 1), P4P_EINVAL);
    assert_int_equal(plumtree_broadcast(t, 0, id, big, ok.payload_max), 0);
    assert_int_equal(plumtree_deadline(t) != P4P_TIME_NONE, 1); /* the shuffle timer */
    plumtree_destroy(t);
}

static uint64_t scenario_hash(uint64_t seed)
{
    struct plumtree_config cfg = test_config(PLUMTREE_MODE_TREE);
    struct sim s;
    sim_init(&s, 60, &cfg, seed);
    s.loss_pct = 5;
    sim_build(&s, 50 * MS);
    sim_run_until(&s, s.now + 10 * SEC);
    for (uint32_t m = 0; m < 5; m++) {
        sim_broadcast(&s, m, m);
        sim_run_until(&s, s.now + 1 * SEC);
    }
    uint64_t h = 1469598103934665603ull;
    struct plumtree_stats st;
    for (uint32_t i = 0; i < s.n; i++) {
        plumtree_stats(s.nodes[i].pt, &st);
        const uint64_t *words = (const uint64_t *)&st;
        for (size_t k = 0; k < sizeof(st) / sizeof(uint64_t); k++) {
            h = (h ^ words[k]) * 1099511628211ull;
        }
        p4p_addr v[64];
        uint32_t n = plumtree_active_view(s.nodes[i].pt, v, 64);
        for (uint32_t k = 0; k < n; k++) {
            h = (h ^ v[k]) * 1099511628211ull;
        }
    }
    sim_free(&s);
    return h;
}

static void test_determinism(void **state)
{
    (void)state;
    assert_true(scenario_hash(3) == scenario_hash(3));
    assert_true(scenario_hash(3) != scenario_hash(4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_validation),
        cmocka_unit_test(test_join_and_neighbor_priorities),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_graft_timer),
        cmocka_unit_test(test_peer_down_promotes_passive),
        cmocka_unit_test(test_seen_bounded),
        cmocka_unit_test(test_malformed_every_length),
        cmocka_unit_test(test_malformed_fields),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_views_stabilise),
        cmocka_unit_test(test_views_repair_after_failures),
        cmocka_unit_test(test_broadcast_tree_vs_flood),
        cmocka_unit_test(test_broadcast_loss_and_failures),
        cmocka_unit_test(test_broadcast_optimisation),
        cmocka_unit_test(test_epidemic_modes),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
