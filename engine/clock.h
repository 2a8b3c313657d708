/*
 * clock.h — logical clocks for ordering events between nodes: Lamport clocks, version vectors
 * and hybrid logical clocks (HLC).
 *
 * All three are plain values the caller owns (no allocation, no hidden state); physical time
 * only ever enters as the `now` argument, which is the node's own clock in nanoseconds — in the
 * simulator possibly skewed and drifting. Which one to use:
 *
 *   lamport_*  one counter; e hb f  =>  L(e) < L(f). Cheap, but says nothing about real time
 *              and cannot tell concurrent events apart.
 *   vv_*       a counter per actor (32-byte public key); compare() says EQUAL, BEFORE, AFTER or
 *              CONCURRENT exactly, so it detects conflicting writes. Bounded: VV_ACTORS_MAX.
 *   hlc_*      Kulkarni, Demirbas et al., "Logical Physical Clocks and Consistent Snapshots in
 *              Globally Distributed Databases" (2014): a Lamport clock whose value stays within
 *              the clock skew of physical time, packed in 64 bits.
 *
 * HLC timestamps are one uint64_t, ordered as integers:
 *
 *   63                                  16 15              0
 *   +-------------------------------------+----------------+
 *   |  l: physical part, ns >> 16          |  c: counter    |
 *   +-------------------------------------+----------------+
 *
 * so l is a time in nanoseconds with its low 16 bits cleared (a tick of HLC_TICK_NS = 65.536 us,
 * range 584 years) and the whole timestamp reads as nanoseconds off by less than one tick. One
 * 64-bit word sorts, hashes and goes on the wire (a CBOR uint) as it is; ns resolution inside a
 * tick is given up, the counter orders events within it. Events of different nodes with equal
 * timestamps are ordered by actor id (hlc_cmp), which makes (timestamp, actor) a total order.
 *
 * Untrusted input: hlc_recv() rejects a timestamp more than max_offset_ns ahead of `now` and
 * counts it, so a broken or hostile clock cannot drag this node's clock forward; vv_decode()
 * accepts only the canonical encoding. Lamport values have no such bound (see lamport_recv).
 */
#ifndef P4P_CLOCK_H
#define P4P_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "cbor.h"

/* ---- Lamport clock ------------------------------------------------------------------------- */

struct lamport {
    uint64_t time; /* the value of the latest event; 0 before the first */
};

/* A local or send event: time + 1, written to *out. P4P_ETOOBIG if the clock is at UINT64_MAX
 * (unchanged then). */
int lamport_tick(struct lamport *c, uint64_t *out);

/* A receive event carrying the sender's value m: max(time, m) + 1, written to *out.
 * P4P_ETOOBIG if that overflows (unchanged then). A peer can push the clock arbitrarily far,
 * up to exhausting it; where peers are not trusted use the HLC, which bounds the jump. */
int lamport_recv(struct lamport *c, uint64_t m, uint64_t *out);

/* ---- Version vectors ----------------------------------------------------------------------- */

/* Entries a vector holds. 40 bytes each, so a struct vv is 1288 bytes and copies by value. */
#define VV_ACTORS_MAX 32
#define VV_ACTOR_LEN  32

struct vv_entry {
    uint8_t actor[VV_ACTOR_LEN]; /* an Ed25519 public key */
    uint64_t counter;            /* >= 1; an absent actor counts 0 */
};

/* Entries sorted by actor bytes, no duplicates, no zero counters: one vector value has one
 * representation, so equal vectors have equal bytes on the wire. Zero-initialised = empty. */
struct vv {
    uint32_t count;
    struct vv_entry e[VV_ACTORS_MAX];
};

enum vv_order {
    VV_EQUAL = 0,
    VV_BEFORE = 1,     /* a < b: every counter <=, one <; a happened before b */
    VV_AFTER = 2,      /* a > b */
    VV_CONCURRENT = 3, /* each has a counter the other lacks */
};

void vv_init(struct vv *v);

/* The counter of `actor`, 0 if absent. */
uint64_t vv_get(const struct vv *v, const uint8_t actor[VV_ACTOR_LEN]);

/* Counts one more event by `actor`; the new counter goes to *out unless out is NULL.
 * P4P_EFULL when the actor is new and the vector already holds VV_ACTORS_MAX actors;
 * P4P_ETOOBIG when the counter is at UINT64_MAX. Unchanged on error. */
int vv_increment(struct vv *v, const uint8_t actor[VV_ACTOR_LEN], uint64_t *out);

/* dst = pointwise max(dst, src), the least upper bound. P4P_EFULL (dst unchanged) when the
 * union of actors exceeds VV_ACTORS_MAX. */
int vv_merge(struct vv *dst, const struct vv *src);

enum vv_order vv_compare(const struct vv *a, const struct vv *b);

