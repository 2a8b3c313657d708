/*
 * test_persist.c — the engine on a store (the memory backend; the SQLite one behaves the
 * same, see test_kill.c and test_crash.c): a restarted node keeps its identity, its updates
 * and its sequence numbers; a write that fails withdraws everything the input produced and
 * kills the node; a stale node is fenced off by its successor; a corrupt log is refused, or
 * with storage_repair cut at the damage and filled again from a peer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "p4p/p4p.h"
#include "rng.h"
#include "storage_mem.h"

static void rnd(void *ctx, uint8_t *out, size_t len)
{
    sim_rng_bytes(ctx, out, len);
}

struct box {
    struct storage_mem *disk;
    struct p4p_storage st;
    struct sim_rng rng;
    p4p_node *node;
};

static int boot(struct box *b, uint64_t stream, int repair)
{
    struct p4p_config c;
    p4p_config_default(&c);
    c.storage_repair = repair;
    if (b->disk == NULL) {
        assert_int_equal(storage_mem_create(&b->disk), 0);
    }
    assert_int_equal(storage_mem_open(b->disk, &b->st), 0);
    sim_rng_derive(&b->rng, 5, "persist", stream);
    struct p4p_env env = {.ctx = &b->rng, .random = rnd, .storage = b->st};
    int rc = p4p_node_create(&c, &env, &b->node);
    if (rc != 0) {
        b->node = NULL;
        storage_mem_close(&b->st);
    }
    return rc;
}

/* The node dies: its handle goes with it. */
static void down(struct box *b)
{
    p4p_node_destroy(b->node);
    b->node = NULL;
    storage_mem_close(&b->st);
}

static void publish_n(p4p_node *n, int count, uint64_t now)
{
    for (int k = 0; k < count; k++) {
        uint8_t payload[40];
        memset(payload, k, sizeof(payload));
        assert_int_equal(p4p_node_publish(n, now + (uint64_t)k, payload, sizeof(payload), NULL), 0);
        struct p4p_event ev;
        while (p4p_node_poll_event(n, &ev) == 0) {
        }
    }
}

static void test_restart_keeps_everything(void **state)
{
    (void)state;
    struct box b = {0};
    assert_int_equal(boot(&b, 1, 0), 0);
    uint8_t pk1[32], pk2[32];
    p4p_node_public_key(b.node, pk1);
    publish_n(b.node, 5, 1000);
    struct p4p_held h1, h2;
    p4p_node_held(b.node, &h1);
    assert_int_equal(h1.count, 5);
    down(&b);
    assert_int_equal(boot(&b, 2, 0), 0); /* another random stream: the seed is stored */
    p4p_node_public_key(b.node, pk2);
    assert_memory_equal(pk1, pk2, 32);
    p4p_node_held(b.node, &h2);
    assert_memory_equal(&h1, &h2, sizeof(h1));
    struct p4p_stats s;
    p4p_node_stats(b.node, &s);
    assert_int_equal(s.replayed, 5);
    uint8_t x = 1;
    assert_int_equal(p4p_node_publish(b.node, 9999, &x, 1, NULL), 0);
    struct p4p_event ev;
    assert_int_equal(p4p_node_poll_event(b.node, &ev), 0);
    assert_int_equal(ev.seq, 6);
    down(&b);
    storage_mem_destroy(b.disk);
}

static void test_failed_write_withdraws(void **state)
{
    (void)state;
    struct box b = {0};
    assert_int_equal(boot(&b, 1, 0), 0);
    struct p4p_link_event up = {P4P_LINK_UP, 0, 7};
    assert_int_equal(p4p_node_link(b.node, 0, &up), 0);
    publish_n(b.node, 2, 10);
    struct p4p_frame f;
    while (p4p_node_poll_frame(b.node, &f) == 0) {
    }
    storage_mem_fail_after(&b.st, 1); /* the next write fails: the log append of publish 3 */
    uint8_t x = 3;
    int rc = p4p_node_publish(b.node, 100, &x, 1, NULL);
    assert_int_equal(rc, P4P_EIO);
    assert_int_equal(p4p_node_failed(b.node), P4P_EIO);
    struct p4p_event ev;
    assert_int_equal(p4p_node_poll_event(b.node, &ev), P4P_EAGAIN); /* no acknowledgement */
    assert_int_equal(p4p_node_poll_frame(b.node, &f), P4P_EAGAIN);  /* nothing sent */
    assert_int_equal(p4p_node_timeout(b.node, 200), P4P_EIO);       /* dead */
    down(&b);
    assert_int_equal(boot(&b, 1, 0), 0);
    struct p4p_held h;
    p4p_node_held(b.node, &h);
    assert_int_equal(h.count, 2);
    /* Sequence 3 was never acknowledged, so it may be used now; it is not used twice. */
    assert_int_equal(p4p_node_publish(b.node, 300, &x, 1, NULL), 0);
    assert_int_equal(p4p_node_poll_event(b.node, &ev), 0);
    assert_int_equal(ev.seq, 3);
    down(&b);
    storage_mem_destroy(b.disk);
}

