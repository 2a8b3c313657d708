/*
 * test_peerid.c — unit tests for engine/peerid.{h,c} (peer IDs) and engine/peer_record.{h,c}
 * (signed peer records).
 *
 * Peer IDs: the RFC 8032 test-1 key gives a peer ID text and fingerprint worked out with
 * Python's hashlib and base64; round trips; strict parsing; fingerprint spellings.
 *
 * Peer records: the body bytes are checked against a hand-written encoding; the signature is
 * checked with libsodium directly over "p4p-peer-record-v1" || body; every byte of a valid
 * record flipped, every truncation, every character of the text form changed — all
 * rejected; hand-made bodies with a valid signature but a non-canonical or out-of-bounds
 * encoding are rejected; expiry and future-issue limits at their exact edges; the worst-case
 * record size.
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

#include "cbor.h"
#include "cid.h"
#include "identity.h"
#include "p4p/p4p.h"
#include "peer_record.h"
#include "peerid.h"

/* ---- Helpers ------------------------------------------------------------------------------- */

static size_t hex_to_bytes(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;

    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void identity_n(struct identity *id, uint8_t n)
{
    uint8_t seed[32];

    for (size_t i = 0; i < sizeof seed; i++) {
        seed[i] = (uint8_t)(n + i);
    }
    identity_from_seed(id, seed);
}

/* RFC 8032 section 7.1, test 1. */
#define RFC8032_SK1 "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define RFC8032_PK1 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
/* By Python: 'b' + b32encode(a0e40220 + blake2b(pk, 32)), and the digest's first 16 chars. */
#define PK1_HASH "7849ac3049680be1ef762efe0d36e01733c3464eb0c7c558138acf24bb263bd3"
#define PK1_TEXT "budsaeidyjgwdaslibpq665ro7ygtnyaxgpbumtvqy7cvqe4kz4slwjr32m"
#define PK1_FP   "pbe2-ymcj-naf6-d33w"

/* ---- Peer IDs ------------------------------------------------------------------------------ */

static void test_peerid_known_key(void **state)
{
    uint8_t seed[32], pk[32], hash[32], bin[PEERID_BIN_LEN];
    char text[PEERID_TEXT_LEN + 1], fp[PEERID_FP_LEN + 1];
    struct identity id;
    struct peerid pid, back;
    (void)state;

    hex_to_bytes(RFC8032_SK1, seed, sizeof seed);
    hex_to_bytes(RFC8032_PK1, pk, sizeof pk);
    hex_to_bytes(PK1_HASH, hash, sizeof hash);
    identity_from_seed(&id, seed);
    assert_memory_equal(id.pk, pk, 32);

    peerid_from_pk(&pid, id.pk);
    assert_memory_equal(pid.hash, hash, 32);
    peerid_to_bytes(&pid, bin);
    assert_memory_equal(bin, ((const uint8_t[]){0xa0, 0xe4, 0x02, 0x20}), 4);
    assert_memory_equal(bin + 4, hash, 32);
    peerid_to_text(&pid, text);
    assert_string_equal(text, PK1_TEXT);
    assert_int_equal(strlen(text), PEERID_TEXT_LEN);
    peerid_fingerprint(&pid, fp);
    assert_string_equal(fp, PK1_FP);

    assert_int_equal(peerid_from_text(PK1_TEXT, strlen(PK1_TEXT), &back), 0);
    assert_true(peerid_equal(&pid, &back));
    assert_int_equal(peerid_from_bytes(bin, sizeof bin, &back), 0);
    assert_true(peerid_equal(&pid, &back));
    assert_true(peerid_matches_pk(&pid, pk));
    pk[31] ^= 1;
    assert_false(peerid_matches_pk(&pid, pk));
}

static void test_peerid_rejects(void **state)
{
    char s[PEERID_TEXT_LEN + 8];
    uint8_t bin[PEERID_BIN_LEN + 4], sha[36];
    struct peerid pid;
    char shatext[80];
    (void)state;

    strcpy(s, PK1_TEXT);
    s[0] = 'B';
    assert_int_equal(peerid_from_text(s, PEERID_TEXT_LEN, &pid), P4P_EMALFORMED);
    strcpy(s, PK1_TEXT);
    s[5] = 'A';
    assert_int_equal(peerid_from_text(s, PEERID_TEXT_LEN, &pid), P4P_EMALFORMED);
    s[5] = '1';
    assert_int_equal(peerid_from_text(s, PEERID_TEXT_LEN, &pid), P4P_EMALFORMED);
    /* 36 bytes leave 2 padding bits in the last character: 'm' = 12 = 01100 is fine,
     * 'n' = 01101 sets one. */
    strcpy(s, PK1_TEXT);
    s[PEERID_TEXT_LEN - 1] = 'n';
    assert_int_equal(peerid_from_text(s, PEERID_TEXT_LEN, &pid), P4P_EMALFORMED);
    strcpy(s, PK1_TEXT);
    strcat(s, "a");
    assert_int_equal(peerid_from_text(s, strlen(s), &pid), P4P_EMALFORMED);
    for (size_t k = 0; k < PEERID_TEXT_LEN; k++) {
        assert_int_equal(peerid_from_text(PK1_TEXT, k, &pid), P4P_EMALFORMED);
    }

    /* Binary: a valid multihash of the same size that is not BLAKE2b-256 (identity, 34 bytes)
     * is not a peer ID; nor is anything with trailing bytes or cut short. */
    sha[0] = 0x00;
    sha[1] = 0x22;
    memset(sha + 2, 0x5a, 34);
    assert_int_equal(peerid_from_bytes(sha, sizeof sha, &pid), P4P_EMALFORMED);
    /* ... and in text form it has the same length, and is still refused. */
    shatext[0] = 'b';
    assert_int_equal(base32_encode(sha, sizeof sha, shatext + 1, sizeof shatext - 1), 0);
    assert_int_equal(strlen(shatext), PEERID_TEXT_LEN);
    assert_int_equal(peerid_from_text(shatext, PEERID_TEXT_LEN, &pid), P4P_EMALFORMED);
    peerid_from_pk(&pid, sha);
    peerid_to_bytes(&pid, bin);
    bin[PEERID_BIN_LEN] = 0;
    assert_int_equal(peerid_from_bytes(bin, PEERID_BIN_LEN + 1, &pid), P4P_EMALFORMED);
    for (size_t k = 0; k < PEERID_BIN_LEN; k++) {
        assert_int_equal(peerid_from_bytes(bin, k, &pid), P4P_EMALFORMED);
    }
}

static void test_peerid_fingerprint_spellings(void **state)
{
    static const struct {
        const char *s;
        int rc;
    } cases[] = {
        {"pbe2-ymcj-naf6-d33w", 1},
        {"PBE2-YMCJ-NAF6-D33W", 1},
        {"pbe2 ymcj naf6 d33w", 1},
        {"pbe2ymcjnaf6d33w", 1},
        {"Pbe2-yMcj-naf6-d33W", 1},
        {"pbe2-ymcj-naf6-d33x", 0}, /* well-formed, another key */
        {"pbe2-ymcj-naf6-d33", P4P_EMALFORMED},
        {"pbe2-ymcj-naf6-d33w-", P4P_EMALFORMED},
        {"pbe2_ymcj_naf6_d33w", P4P_EMALFORMED},
        {"pbe2-ymcj-naf6-d31w", P4P_EMALFORMED}, /* '1' is not base32 */
        {"pbe2-ymcjn-af6-d33w", P4P_EMALFORMED}, /* groups in the wrong place */
        {"", P4P_EMALFORMED},
    };
    uint8_t pk[32];
    struct peerid pid;
    (void)state;

    hex_to_bytes(RFC8032_PK1, pk, sizeof pk);
    peerid_from_pk(&pid, pk);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(peerid_fingerprint_matches(&pid, cases[i].s, strlen(cases[i].s)),
                         cases[i].rc);
    }
}

