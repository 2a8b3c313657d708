/*
 * session.h — secure sessions over datagrams that may be lost, duplicated and reordered:
 * Noise handshakes (engine/noise.h) and an encrypted transport on top, sans-I/O.
 *
 * A session table holds at most cfg.session_max sessions, one per peer address (the host's
 * opaque p4p_addr), all allocated at create. The host drives it like the node:
 *
 *   host                                   session table
 *   session_connect(now, addr, key?)  -->  start a handshake (IK when the peer's static key is
 *                                          known, XX otherwise)
 *   session_recv(now, addr, datagram) -->  handshake step, or decrypt into the caller's buffer
 *   session_send(now, addr, payload)  -->  encrypt, queue
 *   session_timeout(now)              -->  retransmit, keepalive, rekey, idle close, recovery
 *   session_poll(&dgram)              <--  datagrams to carry out, until P4P_EAGAIN
 *   session_poll_event(&ev)           <--  established / closed / resumed, until P4P_EAGAIN
 *   session_deadline()                <--  when to call session_timeout next
 *
 * Wire format, version 1. Every datagram starts with one byte: version in the high nibble (1),
 * type in the low nibble. Integers are little-endian.
 *
 *   handshake  0x11 HS1, 0x12 HS2, 0x13 HS3   [type][suite][Noise handshake message]
 *              suite = pattern << 4 | hash (pattern 1 XX, 2 IK; hash as enum noise_hash).
 *              The prologue is "p4p-session/1" || suite, so a changed suite byte fails.
 *              Payloads are empty: XX 34 / 98 / 66 bytes, IK 98 / 50 bytes.
 *   transport  0x14 DATA, 0x15 KEEPALIVE      [type][key tag][epoch][counter: 8][ct][tag: 16]
 *              counter = the Noise nonce of this message, in the clear, so that datagrams
 *              decrypt in any order; AD = the 11 header bytes. KEEPALIVE has no payload.
 *   resume     0x16 RESUME                    [type][key tag][epoch][rid: 8][counter: 8]...
 *              a transport message that names its session by resumption id (AD = 19 bytes)
 *
 * Overhead: 27 bytes per DATA message (SESSION_OVERHEAD), 35 per RESUME.
 *
 * Keys. A completed handshake gives one key set: the two Noise CipherStates from Split(), a
 * key tag and a resumption id (rid), both derived from the handshake hash h (so both sides
 * agree on them without sending them). The key tag tells a datagram of this handshake from one
 * of the previous or the next handshake, which are dropped without trial decryption.
 *
 * Replay. Each key set has a 2048-bit sliding window (RFC 6479): a counter more than 1984
 * behind the newest accepted one is "too old", one already seen is a "replay". The window is
 * updated only after the message authenticated.
 *
 * Rekey. A sender applies Noise Rekey() to its sending key after cfg.rekey_messages messages
 * or cfg.rekey_ns in one epoch, and increments the epoch byte it sends. The counter is not
 * reset (Noise keeps n), so the one replay window spans epochs. A receiver that sees epoch e+d
 * (1 <= d <= 4) derives the key by d Rekey()s, tries it, and adopts it only if the message
 * authenticates; it keeps the previous epoch's key, so datagrams reordered across one rekey
 * still decrypt. Older epochs are rejected as too old. Both directions rekey, each by its
 * sender, with the same policy.
 *
 * Handshakes and loss. The initiator retransmits its first message every cfg.hs_retry_ns
 * (doubling, at most 8x) up to cfg.hs_retries times, then the handshake fails (counted): a
 * session without keys is closed (CLOSED event), one that still has keys (a recovery
 * handshake, an unconfirmed XX) keeps them until the idle timeout. A responder that receives the
 * same first message again answers with the same reply (no new state). The XX initiator has keys
 * after sending HS3 and retransmits HS3 until it hears an authenticated message from the responder
 * (which sends a KEEPALIVE on completing, and again for each duplicate HS3). The IK responder holds
 * its new keys as "next" until the first authenticated message under them arrives (the initiator
 * sends a KEEPALIVE right after HS2), so a replayed IK HS1 cannot displace a working session.
 * Crossing HS1s (both sides connect at once) are resolved by comparing ephemeral keys: the side
 * with the smaller one becomes the responder.
 *
 * Liveness. An established session sends a KEEPALIVE when it has sent nothing for
 * cfg.keepalive_ns, and is closed when it has received nothing for cfg.idle_timeout_ns.
 *
 * Peer lost its state: two ways back, both ending in a new handshake that replaces the keys
 * (the old keys keep working until the new handshake completes):
 *  - the receiver: a DATA/KEEPALIVE from an address with no session, or one that fails to
 *    authenticate under an established session, makes the table start a handshake to that
 *    address (cfg.rehandshake_on_unknown; at most one per address per cfg.hs_retry_ns; IK if
 *    env.lookup_key knows the key). Unauthenticated traffic can thus trigger handshakes, but
 *    only rate-limited ones, and never tear down a working session.
 *  - the sender: with keepalives flowing, silence for cfg.dead_ns means the peer is gone or
 *    lost its keys; the table starts an IK handshake with the key it already has, again
 *    every handshake span while the silence lasts; the idle timeout ends the session.
 *
 * Resumption. When the host's transport restarts (a link or socket goes away, the peer may
 * come back under a new address) but both tables still hold the keys, the host calls
 * session_detach() (the session keeps its keys but no address) and later session_resume() with
 * the peer's new address and static key. The table then sends RESUME messages — ordinary
 * transport messages under the existing keys that also carry the rid — until the peer answers;
 * the peer finds the session by rid, authenticates the message with the session's key and
 * replay window, and rebinds the session to the new address. No handshake, no public-key
 * operation. If no answer comes (the peer lost the keys), an IK handshake follows.
 * Security limits: a resumed session has no more forward secrecy than the old one (same keys,
 * counters continue; a key compromise between detach and resume exposes the resumed traffic);
 * the rid is sent in the clear and links the old and new addresses of one session; whoever
 * can send from an address can replay nothing (window) but a captured RESUME re-sent first
 * from another address moves the session there (denial of service, no disclosure); keys live
 * at most until the idle timeout after the last authenticated message.
 *
 * Trust. env.accept_key is shown every remote static key a handshake reveals (XX both sides,
 * IK responder) and may refuse it: the handshake is then abandoned and counted as refused.
 *
 * Statistics count every dropped datagram by cause; hs_failed counts handshakes that ended
 * without completing. No failure leaves the table unusable.
 *
 * Memory: about 1.7 KiB per session slot plus cfg.outbox_max * cfg.mtu bytes, all allocated at
 * create; nothing is allocated afterwards. Lookups by address use a hash index; lookups by rid
 * or static key (resumption only) scan the table. session_deadline() scans it too.
 */
