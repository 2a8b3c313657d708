/*
 * cid.h — content identifiers: multihash, CIDv1 and multibase base32, as IPFS spells them.
 *
 * Every piece of data that enters from a peer is checked against its id; this module makes
 * and checks those ids. The byte layouts follow the multiformats specifications:
 *
 *   varint      unsigned LEB128, at most 9 bytes (values below 2^63), minimal: no final 0x00
 *               byte after the first (multiformats/unsigned-varint).
 *   multihash   varint code || varint digest length || digest
 *   CIDv1       varint 1 || varint codec || multihash
 *   text        'b' || base32(binary CID): RFC 4648 alphabet in lower case, no padding
 *
 * So the CID of some raw bytes hashed with BLAKE2b-256 (multihash code 0xb220, whose varint is
 * a0 e4 02) is 01 55 a0 e4 02 20 <32-byte digest>, printed "bafk2bzace...". The engine makes
 * BLAKE2b-256 ids (crypto_generichash with a 32-byte output is exactly that function); it can
 * also check the other BLAKE2b lengths and SHA2-256/512 that libsodium provides.
 *
 * Decoding is strict, because two encodings of one id would be two ids: non-minimal or
 * over-long varints, CID versions other than 1, codecs outside the list below, a digest
 * length that does not match its hash function, bad base32 characters, a base32 length that
 * no byte string has, non-zero padding bits in the last character, and trailing bytes are all
 * rejected. Nothing here allocates; every struct has a fixed size.
 */
#ifndef P4P_CID_H
#define P4P_CID_H

#include <stddef.h>
#include <stdint.h>

/* Multihash function codes (multiformats table). */
#define MH_IDENTITY    0x00
#define MH_SHA2_256    0x12
#define MH_SHA2_512    0x13
#define MH_BLAKE2B_256 0xb220 /* BLAKE2b codes run 0xb201 (8 bits) .. 0xb240 (512 bits) */
#define MH_BLAKE2B_512 0xb240

/* Longest digest a multihash may carry here (BLAKE2b-512, SHA2-512). */
#define MH_DIGEST_MAX 64
/* Longest binary multihash: 9-byte code varint, 1-byte length, digest. */
#define MH_BIN_MAX (9 + 1 + MH_DIGEST_MAX)

/* CID codecs accepted by cid_decode() and cid_compute(). */
#define CID_CODEC_RAW         0x55
#define CID_CODEC_DAG_CBOR    0x71
#define CID_CODEC_ED25519_PUB 0xed

/* Longest binary CID: version, 9-byte codec varint, multihash. */
#define CID_BIN_MAX (1 + 9 + MH_BIN_MAX)
/* Longest text CID, without the terminating NUL. */
#define CID_TEXT_MAX (1 + (CID_BIN_MAX * 8 + 4) / 5)

struct multihash {
    uint64_t code;
    uint8_t len; /* digest length, 0..MH_DIGEST_MAX */
    uint8_t digest[MH_DIGEST_MAX];
};

/* A CIDv1 (the version is always 1, so it is not stored). */
struct cid {
    uint64_t codec;
    struct multihash mh;
};

/* ---- Base32 (RFC 4648 alphabet, lower case, no padding) ------------------------------------ */

/* Characters needed for n bytes, without the NUL. */
static inline size_t base32_encoded_len(size_t n)
{
    return (n / 5) * 8 + (n % 5 * 8 + 4) / 5;
}

/* Writes base32 of in[0..n) and a NUL to out[0..cap). 0, or P4P_ETOOBIG when cap is less
 * than base32_encoded_len(n) + 1 (out is then untouched). */
int base32_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* Decodes exactly s[0..len) (lower case only, no padding, unused bits of the last character
 * zero) into out[0..cap) and sets *out_len. 0, P4P_EMALFORMED, or P4P_ETOOBIG. */
int base32_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* ---- Multihash ----------------------------------------------------------------------------- */

/* The BLAKE2b-256 multihash of data[0..len). */
void multihash_blake2b256(struct multihash *out, const uint8_t *data, size_t len);

/* The multihash of data[0..len) with function `code`: any BLAKE2b from 128 to 512 bits,
 * SHA2-256, SHA2-512. 0, or P4P_EVERSION for a function this module cannot compute. */
int multihash_compute(struct multihash *out, uint64_t code, const uint8_t *data, size_t len);

/* 0 when mh is the hash of data[0..len); P4P_EBADSIG when it is not (the data is not what the
 * id names); P4P_EVERSION when mh's function is not one multihash_compute() knows. */
int multihash_verify(const struct multihash *mh, const uint8_t *data, size_t len);

/* Binary form into out[0..cap); *out_len is its length. 0, P4P_ETOOBIG, or P4P_EINVAL for a
 * struct that has no valid encoding (code >= 2^63, len > MH_DIGEST_MAX). */
int multihash_encode(const struct multihash *mh, uint8_t *out, size_t cap, size_t *out_len);

/* Decodes exactly buf[0..len). Any well-formed multihash with a digest of at most
 * MH_DIGEST_MAX bytes is accepted, unknown codes included; for fixed-size functions (SHA2,
 * SHA3, every BLAKE2b and BLAKE2s code) the digest length must be that function's full
 * output, truncated digests are refused. 0 or P4P_EMALFORMED. */
int multihash_decode(const uint8_t *buf, size_t len, struct multihash *out);

/* 1 when a and b are the same multihash, else 0. */
int multihash_equal(const struct multihash *a, const struct multihash *b);

/* ---- CIDv1 --------------------------------------------------------------------------------- */

/* The BLAKE2b-256 CID of data[0..len) with the given codec. 0, or P4P_EINVAL for a codec
 * outside the list above. */
int cid_compute(struct cid *out, uint64_t codec, const uint8_t *data, size_t len);

/* Binary form; same results as multihash_encode(), plus P4P_EINVAL for an unknown codec. */
int cid_encode(const struct cid *c, uint8_t *out, size_t cap, size_t *out_len);

/* Decodes exactly buf[0..len). 0; P4P_EVERSION for a well-formed varint version other than 1
 * (a CIDv0 starts with 0x12, so it lands here); P4P_EMALFORMED for anything else rejected. */
int cid_decode(const uint8_t *buf, size_t len, struct cid *out);

/* Text form 'b' + base32, NUL-terminated, into out[0..cap) (CID_TEXT_MAX + 1 always fits).
 * 0, P4P_ETOOBIG, or P4P_EINVAL as cid_encode(). */
int cid_to_text(const struct cid *c, char *out, size_t cap);

/* Parses exactly s[0..len): the prefix 'b' and the strict base32 above, then cid_decode().
 * 0, P4P_EMALFORMED or P4P_EVERSION. */
int cid_from_text(const char *s, size_t len, struct cid *out);

/* Total order: bytewise on the binary forms (a proper prefix sorts first). <0, 0, >0. Both
 * CIDs must be encodable (see cid_encode). */
int cid_compare(const struct cid *a, const struct cid *b);

/* 0 when data[0..len) is what c names; P4P_EBADSIG or P4P_EVERSION as multihash_verify(). */
int cid_verify(const struct cid *c, const uint8_t *data, size_t len);

#endif /* P4P_CID_H */
