/*
 * test_session.c — unit tests for engine/session.{h,c}: Noise sessions over a lossy datagram
 * network.
 *
 * A small harness connects two or three session tables. Each node names the others by an
 * address of its own choosing (name[i][j]), so a "transport restart" can change addresses.
 * Datagrams polled from the tables go into a queue that tests may drop, duplicate, reorder or
 * tamper with before delivering; time only moves when a test advances it. Everything is
 * deterministic (seeded random streams for ephemeral keys and for the fuzzing).
 *
 * Covered: XX and IK handshakes (and IK chosen by a known-key lookup), IK with a wrong
 * responder key, refused keys, every lost handshake message, crossing handshakes, tampered
 * and replayed datagrams, reordering inside the window and behind it, rekeying with
 * reordering across the epoch change, keepalives and idle timeout, a peer that loses its state
 * (recovery driven by the receiver, and by the sender), resumption after a transport restart
 * (and its fallback to a handshake), a full table, three tables at once, the Ed25519 key
 * conversion, and malformed inputs of every length plus a fixed-seed fuzz loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "session.h"

#define NODES   3
#define QCAP    8192
#define EV_CAP  64
#define PKT_MAX 1400
#define MS      1000000ull
#define SEC     1000000000ull

struct pkt {
    int from, to;
    size_t len;
    uint8_t data[PKT_MAX];
};

struct node {
    uint64_t rng; /* first: the table's env.ctx is the node, and splitmix reads it as this */
    struct net *net;
    int idx;
    session_table *tab;
    uint8_t priv[32], pub[32];
    bool refuse;       /* accept_key says no */
    bool knows[NODES]; /* lookup_key knows node j's key */
    struct session_event ev[EV_CAP];
    size_t ev_n;
    char got[64][64]; /* payloads delivered, as strings */
    size_t got_n;
    int last_rc;
};

struct net {
    struct node n[NODES];
    int count;
    p4p_addr name[NODES][NODES]; /* how node i addresses node j */
    struct pkt *q;
    size_t qn;
    p4p_time_ns now;
    struct session_config cfg;
};

/* ---- Harness ------------------------------------------------------------------------------- */

static void splitmix(void *ctx, uint8_t *out, size_t len)
{
    uint64_t *s = ctx;
    for (size_t i = 0; i < len; i++) {
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        out[i] = (uint8_t)(z ^ (z >> 31));
    }
}

static uint64_t rnd64(uint64_t *s)
{
    uint8_t b[8];
    uint64_t v = 0;
    splitmix(s, b, 8);
    memcpy(&v, b, 8);
    return v;
}

static int peer_of(const struct net *net, int i, p4p_addr a)
{
    for (int j = 0; j < net->count; j++) {
        if (j != i && net->name[i][j] == a) {
            return j;
        }
    }
    return -1;
}

static int hook_accept(void *ctx, p4p_addr peer, const uint8_t rs[32])
{
    struct node *nd = ctx;
    int j = peer_of(nd->net, nd->idx, peer);
    /* Refuse on request, and always refuse a key that is not the one of the node at peer. */
    return !nd->refuse && j >= 0 && memcmp(rs, nd->net->n[j].pub, 32) == 0;
}

static int hook_lookup(void *ctx, p4p_addr peer, uint8_t out[32])
{
    struct node *nd = ctx;
    int j = peer_of(nd->net, nd->idx, peer);
    if (j < 0 || !nd->knows[j]) {
        return 0;
    }
    memcpy(out, nd->net->n[j].pub, 32);
    return 1;
}

static void node_create(struct net *net, int i)
{
    struct node *nd = &net->n[i];
    struct session_env env = {
        .ctx = nd, .random = splitmix, .accept_key = hook_accept, .lookup_key = hook_lookup};
    nd->net = net;
    nd->idx = i;
    assert_int_equal(session_table_create(&net->cfg, &env, nd->priv, &nd->tab), 0);
}

static void net_init(struct net *net, int count, const struct session_config *cfg)
{
    memset(net, 0, sizeof(*net));
    net->count = count;
    net->q = calloc(QCAP, sizeof(*net->q));
    assert_non_null(net->q);
    net->now = 1000 * SEC;
    if (cfg != NULL) {
        net->cfg = *cfg;
    } else {
        session_config_default(&net->cfg);
    }
    for (int i = 0; i < count; i++) {
        struct node *nd = &net->n[i];
        nd->rng = 1000 + (uint64_t)i;
        splitmix(&nd->rng, nd->priv, 32);
        crypto_scalarmult_base(nd->pub, nd->priv);
        for (int j = 0; j < count; j++) {
            net->name[i][j] = (p4p_addr)(100 + j);
        }
        node_create(net, i);
    }
}

static void net_free(struct net *net)
{
    for (int i = 0; i < net->count; i++) {
        session_table_destroy(net->n[i].tab);
    }
    free(net->q);
}

static void drain_events(struct net *net)
{
    for (int i = 0; i < net->count; i++) {
        struct node *nd = &net->n[i];
        struct session_event e;
        while (nd->tab != NULL && session_poll_event(nd->tab, &e) == 0) {
            assert_true(nd->ev_n < EV_CAP);
            nd->ev[nd->ev_n++] = e;
        }
    }
}

/* Moves every polled datagram into the queue. */
static void collect(struct net *net)
{
    for (int i = 0; i < net->count; i++) {
        struct session_datagram d;
        while (net->n[i].tab != NULL && session_poll(net->n[i].tab, &d) == 0) {
            int j = peer_of(net, i, d.peer);
            assert_true(d.len <= PKT_MAX && d.len <= net->cfg.mtu);
            if (j < 0) {
                continue; /* an address nobody answers to any more */
            }
            assert_true(net->qn < QCAP);
            struct pkt *p = &net->q[net->qn++];
            p->from = i;
            p->to = j;
            p->len = d.len;
            memcpy(p->data, d.data, d.len);
        }
    }
    drain_events(net);
}

static int deliver_pkt(struct net *net, const struct pkt *p)
{
    struct node *nd = &net->n[p->to];
    uint8_t out[PKT_MAX];
    size_t olen = 99;

    if (nd->tab == NULL) {
        return 0;
    }
    nd->last_rc = session_recv(nd->tab, net->now, net->name[p->to][p->from], p->data, p->len, out,
                               sizeof(out), &olen);
    if (nd->last_rc != 0) {
        assert_int_equal(olen, 0);
    }
    if (olen > 0) {
        assert_true(olen < 64);
        memcpy(nd->got[nd->got_n % 64], out, olen); /* the last 64 payloads */
        nd->got[nd->got_n++ % 64][olen] = 0;
    }
    return nd->last_rc;
}

