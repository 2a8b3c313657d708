/*
 * node.c — the node core: life cycle, the outbox the host drains, neighbours, and the path of
 * an update: decode -> duplicate check -> verify -> accept -> spread (flood here, gossip in
 * gossip.c). See p4p.h for the contract and docs/ARCHITECTURE.md for the whole picture.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "node_int.h"
#include "session.h"
#include "sigcache.h"

void p4p_config_default(struct p4p_config *cfg)
{
    *cfg = (struct p4p_config){
        .app = P4P_APP_GOSSIP,
        .mtu = 1200,
        .neighbour_max = 1024,
        .seen_max = 4096,
        .store_max = 256,
        .outbox_max = 4096,
        .payload_max = 1024,
        .gossip_interval_ns = 1000000000ull,
        .gossip_fanout = 3,
        .gossip_digest_max = 32,
    };
}

static int config_valid(const struct p4p_config *c)
{
    return (c->app == P4P_APP_FLOOD || c->app == P4P_APP_GOSSIP) && c->mtu >= 64 &&
           c->mtu <= 65535 && c->neighbour_max > 0 && c->seen_max > 0 && c->store_max > 0 &&
           c->outbox_max > 0 && c->payload_max <= 65535 &&
           (c->app != P4P_APP_GOSSIP || c->gossip_interval_ns > 0);
}

int p4p_node_create(const struct p4p_config *cfg, const struct p4p_env *env, p4p_node **out)
{
    if (cfg == NULL || env == NULL || env->random == NULL || out == NULL || !config_valid(cfg)) {
        return P4P_EINVAL;
    }
    p4p_node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return P4P_ENOMEM;
    }
    n->cfg = *cfg;
    n->env = *env;
    seen_init(&n->seen, cfg->seen_max);
    store_init(&n->store, cfg->store_max);
    n->next_round_ns = P4P_TIME_NONE;
    int rc = persist_open(n);
    rc = rc ? rc : secure_open(n);
    if (rc != 0) {
        p4p_node_destroy(n);
        return rc;
    }
    n->origin_prefix = store_prefix(n->id.pk);
    *out = n;
    return 0;
}

void p4p_node_destroy(p4p_node *n)
{
    if (n == NULL) {
        return;
    }
    seen_free(&n->seen);
    store_free(&n->store);
    secure_close(n);
    node_blob_free(n);
    free(n->nbrs);
    free(n->pick);
    free(n->ob.frames);
    free(n->ob.events);
    free(n->ob.bytes);
    sodium_memzero(&n->id, sizeof(n->id));
    free(n);
}

void p4p_node_public_key(const p4p_node *n, uint8_t out[32])
{
    memcpy(out, n->id.pk, 32);
}

void p4p_node_stats(const p4p_node *n, struct p4p_stats *out)
{
    *out = (struct p4p_stats){0};
#define NODE_STATS_COPY_(name) out->name = n->stats.name;
    P4P_STATS_NODE(NODE_STATS_COPY_)
#undef NODE_STATS_COPY_
    secure_stats(n, out);
    node_blob_stats(n, out);
}

size_t p4p_node_memory(const p4p_node *n)
{
    const struct outbox *ob = &n->ob;
    return sizeof(*n) + (size_t)n->nbr_cap * sizeof(*n->nbrs) +
           (size_t)n->pick_cap * sizeof(*n->pick) + seen_memory(&n->seen) +
           store_memory(&n->store) + secure_memory(n) + node_blob_memory(n) +
           (size_t)ob->frame_cap * sizeof(*ob->frames) +
           (size_t)ob->event_cap * sizeof(*ob->events) + ob->byte_cap;
}

p4p_time_ns p4p_node_deadline(const p4p_node *n)
{
    p4p_time_ns d = n->cfg.app == P4P_APP_GOSSIP ? n->next_round_ns : P4P_TIME_NONE;
    if (n->sess != NULL) {
        p4p_time_ns s = session_deadline(n->sess);
        d = s < d ? s : d;
    }
    p4p_time_ns b = node_blob_deadline(n);
    return b < d ? b : d;
}

uint64_t node_random_below(p4p_node *n, uint64_t bound)
{
    /* Rejection sampling on 64-bit draws from the host's stream: unbiased for any bound. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    for (;;) {
        uint8_t b[8];
        uint64_t v = 0;
        n->env.random(n->env.ctx, b, sizeof(b));
        for (int i = 7; i >= 0; i--) {
            v = (v << 8) | b[i];
        }
        if (v < limit) {
            return v % bound;
        }
    }
}

/* ---- Outbox -------------------------------------------------------------------------------- */

