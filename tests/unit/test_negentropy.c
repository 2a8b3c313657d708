/*
 * test_negentropy.c — engine/negentropy.c: the wire format against the negentropy v1
 * specification and the reference implementation, exact reconciliation of random sets, and
 * rejection of malformed messages.
 *
 * (a) Format: varints, bounds, fingerprints computed here independently (byte-wise 256-bit
 *     addition + libsodium SHA-256), an initiate() message built by hand from the spec, and
 *     golden messages produced by the C++ reference harness (hoytech/negentropy
 *     test/cpp/harness.cpp) for a 40-item set with shared timestamps and id prefixes, and
 *     digests of whole reference conversations with frame size limits none, 4096 and 6000.
 * (b) Properties: two random sets (fixed seed) differing by 0, 1, 10 and 1000 items, up to
 *     100,000 items, reconcile to exactly the true differences whichever side initiates, without
 *     a frame limit, with the reference's smallest (4096) and with the non-standard 256-byte
 *     mode; every message stays under the limit; rounds are bounded.
 * (c) Malformed input: every kind of bad message is rejected with its code and the session goes
 *     on working; a mutation fuzzer never crashes it (run under ASan/UBSan).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "negentropy.h"
#include "p4p/p4p.h"

/* ---- Helpers ------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t from_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t len = strlen(hex) / 2;
    assert_true(len <= cap);
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return len;
}

/* The spec's varint, written independently of the engine: groups of 7 bits, most significant
 * first, the high bit on every byte but the last. */
static size_t spec_varint(uint8_t *out, uint64_t v)
{
    size_t groups = 1;
    for (uint64_t t = v >> 7; t != 0; t >>= 7) {
        groups++;
    }
    for (size_t i = 0; i < groups; i++) {
        uint8_t digit = (uint8_t)((v >> (7 * (groups - 1 - i))) & 0x7f);
        out[i] = (uint8_t)(digit | (i + 1 < groups ? 0x80 : 0));
    }
    return groups;
}

/* The spec's fingerprint, written independently: byte-wise little-endian addition mod 2^256,
 * then SHA-256(sum || varint(count)), first 16 bytes. */
static void spec_fingerprint(const uint8_t *ids, size_t count, uint8_t out[16])
{
    uint8_t buf[32 + 10] = {0};
    for (size_t i = 0; i < count; i++) {
        unsigned carry = 0;
        for (size_t b = 0; b < 32; b++) {
            unsigned t = buf[b] + ids[i * 32 + b] + carry;
            buf[b] = (uint8_t)t;
            carry = t >> 8;
        }
    }
    size_t len = 32 + spec_varint(buf + 32, count);
    uint8_t hash[32];
    crypto_hash_sha256(hash, buf, len);
    memcpy(out, hash, 16);
}

/* The golden set: 40 items, three per timestamp, the first id byte shared by six in a row. */
static void golden_item(int i, uint64_t *ts, uint8_t id[32])
{
    *ts = 1000 + (uint64_t)(i / 3);
    id[0] = (uint8_t)(i / 6);
    for (int j = 1; j < 32; j++) {
        id[j] = (uint8_t)(i * 31 + j * 17);
    }
}

static void fill_storage(struct neg_storage *s, const int *which, int count)
{
    neg_storage_init(s, 0);
    for (int k = 0; k < count; k++) {
        uint64_t ts;
        uint8_t id[32];
        golden_item(which[k], &ts, id);
        assert_int_equal(neg_storage_add(s, ts, id), 0);
    }
    assert_int_equal(neg_storage_seal(s), 0);
}

/* ---- (a) Format ---------------------------------------------------------------------------- */