#ifndef P4P_SESSION_H
#define P4P_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "noise.h"
#include "p4p/p4p.h"

#define SESSION_VERSION           1
#define SESSION_HEADER_LEN        11 /* DATA and KEEPALIVE */
#define SESSION_RESUME_HEADER_LEN 19
#define SESSION_OVERHEAD          (SESSION_HEADER_LEN + NOISE_TAGLEN)        /* 27 */
#define SESSION_RESUME_OVERHEAD   (SESSION_RESUME_HEADER_LEN + NOISE_TAGLEN) /* 35 */
#define SESSION_REPLAY_WINDOW     1984 /* counters behind the newest that are still accepted */
#define SESSION_MTU_MIN           128

enum session_type {
    SESSION_HS1 = 1,
    SESSION_HS2 = 2,
    SESSION_HS3 = 3,
    SESSION_DATA = 4,
    SESSION_KEEPALIVE = 5,
    SESSION_RESUME = 6,
};

struct session_config {
    uint32_t session_max;     /* sessions held at once */
    uint32_t mtu;             /* largest datagram emitted or accepted, >= SESSION_MTU_MIN */
    uint32_t outbox_max;      /* datagrams queued between two drains; more are dropped, counted */
    uint32_t event_max;       /* events queued between two drains; more are dropped, counted */
    enum noise_hash hash;     /* both sides must agree */
    p4p_time_ns hs_retry_ns;  /* first handshake retransmission delay */
    uint32_t hs_retries;      /* retransmissions before a handshake fails */
    p4p_time_ns keepalive_ns; /* send a KEEPALIVE after this long without sending */
    p4p_time_ns dead_ns;      /* re-handshake after this long without receiving */
    p4p_time_ns idle_timeout_ns; /* close after this long without receiving */
    uint64_t rekey_messages;     /* Rekey the sending key after this many messages ... */
    p4p_time_ns rekey_ns;        /* ... or this long, whichever comes first */
    bool rehandshake_on_unknown; /* answer undecryptable transport with a handshake */
};

