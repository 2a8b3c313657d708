/*
 * test_riblt.c — unit tests for engine/riblt.{h,c}, rateless IBLT set reconciliation.
 *
 * Reference vectors come from the authors' Go implementation (github.com/yangl1996/riblt:
 * mapping.go, symbol.go, encoder.go and decoder.go copied into a Go 1.19 program, with a
 * SipHash-2-4 that matches the SipHash paper's vector standing in for github.com/dchest/siphash,
 * which its examples use): the first indices of its mapping generator, the README example
 * (example_test.go: {1..10} against {1,3..11} as 8-byte items under the key (123, 456) takes 2
 * coded symbols; here also their exact checksums), the exact number of symbols it needs for
 * fixed 32-byte cases, and codec_test.go's TestEncodeAndDecode (64-byte items, 200,000
 * differences: 271,166 symbols). The same numbers here mean the same mapping, bit for bit.
 * Then: mean overhead over 40 trials with 1,000 differences within [1.3, 1.45]; every trial
 * with 1 or 10 differences decodes, both directions exactly; malformed and hostile input
 * rejected without damage; every memory bound enforced. Items are ChaCha20 key stream under a
 * fixed key, so every run is the same.
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

#include "p4p/p4p.h"
#include "riblt.h"

/* ---- Helpers ------------------------------------------------------------------------------- */

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++) {
        p[k] = (uint8_t)(v >> (8 * k));
    }
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) {
        v = (v << 8) | p[k];
    }
    return v;
}

/* A config whose key is LE64(k0) || LE64(k1), dchest/siphash's Hash(k0, k1, .) key. */
static struct riblt_config config(uint32_t item_len, uint64_t k0, uint64_t k1, uint32_t item_max,
                                  uint32_t symbol_max)
{
    struct riblt_config c = {.item_len = item_len, .item_max = item_max, .symbol_max = symbol_max};
    put_le64(c.key, k0);
    put_le64(c.key + 8, k1);
    return c;
}

/* n pseudo-random items of len bytes, deterministic in seed. */
static uint8_t *random_items(size_t n, uint32_t len, uint64_t seed)
{
    uint8_t key[crypto_stream_chacha20_KEYBYTES] = {0};
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    put_le64(key, seed);
    uint8_t *p = malloc(n * len + 1);
    assert_non_null(p);
    crypto_stream_chacha20(p, n * len, nonce, key);
    return p;
}

struct run {
    uint64_t symbols;
    int done;
};

/* Streams single symbols from e into d until d is done or limit is reached. */
static struct run stream(riblt_enc *e, riblt_dec *d, uint64_t limit)
{
    struct run r = {0, 0};
    struct riblt_symbol s;
    while (r.symbols < limit) {
        assert_int_equal(riblt_enc_next(e, &s), 0);
        r.symbols++;
        int rc = riblt_dec_add_symbol(d, &s);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1) {
            r.done = 1;
            break;
        }
    }
    return r;
}

/* qsort has no context argument; the item length for cmp_sort (set just before sorting). */
static uint32_t g_sort_len;
static int cmp_sort(const void *a, const void *b)
{
    return memcmp(a, b, g_sort_len);
}

/* Checks that the decoded list (count, get) is exactly want[0..n) as a set. */
static void assert_same_set(const riblt_dec *d, int remote, const uint8_t *want, uint32_t n,
                            uint32_t len)
{
    uint32_t got_n = remote ? riblt_dec_remote_count(d) : riblt_dec_local_count(d);
    assert_int_equal(got_n, n);
    if (n == 0) {
        return;
    }
    uint8_t *a = malloc((size_t)n * len);
    uint8_t *b = malloc((size_t)n * len);
    assert_non_null(a);
    assert_non_null(b);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *it = remote ? riblt_dec_remote_item(d, i) : riblt_dec_local_item(d, i);
        assert_non_null(it);
        memcpy(a + (size_t)i * len, it, len);
    }
    memcpy(b, want, (size_t)n * len);
    g_sort_len = len;
    qsort(a, n, len, cmp_sort);
    qsort(b, n, len, cmp_sort);
    assert_memory_equal(a, b, (size_t)n * len);
    free(a);
    free(b);
}

