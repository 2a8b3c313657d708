/*
 * blob.h — blob sync: large files moved between peers in verified pieces, over links that drop
 * messages and carry as little as 128 bytes a message (LoRa) or as much as a UDP datagram, from
 * several peers at once, resumable across restarts, deduplicated by content. Sans-I/O.
 *
 *   host                                    blob table
 *   blob_add(now, data)                -->  chunk, store, id        (or add_begin/update/finish)
 *   blob_fetch(now, id, peers)         -->  start or resume a fetch (blob_add_peer, _remove_peer)
 *   blob_recv(now, peer, msg)          -->  answer requests, take pieces, verify, store
 *   blob_timeout(now)                  -->  expire requests, retry elsewhere, drop silent peers
 *   blob_poll(&msg)                    <--  messages to carry out, until P4P_EAGAIN
 *   blob_poll_event(&ev)               <--  DONE / FAILED, until P4P_EAGAIN
 *   blob_deadline()                    <--  when to call blob_timeout next
 *   blob_read(id, offset, buf)         -->  bytes of a complete (or partly present) blob
 *
 * Blobs. A blob is cut into chunks by FastCDC (fastcdc.h, cfg.chunking), so an edit changes
 * only the chunks around it. Chunk k has the leaf hash L_k = BLAKE2b-256(0x00 || chunk), the
 * Merkle tree over L_0..L_n-1 (merkle.h) has the root R, and the blob's id is the CIDv1
 * (dag-cbor, BLAKE2b-256) of its header, the deterministic CBOR array
 *
 *   header = [1, size: uint, chunk_count n: uint, root R: bstr .size 32]
 *
 * so the id commits to the size, to n (the Merkle root alone does not, see merkle.h) and to R.
 * Text form: cid_to_text(), "bafy2bza...".
 *
 * Segments. The leaf list is cut into segments of BLOB_SEG_LEAVES (256) leaves; segment g holds
 * leaves [256 g, min(n, 256 g + 256)). In the RFC 6962 tree every segment is a whole subtree, so
 * the range proof of a segment is the inclusion proof of its subtree root among the m =
 * ceil(n / 256) segment roots: at most ceil(log2 m) hashes. The "leaf object" of segment g is
 *
 *   leaves of the segment (32 bytes each) || its range proof (32 bytes a hash)
 *
 * at most 8 KiB + 2 KiB; a receiver checks it whole with merkle_range_verify(R, n, 256 g, ...).
 * A proof does not fit a 200-byte message once n passes a few dozen chunks, so leaf objects,
 * like chunks, travel in pieces and are checked when complete: a forged leaf or proof fails
 * there, before any chunk is fetched with it. A node stores leaf objects exactly as they travel,
 * so whoever verified a segment serves it again without computing anything.
 *
 * Storage (the host's p4p_storage, every write inside begin/commit). Chunks are in the chunk
 * store under their leaf hash, shared by every blob (deduplication across blobs and versions).
 * In the kv store, with d = the id's 32-byte digest and g a 4-byte big-endian segment number:
 *
 *   "blob.m" d      meta: [1, size, n, root, seg_bytes: bstr of m x 8-byte LE]; seg_bytes[g] is
 *                   the byte length of segment g once all its chunks are stored, else 0; the
 *                   blob is complete when no entry is 0 and they add up to size
 *   "blob.s" d g    the leaf object of segment g (written once verified)
 *   "blob.l" d g    the chunk lengths of segment g, 4-byte LE each (written with seg_bytes[g])
 *
 * A fetch therefore resumes after a restart: blob_fetch() with the same id finds the meta, skips
 * the segments whose leaf objects are stored and those whose chunks are all stored, and asks
 * chunk_has() for the rest. Only objects in reassembly when the node stopped are fetched again.
 *
 * Wire format, version 1. Every message is one type byte (version 1 in the high nibble) and one
 * CBOR array, strictly decoded (deterministic encoding, exact item count, no trailing bytes).
 * reqid is a uint32 the requester chooses; d a 32-byte blob digest, h a 32-byte chunk hash.
 *
 *   0x11 HDR_REQ     [reqid, d]                               header please
 *   0x12 HDR         [reqid, header: bstr]                    the header (checked against the id)
 *   0x13 LEAVES_REQ  [reqid, d, g, offset, len, plen]         bytes [offset, offset + len) of
 *                                                             segment g's leaf object
 *   0x14 LEAVES      [reqid, offset, total, data: bstr]       one piece of it
 *   0x15 PIECE_REQ   [reqid, h, offset, len, plen]            bytes of chunk h
 *   0x16 PIECE       [reqid, offset, total, data: bstr]       one piece of it
 *   0x17 NOT_FOUND   [reqid]                                  "I do not have it"
 *
 * A request for len bytes is answered by up to ceil(len / plen) messages (at most
 * BLOB_REQ_PIECES_MAX and at most the server's cfg.serve_pieces_max), piece k carrying the
 * bytes [offset + k plen, offset + (k + 1) plen) of the object (fewer at its end) and the
 * object's total length, which is how the receiver learns a chunk's length. plen is the
 * requester's piece size, cfg.mtu - BLOB_PIECE_OVERHEAD; a server refuses (NOT_FOUND) a plen it
 * cannot fit in its own mtu or below BLOB_PLEN_MIN. Every message fits cfg.mtu (at least
 * BLOB_MTU_MIN = 128): at mtu 200 a piece carries 180 bytes, at 1200, 1180. A chunk is fetched
 * by requests of cfg.request_pieces pieces (one 50-byte request per 8 pieces by default).
 * Responses are matched to requests by (reqid, peer); others are dropped and counted. Unknown
 * types and versions are dropped and counted.
 *
 * Fetching. First the header (from one peer, the next on timeout), checked with cid_verify()
 * and the limits; then leaf objects, one at a time, ahead of a chunk cursor that walks the
 * leaves, skips chunks the store has (counted as deduplicated) and gives every other chunk a
 * reassembly slot (cfg.slots_max slots of cfg.chunking.max_len bytes: the pending-piece buffer).
 * Slots are served oldest first (the leaf object before all), so chunks complete in cursor
 * order: a slot's missing pieces are requested in runs of cfg.request_pieces from the usable
 * peer with the fewest timeouts and requests in flight (at most cfg.window each). A chunk is
 * checked against its leaf hash when complete; if it fails it is counted (chunks_corrupt),
 * discarded and fetched again from peers that did not contribute to it, or, when none is left,
 * from a single peer, so that the next failure names the culprit; a peer that alone delivered
 * cfg.peer_corrupt_max bad objects is dropped, one whose header does not match the id at once.
 * A request whose time (cfg.request_timeout_ns) runs out has its missing pieces asked again,
 * preferably from another peer. Pieces of one answer travel in order, so when the last piece
 * of a request arrives with a gap before it, the request expires an eighth of the timeout
 * later (time for reordered pieces) instead. A peer with cfg.peer_timeouts_max consecutive
 * requests answered by nothing is dropped, and so is a peer that answers NOT_FOUND. When a
 * fetch has no usable peer left it ends with a FAILED event (what it stored stays; blob_fetch()
 * again resumes it). DONE comes when every chunk is stored and the chunk lengths add up to the
 * size.
 *
 * Serving. Any node answers requests from its store: HDR from the meta, LEAVES from stored leaf
 * objects, PIECE from the chunk store (by hash, whatever blob the chunk belongs to), NOT_FOUND
 * for what it lacks. Work per request is bounded: one storage read of at most one object (a
 * small LRU cache of cfg.serve_cache_max objects saves re-reading), at most
 * cfg.serve_pieces_max messages. A server keeps no state per requester.
 *
 * Memory, all allocated at create except the per-fetch segment tables: cfg.slots_max +
 * cfg.serve_cache_max + 2 buffers of max(cfg.chunking.max_len, 10 KiB) bytes (1.1 MiB with the
 * defaults), cfg.outbox_max * cfg.mtu, about 15 KiB per fetch, a meta buffer of
 * cfg.chunks_max / 32 bytes; and 9 bytes per segment (per 2 MB of blob) of each fetch started.
 * blob_add keeps the leaf list (36 bytes a chunk) and never copies the data except for a chunk
 * that straddles two blob_add_update() calls. Writing a segment's completion rewrites the
 * meta (8 bytes per segment), so a fetch writes O(m^2) meta bytes: 20 KB for 100 MB, 200 MB
 * for 10 GB; blob_add computes each segment's proof in O(m), O(m^2) hashes in all.
 *
 * Security notes. The request/response exchange is not authenticated here (the envelope and
 * sessions below are); every byte that arrives is checked against the id before it is stored.
 * A small request draws up to 32 full messages: do not route requests from unauthenticated
 * addresses. PIECE_REQ serves any chunk by hash, so a peer can learn which chunks we hold.
 *
 * Errors: 0 or a negative P4P_E* code. Storage errors (P4P_EIO, P4P_EFENCED, P4P_ECORRUPT,
 * P4P_ENOMEM ...) are returned to the caller, who treats them as a crash of the node; the
 * transaction is aborted first.
 */