/* Delivers the queue in order (it may grow meanwhile), until nothing moves. */
static void flush(struct net *net)
{
    static struct pkt batch[QCAP];
    for (int round = 0; round < 100; round++) {
        collect(net);
        if (net->qn == 0) {
            return;
        }
        size_t n = net->qn;
        memcpy(batch, net->q, n * sizeof(*batch));
        net->qn = 0;
        for (size_t i = 0; i < n; i++) {
            deliver_pkt(net, &batch[i]);
        }
    }
    fail_msg("network did not settle");
}

/* Advances time to `until`, firing timers at their deadlines, delivering (or, with drop_all,
 * losing) everything sent meanwhile. */
static void run_until(struct net *net, p4p_time_ns until, bool drop_all)
{
    for (int guard = 0; guard < 100000; guard++) {
        p4p_time_ns next = P4P_TIME_NONE;
        for (int i = 0; i < net->count; i++) {
            if (net->n[i].tab != NULL) {
                p4p_time_ns d = session_deadline(net->n[i].tab);
                next = d < next ? d : next;
            }
        }
        if (next > until) {
            net->now = until;
            return;
        }
        if (next > net->now) {
            net->now = next;
        }
        for (int i = 0; i < net->count; i++) {
            if (net->n[i].tab != NULL) {
                session_timeout(net->n[i].tab, net->now);
            }
        }
        if (drop_all) {
            collect(net);
            net->qn = 0;
        } else {
            flush(net);
        }
    }
    fail_msg("timers did not settle");
}

static struct session_stats stats_of(struct net *net, int i)
{
    struct session_stats s;
    session_stats(net->n[i].tab, &s);
    return s;
}

static int count_events(struct net *net, int i, enum session_event_kind kind, int reason)
{
    int c = 0;
    for (size_t k = 0; k < net->n[i].ev_n; k++) {
        const struct session_event *e = &net->n[i].ev[k];
        if (e->kind == kind && (reason == 0 || (int)e->reason == reason)) {
            c++;
        }
    }
    return c;
}

static int send_str(struct net *net, int from, int to, const char *s)
{
    return session_send(net->n[from].tab, net->now, net->name[from][to], (const uint8_t *)s,
                        strlen(s));
}

static bool has_keys(struct net *net, int i, int j)
{
    struct session_info info;
    return session_get(net->n[i].tab, net->name[i][j], &info) == 0 && info.has_keys;
}

/* Both ways: a message from i arrives at j and one from j at i. */
static void assert_talks(struct net *net, int i, int j)
{
    size_t gi = net->n[i].got_n, gj = net->n[j].got_n;
    assert_int_equal(send_str(net, i, j, "ping"), 0);
    flush(net);
    assert_int_equal(send_str(net, j, i, "pong"), 0);
    flush(net);
    assert_int_equal(net->n[j].got_n, gj + 1);
    assert_string_equal(net->n[j].got[gj % 64], "ping");
    assert_int_equal(net->n[i].got_n, gi + 1);
    assert_string_equal(net->n[i].got[gi % 64], "pong");
}

static void establish(struct net *net, int i, int j, bool ik)
{
    assert_int_equal(
        session_connect(net->n[i].tab, net->now, net->name[i][j], ik ? net->n[j].pub : NULL), 0);
    flush(net);
    assert_true(has_keys(net, i, j));
    assert_true(has_keys(net, j, i));
}

/* ---- Handshakes ---------------------------------------------------------------------------- */

static void check_established(struct net *net, int i, int j, enum noise_pattern p)
{
    const struct session_event *ei = &net->n[i].ev[net->n[i].ev_n - 1];
    const struct session_event *ej = &net->n[j].ev[net->n[j].ev_n - 1];
    assert_int_equal(ei->kind, SESSION_EVENT_ESTABLISHED);
    assert_int_equal(ej->kind, SESSION_EVENT_ESTABLISHED);
    assert_true(ei->is_initiator);
    assert_false(ej->is_initiator);
    assert_int_equal(ei->pattern, p);
    assert_int_equal(ej->pattern, p);
    assert_memory_equal(ei->remote_static, net->n[j].pub, 32);
    assert_memory_equal(ej->remote_static, net->n[i].pub, 32);
    assert_int_equal(ei->peer, net->name[i][j]);
    assert_int_equal(ej->peer, net->name[j][i]);
}

static void test_xx_handshake(void **state)
{
    (void)state;
    static struct net net;
    net_init(&net, 2, NULL);
    establish(&net, 0, 1, false);
    check_established(&net, 0, 1, NOISE_PATTERN_XX);
    assert_talks(&net, 0, 1);
    struct session_stats a = stats_of(&net, 0), b = stats_of(&net, 1);
    assert_int_equal(a.hs_started, 1);
    assert_int_equal(a.hs_completed, 1);
    assert_int_equal(b.hs_started, 0);
    assert_int_equal(b.hs_completed, 1);
    assert_int_equal(a.hs_failed + b.hs_failed, 0);
    /* 3 handshake messages + B's confirmation keepalive. */
    assert_int_equal(a.datagrams_out, 2 + 1);
    assert_int_equal(b.datagrams_out, 2 + 1);
    assert_int_equal(a.overhead_bytes, (uint64_t)SESSION_OVERHEAD * 1);
    assert_int_equal(b.overhead_bytes, (uint64_t)SESSION_OVERHEAD * 2);
    assert_int_equal(session_connect(net.n[0].tab, net.now, net.name[0][1], NULL), P4P_EDUPLICATE);
    net_free(&net);
}

static void test_ik_handshake(void **state)
{
    (void)state;
    static struct net net;
    net_init(&net, 2, NULL);
    establish(&net, 0, 1, true);
    check_established(&net, 0, 1, NOISE_PATTERN_IK);
    assert_talks(&net, 0, 1);
    assert_int_equal(stats_of(&net, 0).hs_completed, 1);
    assert_int_equal(stats_of(&net, 1).hs_completed, 1);
    net_free(&net);

    /* IK chosen because the lookup knows the key. */
    net_init(&net, 2, NULL);
    net.n[0].knows[1] = true;
    establish(&net, 0, 1, false);
    check_established(&net, 0, 1, NOISE_PATTERN_IK);
    net_free(&net);
}

