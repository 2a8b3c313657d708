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
 *       -> push: OFFER(ids of my newest updates that P did not list) to P
 *   on OFFER from P
 *       -> WANT(the offered ids I do not hold) to P
 *   on WANT from P
 *       -> send P each listed update I still hold
 *
 * Updates travel only eagerly or when asked for, so repair costs ids, not duplicate
 * updates: two nodes whose newest-update windows merely differ in order exchange nothing
 * but their digests.
 *
 * Duplicate suppression is the node's seen set; repair reaches back as far as the store
 * (store_max newest updates). Reconciliation of whole histories is the sync layer's job.
 */
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

/* The next round: uniformly in [0.5, 1.5) intervals from now. */
static void schedule_round(p4p_node *n, p4p_time_ns now)
{
    uint64_t iv = n->cfg.gossip_interval_ns;
    n->next_round_ns = now + iv / 2 + node_random_below(n, iv);
}

void gossip_start(p4p_node *n, p4p_time_ns now)
{
    if (n->next_round_ns == P4P_TIME_NONE) {
        schedule_round(n, now);
    }
}

/* Picks up to k distinct neighbours other than `except`, uniformly and in random order, and
 * returns how many; their indices are n->pick[0 .. result). */
static uint32_t pick(p4p_node *n, p4p_addr except, uint32_t k)
{
    if (n->pick_cap < n->nbr_count) {
        uint32_t *p = realloc(n->pick, (size_t)n->nbr_cap * sizeof(*p));
        if (p == NULL) {
            return 0;
        }
        n->pick = p;
        n->pick_cap = n->nbr_cap;
    }
    uint32_t *out = n->pick;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n->nbr_count; i++) {
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
    uint32_t k = pick(n, a->from, n->cfg.gossip_fanout);
    for (uint32_t i = 0; i < k; i++) {
        const struct neighbour *to = &n->nbrs[n->pick[i]];
        node_ob_frame(n, to->iface, to->addr, a->frame_off, a->frame_len);
    }
}

#define IDS_MAX 512 /* ids in one DIGEST, OFFER or WANT, whatever the configuration */

/* Ids per message: the configured digest size, as far as one frame and IDS_MAX allow. */
static uint32_t limit(const p4p_node *n)
{
    uint32_t fit = (n->cfg.mtu - 16) / ENV_ID_PREFIX_LEN;
    uint32_t max = n->cfg.gossip_digest_max < fit ? n->cfg.gossip_digest_max : fit;
    return max < IDS_MAX ? max : IDS_MAX;
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

void gossip_timeout(p4p_node *n, p4p_time_ns now)
{
    schedule_round(n, now);
    if (n->nbr_count == 0) {
        return;
    }
    n->stats.gossip_rounds++;
    const struct neighbour *to = &n->nbrs[node_random_below(n, n->nbr_count)];
    uint32_t count = limit(n) < n->store.count ? limit(n) : n->store.count;
    uint8_t ids[ENV_ID_PREFIX_LEN * IDS_MAX];
    for (uint32_t i = 0; i < count; i++) {
        store_put_prefix(ids + i * ENV_ID_PREFIX_LEN, store_newest(&n->store, i)->prefix);
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

/* WANT whatever of `ids` this node does not hold. */
static void want_missing(p4p_node *n, const struct neighbour *from, const struct env_ids *ids)
{
    uint8_t want[ENV_ID_PREFIX_LEN * IDS_MAX];
    uint32_t count = 0, max = limit(n);
    for (size_t i = 0; i < ids->count && count < max; i++) {
        const uint8_t *id = ids->ids + i * ENV_ID_PREFIX_LEN;
        if (store_find(&n->store, store_prefix(id)) == NULL) {
            memcpy(want + count++ * ENV_ID_PREFIX_LEN, id, ENV_ID_PREFIX_LEN);
        }
    }
    if (count > 0) {
        send_ids(n, from, ENV_WANT, want, count);
    }
}

/* OFFER the ids of this node's newest updates that the digest did not list. */
static void offer_unlisted(p4p_node *n, const struct neighbour *from, const struct env_ids *ids)
{
    uint8_t offer[ENV_ID_PREFIX_LEN * IDS_MAX];
    uint32_t count = 0, max = limit(n);
    uint32_t newest = n->store.count < max ? n->store.count : max;
    for (uint32_t i = 0; i < newest; i++) {
        const struct store_entry *e = store_newest(&n->store, i);
        if (!listed(ids, e->prefix)) {
            store_put_prefix(offer + count++ * ENV_ID_PREFIX_LEN, e->prefix);
        }
    }
    if (count > 0) {
        send_ids(n, from, ENV_OFFER, offer, count);
    }
}

static void send_wanted(p4p_node *n, const struct neighbour *to, const struct env_ids *ids)
{
    uint32_t max = limit(n);
    for (size_t i = 0; i < ids->count && i < max; i++) {
        const struct store_entry *e =
            store_find(&n->store, store_prefix(ids->ids + i * ENV_ID_PREFIX_LEN));
        if (e != NULL) {
            n->stats.repairs_sent++;
            node_send_copy(n, to, store_bytes(&n->store, e), e->len);
        }
    }
}

void gossip_on_ids(p4p_node *n, p4p_addr from, uint32_t iface, enum env_kind kind,
                   const struct env_ids *ids)
{
    struct neighbour peer = {from, iface};
    switch (kind) {
    case ENV_DIGEST:
        n->stats.digests_in++;
        want_missing(n, &peer, ids);
        offer_unlisted(n, &peer, ids);
        break;
    case ENV_OFFER:
        n->stats.offers_in++;
        want_missing(n, &peer, ids);
        break;
    case ENV_WANT:
        n->stats.wants_in++;
        send_wanted(n, &peer, ids);
        break;
    default:
        break;
    }
}
