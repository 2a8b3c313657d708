/*
 * test_blob.c — unit tests for engine/blob.{h,c}, blob sync between peers.
 *
 * A small harness carries messages between 2-4 blob tables, each with its own in-memory store
 * (storage/storage_mem.h), on a fake clock: every message takes a fixed latency plus an
 * optional random jitter (reordering), and may be lost, duplicated, rewritten by a per-node
 * "tamper" hook (corruption, forgery), or vanish because its sender or receiver is cut off.
 * Time jumps to the next delivery or the next blob_deadline(). All randomness (blob contents,
 * losses, the tables' random callbacks) comes from fixed seeds: ChaCha20 key streams and a
 * xorshift generator, never the OS, so every run is the same.
 *
 * Covered: the header and id (an exact encoding, an id recomputed from an independent FastCDC +
 * Merkle pass, streaming = one-shot), reads at any offset; 1 MiB synced exactly at mtu 1200, 200
 * and 128 with loss (and duplication and reordering); two and three peers, one vanishing or
 * removed; two fetches at once sharing a table; a peer corrupting pieces; forged leaf lists,
 * proofs, misplaced segments and headers; NOT_FOUND and silent peers; deduplication against an
 * earlier version; resumption after a restart (and after a storage failure); partial reads;
 * malformed input of every short length and random fuzz.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "blob.h"
#include "cbor.h"
#include "fastcdc.h"
#include "merkle.h"
#include "storage_mem.h"

#define NODES_MAX 4
#define MSG_CAP   2048
#define MIB       (1024 * 1024)
#define MS        1000000ull

/* ---- Deterministic data -------------------------------------------------------------------- */

static void stream(uint8_t *out, size_t len, uint8_t seed)
{
    uint8_t key[crypto_stream_chacha20_KEYBYTES];
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    memset(key, seed, sizeof(key));
    crypto_stream_chacha20(out, len, nonce, key);
}

static uint8_t *make_data(size_t len, uint8_t seed)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    stream(p, len, seed);
    return p;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* ---- Harness ------------------------------------------------------------------------------- */

struct net;
/* Sees every message a node sends (from, to); may rewrite it (len up to MSG_CAP) or return
 * false to drop it. */
typedef bool (*tamper_fn)(struct net *net, int from, int to, uint8_t *data, size_t *len);

struct node {
    struct storage_mem *disk;
    struct p4p_storage st;
    blob *b;
    uint64_t rnd_counter;
    uint8_t seed;
    bool cut; /* messages to and from it vanish */
    tamper_fn tamper;
    int done, failed;
    struct blob_event last;
    int last_rc; /* the last error blob_recv/blob_timeout returned (0 if none) */
};

struct qmsg {
    uint64_t time, seq;
    int from, to;
    size_t len;
    uint8_t data[MSG_CAP];
};

struct net {
    struct node n[NODES_MAX];
    int count;
    struct blob_config cfg;
    uint64_t now, seq, rng;
    unsigned loss_pct, dup_pct;
    uint64_t latency_ns, jitter_ns;
    struct qmsg **q;
    size_t qn, qcap;
    uint64_t wire_bytes, wire_msgs, max_len;
    int tamper_state; /* for the tamper hooks */
};

static void node_random(void *ctx, uint8_t *out, size_t len)
{
    struct node *nd = ctx;
    uint8_t key[crypto_stream_chacha20_KEYBYTES];
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    memset(key, nd->seed, sizeof(key));
    key[0] ^= 0x5a;
    for (size_t i = 0; i < sizeof(nonce) && i < 8; i++) {
        nonce[i] = (uint8_t)(nd->rnd_counter >> (8 * i));
    }
    nd->rnd_counter++;
    crypto_stream_chacha20(out, len, nonce, key);
}

static void node_create(struct net *net, int i)
{
    struct node *nd = &net->n[i];
    struct blob_env env = {.ctx = nd, .random = node_random, .storage = nd->st};
    assert_int_equal(blob_create(&net->cfg, &env, &nd->b), 0);
}

static void net_init(struct net *net, int count, const struct blob_config *cfg)
{
    memset(net, 0, sizeof(*net));
    net->count = count;
    net->cfg = *cfg;
    net->rng = 0x9e3779b97f4a7c15ull;
    net->latency_ns = 10 * MS;
    for (int i = 0; i < count; i++) {
        struct node *nd = &net->n[i];
        nd->seed = (uint8_t)(100 + i);
        assert_int_equal(storage_mem_create(&nd->disk), 0);
        assert_int_equal(storage_mem_open(nd->disk, &nd->st), 0);
        node_create(net, i);
    }
}

/* A restart: the table and the store handle go away (an open transaction is lost), the disk
 * stays; a new handle and table start from what was committed. */
static void net_restart(struct net *net, int i)
{
    struct node *nd = &net->n[i];
    blob_destroy(nd->b);
    storage_mem_close(&nd->st);
    assert_int_equal(storage_mem_open(nd->disk, &nd->st), 0);
    node_create(net, i);
    nd->last_rc = 0;
}

static void net_free(struct net *net)
{
    for (int i = 0; i < net->count; i++) {
        blob_destroy(net->n[i].b);
        storage_mem_close(&net->n[i].st);
        storage_mem_destroy(net->n[i].disk);
    }
    for (size_t k = 0; k < net->qn; k++) {
        free(net->q[k]);
    }
    free(net->q);
}

