/*
 * peerid.h — peer IDs: the name of a node that follows from its Ed25519 public key.
 *
 * A peer ID is the BLAKE2b-256 multihash of the 32-byte public key (see cid.h):
 *
 *   binary     a0 e4 02 20 <32-byte digest>                       PEERID_BIN_LEN = 36 bytes
 *   text       'b' + base32(binary), lower case, no padding       "budsaei..." (59 chars)
 *   fingerprint  the first 16 base32 characters of the digest in four groups, "abcd-efgh-ijkl-mnop"
 *
 * The text form is what logs, configuration and peer records print. The fingerprint is for
 * people comparing two screens: 80 bits, enough that nobody can make a key whose fingerprint
 * matches a given one, but it names no peer by itself, so it is only ever checked against a
 * peer ID (peerid_fingerprint_matches), never turned back into one.
 *
 * Since the ID is a hash of the key, a key either matches an ID or it does not: there is no
 * such thing as a "changed key" for a peer ID (trust.h binds names to keys for that).
 */
#ifndef P4P_PEERID_H
#define P4P_PEERID_H

#include <stddef.h>
#include <stdint.h>

#define PEERID_HASH_LEN 32
#define PEERID_BIN_LEN  36 /* multihash: 4-byte header + digest */
#define PEERID_TEXT_LEN 59 /* 'b' + 58 base32 characters, no NUL */
#define PEERID_FP_LEN   19 /* "abcd-efgh-ijkl-mnop", no NUL */

struct peerid {
    uint8_t hash[PEERID_HASH_LEN]; /* BLAKE2b-256 of the Ed25519 public key */
};

void peerid_from_pk(struct peerid *out, const uint8_t pk[32]);

/* 1 when pk is the key this ID names, else 0. */
int peerid_matches_pk(const struct peerid *id, const uint8_t pk[32]);

/* 1 when a and b are the same ID, else 0. */
int peerid_equal(const struct peerid *a, const struct peerid *b);

/* The 36-byte multihash. */
void peerid_to_bytes(const struct peerid *id, uint8_t out[PEERID_BIN_LEN]);

/* Exactly buf[0..len) must be a BLAKE2b-256 multihash. 0 or P4P_EMALFORMED. */
int peerid_from_bytes(const uint8_t *buf, size_t len, struct peerid *out);

/* Writes the text form and a NUL (PEERID_TEXT_LEN + 1 bytes). */
void peerid_to_text(const struct peerid *id, char out[PEERID_TEXT_LEN + 1]);

/* Parses exactly s[0..len), the strict form that peerid_to_text() writes. 0 or
 * P4P_EMALFORMED. */
int peerid_from_text(const char *s, size_t len, struct peerid *out);

/* Writes the fingerprint and a NUL (PEERID_FP_LEN + 1 bytes). */
void peerid_fingerprint(const struct peerid *id, char out[PEERID_FP_LEN + 1]);

/* Checks a fingerprint a person typed or read against id. Accepted spellings: the 16
 * characters in either case, in four groups of four separated by '-' or ' ', or run
 * together. Returns 1 on a match, 0 on a well-formed fingerprint that does not match, or
 * P4P_EMALFORMED. */
int peerid_fingerprint_matches(const struct peerid *id, const char *s, size_t len);

#endif /* P4P_PEERID_H */
