/*
 * test_node.c — the engine driven directly: two or three nodes, a fake clock, frames carried
 * by hand. Covers identity, flood and gossip dissemination, duplicate suppression, signature
 * checks (with and without the shared cache), malformed input, bounds and deadlines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "envelope.h"
#include "p4p/p4p.h"
#include "rng.h"

#define MAXN 8
#define QMAX 4096

struct msg {
    uint32_t dst, src;
    size_t len;
    uint8_t data[2048];
};

struct net {
    p4p_node *n[MAXN];
    struct sim_rng rng[MAXN];
    uint32_t count;
    struct msg *q; /* FIFO of frames in flight */
    size_t head, tail;
    struct p4p_event ev[MAXN][64];
    uint32_t ev_count[MAXN];
    uint64_t now;
};

static void rnd(void *ctx, uint8_t *out, size_t len)
{
    sim_rng_bytes(ctx, out, len);
}

static void net_init(struct net *t, uint32_t count, const struct p4p_config *cfg,
                     struct p4p_sigcache *cache)
{
    memset(t, 0, sizeof(*t));
    t->q = calloc(QMAX, sizeof(*t->q));
    assert_non_null(t->q);
    t->count = count;
    for (uint32_t i = 0; i < count; i++) {
        sim_rng_derive(&t->rng[i], 42, "node", i);
        struct p4p_env env = {.ctx = &t->rng[i], .random = rnd, .sigcache = cache};
        assert_int_equal(p4p_node_create(cfg, &env, &t->n[i]), 0);
    }
}

static void net_free(struct net *t)
{
    for (uint32_t i = 0; i < t->count; i++) {
        p4p_node_destroy(t->n[i]);
    }
    free(t->q);
}

static void link_up(struct net *t, uint32_t a, uint32_t b)
{
    struct p4p_link_event ab = {P4P_LINK_UP, 0, b}, ba = {P4P_LINK_UP, 0, a};
    assert_int_equal(p4p_node_link(t->n[a], t->now, &ab), 0);
    assert_int_equal(p4p_node_link(t->n[b], t->now, &ba), 0);
}

/* Moves node i's frames into the in-flight queue and its events into t->ev. */
static void drain(struct net *t, uint32_t i)
{
    struct p4p_frame f;
    while (p4p_node_poll_frame(t->n[i], &f) == 0) {
        assert_true(t->tail - t->head < QMAX);
        struct msg *m = &t->q[t->tail++ % QMAX];
        assert_true(f.len <= sizeof(m->data));
        m->dst = f.peer;
        m->src = i;
        m->len = f.len;
        memcpy(m->data, f.data, f.len);
    }
    struct p4p_event e;
    while (p4p_node_poll_event(t->n[i], &e) == 0) {
        assert_true(t->ev_count[i] < 64);
        t->ev[i][t->ev_count[i]++] = e;
    }
}

/* Delivers frames in FIFO order until none are left; returns how many were delivered. */
static size_t run(struct net *t)
{
    size_t delivered = 0;
    while (t->head != t->tail) {
        struct msg *m = &t->q[t->head++ % QMAX];
        struct p4p_frame f = {0, m->src, m->data, m->len};
        p4p_node_recv(t->n[m->dst], t->now, &f);
        drain(t, m->dst);
        delivered++;
    }
    return delivered;
}

static void stats(p4p_node *n, struct p4p_stats *s)
{
    p4p_node_stats(n, s);
}

static struct p4p_config flood_config(void)
{
    struct p4p_config c;
    p4p_config_default(&c);
    c.app = P4P_APP_FLOOD;
    return c;
}

/* A published update as it leaves node 0 (A-B line), for the byte-level tests. */
static size_t published_frame(struct net *t, uint8_t *out)
{
    const uint8_t payload[] = "hello";
    assert_int_equal(p4p_node_publish(t->n[0], 100, payload, 5, NULL), 0);
    struct p4p_frame f;
    assert_int_equal(p4p_node_poll_frame(t->n[0], &f), 0);
    memcpy(out, f.data, f.len);
    return f.len;
}

static void test_identity_from_stream(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    struct net a, b;
    net_init(&a, 2, &c, NULL);
    net_init(&b, 1, &c, NULL);
    uint8_t k0[32], k1[32], k0again[32];
    p4p_node_public_key(a.n[0], k0);
    p4p_node_public_key(a.n[1], k1);
    p4p_node_public_key(b.n[0], k0again);
    assert_memory_not_equal(k0, k1, 32);
    assert_memory_equal(k0, k0again, 32); /* same stream, same identity */
    net_free(&a);
    net_free(&b);
}

