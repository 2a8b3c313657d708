/*
 * secure.c — the node's frames inside Noise sessions (cfg.secure): the glue between the node
 * core and engine/session.c, with a trust store (engine/trust.c) deciding whose keys to accept.
 *
 *   link up    -> session_connect (XX on first contact; both sides connect, the session layer
 *                 resolves the crossing)
 *   recv       -> session_recv: handshake steps are answered inside the session layer; a DATA
 *                 payload is the node's plaintext frame and goes through recv_frame as before
 *   end of an input -> every plaintext frame the input queued is sealed with session_send; a
 *                 frame for a peer whose handshake has not completed is dropped and counted
 *                 (gossip repair sends it again later)
 *   poll_frame -> the session layer's datagrams (handshakes, sealed frames, keep-alives)
 *
 * A neighbour already in the trust store (a reconnect, or a restart with storage) is greeted
 * with IK instead of XX.
 *
 * Keys and trust. The session's static key is the X25519 form of the node's Ed25519 identity.
 * The trust store binds each link address ("addr:ADDR") to the key first seen there
 * (trust on first use): a different key at a known address is refused, counted and reported
 * (sess_refused), and the node keeps talking to everyone else. With storage, the store is
 * kept in kv "p4p/trust" and written in the input that changed it, so a restarted node still
 * knows its neighbours' keys.
 *
 * The node's plaintext frames are cfg.mtu - SESSION_OVERHEAD bytes at most, so that a sealed
 * frame fits cfg.mtu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "node_int.h"
#include "session.h"
#include "trust.h"

static const uint8_t KEY_TRUST[] = "p4p/trust";
#define TRUST_SAVE_MAX 65536

static int name_of(p4p_addr addr, uint8_t out[32])
{
    return snprintf((char *)out, 32, "addr:%u", addr);
}

static int accept_key(void *ctx, p4p_addr peer, const uint8_t remote_static[32])
{
    p4p_node *n = ctx;
    uint8_t name[32];
    int len = name_of(peer, name);
    int rc = trust_check(n->trust, n->now, name, (size_t)len, remote_static, NULL);
    if (rc == TRUST_ACCEPT_NEW) {
        n->trust_dirty = 1;
    }
    return rc == TRUST_ACCEPT_NEW || rc == TRUST_ACCEPT_KNOWN;
}

/* A neighbour whose key the trust store holds is greeted with IK (one round trip, and its
 * identity is checked by the handshake itself) rather than XX. */
static int lookup_key(void *ctx, p4p_addr peer, uint8_t remote_static[32])
{
    p4p_node *n = ctx;
    uint8_t name[32];
    int len = name_of(peer, name);
    struct trust_entry e;
    if (trust_lookup(n->trust, name, (size_t)len, &e) != 0 || e.state == TRUST_REVOKED) {
        return 0;
    }
    memcpy(remote_static, e.pk, 32);
    return 1;
}

static void session_random(void *ctx, uint8_t *out, size_t len)
{
    p4p_node *n = ctx;
    n->env.random(n->env.ctx, out, len);
}

static int load_trust(p4p_node *n)
{
    const struct p4p_storage *st = &n->env.storage;
    if (st->ops == NULL) {
        return 0;
    }
    uint8_t *buf = malloc(TRUST_SAVE_MAX);
    if (buf == NULL) {
        return P4P_ENOMEM;
    }
    size_t len = 0;
    int rc = st->ops->begin(st->ctx);
    if (rc == 0) {
        rc = st->ops->kv_get(st->ctx, KEY_TRUST, sizeof(KEY_TRUST) - 1, buf, TRUST_SAVE_MAX, &len);
        st->ops->abort(st->ctx); /* a read only */
    }
    if (rc == 0) {
        rc = trust_load(n->trust, buf, len) == 0 ? 0 : P4P_ECORRUPT;
    } else if (rc == P4P_ENOTFOUND) {
        rc = 0;
    }
    free(buf);
    return rc;
}