static bool q_less(const struct qmsg *a, const struct qmsg *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void q_push(struct net *net, struct qmsg *m)
{
    if (net->qn == net->qcap) {
        net->qcap = net->qcap ? 2 * net->qcap : 256;
        net->q = realloc(net->q, net->qcap * sizeof(*net->q));
        assert_non_null(net->q);
    }
    size_t i = net->qn++;
    while (i > 0 && q_less(m, net->q[(i - 1) / 2])) {
        net->q[i] = net->q[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    net->q[i] = m;
}

static struct qmsg *q_pop(struct net *net)
{
    struct qmsg *top = net->q[0], *last = net->q[--net->qn];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= net->qn) {
            break;
        }
        if (c + 1 < net->qn && q_less(net->q[c + 1], net->q[c])) {
            c++;
        }
        if (!q_less(net->q[c], last)) {
            break;
        }
        net->q[i] = net->q[c];
        i = c;
    }
    if (net->qn) {
        net->q[i] = last;
    }
    return top;
}

static void enqueue(struct net *net, int from, int to, const uint8_t *data, size_t len)
{
    struct qmsg *m = malloc(sizeof(*m));
    assert_non_null(m);
    m->from = from;
    m->to = to;
    m->len = len;
    memcpy(m->data, data, len);
    m->time = net->now + net->latency_ns;
    if (net->jitter_ns) {
        m->time += xorshift(&net->rng) % net->jitter_ns;
    }
    m->seq = net->seq++;
    q_push(net, m);
}

/* Takes every message the nodes have queued and puts it on the "air". */
static void net_drain(struct net *net)
{
    for (int i = 0; i < net->count; i++) {
        struct node *nd = &net->n[i];
        struct blob_msg msg;
        while (blob_poll(nd->b, &msg) == 0) {
            assert_true(msg.len <= net->cfg.mtu);
            assert_true(msg.len <= MSG_CAP);
            assert_true(msg.peer < (p4p_addr)net->count);
            net->wire_bytes += msg.len;
            net->wire_msgs++;
            if (msg.len > net->max_len) {
                net->max_len = msg.len;
            }
            uint8_t buf[MSG_CAP];
            size_t len = msg.len;
            memcpy(buf, msg.data, len);
            if (nd->cut || net->n[msg.peer].cut) {
                continue;
            }
            if (nd->tamper && !nd->tamper(net, i, (int)msg.peer, buf, &len)) {
                continue;
            }
            if (net->loss_pct && xorshift(&net->rng) % 100 < net->loss_pct) {
                continue;
            }
            enqueue(net, i, (int)msg.peer, buf, len);
            if (net->dup_pct && xorshift(&net->rng) % 100 < net->dup_pct) {
                enqueue(net, i, (int)msg.peer, buf, len);
            }
        }
    }
}

static void net_events(struct net *net)
{
    for (int i = 0; i < net->count; i++) {
        struct blob_event ev;
        while (blob_poll_event(net->n[i].b, &ev) == 0) {
            net->n[i].last = ev;
            if (ev.kind == BLOB_EVENT_DONE) {
                net->n[i].done++;
            } else {
                net->n[i].failed++;
            }
        }
    }
}

/* One delivery or one timer. false when nothing is left to do. */
static bool net_step(struct net *net)
{
    net_drain(net);
    net_events(net);
    uint64_t t = UINT64_MAX;
    int who = -1;
    if (net->qn) {
        t = net->q[0]->time;
    }
    for (int i = 0; i < net->count; i++) {
        p4p_time_ns d = blob_deadline(net->n[i].b);
        if (d < t) {
            t = d;
            who = i;
        }
    }
    if (t == UINT64_MAX) {
        return false;
    }
    if (t > net->now) {
        net->now = t;
    }
    int rc;
    struct node *nd;
    if (who < 0) {
        struct qmsg *m = q_pop(net);
        nd = &net->n[m->to];
        rc = 0;
        if (!nd->cut) {
            rc = blob_recv(nd->b, net->now, (p4p_addr)m->from, m->data, m->len);
            if (rc == P4P_EMALFORMED) {
                rc = 0;
            }
        }
        free(m);
    } else {
        nd = &net->n[who];
        rc = blob_timeout(nd->b, net->now);
    }
    if (rc) {
        nd->last_rc = rc;
    }
    net_drain(net);
    net_events(net);
    return true;
}

typedef bool (*pred_fn)(struct net *net, void *arg);

struct finish_arg {
    int node, events; /* events the node had when the wait began */
};

static bool node_finished(struct net *net, void *arg)
{
    struct finish_arg *f = arg;
    return net->n[f->node].done + net->n[f->node].failed > f->events;
}

/* Steps until pred holds (true) or nothing is left to do (pred's value then). */
static bool net_run(struct net *net, pred_fn pred, void *arg)
{
    for (uint64_t steps = 0; steps < 20000000; steps++) {
        if (pred(net, arg)) {
            return true;
        }
        if (!net_step(net)) {
            return pred(net, arg);
        }
    }
    fail_msg("the harness did not settle");
    return false;
}

/* Runs until the node reports one more DONE or FAILED. */
static bool run_until_finished(struct net *net, int node)
{
    struct finish_arg f = {node, net->n[node].done + net->n[node].failed};
    return net_run(net, node_finished, &f);
}

static struct blob_stats stats_of(struct net *net, int i)
{
    struct blob_stats s;
    blob_stats(net->n[i].b, &s);
    return s;
}

static void assert_blob_equals(blob *b, const struct cid *id, const uint8_t *data, size_t len)
{
    uint8_t *buf = malloc(len + 16);
    assert_non_null(buf);
    size_t got = 0;
    assert_int_equal(blob_read(b, id, 0, buf, len + 16, &got), 0);
    assert_int_equal(got, len);
    assert_memory_equal(buf, data, len);
    free(buf);
}

/* The chunk count FastCDC gives for data with the table's parameters. */
static uint64_t chunk_count(const struct blob_config *cfg, const uint8_t *data, size_t len)
{
    struct fastcdc c;
    assert_int_equal(fastcdc_init(&c, &cfg->chunking), 0);
    uint64_t n = 0;
    size_t off = 0;
    while (off < len) {
        off += fastcdc_chunk_len(&c, data + off, len - off);
        n++;
    }
    return n;
}

/* Small chunks: many segments out of little data. */
static void small_chunks(struct blob_config *cfg)
{
    cfg->chunking.min_len = 256;
    cfg->chunking.avg_len = 1024;
    cfg->chunking.max_len = 8192;
}

/* ---- Header, id, add, read ----------------------------------------------------------------- */

static void test_header_and_id(void **state)
{
    (void)state;
    uint8_t empty_root[32];
    crypto_generichash(empty_root, 32, NULL, 0, NULL, 0);
    uint8_t hdr[BLOB_HEADER_MAX];
    size_t hlen = 0;
    assert_int_equal(blob_header_encode(0, 0, empty_root, hdr, sizeof(hdr), &hlen), 0);
    uint8_t expect[38] = {0x84, 0x01, 0x00, 0x00, 0x58, 0x20};
    memcpy(expect + 6, empty_root, 32);
    assert_int_equal(hlen, 38);
    assert_memory_equal(hdr, expect, 38);
    assert_int_equal(blob_header_encode(0, 0, empty_root, hdr, 37, &hlen), P4P_ETOOBIG);
    /* Largest values still fit BLOB_HEADER_MAX. */
    assert_int_equal(
        blob_header_encode(UINT64_MAX, UINT64_MAX, empty_root, hdr, BLOB_HEADER_MAX, &hlen), 0);
    assert_int_equal(hlen, 1 + 1 + 9 + 9 + 2 + 32);

    struct cid id, id2;
    blob_make_id(0, 0, empty_root, &id);
    assert_int_equal(id.codec, CID_CODEC_DAG_CBOR);
    assert_int_equal(cid_verify(&id, expect, 38), 0);
    char text[CID_TEXT_MAX + 1];
    assert_int_equal(cid_to_text(&id, text, sizeof(text)), 0);
    assert_memory_equal(text, "bafy2bza", 8);

    /* The id commits to the count: same root and size, another count, another id. */
    blob_make_id(0, 1, empty_root, &id2);
    assert_int_not_equal(cid_compare(&id, &id2), 0);

    struct blob_config cfg;
    blob_config_default(&cfg);
    struct net net;
    net_init(&net, 1, &cfg);
    blob *b = net.n[0].b;
    struct cid got;
    assert_int_equal(blob_add(b, 0, NULL, 0, &got), 0);
    assert_int_equal(cid_compare(&got, &id), 0);
    size_t n = 99;
    uint8_t byte;
    assert_int_equal(blob_read(b, &got, 0, &byte, 1, &n), 0);
    assert_int_equal(n, 0);
    struct blob_info info;
    assert_int_equal(blob_info(b, &got, &info), 0);
    assert_true(info.is_complete);
    assert_int_equal(info.size, 0);
    /* A complete blob: fetching it is DONE at once. */
    assert_int_equal(blob_fetch(b, 0, &got, NULL, 0), 0);
    net_events(&net);
    assert_int_equal(net.n[0].done, 1);
    /* Not a blob id. */
    struct cid raw;
    cid_compute(&raw, CID_CODEC_RAW, expect, 38);
    assert_int_equal(blob_fetch(b, 0, &raw, NULL, 0), P4P_EINVAL);
    assert_int_equal(blob_read(b, &id2, 0, &byte, 1, &n), P4P_ENOTFOUND);
    net_free(&net);
}

static void test_add_read(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    struct net net;
    net_init(&net, 1, &cfg);
    blob *b = net.n[0].b;
    size_t len = 3 * MIB + 12345;
    uint8_t *data = make_data(len, 1);

    /* The id, recomputed independently: FastCDC chunks, Merkle root, header CID. */
    struct fastcdc c;
    assert_int_equal(fastcdc_init(&c, &cfg.chunking), 0);
    uint64_t n = chunk_count(&cfg, data, len);
    uint8_t *leaves = malloc(n * 32);
    assert_non_null(leaves);
    size_t off = 0;
    for (uint64_t k = 0; k < n; k++) {
        uint32_t cl = fastcdc_chunk_len(&c, data + off, len - off);
        merkle_leaf_hash(data + off, cl, leaves + k * 32);
        off += cl;
    }
    uint8_t root[32];
    assert_int_equal(merkle_root(leaves, n, root), 0);
    struct cid expect, id;
    blob_make_id(len, n, root, &expect);
    assert_int_equal(blob_add(b, 0, data, len, &id), 0);
    assert_int_equal(cid_compare(&id, &expect), 0);
    struct blob_stats s = stats_of(&net, 0);
    assert_int_equal(s.chunks_dedup, 0);

    struct blob_info info;
    assert_int_equal(blob_info(b, &id, &info), 0);
    assert_int_equal(info.size, len);
    assert_int_equal(info.chunk_count, n);
    assert_int_equal(info.segments, (n + 255) / 256);
    assert_int_equal(info.segments_complete, info.segments);
    assert_true(info.is_complete);
    assert_false(info.is_fetching);
    assert_memory_equal(info.root, root, 32);

    /* Streaming in odd pieces gives the same id, and every chunk is already there. */
    assert_int_equal(blob_add_begin(b), 0);
    assert_int_equal(blob_add_begin(b), P4P_EFULL);
    static const size_t steps[] = {1, 7, 1000, 65537, 3, 200000, 4096};
    off = 0;
    for (int k = 0; off < len; k = (k + 1) % 7) {
        size_t take = steps[k] < len - off ? steps[k] : len - off;
        assert_int_equal(blob_add_update(b, data + off, take), 0);
        off += take;
    }
    struct cid id2;
    assert_int_equal(blob_add_finish(b, 0, &id2), 0);
    assert_int_equal(cid_compare(&id, &id2), 0);
    s = stats_of(&net, 0);
    assert_int_equal(s.chunks_dedup, n);
    assert_int_equal(s.bytes_dedup_saved, len);

    /* Reads at chunk and segment boundaries and everywhere else. */
    assert_blob_equals(b, &id, data, len);
    uint8_t *buf = malloc(200000);
    assert_non_null(buf);
    uint64_t rng = 7;
    for (int k = 0; k < 200; k++) {
        uint64_t at = xorshift(&rng) % (len + 1);
        size_t want = xorshift(&rng) % 200000, got = 0;
        assert_int_equal(blob_read(b, &id, at, buf, want, &got), 0);
        size_t expect_len = want < len - at ? want : len - at;
        assert_int_equal(got, expect_len);
        assert_memory_equal(buf, data + at, got);
    }
    size_t got = 0;
    assert_int_equal(blob_read(b, &id, len + 1, buf, 1, &got), P4P_EINVAL);
    free(buf);
    free(leaves);
    free(data);
    net_free(&net);
}

/* ---- Sync ---------------------------------------------------------------------------------- */

/* Node 0 adds data; node `to` fetches it from peers[]; returns the id. */
static struct cid seed_blob(struct net *net, const int *holders, int nholders, const uint8_t *data,
                            size_t len)
{
    struct cid id;
    memset(&id, 0, sizeof(id));
    for (int i = 0; i < nholders; i++) {
        assert_int_equal(blob_add(net->n[holders[i]].b, 0, data, len, &id), 0);
    }
    return id;
}

static void sync_1mib(uint32_t mtu, unsigned loss, unsigned dup, uint64_t jitter, size_t len)
{
    struct blob_config cfg;
    blob_config_default(&cfg);
    cfg.mtu = mtu;
    struct net net;
    net_init(&net, 2, &cfg);
    net.loss_pct = loss;
    net.dup_pct = dup;
    net.jitter_ns = jitter;
    uint8_t *data = make_data(len, 2);
    int holders[] = {0};
    struct cid id = seed_blob(&net, holders, 1, data, len);
    p4p_addr peers[] = {0};
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, peers, 1), 0);
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 1);
    assert_int_equal(net.n[1].failed, 0);
    assert_int_equal(cid_compare(&net.n[1].last.id, &id), 0);
    assert_int_equal(net.n[1].last_rc, 0);
    assert_blob_equals(net.n[1].b, &id, data, len);
    assert_true(net.max_len <= mtu);

    struct blob_stats s = stats_of(&net, 1), a = stats_of(&net, 0);
    uint64_t n = chunk_count(&cfg, data, len);
    assert_int_equal(s.chunks_fetched, n);
    assert_int_equal(s.bytes_fetched, len);
    assert_int_equal(s.chunks_corrupt, 0);
    assert_int_equal(s.chunks_dedup, 0);
    assert_int_equal(s.segments_fetched, (n + 255) / 256);
    assert_int_equal(s.segments_rejected, 0);
    assert_int_equal(s.peers_dropped, 0);
    assert_true(s.payload_bytes_in >= len);
    assert_true(a.requests_received > 0);
    if (loss) {
        assert_true(s.timeouts > 0);
    } else {
        assert_int_equal(s.timeouts, 0);
        assert_int_equal(s.payload_bytes_in, len);
    }
    struct blob_info info;
    assert_int_equal(blob_info(net.n[1].b, &id, &info), 0);
    assert_true(info.is_complete);
    assert_false(info.is_fetching);
    print_message("      mtu %u loss %u%%: %llu msgs, wire/payload %.3f, %llu timeouts\n", mtu,
                  loss, (unsigned long long)net.wire_msgs, (double)net.wire_bytes / (double)len,
                  (unsigned long long)s.timeouts);
    free(data);
    net_free(&net);
}