static void test_create_rejects_bad_config(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    struct sim_rng r;
    sim_rng_derive(&r, 1, "x", 0);
    struct p4p_env env = {.ctx = &r, .random = rnd};
    p4p_node *n = NULL;
    c.mtu = 10;
    assert_int_equal(p4p_node_create(&c, &env, &n), P4P_EINVAL);
    c = flood_config();
    c.app = 0;
    assert_int_equal(p4p_node_create(&c, &env, &n), P4P_EINVAL);
    c = flood_config();
    env.random = NULL;
    assert_int_equal(p4p_node_create(&c, &env, &n), P4P_EINVAL);
    assert_null(n);
}

static void test_flood_line(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    struct net t;
    net_init(&t, 3, &c, NULL);
    link_up(&t, 0, 1);
    link_up(&t, 1, 2);
    uint8_t id[32];
    const uint8_t payload[] = "update-1";
    assert_int_equal(p4p_node_publish(t.n[0], 1000, payload, 8, id), 0);
    drain(&t, 0);
    assert_int_equal(t.ev_count[0], 1);
    assert_int_equal(t.ev[0][0].kind, P4P_EVENT_PUBLISHED);
    assert_memory_equal(t.ev[0][0].id, id, 32);
    /* A -> B, B -> C; C's only neighbour is the sender, so it stops there. */
    assert_int_equal(run(&t), 2);
    for (uint32_t i = 1; i < 3; i++) {
        assert_int_equal(t.ev_count[i], 1);
        assert_int_equal(t.ev[i][0].kind, P4P_EVENT_DELIVERED);
        assert_memory_equal(t.ev[i][0].id, id, 32);
        assert_int_equal(t.ev[i][0].hops, i);
        assert_int_equal(t.ev[i][0].seq, 1);
        assert_int_equal(t.ev[i][0].created_ns, 1000);
        assert_int_equal(t.ev[i][0].from, i - 1);
        uint8_t origin[32];
        p4p_node_public_key(t.n[0], origin);
        assert_memory_equal(t.ev[i][0].origin, origin, 32);
    }
    struct p4p_stats s;
    stats(t.n[2], &s);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(s.frames_out, 0);
    stats(t.n[1], &s);
    assert_int_equal(s.frames_in, 1);
    assert_int_equal(s.frames_out, 1);
    assert_int_equal(s.sig_verified, 1);
    net_free(&t);
}

static void test_flood_triangle_duplicates(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    struct net t;
    net_init(&t, 3, &c, NULL);
    link_up(&t, 0, 1);
    link_up(&t, 1, 2);
    link_up(&t, 0, 2);
    assert_int_equal(p4p_node_publish(t.n[0], 5, (const uint8_t *)"x", 1, NULL), 0);
    drain(&t, 0);
    /* sum of degrees - (N - 1) = 6 - 2 = 4 arrivals, 2 of them duplicates */
    assert_int_equal(run(&t), 4);
    struct p4p_stats s1, s2;
    stats(t.n[1], &s1);
    stats(t.n[2], &s2);
    assert_int_equal(s1.delivered + s2.delivered, 2);
    assert_int_equal(s1.duplicates + s2.duplicates, 2);
    net_free(&t);
}

static void test_payload_round_trip(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    struct net t;
    net_init(&t, 2, &c, NULL);
    link_up(&t, 0, 1);
    uint8_t payload[700];
    for (size_t i = 0; i < sizeof(payload); i++) {
        payload[i] = (uint8_t)(i * 7);
    }
    assert_int_equal(p4p_node_publish(t.n[0], 9, payload, sizeof(payload), NULL), 0);
    drain(&t, 0);
    assert_memory_equal(t.ev[0][0].payload, payload, sizeof(payload));
    struct msg *m = &t.q[t.head];
    struct env_msg sent;
    assert_int_equal(env_decode(m->data, m->len, &sent), 0);
    assert_int_equal(sent.kind, ENV_UPDATE);
    assert_int_equal(sent.u.update.hops, 0);
    assert_int_equal(sent.u.update.seq, 1);
    assert_int_equal(sent.u.update.created_ns, 9);
    assert_int_equal(sent.u.update.payload_len, sizeof(payload));
    assert_memory_equal(sent.u.update.payload, payload, sizeof(payload));
    struct p4p_frame f = {0, 0, m->data, m->len};
    assert_int_equal(p4p_node_recv(t.n[1], 10, &f), 0);
    struct p4p_event e;
    assert_int_equal(p4p_node_poll_event(t.n[1], &e), 0);
    assert_int_equal(e.payload_len, sizeof(payload));
    assert_memory_equal(e.payload, payload, sizeof(payload));
    net_free(&t);
}

