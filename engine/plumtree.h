/*
 * plumtree.h — epidemic broadcast trees over a partial-view membership, sans-I/O: HyParView
 * (Leitao, Pereira, Rodrigues, DSN 2007) keeps a small symmetric "active view" of neighbours
 * and a larger "passive view" of backups; Plumtree (same authors, SRDS 2007) broadcasts over
 * the active view along a spanning tree that it builds and repairs by itself. Push, pull and
 * push-pull anti-entropy rounds over the same active view are a simpler baseline mode.
 *
 * One state machine per node, driven by the host like engine/session.h:
 *
 *   host                                   plumtree
 *   plumtree_join(now, contact)       -->  JOIN the overlay through a known member
 *   plumtree_recv(now, from, bytes)   -->  membership and broadcast messages
 *   plumtree_broadcast(now, id, data) -->  a new message (id chosen by the caller)
 *   plumtree_peer_down(now, peer)     -->  the host's failure detector: peer unreachable
 *   plumtree_timeout(now)             -->  shuffles, keepalives, IHAVE batches, GRAFTs,
 *                                          rounds, view repair
 *   plumtree_poll(&frame)             <--  frames to carry out, until P4P_EAGAIN
 *   plumtree_poll_event(&ev)          <--  delivered messages, neighbours up / down
 *   plumtree_deadline()               <--  when to call plumtree_timeout next
 *
 * Names. Peers are p4p_addr values that must mean the same node to every member (the
 * simulator's node index; in live mode an index into a directory the host shares, which it
 * resolves to a transport address), because HyParView passes names around: FORWARD_JOIN
 * names the joining node, SHUFFLE carries samples of views. `from` on recv is trusted to be
 * the sender (the host's link layer or session says so); names inside messages are not.
 *
 * HyParView. The active view holds at most active_max peers, symmetric: a link is in both
 * ends' active views, and every link is made by a request and its answer: JOIN or NEIGHBOR,
 * then an accepting NEIGHBOR_REPLY, after which both ends hold it. JOIN(x) at a contact adds
 * x and sends FORWARD_JOIN(x, ARWL) to the contact's other neighbours; the walk adds x to the
 * passive view of the node it reaches at hop PRWL, and the node where it ends (ttl 0, or a
 * node with a single neighbour) asks x with NEIGHBOR(high). NEIGHBOR(high) is always accepted
 * (dropping a random neighbour, which gets DISCONNECT and moves to the passive view);
 * NEIGHBOR(low) only when there is room; a node whose active view is empty asks with high
 * priority. An accepting answer to no outstanding request (it timed out, or a DISCONNECT
 * overtook it) is undone with DISCONNECT. Every shuffle interval a node sends SHUFFLE(itself
 * + ka active + kp passive samples) on a random walk of ARWL hops; the node where it ends
 * answers the origin directly with SHUFFLE_REPLY(as many passive samples), and both merge
 * what they got into their passive views (evicting first what they sent).
 *
 * Failure detection and repair. A peer leaves the active view when the host reports it down,
 * when it sends DISCONNECT, or when nothing came from it for dead_ns (every link carries a
 * KEEPALIVE after keepalive_ns of silence; dead_ns 0 turns this off). Whenever the active
 * view is not full, the node asks random passive peers with NEIGHBOR (one request at a time
 * with low priority, several with high priority); a peer that refused or dropped us is not
 * asked again for neighbor_backoff_ns unless our active view is empty; one that does not
 * answer within neighbor_timeout_ns is removed. Loss makes the two ends disagree now and
 * then; any link message (KEEPALIVE, GOSSIP, IHAVE...) from a peer outside the active view
 * is answered with DISCONNECT, so one-sided links close within a keepalive interval (its
 * GOSSIP and PUSH payloads are still delivered and its GRAFTs answered, the rest is
 * ignored); a link message from a peer we asked counts as its acceptance. A node that joined
 * through a contact JOINs again whenever its active view is empty.
 *
 * Plumtree. Each active peer is eager or lazy; new neighbours start eager. A new message
 * (GOSSIP, or plumtree_broadcast) is delivered, cached, sent in full to the eager peers and
 * announced by id to the lazy ones (IHAVE, batched every ihave_interval_ns). A duplicate
 * GOSSIP makes its sender lazy and is answered with PRUNE (which makes us lazy at the
 * sender): after one broadcast on a quiet network the eager links form a spanning tree and a
 * broadcast costs N-1 payloads plus ids on the other links. An IHAVE for a message we lack
 * starts a timer (graft_timeout_ns); if the message has not arrived when it fires, we send
 * GRAFT to one announcer (which makes the link eager both ways and brings the payload) and
 * retry every graft_retry_ns with the next announcer, at most graft_attempts_max times: this
 * repairs the tree after loss and failures. Optimisation (the paper's section 3.8, off when
 * optimize_threshold is 0): when an IHAVE announces a message we received by GOSSIP over at
 * least optimize_threshold more hops than the announcer's path, we GRAFT the announcer
 * without asking for the payload and PRUNE the peer it came from, shortening the tree.
 *
 * Repair exchange (an addition to the paper; announce_interval_ns 0 turns it off). Plumtree
 * alone loses a message at a node when every copy and every IHAVE sent to it is lost, or when
 * its links came up after the message had passed (view churn). So every announce_interval_ns
 * a node that received messages within the last announce_window_ns sends their ids to one
 * random active peer (ANNOUNCE with reply = true); the peer GRAFTs those it lacks and answers,
 * if it has recent messages we did not list, with their ids (ANNOUNCE, reply = false), which
 * we GRAFT in turn. A new link starts with an ANNOUNCE (reply = false) of the newest cached
 * messages, any age, one frame's worth, both ways: a node back from isolation, or on a link
 * made after a message had passed, GRAFTs what it missed. ANNOUNCE never triggers the
 * optimisation: its hop counts may describe an older tree. Cost: window / interval ids per
 * message per node, one frame per new link, answers only on a difference.
 *
 * Anti-entropy baseline (mode PUSH, PULL or PUSH_PULL): nothing is forwarded on receipt.
 * Rounds start at multiples of round_ns (so simulated nodes sharing a clock run synchronous
 * rounds). Each round a node picks `fanout` random active peers; push sends each of them
 * every cached message it has pushed in fewer than push_rounds rounds; pull sends PULL(ids of
 * its newest digest_max cached messages, as many as fit one frame) and the peer answers with
 * PUSH frames of its own newest digest_max messages that were not listed. Mode FLOOD is the other
 * yardstick: Plumtree that never prunes, every link stays eager.
 *
 * Duplicate suppression: a module-private seen table of the first 8 bytes of message ids
 * (a ring of seen_max prefixes in arrival order and an open-addressing hash over them, like
 * engine/seen.c); the oldest is forgotten when full. Two ids with the same 8-byte prefix
 * count as the same message. A message forgotten by the seen table and received again is
 * delivered again. The payload cache keeps the cache_max newest messages (fixed slots of
 * payload_max bytes) to answer GRAFT and pull; it is searched linearly.
 *
 * Wire format, version 1. Byte 0 = version << 4 | type, then exactly one CBOR array in
 * deterministic encoding (engine/cbor.h strict reader) and nothing after it. Frames longer
 * than mtu, unknown versions or types, wrong field counts or types, non-shortest encodings,
 * addresses of UINT32_MAX, walks longer than PLUMTREE_TTL_MAX, lists longer than
 * PLUMTREE_LIST_MAX / PLUMTREE_BATCH_MAX, ids that are not 32 bytes, payloads over
 * payload_max are rejected and counted.
 *
 *   1 JOIN            []
 *   2 FORWARD_JOIN    [new: uint, ttl: uint]
 *   3 NEIGHBOR        [high: bool]
 *   4 NEIGHBOR_REPLY  [accepted: bool]
 *   5 DISCONNECT      []
 *   6 SHUFFLE         [origin: uint, ttl: uint, [addr: uint, ...]]
 *   7 SHUFFLE_REPLY   [[addr: uint, ...]]
 *   8 KEEPALIVE       []
 *   9 GOSSIP          [id: bstr 32, hops: uint, payload: bstr]   hops = links crossed
 *  10 IHAVE           [id: bstr 32, hops: uint, id, hops, ...]  hops at the announcer
 *  11 GRAFT           [id: bstr 32, want: bool]                 want 0: optimisation only
 *  12 PRUNE           []
 *  13 PUSH            [id: bstr 32, hops: uint, payload: bstr]   anti-entropy payload
 *  14 PULL            [id: bstr 32, ...]                         ids the sender holds (0+)
 *  15 ANNOUNCE        [reply: bool, id, hops, id, hops, ...]    repair exchange
 *
 * Memory, all allocated at create, nothing afterwards: outbox_max * (mtu + 8) bytes,
 * cache_max * (payload_max + 56), 24 to 40 per seen_max (a ring slot, hash slots at load
 * <= 1/2), 112 per missing_max, 40 per ihave_max, 64 per event_max, 24 per active and 20 per
 * passive slot, about 1.1 KiB fixed: 736 KiB with the defaults (the outbox is 322 KiB of it).
 */