static void test_varint_examples(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        uint8_t bytes[10];
        size_t len;
    } cases[] = {
        {0, {0x00}, 1},
        {1, {0x01}, 1},
        {127, {0x7f}, 1},
        {128, {0x81, 0x00}, 2},                          /* 1*128 + 0 */
        {300, {0x82, 0x2c}, 2},                          /* 2*128 + 44 */
        {16383, {0xff, 0x7f}, 2},                        /* 127*128 + 127 */
        {16384, {0x81, 0x80, 0x00}, 3},                  /* 1*128^2 */
        {1677970535, {0x86, 0xa0, 0x8f, 0x98, 0x67}, 5}, /* 6,32,15,24,103 base 128 */
        {UINT64_MAX, {0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[NEG_VARINT_MAX_LEN + 1];
        size_t len = neg_varint_put(out, cases[i].v);
        assert_int_equal(len, cases[i].len);
        assert_memory_equal(out, cases[i].bytes, len);
        uint64_t back;
        size_t used;
        assert_int_equal(neg_varint_get(out, len, &back, &used), 0);
        assert_true(back == cases[i].v);
        assert_int_equal(used, len);
        /* Trailing bytes are not consumed. */
        out[len] = 0x55;
        assert_int_equal(neg_varint_get(out, len + 1, &back, &used), 0);
        assert_int_equal(used, len);
    }
    static const struct {
        uint8_t bytes[12];
        size_t len;
    } bad[] = {
        {{0x81}, 1},                                                              /* truncated */
        {{0}, 0},                                                                 /* empty */
        {{0x80, 0x01}, 2},                                                        /* leading 0 */
        {{0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10},       /* 2^65 - 1 */
        {{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 11}, /* 71 bits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v;
        size_t used;
        assert_int_equal(neg_varint_get(bad[i].bytes, bad[i].len, &v, &used), P4P_EMALFORMED);
    }
}

static void test_bound_encoding(void **state)
{
    (void)state;
    uint8_t out[NEG_BOUND_MAX_LEN];
    uint64_t last = 0;
    struct neg_bound b = {.timestamp = 1677970534, .id = {0xab}, .id_len = 1};
    /* 1 + (1677970534 - 0), then prefix length 1, then the prefix. */
    static const uint8_t want1[] = {0x86, 0xa0, 0x8f, 0x98, 0x67, 0x01, 0xab};
    assert_int_equal(neg_bound_put(out, &last, &b), sizeof(want1));
    assert_memory_equal(out, want1, sizeof(want1));
    assert_true(last == 1677970534);
    /* Same timestamp: delta 0 is encoded 1; a two-byte prefix. */
    b = (struct neg_bound){.timestamp = 1677970534, .id = {0xab, 0xcd}, .id_len = 2};
    static const uint8_t want2[] = {0x01, 0x02, 0xab, 0xcd};
    assert_int_equal(neg_bound_put(out, &last, &b), sizeof(want2));
    assert_memory_equal(out, want2, sizeof(want2));
    /* 200 later: 201 = 0x81 0x49; no prefix. */
    b = (struct neg_bound){.timestamp = 1677970734};
    static const uint8_t want3[] = {0x81, 0x49, 0x00};
    assert_int_equal(neg_bound_put(out, &last, &b), sizeof(want3));
    assert_memory_equal(out, want3, sizeof(want3));
    /* Infinity is 0 whatever came before, and becomes the new base. */
    b = (struct neg_bound){.timestamp = NEG_TIMESTAMP_INFINITY};
    static const uint8_t want4[] = {0x00, 0x00};
    assert_int_equal(neg_bound_put(out, &last, &b), sizeof(want4));
    assert_memory_equal(out, want4, sizeof(want4));
    assert_true(last == NEG_TIMESTAMP_INFINITY);
    /* A full 32-byte prefix. */
    last = 5;
    b = (struct neg_bound){.timestamp = 5, .id_len = 32};
    memset(b.id, 0xee, 32);
    assert_int_equal(neg_bound_put(out, &last, &b), 2 + 32);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(out[1], 32);
    assert_int_equal(out[33], 0xee);
}

static void test_fingerprint_independent(void **state)
{
    (void)state;
    uint8_t ids[5 * 32], want[16], got[16];
    /* The empty set: SHA-256 of 32 zero bytes and the varint 0. */
    uint8_t zero[33] = {0}, hash[32];
    crypto_hash_sha256(hash, zero, sizeof(zero));
    neg_fingerprint_ids(ids, 0, got);
    assert_memory_equal(got, hash, 16);
    /* Carries through every byte: 0xff..ff + 1 wraps to 0 (mod 2^256), count 2. */
    memset(ids, 0xff, 32);
    memset(ids + 32, 0, 32);
    ids[32] = 1;
    uint8_t wrapped[33] = {0};
    wrapped[32] = 2;
    crypto_hash_sha256(hash, wrapped, sizeof(wrapped));
    neg_fingerprint_ids(ids, 2, got);
    assert_memory_equal(got, hash, 16);
    /* Five pseudo-random ids. */
    uint64_t seed = 42;
    for (size_t i = 0; i < sizeof(ids); i += 8) {
        uint64_t v = splitmix64(&seed);
        memcpy(ids + i, &v, 8);
    }
    spec_fingerprint(ids, 5, want);
    neg_fingerprint_ids(ids, 5, got);
    assert_memory_equal(got, want, 16);
}

/* The storage's fingerprints (running sums + subtraction) equal direct sums over any range. */
static void test_storage_fingerprint_ranges(void **state)
{
    (void)state;
    enum { N = 300 };
    struct neg_storage s;
    neg_storage_init(&s, 0);
    uint64_t seed = 7;
    for (int i = 0; i < N; i++) {
        uint8_t id[32];
        for (int j = 0; j < 32; j += 8) {
            uint64_t v = splitmix64(&seed);
            memcpy(id + j, &v, 8);
        }
        if (i % 3 == 0) {
            memset(id, 0xff, 24); /* big values, so that sums carry */
        }
        assert_int_equal(neg_storage_add(&s, (uint64_t)(i % 17), id), 0);
    }
    assert_int_equal(neg_storage_seal(&s), 0);
    uint8_t *ids = malloc(N * 32);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        memcpy(ids + i * 32, s.items[i].id, 32);
    }
    for (int k = 0; k < 400; k++) {
        size_t a = splitmix64(&seed) % (N + 1), b = splitmix64(&seed) % (N + 1);
        size_t lo = a < b ? a : b, hi = a < b ? b : a;
        uint8_t want[16], got[16];
        spec_fingerprint(ids + lo * 32, hi - lo, want);
        neg_storage_fingerprint(&s, lo, hi, got);
        assert_memory_equal(got, want, 16);
    }
    free(ids);
    neg_storage_free(&s);
}

/* initiate() for 2 items: one IdList range up to infinity. */
static void test_initiate_small_idlist(void **state)
{
    (void)state;
    struct neg_storage s;
    struct neg_session n;
    uint8_t id1[32], id2[32];
    memset(id1, 0xbb, 32);
    memset(id2, 0xaa, 32);
    neg_storage_init(&s, 0);
    assert_int_equal(neg_storage_add(&s, 1001, id1), 0);
    assert_int_equal(neg_storage_add(&s, 1000, id2), 0);
    assert_int_equal(neg_storage_seal(&s), 0);
    assert_int_equal(neg_session_init(&n, &s, NULL), 0);
    const uint8_t *msg;
    size_t len;
    assert_int_equal(neg_initiate(&n, &msg, &len), 0);
    uint8_t want[5 + 64] = {0x61, 0x00, 0x00, 0x02, 0x02}; /* version, infinity, IdList, 2 */
    memcpy(want + 5, id2, 32);                             /* sorted by timestamp */
    memcpy(want + 37, id1, 32);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(msg, want, sizeof(want));
    assert_int_equal(neg_initiate(&n, &msg, &len), P4P_EINVAL); /* only once */
    neg_session_free(&n);
    neg_storage_free(&s);
}

/* initiate() for 35 items, one timestamp each, built by hand from the spec: 16 buckets, the
 * first three with 3 items, the rest with 2; each bound is the next bucket's first timestamp
 * (no prefix: timestamps differ), the last is infinity. */
static void test_initiate_buckets_by_hand(void **state)
{
    (void)state;
    enum { N = 35 };
    struct neg_storage s;
    struct neg_session n;
    uint8_t ids[N * 32];
    neg_storage_init(&s, 0);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 32; j++) {
            ids[i * 32 + j] = (uint8_t)(i * 97 + j * 5 + 1);
        }
        assert_int_equal(neg_storage_add(&s, 100 + 10 * (uint64_t)i, ids + i * 32), 0);
    }
    assert_int_equal(neg_storage_seal(&s), 0);
    uint8_t want[1 + 16 * (3 + 1 + 16)];
    size_t len = 0, first = 0;
    uint64_t prev_ts = 0;
    want[len++] = 0x61;
    for (int b = 0; b < 16; b++) {
        size_t size = b < N % 16 ? 3 : 2;
        if (b == 15) {
            want[len++] = 0x00; /* infinity */
        } else {
            uint64_t ts = 100 + 10 * (first + size);
            len += spec_varint(want + len, ts - prev_ts + 1);
            prev_ts = ts;
        }
        want[len++] = 0x00; /* prefix length */
        want[len++] = 0x01; /* Fingerprint */
        spec_fingerprint(ids + first * 32, size, want + len);
        len += 16;
        first += size;
    }
    assert_int_equal(first, N);
    assert_int_equal(neg_session_init(&n, &s, NULL), 0);
    const uint8_t *msg;
    size_t msg_len;
    assert_int_equal(neg_initiate(&n, &msg, &msg_len), 0);
    assert_int_equal(msg_len, len);
    assert_memory_equal(msg, want, len);
    neg_session_free(&n);
    neg_storage_free(&s);
}

/* ---- (a) Golden messages from the C++ reference harness ------------------------------------ */

/* `item,TS,ID` lines for golden_item(0..39), then seal + initiate, fed to the reference harness;
 * its msg,HEX line, fed with `msg,HEX` to a reference harness holding items 0..41 except 5 and
 * 20, gives the response. */
static const char GOLDEN_INITIATE[] =
    "61876a000136208d63e8989d10570b15db499c5b1702000197fa54cf1d4ac7c406edaf57446c7d5002000175"
    "47cddd3a46884ec24f70dffd777395020001b69946b298a00b5679716bf6b97e34d00200012ab179f478b034"
    "1990be8c4dc9a08852020001b62f7f60d13249ecb355d621056110e30200019be322f40e45993c1bdee6ad17"
    "421f0b02000100b8b96257c0845ae0187f802ac93680010204f901e4d56fb94f5f309fce8dcd673ff9004502"
    "02047501a04e81b2ba1ac701bc91854e55a0432d0200016e8b433d235ee94e344626b28b3b9874010205f101"
    "106ff530f8288b32ac0f2506c7a47d490202052f01b1d3355bacdcf5279d38a6b2ab5cfa1a02000169288d4c"
    "b75a2cd7f72ae7686e64a05d010206ab011106165cd05a3d17480671894a363fca0000017b5fa3b6a3559859"
    "4d8aac14a8cdcd4e";
static const char GOLDEN_RESPONSE[] =
    "61876a000002000202006e7f90a1b2c3d4e5f60718293a4b5c6d7e8fa0b1c2d3e4f5061728394a5b6c008d9e"
    "afc0d1e2f30415263748596a7b8c9daebfd0e1f2031425364758697a8b05000002000202033f5061728394a5"
    "b6c7d8e9fa0b1c2d3e4f60718293a4b5c6d7e8f90a1b2c3d035e6f8091a2b3c4d5e6f708192a3b4c5d6e7f90"
    "a1b2c3d4e5f60718293a4b5c060206ab000000020406abbccddeef00112233445566778899aabbccddeeff10"
    "2132435465768798a90608192a3b4c5d6e7f90a1b2c3d4e5f60718293a4b5c6d7e8fa0b1c2d3e4f50606cadb"
    "ecfd0e1f30415263748596a7b8c9daebfc0d1e2f405162738495a6b7c806e9fa0b1c2d3e4f60718293a4b5c6"
    "d7e8f90a1b2c3d4e5f708192a3b4c5d6e7";

static void test_golden_reference_messages(void **state)
{
    (void)state;
    int a_items[40], b_items[40], nb = 0;
    for (int i = 0; i < 42; i++) {
        if (i < 40) {
            a_items[i] = i;
        }
        if (i != 5 && i != 20) {
            b_items[nb++] = i;
        }
    }
    struct neg_storage a, b;
    struct neg_session na, nbs;
    fill_storage(&a, a_items, 40);
    fill_storage(&b, b_items, nb);
    assert_int_equal(neg_session_init(&na, &a, NULL), 0);
    assert_int_equal(neg_session_init(&nbs, &b, NULL), 0);

    static uint8_t want[1024];
    const uint8_t *msg;
    size_t len, want_len = from_hex(GOLDEN_INITIATE, want, sizeof(want));
    assert_int_equal(neg_initiate(&na, &msg, &len), 0);
    assert_int_equal(len, want_len);
    assert_memory_equal(msg, want, len);

    struct neg_result r;
    assert_int_equal(neg_reconcile(&nbs, msg, len, &r), 0);
    want_len = from_hex(GOLDEN_RESPONSE, want, sizeof(want));
    assert_int_equal(r.msg_len, want_len);
    assert_memory_equal(r.msg, want, want_len);
    assert_int_equal(r.have_count + r.need_count, 0); /* the responder learns nothing */

    assert_int_equal(neg_reconcile(&na, r.msg, r.msg_len, &r), 0);
    assert_true(r.is_done);
    assert_null(r.msg);
    uint64_t ts;
    uint8_t id[32];
    assert_int_equal(r.have_count, 2);
    golden_item(5, &ts, id);
    assert_memory_equal(r.have, id, 32);
    golden_item(20, &ts, id);
    assert_memory_equal(r.have + 32, id, 32);
    assert_int_equal(r.need_count, 2); /* sorted by id: item 41 (06 08 ..) before 40 (06 e9 ..) */
    golden_item(41, &ts, id);
    assert_memory_equal(r.need, id, 32);
    golden_item(40, &ts, id);
    assert_memory_equal(r.need + 32, id, 32);

    neg_session_free(&na);
    neg_session_free(&nbs);
    neg_storage_free(&a);
    neg_storage_free(&b);
}

/* Whole exchanges, with and without frame-size cuts, against transcripts of two reference
 * harnesses: items i in [0, 3000) with id = SHA-256("negentropy-golden" || le32(i)) and
 * timestamp 1700000000 + id[0] % 50; A holds those with i % 7 != 3, B those with i % 11 != 5
 * plus i in [3000, 3100). The digest is SHA-256 over every message, in order, each preceded by
 * its length as le32. */
static void golden_transcript_item(uint32_t i, uint64_t *ts, uint8_t id[32])
{
    static const char tag[] = "negentropy-golden";
    uint8_t in[sizeof(tag) - 1 + 4];
    memcpy(in, tag, sizeof(tag) - 1);
    for (int k = 0; k < 4; k++) {
        in[sizeof(tag) - 1 + k] = (uint8_t)(i >> (8 * k));
    }
    crypto_hash_sha256(id, in, sizeof(in));
    *ts = 1700000000 + id[0] % 50;
}

static void hash_message(crypto_hash_sha256_state *h, const uint8_t *msg, size_t len)
{
    uint8_t len_le[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                         (uint8_t)(len >> 24)};
    crypto_hash_sha256_update(h, len_le, sizeof(len_le));
    crypto_hash_sha256_update(h, msg, len);
}

static void test_golden_reference_transcripts(void **state)
{
    (void)state;
    static const struct {
        uint64_t limit;
        size_t messages;
        const char *digest;
    } cases[] = {
        {0, 4, "6018f586bfe5784911b686f4d782bba3efc9d42c24b05145fbc5fb35a7202c3b"},
        {4096, 74, "639bade39b9e22e676df1f9075a31b4ee58b92d33c5c6558d2e0ca0a76228449"},
        {6000, 50, "b04c2cf880a6d70aea2c589d505851cd8eff93ba70382372e93edb93b3cd4ac0"},
    };
    struct neg_storage a, b;
    neg_storage_init(&a, 0);
    neg_storage_init(&b, 0);
    for (uint32_t i = 0; i < 3100; i++) {
        uint64_t ts;
        uint8_t id[32];
        golden_transcript_item(i, &ts, id);
        if (i < 3000 && i % 7 != 3) {
            assert_int_equal(neg_storage_add(&a, ts, id), 0);
        }
        if (i >= 3000 || i % 11 != 5) {
            assert_int_equal(neg_storage_add(&b, ts, id), 0);
        }
    }
    assert_int_equal(neg_storage_seal(&a), 0);
    assert_int_equal(neg_storage_seal(&b), 0);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct neg_options opt = {.frame_size_limit = cases[c].limit};
        struct neg_session ni, nr;
        struct neg_result r, q = {0};
        const uint8_t *msg;
        size_t len, messages = 0, have = 0, need = 0;
        crypto_hash_sha256_state h;
        crypto_hash_sha256_init(&h);
        assert_int_equal(neg_session_init(&ni, &a, &opt), 0);
        assert_int_equal(neg_session_init(&nr, &b, &opt), 0);
        assert_int_equal(neg_initiate(&ni, &msg, &len), 0);
        while (!q.is_done && messages < 1000) {
            hash_message(&h, msg, len);
            assert_int_equal(neg_reconcile(&nr, msg, len, &r), 0);
            hash_message(&h, r.msg, r.msg_len);
            messages += 2;
            assert_int_equal(neg_reconcile(&ni, r.msg, r.msg_len, &q), 0);
            have += q.have_count;
            need += q.need_count;
            msg = q.msg;
            len = q.msg_len;
        }
        uint8_t digest[32], want[32];
        crypto_hash_sha256_final(&h, digest);
        from_hex(cases[c].digest, want, sizeof(want));
        assert_int_equal(messages, cases[c].messages);
        assert_memory_equal(digest, want, 32);
        assert_int_equal(have, 234);
        assert_int_equal(need, 490);
        neg_session_free(&ni);
        neg_session_free(&nr);
    }
    neg_storage_free(&a);
    neg_storage_free(&b);
}