static void test_duplicate_and_forgery(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    struct net t;
    net_init(&t, 2, &c, NULL);
    link_up(&t, 0, 1);
    uint8_t good[512], bad[512];
    size_t len = published_frame(&t, good);
    struct p4p_frame f = {0, 0, bad, len};

    /* A flipped signature bit, then a flipped payload bit: both fail verification. */
    memcpy(bad, good, len);
    bad[len - 1] ^= 1;
    assert_int_equal(p4p_node_recv(t.n[1], 200, &f), P4P_EBADSIG);
    memcpy(bad, good, len);
    bad[len - 67] ^= 0x20; /* last payload byte, just before the signature item */
    assert_int_equal(p4p_node_recv(t.n[1], 200, &f), P4P_EBADSIG);
    struct p4p_event e;
    assert_int_equal(p4p_node_poll_event(t.n[1], &e), P4P_EAGAIN);

    /* The forgeries did not poison duplicate suppression: the real one is accepted. */
    f.data = good;
    assert_int_equal(p4p_node_recv(t.n[1], 201, &f), 0);
    assert_int_equal(p4p_node_recv(t.n[1], 202, &f), P4P_EDUPLICATE);
    struct p4p_stats s;
    stats(t.n[1], &s);
    assert_int_equal(s.dropped_badsig, 2);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(s.frames_in, 4);
    net_free(&t);
}

static void test_malformed_never_crashes(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    struct net t;
    net_init(&t, 2, &c, NULL);
    link_up(&t, 0, 1);
    uint8_t good[512];
    size_t len = published_frame(&t, good);
    uint64_t drops = 0;
    /* Every strict prefix is malformed. */
    for (size_t k = 0; k < len; k++) {
        struct p4p_frame f = {0, 0, good, k};
        assert_int_equal(p4p_node_recv(t.n[1], 1, &f), P4P_EMALFORMED);
        drops++;
    }
    /* Random bytes and random single-byte corruptions: dropped and counted, never accepted
     * except the unmodified frame. */
    struct sim_rng r;
    sim_rng_derive(&r, 7, "fuzz", 0);
    uint8_t buf[600];
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)sim_rng_below(&r, sizeof(buf));
        sim_rng_bytes(&r, buf, n);
        if (i % 2 == 0 && n <= len) {
            memcpy(buf, good, len);
            n = len;
            buf[sim_rng_below(&r, len)] ^= (uint8_t)(1 + sim_rng_below(&r, 255));
        }
        struct p4p_frame f = {0, 0, buf, n};
        int rc = p4p_node_recv(t.n[1], 2, &f);
        assert_true(rc == P4P_EMALFORMED || rc == P4P_EVERSION || rc == P4P_EBADSIG ||
                    rc == P4P_EDUPLICATE || rc == 0);
        if (rc == 0) {
            assert_int_equal(n, len); /* only a byte-identical update can get through */
        }
    }
    struct p4p_stats s;
    stats(t.n[1], &s);
    assert_true(s.dropped_malformed >= drops);
    assert_int_equal(s.frames_in, drops + 20000);
    net_free(&t);
}

static void test_other_version(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    struct net t;
    net_init(&t, 2, &c, NULL);
    uint8_t good[512];
    link_up(&t, 0, 1);
    size_t len = published_frame(&t, good);
    good[1] = 0x02; /* [1, ...] -> [2, ...] */
    struct p4p_frame f = {0, 0, good, len};
    assert_int_equal(p4p_node_recv(t.n[1], 1, &f), P4P_EVERSION);
    struct p4p_stats s;
    stats(t.n[1], &s);
    assert_int_equal(s.dropped_version, 1);
    net_free(&t);
}

static void test_sigcache_shared(void **state)
{
    (void)state;
    struct p4p_sigcache *cache = NULL;
    assert_int_equal(p4p_sigcache_create(64, &cache), 0);
    struct p4p_config c = flood_config();
    struct net t;
    net_init(&t, 3, &c, cache);
    link_up(&t, 0, 1);
    link_up(&t, 0, 2);
    uint8_t good[512], bad[512];
    size_t len = published_frame(&t, good);
    struct p4p_frame f = {0, 0, good, len};
    assert_int_equal(p4p_node_recv(t.n[1], 1, &f), 0);
    /* Same body, another (invalid) signature: the cache must not vouch for it. */
    memcpy(bad, good, len);
    bad[len - 5] ^= 0x40;
    f.data = bad;
    assert_int_equal(p4p_node_recv(t.n[2], 1, &f), P4P_EBADSIG);
    f.data = good;
    assert_int_equal(p4p_node_recv(t.n[2], 1, &f), 0);
    struct p4p_stats s1, s2;
    stats(t.n[1], &s1);
    stats(t.n[2], &s2);
    assert_int_equal(s1.sig_verified, 1);
    assert_int_equal(s1.sig_cache_hits, 0);
    assert_int_equal(s2.sig_verified, 1); /* the forgery */
    assert_int_equal(s2.sig_cache_hits, 1);
    assert_int_equal(s2.delivered, 1);
    net_free(&t);
    p4p_sigcache_destroy(cache);
}

