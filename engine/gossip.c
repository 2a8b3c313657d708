/*
 * gossip.c — the `gossip` application: eager push of new updates to a few neighbours, plus
 * periodic push-pull anti-entropy that repairs what push missed.
 *
 *   new update (published or first delivered)
 *       -> store it; send it to `gossip_fanout` random neighbours other than the sender
 *   every gossip_interval (uniformly jittered in [0.5, 1.5) x interval)
 *       -> pick one random neighbour, send DIGEST(ids of my newest `digest_max` updates)
 *   on DIGEST from P
 *       -> pull: WANT(the ids I do not hold) to P
 *       -> push: my newest updates whose ids P did not list, to P
 *   on WANT from P
 *       -> send P each listed update I still hold
 *
 * Duplicate suppression is the node's seen set; repair reaches back as far as the store
 * (store_max newest updates). Reconciliation of whole histories is the sync layer's job.
 */
#include <string.h>

#include "node_int.h"

void gossip_start(p4p_node *n, p4p_time_ns now)
{
    if (n->next_round_ns != P4P_TIME_NONE) {
        return;
    }
    uint64_t iv = n->cfg.gossip_interval_ns;
    n->next_round_ns = now + iv / 2 + node_random_below(n, iv);
}

/* Picks up to k distinct neighbours other than `except`, in random order, into out[]. */
static uint32_t pick(p4p_node *n, p4p_addr except, uint32_t k, uint32_t *out, uint32_t cap)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < n->nbr_count && m < cap; i++) {
        if (n->nbrs[i].addr != except) {
            out[m++] = i;
        }
    }
    if (k > m) {
        k = m;
    }
    for (uint32_t i = 0; i < k; i++) { /* partial Fisher-Yates */
        uint32_t j = i + (uint32_t)node_random_below(n, m - i);
        uint32_t t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
    return k;
}

void gossip_spread(p4p_node *n, const struct accepted *a)
{
    if (store_add(&n->store, a->id, n->ob.bytes + a->frame_off, a->frame_len) != 0) {
        n->stats.dropped_outbox_full++;
    }
    uint32_t idx[64];
    uint32_t k = pick(n, a->from, n->cfg.gossip_fanout, idx, 64);
    for (uint32_t i = 0; i < k; i++) {
        const struct neighbour *to = &n->nbrs[idx[i]];
        node_ob_frame(n, to->iface, to->addr, a->frame_off, a->frame_len);
    }
}

/* Ids that fit in one frame next to the envelope's few header bytes. */
static uint32_t ids_max(const p4p_node *n)
{
    uint32_t fit = (n->cfg.mtu - 16) / ENV_ID_PREFIX_LEN;
    return n->cfg.gossip_digest_max < fit ? n->cfg.gossip_digest_max : fit;
}

static void send_ids(p4p_node *n, const struct neighbour *to, enum env_kind kind,
                     const uint8_t *ids, uint32_t count)
{
    size_t cap = (size_t)count * ENV_ID_PREFIX_LEN + 16;
    uint32_t off = node_ob_reserve(n, cap);
    if (off == UINT32_MAX) {
        n->stats.dropped_outbox_full++;
        return;
    }
    size_t len = env_encode_ids(n->ob.bytes + off, cap, kind, ids, count);
    n->ob.byte_used = off + len;
    node_ob_frame(n, to->iface, to->addr, off, (uint32_t)len);
}

static void put_prefix(uint8_t *out, uint64_t prefix)
{
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(prefix >> (8 * i));
    }
}

void gossip_timeout(p4p_node *n, p4p_time_ns now)
{
    uint64_t iv = n->cfg.gossip_interval_ns;
    n->next_round_ns = now + iv / 2 + node_random_below(n, iv);
    if (n->nbr_count == 0) {
        return;
    }
    n->stats.gossip_rounds++;
    const struct neighbour *to = &n->nbrs[node_random_below(n, n->nbr_count)];
    uint32_t count = ids_max(n);
    if (count > n->store.count) {
        count = n->store.count;
    }
    uint8_t ids[ENV_ID_PREFIX_LEN * 512];
    if (count > 512) {
        count = 512;
    }
    for (uint32_t i = 0; i < count; i++) {
        put_prefix(ids + i * ENV_ID_PREFIX_LEN, store_newest(&n->store, i)->prefix);
    }
    send_ids(n, to, ENV_DIGEST, ids, count);
}

static int listed(const struct env_ids *ids, uint64_t prefix)
{
    for (size_t i = 0; i < ids->count; i++) {
        if (store_prefix(ids->ids + i * ENV_ID_PREFIX_LEN) == prefix) {
            return 1;
        }
    }
    return 0;
}

static void send_stored(p4p_node *n, const struct neighbour *to, const struct store_entry *e)
{
    n->stats.repairs_sent++;
    node_send_copy(n, to, store_bytes(&n->store, e), e->len);
}

static void on_digest(p4p_node *n, const struct neighbour *from, const struct env_ids *ids)
{
    uint8_t want[ENV_ID_PREFIX_LEN * 512];
    uint32_t want_count = 0, limit = ids_max(n) < 512 ? ids_max(n) : 512;
    for (size_t i = 0; i < ids->count && want_count < limit; i++) {
        const uint8_t *id = ids->ids + i * ENV_ID_PREFIX_LEN;
        if (store_find(&n->store, store_prefix(id)) == NULL) {
            memcpy(want + want_count++ * ENV_ID_PREFIX_LEN, id, ENV_ID_PREFIX_LEN);
        }
    }
    if (want_count > 0) {
        send_ids(n, from, ENV_WANT, want, want_count);
    }
    uint32_t offer = n->store.count < limit ? n->store.count : limit;
    for (uint32_t i = 0; i < offer; i++) {
        const struct store_entry *e = store_newest(&n->store, i);
        if (!listed(ids, e->prefix)) {
            send_stored(n, from, e);
        }
    }
}

void gossip_on_ids(p4p_node *n, p4p_addr from, uint32_t iface, enum env_kind kind,
                   const struct env_ids *ids)
{
    struct neighbour to = {from, iface};
    if (kind == ENV_DIGEST) {
        n->stats.digests_in++;
        on_digest(n, &to, ids);
        return;
    }
    n->stats.wants_in++;
    uint32_t limit = ids_max(n);
    for (size_t i = 0; i < ids->count && i < limit; i++) {
        const struct store_entry *e =
            store_find(&n->store, store_prefix(ids->ids + i * ENV_ID_PREFIX_LEN));
        if (e != NULL) {
            send_stored(n, &to, e);
        }
    }
}
