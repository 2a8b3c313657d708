/*
 * storage_suite.h — the conformance suite every storage backend (p4p/storage.h) passes. A test
 * file includes it, describes its backend in a struct suite_backend and calls
 * storage_suite_run(), which runs one cmocka group named after the backend.
 *
 * Most tests drive the store and a reference model side by side: a plain list of log records,
 * a value per key of a small key universe, a present flag per chunk id. The model keeps two
 * states, the last commit and the open transaction's view, and after each step the whole store
 * is compared with the right one (log count, every record through a scan from 1 and from the
 * middle, every key, every chunk). What is checked:
 *
 *   log      indices from 1, order, scan from the middle or past the end, a callback that
 *            stops the scan, truncation, indices continuing across reopen;
 *   kv       put, get, overwrite, delete, missing keys, P4P_ETOOBIG with *vlen, keys that are
 *            prefixes of each other or hold zero bytes, kv and chunks as separate namespaces;
 *   chunks   put, get, has, delete, deduplication (stored_bytes unchanged, old data kept);
 *   sizes    empty and 1 MiB records, values and chunks;
 *   batches  writes outside a transaction are P4P_EINVAL; reads see the batch's own writes;
 *            abort and close discard all of it (log, kv, chunks, truncation); commits survive;
 *   crashes  a power cut (fail_after) at every write call of a fixed workload, then reopen:
 *            the store equals the last successful commit, and works;
 *   fence    a handle opened before a newer one gets P4P_EFENCED from commit and its batch is
 *            never seen, whether it began before or after the newer open;
 *   damage   a flipped bit in record i: the scan delivers 1..i-1, then P4P_ECORRUPT with
 *            bad_index i; truncating to i-1 repairs the log;
 *   stats    commits, aborts, records, logical_bytes, written_bytes >= logical_bytes;
 *   random   a few thousand seeded operations with aborts, reopens and power cuts.
 *
 * What the suite assumes of the test hooks: fail_after counts only write calls made inside a
 * transaction on a current handle (every one the suite makes is); corrupt() is called while a
 * handle is open and idle, and the next read on that handle must see the damage; a negative
 * return from corrupt() means "unsupported" and skips that test. Where storage.h leaves a
 * choice open the suite accepts either: begin and writes on a fenced handle may return 0 or
 * P4P_EFENCED (commit must say P4P_EFENCED); chunk_del of a missing id may be 0 or
 * P4P_ENOTFOUND; stats may be per handle or per disk (only differences within one handle are
 * checked).
 */
#ifndef P4P_STORAGE_SUITE_H
#define P4P_STORAGE_SUITE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "p4p/p4p.h"
#include "p4p/storage.h"

struct suite_backend {
    const char *name;
    void *(*create)(void);                            /* a fresh empty "disk" (NULL on failure) */
    int (*open)(void *disk, struct p4p_storage *out); /* a handle on it: a new epoch */
    void (*close)(struct p4p_storage *st);            /* drop the handle like a process death */
    void (*destroy)(void *disk);
    /* The `writes`-th write call from now (log_append, kv_put, kv_del, chunk_put, chunk_del,
     * log_truncate, commit) fails with P4P_EIO and so does every one after it; 0 = never. */
    void (*fail_after)(struct p4p_storage *st, uint64_t writes);
    /* Flips one bit of the stored data of log record `record_index` (from 1): 0 when done,
     * negative when unsupported. */
    int (*corrupt)(void *disk, uint64_t nth_byte_of_record_data, uint64_t record_index);
};

#define SUITE_KEYS 24
#define SUITE_IDS  16
#define SUITE_MIB  ((size_t)1 << 20)

/* ---- Deterministic data --------------------------------------------------------------------- */

static inline uint64_t suite_mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t suite_below(uint64_t *s, uint64_t n)
{
    return suite_mix(s) % n;
}

static inline void suite_fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x2545f4914f6cdd1dull + n;
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(suite_mix(&s) >> 24);
    }
}

/* ---- The reference model -------------------------------------------------------------------- */

struct suite_blob {
    const uint8_t *p;
    size_t len;
};

struct suite_model {
    struct suite_blob *log;
    size_t log_n, log_cap;
    struct suite_blob kv[SUITE_KEYS];
    uint8_t kv_has[SUITE_KEYS];
    uint8_t ch_has[SUITE_IDS];
};

/* Every byte string a test makes lives here until the test ends; blobs never change. */
struct suite_pool {
    void **p;
    size_t n, cap;
};

struct suite_ctx {
    const struct suite_backend *b;
    void *disk;
    struct p4p_storage st;
    struct suite_model cur, done; /* the open transaction's view; the last commit */
    struct suite_pool pool;
    struct suite_blob key[SUITE_KEYS], id[SUITE_IDS], chunk[SUITE_IDS];
    int in_tx;
    uint64_t writes;  /* write calls made */
    uint64_t fail_in; /* write calls until the armed power cut; 0 = unarmed */
    int cut;          /* the power cut happened: every write call must fail */
};

static inline struct suite_blob suite_pool_add(struct suite_pool *pl, const void *data, size_t len)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 64;
        void **p = realloc(pl->p, cap * sizeof(*p));
        assert_non_null(p);
        pl->p = p;
        pl->cap = cap;
    }
    uint8_t *q = malloc(len ? len : 1);
    assert_non_null(q);
    if (data && len) {
        memcpy(q, data, len);
    }
    pl->p[pl->n++] = q;
    return (struct suite_blob){q, len};
}

/* A new blob of `len` bytes generated from `seed`. */
static inline struct suite_blob suite_gen(struct suite_ctx *c, size_t len, uint64_t seed)
{
    struct suite_blob b = suite_pool_add(&c->pool, NULL, len);
    suite_fill((uint8_t *)b.p, len, seed);
    return b;
}

static inline void suite_model_assign(struct suite_model *dst, const struct suite_model *src)
{
    if (dst->log_cap < src->log_n) {
        size_t cap = src->log_n + src->log_n / 2 + 16;
        struct suite_blob *p = realloc(dst->log, cap * sizeof(*p));
        assert_non_null(p);
        dst->log = p;
        dst->log_cap = cap;
    }
    if (src->log_n) {
        memcpy(dst->log, src->log, src->log_n * sizeof(*src->log));
    }
    dst->log_n = src->log_n;
    memcpy(dst->kv, src->kv, sizeof(dst->kv));
    memcpy(dst->kv_has, src->kv_has, sizeof(dst->kv_has));
    memcpy(dst->ch_has, src->ch_has, sizeof(dst->ch_has));
}

