/*
 * p4p.h — the public API of the p4p engine: one peer-for-peer node, sans-I/O.
 *
 * The engine never reads a clock, opens a socket, sleeps, starts a thread or asks the OS for
 * randomness. The host (the simulator in sim/, the live runtime in net/) owns all of that:
 *
 *   host                                   engine (p4p_node)
 *   ----                                   -----------------
 *   p4p_node_link(now, UP peer 7)     -->  neighbour table
 *   p4p_node_recv(now, frame)         -->  decode, verify, deliver, forward
 *   p4p_node_timeout(now)             -->  periodic work (gossip rounds)
 *   p4p_node_publish(now, bytes)      -->  sign a new update, send it
 *   p4p_node_poll_frame()             <--  frames to carry out, until P4P_EAGAIN
 *   p4p_node_poll_event()             <--  what happened (delivered, published)
 *   p4p_node_deadline()               <--  when to call p4p_node_timeout next
 *
 * After every input call the host drains frames and events, then schedules the deadline.
 * Memory: the node allocates at create time and grows only its bounded tables; every bound is
 * a field of struct p4p_config.
 */
#ifndef P4P_P4P_H
#define P4P_P4P_H

#include <stddef.h>
#include <stdint.h>

#include "p4p/storage.h"

#define P4P_VERSION "0.1.0"

/* ---- Errors -------------------------------------------------------------------------------- */

/* One table gives the codes and p4p_strerror(). Functions that can fail return 0 or one of
 * these negative codes. */
#define P4P_ERRORS(X)                                                                              \
    X(OK, 0, "success")                                                                            \
    X(INVAL, -1, "invalid argument")                                                               \
    X(NOMEM, -2, "out of memory")                                                                  \
    X(AGAIN, -3, "nothing to return")                                                              \
    X(MALFORMED, -4, "malformed input")                                                            \
    X(BADSIG, -5, "bad signature")                                                                 \
    X(VERSION, -6, "unsupported version")                                                          \
    X(DUPLICATE, -7, "duplicate")                                                                  \
    X(FULL, -8, "capacity exceeded")                                                               \
    X(TOOBIG, -9, "does not fit")                                                                  \
    X(NOTFOUND, -10, "not found")                                                                  \
    X(IO, -11, "input/output error")                                                               \
    X(PARSE, -12, "parse error")                                                                   \
    X(UNKNOWN_PEER, -13, "unknown peer")                                                           \
    X(CORRUPT, -14, "stored data is corrupt")                                                      \
    X(FENCED, -15, "fenced off by a newer writer")

enum p4p_error {
#define P4P_ERROR_ENUM_(name, code, text) P4P_E##name = (code),
    P4P_ERRORS(P4P_ERROR_ENUM_)
#undef P4P_ERROR_ENUM_
};

/* A static string for any code; unknown codes give "unknown error". */
const char *p4p_strerror(int err);

/* ---- Time, addresses, frames --------------------------------------------------------------- */

/* Monotonic nanoseconds on the host's clock (simulated or real). */
typedef uint64_t p4p_time_ns;
#define P4P_TIME_NONE UINT64_MAX

/* A link-layer address, assigned by the host: in the simulator a node index, in live mode a
 * slot in the runtime's peer table. The engine treats it as an opaque handle. */
typedef uint32_t p4p_addr;
#define P4P_ADDR_BROADCAST UINT32_MAX

/* A frame crossing the boundary. On p4p_node_recv, `peer` is the link-layer source and the
 * caller owns `data` for the duration of the call. On p4p_node_poll_frame, `peer` is the
 * destination (or P4P_ADDR_BROADCAST) and `data` points into the node; it stays valid until
 * the next input call (recv, timeout, link, publish) on the same node. */
struct p4p_frame {
    uint32_t iface;
    p4p_addr peer;
    const uint8_t *data;
    size_t len;
};

enum p4p_link_kind {
    P4P_LINK_UP = 1,
    P4P_LINK_DOWN = 2,
};