static void test_peerid_random_roundtrip_and_inputs(void **state)
{
    uint64_t seed = 11;
    (void)state;

    for (int iter = 0; iter < 20000; iter++) {
        uint8_t pk[32], bin[PEERID_BIN_LEN + 2];
        char text[PEERID_TEXT_LEN + 2], fp[PEERID_FP_LEN + 1];
        struct peerid a, b;
        size_t n;
        for (size_t i = 0; i < 32; i++) {
            pk[i] = (uint8_t)rng_next(&seed);
        }
        peerid_from_pk(&a, pk);
        peerid_to_text(&a, text);
        assert_int_equal(peerid_from_text(text, strlen(text), &b), 0);
        assert_true(peerid_equal(&a, &b));
        peerid_fingerprint(&a, fp);
        assert_int_equal(peerid_fingerprint_matches(&a, fp, strlen(fp)), 1);
        /* Random junk of every short length. */
        n = rng_next(&seed) % sizeof bin;
        for (size_t i = 0; i < n; i++) {
            bin[i] = (uint8_t)rng_next(&seed);
        }
        (void)peerid_from_bytes(bin, n, &b);
        n = rng_next(&seed) % sizeof text;
        for (size_t i = 0; i < n; i++) {
            text[i] = (char)(rng_next(&seed) % 256);
        }
        (void)peerid_from_text(text, n, &b);
        (void)peerid_fingerprint_matches(&a, text, n < 20 ? n : 19);
    }
}