/* Builds an encoder over common + only_a and a decoder over common + only_b. */
static void build(const struct riblt_config *cfg, const uint8_t *common, uint32_t nc,
                  const uint8_t *only_a, uint32_t na, const uint8_t *only_b, uint32_t nb,
                  riblt_enc **e, riblt_dec **d)
{
    uint32_t L = cfg->item_len;
    assert_int_equal(riblt_enc_create(e, cfg), 0);
    assert_int_equal(riblt_dec_create(d, cfg), 0);
    for (uint32_t i = 0; i < nc; i++) {
        assert_int_equal(riblt_enc_add(*e, common + (size_t)i * L), 0);
        assert_int_equal(riblt_dec_add_local(*d, common + (size_t)i * L), 0);
    }
    for (uint32_t i = 0; i < na; i++) {
        assert_int_equal(riblt_enc_add(*e, only_a + (size_t)i * L), 0);
    }
    for (uint32_t i = 0; i < nb; i++) {
        assert_int_equal(riblt_dec_add_local(*d, only_b + (size_t)i * L), 0);
    }
}

/* ---- (a) The reference implementation ------------------------------------------------------ */

static void test_siphash_vector(void **state)
{
    (void)state;
    /* SipHash-2-4 paper, Appendix A: key 00..0f, message 00..0e -> a129ca6149be45e5. */
    struct riblt_config c = config(15, 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, 1, 1);
    uint8_t msg[15];
    for (int i = 0; i < 15; i++) {
        msg[i] = (uint8_t)i;
    }
    assert_true(riblt_hash(&c, msg) == 0xa129ca6149be45e5ull);
}

static void test_mapping_reference(void **state)
{
    (void)state;
    /* mapping_test.go seeds randomMapping{123456789, 0}; the reference prints these. */
    static const uint64_t want[] = {1, 2, 6, 8, 13, 30, 39, 43, 58, 133, 208, 338};
    uint64_t st = 123456789, idx = 0;
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        idx = riblt_mapping_next(&st, idx);
        assert_true(idx == want[k]);
    }
    /* The first step by hand: r = 123456789 * 0xda942042e4dd58b5 mod 2^64, then
     * ceil(1.5 * (2^32 / sqrt(r + 1) - 1)) with r ~ 1.0e19: 1.5 * 0.35 -> 1. */
    uint64_t r = 123456789ull * 0xda942042e4dd58b5ull;
    st = 123456789;
    assert_true(riblt_mapping_next(&st, 0) == 1);
    assert_true(st == r);

    /* The README item 2 under key (123, 456). */
    struct riblt_config c = config(8, 123, 456, 1, 1);
    uint8_t item[8];
    put_le64(item, 2);
    uint64_t h = riblt_hash(&c, item);
    assert_true(h == 0x97f782e3d8f63f8cull);
    static const uint64_t want2[] = {3, 7, 8, 12, 19, 22, 75, 115};
    st = h;
    idx = 0;
    for (size_t k = 0; k < sizeof(want2) / sizeof(want2[0]); k++) {
        idx = riblt_mapping_next(&st, idx);
        assert_true(idx == want2[k]);
    }
    /* A zero state never moves the generator (r stays 0): the step from 0 is
     * ceil(1.5 * (2^32 - 1)); the next one passes 2^64 and saturates. */
    st = 0;
    assert_true(riblt_mapping_next(&st, 0) == 6442450943ull);
    assert_true(riblt_mapping_next(&st, 6442450943ull) == UINT64_MAX);
    assert_true(riblt_mapping_next(&st, UINT64_MAX) == UINT64_MAX);
}

static void test_readme_example(void **state)
{
    (void)state;
    struct riblt_config c = config(8, 123, 456, 16, 16);
    riblt_enc *e;
    riblt_dec *d;
    assert_int_equal(riblt_enc_create(&e, &c), 0);
    assert_int_equal(riblt_dec_create(&d, &c), 0);
    uint8_t item[8];
    for (uint64_t v = 1; v <= 10; v++) {
        put_le64(item, v);
        assert_int_equal(riblt_enc_add(e, item), 0);
        put_le64(item, v == 2 ? 11 : v);
        assert_int_equal(riblt_dec_add_local(d, item), 0);
    }
    /* The reference's first two symbols, exactly. */
    static const uint64_t want_ck[] = {0x5905a501ee00b861ull, 0x1b06164669556a85ull};
    static const int64_t want_count[] = {10, 6};
    struct riblt_symbol s;
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(rc, 0);
        assert_int_equal(riblt_enc_next(e, &s), 0);
        assert_true(get_le64(s.sum) == 11);
        assert_true(s.checksum == want_ck[k]);
        assert_true(s.count == want_count[k]);
        rc = riblt_dec_add_symbol(d, &s);
    }
    /* "2 is exclusive to Alice / 11 is exclusive to Bob / 2 coded symbols sent" */
    assert_int_equal(rc, 1);
    assert_int_equal(riblt_dec_received(d), 2);
    assert_int_equal(riblt_dec_remote_count(d), 1);
    assert_int_equal(riblt_dec_local_count(d), 1);
    assert_true(get_le64(riblt_dec_remote_item(d, 0)) == 2);
    assert_true(get_le64(riblt_dec_local_item(d, 0)) == 11);
    riblt_enc_free(e);
    riblt_dec_free(d);
}