static void test_ik_wrong_key(void **state)
{
    (void)state;
    static struct net net;
    uint8_t wrong[32];

    net_init(&net, 2, NULL);
    memcpy(wrong, net.n[0].pub, 32); /* a valid key, but not B's */
    assert_int_equal(session_connect(net.n[0].tab, net.now, net.name[0][1], wrong), 0);
    flush(&net);
    assert_int_equal(net.n[1].last_rc, P4P_EBADSIG);
    assert_int_equal(stats_of(&net, 1).fail_wrong_key, 1);
    assert_int_equal(session_count(net.n[1].tab), 0); /* nothing kept for a failed HS1 */
    run_until(&net, net.now + 60 * SEC, false);
    struct session_stats a = stats_of(&net, 0), b = stats_of(&net, 1);
    assert_int_equal(a.hs_retransmits, net.cfg.hs_retries);
    assert_int_equal(a.fail_timeout, 1);
    assert_int_equal(a.hs_failed, 1);
    assert_int_equal(b.fail_wrong_key, 1 + net.cfg.hs_retries);
    assert_int_equal(b.hs_failed, 1 + net.cfg.hs_retries);
    assert_int_equal(count_events(&net, 0, SESSION_EVENT_CLOSED, SESSION_CLOSE_HANDSHAKE_FAILED),
                     1);
    assert_int_equal(session_count(net.n[0].tab), 0);
    /* Both tables still work. */
    establish(&net, 0, 1, true);
    assert_talks(&net, 0, 1);
    net_free(&net);
}

static void test_refused_key(void **state)
{
    (void)state;
    static struct net net;

    /* The XX responder refuses the initiator's key at HS3. */
    net_init(&net, 2, NULL);
    net.n[1].refuse = true;
    assert_int_equal(session_connect(net.n[0].tab, net.now, net.name[0][1], NULL), 0);
    flush(&net);
    assert_int_equal(stats_of(&net, 1).fail_refused, 1);
    assert_false(has_keys(&net, 1, 0));
    assert_int_equal(session_count(net.n[1].tab), 0);
    /* The initiator never hears a confirmation; B, hearing A's keepalives, tries handshakes
     * of its own and refuses A again each time. Nothing is ever established at B, and A's
     * unconfirmed session ends at the idle timeout. */
    run_until(&net, net.now + 120 * SEC, false);
    assert_int_equal(count_events(&net, 0, SESSION_EVENT_CLOSED, SESSION_CLOSE_IDLE), 1);
    assert_true(stats_of(&net, 1).fail_refused >= 2);
    assert_int_equal(count_events(&net, 1, SESSION_EVENT_ESTABLISHED, 0), 0);
    assert_int_equal(session_count(net.n[0].tab), 0);
    assert_int_equal(session_count(net.n[1].tab), 0);
    net_free(&net);

    /* The XX initiator refuses the responder's key at HS2; IK responder refuses at HS1. */
    net_init(&net, 2, NULL);
    net.n[0].refuse = true;
    assert_int_equal(session_connect(net.n[0].tab, net.now, net.name[0][1], NULL), 0);
    flush(&net);
    assert_int_equal(stats_of(&net, 0).fail_refused, 1);
    assert_int_equal(count_events(&net, 0, SESSION_EVENT_CLOSED, SESSION_CLOSE_REFUSED), 1);
    assert_int_equal(session_count(net.n[0].tab), 0);
    net.n[0].refuse = false;
    net.n[1].refuse = true;
    run_until(&net, net.now + 60 * SEC, false); /* B's half-open handshake expires */
    assert_int_equal(session_count(net.n[1].tab), 0);
    assert_int_equal(session_connect(net.n[0].tab, net.now, net.name[0][1], net.n[1].pub), 0);
    flush(&net);
    assert_int_equal(stats_of(&net, 1).fail_refused, 1);
    assert_int_equal(session_count(net.n[1].tab), 0);
    net_free(&net);
}

/* The sizes and header bytes documented in session.h. */
static void test_wire_format(void **state)
{
    (void)state;
    static struct net net;
    static const size_t xx[] = {34, 98, 66, SESSION_OVERHEAD}, ik[] = {98, 50, SESSION_OVERHEAD};
    static const uint8_t xx_type[] = {0x11, 0x12, 0x13, 0x15}, ik_type[] = {0x11, 0x12, 0x15};

    for (int is_ik = 0; is_ik <= 1; is_ik++) {
        net_init(&net, 2, NULL);
        assert_int_equal(
            session_connect(net.n[0].tab, net.now, net.name[0][1], is_ik ? net.n[1].pub : NULL), 0);
        for (int step = 0; step < (is_ik ? 3 : 4); step++) {
            collect(&net);
            assert_int_equal(net.qn, 1);
            assert_int_equal(net.q[0].len, is_ik ? ik[step] : xx[step]);
            assert_int_equal(net.q[0].data[0], is_ik ? ik_type[step] : xx_type[step]);
            if (net.q[0].data[0] != 0x15) {
                /* suite: pattern << 4 | hash (BLAKE2b = 3 by default) */
                assert_int_equal(net.q[0].data[1], is_ik ? 0x23 : 0x13);
            }
            deliver_pkt(&net, &net.q[0]);
            net.qn = 0;
        }
        /* DATA: 11-byte header with the counter in clear, then ciphertext and tag. */
        for (int i = 0; i < 3; i++) {
            assert_int_equal(send_str(&net, 0, 1, "abc"), 0);
        }
        collect(&net);
        assert_int_equal(net.qn, 3);
        uint64_t first = 0;
        for (int i = 0; i < 3; i++) {
            const uint8_t *d = net.q[i].data;
            uint64_t c = 0;
            for (int b = 7; b >= 0; b--) {
                c = c << 8 | d[3 + b];
            }
            first = i == 0 ? c : first;
            assert_int_equal(net.q[i].len, 3 + SESSION_OVERHEAD);
            assert_int_equal(d[0], 0x14);
            assert_int_equal(d[2], 0); /* epoch */
            assert_int_equal(c, first + (uint64_t)i);
        }
        net.qn = 0;
        /* RESUME: 35 bytes of overhead. */
        assert_int_equal(session_detach(net.n[0].tab, net.now, net.name[0][1]), 0);
        assert_int_equal(session_resume(net.n[0].tab, net.now, net.name[0][1], net.n[1].pub), 0);
        collect(&net);
        assert_int_equal(net.qn, 1);
        assert_int_equal(net.q[0].len, SESSION_RESUME_OVERHEAD);
        assert_int_equal(net.q[0].data[0], 0x16);
        net.qn = 0;
        net_free(&net);
    }
}

