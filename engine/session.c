/*
 * session.c — see session.h for the protocol; this file is its state machine.
 *
 * Each slot holds one peer's session:
 *
 *   cur    the key set in use (sending and receiving)
 *   next   IK responder only: keys of a handshake not yet confirmed by the initiator
 *   hs     the handshake in progress, if any, and our last handshake message (hs_out), kept
 *          for retransmission and for answering duplicates
 *
 * A handshake that completes replaces cur; until then cur keeps working. Every state change
 * ends with schedule(), which sets the slot's next timer; session_timeout() runs due slots.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dgram_ring.h"
#include "probe.h"

#define WIN_WORDS      32 /* 2048-bit replay bitmap */
#define EPOCH_SKIP_MAX 4  /* epochs a receiver may jump forward at once */
#define HS_OUT_MAX     128
#define RETRY_GROWTH   8 /* the retransmission delay doubles up to this multiple */
#define COUNTER_LIMIT  (UINT64_C(1) << 62) /* far below the reserved nonce */

static const char prologue_text[] = "p4p-session/1";

enum hs_phase {
    HS_NONE = 0,
    HS_I_WAIT2,   /* initiator: HS1 sent, waiting for HS2 */
    HS_I_CONFIRM, /* XX initiator: HS3 sent, keys in cur, waiting for any message under them */
    HS_R_WAIT3,   /* XX responder: HS2 sent, waiting for HS3 */
    HS_R_CONFIRM, /* IK responder: HS2 sent, keys in next, waiting for a message under them */
};

struct replay {
    uint64_t next; /* highest accepted counter + 1; 0 when none */
    uint64_t bits[WIN_WORDS];
};

struct keyset {
    bool valid, has_rx_prev;
    uint8_t tag, tx_epoch, rx_epoch;
    uint8_t rid[8];
    struct noise_cipher tx, rx, rx_prev;
    uint64_t tx_epoch_msgs;
    p4p_time_ns tx_epoch_start;
    struct replay win;
};

struct session {
    bool used, bound, resuming, has_rs, has_in_digest, has_hs1_digest, has_hs_start;
    p4p_addr addr;
    uint32_t free_next;
    uint8_t rs[32], next_rs[32];
    struct keyset cur, next;
    enum hs_phase hs;
    enum noise_pattern hs_pattern, cur_pattern;
    bool cur_is_initiator;
    struct noise_handshake hs_state;
    uint8_t hs_out[HS_OUT_MAX];
    size_t hs_out_len;
    uint8_t in_digest[16];  /* the last handshake message we accepted */
    uint8_t hs1_digest[16]; /* the last HS1 we answered */
    uint32_t retries;
    p4p_time_ns retry_at, retry_ivl, hs_expire_at, hs_start;
    p4p_time_ns last_send, last_recv, timer_at;
};

struct session_table {
    struct session_config cfg;
    struct session_env env;
    uint8_t s_priv[32], s_pub[32];
    struct session *slots;
    uint32_t used_count, free_head; /* free list through free_next; UINT32_MAX ends it */
    uint32_t *index;                /* slot + 1 by address hash; 0 = empty */
    uint32_t index_mask;
    struct dgram_ring out;
    struct session_event *events;
    uint32_t ehead, ecount;
    struct session_stats st;
};

static inline p4p_time_ns tmin(p4p_time_ns a, p4p_time_ns b)
{
    return a < b ? a : b;
}

static inline uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* ---- Configuration, keys ------------------------------------------------------------------- */

void session_config_default(struct session_config *cfg)
{
    *cfg = (struct session_config){
        .session_max = 256,
        .mtu = 1280,
        .outbox_max = 256,
        .event_max = 256,
        .hash = NOISE_HASH_BLAKE2B,
        .hs_retry_ns = 500000000ull,
        .hs_retries = 6,
        .keepalive_ns = 10000000000ull,
        .dead_ns = 25000000000ull,
        .idle_timeout_ns = 60000000000ull,
        .rekey_messages = UINT64_C(1) << 20,
        .rekey_ns = 120000000000ull,
        .rehandshake_on_unknown = true,
    };
}

int session_x25519_from_ed25519_sk(const uint8_t ed_sk[64], uint8_t x_priv[32], uint8_t x_pub[32])
{
    uint8_t priv[32], pub[32];

    if (crypto_sign_ed25519_sk_to_curve25519(priv, ed_sk) != 0 ||
        crypto_sign_ed25519_pk_to_curve25519(pub, ed_sk + 32) != 0) {
        sodium_memzero(priv, sizeof(priv));
        return P4P_EINVAL;
    }
    memcpy(x_priv, priv, 32);
    memcpy(x_pub, pub, 32);
    sodium_memzero(priv, sizeof(priv));
    return 0;
}

int session_x25519_from_ed25519_pk(const uint8_t ed_pk[32], uint8_t x_pub[32])
{
    return crypto_sign_ed25519_pk_to_curve25519(x_pub, ed_pk) == 0 ? 0 : P4P_EINVAL;
}

/* ---- Replay window (RFC 6479) -------------------------------------------------------------- */

enum { WIN_OK = 0, WIN_REPLAY = 1, WIN_TOO_OLD = 2 };

static int replay_check(const struct replay *w, uint64_t c)
{
    if (c >= w->next) {
        return WIN_OK;
    }
    if (w->next - 1 - c >= SESSION_REPLAY_WINDOW) {
        return WIN_TOO_OLD;
    }
    return (w->bits[(c / 64) % WIN_WORDS] >> (c % 64)) & 1 ? WIN_REPLAY : WIN_OK;
}

static void replay_update(struct replay *w, uint64_t c)
{
    if (c >= w->next) {
        if (w->next > 0) {
            /* Clear the words the window slides over (at most all of them). */
            uint64_t top_word = (w->next - 1) / 64, diff = c / 64 - top_word;
            for (uint64_t i = 1; i <= diff && i <= WIN_WORDS; i++) {
                w->bits[(top_word + i) % WIN_WORDS] = 0;
            }
        }
        w->next = c + 1;
    }
    w->bits[(c / 64) % WIN_WORDS] |= UINT64_C(1) << (c % 64);
}