static void test_sync_mtu1200_loss(void **state)
{
    (void)state;
    sync_1mib(1200, 0, 0, 0, MIB);
    sync_1mib(1200, 10, 0, 0, MIB);
}

static void test_sync_mtu200_loss(void **state)
{
    (void)state;
    sync_1mib(200, 10, 0, 0, MIB);
}

static void test_sync_mtu128_dup_reorder(void **state)
{
    (void)state;
    sync_1mib(BLOB_MTU_MIN, 5, 10, 30 * MS, 256 * 1024);
}

/* ---- Several peers ------------------------------------------------------------------------- */

static bool fetched_third(struct net *net, void *arg)
{
    (void)arg;
    struct blob_stats s = stats_of(net, 1);
    return s.payload_bytes_in >= 4 * MIB / 3;
}

static void two_peers_one_goes(bool by_host)
{
    struct blob_config cfg;
    blob_config_default(&cfg);
    cfg.request_timeout_ns = 200 * MS;
    struct net net;
    net_init(&net, 3, &cfg);
    net.loss_pct = 2;
    uint8_t *data = make_data(4 * MIB, 3);
    int holders[] = {0, 2};
    struct cid id = seed_blob(&net, holders, 2, data, 4 * MIB);
    p4p_addr peers[] = {0, 2};
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, peers, 2), 0);
    assert_true(net_run(&net, fetched_third, NULL));
    assert_int_equal(net.n[1].done, 0);
    /* Both served up to here. */
    assert_true(stats_of(&net, 0).payload_bytes_out > 0);
    uint64_t c_before = stats_of(&net, 2).payload_bytes_out;
    assert_true(c_before > 0);
    if (by_host) {
        assert_int_equal(blob_remove_peer(net.n[1].b, net.now, NULL, 2), 0);
        assert_int_equal(blob_remove_peer(net.n[1].b, net.now, NULL, 2), P4P_ENOTFOUND);
    } else {
        net.n[2].cut = true;
    }
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 1);
    assert_blob_equals(net.n[1].b, &id, data, 4 * MIB);
    struct blob_stats s = stats_of(&net, 1);
    assert_int_equal(s.bytes_fetched, 4 * MIB);
    if (by_host) {
        assert_int_equal(s.peers_dropped, 0);
    } else {
        assert_int_equal(s.peers_dropped, 1);
        assert_true(s.timeouts >= cfg.peer_timeouts_max);
    }
    free(data);
    net_free(&net);
}

