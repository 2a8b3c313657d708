/*
 * test_fastcdc.c — unit tests for engine/fastcdc.{h,c}, content-defined chunking.
 *
 * Test data is a ChaCha20 key stream with a fixed key (crypto_stream_chacha20), never the OS,
 * and piece sizes come from a seeded splitmix64, so every run sees the same bytes. Covered:
 * the gear table against its generator; parameter rules and the derived masks; chunk lengths
 * within [min, max] (the last one may be shorter); determinism and pinned cut points; streaming
 * in random pieces (and byte by byte) against one-shot chunking; boundary stability under
 * inserts, deletes and overwrites in the middle of 1 MiB; the mean chunk length over 8 MiB;
 * that normalisation narrows the spread of lengths.
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

#include "fastcdc.h"

#define MIB (1024u * 1024u)

/* ---- Helpers ------------------------------------------------------------------------------- */

/* len bytes of the ChaCha20 key stream for a key made from `seed`. */
static uint8_t *random_bytes(size_t len, uint8_t seed)
{
    uint8_t key[crypto_stream_chacha20_KEYBYTES];
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    memset(key, seed, sizeof(key));
    uint8_t *p = malloc(len);
    assert_non_null(p);
    crypto_stream_chacha20(p, len, nonce, key);
    return p;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct chunks {
    uint32_t *len;
    size_t count, cap;
};

static void chunks_push(struct chunks *c, uint32_t len)
{
    if (c->count == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->len = realloc(c->len, c->cap * sizeof(*c->len));
        assert_non_null(c->len);
    }
    c->len[c->count++] = len;
}

static void chunks_free(struct chunks *c)
{
    free(c->len);
    memset(c, 0, sizeof(*c));
}

/* One-shot chunking of a whole buffer. */
static struct chunks chunk_all(const struct fastcdc *cdc, const uint8_t *p, size_t len)
{
    struct chunks out = {0};
    while (len > 0) {
        uint32_t n = fastcdc_chunk_len(cdc, p, len);
        assert_true(n >= 1 && n <= len);
        chunks_push(&out, n);
        p += n;
        len -= n;
    }
    return out;
}

/* Streaming in pieces: sizes drawn from `seed` up to piece_max (0 means one byte at a time). */
static struct chunks chunk_stream(struct fastcdc *cdc, const uint8_t *p, size_t len, uint64_t seed,
                                  size_t piece_max)
{
    struct chunks out = {0};
    uint32_t pending = 0; /* bytes of the current chunk seen so far, as the caller counts */
    while (len > 0) {
        size_t piece = piece_max ? splitmix64(&seed) % (piece_max + 1) : 1;
        piece = piece < len ? piece : len;
        do {
            uint32_t chunk_len;
            size_t used = fastcdc_feed(cdc, p, piece, &chunk_len);
            assert_true(used <= piece);
            pending += (uint32_t)used;
            if (chunk_len != 0) {
                assert_int_equal(chunk_len, pending);
                chunks_push(&out, chunk_len);
                pending = 0;
            } else {
                assert_int_equal(used, piece);
            }
            p += used;
            len -= used;
            piece -= used;
        } while (piece > 0);
    }
    uint32_t last = fastcdc_finish(cdc);
    assert_int_equal(last, pending);
    if (last) {
        chunks_push(&out, last);
    }
    return out;
}

static void assert_same_chunks(const struct chunks *a, const struct chunks *b)
{
    assert_int_equal(a->count, b->count);
    assert_memory_equal(a->len, b->len, a->count * sizeof(*a->len));
}

static void assert_lengths_valid(const struct fastcdc *cdc, const struct chunks *c, size_t total)
{
    size_t sum = 0;
    for (size_t k = 0; k < c->count; k++) {
        if (k + 1 < c->count) {
            assert_in_range(c->len[k], cdc->min_len, cdc->max_len);
        } else {
            assert_in_range(c->len[k], 1, cdc->max_len);
        }
        sum += c->len[k];
    }
    assert_int_equal(sum, total);
}

static struct fastcdc make(uint32_t min, uint32_t avg, uint32_t max, uint32_t level)
{
    struct fastcdc_params p = {.min_len = min, .avg_len = avg, .max_len = max, .level = level};
    struct fastcdc c;
    assert_int_equal(fastcdc_init(&c, &p), 0);
    return c;
}

static struct fastcdc make_default(void)
{
    struct fastcdc_params p;
    struct fastcdc c;
    fastcdc_params_default(&p);
    assert_int_equal(fastcdc_init(&c, &p), 0);
    return c;
}

/* ---- The gear table and the parameters ----------------------------------------------------- */

static void test_gear_table_regenerates(void **state)
{
    (void)state;
    for (int i = 0; i < 256; i++) {
        uint8_t in[17], out[8];
        memcpy(in, "p4p-fastcdc-gear", 16);
        in[16] = (uint8_t)i;
        assert_int_equal(crypto_generichash(out, sizeof(out), in, sizeof(in), NULL, 0), 0);
        uint64_t v = 0;
        for (int k = 7; k >= 0; k--) {
            v = v << 8 | out[k];
        }
        assert_true(fastcdc_gear[i] == v);
    }
    /* Two values by hand, so that a generator and a table changed together still fail. */
    assert_true(fastcdc_gear[0] == 0x757aa75272f668e8ULL);
    assert_true(fastcdc_gear[255] == 0x14286ef8ac7b08ebULL);
}

static void test_params_derived(void **state)
{
    (void)state;
    struct fastcdc c = make_default();
    assert_int_equal(c.min_len, 2048);
    assert_int_equal(c.max_len, 65536);
    assert_int_equal(c.bits, 13);
    assert_int_equal(c.normal_len, 8192 - 2048);
    assert_true(c.mask_s == 0xfffe000000000000ULL); /* 15 bits */
    assert_true(c.mask_l == 0xffe0000000000000ULL); /* 11 bits */
    assert_int_equal(c.pos, 0);

    /* avg need not be a power of two: the nearest one sets the masks. */
    c = make(2048, 12287, 65536, 2);
    assert_int_equal(c.bits, 13);
    assert_int_equal(c.normal_len, 12287 - 2048);
    c = make(2048, 12288, 65536, 2);
    assert_int_equal(c.bits, 14);
    assert_int_equal(c.normal_len, 12288 - 4096);
    /* The switch point never falls below min_len. */
    c = make(7000, 8192, 65536, 1);
    assert_int_equal(c.normal_len, 7000);
    c = make(1024, 8192, 65536, 0);
    assert_int_equal(c.normal_len, 1024);
    assert_true(c.mask_s == c.mask_l);
    /* The extremes are accepted. */
    c = make(64, 65, 66, 3);
    assert_int_equal(c.bits, 6);
    c = make(FASTCDC_MAX_LIMIT / 4, FASTCDC_MAX_LIMIT / 2, FASTCDC_MAX_LIMIT, 3);
    assert_int_equal(c.bits, 29);
}

static void test_params_rejected(void **state)
{
    (void)state;
    static const struct fastcdc_params bad[] = {
        {63, 8192, 65536, 2},                            /* min below the window */
        {8192, 8192, 65536, 2},                          /* min == avg */
        {9000, 8192, 65536, 2},                          /* min > avg */
        {2048, 65536, 65536, 2},                         /* avg == max */
        {2048, 70000, 65536, 2},                         /* avg > max */
        {2048, 8192, FASTCDC_MAX_LIMIT + 1u, 2},         /* max too large */
        {2048, 8192, 65536, FASTCDC_LEVEL_MAX + 1},      /* level too high */
        {0, 0, 0, 0},                                    /* all zero */
        {UINT32_MAX - 2, UINT32_MAX - 1, UINT32_MAX, 0}, /* beyond the limit */
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct fastcdc c;
        memset(&c, 0xa5, sizeof(c));
        assert_int_equal(fastcdc_init(&c, &bad[k]), P4P_EINVAL);
        /* Left untouched. */
        assert_int_equal(c.pos, 0xa5a5a5a5u);
    }
    struct fastcdc_params p;
    struct fastcdc c;
    fastcdc_params_default(&p);
    assert_int_equal(fastcdc_init(NULL, &p), P4P_EINVAL);
    assert_int_equal(fastcdc_init(&c, NULL), P4P_EINVAL);
}

/* ---- Chunk lengths ------------------------------------------------------------------------- */

static void test_lengths_within_bounds(void **state)
{
    (void)state;
    size_t len = 8 * MIB;
    uint8_t *data = random_bytes(len, 1);
    struct fastcdc c = make_default();
    struct chunks a = chunk_all(&c, data, len);
    assert_lengths_valid(&c, &a, len);
    assert_true(a.count > 500);

    /* Small parameters, every level, including max close to avg (many forced cuts). */
    static const uint32_t cfg[][3] = {{64, 256, 1024}, {100, 1000, 1300}, {64, 4096, 4097}};
    for (size_t k = 0; k < 3; k++) {
        for (uint32_t level = 0; level <= FASTCDC_LEVEL_MAX; level++) {
            struct fastcdc s = make(cfg[k][0], cfg[k][1], cfg[k][2], level);
            struct chunks b = chunk_all(&s, data, MIB);
            assert_lengths_valid(&s, &b, MIB);
            chunks_free(&b);
        }
    }
    /* 64, 4096, 4097: about 30 % of the chunks reach max_len (1025 bytes under the 10-bit mask
     * after normal_len = 3072 leave e^-1 of them, and 83 % get that far), and end exactly there. */
    struct fastcdc s = make(64, 4096, 4097, 2);
    struct chunks b = chunk_all(&s, data, MIB);
    size_t at_max = 0;
    for (size_t k = 0; k < b.count; k++) {
        at_max += b.len[k] == 4097;
    }
    assert_true(at_max > b.count / 5 && at_max < b.count / 2);
    chunks_free(&b);

    /* Constant data has no content to cut on: every chunk but the last has the same length. */
    memset(data, 0, MIB);
    b = chunk_all(&c, data, MIB);
    assert_lengths_valid(&c, &b, MIB);
    for (size_t k = 1; k + 1 < b.count; k++) {
        assert_int_equal(b.len[k], b.len[0]);
    }
    chunks_free(&b);
    chunks_free(&a);
    free(data);
}

static void test_short_and_empty(void **state)
{
    (void)state;
    struct fastcdc c = make_default();
    uint8_t *data = random_bytes(4096, 2);
    uint32_t chunk_len = 99;

    assert_int_equal(fastcdc_chunk_len(&c, data, 0), 0);
    assert_int_equal(fastcdc_feed(&c, data, 0, &chunk_len), 0);
    assert_int_equal(chunk_len, 0);
    assert_int_equal(fastcdc_finish(&c), 0);
    /* Less than min_len: one chunk, the whole blob. */
    assert_int_equal(fastcdc_chunk_len(&c, data, 2047), 2047);
    assert_int_equal(fastcdc_feed(&c, data, 2047, &chunk_len), 2047);
    assert_int_equal(chunk_len, 0);
    assert_int_equal(fastcdc_finish(&c), 2047);
    assert_int_equal(fastcdc_finish(&c), 0);
    /* fastcdc_reset forgets a chunk in progress. */
    assert_int_equal(fastcdc_feed(&c, data, 100, &chunk_len), 100);
    fastcdc_reset(&c);
    assert_int_equal(fastcdc_finish(&c), 0);
    free(data);
}

/* Cut points are part of the content ids: pin them for a fixed input. If this fails, the gear
 * table, the mask rules or the scan changed, and every blob id with them. */
static void test_pinned_cut_points(void **state)
{
    (void)state;
    static const uint32_t expect[] = {9338, 7753, 11200, 9966, 6854, 6039, 6493, 7404};
    size_t len = MIB;
    uint8_t *data = random_bytes(len, 7);
    struct fastcdc c = make_default();
    struct chunks a = chunk_all(&c, data, len);
    assert_true(a.count >= sizeof(expect) / sizeof(expect[0]));
    for (size_t k = 0; k < sizeof(expect) / sizeof(expect[0]); k++) {
        assert_int_equal(a.len[k], expect[k]);
    }
    /* And all of them, through a hash of the length list. */
    uint8_t h[8];
    crypto_generichash(h, sizeof(h), (const uint8_t *)a.len, a.count * sizeof(*a.len), NULL, 0);
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) {
        v = v << 8 | h[k];
    }
    assert_int_equal(a.count, 141);
    assert_true(v == 0xab051105ed05e83fULL);

    /* The same input gives the same cuts, with a fresh chunker too. */
    struct fastcdc c2 = make_default();
    struct chunks b = chunk_all(&c2, data, len);
    assert_same_chunks(&a, &b);
    chunks_free(&b);
    chunks_free(&a);
    free(data);
}

