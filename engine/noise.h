/*
 * noise.h — the Noise Protocol Framework (revision 34, noiseprotocol.org/noise.html) for the
 * two handshake patterns p4p uses, XX and IK, over libsodium.
 *
 * Suite: DH = 25519 (crypto_scalarmult), cipher = ChaChaPoly (IETF ChaCha20-Poly1305, nonce =
 * 32 zero bits then the 64-bit counter little-endian), hash chosen at init among SHA256,
 * SHA512 and BLAKE2b (BLAKE2b-512 through crypto_generichash). HMAC and HKDF are built over
 * the chosen hash exactly as the spec's section 4.3 says, not borrowed from libsodium.
 *
 * The three objects of the spec's section 5 map to three structs:
 *
 *   struct noise_cipher     CipherState     k, n: EncryptWithAd, DecryptWithAd, Rekey
 *   struct noise_symmetric  SymmetricState  ck, h: MixKey, MixHash, MixKeyAndHash, Split, ...
 *   struct noise_handshake  HandshakeState  s, e, rs, re and the message pattern position
 *
 * A handshake runs like this (XX shown; IK has two messages instead of three):
 *
 *   initiator                                   responder
 *   noise_handshake_init(I)                     noise_handshake_init(R)
 *   noise_handshake_write(I) -- e ------------> noise_handshake_read(R)
 *   noise_handshake_read(I)  <-- e,ee,s,es ---- noise_handshake_write(R)
 *   noise_handshake_write(I) -- s,se ---------> noise_handshake_read(R)
 *   noise_handshake_split(I) -> send, recv      noise_handshake_split(R) -> send, recv
 *
 * noise_handshake_action() tells which call is due next.
 *
 * Sans-I/O and allocation-free: every struct has a fixed size and lives where the caller puts
 * it; every output goes into a caller buffer with an explicit capacity. Ephemeral keys are
 * either given (test vectors) or drawn from the caller's random callback, never from the OS.
 *
 * Failures. Every function returns 0 or a negative P4P_E* code (engine/include/p4p/p4p.h):
 *   P4P_EBADSIG     authentication failed (a MAC did not verify: tampering or a wrong key)
 *   P4P_EMALFORMED  a message has the wrong length, or a DH gave the all-zero result (the
 *                   peer sent a low-order point)
 *   P4P_ETOOBIG     the output buffer is too small, or a message would exceed 65535 bytes
 *   P4P_EFULL       the nonce reached 2^64-1, which the spec reserves
 *   P4P_EINVAL      the call does not fit the state (e.g. writing when a read is due)
 * A failed call changes nothing: a CipherState keeps its nonce (spec 5.1) and a handshake read
 * or write is transactional, so a tampered or truncated datagram can simply be dropped and
 * the handshake continued with the genuine one. (The spec allows aborting instead; keeping
 * the state is what a datagram transport needs.) Output buffers hold unspecified bytes after
 * a failure.
 *
 * Secrets (k, ck, private keys) are wiped with sodium_memzero by noise_cipher_clear,
 * noise_handshake_split and noise_handshake_destroy. The caller must have called
 * sodium_init() once before any of these functions.
 */
#ifndef P4P_NOISE_H
#define P4P_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOISE_DHLEN       32
#define NOISE_KEYLEN      32
#define NOISE_TAGLEN      16
#define NOISE_HASHLEN_MAX 64
#define NOISE_MSG_MAX     65535      /* the spec's bound on any Noise message */
#define NOISE_NONCE_MAX   UINT64_MAX /* reserved: never used to encrypt a message */

enum noise_hash {
    NOISE_HASH_SHA256 = 1,
    NOISE_HASH_SHA512 = 2,
    NOISE_HASH_BLAKE2B = 3,
};

enum noise_pattern {
    NOISE_PATTERN_XX = 1, /* -> e;  <- e, ee, s, es;  -> s, se */
    NOISE_PATTERN_IK = 2, /* <- s ...;  -> e, es, s, ss;  <- e, ee, se */
};

/* HASHLEN of a hash: 32 or 64; 0 for an unknown value. */
size_t noise_hash_len(enum noise_hash hash);

