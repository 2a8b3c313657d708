/*
 * blob.c — blob sync (see blob.h): adding blobs to the store, serving them, and fetching them
 * from several peers in verified pieces.
 *
 * The table has four pools, all allocated at create:
 *
 *   xfers     fetches under way: the id, the header once known, the peers (cfg.peers_max each),
 *             a segment cursor (leaf objects to fetch) and a chunk cursor (leaves to walk), the
 *             leaves of the segment the chunk cursor is in, and up to OPEN_SEGS segments whose
 *             chunks are not all stored yet (their chunk lengths, filled in as chunks arrive)
 *   slots     objects in reassembly (a leaf object or a chunk): a buffer, a bitmap of pieces
 *             received and one of pieces asked for, and which peers contributed
 *   requests  requests in flight, found from a response's reqid in O(1): the low bits of a
 *             reqid are the request's index, the high bits a sequence number that starts at a
 *             random value, so a late answer to a reused entry (or to a table before a restart)
 *             does not match
 *   cache     the server's last objects read (LRU)
 *
 * Control flow: every input call ends with pump(), which walks the fetches round-robin: the
 * header request if the header is missing, then new slots (a leaf object first, then chunks
 * from the cursor), then requests for the missing pieces of every slot of the fetch while peers
 * have room in their window. A response fills a slot; a complete slot is verified and stored
 * (one transaction), and a stored chunk is "resolved" in its open segment; a segment whose
 * chunks are all resolved gets its lengths record and a new meta in one transaction. The last
 * segment completes the fetch.
 */
#include "blob.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cbor.h"
#include "dgram_ring.h"
#include "merkle.h"

#define H           MERKLE_HASH_LEN
#define SEG         BLOB_SEG_LEAVES
#define OPEN_SEGS   4
#define SEG_OBJ_MAX (SEG * H + 64 * H) /* leaves + an inclusion proof of at most 64 hashes */
#define KEY_LEN     (6 + H + 4)
#define TX_BATCH    (4u << 20) /* blob_add commits at least this often (bytes of new chunks) */
#define NONE32      UINT32_MAX
#define NONE64      UINT64_MAX

enum { PEER_FREE = 0, PEER_ACTIVE = 1, PEER_DROPPED = 2 };
enum { OBJ_SEG = 1, OBJ_CHUNK = 2 };
enum { REQ_HDR = 1, REQ_SLOT = 2 };
enum { PHASE_HEADER = 1, PHASE_BODY = 2 };

struct peer {
    p4p_addr addr;
    uint8_t state;
    uint8_t backoff; /* timeouts since the last RTT sample: the RTO doubles for each */
    uint32_t in_flight;
    uint32_t timeouts;        /* consecutive requests that got no answer */
    uint32_t corrupt;         /* bad objects it alone delivered */
    p4p_time_ns srtt, rttvar; /* request round trips (send -> last piece); srtt 0 = none yet */
};

struct open_seg {
    bool used;
    uint64_t g;
    uint32_t pending; /* leaves of the segment not yet resolved */
    uint32_t lengths[SEG];
};

struct xfer {
    bool used;
    uint8_t phase;
    struct cid id;
    uint64_t size, n, m;
    uint8_t root[H];
    struct peer *peers; /* cfg.peers_max */
    uint32_t rr;
    uint32_t hdr_req; /* request index, or NONE32 */
    uint64_t *seg_bytes;
    uint8_t *seg_have; /* bitmap: leaf object stored */
    uint64_t segs_done;
    uint64_t next_seg;
    uint32_t seg_slot; /* slot holding a leaf object, or NONE32 */
    uint64_t next_leaf;
    uint64_t cur_seg;    /* segment whose leaves are in cur_leaves, or NONE64 */
    uint8_t *cur_leaves; /* SEG_OBJ_MAX */
    struct open_seg open[OPEN_SEGS];
};

struct slot {
    bool used;
    uint8_t kind;
    uint32_t xfer;
    uint64_t index; /* segment or leaf number */
    uint8_t hash[H];
    uint32_t total; /* object length, 0 while unknown */
    uint32_t npieces, received, scan;
    uint32_t inflight;
    uint64_t age;            /* allocation order: older slots are served first */
    uint32_t contrib, avoid; /* peer masks */
    uint32_t pinned;         /* peer index or NONE32 */
    uint32_t soft_avoid;     /* peer index or NONE32: timed out on this slot last */
    bool pin_next;
    uint64_t *have, *asked;
    uint8_t *buf;
};

struct request {
    bool used;
    bool gap; /* a piece went missing: no RTT sample (Karn) */
    uint8_t kind;
    uint32_t reqid;
    uint32_t xfer, peer, slot;
    uint32_t first, count, got;
    p4p_time_ns sent, deadline;
};

struct cache_entry {
    uint8_t kind; /* 0 unused */
    uint8_t key[H + 4];
    uint32_t len;
    uint64_t tick;
    uint8_t *buf;
};

struct adder {
    bool active, in_tx;
    struct fastcdc cdc;
    size_t pending; /* bytes of the current chunk in buf */
    uint8_t *lh;    /* leaf hashes */
    uint32_t *ll;   /* chunk lengths */
    uint64_t count, cap;
    uint64_t tx_bytes;
};

struct blob {
    struct blob_config cfg;
    struct blob_env env;
    struct p4p_storage st;
    uint32_t plen, slot_len, bm_words, req_bits, req_seq;
    struct xfer *xfers;
    struct peer *peer_pool;
    struct slot *slots;
    struct request *reqs;
    struct cache_entry *cache;
    uint64_t cache_tick;
    struct dgram_ring out;
    struct blob_event *ev;
    uint32_t ev_head, ev_count;
    uint8_t *scratch; /* slot_len: blob_read, serving without a cache, add_finish */
    uint8_t *segbuf;  /* SEG_OBJ_MAX: blob_read's leaves */
    uint8_t *abuf;    /* slot_len: blob_add's straddling chunk */
    uint8_t *meta_buf;
    size_t meta_cap;
    struct adder add;
    uint32_t xfer_rr;
    uint32_t slots_used;
    uint64_t slot_age;
    uint32_t *order; /* slots_max: pump's scratch */
    bool need_pump;
    struct blob_stats stats;
    size_t memory;
};

/* The retransmission timeout for a peer, as TCP computes it (RFC 6298: SRTT + 4 RTTVAR, the
 * samples being whole requests, send to last piece), doubled per timeout since the last sample
 * and kept within [RTO_MIN_NS, cfg.request_timeout_ns]. Before the first sample:
 * cfg.request_timeout_ns. On a fast link this is what keeps a lost piece from stalling a
 * chunk for a whole second. */
#define RTO_MIN_NS 10000000ull
static p4p_time_ns peer_rto(const struct blob *b, const struct peer *p)
{
    p4p_time_ns max = b->cfg.request_timeout_ns;
    if (p->srtt == 0) {
        return max;
    }
    p4p_time_ns rto = p->srtt + 4 * p->rttvar;
    rto = rto < RTO_MIN_NS ? RTO_MIN_NS : rto;
    for (uint8_t k = 0; k < p->backoff && rto < max; k++) {
        rto *= 2;
    }
    return rto < max ? rto : max;
}

static void peer_rtt_sample(struct peer *p, p4p_time_ns sample)
{
    if (sample == 0) {
        sample = 1;
    }
    if (p->srtt == 0) {
        p->srtt = sample;
        p->rttvar = sample / 2;
    } else {
        p4p_time_ns err = p->srtt > sample ? p->srtt - sample : sample - p->srtt;
        p->rttvar = (3 * p->rttvar + err) / 4;
        p->srtt = (7 * p->srtt + sample) / 8;
    }
    p->backoff = 0;
}

/* ---- Small helpers ------------------------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static bool bit_get(const uint64_t *bm, uint32_t i)
{
    return (bm[i / 64] >> (i % 64)) & 1;
}

static void bit_set(uint64_t *bm, uint32_t i)
{
    bm[i / 64] |= UINT64_C(1) << (i % 64);
}

static void bit_clear(uint64_t *bm, uint32_t i)
{
    bm[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

static int popcount32(uint32_t v)
{
    int c = 0;
    for (; v; v &= v - 1) {
        c++;
    }
    return c;
}

static uint32_t seg_count(uint64_t n, uint64_t g)
{
    uint64_t left = n - g * SEG;
    return left < SEG ? (uint32_t)left : SEG;
}

/* kv keys: "blob." kind digest [g big-endian]. */
static size_t make_key(uint8_t *k, char kind, const uint8_t digest[H], uint64_t g)
{
    memcpy(k, "blob.", 5);
    k[5] = (uint8_t)kind;
    memcpy(k + 6, digest, H);
    if (kind == 'm') {
        return 6 + H;
    }
    for (int i = 0; i < 4; i++) {
        k[6 + H + i] = (uint8_t)(g >> (24 - 8 * i));
    }
    return KEY_LEN;
}

static const uint8_t *digest_of(const struct cid *id)
{
    return id->mh.digest;
}

static bool id_ok(const struct cid *id)
{
    return id && id->codec == CID_CODEC_DAG_CBOR && id->mh.code == MH_BLAKE2B_256 &&
           id->mh.len == H;
}

/* A storage call's error ends the transaction: abort it and hand the error on. */
static int tx_end(struct blob *b, int rc)
{
    if (rc == 0) {
        rc = b->st.ops->commit(b->st.ctx);
        if (rc == 0) {
            return 0;
        }
    }
    b->st.ops->abort(b->st.ctx);
    return rc;
}

/* ---- Header and meta ----------------------------------------------------------------------- */

int blob_header_encode(uint64_t size, uint64_t chunk_count, const uint8_t root[32], uint8_t *out,
                       size_t cap, size_t *out_len)
{
    struct cbor_writer w;
    cbor_writer_init(&w, out, cap);
    cbor_put_array(&w, 4);
    cbor_put_uint(&w, BLOB_VERSION);
    cbor_put_uint(&w, size);
    cbor_put_uint(&w, chunk_count);
    cbor_put_bstr(&w, root, H);
    if (!cbor_writer_ok(&w)) {
        return P4P_ETOOBIG;
    }
    *out_len = w.len;
    return 0;
}