/* 32-byte item i of the fixed cases: LE64(i), zeros, 0xa5 in the last byte. */
static void item32(uint8_t out[32], uint64_t i)
{
    memset(out, 0, 32);
    put_le64(out, i);
    out[31] = 0xa5;
}

static void test_reference_symbol_counts(void **state)
{
    (void)state;
    /* common ids [0, nc), remote-only [1e6, 1e6 + na), local-only [2e6, 2e6 + nb); key
     * 00..0f. The reference needs exactly `symbols` coded symbols for each. */
    static const struct {
        uint32_t nc, na, nb;
        uint64_t symbols;
    } cases[] = {
        {1000, 0, 0, 1},     {1000, 1, 0, 1},         {1000, 0, 1, 1},        {1000, 5, 5, 12},
        {1000, 50, 50, 142}, {10000, 500, 500, 1369}, {10000, 1000, 0, 1359},
    };
    /* And the reference's first symbols of the (1000, 5, 5) case. */
    static const uint64_t sum0[] = {0xf4244, 0xf42ae, 0xf4223, 0x3c};
    static const uint64_t ck[] = {0xb2e928545a123edaull, 0x9b4c14201aa8f582ull,
                                  0xb739e82981da25a7ull, 0x8afd2de9095662b8ull};
    static const int64_t cnt[] = {1005, 644, 486, 381};
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        struct riblt_config c =
            config(32, 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, 20000, 100000);
        riblt_enc *e;
        riblt_dec *d;
        assert_int_equal(riblt_enc_create(&e, &c), 0);
        assert_int_equal(riblt_dec_create(&d, &c), 0);
        uint8_t it[32];
        for (uint32_t i = 0; i < cases[t].nc; i++) {
            item32(it, i);
            assert_int_equal(riblt_enc_add(e, it), 0);
            assert_int_equal(riblt_dec_add_local(d, it), 0);
        }
        for (uint32_t i = 0; i < cases[t].na; i++) {
            item32(it, 1000000 + i);
            assert_int_equal(riblt_enc_add(e, it), 0);
        }
        for (uint32_t i = 0; i < cases[t].nb; i++) {
            item32(it, 2000000 + i);
            assert_int_equal(riblt_dec_add_local(d, it), 0);
        }
        struct riblt_symbol s;
        uint64_t n = 0;
        int rc = 0;
        while (rc == 0 && n < 100000) {
            assert_int_equal(riblt_enc_next(e, &s), 0);
            if (cases[t].na == 5 && n < 4) {
                assert_true(get_le64(s.sum) == sum0[n]);
                assert_true(s.checksum == ck[n]);
                assert_true(s.count == cnt[n]);
            }
            n++;
            rc = riblt_dec_add_symbol(d, &s);
        }
        assert_int_equal(rc, 1);
        assert_int_equal(n, cases[t].symbols);
        assert_int_equal(riblt_dec_remote_count(d), cases[t].na);
        assert_int_equal(riblt_dec_local_count(d), cases[t].nb);
        riblt_enc_free(e);
        riblt_dec_free(d);
    }
}