static void test_two_peers_one_vanishes(void **state)
{
    (void)state;
    two_peers_one_goes(false);
}

static void test_two_peers_one_removed(void **state)
{
    (void)state;
    two_peers_one_goes(true);
}

static void test_three_peers_dup_reorder(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    cfg.mtu = 500;
    struct net net;
    net_init(&net, 4, &cfg);
    net.loss_pct = 5;
    net.dup_pct = 5;
    net.jitter_ns = 20 * MS;
    uint8_t *data = make_data(MIB, 4);
    int holders[] = {0, 2, 3};
    struct cid id = seed_blob(&net, holders, 3, data, MIB);
    p4p_addr peers[] = {0, 2};
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, peers, 2), 0);
    assert_int_equal(blob_add_peer(net.n[1].b, net.now, &id, 3), 0); /* a third, later */
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 1);
    assert_blob_equals(net.n[1].b, &id, data, MIB);
    for (int i = 0; i < 4; i++) {
        if (i != 1) {
            assert_true(stats_of(&net, i).payload_bytes_out > MIB / 10);
        }
    }
    struct blob_stats s = stats_of(&net, 1);
    assert_true(s.duplicate_pieces > 0 || s.unexpected > 0);
    assert_int_equal(s.peers_dropped, 0);
    free(data);
    net_free(&net);
}

/* Two fetches at once share the slots and requests of one table, and both complete. */
static void test_two_fetches_at_once(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    cfg.slots_max = 3;
    cfg.requests_max = 5;
    struct net net;
    net_init(&net, 3, &cfg);
    net.loss_pct = 5;
    uint8_t *d1 = make_data(400000, 20), *d2 = make_data(300000, 21);
    struct cid id1, id2;
    assert_int_equal(blob_add(net.n[0].b, 0, d1, 400000, &id1), 0);
    assert_int_equal(blob_add(net.n[2].b, 0, d2, 300000, &id2), 0);
    p4p_addr p1 = 0, p2 = 2;
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id1, &p1, 1), 0);
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id2, &p2, 1), 0);
    assert_true(run_until_finished(&net, 1));
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 2);
    assert_blob_equals(net.n[1].b, &id1, d1, 400000);
    assert_blob_equals(net.n[1].b, &id2, d2, 300000);
    struct blob_stats s = stats_of(&net, 1);
    assert_int_equal(s.bytes_fetched, 700000);
    assert_int_equal(s.transfers_done, 2);
    free(d1);
    free(d2);
    net_free(&net);
}

static void test_not_found_and_silent(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    struct net net;
    net_init(&net, 4, &cfg);
    uint8_t *data = make_data(200000, 5);
    int holders[] = {0};
    struct cid id = seed_blob(&net, holders, 1, data, 200000);
    /* Node 2 has nothing: NOT_FOUND, dropped; node 0 delivers. */
    p4p_addr peers[] = {2, 0};
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, peers, 2), 0);
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 1);
    assert_blob_equals(net.n[1].b, &id, data, 200000);
    struct blob_stats s = stats_of(&net, 1);
    assert_int_equal(s.not_found_received, 1);
    assert_int_equal(s.peers_dropped, 1);
    assert_int_equal(stats_of(&net, 2).not_found_sent, 1);

    /* Node 3 fetches from node 2 (NOT_FOUND) only: FAILED, no peers. */
    assert_int_equal(blob_fetch(net.n[3].b, net.now, &id, peers, 1), 0);
    assert_true(run_until_finished(&net, 3));
    assert_int_equal(net.n[3].failed, 1);
    assert_int_equal(net.n[3].last.reason, BLOB_FAIL_NO_PEERS);
    /* Then a silent peer (cut off): given up after peer_timeouts_max unanswered header
     * requests. Then node 0, which has it. */
    net.n[2].cut = true;
    p4p_addr silent[] = {2};
    assert_int_equal(blob_fetch(net.n[3].b, net.now, &id, silent, 1), 0);
    assert_true(run_until_finished(&net, 3));
    assert_int_equal(net.n[3].failed, 2);
    s = stats_of(&net, 3);
    assert_int_equal(s.timeouts, cfg.peer_timeouts_max);
    assert_int_equal(s.peers_dropped, 2);
    assert_int_equal(blob_fetch(net.n[3].b, net.now, &id, peers + 1, 1), 0);
    assert_true(run_until_finished(&net, 3));
    assert_int_equal(net.n[3].done, 1);
    assert_blob_equals(net.n[3].b, &id, data, 200000);
    free(data);
    net_free(&net);
}