/* Every input starts here: once the host has drained everything, the outbox starts empty
 * again (this is what keeps polled pointers valid until the next input). Returns nonzero for
 * a node that storage failure killed: it takes no more input. Every input ends with
 * node_end(). */
static int node_begin(p4p_node *n, p4p_time_ns now)
{
    if (n->failed) {
        return n->failed;
    }
    struct outbox *ob = &n->ob;
    if (ob->frame_head == ob->frame_count && ob->event_head == ob->event_count) {
        ob->frame_head = ob->frame_count = 0;
        ob->event_head = ob->event_count = 0;
        ob->byte_used = 0;
    }
    n->now = now;
    n->mark_frames = ob->frame_count;
    n->mark_events = ob->event_count;
    n->mark_bytes = ob->byte_used;
    if (n->cfg.app == P4P_APP_GOSSIP) {
        gossip_start(n, now);
    }
    return 0;
}

static int grow(void **p, uint32_t *cap, size_t elem, uint32_t max)
{
    uint32_t c = *cap ? *cap * 2 : 8;
    if (c > max) {
        c = max;
    }
    void *q = realloc(*p, (size_t)c * elem);
    if (q == NULL) {
        return P4P_ENOMEM;
    }
    *p = q;
    *cap = c;
    return 0;
}

/* Room for one more frame or event record: at most outbox_max undrained, the array grown as
 * needed. Counts and refuses when there is none. */
static int ob_room(p4p_node *n, void **array, uint32_t *cap, uint32_t head, uint32_t count,
                   size_t elem)
{
    uint32_t bound = n->cfg.outbox_max + head;
    if (count - head >= n->cfg.outbox_max ||
        (count == *cap && (*cap == bound || grow(array, cap, elem, bound) != 0))) {
        n->stats.dropped_outbox_full++;
        return 0;
    }
    return 1;
}

uint32_t node_ob_reserve(p4p_node *n, size_t len)
{
    struct outbox *ob = &n->ob;
    if (ob->byte_used + len > ob->byte_cap) {
        size_t cap = ob->byte_cap ? ob->byte_cap : 512;
        while (cap < ob->byte_used + len) {
            cap *= 2;
        }
        if (cap > UINT32_MAX) {
            return UINT32_MAX;
        }
        uint8_t *b = realloc(ob->bytes, cap);
        if (b == NULL) {
            return UINT32_MAX;
        }
        ob->bytes = b;
        ob->byte_cap = cap;
    }
    uint32_t off = (uint32_t)ob->byte_used;
    ob->byte_used += len;
    return off;
}

void node_ob_frame(p4p_node *n, uint32_t iface, p4p_addr peer, uint32_t off, uint32_t len)
{
    struct outbox *ob = &n->ob;
    if (!ob_room(n, (void **)&ob->frames, &ob->frame_cap, ob->frame_head, ob->frame_count,
                 sizeof(*ob->frames))) {
        return;
    }
    ob->frames[ob->frame_count++] = (struct ob_frame){iface, peer, off, len};
}

void node_send_copy(p4p_node *n, const struct neighbour *to, const uint8_t *data, size_t len)
{
    uint32_t off = node_ob_reserve(n, len);
    if (off == UINT32_MAX) {
        n->stats.dropped_outbox_full++;
        return;
    }
    memcpy(n->ob.bytes + off, data, len);
    node_ob_frame(n, to->iface, to->addr, off, (uint32_t)len);
}

static void ob_event(p4p_node *n, const struct p4p_event *ev, uint32_t payload_off);

void node_event(p4p_node *n, const struct p4p_event *ev)
{
    ob_event(n, ev, 0);
}

static void ob_event(p4p_node *n, const struct p4p_event *ev, uint32_t payload_off)
{
    struct outbox *ob = &n->ob;
    if (!ob_room(n, (void **)&ob->events, &ob->event_cap, ob->event_head, ob->event_count,
                 sizeof(*ob->events))) {
        return;
    }
    ob->events[ob->event_count++] = (struct ob_event){*ev, payload_off};
}