/* ---- Address index (linear probing, backward-shift deletion) ------------------------------- */

static uint32_t addr_home(const struct session_table *t, p4p_addr a)
{
    return (uint32_t)((a * 2654435761u) ^ (a >> 16)) & t->index_mask;
}

static struct session *find(const struct session_table *t, p4p_addr a)
{
    for (uint32_t i = addr_home(t, a);; i = (i + 1) & t->index_mask) {
        uint32_t v = t->index[i];
        if (v == 0) {
            return NULL;
        }
        if (t->slots[v - 1].addr == a) {
            return &t->slots[v - 1];
        }
    }
}

static void index_insert(struct session_table *t, struct session *s)
{
    uint32_t i = addr_home(t, s->addr);
    while (t->index[i] != 0) {
        i = (i + 1) & t->index_mask;
    }
    t->index[i] = (uint32_t)(s - t->slots) + 1;
    s->bound = true;
}

static void index_remove(struct session_table *t, struct session *s)
{
    uint32_t i = addr_home(t, s->addr), want = (uint32_t)(s - t->slots) + 1;

    while (t->index[i] != want) {
        i = (i + 1) & t->index_mask;
    }
    t->index[i] = 0;
    for (uint32_t j = (i + 1) & t->index_mask; t->index[j] != 0; j = (j + 1) & t->index_mask) {
        uint32_t home = addr_home(t, t->slots[t->index[j] - 1].addr);
        if (!probe_stays(i, j, home)) {
            t->index[i] = t->index[j];
            t->index[j] = 0;
            i = j;
        }
    }
    s->bound = false;
}

/* ---- Table --------------------------------------------------------------------------------- */

int session_table_create(const struct session_config *cfg, const struct session_env *env,
                         const uint8_t s_priv[32], session_table **out)
{
    if (cfg->session_max == 0 || cfg->session_max > (UINT32_MAX >> 3) ||
        cfg->mtu < SESSION_MTU_MIN || cfg->mtu > NOISE_MSG_MAX || cfg->outbox_max == 0 ||
        cfg->event_max == 0 || noise_hash_len(cfg->hash) == 0 || cfg->hs_retry_ns == 0 ||
        cfg->keepalive_ns == 0 || cfg->dead_ns == 0 || cfg->idle_timeout_ns == 0 ||
        cfg->rekey_ns == 0 || cfg->rekey_messages == 0 || env->random == NULL || s_priv == NULL) {
        return P4P_EINVAL;
    }
    struct session_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return P4P_ENOMEM;
    }
    uint32_t index_cap = 1;
    while (index_cap < 2 * cfg->session_max) {
        index_cap <<= 1;
    }
    t->cfg = *cfg;
    t->env = *env;
    t->index_mask = index_cap - 1;
    t->slots = calloc(cfg->session_max, sizeof(*t->slots));
    t->index = calloc(index_cap, sizeof(*t->index));
    t->events = calloc(cfg->event_max, sizeof(*t->events));
    if (t->slots == NULL || t->index == NULL || t->events == NULL ||
        dgram_ring_init(&t->out, cfg->outbox_max, cfg->mtu) != 0) {
        session_table_destroy(t);
        return P4P_ENOMEM;
    }
    for (uint32_t i = 0; i < cfg->session_max; i++) {
        t->slots[i].free_next = i + 1 < cfg->session_max ? i + 1 : UINT32_MAX;
    }
    memcpy(t->s_priv, s_priv, 32);
    crypto_scalarmult_base(t->s_pub, t->s_priv);
    *out = t;
    return 0;
}

void session_table_destroy(session_table *t)
{
    if (t == NULL) {
        return;
    }
    if (t->slots != NULL) {
        sodium_memzero(t->slots, (size_t)t->cfg.session_max * sizeof(*t->slots));
    }
    dgram_ring_free(&t->out, 1);
    free(t->slots);
    free(t->index);
    free(t->events);
    sodium_memzero(t, sizeof(*t));
    free(t);
}

void session_local_static(const session_table *t, uint8_t out[32])
{
    memcpy(out, t->s_pub, 32);
}

static struct session *slot_alloc(struct session_table *t, p4p_addr addr)
{
    if (t->free_head == UINT32_MAX || t->used_count >= t->cfg.session_max) {
        return NULL;
    }
    struct session *s = &t->slots[t->free_head];
    t->free_head = s->free_next;
    memset(s, 0, sizeof(*s));
    s->used = true;
    s->addr = addr;
    s->timer_at = P4P_TIME_NONE;
    index_insert(t, s);
    t->used_count++;
    return s;
}

static void slot_free(struct session_table *t, struct session *s)
{
    if (s->bound) {
        index_remove(t, s);
    }
    sodium_memzero(s, sizeof(*s));
    s->free_next = t->free_head;
    t->free_head = (uint32_t)(s - t->slots);
    t->used_count--;
}

/* ---- Outbox and events --------------------------------------------------------------------- */

/* The next free outbox slot (mtu bytes), or NULL when the outbox is full (counted). */
static uint8_t *out_reserve(struct session_table *t)
{
    uint8_t *p = dgram_ring_reserve(&t->out);
    if (p == NULL) {
        t->st.dropped_outbox_full++;
    }
    return p;
}

static void out_commit(struct session_table *t, p4p_addr peer, size_t len)
{
    dgram_ring_commit(&t->out, peer, len);
    t->st.datagrams_out++;
}

static int out_push(struct session_table *t, p4p_addr peer, const uint8_t *data, size_t len)
{
    uint8_t *p = out_reserve(t);
    if (p == NULL) {
        return P4P_EFULL;
    }
    memcpy(p, data, len);
    out_commit(t, peer, len);
    return 0;
}

int session_poll(session_table *t, struct session_datagram *out)
{
    return dgram_ring_pop(&t->out, &out->peer, &out->data, &out->len);
}

