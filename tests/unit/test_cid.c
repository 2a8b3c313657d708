/*
 * test_cid.c — unit tests for engine/cid.{h,c}: base32, multihash, CIDv1.
 *
 * Known values come from outside the module: RFC 4648 section 10 for base32, RFC 7693 and
 * FIPS 180-2 digests of "abc", and CID strings worked out with Python's hashlib and base64
 * (hard-coded below). The CID strings are also rebuilt inside the test from the bytes the
 * multiformats specs prescribe (01 55 a0 e4 02 20 <digest>) with a bit-at-a-time base32
 * written here, independent of the module's. Then: strict rejections one by one, every
 * truncation, exhaustive short inputs, and fixed-seed random inputs with the property that
 * whatever decodes re-encodes to the same bytes (one id, one spelling).
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

#include "cid.h"
#include "p4p/p4p.h"

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

/* splitmix64: a fixed-seed stream for the random tests. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* The reference base32: one bit at a time, straight from RFC 4648 section 6. */
static void ref_base32(const uint8_t *in, size_t n, char *out)
{
    const char *alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    size_t nbits = n * 8, o = 0;

    for (size_t bit = 0; bit < nbits; bit += 5) {
        unsigned v = 0;
        for (size_t k = 0; k < 5; k++) {
            size_t b = bit + k;
            unsigned x = b < nbits ? (in[b / 8] >> (7 - b % 8)) & 1 : 0;
            v = (v << 1) | x;
        }
        out[o++] = alphabet[v];
    }
    out[o] = 0;
}

static int decode_text(const char *s, struct cid *c)
{
    return cid_from_text(s, strlen(s), c);
}

/* ---- Base32 -------------------------------------------------------------------------------- */