int p4p_node_poll_frame(p4p_node *n, struct p4p_frame *out)
{
    struct outbox *ob = &n->ob;
    if (n->sess != NULL) {
        if (secure_poll_frame(n, out) != 0) {
            return P4P_EAGAIN;
        }
    } else if (ob->frame_head == ob->frame_count) {
        return P4P_EAGAIN;
    } else {
        const struct ob_frame *f = &ob->frames[ob->frame_head++];
        *out = (struct p4p_frame){f->iface, f->peer, ob->bytes + f->off, f->len};
    }
    n->stats.frames_out++;
    n->stats.bytes_out += out->len;
    return 0;
}

/* Every input ends here: collect the blob layer's output (node_blob.c), commit what the input
 * stored (persist.c), then seal its frames into sessions (secure.c). */
static int node_end(p4p_node *n, p4p_time_ns now, int rc)
{
    node_blob_flush(n);
    rc = persist_end(n, rc);
    if (n->sess != NULL && !n->failed) {
        secure_seal(n, now);
    }
    return rc;
}

int p4p_node_poll_event(p4p_node *n, struct p4p_event *out)
{
    struct outbox *ob = &n->ob;
    if (ob->event_head == ob->event_count) {
        return P4P_EAGAIN;
    }
    const struct ob_event *e = &ob->events[ob->event_head++];
    *out = e->ev;
    out->payload = ob->bytes + e->payload_off;
    return 0;
}

/* ---- Neighbours ---------------------------------------------------------------------------- */

static uint32_t nbr_find(const p4p_node *n, uint32_t iface, p4p_addr addr)
{
    for (uint32_t i = 0; i < n->nbr_count; i++) {
        if (n->nbrs[i].addr == addr && n->nbrs[i].iface == iface) {
            return i;
        }
    }
    return UINT32_MAX;
}

int p4p_node_link(p4p_node *n, p4p_time_ns now, const struct p4p_link_event *ev)
{
    if (node_begin(n, now) != 0) {
        return n->failed;
    }
    uint32_t i = nbr_find(n, ev->iface, ev->peer);
    if (ev->kind == P4P_LINK_UP) {
        if (i != UINT32_MAX) {
            return 0;
        }
        if (ev->peer == P4P_ADDR_BROADCAST || n->nbr_count == n->cfg.neighbour_max) {
            return P4P_EFULL;
        }
        if (n->nbr_count == n->nbr_cap &&
            grow((void **)&n->nbrs, &n->nbr_cap, sizeof(*n->nbrs), n->cfg.neighbour_max) != 0) {
            return P4P_ENOMEM;
        }
        n->nbrs[n->nbr_count++] = (struct neighbour){ev->peer, ev->iface};
        if (n->sess != NULL) {
            secure_link(n, now, ev);
        }
        node_blob_link(n, now, ev);
        return node_end(n, now, 0);
    }
    if (ev->kind == P4P_LINK_DOWN) {
        if (i == UINT32_MAX) {
            return P4P_ENOTFOUND;
        }
        /* Keep the order of the others: it decides who hears a flood first. */
        memmove(&n->nbrs[i], &n->nbrs[i + 1], (n->nbr_count - i - 1) * sizeof(*n->nbrs));
        n->nbr_count--;
        if (n->sess != NULL) {
            secure_link(n, now, ev);
        }
        node_blob_link(n, now, ev);
        return node_end(n, now, 0);
    }
    return P4P_EINVAL;
}

/* ---- Updates ------------------------------------------------------------------------------- */

static void spread(p4p_node *n, const struct accepted *a)
{
    if (n->cfg.app == P4P_APP_GOSSIP) {
        gossip_spread(n, a);
        return;
    }
    for (uint32_t i = 0; i < n->nbr_count; i++) {
        if (n->nbrs[i].addr != a->from) {
            node_ob_frame(n, n->nbrs[i].iface, n->nbrs[i].addr, a->frame_off, a->frame_len);
        }
    }
}

/* Encodes the update as this node sends it on (hops + 1) into the outbox; returns the
 * frame's offset and sets *len, or UINT32_MAX. */
static uint32_t encode_onward(p4p_node *n, const struct env_update *u, uint64_t hops, uint32_t *len)
{
    size_t cap = u->body_len + 96;
    uint32_t off = node_ob_reserve(n, cap);
    if (off == UINT32_MAX) {
        return UINT32_MAX;
    }
    size_t l = env_encode_update(n->ob.bytes + off, cap, hops, u->body, u->body_len, u->sig);
    n->ob.byte_used = off + l; /* give back what the encoding did not use */
    *len = (uint32_t)l;
    return off;
}