/* ---- Lying peers --------------------------------------------------------------------------- */

static unsigned msg_type(const uint8_t *data)
{
    return data[0] & 0x0f;
}

/* Flips the last byte (inside the data) of every PIECE. */
static bool flip_pieces(struct net *net, int from, int to, uint8_t *data, size_t *len)
{
    (void)net, (void)from, (void)to;
    if (msg_type(data) == BLOB_PIECE) {
        data[*len - 1] ^= 0x55;
    }
    return true;
}

static void test_corrupt_peer(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    struct net net;
    net_init(&net, 3, &cfg);
    net.loss_pct = 3;
    uint8_t *data = make_data(MIB, 6);
    int holders[] = {0, 2};
    struct cid id = seed_blob(&net, holders, 2, data, MIB);
    net.n[2].tamper = flip_pieces;
    p4p_addr peers[] = {0, 2};
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, peers, 2), 0);
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 1);
    assert_blob_equals(net.n[1].b, &id, data, MIB);
    struct blob_stats s = stats_of(&net, 1);
    assert_true(s.chunks_corrupt >= 1);
    assert_int_equal(s.peers_dropped, 1); /* the liar */
    assert_int_equal(s.bytes_fetched, MIB);
    assert_int_equal(s.chunks_fetched, chunk_count(&cfg, data, MIB));
    print_message("      corrupt chunks rejected: %llu\n", (unsigned long long)s.chunks_corrupt);

    /* From the liar alone: every chunk fails, it is dropped, the fetch fails. */
    assert_int_equal(blob_cancel(net.n[1].b, &id), P4P_ENOTFOUND);
    p4p_addr liar[] = {2};
    uint8_t *other = make_data(300000, 7);
    struct cid id2;
    assert_int_equal(blob_add(net.n[2].b, 0, other, 300000, &id2), 0);
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id2, liar, 1), 0);
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].failed, 1);
    assert_int_equal(net.n[1].last.reason, BLOB_FAIL_NO_PEERS);
    struct blob_stats s2 = stats_of(&net, 1);
    assert_int_equal(s2.chunks_corrupt - s.chunks_corrupt, cfg.peer_corrupt_max);
    assert_int_equal(s2.chunks_fetched, s.chunks_fetched);
    free(other);
    free(data);
    net_free(&net);
}

/* Swaps the first two leaf hashes of the first LEAVES piece it sees (tamper_state counts). */
static bool swap_leaves(struct net *net, int from, int to, uint8_t *data, size_t *len)
{
    (void)from, (void)to;
    if (msg_type(data) != BLOB_LEAVES || net->tamper_state >= 1) {
        return true;
    }
    struct cbor_reader r;
    uint64_t items, reqid, offset, total;
    const uint8_t *p;
    size_t n;
    cbor_reader_init(&r, data + 1, *len - 1);
    cbor_get_array(&r, &items);
    cbor_get_uint(&r, &reqid);
    cbor_get_uint(&r, &offset);
    cbor_get_uint(&r, &total);
    assert_int_equal(cbor_get_bstr(&r, &p, &n), 0);
    if (offset == 0 && n >= 64) {
        uint8_t tmp[32];
        uint8_t *q = data + (p - data);
        memcpy(tmp, q, 32);
        memcpy(q, q + 32, 32);
        memcpy(q + 32, tmp, 32);
        net->tamper_state++;
    }
    return true;
}

/* Flips the last byte of every LEAVES piece that ends its object (the proof's last byte). */
static bool flip_proof(struct net *net, int from, int to, uint8_t *data, size_t *len)
{
    (void)net, (void)from, (void)to;
    if (msg_type(data) != BLOB_LEAVES) {
        return true;
    }
    struct cbor_reader r;
    uint64_t items, reqid, offset, total;
    const uint8_t *p;
    size_t n;
    cbor_reader_init(&r, data + 1, *len - 1);
    cbor_get_array(&r, &items);
    cbor_get_uint(&r, &reqid);
    cbor_get_uint(&r, &offset);
    cbor_get_uint(&r, &total);
    assert_int_equal(cbor_get_bstr(&r, &p, &n), 0);
    if (offset + n == total) {
        data[*len - 1] ^= 1;
    }
    return true;
}

/* Asks for segment 1 when the table asks for segment 0 (once): the answer is a genuine leaf
 * object with a genuine proof, for the wrong place. */
static bool misplace_segment(struct net *net, int from, int to, uint8_t *data, size_t *len)
{
    (void)from, (void)to;
    if (msg_type(data) != BLOB_LEAVES_REQ || net->tamper_state >= 1) {
        return true;
    }
    struct cbor_reader r;
    uint64_t items, reqid, seg, offset, plen, rlen;
    const uint8_t *d;
    size_t dn;
    cbor_reader_init(&r, data + 1, *len - 1);
    cbor_get_array(&r, &items);
    cbor_get_uint(&r, &reqid);
    cbor_get_bstr(&r, &d, &dn);
    cbor_get_uint(&r, &seg);
    cbor_get_uint(&r, &offset);
    cbor_get_uint(&r, &rlen);
    cbor_get_uint(&r, &plen);
    assert_true(cbor_reader_done(&r));
    if (seg != 0) {
        return true;
    }
    uint8_t digest[32], out[MSG_CAP];
    memcpy(digest, d, 32);
    struct cbor_writer w;
    out[0] = data[0];
    cbor_writer_init(&w, out + 1, sizeof(out) - 1);
    cbor_put_array(&w, 6);
    cbor_put_uint(&w, reqid);
    cbor_put_bstr(&w, digest, 32);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, offset);
    cbor_put_uint(&w, rlen);
    cbor_put_uint(&w, plen);
    assert_true(cbor_writer_ok(&w));
    memcpy(data, out, w.len + 1);
    *len = w.len + 1;
    net->tamper_state++;
    return true;
}