#ifndef P4P_BLOB_H
#define P4P_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cid.h"
#include "fastcdc.h"
#include "p4p/p4p.h"
#include "p4p/storage.h"

#define BLOB_VERSION         1
#define BLOB_MTU_MIN         128
#define BLOB_MTU_MAX         65535
#define BLOB_PIECE_OVERHEAD  20 /* type, array head, reqid, offset, total, bstr head: worst case */
#define BLOB_PLEN_MIN        (BLOB_MTU_MIN - BLOB_PIECE_OVERHEAD)
#define BLOB_REQ_PIECES_MAX  32  /* pieces one request may ask for */
#define BLOB_SEG_LEAVES      256 /* leaves in a segment of the leaf list */
#define BLOB_HEADER_MAX      64  /* longest header encoding */
#define BLOB_PEERS_MAX_LIMIT 32  /* cfg.peers_max may not exceed this */

enum blob_msg_type {
    BLOB_HDR_REQ = 1,
    BLOB_HDR = 2,
    BLOB_LEAVES_REQ = 3,
    BLOB_LEAVES = 4,
    BLOB_PIECE_REQ = 5,
    BLOB_PIECE = 6,
    BLOB_NOT_FOUND = 7,
};

struct blob_config {
    uint32_t mtu;               /* largest message sent or accepted, BLOB_MTU_MIN..BLOB_MTU_MAX */
    uint32_t transfers_max;     /* fetches at once */
    uint32_t peers_max;         /* peers per fetch, at most BLOB_PEERS_MAX_LIMIT */
    uint32_t requests_max;      /* requests in flight, all fetches together */
    uint32_t window;            /* requests in flight per peer */
    uint32_t request_pieces;    /* pieces one request asks for, 1..BLOB_REQ_PIECES_MAX */
    uint32_t slots_max;         /* objects in reassembly at once (the pending-piece buffer) */
    uint32_t serve_pieces_max;  /* pieces sent for one request, 1..BLOB_REQ_PIECES_MAX; below
                                   the peers' request_pieces, their requests wait for timeouts */
    uint32_t serve_cache_max;   /* objects a server keeps read (0 disables the cache) */
    uint32_t outbox_max;        /* messages queued between two drains; more are dropped */
    uint32_t event_max;         /* events queued between two drains; more are dropped */
    uint32_t peer_timeouts_max; /* consecutive unanswered requests before a peer is dropped */
    uint32_t peer_corrupt_max;  /* bad objects attributed to a peer before it is dropped */
    uint64_t chunks_max;        /* largest chunk count blob_add makes or a fetch accepts */
    p4p_time_ns request_timeout_ns;
    /* Chunking of blob_add; max_len (<= 16 MiB) is also the largest chunk a fetch accepts. */
    struct fastcdc_params chunking;
};