static inline void suite_model_push(struct suite_model *m, struct suite_blob rec)
{
    if (m->log_n == m->log_cap) {
        size_t cap = m->log_cap ? m->log_cap * 2 : 16;
        struct suite_blob *p = realloc(m->log, cap * sizeof(*p));
        assert_non_null(p);
        m->log = p;
        m->log_cap = cap;
    }
    m->log[m->log_n++] = rec;
}

/* The key universe: prefixes of each other, zero bytes, a long key, and key 6 has the same
 * bytes as chunk id 0 (kv and chunks are separate namespaces). Chunk 1 is empty, chunk 2 is
 * 70,000 bytes, the last one 1 MiB. */
static inline void suite_make_universe(struct suite_ctx *c)
{
    for (size_t i = 0; i < SUITE_IDS; i++) {
        c->id[i] = suite_gen(c, P4P_CHUNK_ID_LEN, 1000 + i);
        size_t len = 1 + (i * 97) % 700;
        len = i == 1 ? 0 : i == 2 ? 70000 : i == SUITE_IDS - 1 ? SUITE_MIB : len;
        c->chunk[i] = suite_gen(c, len, 2000 + i);
    }
    static const uint8_t zeros[2] = {0, 0};
    c->key[0] = suite_pool_add(&c->pool, "a", 1);
    c->key[1] = suite_pool_add(&c->pool, "ab", 2);
    c->key[2] = suite_pool_add(&c->pool, "abc", 3);
    c->key[3] = suite_pool_add(&c->pool, zeros, 1);
    c->key[4] = suite_pool_add(&c->pool, zeros, 2);
    c->key[5] = suite_gen(c, 200, 3005);
    c->key[6] = suite_pool_add(&c->pool, c->id[0].p, P4P_CHUNK_ID_LEN);
    for (size_t i = 7; i < SUITE_KEYS; i++) {
        c->key[i] = suite_gen(c, 1 + i % 13, 3000 + i);
        ((uint8_t *)c->key[i].p)[0] = (uint8_t)(0x80 + i); /* distinct from each other */
    }
}

static inline void suite_open_into(struct suite_ctx *c, struct p4p_storage *st)
{
    memset(st, 0, sizeof(*st));
    assert_int_equal(c->b->open(c->disk, st), 0);
    assert_non_null(st->ops);
}

static inline void suite_init(struct suite_ctx *c, const struct suite_backend *b)
{
    memset(c, 0, sizeof(*c));
    c->b = b;
    c->disk = b->create();
    assert_non_null(c->disk);
    suite_open_into(c, &c->st);
    suite_make_universe(c);
}

static inline void suite_free(struct suite_ctx *c)
{
    if (c->st.ops) {
        c->b->close(&c->st);
    }
    c->b->destroy(c->disk);
    for (size_t i = 0; i < c->pool.n; i++) {
        free(c->pool.p[i]);
    }
    free(c->pool.p);
    free(c->cur.log);
    free(c->done.log);
}

/* ---- Operations on store and model together ------------------------------------------------- */

/* Around every write call: advance the mirror of the power-cut countdown, check its effect. */
static inline void suite_w_before(struct suite_ctx *c)
{
    c->writes++;
    if (c->fail_in && --c->fail_in == 0) {
        c->cut = 1;
    }
}

static inline int suite_w_after(struct suite_ctx *c, int rc)
{
    if (c->cut) {
        assert_int_equal(rc, P4P_EIO);
    }
    return rc;
}

static inline void suite_arm(struct suite_ctx *c, uint64_t writes)
{
    c->b->fail_after(&c->st, writes);
    c->fail_in = writes;
}

static inline int suite_begin(struct suite_ctx *c)
{
    int rc = c->st.ops->begin(c->st.ctx);
    assert_int_equal(rc, 0);
    c->in_tx = 1;
    return rc;
}

static inline int suite_commit(struct suite_ctx *c)
{
    suite_w_before(c);
    int rc = suite_w_after(c, c->st.ops->commit(c->st.ctx));
    if (rc == 0) {
        suite_model_assign(&c->done, &c->cur);
    } else {
        suite_model_assign(&c->cur, &c->done); /* a failed commit discards the batch */
    }
    c->in_tx = 0;
    return rc;
}

static inline void suite_abort(struct suite_ctx *c)
{
    c->st.ops->abort(c->st.ctx);
    suite_model_assign(&c->cur, &c->done);
    c->in_tx = 0;
}

/* Drops the handle like a crash and opens a new one. */
static inline void suite_reopen(struct suite_ctx *c)
{
    c->b->close(&c->st);
    suite_open_into(c, &c->st);
    suite_model_assign(&c->cur, &c->done);
    c->in_tx = 0;
    c->fail_in = 0;
    c->cut = 0;
}

static inline int suite_append(struct suite_ctx *c, struct suite_blob rec)
{
    uint64_t index = 0;
    suite_w_before(c);
    int rc = suite_w_after(c, c->st.ops->log_append(c->st.ctx, rec.p, rec.len, &index));
    if (rc == 0) {
        assert_int_equal(index, c->cur.log_n + 1);
        suite_model_push(&c->cur, rec);
    }
    return rc;
}

static inline int suite_append_gen(struct suite_ctx *c, size_t len, uint64_t seed)
{
    return suite_append(c, suite_gen(c, len, seed));
}

static inline int suite_truncate(struct suite_ctx *c, uint64_t count)
{
    suite_w_before(c);
    int rc = suite_w_after(c, c->st.ops->log_truncate(c->st.ctx, count));
    if (rc == 0 && count < c->cur.log_n) {
        c->cur.log_n = count;
    }
    return rc;
}

static inline int suite_kv_put(struct suite_ctx *c, size_t k, struct suite_blob val)
{
    suite_w_before(c);
    const struct suite_blob *key = &c->key[k];
    int rc = suite_w_after(c, c->st.ops->kv_put(c->st.ctx, key->p, key->len, val.p, val.len));
    if (rc == 0) {
        c->cur.kv[k] = val;
        c->cur.kv_has[k] = 1;
    }
    return rc;
}

static inline int suite_kv_put_gen(struct suite_ctx *c, size_t k, size_t len, uint64_t seed)
{
    return suite_kv_put(c, k, suite_gen(c, len, seed));
}