/* Each handshake message lost once: the retransmission timer (or the duplicate answer)
 * completes the handshake anyway. */
static void test_handshake_loss(void **state)
{
    (void)state;
    static struct net net;

    for (int ik = 0; ik <= 1; ik++) {
        int msgs = ik ? 3 : 4; /* handshake messages + the confirming keepalive */
        for (int lose = 0; lose < msgs; lose++) {
            net_init(&net, 2, NULL);
            assert_int_equal(
                session_connect(net.n[0].tab, net.now, net.name[0][1], ik ? net.n[1].pub : NULL),
                0);
            for (int step = 0; step < msgs; step++) {
                collect(&net);
                assert_int_equal(net.qn, 1);
                if (step != lose) {
                    deliver_pkt(&net, &net.q[0]);
                }
                net.qn = 0;
                if (step == lose) {
                    break;
                }
            }
            run_until(&net, net.now + 30 * SEC, false);
            assert_true(has_keys(&net, 0, 1));
            assert_true(has_keys(&net, 1, 0));
            assert_talks(&net, 0, 1);
            struct session_stats a = stats_of(&net, 0), b = stats_of(&net, 1);
            assert_int_equal(a.hs_failed + b.hs_failed, 0);
            assert_int_equal(a.hs_started, 1);
            assert_int_equal(b.hs_completed, 1);
            assert_true(a.hs_retransmits >= 1 || lose == msgs - 1);
            net_free(&net);
        }
    }
}

/* While the IK responder waits for confirmation it cannot send; the initiator's first data
 * message confirms. */
static void test_ik_responder_waits(void **state)
{
    (void)state;
    static struct net net;
    net_init(&net, 2, NULL);
    assert_int_equal(session_connect(net.n[0].tab, net.now, net.name[0][1], net.n[1].pub), 0);
    collect(&net); /* HS1 */
    deliver_pkt(&net, &net.q[0]);
    net.qn = 0;
    assert_int_equal(send_str(&net, 1, 0, "early"), P4P_EAGAIN);
    collect(&net); /* HS2 */
    deliver_pkt(&net, &net.q[0]);
    net.qn = 0;
    collect(&net); /* the confirming keepalive: lose it */
    assert_int_equal(net.qn, 1);
    net.qn = 0;
    assert_int_equal(send_str(&net, 1, 0, "early"), P4P_EAGAIN);
    assert_int_equal(send_str(&net, 0, 1, "first"), 0);
    flush(&net);
    assert_int_equal(net.n[1].got_n, 1);
    assert_int_equal(send_str(&net, 1, 0, "now"), 0);
    flush(&net);
    assert_string_equal(net.n[0].got[0], "now");
    net_free(&net);
}

static void test_crossing_handshakes(void **state)
{
    (void)state;
    static struct net net;
    for (int ik = 0; ik <= 1; ik++) {
        net_init(&net, 2, NULL);
        assert_int_equal(
            session_connect(net.n[0].tab, net.now, net.name[0][1], ik ? net.n[1].pub : NULL), 0);
        assert_int_equal(
            session_connect(net.n[1].tab, net.now, net.name[1][0], ik ? net.n[0].pub : NULL), 0);
        flush(&net);
        run_until(&net, net.now + 5 * SEC, false);
        assert_true(has_keys(&net, 0, 1));
        assert_true(has_keys(&net, 1, 0));
        assert_talks(&net, 0, 1);
        struct session_stats a = stats_of(&net, 0), b = stats_of(&net, 1);
        assert_int_equal(a.hs_failed + b.hs_failed, 0);
        net_free(&net);
    }
}

/* ---- Transport: tampering, replay, reordering ---------------------------------------------- */

static void test_tamper(void **state)
{
    (void)state;
    static struct net net;
    struct pkt good, bad;

    net_init(&net, 2, NULL);
    establish(&net, 0, 1, false);
    assert_int_equal(send_str(&net, 0, 1, "tamper me"), 0);
    collect(&net);
    assert_int_equal(net.qn, 1);
    good = net.q[0];
    net.qn = 0;
    struct session_stats before = stats_of(&net, 1);
    for (size_t pos = 0; pos < good.len; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            bad = good;
            bad.data[pos] ^= (uint8_t)(1u << bit);
            int rc = deliver_pkt(&net, &bad);
            assert_true(rc < 0);
        }
    }
    assert_int_equal(net.n[1].got_n, 0);
    struct session_stats after = stats_of(&net, 1);
    uint64_t rejected = (after.fail_bad_mac - before.fail_bad_mac) +
                        (after.fail_malformed - before.fail_malformed) +
                        (after.fail_too_old - before.fail_too_old) +
                        (after.fail_no_session - before.fail_no_session);
    assert_int_equal(rejected, good.len * 8);
    assert_true(after.fail_bad_mac > before.fail_bad_mac);
    /* The genuine datagram still gets through (the keys did not change). */
    assert_int_equal(deliver_pkt(&net, &good), 0);
    assert_int_equal(net.n[1].got_n, 1);
    assert_string_equal(net.n[1].got[0], "tamper me");
    /* The bad MACs made B re-handshake once (rate-limited); afterwards all is well. */
    flush(&net);
    assert_int_equal(stats_of(&net, 1).rehandshakes, 1);
    assert_talks(&net, 0, 1);
    net_free(&net);
}

static void test_replay(void **state)
{
    (void)state;
    static struct net net;
    static struct pkt saved[10];
    char msg[16];

    net_init(&net, 2, NULL);
    establish(&net, 0, 1, true);
    for (int i = 0; i < 10; i++) {
        snprintf(msg, sizeof(msg), "m%d", i);
        assert_int_equal(send_str(&net, 0, 1, msg), 0);
    }
    collect(&net);
    assert_int_equal(net.qn, 10);
    memcpy(saved, net.q, sizeof(saved));
    net.qn = 0;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(deliver_pkt(&net, &saved[i]), 0);
    }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(deliver_pkt(&net, &saved[i]), P4P_EDUPLICATE);
    }
    assert_int_equal(net.n[1].got_n, 10);
    assert_int_equal(stats_of(&net, 1).fail_replay, 10);
    assert_int_equal(stats_of(&net, 1).data_received, 10);
    net_free(&net);
}

