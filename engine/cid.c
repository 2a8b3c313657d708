/*
 * cid.c — multihash, CIDv1 and base32 (see cid.h).
 *
 * Decoders read with explicit bounds and never look past len; encoders measure first and
 * write nothing when the output does not fit.
 */
#include "cid.h"

#include <string.h>

#include <sodium.h>

#include "p4p/p4p.h"

/* multiformats/unsigned-varint: 9 bytes carry 63 bits, and a longer varint is an error. */
#define VARINT_MAX_LEN 9
#define VARINT_LIMIT   (UINT64_C(1) << 63)

static const char B32_ALPHABET[] = "abcdefghijklmnopqrstuvwxyz234567";

/* ---- Varint -------------------------------------------------------------------------------- */

/* Writes v (< 2^63) to out, which has room for VARINT_MAX_LEN bytes; returns the length. */
static size_t varint_put(uint8_t *out, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* Reads one minimal varint from p[0..len); 0 or P4P_EMALFORMED. */
static int varint_get(const uint8_t *p, size_t len, uint64_t *v, size_t *used)
{
    uint64_t x = 0;

    for (size_t i = 0; i < len && i < VARINT_MAX_LEN; i++) {
        x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            if (i > 0 && p[i] == 0) {
                return P4P_EMALFORMED; /* a final zero group adds nothing: not minimal */
            }
            *v = x;
            *used = i + 1;
            return 0;
        }
    }
    return P4P_EMALFORMED; /* truncated, or longer than 9 bytes */
}

/* ---- Base32 -------------------------------------------------------------------------------- */

int base32_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t need = base32_encoded_len(n);
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;

    if (cap == 0 || need > cap - 1) {
        return P4P_ETOOBIG;
    }
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = B32_ALPHABET[(acc >> bits) & 31];
        }
    }
    if (bits > 0) {
        out[o++] = B32_ALPHABET[(acc << (5 - bits)) & 31];
    }
    out[o] = 0;
    return 0;
}

static int b32_value(char c)
{
    if (c >= 'a' && c <= 'z') {
        return c - 'a';
    }
    if (c >= '2' && c <= '7') {
        return c - '2' + 26;
    }
    return -1;
}

int base32_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    /* Of the 8 possible lengths of a final group, 1, 3 and 6 characters end no byte string. */
    static const uint8_t valid_tail[8] = {1, 0, 1, 0, 1, 1, 0, 1};
    size_t need = len / 8 * 5 + (len % 8) * 5 / 8;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;

    if (!valid_tail[len % 8]) {
        return P4P_EMALFORMED;
    }
    if (need > cap) {
        return P4P_ETOOBIG;
    }
    for (size_t i = 0; i < len; i++) {
        int v = b32_value(s[i]);
        if (v < 0) {
            return P4P_EMALFORMED;
        }
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits are padding; non-zero padding would give a second spelling of the bytes. */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        return P4P_EMALFORMED;
    }
    *out_len = o;
    return 0;
}

/* ---- Multihash ----------------------------------------------------------------------------- */

/* The digest length that `code` must carry, or -1 when any length is accepted. */
static int mh_expected_len(uint64_t code)
{
    if (code >= 0xb201 && code <= 0xb240) { /* BLAKE2b-8 .. BLAKE2b-512 */
        return (int)(code - 0xb200);
    }
    if (code >= 0xb241 && code <= 0xb260) { /* BLAKE2s-8 .. BLAKE2s-256 */
        return (int)(code - 0xb240);
    }
    switch (code) {
    case MH_SHA2_256:
    case 0x16: /* sha3-256 */
        return 32;
    case 0x17: /* sha3-224 */
        return 28;
    case 0x15: /* sha3-384 */
        return 48;
    case MH_SHA2_512:
    case 0x14: /* sha3-512 */
        return 64;
    default:
        return -1;
    }
}

void multihash_blake2b256(struct multihash *out, const uint8_t *data, size_t len)
{
    memset(out, 0, sizeof *out);
    out->code = MH_BLAKE2B_256;
    out->len = 32;
    crypto_generichash(out->digest, 32, data, len, NULL, 0);
}

int multihash_compute(struct multihash *out, uint64_t code, const uint8_t *data, size_t len)
{
    struct multihash mh;

    memset(&mh, 0, sizeof mh);
    mh.code = code;
    if (code >= 0xb200 + crypto_generichash_BYTES_MIN &&
        code <= 0xb200 + crypto_generichash_BYTES_MAX) {
        mh.len = (uint8_t)(code - 0xb200);
        crypto_generichash(mh.digest, mh.len, data, len, NULL, 0);
    } else if (code == MH_SHA2_256) {
        mh.len = crypto_hash_sha256_BYTES;
        crypto_hash_sha256(mh.digest, data, len);
    } else if (code == MH_SHA2_512) {
        mh.len = crypto_hash_sha512_BYTES;
        crypto_hash_sha512(mh.digest, data, len);
    } else {
        return P4P_EVERSION;
    }
    *out = mh;
    return 0;
}

int multihash_verify(const struct multihash *mh, const uint8_t *data, size_t len)
{
    struct multihash got;
    int rc = multihash_compute(&got, mh->code, data, len);

    if (rc != 0) {
        return rc;
    }
    if (got.len != mh->len || sodium_memcmp(got.digest, mh->digest, got.len) != 0) {
        return P4P_EBADSIG;
    }
    return 0;
}