static void forged_run(tamper_fn requester_tamper, tamper_fn server_tamper, bool small,
                       uint64_t expect_rejected)
{
    struct blob_config cfg;
    blob_config_default(&cfg);
    if (small) {
        small_chunks(&cfg);
    }
    struct net net;
    net_init(&net, 2, &cfg);
    uint8_t *data = make_data(MIB, 8);
    int holders[] = {0};
    struct cid id = seed_blob(&net, holders, 1, data, MIB);
    net.n[0].tamper = server_tamper;
    net.n[1].tamper = requester_tamper;
    p4p_addr peers[] = {0};
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, peers, 1), 0);
    assert_true(run_until_finished(&net, 1));
    struct blob_stats s = stats_of(&net, 1);
    assert_int_equal(s.segments_rejected, expect_rejected);
    if (expect_rejected < cfg.peer_corrupt_max) {
        assert_int_equal(net.n[1].done, 1);
        assert_blob_equals(net.n[1].b, &id, data, MIB);
    } else {
        /* Nothing but forgeries: no chunk is ever fetched with them. */
        assert_int_equal(net.n[1].failed, 1);
        assert_int_equal(s.chunks_fetched, 0);
        assert_int_equal(s.peers_dropped, 1);
    }
    free(data);
    net_free(&net);
}

static void test_forged_leaves(void **state)
{
    (void)state;
    /* Two leaves swapped once: rejected, fetched again, fine. */
    forged_run(NULL, swap_leaves, false, 1);
    /* A segment of the right length from the wrong place: its proof is for another leaf
     * range, and it is rejected. */
    forged_run(misplace_segment, NULL, true, 1);
    /* Every proof damaged: the peer is dropped after peer_corrupt_max segments. */
    forged_run(NULL, flip_proof, true, 2);
}

/* A header that does not match the id, injected by hand. */
static void test_forged_header(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    struct net net;
    net_init(&net, 2, &cfg);
    uint8_t *data = make_data(100000, 9);
    int holders[] = {0};
    struct cid id = seed_blob(&net, holders, 1, data, 100000);
    struct blob_info info;
    assert_int_equal(blob_info(net.n[0].b, &id, &info), 0);
    blob *b = net.n[1].b;
    p4p_addr peer = 0;
    assert_int_equal(blob_fetch(b, 0, &id, &peer, 1), 0);
    struct blob_msg m;
    assert_int_equal(blob_poll(b, &m), 0);
    assert_int_equal(m.data[0], 0x11);
    struct cbor_reader r;
    uint64_t items, reqid;
    cbor_reader_init(&r, m.data + 1, m.len - 1);
    cbor_get_array(&r, &items);
    assert_int_equal(cbor_get_uint(&r, &reqid), 0);
    /* Same root and size, one more chunk: the merkle.h caveat, caught by the id. */
    uint8_t hdr[BLOB_HEADER_MAX], msg[128];
    size_t hlen;
    assert_int_equal(
        blob_header_encode(info.size, info.chunk_count + 1, info.root, hdr, sizeof(hdr), &hlen), 0);
    struct cbor_writer w;
    msg[0] = 0x12;
    cbor_writer_init(&w, msg + 1, sizeof(msg) - 1);
    cbor_put_array(&w, 2);
    cbor_put_uint(&w, reqid);
    cbor_put_bstr(&w, hdr, hlen);
    assert_true(cbor_writer_ok(&w));
    /* From another address first: not the peer asked, ignored. */
    assert_int_equal(blob_recv(b, 0, 1, msg, w.len + 1), 0);
    struct blob_stats s;
    blob_stats(b, &s);
    assert_int_equal(s.unexpected, 1);
    assert_int_equal(blob_recv(b, 0, 0, msg, w.len + 1), 0);
    blob_stats(b, &s);
    assert_int_equal(s.headers_rejected, 1);
    assert_int_equal(s.peers_dropped, 1);
    net_events(&net);
    assert_int_equal(net.n[1].failed, 1);
    assert_int_equal(net.n[1].last.reason, BLOB_FAIL_NO_PEERS);
    /* A late genuine answer to the same request is now unexpected. */
    assert_int_equal(blob_recv(b, 0, 0, msg, w.len + 1), 0);
    blob_stats(b, &s);
    assert_int_equal(s.unexpected, 2);
    free(data);
    net_free(&net);
}

/* ---- Dedup, resume ------------------------------------------------------------------------- */

static void test_dedup_new_version(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    struct net net;
    net_init(&net, 2, &cfg);
    size_t len = MIB;
    uint8_t *v1 = make_data(len, 10), *v2 = malloc(len);
    assert_non_null(v2);
    memcpy(v2, v1, len);
    stream(v2 + len / 2, 1000, 11); /* an edit in the middle */
    struct cid id1, id2, id1b;
    assert_int_equal(blob_add(net.n[0].b, 0, v1, len, &id1), 0);
    assert_int_equal(blob_add(net.n[0].b, 0, v2, len, &id2), 0);
    uint64_t n2 = chunk_count(&cfg, v2, len);
    struct blob_stats a = stats_of(&net, 0);
    assert_true(a.chunks_dedup >= n2 - 3); /* A stored only the changed chunks of v2 */
    /* B has version 1 already (added locally). */
    assert_int_equal(blob_add(net.n[1].b, 0, v1, len, &id1b), 0);
    assert_int_equal(cid_compare(&id1, &id1b), 0);
    p4p_addr peer = 0;
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id2, &peer, 1), 0);
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 1);
    assert_blob_equals(net.n[1].b, &id2, v2, len);
    assert_blob_equals(net.n[1].b, &id1, v1, len);
    struct blob_stats s = stats_of(&net, 1);
    assert_true(s.chunks_fetched >= 1 && s.chunks_fetched <= 3);
    assert_int_equal(s.chunks_fetched + s.chunks_dedup, n2);
    assert_int_equal(s.bytes_fetched + s.bytes_dedup_saved, len);
    assert_true(s.bytes_fetched < len / 20);
    assert_int_equal(s.payload_bytes_in, s.bytes_fetched);
    print_message("      fetched %llu of %zu bytes (%llu chunks), dedup saved %llu\n",
                  (unsigned long long)s.bytes_fetched, len, (unsigned long long)s.chunks_fetched,
                  (unsigned long long)s.bytes_dedup_saved);
    free(v1);
    free(v2);
    net_free(&net);
}

struct half_arg {
    uint64_t n;
    const struct cid *id;
};

/* Half the chunks fetched, and the first segment complete (it need not be the first to
 * complete: chunks of up to four segments are fetched at once). */
static bool fetched_half(struct net *net, void *arg)
{
    struct half_arg *h = arg;
    uint8_t byte;
    size_t got;
    return stats_of(net, 1).chunks_fetched >= h->n / 2 &&
           blob_read(net->n[1].b, h->id, 0, &byte, 1, &got) == 0;
}