static void event_of(struct p4p_event *ev, enum p4p_event_kind kind, const uint8_t id[32],
                     const struct env_update *u, uint32_t hops, p4p_addr from)
{
    *ev = (struct p4p_event){
        .kind = kind,
        .seq = u->seq,
        .created_ns = u->created_ns,
        .hops = hops,
        .from = from,
        .payload_len = u->payload_len,
    };
    memcpy(ev->id, id, 32);
    memcpy(ev->origin, u->origin, 32);
}

/* Offset of the payload inside a frame encoded by encode_onward: the frame ends with the
 * body followed by the 66-byte signature item (0x58 0x40 + 64 bytes). */
static uint32_t payload_offset(const struct env_update *u, uint32_t frame_off, uint32_t len)
{
    return frame_off + len - 66 - (uint32_t)u->body_len + (uint32_t)(u->payload - u->body);
}

static int verify(p4p_node *n, const uint8_t id[32], const struct env_update *u)
{
    struct p4p_sigcache *cache = n->env.sigcache;
    if (cache != NULL && sigcache_hit(cache, id, u->sig)) {
        n->stats.sig_cache_hits++;
        return 0;
    }
    n->stats.sig_verified++;
    if (identity_verify(u->origin, u->body, u->body_len, u->sig) != 0) {
        return P4P_EBADSIG;
    }
    if (cache != NULL) {
        sigcache_put(cache, id, u->sig);
    }
    return 0;
}

static int on_update(p4p_node *n, const struct env_update *u, p4p_addr from)
{
    struct seen_key key = {store_prefix(u->origin), u->seq};
    if (seen_contains(&n->seen, key)) {
        n->stats.duplicates++;
        return P4P_EDUPLICATE;
    }
    if (u->hops >= UINT16_MAX) {
        n->stats.dropped_malformed++;
        return P4P_EMALFORMED;
    }
    if (u->payload_len > n->cfg.payload_max) {
        n->stats.dropped_too_big++;
        return P4P_ETOOBIG;
    }
    uint8_t id[32];
    crypto_generichash(id, sizeof(id), u->body, u->body_len, NULL, 0);
    if (verify(n, id, u) != 0) {
        n->stats.dropped_badsig++;
        return P4P_EBADSIG;
    }
    uint32_t len = 0, hops = (uint32_t)u->hops + 1;
    uint32_t off = encode_onward(n, u, hops, &len);
    if (off == UINT32_MAX) {
        n->stats.dropped_outbox_full++;
        return P4P_ENOMEM;
    }
    if (seen_insert(&n->seen, key) == 1) {
        n->stats.seen_evicted++;
    }
    n->stats.delivered++;
    node_hold(n, id, n->ob.bytes + off, len);
    persist_update(n, n->ob.bytes + off, len, 0);
    struct p4p_event ev;
    event_of(&ev, P4P_EVENT_DELIVERED, id, u, hops, from);
    ob_event(n, &ev, payload_offset(u, off, len));
    if (len > n->cfg.mtu) {
        n->stats.dropped_too_big++; /* delivered here, but it cannot go on */
        return 0;
    }
    struct accepted a = {id, u, off, len, from};
    spread(n, &a);
    return 0;
}

static int recv_frame(p4p_node *n, const struct p4p_frame *in)
{
    n->stats.frames_in++;
    n->stats.bytes_in += in->len;
    struct env_msg m;
    int rc = env_decode(in->data, in->len, &m);
    if (rc == P4P_EVERSION) {
        n->stats.dropped_version++;
        return rc;
    }
    if (rc != 0) {
        n->stats.dropped_malformed++;
        return rc;
    }
    switch (m.kind) {
    case ENV_UPDATE:
        return on_update(n, &m.u.update, in->peer);
    case ENV_DIGEST:
    case ENV_WANT:
    case ENV_OFFER:
        if (n->cfg.app != P4P_APP_GOSSIP) {
            return 0; /* flood nodes ignore repair traffic */
        }
        gossip_on_ids(n, in->peer, in->iface, m.kind, &m.u.ids);
        return 0;
    case ENV_BLOB:
        return node_blob_recv(n, n->now, in->peer, m.u.blob.data, m.u.blob.len);
    }
    n->stats.dropped_malformed++;
    return P4P_EMALFORMED;
}

