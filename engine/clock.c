/*
 * clock.c — see clock.h.
 */
#include "clock.h"

#include <string.h>

#include "p4p/p4p.h"

/* ---- Lamport clock ------------------------------------------------------------------------- */

int lamport_tick(struct lamport *c, uint64_t *out)
{
    if (c->time == UINT64_MAX) {
        return P4P_ETOOBIG;
    }
    *out = ++c->time;
    return 0;
}

int lamport_recv(struct lamport *c, uint64_t m, uint64_t *out)
{
    uint64_t t = c->time > m ? c->time : m;
    if (t == UINT64_MAX) {
        return P4P_ETOOBIG;
    }
    c->time = t + 1;
    *out = c->time;
    return 0;
}

/* ---- Version vectors ----------------------------------------------------------------------- */

void vv_init(struct vv *v)
{
    v->count = 0;
}

/* The index of `actor`, or of the first entry above it (*found says which). */
static uint32_t vv_find(const struct vv *v, const uint8_t *actor, int *found)
{
    uint32_t lo = 0, hi = v->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int d = memcmp(v->e[mid].actor, actor, VV_ACTOR_LEN);
        if (d == 0) {
            *found = 1;
            return mid;
        }
        if (d < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = 0;
    return lo;
}

uint64_t vv_get(const struct vv *v, const uint8_t actor[VV_ACTOR_LEN])
{
    int found;
    uint32_t i = vv_find(v, actor, &found);
    return found ? v->e[i].counter : 0;
}

int vv_increment(struct vv *v, const uint8_t actor[VV_ACTOR_LEN], uint64_t *out)
{
    int found;
    uint32_t i = vv_find(v, actor, &found);
    if (found) {
        if (v->e[i].counter == UINT64_MAX) {
            return P4P_ETOOBIG;
        }
        v->e[i].counter++;
    } else {
        if (v->count == VV_ACTORS_MAX) {
            return P4P_EFULL;
        }
        memmove(&v->e[i + 1], &v->e[i], (v->count - i) * sizeof(v->e[0]));
        memcpy(v->e[i].actor, actor, VV_ACTOR_LEN);
        v->e[i].counter = 1;
        v->count++;
    }
    if (out != NULL) {
        *out = v->e[i].counter;
    }
    return 0;
}

/* Both vectors are sorted by actor, so merge and compare walk them side by side. */
int vv_merge(struct vv *dst, const struct vv *src)
{
    struct vv m;
    uint32_t i = 0, j = 0;

    m.count = 0;
    while (i < dst->count || j < src->count) {
        int d = i == dst->count   ? 1
                : j == src->count ? -1
                                  : memcmp(dst->e[i].actor, src->e[j].actor, VV_ACTOR_LEN);
        if (m.count == VV_ACTORS_MAX) {
            return P4P_EFULL;
        }
        if (d < 0) {
            m.e[m.count++] = dst->e[i++];
        } else if (d > 0) {
            m.e[m.count++] = src->e[j++];
        } else {
            m.e[m.count] = dst->e[i];
            if (src->e[j].counter > m.e[m.count].counter) {
                m.e[m.count].counter = src->e[j].counter;
            }
            m.count++;
            i++;
            j++;
        }
    }
    dst->count = m.count;
    memcpy(dst->e, m.e, m.count * sizeof(m.e[0]));
    return 0;
}

enum vv_order vv_compare(const struct vv *a, const struct vv *b)
{
    int a_more = 0, b_more = 0; /* some counter of a (of b) is larger */
    uint32_t i = 0, j = 0;

    while ((i < a->count || j < b->count) && !(a_more && b_more)) {
        int d = i == a->count   ? 1
                : j == b->count ? -1
                                : memcmp(a->e[i].actor, b->e[j].actor, VV_ACTOR_LEN);
        if (d < 0) {
            a_more = 1; /* counters are >= 1, so an actor only a has is larger there */
            i++;
        } else if (d > 0) {
            b_more = 1;
            j++;
        } else {
            a_more |= a->e[i].counter > b->e[j].counter;
            b_more |= a->e[i].counter < b->e[j].counter;
            i++;
            j++;
        }
    }
    if (a_more && b_more) {
        return VV_CONCURRENT;
    }
    return a_more ? VV_AFTER : b_more ? VV_BEFORE : VV_EQUAL;
}

int vv_encode(const struct vv *v, struct cbor_writer *w)
{
    cbor_put_map(w, v->count);
    for (uint32_t i = 0; i < v->count; i++) {
        cbor_put_bstr(w, v->e[i].actor, VV_ACTOR_LEN);
        cbor_put_uint(w, v->e[i].counter);
    }
    return cbor_writer_ok(w) ? 0 : P4P_ETOOBIG;
}

int vv_decode(struct cbor_reader *r, struct vv *out)
{
    struct cbor_reader rr = *r; /* the caller's reader moves only on success */
    struct vv v;
    uint64_t n;

    if (cbor_get_map(&rr, &n) != 0) {
        return P4P_EMALFORMED;
    }
    if (n > VV_ACTORS_MAX) {
        return P4P_EFULL;
    }
    v.count = 0;
    for (uint64_t k = 0; k < n; k++) {
        const uint8_t *actor;
        size_t len;
        uint64_t counter;
        if (cbor_get_bstr(&rr, &actor, &len) != 0 || len != VV_ACTOR_LEN ||
            cbor_get_uint(&rr, &counter) != 0 || counter == 0) {
            return P4P_EMALFORMED;
        }
        /* Strictly ascending keys: sorted, and no duplicates. */
        if (v.count > 0 && memcmp(v.e[v.count - 1].actor, actor, VV_ACTOR_LEN) >= 0) {
            return P4P_EMALFORMED;
        }
        memcpy(v.e[v.count].actor, actor, VV_ACTOR_LEN);
        v.e[v.count].counter = counter;
        v.count++;
    }
    *r = rr;
    out->count = v.count;
    memcpy(out->e, v.e, v.count * sizeof(v.e[0]));
    return 0;
}

/* ---- Hybrid logical clock ------------------------------------------------------------------ */

void hlc_init(struct hlc *h, uint64_t max_offset_ns)
{
    *h = (struct hlc){.max_offset_ns = max_offset_ns};
}

/* Records an event with physical part l and counter c (c <= HLC_COUNTER_MAX checked). */
static uint64_t hlc_set(struct hlc *h, uint64_t l, uint64_t c)
{
    h->last = hlc_make(l, (uint32_t)c);
    if (c > h->counter_peak) {
        h->counter_peak = (uint32_t)c;
    }
    return h->last;
}

int hlc_now(struct hlc *h, uint64_t now, uint64_t *out)
{
    uint64_t l = hlc_l(h->last), pt = hlc_l(now);

    if (pt > l) {
        *out = hlc_set(h, pt, 0);
        return 0;
    }
    /* The physical clock has not passed l: the counter orders this event. */
    if (hlc_c(h->last) == HLC_COUNTER_MAX) {
        h->exhausted_count++;
        return P4P_EAGAIN;
    }
    *out = hlc_set(h, l, hlc_c(h->last) + 1u);
    return 0;
}

int hlc_recv(struct hlc *h, uint64_t now, uint64_t m, uint64_t *out)
{
    uint64_t l = hlc_l(h->last), c = hlc_c(h->last);
    uint64_t ml = hlc_l(m), mc = hlc_c(m), pt = hlc_l(now);
    uint64_t horizon = now > UINT64_MAX - h->max_offset_ns ? UINT64_MAX : now + h->max_offset_ns;
    uint64_t nl, nc;

    if (ml > horizon) {
        h->rejected_count++;
        return P4P_EINVAL;
    }
    nl = l > ml ? l : ml;
    nl = nl > pt ? nl : pt;
    if (nl == l && nl == ml) {
        nc = (c > mc ? c : mc) + 1;
    } else if (nl == l) {
        nc = c + 1;
    } else if (nl == ml) {
        nc = mc + 1;
    } else {
        nc = 0;
    }
    if (nc > HLC_COUNTER_MAX) {
        h->exhausted_count++;
        return P4P_EAGAIN;
    }
    *out = hlc_set(h, nl, nc);
    return 0;
}

uint64_t hlc_retry_at(const struct hlc *h, uint64_t m)
{
    uint64_t l = hlc_l(h->last) > hlc_l(m) ? hlc_l(h->last) : hlc_l(m);
    return l > UINT64_MAX - HLC_TICK_NS ? UINT64_MAX : l + HLC_TICK_NS;
}

int hlc_cmp(uint64_t a, const uint8_t actor_a[VV_ACTOR_LEN], uint64_t b,
            const uint8_t actor_b[VV_ACTOR_LEN])
{
    int d;
    if (a != b) {
        return a < b ? -1 : 1;
    }
    d = memcmp(actor_a, actor_b, VV_ACTOR_LEN);
    return (d > 0) - (d < 0);
}