/* ---- Peer records: helpers ----------------------------------------------------------------- */

#define T0      1000
#define LIFE_NS (UINT64_C(3600) * 1000000000)
#define EXPIRES (T0 + LIFE_NS)

static void sample_record(struct peer_record *rec)
{
    static const uint8_t v4[6] = {192, 0, 2, 7, 0x0f, 0xa0}; /* 192.0.2.7:4000 */
    static const uint8_t sim[4] = {0, 0, 0, 17};

    memset(rec, 0, sizeof *rec);
    rec->seq = 5;
    rec->issued_ns = T0;
    rec->expires_ns = EXPIRES;
    rec->addr_count = 2;
    rec->addrs[0].kind = PEER_ADDR_IPV4;
    rec->addrs[0].len = 6;
    memcpy(rec->addrs[0].bytes, v4, 6);
    rec->addrs[1].kind = PEER_ADDR_SIM;
    rec->addrs[1].len = 4;
    memcpy(rec->addrs[1].bytes, sim, 4);
    rec->iface_count = 2;
    rec->ifaces[0].kind = PEER_IFACE_LORA;
    rec->ifaces[0].mtu = 222;
    rec->ifaces[1].kind = PEER_IFACE_WIFI;
    rec->ifaces[1].mtu = 1500;
    rec->caps = PEER_CAP_RELAY | PEER_CAP_STORE;
}

static size_t sign_sample(const struct identity *id, uint8_t *out)
{
    struct peer_record rec;
    size_t n = 0;

    sample_record(&rec);
    assert_int_equal(peer_record_sign(&rec, id, out, PEER_RECORD_MAX, &n), 0);
    return n;
}

/* A record around arbitrary body bytes, signed correctly over the domain and the body. */
static size_t wrap_body(const struct identity *id, uint64_t version, const uint8_t *body, size_t n,
                        uint8_t *out, size_t cap)
{
    uint8_t msg[1024], sig[64];
    size_t dl = strlen(PEER_RECORD_DOMAIN);
    struct cbor_writer w;

    assert_true(dl + n <= sizeof msg);
    memcpy(msg, PEER_RECORD_DOMAIN, dl);
    memcpy(msg + dl, body, n);
    crypto_sign_detached(sig, NULL, msg, dl + n, id->sk);
    cbor_writer_init(&w, out, cap);
    cbor_put_array(&w, 3);
    cbor_put_uint(&w, version);
    cbor_put_bstr(&w, body, n);
    cbor_put_bstr(&w, sig, 64);
    assert_true(cbor_writer_ok(&w));
    return w.len;
}

/* The record's body, found by hand: 83 01 59 LL LL <body> 58 40 <sig> for a body of 256 bytes
 * or more, 83 01 58 LL <body> ... below. */
static const uint8_t *body_of(const uint8_t *rec, size_t *n)
{
    assert_int_equal(rec[0], 0x83);
    assert_int_equal(rec[1], 0x01);
    if (rec[2] == 0x58) {
        *n = rec[3];
        return rec + 4;
    }
    assert_int_equal(rec[2], 0x59);
    *n = (size_t)rec[3] << 8 | rec[4];
    return rec + 5;
}

/* ---- Peer records -------------------------------------------------------------------------- */

static void test_record_roundtrip(void **state)
{
    struct identity id;
    struct peer_record want, got;
    uint8_t buf[PEER_RECORD_MAX], again[PEER_RECORD_MAX];
    size_t n, m;
    (void)state;

    identity_n(&id, 1);
    n = sign_sample(&id, buf);
    sample_record(&want);
    memcpy(want.pk, id.pk, 32);
    assert_int_equal(peer_record_open(buf, n, T0, &got), 0);
    assert_memory_equal(&got, &want, sizeof want);
    /* Ed25519 is deterministic: signing again gives the same bytes. */
    assert_int_equal(peer_record_sign(&got, &id, again, sizeof again, &m), 0);
    assert_int_equal(m, n);
    assert_memory_equal(again, buf, n);
    /* rec->pk is ignored by the signer. */
    memset(got.pk, 0xee, 32);
    assert_int_equal(peer_record_sign(&got, &id, again, sizeof again, &m), 0);
    assert_memory_equal(again, buf, n);
    /* Output buffer one byte short. */
    assert_int_equal(peer_record_sign(&want, &id, again, n - 1, &m), P4P_ETOOBIG);
}

