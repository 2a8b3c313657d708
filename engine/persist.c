/*
 * persist.c — the node's durable state: its identity, its own sequence number and every update
 * it holds, kept through the host's storage (p4p/storage.h), and the restart from them.
 *
 * What is stored:
 *   kv "p4p/seed"  the 32-byte identity seed (a restarted node is the same node)
 *   kv "p4p/seq"   the highest own sequence number used, 8 bytes little-endian: even if a
 *                  repair drops own updates from the log, a number is never signed twice
 *   log            one record per held update: its UPDATE frame, as the node sends it on
 *
 * Writes happen inside the input call that caused them and are committed at its end
 * (persist_end), before the host can poll that call's frames and events: the PUBLISHED or
 * DELIVERED event is the acknowledgement, and it is only ever seen for durable data. If the
 * write or the commit fails, the input's frames and events are withdrawn and the node is
 * dead (n->failed) until the host re-creates it from the store.
 *
 * Replay trusts the store's checksums rather than re-verifying signatures (every record was
 * verified before it was written); a record that fails its checksum or does not decode is
 * corruption: refused, or with cfg.storage_repair the log is cut before it and the node
 * catches up from its peers.
 */
#include <string.h>

#include <sodium.h>

#include "node_int.h"

static const uint8_t KEY_SEED[] = "p4p/seed";
static const uint8_t KEY_SEQ[] = "p4p/seq";
#define KEYLEN(k) (sizeof(k) - 1)

static int has_storage(const p4p_node *n)
{
    return n->env.storage.ops != NULL;
}

void p4p_held_add(struct p4p_held *h, const uint8_t id[32])
{
    for (int i = 0; i < 4; i++) {
        h->sum[i] += store_prefix(id + 8 * i);
    }
    h->count++;
}

void p4p_node_held(const p4p_node *n, struct p4p_held *out)
{
    *out = n->held;
}

int p4p_node_failed(const p4p_node *n)
{
    return n->failed;
}

int p4p_record_id(const uint8_t *rec, size_t len, uint8_t id[32])
{
    struct env_msg m;
    if (env_decode(rec, len, &m) != 0 || m.kind != ENV_UPDATE) {
        return P4P_EMALFORMED;
    }
    crypto_generichash(id, 32, m.u.update.body, m.u.update.body_len, NULL, 0);
    return 0;
}

void node_hold(p4p_node *n, const uint8_t id[32], const uint8_t *frame, size_t len)
{
    p4p_held_add(&n->held, id);
    if (n->cfg.app == P4P_APP_GOSSIP && len <= n->cfg.mtu &&
        store_add(&n->store, id, frame, len) != 0) {
        n->stats.dropped_outbox_full++;
    }
}

/* ---- Restart ------------------------------------------------------------------------------- */

struct replay {
    p4p_node *n;
    int bad; /* a record that passed its checksum but is not an update */
};

static int replay_one(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    (void)index;
    struct replay *r = arg;
    p4p_node *n = r->n;
    struct env_msg m;
    if (env_decode(rec, len, &m) != 0 || m.kind != ENV_UPDATE) {
        r->bad = 1;
        return 1;
    }
    const struct env_update *u = &m.u.update;
    uint8_t id[32];
    crypto_generichash(id, sizeof(id), u->body, u->body_len, NULL, 0);
    struct seen_key key = {store_prefix(u->origin), u->seq};
    if (!seen_contains(&n->seen, key) && seen_insert(&n->seen, key) == 1) {
        n->stats.seen_evicted++;
    }
    if (memcmp(u->origin, n->id.pk, 32) == 0 && u->seq > n->next_seq) {
        n->next_seq = u->seq;
    }
    node_hold(n, id, rec, len);
    n->stats.replayed++;
    return 0;
}

static int load_identity(p4p_node *n, const struct p4p_storage *st)
{
    uint8_t seed[32];
    size_t len = 0;
    int rc = st->ops->kv_get(st->ctx, KEY_SEED, KEYLEN(KEY_SEED), seed, sizeof(seed), &len);
    if (rc == P4P_ENOTFOUND) {
        n->env.random(n->env.ctx, seed, sizeof(seed));
        rc = st->ops->kv_put(st->ctx, KEY_SEED, KEYLEN(KEY_SEED), seed, sizeof(seed));
    } else if (rc == 0 && len != sizeof(seed)) {
        rc = P4P_ECORRUPT;
    } else if (rc == P4P_ETOOBIG) {
        rc = P4P_ECORRUPT;
    }
    if (rc == 0) {
        identity_from_seed(&n->id, seed);
    }
    sodium_memzero(seed, sizeof(seed));
    if (rc != 0) {
        return rc;
    }
    uint8_t b[8];
    rc = st->ops->kv_get(st->ctx, KEY_SEQ, KEYLEN(KEY_SEQ), b, sizeof(b), &len);
    if (rc == P4P_ENOTFOUND) {
        return 0;
    }
    if (rc != 0 || len != sizeof(b)) {
        return rc != 0 && rc != P4P_ETOOBIG ? rc : P4P_ECORRUPT;
    }
    n->next_seq = store_prefix(b);
    return 0;
}