static void test_resume_after_restart(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    small_chunks(&cfg); /* several segments */
    struct net net;
    net_init(&net, 2, &cfg);
    net.loss_pct = 5;
    size_t len = MIB;
    uint8_t *data = make_data(len, 12);
    int holders[] = {0};
    struct cid id = seed_blob(&net, holders, 1, data, len);
    uint64_t n = chunk_count(&cfg, data, len);
    assert_true(n > 3 * 256);
    p4p_addr peer = 0;
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, &peer, 1), 0);
    struct half_arg half = {n, &id};
    assert_true(net_run(&net, fetched_half, &half));
    struct blob_stats s1 = stats_of(&net, 1);
    struct blob_info info;
    assert_int_equal(blob_info(net.n[1].b, &id, &info), 0);
    assert_true(info.is_fetching);
    assert_false(info.is_complete);
    assert_true(info.segments_complete >= 1);
    assert_true(info.segments_complete < info.segments);
    uint64_t complete1 = info.segments_complete;

    /* Partial read: the first segment is here, the last is not. */
    uint8_t buf[5000];
    size_t got = 0;
    assert_int_equal(blob_read(net.n[1].b, &id, 100, buf, sizeof(buf), &got), 0);
    assert_int_equal(got, sizeof(buf));
    assert_memory_equal(buf, data + 100, sizeof(buf));
    assert_int_equal(blob_read(net.n[1].b, &id, len - 10, buf, 10, &got), P4P_ENOTFOUND);

    /* Restart B: new table on the same disk; messages in flight still arrive (stale). */
    net_restart(&net, 1);
    assert_int_equal(blob_info(net.n[1].b, &id, &info), 0);
    assert_false(info.is_fetching);
    assert_int_equal(info.segments_complete, complete1);
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, &peer, 1), 0);
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 1);
    assert_blob_equals(net.n[1].b, &id, data, len);
    struct blob_stats s2 = stats_of(&net, 1);
    /* Nothing stored before the restart is fetched again. */
    assert_int_equal(s1.bytes_fetched + s2.bytes_fetched, len);
    assert_int_equal(s1.chunks_fetched + s2.chunks_fetched, n);
    assert_int_equal(s1.segments_fetched + s2.segments_fetched, (n + 255) / 256);
    /* Chunks of complete segments are not even looked at; the others are found stored. */
    uint64_t in_complete = 256 * complete1;
    assert_int_equal(s2.chunks_fetched + s2.chunks_dedup, n - in_complete);
    print_message("      before restart %llu chunks, after %llu fetched + %llu found stored\n",
                  (unsigned long long)s1.chunks_fetched, (unsigned long long)s2.chunks_fetched,
                  (unsigned long long)s2.chunks_dedup);
    free(data);
    net_free(&net);
}

/* A storage failure mid-fetch is returned; after a restart the fetch resumes and completes. */
static void test_storage_failure(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    struct net net;
    net_init(&net, 2, &cfg);
    uint8_t *data = make_data(MIB, 13);
    int holders[] = {0};
    struct cid id = seed_blob(&net, holders, 1, data, MIB);
    storage_mem_fail_after(&net.n[1].st, 40);
    p4p_addr peer = 0;
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, &peer, 1), 0);
    while (net.n[1].last_rc == 0 && net_step(&net)) {
    }
    assert_int_equal(net.n[1].last_rc, P4P_EIO);
    struct blob_stats s1 = stats_of(&net, 1);
    assert_true(s1.chunks_fetched > 0);
    net_restart(&net, 1);
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, &peer, 1), 0);
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 1);
    assert_int_equal(net.n[1].last_rc, 0);
    assert_blob_equals(net.n[1].b, &id, data, MIB);
    struct blob_stats s2 = stats_of(&net, 1);
    assert_int_equal(s2.chunks_dedup, s1.chunks_fetched);
    /* An add that hits a failure reports it. */
    storage_mem_fail_after(&net.n[0].st, 3);
    struct cid id2;
    assert_int_equal(blob_add(net.n[0].b, 0, data + 1, MIB - 1, &id2), P4P_EIO);
    free(data);
    net_free(&net);
}

/* ---- Malformed input ----------------------------------------------------------------------- */

struct capture {
    uint8_t msg[8][MSG_CAP];
    size_t len[8];
};

static struct capture *g_capture;

static bool capture_all(struct net *net, int from, int to, uint8_t *data, size_t *len)
{
    (void)net, (void)from, (void)to;
    unsigned t = msg_type(data);
    if (t < 8 && g_capture->len[t] == 0) {
        memcpy(g_capture->msg[t], data, *len);
        g_capture->len[t] = *len;
    }
    return true;
}

static uint64_t dropped_count(blob *b)
{
    struct blob_stats s;
    blob_stats(b, &s);
    return s.malformed + s.unknown_type;
}

