/*
 * plumtree.c — see plumtree.h: HyParView membership, Plumtree broadcast and the
 * anti-entropy baseline in one sans-I/O state machine.
 *
 * Layout of this file, bottom-up:
 *
 *   seen table     ring + open-addressing hash of 8-byte id prefixes (module-private)
 *   payload cache  ring of cache_max fixed slots, newest last, searched linearly
 *   outbox/events  bounded rings, as in session.c
 *   encoders       one per message type; every frame is built with the CBOR writer
 *   decoder        strict: exact field counts and types, ranges, nothing trailing
 *   views          active/passive add and remove, NEIGHBOR requests, repair
 *   HyParView      JOIN, FORWARD_JOIN, NEIGHBOR(_REPLY), DISCONNECT, SHUFFLE(_REPLY)
 *   Plumtree       GOSSIP, IHAVE batching, missing messages and GRAFT, PRUNE
 *   anti-entropy   rounds of PUSH and PULL
 *   API            create, inputs, timers, deadline, introspection
 *
 * Every input call ends with view repair (ask passive peers while the active view is not
 * full), so after any call either the view is full, the request budget is used, or every
 * passive peer is in backoff; plumtree_deadline() then only has future times to report.
 */
#include "plumtree.h"

#include <stdlib.h>
#include <string.h>

#include "cbor.h"
#include "dgram_ring.h"
#include "probe.h"

struct apeer {
    p4p_addr addr;
    bool eager;
    p4p_time_ns last_rx, last_tx;
};

struct ppeer {
    p4p_addr addr;
    p4p_time_ns retry_at; /* not asked with NEIGHBOR before this */
};

struct pending {
    p4p_addr addr;
    p4p_time_ns deadline;
    bool high; /* sent with high priority */
};

struct announcer {
    p4p_addr addr;
    uint32_t hops;
};

/* A message announced by IHAVE that has not arrived yet. */
struct missing {
    uint8_t id[PLUMTREE_ID_LEN];
    p4p_time_ns deadline;
    uint32_t attempts;
    uint32_t ann_count;
    struct announcer ann[PLUMTREE_ANNOUNCERS];
};

/* An announcement waiting for the next IHAVE batch; not sent back to `from`. */
struct lazy_item {
    uint8_t id[PLUMTREE_ID_LEN];
    uint32_t hops;
    p4p_addr from;
};

struct centry {
    uint8_t id[PLUMTREE_ID_LEN];
    uint32_t len;
    uint32_t hops;   /* links it crossed to reach us */
    uint32_t pushes; /* anti-entropy rounds it was pushed in */
    p4p_addr from;   /* neighbour it came from; P4P_ADDR_BROADCAST when ours */
    p4p_time_ns at;  /* when it arrived */
};

struct plumtree {
    struct plumtree_config cfg;
    struct plumtree_env env;
    p4p_addr self;
    bool started;
    p4p_time_ns now; /* of the current input call */

    struct apeer *active;
    uint32_t active_count;
    struct ppeer *passive;
    uint32_t passive_count;
    struct pending pending[PLUMTREE_PENDING];
    uint32_t pending_count;
    p4p_addr sent_sample[PLUMTREE_LIST_MAX]; /* our last SHUFFLE sample: evicted first */
    uint32_t sent_count;
    uint32_t *pick; /* scratch for random choices, max(active_max, passive_max) */

    p4p_addr contact; /* JOINed again whenever the active view is empty */
    p4p_time_ns join_at, shuffle_at, round_at, ihave_at, announce_at;

    uint64_t *seen_ring, *seen_slots; /* prefixes; 0 marks an empty slot */
    uint32_t seen_head, seen_count, seen_mask;

    struct centry *cache;
    uint8_t *cache_data;
    uint32_t cache_next, cache_count; /* next slot to overwrite; slots in use */

    struct missing *missing;
    uint32_t missing_count;
    struct lazy_item *lazy;
    uint32_t lazy_count;

    struct dgram_ring out;
    struct plumtree_event *events;
    uint32_t ehead, ecount;

    size_t memory;
    struct plumtree_stats st;
};

/* A decoded message; pointers point into the received frame. */
struct msg {
    uint8_t type;
    bool flag;
    p4p_addr addr;
    uint32_t ttl;
    const uint8_t *id;
    uint32_t hops;
    const uint8_t *payload;
    size_t payload_len;
    uint32_t n;
    p4p_addr list[PLUMTREE_LIST_MAX];
    const uint8_t *ids[PLUMTREE_BATCH_MAX];
    uint32_t hopsv[PLUMTREE_BATCH_MAX];
};

static inline p4p_time_ns tmin(p4p_time_ns a, p4p_time_ns b)
{
    return a < b ? a : b;
}

static inline uint32_t sat_inc(uint32_t v)
{
    return v == UINT32_MAX ? v : v + 1;
}

static uint64_t random_below(struct plumtree *t, uint64_t n)
{
    uint8_t b[8];
    uint64_t v = 0;
    if (n <= 1) {
        return 0;
    }
    t->env.random(t->env.ctx, b, sizeof(b));
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | b[i];
    }
    return v % n;
}

static bool is_epidemic(const struct plumtree *t)
{
    return t->cfg.mode == PLUMTREE_MODE_PUSH || t->cfg.mode == PLUMTREE_MODE_PULL ||
           t->cfg.mode == PLUMTREE_MODE_PUSH_PULL;
}

/* ---- Seen table ---------------------------------------------------------------------------- */

static uint64_t id_prefix(const uint8_t *id)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | id[i];
    }
    return v ? v : 1; /* 0 marks an empty slot */
}

static uint32_t seen_home(const struct plumtree *t, uint64_t k)
{
    /* Caller-chosen ids need not be uniform (counters work too): mix before masking. */
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k & t->seen_mask;
}

static uint32_t seen_slot(const struct plumtree *t, uint64_t k, bool *found)
{
    for (uint32_t i = seen_home(t, k);; i = (i + 1) & t->seen_mask) {
        if (t->seen_slots[i] == 0 || t->seen_slots[i] == k) {
            *found = t->seen_slots[i] == k;
            return i;
        }
    }
}

static bool seen_has(const struct plumtree *t, const uint8_t *id)
{
    bool found = false;
    seen_slot(t, id_prefix(id), &found);
    return found;
}

/* Backward-shift deletion (probe.h): no tombstones, so probes stay short forever. */
static void seen_delete(struct plumtree *t, uint32_t i)
{
    uint32_t j = i;
    for (;;) {
        t->seen_slots[i] = 0;
        for (;;) {
            j = (j + 1) & t->seen_mask;
            if (t->seen_slots[j] == 0) {
                return;
            }
            if (!probe_stays(i, j, seen_home(t, t->seen_slots[j]))) {
                break;
            }
        }
        t->seen_slots[i] = t->seen_slots[j];
        i = j;
    }
}

static void seen_add(struct plumtree *t, const uint8_t *id)
{
    uint64_t k = id_prefix(id);
    bool found = false;
    if (t->seen_count == t->cfg.seen_max) {
        uint32_t i = seen_slot(t, t->seen_ring[t->seen_head], &found);
        if (found) {
            seen_delete(t, i);
        }
        t->seen_head = (t->seen_head + 1) % t->cfg.seen_max;
        t->seen_count--;
        t->st.seen_evicted++;
    }
    uint32_t i = seen_slot(t, k, &found);
    if (found) {
        return; /* a prefix collision: already remembered */
    }
    t->seen_slots[i] = k;
    t->seen_ring[(t->seen_head + t->seen_count) % t->cfg.seen_max] = k;
    t->seen_count++;
}

/* ---- Payload cache ------------------------------------------------------------------------- */

static uint8_t *cache_bytes(const struct plumtree *t, const struct centry *e)
{
    return t->cache_data + (size_t)(e - t->cache) * t->cfg.payload_max;
}

/* The k-th newest entry, k < cache_count. */
static struct centry *cache_newest(const struct plumtree *t, uint32_t k)
{
    uint32_t cap = t->cfg.cache_max;
    return &t->cache[(t->cache_next + cap - 1 - k) % cap];
}