/* Defaults: 256 sessions, mtu 1280, BLAKE2b, retry 500 ms x 6, keepalive 10 s, dead 25 s,
 * idle 60 s, rekey after 2^20 messages or 120 s, rehandshake_on_unknown on. */
void session_config_default(struct session_config *cfg);

struct session_env {
    void *ctx;
    /* Required: ephemeral keys come from here, never from the OS. */
    void (*random)(void *ctx, uint8_t *out, size_t len);
    /* Optional: return nonzero to accept the peer's static key, 0 to refuse. NULL accepts. */
    int (*accept_key)(void *ctx, p4p_addr peer, const uint8_t remote_static[32]);
    /* Optional: write the peer's known static key and return nonzero, or return 0. Used when
     * a handshake starts without an explicit key (recovery, or session_connect with NULL). */
    int (*lookup_key)(void *ctx, p4p_addr peer, uint8_t remote_static[32]);
};

/* Per-table counters. "fail_*" count dropped datagrams or abandoned handshakes by cause. */
#define SESSION_STATS(X)                                                                           \
    X(hs_started)      /* handshakes this table initiated */                                       \
    X(hs_completed)    /* handshakes completed, either role */                                     \
    X(hs_failed)       /* handshakes abandoned: timeout, refused, wrong key, table full */         \
    X(hs_retransmits)  /* handshake (and RESUME) messages sent again */                            \
    X(hs_duplicates)   /* handshake messages answered from cache or ignored as copies */           \
    X(fail_bad_mac)    /* authentication failed (tampered, or keys differ) */                      \
    X(fail_replay)     /* counter already seen */                                                  \
    X(fail_too_old)    /* counter behind the window, or a stale key tag / epoch */                 \
    X(fail_no_session) /* no session for the address (or rid), or message not expected */          \
    X(fail_wrong_key)  /* IK first message did not authenticate (wrong responder key) */           \
    X(fail_refused)    /* env.accept_key refused the remote static key */                          \
    X(fail_malformed)  /* bad version, type, suite, length */                                      \
    X(fail_timeout)    /* handshake or resumption retries exhausted, half-open expired */          \
    X(fail_table_full) /* no free session slot */                                                  \
    X(keepalives_sent)                                                                             \
    X(keepalives_received)                                                                         \
    X(rekeys_tx)    /* Rekey() of a sending key */                                                 \
    X(rekeys_rx)    /* Rekey() of a receiving key, following the peer */                           \
    X(rehandshakes) /* handshakes started to recover a lost peer state */                          \
    X(resumptions)  /* sessions resumed without a handshake (either side) */                       \
    X(idle_closed)                                                                                 \
    X(datagrams_in)                                                                                \
    X(datagrams_out)                                                                               \
    X(data_sent)      /* DATA messages sent */                                                     \
    X(data_received)  /* DATA messages delivered */                                                \
    X(overhead_bytes) /* header + tag bytes of every transport message sent */                     \
    X(dropped_outbox_full)                                                                         \
    X(dropped_events)

struct session_stats {
#define SESSION_STATS_FIELD_(name) uint64_t name;
    SESSION_STATS(SESSION_STATS_FIELD_)
#undef SESSION_STATS_FIELD_
};

enum session_event_kind {
    SESSION_EVENT_ESTABLISHED = 1, /* keys in use (again); remote_static is the peer's key */
    SESSION_EVENT_CLOSED = 2,      /* the session is gone; reason says why */
    SESSION_EVENT_RESUMED = 3,     /* a detached session works again at `peer` */
};

enum session_close_reason {
    SESSION_CLOSE_IDLE = 1,
    SESSION_CLOSE_HANDSHAKE_FAILED = 2, /* retries exhausted */
    SESSION_CLOSE_REFUSED = 3,          /* env.accept_key said no */
    SESSION_CLOSE_BY_CALLER = 4,
    SESSION_CLOSE_REPLACED = 5, /* a resumed session took over its address */
};