void blob_make_id(uint64_t size, uint64_t chunk_count, const uint8_t root[32], struct cid *id)
{
    uint8_t hdr[BLOB_HEADER_MAX];
    size_t len = 0;
    blob_header_encode(size, chunk_count, root, hdr, sizeof(hdr), &len);
    cid_compute(id, CID_CODEC_DAG_CBOR, hdr, len);
}

/* Strict header decoding: [1, size, n, root]. */
static int header_decode(const uint8_t *p, size_t len, uint64_t *size, uint64_t *n, uint8_t root[H])
{
    struct cbor_reader r;
    uint64_t cnt = 0, ver = 0;
    const uint8_t *rp = NULL;
    size_t rl = 0;
    cbor_reader_init(&r, p, len);
    cbor_get_array(&r, &cnt);
    cbor_get_uint(&r, &ver);
    cbor_get_uint(&r, size);
    cbor_get_uint(&r, n);
    cbor_get_bstr(&r, &rp, &rl);
    if (!cbor_reader_done(&r) || cnt != 4 || ver != BLOB_VERSION || rl != H) {
        return P4P_EMALFORMED;
    }
    memcpy(root, rp, H);
    return 0;
}

struct meta {
    uint64_t size, n, m;
    uint8_t root[H];
    const uint8_t *seg_bytes; /* m x 8 LE, into b->meta_buf */
};

static uint64_t meta_seg(const struct meta *mt, uint64_t g)
{
    return get_le64(mt->seg_bytes + 8 * g);
}

static bool meta_complete(const struct meta *mt)
{
    uint64_t sum = 0;
    for (uint64_t g = 0; g < mt->m; g++) {
        uint64_t v = meta_seg(mt, g);
        if (v == 0) {
            return false;
        }
        sum += v;
    }
    return sum == mt->size;
}

/* Reads the meta of digest into b->meta_buf. 0, P4P_ENOTFOUND, P4P_ECORRUPT (not a meta we
 * wrote), or a storage error. */
static int meta_load(struct blob *b, const uint8_t digest[H], struct meta *mt)
{
    uint8_t key[KEY_LEN];
    size_t klen = make_key(key, 'm', digest, 0), vlen = 0;
    int rc = b->st.ops->kv_get(b->st.ctx, key, klen, b->meta_buf, b->meta_cap, &vlen);
    if (rc == P4P_ETOOBIG) {
        return P4P_ECORRUPT;
    }
    if (rc) {
        return rc;
    }
    struct cbor_reader r;
    uint64_t cnt = 0, ver = 0;
    const uint8_t *rp = NULL, *sp = NULL;
    size_t rl = 0, sl = 0;
    cbor_reader_init(&r, b->meta_buf, vlen);
    cbor_get_array(&r, &cnt);
    cbor_get_uint(&r, &ver);
    cbor_get_uint(&r, &mt->size);
    cbor_get_uint(&r, &mt->n);
    cbor_get_bstr(&r, &rp, &rl);
    cbor_get_bstr(&r, &sp, &sl);
    if (!cbor_reader_done(&r) || cnt != 5 || ver != BLOB_VERSION || rl != H ||
        mt->n > b->cfg.chunks_max) {
        return P4P_ECORRUPT;
    }
    mt->m = (mt->n + SEG - 1) / SEG;
    if (sl != mt->m * 8) {
        return P4P_ECORRUPT;
    }
    memcpy(mt->root, rp, H);
    mt->seg_bytes = sp;
    return 0;
}

/* Writes a meta (inside the caller's transaction). seg_bytes: m values, or NULL for all 0. */
static int meta_store(struct blob *b, const uint8_t digest[H], uint64_t size, uint64_t n,
                      const uint8_t root[H], const uint64_t *seg_bytes)
{
    uint64_t m = (n + SEG - 1) / SEG;
    struct cbor_writer w;
    cbor_writer_init(&w, b->meta_buf, b->meta_cap);
    cbor_put_array(&w, 5);
    cbor_put_uint(&w, BLOB_VERSION);
    cbor_put_uint(&w, size);
    cbor_put_uint(&w, n);
    cbor_put_bstr(&w, root, H);
    cbor_put_head(&w, CBOR_MAJOR_BSTR, m * 8);
    for (uint64_t g = 0; g < m; g++) {
        uint8_t v[8];
        put_le64(v, seg_bytes ? seg_bytes[g] : 0);
        cbor_put_raw(&w, v, 8);
    }
    if (!cbor_writer_ok(&w)) {
        return P4P_ETOOBIG; /* cannot happen: meta_cap fits chunks_max */
    }
    uint8_t key[KEY_LEN];
    size_t klen = make_key(key, 'm', digest, 0);
    return b->st.ops->kv_put(b->st.ctx, key, klen, b->meta_buf, w.len);
}

/* ---- Outbox and events --------------------------------------------------------------------- */

/* A buffer of cfg.mtu bytes for the next message, or NULL when the outbox is full. */
static uint8_t *out_next(struct blob *b)
{
    uint8_t *p = dgram_ring_reserve(&b->out);
    if (p == NULL) {
        b->stats.dropped_outbox_full++;
        b->need_pump = true;
    }
    return p;
}

static void out_commit(struct blob *b, p4p_addr peer, size_t len, size_t payload)
{
    dgram_ring_commit(&b->out, peer, len);
    b->stats.msgs_out++;
    b->stats.bytes_out += len;
    b->stats.payload_bytes_out += payload;
    b->stats.overhead_bytes += len - payload;
}

static void event_push(struct blob *b, enum blob_event_kind kind, enum blob_fail_reason reason,
                       const struct cid *id)
{
    if (b->ev_count == b->cfg.event_max) {
        b->stats.dropped_events++;
        return;
    }
    struct blob_event *e = &b->ev[(b->ev_head + b->ev_count) % b->cfg.event_max];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->reason = reason;
    e->id = *id;
    b->ev_count++;
}

/* ---- Wire format --------------------------------------------------------------------------- */

struct wire {
    unsigned type;
    uint32_t reqid;
    const uint8_t *hash; /* HDR_REQ, LEAVES_REQ: blob digest; PIECE_REQ: chunk hash */
    uint32_t seg, offset, len, plen, total;
    const uint8_t *data; /* HDR: the header; LEAVES, PIECE: the bytes */
    size_t data_len;
};

static void get_u32(struct cbor_reader *r, uint32_t *v)
{
    uint64_t x = 0;
    if (cbor_get_uint(r, &x) == 0 && x > UINT32_MAX) {
        r->err = P4P_EMALFORMED;
    }
    *v = (uint32_t)x;
}

static void get_hash(struct cbor_reader *r, const uint8_t **p)
{
    size_t n = 0;
    if (cbor_get_bstr(r, p, &n) == 0 && n != H) {
        r->err = P4P_EMALFORMED;
    }
}

static const uint8_t wire_items[8] = {0, 2, 2, 6, 4, 5, 4, 1};

/* 0, P4P_EVERSION (unknown version or type) or P4P_EMALFORMED. */
static int wire_decode(const uint8_t *msg, size_t len, struct wire *w)
{
    if (len < 1) {
        return P4P_EMALFORMED;
    }
    unsigned type = msg[0] & 0x0f;
    if (msg[0] >> 4 != BLOB_VERSION || type < BLOB_HDR_REQ || type > BLOB_NOT_FOUND) {
        return P4P_EVERSION;
    }
    memset(w, 0, sizeof(*w));
    w->type = type;
    struct cbor_reader r;
    uint64_t items = 0;
    cbor_reader_init(&r, msg + 1, len - 1);
    if (cbor_get_array(&r, &items) || items != wire_items[type]) {
        return P4P_EMALFORMED;
    }
    get_u32(&r, &w->reqid);
    switch (type) {
    case BLOB_HDR_REQ:
        get_hash(&r, &w->hash);
        break;
    case BLOB_HDR:
        cbor_get_bstr(&r, &w->data, &w->data_len);
        break;
    case BLOB_LEAVES_REQ:
        get_hash(&r, &w->hash);
        get_u32(&r, &w->seg);
        get_u32(&r, &w->offset);
        get_u32(&r, &w->len);
        get_u32(&r, &w->plen);
        break;
    case BLOB_PIECE_REQ:
        get_hash(&r, &w->hash);
        get_u32(&r, &w->offset);
        get_u32(&r, &w->len);
        get_u32(&r, &w->plen);
        break;
    case BLOB_LEAVES:
    case BLOB_PIECE:
        get_u32(&r, &w->offset);
        get_u32(&r, &w->total);
        cbor_get_bstr(&r, &w->data, &w->data_len);
        break;
    default:
        break;
    }
    if (!cbor_reader_done(&r)) {
        return P4P_EMALFORMED;
    }
    if ((type == BLOB_LEAVES_REQ || type == BLOB_PIECE_REQ) && w->len == 0) {
        return P4P_EMALFORMED;
    }
    if ((type == BLOB_LEAVES || type == BLOB_PIECE) &&
        (w->data_len == 0 || w->total == 0 || w->offset >= w->total ||
         w->data_len > w->total - w->offset)) {
        return P4P_EMALFORMED;
    }
    return 0;
}

/* Starts a message in the outbox: its type byte and array head. NULL when full. */
static uint8_t *wire_start(struct blob *b, struct cbor_writer *w, unsigned type)
{
    uint8_t *p = out_next(b);
    if (!p) {
        return NULL;
    }
    p[0] = (uint8_t)(BLOB_VERSION << 4 | type);
    cbor_writer_init(w, p + 1, b->cfg.mtu - 1);
    cbor_put_array(w, wire_items[type]);
    return p;
}

static int wire_finish(struct blob *b, struct cbor_writer *w, p4p_addr peer, size_t payload)
{
    if (!cbor_writer_ok(w)) {
        return P4P_ETOOBIG; /* cannot happen: every message was sized against the mtu */
    }
    out_commit(b, peer, w->len + 1, payload);
    return 0;
}

static int send_simple(struct blob *b, p4p_addr peer, unsigned type, uint32_t reqid,
                       const uint8_t *hash, const uint8_t *bytes, size_t blen)
{
    struct cbor_writer w;
    if (!wire_start(b, &w, type)) {
        return P4P_EFULL;
    }
    cbor_put_uint(&w, reqid);
    if (hash) {
        cbor_put_bstr(&w, hash, H);
    }
    if (bytes) {
        cbor_put_bstr(&w, bytes, blen);
    }
    return wire_finish(b, &w, peer, 0);
}