/* The rule of fastcdc.h written out with nothing shared with the scan: the fingerprint at
 * length L is recomputed from the 64 bytes ending there, sum of GEAR[byte] << age. */
static uint32_t reference_chunk_len(const struct fastcdc *c, const uint8_t *p, size_t len)
{
    for (size_t n = c->min_len; n <= len && n <= c->max_len; n++) {
        uint64_t fp = 0;
        for (unsigned age = 0; age < FASTCDC_WINDOW; age++) {
            fp += fastcdc_gear[p[n - 1 - age]] << age;
        }
        uint64_t mask = n < c->normal_len ? c->mask_s : c->mask_l;
        if ((fp & mask) == 0 || n == c->max_len) {
            return (uint32_t)n;
        }
    }
    return (uint32_t)len;
}

static void test_matches_reference(void **state)
{
    (void)state;
    size_t len = 512 * 1024;
    uint8_t *data = random_bytes(len, 9);
    static const uint32_t cfg[][3] = {
        {2048, 8192, 65536}, {64, 256, 1024}, {64, 4096, 4097}, {100, 1000, 1300}, {500, 501, 502}};
    for (size_t k = 0; k < sizeof(cfg) / sizeof(cfg[0]); k++) {
        for (uint32_t level = 0; level <= FASTCDC_LEVEL_MAX; level++) {
            struct fastcdc c = make(cfg[k][0], cfg[k][1], cfg[k][2], level);
            size_t off = 0;
            while (off < len) {
                uint32_t n = fastcdc_chunk_len(&c, data + off, len - off);
                assert_int_equal(n, reference_chunk_len(&c, data + off, len - off));
                off += n;
            }
        }
    }
    free(data);
}