static void test_publish_limits(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    c.payload_max = 100;
    struct net t;
    net_init(&t, 1, &c, NULL);
    uint8_t big[200] = {0};
    assert_int_equal(p4p_node_publish(t.n[0], 1, big, 101, NULL), P4P_ETOOBIG);
    assert_int_equal(p4p_node_publish(t.n[0], 1, big, 100, NULL), 0);
    net_free(&t);
    c = flood_config();
    c.mtu = 128;
    net_init(&t, 1, &c, NULL);
    assert_int_equal(p4p_node_publish(t.n[0], 1, big, 100, NULL), P4P_ETOOBIG);
    assert_int_equal(p4p_node_publish(t.n[0], 1, big, 10, NULL), 0);
    net_free(&t);
}

static void test_link_down_and_bounds(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    c.neighbour_max = 2;
    struct net t;
    net_init(&t, 4, &c, NULL);
    link_up(&t, 0, 1);
    link_up(&t, 0, 2);
    struct p4p_link_event up3 = {P4P_LINK_UP, 0, 3};
    assert_int_equal(p4p_node_link(t.n[0], 0, &up3), P4P_EFULL);
    struct p4p_link_event down1 = {P4P_LINK_DOWN, 0, 1};
    assert_int_equal(p4p_node_link(t.n[0], 0, &down1), 0);
    assert_int_equal(p4p_node_link(t.n[0], 0, &down1), P4P_ENOTFOUND);
    assert_int_equal(p4p_node_publish(t.n[0], 1, (const uint8_t *)"a", 1, NULL), 0);
    struct p4p_frame f;
    assert_int_equal(p4p_node_poll_frame(t.n[0], &f), 0);
    assert_int_equal(f.peer, 2);
    assert_int_equal(p4p_node_poll_frame(t.n[0], &f), P4P_EAGAIN);
    net_free(&t);
}

static void test_outbox_bound(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    c.outbox_max = 3;
    struct net t;
    net_init(&t, 6, &c, NULL);
    for (uint32_t i = 1; i < 6; i++) {
        link_up(&t, 0, i);
    }
    assert_int_equal(p4p_node_publish(t.n[0], 1, (const uint8_t *)"a", 1, NULL), 0);
    struct p4p_frame f[5];
    int got = 0;
    while (p4p_node_poll_frame(t.n[0], &f[got]) == 0) {
        got++;
    }
    assert_int_equal(got, 3);
    /* Polled pointers stay valid until the next input: all three are the same bytes. */
    assert_int_equal(f[0].len, f[2].len);
    assert_memory_equal(f[0].data, f[2].data, f[0].len);
    struct p4p_stats s;
    stats(t.n[0], &s);
    assert_int_equal(s.dropped_outbox_full, 2);
    net_free(&t);
}

static void test_seen_eviction(void **state)
{
    (void)state;
    struct p4p_config c = flood_config();
    c.seen_max = 16;
    struct net t;
    net_init(&t, 2, &c, NULL);
    link_up(&t, 0, 1);
    uint8_t frames[20][512];
    size_t lens[20];
    for (int i = 0; i < 20; i++) {
        assert_int_equal(p4p_node_publish(t.n[0], (uint64_t)i, (const uint8_t *)"p", 1, NULL), 0);
        struct p4p_frame f;
        assert_int_equal(p4p_node_poll_frame(t.n[0], &f), 0);
        memcpy(frames[i], f.data, f.len);
        lens[i] = f.len;
    }
    for (int i = 0; i < 20; i++) {
        struct p4p_frame f = {0, 0, frames[i], lens[i]};
        assert_int_equal(p4p_node_recv(t.n[1], 100, &f), 0);
    }
    /* The newest 16 are remembered; the oldest 4 were forgotten and are accepted again. */
    for (int i = 4; i < 20; i++) {
        struct p4p_frame f = {0, 0, frames[i], lens[i]};
        assert_int_equal(p4p_node_recv(t.n[1], 101, &f), P4P_EDUPLICATE);
    }
    struct p4p_frame f0 = {0, 0, frames[0], lens[0]};
    assert_int_equal(p4p_node_recv(t.n[1], 102, &f0), 0);
    struct p4p_stats s;
    stats(t.n[1], &s);
    assert_int_equal(s.seen_evicted, 5);
    net_free(&t);
}