/* Defaults: mtu 1200, 4 fetches, 8 peers each, 64 requests in flight, window 4, 8 pieces a
 * request, 8 slots, serve 32 pieces a request, cache 4, outbox 256, events 64, drop a peer after
 * 8 timeouts in a row or 2 bad objects, 2^20 chunks (8 GiB on average), request timeout 1 s,
 * FastCDC 2 / 8 / 64 KiB. For LoRa: mtu 200 or less and a timeout above the airtime of
 * request_pieces full messages. */
void blob_config_default(struct blob_config *cfg);

struct blob_env {
    void *ctx;
    /* Required: request ids start from here, never from the OS. */
    void (*random)(void *ctx, uint8_t *out, size_t len);
    /* The store (copied); its handle must outlive the table. */
    struct p4p_storage storage;
};

/* Per-table counters: a node fetches and serves, both are counted here. */
#define BLOB_STATS(X)                                                                              \
    X(requests_sent)      /* HDR_REQ, LEAVES_REQ, PIECE_REQ sent */                                \
    X(responses_received) /* HDR, LEAVES, PIECE, NOT_FOUND matching a request in flight */         \
    X(requests_received)  /* well-formed requests answered (with data or NOT_FOUND) */             \
    X(responses_sent)     /* HDR, LEAVES, PIECE, NOT_FOUND sent */                                 \
    X(not_found_sent)                                                                              \
    X(not_found_received)                                                                          \
    X(msgs_in)                                                                                     \
    X(msgs_out)                                                                                    \
    X(bytes_in)          /* every byte of every message given to blob_recv */                      \
    X(bytes_out)         /* every byte of every message handed out by blob_poll */                 \
    X(payload_bytes_in)  /* chunk bytes in new (not duplicate) pieces received */                  \
    X(payload_bytes_out) /* chunk bytes in pieces sent */                                          \
    X(overhead_bytes)    /* bytes in + out that are not chunk payload (requests, headers, leaf     \
                            lists and proofs, message framing, duplicates, junk) */                \
    X(bytes_fetched)     /* bytes of chunks fetched, verified and stored */                        \
    X(chunks_fetched)                                                                              \
    X(chunks_corrupt)    /* reassembled chunks whose hash did not match: discarded */              \
    X(chunks_dedup)      /* chunks not stored (blob_add) or not fetched because the store had them \
                            (other blobs, other versions, an earlier run of the same fetch) */     \
    X(bytes_dedup_saved) /* their bytes */                                                         \
    X(segments_fetched)  /* leaf objects fetched, verified and stored */                           \
    X(segments_rejected) /* leaf objects whose leaves and proof did not lead to the root */        \
    X(headers_rejected)  /* headers that did not match the id, or were out of limits */            \
    X(timeouts)          /* requests that expired with pieces missing */                           \
    X(peers_dropped)     /* peers given up for a fetch: silent, NOT_FOUND, or lying */             \
    X(malformed)         /* messages or pieces that broke the format or did not fit the request */ \
    X(unknown_type)      /* wrong version nibble or type */                                        \
    X(unexpected)        /* responses with no request in flight (late, stale, wrong peer) */       \
    X(duplicate_pieces)                                                                            \
    X(dropped_outbox_full)                                                                         \
    X(dropped_events)                                                                              \
    X(transfers_done)                                                                              \
    X(transfers_failed)