static struct centry *cache_find(const struct plumtree *t, const uint8_t *id)
{
    for (uint32_t k = 0; k < t->cache_count; k++) {
        struct centry *e = cache_newest(t, k);
        if (memcmp(e->id, id, PLUMTREE_ID_LEN) == 0) {
            return e;
        }
    }
    return NULL;
}

static struct centry *cache_put(struct plumtree *t, const uint8_t *id, uint32_t hops, p4p_addr from,
                                const uint8_t *payload, size_t len)
{
    struct centry *e = &t->cache[t->cache_next];
    t->cache_next = (t->cache_next + 1) % t->cfg.cache_max;
    if (t->cache_count < t->cfg.cache_max) {
        t->cache_count++;
    }
    memcpy(e->id, id, PLUMTREE_ID_LEN);
    e->len = (uint32_t)len;
    e->hops = hops;
    e->pushes = 0;
    e->from = from;
    e->at = t->now;
    if (len > 0) {
        memcpy(cache_bytes(t, e), payload, len);
    }
    return e;
}

/* ---- Outbox and events --------------------------------------------------------------------- */

static int active_index(const struct plumtree *t, p4p_addr a)
{
    for (uint32_t i = 0; i < t->active_count; i++) {
        if (t->active[i].addr == a) {
            return (int)i;
        }
    }
    return -1;
}

/* Starts a frame of `type` in the next outbox slot; false when the outbox is full (counted). */
static bool out_open(struct plumtree *t, struct cbor_writer *w, enum plumtree_type type)
{
    uint8_t *slot = dgram_ring_reserve(&t->out);
    if (slot == NULL) {
        t->st.dropped_outbox_full++;
        return false;
    }
    uint8_t head = (uint8_t)(PLUMTREE_VERSION << 4 | type);
    cbor_writer_init(w, slot, t->cfg.mtu);
    cbor_put_raw(w, &head, 1);
    return true;
}

/* Queues the frame built in w for `to`. Frames are sized before they are written, so an
 * overflow here would be a bug; it is still dropped and counted rather than sent cut. */
static void out_close(struct plumtree *t, struct cbor_writer *w, p4p_addr to)
{
    if (!cbor_writer_ok(w)) {
        t->st.dropped_outbox_full++;
        return;
    }
    dgram_ring_commit(&t->out, to, w->len);
    t->st.frames_out++;
    t->st.bytes_out += w->len;
    int i = active_index(t, to);
    if (i >= 0) {
        t->active[i].last_tx = t->now;
    }
}

static void event_push(struct plumtree *t, enum plumtree_event_kind kind, p4p_addr peer,
                       const struct centry *e)
{
    if (t->ecount >= t->cfg.event_max) {
        t->st.dropped_events++;
        return;
    }
    struct plumtree_event *ev = &t->events[(t->ehead + t->ecount) % t->cfg.event_max];
    memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->peer = peer;
    if (e != NULL) {
        memcpy(ev->id, e->id, PLUMTREE_ID_LEN);
        ev->hops = e->hops;
        ev->payload = cache_bytes(t, e);
        ev->payload_len = e->len;
    }
    t->ecount++;
}

/* ---- Encoders ------------------------------------------------------------------------------ */

static void send_empty(struct plumtree *t, p4p_addr to, enum plumtree_type type)
{
    struct cbor_writer w;
    if (out_open(t, &w, type)) {
        cbor_put_array(&w, 0);
        out_close(t, &w, to);
    }
}

static void send_bool(struct plumtree *t, p4p_addr to, enum plumtree_type type, bool v)
{
    struct cbor_writer w;
    if (out_open(t, &w, type)) {
        cbor_put_array(&w, 1);
        cbor_put_bool(&w, v);
        out_close(t, &w, to);
    }
}

static void send_forward_join(struct plumtree *t, p4p_addr to, p4p_addr joiner, uint32_t ttl)
{
    struct cbor_writer w;
    if (out_open(t, &w, PLUMTREE_FORWARD_JOIN)) {
        cbor_put_array(&w, 2);
        cbor_put_uint(&w, joiner);
        cbor_put_uint(&w, ttl);
        out_close(t, &w, to);
    }
}

static void put_list(struct cbor_writer *w, const p4p_addr *list, uint32_t n)
{
    cbor_put_array(w, n);
    for (uint32_t i = 0; i < n; i++) {
        cbor_put_uint(w, list[i]);
    }
}

static void send_shuffle(struct plumtree *t, p4p_addr to, p4p_addr origin, uint32_t ttl,
                         const p4p_addr *list, uint32_t n)
{
    struct cbor_writer w;
    if (out_open(t, &w, PLUMTREE_SHUFFLE)) {
        cbor_put_array(&w, 3);
        cbor_put_uint(&w, origin);
        cbor_put_uint(&w, ttl);
        put_list(&w, list, n);
        out_close(t, &w, to);
    }
}

static void send_shuffle_reply(struct plumtree *t, p4p_addr to, const p4p_addr *list, uint32_t n)
{
    struct cbor_writer w;
    if (out_open(t, &w, PLUMTREE_SHUFFLE_REPLY)) {
        cbor_put_array(&w, 1);
        put_list(&w, list, n);
        out_close(t, &w, to);
    }
}

/* GOSSIP or PUSH: one payload. */
static void send_payload(struct plumtree *t, p4p_addr to, enum plumtree_type type,
                         const struct centry *e)
{
    struct cbor_writer w;
    if (out_open(t, &w, type)) {
        cbor_put_array(&w, 3);
        cbor_put_bstr(&w, e->id, PLUMTREE_ID_LEN);
        cbor_put_uint(&w, sat_inc(e->hops));
        cbor_put_bstr(&w, cache_bytes(t, e), e->len);
        out_close(t, &w, to);
        if (type == PLUMTREE_GOSSIP) {
            t->st.gossip_sent++;
        } else {
            t->st.push_sent++;
        }
    }
}

static void send_graft(struct plumtree *t, p4p_addr to, const uint8_t *id, bool want)
{
    struct cbor_writer w;
    if (out_open(t, &w, PLUMTREE_GRAFT)) {
        cbor_put_array(&w, 2);
        cbor_put_bstr(&w, id, PLUMTREE_ID_LEN);
        cbor_put_bool(&w, want);
        out_close(t, &w, to);
        t->st.graft_sent++;
    }
}

static void send_disconnect(struct plumtree *t, p4p_addr to)
{
    send_empty(t, to, PLUMTREE_DISCONNECT);
    t->st.disconnects_sent++;
}

/* ---- Decoder ------------------------------------------------------------------------------- */

static void get_addr(struct cbor_reader *r, p4p_addr *out)
{
    uint64_t v = 0;
    if (cbor_get_uint(r, &v) == 0 && v >= P4P_ADDR_BROADCAST) {
        r->err = P4P_EMALFORMED;
    }
    *out = (p4p_addr)v;
}

static void get_u32(struct cbor_reader *r, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (cbor_get_uint(r, &v) == 0 && v > max) {
        r->err = P4P_EMALFORMED;
    }
    *out = (uint32_t)v;
}

static void get_bool(struct cbor_reader *r, bool *out)
{
    int v = 0;
    cbor_get_bool(r, &v);
    *out = v != 0;
}

static void get_id(struct cbor_reader *r, const uint8_t **out)
{
    size_t n = 0;
    if (cbor_get_bstr(r, out, &n) == 0 && n != PLUMTREE_ID_LEN) {
        r->err = P4P_EMALFORMED;
    }
}

static void get_list(struct cbor_reader *r, struct msg *m)
{
    uint64_t n = 0;
    if (cbor_get_array(r, &n) != 0 || n > PLUMTREE_LIST_MAX) {
        r->err = P4P_EMALFORMED;
        return;
    }
    m->n = (uint32_t)n;
    for (uint32_t i = 0; i < m->n && r->err == 0; i++) {
        get_addr(r, &m->list[i]);
    }
}

/* The array of a message body, which must hold exactly `want` items. */
static void get_body(struct cbor_reader *r, uint64_t want)
{
    uint64_t n = 0;
    if (cbor_get_array(r, &n) == 0 && n != want) {
        r->err = P4P_EMALFORMED;
    }
}

/* IHAVE (id, hops pairs, at least one), ANNOUNCE (a bool, then the same) or PULL (ids,
 * possibly none). */