static void test_gossip_pull_repairs(void **state)
{
    (void)state;
    struct p4p_config c;
    p4p_config_default(&c);
    c.gossip_fanout = 0; /* no eager push: everything must come by push-pull rounds */
    c.gossip_interval_ns = 1000;
    struct net t;
    net_init(&t, 4, &c, NULL);
    link_up(&t, 0, 1);
    link_up(&t, 1, 2);
    link_up(&t, 2, 3);
    uint8_t id[32];
    assert_int_equal(p4p_node_publish(t.n[0], 0, (const uint8_t *)"g", 1, id), 0);
    drain(&t, 0);
    assert_int_equal(t.head, t.tail); /* nothing sent eagerly */
    for (uint32_t i = 0; i < 4; i++) {
        assert_true(p4p_node_deadline(t.n[i]) != P4P_TIME_NONE); /* started by link-up */
    }
    int rounds = 0;
    while ((t.ev_count[1] == 0 || t.ev_count[2] == 0 || t.ev_count[3] == 0) && rounds < 200) {
        /* Advance to the earliest deadline and fire every node that is due. */
        uint64_t next = UINT64_MAX;
        for (uint32_t i = 0; i < 4; i++) {
            uint64_t d = p4p_node_deadline(t.n[i]);
            assert_true(d >= t.now);
            next = d < next ? d : next;
        }
        t.now = next;
        for (uint32_t i = 0; i < 4; i++) {
            if (p4p_node_deadline(t.n[i]) <= t.now) {
                p4p_node_timeout(t.n[i], t.now);
                drain(&t, i);
            }
        }
        run(&t);
        rounds++;
    }
    for (uint32_t i = 1; i < 4; i++) {
        assert_int_equal(t.ev_count[i], 1);
        assert_memory_equal(t.ev[i][0].id, id, 32);
        assert_int_equal(t.ev[i][0].hops, i);
    }
    struct p4p_stats s;
    stats(t.n[1], &s);
    assert_true(s.gossip_rounds > 0);
    assert_true(s.digests_in > 0);
    net_free(&t);
}

static void test_gossip_deadline_jitter(void **state)
{
    (void)state;
    struct p4p_config c;
    p4p_config_default(&c);
    c.gossip_interval_ns = 1000000;
    struct net t;
    net_init(&t, 1, &c, NULL);
    assert_int_equal(p4p_node_deadline(t.n[0]), P4P_TIME_NONE);
    assert_int_equal(p4p_node_timeout(t.n[0], 5000), 0);
    for (int i = 0; i < 100; i++) {
        uint64_t now = p4p_node_deadline(t.n[0]);
        assert_true(now != P4P_TIME_NONE);
        p4p_node_timeout(t.n[0], now);
        uint64_t d = p4p_node_deadline(t.n[0]);
        assert_true(d >= now + 500000 && d < now + 1500000);
    }
    net_free(&t);
    c.app = P4P_APP_FLOOD;
    net_init(&t, 1, &c, NULL);
    p4p_node_timeout(t.n[0], 1);
    assert_int_equal(p4p_node_deadline(t.n[0]), P4P_TIME_NONE);
    net_free(&t);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(p4p_strerror(0), "success");
    assert_string_equal(p4p_strerror(P4P_EBADSIG), "bad signature");
    assert_string_equal(p4p_strerror(12345), "unknown error");
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_from_stream),
        cmocka_unit_test(test_create_rejects_bad_config),
        cmocka_unit_test(test_flood_line),
        cmocka_unit_test(test_flood_triangle_duplicates),
        cmocka_unit_test(test_payload_round_trip),
        cmocka_unit_test(test_duplicate_and_forgery),
        cmocka_unit_test(test_malformed_never_crashes),
        cmocka_unit_test(test_other_version),
        cmocka_unit_test(test_sigcache_shared),
        cmocka_unit_test(test_publish_limits),
        cmocka_unit_test(test_link_down_and_bounds),
        cmocka_unit_test(test_outbox_bound),
        cmocka_unit_test(test_seen_eviction),
        cmocka_unit_test(test_gossip_pull_repairs),
        cmocka_unit_test(test_gossip_deadline_jitter),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