#ifndef P4P_PLUMTREE_H
#define P4P_PLUMTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p4p/p4p.h"

#define PLUMTREE_VERSION    1
#define PLUMTREE_ID_LEN     32
#define PLUMTREE_MTU_MIN    512
#define PLUMTREE_OVERHEAD   48  /* most bytes a GOSSIP or PUSH frame adds to its payload */
#define PLUMTREE_TTL_MAX    16  /* longest random walk (ARWL) accepted */
#define PLUMTREE_LIST_MAX   64  /* addresses in one SHUFFLE / SHUFFLE_REPLY */
#define PLUMTREE_BATCH_MAX  128 /* ids in one IHAVE, ANNOUNCE or PULL */
#define PLUMTREE_ANNOUNCERS 8   /* announcers remembered per missing message */
#define PLUMTREE_PENDING    4   /* NEIGHBOR requests outstanding at once */

enum plumtree_type {
    PLUMTREE_JOIN = 1,
    PLUMTREE_FORWARD_JOIN = 2,
    PLUMTREE_NEIGHBOR = 3,
    PLUMTREE_NEIGHBOR_REPLY = 4,
    PLUMTREE_DISCONNECT = 5,
    PLUMTREE_SHUFFLE = 6,
    PLUMTREE_SHUFFLE_REPLY = 7,
    PLUMTREE_KEEPALIVE = 8,
    PLUMTREE_GOSSIP = 9,
    PLUMTREE_IHAVE = 10,
    PLUMTREE_GRAFT = 11,
    PLUMTREE_PRUNE = 12,
    PLUMTREE_PUSH = 13,
    PLUMTREE_PULL = 14,
    PLUMTREE_ANNOUNCE = 15,
};