static inline int suite_kv_del(struct suite_ctx *c, size_t k)
{
    suite_w_before(c);
    int rc = suite_w_after(c, c->st.ops->kv_del(c->st.ctx, c->key[k].p, c->key[k].len));
    if (rc == 0) {
        c->cur.kv_has[k] = 0;
    }
    return rc;
}

static inline int suite_chunk_put(struct suite_ctx *c, size_t i)
{
    suite_w_before(c);
    const struct suite_blob *d = &c->chunk[i];
    int rc = suite_w_after(c, c->st.ops->chunk_put(c->st.ctx, c->id[i].p, d->p, d->len));
    if (rc == 0) {
        c->cur.ch_has[i] = 1;
    }
    return rc;
}

static inline int suite_chunk_del(struct suite_ctx *c, size_t i)
{
    suite_w_before(c);
    int rc = suite_w_after(c, c->st.ops->chunk_del(c->st.ctx, c->id[i].p));
    if (rc == 0) {
        c->cur.ch_has[i] = 0;
    }
    return rc;
}

static inline void suite_stats(struct suite_ctx *c, struct p4p_storage_stats *out)
{
    memset(out, 0xa5, sizeof(*out));
    c->st.ops->stats(c->st.ctx, out);
}

/* ---- Comparing the store with the model ----------------------------------------------------- */

/* A scan callback that compares each record with the model's and counts calls. */
struct suite_scan {
    const struct suite_model *m;
    uint64_t next;  /* index expected next */
    uint64_t calls; /* records delivered */
    uint64_t stop;  /* stop (return 7) at this call; 0 = never */
    int bad;        /* a record out of order, beyond the model, or with other bytes */
};

static inline int suite_scan_fn(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    struct suite_scan *s = arg;
    s->calls++;
    if (index != s->next || index == 0 || index > s->m->log_n) {
        s->bad = 1;
    } else {
        const struct suite_blob *e = &s->m->log[index - 1];
        if (len != e->len || (len && (!rec || memcmp(rec, e->p, len)))) {
            s->bad = 1;
        }
    }
    s->next = index + 1;
    return s->stop && s->calls == s->stop ? 7 : 0;
}

/* Scans from `from` and returns the result; *sc has the calls and the verdict. */
static inline int suite_scan_from(struct suite_ctx *c, const struct suite_model *m, uint64_t from,
                                  struct suite_scan *sc, uint64_t *bad_index)
{
    *sc = (struct suite_scan){m, from, 0, 0, 0};
    return c->st.ops->log_scan(c->st.ctx, from, suite_scan_fn, sc, bad_index);
}

static inline void suite_check_log(struct suite_ctx *c, const struct suite_model *m)
{
    assert_int_equal(c->st.ops->log_count(c->st.ctx), m->log_n);
    struct suite_scan sc;
    uint64_t bad = 0;
    assert_int_equal(suite_scan_from(c, m, 1, &sc, &bad), 0);
    assert_int_equal(sc.calls, m->log_n);
    assert_false(sc.bad);
    uint64_t mid = m->log_n / 2 + 1;
    assert_int_equal(suite_scan_from(c, m, mid, &sc, &bad), 0);
    assert_int_equal(sc.calls, m->log_n + 1 - mid);
    assert_false(sc.bad);
}

static inline void suite_check_kv(struct suite_ctx *c, const struct suite_model *m, size_t k)
{
    const struct suite_blob *key = &c->key[k];
    size_t want = m->kv_has[k] ? m->kv[k].len : 0, vlen = (size_t)-1;
    uint8_t *buf = malloc(want + 1);
    assert_non_null(buf);
    int rc = c->st.ops->kv_get(c->st.ctx, key->p, key->len, buf, want, &vlen);
    if (m->kv_has[k]) {
        assert_int_equal(rc, 0);
        assert_int_equal(vlen, want);
        if (want) {
            assert_memory_equal(buf, m->kv[k].p, want);
        }
    } else {
        assert_int_equal(rc, P4P_ENOTFOUND);
    }
    free(buf);
}

static inline void suite_check_chunk(struct suite_ctx *c, const struct suite_model *m, size_t i)
{
    size_t want = c->chunk[i].len, len = (size_t)-1;
    assert_int_equal(c->st.ops->chunk_has(c->st.ctx, c->id[i].p), m->ch_has[i]);
    uint8_t *buf = malloc(want + 1);
    assert_non_null(buf);
    int rc = c->st.ops->chunk_get(c->st.ctx, c->id[i].p, buf, want, &len);
    if (m->ch_has[i]) {
        assert_int_equal(rc, 0);
        assert_int_equal(len, want);
        if (want) {
            assert_memory_equal(buf, c->chunk[i].p, want);
        }
    } else {
        assert_int_equal(rc, P4P_ENOTFOUND);
    }
    free(buf);
}

/* The whole store against the model's current view. */
static inline void suite_check(struct suite_ctx *c)
{
    suite_check_log(c, &c->cur);
    for (size_t k = 0; k < SUITE_KEYS; k++) {
        suite_check_kv(c, &c->cur, k);
    }
    for (size_t i = 0; i < SUITE_IDS; i++) {
        suite_check_chunk(c, &c->cur, i);
    }
}

/* ---- Log ------------------------------------------------------------------------------------ */

static void suite_test_log_basic(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    struct suite_scan sc;
    uint64_t bad = 0;
    assert_int_equal(c.st.ops->log_count(c.st.ctx), 0);
    assert_int_equal(suite_scan_from(&c, &c.cur, 1, &sc, &bad), 0);
    assert_int_equal(sc.calls, 0);

    suite_begin(&c);
    static const size_t lens[] = {17, 0, 1, 300, 64};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(suite_append_gen(&c, lens[i], 10 + i), 0);
    }
    struct suite_blob r6 = suite_gen(&c, 33, 16);
    assert_int_equal(c.st.ops->log_append(c.st.ctx, r6.p, r6.len, NULL), 0); /* no index_out */
    suite_model_push(&c.cur, r6);
    assert_int_equal(suite_commit(&c), 0);
    suite_check(&c);

    /* From the middle, from the last, from just past the end. */
    assert_int_equal(suite_scan_from(&c, &c.cur, 3, &sc, &bad), 0);
    assert_int_equal(sc.calls, 4);
    assert_false(sc.bad);
    assert_int_equal(suite_scan_from(&c, &c.cur, 6, &sc, &bad), 0);
    assert_int_equal(sc.calls, 1);
    assert_false(sc.bad);
    assert_int_equal(suite_scan_from(&c, &c.cur, 7, &sc, &bad), 0);
    assert_int_equal(sc.calls, 0);

    /* Numbering continues across a reopen. */
    suite_reopen(&c);
    suite_check(&c);
    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 5, 20), 0); /* checks index 7 */
    assert_int_equal(suite_commit(&c), 0);
    suite_reopen(&c);
    suite_check(&c);
    suite_free(&c);
}