static void decode_batch(struct cbor_reader *r, struct msg *m, uint32_t per_item)
{
    uint64_t n = 0;
    if (cbor_get_array(r, &n) != 0) {
        return;
    }
    if (m->type == PLUMTREE_ANNOUNCE) {
        if (n == 0) {
            r->err = P4P_EMALFORMED;
            return;
        }
        get_bool(r, &m->flag);
        n--;
    }
    if (n % per_item != 0 || n / per_item > PLUMTREE_BATCH_MAX || (n == 0 && per_item == 2)) {
        r->err = P4P_EMALFORMED;
        return;
    }
    m->n = (uint32_t)(n / per_item);
    for (uint32_t i = 0; i < m->n && r->err == 0; i++) {
        get_id(r, &m->ids[i]);
        m->hopsv[i] = 0;
        if (per_item == 2) {
            get_u32(r, UINT32_MAX, &m->hopsv[i]);
        }
    }
}

static void decode_payload(const struct plumtree *t, struct cbor_reader *r, struct msg *m)
{
    get_body(r, 3);
    get_id(r, &m->id);
    get_u32(r, UINT32_MAX, &m->hops);
    if (cbor_get_bstr(r, &m->payload, &m->payload_len) == 0 &&
        m->payload_len > t->cfg.payload_max) {
        r->err = P4P_EMALFORMED;
    }
}

/* Parses a whole frame into m. 0, P4P_EVERSION or P4P_EMALFORMED. */
static int decode(const struct plumtree *t, const uint8_t *data, size_t len, struct msg *m)
{
    struct cbor_reader r;
    if (len < 2 || len > t->cfg.mtu) {
        return P4P_EMALFORMED;
    }
    if (data[0] >> 4 != PLUMTREE_VERSION) {
        return P4P_EVERSION;
    }
    m->type = data[0] & 0x0f;
    cbor_reader_init(&r, data + 1, len - 1);
    switch (m->type) {
    case PLUMTREE_JOIN:
    case PLUMTREE_DISCONNECT:
    case PLUMTREE_KEEPALIVE:
    case PLUMTREE_PRUNE:
        get_body(&r, 0);
        break;
    case PLUMTREE_FORWARD_JOIN:
        get_body(&r, 2);
        get_addr(&r, &m->addr);
        get_u32(&r, PLUMTREE_TTL_MAX, &m->ttl);
        break;
    case PLUMTREE_NEIGHBOR:
    case PLUMTREE_NEIGHBOR_REPLY:
        get_body(&r, 1);
        get_bool(&r, &m->flag);
        break;
    case PLUMTREE_SHUFFLE:
        get_body(&r, 3);
        get_addr(&r, &m->addr);
        get_u32(&r, PLUMTREE_TTL_MAX, &m->ttl);
        get_list(&r, m);
        break;
    case PLUMTREE_SHUFFLE_REPLY:
        get_body(&r, 1);
        get_list(&r, m);
        break;
    case PLUMTREE_GOSSIP:
    case PLUMTREE_PUSH:
        decode_payload(t, &r, m);
        break;
    case PLUMTREE_IHAVE:
    case PLUMTREE_ANNOUNCE:
        decode_batch(&r, m, 2);
        break;
    case PLUMTREE_GRAFT:
        get_body(&r, 2);
        get_id(&r, &m->id);
        get_bool(&r, &m->flag);
        break;
    case PLUMTREE_PULL:
        decode_batch(&r, m, 1);
        break;
    default:
        return P4P_EMALFORMED;
    }
    return cbor_reader_done(&r) ? 0 : P4P_EMALFORMED;
}

/* ---- Views --------------------------------------------------------------------------------- */

static int passive_index(const struct plumtree *t, p4p_addr a)
{
    for (uint32_t i = 0; i < t->passive_count; i++) {
        if (t->passive[i].addr == a) {
            return (int)i;
        }
    }
    return -1;
}

static void passive_remove(struct plumtree *t, p4p_addr a)
{
    int i = passive_index(t, a);
    if (i >= 0) {
        t->passive[i] = t->passive[--t->passive_count];
    }
}

/* The index of a passive peer to evict: one listed in prefer[] if any, else a random one. */
static uint32_t passive_victim(struct plumtree *t, const p4p_addr *prefer, uint32_t prefer_n)
{
    for (uint32_t k = 0; k < prefer_n; k++) {
        int i = passive_index(t, prefer[k]);
        if (i >= 0) {
            return (uint32_t)i;
        }
    }
    return (uint32_t)random_below(t, t->passive_count);
}

static void passive_add(struct plumtree *t, p4p_addr a, p4p_time_ns retry_at,
                        const p4p_addr *prefer, uint32_t prefer_n)
{
    if (a == t->self || a == P4P_ADDR_BROADCAST || active_index(t, a) >= 0 ||
        passive_index(t, a) >= 0) {
        return;
    }
    if (t->passive_count == t->cfg.passive_max) {
        t->passive[passive_victim(t, prefer, prefer_n)] = t->passive[--t->passive_count];
    }
    t->passive[t->passive_count++] = (struct ppeer){.addr = a, .retry_at = retry_at};
}

static int pending_index(const struct plumtree *t, p4p_addr a)
{
    for (uint32_t i = 0; i < t->pending_count; i++) {
        if (t->pending[i].addr == a) {
            return (int)i;
        }
    }
    return -1;
}

static void pending_remove_at(struct plumtree *t, uint32_t i)
{
    t->pending[i] = t->pending[--t->pending_count];
}

static void pending_add(struct plumtree *t, p4p_addr a, p4p_time_ns deadline, bool high)
{
    int i = pending_index(t, a);
    if (i >= 0) {
        t->pending[i].deadline = deadline;
        t->pending[i].high = high;
    } else if (t->pending_count < PLUMTREE_PENDING) {
        t->pending[t->pending_count++] =
            (struct pending){.addr = a, .deadline = deadline, .high = high};
    }
}

/* A neighbour left: forget it as an announcer of missing messages. */
static void forget_announcer(struct plumtree *t, p4p_addr a)
{
    for (uint32_t i = 0; i < t->missing_count; i++) {
        struct missing *m = &t->missing[i];
        for (uint32_t k = 0; k < m->ann_count;) {
            if (m->ann[k].addr == a) {
                m->ann[k] = m->ann[--m->ann_count];
            } else {
                k++;
            }
        }
    }
}

/* Removes active peer i; a peer that merely left (not failed) moves to the passive view. */
static void active_remove_at(struct plumtree *t, uint32_t i, p4p_time_ns now, bool to_passive)
{
    p4p_addr a = t->active[i].addr;
    t->active[i] = t->active[--t->active_count];
    forget_announcer(t, a);
    event_push(t, PLUMTREE_EVENT_NEIGHBOR_DOWN, a, NULL);
    if (to_passive) {
        passive_add(t, a, now + t->cfg.neighbor_backoff_ns, NULL, 0);
    }
}

static void send_recent(struct plumtree *t, p4p_time_ns now, p4p_addr to, bool reply,
                        const struct msg *skip, bool any_age);

/* Adds a to the active view (dropping a random neighbour, told by DISCONNECT, when full) and
 * returns its index. With the repair exchange on, the new neighbour hears of our newest
 * messages at once: a node back from isolation, or on a link made after a message passed,
 * GRAFTs what it missed. */
static uint32_t active_add(struct plumtree *t, p4p_addr a, p4p_time_ns now)
{
    int i = active_index(t, a);
    if (i >= 0) {
        return (uint32_t)i;
    }
    if (t->active_count == t->cfg.active_max) {
        uint32_t victim = (uint32_t)random_below(t, t->active_count);
        p4p_addr v = t->active[victim].addr;
        send_disconnect(t, v);
        active_remove_at(t, victim, now, true);
    }
    passive_remove(t, a);
    i = pending_index(t, a);
    if (i >= 0) {
        pending_remove_at(t, (uint32_t)i);
    }
    t->active[t->active_count] = (struct apeer){.addr = a,
                                                .eager = t->cfg.mode == PLUMTREE_MODE_TREE ||
                                                         t->cfg.mode == PLUMTREE_MODE_FLOOD,
                                                .last_rx = now,
                                                .last_tx = now};
    t->st.peers_up++;
    event_push(t, PLUMTREE_EVENT_NEIGHBOR_UP, a, NULL);
    if (t->cfg.mode == PLUMTREE_MODE_TREE && t->cfg.announce_interval_ns > 0) {
        send_recent(t, now, a, false, NULL, true);
    }
    return t->active_count++;
}