/* A responder answers another protocol version with the bare version byte (the reference's
 * downgrade signal); an initiator rejects it. */
static void test_version_negotiation(void **state)
{
    (void)state;
    int items[3] = {0, 1, 2};
    struct neg_storage s;
    struct neg_session n;
    struct neg_result r;
    fill_storage(&s, items, 3);
    assert_int_equal(neg_session_init(&n, &s, NULL), 0);
    static const uint8_t v2[] = {0x62, 0xaa, 0xbb};
    assert_int_equal(neg_reconcile(&n, v2, sizeof(v2), &r), 0);
    assert_int_equal(r.msg_len, 1);
    assert_int_equal(r.msg[0], 0x61);
    static const uint8_t v0[] = {0x60};
    assert_int_equal(neg_reconcile(&n, v0, sizeof(v0), &r), 0);
    assert_int_equal(r.msg_len, 1);
    const uint8_t *msg;
    size_t len;
    assert_int_equal(neg_initiate(&n, &msg, &len), 0);
    assert_int_equal(neg_reconcile(&n, v2, sizeof(v2), &r), P4P_EVERSION);
    neg_session_free(&n);
    neg_storage_free(&s);
}

/* ---- (b) Properties: exact reconciliation of random sets ----------------------------------- */

struct idvec {
    uint8_t *ids;
    size_t count, cap;
};