/* A neighbour became reachable, or stopped being reachable, on an interface. */
struct p4p_link_event {
    enum p4p_link_kind kind;
    uint32_t iface;
    p4p_addr peer;
};

/* ---- Events -------------------------------------------------------------------------------- */

enum p4p_event_kind {
    P4P_EVENT_PUBLISHED = 1,   /* this node signed and sent a new update */
    P4P_EVENT_DELIVERED = 2,   /* an update from another node arrived for the first time */
    P4P_EVENT_BLOB_DONE = 3,   /* a blob fetch completed: every chunk verified and stored */
    P4P_EVENT_BLOB_FAILED = 4, /* a blob fetch ran out of peers (what it stored stays) */
};

/* Update ids are the BLAKE2b-256 hash of the signed body (see docs/PROTOCOL.md). `payload`
 * follows the same validity rule as polled frames. For BLOB_DONE and BLOB_FAILED only `id` is
 * set: the blob's id (below). */
struct p4p_event {
    enum p4p_event_kind kind;
    uint8_t id[32];
    uint8_t origin[32]; /* the author's Ed25519 public key */
    uint64_t seq;       /* the author's sequence number, from 1 */
    p4p_time_ns created_ns;
    uint32_t hops; /* links crossed; 0 for PUBLISHED */
    p4p_addr from; /* link-layer neighbour it came from; P4P_ADDR_BROADCAST for PUBLISHED */
    const uint8_t *payload;
    size_t payload_len;
};

/* ---- Environment and configuration --------------------------------------------------------- */

struct p4p_sigcache;

/* What the host injects. Nothing here is global: each node gets its own. */
struct p4p_env {
    void *ctx;
    /* Required. Fill `out` with random bytes: a seeded stream in simulation, the OS in live
     * mode. The node draws its identity seed from it at create time. */
    void (*random)(void *ctx, uint8_t *out, size_t len);
    /* Optional, shared between nodes of one host: remembers signatures already verified, so
     * that a thousand simulated nodes holding the same bytes verify them once. Results are
     * identical with or without it. */
    struct p4p_sigcache *sigcache;
    /* Optional (ops == NULL: none). The node keeps its identity and every update it accepts
     * here, commits at the end of each input call that wrote, and only then lets the host see
     * that call's frames and events: what is acknowledged is durable. A node created on a
     * store that holds data restarts from it (identity, sequence numbers, the updates it
     * held). A failed write or commit kills the node: that input and every later one return
     * the error, and the host destroys it (a crash) and may create it again from the store. */
    struct p4p_storage storage;
};

enum p4p_app {
    P4P_APP_FLOOD = 1,  /* forward each new update once to every neighbour but the sender */
    P4P_APP_GOSSIP = 2, /* eager push to a few neighbours plus periodic push-pull repair */
};

struct p4p_config {
    enum p4p_app app;
    uint32_t mtu;           /* largest frame the node emits, bytes */
    uint32_t neighbour_max; /* neighbour table bound */
    uint32_t seen_max;      /* duplicate-suppression memory, updates */
    uint32_t store_max;     /* updates kept for repair (gossip), newest first */
    uint32_t outbox_max;    /* frames queued between two drains; more are dropped, counted */
    uint32_t payload_max;   /* largest application payload accepted, bytes */
    /* gossip */
    p4p_time_ns gossip_interval_ns; /* mean time between push-pull rounds */
    uint32_t gossip_fanout;         /* neighbours that get a new update eagerly */
    uint32_t gossip_digest_max;     /* update ids offered per round */
    /* storage */
    int storage_repair; /* on a corrupt log: 0 refuse to start (P4P_ECORRUPT), 1 keep the
                         * good prefix, drop the rest and catch up from peers */
    /* sessions */
    int secure; /* every frame to a neighbour inside a Noise session (XX, ChaCha20-Poly1305,
                 * BLAKE2b), neighbours' keys trusted on first use per address; frames are
                 * SESSION_OVERHEAD (27) bytes longer on the wire, within mtu */
};

