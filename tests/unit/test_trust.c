/*
 * test_trust.c — unit tests for engine/trust.{h,c}, the bounded TOFU trust store.
 *
 * Scenarios for each rule of trust.h (first use, changed key, revocation under any name, pin
 * before contact, rebinding, unpin, forget, full with and without eviction, reserved
 * key-only names), then a fixed-seed random run of every operation against a plain-array
 * model of the documented rules, comparing every result and, regularly, the whole contents —
 * that also exercises the hash indexes' deletion. Persistence: exact bytes of a small store,
 * the same bytes whatever the insertion order and hash key, round trips, strict rejections,
 * and every truncation and byte flip of a saved store (rejected, or accepted only if it is
 * itself the canonical encoding of what was loaded), with the store unchanged on failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cbor.h"
#include "p4p/p4p.h"
#include "peerid.h"
#include "trust.h"

/* ---- Helpers ------------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Key number n: 32 bytes of n (the store does not care whether it is a curve point). */
static const uint8_t *key(unsigned n)
{
    static uint8_t keys[64][32];

    assert_true(n < 64);
    memset(keys[n], (int)n + 1, 32);
    return keys[n];
}

#define NAME(s) (const uint8_t *)(s), strlen(s)

static trust_store *make(uint32_t cap, unsigned flags)
{
    trust_store *s = NULL;

    assert_int_equal(trust_create(&s, cap, flags, NULL), 0);
    assert_non_null(s);
    return s;
}

static struct trust_stats stats_of(const trust_store *s)
{
    struct trust_stats st;

    trust_get_stats(s, &st);
    return st;
}

static size_t save(const trust_store *s, uint8_t *out, size_t cap)
{
    size_t n = 0;

    assert_int_equal(trust_save(s, out, cap, &n), 0);
    return n;
}

/* ---- Scenarios ----------------------------------------------------------------------------- */

static void test_create_args(void **state)
{
    trust_store *s = (trust_store *)(uintptr_t)1;
    uint8_t hk[16] = {1};
    (void)state;

    assert_int_equal(trust_create(&s, 0, 0, NULL), P4P_EINVAL);
    assert_int_equal(trust_create(&s, TRUST_CAP_MAX + 1, 0, NULL), P4P_EINVAL);
    assert_int_equal(trust_create(&s, 4, 0x80, NULL), P4P_EINVAL);
    assert_int_equal(trust_create(NULL, 4, 0, NULL), P4P_EINVAL);
    assert_ptr_equal(s, (trust_store *)(uintptr_t)1); /* untouched on failure */
    assert_int_equal(trust_create(&s, 5, TRUST_EVICT_TOFU, hk), 0);
    assert_int_equal(trust_capacity(s), 5);
    assert_int_equal(trust_count(s), 0);
    /* 5 entries, 16 slots in each index. */
    assert_true(trust_memory(s) >= 5 * sizeof(struct trust_entry) + 2 * 16 * sizeof(uint32_t));
    trust_destroy(s);
    trust_destroy(NULL);
}

static void test_tofu(void **state)
{
    trust_store *s = make(8, 0);
    struct trust_entry e;
    struct trust_stats st;
    (void)state;

    assert_int_equal(trust_check(s, 100, NAME("alice"), key(1), &e), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 200, NAME("alice"), key(1), &e), TRUST_ACCEPT_KNOWN);
    assert_int_equal(e.first_seen_ns, 100);
    assert_int_equal(e.last_seen_ns, 200);
    assert_int_equal(e.state, TRUST_TOFU);
    assert_true(peerid_matches_pk(&e.id, key(1)));
    /* A changed key is refused and the old binding reported. */
    memset(&e, 0, sizeof e);
    assert_int_equal(trust_check(s, 300, NAME("alice"), key(2), &e), TRUST_REFUSE_CHANGED_KEY);
    assert_memory_equal(e.pk, key(1), 32);
    assert_int_equal(e.name_len, 5);
    assert_memory_equal(e.name, "alice", 5);
    assert_int_equal(e.last_seen_ns, 200); /* a refusal is not a sighting */
    assert_int_equal(trust_check(s, 310, NAME("alice"), key(2), NULL), TRUST_REFUSE_CHANGED_KEY);
    /* An earlier clock does not move last_seen back. */
    assert_int_equal(trust_check(s, 150, NAME("alice"), key(1), &e), TRUST_ACCEPT_KNOWN);
    assert_int_equal(e.last_seen_ns, 200);
    /* The same key under another name is a new binding; names are exact bytes. */
    assert_int_equal(trust_check(s, 400, NAME("alice2"), key(1), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 400, NAME("Alice"), key(2), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_count(s), 3);

    st = stats_of(s);
    assert_int_equal(st.outcome[TRUST_ACCEPT_NEW], 3);
    assert_int_equal(st.outcome[TRUST_ACCEPT_KNOWN], 2);
    assert_int_equal(st.outcome[TRUST_REFUSE_CHANGED_KEY], 2);
    assert_int_equal(st.outcome[TRUST_REFUSE_REVOKED], 0);
    assert_int_equal(st.outcome[TRUST_REFUSE_FULL], 0);

    /* Bad names. */
    uint8_t longname[TRUST_NAME_MAX + 1];
    memset(longname, 'x', sizeof longname);
    assert_int_equal(trust_check(s, 1, longname, sizeof longname, key(1), NULL), P4P_EINVAL);
    assert_int_equal(trust_check(s, 1, longname, TRUST_NAME_MAX, key(1), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 1, NULL, 3, key(1), NULL), P4P_EINVAL);
    trust_destroy(s);
}