static void test_reorder_window(void **state)
{
    (void)state;
    static struct net net;
    static struct pkt saved[2100];
    uint64_t rng = 99;

    net_init(&net, 2, NULL);
    net.cfg.outbox_max = 4096;
    session_table_destroy(net.n[0].tab);
    session_table_destroy(net.n[1].tab);
    node_create(&net, 0);
    node_create(&net, 1);
    establish(&net, 0, 1, false);
    /* 300 messages, shuffled, a third of them duplicated: each is delivered exactly once. */
    for (int i = 0; i < 300; i++) {
        assert_int_equal(
            session_send(net.n[0].tab, net.now, net.name[0][1], (const uint8_t *)"x", 1), 0);
    }
    collect(&net);
    assert_int_equal(net.qn, 300);
    for (int i = 0; i < 100; i++) {
        net.q[net.qn++] = net.q[rnd64(&rng) % 300];
    }
    for (size_t i = net.qn - 1; i > 0; i--) {
        size_t j = rnd64(&rng) % (i + 1);
        struct pkt tmp = net.q[i];
        net.q[i] = net.q[j];
        net.q[j] = tmp;
    }
    size_t total = net.qn;
    net.qn = 0;
    for (size_t i = 0; i < total; i++) {
        deliver_pkt(&net, &net.q[i]);
    }
    struct session_stats b = stats_of(&net, 1);
    assert_int_equal(b.data_received, 300);
    assert_int_equal(b.fail_replay, 100);
    assert_int_equal(b.fail_bad_mac, 0);

    /* Behind the window: after counter c + 2000 arrived, c is too old, c + 1000 is not. */
    for (int i = 0; i < 2100; i++) {
        assert_int_equal(
            session_send(net.n[0].tab, net.now, net.name[0][1], (const uint8_t *)"y", 1), 0);
        if (net.qn + 8 > QCAP || i % 1000 == 999) {
            collect(&net);
        }
    }
    collect(&net);
    assert_int_equal(net.qn, 2100);
    memcpy(saved, net.q, sizeof(saved));
    net.qn = 0;
    assert_int_equal(deliver_pkt(&net, &saved[2099]), 0);
    assert_int_equal(deliver_pkt(&net, &saved[2099 - SESSION_REPLAY_WINDOW]), P4P_EDUPLICATE);
    assert_int_equal(stats_of(&net, 1).fail_too_old, 1);
    assert_int_equal(deliver_pkt(&net, &saved[2099 - SESSION_REPLAY_WINDOW + 1]), 0);
    assert_int_equal(deliver_pkt(&net, &saved[1000]), 0);
    assert_int_equal(deliver_pkt(&net, &saved[1000]), P4P_EDUPLICATE);
    net_free(&net);
}

/* ---- Rekeying ------------------------------------------------------------------------------ */

/* A pair that rekeys every 10 messages. */
static void rekey_pair(struct net *net)
{
    struct session_config cfg;
    session_config_default(&cfg);
    cfg.rekey_messages = 10;
    net_init(net, 2, &cfg);
    establish(net, 0, 1, false);
}

static void test_rekey_with_reordering(void **state)
{
    (void)state;
    static struct net net;
    struct session_info info;

    rekey_pair(&net);
    /* 50 messages each way in order: epochs 0..4 on both directions. */
    for (int i = 0; i < 50; i++) {
        assert_int_equal(send_str(&net, 0, 1, "a"), 0);
        assert_int_equal(send_str(&net, 1, 0, "b"), 0);
        flush(&net);
    }
    assert_int_equal(net.n[0].got_n, 50);
    assert_int_equal(net.n[1].got_n, 50);
    struct session_stats a = stats_of(&net, 0), b = stats_of(&net, 1);
    /* B's confirming keepalive opened B's first epoch, so B rekeys once more than A. */
    assert_int_equal(a.rekeys_tx, 4);
    assert_int_equal(b.rekeys_rx, 4);
    assert_int_equal(b.rekeys_tx, 5);
    assert_int_equal(a.rekeys_rx, 5);
    assert_int_equal(session_get(net.n[0].tab, net.name[0][1], &info), 0);
    assert_int_equal(info.tx_epoch, 4);
    assert_int_equal(info.rx_epoch, 5);

    /* Reordering across each epoch change: swap the last message of an epoch with the first
     * of the next. Everything decrypts. */
    for (int i = 0; i < 40; i++) {
        assert_int_equal(send_str(&net, 0, 1, "c"), 0);
    }
    collect(&net);
    assert_int_equal(net.qn, 40);
    int swaps = 0;
    for (size_t i = 0; i + 1 < net.qn; i++) {
        if (net.q[i].data[2] != net.q[i + 1].data[2]) { /* the epoch byte changes here */
            struct pkt tmp = net.q[i];
            net.q[i] = net.q[i + 1];
            net.q[i + 1] = tmp;
            swaps++;
            i++;
        }
    }
    assert_int_equal(swaps, 3);
    size_t n = net.qn;
    net.qn = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(deliver_pkt(&net, &net.q[i]), 0);
    }
    assert_int_equal(net.n[1].got_n, 90);

    /* A full shuffle across four epochs: each message decrypts once or is cleanly rejected as
     * too old (an epoch two behind), never as a bad MAC. */
    uint64_t rng = 5;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(send_str(&net, 0, 1, "d"), 0);
    }
    collect(&net);
    n = net.qn;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rnd64(&rng) % (i + 1);
        struct pkt tmp = net.q[i];
        net.q[i] = net.q[j];
        net.q[j] = tmp;
    }
    net.qn = 0;
    struct session_stats before = stats_of(&net, 1);
    for (size_t i = 0; i < n; i++) {
        deliver_pkt(&net, &net.q[i]);
    }
    struct session_stats after = stats_of(&net, 1);
    uint64_t ok = after.data_received - before.data_received;
    uint64_t old = after.fail_too_old - before.fail_too_old;
    assert_int_equal(ok + old, 40);
    assert_true(ok >= 10);
    assert_int_equal(after.fail_bad_mac, before.fail_bad_mac);
    assert_int_equal(after.fail_replay, before.fail_replay);
    assert_talks(&net, 0, 1);
    net_free(&net);
}

/* A whole epoch lost: the receiver jumps two epochs at once; five is too far. Then the
 * time-based rekey. */