static int send_request(struct blob *b, p4p_addr peer, const struct slot *s, uint32_t reqid,
                        const uint8_t *digest, uint32_t offset, uint32_t len)
{
    struct cbor_writer w;
    unsigned type = s->kind == OBJ_SEG ? BLOB_LEAVES_REQ : BLOB_PIECE_REQ;
    if (!wire_start(b, &w, type)) {
        return P4P_EFULL;
    }
    cbor_put_uint(&w, reqid);
    if (s->kind == OBJ_SEG) {
        cbor_put_bstr(&w, digest, H);
        cbor_put_uint(&w, s->index);
    } else {
        cbor_put_bstr(&w, s->hash, H);
    }
    cbor_put_uint(&w, offset);
    cbor_put_uint(&w, len);
    cbor_put_uint(&w, b->plen);
    return wire_finish(b, &w, peer, 0);
}

static int send_data(struct blob *b, p4p_addr peer, unsigned type, uint32_t reqid, uint32_t offset,
                     uint32_t total, const uint8_t *data, size_t len)
{
    struct cbor_writer w;
    if (!wire_start(b, &w, type)) {
        return P4P_EFULL;
    }
    cbor_put_uint(&w, reqid);
    cbor_put_uint(&w, offset);
    cbor_put_uint(&w, total);
    cbor_put_bstr(&w, data, len);
    return wire_finish(b, &w, peer, type == BLOB_PIECE ? len : 0);
}

/* ---- Create, destroy ----------------------------------------------------------------------- */

void blob_config_default(struct blob_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->mtu = 1200;
    cfg->transfers_max = 4;
    cfg->peers_max = 8;
    cfg->requests_max = 64;
    cfg->window = 4;
    cfg->request_pieces = 8;
    cfg->slots_max = 8;
    cfg->serve_pieces_max = BLOB_REQ_PIECES_MAX;
    cfg->serve_cache_max = 4;
    cfg->outbox_max = 256;
    cfg->event_max = 64;
    cfg->peer_timeouts_max = 8;
    cfg->peer_corrupt_max = 2;
    cfg->chunks_max = UINT64_C(1) << 20;
    cfg->request_timeout_ns = 1000000000ull;
    fastcdc_params_default(&cfg->chunking);
}

static bool config_ok(const struct blob_config *c)
{
    struct fastcdc probe;
    return c->mtu >= BLOB_MTU_MIN && c->mtu <= BLOB_MTU_MAX && c->transfers_max >= 1 &&
           c->transfers_max <= 1024 && c->peers_max >= 1 && c->peers_max <= BLOB_PEERS_MAX_LIMIT &&
           c->requests_max >= 1 && c->requests_max <= 65536 && c->window >= 1 &&
           c->request_pieces >= 1 && c->request_pieces <= BLOB_REQ_PIECES_MAX &&
           c->slots_max >= 1 && c->slots_max <= 4096 && c->serve_pieces_max >= 1 &&
           c->serve_pieces_max <= BLOB_REQ_PIECES_MAX && c->serve_cache_max <= 64 &&
           c->outbox_max >= 1 && c->outbox_max <= (1u << 20) && c->event_max >= 1 &&
           c->event_max <= (1u << 20) && c->peer_timeouts_max >= 1 && c->peer_corrupt_max >= 1 &&
           c->chunks_max >= 1 && c->chunks_max <= (UINT64_C(1) << 26) &&
           c->request_timeout_ns > 0 && c->chunking.max_len <= (16u << 20) &&
           fastcdc_init(&probe, &c->chunking) == 0;
}

static void *alloc(struct blob *b, size_t n, size_t size)
{
    if (n && size > SIZE_MAX / n) {
        return NULL;
    }
    void *p = calloc(n ? n : 1, size);
    if (p) {
        b->memory += n * size;
    }
    return p;
}