static void event_push(struct session_table *t, const struct session *s,
                       enum session_event_kind kind, enum session_close_reason reason)
{
    if (t->ecount >= t->cfg.event_max) {
        t->st.dropped_events++;
        return;
    }
    struct session_event *e = &t->events[(t->ehead + t->ecount) % t->cfg.event_max];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->peer = s->addr;
    e->reason = reason;
    e->is_initiator = s->cur_is_initiator;
    e->pattern = s->cur_pattern;
    if (s->has_rs) {
        memcpy(e->remote_static, s->rs, 32);
    }
    t->ecount++;
}

int session_poll_event(session_table *t, struct session_event *out)
{
    if (t->ecount == 0) {
        return P4P_EAGAIN;
    }
    *out = t->events[t->ehead];
    t->ehead = (t->ehead + 1) % t->cfg.event_max;
    t->ecount--;
    return 0;
}

/* ---- Timers -------------------------------------------------------------------------------- */

/* How long a responder keeps a half-finished handshake: the initiator's whole retry span. */
static p4p_time_ns hs_span(const struct session_table *t)
{
    p4p_time_ns span = 0, ivl = t->cfg.hs_retry_ns;
    for (uint32_t i = 0; i <= t->cfg.hs_retries; i++) {
        span += ivl;
        ivl = tmin(ivl * 2, t->cfg.hs_retry_ns * RETRY_GROWTH);
    }
    return span + t->cfg.hs_retry_ns;
}

/* When silence means the peer lost its state; not sooner than one handshake span after the
 * last handshake we started, so that recovery attempts are spaced out. */
static p4p_time_ns dead_at(const struct session_table *t, const struct session *s)
{
    p4p_time_ns at = s->last_recv + t->cfg.dead_ns;
    if (s->has_hs_start && s->hs_start + hs_span(t) > at) {
        at = s->hs_start + hs_span(t);
    }
    return at;
}

static void schedule(const struct session_table *t, struct session *s)
{
    p4p_time_ns at = P4P_TIME_NONE;

    if (s->hs == HS_I_WAIT2 || s->hs == HS_I_CONFIRM || s->resuming) {
        at = tmin(at, s->retry_at);
    }
    if (s->hs == HS_R_WAIT3 || s->hs == HS_R_CONFIRM) {
        at = tmin(at, s->hs_expire_at);
    }
    if (s->cur.valid) {
        at = tmin(at, s->last_recv + t->cfg.idle_timeout_ns);
        if (s->bound && !s->resuming) {
            at = tmin(at, s->last_send + t->cfg.keepalive_ns);
            if (s->hs == HS_NONE) {
                at = tmin(at, dead_at(t, s));
            }
        }
    }
    s->timer_at = at;
}

p4p_time_ns session_deadline(const session_table *t)
{
    p4p_time_ns at = P4P_TIME_NONE;
    for (uint32_t i = 0; i < t->cfg.session_max; i++) {
        if (t->slots[i].used) {
            at = tmin(at, t->slots[i].timer_at);
        }
    }
    return at;
}

/* ---- Key sets ------------------------------------------------------------------------------ */

static void keys_from_handshake(struct keyset *k, struct noise_handshake *hs, p4p_time_ns now)
{
    static const uint8_t label[16] = "p4p-session-keys";
    uint8_t h[NOISE_HASHLEN_MAX], d[16];
    size_t hl = noise_handshake_hash(hs, h);

    sodium_memzero(k, sizeof(*k));
    crypto_generichash(d, sizeof(d), h, hl, label, sizeof(label));
    noise_handshake_split(hs, &k->tx, &k->rx);
    noise_handshake_destroy(hs);
    memcpy(k->rid, d, 8);
    k->tag = d[8];
    k->tx_epoch_start = now;
    k->valid = true;
}

/* Makes a completed handshake's keys current. */
static void install_keys(struct session_table *t, struct session *s, p4p_time_ns now,
                         struct keyset *k, const uint8_t rs[32], bool initiator,
                         enum noise_pattern pattern)
{
    if (k != &s->cur) {
        sodium_memzero(&s->cur, sizeof(s->cur));
        s->cur = *k;
        sodium_memzero(k, sizeof(*k));
    }
    memcpy(s->rs, rs, 32);
    s->has_rs = true;
    s->cur_is_initiator = initiator;
    s->cur_pattern = pattern;
    s->last_recv = now;
    s->last_send = now;
    s->resuming = false;
    t->st.hs_completed++;
    event_push(t, s, SESSION_EVENT_ESTABLISHED, 0);
}

static void close_session(struct session_table *t, struct session *s,
                          enum session_close_reason reason)
{
    event_push(t, s, SESSION_EVENT_CLOSED, reason);
    slot_free(t, s);
}

/* Abandons the handshake in progress; a session without keys goes with it. Returns 1 when
 * the session was freed. */
static int drop_handshake(struct session_table *t, struct session *s,
                          enum session_close_reason reason, bool tell)
{
    noise_handshake_destroy(&s->hs_state);
    sodium_memzero(&s->next, sizeof(s->next));
    s->hs = HS_NONE;
    if (!s->cur.valid) {
        if (tell) {
            close_session(t, s, reason);
        } else {
            slot_free(t, s);
        }
        return 1;
    }
    return 0;
}

/* ---- Sending ------------------------------------------------------------------------------- */

static void maybe_rekey_tx(struct session_table *t, struct keyset *k, p4p_time_ns now)
{
    bool by_time = now >= k->tx_epoch_start && now - k->tx_epoch_start >= t->cfg.rekey_ns;
    if (k->tx_epoch_msgs >= t->cfg.rekey_messages || by_time) {
        noise_cipher_rekey(&k->tx);
        k->tx_epoch++;
        k->tx_epoch_msgs = 0;
        k->tx_epoch_start = now;
        t->st.rekeys_tx++;
    }
}