static void test_rekey_lost_epoch(void **state)
{
    (void)state;
    static struct net net;
    struct session_info info;
    size_t n;

    rekey_pair(&net);
    assert_int_equal(session_get(net.n[1].tab, net.name[1][0], &info), 0);
    uint8_t rx0 = info.rx_epoch;
    assert_int_equal(rx0, 0);
    for (int i = 0; i < 35; i++) {
        assert_int_equal(send_str(&net, 0, 1, "e"), 0);
    }
    collect(&net);
    n = net.qn;
    net.qn = 0;
    int delivered = 0;
    for (size_t i = 0; i < n; i++) {
        if (net.q[i].data[2] == (uint8_t)(rx0 + 2)) {
            assert_int_equal(deliver_pkt(&net, &net.q[i]), 0);
            delivered++;
        }
    }
    assert_int_equal(delivered, 10);
    assert_int_equal(session_get(net.n[1].tab, net.name[1][0], &info), 0);
    assert_int_equal(info.rx_epoch, (uint8_t)(rx0 + 2));
    /* Five epochs ahead is more than a receiver derives: rejected, no key change. */
    for (int i = 0; i < 60; i++) {
        assert_int_equal(send_str(&net, 0, 1, "f"), 0);
    }
    collect(&net);
    n = net.qn;
    net.qn = 0;
    struct session_stats before = stats_of(&net, 1), after;
    for (size_t i = 0; i < n; i++) {
        if (net.q[i].data[2] == (uint8_t)(rx0 + 7)) {
            assert_int_equal(deliver_pkt(&net, &net.q[i]), P4P_EBADSIG);
        }
    }
    after = stats_of(&net, 1);
    assert_int_equal(after.fail_too_old - before.fail_too_old, 10);
    assert_int_equal(after.data_received, before.data_received);
    assert_int_equal(session_get(net.n[1].tab, net.name[1][0], &info), 0);
    assert_int_equal(info.rx_epoch, (uint8_t)(rx0 + 2));
    flush(&net); /* B's recovery handshake gives fresh keys */
    assert_talks(&net, 0, 1);

    /* Time-based rekey. */
    uint8_t tx_before;
    assert_int_equal(session_get(net.n[0].tab, net.name[0][1], &info), 0);
    tx_before = info.tx_epoch;
    net.now += net.cfg.rekey_ns + 1;
    assert_talks(&net, 0, 1);
    assert_int_equal(session_get(net.n[0].tab, net.name[0][1], &info), 0);
    assert_int_equal(info.tx_epoch, (uint8_t)(tx_before + 1));
    net_free(&net);
}

/* ---- Timers -------------------------------------------------------------------------------- */

static void test_keepalive_and_idle(void **state)
{
    (void)state;
    static struct net net;
    net_init(&net, 2, NULL);
    establish(&net, 0, 1, true);
    p4p_time_ns t0 = net.now;
    assert_int_equal(session_deadline(net.n[0].tab), t0 + net.cfg.keepalive_ns);
    /* Five minutes of silence from the application: keepalives keep the session open. */
    run_until(&net, t0 + 300 * SEC, false);
    assert_true(has_keys(&net, 0, 1));
    struct session_stats a = stats_of(&net, 0), b = stats_of(&net, 1);
    assert_true(a.keepalives_sent >= 29 && a.keepalives_sent <= 31);
    assert_int_equal(b.keepalives_received, a.keepalives_sent);
    assert_int_equal(a.idle_closed + b.idle_closed, 0);
    assert_int_equal(a.rehandshakes + b.rehandshakes, 0);
    assert_talks(&net, 0, 1);
    /* Then the link goes silent: both sides close at the idle timeout. */
    p4p_time_ns t1 = net.now;
    run_until(&net, t1 + net.cfg.idle_timeout_ns + net.cfg.keepalive_ns, true);
    assert_int_equal(session_count(net.n[0].tab), 0);
    assert_int_equal(session_count(net.n[1].tab), 0);
    assert_int_equal(stats_of(&net, 0).idle_closed, 1);
    assert_int_equal(stats_of(&net, 1).idle_closed, 1);
    assert_int_equal(count_events(&net, 0, SESSION_EVENT_CLOSED, SESSION_CLOSE_IDLE), 1);
    assert_int_equal(count_events(&net, 1, SESSION_EVENT_CLOSED, SESSION_CLOSE_IDLE), 1);
    assert_int_equal(session_deadline(net.n[0].tab), P4P_TIME_NONE);
    net_free(&net);
}

/* ---- Lost state, resumption ---------------------------------------------------------------- */

static void restart_node(struct net *net, int i)
{
    session_table_destroy(net->n[i].tab);
    net->n[i].ev_n = 0;
    node_create(net, i);
}

static void test_lost_state_receiver_recovers(void **state)
{
    (void)state;
    static struct net net;
    net_init(&net, 2, NULL);
    establish(&net, 0, 1, false);
    restart_node(&net, 1); /* B forgets everything, keeps its identity */
    assert_int_equal(send_str(&net, 0, 1, "lost"), 0);
    flush(&net);
    /* B could not read it, started a handshake, A answered: new keys on both sides. */
    assert_int_equal(stats_of(&net, 1).fail_no_session, 1);
    assert_int_equal(stats_of(&net, 1).rehandshakes, 1);
    assert_int_equal(stats_of(&net, 0).hs_completed, 2);
    assert_int_equal(net.n[1].got_n, 0);
    assert_talks(&net, 0, 1);
    net_free(&net);
}

static void test_lost_state_sender_recovers(void **state)
{
    (void)state;
    static struct net net;
    struct session_config cfg;

    session_config_default(&cfg);
    cfg.rehandshake_on_unknown = false;
    net_init(&net, 2, &cfg);
    establish(&net, 0, 1, false);
    restart_node(&net, 1);
    assert_int_equal(send_str(&net, 0, 1, "lost"), 0);
    flush(&net);
    assert_int_equal(stats_of(&net, 1).rehandshakes, 0);
    /* A hears nothing back; after dead_ns it re-handshakes with IK (it knows B's key). */
    run_until(&net, net.now + cfg.dead_ns + 5 * SEC, false);
    assert_int_equal(stats_of(&net, 0).rehandshakes, 1);
    assert_true(has_keys(&net, 1, 0));
    assert_int_equal(net.n[1].ev[net.n[1].ev_n - 1].pattern, NOISE_PATTERN_IK);
    assert_talks(&net, 0, 1);
    net_free(&net);
}