/* Canonical CBOR: a map { bstr(32) actor => uint counter }, keys in ascending byte order, which
 * is the deterministic (RFC 8949 4.2.1) order since every key has the same length; 35..43
 * bytes per actor. Returns 0, or P4P_ETOOBIG when the writer overflowed (its `len` then counts
 * the bytes needed; see cbor_writer). */
int vv_encode(const struct vv *v, struct cbor_writer *w);

/* Reads one vector at the reader's position. Accepts only what vv_encode() writes: a
 * definite-length map, 32-byte keys strictly ascending, counters >= 1 in shortest form.
 * P4P_EMALFORMED for anything else, P4P_EFULL for more than VV_ACTORS_MAX entries. *out is
 * written only on success; trailing bytes are the caller's to check (cbor_reader_done). */
int vv_decode(struct cbor_reader *r, struct vv *out);

/* ---- Hybrid logical clock ------------------------------------------------------------------ */

#define HLC_COUNTER_BITS 16
#define HLC_TICK_NS      ((uint64_t)1 << HLC_COUNTER_BITS)
#define HLC_COUNTER_MAX  ((uint32_t)(HLC_TICK_NS - 1))

static inline uint64_t hlc_make(uint64_t l_ns, uint32_t c)
{
    return (l_ns & ~(uint64_t)HLC_COUNTER_MAX) | (c & HLC_COUNTER_MAX);
}

/* The physical part, in ns (a multiple of HLC_TICK_NS). */
static inline uint64_t hlc_l(uint64_t ts)
{
    return ts & ~(uint64_t)HLC_COUNTER_MAX;
}

static inline uint32_t hlc_c(uint64_t ts)
{
    return (uint32_t)(ts & HLC_COUNTER_MAX);
}

/* One node's clock; set up with hlc_init. The counters are statistics for the host to
 * report; the clock never reads them. */
struct hlc {
    uint64_t last;            /* packed (l, c) of the latest event; 0 before the first */
    uint64_t max_offset_ns;   /* how far ahead of `now` a received l may be */
    uint64_t rejected_count;  /* received timestamps refused as too far ahead */
    uint64_t exhausted_count; /* events refused because c would pass HLC_COUNTER_MAX */
    uint32_t counter_peak;    /* largest c this clock issued */
};

/* max_offset_ns must be at least the largest skew expected between honest clocks: an honest
 * m.l is some node's physical time at or before the send, which is no later than that node's clock
 * now, so it is at most the skew ahead of `now` (delay only makes it older) and is never refused.
 */
void hlc_init(struct hlc *h, uint64_t max_offset_ns);

/* A local or send event at physical time `now`:
 *   l' = max(l, pt);  c = (l' == l) ? c + 1 : 0
 * with pt = now rounded down to a tick. The timestamp goes to *out; it is strictly greater than
 * every one this clock issued before, and hlc_l(*out) >= pt even if `now` went backwards.
 * P4P_EAGAIN (counted, clock unchanged) when c would pass HLC_COUNTER_MAX: HLC_TICK_NS events
 * within one tick. Nothing is lost by waiting: call again once now >= hlc_retry_at(h, 0). */
int hlc_now(struct hlc *h, uint64_t now, uint64_t *out);

/* A receive event for a message stamped m, at physical time `now` (the paper's rules):
 *   l' = max(l, m.l, pt)
 *   c  = l' == l == m.l ? max(c, m.c) + 1  :  l' == l ? c + 1  :  l' == m.l ? m.c + 1  :  0
 * The new timestamp, greater than both the clock's last and m, goes to *out.
 * Refused, clock unchanged:
 *   P4P_EINVAL  m.l > now + max_offset_ns: the sender's clock is too far ahead (counted in
 *               rejected_count). The message should be dropped, or held until `now` catches up.
 *   P4P_EAGAIN  c would pass HLC_COUNTER_MAX (counted in exhausted_count); retry once
 *               now >= hlc_retry_at(h, m), at most max_offset_ns + HLC_TICK_NS after this
 *               `now` (as long as `now` never went backwards): pt alone exceeds l and m.l then.
 */
int hlc_recv(struct hlc *h, uint64_t now, uint64_t m, uint64_t *out);

/* After P4P_EAGAIN: the earliest `now` at which the event gets a fresh tick and c restarts at
 * 0, max(l, m.l) + HLC_TICK_NS (saturating). m is the refused message's timestamp, or 0 after
 * hlc_now. */
uint64_t hlc_retry_at(const struct hlc *h, uint64_t m);

/* Total order on events: by timestamp, then by actor bytes. -1, 0 or 1. */
int hlc_cmp(uint64_t a, const uint8_t actor_a[VV_ACTOR_LEN], uint64_t b,
            const uint8_t actor_b[VV_ACTOR_LEN]);

#endif /* P4P_CLOCK_H */