static void test_reference_codec_test(void **state)
{
    (void)state;
    /* codec_test.go TestEncodeAndDecode: 64-byte symbols LE64(id) then zeros, key (567, 890);
     * ids 0..99,999 only the decoder's, 100,000..199,999 only the encoder's, 200,000..399,999
     * both. The reference stops after 271,166 coded symbols. */
    struct riblt_config c = config(64, 567, 890, 300000, 400000);
    riblt_enc *e;
    riblt_dec *d;
    assert_int_equal(riblt_enc_create(&e, &c), 0);
    assert_int_equal(riblt_dec_create(&d, &c), 0);
    uint8_t it[64] = {0};
    for (uint64_t id = 0; id < 400000; id++) {
        put_le64(it, id);
        if (id < 100000 || id >= 200000) {
            assert_int_equal(riblt_dec_add_local(d, it), 0);
        }
        if (id >= 100000) {
            assert_int_equal(riblt_enc_add(e, it), 0);
        }
    }
    struct run r = stream(e, d, 400000);
    assert_true(r.done);
    assert_int_equal(r.symbols, 271166);
    assert_int_equal(riblt_dec_remote_count(d), 100000);
    assert_int_equal(riblt_dec_local_count(d), 100000);
    /* Spot-check the decoded ids: remote ones in [100000, 200000), local ones below 100000. */
    for (uint32_t i = 0; i < 100000; i += 997) {
        uint64_t rid = get_le64(riblt_dec_remote_item(d, i));
        uint64_t lid = get_le64(riblt_dec_local_item(d, i));
        assert_true(rid >= 100000 && rid < 200000);
        assert_true(lid < 100000);
    }
    riblt_enc_free(e);
    riblt_dec_free(d);
}

/* ---- (b, c) Overhead and exact decoding ---------------------------------------------------- */

/* One trial: nc common items, na only the encoder's, nb only the decoder's; checks both
 * decoded lists exactly and returns the number of symbols needed. */
static uint64_t trial(uint32_t item_len, uint32_t nc, uint32_t na, uint32_t nb, uint64_t seed)
{
    struct riblt_config c = config(item_len, seed, ~seed, nc + na + nb, 1 << 20);
    uint8_t *items = random_items((size_t)nc + na + nb, item_len, seed);
    const uint8_t *common = items;
    const uint8_t *only_a = items + (size_t)nc * item_len;
    const uint8_t *only_b = only_a + (size_t)na * item_len;
    riblt_enc *e;
    riblt_dec *d;
    build(&c, common, nc, only_a, na, only_b, nb, &e, &d);
    struct run r = stream(e, d, 1 << 20);
    assert_true(r.done);
    assert_true(riblt_dec_is_done(d));
    assert_same_set(d, 1, only_a, na, item_len);
    assert_same_set(d, 0, only_b, nb, item_len);
    riblt_enc_free(e);
    riblt_dec_free(d);
    free(items);
    return r.symbols;
}

static void test_overhead_1000(void **state)
{
    (void)state;
    enum { TRIALS = 40, D = 1000 };
    uint64_t total = 0;
    for (uint64_t t = 0; t < TRIALS; t++) {
        /* Half and half, as the reference's benchmarks split them. */
        total += trial(32, 2000, D / 2, D / 2, 1000 + t);
    }
    double mean = (double)total / (double)(TRIALS * D);
    print_message("mean overhead, %d trials of d = %d: %.4f\n", TRIALS, D, mean);
    assert_true(mean >= 1.30 && mean <= 1.45);
}

static void test_small_differences(void **state)
{
    (void)state;
    /* d = 1 is always one symbol: symbol 0 holds every item, so it holds the one difference
     * alone. d = 10 always decodes; its mean overhead is above the asymptote. */
    for (uint64_t t = 0; t < 100; t++) {
        int only_remote = (t & 1) == 0;
        assert_int_equal(trial(32, 500, only_remote, !only_remote, 5000 + t), 1);
    }
    uint64_t total = 0;
    for (uint64_t t = 0; t < 200; t++) {
        uint32_t na = (uint32_t)(t % 11);
        total += trial(32, 500, na, 10 - na, 7000 + t);
    }
    double mean = (double)total / (200.0 * 10);
    print_message("mean overhead, 200 trials of d = 10: %.4f\n", mean);
    assert_true(mean >= 1.0 && mean <= 3.0);
}

static void test_equal_sets(void **state)
{
    (void)state;
    /* Equal sets: the first symbol reduces to zero and confirms it. */
    for (uint64_t t = 0; t < 20; t++) {
        assert_int_equal(trial(32, 1000, 0, 0, 9000 + t), 1);
    }
    assert_int_equal(trial(32, 0, 0, 0, 9100), 1); /* even two empty sets */
}