int persist_open(p4p_node *n)
{
    if (!has_storage(n)) {
        uint8_t seed[32];
        n->env.random(n->env.ctx, seed, sizeof(seed));
        identity_from_seed(&n->id, seed);
        sodium_memzero(seed, sizeof(seed));
        return 0;
    }
    const struct p4p_storage *st = &n->env.storage;
    int rc = st->ops->begin(st->ctx);
    if (rc != 0) {
        return rc;
    }
    rc = load_identity(n, st);
    uint64_t seq_floor = n->next_seq;
    struct replay r = {n, 0};
    uint64_t bad = 0;
    if (rc == 0) {
        n->origin_prefix = store_prefix(n->id.pk);
        rc = st->ops->log_scan(st->ctx, 1, replay_one, &r, &bad);
        if (rc == 1 && r.bad) {
            bad = n->stats.replayed + 1;
            rc = P4P_ECORRUPT;
        }
    }
    if (rc == P4P_ECORRUPT && bad > 0 && n->cfg.storage_repair) {
        uint64_t count = st->ops->log_count(st->ctx);
        rc = st->ops->log_truncate(st->ctx, bad - 1);
        n->stats.storage_dropped += count - (bad - 1);
    }
    if (n->next_seq < seq_floor) {
        n->next_seq = seq_floor;
    }
    if (rc == 0) {
        rc = st->ops->commit(st->ctx);
        if (rc == 0) {
            return 0;
        }
    }
    st->ops->abort(st->ctx);
    return rc;
}

/* ---- Writing ------------------------------------------------------------------------------- */

static void fail(p4p_node *n, int rc)
{
    if (n->failed == 0) {
        n->failed = rc;
    }
}

/* The store with this input's transaction open (begun on first use), or NULL when there is
 * no store or the node has failed. */
static const struct p4p_storage *txn(p4p_node *n)
{
    if (!has_storage(n) || n->failed) {
        return NULL;
    }
    const struct p4p_storage *st = &n->env.storage;
    if (!n->txn_open) {
        int rc = st->ops->begin(st->ctx);
        if (rc != 0) {
            fail(n, rc);
            return NULL;
        }
        n->txn_open = 1;
    }
    return st;
}

void persist_update(p4p_node *n, const uint8_t *frame, size_t len, int own_seq)
{
    const struct p4p_storage *st = txn(n);
    if (st == NULL) {
        return;
    }
    int rc = st->ops->log_append(st->ctx, frame, len, NULL);
    if (rc == 0 && own_seq) {
        uint8_t b[8];
        store_put_prefix(b, n->next_seq);
        rc = st->ops->kv_put(st->ctx, KEY_SEQ, KEYLEN(KEY_SEQ), b, sizeof(b));
    }
    if (rc != 0) {
        fail(n, rc);
        return;
    }
    n->stats.stored++;
}

void persist_kv(p4p_node *n, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    const struct p4p_storage *st = txn(n);
    int rc = st == NULL ? 0 : st->ops->kv_put(st->ctx, key, klen, val, vlen);
    if (rc != 0) {
        fail(n, rc);
    }
}

int persist_end(p4p_node *n, int rc)
{
    secure_before_commit(n);
    if (n->txn_open) {
        const struct p4p_storage *st = &n->env.storage;
        n->txn_open = 0;
        int c = n->failed ? n->failed : st->ops->commit(st->ctx);
        if (c != 0) {
            st->ops->abort(st->ctx);
            fail(n, c);
        }
    }
    if (n->failed) {
        /* Nothing of this input may be seen: withdraw its frames and events. */
        struct outbox *ob = &n->ob;
        ob->frame_count = n->mark_frames;
        ob->event_count = n->mark_events;
        ob->byte_used = n->mark_bytes;
        return n->failed;
    }
    return rc;
}