enum plumtree_mode {
    PLUMTREE_MODE_TREE = 1,      /* Plumtree: eager tree + lazy IHAVE + GRAFT repair */
    PLUMTREE_MODE_FLOOD = 2,     /* every active link eager, never prune (yardstick) */
    PLUMTREE_MODE_PUSH = 3,      /* anti-entropy rounds: push payloads */
    PLUMTREE_MODE_PULL = 4,      /* anti-entropy rounds: pull by digest */
    PLUMTREE_MODE_PUSH_PULL = 5, /* both */
};

struct plumtree_config {
    enum plumtree_mode mode;
    uint32_t mtu;         /* largest frame emitted or accepted, >= PLUMTREE_MTU_MIN */
    uint32_t outbox_max;  /* frames queued between two drains; more are dropped, counted */
    uint32_t event_max;   /* events queued between two drains; more are dropped, counted */
    uint32_t payload_max; /* largest payload; payload_max + PLUMTREE_OVERHEAD <= mtu */
    /* HyParView */
    uint32_t active_max;  /* active view bound, >= 1 (paper: log10(N) + 1) */
    uint32_t passive_max; /* passive view bound, >= 1 */
    uint32_t arwl;        /* active random walk length, 1..PLUMTREE_TTL_MAX */
    uint32_t prwl;        /* passive random walk length, <= arwl */
    uint32_t shuffle_ka;  /* active peers in a SHUFFLE sample */
    uint32_t shuffle_kp;  /* passive peers in a SHUFFLE sample; 1 + ka + kp <= LIST_MAX */
    p4p_time_ns shuffle_interval_ns; /* mean time between shuffles (+-25% jitter); 0: never */
    p4p_time_ns join_retry_ns;       /* JOIN again while the active view stays empty */
    p4p_time_ns neighbor_timeout_ns; /* a NEIGHBOR request without answer fails */
    p4p_time_ns neighbor_backoff_ns; /* do not ask a peer that refused or dropped us before */
    p4p_time_ns keepalive_ns;        /* KEEPALIVE to an active peer after this much silence */
    p4p_time_ns dead_ns;             /* active peer silent this long is failed; 0: never */
    /* Plumtree */
    uint32_t seen_max;                /* message ids remembered for duplicate suppression */
    uint32_t cache_max;               /* newest payloads kept to answer GRAFT and PULL */
    uint32_t missing_max;             /* announced-but-missing messages tracked */
    uint32_t ihave_max;               /* announcements batched before a forced flush */
    p4p_time_ns ihave_interval_ns;    /* IHAVE batching period; 0: send at once */
    p4p_time_ns graft_timeout_ns;     /* IHAVE -> first GRAFT (a few RTTs) */
    p4p_time_ns graft_retry_ns;       /* GRAFT -> next GRAFT to another announcer */
    uint32_t graft_attempts_max;      /* GRAFTs per missing message before giving up */
    uint32_t optimize_threshold;      /* hop gain that triggers the optimisation; 0: off */
    p4p_time_ns announce_interval_ns; /* repair exchange with a random neighbour; 0: off */
    p4p_time_ns announce_window_ns;   /* ... listing the messages that arrived this recently */
    /* anti-entropy modes */
    p4p_time_ns round_ns; /* round period */
    uint32_t fanout;      /* peers per round */
    uint32_t push_rounds; /* rounds a message is pushed after it arrived */
    uint32_t digest_max;  /* newest messages compared by pull, <= PLUMTREE_BATCH_MAX */
};

