/*
 * node_int.h — the inside of a p4p_node, shared by the node core (node.c) and the
 * dissemination applications (flood in node.c, gossip.c).
 *
 * Layout: one struct per node holding its identity, bounded tables and counters. Frames and
 * events waiting for the host sit in the outbox: frame and event records in two arrays and
 * their bytes in one buffer, all reset together once the host has drained them.
 */
#ifndef P4P_NODE_INT_H
#define P4P_NODE_INT_H

#include "envelope.h"
#include "identity.h"
#include "p4p/p4p.h"
#include "seen.h"
#include "store.h"

struct session_table;
struct trust_store;
struct blob;

struct neighbour {
    p4p_addr addr;
    uint32_t iface;
};

struct ob_frame {
    uint32_t iface;
    p4p_addr peer;
    uint32_t off, len; /* into outbox bytes */
};

struct ob_event {
    struct p4p_event ev; /* ev.payload is set at poll time from payload_off */
    uint32_t payload_off;
};

struct outbox {
    struct ob_frame *frames;
    uint32_t frame_cap, frame_head, frame_count;
    struct ob_event *events;
    uint32_t event_cap, event_head, event_count;
    uint8_t *bytes;
    size_t byte_cap, byte_used;
};

/* The counters the node itself keeps (p4p.h's P4P_STATS_NODE); those of the session and blob
 * layers live in their modules and are read when the host asks. */
struct node_stats {
#define NODE_STATS_FIELD_(name) uint64_t name;
    P4P_STATS_NODE(NODE_STATS_FIELD_)
#undef NODE_STATS_FIELD_
};

/* Fields touched by every input come first, so that a duplicate arriving (the most common
 * input in a flood) touches a few adjacent cache lines of the node. */
struct p4p_node {
    struct p4p_config cfg;
    struct outbox ob;
    struct seen_set seen;
    struct node_stats stats;

    struct neighbour *nbrs;
    uint32_t nbr_count, nbr_cap;
    uint32_t *pick; /* gossip: scratch for choosing neighbours, pick_cap entries */
    uint32_t pick_cap;
    uint64_t next_seq;
    uint64_t origin_prefix;    /* first 8 bytes of id.pk, the seen-set key of own updates */
    p4p_time_ns next_round_ns; /* gossip only; P4P_TIME_NONE until the first input */
    struct store store;        /* gossip only */
    struct p4p_env env;
    struct identity id;

    /* held set and storage (persist.c) */
    struct p4p_held held;
    int failed;           /* a storage error killed the node: every input returns it */
    int txn_open;         /* a storage transaction is open for the current input */
    uint32_t mark_frames; /* outbox state when the current input began, for rollback */
    uint32_t mark_events;
    size_t mark_bytes;

    /* sessions (secure.c), when cfg.secure */
    struct session_table *sess;
    struct trust_store *trust;
    uint8_t *sess_buf; /* one opened datagram */
    size_t sess_memory;
    int trust_dirty;
    p4p_time_ns now; /* of the current input, for the trust store */

    /* blobs (node_blob.c), made on first use */
    struct blob *blob;
    uint8_t (*fetching)[32]; /* ids of the fetches under way, BLOB_FETCHES of them */
};

/* An accepted update, as the applications see it. */
struct accepted {
    const uint8_t *id; /* 32 bytes */
    const struct env_update *u;
    uint32_t frame_off, frame_len; /* the update re-encoded with hops + 1, in outbox bytes */
    p4p_addr from;
};

/* Outbox: reserve bytes (returns offset or UINT32_MAX when out of memory) and queue frames
 * that refer to them. */
uint32_t node_ob_reserve(p4p_node *n, size_t len);
void node_ob_frame(p4p_node *n, uint32_t iface, p4p_addr peer, uint32_t off, uint32_t len);
/* Queues bytes already outside the outbox (copies them). */
void node_send_copy(p4p_node *n, const struct neighbour *to, const uint8_t *data, size_t len);

uint64_t node_random_below(p4p_node *n, uint64_t bound);

/* Storage (persist.c). All are no-ops without a store. */
/* At create: loads or makes the identity, replays the log into the node's tables. */
int persist_open(p4p_node *n);
/* Within an input: keeps an accepted update (its onward frame) and, for own updates, the
 * sequence number. A failure marks the node failed. */
void persist_update(p4p_node *n, const uint8_t *frame, size_t len, int own_seq);
/* At the end of an input: commits; on failure the input's frames and events are withdrawn.
 * Returns rc, or the storage error. */
int persist_end(p4p_node *n, int rc);
/* Remembers an update as held and, for gossip, keeps its frame for repair (replay path and
 * live path alike). */
void node_hold(p4p_node *n, const uint8_t id[32], const uint8_t *frame, size_t len);

/* Writes a key-value pair in the current input's transaction (like persist_update). */
void persist_kv(p4p_node *n, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);

/* Sessions (secure.c); see there for the flow. */
int secure_open(p4p_node *n);
void secure_close(p4p_node *n);
void secure_link(p4p_node *n, p4p_time_ns now, const struct p4p_link_event *ev);
/* 0 and the plaintext frame, P4P_EAGAIN when the datagram held none (a handshake step), or
 * the session layer's reason for dropping it. */
int secure_recv(p4p_node *n, p4p_time_ns now, const struct p4p_frame *in, struct p4p_frame *plain);
void secure_before_commit(p4p_node *n);
void secure_seal(p4p_node *n, p4p_time_ns now);
int secure_poll_frame(p4p_node *n, struct p4p_frame *out);
void secure_stats(const p4p_node *n, struct p4p_stats *out);
size_t secure_memory(const p4p_node *n);

/* Blobs (node_blob.c). */
int node_blob_recv(p4p_node *n, p4p_time_ns now, p4p_addr from, const uint8_t *msg, size_t len);
/* Runs the blob timers; then, at the end of every input, node_blob_flush moves the blob
 * layer's messages and events into the outbox. */
void node_blob_timeout(p4p_node *n, p4p_time_ns now);
void node_blob_flush(p4p_node *n);
void node_blob_link(p4p_node *n, p4p_time_ns now, const struct p4p_link_event *ev);
p4p_time_ns node_blob_deadline(const p4p_node *n);
void node_blob_stats(const p4p_node *n, struct p4p_stats *out);
size_t node_blob_memory(const p4p_node *n);
void node_blob_free(p4p_node *n);
int node_blob_add(p4p_node *n, p4p_time_ns now, const uint8_t *data, size_t len,
                  uint8_t id_out[32]);
int node_blob_fetch(p4p_node *n, p4p_time_ns now, const uint8_t id[32]);
/* Queues an event with no payload (blob events). */
void node_event(p4p_node *n, const struct p4p_event *ev);

/* Gossip (gossip.c). */
void gossip_spread(p4p_node *n, const struct accepted *a);
void gossip_on_ids(p4p_node *n, p4p_addr from, uint32_t iface, enum env_kind kind,
                   const struct env_ids *ids);
void gossip_timeout(p4p_node *n, p4p_time_ns now);
void gossip_start(p4p_node *n, p4p_time_ns now);

#endif /* P4P_NODE_INT_H */