/* Fills sensible defaults (documented in docs/PROTOCOL.md). */
void p4p_config_default(struct p4p_config *cfg);

/* ---- Statistics ---------------------------------------------------------------------------- */

/* Every counter a node keeps; the host writes them all into results by name. The node's own
 * counters, then those its session and blob layers keep (read from them when asked). */
#define P4P_STATS_NODE(X)                                                                          \
    X(frames_in)                                                                                   \
    X(bytes_in)                                                                                    \
    X(frames_out)                                                                                  \
    X(bytes_out)                                                                                   \
    X(published)                                                                                   \
    X(delivered)                                                                                   \
    X(duplicates)                                                                                  \
    X(dropped_malformed)                                                                           \
    X(dropped_version)                                                                             \
    X(dropped_badsig)                                                                              \
    X(dropped_outbox_full)                                                                         \
    X(dropped_too_big)                                                                             \
    X(sig_verified)                                                                                \
    X(sig_cache_hits)                                                                              \
    X(seen_evicted)                                                                                \
    X(gossip_rounds)                                                                               \
    X(digests_in)                                                                                  \
    X(offers_in)                                                                                   \
    X(wants_in)                                                                                    \
    X(repairs_sent)                                                                                \
    X(stored)                                                                                      \
    X(replayed)                                                                                    \
    X(storage_dropped)                                                                             \
    X(sess_send_dropped)

#define P4P_STATS_LAYERS(X)                                                                        \
    X(sess_hs_started)                                                                             \
    X(sess_hs_completed)                                                                           \
    X(sess_hs_failed)                                                                              \
    X(sess_bad_mac)                                                                                \
    X(sess_replay)                                                                                 \
    X(sess_no_session)                                                                             \
    X(sess_refused)                                                                                \
    X(sess_malformed)                                                                              \
    X(sess_timeout)                                                                                \
    X(sess_keepalives)                                                                             \
    X(sess_overhead_bytes)                                                                         \
    X(sess_sealed)                                                                                 \
    X(blob_msgs_in)                                                                                \
    X(blob_msgs_out)                                                                               \
    X(blob_bytes_fetched)                                                                          \
    X(blob_chunks_fetched)                                                                         \
    X(blob_chunks_corrupt)                                                                         \
    X(blob_chunks_dedup)                                                                           \
    X(blob_bytes_dedup_saved)                                                                      \
    X(blob_overhead_bytes)                                                                         \
    X(blob_timeouts)                                                                               \
    X(blob_peers_dropped)                                                                          \
    X(blob_malformed)                                                                              \
    X(blob_done)                                                                                   \
    X(blob_failed)

#define P4P_STATS(X) P4P_STATS_NODE(X) P4P_STATS_LAYERS(X)

struct p4p_stats {
#define P4P_STATS_FIELD_(name) uint64_t name;
    P4P_STATS(P4P_STATS_FIELD_)
#undef P4P_STATS_FIELD_
};

/* ---- The node ------------------------------------------------------------------------------ */

typedef struct p4p_node p4p_node;

/* Creates a node. `cfg` and `env` are copied; env->ctx, env->sigcache and the storage handle
 * must outlive the node. Draws a 32-byte identity seed from env->random, unless the store
 * already holds one. Returns 0 or P4P_EINVAL/P4P_ENOMEM, a storage error, or P4P_ECORRUPT
 * for a damaged store (when cfg->storage_repair is 0); *out is written only on success. */
int p4p_node_create(const struct p4p_config *cfg, const struct p4p_env *env, p4p_node **out);
void p4p_node_destroy(p4p_node *node);

/* The node's Ed25519 public key (its identity). */
void p4p_node_public_key(const p4p_node *node, uint8_t out[32]);

/* Inputs. Each returns 0, or a negative code telling why the input was dropped (the node
 * counts it and stays usable; the host may ignore the code). */