/* ---- Streaming ----------------------------------------------------------------------------- */

static void test_streaming_equals_one_shot(void **state)
{
    (void)state;
    size_t len = 4 * MIB;
    uint8_t *data = random_bytes(len, 3);
    struct fastcdc c = make_default();
    struct chunks whole = chunk_all(&c, data, len);

    /* Pieces from 0 bytes up to small, chunk-sized and larger-than-max sizes. */
    static const size_t piece_max[] = {7, 100, 3000, 9000, 70000, 300000};
    for (size_t k = 0; k < sizeof(piece_max) / sizeof(piece_max[0]); k++) {
        for (uint64_t seed = 1; seed <= 3; seed++) {
            struct chunks s = chunk_stream(&c, data, len, seed * 1000 + k, piece_max[k]);
            assert_same_chunks(&whole, &s);
            chunks_free(&s);
        }
    }
    /* One byte at a time, over a shorter prefix (its cuts are a prefix of the whole's, except
     * the last, which the prefix ends). */
    size_t short_len = 256 * 1024;
    struct chunks s = chunk_stream(&c, data, short_len, 0, 0);
    struct chunks w = chunk_all(&c, data, short_len);
    assert_same_chunks(&w, &s);
    for (size_t k = 0; k + 1 < w.count; k++) {
        assert_int_equal(w.len[k], whole.len[k]);
    }
    chunks_free(&w);
    chunks_free(&s);

    /* Small parameters at every level, where pieces straddle every phase boundary often. */
    for (uint32_t level = 0; level <= FASTCDC_LEVEL_MAX; level++) {
        struct fastcdc t = make(64, 200, 700, level);
        struct chunks a = chunk_all(&t, data, MIB);
        struct chunks b = chunk_stream(&t, data, MIB, 77 + level, 150);
        assert_same_chunks(&a, &b);
        chunks_free(&a);
        chunks_free(&b);
    }
    chunks_free(&whole);
    free(data);
}