static void test_fenced(void **state)
{
    (void)state;
    struct box a = {0};
    assert_int_equal(boot(&a, 1, 0), 0);
    publish_n(a.node, 1, 0);
    /* A second incarnation on the same disk while the first still runs. */
    struct box b = {.disk = a.disk};
    assert_int_equal(boot(&b, 2, 0), 0);
    uint8_t x = 1;
    assert_int_equal(p4p_node_publish(a.node, 10, &x, 1, NULL), P4P_EFENCED);
    assert_int_equal(p4p_node_publish(b.node, 10, &x, 1, NULL), 0);
    down(&a);
    down(&b);
    struct box c = {.disk = a.disk};
    assert_int_equal(boot(&c, 3, 0), 0);
    struct p4p_held h;
    p4p_node_held(c.node, &h);
    assert_int_equal(h.count, 2); /* the first and b's; the fenced one never happened */
    down(&c);
    storage_mem_destroy(a.disk);
}

/* Carries frames between two nodes (peer addresses 0 and 1) until none are left. */
static void shuttle(p4p_node *n[2], uint64_t now)
{
    for (int moved = 1; moved;) {
        moved = 0;
        for (int i = 0; i < 2; i++) {
            struct p4p_frame f;
            uint8_t buf[4][1500];
            size_t len[4];
            int k = 0;
            while (k < 4 && p4p_node_poll_frame(n[i], &f) == 0) {
                memcpy(buf[k], f.data, f.len);
                len[k++] = f.len;
            }
            struct p4p_event ev;
            while (p4p_node_poll_event(n[i], &ev) == 0) {
            }
            for (int j = 0; j < k; j++) {
                struct p4p_frame in = {0, (p4p_addr)i, buf[j], len[j]};
                p4p_node_recv(n[1 - i], now, &in);
                moved = 1;
            }
        }
    }
}

static void test_corrupt_refused_or_repaired(void **state)
{
    (void)state;
    struct box a = {0}, b = {0};
    assert_int_equal(boot(&a, 1, 0), 0);
    assert_int_equal(boot(&b, 2, 0), 0);
    p4p_node *n[2] = {a.node, b.node};
    struct p4p_link_event up0 = {P4P_LINK_UP, 0, 1}, up1 = {P4P_LINK_UP, 0, 0};
    assert_int_equal(p4p_node_link(a.node, 0, &up0), 0);
    assert_int_equal(p4p_node_link(b.node, 0, &up1), 0);
    publish_n(a.node, 20, 1000);
    uint64_t now = 2000;
    for (int r = 0; r < 40; r++, now += 1000000000ull) { /* gossip rounds */
        p4p_node_timeout(a.node, now);
        p4p_node_timeout(b.node, now);
        shuttle(n, now);
    }
    struct p4p_held ha, hb;
    p4p_node_held(a.node, &ha);
    p4p_node_held(b.node, &hb);
    assert_int_equal(hb.count, 20);
    assert_memory_equal(&ha, &hb, sizeof(ha));
    down(&b);
    assert_int_equal(storage_mem_corrupt(b.disk, 17, 8), 0); /* a bit in record 8 */
    assert_int_equal(boot(&b, 2, 0), P4P_ECORRUPT);          /* refused */
    assert_int_equal(boot(&b, 2, 1), 0);                     /* repaired: records 1..7 */
    struct p4p_stats s;
    p4p_node_stats(b.node, &s);
    assert_int_equal(s.replayed, 7);
    assert_int_equal(s.storage_dropped, 13);
    p4p_node_held(b.node, &hb);
    assert_int_equal(hb.count, 7);
    n[1] = b.node;
    assert_int_equal(p4p_node_link(b.node, now, &up1), 0);
    for (int r = 0; r < 60; r++, now += 1000000000ull) {
        p4p_node_timeout(a.node, now);
        p4p_node_timeout(b.node, now);
        shuttle(n, now);
    }
    p4p_node_held(b.node, &hb);
    assert_memory_equal(&ha, &hb, sizeof(ha)); /* caught up from its peer */
    down(&a);
    down(&b);
    storage_mem_destroy(a.disk);
    storage_mem_destroy(b.disk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_keeps_everything),
        cmocka_unit_test(test_failed_write_withdraws),
        cmocka_unit_test(test_fenced),
        cmocka_unit_test(test_corrupt_refused_or_repaired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
