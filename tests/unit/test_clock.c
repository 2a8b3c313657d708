/*
 * test_clock.c — unit tests for engine/clock.{h,c}: Lamport clocks, version vectors, hybrid
 * logical clocks.
 *
 * Hand-written cases pin the exact rules (the HLC receive cases of the paper, the packed
 * layout, counter exhaustion and retry, the future-timestamp rejection, the canonical CBOR of a
 * version vector and its malformed variants). Then a small seeded simulation: N nodes, each
 * with a physical clock pt_i(t) = base + offset_i + (1 + drift_i) t, exchanging messages with
 * random delays, optionally with a rogue node whose clock is far ahead. Every event records
 * its HLC timestamp, Lamport value and version vector; happened-before is computed
 * independently as bitsets of ancestors (program order + send->receive), and the properties
 * are checked over all pairs of events:
 *
 *   (a) each node's HLC (and Lamport) values strictly increase;
 *   (b) e hb f  =>  hlc(e) < hlc(f), L(e) < L(f), and vv(e) BEFORE vv(f); otherwise CONCURRENT;
 *   (c) pt rounded to a tick <= l <= max_j pt_j(t): l - pt never exceeds the skew between
 *       clocks at that instant (the paper's |l - pt| <= eps), nor max_offset_ns;
 *   (d) c.f <= |{g : g hb f, l.g = l.f}| (the paper's bound on c);
 *   (e) every timestamp more than max_offset ahead is refused, counted, and leaves the clock
 *       as it was.
 *
 * Deterministic: all randomness comes from a seeded splitmix64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"

/* ---- Helpers ------------------------------------------------------------------------------- */

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (the slight modulo bias does not matter here). */
static uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
    return lo + rng_next(r) % (hi - lo + 1);
}

static void fill_actor(uint8_t actor[VV_ACTOR_LEN], uint8_t byte)
{
    memset(actor, byte, VV_ACTOR_LEN);
}

static size_t encode_vv(const struct vv *v, uint8_t *buf, size_t cap)
{
    struct cbor_writer w;
    cbor_writer_init(&w, buf, cap);
    assert_int_equal(vv_encode(v, &w), 0);
    return w.len;
}

/* Decodes buf[0..len) as one whole vector: vv_decode plus the no-trailing-bytes check. */
static int decode_vv(const uint8_t *buf, size_t len, struct vv *out)
{
    struct cbor_reader r;
    int rc;
    cbor_reader_init(&r, buf, len);
    rc = vv_decode(&r, out);
    if (rc == 0 && !cbor_reader_done(&r)) {
        return P4P_EMALFORMED;
    }
    return rc;
}

static int vv_same(const struct vv *a, const struct vv *b)
{
    return a->count == b->count && memcmp(a->e, b->e, a->count * sizeof(a->e[0])) == 0;
}

/* ---- Lamport ------------------------------------------------------------------------------- */

static void test_lamport_rules(void **state)
{
    (void)state;
    struct lamport c = {0};
    uint64_t t;

    assert_int_equal(lamport_tick(&c, &t), 0);
    assert_int_equal(t, 1);
    assert_int_equal(lamport_recv(&c, 10, &t), 0); /* max(1, 10) + 1 */
    assert_int_equal(t, 11);
    assert_int_equal(lamport_recv(&c, 3, &t), 0); /* max(11, 3) + 1 */
    assert_int_equal(t, 12);
    assert_int_equal(lamport_tick(&c, &t), 0);
    assert_int_equal(t, 13);

    /* Exhaustion is an error and leaves the clock alone. */
    t = 0;
    assert_int_equal(lamport_recv(&c, UINT64_MAX, &t), P4P_ETOOBIG);
    assert_int_equal(c.time, 13);
    assert_int_equal(t, 0);
    assert_int_equal(lamport_recv(&c, UINT64_MAX - 1, &t), 0);
    assert_true(t == UINT64_MAX);
    assert_int_equal(lamport_tick(&c, &t), P4P_ETOOBIG);
    assert_true(c.time == UINT64_MAX);
}

/* ---- Version vectors ----------------------------------------------------------------------- */

