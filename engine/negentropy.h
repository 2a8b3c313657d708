/*
 * negentropy.h — range-based set reconciliation, wire-compatible with negentropy protocol
 * version 1 (Doug Hoyte, github.com/hoytech/negentropy; docs/negentropy-protocol-v1.md).
 *
 * Two peers each hold a set of items (64-bit timestamp, 32-byte id), sorted by (timestamp, id).
 * The initiator sends a message that covers the whole (timestamp, id) space with ranges; the
 * other side answers every range whose fingerprint differs from its own by splitting it into 16
 * sub-ranges (or, below 32 items, by listing the ids). The exchange recurses until the
 * initiator's answer would be empty; by then it has learnt which ids it has that the other
 * side lacks (`have`) and which the other side has that it lacks (`need`).
 *
 *   message := 0x61 range*                   range := upper-bound mode payload
 *   bound   := varint(ts delta + 1, or 0 = infinity) varint(prefix_len) id-prefix
 *   mode    := 0 Skip (no payload) | 1 Fingerprint (16 bytes) | 2 IdList (varint n, n ids)
 *   varint  := base 128, most significant group first, high bit = "more follows"
 *   fingerprint(range) := SHA-256(sum of the ids as 256-bit little-endian integers mod 2^256
 *                                 || varint(count))[0..16)
 *
 * The algorithm mirrors the C++ reference (cpp/negentropy.h) step by step, so that the same
 * items and frame size limit give byte-identical messages. That was checked by running the
 * reference's own delta and interop configurations (test/test.pl) against a build of its C++
 * harness; messages and whole-conversation digests from that harness are golden values in
 * tests/unit/test_negentropy.c and tests/cli/test_negentropy_harness.sh. Protocol version 1 has
 * no "doneRanges" and no Continuation mode (those belonged to pre-v1 drafts).
 *
 * Frame size limit: 0 means unlimited; otherwise the reference insists on at least 4096 bytes
 * and stops adding ranges once the message passes limit - 200 bytes, closing it with one
 * Fingerprint range up to infinity. Below 4096 that rule breaks: a single 16-bucket split is up
 * to ~1 KB, so a responder could never fit one and the exchange would stop making progress.
 * `NEG_NONSTANDARD` allows LoRa-sized limits (>= 128 bytes) and other bucket counts. It counts
 * sizes exactly instead of the 200-byte slack, shrinks a split that does not fit (an IdList into
 * fingerprints, 16 buckets down to 2), ends a shortened IdList at a minimal bound, and closes a
 * cut message with a Skip up to the last range handled plus the true fingerprint of the rest,
 * so that fewer resolved ranges come round again (some still do: the peer's own cuts cover
 * them, so ids can still repeat). Its messages are valid v1 messages that any v1 peer parses
 * and answers, but they are not byte-identical to the reference's, and the limit binds only our
 * own messages: a reference peer's answers can be larger.
 *
 * Sans-I/O and allocation-light: the storage is one sealed sorted array plus a running sum of
 * the ids every NEG_SUM_STRIDE items (1 byte per item), which makes any range's fingerprint cost
 * at most 2 * NEG_SUM_STRIDE additions. A session owns its output and id buffers; they grow to
 * the largest message seen and are reused. Malformed input is rejected with an error code and
 * never trusted for sizes.
 */
#ifndef P4P_NEGENTROPY_H
#define P4P_NEGENTROPY_H

#include <stddef.h>
#include <stdint.h>

#define NEG_PROTOCOL_VERSION           0x61
#define NEG_ID_LEN                     32
#define NEG_FINGERPRINT_LEN            16
#define NEG_TIMESTAMP_INFINITY         UINT64_MAX
#define NEG_VARINT_MAX_LEN             10
#define NEG_BOUND_MAX_LEN              (NEG_VARINT_MAX_LEN + 1 + NEG_ID_LEN)
#define NEG_FRAME_SIZE_MIN             4096 /* the reference's smallest non-zero frame size limit */
#define NEG_FRAME_SIZE_MIN_NONSTANDARD 128
#define NEG_BUCKETS                    16 /* the reference's split fan-out */
#define NEG_SUM_STRIDE                 32 /* items between stored running sums */

enum neg_mode {
    NEG_MODE_SKIP = 0,
    NEG_MODE_FINGERPRINT = 1,
    NEG_MODE_IDLIST = 2,
};

struct neg_item {
    uint64_t timestamp;
    uint8_t id[NEG_ID_LEN];
};

/* A range bound: a timestamp and an id prefix of id_len bytes; the rest of `id` is zero. */
struct neg_bound {
    uint64_t timestamp;
    uint8_t id[NEG_ID_LEN];
    uint8_t id_len;
};

/* ---- Storage: a sealed sorted array -------------------------------------------------------- */

struct neg_storage {
    struct neg_item *items;
    size_t count, cap, max;
    uint64_t (*sums)[4]; /* sums[k] = sum of ids [0, k * NEG_SUM_STRIDE), as 4 limbs, low first */
    int is_sealed;
};

/* Holds at most `max` items (0: no bound). Allocates nothing until the first add. */
void neg_storage_init(struct neg_storage *s, size_t max);
void neg_storage_free(struct neg_storage *s);

