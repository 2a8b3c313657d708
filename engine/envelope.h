/*
 * envelope.h — the engine's wire messages: a versioned envelope in deterministic CBOR.
 *
 * Every frame is one CBOR array whose first two elements are the wire version (1) and the
 * message kind. docs/PROTOCOL.md gives the byte layout; in short:
 *
 *   UPDATE  [1, 1, hops, body: bstr, sig: bstr .size 64]
 *           body = [origin: bstr .size 32, seq: uint, created_ns: uint, payload: bstr]
 *           sig  = Ed25519(origin's key, body bytes); update id = BLAKE2b-256(body bytes)
 *   DIGEST  [1, 2, ids: bstr]     ids = n * 8-byte id prefixes: "these are my newest"
 *   WANT    [1, 3, ids: bstr]     "send me these"
 *   OFFER   [1, 4, ids: bstr]     reply to a DIGEST: "I have these, which you did not list"
 *
 * Decoding is strict (deterministic encoding only, exact lengths, no trailing bytes) and
 * returns pointers into the caller's buffer; nothing is allocated.
 */
#ifndef P4P_ENVELOPE_H
#define P4P_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define ENV_VERSION       1
#define ENV_ID_PREFIX_LEN 8

enum env_kind {
    ENV_UPDATE = 1,
    ENV_DIGEST = 2,
    ENV_WANT = 3,
    ENV_OFFER = 4,
    ENV_BLOB = 5, /* [1, 5, msg: bstr] — a blob-sync message (engine/blob.h) */
};

struct env_update {
    uint64_t hops;
    const uint8_t *body;
    size_t body_len;
    const uint8_t *origin; /* 32 bytes */
    uint64_t seq;
    uint64_t created_ns;
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *sig; /* 64 bytes */
};

struct env_ids {
    const uint8_t *ids; /* count * ENV_ID_PREFIX_LEN bytes */
    size_t count;
};

struct env_bytes {
    const uint8_t *data;
    size_t len;
};

struct env_msg {
    enum env_kind kind;
    union {
        struct env_update update;
        struct env_ids ids;
        struct env_bytes blob;
    } u;
};

/* Returns 0, P4P_EMALFORMED, or P4P_EVERSION (well-formed but another wire version). */
int env_decode(const uint8_t *buf, size_t len, struct env_msg *out);

/* Encoders return the encoded length, or 0 when it does not fit in `cap`. */
size_t env_encode_body(uint8_t *out, size_t cap, const uint8_t origin[32], uint64_t seq,
                       uint64_t created_ns, const uint8_t *payload, size_t payload_len);
size_t env_encode_update(uint8_t *out, size_t cap, uint64_t hops, const uint8_t *body,
                         size_t body_len, const uint8_t sig[64]);
size_t env_encode_ids(uint8_t *out, size_t cap, enum env_kind kind, const uint8_t *ids,
                      size_t count);
size_t env_encode_blob(uint8_t *out, size_t cap, const uint8_t *msg, size_t len);

/* Bytes env_encode_blob adds around a message of up to 65535 bytes. */
#define ENV_BLOB_OVERHEAD 6

#endif /* P4P_ENVELOPE_H */