/* Encrypts one DATA / KEEPALIVE / RESUME message under cur and queues it. */
static int seal(struct session_table *t, struct session *s, p4p_time_ns now, uint8_t type,
                const uint8_t *payload, size_t len)
{
    struct keyset *k = &s->cur;
    size_t hdr = type == SESSION_RESUME ? SESSION_RESUME_HEADER_LEN : SESSION_HEADER_LEN;
    size_t clen;

    if (!k->valid || !s->bound) {
        return P4P_EAGAIN;
    }
    if (len > t->cfg.mtu - hdr - NOISE_TAGLEN) {
        return P4P_ETOOBIG;
    }
    if (k->tx.n >= COUNTER_LIMIT) {
        return P4P_EFULL; /* never reached in practice: rekey and handshakes come first */
    }
    uint8_t *p = out_reserve(t);
    if (p == NULL) {
        return P4P_EFULL;
    }
    maybe_rekey_tx(t, k, now);
    p[0] = (uint8_t)(SESSION_VERSION << 4 | type);
    p[1] = k->tag;
    p[2] = k->tx_epoch;
    if (type == SESSION_RESUME) {
        memcpy(p + 3, k->rid, 8);
    }
    put_le64(p + hdr - 8, k->tx.n);
    int rc = noise_cipher_encrypt_at(&k->tx, k->tx.n, p, hdr, payload, len, p + hdr,
                                     t->cfg.mtu - hdr, &clen);
    if (rc != 0) {
        return rc;
    }
    k->tx.n++;
    k->tx_epoch_msgs++;
    out_commit(t, s->addr, hdr + clen);
    s->last_send = now;
    t->st.overhead_bytes += hdr + NOISE_TAGLEN;
    if (type == SESSION_KEEPALIVE) {
        t->st.keepalives_sent++;
    } else if (type == SESSION_DATA || len > 0) {
        t->st.data_sent++;
    }
    return 0;
}

int session_send(session_table *t, p4p_time_ns now, p4p_addr addr, const uint8_t *payload,
                 size_t len)
{
    struct session *s = find(t, addr);

    if (s == NULL) {
        return P4P_ENOTFOUND;
    }
    if (payload == NULL && len > 0) {
        return P4P_EINVAL;
    }
    int rc = seal(t, s, now, s->resuming ? SESSION_RESUME : SESSION_DATA, payload, len);
    schedule(t, s);
    return rc;
}

/* ---- Handshakes ---------------------------------------------------------------------------- */

static uint8_t suite_byte(const struct session_table *t, enum noise_pattern p)
{
    return (uint8_t)((unsigned)p << 4 | (unsigned)t->cfg.hash);
}

static int hs_init(struct session_table *t, struct noise_handshake *hs, enum noise_pattern p,
                   bool initiator, const uint8_t *rs)
{
    uint8_t prologue[sizeof(prologue_text)];
    struct noise_handshake_config c = {0};

    memcpy(prologue, prologue_text, sizeof(prologue_text) - 1);
    prologue[sizeof(prologue_text) - 1] = suite_byte(t, p);
    c.pattern = p;
    c.hash = t->cfg.hash;
    c.is_initiator = initiator;
    c.prologue = prologue;
    c.prologue_len = sizeof(prologue);
    c.s_priv = t->s_priv;
    c.rs = rs;
    c.random = t->env.random;
    c.random_ctx = t->env.ctx;
    return noise_handshake_init(hs, &c);
}

/* Writes the next handshake message of s into hs_out, with its two header bytes. */
static int hs_write(struct session_table *t, struct session *s, uint8_t type)
{
    size_t n;
    int rc = noise_handshake_write(&s->hs_state, NULL, 0, s->hs_out + 2, sizeof(s->hs_out) - 2, &n);
    if (rc != 0) {
        return rc;
    }
    s->hs_out[0] = (uint8_t)(SESSION_VERSION << 4 | type);
    s->hs_out[1] = suite_byte(t, s->hs_pattern);
    s->hs_out_len = n + 2;
    return 0;
}

static void retry_start(struct session_table *t, struct session *s, p4p_time_ns now)
{
    s->retries = 0;
    s->retry_ivl = t->cfg.hs_retry_ns;
    s->retry_at = now + s->retry_ivl;
}

/* Starts a handshake as initiator: IK with rs (or a key env.lookup_key knows), else XX. */
static int start_handshake(struct session_table *t, struct session *s, p4p_time_ns now,
                           const uint8_t *rs)
{
    uint8_t known[32];

    if (rs == NULL && t->env.lookup_key != NULL && t->env.lookup_key(t->env.ctx, s->addr, known)) {
        rs = known;
    }
    noise_handshake_destroy(&s->hs_state);
    s->hs_pattern = rs != NULL ? NOISE_PATTERN_IK : NOISE_PATTERN_XX;
    int rc = hs_init(t, &s->hs_state, s->hs_pattern, true, rs);
    if (rc == 0) {
        rc = hs_write(t, s, SESSION_HS1);
    }
    if (rc != 0) {
        noise_handshake_destroy(&s->hs_state);
        return rc;
    }
    s->hs = HS_I_WAIT2;
    s->resuming = false;
    s->hs_start = now;
    s->has_hs_start = true;
    retry_start(t, s, now);
    t->st.hs_started++;
    out_push(t, s->addr, s->hs_out, s->hs_out_len);
    schedule(t, s);
    return 0;
}

int session_connect(session_table *t, p4p_time_ns now, p4p_addr addr, const uint8_t *remote_static)
{
    if (find(t, addr) != NULL) {
        return P4P_EDUPLICATE;
    }
    struct session *s = slot_alloc(t, addr);
    if (s == NULL) {
        t->st.fail_table_full++;
        return P4P_EFULL;
    }
    int rc = start_handshake(t, s, now, remote_static);
    if (rc != 0) {
        slot_free(t, s);
    }
    return rc;
}

/* The peer's key as the trust hook sees it: nonzero to go on. */
static int accepted(struct session_table *t, p4p_addr addr, const uint8_t rs[32])
{
    if (t->env.accept_key == NULL || t->env.accept_key(t->env.ctx, addr, rs)) {
        return 1;
    }
    t->st.fail_refused++;
    t->st.hs_failed++;
    return 0;
}