int multihash_encode(const struct multihash *mh, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t tmp[MH_BIN_MAX];
    size_t n;

    if (mh->code >= VARINT_LIMIT || mh->len > MH_DIGEST_MAX) {
        return P4P_EINVAL;
    }
    n = varint_put(tmp, mh->code);
    n += varint_put(tmp + n, mh->len);
    memcpy(tmp + n, mh->digest, mh->len);
    n += mh->len;
    if (n > cap) {
        return P4P_ETOOBIG;
    }
    memcpy(out, tmp, n);
    *out_len = n;
    return 0;
}

/* Reads one multihash from the start of buf[0..len); *used is its length. */
static int mh_get(const uint8_t *buf, size_t len, struct multihash *out, size_t *used)
{
    struct multihash mh;
    uint64_t dlen;
    size_t a, b;
    int expected;

    memset(&mh, 0, sizeof mh);
    if (varint_get(buf, len, &mh.code, &a) != 0 || varint_get(buf + a, len - a, &dlen, &b) != 0) {
        return P4P_EMALFORMED;
    }
    expected = mh_expected_len(mh.code);
    if (dlen > MH_DIGEST_MAX || (expected >= 0 && dlen != (uint64_t)expected) ||
        dlen > len - a - b) {
        return P4P_EMALFORMED;
    }
    mh.len = (uint8_t)dlen;
    memcpy(mh.digest, buf + a + b, mh.len);
    *out = mh;
    *used = a + b + mh.len;
    return 0;
}

int multihash_decode(const uint8_t *buf, size_t len, struct multihash *out)
{
    struct multihash mh;
    size_t used;

    if (mh_get(buf, len, &mh, &used) != 0 || used != len) {
        return P4P_EMALFORMED;
    }
    *out = mh;
    return 0;
}

int multihash_equal(const struct multihash *a, const struct multihash *b)
{
    return a->code == b->code && a->len == b->len && a->len <= MH_DIGEST_MAX &&
           memcmp(a->digest, b->digest, a->len) == 0;
}

/* ---- CIDv1 --------------------------------------------------------------------------------- */

static int codec_known(uint64_t codec)
{
    return codec == CID_CODEC_RAW || codec == CID_CODEC_DAG_CBOR || codec == CID_CODEC_ED25519_PUB;
}

int cid_compute(struct cid *out, uint64_t codec, const uint8_t *data, size_t len)
{
    if (!codec_known(codec)) {
        return P4P_EINVAL;
    }
    out->codec = codec;
    multihash_blake2b256(&out->mh, data, len);
    return 0;
}

int cid_encode(const struct cid *c, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t tmp[CID_BIN_MAX];
    size_t n, mlen;
    int rc;

    if (!codec_known(c->codec)) {
        return P4P_EINVAL;
    }
    n = varint_put(tmp, 1);
    n += varint_put(tmp + n, c->codec);
    rc = multihash_encode(&c->mh, tmp + n, sizeof tmp - n, &mlen);
    if (rc != 0) {
        return rc;
    }
    n += mlen;
    if (n > cap) {
        return P4P_ETOOBIG;
    }
    memcpy(out, tmp, n);
    *out_len = n;
    return 0;
}

int cid_decode(const uint8_t *buf, size_t len, struct cid *out)
{
    struct cid c;
    uint64_t version;
    size_t a, b, used;

    if (varint_get(buf, len, &version, &a) != 0) {
        return P4P_EMALFORMED;
    }
    if (version != 1) {
        return P4P_EVERSION;
    }
    if (varint_get(buf + a, len - a, &c.codec, &b) != 0 || !codec_known(c.codec)) {
        return P4P_EMALFORMED;
    }
    if (mh_get(buf + a + b, len - a - b, &c.mh, &used) != 0 || a + b + used != len) {
        return P4P_EMALFORMED;
    }
    *out = c;
    return 0;
}

int cid_to_text(const struct cid *c, char *out, size_t cap)
{
    uint8_t bin[CID_BIN_MAX];
    size_t n;
    int rc = cid_encode(c, bin, sizeof bin, &n);

    if (rc != 0) {
        return rc;
    }
    if (cap < 1) {
        return P4P_ETOOBIG;
    }
    rc = base32_encode(bin, n, out + 1, cap - 1);
    if (rc != 0) {
        return rc;
    }
    out[0] = 'b';
    return 0;
}

int cid_from_text(const char *s, size_t len, struct cid *out)
{
    uint8_t bin[CID_BIN_MAX];
    size_t n;

    if (len < 1 || s[0] != 'b' || len > CID_TEXT_MAX) {
        return P4P_EMALFORMED;
    }
    if (base32_decode(s + 1, len - 1, bin, sizeof bin, &n) != 0) {
        return P4P_EMALFORMED;
    }
    return cid_decode(bin, n, out);
}

int cid_compare(const struct cid *a, const struct cid *b)
{
    uint8_t ba[CID_BIN_MAX], bb[CID_BIN_MAX];
    size_t na = 0, nb = 0;
    int r;

    /* Unencodable CIDs are a programmer error; they compare as empty. */
    if (cid_encode(a, ba, sizeof ba, &na) != 0) {
        na = 0;
    }
    if (cid_encode(b, bb, sizeof bb, &nb) != 0) {
        nb = 0;
    }
    r = memcmp(ba, bb, na < nb ? na : nb);
    if (r != 0) {
        return r;
    }
    return (na > nb) - (na < nb);
}

int cid_verify(const struct cid *c, const uint8_t *data, size_t len)
{
    return multihash_verify(&c->mh, data, len);
}