int p4p_node_recv(p4p_node *n, p4p_time_ns now, const struct p4p_frame *in)
{
    if (node_begin(n, now) != 0) {
        return n->failed;
    }
    if (n->sess == NULL) {
        return node_end(n, now, recv_frame(n, in));
    }
    struct p4p_frame plain;
    int rc = secure_recv(n, now, in, &plain);
    if (rc == 0) {
        rc = recv_frame(n, &plain);
    } else if (rc == P4P_EAGAIN) {
        rc = 0; /* a handshake step or a keep-alive */
    }
    return node_end(n, now, rc);
}

int p4p_node_timeout(p4p_node *n, p4p_time_ns now)
{
    if (node_begin(n, now) != 0) {
        return n->failed;
    }
    if (n->cfg.app == P4P_APP_GOSSIP && now >= n->next_round_ns) {
        gossip_timeout(n, now);
    }
    if (n->sess != NULL) {
        session_timeout(n->sess, now);
    }
    node_blob_timeout(n, now);
    return node_end(n, now, 0);
}

static int publish(p4p_node *n, p4p_time_ns now, const uint8_t *payload, size_t len,
                   uint8_t id_out[32])
{
    if (len > n->cfg.payload_max || (len > 0 && payload == NULL)) {
        return P4P_ETOOBIG;
    }
    /* Body and frame in one reservation, so no pointer moves between the two encodings. */
    size_t bcap = len + 64, fcap = bcap + 96;
    uint32_t boff = node_ob_reserve(n, bcap + fcap);
    if (boff == UINT32_MAX) {
        return P4P_ENOMEM;
    }
    uint64_t seq = n->next_seq + 1;
    uint8_t *body = n->ob.bytes + boff;
    size_t blen = env_encode_body(body, bcap, n->id.pk, seq, now, payload, len);
    uint8_t sig[64], id[32];
    identity_sign(&n->id, body, blen, sig);
    crypto_generichash(id, sizeof(id), body, blen, NULL, 0);
    uint32_t off = boff + (uint32_t)bcap;
    uint32_t flen = (uint32_t)env_encode_update(n->ob.bytes + off, fcap, 0, body, blen, sig);
    if (flen == 0 || flen > n->cfg.mtu) {
        n->ob.byte_used = boff;
        return P4P_ETOOBIG;
    }
    struct env_update u = {
        .body = body,
        .body_len = blen,
        .origin = n->id.pk,
        .seq = seq,
        .created_ns = now,
        .payload = body + blen - len,
        .payload_len = len,
        .sig = sig,
    };
    n->next_seq = seq;
    if (seen_insert(&n->seen, (struct seen_key){n->origin_prefix, seq}) == 1) {
        n->stats.seen_evicted++;
    }
    n->stats.published++;
    node_hold(n, id, n->ob.bytes + off, flen);
    persist_update(n, n->ob.bytes + off, flen, 1);
    struct p4p_event ev;
    event_of(&ev, P4P_EVENT_PUBLISHED, id, &u, 0, P4P_ADDR_BROADCAST);
    ob_event(n, &ev, payload_offset(&u, off, flen));
    struct accepted a = {id, &u, off, flen, P4P_ADDR_BROADCAST};
    spread(n, &a);
    if (id_out != NULL) {
        memcpy(id_out, id, 32);
    }
    return 0;
}

int p4p_node_publish(p4p_node *n, p4p_time_ns now, const uint8_t *payload, size_t len,
                     uint8_t id_out[32])
{
    if (node_begin(n, now) != 0) {
        return n->failed;
    }
    return node_end(n, now, publish(n, now, payload, len, id_out));
}

int p4p_node_blob_add(p4p_node *n, p4p_time_ns now, const uint8_t *data, size_t len,
                      uint8_t id_out[32])
{
    if (node_begin(n, now) != 0) {
        return n->failed;
    }
    return node_end(n, now, node_blob_add(n, now, data, len, id_out));
}

int p4p_node_blob_fetch(p4p_node *n, p4p_time_ns now, const uint8_t id[32])
{
    if (node_begin(n, now) != 0) {
        return n->failed;
    }
    return node_end(n, now, node_blob_fetch(n, now, id));
}