static void idvec_push(struct idvec *v, const uint8_t *ids, size_t count)
{
    if (v->count + count > v->cap) {
        v->cap = (v->count + count) * 2;
        v->ids = realloc(v->ids, v->cap * 32);
        assert_non_null(v->ids);
    }
    if (count > 0) {
        memcpy(v->ids + v->count * 32, ids, count * 32);
    }
    v->count += count;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Sorts and removes repeats; returns how many were removed. */
static size_t idvec_sort_unique(struct idvec *v)
{
    if (v->count > 1) {
        qsort(v->ids, v->count, 32, cmp_id);
    }
    size_t unique = 0;
    for (size_t i = 0; i < v->count; i++) {
        if (unique == 0 || memcmp(v->ids + (unique - 1) * 32, v->ids + i * 32, 32) != 0) {
            memmove(v->ids + unique * 32, v->ids + i * 32, 32);
            unique++;
        }
    }
    size_t removed = v->count - unique;
    v->count = unique;
    return removed;
}

enum ts_kind {
    TS_SPREAD, /* random timestamps, about two items per timestamp */
    TS_SAME,   /* every item at timestamp 0: bounds need id prefixes */
    TS_PREFIX, /* 4 timestamps and ids sharing their first 24 bytes: long prefixes */
};

struct world {
    struct neg_storage a, b;
    struct idvec only_a, only_b; /* sorted */
};

static void random_item(uint64_t *seed, enum ts_kind kind, size_t total, uint64_t *ts,
                        uint8_t id[32])
{
    for (int j = 0; j < 32; j += 8) {
        uint64_t v = splitmix64(seed);
        memcpy(id + j, &v, 8);
    }
    switch (kind) {
    case TS_SPREAD:
        *ts = 1600000000 + splitmix64(seed) % (total / 2 + 1);
        break;
    case TS_SAME:
        *ts = 0;
        break;
    case TS_PREFIX:
        *ts = splitmix64(seed) % 4;
        memset(id, 0xab, 24);
        break;
    }
}

/* `common` items on both sides, (diff + 1) / 2 only in A, diff / 2 only in B. */
static void make_world(struct world *w, size_t common, size_t diff, enum ts_kind kind,
                       uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    neg_storage_init(&w->a, 0);
    neg_storage_init(&w->b, 0);
    size_t total = common + diff;
    for (size_t i = 0; i < total; i++) {
        uint64_t ts;
        uint8_t id[32];
        random_item(&seed, kind, total, &ts, id);
        int in_a = i < common || i - common < (diff + 1) / 2;
        int in_b = i < common || !in_a;
        if (in_a) {
            assert_int_equal(neg_storage_add(&w->a, ts, id), 0);
        }
        if (in_b) {
            assert_int_equal(neg_storage_add(&w->b, ts, id), 0);
        }
        if (in_a && !in_b) {
            idvec_push(&w->only_a, id, 1);
        }
        if (in_b && !in_a) {
            idvec_push(&w->only_b, id, 1);
        }
    }
    assert_int_equal(neg_storage_seal(&w->a), 0);
    assert_int_equal(neg_storage_seal(&w->b), 0);
    assert_int_equal(idvec_sort_unique(&w->only_a), 0);
    assert_int_equal(idvec_sort_unique(&w->only_b), 0);
}

static void free_world(struct world *w)
{
    neg_storage_free(&w->a);
    neg_storage_free(&w->b);
    free(w->only_a.ids);
    free(w->only_b.ids);
}

struct conv {
    size_t rounds, bytes_up, bytes_down, max_msg_len, repeats;
};

enum { ROUNDS_MAX = 100000 };

static void check_len(const struct neg_options *opt, size_t len, struct conv *c)
{
    assert_true(len >= 1);
    if (opt->frame_size_limit != 0) {
        assert_true(len <= opt->frame_size_limit);
    }
    c->max_msg_len = len > c->max_msg_len ? len : c->max_msg_len;
}

/* Runs a whole exchange; have/need collect what the initiator learnt. */
static void converse(const struct neg_storage *init, const struct neg_options *init_opt,
                     const struct neg_storage *resp, const struct neg_options *resp_opt,
                     struct idvec *have, struct idvec *need, struct conv *c)
{
    struct neg_session ni, nr;
    struct neg_result r, q;
    const uint8_t *msg;
    size_t len;
    memset(c, 0, sizeof(*c));
    assert_int_equal(neg_session_init(&ni, init, init_opt), 0);
    assert_int_equal(neg_session_init(&nr, resp, resp_opt), 0);
    assert_int_equal(neg_initiate(&ni, &msg, &len), 0);
    for (;;) {
        check_len(init_opt, len, c);
        c->bytes_up += len;
        assert_int_equal(neg_reconcile(&nr, msg, len, &r), 0);
        assert_int_equal(r.have_count + r.need_count, 0);
        assert_false(r.is_done);
        check_len(resp_opt, r.msg_len, c);
        c->bytes_down += r.msg_len;
        assert_int_equal(neg_reconcile(&ni, r.msg, r.msg_len, &q), 0);
        idvec_push(have, q.have, q.have_count);
        idvec_push(need, q.need, q.need_count);
        c->rounds++;
        assert_true(c->rounds < ROUNDS_MAX);
        if (q.is_done) {
            assert_null(q.msg);
            break;
        }
        msg = q.msg;
        len = q.msg_len;
    }
    c->repeats = idvec_sort_unique(have) + idvec_sort_unique(need);
    neg_session_free(&ni);
    neg_session_free(&nr);
}

static void assert_ids_equal(const struct idvec *got, const struct idvec *want)
{
    assert_int_equal(got->count, want->count);
    if (want->count > 0) {
        assert_memory_equal(got->ids, want->ids, want->count * 32);
    }
}

enum { CFG_NONE, CFG_4096, CFG_SMALL, CFG_MIXED, CFG_COUNT };
static const char *const cfg_name[CFG_COUNT] = {"none", "4096", "ns-256", "ns-256/ref"};

static void cfg_options(int cfg, struct neg_options *init, struct neg_options *resp)
{
    static const struct neg_options small = {
        .frame_size_limit = 256, .buckets = 4, .flags = NEG_NONSTANDARD};
    memset(init, 0, sizeof(*init));
    memset(resp, 0, sizeof(*resp));
    if (cfg == CFG_4096) {
        init->frame_size_limit = resp->frame_size_limit = 4096;
    } else if (cfg == CFG_SMALL) {
        *init = *resp = small;
    } else if (cfg == CFG_MIXED) {
        *init = small; /* a non-standard initiator against a reference-rule responder */
    }
}

/* Both directions, every frame configuration: exactly the true differences. */
static void check_world(size_t common, size_t diff, enum ts_kind kind, uint64_t seed)
{
    struct world w;
    make_world(&w, common, diff, kind, seed);
    for (int cfg = 0; cfg < CFG_COUNT; cfg++) {
        struct neg_options oi, orr;
        cfg_options(cfg, &oi, &orr);
        for (int dir = 0; dir < 2; dir++) {
            struct idvec have = {0}, need = {0};
            struct conv c;
            const struct neg_storage *x = dir == 0 ? &w.a : &w.b, *y = dir == 0 ? &w.b : &w.a;
            converse(x, &oi, y, &orr, &have, &need, &c);
            assert_ids_equal(&have, dir == 0 ? &w.only_a : &w.only_b);
            assert_ids_equal(&need, dir == 0 ? &w.only_b : &w.only_a);
            if (cfg == CFG_NONE) {
                assert_int_equal(c.repeats, 0); /* ids repeat only when frames are cut */
                assert_true(c.rounds <= 6);     /* log16(100,000) / 2 + a little */
            }
            if (common + diff >= 100000 || (common + diff >= 1000 && diff >= 1000)) {
                print_message("n=%zu d=%zu ts=%d %-10s %s-init: %zu rounds, %zu B up, %zu B "
                              "down, largest %zu B, %zu repeated ids\n",
                              common + diff, diff, (int)kind, cfg_name[cfg], dir ? "B" : "A",
                              c.rounds, c.bytes_up, c.bytes_down, c.max_msg_len, c.repeats);
            }
            free(have.ids);
            free(need.ids);
        }
    }
    free_world(&w);
}

static void test_reconcile_small_sets(void **state)
{
    (void)state;
    static const size_t commons[] = {0, 1, 2, 31, 32, 33, 100};
    static const size_t diffs[] = {0, 1, 2, 10, 40};
    for (size_t i = 0; i < sizeof(commons) / sizeof(commons[0]); i++) {
        for (size_t j = 0; j < sizeof(diffs) / sizeof(diffs[0]); j++) {
            check_world(commons[i], diffs[j], TS_SPREAD, 1000 + i * 10 + j);
        }
    }
}

static void test_reconcile_1000(void **state)
{
    (void)state;
    static const size_t diffs[] = {0, 1, 10, 1000};
    for (size_t j = 0; j < sizeof(diffs) / sizeof(diffs[0]); j++) {
        check_world(1000, diffs[j], TS_SPREAD, 2000 + j);
        check_world(1000, diffs[j], TS_SAME, 3000 + j);
        check_world(1000, diffs[j], TS_PREFIX, 4000 + j);
    }
}

static void test_reconcile_100k(void **state)
{
    (void)state;
    static const size_t diffs[] = {0, 1, 10, 1000};
    for (size_t j = 0; j < sizeof(diffs) / sizeof(diffs[0]); j++) {
        check_world(100000 - diffs[j], diffs[j], TS_SPREAD, 5000 + j);
    }
}

/* ---- (c) Malformed input and fuzzing ------------------------------------------------------- */

struct golden_pair {
    struct neg_storage a, b;
    struct neg_session init, resp;
};

static void golden_pair_open(struct golden_pair *g)
{
    int a_items[40], b_items[40], nb = 0;
    for (int i = 0; i < 42; i++) {
        if (i < 40) {
            a_items[i] = i;
        }
        if (i != 5 && i != 20) {
            b_items[nb++] = i;
        }
    }
    fill_storage(&g->a, a_items, 40);
    fill_storage(&g->b, b_items, nb);
    assert_int_equal(neg_session_init(&g->init, &g->a, NULL), 0);
    assert_int_equal(neg_session_init(&g->resp, &g->b, NULL), 0);
    const uint8_t *msg;
    size_t len;
    assert_int_equal(neg_initiate(&g->init, &msg, &len), 0);
}

static void golden_pair_close(struct golden_pair *g)
{
    neg_session_free(&g->init);
    neg_session_free(&g->resp);
    neg_storage_free(&g->a);
    neg_storage_free(&g->b);
}

static void test_malformed_messages(void **state)
{
    (void)state;
    static uint8_t id_run[1 + 1 + 2 + 33] = {0x61, 0x00, 0x21}; /* prefix length 33 */
    static const struct {
        const char *what;
        uint8_t bytes[48];
        size_t len;
    } bad[] = {
        {"empty", {0}, 0},
        {"version below 0x60", {0x5f}, 1},
        {"version above 0x6f", {0x70, 0x00, 0x00, 0x00}, 4},
        {"truncated timestamp varint", {0x61, 0x81}, 2},
        {"non-minimal varint", {0x61, 0x80, 0x01, 0x00, 0x00}, 5},
        {"11-byte varint",
         {0x61, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00},
         14},
        {"no prefix length", {0x61, 0x00}, 2},
        {"prefix shorter than its length", {0x61, 0x00, 0x05, 0xaa, 0xbb}, 5},
        {"no mode", {0x61, 0x00, 0x00}, 3},
        {"mode 3", {0x61, 0x00, 0x00, 0x03}, 4},
        {"mode 4 (pre-v1 Continuation)", {0x61, 0x00, 0x00, 0x04}, 4},
        {"fingerprint cut short", {0x61, 0x00, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 14},
        {"IdList without count", {0x61, 0x00, 0x00, 0x02}, 4},
        {"IdList count 2, one id",
         {0x61, 0x00, 0x00, 0x02, 0x02, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
          15,   16,   17,   18,   19,   20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32},
         37},
        {"IdList count 2^60",
         {0x61, 0x00, 0x00, 0x02, 0x90, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00},
         14},
        {"bounds out of order", {0x61, 0x06, 0x01, 0xbb, 0x00, 0x01, 0x01, 0xaa, 0x00}, 9},
    };
    struct golden_pair g;
    golden_pair_open(&g);
    struct neg_result r = {.msg_len = 12345};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc_resp = neg_reconcile(&g.resp, bad[i].bytes, bad[i].len, &r);
        int rc_init = neg_reconcile(&g.init, bad[i].bytes, bad[i].len, &r);
        if (rc_resp != P4P_EMALFORMED || rc_init != P4P_EMALFORMED) {
            fail_msg("%s: responder %d, initiator %d", bad[i].what, rc_resp, rc_init);
        }
        assert_int_equal(r.msg_len, 12345); /* untouched */
    }
    assert_int_equal(neg_reconcile(&g.resp, id_run, sizeof(id_run), &r), P4P_EMALFORMED);
    /* Equal bounds are legal (the reference emits them after a frame cut). */
    static const uint8_t equal[] = {0x61, 0x06, 0x01, 0xaa, 0x00, 0x01, 0x01, 0xaa, 0x00};
    assert_int_equal(neg_reconcile(&g.resp, equal, sizeof(equal), &r), 0);
    assert_int_equal(r.msg_len, 1); /* all Skip */
    /* The responder still answers the golden message exactly. */
    static uint8_t msg[1024], want[1024];
    size_t len = from_hex(GOLDEN_INITIATE, msg, sizeof(msg));
    size_t want_len = from_hex(GOLDEN_RESPONSE, want, sizeof(want));
    assert_int_equal(neg_reconcile(&g.resp, msg, len, &r), 0);
    assert_int_equal(r.msg_len, want_len);
    assert_memory_equal(r.msg, want, want_len);
    golden_pair_close(&g);
}

/* Mutations of real messages (bit flips, cuts, inserted and repeated bytes) go to a responder
 * and an initiator, with and without frame limits: every call returns 0 or a known error, and
 * every answer is a version-1 message within the limit. */
static void test_fuzz_messages(void **state)
{
    (void)state;
    struct world w;
    make_world(&w, 2000, 300, TS_SPREAD, 77);
    static const struct neg_options opts[3] = {
        {0},
        {.frame_size_limit = 4096},
        {.frame_size_limit = 128, .buckets = 3, .flags = NEG_NONSTANDARD}};
    /* Collect seed messages from a real exchange in each configuration. */
    enum { MSGS_MAX = 512 };
    size_t corpus_cap = 1 << 22, corpus_len = 0, offsets[MSGS_MAX], lens[MSGS_MAX], n_msgs = 0;
    uint8_t *corpus = malloc(corpus_cap);
    assert_non_null(corpus);
    for (int k = 0; k < 3; k++) {
        struct neg_session ni, nr;
        struct neg_result r, q;
        const uint8_t *msg;
        size_t len;
        assert_int_equal(neg_session_init(&ni, &w.a, &opts[k]), 0);
        assert_int_equal(neg_session_init(&nr, &w.b, &opts[k]), 0);
        assert_int_equal(neg_initiate(&ni, &msg, &len), 0);
        for (int round = 0; round < 40 && n_msgs + 2 <= MSGS_MAX; round++) {
            assert_int_equal(neg_reconcile(&nr, msg, len, &r), 0);
            for (int side = 0; side < 2; side++) {
                const uint8_t *p = side == 0 ? msg : r.msg;
                size_t l = side == 0 ? len : r.msg_len;
                assert_true(corpus_len + l <= corpus_cap);
                memcpy(corpus + corpus_len, p, l);
                offsets[n_msgs] = corpus_len;
                lens[n_msgs++] = l;
                corpus_len += l;
            }
            assert_int_equal(neg_reconcile(&ni, r.msg, r.msg_len, &q), 0);
            if (q.is_done) {
                break;
            }
            msg = q.msg;
            len = q.msg_len;
        }
        neg_session_free(&ni);
        neg_session_free(&nr);
    }
    assert_true(n_msgs >= 8);

    struct neg_session resp[3], init[3];
    for (int k = 0; k < 3; k++) {
        const uint8_t *msg;
        size_t len;
        assert_int_equal(neg_session_init(&resp[k], &w.b, &opts[k]), 0);
        assert_int_equal(neg_session_init(&init[k], &w.a, &opts[k]), 0);
        assert_int_equal(neg_initiate(&init[k], &msg, &len), 0);
    }
    uint64_t seed = 99;
    size_t buf_cap = 1 << 20, accepted = 0;
    uint8_t *buf = malloc(buf_cap);
    assert_non_null(buf);
    for (int iter = 0; iter < 6000; iter++) {
        size_t m = splitmix64(&seed) % n_msgs, len = lens[m];
        if (len + 64 > buf_cap) {
            continue;
        }
        memcpy(buf, corpus + offsets[m], len);
        int edits = 1 + (int)(splitmix64(&seed) % 4);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = splitmix64(&seed) % len;
            switch (splitmix64(&seed) % 5) {
            case 0:
                buf[at] ^= (uint8_t)(1u << (splitmix64(&seed) % 8));
                break;
            case 1:
                buf[at] = (uint8_t)splitmix64(&seed);
                break;
            case 2:
                len = at; /* cut */
                break;
            case 3: /* insert a byte */
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)splitmix64(&seed);
                len++;
                break;
            default: /* repeat a span */
                if (len + 16 < buf_cap) {
                    size_t span = 1 + splitmix64(&seed) % 16;
                    span = span < len - at ? span : len - at;
                    memmove(buf + at + span, buf + at, len - at);
                    len += span;
                }
                break;
            }
        }
        for (int k = 0; k < 3; k++) {
            for (int role = 0; role < 2; role++) {
                struct neg_result r;
                int rc = neg_reconcile(role == 0 ? &resp[k] : &init[k], buf, len, &r);
                assert_true(rc == 0 || rc == P4P_EMALFORMED || rc == P4P_EVERSION);
                if (rc == 0 && !r.is_done) {
                    assert_true(r.msg_len >= 1 && r.msg[0] == NEG_PROTOCOL_VERSION);
                    assert_true(opts[k].frame_size_limit == 0 ||
                                r.msg_len <= opts[k].frame_size_limit);
                    accepted++;
                }
            }
        }
    }
    assert_true(accepted > 100); /* the fuzzer reaches past the parser */
    free(buf);
    for (int k = 0; k < 3; k++) {
        neg_session_free(&resp[k]);
        neg_session_free(&init[k]);
    }
    free(corpus);
    free_world(&w);
}