static void suite_test_log_scan_stop(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    suite_begin(&c);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(suite_append_gen(&c, 8 + i, 30 + i), 0);
    }
    assert_int_equal(suite_commit(&c), 0);

    struct suite_scan sc = {&c.cur, 1, 0, 2, 0};
    assert_int_equal(c.st.ops->log_scan(c.st.ctx, 1, suite_scan_fn, &sc, NULL), 7);
    assert_int_equal(sc.calls, 2);
    assert_false(sc.bad);
    sc = (struct suite_scan){&c.cur, 4, 0, 1, 0};
    assert_int_equal(c.st.ops->log_scan(c.st.ctx, 4, suite_scan_fn, &sc, NULL), 7);
    assert_int_equal(sc.calls, 1);
    assert_int_equal(sc.next, 5); /* the one delivered was record 4 */
    assert_false(sc.bad);
    sc = (struct suite_scan){&c.cur, 1, 0, 5, 0};
    assert_int_equal(c.st.ops->log_scan(c.st.ctx, 1, suite_scan_fn, &sc, NULL), 7);
    assert_int_equal(sc.calls, 5);
    suite_free(&c);
}

static void suite_test_log_truncate(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    suite_begin(&c);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(suite_append_gen(&c, 20 + i, 40 + i), 0);
    }
    assert_int_equal(suite_commit(&c), 0);

    suite_begin(&c);
    assert_int_equal(suite_truncate(&c, 4), 0);
    suite_check(&c);
    assert_int_equal(suite_append_gen(&c, 50, 50), 0); /* index 5, new bytes */
    assert_int_equal(suite_truncate(&c, 5), 0);        /* keeps all: nothing changes */
    suite_check(&c);
    assert_int_equal(suite_commit(&c), 0);
    suite_reopen(&c);
    suite_check(&c);

    suite_begin(&c);
    assert_int_equal(suite_truncate(&c, 0), 0);
    assert_int_equal(c.st.ops->log_count(c.st.ctx), 0);
    assert_int_equal(suite_append_gen(&c, 9, 51), 0); /* index 1 again */
    assert_int_equal(suite_commit(&c), 0);
    suite_reopen(&c);
    suite_check(&c);
    suite_free(&c);
}

/* ---- Key-value and chunks ------------------------------------------------------------------- */

static void suite_test_kv(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    const struct p4p_storage *st = &c.st;
    suite_begin(&c);
    static const size_t lens[] = {10, 20, 0, 5, 7, 300, 9};
    for (size_t k = 0; k < 7; k++) {
        assert_int_equal(suite_kv_put_gen(&c, k, lens[k], 60 + k), 0);
    }
    suite_check(&c);

    uint8_t buf[600];
    size_t vlen = 0;
    assert_int_equal(st->ops->kv_get(st->ctx, c.key[0].p, 1, buf, 9, &vlen), P4P_ETOOBIG);
    assert_int_equal(vlen, 10);
    vlen = 0;
    assert_int_equal(st->ops->kv_get(st->ctx, c.key[0].p, 1, NULL, 0, &vlen), P4P_ETOOBIG);
    assert_int_equal(vlen, 10);
    vlen = 99;
    assert_int_equal(st->ops->kv_get(st->ctx, c.key[0].p, 1, buf, 10, &vlen), 0);
    assert_int_equal(vlen, 10);
    assert_memory_equal(buf, c.cur.kv[0].p, 10);
    vlen = 99;
    assert_int_equal(st->ops->kv_get(st->ctx, c.key[2].p, 3, NULL, 0, &vlen), 0); /* empty */
    assert_int_equal(vlen, 0);
    assert_int_equal(st->ops->kv_get(st->ctx, (const uint8_t *)"abcd", 4, buf, sizeof(buf), &vlen),
                     P4P_ENOTFOUND);
    assert_int_equal(st->ops->chunk_has(st->ctx, c.id[0].p), 0); /* key 6 is not a chunk */

    /* Overwrite longer, then shorter; delete, twice; delete what never was. */
    assert_int_equal(suite_kv_put_gen(&c, 0, 500, 70), 0);
    suite_check(&c);
    assert_int_equal(suite_kv_put_gen(&c, 0, 3, 71), 0);
    assert_int_equal(suite_kv_del(&c, 1), 0);
    assert_int_equal(suite_kv_del(&c, 1), 0);
    assert_int_equal(suite_kv_del(&c, 9), 0);
    suite_check(&c);
    assert_int_equal(suite_commit(&c), 0);
    suite_check(&c);
    suite_reopen(&c);
    suite_check(&c);

    suite_begin(&c);
    assert_int_equal(suite_kv_put_gen(&c, 1, 12, 72), 0);
    assert_int_equal(suite_kv_del(&c, 0), 0);
    assert_int_equal(suite_kv_put_gen(&c, 3, 0, 73), 0); /* a value becomes empty */
    assert_int_equal(suite_commit(&c), 0);
    suite_reopen(&c);
    suite_check(&c);
    suite_free(&c);
}