/* Up to k distinct active indices, uniformly and in random order, skipping the peers not1
 * and not2; written to t->pick[0 .. result). */
static uint32_t pick_active(struct plumtree *t, uint32_t k, p4p_addr not1, p4p_addr not2)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < t->active_count; i++) {
        if (t->active[i].addr != not1 && t->active[i].addr != not2) {
            t->pick[m++] = i;
        }
    }
    if (k > m) {
        k = m;
    }
    for (uint32_t i = 0; i < k; i++) { /* partial Fisher-Yates */
        uint32_t j = i + (uint32_t)random_below(t, m - i);
        uint32_t tmp = t->pick[i];
        t->pick[i] = t->pick[j];
        t->pick[j] = tmp;
    }
    return k;
}

/* The same for k passive indices. */
static uint32_t pick_passive(struct plumtree *t, uint32_t k)
{
    uint32_t m = t->passive_count;
    for (uint32_t i = 0; i < m; i++) {
        t->pick[i] = i;
    }
    if (k > m) {
        k = m;
    }
    for (uint32_t i = 0; i < k; i++) {
        uint32_t j = i + (uint32_t)random_below(t, m - i);
        uint32_t tmp = t->pick[i];
        t->pick[i] = t->pick[j];
        t->pick[j] = tmp;
    }
    return k;
}

/* Whether another NEIGHBOR request may go out: several at once with an empty view (high
 * priority, urgent), one at a time otherwise, never more than the free active slots. */
static bool may_request(const struct plumtree *t)
{
    uint32_t limit = t->active_count == 0 ? PLUMTREE_PENDING : 1;
    return t->pending_count < limit && t->active_count + t->pending_count < t->cfg.active_max;
}

static void send_neighbor(struct plumtree *t, p4p_time_ns now, p4p_addr to, bool high)
{
    send_bool(t, to, PLUMTREE_NEIGHBOR, high);
    pending_add(t, to, now + t->cfg.neighbor_timeout_ns, high);
    t->st.neighbor_requests++;
}

/* Fills the active view from the passive view (HyParView's reaction to a failure). A node
 * left without neighbours repeats its low-priority requests with high priority. */
static void repair(struct plumtree *t, p4p_time_ns now)
{
    for (uint32_t i = 0; i < t->pending_count && t->active_count == 0; i++) {
        if (!t->pending[i].high) {
            send_neighbor(t, now, t->pending[i].addr, true);
        }
    }
    while (may_request(t)) {
        /* Backoff spares peers that refused or dropped us, unless we have no neighbour left:
         * an isolated node must reconnect at once, or new nodes joining through it would
         * build an island that full views never merge back. */
        uint32_t m = 0;
        for (uint32_t i = 0; i < t->passive_count; i++) {
            if ((t->passive[i].retry_at <= now || t->active_count == 0) &&
                pending_index(t, t->passive[i].addr) < 0) {
                t->pick[m++] = i;
            }
        }
        if (m == 0) {
            return;
        }
        struct ppeer *p = &t->passive[t->pick[random_below(t, m)]];
        p->retry_at = now + t->cfg.neighbor_timeout_ns;
        send_neighbor(t, now, p->addr, t->active_count == 0);
    }
}

/* A link message (KEEPALIVE, GOSSIP, IHAVE, GRAFT, PRUNE, PUSH, PULL) arrived from `from`.
 * Returns its active index, or -1 when it is not a neighbour: then it is told DISCONNECT,
 * unless we had asked it, in which case its message means it accepted. */
static int link_check(struct plumtree *t, p4p_time_ns now, p4p_addr from)
{
    int i = active_index(t, from);
    if (i < 0 && pending_index(t, from) >= 0) {
        t->st.neighbor_accepted++;
        i = (int)active_add(t, from, now);
    }
    if (i < 0) {
        t->st.not_active_in++;
        send_disconnect(t, from);
        return -1;
    }
    t->active[i].last_rx = now;
    return i;
}

/* ---- HyParView ----------------------------------------------------------------------------- */

static void send_join(struct plumtree *t, p4p_time_ns now)
{
    send_empty(t, t->contact, PLUMTREE_JOIN);
    pending_add(t, t->contact, now + t->cfg.join_retry_ns, true);
    t->join_at = now + t->cfg.join_retry_ns;
}

static void on_join(struct plumtree *t, p4p_time_ns now, p4p_addr from)
{
    t->st.joins_in++;
    bool known = active_index(t, from) >= 0;
    uint32_t i = active_add(t, from, now);
    t->active[i].last_rx = now;
    send_bool(t, from, PLUMTREE_NEIGHBOR_REPLY, true);
    if (known) {
        return; /* a repeated JOIN: the walks went out the first time */
    }
    for (uint32_t k = 0; k < t->active_count; k++) {
        if (t->active[k].addr != from) {
            send_forward_join(t, t->active[k].addr, from, t->cfg.arwl);
        }
    }
}

static void on_forward_join(struct plumtree *t, p4p_time_ns now, p4p_addr from, const struct msg *m)
{
    t->st.forward_joins_in++;
    if (m->addr == t->self) {
        return;
    }
    if (m->ttl > 0 && m->ttl == t->cfg.prwl) {
        passive_add(t, m->addr, 0, NULL, 0);
    }
    uint32_t k = 0;
    if (m->ttl > 0 && t->active_count > 1) {
        k = pick_active(t, 1, from, m->addr);
    }
    if (k == 0) { /* the walk ends here: ask the new node, which cannot refuse */
        if (active_index(t, m->addr) >= 0 || pending_index(t, m->addr) >= 0) {
            return;
        }
        if (t->pending_count < PLUMTREE_PENDING) {
            send_neighbor(t, now, m->addr, true);
        } else {
            passive_add(t, m->addr, 0, NULL, 0);
        }
        return;
    }
    send_forward_join(t, t->active[t->pick[0]].addr, m->addr, m->ttl - 1);
}

static void on_neighbor(struct plumtree *t, p4p_time_ns now, p4p_addr from, bool high)
{
    bool accept = active_index(t, from) >= 0 || high || t->active_count < t->cfg.active_max;
    if (accept) {
        uint32_t i = active_add(t, from, now);
        t->active[i].last_rx = now;
    } else {
        passive_add(t, from, 0, NULL, 0);
    }
    send_bool(t, from, PLUMTREE_NEIGHBOR_REPLY, accept);
}

static void on_neighbor_reply(struct plumtree *t, p4p_time_ns now, p4p_addr from, bool accepted)
{
    int pi = pending_index(t, from);
    int ai = active_index(t, from);
    if (pi >= 0) {
        pending_remove_at(t, (uint32_t)pi);
    }
    if (!accepted) {
        if (pi >= 0) {
            t->st.neighbor_refused++;
            int k = passive_index(t, from);
            if (k >= 0) {
                t->passive[k].retry_at = now + t->cfg.neighbor_backoff_ns;
            }
        }
        return;
    }
    if (ai >= 0) {
        return;
    }
    if (pi >= 0) {
        t->st.neighbor_accepted++;
        active_add(t, from, now);
        return;
    }
    /* An answer we no longer wait for (it timed out, or a DISCONNECT overtook it): the peer
     * holds us now, so undo that rather than keep a one-sided link. */
    send_disconnect(t, from);
}

static void on_disconnect(struct plumtree *t, p4p_time_ns now, p4p_addr from)
{
    t->st.disconnects_in++;
    int i = pending_index(t, from);
    if (i >= 0) {
        pending_remove_at(t, (uint32_t)i);
    }
    i = active_index(t, from);
    if (i >= 0) {
        active_remove_at(t, (uint32_t)i, now, true);
    }
}