static void test_record_body_bytes(void **state)
{
    struct identity id;
    uint8_t buf[PEER_RECORD_MAX], want[256];
    char hex[600];
    size_t n, bl, wl;
    const uint8_t *body;
    (void)state;

    identity_n(&id, 1);
    n = sign_sample(&id, buf);
    body = body_of(buf, &bl);
    /* [pk, 5, 1000, 3600000001000, [[1, h'c00002070fa0'], [3, h'00000011']],
     *  [[1, 222], [3, 1500]], 3] */
    strcpy(hex, "875820");
    for (size_t i = 0; i < 32; i++) {
        sprintf(hex + strlen(hex), "%02x", id.pk[i]);
    }
    strcat(hex, "05"
                "1903e8"
                "1b0000034630b8a3e8"
                "82"
                "8201"
                "46c00002070fa0"
                "8203"
                "4400000011"
                "82"
                "820118de"
                "82031905dc"
                "03");
    wl = hex_to_bytes(hex, want, sizeof want);
    assert_int_equal(bl, wl);
    assert_memory_equal(body, want, wl);
    /* The record ends with the 64-byte signature, and nothing else. */
    assert_int_equal(n, 4 + bl + 2 + 64);
    assert_int_equal(buf[4 + bl], 0x58);
    assert_int_equal(buf[4 + bl + 1], 0x40);
}

static void test_record_signature_domain(void **state)
{
    struct identity id;
    uint8_t buf[PEER_RECORD_MAX], msg[PEER_RECORD_MAX + 32];
    size_t n, bl, dl = strlen("p4p-peer-record-v1");
    const uint8_t *body, *sig;
    (void)state;

    identity_n(&id, 2);
    n = sign_sample(&id, buf);
    body = body_of(buf, &bl);
    sig = buf + n - 64;
    memcpy(msg, "p4p-peer-record-v1", dl);
    memcpy(msg + dl, body, bl);
    assert_int_equal(crypto_sign_verify_detached(sig, msg, dl + bl, id.pk), 0);
    /* Not a signature of the bare body: the domain matters. */
    assert_int_not_equal(crypto_sign_verify_detached(sig, body, bl, id.pk), 0);
}

static void test_record_every_byte_flip(void **state)
{
    struct identity id;
    uint8_t buf[PEER_RECORD_MAX];
    struct peer_record out;
    size_t n;
    (void)state;

    identity_n(&id, 3);
    n = sign_sample(&id, buf);
    for (size_t i = 0; i < n; i++) {
        static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x20};
        for (size_t k = 0; k < sizeof masks; k++) {
            buf[i] ^= masks[k];
            assert_int_not_equal(peer_record_open(buf, n, T0, &out), 0);
            buf[i] ^= masks[k];
        }
    }
    assert_int_equal(peer_record_open(buf, n, T0, &out), 0);
}

static void test_record_truncations_and_junk(void **state)
{
    struct identity id;
    uint8_t buf[PEER_RECORD_MAX + 8], junk[PEER_RECORD_MAX + 8];
    struct peer_record out;
    uint64_t seed = 5;
    size_t n;
    (void)state;

    identity_n(&id, 4);
    n = sign_sample(&id, buf);
    for (size_t k = 0; k < n; k++) {
        assert_int_not_equal(peer_record_open(buf, k, T0, &out), 0);
    }
    buf[n] = 0;
    assert_int_equal(peer_record_open(buf, n + 1, T0, &out), P4P_EMALFORMED);
    /* Every 0-, 1- and 2-byte input, then random junk of every length up to the bound. */
    assert_int_not_equal(peer_record_open(junk, 0, T0, &out), 0);
    for (unsigned a = 0; a < 256; a++) {
        junk[0] = (uint8_t)a;
        assert_int_not_equal(peer_record_open(junk, 1, T0, &out), 0);
        for (unsigned b = 0; b < 256; b++) {
            junk[1] = (uint8_t)b;
            assert_int_not_equal(peer_record_open(junk, 2, T0, &out), 0);
        }
    }
    for (size_t len = 0; len <= PEER_RECORD_MAX + 1; len++) {
        for (size_t i = 0; i < len; i++) {
            junk[i] = (uint8_t)rng_next(&seed);
        }
        /* A plausible start makes the decoder go further in. */
        if (len > 3 && len % 2) {
            memcpy(junk, buf, 3);
        }
        assert_int_not_equal(peer_record_open(junk, len, T0, &out), 0);
    }
    memset(junk, 0, sizeof junk);
    assert_int_equal(peer_record_open(junk, PEER_RECORD_MAX + 1, T0, &out), P4P_ETOOBIG);
}