static void suite_test_chunks(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    const struct p4p_storage *st = &c.st;
    suite_begin(&c);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(suite_chunk_put(&c, i), 0);
    }
    assert_int_equal(st->ops->chunk_has(st->ctx, c.id[0].p), 1);
    assert_int_equal(st->ops->chunk_has(st->ctx, c.id[5].p), 0);
    uint8_t buf[800];
    size_t len = 0;
    size_t n0 = c.chunk[0].len;
    assert_int_equal(st->ops->chunk_get(st->ctx, c.id[0].p, buf, n0 - 1, &len), P4P_ETOOBIG);
    assert_int_equal(len, n0);
    assert_int_equal(st->ops->chunk_get(st->ctx, c.id[5].p, buf, sizeof(buf), &len), P4P_ENOTFOUND);
    assert_int_equal(st->ops->kv_get(st->ctx, c.id[0].p, P4P_CHUNK_ID_LEN, buf, sizeof(buf), &len),
                     P4P_ENOTFOUND); /* a chunk is not a kv pair */
    assert_int_equal(suite_commit(&c), 0);
    suite_check(&c);

    /* A second put of the same id stores nothing, even when offered other bytes. */
    struct p4p_storage_stats s1, s2;
    suite_stats(&c, &s1);
    suite_begin(&c);
    struct suite_blob other = suite_gen(&c, 100, 80);
    assert_int_equal(st->ops->chunk_put(st->ctx, c.id[0].p, other.p, other.len), 0);
    assert_int_equal(suite_chunk_put(&c, 3), 0);
    assert_int_equal(suite_commit(&c), 0);
    suite_stats(&c, &s2);
    assert_int_equal(s2.stored_bytes, s1.stored_bytes);
    suite_check(&c);

    /* Delete; deleting a missing id is 0 or P4P_ENOTFOUND (its own batch, thrown away). */
    suite_begin(&c);
    assert_int_equal(suite_chunk_del(&c, 1), 0);
    assert_int_equal(st->ops->chunk_has(st->ctx, c.id[1].p), 0);
    assert_int_equal(suite_chunk_put(&c, 2), 0);
    assert_int_equal(suite_chunk_del(&c, 2), 0);
    assert_int_equal(suite_chunk_put(&c, 2), 0); /* put, delete, put: present */
    suite_check(&c);
    assert_int_equal(suite_commit(&c), 0);
    suite_begin(&c);
    int rc = st->ops->chunk_del(st->ctx, c.id[7].p);
    assert_true(rc == 0 || rc == P4P_ENOTFOUND);
    suite_abort(&c);
    suite_reopen(&c);
    suite_check(&c);
    suite_free(&c);
}

static void suite_test_sizes(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 0, 90), 0);
    assert_int_equal(suite_append_gen(&c, SUITE_MIB, 91), 0);
    assert_int_equal(suite_append_gen(&c, 1, 92), 0);
    assert_int_equal(suite_kv_put_gen(&c, 0, 0, 93), 0);
    assert_int_equal(suite_kv_put_gen(&c, 1, SUITE_MIB, 94), 0);
    assert_int_equal(suite_kv_put_gen(&c, 5, 1, 95), 0); /* the 200-byte key */
    assert_int_equal(suite_chunk_put(&c, 1), 0);         /* empty */
    assert_int_equal(suite_chunk_put(&c, SUITE_IDS - 1), 0);
    suite_check(&c);
    assert_int_equal(suite_commit(&c), 0);
    suite_reopen(&c);
    suite_check(&c);

    uint8_t *buf = malloc(SUITE_MIB);
    assert_non_null(buf);
    size_t vlen = 0;
    assert_int_equal(c.st.ops->kv_get(c.st.ctx, c.key[1].p, 2, buf, SUITE_MIB - 1, &vlen),
                     P4P_ETOOBIG);
    assert_int_equal(vlen, SUITE_MIB);
    free(buf);
    suite_free(&c);
}

/* ---- Transactions --------------------------------------------------------------------------- */

/* Every write call outside a transaction: P4P_EINVAL, and nothing changes. */
static void suite_expect_no_writes(struct suite_ctx *c)
{
    const struct p4p_storage *st = &c->st;
    const uint8_t *k = c->key[0].p;
    uint64_t index = 0;
    assert_int_equal(st->ops->log_append(st->ctx, k, 1, &index), P4P_EINVAL);
    assert_int_equal(st->ops->log_truncate(st->ctx, 0), P4P_EINVAL);
    assert_int_equal(st->ops->kv_put(st->ctx, k, 1, k, 1), P4P_EINVAL);
    assert_int_equal(st->ops->kv_put(st->ctx, c->key[9].p, c->key[9].len, k, 1), P4P_EINVAL);
    assert_int_equal(st->ops->kv_del(st->ctx, c->key[1].p, 2), P4P_EINVAL);
    assert_int_equal(st->ops->chunk_put(st->ctx, c->id[9].p, k, 1), P4P_EINVAL);
    assert_int_equal(st->ops->chunk_del(st->ctx, c->id[0].p), P4P_EINVAL);
    assert_int_equal(st->ops->commit(st->ctx), P4P_EINVAL);
    suite_check(c);
}

static void suite_test_outside_tx(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    suite_expect_no_writes(&c);
    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 10, 100), 0);
    assert_int_equal(suite_kv_put_gen(&c, 1, 10, 101), 0);
    assert_int_equal(suite_chunk_put(&c, 0), 0);
    assert_int_equal(suite_commit(&c), 0);
    suite_expect_no_writes(&c);
    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 10, 102), 0);
    suite_abort(&c);
    suite_expect_no_writes(&c);
    c.st.ops->abort(c.st.ctx); /* abort without a batch: harmless */
    suite_check(&c);
    suite_reopen(&c);
    suite_check(&c);
    suite_free(&c);
}

/* A committed base, then a batch touching everything: appends after a truncation, kv
 * overwrite, new key, delete, chunk put and delete. */
static void suite_base(struct suite_ctx *c)
{
    suite_begin(c);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(suite_append_gen(c, 30 + i, 110 + i), 0);
    }
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(suite_kv_put_gen(c, k, 16 + k, 120 + k), 0);
    }
    assert_int_equal(suite_chunk_put(c, 0), 0);
    assert_int_equal(suite_chunk_put(c, 3), 0);
    assert_int_equal(suite_commit(c), 0);
}

static void suite_batch(struct suite_ctx *c, uint64_t seed)
{
    assert_int_equal(suite_truncate(c, 2), 0);
    assert_int_equal(suite_append_gen(c, 44, seed), 0);
    assert_int_equal(suite_append_gen(c, 45, seed + 1), 0);
    assert_int_equal(suite_append_gen(c, 46, seed + 2), 0);
    assert_int_equal(suite_append_gen(c, 47, seed + 3), 0); /* one more than before */
    assert_int_equal(suite_kv_put_gen(c, 0, 50, seed + 4), 0);
    assert_int_equal(suite_kv_put_gen(c, 8, 51, seed + 5), 0);
    assert_int_equal(suite_kv_del(c, 1), 0);
    assert_int_equal(suite_chunk_put(c, 4), 0);
    assert_int_equal(suite_chunk_del(c, 0), 0);
}

static void suite_test_own_writes(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    suite_base(&c);
    suite_begin(&c);
    suite_batch(&c, 130);
    suite_check(&c); /* the model's view is the batch's */
    assert_int_equal(suite_commit(&c), 0);
    suite_check(&c);
    suite_reopen(&c);
    suite_check(&c);
    suite_free(&c);
}

