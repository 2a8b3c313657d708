/*
 * peerid.c — peer IDs from Ed25519 public keys (see peerid.h).
 */
#include "peerid.h"

#include <string.h>

#include <sodium.h>

#include "cid.h"
#include "p4p/p4p.h"

/* The fingerprint covers the first 10 digest bytes: exactly 16 base32 characters. */
#define FP_BYTES 10
#define FP_CHARS 16

void peerid_from_pk(struct peerid *out, const uint8_t pk[32])
{
    crypto_generichash(out->hash, PEERID_HASH_LEN, pk, 32, NULL, 0);
}

int peerid_matches_pk(const struct peerid *id, const uint8_t pk[32])
{
    struct peerid other;

    peerid_from_pk(&other, pk);
    return peerid_equal(id, &other);
}

int peerid_equal(const struct peerid *a, const struct peerid *b)
{
    return memcmp(a->hash, b->hash, PEERID_HASH_LEN) == 0;
}

void peerid_to_bytes(const struct peerid *id, uint8_t out[PEERID_BIN_LEN])
{
    /* The multihash header of a BLAKE2b-256 digest: varint 0xb220, then length 32. */
    static const uint8_t header[4] = {0xa0, 0xe4, 0x02, 0x20};

    memcpy(out, header, sizeof header);
    memcpy(out + sizeof header, id->hash, PEERID_HASH_LEN);
}

int peerid_from_bytes(const uint8_t *buf, size_t len, struct peerid *out)
{
    struct multihash mh;

    if (multihash_decode(buf, len, &mh) != 0 || mh.code != MH_BLAKE2B_256) {
        return P4P_EMALFORMED;
    }
    /* multihash_decode() has checked that a BLAKE2b-256 digest is 32 bytes. */
    memcpy(out->hash, mh.digest, PEERID_HASH_LEN);
    return 0;
}

void peerid_to_text(const struct peerid *id, char out[PEERID_TEXT_LEN + 1])
{
    uint8_t bin[PEERID_BIN_LEN];

    peerid_to_bytes(id, bin);
    out[0] = 'b';
    (void)base32_encode(bin, sizeof bin, out + 1, PEERID_TEXT_LEN); /* fits exactly */
}

int peerid_from_text(const char *s, size_t len, struct peerid *out)
{
    uint8_t bin[PEERID_BIN_LEN];
    size_t n;

    if (len != PEERID_TEXT_LEN || s[0] != 'b') {
        return P4P_EMALFORMED;
    }
    if (base32_decode(s + 1, len - 1, bin, sizeof bin, &n) != 0) {
        return P4P_EMALFORMED;
    }
    return peerid_from_bytes(bin, n, out);
}

void peerid_fingerprint(const struct peerid *id, char out[PEERID_FP_LEN + 1])
{
    char b32[FP_CHARS + 1];
    size_t o = 0;

    (void)base32_encode(id->hash, FP_BYTES, b32, sizeof b32);
    for (size_t i = 0; i < FP_CHARS; i++) {
        if (i > 0 && i % 4 == 0) {
            out[o++] = '-';
        }
        out[o++] = b32[i];
    }
    out[o] = 0;
}

int peerid_fingerprint_matches(const struct peerid *id, const char *s, size_t len)
{
    char want[PEERID_FP_LEN + 1];
    char got[FP_CHARS];
    size_t n = 0;
    uint8_t dummy[FP_BYTES];
    size_t dummy_len;
    int grouped = len == PEERID_FP_LEN;

    if (len != FP_CHARS && len != PEERID_FP_LEN) {
        return P4P_EMALFORMED;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (grouped && i % 5 == 4) {
            if (c != '-' && c != ' ') {
                return P4P_EMALFORMED;
            }
            continue;
        }
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        got[n++] = c;
    }
    /* Every character must be base32; 16 characters are exactly 10 bytes, no padding bits. */
    if (base32_decode(got, FP_CHARS, dummy, sizeof dummy, &dummy_len) != 0) {
        return P4P_EMALFORMED;
    }
    peerid_fingerprint(id, want);
    for (size_t i = 0, j = 0; i < PEERID_FP_LEN; i++) {
        if (want[i] == '-') {
            continue;
        }
        if (want[i] != got[j++]) {
            return 0;
        }
    }
    return 1;
}