static void test_vv_basics(void **state)
{
    (void)state;
    struct vv a, b;
    uint8_t x[32], y[32], z[32];
    uint64_t n;

    fill_actor(x, 0x10);
    fill_actor(y, 0x20);
    fill_actor(z, 0x30);
    vv_init(&a);
    vv_init(&b);
    assert_int_equal(vv_compare(&a, &b), VV_EQUAL);
    assert_int_equal(vv_get(&a, x), 0);

    /* Inserted out of order, kept sorted. */
    assert_int_equal(vv_increment(&a, z, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(vv_increment(&a, x, NULL), 0);
    assert_int_equal(vv_increment(&a, x, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(a.count, 2);
    assert_memory_equal(a.e[0].actor, x, 32);
    assert_memory_equal(a.e[1].actor, z, 32);
    assert_int_equal(vv_get(&a, x), 2);
    assert_int_equal(vv_get(&a, y), 0);
    assert_int_equal(vv_get(&a, z), 1);

    assert_int_equal(vv_compare(&a, &b), VV_AFTER);
    assert_int_equal(vv_compare(&b, &a), VV_BEFORE);

    /* b = {x:2, z:1}, then y on b only: a < b. */
    b = a;
    assert_int_equal(vv_compare(&a, &b), VV_EQUAL);
    assert_int_equal(vv_increment(&b, y, NULL), 0);
    assert_int_equal(vv_compare(&a, &b), VV_BEFORE);
    /* z on a only: concurrent both ways. */
    assert_int_equal(vv_increment(&a, z, NULL), 0);
    assert_int_equal(vv_compare(&a, &b), VV_CONCURRENT);
    assert_int_equal(vv_compare(&b, &a), VV_CONCURRENT);

    assert_int_equal(vv_merge(&a, &b), 0); /* {x:2, y:1, z:2} */
    assert_int_equal(a.count, 3);
    assert_int_equal(vv_get(&a, x), 2);
    assert_int_equal(vv_get(&a, y), 1);
    assert_int_equal(vv_get(&a, z), 2);
    assert_int_equal(vv_compare(&b, &a), VV_BEFORE);
}

static void test_vv_bounds(void **state)
{
    (void)state;
    struct vv a, b, before;
    uint8_t actor[32];

    vv_init(&a);
    for (int i = 0; i < VV_ACTORS_MAX; i++) {
        fill_actor(actor, (uint8_t)(2 * i + 2));
        assert_int_equal(vv_increment(&a, actor, NULL), 0);
    }
    assert_int_equal(a.count, VV_ACTORS_MAX);
    before = a;
    fill_actor(actor, 1); /* new actor: full */
    assert_int_equal(vv_increment(&a, actor, NULL), P4P_EFULL);
    assert_true(vv_same(&a, &before));
    fill_actor(actor, 2); /* existing actor: still fine */
    assert_int_equal(vv_increment(&a, actor, NULL), 0);
    assert_int_equal(vv_get(&a, actor), 2);
    before = a;

    /* A merge whose union has 33 actors fails and leaves dst alone. */
    vv_init(&b);
    fill_actor(actor, 0xff);
    assert_int_equal(vv_increment(&b, actor, NULL), 0);
    assert_int_equal(vv_merge(&a, &b), P4P_EFULL);
    assert_true(vv_same(&a, &before));
    /* ... and one that fits exactly succeeds. */
    vv_init(&b);
    fill_actor(actor, 4);
    assert_int_equal(vv_increment(&b, actor, NULL), 0);
    assert_int_equal(vv_increment(&b, actor, NULL), 0);
    assert_int_equal(vv_merge(&a, &b), 0);
    assert_int_equal(vv_get(&a, actor), 2);
    assert_int_equal(a.count, VV_ACTORS_MAX);

    /* Counter exhaustion. */
    a.e[0].counter = UINT64_MAX;
    before = a;
    assert_int_equal(vv_increment(&a, a.e[0].actor, NULL), P4P_ETOOBIG);
    assert_true(vv_same(&a, &before));
}

/* A random vector over a small pool of actors with small counters, so that equal counters,
 * shared actors and disjoint ones all occur. */
#define POOL 6
static void random_vv(struct rng *r, uint8_t pool[POOL][32], struct vv *v)
{
    vv_init(v);
    for (int i = 0; i < POOL; i++) {
        uint64_t n = rng_range(r, 0, 3);
        for (uint64_t k = 0; k < n; k++) {
            assert_int_equal(vv_increment(v, pool[i], NULL), 0);
        }
    }
}

/* The reference answer from counters alone. */
static enum vv_order ref_compare(uint8_t pool[POOL][32], const struct vv *a, const struct vv *b)
{
    int lt = 0, gt = 0;
    for (int i = 0; i < POOL; i++) {
        lt |= vv_get(a, pool[i]) < vv_get(b, pool[i]);
        gt |= vv_get(a, pool[i]) > vv_get(b, pool[i]);
    }
    return lt && gt ? VV_CONCURRENT : lt ? VV_BEFORE : gt ? VV_AFTER : VV_EQUAL;
}

static void test_vv_laws(void **state)
{
    (void)state;
    static const enum vv_order mirror[] = {VV_EQUAL, VV_AFTER, VV_BEFORE, VV_CONCURRENT};
    struct rng r = {42};
    uint8_t pool[POOL][32];
    int seen[4] = {0};

    for (int i = 0; i < POOL; i++) {
        for (int k = 0; k < 32; k++) {
            pool[i][k] = (uint8_t)rng_next(&r);
        }
    }
    for (int iter = 0; iter < 3000; iter++) {
        struct vv a, b, c, ab, ba, ab_c, bc, a_bc, aa, tmp;
        uint8_t e1[2048], e2[2048];
        size_t n1, n2;

        random_vv(&r, pool, &a);
        random_vv(&r, pool, &c);
        /* b: independent, equal to a, or a with a few more events, so every relation occurs. */
        switch (rng_range(&r, 0, 3)) {
        case 0:
        case 1:
            random_vv(&r, pool, &b);
            break;
        case 2:
            b = a;
            break;
        default:
            b = a;
            for (uint64_t k = rng_range(&r, 1, 3); k > 0; k--) {
                assert_int_equal(vv_increment(&b, pool[rng_range(&r, 0, POOL - 1)], NULL), 0);
            }
            break;
        }
        if (rng_range(&r, 0, 1)) {
            tmp = a; /* and the other way round */
            a = b;
            b = tmp;
        }

        /* compare agrees with the counters and mirrors when swapped. */
        enum vv_order o = vv_compare(&a, &b);
        assert_int_equal(o, ref_compare(pool, &a, &b));
        assert_int_equal(vv_compare(&b, &a), mirror[o]);
        seen[o]++;

        /* merge: commutative, associative, idempotent, the pointwise max, an upper bound. */
        ab = a;
        assert_int_equal(vv_merge(&ab, &b), 0);
        ba = b;
        assert_int_equal(vv_merge(&ba, &a), 0);
        assert_true(vv_same(&ab, &ba));
        ab_c = ab;
        assert_int_equal(vv_merge(&ab_c, &c), 0);
        bc = b;
        assert_int_equal(vv_merge(&bc, &c), 0);
        a_bc = a;
        assert_int_equal(vv_merge(&a_bc, &bc), 0);
        assert_true(vv_same(&ab_c, &a_bc));
        aa = a;
        assert_int_equal(vv_merge(&aa, &a), 0);
        assert_true(vv_same(&aa, &a));
        for (int i = 0; i < POOL; i++) {
            uint64_t x = vv_get(&a, pool[i]), y = vv_get(&b, pool[i]);
            assert_int_equal(vv_get(&ab, pool[i]), x > y ? x : y);
        }
        o = vv_compare(&a, &ab);
        assert_true(o == VV_BEFORE || o == VV_EQUAL);
        assert_int_equal(o == VV_EQUAL,
                         vv_compare(&b, &a) == VV_BEFORE || vv_compare(&b, &a) == VV_EQUAL);

        /* Round trip; equal vectors encode to equal bytes. */
        n1 = encode_vv(&ab, e1, sizeof(e1));
        n2 = encode_vv(&ba, e2, sizeof(e2));
        assert_int_equal(n1, n2);
        assert_memory_equal(e1, e2, n1);
        assert_int_equal(decode_vv(e1, n1, &tmp), 0);
        assert_true(vv_same(&tmp, &ab));
    }
    /* The generator produced every relation, so each branch above was exercised. */
    for (int i = 0; i < 4; i++) {
        assert_true(seen[i] > 50);
    }
}

static void test_vv_encoding(void **state)
{
    (void)state;
    struct vv v, out;
    uint8_t x[32], y[32], buf[256], expect[256];
    size_t n, k = 0;
    struct cbor_writer w;

    /* {x: 1, y: 300} is a2 5820 <x> 01 5820 <y> 19 012c. */
    fill_actor(x, 0x01);
    fill_actor(y, 0x02);
    vv_init(&v);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(vv_increment(&v, y, NULL), 0);
    }
    assert_int_equal(vv_increment(&v, x, NULL), 0);
    expect[k++] = 0xa2;
    expect[k++] = 0x58;
    expect[k++] = 0x20;
    memcpy(expect + k, x, 32);
    k += 32;
    expect[k++] = 0x01;
    expect[k++] = 0x58;
    expect[k++] = 0x20;
    memcpy(expect + k, y, 32);
    k += 32;
    expect[k++] = 0x19;
    expect[k++] = 0x01;
    expect[k++] = 0x2c;
    n = encode_vv(&v, buf, sizeof(buf));
    assert_int_equal(n, k);
    assert_memory_equal(buf, expect, k);
    assert_int_equal(decode_vv(buf, n, &out), 0);
    assert_true(vv_same(&out, &v));

    /* The empty vector is a0. */
    vv_init(&v);
    n = encode_vv(&v, buf, sizeof(buf));
    assert_int_equal(n, 1);
    assert_int_equal(buf[0], 0xa0);
    out.count = 7;
    assert_int_equal(decode_vv(buf, n, &out), 0);
    assert_int_equal(out.count, 0);

    /* A writer too small reports the size needed. */
    cbor_writer_init(&w, buf, 10);
    assert_int_equal(vv_encode(&(struct vv){.count = 0}, &w), 0);
    vv_init(&v);
    assert_int_equal(vv_increment(&v, x, NULL), 0);
    cbor_writer_init(&w, buf, 10);
    assert_int_equal(vv_encode(&v, &w), P4P_ETOOBIG);
    assert_int_equal(w.len, 36);

    /* The largest counter survives. */
    v.e[0].counter = UINT64_MAX;
    n = encode_vv(&v, buf, sizeof(buf));
    assert_int_equal(n, 1 + 34 + 9);
    assert_int_equal(decode_vv(buf, n, &out), 0);
    assert_true(out.e[0].counter == UINT64_MAX);
}

/* Builds a map with `count` pairs from arrays of key lengths/bytes and raw counter items. */
static size_t build_map(uint8_t *buf, size_t cap, uint64_t count, const uint8_t *keys[],
                        const size_t key_len[], const uint64_t counters[])
{
    struct cbor_writer w;
    cbor_writer_init(&w, buf, cap);
    cbor_put_map(&w, count);
    for (uint64_t i = 0; i < count; i++) {
        cbor_put_bstr(&w, keys[i], key_len[i]);
        cbor_put_uint(&w, counters[i]);
    }
    assert_true(cbor_writer_ok(&w));
    return w.len;
}

/* Decoding must fail with `code` and leave the output vector as it was. */
static void expect_reject(const uint8_t *bytes, size_t len, int code)
{
    struct vv out, sentinel;
    uint8_t actor[32];

    fill_actor(actor, 0x77);
    vv_init(&sentinel);
    assert_int_equal(vv_increment(&sentinel, actor, NULL), 0);
    out = sentinel;
    assert_int_equal(decode_vv(bytes, len, &out), code);
    assert_true(vv_same(&out, &sentinel));
}

/* Well-formed CBOR maps that are not canonical vectors. */
static void test_vv_decode_rejects_maps(void **state)
{
    (void)state;
    uint8_t a[33], b[33], buf[2048], many[VV_ACTORS_MAX + 1][32];
    const uint8_t *keys[VV_ACTORS_MAX + 1] = {a, b};
    size_t lens[VV_ACTORS_MAX + 1] = {32, 32}, n;
    uint64_t counters[VV_ACTORS_MAX + 1] = {1, 2};
    struct vv out;

    memset(a, 0x0a, sizeof(a));
    memset(b, 0x0b, sizeof(b));
    /* Baseline {a: 1, b: 2}; every proper prefix fails, and so do trailing bytes (checked by
     * the caller: vv_decode stops at the end of the map). */
    n = build_map(buf, sizeof(buf), 2, keys, lens, counters);
    assert_int_equal(decode_vv(buf, n, &out), 0);
    assert_int_equal(out.count, 2);
    for (size_t cut = 0; cut < n; cut++) {
        expect_reject(buf, cut, P4P_EMALFORMED);
    }
    buf[n] = 0x00;
    assert_int_equal(decode_vv(buf, n + 1, &out), P4P_EMALFORMED);

    /* Keys descending, duplicate. */
    keys[0] = b, keys[1] = a;
    expect_reject(buf, build_map(buf, sizeof(buf), 2, keys, lens, counters), P4P_EMALFORMED);
    keys[0] = a, keys[1] = a;
    expect_reject(buf, build_map(buf, sizeof(buf), 2, keys, lens, counters), P4P_EMALFORMED);
    /* Keys of 31, 33 and 0 bytes. */
    keys[1] = b;
    for (int i = 0; i < 3; i++) {
        lens[0] = (size_t[]){31, 33, 0}[i];
        expect_reject(buf, build_map(buf, sizeof(buf), 2, keys, lens, counters), P4P_EMALFORMED);
    }
    lens[0] = 32;
    /* A zero counter (absent actors are not written). */
    counters[1] = 0;
    expect_reject(buf, build_map(buf, sizeof(buf), 2, keys, lens, counters), P4P_EMALFORMED);

    /* 33 well-formed entries are too many; 32 fit. */
    for (int i = 0; i <= VV_ACTORS_MAX; i++) {
        fill_actor(many[i], (uint8_t)(i + 1));
        keys[i] = many[i];
        lens[i] = 32;
        counters[i] = (uint64_t)i + 1;
    }
    n = build_map(buf, sizeof(buf), VV_ACTORS_MAX + 1, keys, lens, counters);
    expect_reject(buf, n, P4P_EFULL);
    n = build_map(buf, sizeof(buf), VV_ACTORS_MAX, keys, lens, counters);
    assert_int_equal(decode_vv(buf, n, &out), 0);
    assert_int_equal(out.count, VV_ACTORS_MAX);
}

/* Byte-level variants of {a: 1} = a1 5820 <a> 01 that the strict reader must refuse. */
static void test_vv_decode_rejects_bytes(void **state)
{
    (void)state;
    uint8_t one[36] = {0xa1, 0x58, 0x20}, v[64];
    const size_t k = sizeof(one);
    struct cbor_reader r;
    struct vv out;

    memset(one + 3, 0x0a, 32);
    one[35] = 0x01;
    assert_int_equal(decode_vv(one, k, &out), 0);

#define VARIANT(len, ...)                                                                          \
    do {                                                                                           \
        memcpy(v, one, k);                                                                         \
        __VA_ARGS__;                                                                               \
        expect_reject(v, len, P4P_EMALFORMED);                                                     \
    } while (0)
    VARIANT(k, v[0] = 0x81);                      /* an array, not a map */
    VARIANT(k, v[0] = 0xa2);                      /* 2 pairs announced, 1 present */
    VARIANT(k, v[1] = 0x78);                      /* a text key */
    VARIANT(k, v[k - 1] = 0x20);                  /* counter -1 */
    VARIANT(k, v[k - 1] = 0xf6);                  /* counter null */
    VARIANT(k + 1, v[k - 1] = 0x18, v[k] = 0x01); /* counter 1 as 18 01: not shortest */
    VARIANT(k + 1, v[0] = 0xbf, v[k] = 0xff);     /* indefinite-length map */
    /* Map head b8 01: not shortest. */
    VARIANT(k + 1, memmove(v + 2, one + 1, k - 1), v[0] = 0xb8, v[1] = 0x01);
    /* Indefinite-length key: a1 5f 58 20 <a> ff 01. */
    VARIANT(k + 2, memmove(v + 2, one + 1, 34), v[1] = 0x5f, v[36] = 0xff, v[37] = 0x01);
#undef VARIANT
    /* A huge count with no bytes behind it; nothing at all. */
    static const uint8_t huge[] = {0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_reject(huge, sizeof(huge), P4P_EMALFORMED);
    expect_reject(huge, 0, P4P_EMALFORMED);

    /* The reader does not move on failure, and moves past exactly one vector on success. */
    cbor_reader_init(&r, one, 3);
    assert_int_equal(vv_decode(&r, &out), P4P_EMALFORMED);
    assert_ptr_equal(r.p, one);
    assert_int_equal(r.err, 0);
    memcpy(v, one, k);
    v[k] = 0xa0; /* a second, empty vector */
    cbor_reader_init(&r, v, k + 1);
    assert_int_equal(vv_decode(&r, &out), 0);
    assert_int_equal(out.count, 1);
    assert_int_equal(vv_decode(&r, &out), 0);
    assert_int_equal(out.count, 0);
    assert_true(cbor_reader_done(&r));
}

/* ---- HLC rules ----------------------------------------------------------------------------- */

#define TICK     HLC_TICK_NS
#define MS       1000000ull
#define TS(l, c) ((uint64_t)(l)*TICK + (c)) /* (l ticks, c), c <= HLC_COUNTER_MAX */

static void test_hlc_layout(void **state)
{
    (void)state;
    uint8_t x[32], y[32];

    assert_int_equal(TICK, 65536);
    assert_true(hlc_make(0x123456789abcdef0ull, 5) == 0x123456789abc0005ull);
    assert_true(hlc_l(0x123456789abc0005ull) == 0x123456789abc0000ull);
    assert_int_equal(hlc_c(0x123456789abc0005ull), 5);
    assert_true(hlc_make(UINT64_MAX, HLC_COUNTER_MAX) == UINT64_MAX);
    /* The packed order is (l, c) lexicographic. */
    assert_true(TS(5, HLC_COUNTER_MAX) < TS(6, 0));
    assert_true(TS(5, 1) < TS(5, 2));

    fill_actor(x, 1);
    fill_actor(y, 2);
    assert_int_equal(hlc_cmp(TS(5, 1), y, TS(5, 2), x), -1);
    assert_int_equal(hlc_cmp(TS(6, 0), x, TS(5, 9), y), 1);
    assert_int_equal(hlc_cmp(TS(5, 1), x, TS(5, 1), y), -1);
    assert_int_equal(hlc_cmp(TS(5, 1), y, TS(5, 1), x), 1);
    assert_int_equal(hlc_cmp(TS(5, 1), x, TS(5, 1), x), 0);
}

static void test_hlc_send_rule(void **state)
{
    (void)state;
    struct hlc h;
    uint64_t ts, prev;

    hlc_init(&h, 100 * MS);
    assert_int_equal(hlc_now(&h, 1000 * TICK + 5, &ts), 0); /* pt ahead: (pt, 0) */
    assert_true(ts == TS(1000, 0));
    assert_int_equal(hlc_now(&h, 1000 * TICK + 900, &ts), 0); /* same tick: c + 1 */
    assert_true(ts == TS(1000, 1));
    assert_int_equal(hlc_now(&h, 1001 * TICK, &ts), 0);
    assert_true(ts == TS(1001, 0));
    /* The physical clock steps back: l holds, c counts, timestamps still increase. */
    prev = ts;
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(hlc_now(&h, 900 * TICK, &ts), 0);
        assert_true(ts > prev);
        assert_true(ts == TS(1001, i));
        prev = ts;
    }
    assert_int_equal(h.counter_peak, 5);
    assert_int_equal(h.exhausted_count, 0);
    assert_int_equal(h.rejected_count, 0);
}

/* The four receive cases of the paper, starting from (l, c) = (10, 3). */
static void test_hlc_recv_rule(void **state)
{
    (void)state;
    static const struct {
        uint64_t m, pt, want;
    } cases[] = {
        {TS(10, 7), 5 * TICK, TS(10, 8)},     /* l == m.l > pt: max(c, m.c) + 1 */
        {TS(10, 1), 5 * TICK, TS(10, 4)},     /* same, local c larger */
        {TS(8, 7), 5 * TICK, TS(10, 4)},      /* l largest: c + 1 */
        {TS(12, 7), 5 * TICK, TS(12, 8)},     /* m.l largest: m.c + 1 */
        {TS(8, 7), 20 * TICK, TS(20, 0)},     /* pt largest: 0 */
        {TS(10, 7), 20 * TICK, TS(20, 0)},    /* pt beats a tie of l and m.l */
        {TS(10, 7), 10 * TICK, TS(10, 8)},    /* all three equal */
        {TS(12, 7), 12 * TICK, TS(12, 8)},    /* m.l == pt > l */
        {TS(8, 7), 10 * TICK + 1, TS(10, 4)}, /* l == pt > m.l */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hlc h;
        uint64_t ts = 0;
        hlc_init(&h, 1000 * TICK);
        h.last = TS(10, 3);
        assert_int_equal(hlc_recv(&h, cases[i].pt, cases[i].m, &ts), 0);
        assert_true(ts == cases[i].want);
        assert_true(h.last == ts);
        assert_true(ts > cases[i].m && ts > TS(10, 3));
    }
}

/* (e), by hand: a timestamp beyond now + max_offset is refused, counted, and changes nothing. */
static void test_hlc_rejects_future(void **state)
{
    (void)state;
    struct hlc h, twin;
    uint64_t now = 1000 * MS, ts, ts_twin, last;

    hlc_init(&h, 100 * MS);
    assert_int_equal(hlc_now(&h, now, &ts), 0);
    twin = h;
    last = h.last;

    /* One tick beyond the horizon, and far beyond. */
    uint64_t beyond = hlc_make(now + 100 * MS + TICK, 0);
    ts = 0;
    assert_int_equal(hlc_recv(&h, now, beyond, &ts), P4P_EINVAL);
    assert_int_equal(ts, 0);
    assert_int_equal(hlc_recv(&h, now, UINT64_MAX, &ts), P4P_EINVAL);
    assert_int_equal(h.rejected_count, 2);
    assert_int_equal(h.exhausted_count, 0);
    assert_true(h.last == last);
    /* The next local event is exactly what it would have been without those messages. */
    assert_int_equal(hlc_now(&h, now + 1, &ts), 0);
    assert_int_equal(hlc_now(&twin, now + 1, &ts_twin), 0);
    assert_true(ts == ts_twin);

    /* Exactly at the horizon is accepted and pulls the clock forward by max_offset. */
    uint64_t edge = hlc_make(now + 100 * MS, 4);
    assert_true(hlc_l(edge) <= now + 100 * MS);
    assert_int_equal(hlc_recv(&h, now, edge, &ts), 0);
    assert_true(ts == edge + 1);
    assert_int_equal(h.rejected_count, 2);

    /* max_offset UINT64_MAX: nothing is too far (the horizon saturates). */
    hlc_init(&h, UINT64_MAX);
    assert_int_equal(hlc_recv(&h, now, TS(1ull << 40, 0), &ts), 0);
    assert_true(ts == TS(1ull << 40, 1));
}

static void test_hlc_counter_exhaustion(void **state)
{
    (void)state;
    struct hlc h, before;
    uint64_t now = 77 * TICK + 123, ts = 0;

    hlc_init(&h, 100 * MS);
    for (uint32_t i = 0; i <= HLC_COUNTER_MAX; i++) {
        assert_int_equal(hlc_now(&h, now, &ts), 0);
        assert_int_equal(hlc_c(ts), i);
    }
    assert_int_equal(h.counter_peak, HLC_COUNTER_MAX);
    before = h;
    assert_int_equal(hlc_now(&h, now, &ts), P4P_EAGAIN);
    assert_int_equal(h.exhausted_count, 1);
    assert_true(h.last == before.last);
    assert_true(hlc_retry_at(&h, 0) == 78 * TICK);
    assert_int_equal(hlc_now(&h, 78 * TICK - 1, &ts), P4P_EAGAIN); /* still the same tick */
    assert_int_equal(h.exhausted_count, 2);
    assert_int_equal(hlc_now(&h, hlc_retry_at(&h, 0), &ts), 0);
    assert_true(ts == TS(78, 0));

    /* Receive: a message carrying the last counter of the current tick. */
    hlc_init(&h, 100 * MS);
    now = 50 * TICK;
    assert_int_equal(hlc_now(&h, now, &ts), 0);
    uint64_t m = TS(50, HLC_COUNTER_MAX);
    assert_int_equal(hlc_recv(&h, now, m, &ts), P4P_EAGAIN);
    assert_int_equal(h.exhausted_count, 1);
    assert_true(h.last == TS(50, 0));
    /* Ahead of us (within max_offset): wait until pt passes m.l. */
    m = TS(60, HLC_COUNTER_MAX);
    assert_int_equal(hlc_recv(&h, now, m, &ts), P4P_EAGAIN);
    assert_true(hlc_retry_at(&h, m) == 61 * TICK);
    assert_int_equal(hlc_recv(&h, hlc_retry_at(&h, m), m, &ts), 0);
    assert_true(ts == TS(61, 0));
    assert_int_equal(h.exhausted_count, 2);

    /* Saturation at the end of time. */
    h.last = UINT64_MAX;
    assert_true(hlc_retry_at(&h, 0) == UINT64_MAX);
    assert_int_equal(hlc_now(&h, UINT64_MAX, &ts), P4P_EAGAIN);
}

/* ---- Simulation ---------------------------------------------------------------------------- */

#define SIM_NODES_MAX  9 /* honest nodes + one rogue */
#define SIM_MSGS_MAX   512
#define SIM_BASE_NS    1000000000ull /* every clock starts above 1 s */
#define SIM_EVENTS_MAX 2500

struct sim_params {
    uint64_t seed;
    int nodes; /* honest nodes */
    int rogue; /* one more node, clock rogue_ahead_ns ahead, sends only */
    uint64_t rogue_ahead_ns;
    uint64_t skew_ns;  /* offsets uniform in [0, skew_ns] */
    int64_t drift_ppm; /* drifts uniform in [-drift_ppm, +drift_ppm] */
    uint64_t max_offset_ns;
    uint64_t gap_min_ns, gap_max_ns;     /* between a node's own actions */
    uint64_t delay_min_ns, delay_max_ns; /* message delay */
    uint32_t events;                     /* stop after this many recorded events */
};

struct sim_node {
    int64_t offset_ns, drift_ppm;
    uint8_t actor[32];
    struct hlc hlc;
    struct lamport lam;
    struct vv vv;
    uint64_t next_ns; /* true time of the next own action */
    int last_event;   /* -1 before the first */
};

struct sim_event {
    int node, prev, send; /* prev: same node's previous event; send: for a receive */
    uint64_t t_ns, pt_ns, hlc, lam;
};

struct sim_msg {
    uint64_t at_ns, hlc, lam;
    int to, send; /* send event, -1 from the rogue */
};

struct sim_stats {
    uint32_t events, recvs, hb_pairs, concurrent_pairs;
    uint32_t c_max, ahead_events; /* events with l > pt (pulled forward by a message) */
    uint64_t l_minus_pt_max, eps_max;
    uint32_t rogue_sent, rogue_rejected, honest_rejected;
    uint64_t hash;
};

struct sim {
    struct sim_params p;
    struct rng rng;
    struct sim_node node[SIM_NODES_MAX];
    struct sim_msg msg[SIM_MSGS_MAX];
    int msg_count;
    struct sim_event *ev;
    struct vv *ev_vv;
    uint32_t ev_count;
    struct sim_stats st;
};

static uint64_t sim_pt(const struct sim_node *n, uint64_t t)
{
    /* Truncating division keeps pt monotone for |drift| < 1e6 ppm (see the report). */
    return SIM_BASE_NS + (uint64_t)n->offset_ns + t +
           (uint64_t)((int64_t)t * n->drift_ppm / 1000000);
}

/* The largest honest clock reading at true time t. */
static uint64_t sim_pt_max(const struct sim *s, uint64_t t)
{
    uint64_t m = 0;
    for (int j = 0; j < s->p.nodes; j++) {
        uint64_t pt = sim_pt(&s->node[j], t);
        m = pt > m ? pt : m;
    }
    return m;
}

/* Appends an event of node i at time t and checks the per-event properties (a) and (c). */
static void sim_record(struct sim *s, int i, uint64_t t, uint64_t pt, uint64_t ts, uint64_t lam,
                       int send)
{
    struct sim_node *n = &s->node[i];
    struct sim_event *e = &s->ev[s->ev_count];

    *e = (struct sim_event){.node = i,
                            .prev = n->last_event,
                            .send = send,
                            .t_ns = t,
                            .pt_ns = pt,
                            .hlc = ts,
                            .lam = lam};
    s->ev_vv[s->ev_count] = n->vv;
    /* (a) strictly increasing per node. */
    if (n->last_event >= 0) {
        assert_true(ts > s->ev[n->last_event].hlc);
        assert_true(lam > s->ev[n->last_event].lam);
    }
    /* (c) pt (to the tick) <= l <= the largest clock now; l - pt <= max_offset. */
    uint64_t l = hlc_l(ts), top = sim_pt_max(s, t);
    assert_true(l >= hlc_l(pt));
    assert_true(l <= top);
    if (l > pt) {
        assert_true(l - pt <= s->p.max_offset_ns);
        s->st.l_minus_pt_max = l - pt > s->st.l_minus_pt_max ? l - pt : s->st.l_minus_pt_max;
    }
    if (l > hlc_l(pt)) {
        s->st.ahead_events++;
    }
    s->st.c_max = hlc_c(ts) > s->st.c_max ? hlc_c(ts) : s->st.c_max;
    s->st.hash = (s->st.hash ^ ts) * 0x100000001b3ull;
    n->last_event = (int)s->ev_count++;
}

static void sim_deliver(struct sim *s, const struct sim_msg *m, uint64_t t)
{
    struct sim_node *n = &s->node[m->to];
    uint64_t pt = sim_pt(n, t), ts = 0, lam;
    struct hlc before = n->hlc;
    int rc = hlc_recv(&n->hlc, pt, m->hlc, &ts);

    if (rc == P4P_EINVAL) {
        /* (e) refused only when too far ahead; counted; the clock is untouched. */
        assert_true(hlc_l(m->hlc) > pt + s->p.max_offset_ns);
        assert_true(n->hlc.last == before.last);
        assert_true(n->hlc.rejected_count == before.rejected_count + 1);
        if (m->send < 0) {
            s->st.rogue_rejected++;
        } else {
            s->st.honest_rejected++;
        }
        return;
    }
    assert_int_equal(rc, 0);
    assert_true(hlc_l(m->hlc) <= pt + s->p.max_offset_ns);
    assert_true(m->send >= 0); /* the rogue is always far beyond max_offset */
    assert_true(ts > m->hlc);
    assert_int_equal(lamport_recv(&n->lam, m->lam, &lam), 0);
    assert_int_equal(vv_merge(&n->vv, &s->ev_vv[m->send]), 0);
    assert_int_equal(vv_increment(&n->vv, n->actor, NULL), 0);
    s->st.recvs++;
    sim_record(s, m->to, t, pt, ts, lam, m->send);
}

static void sim_send(struct sim *s, int from, uint64_t t, uint64_t ts, uint64_t lam, int send)
{
    struct sim_msg *m;
    if (s->msg_count == SIM_MSGS_MAX) {
        return; /* the network is full; the send event still happened */
    }
    m = &s->msg[s->msg_count++];
    if (from < s->p.nodes) {
        m->to = (int)rng_range(&s->rng, 0, (uint64_t)s->p.nodes - 2);
        m->to += m->to >= from; /* anyone but the sender */
    } else {
        m->to = (int)rng_range(&s->rng, 0, (uint64_t)s->p.nodes - 1); /* the rogue: anyone */
    }
    m->at_ns = t + rng_range(&s->rng, s->p.delay_min_ns, s->p.delay_max_ns);
    m->hlc = ts;
    m->lam = lam;
    m->send = send;
}

static void sim_act(struct sim *s, int i, uint64_t t)
{
    struct sim_node *n = &s->node[i];
    uint64_t pt = sim_pt(n, t), ts, lam;
    int is_send = rng_range(&s->rng, 0, 2) != 0;

    assert_int_equal(hlc_now(&n->hlc, pt, &ts), 0);
    n->next_ns = t + rng_range(&s->rng, s->p.gap_min_ns, s->p.gap_max_ns);
    if (i == s->p.nodes) { /* the rogue only sends */
        s->st.rogue_sent++;
        sim_send(s, i, t, ts, 0, -1);
        return;
    }
    assert_int_equal(lamport_tick(&n->lam, &lam), 0);
    assert_int_equal(vv_increment(&n->vv, n->actor, NULL), 0);
    sim_record(s, i, t, pt, ts, lam, -1);
    if (is_send) {
        sim_send(s, i, t, ts, lam, (int)s->ev_count - 1);
    }
}

/* One step: the earliest of all node actions and deliveries (ties: lowest index, nodes first). */
static void sim_step(struct sim *s)
{
    int total = s->p.nodes + (s->p.rogue ? 1 : 0), who = 0, msg = -1;
    uint64_t best = UINT64_MAX;

    for (int i = 0; i < total; i++) {
        if (s->node[i].next_ns < best) {
            best = s->node[i].next_ns, who = i;
        }
    }
    for (int k = 0; k < s->msg_count; k++) {
        if (s->msg[k].at_ns < best) {
            best = s->msg[k].at_ns, msg = k;
        }
    }
    if (msg >= 0) {
        struct sim_msg m = s->msg[msg];
        s->msg[msg] = s->msg[--s->msg_count];
        sim_deliver(s, &m, best);
    } else {
        sim_act(s, who, best);
    }
}

/* All-pairs checks (b) and (d) against happened-before from ancestor bitsets. */
static void sim_check_pairs(struct sim *s)
{
    uint32_t e_count = s->ev_count, words = (e_count + 63) / 64;
    uint64_t *anc = calloc((size_t)e_count * words, sizeof(uint64_t));
    assert_non_null(anc);

    /* Events are recorded in true-time order and a receive comes after its send, so every
     * edge goes from a lower index to a higher one. */
    for (uint32_t f = 0; f < e_count; f++) {
        uint64_t *row = anc + (size_t)f * words;
        int parents[2] = {s->ev[f].prev, s->ev[f].send};
        for (int k = 0; k < 2; k++) {
            if (parents[k] < 0) {
                continue;
            }
            uint32_t g = (uint32_t)parents[k];
            assert_true(g < f);
            const uint64_t *prow = anc + (size_t)g * words;
            for (uint32_t w = 0; w < words; w++) {
                row[w] |= prow[w];
            }
            row[g / 64] |= 1ull << (g % 64);
        }
    }
    for (uint32_t f = 0; f < e_count; f++) {
        const uint64_t *row = anc + (size_t)f * words;
        const struct sim_event *ef = &s->ev[f];
        uint32_t same_l = 0;
        assert_int_equal(vv_compare(&s->ev_vv[f], &s->ev_vv[f]), VV_EQUAL);
        for (uint32_t e = 0; e < f; e++) {
            const struct sim_event *ee = &s->ev[e];
            int hb = (row[e / 64] >> (e % 64)) & 1;
            if (hb) {
                /* (b) causality implies order, for all three clocks. */
                assert_true(ee->hlc < ef->hlc);
                assert_true(ee->lam < ef->lam);
                assert_int_equal(vv_compare(&s->ev_vv[e], &s->ev_vv[f]), VV_BEFORE);
                assert_int_equal(vv_compare(&s->ev_vv[f], &s->ev_vv[e]), VV_AFTER);
                same_l += hlc_l(ee->hlc) == hlc_l(ef->hlc);
                s->st.hb_pairs++;
            } else {
                /* Version vectors also get the converse right. */
                assert_int_equal(vv_compare(&s->ev_vv[e], &s->ev_vv[f]), VV_CONCURRENT);
                s->st.concurrent_pairs++;
            }
            assert_true(
                hlc_cmp(ee->hlc, s->node[ee->node].actor, ef->hlc, s->node[ef->node].actor) != 0);
        }
        /* (d) c.f <= |{g hb f : l.g = l.f}|. */
        assert_true(hlc_c(ef->hlc) <= same_l);
    }
    free(anc);
}

static struct sim_stats sim_run(const struct sim_params *p)
{
    struct sim *s = calloc(1, sizeof(*s));
    struct sim_stats st;
    uint64_t t_end;

    assert_non_null(s);
    assert_true(p->nodes >= 2 && p->nodes + 1 <= SIM_NODES_MAX && p->events <= SIM_EVENTS_MAX);
    s->p = *p;
    s->rng.s = p->seed;
    s->ev = calloc(p->events, sizeof(*s->ev));
    s->ev_vv = calloc(p->events, sizeof(*s->ev_vv));
    assert_non_null(s->ev);
    assert_non_null(s->ev_vv);
    for (int i = 0; i < p->nodes + 1; i++) {
        struct sim_node *n = &s->node[i];
        n->offset_ns = (int64_t)rng_range(&s->rng, 0, p->skew_ns);
        n->drift_ppm = (int64_t)rng_range(&s->rng, 0, 2 * (uint64_t)p->drift_ppm) - p->drift_ppm;
        if (i == p->nodes) {
            n->offset_ns = (int64_t)(p->skew_ns + p->rogue_ahead_ns);
        }
        for (int k = 0; k < 32; k++) {
            n->actor[k] = (uint8_t)rng_next(&s->rng);
        }
        hlc_init(&n->hlc, p->max_offset_ns);
        vv_init(&n->vv);
        n->next_ns = rng_range(&s->rng, 0, p->gap_max_ns);
        n->last_event = -1;
    }
    while (s->ev_count < p->events) {
        sim_step(s);
    }
    t_end = s->ev[s->ev_count - 1].t_ns;

    /* The skew eps: pairwise differences are linear in t, so the extremes are at 0 and t_end
     * (to within the rounding of the drift term, 1 ns each way). */
    for (int i = 0; i < p->nodes; i++) {
        for (int j = 0; j < p->nodes; j++) {
            uint64_t ends[2] = {0, t_end};
            for (int k = 0; k < 2; k++) {
                uint64_t a = sim_pt(&s->node[i], ends[k]), b = sim_pt(&s->node[j], ends[k]);
                if (a > b && a - b + 2 > s->st.eps_max) {
                    s->st.eps_max = a - b + 2;
                }
            }
        }
    }
    /* (c), globally: l - pt <= eps (the paper's bound) — the per-event check above is the
     * instantaneous form of the same thing. */
    assert_true(s->st.l_minus_pt_max <= s->st.eps_max);

    sim_check_pairs(s);
    s->st.events = s->ev_count;
    /* The clocks' own statistics agree with what the harness saw. */
    uint32_t peak = 0;
    uint64_t rejected = 0;
    for (int i = 0; i < p->nodes; i++) {
        peak = s->node[i].hlc.counter_peak > peak ? s->node[i].hlc.counter_peak : peak;
        rejected += s->node[i].hlc.rejected_count;
        assert_int_equal(s->node[i].hlc.exhausted_count, 0);
    }
    assert_int_equal(peak, s->st.c_max);
    assert_int_equal(rejected, s->st.rogue_rejected + s->st.honest_rejected);
    st = s->st;
    print_message("sim seed %llu: %u events, %u receives, %u hb / %u concurrent pairs, c max %u, "
                  "%u events ahead of pt, l-pt max %llu ns <= eps %llu ns, rogue %u sent %u "
                  "rejected, honest rejected %u\n",
                  (unsigned long long)p->seed, st.events, st.recvs, st.hb_pairs,
                  st.concurrent_pairs, st.c_max, st.ahead_events,
                  (unsigned long long)st.l_minus_pt_max, (unsigned long long)st.eps_max,
                  st.rogue_sent, st.rogue_rejected, st.honest_rejected);
    free(s->ev);
    free(s->ev_vv);
    free(s);
    return st;
}

/* Five nodes, 20 ms of skew, +-200 ppm drift, a rogue 10 s ahead. */
static const struct sim_params base_params = {
    .seed = 1,
    .nodes = 5,
    .rogue = 1,
    .rogue_ahead_ns = 10000 * MS,
    .skew_ns = 20 * MS,
    .drift_ppm = 200,
    .max_offset_ns = 50 * MS,
    .gap_min_ns = 1000,
    .gap_max_ns = 2 * MS,
    .delay_min_ns = 50000,
    .delay_max_ns = 10 * MS,
    .events = 2000,
};

static void check_exercised(const struct sim_stats *st, const struct sim_params *p)
{
    assert_true(st->recvs > st->events / 4);
    assert_true(st->hb_pairs > 1000 && st->concurrent_pairs > 1000);
    assert_true(st->ahead_events > 10); /* messages did pull clocks ahead of pt */
    assert_true(st->c_max >= 2);
    if (p->rogue) {
        /* (e) every rogue message that arrived was refused (some may still be in flight). */
        assert_true(st->rogue_rejected > 10);
        assert_true(st->rogue_rejected <= st->rogue_sent);
    }
}

static void test_sim_skew_drift(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct sim_params p = base_params;
        p.seed = seed;
        p.nodes = 3 + (int)seed; /* 4..7 nodes */
        struct sim_stats st = sim_run(&p);
        check_exercised(&st, &p);
        assert_int_equal(st.honest_rejected, 0); /* max_offset > skew: honest never refused */
    }
}

/* Bursts of events within one tick and short delays: the counter carries the order. */
static void test_sim_bursty(void **state)
{
    (void)state;
    struct sim_params p = base_params;
    p.seed = 99;
    p.nodes = 8;
    p.skew_ns = 2 * MS;
    p.drift_ppm = 50;
    p.max_offset_ns = 10 * MS;
    p.gap_min_ns = 1000;
    p.gap_max_ns = 100000;
    p.delay_min_ns = 10000;
    p.delay_max_ns = 500000;
    p.events = SIM_EVENTS_MAX;
    struct sim_stats st = sim_run(&p);
    check_exercised(&st, &p);
    assert_true(st.c_max >= 5);
    assert_int_equal(st.honest_rejected, 0);
}

/* max_offset below the honest skew: some honest messages are refused too, and l - pt stays
 * within max_offset as well as within eps. */
static void test_sim_tight_offset(void **state)
{
    (void)state;
    struct sim_params p = base_params;
    p.seed = 7;
    p.nodes = 4;
    p.skew_ns = 40 * MS;
    p.max_offset_ns = 5 * MS;
    struct sim_stats st = sim_run(&p);
    check_exercised(&st, &p);
    assert_true(st.honest_rejected > 0);
    assert_true(st.l_minus_pt_max <= p.max_offset_ns);
}

static void test_sim_deterministic(void **state)
{
    (void)state;
    struct sim_params p = base_params;
    struct sim_stats a = sim_run(&p), b = sim_run(&p);
    assert_true(a.hash == b.hash);
    assert_int_equal(a.hb_pairs, b.hb_pairs);
    p.seed = 2;
    b = sim_run(&p);
    assert_true(a.hash != b.hash);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lamport_rules),
        cmocka_unit_test(test_vv_basics),
        cmocka_unit_test(test_vv_bounds),
        cmocka_unit_test(test_vv_laws),
        cmocka_unit_test(test_vv_encoding),
        cmocka_unit_test(test_vv_decode_rejects_maps),
        cmocka_unit_test(test_vv_decode_rejects_bytes),
        cmocka_unit_test(test_hlc_layout),
        cmocka_unit_test(test_hlc_send_rule),
        cmocka_unit_test(test_hlc_recv_rule),
        cmocka_unit_test(test_hlc_rejects_future),
        cmocka_unit_test(test_hlc_counter_exhaustion),
        cmocka_unit_test(test_sim_skew_drift),
        cmocka_unit_test(test_sim_bursty),
        cmocka_unit_test(test_sim_tight_offset),
        cmocka_unit_test(test_sim_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