static void test_record_time(void **state)
{
    struct identity id;
    uint8_t buf[PEER_RECORD_MAX];
    struct peer_record out, rec;
    size_t n;
    (void)state;

    identity_n(&id, 5);
    n = sign_sample(&id, buf);
    assert_int_equal(peer_record_open(buf, n, 0, &out), 0);
    assert_int_equal(peer_record_open(buf, n, EXPIRES - 1, &out), 0);
    assert_int_equal(peer_record_open(buf, n, EXPIRES, &out), P4P_EINVAL);
    assert_int_equal(peer_record_open(buf, n, UINT64_MAX, &out), P4P_EINVAL);

    /* Issued in the future: accepted up to the skew, not a nanosecond more. */
    sample_record(&rec);
    rec.issued_ns = UINT64_C(10) * PEER_RECORD_SKEW_NS;
    rec.expires_ns = rec.issued_ns + LIFE_NS;
    assert_int_equal(peer_record_sign(&rec, &id, buf, sizeof buf, &n), 0);
    assert_int_equal(peer_record_open(buf, n, rec.issued_ns - PEER_RECORD_SKEW_NS, &out), 0);
    assert_int_equal(peer_record_open(buf, n, rec.issued_ns - PEER_RECORD_SKEW_NS - 1, &out),
                     P4P_EINVAL);
    /* Issued near the top of the clock: no overflow in the comparison. */
    rec.issued_ns = UINT64_MAX - 1;
    rec.expires_ns = UINT64_MAX;
    assert_int_equal(peer_record_sign(&rec, &id, buf, sizeof buf, &n), 0);
    assert_int_equal(peer_record_open(buf, n, 0, &out), P4P_EINVAL);
    assert_int_equal(peer_record_open(buf, n, UINT64_MAX - 2, &out), 0);
}

static void test_record_sign_rejects(void **state)
{
    struct identity id;
    uint8_t buf[PEER_RECORD_MAX];
    struct peer_record rec;
    size_t n = 123;
    (void)state;

    identity_n(&id, 6);
#define EXPECT_EINVAL(stmt)                                                                        \
    do {                                                                                           \
        sample_record(&rec);                                                                       \
        stmt;                                                                                      \
        assert_int_equal(peer_record_sign(&rec, &id, buf, sizeof buf, &n), P4P_EINVAL);            \
    } while (0)
    EXPECT_EINVAL(rec.seq = 0);
    EXPECT_EINVAL(rec.expires_ns = rec.issued_ns);
    EXPECT_EINVAL(rec.addr_count = PEER_RECORD_ADDR_MAX + 1);
    EXPECT_EINVAL(rec.iface_count = PEER_RECORD_IFACE_MAX + 1);
    EXPECT_EINVAL(rec.addrs[0].len = 5);               /* IPv4 is 6 bytes */
    EXPECT_EINVAL(rec.addrs[1].kind = PEER_ADDR_IPV6); /* 4 bytes given */
    EXPECT_EINVAL(rec.addrs[0].kind = 0);
    EXPECT_EINVAL((rec.addrs[0].kind = 99, rec.addrs[0].len = 0));
    EXPECT_EINVAL((rec.addrs[0].kind = 99, rec.addrs[0].len = PEER_ADDR_LEN_MAX + 1));
    EXPECT_EINVAL(rec.ifaces[0].mtu = 0);
    EXPECT_EINVAL(rec.ifaces[0].mtu = PEER_IFACE_MTU_MAX + 1);
    EXPECT_EINVAL(rec.ifaces[1].kind = 0);
#undef EXPECT_EINVAL
    assert_int_equal(n, 123);
}

