/*
 * node_blob.c — blobs in the node: engine/blob.c's messages travel as ENV_BLOB envelopes to
 * and from neighbours, its timers join the node's deadline, its events become node events,
 * and its counters the node's. The blob table is made on first use (a blob call, or the first
 * blob message from a neighbour): about 1 MiB with the defaults, so nodes that never see a
 * blob pay nothing.
 *
 * A fetch asks every neighbour; neighbours that come up later join every fetch under way, and
 * one that goes down leaves them.
 */
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "node_int.h"

#define BLOB_FETCHES 4  /* fetches at once (blob_config.transfers_max) */
#define BLOB_PEERS   16 /* neighbours asked per fetch (blob_config.peers_max) */

static int is_storage_error(int rc)
{
    return rc == P4P_EIO || rc == P4P_EFENCED || rc == P4P_ECORRUPT || rc == P4P_ENOMEM;
}

static void blob_random(void *ctx, uint8_t *out, size_t len)
{
    p4p_node *n = ctx;
    n->env.random(n->env.ctx, out, len);
}

/* The table, made on first use; NULL (and *rc set) when there is no storage or no memory. */
static struct blob *table(p4p_node *n, int *rc)
{
    *rc = 0;
    if (n->blob != NULL) {
        return n->blob;
    }
    if (n->env.storage.ops == NULL) {
        *rc = P4P_EINVAL;
        return NULL;
    }
    struct blob_config c;
    blob_config_default(&c);
    c.mtu = n->cfg.mtu - ENV_BLOB_OVERHEAD;
    c.transfers_max = BLOB_FETCHES;
    c.peers_max = BLOB_PEERS;
    n->fetching = calloc(BLOB_FETCHES, sizeof(*n->fetching));
    struct blob_env env = {.ctx = n, .random = blob_random, .storage = n->env.storage};
    *rc = n->fetching == NULL ? P4P_ENOMEM : blob_create(&c, &env, &n->blob);
    return n->blob;
}

static void cid_of(const uint8_t id[32], struct cid *c)
{
    *c = (struct cid){.codec = CID_CODEC_DAG_CBOR, .mh = {.code = MH_BLAKE2B_256, .len = 32}};
    memcpy(c->mh.digest, id, 32);
}

/* A storage error kills the node as for updates (persist.c). */
static int check(p4p_node *n, int rc)
{
    if (is_storage_error(rc) && n->failed == 0) {
        n->failed = rc;
    }
    return rc;
}

int node_blob_recv(p4p_node *n, p4p_time_ns now, p4p_addr from, const uint8_t *msg, size_t len)
{
    int rc;
    struct blob *b = table(n, &rc);
    return b == NULL ? rc : check(n, blob_recv(b, now, from, msg, len));
}

void node_blob_timeout(p4p_node *n, p4p_time_ns now)
{
    if (n->blob != NULL && blob_deadline(n->blob) <= now) {
        check(n, blob_timeout(n->blob, now));
    }
}

p4p_time_ns node_blob_deadline(const p4p_node *n)
{
    return n->blob == NULL ? P4P_TIME_NONE : blob_deadline(n->blob);
}

static void forget_fetch(p4p_node *n, const uint8_t id[32])
{
    for (int i = 0; i < BLOB_FETCHES; i++) {
        if (memcmp(n->fetching[i], id, 32) == 0) {
            memset(n->fetching[i], 0, 32);
        }
    }
}

void node_blob_flush(p4p_node *n)
{
    if (n->blob == NULL) {
        return;
    }
    struct blob_msg m;
    while (blob_poll(n->blob, &m) == 0) {
        size_t cap = m.len + ENV_BLOB_OVERHEAD;
        uint32_t off = node_ob_reserve(n, cap);
        if (off == UINT32_MAX) {
            n->stats.dropped_outbox_full++;
            continue;
        }
        size_t len = env_encode_blob(n->ob.bytes + off, cap, m.data, m.len);
        n->ob.byte_used = off + len;
        node_ob_frame(n, 0, m.peer, off, (uint32_t)len);
    }
    struct blob_event be;
    while (blob_poll_event(n->blob, &be) == 0) {
        struct p4p_event ev = {
            .kind = be.kind == BLOB_EVENT_DONE ? P4P_EVENT_BLOB_DONE : P4P_EVENT_BLOB_FAILED,
            .from = P4P_ADDR_BROADCAST,
        };
        memcpy(ev.id, be.id.mh.digest, 32);
        forget_fetch(n, ev.id);
        node_event(n, &ev);
    }
}