/* Adds an item before sealing. P4P_EINVAL when sealed or when timestamp is the reserved
 * infinity, P4P_EFULL beyond max, P4P_ENOMEM. */
int neg_storage_add(struct neg_storage *s, uint64_t timestamp, const uint8_t id[NEG_ID_LEN]);

/* Sorts by (timestamp, id) and computes the running sums; after this the storage is read-only.
 * P4P_EINVAL when already sealed, P4P_EDUPLICATE when an identical item was added twice (as
 * the reference; the storage stays unsealed), P4P_ENOMEM. */
int neg_storage_seal(struct neg_storage *s);

/* The first index in [begin, end) whose item is >= bound (end when none). Sealed only. */
size_t neg_storage_lower_bound(const struct neg_storage *s, size_t begin, size_t end,
                               const struct neg_bound *bound);

/* The fingerprint of items [begin, end), begin <= end <= count. Sealed only. */
void neg_storage_fingerprint(const struct neg_storage *s, size_t begin, size_t end,
                             uint8_t out[NEG_FINGERPRINT_LEN]);

/* ---- Encoding helpers (exposed for tests and tools) ---------------------------------------- */

/* Writes v as a negentropy varint; returns its length (1..10). */
size_t neg_varint_put(uint8_t out[NEG_VARINT_MAX_LEN], uint64_t v);

/* Reads a varint from p[0, len): 0 and *v, *used, or P4P_EMALFORMED when truncated, not minimal
 * (a leading 0x80 byte) or above 2^64 - 1. The reference accepts the last two; a conforming
 * peer never sends them. */
int neg_varint_get(const uint8_t *p, size_t len, uint64_t *v, size_t *used);

/* Encodes a bound against the previous timestamp *last_timestamp (updated, as the protocol's
 * delta encoding requires); out holds NEG_BOUND_MAX_LEN bytes. Returns the length. */
size_t neg_bound_put(uint8_t *out, uint64_t *last_timestamp, const struct neg_bound *b);

/* The fingerprint of `count` ids stored back to back. */
void neg_fingerprint_ids(const uint8_t *ids, size_t count, uint8_t out[NEG_FINGERPRINT_LEN]);

/* ---- Sessions -------------------------------------------------------------------------------- */

#define NEG_NONSTANDARD 1u /* allow frame limits below 4096 and other bucket counts (see top) */

struct neg_options {
    uint64_t frame_size_limit; /* 0: none; else >= 4096 (>= 128 with NEG_NONSTANDARD) */
    uint32_t buckets;          /* 0: 16; NEG_NONSTANDARD only: 2..16 */
    uint32_t idlist_threshold; /* 0: 2 * buckets; NEG_NONSTANDARD only: >= buckets */
    uint32_t flags;
};

struct neg_buf {
    uint8_t *data;
    size_t len, cap;
};

struct neg_session {
    const struct neg_storage *storage;
    struct neg_options opt;
    int is_initiator;
    uint64_t last_ts_in, last_ts_out;
    struct neg_buf out;        /* the message being built */
    struct neg_buf have, need; /* ids, NEG_ID_LEN bytes each */
    struct neg_buf scratch;    /* a sorted copy of a received IdList */
};

/* What one call produced. Pointers point into the session and stay valid until its next call
 * or neg_session_free; have and need may be NULL when their count is 0. */
struct neg_result {
    const uint8_t *msg; /* the message to send; NULL when is_done */
    size_t msg_len;
    const uint8_t *have; /* initiator only: ids we have and the peer lacks, have_count * 32 */
    size_t have_count;
    const uint8_t *need; /* initiator only: ids the peer has and we lack */
    size_t need_count;
    int is_done; /* initiator only: nothing left to ask, do not send anything */
};

/* Binds a session to a sealed storage, which must outlive it and not change. opt may be NULL
 * (no frame limit). P4P_EINVAL for an unsealed storage or options outside the rules above. */
int neg_session_init(struct neg_session *n, const struct neg_storage *s,
                     const struct neg_options *opt);
void neg_session_free(struct neg_session *n);

/* Makes this session the initiator and returns the first message in *msg, *msg_len (valid as
 * for struct neg_result). P4P_EINVAL when called twice, P4P_ETOOBIG when a NEG_NONSTANDARD
 * limit is too small for the first split, P4P_ENOMEM. */
int neg_initiate(struct neg_session *n, const uint8_t **msg, size_t *msg_len);

/* Processes a message from the peer. A session that never called neg_initiate is the responder:
 * it always gets a message to send back. The initiator gets the have/need ids this message
 * revealed and either a next message or is_done. With a frame size limit an id can be reported
 * again in a later round (the reference does the same: a range cut off by the limit is
 * re-examined whole), so callers treat have/need as sets.
 * Errors: P4P_EMALFORMED (truncated, bad version byte, unknown mode, id prefix > 32 bytes,
 * bounds out of order, overlong varint), P4P_EVERSION (the initiator got a reply of another
 * protocol version; a responder answers such a message with the bare version byte, as the
 * reference does), P4P_ENOMEM. After an error *r is untouched and the session can take another
 * message. */
int neg_reconcile(struct neg_session *n, const uint8_t *in, size_t in_len, struct neg_result *r);

#endif /* P4P_NEGENTROPY_H */
