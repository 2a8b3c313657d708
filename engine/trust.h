/*
 * trust.h — which key a peer is expected to have: a bounded trust-on-first-use (TOFU) store
 * with pinning and revocation, like SSH's known_hosts.
 *
 * What is the key of the store? Not the peer ID: a peer ID is the hash of the key
 * (peerid.h), so "peer ID X shows up with another key" cannot happen — such a key simply does
 * not match X, which is a forgery to drop, not a change to report. A changed key only means
 * something for a name that exists independently of the key. So the store binds a NAME to a
 * key:
 *
 *   name (1..TRUST_NAME_MAX opaque bytes, chosen by the host)  -->  Ed25519 public key
 *                                                                   + its peer ID
 *                                                                   + state, first/last seen
 *
 * A name is whatever the host uses to mean "the same peer as before": an address
 * ("udp:192.0.2.7:4000", "sim:17"), a petname ("alice"), the label under which a record was
 * imported from a QR code. The first key seen under a name is remembered (ACCEPT_NEW); the
 * same key later is ACCEPT_KNOWN; another key under that name is refused and reported
 * (REFUSE_CHANGED_KEY, with the remembered binding copied out) until someone pins the new
 * key. A caller with no name (name_len 0) asks about the key alone; the store then uses the
 * key's 36-byte binary peer ID as the name, so such "key-only" entries can be looked up,
 * unpinned or forgotten by passing that name. That name is reserved for its own key: binding
 * a peer ID's binary form to any other key is refused (P4P_EINVAL).
 *
 * States:
 *   TOFU     remembered on first use. Another key under the name is refused.
 *   PINNED   set by trust_pin(), i.e. by a person or configuration that verified the key
 *            (e.g. compared peerid_fingerprint()). Pinning is also how a changed key is
 *            accepted: it rebinds the name. A name pinned before first contact refuses every
 *            other key from the start. Pinned entries are never evicted.
 *   REVOKED  trust_revoke() revokes a KEY: every entry holding it becomes REVOKED, and the key
 *            is refused under any name, including names it was never seen under (a key-only
 *            entry is added if the key was unknown). Revocation is permanent for the life of
 *            the store and its saved copies; revoked entries are never evicted or forgotten.
 *            A name whose key was revoked refuses other keys too until one is pinned.
 *
 * Bounds: `cap` entries fixed at create time, in one array allocated then; two open-addressing
 * tables (by name and by peer ID, linear probing, backward-shift deletion, keyed SipHash so
 * that chosen names cannot pile into one probe run) index it. When the store is full a new
 * binding is refused (REFUSE_FULL) — unless the store was created with TRUST_EVICT_TOFU, in
 * which case the TOFU entry seen least recently makes room. Eviction keeps the node talking to
 * new peers, at a price: a name flushed out of the store by a flood of new names is
 * first-use again. Pinned and revoked entries never make room.
 *
 * Persistence: trust_save() writes deterministic CBOR, the same bytes for the same contents
 * whatever the history, and trust_load() reads it back strictly:
 *
 *   [1, [entry, ...]]     entries sorted by name bytes (a proper prefix first), names unique
 *   entry = [name: bstr .size (1..64), pk: bstr .size 32, state: 1..3,
 *            first_seen_ns: uint, last_seen_ns: uint]        first_seen_ns <= last_seen_ns
 *
 * Beyond the layout, a loaded store must be one that the API could have made: every entry of
 * a revoked key is revoked, and no key-only name is bound to another key. Counters and the
 * create-time settings are not saved. Times are whatever clock the host passes as `now`; the
 * store only compares them.
 *
 * Not thread-safe; no clocks, no I/O. The caller owns the store.
 */
#ifndef P4P_TRUST_H
#define P4P_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "peerid.h"

#define TRUST_NAME_MAX 64
#define TRUST_CAP_MAX  (1u << 20)

/* trust_create() flags. */
#define TRUST_EVICT_TOFU 1u /* when full, drop the least recently seen TOFU entry */

enum trust_state {
    TRUST_TOFU = 1,
    TRUST_PINNED = 2,
    TRUST_REVOKED = 3,
};

/* What trust_check() decided. Refusals mean: do not talk to this peer with this key. */
enum trust_outcome {
    TRUST_ACCEPT_NEW = 0,         /* first use of the name: the binding is now remembered */
    TRUST_ACCEPT_KNOWN = 1,       /* the name is bound to this key; last seen updated */
    TRUST_REFUSE_CHANGED_KEY = 2, /* the name is bound to another key */
    TRUST_REFUSE_REVOKED = 3,     /* this key is revoked */
    TRUST_REFUSE_FULL = 4,        /* a new binding, but no room to remember it */
    TRUST_OUTCOME_COUNT = 5,
};