/* ---- Boundary stability -------------------------------------------------------------------- */

/* Chunks of `a` that reappear unchanged in `b`: the common prefix (same bytes at the same
 * offsets) and the common suffix (same bytes at the same distance from the end). */
static void common_ends(const struct chunks *a, const uint8_t *pa, size_t la,
                        const struct chunks *b, const uint8_t *pb, size_t lb, size_t *prefix,
                        size_t *suffix)
{
    size_t k = 0, off = 0;
    while (k < a->count && k < b->count && a->len[k] == b->len[k] &&
           memcmp(pa + off, pb + off, a->len[k]) == 0) {
        off += a->len[k];
        k++;
    }
    *prefix = k;
    size_t s = 0, ea = la, eb = lb;
    while (s < a->count - k && s < b->count - k &&
           a->len[a->count - 1 - s] == b->len[b->count - 1 - s] &&
           memcmp(pa + ea - a->len[a->count - 1 - s], pb + eb - b->len[b->count - 1 - s],
                  a->len[a->count - 1 - s]) == 0) {
        ea -= a->len[a->count - 1 - s];
        eb -= b->len[b->count - 1 - s];
        s++;
    }
    *suffix = s;
}

static void test_boundary_stability(void **state)
{
    (void)state;
    size_t len = MIB;
    uint8_t *base = random_bytes(len, 4);
    uint8_t *edited = malloc(len + 1000);
    uint8_t *junk = random_bytes(1000, 5);
    assert_non_null(edited);
    struct fastcdc c = make_default();
    struct chunks old = chunk_all(&c, base, len);

    /* (offset, bytes removed, bytes inserted): inserts, deletes and overwrites. */
    static const size_t edits[][3] = {
        {524288, 0, 1},  {524288, 0, 17},  {524288, 0, 700}, {524288, 1, 0}, {524288, 300, 0},
        {524288, 1, 1},  {524288, 3, 3},   {524288, 64, 64}, {300001, 0, 5}, {300001, 9, 0},
        {777777, 2, 2},  {777777, 0, 100}, {100000, 50, 0},  {900000, 1, 1}, {12345, 5, 5},
        {1040000, 0, 3}, {2050, 1, 1},     {0, 1, 0},        {0, 0, 1},
    };
    for (size_t e = 0; e < sizeof(edits) / sizeof(edits[0]); e++) {
        size_t off = edits[e][0], removed = edits[e][1], inserted = edits[e][2];
        memcpy(edited, base, off);
        memcpy(edited + off, junk, inserted);
        memcpy(edited + off + inserted, base + off + removed, len - off - removed);
        size_t new_len = len - removed + inserted;
        struct chunks now = chunk_all(&c, edited, new_len);
        size_t prefix, suffix;
        common_ends(&old, base, len, &now, edited, new_len, &prefix, &suffix);

        /* Every chunk that ends before the edit is kept... */
        size_t end = 0, before = 0;
        while (before < old.count && end + old.len[before] <= off) {
            end += old.len[before++];
        }
        assert_true(prefix >= before);
        /* ...and only a few chunks around it differ, in the old list and in the new. */
        assert_true(old.count - prefix - suffix <= 3);
        assert_true(now.count - prefix - suffix <= 3);
        assert_true(now.count - prefix - suffix >= 1);
        chunks_free(&now);
    }
    chunks_free(&old);
    free(junk);
    free(edited);
    free(base);
}