/* Defaults: mode TREE, mtu 1280, outbox 256, events 256, payload 1024; active 5, passive 30,
 * ARWL 6, PRWL 3, ka 3, kp 4, shuffle every 10 s, join retry 2 s, neighbour timeout 1 s,
 * backoff 30 s, keepalive 2 s, dead 10 s; seen 4096, cache 256, missing 256, ihave 64,
 * IHAVE every 50 ms, GRAFT after 300 ms then every 150 ms, 8 attempts, optimisation off,
 * repair exchange every 1 s over the last 5 s; round 1 s, fanout 1, push 16 rounds, digest 32. */
void plumtree_config_default(struct plumtree_config *cfg);

struct plumtree_env {
    void *ctx;
    /* Required: every random choice (walks, samples, peers) draws from here. */
    void (*random)(void *ctx, uint8_t *out, size_t len);
};

#define PLUMTREE_STATS(X)                                                                          \
    X(frames_in)                                                                                   \
    X(bytes_in)                                                                                    \
    X(frames_out)                                                                                  \
    X(bytes_out)                                                                                   \
    X(dropped_malformed) /* rejected by the decoder: length, type, field, range */                 \
    X(dropped_version)                                                                             \
    X(dropped_outbox_full)                                                                         \
    X(dropped_events)                                                                              \
    X(joins_in)                                                                                    \
    X(forward_joins_in)                                                                            \
    X(neighbor_requests) /* NEIGHBOR sent */                                                       \
    X(neighbor_accepted) /* our requests accepted */                                               \
    X(neighbor_refused)  /* our requests refused */                                                \
    X(neighbor_timeouts) /* our requests unanswered */                                             \
    X(disconnects_sent)                                                                            \
    X(disconnects_in)                                                                              \
    X(shuffles_sent)                                                                               \
    X(shuffles_in) /* SHUFFLE ending here */                                                       \
    X(shuffle_replies_in)                                                                          \
    X(keepalives_sent)                                                                             \
    X(peers_failed)  /* active peers lost: host report or silence */                               \
    X(peers_up)      /* active view additions */                                                   \
    X(not_active_in) /* link messages from peers outside the active view */                        \
    X(broadcasts)                                                                                  \
    X(delivered)                                                                                   \
    X(duplicates)                                                                                  \
    X(gossip_sent) /* GOSSIP frames (payloads), including GRAFT answers */                         \
    X(ihave_sent)  /* IHAVE frames */                                                              \
    X(ihave_ids_sent)                                                                              \
    X(graft_sent)                                                                                  \
    X(prune_sent)                                                                                  \
    X(graft_answered)                                                                              \
    X(graft_not_cached) /* GRAFT for a message no longer cached */                                 \
    X(missing_expired)  /* gave up on an announced message */                                      \
    X(missing_dropped)  /* missing table full */                                                   \
    X(optimizations)                                                                               \
    X(announces_sent) /* ANNOUNCE frames (repair exchange) */                                      \
    X(seen_evicted)                                                                                \
    X(rounds)                                                                                      \
    X(push_sent) /* PUSH frames (payloads) */                                                      \
    X(pull_sent)