/* ---- API rules ------------------------------------------------------------------------------ */

static void test_storage_rules(void **state)
{
    (void)state;
    struct neg_storage s;
    uint8_t id[32] = {1};
    neg_storage_init(&s, 3);
    assert_int_equal(neg_storage_add(&s, NEG_TIMESTAMP_INFINITY, id), P4P_EINVAL);
    assert_int_equal(neg_storage_add(&s, 5, id), 0);
    assert_int_equal(neg_storage_add(&s, 6, id), 0); /* same id, other timestamp: allowed */
    assert_int_equal(neg_storage_add(&s, 5, id), 0);
    assert_int_equal(neg_storage_add(&s, 7, id), P4P_EFULL);
    assert_int_equal(neg_storage_seal(&s), P4P_EDUPLICATE);
    neg_storage_free(&s);

    neg_storage_init(&s, 0);
    struct neg_session n;
    assert_int_equal(neg_session_init(&n, &s, NULL), P4P_EINVAL); /* not sealed */
    assert_int_equal(neg_storage_add(&s, 9, id), 0);
    id[0] = 0;
    assert_int_equal(neg_storage_add(&s, 9, id), 0);
    assert_int_equal(neg_storage_seal(&s), 0);
    assert_int_equal(neg_storage_seal(&s), P4P_EINVAL);
    assert_int_equal(neg_storage_add(&s, 10, id), P4P_EINVAL);
    assert_int_equal(s.items[0].id[0], 0); /* sorted by id within the timestamp */
    struct neg_bound b = {.timestamp = 9, .id = {1}, .id_len = 1};
    assert_int_equal(neg_storage_lower_bound(&s, 0, 2, &b), 1);
    b.timestamp = 10;
    assert_int_equal(neg_storage_lower_bound(&s, 0, 2, &b), 2);
    neg_storage_free(&s);
}