/* A copy of one binding. */
struct trust_entry {
    uint8_t name[TRUST_NAME_MAX];
    size_t name_len;
    uint8_t pk[32];
    struct peerid id; /* peer ID of pk */
    enum trust_state state;
    uint64_t first_seen_ns; /* when the binding was made (first use, pin, or revocation) */
    uint64_t last_seen_ns;  /* latest ACCEPT_KNOWN; never less than first_seen_ns */
};

struct trust_stats {
    uint64_t outcome[TRUST_OUTCOME_COUNT]; /* trust_check() results, indexed by outcome */
    uint64_t evicted;                      /* TOFU entries dropped to make room */
};

typedef struct trust_store trust_store;

/* A store of at most cap (1..TRUST_CAP_MAX) entries. hash_key (16 bytes, may be NULL for all
 * zero) keys the index hashes; take it from the host's random stream. 0, P4P_EINVAL or
 * P4P_ENOMEM; *out is written only on success. */
int trust_create(trust_store **out, uint32_t cap, unsigned flags, const uint8_t *hash_key);
void trust_destroy(trust_store *s); /* NULL is fine */

/* Should a peer that presents key pk under this name be trusted? Returns a trust_outcome
 * (>= 0), counted in the stats, or P4P_EINVAL for a name longer than TRUST_NAME_MAX or another
 * key's key-only name (name_len 0 means pk's key-only name). When `known` is not NULL and the
 * outcome is ACCEPT_KNOWN, REFUSE_CHANGED_KEY or REFUSE_REVOKED, it receives the stored
 * binding that decided it (for REFUSE_CHANGED_KEY: the old key). */
int trust_check(trust_store *s, uint64_t now, const uint8_t *name, size_t name_len,
                const uint8_t pk[32], struct trust_entry *known);

/* Binds name (name_len 0: pk's key-only name) to pk as PINNED, replacing any other key the
 * name had (first seen = now then). When that other key was revoked, its revocation is kept
 * under its key-only name. 0; P4P_EINVAL for a revoked pk or a bad name; P4P_EFULL when a
 * new entry has no room (nothing is changed then). */
int trust_pin(trust_store *s, uint64_t now, const uint8_t *name, size_t name_len,
              const uint8_t pk[32]);

/* PINNED -> TOFU, keeping the key; TOFU stays TOFU. 0, P4P_ENOTFOUND, or P4P_EINVAL (revoked,
 * or name_len not 1..TRUST_NAME_MAX). */
int trust_unpin(trust_store *s, const uint8_t *name, size_t name_len);

/* Revokes pk everywhere (see above). 0, or P4P_EFULL when pk is unknown and there is no room
 * to remember the revocation. */
int trust_revoke(trust_store *s, uint64_t now, const uint8_t pk[32]);

/* Removes a TOFU binding. 0, P4P_ENOTFOUND, or P4P_EINVAL (pinned: unpin first; revoked;
 * bad name). */
int trust_forget(trust_store *s, const uint8_t *name, size_t name_len);

/* The binding of a name (name_len 1..TRUST_NAME_MAX). 0 or P4P_ENOTFOUND. */
int trust_lookup(const trust_store *s, const uint8_t *name, size_t name_len,
                 struct trust_entry *out);

/* 1 when pk is revoked, else 0. */
int trust_is_revoked(const trust_store *s, const uint8_t pk[32]);

/* Entries held, and entry i (0 <= i < count) in no particular order; indices change on
 * removal. trust_entry_at returns 0 or P4P_ENOTFOUND. */
uint32_t trust_count(const trust_store *s);
uint32_t trust_capacity(const trust_store *s);
int trust_entry_at(const trust_store *s, uint32_t i, struct trust_entry *out);

void trust_get_stats(const trust_store *s, struct trust_stats *out);

/* Bytes allocated by the store (fixed at create time). */
size_t trust_memory(const trust_store *s);

/* Writes the CBOR above into out[0..cap). 0; P4P_ETOOBIG (then *out_len is the size needed);
 * P4P_ENOMEM (one scratch array for sorting is allocated and freed). */
int trust_save(const trust_store *s, uint8_t *out, size_t cap, size_t *out_len);

/* Replaces the contents of s with a saved store read from exactly buf[0..len). Counters and
 * settings stay. 0; P4P_EMALFORMED; P4P_EVERSION (another format version); P4P_EFULL (more
 * entries than the capacity); P4P_ENOMEM. On failure s is unchanged. */
int trust_load(trust_store *s, const uint8_t *buf, size_t len);

#endif /* P4P_TRUST_H */