struct blob_stats {
#define BLOB_STATS_FIELD_(name) uint64_t name;
    BLOB_STATS(BLOB_STATS_FIELD_)
#undef BLOB_STATS_FIELD_
};

enum blob_event_kind {
    BLOB_EVENT_DONE = 1,   /* every chunk of the blob is stored; blob_read() reads it all */
    BLOB_EVENT_FAILED = 2, /* the fetch ended without the blob; reason says why */
};

enum blob_fail_reason {
    BLOB_FAIL_NO_PEERS = 1, /* every peer was dropped or removed */
    BLOB_FAIL_TOO_BIG = 2,  /* the header's chunk count or size exceeds this table's limits */
    BLOB_FAIL_BAD_BLOB = 3, /* authentic chunks that do not add up to the header's size */
};

struct blob_event {
    enum blob_event_kind kind;
    enum blob_fail_reason reason; /* FAILED only */
    struct cid id;
};

struct blob_msg {
    p4p_addr peer;       /* destination */
    const uint8_t *data; /* points into the table: valid until the next input call */
    size_t len;
};

struct blob_info {
    uint64_t size, chunk_count;
    uint8_t root[32];
    uint64_t segments, segments_complete; /* segments whose chunks are all stored */
    bool is_complete;
    bool is_fetching; /* a fetch of it is under way in this table */
};

typedef struct blob blob;

/* cfg and env are copied. 0, P4P_EINVAL (a limit out of range, no random, no storage) or
 * P4P_ENOMEM. */
int blob_create(const struct blob_config *cfg, const struct blob_env *env, blob **out);
/* Frees the table. Stored data stays: a table created later on the same store resumes. */
void blob_destroy(blob *b);

/* The header of a blob and its id. blob_header_encode: 0 or P4P_ETOOBIG (cap < the encoding;
 * BLOB_HEADER_MAX always fits). blob_make_id: the CID of that header. */