static void test_resumption(void **state)
{
    (void)state;
    static struct net net;
    net_init(&net, 2, NULL);
    establish(&net, 0, 1, false);
    assert_talks(&net, 0, 1);
    struct session_stats a0 = stats_of(&net, 0), b0 = stats_of(&net, 1);

    /* The transport restarts on both sides: the old addresses are gone. */
    assert_int_equal(session_detach(net.n[0].tab, net.now, net.name[0][1]), 0);
    assert_int_equal(session_detach(net.n[1].tab, net.now, net.name[1][0]), 0);
    assert_int_equal(send_str(&net, 0, 1, "nowhere"), P4P_ENOTFOUND);
    net.name[0][1] = 501;
    net.name[1][0] = 502;
    net.now += 2 * SEC;
    assert_int_equal(session_resume(net.n[0].tab, net.now, net.name[0][1], net.n[1].pub), 0);
    flush(&net);
    assert_talks(&net, 0, 1);
    struct session_stats a1 = stats_of(&net, 0), b1 = stats_of(&net, 1);
    assert_int_equal(a1.resumptions, 1);
    assert_int_equal(b1.resumptions, 1);
    assert_int_equal(a1.hs_started, a0.hs_started); /* no handshake */
    assert_int_equal(a1.hs_completed + b1.hs_completed, a0.hs_completed + b0.hs_completed);
    assert_int_equal(count_events(&net, 0, SESSION_EVENT_RESUMED, 0), 1);
    assert_int_equal(count_events(&net, 1, SESSION_EVENT_RESUMED, 0), 1);
    struct session_info info;
    assert_int_equal(session_get(net.n[1].tab, 502, &info), 0);
    assert_true(info.has_keys);
    assert_false(info.resuming);
    assert_int_equal(session_get(net.n[1].tab, 101, &info), P4P_ENOTFOUND); /* old address */

    /* Resumption with a lost RESUME datagram: retransmitted with a fresh counter. */
    assert_int_equal(session_detach(net.n[0].tab, net.now, net.name[0][1]), 0);
    assert_int_equal(session_detach(net.n[1].tab, net.now, net.name[1][0]), 0);
    net.name[0][1] = 601;
    net.name[1][0] = 602;
    assert_int_equal(session_resume(net.n[0].tab, net.now, net.name[0][1], net.n[1].pub), 0);
    collect(&net);
    net.qn = 0;
    run_until(&net, net.now + 5 * SEC, false);
    assert_int_equal(stats_of(&net, 0).resumptions, 2);
    assert_talks(&net, 0, 1);

    /* The peer lost the keys: RESUME goes unanswered, an IK handshake takes over. */
    assert_int_equal(session_detach(net.n[0].tab, net.now, net.name[0][1]), 0);
    restart_node(&net, 1);
    assert_int_equal(session_resume(net.n[0].tab, net.now, net.name[0][1], net.n[1].pub), 0);
    run_until(&net, net.now + 60 * SEC, false);
    assert_true(has_keys(&net, 0, 1));
    assert_true(has_keys(&net, 1, 0));
    assert_int_equal(stats_of(&net, 0).resumptions, 2);
    assert_int_equal(stats_of(&net, 1).fail_no_session >= 1, 1);
    assert_talks(&net, 0, 1);
    uint8_t unknown[32] = {9};
    assert_int_equal(session_resume(net.n[0].tab, net.now, 777, unknown), P4P_ENOTFOUND);
    net_free(&net);
}

/* ---- Three tables, a full table ------------------------------------------------------------ */

static void test_three_tables(void **state)
{
    (void)state;
    static struct net net;
    net_init(&net, 3, NULL);
    establish(&net, 0, 1, false);
    establish(&net, 1, 2, true);
    establish(&net, 2, 0, false);
    assert_talks(&net, 0, 1);
    assert_talks(&net, 1, 2);
    assert_talks(&net, 2, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(session_count(net.n[i].tab), 2);
    }
    /* A datagram for B delivered to C (as if from A) is rejected by C's A-session. */
    assert_int_equal(send_str(&net, 0, 1, "for B"), 0);
    collect(&net);
    struct pkt p = net.q[0];
    net.qn = 0;
    p.to = 2;
    assert_true(deliver_pkt(&net, &p) < 0);
    p.to = 1;
    assert_int_equal(deliver_pkt(&net, &p), 0);
    assert_talks(&net, 2, 0);
    net_free(&net);
}

static void test_table_full(void **state)
{
    (void)state;
    static struct net net;
    struct session_config cfg;

    session_config_default(&cfg);
    cfg.session_max = 1;
    net_init(&net, 3, &cfg);
    establish(&net, 0, 1, false);
    assert_int_equal(session_connect(net.n[0].tab, net.now, net.name[0][2], NULL), P4P_EFULL);
    assert_int_equal(session_connect(net.n[2].tab, net.now, net.name[2][0], NULL), 0);
    flush(&net);
    assert_int_equal(stats_of(&net, 0).fail_table_full, 2);
    assert_talks(&net, 0, 1);
    assert_int_equal(session_close(net.n[0].tab, net.now, net.name[0][1]), 0);
    assert_int_equal(count_events(&net, 0, SESSION_EVENT_CLOSED, SESSION_CLOSE_BY_CALLER), 0);
    drain_events(&net);
    assert_int_equal(count_events(&net, 0, SESSION_EVENT_CLOSED, SESSION_CLOSE_BY_CALLER), 1);
    run_until(&net, net.now + 2 * SEC, false); /* C retransmits; now A has room */
    assert_true(has_keys(&net, 2, 0));
    assert_talks(&net, 2, 0);
    net_free(&net);
}

/* ---- Keys, configuration ------------------------------------------------------------------- */

static void test_ed25519_conversion(void **state)
{
    (void)state;
    uint8_t seed[32], ed_pk[32], ed_sk[64], x_priv[32], x_pub[32], x_pub2[32], derived[32];
    memset(seed, 0x42, sizeof(seed));
    crypto_sign_seed_keypair(ed_pk, ed_sk, seed);
    assert_int_equal(session_x25519_from_ed25519_sk(ed_sk, x_priv, x_pub), 0);
    assert_int_equal(session_x25519_from_ed25519_pk(ed_pk, x_pub2), 0);
    crypto_scalarmult_base(derived, x_priv);
    assert_memory_equal(x_pub, x_pub2, 32);
    assert_memory_equal(x_pub, derived, 32);
    uint8_t not_a_point[32];
    memset(not_a_point, 0xff, sizeof(not_a_point));
    assert_int_equal(session_x25519_from_ed25519_pk(not_a_point, x_pub2), P4P_EINVAL);

    struct session_config cfg;
    struct session_env env = {.random = splitmix};
    session_table *t = NULL;
    session_config_default(&cfg);
    cfg.mtu = 64;
    assert_int_equal(session_table_create(&cfg, &env, x_priv, &t), P4P_EINVAL);
    session_config_default(&cfg);
    cfg.keepalive_ns = 0;
    assert_int_equal(session_table_create(&cfg, &env, x_priv, &t), P4P_EINVAL);
    session_config_default(&cfg);
    cfg.session_max = 0;
    assert_int_equal(session_table_create(&cfg, &env, x_priv, &t), P4P_EINVAL);
    session_config_default(&cfg);
    env.random = NULL;
    assert_int_equal(session_table_create(&cfg, &env, x_priv, &t), P4P_EINVAL);
    assert_null(t);
    env.random = splitmix;
    assert_int_equal(session_table_create(&cfg, &env, x_priv, &t), 0);
    uint8_t pub[32];
    session_local_static(t, pub);
    assert_memory_equal(pub, derived, 32);
    assert_int_equal(session_send(t, 0, 5, (const uint8_t *)"x", 1), P4P_ENOTFOUND);
    session_table_destroy(t);
}