static int count_read_failure(struct session_table *t, int rc)
{
    if (rc == P4P_EBADSIG) {
        t->st.fail_bad_mac++;
    } else {
        t->st.fail_malformed++;
    }
    return rc;
}

/* Recovery: a handshake to addr, at most one per hs_retry_ns per address. */
static void maybe_recover(struct session_table *t, p4p_time_ns now, p4p_addr addr,
                          struct session *s)
{
    if (!t->cfg.rehandshake_on_unknown) {
        return;
    }
    if (s == NULL) {
        s = slot_alloc(t, addr);
        if (s == NULL) {
            t->st.fail_table_full++;
            return;
        }
        if (start_handshake(t, s, now, NULL) != 0) {
            slot_free(t, s);
            return;
        }
        t->st.rehandshakes++;
        return;
    }
    if (s->hs != HS_NONE || s->resuming ||
        (s->has_hs_start && now - s->hs_start < t->cfg.hs_retry_ns)) {
        return;
    }
    if (start_handshake(t, s, now, s->has_rs ? s->rs : NULL) == 0) {
        t->st.rehandshakes++;
    }
}

/* The responder's side of HS1, into a fresh HandshakeState; nothing is kept on failure. */
static int respond_hs1(struct session_table *t, struct noise_handshake *hs, enum noise_pattern p,
                       p4p_addr addr, const uint8_t *msg, size_t len)
{
    uint8_t payload[64];
    size_t plen;

    int rc = hs_init(t, hs, p, false, NULL);
    if (rc != 0) {
        return rc;
    }
    rc = noise_handshake_read(hs, msg, len, payload, sizeof(payload), &plen);
    if (rc == P4P_EBADSIG && p == NOISE_PATTERN_IK) {
        /* IK's first message authenticates with the responder's static key: failing here
         * means the initiator holds a wrong key for us (or the message was altered). */
        t->st.fail_wrong_key++;
        t->st.hs_failed++;
    } else if (rc != 0) {
        count_read_failure(t, rc);
    } else if (p == NOISE_PATTERN_IK && !accepted(t, addr, noise_handshake_remote_static(hs))) {
        rc = P4P_EUNKNOWN_PEER;
    }
    if (rc != 0) {
        noise_handshake_destroy(hs);
    }
    return rc;
}

/* HS1 while s has a handshake of its own. Returns 1 when the message is fully handled. */
static int hs1_conflict(struct session_table *t, struct session *s, const uint8_t *data,
                        const uint8_t digest[16])
{
    bool responding = s->hs == HS_R_WAIT3 || s->hs == HS_R_CONFIRM;
    if (s->has_hs1_digest && sodium_memcmp(digest, s->hs1_digest, 16) == 0) {
        /* A retransmission while we still wait: our reply was lost, same answer and no new
         * state. Once the handshake is over, a late copy is ignored. */
        t->st.hs_duplicates++;
        if (responding) {
            out_push(t, s->addr, s->hs_out, s->hs_out_len);
        }
        return 1;
    }
    if (s->hs == HS_I_WAIT2 && memcmp(s->hs_out + 2, data + 2, NOISE_DHLEN) > 0) {
        /* Both sides connected at once; the larger ephemeral key stays initiator. */
        t->st.hs_duplicates++;
        return 1;
    }
    return 0;
}

static int on_hs1(struct session_table *t, p4p_time_ns now, p4p_addr addr, const uint8_t *data,
                  size_t len)
{
    enum noise_pattern p = (enum noise_pattern)(data[1] >> 4);
    uint8_t digest[16];
    struct noise_handshake hs;

    if ((p != NOISE_PATTERN_XX && p != NOISE_PATTERN_IK) || (data[1] & 15) != t->cfg.hash ||
        len < 2 + NOISE_DHLEN) {
        t->st.fail_malformed++;
        return P4P_EMALFORMED;
    }
    crypto_generichash(digest, sizeof(digest), data, len, NULL, 0);
    struct session *s = find(t, addr);
    if (s != NULL && hs1_conflict(t, s, data, digest)) {
        return 0;
    }
    int rc = respond_hs1(t, &hs, p, addr, data + 2, len - 2);
    if (rc != 0) {
        return rc;
    }
    if (s == NULL && (s = slot_alloc(t, addr)) == NULL) {
        t->st.fail_table_full++;
        t->st.hs_failed++;
        noise_handshake_destroy(&hs);
        return P4P_EFULL;
    }
    /* A handshake of our own (crossing, or waiting for a confirmation) gives way. */
    noise_handshake_destroy(&s->hs_state);
    sodium_memzero(&s->next, sizeof(s->next));
    s->hs_state = hs;
    noise_handshake_destroy(&hs);
    s->hs_pattern = p;
    s->resuming = false;
    memcpy(s->hs1_digest, digest, 16);
    s->has_hs1_digest = true;
    rc = hs_write(t, s, SESSION_HS2);
    if (rc != 0) {
        t->st.fail_malformed++; /* e.g. a low-order ephemeral key */
        t->st.hs_failed++;
        drop_handshake(t, s, SESSION_CLOSE_HANDSHAKE_FAILED, false);
        return rc;
    }
    if (p == NOISE_PATTERN_IK) {
        memcpy(s->next_rs, noise_handshake_remote_static(&s->hs_state), 32);
        keys_from_handshake(&s->next, &s->hs_state, now);
        s->hs = HS_R_CONFIRM;
    } else {
        s->hs = HS_R_WAIT3;
    }
    s->hs_expire_at = now + hs_span(t);
    out_push(t, addr, s->hs_out, s->hs_out_len);
    schedule(t, s);
    return 0;
}