struct session_event {
    enum session_event_kind kind;
    p4p_addr peer;
    enum session_close_reason reason; /* CLOSED only */
    bool is_initiator;                /* ESTABLISHED: our role in the handshake */
    enum noise_pattern pattern;       /* ESTABLISHED */
    uint8_t remote_static[32];        /* all zero when not known */
};

struct session_datagram {
    p4p_addr peer;
    const uint8_t *data; /* points into the table: valid until the next input call */
    size_t len;
};

struct session_info {
    bool has_keys;    /* can send */
    bool handshaking; /* a handshake is in progress */
    bool resuming;    /* RESUME sent, no answer yet */
    bool has_remote_static;
    uint8_t remote_static[32];
    uint8_t tx_epoch, rx_epoch;
    uint64_t tx_counter; /* next counter to send */
};

typedef struct session_table session_table;

/* Creates a table with the static X25519 key pair s_priv (the public key is derived). cfg and
 * env are copied; env->ctx must outlive the table. 0, P4P_EINVAL or P4P_ENOMEM. */
int session_table_create(const struct session_config *cfg, const struct session_env *env,
                         const uint8_t s_priv[32], session_table **out);
/* Wipes every key and frees the table. */
void session_table_destroy(session_table *t);

/* Our static public key. */
void session_local_static(const session_table *t, uint8_t out[32]);

/* The X25519 key pair of a node whose Ed25519 secret key (libsodium layout: seed || public)
 * is ed_sk. 0 or P4P_EINVAL. */
int session_x25519_from_ed25519_sk(const uint8_t ed_sk[64], uint8_t x_priv[32], uint8_t x_pub[32]);
/* A peer's X25519 public key from its Ed25519 public key. 0 or P4P_EINVAL (not a point). */
int session_x25519_from_ed25519_pk(const uint8_t ed_pk[32], uint8_t x_pub[32]);

/* Starts a handshake to addr: IK with remote_static if given (or if env.lookup_key knows it),
 * XX otherwise. P4P_EDUPLICATE when addr already has a session, P4P_EFULL when the table is
 * full. */
int session_connect(session_table *t, p4p_time_ns now, p4p_addr addr, const uint8_t *remote_static);

/* Encrypts payload for addr and queues it. P4P_ENOTFOUND (no session), P4P_EAGAIN (handshake
 * not complete yet), P4P_ETOOBIG (payload + SESSION_OVERHEAD > mtu), P4P_EFULL (outbox). */
int session_send(session_table *t, p4p_time_ns now, p4p_addr addr, const uint8_t *payload,
                 size_t len);

/* Processes one datagram from addr. A DATA payload is written to out (give cap >= mtu) and its
 * length to *out_len; otherwise *out_len = 0. Returns 0, or a negative code telling why the
 * datagram was dropped (counted; the table stays usable). */
int session_recv(session_table *t, p4p_time_ns now, p4p_addr addr, const uint8_t *data, size_t len,
                 uint8_t *out, size_t cap, size_t *out_len);

/* Runs every timer due at now. */
int session_timeout(session_table *t, p4p_time_ns now);
/* When session_timeout is next due, or P4P_TIME_NONE. */
p4p_time_ns session_deadline(const session_table *t);

/* Forgets the session of addr, wiping its keys (a CLOSED event with reason BY_CALLER). */
int session_close(session_table *t, p4p_time_ns now, p4p_addr addr);
/* The transport to addr went away: keep the keys for resumption, unbind the address. */
int session_detach(session_table *t, p4p_time_ns now, p4p_addr addr);
/* Resumes the session held with the peer whose static key is remote_static (detached or bound
 * elsewhere) at addr, by RESUME messages. P4P_ENOTFOUND when no session with that key has
 * keys; P4P_EDUPLICATE when addr holds another session. */
int session_resume(session_table *t, p4p_time_ns now, p4p_addr addr,
                   const uint8_t remote_static[32]);

int session_poll(session_table *t, struct session_datagram *out);
int session_poll_event(session_table *t, struct session_event *out);

/* 0 and the state of addr's session, or P4P_ENOTFOUND (also for detached sessions, which have
 * no address). */
int session_get(const session_table *t, p4p_addr addr, struct session_info *out);
uint32_t session_count(const session_table *t);
void session_stats(const session_table *t, struct session_stats *out);

#endif /* P4P_SESSION_H */