static void suite_test_abort(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    suite_base(&c);
    struct p4p_storage_stats s1, s2;
    suite_stats(&c, &s1);
    suite_begin(&c);
    suite_batch(&c, 140);
    suite_check(&c);
    suite_abort(&c);
    suite_check(&c);
    suite_stats(&c, &s2);
    assert_int_equal(s2.aborts, s1.aborts + 1);
    assert_int_equal(s2.commits, s1.commits);
    assert_int_equal(s2.records, s1.records);
    assert_int_equal(s2.logical_bytes, s1.logical_bytes);

    /* The next append takes the number after the base, and a new batch works. */
    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 12, 150), 0);
    assert_int_equal(suite_commit(&c), 0);
    suite_reopen(&c);
    suite_check(&c);
    suite_free(&c);
}

static void suite_test_close_loses_batch(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    suite_base(&c);
    for (uint64_t round = 0; round < 3; round++) {
        suite_begin(&c);
        suite_batch(&c, 160 + 10 * round);
        suite_reopen(&c); /* crash with the batch open */
        suite_check(&c);
        suite_begin(&c);
        assert_int_equal(suite_append_gen(&c, 20, 200 + round), 0);
        assert_int_equal(suite_kv_put_gen(&c, 10 + round, 20, 210 + round), 0);
        assert_int_equal(suite_commit(&c), 0);
        suite_reopen(&c);
        suite_check(&c);
    }
    suite_free(&c);
}

/* ---- Power cuts ----------------------------------------------------------------------------- */

#define SUITE_STEP(x)                                                                              \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_) {                                                                                 \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)

/* Six batches of every kind of write; stops at the first error and returns it. */
static int suite_cut_workload(struct suite_ctx *c)
{
    SUITE_STEP(suite_begin(c));
    SUITE_STEP(suite_append_gen(c, 40, 300));
    SUITE_STEP(suite_append_gen(c, 41, 301));
    SUITE_STEP(suite_kv_put_gen(c, 4, 30, 302));
    SUITE_STEP(suite_kv_put_gen(c, 0, 31, 303));
    SUITE_STEP(suite_chunk_put(c, 2));
    SUITE_STEP(suite_commit(c));

    SUITE_STEP(suite_begin(c));
    SUITE_STEP(suite_kv_del(c, 1));
    SUITE_STEP(suite_chunk_del(c, 0));
    SUITE_STEP(suite_chunk_put(c, 3)); /* already there: deduplicated */
    SUITE_STEP(suite_append_gen(c, 42, 304));
    SUITE_STEP(suite_commit(c));

    SUITE_STEP(suite_begin(c));
    SUITE_STEP(suite_truncate(c, 2));
    SUITE_STEP(suite_append_gen(c, 43, 305));
    SUITE_STEP(suite_kv_put_gen(c, 5, 3000, 306));
    SUITE_STEP(suite_commit(c));

    SUITE_STEP(suite_begin(c));
    SUITE_STEP(suite_chunk_put(c, 5));
    SUITE_STEP(suite_kv_del(c, 9)); /* missing */
    SUITE_STEP(suite_append_gen(c, 0, 307));
    SUITE_STEP(suite_commit(c));

    SUITE_STEP(suite_begin(c));
    SUITE_STEP(suite_truncate(c, 0));
    SUITE_STEP(suite_kv_put_gen(c, 1, 8, 308));
    SUITE_STEP(suite_commit(c));

    SUITE_STEP(suite_begin(c));
    SUITE_STEP(suite_append_gen(c, 44, 309));
    SUITE_STEP(suite_append_gen(c, 45, 310));
    SUITE_STEP(suite_commit(c));
    return 0;
}

/* The workload with the power cut at write call k, then a restart: the store is the last
 * successful commit, and takes new batches. */
static void suite_cut_at(const struct suite_backend *b, uint64_t k, uint64_t w)
{
    struct suite_ctx c;
    suite_init(&c, b);
    suite_base(&c);
    if (k) {
        suite_arm(&c, k);
    }
    uint64_t start = c.writes;
    int rc = suite_cut_workload(&c);
    if (k && k <= w) {
        assert_int_equal(rc, P4P_EIO);
        assert_int_equal(c.writes - start, k);
        /* Everything after the cut fails too, in this batch or the next. */
        if (!c.in_tx) {
            int brc = c.st.ops->begin(c.st.ctx);
            assert_true(brc == 0 || brc == P4P_EIO);
            c.in_tx = brc == 0;
        }
        if (c.in_tx) {
            assert_int_equal(suite_kv_put_gen(&c, 11, 4, 320), P4P_EIO);
        }
        if (k % 2) {
            suite_abort(&c); /* else straight to the crash */
        }
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(c.writes - start, w);
    }
    suite_reopen(&c);
    suite_check(&c);
    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 10, 330), 0);
    assert_int_equal(suite_kv_put_gen(&c, 12, 10, 331), 0);
    assert_int_equal(suite_commit(&c), 0);
    suite_reopen(&c);
    suite_check(&c);
    suite_free(&c);
}

static void suite_test_power_cut(void **state)
{
    const struct suite_backend *b = *state;
    struct suite_ctx c;
    suite_init(&c, b);
    suite_base(&c);
    uint64_t start = c.writes;
    assert_int_equal(suite_cut_workload(&c), 0);
    uint64_t w = c.writes - start;
    assert_int_equal(w, 25); /* the count of write calls above */
    suite_free(&c);
    for (uint64_t k = 0; k <= w + 1; k++) {
        suite_cut_at(b, k, w); /* 0: never armed; w + 1: armed, never reached */
    }
}

/* ---- Fence ---------------------------------------------------------------------------------- */

/* A fenced handle's batch: every call may say P4P_EFENCED at once, commit must. */
static void suite_fenced_batch(struct suite_ctx *c, const struct p4p_storage *a)
{
    int rc = a->ops->begin(a->ctx);
    assert_true(rc == 0 || rc == P4P_EFENCED);
    const struct suite_blob r = suite_gen(c, 25, 400);
    rc = a->ops->log_append(a->ctx, r.p, r.len, NULL);
    assert_true(rc == 0 || rc == P4P_EFENCED);
    rc = a->ops->kv_put(a->ctx, c->key[0].p, c->key[0].len, r.p, r.len);
    assert_true(rc == 0 || rc == P4P_EFENCED);
    rc = a->ops->kv_put(a->ctx, c->key[13].p, c->key[13].len, r.p, r.len);
    assert_true(rc == 0 || rc == P4P_EFENCED);
    rc = a->ops->chunk_put(a->ctx, c->id[6].p, c->chunk[6].p, c->chunk[6].len);
    assert_true(rc == 0 || rc == P4P_EFENCED);
    rc = a->ops->chunk_del(a->ctx, c->id[0].p);
    assert_true(rc == 0 || rc == P4P_EFENCED);
    rc = a->ops->log_truncate(a->ctx, 1);
    assert_true(rc == 0 || rc == P4P_EFENCED);
    assert_int_equal(a->ops->commit(a->ctx), P4P_EFENCED);
    a->ops->abort(a->ctx); /* harmless */
}