/* ---- Malformed input, fuzzing -------------------------------------------------------------- */

static void test_malformed_every_length(void **state)
{
    (void)state;
    static struct net net;
    uint8_t buf[300], out[PKT_MAX];
    size_t olen;
    uint64_t rng = 3;

    net_init(&net, 2, NULL);
    establish(&net, 0, 1, false);
    session_table *b = net.n[1].tab;
    for (unsigned type = 0; type < 256; type++) {
        for (size_t len = 0; len <= 200; len++) {
            splitmix(&rng, buf, len);
            if (len > 0) {
                buf[0] = (uint8_t)type;
            }
            if (len > 1 && type % 3 == 0) {
                buf[1] = 0x13; /* a valid suite byte (XX, BLAKE2b) */
            }
            /* From the peer's address and from a stranger's. */
            int rc = session_recv(b, net.now, net.name[1][0], buf, len, out, sizeof(out), &olen);
            assert_true(rc < 0);
            assert_int_equal(olen, 0);
            rc = session_recv(b, net.now, 900, buf, len, out, sizeof(out), &olen);
            assert_true(rc <= 0);
        }
    }
    /* Oversized, and NULL. */
    static uint8_t big[2000];
    assert_int_equal(session_recv(b, net.now, 900, big, sizeof(big), out, sizeof(out), &olen),
                     P4P_EMALFORMED);
    assert_int_equal(session_recv(b, net.now, 900, NULL, 0, out, sizeof(out), &olen),
                     P4P_EMALFORMED);
    /* Strangers' HS1s may have opened half sessions (and recovery handshakes); let them all
     * run out and check the real session still works. */
    collect(&net);
    net.qn = 0;
    flush(&net);
    run_until(&net, net.now + 30 * SEC, false);
    assert_talks(&net, 0, 1);
    net_free(&net);
}

/* Mutations of real datagrams of every type, delivered in random order with random time
 * steps; afterwards a clean exchange must still work. */
static void test_fuzz(void **state)
{
    (void)state;
    static struct net net;
    static struct pkt corpus[64];
    size_t corpus_n = 0;
    uint64_t rng = 2024;

    net_init(&net, 2, NULL);
    /* Gather a corpus: a whole XX and IK handshake, data, keepalives, a RESUME. */
    assert_int_equal(session_connect(net.n[0].tab, net.now, net.name[0][1], NULL), 0);
    for (int round = 0; round < 6; round++) {
        collect(&net);
        for (size_t i = 0; i < net.qn && corpus_n < 64; i++) {
            corpus[corpus_n++] = net.q[i];
        }
        for (size_t i = 0; i < net.qn; i++) {
            deliver_pkt(&net, &net.q[i]);
        }
        net.qn = 0;
        if (round == 2) {
            send_str(&net, 0, 1, "data one");
            send_str(&net, 1, 0, "data two");
        }
        if (round == 3) {
            session_detach(net.n[0].tab, net.now, net.name[0][1]);
            session_resume(net.n[0].tab, net.now, net.name[0][1], net.n[1].pub);
        }
    }
    assert_true(corpus_n >= 8);
    for (int iter = 0; iter < 20000; iter++) {
        struct pkt p = corpus[rnd64(&rng) % corpus_n];
        int mut = (int)(rnd64(&rng) % 4);
        if (mut == 0) {
            p.data[rnd64(&rng) % p.len] ^= (uint8_t)(1 + rnd64(&rng) % 255);
        } else if (mut == 1) {
            p.len = rnd64(&rng) % (p.len + 1);
        } else if (mut == 2) {
            size_t pos = rnd64(&rng) % p.len;
            p.data[pos] = (uint8_t)rnd64(&rng);
            p.data[rnd64(&rng) % p.len] = (uint8_t)rnd64(&rng);
        }
        p.to = (int)(rnd64(&rng) % 2);
        p.from = 1 - p.to;
        deliver_pkt(&net, &p);
        if (iter % 50 == 0) {
            net.now += rnd64(&rng) % (2 * SEC);
            for (int i = 0; i < 2; i++) {
                session_timeout(net.n[i].tab, net.now);
            }
        }
        collect(&net);
        if (rnd64(&rng) % 2 == 0) {
            for (size_t i = 0; i < net.qn; i++) {
                deliver_pkt(&net, &net.q[i]);
            }
        }
        net.qn = 0;
        net.n[0].ev_n = net.n[1].ev_n = 0;
        net.n[0].got_n = net.n[1].got_n = 0;
    }
    /* Settle, then the pair must be able to (re)connect and talk. */
    run_until(&net, net.now + 120 * SEC, false);
    if (!has_keys(&net, 0, 1) || !has_keys(&net, 1, 0)) {
        session_close(net.n[0].tab, net.now, net.name[0][1]);
        session_close(net.n[1].tab, net.now, net.name[1][0]);
        establish(&net, 0, 1, false);
    }
    net.n[0].got_n = net.n[1].got_n = 0;
    assert_talks(&net, 0, 1);
    net_free(&net);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xx_handshake),
        cmocka_unit_test(test_ik_handshake),
        cmocka_unit_test(test_ik_wrong_key),
        cmocka_unit_test(test_refused_key),
        cmocka_unit_test(test_wire_format),
        cmocka_unit_test(test_handshake_loss),
        cmocka_unit_test(test_ik_responder_waits),
        cmocka_unit_test(test_crossing_handshakes),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_reorder_window),
        cmocka_unit_test(test_rekey_with_reordering),
        cmocka_unit_test(test_rekey_lost_epoch),
        cmocka_unit_test(test_keepalive_and_idle),
        cmocka_unit_test(test_lost_state_receiver_recovers),
        cmocka_unit_test(test_lost_state_sender_recovers),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_three_tables),
        cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_ed25519_conversion),
        cmocka_unit_test(test_malformed_every_length),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