static void test_both_directions(void **state)
{
    (void)state;
    /* Only the encoder has extras, only the decoder has, both; disjoint sets; empty sides;
     * and 40-byte items (id || timestamp). trial() checks both lists exactly. */
    assert_true(trial(32, 3000, 300, 0, 1) >= 300);
    assert_true(trial(32, 3000, 0, 300, 2) >= 300);
    assert_true(trial(32, 3000, 123, 77, 3) >= 200);
    assert_true(trial(32, 0, 400, 600, 4) >= 1000);
    assert_true(trial(32, 0, 0, 50, 5) >= 50);
    assert_true(trial(32, 0, 50, 0, 6) >= 50);
    assert_true(trial(40, 1000, 60, 40, 7) >= 100);
}

static void test_id_and_timestamp(void **state)
{
    (void)state;
    /* The same id with a different timestamp is a different item: both sides learn it. */
    struct riblt_config c = config(40, 1, 2, 16, 64);
    uint8_t a[40], b[40];
    memset(a, 0x11, 32);
    memcpy(b, a, 32);
    memset(a + 32, 0, 8);
    memset(b + 32, 0, 8);
    a[39] = 5; /* big-endian 5 */
    b[39] = 6;
    riblt_enc *e;
    riblt_dec *d;
    build(&c, NULL, 0, a, 1, b, 1, &e, &d);
    struct run r = stream(e, d, 64);
    assert_true(r.done);
    assert_same_set(d, 1, a, 1, 40);
    assert_same_set(d, 0, b, 1, 40);
    riblt_enc_free(e);
    riblt_dec_free(d);
}

/* ---- Wire ---------------------------------------------------------------------------------- */

static void test_batches(void **state)
{
    (void)state;
    enum { NC = 5000, NA = 400, NB = 100, BATCH = 50 };
    struct riblt_config c = config(32, 77, 88, NC + NA + NB, 4096);
    uint8_t *items = random_items(NC + NA + NB, 32, 42);
    riblt_enc *e, *e2;
    riblt_dec *d;
    build(&c, items, NC, items + NC * 32, NA, items + (NC + NA) * 32, NB, &e, &d);
    assert_int_equal(riblt_enc_create(&e2, &c), 0);
    for (uint32_t i = 0; i < NC + NA; i++) {
        assert_int_equal(riblt_enc_add(e2, items + (size_t)i * 32), 0);
    }
    size_t cap = RIBLT_BATCH_HEADER_MAX + BATCH * RIBLT_SYMBOL_WIRE_MAX(32);
    uint8_t *buf = malloc(cap), *buf2 = malloc(cap);
    assert_non_null(buf);
    assert_non_null(buf2);
    struct riblt_symbol syms[BATCH];
    int rc = 0;
    size_t bytes = 0;
    uint64_t sent = 0;
    while (rc == 0) {
        size_t len, len2;
        uint64_t first = riblt_enc_next_index(e);
        assert_int_equal(riblt_enc_write_batch(e, BATCH, buf, cap, &len), 0);
        /* The same symbols made one by one and written by riblt_batch_write: same bytes. */
        for (int k = 0; k < BATCH; k++) {
            riblt_enc_next(e2, &syms[k]);
        }
        assert_int_equal(riblt_batch_write(32, NC + NA, first, syms, BATCH, buf2, cap, &len2), 0);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        struct riblt_batch_info info;
        assert_int_equal(riblt_batch_parse(buf, len, 32, &info), 0);
        assert_true(info.first_index == first && info.n == BATCH && info.set_size == NC + NA);
        /* Under 43 bytes a symbol with 32-byte items: sum 32, checksum 8, count 1-2. */
        assert_true(len <= 8 + BATCH * 43);
        bytes += len;
        sent += BATCH;
        rc = riblt_dec_add_batch(d, buf, len);
        assert_true(rc == 0 || rc == 1);
        if (rc == 0) {
            /* A retransmitted batch is harmless. */
            assert_int_equal(riblt_dec_add_batch(d, buf, len), 0);
        }
    }
    print_message("d = %d in %llu symbols, %zu bytes\n", NA + NB, (unsigned long long)sent, bytes);
    assert_int_equal(riblt_dec_remote_size(d), NC + NA);
    assert_same_set(d, 1, items + NC * 32, NA, 32);
    assert_same_set(d, 0, items + (NC + NA) * 32, NB, 32);
    free(buf);
    free(buf2);
    free(items);
    riblt_enc_free(e);
    riblt_enc_free(e2);
    riblt_dec_free(d);
}