/* Bodies with a valid signature that the strict decoder must still refuse. */
static void test_record_strict_body(void **state)
{
    struct identity id;
    uint8_t body[700], rec[800];
    struct peer_record out;
    struct cbor_writer w;
    size_t n;
    (void)state;

    identity_n(&id, 7);

    /* The canonical body of a minimal record is accepted through wrap_body. */
#define BODY_START(count)                                                                          \
    do {                                                                                           \
        cbor_writer_init(&w, body, sizeof body);                                                   \
        cbor_put_array(&w, count);                                                                 \
        cbor_put_bstr(&w, id.pk, 32);                                                              \
    } while (0)
#define EXPECT_OPEN(rc)                                                                            \
    do {                                                                                           \
        assert_true(cbor_writer_ok(&w));                                                           \
        n = wrap_body(&id, 1, body, w.len, rec, sizeof rec);                                       \
        assert_int_equal(peer_record_open(rec, n, T0, &out), rc);                                  \
    } while (0)

    BODY_START(7);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, T0);
    cbor_put_uint(&w, EXPIRES);
    cbor_put_array(&w, 0);
    cbor_put_array(&w, 0);
    cbor_put_uint(&w, 0);
    EXPECT_OPEN(0);
    assert_int_equal(out.addr_count, 0);
    assert_int_equal(out.seq, 1);

    /* seq 1 written as 18 01 (not the shortest head). */
    BODY_START(7);
    cbor_put_raw(&w, "\x18\x01", 2);
    cbor_put_uint(&w, T0);
    cbor_put_uint(&w, EXPIRES);
    cbor_put_array(&w, 0);
    cbor_put_array(&w, 0);
    cbor_put_uint(&w, 0);
    EXPECT_OPEN(P4P_EMALFORMED);

    /* seq 0. */
    BODY_START(7);
    cbor_put_uint(&w, 0);
    cbor_put_uint(&w, T0);
    cbor_put_uint(&w, EXPIRES);
    cbor_put_array(&w, 0);
    cbor_put_array(&w, 0);
    cbor_put_uint(&w, 0);
    EXPECT_OPEN(P4P_EMALFORMED);

    /* expires before issued. */
    BODY_START(7);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, EXPIRES);
    cbor_put_uint(&w, T0);
    cbor_put_array(&w, 0);
    cbor_put_array(&w, 0);
    cbor_put_uint(&w, 0);
    EXPECT_OPEN(P4P_EMALFORMED);

    /* Nine addresses. */
    BODY_START(7);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, T0);
    cbor_put_uint(&w, EXPIRES);
    cbor_put_array(&w, PEER_RECORD_ADDR_MAX + 1);
    for (int i = 0; i < PEER_RECORD_ADDR_MAX + 1; i++) {
        cbor_put_array(&w, 2);
        cbor_put_uint(&w, PEER_ADDR_SIM);
        cbor_put_bstr(&w, "\0\0\0\1", 4);
    }
    cbor_put_array(&w, 0);
    cbor_put_uint(&w, 0);
    EXPECT_OPEN(P4P_EMALFORMED);

    /* An IPv4 address of 5 bytes; an unknown kind of 33 bytes. */
    for (int variant = 0; variant < 2; variant++) {
        uint8_t a[33] = {0};
        BODY_START(7);
        cbor_put_uint(&w, 1);
        cbor_put_uint(&w, T0);
        cbor_put_uint(&w, EXPIRES);
        cbor_put_array(&w, 1);
        cbor_put_array(&w, 2);
        cbor_put_uint(&w, variant == 0 ? PEER_ADDR_IPV4 : 1000);
        cbor_put_bstr(&w, a, variant == 0 ? 5 : 33);
        cbor_put_array(&w, 0);
        cbor_put_uint(&w, 0);
        EXPECT_OPEN(P4P_EMALFORMED);
    }

    /* An interface kind beyond 32 bits; an mtu of 0. */
    for (int variant = 0; variant < 2; variant++) {
        BODY_START(7);
        cbor_put_uint(&w, 1);
        cbor_put_uint(&w, T0);
        cbor_put_uint(&w, EXPIRES);
        cbor_put_array(&w, 0);
        cbor_put_array(&w, 1);
        cbor_put_array(&w, 2);
        cbor_put_uint(&w, variant == 0 ? UINT64_C(1) << 32 : PEER_IFACE_LAN);
        cbor_put_uint(&w, variant == 0 ? 1500 : 0);
        cbor_put_uint(&w, 0);
        EXPECT_OPEN(P4P_EMALFORMED);
    }

    /* A short key; an eighth field; a trailing byte after the body array. */
    cbor_writer_init(&w, body, sizeof body);
    cbor_put_array(&w, 7);
    cbor_put_bstr(&w, id.pk, 31);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, T0);
    cbor_put_uint(&w, EXPIRES);
    cbor_put_array(&w, 0);
    cbor_put_array(&w, 0);
    cbor_put_uint(&w, 0);
    EXPECT_OPEN(P4P_EMALFORMED);
    for (int variant = 0; variant < 2; variant++) {
        BODY_START(variant == 0 ? 8 : 7);
        cbor_put_uint(&w, 1);
        cbor_put_uint(&w, T0);
        cbor_put_uint(&w, EXPIRES);
        cbor_put_array(&w, 0);
        cbor_put_array(&w, 0);
        cbor_put_uint(&w, 0);
        cbor_put_uint(&w, 0);
        EXPECT_OPEN(P4P_EMALFORMED);
    }

    /* Another version, correctly signed: EVERSION. */
    BODY_START(7);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, T0);
    cbor_put_uint(&w, EXPIRES);
    cbor_put_array(&w, 0);
    cbor_put_array(&w, 0);
    cbor_put_uint(&w, 0);
    n = wrap_body(&id, 2, body, w.len, rec, sizeof rec);
    assert_int_equal(peer_record_open(rec, n, T0, &out), P4P_EVERSION);