/* ---- CipherState --------------------------------------------------------------------------- */

struct noise_cipher {
    uint8_t k[NOISE_KEYLEN];
    uint64_t n;
    bool has_key;
};

/* InitializeKey(k): sets the key and n = 0. k == NULL gives the empty key (no encryption). */
void noise_cipher_init(struct noise_cipher *c, const uint8_t k[NOISE_KEYLEN]);
/* Wipes the key; the CipherState then has no key. */
void noise_cipher_clear(struct noise_cipher *c);
void noise_cipher_set_nonce(struct noise_cipher *c, uint64_t n);

/* EncryptWithAd: writes ciphertext + 16-byte tag (pt_len + 16 bytes; pt_len bytes when the
 * state has no key) to out and increments n. out may equal pt (in place) but must not
 * otherwise overlap it. Fails with P4P_EFULL when n == 2^64-1. */
int noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
                         const uint8_t *pt, size_t pt_len, uint8_t *out, size_t out_cap,
                         size_t *out_len);
/* DecryptWithAd: on success writes ct_len - 16 bytes and increments n; on failure n is
 * unchanged. */
int noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
                         const uint8_t *ct, size_t ct_len, uint8_t *out, size_t out_cap,
                         size_t *out_len);

/* The same with an explicit nonce, leaving c->n alone: for datagram transports that carry
 * the nonce in the clear and accept messages out of order (the caller then owns replay
 * protection and must never encrypt twice with one nonce). Require a key. */
int noise_cipher_encrypt_at(const struct noise_cipher *c, uint64_t n, const uint8_t *ad,
                            size_t ad_len, const uint8_t *pt, size_t pt_len, uint8_t *out,
                            size_t out_cap, size_t *out_len);
int noise_cipher_decrypt_at(const struct noise_cipher *c, uint64_t n, const uint8_t *ad,
                            size_t ad_len, const uint8_t *ct, size_t ct_len, uint8_t *out,
                            size_t out_cap, size_t *out_len);

/* Rekey(): k = the first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero bytes); n is kept.
 * P4P_EINVAL when there is no key. */
int noise_cipher_rekey(struct noise_cipher *c);

/* ---- SymmetricState ------------------------------------------------------------------------ */

struct noise_symmetric {
    struct noise_cipher cs;
    uint8_t ck[NOISE_HASHLEN_MAX];
    uint8_t h[NOISE_HASHLEN_MAX];
    enum noise_hash hash;
    size_t hash_len;
};

/* InitializeSymmetric(protocol_name). P4P_EINVAL for an unknown hash. */
int noise_symmetric_init(struct noise_symmetric *ss, enum noise_hash hash, const char *name);
void noise_symmetric_mix_hash(struct noise_symmetric *ss, const uint8_t *data, size_t len);
void noise_symmetric_mix_key(struct noise_symmetric *ss, const uint8_t *ikm, size_t len);
void noise_symmetric_mix_key_and_hash(struct noise_symmetric *ss, const uint8_t *ikm, size_t len);
int noise_symmetric_encrypt_and_hash(struct noise_symmetric *ss, const uint8_t *pt, size_t pt_len,
                                     uint8_t *out, size_t out_cap, size_t *out_len);
int noise_symmetric_decrypt_and_hash(struct noise_symmetric *ss, const uint8_t *ct, size_t ct_len,
                                     uint8_t *out, size_t out_cap, size_t *out_len);
/* Split(): the two transport CipherStates (initiator-to-responder first). Does not wipe ss. */
void noise_symmetric_split(const struct noise_symmetric *ss, struct noise_cipher *c1,
                           struct noise_cipher *c2);

/* HMAC-HASH and HKDF of spec section 4.3, exposed for tests. out* are hash_len bytes each;
 * out3 may be NULL for the two-output form. */
void noise_hmac(enum noise_hash hash, const uint8_t *key, size_t key_len, const uint8_t *data,
                size_t data_len, uint8_t out[NOISE_HASHLEN_MAX]);
void noise_hkdf(enum noise_hash hash, const uint8_t *ck, const uint8_t *ikm, size_t ikm_len,
                uint8_t *out1, uint8_t *out2, uint8_t *out3);