static void test_base32_rfc4648(void **state)
{
    static const char *vec[][2] = {
        {"", ""},
        {"f", "my"},
        {"fo", "mzxq"},
        {"foo", "mzxw6"},
        {"foob", "mzxw6yq"},
        {"fooba", "mzxw6ytb"},
        {"foobar", "mzxw6ytboi"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        char out[32];
        uint8_t back[16];
        size_t n = 99;
        size_t len = strlen(vec[i][0]);

        assert_int_equal(base32_encode((const uint8_t *)vec[i][0], len, out, sizeof out), 0);
        assert_string_equal(out, vec[i][1]);
        assert_int_equal(base32_encoded_len(len), strlen(vec[i][1]));
        assert_int_equal(base32_decode(vec[i][1], strlen(vec[i][1]), back, sizeof back, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(back, vec[i][0], len);
    }
}

static void test_base32_rejects(void **state)
{
    static const char *bad[] = {
        "MY",       /* upper case */
        "my======", /* padding */
        "m",        /* 1 character ends no byte string */
        "mzx",      /* 3 */
        "mzxw6y",   /* 6 */
        "mz",       /* 'z' leaves padding bits 01 */
        "mzxr",     /* "fo" with padding bit set */
        "m0",       /* '0', '1', '8', '9' are not in the alphabet */
        "m1",       "m8", "m9", "m ", "m-",
    };
    uint8_t out[16];
    size_t n = 77;
    char buf[8];
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(base32_decode(bad[i], strlen(bad[i]), out, sizeof out, &n),
                         P4P_EMALFORMED);
    }
    assert_int_equal(n, 77); /* untouched on failure */
    /* A NUL inside the input is a bad character, not an end. */
    assert_int_equal(base32_decode("m\0", 2, out, sizeof out, &n), P4P_EMALFORMED);
    /* Output too small, either way. */
    assert_int_equal(base32_decode("mzxw6", 5, out, 2, &n), P4P_ETOOBIG);
    assert_int_equal(base32_encode((const uint8_t *)"foo", 3, buf, 5), P4P_ETOOBIG);
    assert_int_equal(base32_encode((const uint8_t *)"foo", 3, buf, 6), 0);
    assert_int_equal(base32_encode((const uint8_t *)"", 0, buf, 0), P4P_ETOOBIG);
}

/* Every string of up to 3 characters over the alphabet plus a few strangers: it decodes
 * exactly when it is the encoding of what it decodes to. */
static void test_base32_canonical_exhaustive(void **state)
{
    const char *chars = "abcdefghijklmnopqrstuvwxyz234567A0=";
    size_t nc = strlen(chars);
    size_t accepted = 0;
    (void)state;

    for (size_t len = 0; len <= 3; len++) {
        size_t total = 1;
        for (size_t k = 0; k < len; k++) {
            total *= nc;
        }
        for (size_t idx = 0; idx < total; idx++) {
            char s[4], again[8];
            uint8_t out[4];
            size_t n, x = idx;
            for (size_t k = 0; k < len; k++) {
                s[k] = chars[x % nc];
                x /= nc;
            }
            s[len] = 0;
            if (base32_decode(s, len, out, sizeof out, &n) == 0) {
                accepted++;
                assert_int_equal(base32_encode(out, n, again, sizeof again), 0);
                assert_string_equal(again, s);
            }
        }
    }
    /* "" plus the 256 one-byte strings (2 characters); no 1- or 3-character string. */
    assert_int_equal(accepted, 1 + 256);
}

static void test_base32_random_vs_reference(void **state)
{
    uint64_t seed = 42;
    (void)state;

    for (int iter = 0; iter < 2000; iter++) {
        uint8_t in[100], back[100];
        char got[170], want[170];
        size_t n = rng_next(&seed) % sizeof in, m;
        for (size_t i = 0; i < n; i++) {
            in[i] = (uint8_t)rng_next(&seed);
        }
        ref_base32(in, n, want);
        assert_int_equal(base32_encode(in, n, got, sizeof got), 0);
        assert_string_equal(got, want);
        assert_int_equal(base32_decode(got, strlen(got), back, sizeof back, &m), 0);
        assert_int_equal(m, n);
        assert_memory_equal(back, in, n);
    }
}

/* ---- Multihash ----------------------------------------------------------------------------- */

static void test_multihash_known_digests(void **state)
{
    uint8_t want[64], buf[MH_BIN_MAX];
    struct multihash mh;
    size_t n;
    (void)state;

    /* BLAKE2b-512("abc"), RFC 7693 appendix A. */
    hex_to_bytes("ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab79"
                 "2dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
                 want, sizeof want);
    assert_int_equal(multihash_compute(&mh, MH_BLAKE2B_512, (const uint8_t *)"abc", 3), 0);
    assert_int_equal(mh.len, 64);
    assert_memory_equal(mh.digest, want, 64);
    assert_int_equal(multihash_encode(&mh, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 3 + 1 + 64); /* c0 e4 02, 40 (length 64 fits one varint byte) */
    assert_int_equal(buf[0], 0xc0);
    assert_int_equal(buf[1], 0xe4);
    assert_int_equal(buf[2], 0x02);
    assert_int_equal(buf[3], 0x40);

    /* SHA2-256("abc"), FIPS 180-2. */
    hex_to_bytes("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want,
                 sizeof want);
    assert_int_equal(multihash_compute(&mh, MH_SHA2_256, (const uint8_t *)"abc", 3), 0);
    assert_int_equal(mh.len, 32);
    assert_memory_equal(mh.digest, want, 32);
    assert_int_equal(multihash_encode(&mh, buf, sizeof buf, &n), 0);
    assert_int_equal(n, 34);
    assert_int_equal(buf[0], 0x12);
    assert_int_equal(buf[1], 0x20);

    /* BLAKE2b-256("hello world") (Python hashlib.blake2b(digest_size=32)). */
    hex_to_bytes("256c83b297114d201b30179f3f0ef0cace9783622da5974326b436178aeef610", want,
                 sizeof want);
    multihash_blake2b256(&mh, (const uint8_t *)"hello world", 11);
    assert_int_equal(mh.code, MH_BLAKE2B_256);
    assert_int_equal(mh.len, 32);
    assert_memory_equal(mh.digest, want, 32);
    assert_int_equal(multihash_verify(&mh, (const uint8_t *)"hello world", 11), 0);
    assert_int_equal(multihash_verify(&mh, (const uint8_t *)"hello World", 11), P4P_EBADSIG);

    /* Functions libsodium does not have. */
    assert_int_equal(multihash_compute(&mh, 0x16, (const uint8_t *)"abc", 3), P4P_EVERSION);
    assert_int_equal(multihash_compute(&mh, 0xb201, (const uint8_t *)"abc", 3), P4P_EVERSION);
    assert_int_equal(multihash_compute(&mh, MH_IDENTITY, (const uint8_t *)"abc", 3), P4P_EVERSION);
}

/* Each case: header bytes, then `pad` filler bytes standing for the digest. */
static void test_multihash_decode_rules(void **state)
{
    static const struct {
        const char *hex;
        size_t pad;
        int ok;
    } cases[] = {
        {"a0e40220", 32, 1},              /* BLAKE2b-256 */
        {"a0e4021f", 31, 0},              /* BLAKE2b-256 with 31 bytes */
        {"a0e40221", 33, 0},              /* ... with 33 */
        {"a0e40220", 31, 0},              /* digest shorter than its length says */
        {"a0e4820020", 32, 0},            /* code varint not minimal */
        {"a0e402a000", 32, 0},            /* length varint not minimal (0x20 as a0 00) */
        {"1214", 20, 0},                  /* SHA2-256 truncated to 20 bytes */
        {"90e40210", 16, 1},              /* BLAKE2b-128 (0xb210) */
        {"800606", 6, 1},                 /* unknown code 0x300 (80 06), 6 bytes */
        {"00", 0, 0},                     /* identity, length missing */
        {"0000", 0, 1},                   /* identity, empty digest */
        {"0041", 65, 0},                  /* identity, 65 bytes: over MH_DIGEST_MAX */
        {"800000", 0, 0},                 /* code 0 spelled in two bytes */
        {"ffffffffffffffff7f00", 0, 1},   /* code 2^63 - 1, nine bytes: the largest */
        {"ffffffffffffffffff0100", 0, 0}, /* ten-byte varint */
        {"80", 0, 0},                     /* truncated varint */
        {"", 0, 0},                       /* empty */
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[128], again[MH_BIN_MAX];
        struct multihash mh;
        size_t n = hex_to_bytes(cases[i].hex, buf, sizeof buf), m;
        for (size_t k = 0; k < cases[i].pad; k++) {
            buf[n++] = (uint8_t)(k * 7);
        }
        int rc = multihash_decode(buf, n, &mh);
        assert_int_equal(rc, cases[i].ok ? 0 : P4P_EMALFORMED);
        if (cases[i].ok) {
            assert_int_equal(mh.len, cases[i].pad);
            assert_int_equal(multihash_encode(&mh, again, sizeof again, &m), 0);
            assert_int_equal(m, n);
            assert_memory_equal(again, buf, n);
            /* Trailing garbage, and every truncation. */
            buf[n] = 0;
            assert_int_equal(multihash_decode(buf, n + 1, &mh), P4P_EMALFORMED);
            for (size_t k = 0; k < n; k++) {
                assert_int_equal(multihash_decode(buf, k, &mh), P4P_EMALFORMED);
            }
        }
    }
}

static void test_multihash_encode_limits(void **state)
{
    struct multihash mh;
    uint8_t buf[MH_BIN_MAX];
    size_t n = 5;
    (void)state;

    multihash_blake2b256(&mh, NULL, 0);
    assert_int_equal(multihash_encode(&mh, buf, 35, &n), P4P_ETOOBIG);
    assert_int_equal(n, 5);
    assert_int_equal(multihash_encode(&mh, buf, 36, &n), 0);
    assert_int_equal(n, 36);
    mh.code = UINT64_C(1) << 63;
    assert_int_equal(multihash_encode(&mh, buf, sizeof buf, &n), P4P_EINVAL);
    mh.code = MH_BLAKE2B_256;
    mh.len = MH_DIGEST_MAX + 1;
    assert_int_equal(multihash_encode(&mh, buf, sizeof buf, &n), P4P_EINVAL);
}

/* ---- CID ----------------------------------------------------------------------------------- */

/* The CID strings, by Python: 'b' + b32encode(01 <codec> a0 e4 02 20 + blake2b(m, 32)). */
#define CID_RAW_EMPTY  "bafk2bzaceahfouoae3suhmxivmxlayez3kq5dzo7i53y654h7kvultprf7r2q"
#define CID_RAW_HELLO  "bafk2bzaceaswza5ss4iu2ia3galz6pyo6dfm5f4dmiw2lf2de22dmf4k533ba"
#define CID_CBOR_HELLO "bafy2bzaceaswza5ss4iu2ia3galz6pyo6dfm5f4dmiw2lf2de22dmf4k533ba"

/* The same string built here: libsodium for the hash, the bytes laid out by hand, the
 * reference base32. */
static void independent_cid_text(uint8_t codec, const char *msg, char *out)
{
    uint8_t bin[38] = {0x01, codec, 0xa0, 0xe4, 0x02, 0x20};

    crypto_generichash(bin + 6, 32, (const uint8_t *)msg, strlen(msg), NULL, 0);
    out[0] = 'b';
    ref_base32(bin, sizeof bin, out + 1);
}

static void test_cid_known_strings(void **state)
{
    static const struct {
        uint64_t codec;
        const char *msg;
        const char *text;
    } vec[] = {
        {CID_CODEC_RAW, "", CID_RAW_EMPTY},
        {CID_CODEC_RAW, "hello world", CID_RAW_HELLO},
        {CID_CODEC_DAG_CBOR, "hello world", CID_CBOR_HELLO},
    };
    (void)state;

    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        char text[CID_TEXT_MAX + 1], indep[CID_TEXT_MAX + 1];
        uint8_t bin[CID_BIN_MAX];
        struct cid c, d;
        size_t n;
        const uint8_t *m = (const uint8_t *)vec[i].msg;
        size_t mlen = strlen(vec[i].msg);

        independent_cid_text((uint8_t)vec[i].codec, vec[i].msg, indep);
        assert_string_equal(indep, vec[i].text);

        assert_int_equal(cid_compute(&c, vec[i].codec, m, mlen), 0);
        assert_int_equal(cid_to_text(&c, text, sizeof text), 0);
        assert_string_equal(text, vec[i].text);
        assert_int_equal(strlen(text), 62);
        assert_int_equal(cid_encode(&c, bin, sizeof bin, &n), 0);
        assert_int_equal(n, 38);
        assert_memory_equal(
            bin, ((const uint8_t[]){0x01, (uint8_t)vec[i].codec, 0xa0, 0xe4, 0x02, 0x20}), 6);

        assert_int_equal(decode_text(vec[i].text, &d), 0);
        assert_int_equal(d.codec, vec[i].codec);
        assert_true(multihash_equal(&c.mh, &d.mh));
        assert_int_equal(cid_compare(&c, &d), 0);
        assert_int_equal(cid_verify(&d, m, mlen), 0);
        assert_int_equal(cid_verify(&d, (const uint8_t *)"x", 1), P4P_EBADSIG);
    }
}

static void test_cid_other_codecs_and_hashes(void **state)
{
    struct cid c, d;
    uint8_t pk[32], bin[CID_BIN_MAX];
    size_t n;
    (void)state;

    memset(pk, 7, sizeof pk);
    assert_int_equal(cid_compute(&c, CID_CODEC_ED25519_PUB, pk, sizeof pk), 0);
    assert_int_equal(cid_encode(&c, bin, sizeof bin, &n), 0);
    /* 0xed needs two varint bytes: ed 01. */
    assert_int_equal(n, 39);
    assert_int_equal(bin[1], 0xed);
    assert_int_equal(bin[2], 0x01);
    assert_int_equal(cid_decode(bin, n, &d), 0);
    assert_int_equal(d.codec, CID_CODEC_ED25519_PUB);
    assert_int_equal(cid_verify(&d, pk, sizeof pk), 0);

    assert_int_equal(cid_compute(&c, 0x70, pk, sizeof pk), P4P_EINVAL); /* dag-pb: not ours */

    /* A SHA2-256 CID is decoded and verified; an unknown hash decodes but cannot verify. */
    c.codec = CID_CODEC_RAW;
    assert_int_equal(multihash_compute(&c.mh, MH_SHA2_256, pk, sizeof pk), 0);
    assert_int_equal(cid_encode(&c, bin, sizeof bin, &n), 0);
    assert_int_equal(cid_decode(bin, n, &d), 0);
    assert_int_equal(cid_verify(&d, pk, sizeof pk), 0);
    pk[0] ^= 1;
    assert_int_equal(cid_verify(&d, pk, sizeof pk), P4P_EBADSIG);
    c.mh.code = 0x300;
    assert_int_equal(cid_encode(&c, bin, sizeof bin, &n), 0);
    assert_int_equal(cid_decode(bin, n, &d), 0);
    assert_int_equal(cid_verify(&d, pk, sizeof pk), P4P_EVERSION);
}

static void test_cid_decode_rejects(void **state)
{
    static const struct {
        const char *hex;
        size_t pad;
        int rc;
    } cases[] = {
        {"0155a0e40220", 32, 0},                /* the good one */
        {"0171a0e40220", 32, 0},                /* dag-cbor */
        {"0055a0e40220", 32, P4P_EVERSION},     /* version 0 */
        {"0255a0e40220", 32, P4P_EVERSION},     /* version 2 */
        {"1220", 32, P4P_EVERSION},             /* a CIDv0 (bare sha2-256 multihash) */
        {"810055a0e40220", 32, P4P_EMALFORMED}, /* version 1 spelled 81 00 */
        {"01d500a0e40220", 32, P4P_EMALFORMED}, /* codec 0x55 spelled d5 00 */
        {"0170a0e40220", 32, P4P_EMALFORMED},   /* codec dag-pb: not accepted here */
        {"0155a0e4021f", 31, P4P_EMALFORMED},   /* digest length 31 for BLAKE2b-256 */
        {"01", 0, P4P_EMALFORMED},              /* truncated */
        {"", 0, P4P_EMALFORMED},                /* empty */
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[64];
        struct cid c;
        size_t n = hex_to_bytes(cases[i].hex, buf, sizeof buf);
        for (size_t k = 0; k < cases[i].pad; k++) {
            buf[n++] = (uint8_t)(0x40 + k);
        }
        assert_int_equal(cid_decode(buf, n, &c), cases[i].rc);
        if (cases[i].rc == 0) {
            assert_memory_equal(c.mh.digest, buf + 6, 32);
            /* Every truncation and one trailing byte are rejected. */
            for (size_t k = 0; k < n; k++) {
                assert_int_not_equal(cid_decode(buf, k, &c), 0);
            }
            buf[n] = 0;
            assert_int_equal(cid_decode(buf, n + 1, &c), P4P_EMALFORMED);
        }
    }
}

static void test_cid_text_rejects(void **state)
{
    char s[CID_TEXT_MAX + 8];
    struct cid c;
    size_t len = strlen(CID_RAW_HELLO);
    (void)state;

    assert_int_equal(decode_text(CID_RAW_HELLO, &c), 0);
    /* Every prefix (including the bare 'b' and the empty string). */
    for (size_t k = 0; k < len; k++) {
        assert_int_not_equal(cid_from_text(CID_RAW_HELLO, k, &c), 0);
    }
    /* Other multibase prefixes, upper case, trailing characters. */
    strcpy(s, CID_RAW_HELLO);
    s[0] = 'B';
    assert_int_equal(decode_text(s, &c), P4P_EMALFORMED);
    s[0] = 'z';
    assert_int_equal(decode_text(s, &c), P4P_EMALFORMED);
    for (size_t i = 0; s[i]; i++) {
        s[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    }
    assert_int_equal(decode_text(s, &c), P4P_EMALFORMED);
    strcpy(s, CID_RAW_HELLO);
    strcat(s, "a");
    assert_int_not_equal(decode_text(s, &c), 0);
    strcpy(s, CID_RAW_HELLO);
    strcat(s, "aa");
    assert_int_not_equal(decode_text(s, &c), 0);
    /* 38 bytes = 61 characters and 2 spare bits: the last character must be even-valued
     * ('a' = 0 is what "...533ba" ends with); 'b' = 1 sets a padding bit. */
    strcpy(s, CID_RAW_HELLO);
    s[len - 1] = 'b';
    assert_int_equal(decode_text(s, &c), P4P_EMALFORMED);
    /* Every single-character substitution is rejected or names another CID. */
    for (size_t i = 0; i < len; i++) {
        const char *alpha = "abcdefghijklmnopqrstuvwxyz234567";
        for (const char *a = alpha; *a; a++) {
            struct cid d;
            strcpy(s, CID_RAW_HELLO);
            if (s[i] == *a) {
                continue;
            }
            s[i] = *a;
            if (decode_text(s, &d) == 0) {
                char again[CID_TEXT_MAX + 1];
                assert_int_not_equal(cid_compare(&c, &d), 0);
                assert_int_equal(cid_to_text(&d, again, sizeof again), 0);
                assert_string_equal(again, s);
            }
        }
    }
}

static void test_cid_compare_order(void **state)
{
    struct cid a, b, c;
    char ta[CID_TEXT_MAX + 1];
    (void)state;

    assert_int_equal(cid_compute(&a, CID_CODEC_RAW, (const uint8_t *)"a", 1), 0);
    assert_int_equal(cid_compute(&b, CID_CODEC_RAW, (const uint8_t *)"b", 1), 0);
    assert_int_equal(cid_compute(&c, CID_CODEC_DAG_CBOR, (const uint8_t *)"a", 1), 0);
    assert_int_equal(cid_compare(&a, &a), 0);
    assert_true(cid_compare(&a, &b) != 0);
    assert_true((cid_compare(&a, &b) < 0) == (cid_compare(&b, &a) > 0));
    /* The codec byte comes before the digest: raw (0x55) < dag-cbor (0x71). */
    assert_true(cid_compare(&a, &c) < 0);
    assert_true(cid_compare(&c, &b) > 0);
    /* A shorter digest that is a prefix sorts first. */
    b = a;
    b.mh.code = 0x300;
    b.mh.len = 31;
    c = b;
    c.mh.len = 32;
    assert_true(cid_compare(&b, &c) < 0);
    assert_int_equal(cid_to_text(&a, ta, 10), P4P_ETOOBIG);
}

/* ---- Malformed input never crashes; what decodes re-encodes identically -------------------- */

/* Returns 1 when buf decoded as a CID. */
static int check_roundtrip_bin(const uint8_t *buf, size_t n)
{
    struct cid c;
    struct multihash mh;
    uint8_t again[CID_BIN_MAX];
    size_t m;
    int is_cid = 0;

    if (cid_decode(buf, n, &c) == 0) {
        assert_int_equal(cid_encode(&c, again, sizeof again, &m), 0);
        assert_int_equal(m, n);
        assert_memory_equal(again, buf, n);
        is_cid = 1;
    }
    if (multihash_decode(buf, n, &mh) == 0) {
        assert_int_equal(multihash_encode(&mh, again, sizeof again, &m), 0);
        assert_int_equal(m, n);
        assert_memory_equal(again, buf, n);
    }
    return is_cid;
}

static void test_short_inputs_exhaustive(void **state)
{
    uint8_t buf[3] = {0};
    (void)state;

    check_roundtrip_bin(buf, 0);
    for (unsigned a = 0; a < 256; a++) {
        buf[0] = (uint8_t)a;
        check_roundtrip_bin(buf, 1);
        for (unsigned b = 0; b < 256; b++) {
            buf[1] = (uint8_t)b;
            check_roundtrip_bin(buf, 2);
        }
    }
}

static void test_random_inputs(void **state)
{
    uint64_t seed = 7;
    struct cid good;
    uint8_t goodbin[CID_BIN_MAX];
    size_t goodlen;
    int decoded = 0;
    (void)state;

    assert_int_equal(cid_compute(&good, CID_CODEC_RAW, (const uint8_t *)"x", 1), 0);
    assert_int_equal(cid_encode(&good, goodbin, sizeof goodbin, &goodlen), 0);
    for (int iter = 0; iter < 100000; iter++) {
        uint8_t buf[CID_BIN_MAX + 4];
        char text[CID_TEXT_MAX + 4];
        struct cid c;
        size_t n = rng_next(&seed) % sizeof buf;
        uint64_t r = rng_next(&seed);
        if (r % 2 == 0 && n >= goodlen) {
            /* A valid CID with a few bytes changed: exercises the deep paths. */
            memcpy(buf, goodbin, goodlen);
            n = goodlen + (r >> 8) % 3;
            for (int k = 0; k < 3; k++) {
                buf[rng_next(&seed) % n] = (uint8_t)rng_next(&seed);
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                buf[i] = (uint8_t)rng_next(&seed);
            }
        }
        decoded += check_roundtrip_bin(buf, n);
        /* Random text over the alphabet with a 'b' in front. */
        size_t tl = rng_next(&seed) % sizeof text;
        for (size_t i = 0; i < tl; i++) {
            text[i] = "abcdefghijklmnopqrstuvwxyz234567"[rng_next(&seed) % 32];
        }
        if (tl > 0) {
            text[0] = 'b';
        }
        if (cid_from_text(text, tl, &c) == 0) {
            char again[CID_TEXT_MAX + 1];
            assert_int_equal(cid_to_text(&c, again, sizeof again), 0);
            assert_int_equal(strlen(again), tl);
            assert_memory_equal(again, text, tl);
        }
    }
    /* The mutated CIDs keep their structure often enough for the property to bite. */
    assert_true(decoded > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base32_rfc4648),
        cmocka_unit_test(test_base32_rejects),
        cmocka_unit_test(test_base32_canonical_exhaustive),
        cmocka_unit_test(test_base32_random_vs_reference),
        cmocka_unit_test(test_multihash_known_digests),
        cmocka_unit_test(test_multihash_decode_rules),
        cmocka_unit_test(test_multihash_encode_limits),
        cmocka_unit_test(test_cid_known_strings),
        cmocka_unit_test(test_cid_other_codecs_and_hashes),
        cmocka_unit_test(test_cid_decode_rejects),
        cmocka_unit_test(test_cid_text_rejects),
        cmocka_unit_test(test_cid_compare_order),
        cmocka_unit_test(test_short_inputs_exhaustive),
        cmocka_unit_test(test_random_inputs),
    };

    if (sodium_init() < 0) {
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