static int on_hs2(struct session_table *t, p4p_time_ns now, struct session *s, const uint8_t *data,
                  size_t len)
{
    uint8_t payload[64], rs[32];
    size_t plen;

    if (s != NULL && s->hs != HS_I_WAIT2 && s->cur.valid && s->cur_is_initiator) {
        t->st.hs_duplicates++; /* a late copy of the answer we already used */
        return P4P_EDUPLICATE;
    }
    if (s == NULL || s->hs != HS_I_WAIT2) {
        t->st.fail_no_session++; /* nothing asked for it */
        return P4P_ENOTFOUND;
    }
    if (data[1] != suite_byte(t, s->hs_pattern)) {
        t->st.fail_malformed++;
        return P4P_EMALFORMED;
    }
    int rc = noise_handshake_read(&s->hs_state, data + 2, len - 2, payload, sizeof(payload), &plen);
    if (rc != 0) {
        return count_read_failure(t, rc); /* the handshake state is unchanged */
    }
    memcpy(rs, noise_handshake_remote_static(&s->hs_state), 32);
    if (s->hs_pattern == NOISE_PATTERN_XX && !accepted(t, s->addr, rs)) {
        if (drop_handshake(t, s, SESSION_CLOSE_REFUSED, true) == 0) {
            schedule(t, s);
        }
        return P4P_EUNKNOWN_PEER;
    }
    if (s->hs_pattern == NOISE_PATTERN_XX) {
        rc = hs_write(t, s, SESSION_HS3);
        if (rc != 0) {
            t->st.fail_malformed++;
            t->st.hs_failed++;
            drop_handshake(t, s, SESSION_CLOSE_HANDSHAKE_FAILED, true);
            return rc;
        }
        out_push(t, s->addr, s->hs_out, s->hs_out_len);
    }
    struct keyset k;
    keys_from_handshake(&k, &s->hs_state, now);
    install_keys(t, s, now, &k, rs, true, s->hs_pattern);
    if (s->hs_pattern == NOISE_PATTERN_XX) {
        s->hs = HS_I_CONFIRM; /* retransmit HS3 until the responder is heard under the keys */
        retry_start(t, s, now);
    } else {
        s->hs = HS_NONE;
        seal(t, s, now, SESSION_KEEPALIVE, NULL, 0); /* lets the responder adopt the keys */
    }
    schedule(t, s);
    return 0;
}

static int on_hs3(struct session_table *t, p4p_time_ns now, struct session *s, const uint8_t *data,
                  size_t len)
{
    uint8_t payload[64], rs[32], digest[16];
    size_t plen;

    crypto_generichash(digest, sizeof(digest), data, len, NULL, 0);
    if (s != NULL && s->hs == HS_NONE && s->cur.valid && s->has_in_digest &&
        sodium_memcmp(digest, s->in_digest, 16) == 0) {
        /* Our confirmation was lost: confirm again. */
        t->st.hs_duplicates++;
        seal(t, s, now, SESSION_KEEPALIVE, NULL, 0);
        schedule(t, s);
        return 0;
    }
    if (s == NULL || s->hs != HS_R_WAIT3) {
        t->st.fail_no_session++;
        return P4P_ENOTFOUND;
    }
    if (data[1] != suite_byte(t, s->hs_pattern)) {
        t->st.fail_malformed++;
        return P4P_EMALFORMED;
    }
    int rc = noise_handshake_read(&s->hs_state, data + 2, len - 2, payload, sizeof(payload), &plen);
    if (rc != 0) {
        return count_read_failure(t, rc);
    }
    memcpy(rs, noise_handshake_remote_static(&s->hs_state), 32);
    if (!accepted(t, s->addr, rs)) {
        if (drop_handshake(t, s, SESSION_CLOSE_REFUSED, false) == 0) {
            schedule(t, s);
        }
        return P4P_EUNKNOWN_PEER;
    }
    struct keyset k;
    keys_from_handshake(&k, &s->hs_state, now);
    install_keys(t, s, now, &k, rs, false, NOISE_PATTERN_XX);
    s->hs = HS_NONE;
    memcpy(s->in_digest, digest, 16);
    s->has_in_digest = true;
    seal(t, s, now, SESSION_KEEPALIVE, NULL, 0); /* confirms to the initiator */
    schedule(t, s);
    return 0;
}

/* ---- Receiving transport messages ---------------------------------------------------------- */

enum open_result { OPEN_OK = 0, OPEN_BAD_MAC, OPEN_REPLAY, OPEN_TOO_OLD, OPEN_AHEAD, OPEN_BIG };

/* Authenticates and decrypts one transport message under key set k; commits the replay
 * window and any epoch change only on success. */
static enum open_result open_with(struct session_table *t, struct keyset *k, const uint8_t *data,
                                  size_t hdr, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t epoch = data[2], d = (uint8_t)(epoch - k->rx_epoch);
    uint64_t counter = get_le64(data + hdr - 8);
    struct noise_cipher cand, prev;
    const struct noise_cipher *c;

    int w = replay_check(&k->win, counter);
    if (w != WIN_OK) {
        return w == WIN_REPLAY ? OPEN_REPLAY : OPEN_TOO_OLD;
    }
    if (d == 0) {
        c = &k->rx;
    } else if (d == 0xff) {
        if (!k->has_rx_prev) {
            return OPEN_TOO_OLD;
        }
        c = &k->rx_prev;
    } else if (d <= EPOCH_SKIP_MAX) {
        cand = k->rx;
        for (uint8_t i = 0; i < d; i++) {
            prev = cand;
            noise_cipher_rekey(&cand);
        }
        c = &cand;
    } else {
        return d < 0x80 ? OPEN_AHEAD : OPEN_TOO_OLD;
    }
    if (len - hdr - NOISE_TAGLEN > cap) {
        return OPEN_BIG;
    }
    int rc =
        noise_cipher_decrypt_at(c, counter, data, hdr, data + hdr, len - hdr, out, cap, out_len);
    if (rc == 0 && d >= 1 && d <= EPOCH_SKIP_MAX) {
        k->rx_prev = prev;
        k->has_rx_prev = true;
        k->rx = cand;
        k->rx_epoch = epoch;
        t->st.rekeys_rx += d;
    }
    if (c == &cand) {
        sodium_memzero(&cand, sizeof(cand));
        sodium_memzero(&prev, sizeof(prev));
    }
    if (rc != 0) {
        return OPEN_BAD_MAC;
    }
    replay_update(&k->win, counter);
    return OPEN_OK;
}