static void test_malformed_and_fuzz(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    struct net net;
    net_init(&net, 3, &cfg);
    struct capture cap;
    memset(&cap, 0, sizeof(cap));
    g_capture = &cap;
    uint8_t *data = make_data(100000, 14);
    int holders[] = {0};
    struct cid id = seed_blob(&net, holders, 1, data, 100000);
    net.n[0].tamper = capture_all;
    net.n[1].tamper = capture_all;
    p4p_addr peers[] = {0, 2}; /* node 2 answers NOT_FOUND */
    assert_int_equal(blob_fetch(net.n[1].b, net.now, &id, peers, 2), 0);
    assert_true(run_until_finished(&net, 1));
    assert_int_equal(net.n[1].done, 1);
    net.n[2].tamper = NULL;
    /* NOT_FOUND came from node 2: capture it separately. */
    struct blob_msg m;
    uint8_t nf[] = {0x17, 0x81, 0x1a, 0x12, 0x34, 0x56, 0x78};
    memcpy(cap.msg[7], nf, sizeof(nf));
    cap.len[7] = sizeof(nf);
    for (unsigned t = 1; t < 8; t++) {
        assert_true(cap.len[t] > 0);
    }

    /* Every proper prefix of every message type is dropped and counted, by a table that has
     * nothing and by one that is fetching. */
    blob *x = net.n[2].b;
    p4p_addr p0 = 0;
    assert_int_equal(blob_fetch(net.n[2].b, net.now, &id, &p0, 1), 0);
    while (blob_poll(x, &m) == 0) {
    }
    for (unsigned t = 1; t < 8; t++) {
        for (size_t l = 0; l < cap.len[t]; l++) {
            uint64_t before = dropped_count(x);
            assert_int_equal(blob_recv(x, net.now, 0, cap.msg[t], l), P4P_EMALFORMED);
            assert_int_equal(dropped_count(x), before + 1);
        }
        /* One trailing byte too many. */
        uint8_t longer[MSG_CAP + 1];
        memcpy(longer, cap.msg[t], cap.len[t]);
        longer[cap.len[t]] = 0;
        assert_int_equal(blob_recv(x, net.now, 0, longer, cap.len[t] + 1), P4P_EMALFORMED);
        /* Another version nibble, an unknown type. */
        uint8_t other[MSG_CAP];
        memcpy(other, cap.msg[t], cap.len[t]);
        other[0] = (uint8_t)(0x20 | t);
        uint64_t before = dropped_count(x);
        assert_int_equal(blob_recv(x, net.now, 0, other, cap.len[t]), P4P_EMALFORMED);
        other[0] = 0x18;
        assert_int_equal(blob_recv(x, net.now, 0, other, cap.len[t]), P4P_EMALFORMED);
        other[0] = 0x10;
        assert_int_equal(blob_recv(x, net.now, 0, other, cap.len[t]), P4P_EMALFORMED);
        assert_int_equal(dropped_count(x), before + 3);
        while (blob_poll(x, &m) == 0) {
        }
    }
    struct blob_stats sx;
    blob_stats(x, &sx);
    assert_int_equal(sx.unknown_type, 3 * 7);
    /* Longer than the mtu. */
    uint8_t big[1300] = {0x16};
    assert_int_equal(blob_recv(x, net.now, 0, big, sizeof(big)), P4P_EMALFORMED);

    /* Random fuzz on a fresh idle table: every message lands in exactly one counter. */
    blob *y = net.n[0].b;
    struct blob_stats before;
    blob_stats(y, &before);
    size_t fuzz_n = 20000;
    uint8_t *fuzz = make_data(fuzz_n * 64, 15);
    uint64_t rng = 99;
    for (size_t k = 0; k < fuzz_n; k++) {
        uint8_t msg[256];
        size_t l = xorshift(&rng) % 200;
        memcpy(msg, fuzz + (k * 64) % (fuzz_n * 64 - 256), l);
        if (l && (k & 1)) {
            msg[0] = (uint8_t)(0x10 | (msg[0] & 7)); /* a valid type byte, random CBOR */
        }
        if (l > 2 && (k % 4) == 1) {
            msg[1] = (uint8_t)(0x80 | (msg[1] % 7)); /* and an array head */
        }
        int rc = blob_recv(y, net.now, 1, msg, l);
        assert_true(rc == 0 || rc == P4P_EMALFORMED);
        while (blob_poll(y, &m) == 0) {
        }
    }
    /* Mutations of genuine messages. */
    size_t mut_n = 0;
    for (unsigned t = 1; t < 8; t++) {
        for (int k = 0; k < 2000; k++) {
            uint8_t msg[MSG_CAP];
            memcpy(msg, cap.msg[t], cap.len[t]);
            int flips = 1 + (int)(xorshift(&rng) % 3);
            for (int f = 0; f < flips; f++) {
                size_t at = xorshift(&rng) % cap.len[t];
                msg[at] ^= (uint8_t)(1u << (xorshift(&rng) % 8));
            }
            int rc = blob_recv(y, net.now, 1, msg, cap.len[t]);
            assert_true(rc == 0 || rc == P4P_EMALFORMED);
            mut_n++;
            while (blob_poll(y, &m) == 0) {
            }
        }
    }
    struct blob_stats after;
    blob_stats(y, &after);
    uint64_t accounted = (after.malformed - before.malformed) +
                         (after.unknown_type - before.unknown_type) +
                         (after.unexpected - before.unexpected) +
                         (after.requests_received - before.requests_received);
    assert_int_equal(accounted, fuzz_n + mut_n);
    assert_int_equal(after.msgs_in - before.msgs_in, fuzz_n + mut_n);
    assert_true(after.malformed > before.malformed);
    /* The table still works: node 2 fetches from it. */
    assert_true(run_until_finished(&net, 2));
    assert_int_equal(net.n[2].done, 1);
    assert_blob_equals(net.n[2].b, &id, data, 100000);
    free(fuzz);
    free(data);
    net_free(&net);
}

static void test_create_limits(void **state)
{
    (void)state;
    struct blob_config cfg;
    blob_config_default(&cfg);
    struct storage_mem *disk;
    struct p4p_storage st;
    assert_int_equal(storage_mem_create(&disk), 0);
    assert_int_equal(storage_mem_open(disk, &st), 0);
    struct node nd = {.seed = 1};
    struct blob_env env = {.ctx = &nd, .random = node_random, .storage = st};
    blob *b = NULL;
    cfg.mtu = BLOB_MTU_MIN - 1;
    assert_int_equal(blob_create(&cfg, &env, &b), P4P_EINVAL);
    blob_config_default(&cfg);
    cfg.peers_max = BLOB_PEERS_MAX_LIMIT + 1;
    assert_int_equal(blob_create(&cfg, &env, &b), P4P_EINVAL);
    blob_config_default(&cfg);
    cfg.request_pieces = BLOB_REQ_PIECES_MAX + 1;
    assert_int_equal(blob_create(&cfg, &env, &b), P4P_EINVAL);
    blob_config_default(&cfg);
    env.random = NULL;
    assert_int_equal(blob_create(&cfg, &env, &b), P4P_EINVAL);
    env.random = node_random;
    cfg.transfers_max = 1;
    cfg.peers_max = 2;
    assert_int_equal(blob_create(&cfg, &env, &b), 0);
    assert_true(blob_memory(b) > 8 * 65536);
    assert_int_equal(blob_deadline(b), P4P_TIME_NONE);
    uint8_t root[32] = {1};
    struct cid a, c;
    blob_make_id(10, 1, root, &a);
    blob_make_id(11, 1, root, &c);
    p4p_addr three[] = {1, 2, 3};
    assert_int_equal(blob_fetch(b, 0, &a, three, 3), P4P_EFULL);
    assert_int_equal(blob_fetch(b, 0, &a, three, 2), 0);
    assert_true(blob_deadline(b) != P4P_TIME_NONE);
    assert_int_equal(blob_fetch(b, 0, &c, three, 1), P4P_EFULL); /* one fetch at a time */
    assert_int_equal(blob_add_peer(b, 0, &c, 1), P4P_ENOTFOUND);
    assert_int_equal(blob_add_peer(b, 0, &a, 3), P4P_EFULL);
    assert_int_equal(blob_cancel(b, &a), 0);
    assert_int_equal(blob_deadline(b), P4P_TIME_NONE);
    assert_int_equal(blob_fetch(b, 0, &c, three, 1), 0);
    blob_destroy(b);
    storage_mem_close(&st);
    storage_mem_destroy(disk);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_and_id),
        cmocka_unit_test(test_add_read),
        cmocka_unit_test(test_create_limits),
        cmocka_unit_test(test_sync_mtu1200_loss),
        cmocka_unit_test(test_sync_mtu200_loss),
        cmocka_unit_test(test_sync_mtu128_dup_reorder),
        cmocka_unit_test(test_two_peers_one_vanishes),
        cmocka_unit_test(test_two_peers_one_removed),
        cmocka_unit_test(test_three_peers_dup_reorder),
        cmocka_unit_test(test_two_fetches_at_once),
        cmocka_unit_test(test_not_found_and_silent),
        cmocka_unit_test(test_corrupt_peer),
        cmocka_unit_test(test_forged_leaves),
        cmocka_unit_test(test_forged_header),
        cmocka_unit_test(test_dedup_new_version),
        cmocka_unit_test(test_resume_after_restart),
        cmocka_unit_test(test_storage_failure),
        cmocka_unit_test(test_malformed_and_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