static void test_key_only(void **state)
{
    trust_store *s = make(8, 0);
    struct trust_entry e;
    uint8_t idbin[PEERID_BIN_LEN];
    struct peerid id;
    (void)state;

    assert_int_equal(trust_check(s, 1, NULL, 0, key(3), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 2, NULL, 0, key(3), &e), TRUST_ACCEPT_KNOWN);
    assert_int_equal(trust_check(s, 3, NULL, 0, key(4), NULL), TRUST_ACCEPT_NEW);
    /* The key-only entry is named by the binary peer ID. */
    peerid_from_pk(&id, key(3));
    peerid_to_bytes(&id, idbin);
    assert_int_equal(e.name_len, PEERID_BIN_LEN);
    assert_memory_equal(e.name, idbin, PEERID_BIN_LEN);
    assert_int_equal(trust_lookup(s, idbin, sizeof idbin, &e), 0);
    assert_memory_equal(e.pk, key(3), 32);
    /* That name is reserved for key 3: binding it to another key is refused. */
    assert_int_equal(trust_check(s, 4, idbin, sizeof idbin, key(4), NULL), P4P_EINVAL);
    assert_int_equal(trust_pin(s, 4, idbin, sizeof idbin, key(4)), P4P_EINVAL);
    assert_int_equal(trust_check(s, 4, idbin, sizeof idbin, key(3), NULL), TRUST_ACCEPT_KNOWN);
    assert_int_equal(trust_forget(s, idbin, sizeof idbin), 0);
    assert_int_equal(trust_check(s, 5, NULL, 0, key(3), NULL), TRUST_ACCEPT_NEW);
    trust_destroy(s);
}