int p4p_node_recv(p4p_node *node, p4p_time_ns now, const struct p4p_frame *in);
int p4p_node_timeout(p4p_node *node, p4p_time_ns now);
int p4p_node_link(p4p_node *node, p4p_time_ns now, const struct p4p_link_event *ev);
/* Signs and sends a new update; writes its id to id_out (may be NULL). */
int p4p_node_publish(p4p_node *node, p4p_time_ns now, const uint8_t *payload, size_t len,
                     uint8_t id_out[32]);

/* Outputs: 0 and the next item, or P4P_EAGAIN when there is none. */
int p4p_node_poll_frame(p4p_node *node, struct p4p_frame *out);
int p4p_node_poll_event(p4p_node *node, struct p4p_event *out);

/* When the node next wants p4p_node_timeout, or P4P_TIME_NONE. */
p4p_time_ns p4p_node_deadline(const p4p_node *node);

void p4p_node_stats(const p4p_node *node, struct p4p_stats *out);

/* The set of updates the node holds (published or accepted; with storage, exactly what its
 * log holds): how many, and an order-independent digest (the lane-wise sum of their ids as
 * four little-endian 64-bit words). Two nodes that hold the same set give the same digest. */
struct p4p_held {
    uint64_t count;
    uint64_t sum[4];
};
void p4p_node_held(const p4p_node *node, struct p4p_held *out);
/* Adds one id to a digest (for hosts that rebuild one, e.g. from the events they saw). */
void p4p_held_add(struct p4p_held *h, const uint8_t id[32]);
/* The update id of a record of the node's log (for hosts that check a store against what
 * the node acknowledged). 0, or P4P_EMALFORMED when the record is not an update. */
int p4p_record_id(const uint8_t *rec, size_t len, uint8_t id[32]);

/* 0 while the node works; the storage error that killed it otherwise (see p4p_env). */
int p4p_node_failed(const p4p_node *node);

/* Approximate heap bytes owned by the node (for the per-node memory figure). */
size_t p4p_node_memory(const p4p_node *node);

/* ---- Blobs --------------------------------------------------------------------------------- */

/* Large files, content-addressed and moved between neighbours in verified pieces (engine/blob.h
 * for the protocol). They need storage (env.storage): chunks live in its chunk store. A blob's
 * id is 32 bytes, the digest of its CIDv1 (dag-cbor, BLAKE2b-256); p4p_blob_id_text() prints
 * the CID. All return 0 or a negative code; a storage error kills the node as for updates. */

/* Chunks and stores data; writes the id. */
int p4p_node_blob_add(p4p_node *node, p4p_time_ns now, const uint8_t *data, size_t len,
                      uint8_t id_out[32]);
/* Fetches the blob from every neighbour at once (those that lack it are dropped from the fetch;
 * neighbours that come up later join it). Ends with a BLOB_DONE or BLOB_FAILED event; a fetch
 * started again resumes from what is stored. */
int p4p_node_blob_fetch(p4p_node *node, p4p_time_ns now, const uint8_t id[32]);
/* Reads bytes of a blob held (complete, or from its start as far as it is present). */
int p4p_node_blob_read(p4p_node *node, const uint8_t id[32], uint64_t offset, uint8_t *buf,
                       size_t len, size_t *out_len);
/* The CID text form of a blob id ("bafy..."), NUL-terminated; 0 or P4P_ETOOBIG. */
int p4p_blob_id_text(const uint8_t id[32], char *out, size_t cap);

/* ---- Signature cache (shared by the nodes of one host) ------------------------------------- */

/* A bounded table of (update id -> signature) pairs that verified. `capacity` is rounded up
 * to a power of two; 0 picks a default. Not thread-safe: one host thread. */
int p4p_sigcache_create(size_t capacity, struct p4p_sigcache **out);
void p4p_sigcache_destroy(struct p4p_sigcache *cache);

#endif /* P4P_P4P_H */