#undef BODY_START
#undef EXPECT_OPEN
}

static void test_record_forged(void **state)
{
    struct identity a, b;
    uint8_t buf[PEER_RECORD_MAX], forged[PEER_RECORD_MAX];
    struct peer_record out;
    const uint8_t *body;
    size_t n, bl, m;
    (void)state;

    identity_n(&a, 8);
    identity_n(&b, 9);
    n = sign_sample(&a, buf);
    body = body_of(buf, &bl);
    /* B signs A's body (with the right domain): the key inside says A, so it fails. */
    m = wrap_body(&b, 1, body, bl, forged, sizeof forged);
    assert_int_equal(m, n);
    assert_int_equal(peer_record_open(forged, m, T0, &out), P4P_EBADSIG);
    assert_int_equal(peer_record_open(buf, n, T0, &out), 0);
}

static void test_record_worst_case_size(void **state)
{
    struct identity id;
    struct peer_record rec, out;
    uint8_t buf[PEER_RECORD_MAX];
    size_t n;
    (void)state;

    identity_n(&id, 10);
    memset(&rec, 0, sizeof rec);
    rec.seq = UINT64_MAX;
    rec.issued_ns = UINT64_MAX - 1;
    rec.expires_ns = UINT64_MAX;
    rec.addr_count = PEER_RECORD_ADDR_MAX;
    for (int i = 0; i < PEER_RECORD_ADDR_MAX; i++) {
        rec.addrs[i].kind = UINT32_MAX;
        rec.addrs[i].len = PEER_ADDR_LEN_MAX;
        memset(rec.addrs[i].bytes, i, PEER_ADDR_LEN_MAX);
    }
    rec.iface_count = PEER_RECORD_IFACE_MAX;
    for (int i = 0; i < PEER_RECORD_IFACE_MAX; i++) {
        rec.ifaces[i].kind = UINT32_MAX;
        rec.ifaces[i].mtu = PEER_IFACE_MTU_MAX;
    }
    rec.caps = UINT64_MAX;
    assert_int_equal(peer_record_sign(&rec, &id, buf, sizeof buf, &n), 0);
    /* 1 + 1 + 3 + body 465 + 2 + 64. */
    assert_int_equal(n, 536);
    assert_true(n <= PEER_RECORD_MAX);
    assert_int_equal(peer_record_open(buf, n, UINT64_MAX - 1, &out), 0);
    memcpy(rec.pk, id.pk, 32);
    assert_memory_equal(&out, &rec, sizeof rec);
}

static void test_record_is_newer(void **state)
{
    struct peer_record a, b;
    (void)state;

    sample_record(&a);
    sample_record(&b);
    memset(a.pk, 1, 32);
    memset(b.pk, 1, 32);
    b.seq = a.seq + 1;
    assert_true(peer_record_is_newer(&b, &a));
    assert_false(peer_record_is_newer(&a, &b));
    b.seq = a.seq;
    b.caps = 0; /* differs, same seq: neither replaces the other */
    assert_false(peer_record_is_newer(&a, &b));
    assert_false(peer_record_is_newer(&b, &a));
    b.seq = a.seq + 1;
    b.pk[0] = 2; /* another key: never comparable */
    assert_false(peer_record_is_newer(&b, &a));
}