int secure_open(p4p_node *n)
{
    if (!n->cfg.secure) {
        return 0;
    }
    struct session_config sc;
    session_config_default(&sc);
    sc.mtu = n->cfg.mtu;
    sc.session_max = n->cfg.neighbour_max + 4;
    sc.outbox_max = 4 * n->cfg.neighbour_max + 16;
    if (sc.outbox_max > n->cfg.outbox_max) {
        sc.outbox_max = n->cfg.outbox_max;
    }
    sc.event_max = sc.session_max * 2;
    struct session_env se = {
        .ctx = n, .random = session_random, .accept_key = accept_key, .lookup_key = lookup_key};
    uint8_t x_priv[32], x_pub[32], hash_key[16];
    int rc = session_x25519_from_ed25519_sk(n->id.sk, x_priv, x_pub);
    rc = rc ? rc : session_table_create(&sc, &se, x_priv, &n->sess);
    sodium_memzero(x_priv, sizeof(x_priv));
    n->env.random(n->env.ctx, hash_key, sizeof(hash_key));
    rc = rc ? rc
            : trust_create(&n->trust, 2 * n->cfg.neighbour_max + 16, TRUST_EVICT_TOFU, hash_key);
    rc = rc ? rc : load_trust(n);
    n->sess_buf = rc ? NULL : malloc(n->cfg.mtu);
    if (rc == 0 && n->sess_buf == NULL) {
        rc = P4P_ENOMEM;
    }
    n->sess_memory = (size_t)sc.session_max * 1750 + (size_t)sc.outbox_max * sc.mtu +
                     (rc == 0 ? trust_memory(n->trust) : 0) + sc.mtu;
    n->cfg.mtu -= SESSION_OVERHEAD; /* the node's own frames, before sealing */
    return rc;
}

void secure_close(p4p_node *n)
{
    session_table_destroy(n->sess);
    trust_destroy(n->trust);
    free(n->sess_buf);
}

void secure_link(p4p_node *n, p4p_time_ns now, const struct p4p_link_event *ev)
{
    if (ev->kind == P4P_LINK_UP) {
        (void)session_connect(n->sess, now, ev->peer, NULL);
    } else {
        (void)session_close(n->sess, now, ev->peer);
    }
}

int secure_recv(p4p_node *n, p4p_time_ns now, const struct p4p_frame *in, struct p4p_frame *plain)
{
    size_t len = 0;
    int rc = session_recv(n->sess, now, in->peer, in->data, in->len, n->sess_buf,
                          n->cfg.mtu + SESSION_OVERHEAD, &len);
    if (rc != 0) {
        return rc;
    }
    *plain = (struct p4p_frame){in->iface, in->peer, n->sess_buf, len};
    return len > 0 ? 0 : P4P_EAGAIN;
}

/* Writes the trust store into the input's transaction when it changed. */
static void save_trust(p4p_node *n)
{
    if (!n->trust_dirty || n->env.storage.ops == NULL) {
        return;
    }
    uint8_t *buf = malloc(TRUST_SAVE_MAX);
    size_t len = 0;
    int rc = buf == NULL ? P4P_ENOMEM : trust_save(n->trust, buf, TRUST_SAVE_MAX, &len);
    if (rc == 0) {
        persist_kv(n, KEY_TRUST, sizeof(KEY_TRUST) - 1, buf, len);
        n->trust_dirty = 0;
    }
    free(buf);
}

void secure_before_commit(p4p_node *n)
{
    if (n->sess != NULL) {
        save_trust(n);
    }
}

void secure_seal(p4p_node *n, p4p_time_ns now)
{
    struct outbox *ob = &n->ob;
    while (ob->frame_head < ob->frame_count) {
        const struct ob_frame *f = &ob->frames[ob->frame_head++];
        if (session_send(n->sess, now, f->peer, ob->bytes + f->off, f->len) != 0) {
            n->stats.sess_send_dropped++;
        }
    }
    struct session_event ev;
    while (session_poll_event(n->sess, &ev) == 0) {
    }
}

int secure_poll_frame(p4p_node *n, struct p4p_frame *out)
{
    struct session_datagram d;
    if (session_poll(n->sess, &d) != 0) {
        return P4P_EAGAIN;
    }
    *out = (struct p4p_frame){0, d.peer, d.data, d.len};
    return 0;
}

void secure_stats(const p4p_node *n, struct p4p_stats *out)
{
    if (n->sess == NULL) {
        return;
    }
    struct session_stats s;
    session_stats(n->sess, &s);
    out->sess_hs_started = s.hs_started;
    out->sess_hs_completed = s.hs_completed;
    out->sess_hs_failed = s.hs_failed;
    out->sess_bad_mac = s.fail_bad_mac;
    out->sess_replay = s.fail_replay + s.fail_too_old;
    out->sess_no_session = s.fail_no_session;
    out->sess_refused = s.fail_refused + s.fail_wrong_key;
    out->sess_malformed = s.fail_malformed;
    out->sess_timeout = s.fail_timeout;
    out->sess_keepalives = s.keepalives_sent;
    out->sess_overhead_bytes = s.overhead_bytes;
    out->sess_sealed = s.data_sent + s.keepalives_sent;
}

size_t secure_memory(const p4p_node *n)
{
    return n->sess_memory; /* tables and buffers allocated at create (session.h: ~1.7 KiB a slot) */
}