void node_blob_link(p4p_node *n, p4p_time_ns now, const struct p4p_link_event *ev)
{
    if (n->blob == NULL) {
        return;
    }
    if (ev->kind == P4P_LINK_DOWN) {
        (void)blob_remove_peer(n->blob, now, NULL, ev->peer);
        return;
    }
    static const uint8_t zero[32];
    for (int i = 0; i < BLOB_FETCHES; i++) {
        if (memcmp(n->fetching[i], zero, 32) != 0) {
            struct cid c;
            cid_of(n->fetching[i], &c);
            (void)blob_add_peer(n->blob, now, &c, ev->peer);
        }
    }
}

static void stats_of(const struct blob_stats *s, struct p4p_stats *out)
{
    out->blob_msgs_in = s->msgs_in;
    out->blob_msgs_out = s->msgs_out;
    out->blob_bytes_fetched = s->bytes_fetched;
    out->blob_chunks_fetched = s->chunks_fetched;
    out->blob_chunks_corrupt = s->chunks_corrupt;
    out->blob_chunks_dedup = s->chunks_dedup;
    out->blob_bytes_dedup_saved = s->bytes_dedup_saved;
    out->blob_overhead_bytes = s->overhead_bytes;
    out->blob_timeouts = s->timeouts;
    out->blob_peers_dropped = s->peers_dropped;
    out->blob_malformed = s->malformed + s->unknown_type;
    out->blob_done = s->transfers_done;
    out->blob_failed = s->transfers_failed;
}

void node_blob_stats(const p4p_node *n, struct p4p_stats *out)
{
    if (n->blob != NULL) {
        struct blob_stats s;
        blob_stats(n->blob, &s);
        stats_of(&s, out);
    }
}

size_t node_blob_memory(const p4p_node *n)
{
    return n->blob == NULL ? 0 : blob_memory(n->blob) + BLOB_FETCHES * 32;
}

void node_blob_free(p4p_node *n)
{
    blob_destroy(n->blob);
    free(n->fetching);
}

/* ---- The public calls ---------------------------------------------------------------------- */

int node_blob_add(p4p_node *n, p4p_time_ns now, const uint8_t *data, size_t len, uint8_t id_out[32])
{
    int rc;
    struct blob *b = table(n, &rc);
    struct cid c;
    rc = b == NULL ? rc : check(n, blob_add(b, now, data, len, &c));
    if (rc == 0 && id_out != NULL) {
        memcpy(id_out, c.mh.digest, 32);
    }
    return rc;
}

int node_blob_fetch(p4p_node *n, p4p_time_ns now, const uint8_t id[32])
{
    int rc;
    struct blob *b = table(n, &rc);
    if (b == NULL) {
        return rc;
    }
    p4p_addr peers[BLOB_PEERS];
    size_t k = 0;
    for (uint32_t i = 0; i < n->nbr_count && k < BLOB_PEERS; i++) {
        peers[k++] = n->nbrs[i].addr;
    }
    struct cid c;
    cid_of(id, &c);
    rc = check(n, blob_fetch(b, now, &c, peers, k));
    if (rc == 0) {
        static const uint8_t zero[32];
        for (int i = 0; i < BLOB_FETCHES; i++) {
            if (memcmp(n->fetching[i], id, 32) == 0) {
                return 0;
            }
        }
        for (int i = 0; i < BLOB_FETCHES; i++) {
            if (memcmp(n->fetching[i], zero, 32) == 0) {
                memcpy(n->fetching[i], id, 32);
                break;
            }
        }
    }
    return rc;
}

int p4p_node_blob_read(p4p_node *n, const uint8_t id[32], uint64_t offset, uint8_t *buf, size_t len,
                       size_t *out_len)
{
    int rc;
    struct blob *b = table(n, &rc);
    if (b == NULL) {
        return rc;
    }
    struct cid c;
    cid_of(id, &c);
    return blob_read(b, &c, offset, buf, len, out_len);
}

int p4p_blob_id_text(const uint8_t id[32], char *out, size_t cap)
{
    struct cid c;
    cid_of(id, &c);
    return cid_to_text(&c, out, cap);
}