static void test_session_options(void **state)
{
    (void)state;
    struct neg_storage s;
    struct neg_session n;
    neg_storage_init(&s, 0);
    assert_int_equal(neg_storage_seal(&s), 0);
    static const struct {
        struct neg_options o;
        int rc;
    } cases[] = {
        {{.frame_size_limit = 0}, 0},
        {{.frame_size_limit = 4096}, 0},
        {{.frame_size_limit = 4095}, P4P_EINVAL}, /* the reference's minimum */
        {{.frame_size_limit = 255}, P4P_EINVAL},
        {{.buckets = 16, .idlist_threshold = 32}, 0},
        {{.buckets = 8}, P4P_EINVAL}, /* not the reference's split */
        {{.idlist_threshold = 20}, P4P_EINVAL},
        {{.flags = 2}, P4P_EINVAL},
        {{.frame_size_limit = 255, .flags = NEG_NONSTANDARD}, 0},
        {{.frame_size_limit = 128, .buckets = 2, .flags = NEG_NONSTANDARD}, 0},
        {{.frame_size_limit = 127, .flags = NEG_NONSTANDARD}, P4P_EINVAL},
        {{.buckets = 1, .flags = NEG_NONSTANDARD}, P4P_EINVAL},
        {{.buckets = 17, .flags = NEG_NONSTANDARD}, P4P_EINVAL},
        {{.buckets = 8, .idlist_threshold = 4, .flags = NEG_NONSTANDARD}, P4P_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = neg_session_init(&n, &s, &cases[i].o);
        if (rc != cases[i].rc) {
            fail_msg("case %zu: %d, want %d", i, rc, cases[i].rc);
        }
        if (rc == 0) {
            neg_session_free(&n);
        }
    }
    /* An empty set initiates with an empty IdList up to infinity. */
    assert_int_equal(neg_session_init(&n, &s, NULL), 0);
    const uint8_t *msg;
    size_t len;
    assert_int_equal(neg_initiate(&n, &msg, &len), 0);
    static const uint8_t empty[] = {0x61, 0x00, 0x00, 0x02, 0x00};
    assert_int_equal(len, sizeof(empty));
    assert_memory_equal(msg, empty, sizeof(empty));
    neg_session_free(&n);
    neg_storage_free(&s);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_examples),
        cmocka_unit_test(test_bound_encoding),
        cmocka_unit_test(test_fingerprint_independent),
        cmocka_unit_test(test_storage_fingerprint_ranges),
        cmocka_unit_test(test_initiate_small_idlist),
        cmocka_unit_test(test_initiate_buckets_by_hand),
        cmocka_unit_test(test_golden_reference_messages),
        cmocka_unit_test(test_golden_reference_transcripts),
        cmocka_unit_test(test_version_negotiation),
        cmocka_unit_test(test_reconcile_small_sets),
        cmocka_unit_test(test_reconcile_1000),
        cmocka_unit_test(test_reconcile_100k),
        cmocka_unit_test(test_malformed_messages),
        cmocka_unit_test(test_fuzz_messages),
        cmocka_unit_test(test_storage_rules),
        cmocka_unit_test(test_session_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