/* ---- (d) Malformed and hostile input ------------------------------------------------------- */

static void test_malformed_batches(void **state)
{
    (void)state;
    struct riblt_config c = config(32, 3, 4, 100, 1000);
    uint8_t *items = random_items(60, 32, 99);
    riblt_enc *e;
    riblt_dec *d;
    build(&c, items, 50, items + 50 * 32, 10, NULL, 0, &e, &d);
    uint8_t buf[RIBLT_BATCH_HEADER_MAX + 4 * RIBLT_SYMBOL_WIRE_MAX(32)];
    size_t len;
    assert_int_equal(riblt_enc_write_batch(e, 4, buf, sizeof(buf), &len), 0);
    struct riblt_batch_info info;

    /* Every truncation, and one trailing byte. */
    for (size_t l = 0; l < len; l++) {
        assert_int_equal(riblt_batch_parse(buf, l, 32, &info), P4P_EMALFORMED);
        assert_int_equal(riblt_dec_add_batch(d, buf, l), P4P_EMALFORMED);
    }
    uint8_t big[sizeof(buf) + 1];
    memcpy(big, buf, len);
    big[len] = 0;
    assert_int_equal(riblt_batch_parse(big, len + 1, 32, &info), P4P_EMALFORMED);
    assert_int_equal(riblt_dec_received(d), 0);

    /* Header: version, item_len, n = 0, overlong and 65-bit varints. */
    uint8_t m[sizeof(buf)];
    memcpy(m, buf, len);
    m[0] = 2;
    assert_int_equal(riblt_dec_add_batch(d, m, len), P4P_EMALFORMED);
    memcpy(m, buf, len);
    m[1] = 40;
    assert_int_equal(riblt_dec_add_batch(d, m, len), P4P_EMALFORMED);
    assert_int_equal(riblt_batch_parse(buf, len, 40, &info), P4P_EMALFORMED);
    static const uint8_t n_zero[] = {1, 32, 60, 0, 0};
    assert_int_equal(riblt_batch_parse(n_zero, sizeof(n_zero), 32, &info), P4P_EMALFORMED);
    static const uint8_t overlong[] = {1, 32, 0xbc, 0x00, 0, 1};
    assert_int_equal(riblt_batch_parse(overlong, sizeof(overlong), 32, &info), P4P_EMALFORMED);
    static const uint8_t wide[] = {1,    32,   0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x7f, 0,    1};
    assert_int_equal(riblt_batch_parse(wide, sizeof(wide), 32, &info), P4P_EMALFORMED);
    /* set_size past RIBLT_COUNT_MAX (2^40 + 1 = 0x80 x5, 0x80 0x20 ... ). */
    uint8_t huge[64] = {1, 32};
    size_t p = 2;
    uint64_t v = RIBLT_COUNT_MAX + 1;
    while (v >= 0x80) {
        huge[p++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    huge[p++] = (uint8_t)v;
    huge[p++] = 0;
    huge[p++] = 1;
    memset(huge + p, 0, 41);
    assert_int_equal(riblt_batch_parse(huge, p + 41, 32, &info), P4P_EMALFORMED);

    /* A count that decodes negative: set_size 60, symbol 0 expects 60; zigzag(-61) = 121. */
    uint8_t neg[2 + 3 + 32 + 8 + 1] = {1, 32, 60, 0, 1};
    neg[sizeof(neg) - 1] = 121;
    assert_int_equal(riblt_batch_parse(neg, sizeof(neg), 32, &info), P4P_EMALFORMED);
    neg[sizeof(neg) - 1] = 0; /* count 60: fine */
    assert_int_equal(riblt_batch_parse(neg, sizeof(neg), 32, &info), 0);

    /* Nothing above touched the decoder; now a gap, then the real stream. */
    uint8_t later[sizeof(buf)];
    size_t later_len;
    assert_int_equal(riblt_enc_write_batch(e, 4, later, sizeof(later), &later_len), 0);
    assert_int_equal(riblt_dec_add_batch(d, later, later_len), P4P_EINVAL);
    assert_int_equal(riblt_dec_received(d), 0);
    assert_true(riblt_dec_add_batch(d, buf, len) >= 0);
    /* The remote set size may not change mid-stream. */
    memcpy(m, later, later_len);
    m[2] = 61;
    assert_int_equal(riblt_dec_add_batch(d, m, later_len), P4P_EMALFORMED);
    int rc = riblt_dec_add_batch(d, later, later_len);
    while (rc == 0) {
        assert_int_equal(riblt_enc_write_batch(e, 4, later, sizeof(later), &later_len), 0);
        rc = riblt_dec_add_batch(d, later, later_len);
    }
    assert_int_equal(rc, 1);
    assert_same_set(d, 1, items + 50 * 32, 10, 32);

    /* Random garbage never crashes and never changes a fresh decoder unless it parses. */
    riblt_dec *d2;
    assert_int_equal(riblt_dec_create(&d2, &c), 0);
    uint8_t *noise = random_items(2000, 64, 7);
    for (int k = 0; k < 2000; k++) {
        uint8_t *g = noise + (size_t)k * 64;
        g[0] = 1; /* get past the version byte most of the time */
        g[1] = (k & 1) ? 32 : g[1];
        size_t glen = 1 + (size_t)(g[2] % 64);
        rc = riblt_dec_add_batch(d2, g, glen);
        assert_true(rc == P4P_EMALFORMED || rc == P4P_EINVAL || rc == 0 || rc == 1);
    }
    free(noise);
    riblt_dec_free(d2);
    free(items);
    riblt_enc_free(e);
    riblt_dec_free(d);
}

static void test_hostile_symbols(void **state)
{
    (void)state;
    /* A peer that knows the key can forge "pure" symbols: each names an item of its choice,
     * at any index, with count +1 or -1. The decoder must either go on, stop with
     * P4P_EMALFORMED, or stop at symbol_max; never loop, crash or pass its bounds. */
    for (uint64_t t = 0; t < 30; t++) {
        struct riblt_config c = config(32, t, t + 1, 200, 300);
        uint8_t *local = random_items(200, 32, 100 + t);
        uint8_t *forged = random_items(300, 32, 200 + t);
        riblt_dec *d;
        assert_int_equal(riblt_dec_create(&d, &c), 0);
        for (int i = 0; i < 200; i++) {
            assert_int_equal(riblt_dec_add_local(d, local + (size_t)i * 32), 0);
        }
        int rc = 0;
        for (int i = 0; i < 300 && rc >= 0; i++) {
            struct riblt_symbol s = {0};
            const uint8_t *it =
                (i % 3 == 0) ? local + (size_t)(i % 200) * 32 : forged + (size_t)(i % 7) * 32;
            memcpy(s.sum, it, 32);
            s.checksum = riblt_hash(&c, it);
            s.count = (i % 2) ? 1 : -1;
            rc = riblt_dec_add_symbol(d, &s);
            assert_true(rc == 0 || rc == 1 || rc == P4P_EMALFORMED);
            assert_true(riblt_dec_remote_count(d) + riblt_dec_local_count(d) <=
                        riblt_dec_received(d));
        }
        if (rc == P4P_EMALFORMED) {
            struct riblt_symbol z = {0};
            assert_int_equal(riblt_dec_add_symbol(d, &z), P4P_EMALFORMED); /* stays dead */
            assert_false(riblt_dec_is_done(d));
        }
        assert_true(riblt_dec_received(d) <= 300);
        riblt_dec_free(d);
        free(local);
        free(forged);
    }
}

/* ---- (e) Bounds ---------------------------------------------------------------------------- */

static void test_bounds(void **state)
{
    (void)state;
    struct riblt_config bad = config(0, 1, 2, 10, 10);
    riblt_enc *e;
    riblt_dec *d;
    assert_int_equal(riblt_enc_create(&e, &bad), P4P_EINVAL);
    bad.item_len = RIBLT_ITEM_MAX + 1;
    assert_int_equal(riblt_dec_create(&d, &bad), P4P_EINVAL);
    bad.item_len = 32;
    bad.symbol_max = 0;
    assert_int_equal(riblt_dec_create(&d, &bad), P4P_EINVAL);

    enum { N = 1000, SYM = 500 };
    struct riblt_config c = config(32, 1, 2, N, SYM);
    uint8_t *items = random_items(N + 1, 32, 5);
    assert_int_equal(riblt_enc_create(&e, &c), 0);
    assert_int_equal(riblt_dec_create(&d, &c), 0);
    size_t idle = riblt_dec_memory(d);
    assert_true(idle < 32 * 1024); /* an idle decoder holds its three 8 KiB wheels */
    for (int i = 0; i < N; i++) {
        assert_int_equal(riblt_enc_add(e, items + (size_t)i * 32), 0);
        assert_int_equal(riblt_dec_add_local(d, items + (size_t)(N - 1 - i) * 32), 0);
    }
    assert_int_equal(riblt_enc_add(e, items + (size_t)N * 32), P4P_EFULL);
    assert_int_equal(riblt_dec_add_local(d, items + (size_t)N * 32), P4P_EFULL);
    assert_int_equal(riblt_enc_size(e), N);
    /* riblt.h: a 48-byte record per 32-byte item and 128-byte queue blocks, one per 10 items
     * plus at most one per occupied wheel slot (at most min(items, 2048)), never sized past
     * item_max; 8 KiB of slot heads per window. */
    size_t window_max = 8192 + (size_t)N * 48 + (size_t)(N / 10 + N + 3) * 128;
    assert_true(riblt_enc_memory(e) <= 1024 + window_max);
    assert_true(riblt_dec_memory(d) <= 1024 + 3 * 8192 + window_max);

    /* Equal sets: one symbol. Then adding items is refused on both sides. */
    struct riblt_symbol s;
    riblt_enc_next(e, &s);
    assert_int_equal(riblt_dec_add_symbol(d, &s), 1);
    assert_int_equal(riblt_enc_add(e, items), P4P_EINVAL);
    assert_int_equal(riblt_dec_add_local(d, items), P4P_EINVAL);

    /* A stream of junk (random, never pure) up to symbol_max, then P4P_EFULL. */
    uint8_t *junk = random_items(SYM, 32, 6);
    int rc = 0;
    for (int i = 1; i < SYM; i++) {
        memset(&s, 0, sizeof(s));
        memcpy(s.sum, junk + (size_t)i * 32, 32);
        s.checksum = 12345;
        s.count = 7;
        rc = riblt_dec_add_symbol(d, &s);
        assert_int_equal(rc, 0);
    }
    assert_int_equal(riblt_dec_received(d), SYM);
    assert_int_equal(riblt_dec_add_symbol(d, &s), P4P_EFULL);
    /* Residuals: item_len + 16 bytes and a 4-byte queue slot each, capped at symbol_max. */
    size_t per_sym = 32 + 16 + 4;
    assert_true(riblt_dec_memory(d) <= 1024 + 3 * 8192 + window_max + (size_t)SYM * per_sym);

    /* Batch sizes: too small a buffer is refused before anything is produced. */
    uint8_t small[64];
    size_t len;
    uint64_t before = riblt_enc_next_index(e);
    assert_int_equal(riblt_enc_write_batch(e, 2, small, sizeof(small), &len), P4P_ETOOBIG);
    assert_int_equal(riblt_enc_write_batch(e, 0, small, sizeof(small), &len), P4P_EINVAL);
    assert_true(riblt_enc_next_index(e) == before);
    s.count = -1;
    assert_int_equal(riblt_batch_write(32, 10, 0, &s, 1, small, sizeof(small), &len), P4P_EINVAL);

    free(items);
    free(junk);
    riblt_enc_free(e);
    riblt_dec_free(d);

    /* A large set: under 64 bytes per 32-byte item all told. */
    enum { BIG = 100000 };
    c = config(32, 1, 2, BIG, 1);
    items = random_items(BIG, 32, 8);
    assert_int_equal(riblt_enc_create(&e, &c), 0);
    for (int i = 0; i < BIG; i++) {
        assert_int_equal(riblt_enc_add(e, items + (size_t)i * 32), 0);
    }
    for (int i = 0; i < 100; i++) {
        riblt_enc_next(e, &s); /* producing never allocates */
    }
    print_message("encoder of %d items: %zu bytes\n", BIG, riblt_enc_memory(e));
    assert_true(riblt_enc_memory(e) <= (size_t)BIG * 64);
    free(items);
    riblt_enc_free(e);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash_vector),
        cmocka_unit_test(test_mapping_reference),
        cmocka_unit_test(test_readme_example),
        cmocka_unit_test(test_reference_symbol_counts),
        cmocka_unit_test(test_reference_codec_test),
        cmocka_unit_test(test_overhead_1000),
        cmocka_unit_test(test_small_differences),
        cmocka_unit_test(test_equal_sets),
        cmocka_unit_test(test_both_directions),
        cmocka_unit_test(test_id_and_timestamp),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_malformed_batches),
        cmocka_unit_test(test_hostile_symbols),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