int blob_create(const struct blob_config *cfg, const struct blob_env *env, blob **out)
{
    if (!cfg || !env || !out || !env->random || !env->storage.ops || !config_ok(cfg)) {
        return P4P_EINVAL;
    }
    struct blob *b = calloc(1, sizeof(*b));
    if (!b) {
        return P4P_ENOMEM;
    }
    b->memory = sizeof(*b);
    b->cfg = *cfg;
    b->env = *env;
    b->st = env->storage;
    b->plen = cfg->mtu - BLOB_PIECE_OVERHEAD;
    b->slot_len = cfg->chunking.max_len > SEG_OBJ_MAX ? cfg->chunking.max_len : SEG_OBJ_MAX;
    uint32_t pieces = (b->slot_len + b->plen - 1) / b->plen;
    b->bm_words = (pieces + 63) / 64;
    while ((1u << b->req_bits) < cfg->requests_max) {
        b->req_bits++;
    }
    uint8_t rnd[4];
    env->random(env->ctx, rnd, sizeof(rnd));
    b->req_seq = get_le32(rnd);
    uint64_t m_max = (cfg->chunks_max + SEG - 1) / SEG;
    b->meta_cap = 64 + 9 + (size_t)m_max * 8;

    b->xfers = alloc(b, cfg->transfers_max, sizeof(*b->xfers));
    b->peer_pool = alloc(b, (size_t)cfg->transfers_max * cfg->peers_max, sizeof(struct peer));
    b->slots = alloc(b, cfg->slots_max, sizeof(*b->slots));
    b->reqs = alloc(b, cfg->requests_max, sizeof(*b->reqs));
    b->cache = alloc(b, cfg->serve_cache_max, sizeof(*b->cache));
    if (dgram_ring_init(&b->out, cfg->outbox_max, cfg->mtu) == 0) {
        b->memory += dgram_ring_memory(&b->out);
    }
    b->ev = alloc(b, cfg->event_max, sizeof(*b->ev));
    b->scratch = alloc(b, 1, b->slot_len);
    b->segbuf = alloc(b, 1, SEG_OBJ_MAX);
    b->abuf = alloc(b, 1, b->slot_len);
    b->meta_buf = alloc(b, 1, b->meta_cap);
    b->order = alloc(b, cfg->slots_max, sizeof(*b->order));
    if (!b->order || !b->xfers || !b->peer_pool || !b->slots || !b->reqs || !b->cache ||
        !b->out.buf || !b->ev || !b->scratch || !b->segbuf || !b->abuf || !b->meta_buf) {
        blob_destroy(b);
        return P4P_ENOMEM;
    }
    for (uint32_t i = 0; i < cfg->transfers_max; i++) {
        b->xfers[i].peers = b->peer_pool + (size_t)i * cfg->peers_max;
        b->xfers[i].cur_leaves = alloc(b, 1, SEG_OBJ_MAX);
        if (!b->xfers[i].cur_leaves) {
            blob_destroy(b);
            return P4P_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < cfg->slots_max; i++) {
        struct slot *s = &b->slots[i];
        s->buf = alloc(b, 1, b->slot_len);
        s->have = alloc(b, b->bm_words, sizeof(uint64_t));
        s->asked = alloc(b, b->bm_words, sizeof(uint64_t));
        if (!s->buf || !s->have || !s->asked) {
            blob_destroy(b);
            return P4P_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < cfg->serve_cache_max; i++) {
        b->cache[i].buf = alloc(b, 1, b->slot_len);
        if (!b->cache[i].buf) {
            blob_destroy(b);
            return P4P_ENOMEM;
        }
    }
    *out = b;
    return 0;
}

static void adder_reset(struct blob *b)
{
    free(b->add.lh);
    free(b->add.ll);
    memset(&b->add, 0, sizeof(b->add));
}

void blob_destroy(blob *b)
{
    if (!b) {
        return;
    }
    if (b->add.in_tx) {
        b->st.ops->abort(b->st.ctx);
    }
    adder_reset(b);
    if (b->xfers) {
        for (uint32_t i = 0; i < b->cfg.transfers_max; i++) {
            free(b->xfers[i].cur_leaves);
            free(b->xfers[i].seg_bytes);
            free(b->xfers[i].seg_have);
        }
    }
    if (b->slots) {
        for (uint32_t i = 0; i < b->cfg.slots_max; i++) {
            free(b->slots[i].buf);
            free(b->slots[i].have);
            free(b->slots[i].asked);
        }
    }
    if (b->cache) {
        for (uint32_t i = 0; i < b->cfg.serve_cache_max; i++) {
            free(b->cache[i].buf);
        }
    }
    free(b->xfers);
    free(b->peer_pool);
    free(b->slots);
    free(b->reqs);
    free(b->cache);
    dgram_ring_free(&b->out, 0);
    free(b->ev);
    free(b->scratch);
    free(b->segbuf);
    free(b->abuf);
    free(b->meta_buf);
    free(b->order);
    free(b);
}

/* ---- Adding blobs -------------------------------------------------------------------------- */

int blob_add_begin(blob *b)
{
    if (b->add.active) {
        return P4P_EFULL;
    }
    adder_reset(b);
    fastcdc_init(&b->add.cdc, &b->cfg.chunking); /* checked at create */
    b->add.active = true;
    return 0;
}

void blob_add_abort(blob *b)
{
    if (b->add.in_tx) {
        b->st.ops->abort(b->st.ctx);
    }
    adder_reset(b);
}

static int add_fail(struct blob *b, int rc)
{
    blob_add_abort(b);
    return rc;
}

/* One chunk of the blob being added: its leaf, and into the store unless already there. */
static int add_chunk(struct blob *b, const uint8_t *chunk, uint32_t len)
{
    struct adder *a = &b->add;
    if (a->count == b->cfg.chunks_max) {
        return P4P_EFULL;
    }
    if (a->count == a->cap) {
        uint64_t cap = a->cap ? 2 * a->cap : 64;
        uint8_t *lh = realloc(a->lh, cap * H);
        if (!lh) {
            return P4P_ENOMEM;
        }
        a->lh = lh;
        uint32_t *ll = realloc(a->ll, cap * sizeof(*ll));
        if (!ll) {
            return P4P_ENOMEM;
        }
        a->ll = ll;
        a->cap = cap;
    }
    uint8_t *leaf = a->lh + a->count * H;
    merkle_leaf_hash(chunk, len, leaf);
    a->ll[a->count++] = len;
    int rc;
    if (!a->in_tx) {
        if ((rc = b->st.ops->begin(b->st.ctx)) != 0) {
            return rc;
        }
        a->in_tx = true;
    }
    rc = b->st.ops->chunk_has(b->st.ctx, leaf);
    if (rc == 1) {
        b->stats.chunks_dedup++;
        b->stats.bytes_dedup_saved += len;
        return 0;
    }
    if ((rc = b->st.ops->chunk_put(b->st.ctx, leaf, chunk, len)) != 0) {
        return rc;
    }
    a->tx_bytes += len;
    if (a->tx_bytes >= TX_BATCH) {
        a->in_tx = false;
        a->tx_bytes = 0;
        return tx_end(b, 0);
    }
    return 0;
}

int blob_add_update(blob *b, const uint8_t *data, size_t len)
{
    struct adder *a = &b->add;
    if (!a->active || (!data && len)) {
        return P4P_EINVAL;
    }
    while (len > 0) {
        uint32_t clen = 0;
        size_t used = fastcdc_feed(&a->cdc, data, len, &clen);
        const uint8_t *chunk = data;
        if (clen && a->pending) {
            memcpy(b->abuf + a->pending, data, used);
            chunk = b->abuf;
        } else if (!clen) {
            memcpy(b->abuf + a->pending, data, used);
            a->pending += used;
        }
        if (clen) {
            a->pending = 0;
            int rc = add_chunk(b, chunk, clen);
            if (rc) {
                return add_fail(b, rc);
            }
        }
        data += used;
        len -= used;
    }
    if (a->in_tx) {
        a->in_tx = false;
        a->tx_bytes = 0;
        int rc = tx_end(b, 0);
        if (rc) {
            return add_fail(b, rc);
        }
    }
    return 0;
}

/* Writes the leaf objects, lengths and meta of the added blob (in the open transaction). */
static int add_records(struct blob *b, const uint8_t digest[H], uint64_t size, const uint8_t *root,
                       const uint8_t *seg_roots, uint64_t m, uint64_t *seg_bytes)
{
    struct adder *a = &b->add;
    for (uint64_t g = 0; g < m; g++) {
        uint32_t cnt = seg_count(a->count, g);
        const uint8_t *leaves = a->lh + g * SEG * H;
        size_t pc = 0;
        memcpy(b->scratch, leaves, (size_t)cnt * H);
        int rc = merkle_proof(seg_roots, m, g, b->scratch + (size_t)cnt * H,
                              (b->slot_len - (size_t)cnt * H) / H, &pc);
        uint8_t key[KEY_LEN];
        if (rc == 0) {
            rc = b->st.ops->kv_put(b->st.ctx, key, make_key(key, 's', digest, g), b->scratch,
                                   (cnt + pc) * H);
        }
        if (rc) {
            return rc;
        }
        uint64_t sum = 0;
        for (uint32_t k = 0; k < cnt; k++) {
            uint32_t l = a->ll[g * SEG + k];
            put_le32(b->scratch + 4 * k, l);
            sum += l;
        }
        seg_bytes[g] = sum;
        rc = b->st.ops->kv_put(b->st.ctx, key, make_key(key, 'l', digest, g), b->scratch,
                               (size_t)cnt * 4);
        if (rc) {
            return rc;
        }
    }
    return meta_store(b, digest, size, a->count, root, seg_bytes);
}

int blob_add_finish(blob *b, p4p_time_ns now, struct cid *id)
{
    (void)now;
    struct adder *a = &b->add;
    if (!a->active || !id) {
        return P4P_EINVAL;
    }
    uint32_t last = fastcdc_finish(&a->cdc);
    int rc = 0;
    if (last) {
        rc = add_chunk(b, b->abuf, last);
        if (rc == 0 && a->in_tx) {
            a->in_tx = false;
            rc = tx_end(b, 0);
        }
        if (rc) {
            return add_fail(b, rc);
        }
    }
    uint64_t n = a->count, m = (n + SEG - 1) / SEG, size = 0;
    for (uint64_t k = 0; k < n; k++) {
        size += a->ll[k];
    }
    uint8_t root[H];
    merkle_root(a->lh, n, root);
    uint8_t *seg_roots = malloc((m ? m : 1) * H);
    uint64_t *seg_bytes = malloc((m ? m : 1) * sizeof(uint64_t));
    if (!seg_roots || !seg_bytes) {
        free(seg_roots);
        free(seg_bytes);
        return add_fail(b, P4P_ENOMEM);
    }
    for (uint64_t g = 0; g < m; g++) {
        merkle_root(a->lh + g * SEG * H, seg_count(n, g), seg_roots + g * H);
    }
    struct cid cid;
    blob_make_id(size, n, root, &cid);
    rc = b->st.ops->begin(b->st.ctx);
    if (rc == 0) {
        rc = tx_end(b, add_records(b, digest_of(&cid), size, root, seg_roots, m, seg_bytes));
    }
    free(seg_roots);
    free(seg_bytes);
    adder_reset(b);
    if (rc) {
        return rc;
    }
    *id = cid;
    return 0;
}

int blob_add(blob *b, p4p_time_ns now, const uint8_t *data, size_t len, struct cid *id)
{
    if (!id || (!data && len)) {
        return P4P_EINVAL;
    }
    int rc = blob_add_begin(b);
    if (rc == 0) {
        rc = blob_add_update(b, data, len);
    }
    if (rc == 0) {
        rc = blob_add_finish(b, now, id);
    }
    return rc;
}

/* ---- Reading ------------------------------------------------------------------------------- */

/* Loads the chunk lengths (into lens) and leaves (into b->segbuf) of segment g. */
static int load_segment(struct blob *b, const uint8_t digest[H], uint64_t g, uint32_t cnt,
                        uint8_t *lens)
{
    uint8_t key[KEY_LEN];
    size_t got = 0;
    int rc = b->st.ops->kv_get(b->st.ctx, key, make_key(key, 'l', digest, g), lens, SEG * 4, &got);
    if (rc == 0 && got != (size_t)cnt * 4) {
        rc = P4P_ECORRUPT;
    }
    if (rc == 0) {
        rc = b->st.ops->kv_get(b->st.ctx, key, make_key(key, 's', digest, g), b->segbuf,
                               SEG_OBJ_MAX, &got);
    }
    if (rc == 0 && got < (size_t)cnt * H) {
        rc = P4P_ECORRUPT;
    }
    return rc == P4P_ETOOBIG ? P4P_ECORRUPT : rc;
}

/* Copies the bytes [from, from + take) of chunk `hash` (clen bytes) to out. */
static int read_chunk(struct blob *b, const uint8_t *hash, uint32_t clen, uint32_t from,
                      size_t take, uint8_t *out)
{
    size_t got = 0;
    int rc;
    if (from == 0 && take == clen) {
        rc = b->st.ops->chunk_get(b->st.ctx, hash, out, clen, &got);
    } else {
        rc = b->st.ops->chunk_get(b->st.ctx, hash, b->scratch, b->slot_len, &got);
        if (rc == 0 && got == clen) {
            memcpy(out, b->scratch + from, take);
        }
    }
    if (rc == P4P_ETOOBIG || (rc == 0 && got != clen)) {
        return P4P_ECORRUPT;
    }
    return rc;
}

int blob_read(blob *b, const struct cid *id, uint64_t offset, uint8_t *buf, size_t len,
              size_t *out_len)
{
    if (!id_ok(id) || (!buf && len) || !out_len) {
        return P4P_EINVAL;
    }
    struct meta mt;
    int rc = meta_load(b, digest_of(id), &mt);
    if (rc) {
        return rc;
    }
    if (offset > mt.size) {
        return P4P_EINVAL;
    }
    size_t want = len < mt.size - offset ? len : (size_t)(mt.size - offset), done = 0;
    uint64_t pos = 0, g = 0;
    while (g < mt.m && done < want) {
        uint64_t sb = meta_seg(&mt, g);
        if (sb == 0) {
            return P4P_ENOTFOUND;
        }
        if (pos + sb <= offset) {
            pos += sb;
            g++;
            continue;
        }
        uint32_t cnt = seg_count(mt.n, g);
        uint8_t lens[SEG * 4];
        if ((rc = load_segment(b, digest_of(id), g, cnt, lens)) != 0) {
            return rc;
        }
        for (uint32_t k = 0; k < cnt && done < want; k++) {
            uint32_t clen = get_le32(lens + 4 * k);
            uint64_t at = offset + done;
            if (pos + clen <= at) {
                pos += clen;
                continue;
            }
            uint32_t from = (uint32_t)(at - pos);
            size_t take = clen - from < want - done ? clen - from : want - done;
            rc = read_chunk(b, b->segbuf + (size_t)k * H, clen, from, take, buf + done);
            if (rc) {
                return rc;
            }
            done += take;
            pos += clen;
        }
        g++;
    }
    *out_len = done;
    return 0;
}

static struct xfer *xfer_find(struct blob *b, const struct cid *id)
{
    for (uint32_t i = 0; i < b->cfg.transfers_max; i++) {
        struct xfer *t = &b->xfers[i];
        if (t->used && memcmp(digest_of(&t->id), digest_of(id), H) == 0) {
            return t;
        }
    }
    return NULL;
}

int blob_info(blob *b, const struct cid *id, struct blob_info *out)
{
    if (!id_ok(id) || !out) {
        return P4P_EINVAL;
    }
    struct meta mt;
    int rc = meta_load(b, digest_of(id), &mt);
    if (rc) {
        return rc;
    }
    memset(out, 0, sizeof(*out));
    out->size = mt.size;
    out->chunk_count = mt.n;
    memcpy(out->root, mt.root, H);
    out->segments = mt.m;
    for (uint64_t g = 0; g < mt.m; g++) {
        out->segments_complete += meta_seg(&mt, g) != 0;
    }
    out->is_complete = meta_complete(&mt);
    out->is_fetching = xfer_find(b, id) != NULL;
    return 0;
}

/* ---- Serving ------------------------------------------------------------------------------- */

/* The object a request names, from the cache or the store. 0 and *obj / *len, P4P_ENOTFOUND,
 * or a storage error. */
static int serve_load(struct blob *b, const struct wire *w, const uint8_t **obj, uint32_t *len)
{
    uint8_t kind = w->type == BLOB_LEAVES_REQ ? OBJ_SEG : OBJ_CHUNK;
    uint8_t ck[H + 4];
    memcpy(ck, w->hash, H);
    put_le32(ck + H, kind == OBJ_SEG ? w->seg : 0);
    struct cache_entry *victim = NULL;
    for (uint32_t i = 0; i < b->cfg.serve_cache_max; i++) {
        struct cache_entry *c = &b->cache[i];
        if (c->kind == kind && memcmp(c->key, ck, sizeof(ck)) == 0) {
            c->tick = ++b->cache_tick;
            *obj = c->buf;
            *len = c->len;
            return 0;
        }
        if (!victim || c->tick < victim->tick) {
            victim = c;
        }
    }
    uint8_t *buf = victim ? victim->buf : b->scratch;
    size_t got = 0;
    int rc;
    if (kind == OBJ_SEG) {
        uint8_t key[KEY_LEN];
        rc = b->st.ops->kv_get(b->st.ctx, key, make_key(key, 's', w->hash, w->seg), buf,
                               b->slot_len, &got);
    } else {
        rc = b->st.ops->chunk_get(b->st.ctx, w->hash, buf, b->slot_len, &got);
    }
    if (rc == P4P_ETOOBIG || (rc == 0 && got == 0)) {
        rc = P4P_ENOTFOUND; /* larger than we serve, or nothing to serve */
    }
    if (rc) {
        if (victim) {
            victim->kind = 0;
        }
        return rc;
    }
    if (victim) {
        victim->kind = kind;
        memcpy(victim->key, ck, sizeof(ck));
        victim->len = (uint32_t)got;
        victim->tick = ++b->cache_tick;
    }
    *obj = buf;
    *len = (uint32_t)got;
    return 0;
}

static void send_not_found(struct blob *b, p4p_addr peer, uint32_t reqid)
{
    if (send_simple(b, peer, BLOB_NOT_FOUND, reqid, NULL, NULL, 0) == 0) {
        b->stats.responses_sent++;
        b->stats.not_found_sent++;
    }
}

static int serve(struct blob *b, p4p_addr peer, const struct wire *w)
{
    b->stats.requests_received++;
    if (w->type == BLOB_HDR_REQ) {
        struct meta mt;
        int rc = meta_load(b, w->hash, &mt);
        if (rc == P4P_ENOTFOUND) {
            send_not_found(b, peer, w->reqid);
            return 0;
        }
        if (rc) {
            return rc;
        }
        uint8_t hdr[BLOB_HEADER_MAX];
        size_t hlen = 0;
        blob_header_encode(mt.size, mt.n, mt.root, hdr, sizeof(hdr), &hlen);
        if (send_simple(b, peer, BLOB_HDR, w->reqid, NULL, hdr, hlen) == 0) {
            b->stats.responses_sent++;
        }
        return 0;
    }
    if (w->plen < BLOB_PLEN_MIN || w->plen > b->plen) {
        send_not_found(b, peer, w->reqid);
        return 0;
    }
    const uint8_t *obj = NULL;
    uint32_t total = 0;
    int rc = serve_load(b, w, &obj, &total);
    if (rc == P4P_ENOTFOUND || (rc == 0 && w->offset >= total)) {
        send_not_found(b, peer, w->reqid);
        return 0;
    }
    if (rc) {
        return rc;
    }
    unsigned type = w->type == BLOB_LEAVES_REQ ? BLOB_LEAVES : BLOB_PIECE;
    uint64_t pieces = ((uint64_t)w->len + w->plen - 1) / w->plen;
    if (pieces > b->cfg.serve_pieces_max) {
        pieces = b->cfg.serve_pieces_max;
    }
    for (uint64_t k = 0; k < pieces; k++) {
        uint64_t off = w->offset + k * w->plen;
        if (off >= total) {
            break;
        }
        uint32_t dlen = total - off < w->plen ? (uint32_t)(total - off) : w->plen;
        if (send_data(b, peer, type, w->reqid, (uint32_t)off, total, obj + off, dlen)) {
            break;
        }
        b->stats.responses_sent++;
    }
    return 0;
}

/* ---- Fetching: requests, peers, slots ------------------------------------------------------ */

static struct request *req_lookup(struct blob *b, uint32_t reqid, p4p_addr peer)
{
    uint32_t i = reqid & ((1u << b->req_bits) - 1);
    if (i >= b->cfg.requests_max) {
        return NULL;
    }
    struct request *r = &b->reqs[i];
    if (!r->used || r->reqid != reqid || b->xfers[r->xfer].peers[r->peer].addr != peer) {
        return NULL;
    }
    return r;
}

static struct request *req_alloc(struct blob *b)
{
    for (uint32_t i = 0; i < b->cfg.requests_max; i++) {
        struct request *r = &b->reqs[i];
        if (!r->used) {
            memset(r, 0, sizeof(*r));
            r->reqid = (uint32_t)(((uint64_t)b->req_seq++ << b->req_bits) | i);
            return r;
        }
    }
    return NULL;
}

/* Ends a request: its peer gets room, its missing pieces may be asked again. */
static void req_free(struct blob *b, struct request *r)
{
    struct xfer *t = &b->xfers[r->xfer];
    struct peer *p = &t->peers[r->peer];
    if (p->in_flight) {
        p->in_flight--;
    }
    if (r->kind == REQ_HDR) {
        t->hdr_req = NONE32;
    } else {
        struct slot *s = &b->slots[r->slot];
        s->inflight--;
        for (uint32_t k = r->first; k < r->first + r->count; k++) {
            if (k < b->bm_words * 64 && !bit_get(s->have, k)) {
                bit_clear(s->asked, k);
            }
        }
        if (r->first < s->scan) {
            s->scan = r->first;
        }
    }
    r->used = false;
}

static void slot_clear(struct blob *b, struct slot *s)
{
    memset(s->have, 0, b->bm_words * sizeof(uint64_t));
    memset(s->asked, 0, b->bm_words * sizeof(uint64_t));
    s->received = 0;
    s->scan = 0;
    s->contrib = 0;
}

static void slot_cancel_requests(struct blob *b, uint32_t si)
{
    for (uint32_t i = 0; i < b->cfg.requests_max; i++) {
        struct request *r = &b->reqs[i];
        if (r->used && r->kind == REQ_SLOT && r->slot == si) {
            req_free(b, r);
        }
    }
}

static void slot_release(struct blob *b, uint32_t si)
{
    struct slot *s = &b->slots[si];
    slot_cancel_requests(b, si);
    struct xfer *t = &b->xfers[s->xfer];
    if (t->seg_slot == si) {
        t->seg_slot = NONE32;
    }
    s->used = false;
    b->slots_used--;
}

static uint32_t slot_alloc(struct blob *b, uint32_t xi, uint8_t kind, uint64_t index)
{
    for (uint32_t i = 0; i < b->cfg.slots_max; i++) {
        struct slot *s = &b->slots[i];
        if (!s->used) {
            s->used = true;
            b->slots_used++;
            s->age = b->slot_age++;
            s->kind = kind;
            s->xfer = xi;
            s->index = index;
            s->total = 0;
            s->npieces = 0;
            s->inflight = 0;
            s->avoid = 0;
            s->pinned = NONE32;
            s->soft_avoid = NONE32;
            s->pin_next = false;
            slot_clear(b, s);
            return i;
        }
    }
    return NONE32;
}

static void slot_set_total(struct blob *b, struct slot *s, uint32_t total)
{
    s->total = total;
    s->npieces = (total + b->plen - 1) / b->plen;
}

static uint32_t xfer_index(const struct blob *b, const struct xfer *t)
{
    return (uint32_t)(t - b->xfers);
}

static void xfer_free(struct blob *b, struct xfer *t)
{
    uint32_t xi = xfer_index(b, t);
    for (uint32_t i = 0; i < b->cfg.requests_max; i++) {
        if (b->reqs[i].used && b->reqs[i].xfer == xi) {
            b->reqs[i].used = false;
        }
    }
    for (uint32_t i = 0; i < b->cfg.slots_max; i++) {
        if (b->slots[i].used && b->slots[i].xfer == xi) {
            b->slots[i].used = false;
            b->slots_used--;
        }
    }
    free(t->seg_bytes);
    free(t->seg_have);
    t->seg_bytes = NULL;
    t->seg_have = NULL;
    t->used = false;
}

static void xfer_end(struct blob *b, struct xfer *t, enum blob_event_kind kind,
                     enum blob_fail_reason reason)
{
    if (kind == BLOB_EVENT_DONE) {
        b->stats.transfers_done++;
    } else {
        b->stats.transfers_failed++;
    }
    event_push(b, kind, reason, &t->id);
    xfer_free(b, t);
}

static bool has_active_peer(const struct blob *b, const struct xfer *t)
{
    for (uint32_t i = 0; i < b->cfg.peers_max; i++) {
        if (t->peers[i].state == PEER_ACTIVE) {
            return true;
        }
    }
    return false;
}

/* Stops asking peer pi in fetch t; counted unless the host removed it. May end the fetch. */
static void peer_stop(struct blob *b, struct xfer *t, uint32_t pi, bool counted)
{
    uint32_t xi = xfer_index(b, t);
    t->peers[pi].state = PEER_DROPPED;
    if (counted) {
        b->stats.peers_dropped++;
    }
    for (uint32_t i = 0; i < b->cfg.requests_max; i++) {
        struct request *r = &b->reqs[i];
        if (r->used && r->xfer == xi && r->peer == pi) {
            req_free(b, r);
        }
    }
    for (uint32_t i = 0; i < b->cfg.slots_max; i++) {
        struct slot *s = &b->slots[i];
        if (s->used && s->xfer == xi && s->pinned == pi) {
            s->pinned = NONE32;
        }
    }
    if (!has_active_peer(b, t)) {
        xfer_end(b, t, BLOB_EVENT_FAILED, BLOB_FAIL_NO_PEERS);
    }
}

/* The peer to ask next for slot s (NULL: the header), or NONE32. Pinned slots ask their one
 * peer; otherwise peers that corrupted this object are avoided while others exist, and among
 * the rest the one with the fewest timeouts, then not the one that just timed out on s, then
 * the fewest requests in flight, round-robin on ties. */
static uint32_t choose_peer(struct blob *b, struct xfer *t, struct slot *s)
{
    if (s && s->pinned != NONE32) {
        struct peer *p = &t->peers[s->pinned];
        if (p->state == PEER_ACTIVE) {
            return p->in_flight < b->cfg.window ? s->pinned : NONE32;
        }
        s->pinned = NONE32;
    }
    uint32_t avoid = s ? s->avoid : 0, soft = s ? s->soft_avoid : NONE32;
    bool any = false;
    for (uint32_t i = 0; i < b->cfg.peers_max && !any; i++) {
        any = t->peers[i].state == PEER_ACTIVE && !(avoid >> i & 1);
    }
    if (!any && s) {
        s->avoid = avoid = 0;
        s->pin_next = true;
    }
    uint32_t best = NONE32;
    uint64_t best_key = UINT64_MAX;
    for (uint32_t k = 0; k < b->cfg.peers_max; k++) {
        uint32_t i = (t->rr + k) % b->cfg.peers_max;
        struct peer *p = &t->peers[i];
        if (p->state != PEER_ACTIVE || (avoid >> i & 1) || p->in_flight >= b->cfg.window) {
            continue;
        }
        uint64_t key = (uint64_t)p->timeouts << 40 | (uint64_t)(i == soft) << 32 | p->in_flight;
        if (key < best_key) {
            best_key = key;
            best = i;
        }
    }
    if (best != NONE32) {
        t->rr = (best + 1) % b->cfg.peers_max;
    }
    return best;
}

/* Asks for the next run of missing pieces of slot si. 1 asked, 0 not now. */
static int issue(struct blob *b, p4p_time_ns now, struct xfer *t, uint32_t si)
{
    struct slot *s = &b->slots[si];
    if (s->total == 0 && s->inflight) {
        return 0; /* the first answer tells the length */
    }
    uint32_t np = s->total ? s->npieces : b->cfg.request_pieces;
    uint32_t first = s->scan;
    while (first < np && (bit_get(s->have, first) || bit_get(s->asked, first))) {
        first++;
    }
    s->scan = first;
    if (first >= np) {
        return 0;
    }
    uint32_t count = 1;
    while (count < b->cfg.request_pieces && first + count < np &&
           !bit_get(s->have, first + count) && !bit_get(s->asked, first + count)) {
        count++;
    }
    uint32_t pi = choose_peer(b, t, s);
    if (pi == NONE32) {
        return 0;
    }
    struct request *r = req_alloc(b);
    if (!r) {
        return 0;
    }
    uint32_t off = first * b->plen, len = count * b->plen;
    if (s->total && len > s->total - off) {
        len = s->total - off;
    }
    if (send_request(b, t->peers[pi].addr, s, r->reqid, digest_of(&t->id), off, len)) {
        return 0;
    }
    r->used = true;
    r->kind = REQ_SLOT;
    r->xfer = xfer_index(b, t);
    r->peer = pi;
    r->slot = si;
    r->first = first;
    r->count = count;
    r->gap = false;
    r->sent = now;
    r->deadline = now + peer_rto(b, &t->peers[pi]);
    for (uint32_t k = first; k < first + count; k++) {
        bit_set(s->asked, k);
    }
    s->scan = first + count;
    s->inflight++;
    t->peers[pi].in_flight++;
    if (s->pin_next) {
        s->pinned = pi;
        s->pin_next = false;
    }
    b->stats.requests_sent++;
    return 1;
}

static int issue_header(struct blob *b, p4p_time_ns now, struct xfer *t)
{
    if (t->hdr_req != NONE32) {
        return 0;
    }
    uint32_t pi = choose_peer(b, t, NULL);
    if (pi == NONE32) {
        return 0;
    }
    struct request *r = req_alloc(b);
    if (!r) {
        return 0;
    }
    if (send_simple(b, t->peers[pi].addr, BLOB_HDR_REQ, r->reqid, digest_of(&t->id), NULL, 0)) {
        return 0;
    }
    r->used = true;
    r->kind = REQ_HDR;
    r->xfer = xfer_index(b, t);
    r->peer = pi;
    r->deadline = now + peer_rto(b, &t->peers[pi]);
    t->hdr_req = (uint32_t)(r - b->reqs);
    t->peers[pi].in_flight++;
    b->stats.requests_sent++;
    return 0;
}

/* ---- Fetching: progress through the blob --------------------------------------------------- */

/* Sets up the body phase from the header: the segment tables and what the store has. */
static int body_init(struct blob *b, struct xfer *t, const struct meta *mt)
{
    t->phase = PHASE_BODY;
    t->m = (t->n + SEG - 1) / SEG;
    t->seg_bytes = calloc(t->m ? t->m : 1, sizeof(uint64_t));
    t->seg_have = calloc((t->m + 7) / 8 + 1, 1);
    if (!t->seg_bytes || !t->seg_have) {
        return P4P_ENOMEM;
    }
    t->segs_done = 0;
    t->next_seg = 0;
    t->next_leaf = 0;
    t->cur_seg = NONE64;
    t->seg_slot = NONE32;
    memset(t->open, 0, sizeof(t->open));
    for (uint64_t g = 0; g < t->m; g++) {
        t->seg_bytes[g] = mt ? meta_seg(mt, g) : 0;
        bool have = t->seg_bytes[g] != 0;
        if (have) {
            t->segs_done++;
        } else if (mt) {
            uint8_t key[KEY_LEN];
            size_t vlen = 0;
            int rc = b->st.ops->kv_get(b->st.ctx, key, make_key(key, 's', digest_of(&t->id), g),
                                       NULL, 0, &vlen);
            if (rc == 0 || rc == P4P_ETOOBIG) {
                have = true;
            } else if (rc != P4P_ENOTFOUND) {
                return rc;
            }
        }
        if (have) {
            t->seg_have[g / 8] |= (uint8_t)(1u << (g % 8));
        }
    }
    return 0;
}

static bool seg_have(const struct xfer *t, uint64_t g)
{
    return t->seg_have[g / 8] >> (g % 8) & 1;
}

/* Every segment is complete: DONE if the chunks add up to the size, else FAILED. */
static void xfer_finish(struct blob *b, struct xfer *t)
{
    uint64_t sum = 0;
    for (uint64_t g = 0; g < t->m; g++) {
        sum += t->seg_bytes[g];
    }
    if (sum == t->size) {
        xfer_end(b, t, BLOB_EVENT_DONE, 0);
    } else {
        xfer_end(b, t, BLOB_EVENT_FAILED, BLOB_FAIL_BAD_BLOB);
    }
}

/* Leaf `leaf` of fetch t is in the store with `len` bytes. 1 when that completed the fetch
 * (t is gone), 0, or a storage error. */
static int resolve(struct blob *b, struct xfer *t, uint64_t leaf, uint32_t len)
{
    uint64_t g = leaf / SEG;
    struct open_seg *o = NULL;
    for (int i = 0; i < OPEN_SEGS; i++) {
        if (t->open[i].used && t->open[i].g == g) {
            o = &t->open[i];
        }
    }
    if (!o) {
        return 0; /* cannot happen: a leaf is resolved only while its segment is open */
    }
    o->lengths[leaf % SEG] = len;
    if (--o->pending) {
        return 0;
    }
    uint32_t cnt = seg_count(t->n, g);
    uint64_t sum = 0;
    uint8_t lens[SEG * 4];
    for (uint32_t k = 0; k < cnt; k++) {
        put_le32(lens + 4 * k, o->lengths[k]);
        sum += o->lengths[k];
    }
    t->seg_bytes[g] = sum;
    uint8_t key[KEY_LEN];
    int rc = b->st.ops->begin(b->st.ctx);
    if (rc == 0) {
        rc = b->st.ops->kv_put(b->st.ctx, key, make_key(key, 'l', digest_of(&t->id), g), lens,
                               (size_t)cnt * 4);
        if (rc == 0) {
            rc = meta_store(b, digest_of(&t->id), t->size, t->n, t->root, t->seg_bytes);
        }
        rc = tx_end(b, rc);
    }
    if (rc) {
        /* A storage error is a crash of the node: after a restart the fetch resumes from
         * what was committed (this segment's chunks, without its lengths record). */
        t->seg_bytes[g] = 0;
        return rc;
    }
    o->used = false;
    if (++t->segs_done == t->m) {
        xfer_finish(b, t);
        return 1;
    }
    return 0;
}

/* Opens a slot for the next leaf object to fetch, one at a time. */
static void advance_segments(struct blob *b, struct xfer *t)
{
    if (t->seg_slot != NONE32) {
        return;
    }
    while (t->next_seg < t->m && seg_have(t, t->next_seg)) {
        t->next_seg++;
    }
    if (t->next_seg >= t->m) {
        return;
    }
    uint64_t g = t->next_seg;
    uint32_t si = slot_alloc(b, xfer_index(b, t), OBJ_SEG, g);
    if (si == NONE32) {
        return;
    }
    uint32_t cnt = seg_count(t->n, g);
    int pc = merkle_range_proof_count(t->n, g * SEG, g * SEG + cnt);
    slot_set_total(b, &b->slots[si], (cnt + (uint32_t)pc) * H);
    t->seg_slot = si;
}

static bool chunk_in_slot(const struct blob *b, uint32_t xi, const uint8_t *hash)
{
    for (uint32_t i = 0; i < b->cfg.slots_max; i++) {
        const struct slot *s = &b->slots[i];
        if (s->used && s->xfer == xi && s->kind == OBJ_CHUNK && memcmp(s->hash, hash, H) == 0) {
            return true;
        }
    }
    return false;
}

/* Enters segment g with the chunk cursor: an open-segment entry and its leaves. 1 entered, 0
 * not now (leaves not here, or every entry busy), or a storage error. */
static int enter_segment(struct blob *b, struct xfer *t, uint64_t g)
{
    if (!seg_have(t, g)) {
        return 0;
    }
    struct open_seg *o = NULL;
    for (int i = 0; i < OPEN_SEGS && !o; i++) {
        o = t->open[i].used ? NULL : &t->open[i];
    }
    if (!o) {
        return 0;
    }
    uint8_t key[KEY_LEN];
    size_t got = 0;
    uint32_t cnt = seg_count(t->n, g);
    int rc = b->st.ops->kv_get(b->st.ctx, key, make_key(key, 's', digest_of(&t->id), g),
                               t->cur_leaves, SEG_OBJ_MAX, &got);
    if (rc == 0 && got < (size_t)cnt * H) {
        rc = P4P_ECORRUPT;
    }
    if (rc) {
        return rc == P4P_ETOOBIG ? P4P_ECORRUPT : rc;
    }
    o->used = true;
    o->g = g;
    o->pending = cnt;
    memset(o->lengths, 0, sizeof(o->lengths));
    t->cur_seg = g;
    return 1;
}

/* Walks the chunk cursor: chunks the store has are resolved, the others get slots. 1 when the
 * fetch completed (t is gone), 0 when it stops (no slot, leaves not here yet, a chunk already
 * in a slot), or a storage error. */
static int advance_chunks(struct blob *b, struct xfer *t)
{
    uint32_t xi = xfer_index(b, t);
    while (t->next_leaf < t->n) {
        uint64_t g = t->next_leaf / SEG;
        if (t->cur_seg != g) {
            if (t->seg_bytes[g]) {
                t->next_leaf = (g + 1) * SEG;
                continue;
            }
            int rc = enter_segment(b, t, g);
            if (rc <= 0) {
                return rc;
            }
        }
        if (b->slots_used == b->cfg.slots_max) {
            return 0;
        }
        const uint8_t *hash = t->cur_leaves + (t->next_leaf - g * SEG) * H;
        if (chunk_in_slot(b, xi, hash)) {
            return 0; /* the same chunk twice in a row: wait for the first copy */
        }
        if (b->st.ops->chunk_has(b->st.ctx, hash) == 1) {
            size_t len = 0;
            int rc = b->st.ops->chunk_get(b->st.ctx, hash, NULL, 0, &len);
            if (rc != 0 && rc != P4P_ETOOBIG) {
                return rc;
            }
            b->stats.chunks_dedup++;
            b->stats.bytes_dedup_saved += len;
            if ((rc = resolve(b, t, t->next_leaf++, (uint32_t)len)) != 0) {
                return rc;
            }
            continue;
        }
        uint32_t si = slot_alloc(b, xi, OBJ_CHUNK, t->next_leaf);
        if (si == NONE32) {
            return 0;
        }
        memcpy(b->slots[si].hash, hash, H);
        t->next_leaf++;
    }
    return 0;
}

static int pump_xfer(struct blob *b, p4p_time_ns now, struct xfer *t)
{
    if (t->phase == PHASE_HEADER) {
        return issue_header(b, now, t);
    }
    uint32_t xi = xfer_index(b, t);
    advance_segments(b, t);
    int rc = advance_chunks(b, t);
    if (rc) {
        return rc < 0 ? rc : 0;
    }
    /* Requests while peers have room: the leaf object first, then chunks oldest first, so that
     * chunks complete in cursor order and no slot starves. */
    uint32_t k = 0;
    for (uint32_t i = 0; i < b->cfg.slots_max; i++) {
        const struct slot *s = &b->slots[i];
        if (!s->used || s->xfer != xi) {
            continue;
        }
        uint64_t key = s->kind == OBJ_SEG ? 0 : s->age + 1;
        uint32_t j = k++;
        while (j > 0) {
            const struct slot *o = &b->slots[b->order[j - 1]];
            if ((o->kind == OBJ_SEG ? 0 : o->age + 1) <= key) {
                break;
            }
            b->order[j] = b->order[j - 1];
            j--;
        }
        b->order[j] = i;
    }
    for (uint32_t j = 0; j < k; j++) {
        while (issue(b, now, t, b->order[j])) {
        }
    }
    return 0;
}

static int pump(struct blob *b, p4p_time_ns now)
{
    b->need_pump = false;
    uint32_t n = b->cfg.transfers_max;
    for (uint32_t k = 0; k < n; k++) {
        struct xfer *t = &b->xfers[(b->xfer_rr + k) % n];
        if (t->used) {
            int rc = pump_xfer(b, now, t);
            if (rc) {
                return rc;
            }
        }
    }
    b->xfer_rr = (b->xfer_rr + 1) % n;
    return 0;
}

/* ---- Fetching: responses ------------------------------------------------------------------- */

/* A reassembled object failed its check: discard it and ask elsewhere. A peer that alone
 * delivered it is charged; at cfg.peer_corrupt_max it is dropped (which may end the fetch). */
static void reject_object(struct blob *b, struct xfer *t, uint32_t si)
{
    struct slot *s = &b->slots[si];
    uint32_t contrib = s->contrib;
    slot_cancel_requests(b, si);
    slot_clear(b, s);
    if (s->kind == OBJ_CHUNK) {
        s->total = 0;
        s->npieces = 0;
    }
    s->avoid |= contrib;
    s->pinned = NONE32;
    if (popcount32(contrib) == 1) {
        uint32_t pi = 0;
        while (!(contrib >> pi & 1)) {
            pi++;
        }
        if (++t->peers[pi].corrupt >= b->cfg.peer_corrupt_max &&
            t->peers[pi].state == PEER_ACTIVE) {
            peer_stop(b, t, pi, true);
        }
    }
}

/* Slot si holds every piece: check it, store it. */
static int complete_object(struct blob *b, struct xfer *t, uint32_t si)
{
    struct slot *s = &b->slots[si];
    slot_cancel_requests(b, si);
    int rc;
    if (s->kind == OBJ_SEG) {
        uint64_t g = s->index;
        uint32_t cnt = seg_count(t->n, g);
        size_t pc = s->total / H - cnt;
        if (merkle_range_verify(t->root, t->n, g * SEG, g * SEG + cnt, s->buf,
                                s->buf + (size_t)cnt * H, pc) != 0) {
            b->stats.segments_rejected++;
            reject_object(b, t, si);
            return 0;
        }
        uint8_t key[KEY_LEN];
        rc = b->st.ops->begin(b->st.ctx);
        if (rc == 0) {
            rc = tx_end(b,
                        b->st.ops->kv_put(b->st.ctx, key, make_key(key, 's', digest_of(&t->id), g),
                                          s->buf, s->total));
        }
        slot_release(b, si);
        if (rc) {
            return rc;
        }
        t->seg_have[g / 8] |= (uint8_t)(1u << (g % 8));
        b->stats.segments_fetched++;
        return 0;
    }
    uint8_t h[H];
    merkle_leaf_hash(s->buf, s->total, h);
    if (sodium_memcmp(h, s->hash, H) != 0) {
        b->stats.chunks_corrupt++;
        reject_object(b, t, si);
        return 0;
    }
    rc = b->st.ops->begin(b->st.ctx);
    if (rc == 0) {
        rc = tx_end(b, b->st.ops->chunk_put(b->st.ctx, s->hash, s->buf, s->total));
    }
    uint64_t leaf = s->index;
    uint32_t total = s->total;
    slot_release(b, si);
    if (rc) {
        /* The chunk is dropped; the cursor is past it, so it stays missing until the fetch
         * is started again (the caller treats a storage error as a crash anyway). */
        return rc;
    }
    b->stats.chunks_fetched++;
    b->stats.bytes_fetched += total;
    rc = resolve(b, t, leaf, total);
    return rc < 0 ? rc : 0;
}

static int on_piece(struct blob *b, p4p_time_ns now, p4p_addr peer, const struct wire *w)
{
    struct request *r = req_lookup(b, w->reqid, peer);
    if (!r || r->kind != REQ_SLOT ||
        (b->slots[r->slot].kind == OBJ_SEG) != (w->type == BLOB_LEAVES)) {
        b->stats.unexpected++;
        return 0;
    }
    struct xfer *t = &b->xfers[r->xfer];
    struct slot *s = &b->slots[r->slot];
    uint32_t si = r->slot;
    b->stats.responses_received++;
    if (s->total == 0) {
        if (w->total > b->slot_len) {
            b->stats.malformed++; /* a chunk larger than we take: only a liar sends it */
            s->contrib |= 1u << r->peer;
            reject_object(b, t, si);
            return 0;
        }
        slot_set_total(b, s, w->total);
        if (r->first + r->count > s->npieces) {
            r->count = s->npieces > r->first ? s->npieces - r->first : 0;
        }
    }
    uint32_t p = w->offset / b->plen;
    uint32_t dlen = s->total - w->offset < b->plen ? s->total - w->offset : b->plen;
    if (w->total != s->total || w->offset % b->plen || p < r->first || p >= r->first + r->count ||
        w->data_len != dlen) {
        b->stats.malformed++;
        return 0;
    }
    t->peers[r->peer].timeouts = 0;
    if (bit_get(s->have, p)) {
        b->stats.duplicate_pieces++;
        return 0;
    }
    memcpy(s->buf + w->offset, w->data, dlen);
    bit_set(s->have, p);
    s->received++;
    s->contrib |= 1u << r->peer;
    if (s->kind == OBJ_CHUNK) {
        b->stats.payload_bytes_in += dlen;
        b->stats.overhead_bytes -= dlen;
    }
    /* Pieces travel in order, so a gap before the last piece of a request is most likely a
     * loss: the request then expires after an eighth of its timeout (reordered pieces have
     * that long to arrive), and its missing pieces are asked again. */
    if (++r->got == r->count) {
        if (!r->gap) {
            peer_rtt_sample(&t->peers[r->peer], now - r->sent);
        }
        req_free(b, r);
    } else if (p == r->first + r->count - 1) {
        p4p_time_ns rto = peer_rto(b, &t->peers[r->peer]);
        p4p_time_ns soon = now + (rto / 8 > RTO_MIN_NS / 2 ? rto / 8 : RTO_MIN_NS / 2);
        r->gap = true;
        if (soon < r->deadline) {
            r->deadline = soon;
        }
    }
    if (s->received == s->npieces) {
        return complete_object(b, t, si);
    }
    return 0;
}

static int on_header(struct blob *b, p4p_addr peer, const struct wire *w)
{
    struct request *r = req_lookup(b, w->reqid, peer);
    if (!r || r->kind != REQ_HDR) {
        b->stats.unexpected++;
        return 0;
    }
    struct xfer *t = &b->xfers[r->xfer];
    uint32_t pi = r->peer;
    b->stats.responses_received++;
    req_free(b, r);
    if (cid_verify(&t->id, w->data, w->data_len) != 0) {
        b->stats.headers_rejected++;
        peer_stop(b, t, pi, true);
        return 0;
    }
    t->peers[pi].timeouts = 0;
    if (header_decode(w->data, w->data_len, &t->size, &t->n, t->root) != 0 ||
        (t->n == 0) != (t->size == 0) || t->n > t->size) {
        b->stats.headers_rejected++;
        xfer_end(b, t, BLOB_EVENT_FAILED, BLOB_FAIL_BAD_BLOB);
        return 0;
    }
    /* size > n * slot_len: some chunk would not fit a slot. */
    if (t->n > b->cfg.chunks_max || (t->n && (t->size / t->n > b->slot_len ||
                                              (t->size / t->n == b->slot_len && t->size % t->n)))) {
        b->stats.headers_rejected++;
        xfer_end(b, t, BLOB_EVENT_FAILED, BLOB_FAIL_TOO_BIG);
        return 0;
    }
    int rc = b->st.ops->begin(b->st.ctx);
    if (rc == 0) {
        rc = tx_end(b, meta_store(b, digest_of(&t->id), t->size, t->n, t->root, NULL));
    }
    if (rc == 0) {
        rc = body_init(b, t, NULL);
    }
    if (rc) {
        return rc;
    }
    if (t->m == 0) {
        xfer_finish(b, t);
    }
    return 0;
}

static int on_not_found(struct blob *b, p4p_addr peer, const struct wire *w)
{
    struct request *r = req_lookup(b, w->reqid, peer);
    if (!r) {
        b->stats.unexpected++;
        return 0;
    }
    b->stats.responses_received++;
    b->stats.not_found_received++;
    peer_stop(b, &b->xfers[r->xfer], r->peer, true);
    return 0;
}

int blob_recv(blob *b, p4p_time_ns now, p4p_addr peer, const uint8_t *msg, size_t len)
{
    if (!msg && len) {
        return P4P_EINVAL;
    }
    b->stats.msgs_in++;
    b->stats.bytes_in += len;
    b->stats.overhead_bytes += len;
    struct wire w;
    int rc = len > b->cfg.mtu ? P4P_EMALFORMED : wire_decode(msg, len, &w);
    if (rc == P4P_EVERSION) {
        b->stats.unknown_type++;
        return P4P_EMALFORMED;
    }
    if (rc) {
        b->stats.malformed++;
        return P4P_EMALFORMED;
    }
    switch (w.type) {
    case BLOB_HDR_REQ:
    case BLOB_LEAVES_REQ:
    case BLOB_PIECE_REQ:
        rc = serve(b, peer, &w);
        break;
    case BLOB_HDR:
        rc = on_header(b, peer, &w);
        break;
    case BLOB_LEAVES:
    case BLOB_PIECE:
        rc = on_piece(b, now, peer, &w);
        break;
    default:
        rc = on_not_found(b, peer, &w);
        break;
    }
    if (rc) {
        return rc;
    }
    return pump(b, now);
}

int blob_timeout(blob *b, p4p_time_ns now)
{
    for (uint32_t i = 0; i < b->cfg.requests_max; i++) {
        struct request *r = &b->reqs[i];
        if (!r->used || r->deadline > now) {
            continue;
        }
        struct xfer *t = &b->xfers[r->xfer];
        uint32_t pi = r->peer;
        b->stats.timeouts++;
        if (r->kind == REQ_HDR || r->got == 0) {
            t->peers[pi].timeouts++;
        }
        if (t->peers[pi].backoff < 16) {
            t->peers[pi].backoff++;
        }
        if (r->kind == REQ_SLOT) {
            b->slots[r->slot].soft_avoid = pi;
        }
        req_free(b, r);
        if (t->peers[pi].timeouts >= b->cfg.peer_timeouts_max &&
            t->peers[pi].state == PEER_ACTIVE) {
            peer_stop(b, t, pi, true);
        }
    }
    return pump(b, now);
}

p4p_time_ns blob_deadline(const blob *b)
{
    if (b->need_pump) {
        return 0;
    }
    p4p_time_ns d = P4P_TIME_NONE;
    for (uint32_t i = 0; i < b->cfg.requests_max; i++) {
        if (b->reqs[i].used && b->reqs[i].deadline < d) {
            d = b->reqs[i].deadline;
        }
    }
    return d;
}

/* ---- Fetch control ------------------------------------------------------------------------- */

static int peer_add(struct blob *b, struct xfer *t, p4p_addr addr)
{
    struct peer *free_p = NULL;
    for (uint32_t i = 0; i < b->cfg.peers_max; i++) {
        struct peer *p = &t->peers[i];
        if (p->state != PEER_FREE && p->addr == addr) {
            if (p->state != PEER_ACTIVE) {
                memset(p, 0, sizeof(*p));
                p->addr = addr;
                p->state = PEER_ACTIVE;
            }
            return 0;
        }
        if (p->state == PEER_FREE && !free_p) {
            free_p = p;
        }
    }
    if (!free_p) {
        return P4P_EFULL;
    }
    memset(free_p, 0, sizeof(*free_p));
    free_p->addr = addr;
    free_p->state = PEER_ACTIVE;
    return 0;
}

int blob_fetch(blob *b, p4p_time_ns now, const struct cid *id, const p4p_addr *peers, size_t npeers)
{
    if (!id_ok(id) || (!peers && npeers)) {
        return P4P_EINVAL;
    }
    struct xfer *t = xfer_find(b, id);
    if (!t) {
        struct meta mt;
        int rc = meta_load(b, digest_of(id), &mt);
        if (rc && rc != P4P_ENOTFOUND) {
            return rc;
        }
        if (rc == 0 && meta_complete(&mt)) {
            b->stats.transfers_done++;
            event_push(b, BLOB_EVENT_DONE, 0, id);
            return 0;
        }
        if (npeers > b->cfg.peers_max) {
            return P4P_EFULL;
        }
        for (uint32_t i = 0; i < b->cfg.transfers_max && !t; i++) {
            t = b->xfers[i].used ? NULL : &b->xfers[i];
        }
        if (!t) {
            return P4P_EFULL;
        }
        uint8_t *leaves = t->cur_leaves;
        struct peer *pp = t->peers;
        memset(t, 0, sizeof(*t));
        t->cur_leaves = leaves;
        t->peers = pp;
        memset(pp, 0, b->cfg.peers_max * sizeof(*pp));
        t->used = true;
        t->id = *id;
        t->hdr_req = NONE32;
        t->seg_slot = NONE32;
        t->phase = PHASE_HEADER;
        if (rc == 0) {
            t->size = mt.size;
            t->n = mt.n;
            memcpy(t->root, mt.root, H);
            if ((rc = body_init(b, t, &mt)) != 0) {
                xfer_free(b, t);
                return rc;
            }
            if (t->segs_done == t->m) {
                xfer_finish(b, t); /* complete but the sizes do not add up */
                return 0;
            }
        }
    }
    for (size_t i = 0; i < npeers; i++) {
        int rc = peer_add(b, t, peers[i]);
        if (rc) {
            return rc;
        }
    }
    return pump(b, now);
}

int blob_add_peer(blob *b, p4p_time_ns now, const struct cid *id, p4p_addr peer)
{
    if (!id_ok(id)) {
        return P4P_EINVAL;
    }
    struct xfer *t = xfer_find(b, id);
    if (!t) {
        return P4P_ENOTFOUND;
    }
    int rc = peer_add(b, t, peer);
    return rc ? rc : pump(b, now);
}

int blob_remove_peer(blob *b, p4p_time_ns now, const struct cid *id, p4p_addr peer)
{
    if (id && !id_ok(id)) {
        return P4P_EINVAL;
    }
    bool found = false;
    for (uint32_t i = 0; i < b->cfg.transfers_max; i++) {
        struct xfer *t = &b->xfers[i];
        if (!t->used || (id && memcmp(digest_of(&t->id), digest_of(id), H) != 0)) {
            continue;
        }
        for (uint32_t k = 0; k < b->cfg.peers_max && t->used; k++) {
            if (t->peers[k].state == PEER_ACTIVE && t->peers[k].addr == peer) {
                found = true;
                peer_stop(b, t, k, false);
            }
        }
    }
    if (!found) {
        return P4P_ENOTFOUND;
    }
    return pump(b, now);
}

int blob_cancel(blob *b, const struct cid *id)
{
    if (!id_ok(id)) {
        return P4P_EINVAL;
    }
    struct xfer *t = xfer_find(b, id);
    if (!t) {
        return P4P_ENOTFOUND;
    }
    xfer_free(b, t);
    for (uint32_t i = 0; i < b->cfg.transfers_max; i++) {
        if (b->xfers[i].used) {
            b->need_pump = true; /* its room may serve another fetch: blob_deadline() says now */
        }
    }
    return 0;
}

/* ---- Outputs ------------------------------------------------------------------------------- */

int blob_poll(blob *b, struct blob_msg *out)
{
    return dgram_ring_pop(&b->out, &out->peer, &out->data, &out->len);
}

int blob_poll_event(blob *b, struct blob_event *out)
{
    if (b->ev_count == 0) {
        return P4P_EAGAIN;
    }
    *out = b->ev[b->ev_head];
    b->ev_head = (b->ev_head + 1) % b->cfg.event_max;
    b->ev_count--;
    return 0;
}

void blob_stats(const blob *b, struct blob_stats *out)
{
    *out = b->stats;
}

size_t blob_memory(const blob *b)
{
    size_t m = b->memory;
    for (uint32_t i = 0; i < b->cfg.transfers_max; i++) {
        if (b->xfers[i].used && b->xfers[i].seg_bytes) {
            m += b->xfers[i].m * 8 + (b->xfers[i].m + 7) / 8 + 1;
        }
    }
    return m + b->add.cap * (H + 4);
}