/* Merges a received sample into the passive view. */
static void merge_sample(struct plumtree *t, const p4p_addr *list, uint32_t n,
                         const p4p_addr *prefer, uint32_t prefer_n)
{
    for (uint32_t i = 0; i < n; i++) {
        passive_add(t, list[i], 0, prefer, prefer_n);
    }
}

static void on_shuffle(struct plumtree *t, p4p_time_ns now, p4p_addr from, const struct msg *m)
{
    (void)now;
    if (m->addr == t->self) {
        return; /* our own walk came back */
    }
    if (m->ttl > 1 && t->active_count > 1 && pick_active(t, 1, from, m->addr) == 1) {
        send_shuffle(t, t->active[t->pick[0]].addr, m->addr, m->ttl - 1, m->list, m->n);
        return;
    }
    t->st.shuffles_in++;
    p4p_addr reply[PLUMTREE_LIST_MAX];
    uint32_t k = pick_passive(t, m->n);
    for (uint32_t i = 0; i < k; i++) {
        reply[i] = t->passive[t->pick[i]].addr;
    }
    send_shuffle_reply(t, m->addr, reply, k);
    /* The origin itself is a fresh sample too. */
    passive_add(t, m->addr, 0, reply, k);
    merge_sample(t, m->list, m->n, reply, k);
}

static void do_shuffle(struct plumtree *t)
{
    if (t->active_count == 0) {
        return;
    }
    p4p_addr list[PLUMTREE_LIST_MAX];
    uint32_t n = 0;
    list[n++] = t->self;
    uint32_t ka = pick_active(t, t->cfg.shuffle_ka, P4P_ADDR_BROADCAST, P4P_ADDR_BROADCAST);
    for (uint32_t i = 0; i < ka; i++) {
        list[n++] = t->active[t->pick[i]].addr;
    }
    uint32_t kp = pick_passive(t, t->cfg.shuffle_kp);
    for (uint32_t i = 0; i < kp; i++) {
        list[n++] = t->passive[t->pick[i]].addr;
    }
    t->sent_count = n - 1;
    memcpy(t->sent_sample, list + 1, (size_t)(n - 1) * sizeof(list[0]));
    p4p_addr to = t->active[random_below(t, t->active_count)].addr;
    send_shuffle(t, to, t->self, t->cfg.arwl, list, n);
    t->st.shuffles_sent++;
}

static void schedule_shuffle(struct plumtree *t, p4p_time_ns now)
{
    uint64_t iv = t->cfg.shuffle_interval_ns;
    t->shuffle_at = iv ? now + iv - iv / 4 + random_below(t, iv / 2) : P4P_TIME_NONE;
}

/* ---- Plumtree ------------------------------------------------------------------------------ */

/* (id, hops) pairs that fit one IHAVE frame. */
static uint32_t ihave_per_frame(const struct plumtree *t)
{
    /* Header byte, array head (3), ANNOUNCE's bool (1); an entry is at most 34 + 5 bytes. */
    uint32_t n = (t->cfg.mtu - 5) / (PLUMTREE_ID_LEN + 2 + 5);
    return n < PLUMTREE_BATCH_MAX ? n : PLUMTREE_BATCH_MAX;
}

static void ihave_flush(struct plumtree *t)
{
    uint32_t per_frame = ihave_per_frame(t);
    for (uint32_t p = 0; p < t->active_count; p++) {
        p4p_addr to = t->active[p].addr;
        if (t->active[p].eager) {
            continue;
        }
        uint32_t k = 0;
        while (k < t->lazy_count) {
            /* The items for this peer, up to one frame's worth. */
            uint32_t idx[PLUMTREE_BATCH_MAX];
            uint32_t n = 0;
            for (; k < t->lazy_count && n < per_frame; k++) {
                if (t->lazy[k].from != to) {
                    idx[n++] = k;
                }
            }
            struct cbor_writer w;
            if (n == 0 || !out_open(t, &w, PLUMTREE_IHAVE)) {
                break;
            }
            cbor_put_array(&w, 2 * (uint64_t)n);
            for (uint32_t j = 0; j < n; j++) {
                cbor_put_bstr(&w, t->lazy[idx[j]].id, PLUMTREE_ID_LEN);
                cbor_put_uint(&w, t->lazy[idx[j]].hops);
            }
            out_close(t, &w, to);
            t->st.ihave_sent++;
            t->st.ihave_ids_sent += n;
        }
    }
    t->lazy_count = 0;
    t->ihave_at = P4P_TIME_NONE;
}

static void lazy_push(struct plumtree *t, p4p_time_ns now, const struct centry *e)
{
    bool any = false;
    for (uint32_t p = 0; p < t->active_count && !any; p++) {
        any = !t->active[p].eager && t->active[p].addr != e->from;
    }
    if (!any) {
        return;
    }
    if (t->lazy_count == t->cfg.ihave_max) {
        ihave_flush(t);
    }
    struct lazy_item *it = &t->lazy[t->lazy_count++];
    memcpy(it->id, e->id, PLUMTREE_ID_LEN);
    it->hops = e->hops;
    it->from = e->from;
    if (t->cfg.ihave_interval_ns == 0) {
        ihave_flush(t);
    } else if (t->ihave_at == P4P_TIME_NONE) {
        t->ihave_at = now + t->cfg.ihave_interval_ns;
    }
}

/* Sends ANNOUNCE(reply, ids) to `to`: the newest cached messages, those that arrived within
 * announce_window_ns unless any_age, at most one frame's worth, leaving out those listed in
 * `skip` (the ids of an ANNOUNCE we answer). Nothing is sent when nothing is left. */
static void send_recent(struct plumtree *t, p4p_time_ns now, p4p_addr to, bool reply,
                        const struct msg *skip, bool any_age)
{
    uint32_t per_frame = ihave_per_frame(t);
    uint32_t idx[PLUMTREE_BATCH_MAX];
    uint32_t n = 0;
    for (uint32_t k = 0; k < t->cache_count && n < per_frame; k++) {
        const struct centry *e = cache_newest(t, k);
        if (!any_age && e->at + t->cfg.announce_window_ns <= now) {
            break;
        }
        bool listed = false;
        for (uint32_t j = 0; skip != NULL && j < skip->n && !listed; j++) {
            listed = memcmp(skip->ids[j], e->id, PLUMTREE_ID_LEN) == 0;
        }
        if (!listed) {
            idx[n++] = k;
        }
    }
    struct cbor_writer w;
    if (n == 0 || !out_open(t, &w, PLUMTREE_ANNOUNCE)) {
        return;
    }
    cbor_put_array(&w, 1 + 2 * (uint64_t)n);
    cbor_put_bool(&w, reply);
    for (uint32_t k = 0; k < n; k++) {
        const struct centry *e = cache_newest(t, idx[k]);
        cbor_put_bstr(&w, e->id, PLUMTREE_ID_LEN);
        cbor_put_uint(&w, e->hops);
    }
    out_close(t, &w, to);
    t->st.announces_sent++;
    t->st.ihave_ids_sent += n;
}

/* The repair exchange, push-pull on ids: to one random neighbour, the messages that reached
 * us recently; it GRAFTs those it lacks and answers with those of its own recent ones we did
 * not list, which we GRAFT in turn. A node that lost every copy of a message (all eager and
 * lazy pushes to it lost, or its links came up after the message had passed) learns of it
 * this way, from its own exchanges and from its neighbours'. */
static void do_announce(struct plumtree *t, p4p_time_ns now)
{
    if (t->active_count > 0) {
        send_recent(t, now, t->active[random_below(t, t->active_count)].addr, true, NULL, false);
    }
}

/* Eager push to eager neighbours, lazy push to the others (all eager in FLOOD mode). */
static void tree_forward(struct plumtree *t, p4p_time_ns now, const struct centry *e)
{
    for (uint32_t p = 0; p < t->active_count; p++) {
        if (t->active[p].eager && t->active[p].addr != e->from) {
            send_payload(t, t->active[p].addr, PLUMTREE_GOSSIP, e);
        }
    }
    if (t->cfg.mode == PLUMTREE_MODE_TREE) {
        lazy_push(t, now, e);
    }
}