/* ---- HandshakeState ------------------------------------------------------------------------ */

/* The caller's random source: fills out with len random bytes. */
typedef void (*noise_random_fn)(void *ctx, uint8_t *out, size_t len);

struct noise_handshake_config {
    enum noise_pattern pattern;
    enum noise_hash hash;
    bool is_initiator;
    const uint8_t *prologue; /* may be NULL when prologue_len == 0; copied into h at init */
    size_t prologue_len;
    const uint8_t *s_priv;  /* required: our static X25519 private key, 32 bytes */
    const uint8_t *rs;      /* IK initiator: the responder's static public key; else NULL */
    const uint8_t *e_priv;  /* optional fixed ephemeral private key (test vectors only) */
    noise_random_fn random; /* required unless e_priv is given */
    void *random_ctx;
};

enum noise_action {
    NOISE_ACTION_WRITE = 1, /* call noise_handshake_write */
    NOISE_ACTION_READ = 2,  /* call noise_handshake_read */
    NOISE_ACTION_SPLIT = 3, /* the handshake is complete: call noise_handshake_split */
    NOISE_ACTION_DONE = 4,  /* split already done (or the state was destroyed) */
};

struct noise_handshake {
    struct noise_symmetric ss;
    enum noise_pattern pattern;
    bool is_initiator;
    bool has_rs, has_re, has_fixed_e;
    uint8_t s_priv[NOISE_DHLEN], s_pub[NOISE_DHLEN];
    uint8_t e_priv[NOISE_DHLEN], e_pub[NOISE_DHLEN];
    uint8_t rs[NOISE_DHLEN], re[NOISE_DHLEN];
    uint8_t fixed_e[NOISE_DHLEN];
    uint32_t msg_index; /* next message of the pattern, from 0 */
    bool split_done;
    noise_random_fn random;
    void *random_ctx;
};

/* Initialize(handshake_pattern, initiator, prologue, s, e, rs, re) with the protocol name
 * Noise_<XX|IK>_25519_ChaChaPoly_<hash>. 0 or P4P_EINVAL (missing key, unknown pattern/hash,
 * IK initiator without rs, neither e_priv nor random). */
int noise_handshake_init(struct noise_handshake *hs, const struct noise_handshake_config *cfg);

enum noise_action noise_handshake_action(const struct noise_handshake *hs);

/* WriteMessage(payload, message_buffer): writes the next handshake message to out. */
int noise_handshake_write(struct noise_handshake *hs, const uint8_t *payload, size_t payload_len,
                          uint8_t *out, size_t out_cap, size_t *out_len);
/* ReadMessage(message, payload_buffer): reads the next handshake message, writes its payload.
 * Transactional: on failure hs is exactly as before. */
int noise_handshake_read(struct noise_handshake *hs, const uint8_t *msg, size_t msg_len,
                         uint8_t *payload, size_t payload_cap, size_t *payload_len);

/* The remote static public key once known (IK initiator: from the start; otherwise once the
 * message carrying it was read), else NULL. Points into hs. */
const uint8_t *noise_handshake_remote_static(const struct noise_handshake *hs);
/* Our static public key. */
const uint8_t *noise_handshake_local_static(const struct noise_handshake *hs);
/* The handshake hash h (hash_len bytes, returned). Final once the last message is done. */
size_t noise_handshake_hash(const struct noise_handshake *hs, uint8_t out[NOISE_HASHLEN_MAX]);

/* Split(): after the last message, the CipherState to send with and the one to receive with
 * (for the initiator c1/c2, for the responder c2/c1). Wipes every secret of hs but keeps h and
 * rs readable. P4P_EINVAL before the handshake is complete. */
int noise_handshake_split(struct noise_handshake *hs, struct noise_cipher *send,
                          struct noise_cipher *recv);

/* Wipes everything. */
void noise_handshake_destroy(struct noise_handshake *hs);

/* Bytes of the next message for a payload of payload_len bytes (0 if none is due to write). */
size_t noise_handshake_write_len(const struct noise_handshake *hs, size_t payload_len);

#endif /* P4P_NOISE_H */