/* After the fenced batch: the newer handle sees the base only, works, and survives A. */
static void suite_fence_after(struct suite_ctx *c, struct p4p_storage *a)
{
    suite_check(c);
    suite_begin(c);
    assert_int_equal(suite_append_gen(c, 15, 410), 0);
    assert_int_equal(suite_kv_put_gen(c, 14, 15, 411), 0);
    assert_int_equal(suite_commit(c), 0);
    suite_check(c);
    int rc = a->ops->commit(a->ctx); /* A has no batch any more */
    assert_true(rc == P4P_EINVAL || rc == P4P_EFENCED);
    c->b->close(a);
    suite_check(c);
    suite_reopen(c);
    suite_check(c);
}

static void suite_test_fence(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    suite_base(&c);
    struct p4p_storage a = c.st;
    suite_open_into(&c, &c.st); /* B: a new epoch */
    suite_fenced_batch(&c, &a);
    suite_fence_after(&c, &a);
    suite_free(&c);
}

static void suite_test_fence_open_batch(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    suite_base(&c);
    /* A begins and writes while it is still the current writer... */
    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 25, 420), 0);
    assert_int_equal(suite_kv_put_gen(&c, 15, 25, 421), 0);
    assert_int_equal(suite_chunk_put(&c, 7), 0);
    suite_check(&c);
    /* ...then B opens: A's batch must never be seen. */
    struct p4p_storage a = c.st;
    suite_open_into(&c, &c.st);
    suite_model_assign(&c.cur, &c.done);
    c.in_tx = 0;
    assert_int_equal(a.ops->commit(a.ctx), P4P_EFENCED);
    suite_check(&c);
    int rc = a.ops->begin(a.ctx); /* and A's next batch fails too */
    assert_true(rc == 0 || rc == P4P_EFENCED);
    struct suite_blob r = suite_gen(&c, 5, 422);
    rc = a.ops->log_append(a.ctx, r.p, r.len, NULL);
    assert_true(rc == 0 || rc == P4P_EFENCED);
    assert_int_equal(a.ops->commit(a.ctx), P4P_EFENCED);
    suite_fence_after(&c, &a);
    suite_free(&c);
}

/* ---- Corruption ----------------------------------------------------------------------------- */

static void suite_corrupt_case(const struct suite_backend *b, uint64_t rec, uint64_t byte)
{
    struct suite_ctx c;
    suite_init(&c, b);
    suite_begin(&c);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(suite_append_gen(&c, 40, 500 + i), 0);
    }
    assert_int_equal(suite_kv_put_gen(&c, 2, 40, 510), 0);
    assert_int_equal(suite_chunk_put(&c, 4), 0);
    assert_int_equal(suite_commit(&c), 0);
    if (b->corrupt(c.disk, byte, rec) < 0) {
        suite_free(&c);
        skip();
    }
    struct p4p_storage_stats s1, s2;
    suite_stats(&c, &s1);
    struct suite_scan sc;
    uint64_t bad = 0;
    assert_int_equal(suite_scan_from(&c, &c.cur, 1, &sc, &bad), P4P_ECORRUPT);
    assert_int_equal(bad, rec);
    assert_int_equal(sc.calls, rec - 1); /* the good ones before, nothing after */
    assert_false(sc.bad);
    bad = 0;
    assert_int_equal(suite_scan_from(&c, &c.cur, rec, &sc, &bad), P4P_ECORRUPT);
    assert_int_equal(bad, rec);
    assert_int_equal(sc.calls, 0);
    suite_stats(&c, &s2);
    assert_true(s2.corrupt > s1.corrupt);
    assert_int_equal(c.st.ops->log_count(c.st.ctx), 6);
    for (size_t k = 0; k < SUITE_KEYS; k++) {
        suite_check_kv(&c, &c.cur, k); /* the rest of the store is fine */
    }

    /* Repair: keep what is before the damage, write on. */
    suite_begin(&c);
    assert_int_equal(suite_truncate(&c, rec - 1), 0);
    assert_int_equal(suite_commit(&c), 0);
    suite_check(&c);
    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 40, 520), 0);
    assert_int_equal(suite_commit(&c), 0);
    suite_reopen(&c);
    suite_check(&c);
    suite_free(&c);
}

static void suite_test_corrupt(void **state)
{
    suite_corrupt_case(*state, 4, 17);
    suite_corrupt_case(*state, 1, 0);
    suite_corrupt_case(*state, 6, 39);
}

/* ---- Stats ---------------------------------------------------------------------------------- */

static void suite_test_stats(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    struct p4p_storage_stats s0, s1, s2, s3, s4;
    suite_stats(&c, &s0);
    assert_int_equal(s0.commits, 0);
    assert_int_equal(s0.aborts, 0);
    assert_int_equal(s0.records, 0);
    assert_int_equal(s0.logical_bytes, 0);
    assert_int_equal(s0.corrupt, 0);

    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 10, 600), 0);
    assert_int_equal(suite_append_gen(&c, 20, 601), 0);
    assert_int_equal(suite_append_gen(&c, 30, 602), 0);
    assert_int_equal(suite_commit(&c), 0);
    suite_stats(&c, &s1);
    assert_int_equal(s1.commits, 1);
    assert_int_equal(s1.aborts, 0);
    assert_int_equal(s1.records, 3);
    assert_int_equal(s1.logical_bytes, 60);
    assert_true(s1.written_bytes >= s0.written_bytes + 60);
    assert_true(s1.written_bytes >= s1.logical_bytes);
    assert_true(s1.stored_bytes >= 60);

    suite_begin(&c);
    assert_int_equal(suite_append_gen(&c, 40, 603), 0);
    assert_int_equal(suite_kv_put_gen(&c, 0, 40, 604), 0);
    suite_abort(&c);
    suite_stats(&c, &s2);
    assert_int_equal(s2.commits, 1);
    assert_int_equal(s2.aborts, 1);
    assert_int_equal(s2.records, 3);
    assert_int_equal(s2.logical_bytes, 60);
    assert_true(s2.written_bytes >= s1.written_bytes);

    suite_begin(&c);
    assert_int_equal(suite_kv_put_gen(&c, 0, 100, 605), 0);
    assert_int_equal(suite_commit(&c), 0);
    suite_stats(&c, &s3);
    assert_int_equal(s3.commits, 2);
    assert_int_equal(s3.records, 3);
    assert_true(s3.logical_bytes >= 160);
    assert_true(s3.written_bytes >= s2.written_bytes + 100);
    assert_true(s3.written_bytes >= s3.logical_bytes);

    suite_check(&c); /* reads change no counter */
    suite_stats(&c, &s4);
    assert_int_equal(s4.commits, s3.commits);
    assert_int_equal(s4.aborts, s3.aborts);
    assert_int_equal(s4.records, s3.records);
    assert_int_equal(s4.logical_bytes, s3.logical_bytes);
    assert_int_equal(s4.corrupt, 0);
    suite_free(&c);
}