static struct session *find_by_rid(struct session_table *t, const uint8_t rid[8])
{
    for (uint32_t i = 0; i < t->cfg.session_max; i++) {
        struct session *s = &t->slots[i];
        if (s->used && s->cur.valid && memcmp(s->cur.rid, rid, 8) == 0) {
            return s;
        }
    }
    return NULL;
}

/* Moves s to addr; a different session there is closed. */
static void rebind(struct session_table *t, struct session *s, p4p_addr addr)
{
    if (s->bound && s->addr == addr) {
        return;
    }
    struct session *o = find(t, addr);
    if (o != NULL && o != s) {
        close_session(t, o, SESSION_CLOSE_REPLACED);
    }
    if (s->bound) {
        index_remove(t, s);
    }
    s->addr = addr;
    index_insert(t, s);
}

static int open_failed(struct session_table *t, p4p_time_ns now, p4p_addr addr, struct session *s,
                       uint8_t type, enum open_result r)
{
    switch (r) {
    case OPEN_REPLAY:
        t->st.fail_replay++;
        return P4P_EDUPLICATE;
    case OPEN_TOO_OLD:
        t->st.fail_too_old++;
        return P4P_EDUPLICATE;
    case OPEN_BIG:
        return P4P_ETOOBIG;
    case OPEN_AHEAD:
        t->st.fail_too_old++;
        break;
    default:
        t->st.fail_bad_mac++;
        break;
    }
    /* Keys differ from the peer's: it may have lost its state. */
    if (type != SESSION_RESUME && s->bound && s->addr == addr) {
        maybe_recover(t, now, addr, s);
        schedule(t, s);
    }
    return P4P_EBADSIG;
}

/* After a message authenticated under k: confirmations, resumption, bookkeeping. */
static void opened(struct session_table *t, p4p_time_ns now, p4p_addr addr, struct session *s,
                   struct keyset *k, uint8_t type)
{
    if (k == &s->next) {
        /* The IK initiator used the new keys: it has them, adopt them. */
        struct keyset nk = s->next;
        sodium_memzero(&s->next, sizeof(s->next));
        s->hs = HS_NONE;
        install_keys(t, s, now, &nk, s->next_rs, false, NOISE_PATTERN_IK);
        sodium_memzero(&nk, sizeof(nk));
    } else if (s->hs == HS_I_CONFIRM) {
        s->hs = HS_NONE;
    }
    s->last_recv = now;
    if (type == SESSION_RESUME) {
        bool moved = !s->bound || s->addr != addr;
        rebind(t, s, addr);
        if (moved || s->resuming) {
            t->st.resumptions++;
            event_push(t, s, SESSION_EVENT_RESUMED, 0);
        }
        s->resuming = false;
        seal(t, s, now, SESSION_KEEPALIVE, NULL, 0); /* the answer the resumer waits for */
    } else if (s->resuming) {
        s->resuming = false;
        t->st.resumptions++;
        event_push(t, s, SESSION_EVENT_RESUMED, 0);
    }
    schedule(t, s);
}

static int on_transport(struct session_table *t, p4p_time_ns now, p4p_addr addr,
                        const uint8_t *data, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t type = data[0] & 15;
    size_t hdr = type == SESSION_RESUME ? SESSION_RESUME_HEADER_LEN : SESSION_HEADER_LEN;
    size_t plen = 0;

    if (len < hdr + NOISE_TAGLEN) {
        t->st.fail_malformed++;
        return P4P_EMALFORMED;
    }
    struct session *s = type == SESSION_RESUME ? find_by_rid(t, data + 3) : find(t, addr);
    if (s == NULL || (!s->cur.valid && !s->next.valid)) {
        t->st.fail_no_session++;
        if (type != SESSION_RESUME && (s == NULL || s->hs == HS_NONE)) {
            maybe_recover(t, now, addr, s);
        }
        return P4P_EUNKNOWN_PEER;
    }
    struct keyset *sets[2] = {&s->cur, &s->next}, *k = NULL;
    enum open_result r = OPEN_TOO_OLD; /* no key set carries this tag: an old handshake's */
    for (int i = 0; i < 2 && k == NULL; i++) {
        if (sets[i]->valid && sets[i]->tag == data[1]) {
            r = open_with(t, sets[i], data, hdr, len, out, cap, &plen);
            k = r == OPEN_OK ? sets[i] : NULL;
        }
    }
    if (k == NULL) {
        return open_failed(t, now, addr, s, type, r);
    }
    opened(t, now, addr, s, k, type);
    if (type == SESSION_KEEPALIVE) {
        t->st.keepalives_received++;
        plen = 0;
    } else if (plen > 0 || type == SESSION_DATA) {
        t->st.data_received++;
    }
    *out_len = plen;
    return 0;
}

int session_recv(session_table *t, p4p_time_ns now, p4p_addr addr, const uint8_t *data, size_t len,
                 uint8_t *out, size_t cap, size_t *out_len)
{
    *out_len = 0;
    t->st.datagrams_in++;
    if (data == NULL || len < 2 || len > t->cfg.mtu || data[0] >> 4 != SESSION_VERSION) {
        t->st.fail_malformed++;
        return P4P_EMALFORMED;
    }
    switch (data[0] & 15) {
    case SESSION_HS1:
        return on_hs1(t, now, addr, data, len);
    case SESSION_HS2:
        return on_hs2(t, now, find(t, addr), data, len);
    case SESSION_HS3:
        return on_hs3(t, now, find(t, addr), data, len);
    case SESSION_DATA:
    case SESSION_KEEPALIVE:
    case SESSION_RESUME:
        return on_transport(t, now, addr, data, len, out, cap, out_len);
    }
    t->st.fail_malformed++;
    return P4P_EMALFORMED;
}

/* ---- Timers -------------------------------------------------------------------------------- */