static int missing_index(const struct plumtree *t, const uint8_t *id)
{
    for (uint32_t i = 0; i < t->missing_count; i++) {
        if (memcmp(t->missing[i].id, id, PLUMTREE_ID_LEN) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void missing_remove_at(struct plumtree *t, uint32_t i)
{
    t->missing[i] = t->missing[--t->missing_count];
}

/* A new message: remember, cache, announce to the host, forward (tree and flood modes). */
static void accept_new(struct plumtree *t, p4p_time_ns now, p4p_addr from, const struct msg *m)
{
    seen_add(t, m->id);
    struct centry *e = cache_put(t, m->id, m->hops, from, m->payload, m->payload_len);
    t->st.delivered++;
    event_push(t, PLUMTREE_EVENT_DELIVERED, from, e);
    int i = missing_index(t, m->id);
    if (i >= 0) {
        missing_remove_at(t, (uint32_t)i);
    }
    if (!is_epidemic(t)) {
        tree_forward(t, now, e);
    }
}

static void on_gossip(struct plumtree *t, p4p_time_ns now, p4p_addr from, const struct msg *m)
{
    int i = link_check(t, now, from);
    if (seen_has(t, m->id)) {
        t->st.duplicates++;
        if (i >= 0 && t->cfg.mode == PLUMTREE_MODE_TREE && m->type == PLUMTREE_GOSSIP) {
            t->active[i].eager = false;
            send_empty(t, from, PLUMTREE_PRUNE);
            t->st.prune_sent++;
        }
        return;
    }
    if (i >= 0 && t->cfg.mode == PLUMTREE_MODE_TREE) {
        t->active[i].eager = true;
    }
    accept_new(t, now, from, m);
}

/* The paper's optimisation: the announcer's path beats the tree's by `threshold` hops. */
static void maybe_optimize(struct plumtree *t, p4p_addr from, const uint8_t *id, uint32_t hops)
{
    struct centry *e = cache_find(t, id);
    uint32_t via_announcer = sat_inc(hops);
    if (e == NULL || e->from == from || e->from == P4P_ADDR_BROADCAST || e->hops < via_announcer ||
        e->hops - via_announcer < t->cfg.optimize_threshold) {
        return;
    }
    int old = active_index(t, e->from);
    int neu = active_index(t, from);
    if (old < 0 || neu < 0) {
        return;
    }
    t->active[neu].eager = true;
    send_graft(t, from, id, false);
    t->active[old].eager = false;
    send_empty(t, e->from, PLUMTREE_PRUNE);
    t->st.prune_sent++;
    t->st.optimizations++;
    e->from = from;
    e->hops = via_announcer;
}

static void note_missing(struct plumtree *t, p4p_time_ns now, p4p_addr from, const uint8_t *id,
                         uint32_t hops)
{
    int i = missing_index(t, id);
    if (i < 0) {
        if (t->missing_count == t->cfg.missing_max) {
            t->st.missing_dropped++;
            return;
        }
        i = (int)t->missing_count++;
        struct missing *m = &t->missing[i];
        memcpy(m->id, id, PLUMTREE_ID_LEN);
        m->deadline = now + t->cfg.graft_timeout_ns;
        m->attempts = 0;
        m->ann_count = 0;
    }
    struct missing *m = &t->missing[i];
    for (uint32_t k = 0; k < m->ann_count; k++) {
        if (m->ann[k].addr == from) {
            return;
        }
    }
    if (m->ann_count < PLUMTREE_ANNOUNCERS) {
        m->ann[m->ann_count++] = (struct announcer){.addr = from, .hops = hops};
    }
}

/* IHAVE, or ANNOUNCE: the same but never a reason for the optimisation, whose hop counts
 * only compare paths of the tree a message has just crossed (an announcement may list
 * messages that crossed an older tree). */
static void on_ihave(struct plumtree *t, p4p_time_ns now, p4p_addr from, const struct msg *m)
{
    if (link_check(t, now, from) < 0) {
        return;
    }
    for (uint32_t k = 0; k < m->n; k++) {
        if (!seen_has(t, m->ids[k])) {
            note_missing(t, now, from, m->ids[k], m->hopsv[k]);
        } else if (t->cfg.optimize_threshold > 0 && t->cfg.mode == PLUMTREE_MODE_TREE &&
                   m->type == PLUMTREE_IHAVE) {
            maybe_optimize(t, from, m->ids[k], m->hopsv[k]);
        }
    }
    if (m->type == PLUMTREE_ANNOUNCE && m->flag) {
        send_recent(t, now, from, false, m, false);
    }
}

static void on_graft(struct plumtree *t, p4p_time_ns now, p4p_addr from, const struct msg *m)
{
    int i = link_check(t, now, from);
    if (i >= 0 && t->cfg.mode == PLUMTREE_MODE_TREE) {
        t->active[i].eager = true;
    }
    if (!m->flag) {
        return;
    }
    /* Answered even for a non-neighbour: it asked because it lacks the message. */
    const struct centry *e = cache_find(t, m->id);
    if (e == NULL) {
        t->st.graft_not_cached++;
        return;
    }
    send_payload(t, from, PLUMTREE_GOSSIP, e);
    t->st.graft_answered++;
}

static void on_prune(struct plumtree *t, p4p_time_ns now, p4p_addr from)
{
    int i = link_check(t, now, from);
    if (i >= 0 && t->cfg.mode == PLUMTREE_MODE_TREE) {
        t->active[i].eager = false;
    }
}

/* GRAFT timers: ask the next announcer, round robin, until the message comes or we give up. */
static void missing_tick(struct plumtree *t, p4p_time_ns now)
{
    for (uint32_t i = 0; i < t->missing_count;) {
        struct missing *m = &t->missing[i];
        if (m->deadline > now) {
            i++;
            continue;
        }
        if (m->attempts >= t->cfg.graft_attempts_max || m->ann_count == 0) {
            t->st.missing_expired++;
            missing_remove_at(t, i);
            continue;
        }
        p4p_addr to = m->ann[m->attempts % m->ann_count].addr;
        int a = active_index(t, to);
        if (a >= 0 && t->cfg.mode == PLUMTREE_MODE_TREE) {
            t->active[a].eager = true;
        }
        send_graft(t, to, m->id, true);
        m->attempts++;
        m->deadline = now + t->cfg.graft_retry_ns;
        i++;
    }
}

/* ---- Anti-entropy -------------------------------------------------------------------------- */

static void send_pull(struct plumtree *t, p4p_addr to)
{
    uint32_t n = t->cache_count < t->cfg.digest_max ? t->cache_count : t->cfg.digest_max;
    uint32_t fit = (t->cfg.mtu - 4) / (PLUMTREE_ID_LEN + 2);
    struct cbor_writer w;
    if (n > fit) {
        n = fit;
    }
    if (!out_open(t, &w, PLUMTREE_PULL)) {
        return;
    }
    cbor_put_array(&w, n);
    for (uint32_t k = 0; k < n; k++) {
        cbor_put_bstr(&w, cache_newest(t, k)->id, PLUMTREE_ID_LEN);
    }
    out_close(t, &w, to);
    t->st.pull_sent++;
}

static void on_pull(struct plumtree *t, p4p_time_ns now, p4p_addr from, const struct msg *m)
{
    if (link_check(t, now, from) < 0) {
        return; /* a PULL costs up to digest_max payloads: neighbours only */
    }
    uint32_t n = t->cache_count < t->cfg.digest_max ? t->cache_count : t->cfg.digest_max;
    for (uint32_t k = 0; k < n; k++) {
        const struct centry *e = cache_newest(t, k);
        bool listed = false;
        for (uint32_t j = 0; j < m->n && !listed; j++) {
            listed = memcmp(m->ids[j], e->id, PLUMTREE_ID_LEN) == 0;
        }
        if (!listed) {
            send_payload(t, from, PLUMTREE_PUSH, e);
        }
    }
}

static void do_round(struct plumtree *t)
{
    bool push = t->cfg.mode != PLUMTREE_MODE_PULL;
    bool pull = t->cfg.mode != PLUMTREE_MODE_PUSH;
    uint32_t k = pick_active(t, t->cfg.fanout, P4P_ADDR_BROADCAST, P4P_ADDR_BROADCAST);
    t->st.rounds++;
    for (uint32_t i = 0; i < k; i++) {
        p4p_addr to = t->active[t->pick[i]].addr;
        for (uint32_t c = 0; push && c < t->cache_count; c++) {
            const struct centry *e = cache_newest(t, c);
            if (e->pushes < t->cfg.push_rounds) {
                send_payload(t, to, PLUMTREE_PUSH, e);
            }
        }
        if (pull) {
            send_pull(t, to);
        }
    }
    for (uint32_t c = 0; push && c < t->cache_count; c++) {
        struct centry *e = cache_newest(t, c);
        e->pushes = sat_inc(e->pushes);
    }
}

/* ---- API ----------------------------------------------------------------------------------- */

void plumtree_config_default(struct plumtree_config *cfg)
{
    const p4p_time_ns ms = 1000000ull;
    *cfg = (struct plumtree_config){
        .mode = PLUMTREE_MODE_TREE,
        .mtu = 1280,
        .outbox_max = 256,
        .event_max = 256,
        .payload_max = 1024,
        .active_max = 5,
        .passive_max = 30,
        .arwl = 6,
        .prwl = 3,
        .shuffle_ka = 3,
        .shuffle_kp = 4,
        .shuffle_interval_ns = 10000 * ms,
        .join_retry_ns = 2000 * ms,
        .neighbor_timeout_ns = 1000 * ms,
        .neighbor_backoff_ns = 30000 * ms,
        .keepalive_ns = 2000 * ms,
        .dead_ns = 10000 * ms,
        .seen_max = 4096,
        .cache_max = 256,
        .missing_max = 256,
        .ihave_max = 64,
        .ihave_interval_ns = 50 * ms,
        .graft_timeout_ns = 300 * ms,
        .graft_retry_ns = 150 * ms,
        .graft_attempts_max = 8,
        .optimize_threshold = 0,
        .announce_interval_ns = 1000 * ms,
        .announce_window_ns = 5000 * ms,
        .round_ns = 1000 * ms,
        .fanout = 1,
        .push_rounds = 16,
        .digest_max = 32,
    };
}

static bool config_ok(const struct plumtree_config *c)
{
    bool epidemic = c->mode == PLUMTREE_MODE_PUSH || c->mode == PLUMTREE_MODE_PULL ||
                    c->mode == PLUMTREE_MODE_PUSH_PULL;
    return c->mode >= PLUMTREE_MODE_TREE && c->mode <= PLUMTREE_MODE_PUSH_PULL &&
           c->mtu >= PLUMTREE_MTU_MIN && c->mtu <= 65535 && c->outbox_max >= 1 &&
           c->event_max >= 1 && c->payload_max >= 1 &&
           c->payload_max + PLUMTREE_OVERHEAD <= c->mtu && c->active_max >= 1 &&
           c->active_max <= 1024 && c->passive_max >= 1 && c->passive_max <= 65536 &&
           c->arwl >= 1 && c->arwl <= PLUMTREE_TTL_MAX && c->prwl <= c->arwl &&
           1 + (uint64_t)c->shuffle_ka + c->shuffle_kp <= PLUMTREE_LIST_MAX &&
           c->join_retry_ns > 0 && c->neighbor_timeout_ns > 0 &&
           (c->dead_ns == 0 || (c->keepalive_ns > 0 && c->keepalive_ns < c->dead_ns)) &&
           c->seen_max >= 1 && c->seen_max <= (1u << 28) && c->cache_max >= 1 &&
           c->cache_max <= (1u << 20) && c->missing_max >= 1 && c->missing_max <= (1u << 20) &&
           c->ihave_max >= 1 && c->ihave_max <= (1u << 20) && c->graft_timeout_ns > 0 &&
           c->graft_retry_ns > 0 && c->digest_max >= 1 && c->digest_max <= PLUMTREE_BATCH_MAX &&
           (!epidemic || (c->round_ns > 0 && c->fanout >= 1));
}

static void *alloc(struct plumtree *t, size_t n, size_t size)
{
    t->memory += n * size;
    return calloc(n, size);
}

int plumtree_create(const struct plumtree_config *cfg, const struct plumtree_env *env,
                    p4p_addr self, plumtree **out)
{
    if (cfg == NULL || env == NULL || env->random == NULL || out == NULL ||
        self == P4P_ADDR_BROADCAST || !config_ok(cfg)) {
        return P4P_EINVAL;
    }
    struct plumtree *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return P4P_ENOMEM;
    }
    t->memory = sizeof(*t);
    t->cfg = *cfg;
    t->env = *env;
    t->self = self;
    uint32_t slots = 2;
    while (slots < 2 * cfg->seen_max) {
        slots *= 2;
    }
    t->seen_mask = slots - 1;
    uint32_t pick = cfg->active_max > cfg->passive_max ? cfg->active_max : cfg->passive_max;
    t->active = alloc(t, cfg->active_max, sizeof(*t->active));
    t->passive = alloc(t, cfg->passive_max, sizeof(*t->passive));
    t->pick = alloc(t, pick, sizeof(*t->pick));
    t->seen_ring = alloc(t, cfg->seen_max, sizeof(*t->seen_ring));
    t->seen_slots = alloc(t, slots, sizeof(*t->seen_slots));
    t->cache = alloc(t, cfg->cache_max, sizeof(*t->cache));
    t->cache_data = alloc(t, cfg->cache_max, cfg->payload_max);
    t->missing = alloc(t, cfg->missing_max, sizeof(*t->missing));
    t->lazy = alloc(t, cfg->ihave_max, sizeof(*t->lazy));
    if (dgram_ring_init(&t->out, cfg->outbox_max, cfg->mtu) == 0) {
        t->memory += dgram_ring_memory(&t->out);
    }
    t->events = alloc(t, cfg->event_max, sizeof(*t->events));
    if (!t->active || !t->passive || !t->pick || !t->seen_ring || !t->seen_slots || !t->cache ||
        !t->cache_data || !t->missing || !t->lazy || !t->out.buf || !t->events) {
        plumtree_destroy(t);
        return P4P_ENOMEM;
    }
    t->contact = P4P_ADDR_BROADCAST;
    t->join_at = t->shuffle_at = t->round_at = t->ihave_at = t->announce_at = P4P_TIME_NONE;
    *out = t;
    return 0;
}

void plumtree_destroy(plumtree *t)
{
    if (t == NULL) {
        return;
    }
    free(t->active);
    free(t->passive);
    free(t->pick);
    free(t->seen_ring);
    free(t->seen_slots);
    free(t->cache);
    free(t->cache_data);
    free(t->missing);
    free(t->lazy);
    dgram_ring_free(&t->out, 0);
    free(t->events);
    free(t);
}

/* Every input call notes the time; the first starts the periodic timers (shuffles at a random
 * phase, rounds on multiples of round_ns). */
static void start(struct plumtree *t, p4p_time_ns now)
{
    t->now = now;
    if (t->started) {
        return;
    }
    t->started = true;
    if (t->cfg.shuffle_interval_ns) {
        t->shuffle_at = now + random_below(t, t->cfg.shuffle_interval_ns);
    }
    if (is_epidemic(t)) {
        t->round_at = (now / t->cfg.round_ns + 1) * t->cfg.round_ns;
    }
    if (t->cfg.mode == PLUMTREE_MODE_TREE && t->cfg.announce_interval_ns) {
        t->announce_at = now + random_below(t, t->cfg.announce_interval_ns);
    }
}

int plumtree_join(plumtree *t, p4p_time_ns now, p4p_addr contact)
{
    if (contact == t->self || contact == P4P_ADDR_BROADCAST) {
        return P4P_EINVAL;
    }
    start(t, now);
    t->contact = contact;
    send_join(t, now);
    repair(t, now);
    return 0;
}

int plumtree_broadcast(plumtree *t, p4p_time_ns now, const uint8_t id[PLUMTREE_ID_LEN],
                       const uint8_t *payload, size_t len)
{
    if (id == NULL || (payload == NULL && len > 0)) {
        return P4P_EINVAL;
    }
    if (len > t->cfg.payload_max) {
        return P4P_ETOOBIG;
    }
    start(t, now);
    if (seen_has(t, id)) {
        return P4P_EDUPLICATE;
    }
    seen_add(t, id);
    struct centry *e = cache_put(t, id, 0, P4P_ADDR_BROADCAST, payload, len);
    t->st.broadcasts++;
    if (!is_epidemic(t)) {
        tree_forward(t, now, e);
    }
    repair(t, now);
    return 0;
}

static void dispatch(struct plumtree *t, p4p_time_ns now, p4p_addr from, const struct msg *m)
{
    switch (m->type) {
    case PLUMTREE_JOIN:
        on_join(t, now, from);
        break;
    case PLUMTREE_FORWARD_JOIN:
        on_forward_join(t, now, from, m);
        break;
    case PLUMTREE_NEIGHBOR:
        on_neighbor(t, now, from, m->flag);
        break;
    case PLUMTREE_NEIGHBOR_REPLY:
        on_neighbor_reply(t, now, from, m->flag);
        break;
    case PLUMTREE_DISCONNECT:
        on_disconnect(t, now, from);
        break;
    case PLUMTREE_SHUFFLE:
        on_shuffle(t, now, from, m);
        break;
    case PLUMTREE_SHUFFLE_REPLY:
        t->st.shuffle_replies_in++;
        merge_sample(t, m->list, m->n, t->sent_sample, t->sent_count);
        break;
    case PLUMTREE_KEEPALIVE:
        link_check(t, now, from);
        break;
    case PLUMTREE_GOSSIP:
    case PLUMTREE_PUSH:
        on_gossip(t, now, from, m);
        break;
    case PLUMTREE_IHAVE:
    case PLUMTREE_ANNOUNCE:
        on_ihave(t, now, from, m);
        break;
    case PLUMTREE_GRAFT:
        on_graft(t, now, from, m);
        break;
    case PLUMTREE_PRUNE:
        on_prune(t, now, from);
        break;
    case PLUMTREE_PULL:
        on_pull(t, now, from, m);
        break;
    default:
        break; /* decode() let no other type through */
    }
}

int plumtree_recv(plumtree *t, p4p_time_ns now, p4p_addr from, const uint8_t *data, size_t len)
{
    struct msg m;
    t->st.frames_in++;
    t->st.bytes_in += len;
    if (from == t->self || from == P4P_ADDR_BROADCAST) {
        t->st.dropped_malformed++;
        return P4P_EINVAL;
    }
    if (data == NULL) {
        t->st.dropped_malformed++;
        return P4P_EMALFORMED;
    }
    int rc = decode(t, data, len, &m);
    if (rc == P4P_EVERSION) {
        t->st.dropped_version++;
        return rc;
    }
    if (rc != 0) {
        t->st.dropped_malformed++;
        return rc;
    }
    start(t, now);
    int i = active_index(t, from);
    if (i >= 0) {
        t->active[i].last_rx = now; /* any frame proves the neighbour alive */
    }
    dispatch(t, now, from, &m);
    repair(t, now);
    return 0;
}

int plumtree_peer_down(plumtree *t, p4p_time_ns now, p4p_addr peer)
{
    start(t, now);
    int i = active_index(t, peer);
    if (i >= 0) {
        t->st.peers_failed++;
        active_remove_at(t, (uint32_t)i, now, false);
    }
    passive_remove(t, peer);
    i = pending_index(t, peer);
    if (i >= 0) {
        pending_remove_at(t, (uint32_t)i);
    }
    repair(t, now);
    return 0;
}

/* Silent peers fail; quiet links get a KEEPALIVE. */
static void liveness_tick(struct plumtree *t, p4p_time_ns now)
{
    for (uint32_t i = 0; i < t->active_count;) {
        struct apeer *p = &t->active[i];
        if (t->cfg.dead_ns && now >= p->last_rx + t->cfg.dead_ns) {
            t->st.peers_failed++;
            active_remove_at(t, i, now, false);
            continue;
        }
        if (t->cfg.keepalive_ns && now >= p->last_tx + t->cfg.keepalive_ns) {
            send_empty(t, p->addr, PLUMTREE_KEEPALIVE);
            t->st.keepalives_sent++;
            p->last_tx = now; /* also when the outbox was full: try again next period */
        }
        i++;
    }
}

int plumtree_timeout(plumtree *t, p4p_time_ns now)
{
    start(t, now);
    if (t->active_count == 0 && t->contact != P4P_ADDR_BROADCAST && now >= t->join_at) {
        send_join(t, now);
    }
    liveness_tick(t, now);
    for (uint32_t i = 0; i < t->pending_count;) {
        if (t->pending[i].deadline <= now) {
            t->st.neighbor_timeouts++;
            passive_remove(t, t->pending[i].addr);
            pending_remove_at(t, i);
        } else {
            i++;
        }
    }
    missing_tick(t, now);
    if (t->lazy_count > 0 && now >= t->ihave_at) {
        ihave_flush(t);
    }
    if (now >= t->shuffle_at) {
        do_shuffle(t);
        schedule_shuffle(t, now);
    }
    if (now >= t->round_at) {
        do_round(t);
        t->round_at = (now / t->cfg.round_ns + 1) * t->cfg.round_ns;
    }
    if (now >= t->announce_at) {
        do_announce(t, now);
        t->announce_at = now + t->cfg.announce_interval_ns;
    }
    repair(t, now);
    return 0;
}

p4p_time_ns plumtree_deadline(const plumtree *t)
{
    p4p_time_ns d = P4P_TIME_NONE;
    if (!t->started) {
        return d;
    }
    if (t->active_count == 0 && t->contact != P4P_ADDR_BROADCAST) {
        d = tmin(d, t->join_at);
    }
    for (uint32_t i = 0; i < t->active_count; i++) {
        if (t->cfg.keepalive_ns) {
            d = tmin(d, t->active[i].last_tx + t->cfg.keepalive_ns);
        }
        if (t->cfg.dead_ns) {
            d = tmin(d, t->active[i].last_rx + t->cfg.dead_ns);
        }
    }
    for (uint32_t i = 0; i < t->pending_count; i++) {
        d = tmin(d, t->pending[i].deadline);
    }
    for (uint32_t i = 0; i < t->missing_count; i++) {
        d = tmin(d, t->missing[i].deadline);
    }
    if (t->lazy_count > 0) {
        d = tmin(d, t->ihave_at);
    }
    d = tmin(d, tmin(t->shuffle_at, tmin(t->round_at, t->announce_at)));
    if (may_request(t)) {
        for (uint32_t i = 0; i < t->passive_count; i++) {
            if (pending_index(t, t->passive[i].addr) < 0) {
                d = tmin(d, t->passive[i].retry_at);
            }
        }
    }
    return d;
}

int plumtree_poll(plumtree *t, struct plumtree_frame *out)
{
    return dgram_ring_pop(&t->out, &out->peer, &out->data, &out->len);
}

int plumtree_poll_event(plumtree *t, struct plumtree_event *out)
{
    if (t->ecount == 0) {
        return P4P_EAGAIN;
    }
    *out = t->events[t->ehead];
    t->ehead = (t->ehead + 1) % t->cfg.event_max;
    t->ecount--;
    return 0;
}

void plumtree_stats(const plumtree *t, struct plumtree_stats *out)
{
    *out = t->st;
}

uint32_t plumtree_active_view(const plumtree *t, p4p_addr *out, uint32_t cap)
{
    for (uint32_t i = 0; i < t->active_count && i < cap; i++) {
        out[i] = t->active[i].addr;
    }
    return t->active_count;
}

uint32_t plumtree_passive_view(const plumtree *t, p4p_addr *out, uint32_t cap)
{
    for (uint32_t i = 0; i < t->passive_count && i < cap; i++) {
        out[i] = t->passive[i].addr;
    }
    return t->passive_count;
}

int plumtree_is_eager(const plumtree *t, p4p_addr peer)
{
    int i = active_index(t, peer);
    if (i < 0) {
        return P4P_ENOTFOUND;
    }
    return t->active[i].eager ? 1 : 0;
}

uint32_t plumtree_seen_count(const plumtree *t)
{
    return t->seen_count;
}

bool plumtree_has_seen(const plumtree *t, const uint8_t id[PLUMTREE_ID_LEN])
{
    return seen_has(t, id);
}

size_t plumtree_memory(const plumtree *t)
{
    return t->memory;
}