static void test_revoke(void **state)
{
    trust_store *s = make(8, 0);
    struct trust_entry e;
    struct trust_stats st;
    (void)state;

    assert_int_equal(trust_check(s, 1, NAME("alice"), key(1), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 2, NAME("alice-phone"), key(1), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_pin(s, 3, NAME("alice-pinned"), key(1)), 0);
    assert_false(trust_is_revoked(s, key(1)));
    assert_int_equal(trust_revoke(s, 10, key(1)), 0);
    assert_true(trust_is_revoked(s, key(1)));
    assert_int_equal(trust_count(s), 3); /* no extra entry: the key was known */
    /* Every entry holding the key is revoked, pinned one included. */
    for (uint32_t i = 0; i < trust_count(s); i++) {
        assert_int_equal(trust_entry_at(s, i, &e), 0);
        assert_int_equal(e.state, TRUST_REVOKED);
    }
    assert_int_equal(trust_entry_at(s, 3, &e), P4P_ENOTFOUND);
    /* Refused under its names, under a new name (not remembered), and key-only. */
    assert_int_equal(trust_check(s, 11, NAME("alice"), key(1), &e), TRUST_REFUSE_REVOKED);
    assert_int_equal(e.state, TRUST_REVOKED);
    assert_int_equal(trust_check(s, 12, NAME("mallory"), key(1), NULL), TRUST_REFUSE_REVOKED);
    assert_int_equal(trust_check(s, 13, NULL, 0, key(1), NULL), TRUST_REFUSE_REVOKED);
    assert_int_equal(trust_count(s), 3);
    /* A revoked name refuses other keys too, until one is pinned. */
    assert_int_equal(trust_check(s, 14, NAME("alice"), key(2), NULL), TRUST_REFUSE_CHANGED_KEY);
    /* Revoked keys cannot be pinned; revoked entries cannot be unpinned or forgotten. */
    assert_int_equal(trust_pin(s, 15, NAME("bob"), key(1)), P4P_EINVAL);
    assert_int_equal(trust_unpin(s, NAME("alice")), P4P_EINVAL);
    assert_int_equal(trust_forget(s, NAME("alice")), P4P_EINVAL);
    /* Revoking again changes nothing. */
    assert_int_equal(trust_revoke(s, 16, key(1)), 0);
    assert_int_equal(trust_count(s), 3);

    /* Revoking an unknown key remembers it, key-only, and refuses it from the start. */
    assert_int_equal(trust_revoke(s, 20, key(5)), 0);
    assert_int_equal(trust_count(s), 4);
    assert_int_equal(trust_check(s, 21, NAME("carol"), key(5), &e), TRUST_REFUSE_REVOKED);
    assert_int_equal(e.name_len, PEERID_BIN_LEN);
    assert_int_equal(e.first_seen_ns, 20);

    st = stats_of(s);
    assert_int_equal(st.outcome[TRUST_REFUSE_REVOKED], 4);
    assert_int_equal(st.outcome[TRUST_REFUSE_CHANGED_KEY], 1);
    trust_destroy(s);
}

static void test_pin(void **state)
{
    trust_store *s = make(8, 0);
    struct trust_entry e;
    (void)state;

    /* Pinned before first contact: the first key must be the pinned one. */
    assert_int_equal(trust_pin(s, 5, NAME("dave"), key(2)), 0);
    assert_int_equal(trust_check(s, 6, NAME("dave"), key(3), &e), TRUST_REFUSE_CHANGED_KEY);
    assert_memory_equal(e.pk, key(2), 32);
    assert_int_equal(e.state, TRUST_PINNED);
    assert_int_equal(trust_check(s, 7, NAME("dave"), key(2), &e), TRUST_ACCEPT_KNOWN);
    assert_int_equal(e.first_seen_ns, 5);
    assert_int_equal(e.last_seen_ns, 7);

    /* Pinning the key a TOFU name already has keeps its times. */
    assert_int_equal(trust_check(s, 10, NAME("erin"), key(4), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_pin(s, 20, NAME("erin"), key(4)), 0);
    assert_int_equal(trust_lookup(s, NAME("erin"), &e), 0);
    assert_int_equal(e.state, TRUST_PINNED);
    assert_int_equal(e.first_seen_ns, 10);
    assert_int_equal(e.last_seen_ns, 10);

    /* Accepting a changed key = pinning it: the name is rebound. */
    assert_int_equal(trust_check(s, 30, NAME("erin"), key(5), NULL), TRUST_REFUSE_CHANGED_KEY);
    assert_int_equal(trust_pin(s, 31, NAME("erin"), key(5)), 0);
    assert_int_equal(trust_check(s, 32, NAME("erin"), key(5), &e), TRUST_ACCEPT_KNOWN);
    assert_int_equal(e.first_seen_ns, 31);
    assert_int_equal(trust_check(s, 33, NAME("erin"), key(4), NULL), TRUST_REFUSE_CHANGED_KEY);
    assert_int_equal(trust_count(s), 2);

    /* Unpin: back to TOFU, still bound. Forget needs TOFU. */
    assert_int_equal(trust_forget(s, NAME("erin")), P4P_EINVAL);
    assert_int_equal(trust_unpin(s, NAME("erin")), 0);
    assert_int_equal(trust_unpin(s, NAME("erin")), 0);
    assert_int_equal(trust_lookup(s, NAME("erin"), &e), 0);
    assert_int_equal(e.state, TRUST_TOFU);
    assert_int_equal(trust_check(s, 40, NAME("erin"), key(4), NULL), TRUST_REFUSE_CHANGED_KEY);
    assert_int_equal(trust_forget(s, NAME("erin")), 0);
    assert_int_equal(trust_lookup(s, NAME("erin"), &e), P4P_ENOTFOUND);
    assert_int_equal(trust_check(s, 41, NAME("erin"), key(4), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_unpin(s, NAME("nobody")), P4P_ENOTFOUND);
    assert_int_equal(trust_forget(s, NAME("nobody")), P4P_ENOTFOUND);
    assert_int_equal(trust_unpin(s, NULL, 0), P4P_EINVAL);
    assert_int_equal(trust_forget(s, NULL, 0), P4P_EINVAL);
    trust_destroy(s);
}

/* Rebinding a name whose key was revoked must not lose the revocation. */
static void test_rebind_revoked_name(void **state)
{
    trust_store *s = make(3, 0);
    struct trust_entry e;
    uint8_t idbin[PEERID_BIN_LEN];
    struct peerid id;
    (void)state;

    assert_int_equal(trust_check(s, 1, NAME("alice"), key(1), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_revoke(s, 2, key(1)), 0);
    assert_int_equal(trust_pin(s, 3, NAME("alice"), key(2)), 0);
    assert_true(trust_is_revoked(s, key(1)));
    assert_int_equal(trust_check(s, 4, NAME("alice"), key(2), NULL), TRUST_ACCEPT_KNOWN);
    assert_int_equal(trust_check(s, 5, NAME("x"), key(1), NULL), TRUST_REFUSE_REVOKED);
    /* The revocation lives on as key 1's key-only entry, with its times. */
    peerid_from_pk(&id, key(1));
    peerid_to_bytes(&id, idbin);
    assert_int_equal(trust_lookup(s, idbin, sizeof idbin, &e), 0);
    assert_int_equal(e.state, TRUST_REVOKED);
    assert_int_equal(e.first_seen_ns, 1);
    assert_int_equal(trust_count(s), 2);

    /* When the name's old key has other revoked entries, the name's entry simply goes. */
    assert_int_equal(trust_pin(s, 6, NAME("bob"), key(3)), 0); /* full now: 3 of 3 */
    assert_int_equal(trust_revoke(s, 7, key(3)), 0);
    /* Rebinding "bob" would need a free entry to keep key 3's revocation: none, no
     * eviction — refused, nothing changed. */
    assert_int_equal(trust_pin(s, 8, NAME("bob"), key(4)), P4P_EFULL);
    assert_int_equal(trust_lookup(s, NAME("bob"), &e), 0);
    assert_memory_equal(e.pk, key(3), 32);
    assert_int_equal(e.state, TRUST_REVOKED);
    assert_true(trust_is_revoked(s, key(3)));
    trust_destroy(s);
}

static void test_full_refuses(void **state)
{
    trust_store *s = make(3, 0);
    struct trust_stats st;
    (void)state;

    assert_int_equal(trust_check(s, 1, NAME("a"), key(1), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 2, NAME("b"), key(2), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 3, NAME("c"), key(3), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 4, NAME("d"), key(4), NULL), TRUST_REFUSE_FULL);
    assert_int_equal(trust_check(s, 4, NAME("d"), key(4), NULL), TRUST_REFUSE_FULL);
    assert_int_equal(trust_count(s), 3);
    /* Known bindings keep working; a changed key is still a changed key. */
    assert_int_equal(trust_check(s, 5, NAME("a"), key(1), NULL), TRUST_ACCEPT_KNOWN);
    assert_int_equal(trust_check(s, 5, NAME("a"), key(4), NULL), TRUST_REFUSE_CHANGED_KEY);
    assert_int_equal(trust_pin(s, 6, NAME("d"), key(4)), P4P_EFULL);
    assert_int_equal(trust_revoke(s, 6, key(9)), P4P_EFULL);
    /* Revoking a known key needs no room. */
    assert_int_equal(trust_revoke(s, 6, key(3)), 0);
    /* Room again after forgetting. */
    assert_int_equal(trust_forget(s, NAME("b")), 0);
    assert_int_equal(trust_check(s, 7, NAME("d"), key(4), NULL), TRUST_ACCEPT_NEW);
    st = stats_of(s);
    assert_int_equal(st.outcome[TRUST_REFUSE_FULL], 2);
    assert_int_equal(st.evicted, 0);
    trust_destroy(s);
}

static void test_full_evicts_oldest_tofu(void **state)
{
    trust_store *s = make(3, TRUST_EVICT_TOFU);
    struct trust_entry e;
    (void)state;

    assert_int_equal(trust_check(s, 1, NAME("a"), key(1), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 2, NAME("b"), key(2), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 3, NAME("c"), key(3), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 10, NAME("a"), key(1), NULL), TRUST_ACCEPT_KNOWN);
    /* b (last seen 2) is the least recently seen: it goes. */
    assert_int_equal(trust_check(s, 11, NAME("d"), key(4), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_lookup(s, NAME("b"), &e), P4P_ENOTFOUND);
    assert_int_equal(trust_lookup(s, NAME("a"), &e), 0);
    assert_int_equal(trust_lookup(s, NAME("c"), &e), 0);
    assert_int_equal(stats_of(s).evicted, 1);
    /* Pinned and revoked entries are never evicted. */
    assert_int_equal(trust_pin(s, 12, NAME("c"), key(3)), 0);
    assert_int_equal(trust_revoke(s, 12, key(4)), 0);
    assert_int_equal(trust_check(s, 13, NAME("e"), key(5), NULL), TRUST_ACCEPT_NEW); /* a goes */
    assert_int_equal(trust_lookup(s, NAME("a"), &e), P4P_ENOTFOUND);
    assert_int_equal(trust_pin(s, 14, NAME("e"), key(5)), 0);
    assert_int_equal(trust_check(s, 15, NAME("f"), key(6), NULL), TRUST_REFUSE_FULL);
    assert_int_equal(trust_revoke(s, 15, key(7)), P4P_EFULL);
    assert_int_equal(stats_of(s).evicted, 2);
    assert_int_equal(trust_count(s), 3);
    trust_destroy(s);
}

/* ---- Random operations against a model ----------------------------------------------------- */

struct model_entry {
    uint8_t name[TRUST_NAME_MAX];
    size_t name_len;
    unsigned key;
    enum trust_state state;
    uint64_t first, last;
};

struct model {
    struct model_entry e[64];
    size_t count, cap;
    int evict;
    uint64_t evicted;
};

static int m_find(const struct model *m, const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < m->count; i++) {
        if (m->e[i].name_len == len && memcmp(m->e[i].name, name, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int m_revoked(const struct model *m, unsigned k)
{
    for (size_t i = 0; i < m->count; i++) {
        if (m->e[i].key == k && m->e[i].state == TRUST_REVOKED) {
            return 1;
        }
    }
    return 0;
}

static void m_remove(struct model *m, int i)
{
    m->e[i] = m->e[--m->count];
}

static int m_has_tofu(const struct model *m)
{
    for (size_t i = 0; i < m->count; i++) {
        if (m->e[i].state == TRUST_TOFU) {
            return 1;
        }
    }
    return 0;
}

static int m_add(struct model *m, const uint8_t *name, size_t len, unsigned k, enum trust_state st,
                 uint64_t now)
{
    struct model_entry *e;

    if (m->count == m->cap) {
        int victim = -1;
        for (size_t i = 0; m->evict && i < m->count; i++) {
            if (m->e[i].state == TRUST_TOFU && (victim < 0 || m->e[i].last < m->e[victim].last)) {
                victim = (int)i;
            }
        }
        if (victim < 0) {
            return -1;
        }
        m_remove(m, victim);
        m->evicted++;
    }
    e = &m->e[m->count++];
    memcpy(e->name, name, len);
    e->name_len = len;
    e->key = k;
    e->state = st;
    e->first = e->last = now;
    return 0;
}

static void keyname(unsigned k, uint8_t out[PEERID_BIN_LEN])
{
    struct peerid id;

    peerid_from_pk(&id, key(k));
    peerid_to_bytes(&id, out);
}

static int m_check(struct model *m, uint64_t now, const uint8_t *name, size_t len, unsigned k)
{
    uint8_t kn[PEERID_BIN_LEN];
    int i;

    if (len == 0) {
        keyname(k, kn);
        name = kn;
        len = sizeof kn;
    }
    if (m_revoked(m, k)) {
        return TRUST_REFUSE_REVOKED;
    }
    i = m_find(m, name, len);
    if (i >= 0) {
        if (m->e[i].key != k) {
            return TRUST_REFUSE_CHANGED_KEY;
        }
        if (now > m->e[i].last) {
            m->e[i].last = now;
        }
        return TRUST_ACCEPT_KNOWN;
    }
    return m_add(m, name, len, k, TRUST_TOFU, now) == 0 ? TRUST_ACCEPT_NEW : TRUST_REFUSE_FULL;
}

static int m_pin(struct model *m, uint64_t now, const uint8_t *name, size_t len, unsigned k)
{
    uint8_t kn[PEERID_BIN_LEN];
    int i;

    if (len == 0) {
        keyname(k, kn);
        name = kn;
        len = sizeof kn;
    }
    if (m_revoked(m, k)) {
        return P4P_EINVAL;
    }
    i = m_find(m, name, len);
    if (i >= 0 && m->e[i].key == k) {
        m->e[i].state = TRUST_PINNED;
        return 0;
    }
    if (i >= 0) {
        size_t holders = 0;
        for (size_t j = 0; j < m->count; j++) {
            holders += m->e[j].key == m->e[i].key;
        }
        if (m->e[i].state != TRUST_REVOKED || holders > 1) {
            m_remove(m, i);
        } else {
            if (m->count == m->cap && !(m->evict && m_has_tofu(m))) {
                return P4P_EFULL;
            }
            keyname(m->e[i].key, m->e[i].name);
            m->e[i].name_len = PEERID_BIN_LEN;
        }
    }
    return m_add(m, name, len, k, TRUST_PINNED, now) == 0 ? 0 : P4P_EFULL;
}

static int m_revoke(struct model *m, uint64_t now, unsigned k)
{
    uint8_t kn[PEERID_BIN_LEN];
    int found = 0;

    for (size_t i = 0; i < m->count; i++) {
        if (m->e[i].key == k) {
            m->e[i].state = TRUST_REVOKED;
            found = 1;
        }
    }
    if (found) {
        return 0;
    }
    keyname(k, kn);
    return m_add(m, kn, sizeof kn, k, TRUST_REVOKED, now) == 0 ? 0 : P4P_EFULL;
}

static int m_unpin_forget(struct model *m, const uint8_t *name, size_t len, int forget)
{
    int i;

    if (len == 0) {
        return P4P_EINVAL;
    }
    i = m_find(m, name, len);
    if (i < 0) {
        return P4P_ENOTFOUND;
    }
    if (m->e[i].state == TRUST_REVOKED || (forget && m->e[i].state == TRUST_PINNED)) {
        return P4P_EINVAL;
    }
    if (forget) {
        m_remove(m, i);
    } else {
        m->e[i].state = TRUST_TOFU;
    }
    return 0;
}

static void compare_with_model(const trust_store *s, const struct model *m)
{
    assert_int_equal(trust_count(s), m->count);
    for (size_t i = 0; i < m->count; i++) {
        struct trust_entry e;
        const struct model_entry *me = &m->e[i];
        assert_int_equal(trust_lookup(s, me->name, me->name_len, &e), 0);
        assert_memory_equal(e.pk, key(me->key), 32);
        assert_int_equal(e.state, me->state);
        assert_int_equal(e.first_seen_ns, me->first);
        assert_int_equal(e.last_seen_ns, me->last);
    }
    for (uint32_t i = 0; i < trust_count(s); i++) {
        struct trust_entry e;
        assert_int_equal(trust_entry_at(s, i, &e), 0);
        assert_true(m_find(m, e.name, e.name_len) >= 0);
    }
}

static void run_model(uint64_t seed, uint32_t cap, unsigned flags, int steps)
{
    static const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"};
    trust_store *s = make(cap, flags);
    struct model m;
    uint8_t buf[16384];
    uint64_t now = 1;

    memset(&m, 0, sizeof m);
    m.cap = cap;
    m.evict = (flags & TRUST_EVICT_TOFU) != 0;
    for (int step = 0; step < steps; step++) {
        uint64_t r = rng_next(&seed);
        unsigned k = (unsigned)(rng_next(&seed) % 10);
        size_t ni = rng_next(&seed) % (sizeof names / sizeof names[0] + 2);
        const uint8_t *name = ni < 12 ? (const uint8_t *)names[ni] : NULL;
        size_t len = ni < 12 ? 1 : 0;
        unsigned op = (unsigned)(r % 100);
        now += 1 + rng_next(&seed) % 3;
        if (op < 60) {
            assert_int_equal(trust_check(s, now, name, len, key(k), NULL),
                             m_check(&m, now, name, len, k));
        } else if (op < 75) {
            assert_int_equal(trust_pin(s, now, name, len, key(k)), m_pin(&m, now, name, len, k));
        } else if (op < 80) {
            assert_int_equal(trust_revoke(s, now, key(k)), m_revoke(&m, now, k));
        } else if (op < 90) {
            assert_int_equal(trust_unpin(s, name, len), m_unpin_forget(&m, name, len, 0));
        } else {
            assert_int_equal(trust_forget(s, name, len), m_unpin_forget(&m, name, len, 1));
        }
        assert_int_equal(stats_of(s).evicted, m.evicted);
        if (step % 16 == 0) {
            compare_with_model(s, &m);
        }
        if (step % 97 == 0) {
            /* Save, load into a fresh store with another hash key, save again: same bytes. */
            trust_store *t;
            uint8_t hk[16], again[16384];
            size_t n = save(s, buf, sizeof buf);
            memset(hk, (int)step, sizeof hk);
            assert_int_equal(trust_create(&t, cap, flags, hk), 0);
            assert_int_equal(trust_load(t, buf, n), 0);
            assert_int_equal(save(t, again, sizeof again), n);
            assert_memory_equal(again, buf, n);
            compare_with_model(t, &m);
            trust_destroy(t);
        }
    }
    compare_with_model(s, &m);
    trust_destroy(s);
}

static void test_model_random(void **state)
{
    (void)state;
    run_model(1, 6, 0, 20000);
    run_model(2, 6, TRUST_EVICT_TOFU, 20000);
    run_model(3, 40, 0, 20000);
    run_model(4, 40, TRUST_EVICT_TOFU, 20000);
    run_model(5, 1, TRUST_EVICT_TOFU, 5000);
}

/* ---- Persistence --------------------------------------------------------------------------- */

static void test_save_exact_bytes(void **state)
{
    trust_store *s = make(4, 0);
    uint8_t buf[256], want[256];
    size_t n, need = 0;
    (void)state;

    n = save(s, buf, sizeof buf);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "\x82\x01\x80", 3);

    assert_int_equal(trust_check(s, 5, NAME("b"), key(1), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 7, NAME("b"), key(1), NULL), TRUST_ACCEPT_KNOWN);
    assert_int_equal(trust_pin(s, 300, NAME("a"), key(2)), 0);
    n = save(s, buf, sizeof buf);
    /* [1, [[h'61', key 2, 2, 300, 300], [h'62', key 1, 1, 5, 7]]] */
    size_t w = 0;
    memcpy(want + w, "\x82\x01\x82", 3);
    w += 3;
    memcpy(want + w, "\x85\x41\x61\x58\x20", 5);
    w += 5;
    memcpy(want + w, key(2), 32);
    w += 32;
    memcpy(want + w, "\x02\x19\x01\x2c\x19\x01\x2c", 7);
    w += 7;
    memcpy(want + w, "\x85\x41\x62\x58\x20", 5);
    w += 5;
    memcpy(want + w, key(1), 32);
    w += 32;
    memcpy(want + w, "\x01\x05\x07", 3);
    w += 3;
    assert_int_equal(n, w);
    assert_memory_equal(buf, want, w);

    /* Too small: says how much is needed. */
    assert_int_equal(trust_save(s, buf, 10, &need), P4P_ETOOBIG);
    assert_int_equal(need, w);
    trust_destroy(s);
}

static void test_save_order_independent(void **state)
{
    uint8_t hk[16];
    trust_store *a, *b;
    uint8_t ba[4096], bb[4096];
    size_t na, nb;
    (void)state;

    memset(hk, 0xab, sizeof hk);
    a = make(32, 0);
    assert_int_equal(trust_create(&b, 20, 0, hk), 0);
    for (unsigned i = 0; i < 20; i++) {
        char nm[8];
        unsigned j = 19 - i;
        snprintf(nm, sizeof nm, "n%u", i);
        assert_int_equal(trust_check(a, 10, NAME(nm), key(i), NULL), TRUST_ACCEPT_NEW);
        snprintf(nm, sizeof nm, "n%u", j);
        assert_int_equal(trust_check(b, 10, NAME(nm), key(j), NULL), TRUST_ACCEPT_NEW);
    }
    /* Churn in b that ends in the same contents. */
    assert_int_equal(trust_check(b, 10, NAME("tmp"), key(30), NULL), TRUST_REFUSE_FULL);
    assert_int_equal(trust_forget(b, NAME("n3")), 0);
    assert_int_equal(trust_check(b, 10, NAME("n3"), key(3), NULL), TRUST_ACCEPT_NEW);
    na = save(a, ba, sizeof ba);
    nb = save(b, bb, sizeof bb);
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    trust_destroy(a);
    trust_destroy(b);
}

/* A store whose saved form has every feature: TOFU, pinned, revoked, key-only. */
static trust_store *rich_store(void)
{
    trust_store *s = make(8, 0);

    assert_int_equal(trust_check(s, 5, NAME("alice"), key(1), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_check(s, 9, NAME("alice"), key(1), NULL), TRUST_ACCEPT_KNOWN);
    assert_int_equal(trust_pin(s, 20, NAME("bob"), key(2)), 0);
    assert_int_equal(trust_check(s, 30, NAME("carol"), key(3), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_revoke(s, 31, key(3)), 0);
    assert_int_equal(trust_revoke(s, 32, key(4)), 0);
    assert_int_equal(trust_check(s, 33, NULL, 0, key(5), NULL), TRUST_ACCEPT_NEW);
    return s;
}

static void test_load_roundtrip_and_unchanged_on_failure(void **state)
{
    trust_store *s = rich_store(), *t = make(8, 0), *small = make(4, 0);
    uint8_t buf[2048], before[2048], after[2048];
    size_t n, nb;
    struct trust_entry e;
    (void)state;

    n = save(s, buf, sizeof buf);
    assert_int_equal(trust_check(t, 1, NAME("zed"), key(9), NULL), TRUST_ACCEPT_NEW);
    assert_int_equal(trust_load(t, buf, n), 0);
    assert_int_equal(trust_count(t), 5);
    assert_int_equal(trust_lookup(t, NAME("zed"), &e), P4P_ENOTFOUND);
    assert_int_equal(trust_check(t, 40, NAME("alice"), key(1), &e), TRUST_ACCEPT_KNOWN);
    assert_int_equal(e.first_seen_ns, 5);
    assert_int_equal(trust_check(t, 41, NAME("bob"), key(6), NULL), TRUST_REFUSE_CHANGED_KEY);
    assert_int_equal(trust_check(t, 42, NAME("new"), key(4), NULL), TRUST_REFUSE_REVOKED);
    assert_int_equal(trust_check(t, 43, NULL, 0, key(5), NULL), TRUST_ACCEPT_KNOWN);
    /* Counters survive a load. */
    assert_int_equal(stats_of(t).outcome[TRUST_ACCEPT_NEW], 1);

    /* Too many entries for the capacity. */
    nb = save(small, before, sizeof before);
    assert_int_equal(trust_load(small, buf, n), P4P_EFULL);
    assert_int_equal(save(small, after, sizeof after), nb);
    assert_memory_equal(after, before, nb);

    /* Every truncation and every byte flip: rejected with t unchanged, or accepted only as
     * the canonical encoding of what was loaded. */
    nb = save(t, before, sizeof before);
    for (size_t k = 0; k < n; k++) {
        assert_int_not_equal(trust_load(t, buf, k), 0);
    }
    for (size_t i = 0; i < n; i++) {
        for (unsigned mask = 1; mask < 256; mask <<= 1) {
            buf[i] ^= (uint8_t)mask;
            if (trust_load(t, buf, n) == 0) {
                assert_int_equal(save(t, after, sizeof after), n);
                assert_memory_equal(after, buf, n);
                buf[i] ^= (uint8_t)mask;
                assert_int_equal(trust_load(t, before, nb), 0);
                continue;
            }
            buf[i] ^= (uint8_t)mask;
            assert_int_equal(save(t, after, sizeof after), nb);
            assert_memory_equal(after, before, nb);
        }
    }
    trust_destroy(s);
    trust_destroy(t);
    trust_destroy(small);
}

/* Hand-written saved stores that must be refused. */
static void test_load_rejects(void **state)
{
    trust_store *t = make(8, 0);
    uint8_t buf[1024], idbin[PEERID_BIN_LEN];
    struct cbor_writer w;
    (void)state;

#define ENTRY(nm, nlen, k, st, first, last)                                                        \
    do {                                                                                           \
        cbor_put_array(&w, 5);                                                                     \
        cbor_put_bstr(&w, nm, nlen);                                                               \
        cbor_put_bstr(&w, key(k), 32);                                                             \
        cbor_put_uint(&w, st);                                                                     \
        cbor_put_uint(&w, first);                                                                  \
        cbor_put_uint(&w, last);                                                                   \
    } while (0)
#define DOC(n)                                                                                     \
    do {                                                                                           \
        cbor_writer_init(&w, buf, sizeof buf);                                                     \
        cbor_put_array(&w, 2);                                                                     \
        cbor_put_uint(&w, 1);                                                                      \
        cbor_put_array(&w, n);                                                                     \
    } while (0)
#define EXPECT(rc) assert_int_equal(trust_load(t, buf, w.len), rc)

    DOC(2);
    ENTRY("a", 1, 1, TRUST_TOFU, 1, 2);
    ENTRY("b", 1, 2, TRUST_PINNED, 1, 1);
    EXPECT(0);
    DOC(2); /* out of order */
    ENTRY("b", 1, 2, TRUST_PINNED, 1, 1);
    ENTRY("a", 1, 1, TRUST_TOFU, 1, 2);
    EXPECT(P4P_EMALFORMED);
    DOC(2); /* duplicate name */
    ENTRY("a", 1, 1, TRUST_TOFU, 1, 2);
    ENTRY("a", 1, 2, TRUST_TOFU, 1, 2);
    EXPECT(P4P_EMALFORMED);
    DOC(2); /* a prefix sorts first: "a" < "ab" */
    ENTRY("ab", 2, 1, TRUST_TOFU, 1, 2);
    ENTRY("a", 1, 2, TRUST_TOFU, 1, 2);
    EXPECT(P4P_EMALFORMED);
    DOC(1);
    ENTRY("a", 1, 1, 0, 1, 2); /* state 0 */
    EXPECT(P4P_EMALFORMED);
    DOC(1);
    ENTRY("a", 1, 1, 4, 1, 2); /* state 4 */
    EXPECT(P4P_EMALFORMED);
    DOC(1);
    ENTRY("a", 1, 1, TRUST_TOFU, 3, 2); /* first > last */
    EXPECT(P4P_EMALFORMED);
    DOC(1);
    ENTRY("", 0, 1, TRUST_TOFU, 1, 2); /* empty name */
    EXPECT(P4P_EMALFORMED);
    DOC(1);
    ENTRY("0123456789012345678901234567890123456789012345678901234567890123X", 65, 1, TRUST_TOFU, 1,
          2);
    EXPECT(P4P_EMALFORMED);
    DOC(2); /* key 1 revoked under "a" but not under "b" */
    ENTRY("a", 1, 1, TRUST_REVOKED, 1, 2);
    ENTRY("b", 1, 1, TRUST_TOFU, 1, 2);
    EXPECT(P4P_EMALFORMED);
    DOC(1); /* key 2's key-only name bound to key 1 */
    keyname(2, idbin);
    ENTRY(idbin, sizeof idbin, 1, TRUST_TOFU, 1, 2);
    EXPECT(P4P_EMALFORMED);
    DOC(1); /* ... its own key-only name is fine */
    keyname(1, idbin);
    ENTRY(idbin, sizeof idbin, 1, TRUST_TOFU, 1, 2);
    EXPECT(0);
    DOC(1); /* short key */
    cbor_put_array(&w, 5);
    cbor_put_bstr(&w, "a", 1);
    cbor_put_bstr(&w, key(1), 31);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, 1);
    EXPECT(P4P_EMALFORMED);
    DOC(1); /* a sixth field */
    cbor_put_array(&w, 6);
    cbor_put_bstr(&w, "a", 1);
    cbor_put_bstr(&w, key(1), 32);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, 1);
    cbor_put_uint(&w, 1);
    EXPECT(P4P_EMALFORMED);
    DOC(9); /* more than the capacity */
    for (unsigned i = 0; i < 9; i++) {
        char nm[2] = {(char)('a' + i), 0};
        ENTRY(nm, 1, i, TRUST_TOFU, 1, 1);
    }
    EXPECT(P4P_EFULL);
    DOC(0); /* trailing byte */
    cbor_put_uint(&w, 0);
    EXPECT(P4P_EMALFORMED);
    cbor_writer_init(&w, buf, sizeof buf); /* version 2 */
    cbor_put_array(&w, 2);
    cbor_put_uint(&w, 2);
    cbor_put_array(&w, 0);
    EXPECT(P4P_EVERSION);
    cbor_writer_init(&w, buf, sizeof buf); /* not deterministic: version as 18 01 */
    cbor_put_array(&w, 2);
    cbor_put_raw(&w, "\x18\x01", 2);
    cbor_put_array(&w, 0);
    EXPECT(P4P_EMALFORMED);
    assert_int_equal(trust_load(t, buf, 0), P4P_EMALFORMED);
#undef ENTRY
#undef DOC
#undef EXPECT
    trust_destroy(t);
}

static void test_load_random_junk(void **state)
{
    trust_store *t = make(8, 0);
    uint64_t seed = 99;
    uint8_t buf[300];
    (void)state;

    for (int iter = 0; iter < 20000; iter++) {
        size_t n = rng_next(&seed) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            buf[i] = (uint8_t)rng_next(&seed);
        }
        if (n >= 3 && iter % 2) {
            memcpy(buf, "\x82\x01\x81\x85", n < 4 ? n : 4);
        }
        (void)trust_load(t, buf, n);
    }
    trust_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_args),
        cmocka_unit_test(test_tofu),
        cmocka_unit_test(test_key_only),
        cmocka_unit_test(test_revoke),
        cmocka_unit_test(test_pin),
        cmocka_unit_test(test_rebind_revoked_name),
        cmocka_unit_test(test_full_refuses),
        cmocka_unit_test(test_full_evicts_oldest_tofu),
        cmocka_unit_test(test_model_random),
        cmocka_unit_test(test_save_exact_bytes),
        cmocka_unit_test(test_save_order_independent),
        cmocka_unit_test(test_load_roundtrip_and_unchanged_on_failure),
        cmocka_unit_test(test_load_rejects),
        cmocka_unit_test(test_load_random_junk),
    };

    if (sodium_init() < 0) {
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