int blob_header_encode(uint64_t size, uint64_t chunk_count, const uint8_t root[32], uint8_t *out,
                       size_t cap, size_t *out_len);
void blob_make_id(uint64_t size, uint64_t chunk_count, const uint8_t root[32], struct cid *id);

/* Chunks data[0..len), stores the chunks the store lacks, the leaf objects, lengths and meta,
 * and writes the id to *id. The blob is complete at once. 0, P4P_EFULL (more than
 * cfg.chunks_max chunks, or a streaming add is under way), P4P_ENOMEM, or a storage error. */
int blob_add(blob *b, p4p_time_ns now, const uint8_t *data, size_t len, struct cid *id);

/* The same in a stream: begin, any number of updates, finish (or abort). One at a time per
 * table. Chunks are committed as they come (in batches); the blob exists once finish returns
 * 0. Any error ends the stream (nothing more to abort). begin: 0 or P4P_EFULL. */
int blob_add_begin(blob *b);
int blob_add_update(blob *b, const uint8_t *data, size_t len);
int blob_add_finish(blob *b, p4p_time_ns now, struct cid *id);
void blob_add_abort(blob *b);

/* Starts fetching id from peers[0..npeers) (npeers may be 0: add peers later), or adds the
 * peers to the fetch under way. Resumes from what the store holds. A blob already complete
 * gives a DONE event at once. 0; P4P_EINVAL (not a dag-cbor BLAKE2b-256 CID); P4P_EFULL (no
 * fetch slot, or more peers than cfg.peers_max); P4P_ENOMEM; a storage error. */
int blob_fetch(blob *b, p4p_time_ns now, const struct cid *id, const p4p_addr *peers,
               size_t npeers);
/* Adds a peer to the fetch of id (again usable if it had been dropped). 0, P4P_ENOTFOUND (no
 * such fetch), P4P_EFULL. */
int blob_add_peer(blob *b, p4p_time_ns now, const struct cid *id, p4p_addr peer);
/* The link to peer went down: stop asking it, in the fetch of id or (id NULL) in every fetch.
 * Its requests are asked elsewhere. A fetch left without peers fails (FAILED event). 0 or
 * P4P_ENOTFOUND (no such fetch, or the peer is in none). */
int blob_remove_peer(blob *b, p4p_time_ns now, const struct cid *id, p4p_addr peer);
/* Stops the fetch of id without an event; what is stored stays. 0 or P4P_ENOTFOUND. */
int blob_cancel(blob *b, const struct cid *id);

/* Processes one message from peer. 0 (used, or dropped as unexpected: counted),
 * P4P_EMALFORMED (dropped: malformed or unknown type, counted), or a storage error. */
int blob_recv(blob *b, p4p_time_ns now, p4p_addr peer, const uint8_t *msg, size_t len);
/* Expires requests due at now and sends what can be sent. 0 or a storage error. */
int blob_timeout(blob *b, p4p_time_ns now);
/* When blob_timeout is next due (0: at once, when the outbox was full or a cancelled fetch
 * left room for another), or P4P_TIME_NONE. */
p4p_time_ns blob_deadline(const blob *b);

/* Outputs: 0 and the next item, or P4P_EAGAIN when there is none. */
int blob_poll(blob *b, struct blob_msg *out);
int blob_poll_event(blob *b, struct blob_event *out);

/* Reads up to len bytes of blob id from offset into buf; *out_len gets the count, which is less
 * than len only at the end of the blob. Works on a partly present blob for the bytes of
 * segments whose chunks are all stored, when every segment before them is complete as well.
 * 0; P4P_ENOTFOUND (unknown blob, or a byte of the range is not here); P4P_EINVAL (offset >
 * size); a storage error. */
int blob_read(blob *b, const struct cid *id, uint64_t offset, uint8_t *buf, size_t len,
              size_t *out_len);
/* 0 and what the store says about id, or P4P_ENOTFOUND (no header stored), a storage error. */
int blob_info(blob *b, const struct cid *id, struct blob_info *out);

void blob_stats(const blob *b, struct blob_stats *out);
/* Heap bytes the table holds. */
size_t blob_memory(const blob *b);

#endif /* P4P_BLOB_H */