/* ---- Distribution -------------------------------------------------------------------------- */

static void mean_var(const struct chunks *c, double *mean, double *var)
{
    double s = 0, s2 = 0;
    size_t n = c->count - 1; /* the last chunk is cut by the end of the data */
    for (size_t k = 0; k < n; k++) {
        s += c->len[k];
        s2 += (double)c->len[k] * c->len[k];
    }
    *mean = s / (double)n;
    *var = s2 / (double)n - *mean * *mean;
}

/* The mean chunk length over 8 MiB of random data, all chunks but the last. For the defaults
 * the expectation is 7706 bytes (fastcdc.h); allow +-15 % of avg_len. */
static void test_mean_near_avg(void **state)
{
    (void)state;
    size_t len = 8 * MIB;
    uint8_t *data = random_bytes(len, 6);
    static const uint32_t cfg[][3] = {
        {2048, 8192, 65536}, {1024, 4096, 32768}, {4096, 16384, 131072}, {2048, 12000, 65536}};
    for (size_t k = 0; k < 4; k++) {
        struct fastcdc c = make(cfg[k][0], cfg[k][1], cfg[k][2], 2);
        struct chunks a = chunk_all(&c, data, len);
        double mean, var;
        mean_var(&a, &mean, &var);
        print_message("min %u avg %u max %u level 2: %zu chunks, mean %.0f bytes (%.3f of avg)\n",
                      cfg[k][0], cfg[k][1], cfg[k][2], a.count, mean, mean / cfg[k][1]);
        assert_true(mean >= 0.85 * cfg[k][1] && mean <= 1.15 * cfg[k][1]);
        chunks_free(&a);
    }
    free(data);
}

/* Normalisation does what it is for: a higher level gives a narrower spread of lengths. */
static void test_normalisation_narrows_spread(void **state)
{
    (void)state;
    size_t len = 8 * MIB;
    uint8_t *data = random_bytes(len, 8);
    double prev_var = 0;
    for (uint32_t level = 0; level <= FASTCDC_LEVEL_MAX; level++) {
        struct fastcdc c = make(2048, 8192, 65536, level);
        struct chunks a = chunk_all(&c, data, len);
        double mean, var;
        mean_var(&a, &mean, &var);
        if (level > 0) {
            assert_true(var < 0.8 * prev_var);
        }
        prev_var = var;
        chunks_free(&a);
    }
    free(data);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gear_table_regenerates),
        cmocka_unit_test(test_params_derived),
        cmocka_unit_test(test_params_rejected),
        cmocka_unit_test(test_lengths_within_bounds),
        cmocka_unit_test(test_short_and_empty),
        cmocka_unit_test(test_pinned_cut_points),
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_streaming_equals_one_shot),
        cmocka_unit_test(test_boundary_stability),
        cmocka_unit_test(test_mean_near_avg),
        cmocka_unit_test(test_normalisation_narrows_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