/* ---- Random operations ---------------------------------------------------------------------- */

/* One random read, compared with the model's view. */
static void suite_random_read(struct suite_ctx *c, uint64_t *rng)
{
    switch (suite_below(rng, 3)) {
    case 0:
        suite_check_kv(c, &c->cur, (size_t)suite_below(rng, SUITE_KEYS));
        break;
    case 1:
        suite_check_chunk(c, &c->cur, (size_t)suite_below(rng, SUITE_IDS - 1));
        break;
    default: {
        struct suite_scan sc;
        uint64_t bad = 0, from = 1 + suite_below(rng, c->cur.log_n + 1);
        assert_int_equal(c->st.ops->log_count(c->st.ctx), c->cur.log_n);
        assert_int_equal(suite_scan_from(c, &c->cur, from, &sc, &bad), 0);
        assert_int_equal(sc.calls, c->cur.log_n + 1 - from);
        assert_false(sc.bad);
    }
    }
}

/* One random write in the open batch; returns its result (P4P_EIO after a power cut). */
static int suite_random_write(struct suite_ctx *c, uint64_t *rng, uint64_t r)
{
    size_t k = (size_t)suite_below(rng, SUITE_KEYS), i = (size_t)suite_below(rng, SUITE_IDS - 1);
    size_t len = (size_t)suite_below(rng, 300);
    if (suite_below(rng, 40) == 0) {
        len = 3000 + (size_t)suite_below(rng, 3000);
    }
    uint64_t seed = suite_mix(rng);
    if (r < 25) {
        return suite_append_gen(c, len, seed);
    }
    if (r < 40) {
        return suite_kv_put_gen(c, k, len, seed);
    }
    if (r < 48) {
        return suite_kv_del(c, k);
    }
    if (r < 58) {
        return suite_chunk_put(c, i);
    }
    if (r < 63) {
        return suite_chunk_del(c, i);
    }
    uint64_t cut = suite_below(rng, 4);
    return suite_truncate(c, c->cur.log_n > cut ? c->cur.log_n - cut : 0);
}

static void suite_test_random(void **state)
{
    struct suite_ctx c;
    suite_init(&c, *state);
    uint64_t rng = 0x5eed5eedull, cuts = 0, commits = 0;
    for (int step = 0; step < 4000; step++) {
        if (!c.in_tx) {
            uint64_t r = suite_below(&rng, 100);
            if (r < 4) {
                suite_reopen(&c);
                suite_check(&c);
            } else if (r < 7 && !c.fail_in && !c.cut) {
                suite_arm(&c, 1 + suite_below(&rng, 12));
            }
            suite_begin(&c);
            continue;
        }
        uint64_t r = suite_below(&rng, 100);
        int rc = 0;
        if (r < 66) {
            rc = suite_random_write(&c, &rng, r);
        } else if (r < 76) {
            suite_random_read(&c, &rng);
        } else if (r < 88) {
            rc = suite_commit(&c);
            commits += rc == 0;
        } else if (r < 95) {
            suite_abort(&c);
        } else {
            suite_reopen(&c); /* crash with the batch open */
            suite_check(&c);
        }
        if (rc) {
            assert_int_equal(rc, P4P_EIO);
            assert_true(c.cut); /* only the armed cut may fail a write, and exactly then */
            cuts++;
            if (c.in_tx && suite_below(&rng, 2)) {
                suite_abort(&c);
            }
            suite_reopen(&c);
            suite_check(&c);
        }
        if (step % 100 == 0) {
            suite_check(&c);
        }
    }
    if (c.in_tx) {
        assert_int_equal(suite_commit(&c) == 0 || c.cut, 1);
    }
    suite_reopen(&c);
    suite_check(&c);
    assert_true(cuts >= 10); /* the sequence did exercise what it claims */
    assert_true(commits >= 200);
    assert_true(c.cur.log_n > 0);
    suite_free(&c);
}

/* ---- The group ------------------------------------------------------------------------------ */

/* Runs the suite as a cmocka group named after the backend; returns the failure count. */
static int storage_suite_run(const struct suite_backend *b)
{
    void *s = (void *)(uintptr_t)b;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(suite_test_log_basic, s),
        cmocka_unit_test_prestate(suite_test_log_scan_stop, s),
        cmocka_unit_test_prestate(suite_test_log_truncate, s),
        cmocka_unit_test_prestate(suite_test_kv, s),
        cmocka_unit_test_prestate(suite_test_chunks, s),
        cmocka_unit_test_prestate(suite_test_sizes, s),
        cmocka_unit_test_prestate(suite_test_outside_tx, s),
        cmocka_unit_test_prestate(suite_test_own_writes, s),
        cmocka_unit_test_prestate(suite_test_abort, s),
        cmocka_unit_test_prestate(suite_test_close_loses_batch, s),
        cmocka_unit_test_prestate(suite_test_power_cut, s),
        cmocka_unit_test_prestate(suite_test_fence, s),
        cmocka_unit_test_prestate(suite_test_fence_open_batch, s),
        cmocka_unit_test_prestate(suite_test_corrupt, s),
        cmocka_unit_test_prestate(suite_test_stats, s),
        cmocka_unit_test_prestate(suite_test_random, s),
    };
    return cmocka_run_group_tests_name(b->name, tests, NULL, NULL);
}

#endif /* P4P_STORAGE_SUITE_H */