/* Retransmission of HS1/HS3 or RESUME. Returns 1 when the session was closed. */
static int tick_retry(struct session_table *t, struct session *s, p4p_time_ns now)
{
    if (s->retries >= t->cfg.hs_retries) {
        t->st.fail_timeout++;
        if (s->resuming) {
            /* The peer does not know the keys any more: a full handshake instead. */
            const uint8_t *rs = s->rs;
            sodium_memzero(&s->cur, sizeof(s->cur));
            s->resuming = false;
            if (start_handshake(t, s, now, rs) == 0) {
                t->st.rehandshakes++;
                return 0;
            }
        }
        t->st.hs_failed++;
        if (s->cur.valid) {
            /* Keys remain (a recovery handshake, or an unconfirmed XX): they live on until
             * the idle timeout, and a later attempt may still succeed. */
            noise_handshake_destroy(&s->hs_state);
            s->hs = HS_NONE;
            return 0;
        }
        close_session(t, s, SESSION_CLOSE_HANDSHAKE_FAILED);
        return 1;
    }
    s->retries++;
    s->retry_ivl = tmin(s->retry_ivl * 2, t->cfg.hs_retry_ns * RETRY_GROWTH);
    s->retry_at = now + s->retry_ivl;
    t->st.hs_retransmits++;
    if (s->resuming) {
        seal(t, s, now, SESSION_RESUME, NULL, 0); /* a fresh counter each time */
    } else {
        out_push(t, s->addr, s->hs_out, s->hs_out_len);
    }
    return 0;
}

/* Returns 1 when the session was closed. */
static int tick(struct session_table *t, struct session *s, p4p_time_ns now)
{
    bool retrying = s->hs == HS_I_WAIT2 || s->hs == HS_I_CONFIRM || s->resuming;
    if (retrying && now >= s->retry_at && tick_retry(t, s, now)) {
        return 1;
    }
    if ((s->hs == HS_R_WAIT3 || s->hs == HS_R_CONFIRM) && now >= s->hs_expire_at) {
        t->st.fail_timeout++;
        t->st.hs_failed++;
        if (drop_handshake(t, s, SESSION_CLOSE_HANDSHAKE_FAILED, false)) {
            return 1;
        }
    }
    if (s->cur.valid) {
        if (now >= s->last_recv + t->cfg.idle_timeout_ns) {
            t->st.idle_closed++;
            close_session(t, s, SESSION_CLOSE_IDLE);
            return 1;
        }
        if (s->bound && !s->resuming && s->hs == HS_NONE && now >= dead_at(t, s)) {
            /* Silence although keepalives flow both ways: the peer lost its state. */
            if (start_handshake(t, s, now, s->rs) == 0) {
                t->st.rehandshakes++;
            }
        }
        if (s->bound && !s->resuming && now >= s->last_send + t->cfg.keepalive_ns) {
            seal(t, s, now, SESSION_KEEPALIVE, NULL, 0);
        }
    }
    schedule(t, s);
    return 0;
}

int session_timeout(session_table *t, p4p_time_ns now)
{
    for (uint32_t i = 0; i < t->cfg.session_max; i++) {
        struct session *s = &t->slots[i];
        if (s->used && s->timer_at <= now) {
            tick(t, s, now);
        }
    }
    return 0;
}

/* ---- Closing, detaching, resuming ---------------------------------------------------------- */

int session_close(session_table *t, p4p_time_ns now, p4p_addr addr)
{
    (void)now;
    struct session *s = find(t, addr);
    if (s == NULL) {
        return P4P_ENOTFOUND;
    }
    close_session(t, s, SESSION_CLOSE_BY_CALLER);
    return 0;
}

int session_detach(session_table *t, p4p_time_ns now, p4p_addr addr)
{
    (void)now;
    struct session *s = find(t, addr);
    if (s == NULL) {
        return P4P_ENOTFOUND;
    }
    s->resuming = false;
    if (s->hs != HS_NONE && drop_handshake(t, s, SESSION_CLOSE_BY_CALLER, true)) {
        return 0; /* nothing to resume: no keys yet */
    }
    index_remove(t, s);
    schedule(t, s);
    return 0;
}

int session_resume(session_table *t, p4p_time_ns now, p4p_addr addr,
                   const uint8_t remote_static[32])
{
    struct session *s = NULL;

    for (uint32_t i = 0; i < t->cfg.session_max && s == NULL; i++) {
        struct session *c = &t->slots[i];
        if (c->used && c->cur.valid && c->has_rs && sodium_memcmp(c->rs, remote_static, 32) == 0) {
            s = c;
        }
    }
    if (s == NULL) {
        return P4P_ENOTFOUND;
    }
    struct session *o = find(t, addr);
    if (o != NULL && o != s) {
        return P4P_EDUPLICATE;
    }
    if (s->hs != HS_NONE) {
        drop_handshake(t, s, SESSION_CLOSE_BY_CALLER, false);
    }
    rebind(t, s, addr);
    s->resuming = true;
    retry_start(t, s, now);
    int rc = seal(t, s, now, SESSION_RESUME, NULL, 0);
    schedule(t, s);
    return rc == P4P_EFULL ? 0 : rc; /* a full outbox is handled by the retry timer */
}

/* ---- Queries ------------------------------------------------------------------------------- */

int session_get(const session_table *t, p4p_addr addr, struct session_info *out)
{
    const struct session *s = find(t, addr);
    if (s == NULL) {
        return P4P_ENOTFOUND;
    }
    memset(out, 0, sizeof(*out));
    out->has_keys = s->cur.valid;
    out->handshaking = s->hs != HS_NONE;
    out->resuming = s->resuming;
    out->has_remote_static = s->has_rs;
    if (s->has_rs) {
        memcpy(out->remote_static, s->rs, 32);
    }
    out->tx_epoch = s->cur.tx_epoch;
    out->rx_epoch = s->cur.rx_epoch;
    out->tx_counter = s->cur.tx.n;
    return 0;
}

uint32_t session_count(const session_table *t)
{
    return t->used_count;
}

void session_stats(const session_table *t, struct session_stats *out)
{
    *out = t->st;
}