struct plumtree_stats {
#define PLUMTREE_STATS_FIELD_(name) uint64_t name;
    PLUMTREE_STATS(PLUMTREE_STATS_FIELD_)
#undef PLUMTREE_STATS_FIELD_
};

enum plumtree_event_kind {
    PLUMTREE_EVENT_DELIVERED = 1,     /* a message arrived for the first time */
    PLUMTREE_EVENT_NEIGHBOR_UP = 2,   /* peer joined the active view */
    PLUMTREE_EVENT_NEIGHBOR_DOWN = 3, /* peer left the active view */
};

/* For DELIVERED, `payload` points into the node's cache and stays valid until the next input
 * call (join, recv, broadcast, peer_down, timeout) on the same node; each input call
 * delivers at most one message. `hops` counts links crossed. */
struct plumtree_event {
    enum plumtree_event_kind kind;
    p4p_addr peer; /* neighbour concerned; for DELIVERED the one it came from */
    uint8_t id[PLUMTREE_ID_LEN];
    uint32_t hops;
    const uint8_t *payload;
    size_t payload_len;
};

struct plumtree_frame {
    p4p_addr peer;       /* destination */
    const uint8_t *data; /* points into the node: valid until the next input call */
    size_t len;
};

typedef struct plumtree plumtree;

/* Creates the node named `self`. cfg and env are copied; env->ctx must outlive the node.
 * 0, P4P_EINVAL (bad config, self == P4P_ADDR_BROADCAST, no random) or P4P_ENOMEM. */
int plumtree_create(const struct plumtree_config *cfg, const struct plumtree_env *env,
                    p4p_addr self, plumtree **out);
void plumtree_destroy(plumtree *t);

/* Joins the overlay through `contact`, a member; retried every join_retry_ns while the
 * active view is empty. P4P_EINVAL for self or UINT32_MAX. */
int plumtree_join(plumtree *t, p4p_time_ns now, p4p_addr contact);

/* Broadcasts a new message. The caller chooses the id (e.g. a hash of the payload); it must
 * be unique. P4P_EDUPLICATE when the id was seen already, P4P_ETOOBIG when len >
 * payload_max, P4P_EINVAL for a NULL id. */
int plumtree_broadcast(plumtree *t, p4p_time_ns now, const uint8_t id[PLUMTREE_ID_LEN],
                       const uint8_t *payload, size_t len);

/* One frame from `from`; the caller owns data for the duration of the call. 0, or a negative
 * code telling why it was dropped (counted; the node stays usable): P4P_EMALFORMED,
 * P4P_EVERSION, P4P_EINVAL (from ourselves or UINT32_MAX). */
int plumtree_recv(plumtree *t, p4p_time_ns now, p4p_addr from, const uint8_t *data, size_t len);

/* The host's failure detector says `peer` is unreachable: it leaves both views. */
int plumtree_peer_down(plumtree *t, p4p_time_ns now, p4p_addr peer);

/* Runs every timer due at now. */
int plumtree_timeout(plumtree *t, p4p_time_ns now);
/* When plumtree_timeout is next due, or P4P_TIME_NONE. */
p4p_time_ns plumtree_deadline(const plumtree *t);

int plumtree_poll(plumtree *t, struct plumtree_frame *out);
int plumtree_poll_event(plumtree *t, struct plumtree_event *out);

void plumtree_stats(const plumtree *t, struct plumtree_stats *out);

/* Introspection for tests and tools. The views are copied to out[0 .. min(count, cap)); the
 * return value is the view's size. */
uint32_t plumtree_active_view(const plumtree *t, p4p_addr *out, uint32_t cap);
uint32_t plumtree_passive_view(const plumtree *t, p4p_addr *out, uint32_t cap);
/* 1 when peer is an eager active neighbour, 0 when lazy, P4P_ENOTFOUND when not active. */
int plumtree_is_eager(const plumtree *t, p4p_addr peer);
/* Message ids currently remembered by the seen table (<= seen_max). */
uint32_t plumtree_seen_count(const plumtree *t);
/* Whether id is in the seen table. */
bool plumtree_has_seen(const plumtree *t, const uint8_t id[PLUMTREE_ID_LEN]);
/* Bytes allocated by the node (constant after create). */
size_t plumtree_memory(const plumtree *t);

#endif /* P4P_PLUMTREE_H */