static void test_record_text(void **state)
{
    struct identity id;
    uint8_t buf[PEER_RECORD_MAX], back[PEER_RECORD_MAX];
    char text[PEER_RECORD_TEXT_MAX + 1], s[PEER_RECORD_TEXT_MAX + 2];
    struct peer_record out, want;
    size_t n, m, tl;
    (void)state;

    identity_n(&id, 11);
    n = sign_sample(&id, buf);
    assert_int_equal(peer_record_to_text(buf, n, text, sizeof text), 0);
    tl = strlen(text);
    assert_memory_equal(text, "p4p1:", 5);
    assert_int_equal(tl, 5 + (n * 8 + 4) / 5);
    assert_int_equal(peer_record_text_decode(text, tl, back, sizeof back, &m), 0);
    assert_int_equal(m, n);
    assert_memory_equal(back, buf, n);
    assert_int_equal(peer_record_from_text(text, tl, T0, &out), 0);
    assert_int_equal(peer_record_open(buf, n, T0, &want), 0);
    assert_memory_equal(&out, &want, sizeof out);

    /* All upper case works (QR alphanumeric mode); mixed case does not. */
    for (size_t i = 0; i <= tl; i++) {
        s[i] = (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 32 : text[i]);
    }
    assert_int_equal(peer_record_from_text(s, tl, T0, &out), 0);
    for (size_t i = 5; i < tl; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z') {
            s[i] = (char)(s[i] + 32);
            assert_int_equal(peer_record_from_text(s, tl, T0, &out), P4P_EMALFORMED);
            s[i] = (char)(s[i] - 32);
        }
    }
    memcpy(s, "p4p1:", 5); /* lower-case prefix, upper-case data */
    assert_int_equal(peer_record_from_text(s, tl, T0, &out), P4P_EMALFORMED);

    /* Every character changed to every other alphabet character: rejected. */
    for (size_t i = 0; i < tl; i++) {
        const char *alpha = "abcdefghijklmnopqrstuvwxyz234567:";
        for (const char *a = alpha; *a; a++) {
            if (text[i] == *a) {
                continue;
            }
            memcpy(s, text, tl + 1);
            s[i] = *a;
            assert_int_not_equal(peer_record_from_text(s, tl, T0, &out), 0);
        }
    }
    /* Every prefix, a trailing character, another prefix. */
    for (size_t k = 0; k < tl; k++) {
        assert_int_not_equal(peer_record_from_text(text, k, T0, &out), 0);
    }
    memcpy(s, text, tl);
    s[tl] = 'a';
    assert_int_not_equal(peer_record_from_text(s, tl + 1, T0, &out), 0);
    memcpy(s, text, tl);
    memcpy(s, "p4p2:", 5);
    assert_int_equal(peer_record_from_text(s, tl, T0, &out), P4P_EMALFORMED);
    /* Expired through the text path too. */
    assert_int_equal(peer_record_from_text(text, tl, EXPIRES, &out), P4P_EINVAL);
    /* Buffer limits. */
    assert_int_equal(peer_record_to_text(buf, n, text, 10), P4P_ETOOBIG);
    assert_int_equal(peer_record_to_text(buf, 0, text, sizeof text), P4P_EINVAL);
    assert_int_equal(peer_record_to_text(buf, PEER_RECORD_MAX + 1, text, sizeof text), P4P_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peerid_known_key),
        cmocka_unit_test(test_peerid_rejects),
        cmocka_unit_test(test_peerid_fingerprint_spellings),
        cmocka_unit_test(test_peerid_random_roundtrip_and_inputs),
        cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_record_body_bytes),
        cmocka_unit_test(test_record_signature_domain),
        cmocka_unit_test(test_record_every_byte_flip),
        cmocka_unit_test(test_record_truncations_and_junk),
        cmocka_unit_test(test_record_time),
        cmocka_unit_test(test_record_sign_rejects),
        cmocka_unit_test(test_record_strict_body),
        cmocka_unit_test(test_record_forged),
        cmocka_unit_test(test_record_worst_case_size),
        cmocka_unit_test(test_record_is_newer),
        cmocka_unit_test(test_record_text),
    };

    if (sodium_init() < 0) {
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
