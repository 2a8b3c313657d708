/*
 * negentropy.c — see negentropy.h.
 *
 * reconcile() follows the reference's reconcileAux() line by line: the same "skip" coalescing,
 * the same split into buckets, the same frame-size rule (including its quirk: a range cut off
 * by the limit is answered with a Fingerprint over the items *after* that range, which makes the
 * peer re-examine the whole remainder). The NEG_NONSTANDARD branches are marked and only change
 * what happens near a small frame size limit.
 */
#include "negentropy.h"

#include <endian.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "p4p/p4p.h"

/* The closing range that a frame-size cut appends: infinity bound (2 bytes), mode, fingerprint. */
#define TAIL_LEN (2 + 1 + NEG_FINGERPRINT_LEN)
/* The reference stops adding ranges once a message is longer than limit - 200. */
#define REF_FRAME_MARGIN 200

/* ---- 256-bit sums of ids ------------------------------------------------------------------- */

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static void sum_add_id(uint64_t acc[4], const uint8_t id[NEG_ID_LEN])
{
    uint64_t carry = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t v = load_le64(id + 8 * i);
        uint64_t t = acc[i] + v;
        uint64_t c = t < v;
        acc[i] = t + carry;
        carry = c | (acc[i] < t);
    }
}

static void sum_sub(uint64_t acc[4], const uint64_t b[4])
{
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t t = acc[i] - b[i];
        uint64_t c = acc[i] < b[i];
        acc[i] = t - borrow;
        borrow = c | (t < borrow);
    }
}

static void fingerprint_of_sum(const uint64_t acc[4], uint64_t count,
                               uint8_t out[NEG_FINGERPRINT_LEN])
{
    uint8_t in[NEG_ID_LEN + NEG_VARINT_MAX_LEN];
    for (int i = 0; i < 4; i++) {
        uint64_t v = htole64(acc[i]);
        memcpy(in + 8 * i, &v, sizeof(v));
    }
    size_t len = NEG_ID_LEN + neg_varint_put(in + NEG_ID_LEN, count);
    uint8_t hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, in, len);
    memcpy(out, hash, NEG_FINGERPRINT_LEN);
}

void neg_fingerprint_ids(const uint8_t *ids, size_t count, uint8_t out[NEG_FINGERPRINT_LEN])
{
    uint64_t acc[4] = {0};
    for (size_t i = 0; i < count; i++) {
        sum_add_id(acc, ids + i * NEG_ID_LEN);
    }
    fingerprint_of_sum(acc, count, out);
}

/* ---- Varints and bounds -------------------------------------------------------------------- */

size_t neg_varint_put(uint8_t out[NEG_VARINT_MAX_LEN], uint64_t v)
{
    uint8_t digits[NEG_VARINT_MAX_LEN];
    size_t n = 0;
    do {
        digits[n++] = (uint8_t)(v & 0x7f);
        v >>= 7;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(digits[n - 1 - i] | (i + 1 < n ? 0x80 : 0));
    }
    return n;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >>= 7) {
        n++;
    }
    return n;
}

int neg_varint_get(const uint8_t *p, size_t len, uint64_t *v, size_t *used)
{
    uint64_t r = 0;
    for (size_t i = 0; i < len; i++) {
        if ((i == 0 && p[i] == 0x80) || (r >> 57) != 0) {
            return P4P_EMALFORMED; /* a leading zero digit, or more than 64 bits */
        }
        r = (r << 7) | (p[i] & 0x7f);
        if ((p[i] & 0x80) == 0) {
            *v = r;
            *used = i + 1;
            return 0;
        }
    }
    return P4P_EMALFORMED;
}

/* The encoded timestamp, as the reference: 0 for infinity, else 1 + the (wrapping) delta. */
static uint64_t timestamp_code(uint64_t *last, uint64_t ts)
{
    if (ts == NEG_TIMESTAMP_INFINITY) {
        *last = NEG_TIMESTAMP_INFINITY;
        return 0;
    }
    uint64_t delta = ts - *last;
    *last = ts;
    return delta + 1;
}

size_t neg_bound_put(uint8_t *out, uint64_t *last_timestamp, const struct neg_bound *b)
{
    size_t n = neg_varint_put(out, timestamp_code(last_timestamp, b->timestamp));
    n += neg_varint_put(out + n, b->id_len);
    memcpy(out + n, b->id, b->id_len);
    return n + b->id_len;
}

static size_t bound_len(uint64_t last_timestamp, const struct neg_bound *b)
{
    return varint_len(timestamp_code(&last_timestamp, b->timestamp)) + 1 + b->id_len;
}

static int bound_cmp(const struct neg_bound *a, const struct neg_bound *b)
{
    if (a->timestamp != b->timestamp) {
        return a->timestamp < b->timestamp ? -1 : 1;
    }
    return memcmp(a->id, b->id, NEG_ID_LEN);
}

static int item_cmp(const void *pa, const void *pb)
{
    const struct neg_item *a = pa, *b = pb;
    if (a->timestamp != b->timestamp) {
        return a->timestamp < b->timestamp ? -1 : 1;
    }
    return memcmp(a->id, b->id, NEG_ID_LEN);
}

static void bound_of_item(struct neg_bound *b, const struct neg_item *it)
{
    b->timestamp = it->timestamp;
    memcpy(b->id, it->id, NEG_ID_LEN);
    b->id_len = NEG_ID_LEN;
}

/* The shortest bound that separates prev from curr (prev < curr): the reference's
 * getMinimalBound. */
static void minimal_bound(struct neg_bound *b, const struct neg_item *prev,
                          const struct neg_item *curr)
{
    memset(b, 0, sizeof(*b));
    b->timestamp = curr->timestamp;
    if (curr->timestamp != prev->timestamp) {
        return;
    }
    size_t shared = 0;
    while (shared < NEG_ID_LEN && curr->id[shared] == prev->id[shared]) {
        shared++;
    }
    b->id_len = (uint8_t)(shared < NEG_ID_LEN ? shared + 1 : NEG_ID_LEN);
    memcpy(b->id, curr->id, b->id_len);
}

/* ---- Storage ------------------------------------------------------------------------------- */

void neg_storage_init(struct neg_storage *s, size_t max)
{
    *s = (struct neg_storage){.max = max};
}

void neg_storage_free(struct neg_storage *s)
{
    free(s->items);
    free(s->sums);
    *s = (struct neg_storage){.max = s->max};
}

int neg_storage_add(struct neg_storage *s, uint64_t timestamp, const uint8_t id[NEG_ID_LEN])
{
    if (s->is_sealed || timestamp == NEG_TIMESTAMP_INFINITY) {
        return P4P_EINVAL;
    }
    if (s->max != 0 && s->count >= s->max) {
        return P4P_EFULL;
    }
    if (s->count == s->cap) {
        size_t cap = s->cap != 0 ? s->cap * 2 : 64;
        if (s->max != 0 && cap > s->max) {
            cap = s->max;
        }
        if (cap > SIZE_MAX / sizeof(*s->items)) {
            return P4P_ENOMEM;
        }
        struct neg_item *items = realloc(s->items, cap * sizeof(*items));
        if (items == NULL) {
            return P4P_ENOMEM;
        }
        s->items = items;
        s->cap = cap;
    }
    struct neg_item *it = &s->items[s->count++];
    it->timestamp = timestamp;
    memcpy(it->id, id, NEG_ID_LEN);
    return 0;
}

int neg_storage_seal(struct neg_storage *s)
{
    if (s->is_sealed) {
        return P4P_EINVAL;
    }
    if (s->count > 1) {
        qsort(s->items, s->count, sizeof(*s->items), item_cmp);
    }
    for (size_t i = 1; i < s->count; i++) {
        if (item_cmp(&s->items[i - 1], &s->items[i]) == 0) {
            return P4P_EDUPLICATE;
        }
    }
    size_t n_sums = s->count / NEG_SUM_STRIDE + 1;
    uint64_t(*sums)[4] = calloc(n_sums, sizeof(*sums));
    if (sums == NULL) {
        return P4P_ENOMEM;
    }
    uint64_t acc[4] = {0};
    for (size_t i = 0; i < s->count; i++) {
        if (i % NEG_SUM_STRIDE == 0) {
            memcpy(sums[i / NEG_SUM_STRIDE], acc, sizeof(acc));
        }
        sum_add_id(acc, s->items[i].id);
    }
    if (s->count % NEG_SUM_STRIDE == 0) {
        memcpy(sums[s->count / NEG_SUM_STRIDE], acc, sizeof(acc));
    }
    free(s->sums);
    s->sums = sums;
    s->is_sealed = 1;
    return 0;
}

size_t neg_storage_lower_bound(const struct neg_storage *s, size_t begin, size_t end,
                               const struct neg_bound *bound)
{
    while (begin < end) {
        size_t mid = begin + (end - begin) / 2;
        const struct neg_item *it = &s->items[mid];
        int less = it->timestamp != bound->timestamp ? it->timestamp < bound->timestamp
                                                     : memcmp(it->id, bound->id, NEG_ID_LEN) < 0;
        if (less) {
            begin = mid + 1;
        } else {
            end = mid;
        }
    }
    return begin;
}

/* The sum of ids [0, x). */
static void prefix_sum(const struct neg_storage *s, size_t x, uint64_t acc[4])
{
    size_t k = x / NEG_SUM_STRIDE;
    memcpy(acc, s->sums[k], sizeof(s->sums[k]));
    for (size_t i = k * NEG_SUM_STRIDE; i < x; i++) {
        sum_add_id(acc, s->items[i].id);
    }
}

void neg_storage_fingerprint(const struct neg_storage *s, size_t begin, size_t end,
                             uint8_t out[NEG_FINGERPRINT_LEN])
{
    uint64_t acc[4] = {0};
    if (end - begin <= 2 * NEG_SUM_STRIDE) {
        for (size_t i = begin; i < end; i++) {
            sum_add_id(acc, s->items[i].id);
        }
    } else {
        uint64_t low[4];
        prefix_sum(s, end, acc);
        prefix_sum(s, begin, low);
        sum_sub(acc, low);
    }
    fingerprint_of_sum(acc, end - begin, out);
}

/* ---- Buffers and reading ------------------------------------------------------------------- */

/* Makes room for `extra` more bytes; data is never NULL afterwards, even for extra == 0. */
static int buf_reserve(struct neg_buf *b, size_t extra)
{
    if (b->data != NULL && extra <= b->cap - b->len) {
        return 0;
    }
    if (extra > SIZE_MAX / 2 - b->len) {
        return P4P_ENOMEM;
    }
    size_t cap = b->cap != 0 ? b->cap : 256;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL) {
        return P4P_ENOMEM;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Unchecked appends: the caller reserved room. */
static void put_bytes(struct neg_buf *b, const void *p, size_t len)
{
    memcpy(b->data + b->len, p, len);
    b->len += len;
}

static void put_varint(struct neg_buf *b, uint64_t v)
{
    b->len += neg_varint_put(b->data + b->len, v);
}

static void put_bound(struct neg_session *n, const struct neg_bound *bound)
{
    n->out.len += neg_bound_put(n->out.data + n->out.len, &n->last_ts_out, bound);
}

struct reader {
    const uint8_t *p;
    size_t len;
};

static int read_varint(struct reader *r, uint64_t *v)
{
    size_t used;
    int rc = neg_varint_get(r->p, r->len, v, &used);
    if (rc == 0) {
        r->p += used;
        r->len -= used;
    }
    return rc;
}

static int read_bytes(struct reader *r, size_t len, const uint8_t **out)
{
    if (r->len < len) {
        return P4P_EMALFORMED;
    }
    *out = r->p;
    r->p += len;
    r->len -= len;
    return 0;
}

/* The reference's decodeBound: delta timestamps saturate at infinity. */
static int read_bound(struct neg_session *n, struct reader *r, struct neg_bound *b)
{
    uint64_t code, len;
    const uint8_t *id;
    int rc = read_varint(r, &code);
    if (rc != 0) {
        return rc;
    }
    uint64_t ts = code == 0 ? NEG_TIMESTAMP_INFINITY : code - 1;
    ts += n->last_ts_in;
    if (ts < n->last_ts_in) {
        ts = NEG_TIMESTAMP_INFINITY;
    }
    n->last_ts_in = ts;
    if ((rc = read_varint(r, &len)) != 0) {
        return rc;
    }
    if (len > NEG_ID_LEN) {
        return P4P_EMALFORMED;
    }
    if ((rc = read_bytes(r, (size_t)len, &id)) != 0) {
        return rc;
    }
    memset(b, 0, sizeof(*b));
    b->timestamp = ts;
    b->id_len = (uint8_t)len;
    memcpy(b->id, id, (size_t)len);
    return 0;
}

/* ---- Sessions ------------------------------------------------------------------------------ */

int neg_session_init(struct neg_session *n, const struct neg_storage *s,
                     const struct neg_options *opt)
{
    struct neg_options o = opt != NULL ? *opt : (struct neg_options){0};
    if (s == NULL || !s->is_sealed || (o.flags & ~NEG_NONSTANDARD) != 0) {
        return P4P_EINVAL;
    }
    if ((o.flags & NEG_NONSTANDARD) == 0) {
        if ((o.buckets != 0 && o.buckets != NEG_BUCKETS) ||
            (o.idlist_threshold != 0 && o.idlist_threshold != 2 * NEG_BUCKETS) ||
            (o.frame_size_limit != 0 && o.frame_size_limit < NEG_FRAME_SIZE_MIN)) {
            return P4P_EINVAL;
        }
    }
    o.buckets = o.buckets != 0 ? o.buckets : NEG_BUCKETS;
    o.idlist_threshold = o.idlist_threshold != 0 ? o.idlist_threshold : 2 * o.buckets;
    if (o.buckets < 2 || o.buckets > NEG_BUCKETS || o.idlist_threshold < o.buckets ||
        o.idlist_threshold > 1024 ||
        (o.frame_size_limit != 0 && o.frame_size_limit < NEG_FRAME_SIZE_MIN_NONSTANDARD)) {
        return P4P_EINVAL;
    }
    *n = (struct neg_session){.storage = s, .opt = o};
    return 0;
}

void neg_session_free(struct neg_session *n)
{
    free(n->out.data);
    free(n->have.data);
    free(n->need.data);
    free(n->scratch.data);
    *n = (struct neg_session){0};
}

static int is_nonstandard(const struct neg_session *n)
{
    return (n->opt.flags & NEG_NONSTANDARD) != 0;
}

/* Whether a message of `len` bytes is past the limit. The reference's rule allows 200 bytes of
 * slack; the non-standard rule is exact: it keeps room to close the message later with a Skip
 * up to `next` (when given) and the closing Fingerprint range. */
static int over_limit(const struct neg_session *n, size_t len, const struct neg_bound *next)
{
    uint64_t limit = n->opt.frame_size_limit;
    if (limit == 0) {
        return 0;
    }
    if (!is_nonstandard(n)) {
        return len > limit - REF_FRAME_MARGIN;
    }
    size_t reserve = TAIL_LEN + (next != NULL ? bound_len(n->last_ts_out, next) + 1 : 0);
    return len + reserve > limit;
}

/* Closes a message cut short by the frame size limit: a Fingerprint range up to infinity. */
static int put_tail(struct neg_session *n, size_t from)
{
    static const struct neg_bound infinity = {.timestamp = NEG_TIMESTAMP_INFINITY};
    uint8_t fp[NEG_FINGERPRINT_LEN];
    int rc = buf_reserve(&n->out, TAIL_LEN);
    if (rc != 0) {
        return rc;
    }
    neg_storage_fingerprint(n->storage, from, n->storage->count, fp);
    put_bound(n, &infinity);
    put_varint(&n->out, NEG_MODE_FINGERPRINT);
    put_bytes(&n->out, fp, NEG_FINGERPRINT_LEN);
    return 0;
}

/* The reference's doSkip: emits the pending Skip range up to prev, if any. */
static int flush_skip(struct neg_session *n, int *skip, const struct neg_bound *prev)
{
    if (!*skip) {
        return 0;
    }
    int rc = buf_reserve(&n->out, NEG_BOUND_MAX_LEN + 1);
    if (rc != 0) {
        return rc;
    }
    *skip = 0;
    put_bound(n, prev);
    put_varint(&n->out, NEG_MODE_SKIP);
    return 0;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, NEG_ID_LEN);
}

/* Initiator, IdList range: ours-not-theirs go to `have`, theirs-not-ours to `need`. As with the
 * reference's hash set, each of their ids pairs with at most one of our items (an id we store
 * under two timestamps pairs once, and the second copy counts as "have"). `need` comes out
 * sorted by id (the reference's order is its hash set's). */
static int compare_ids(struct neg_session *n, const uint8_t *ids, size_t count, size_t lower,
                       size_t upper)
{
    struct neg_buf *sc = &n->scratch;
    sc->len = 0;
    int rc = buf_reserve(sc, count * (NEG_ID_LEN + 1));
    if (rc == 0) {
        rc = buf_reserve(&n->have, (upper - lower) * NEG_ID_LEN);
    }
    if (rc == 0) {
        rc = buf_reserve(&n->need, count * NEG_ID_LEN);
    }
    if (rc != 0) {
        return rc;
    }
    uint8_t *theirs = sc->data;
    if (count > 0) {
        memcpy(theirs, ids, count * NEG_ID_LEN);
        qsort(theirs, count, NEG_ID_LEN, id_cmp);
    }
    size_t unique = 0;
    for (size_t i = 0; i < count; i++) {
        if (unique == 0 ||
            memcmp(theirs + (unique - 1) * NEG_ID_LEN, theirs + i * NEG_ID_LEN, NEG_ID_LEN) != 0) {
            memmove(theirs + unique * NEG_ID_LEN, theirs + i * NEG_ID_LEN, NEG_ID_LEN);
            unique++;
        }
    }
    uint8_t *paired = theirs + unique * NEG_ID_LEN;
    memset(paired, 0, unique);
    for (size_t i = lower; i < upper; i++) {
        const uint8_t *id = n->storage->items[i].id;
        const uint8_t *hit = unique > 0 ? bsearch(id, theirs, unique, NEG_ID_LEN, id_cmp) : NULL;
        size_t j = hit != NULL ? (size_t)(hit - theirs) / NEG_ID_LEN : 0;
        if (hit != NULL && !paired[j]) {
            paired[j] = 1;
        } else {
            put_bytes(&n->have, id, NEG_ID_LEN);
        }
    }
    for (size_t j = 0; j < unique; j++) {
        if (!paired[j]) {
            put_bytes(&n->need, theirs + j * NEG_ID_LEN, NEG_ID_LEN);
        }
    }
    return 0;
}

/* Appends an IdList range of ids [lower, lower + count) ending at `end`. */
static int put_idlist(struct neg_session *n, const struct neg_bound *end, size_t lower,
                      size_t count)
{
    int rc = buf_reserve(&n->out, NEG_BOUND_MAX_LEN + 1 + NEG_VARINT_MAX_LEN + count * NEG_ID_LEN);
    if (rc != 0) {
        return rc;
    }
    put_bound(n, end);
    put_varint(&n->out, NEG_MODE_IDLIST);
    put_varint(&n->out, count);
    for (size_t i = lower; i < lower + count; i++) {
        put_bytes(&n->out, n->storage->items[i].id, NEG_ID_LEN);
    }
    return 0;
}

/* Appends `buckets` Fingerprint ranges over [lower, upper) of (nearly) equal item counts, the
 * larger buckets first, each ending at the minimal bound before the next bucket's first item
 * and the last one at upper_bound. */
static int put_buckets(struct neg_session *n, size_t lower, size_t upper,
                       const struct neg_bound *upper_bound, size_t buckets)
{
    const struct neg_item *items = n->storage->items;
    int rc = buf_reserve(&n->out, buckets * (NEG_BOUND_MAX_LEN + 1 + NEG_FINGERPRINT_LEN));
    if (rc != 0) {
        return rc;
    }
    size_t num = upper - lower, per_bucket = num / buckets, with_extra = num % buckets;
    size_t curr = lower;
    for (size_t i = 0; i < buckets; i++) {
        uint8_t fp[NEG_FINGERPRINT_LEN];
        size_t bucket_len = per_bucket + (i < with_extra ? 1 : 0);
        neg_storage_fingerprint(n->storage, curr, curr + bucket_len, fp);
        curr += bucket_len;
        struct neg_bound next;
        if (curr == upper) {
            next = *upper_bound;
        } else {
            minimal_bound(&next, &items[curr - 1], &items[curr]);
        }
        put_bound(n, &next);
        put_varint(&n->out, NEG_MODE_FINGERPRINT);
        put_bytes(&n->out, fp, NEG_FINGERPRINT_LEN);
    }
    return 0;
}

/* NEG_NONSTANDARD split: the reference's choice when it fits the frame; else fewer buckets, down
 * to 2 (never a single Fingerprint range, which could make the exchange loop). An IdList that
 * does not fit is split into fingerprints too. When nothing fits, the last attempt stays and
 * the caller's limit check rolls the range back. */
static int split_small(struct neg_session *n, size_t lower, size_t upper,
                       const struct neg_bound *upper_bound)
{
    size_t num = upper - lower, len = n->out.len;
    uint64_t ts = n->last_ts_out;
    int rc;
    if (num < n->opt.idlist_threshold) {
        rc = put_idlist(n, upper_bound, lower, num);
        if (rc != 0 || num < 2 || !over_limit(n, n->out.len, upper_bound)) {
            return rc;
        }
    }
    size_t buckets = num < n->opt.buckets ? num : n->opt.buckets;
    for (; buckets >= 2; buckets--) {
        n->out.len = len;
        n->last_ts_out = ts;
        rc = put_buckets(n, lower, upper, upper_bound, buckets);
        if (rc != 0 || !over_limit(n, n->out.len, upper_bound)) {
            return rc;
        }
    }
    return 0;
}

/* The reference's splitRange: below the IdList threshold the ids themselves, else 16 buckets. */
static int split_range(struct neg_session *n, size_t lower, size_t upper,
                       const struct neg_bound *upper_bound)
{
    if (n->opt.frame_size_limit != 0 && is_nonstandard(n)) {
        return split_small(n, lower, upper, upper_bound);
    }
    if (upper - lower < n->opt.idlist_threshold) {
        return put_idlist(n, upper_bound, lower, upper - lower);
    }
    return put_buckets(n, lower, upper, upper_bound, n->opt.buckets);
}

/* Responder, IdList range, reference rule: list our ids up to the bound, stopping (and ending
 * the range at the first id left out) once the message before this range (msg_len) plus the
 * ids passes the limit. */
static int respond_idlist_ref(struct neg_session *n, size_t msg_len, size_t lower, size_t *upper,
                              const struct neg_bound *curr)
{
    size_t count = 0;
    struct neg_bound end = *curr;
    while (lower + count < *upper) {
        if (over_limit(n, msg_len + count * NEG_ID_LEN, NULL)) {
            bound_of_item(&end, &n->storage->items[lower + count]);
            *upper = lower + count;
            break;
        }
        count++;
    }
    return put_idlist(n, &end, lower, count);
}

/* NEG_NONSTANDARD: the largest count k >= 1 of ids [lower, lower + k) that fits, with the range
 * ending at the minimal bound before item lower + k; 0 when none fits. */
static size_t small_idlist_fit(const struct neg_session *n, size_t lower, size_t upper,
                               struct neg_bound *end)
{
    const struct neg_item *items = n->storage->items;
    if (upper - lower < 2) {
        return 0;
    }
    size_t room = n->out.len + TAIL_LEN < n->opt.frame_size_limit
                      ? (size_t)n->opt.frame_size_limit - n->out.len - TAIL_LEN
                      : 0;
    size_t k = room / NEG_ID_LEN;
    k = k < upper - lower - 1 ? k : upper - lower - 1;
    for (; k >= 1; k--) {
        minimal_bound(end, &items[lower + k - 1], &items[lower + k]);
        if (bound_len(n->last_ts_out, end) + 1 + varint_len(k) + k * NEG_ID_LEN <= room) {
            return k;
        }
    }
    return 0;
}

/* NEG_NONSTANDARD responder IdList: all ids when they fit, else as many as fit (*cut: the message
 * ends after them), else nothing (*dropped: the caller rolls the range back). */
static int respond_idlist_small(struct neg_session *n, size_t lower, size_t *upper,
                                const struct neg_bound *curr, int *cut, int *dropped)
{
    size_t base = n->out.len;
    uint64_t base_ts = n->last_ts_out;
    int rc = put_idlist(n, curr, lower, *upper - lower);
    if (rc != 0 || !over_limit(n, n->out.len, curr)) {
        return rc;
    }
    n->out.len = base;
    n->last_ts_out = base_ts;
    struct neg_bound end;
    size_t k = small_idlist_fit(n, lower, *upper, &end);
    if (k == 0) {
        *dropped = 1;
        return 0;
    }
    *upper = lower + k;
    *cut = 1;
    return put_idlist(n, &end, lower, k);
}

/* State to roll a range back to when it does not fit (have/need too: a range rolled back comes
 * again in a later round, and its ids must not be reported twice). */
struct mark {
    size_t len, have_len, need_len;
    uint64_t ts_out;
    int skip;
};

/* The body of the reference's reconcileAux after the version byte. */
static int reconcile_ranges(struct neg_session *n, struct reader *rd)
{
    const size_t size = n->storage->count;
    const int small = is_nonstandard(n);
    struct neg_bound prev = {0}, curr;
    size_t prev_index = 0;
    int skip = 0, rc = 0;
    while (rd->len > 0) {
        uint64_t mode;
        if ((rc = read_bound(n, rd, &curr)) != 0 || (rc = read_varint(rd, &mode)) != 0) {
            return rc;
        }
        if (bound_cmp(&curr, &prev) < 0) {
            return P4P_EMALFORMED; /* ranges must ascend; the reference does not check */
        }
        struct mark m = {n->out.len, n->have.len, n->need.len, n->last_ts_out, skip};
        size_t lower = prev_index;
        size_t upper = neg_storage_lower_bound(n->storage, prev_index, size, &curr);
        int cut = 0, dropped = 0;
        if (mode == NEG_MODE_SKIP) {
            skip = 1;
        } else if (mode == NEG_MODE_FINGERPRINT) {
            const uint8_t *theirs;
            uint8_t ours[NEG_FINGERPRINT_LEN];
            if ((rc = read_bytes(rd, NEG_FINGERPRINT_LEN, &theirs)) != 0) {
                return rc;
            }
            neg_storage_fingerprint(n->storage, lower, upper, ours);
            if (memcmp(theirs, ours, NEG_FINGERPRINT_LEN) != 0) {
                if ((rc = flush_skip(n, &skip, &prev)) != 0 ||
                    (rc = split_range(n, lower, upper, &curr)) != 0) {
                    return rc;
                }
            } else {
                skip = 1;
            }
        } else if (mode == NEG_MODE_IDLIST) {
            uint64_t count;
            const uint8_t *ids;
            if ((rc = read_varint(rd, &count)) != 0) {
                return rc;
            }
            if (count > rd->len / NEG_ID_LEN) {
                return P4P_EMALFORMED;
            }
            if ((rc = read_bytes(rd, (size_t)count * NEG_ID_LEN, &ids)) != 0) {
                return rc;
            }
            if (n->is_initiator) {
                if ((rc = compare_ids(n, ids, (size_t)count, lower, upper)) != 0) {
                    return rc;
                }
                skip = 1;
            } else {
                if ((rc = flush_skip(n, &skip, &prev)) != 0) {
                    return rc;
                }
                rc = small ? respond_idlist_small(n, lower, &upper, &curr, &cut, &dropped)
                           : respond_idlist_ref(n, m.len, lower, &upper, &curr);
                if (rc != 0) {
                    return rc;
                }
                if (!small) {
                    m.len = n->out.len; /* the reference commits this range before checking */
                }
            }
        } else {
            return P4P_EMALFORMED;
        }
        if (cut) {
            return put_tail(n, upper); /* NEG_NONSTANDARD: a shortened IdList ends the message */
        }
        if (dropped || over_limit(n, n->out.len, &curr)) {
            n->out.len = m.len;
            if (!small) {
                return put_tail(n, upper); /* sic: the reference skips this range's items */
            }
            n->have.len = m.have_len;
            n->need.len = m.need_len;
            n->last_ts_out = m.ts_out;
            skip = m.skip;
            if ((rc = flush_skip(n, &skip, &prev)) != 0) {
                return rc;
            }
            return put_tail(n, lower);
        }
        prev_index = upper;
        prev = curr;
    }
    return 0;
}

int neg_initiate(struct neg_session *n, const uint8_t **msg, size_t *msg_len)
{
    static const struct neg_bound infinity = {.timestamp = NEG_TIMESTAMP_INFINITY};
    if (n->is_initiator) {
        return P4P_EINVAL;
    }
    n->last_ts_out = 0;
    n->out.len = 0;
    int rc = buf_reserve(&n->out, 1);
    if (rc != 0) {
        return rc;
    }
    n->out.data[n->out.len++] = NEG_PROTOCOL_VERSION;
    if ((rc = split_range(n, 0, n->storage->count, &infinity)) != 0) {
        return rc;
    }
    if (is_nonstandard(n) && n->opt.frame_size_limit != 0 && n->out.len > n->opt.frame_size_limit) {
        return P4P_ETOOBIG;
    }
    n->is_initiator = 1;
    *msg = n->out.data;
    *msg_len = n->out.len;
    return 0;
}

int neg_reconcile(struct neg_session *n, const uint8_t *in, size_t in_len, struct neg_result *r)
{
    n->last_ts_in = n->last_ts_out = 0; /* the delta encoding restarts with every message */
    n->out.len = n->have.len = n->need.len = 0;
    int rc = buf_reserve(&n->out, 1);
    if (rc != 0) {
        return rc;
    }
    n->out.data[n->out.len++] = NEG_PROTOCOL_VERSION;
    if (in_len < 1 || in[0] < 0x60 || in[0] > 0x6f) {
        return P4P_EMALFORMED;
    }
    if (in[0] != NEG_PROTOCOL_VERSION) {
        if (n->is_initiator) {
            return P4P_EVERSION;
        }
    } else {
        struct reader rd = {in + 1, in_len - 1};
        if ((rc = reconcile_ranges(n, &rd)) != 0) {
            return rc;
        }
    }
    *r = (struct neg_result){
        .msg = n->out.data,
        .msg_len = n->out.len,
        .have = n->have.data,
        .have_count = n->have.len / NEG_ID_LEN,
        .need = n->need.data,
        .need_count = n->need.len / NEG_ID_LEN,
    };
    if (n->is_initiator && n->out.len == 1) {
        r->msg = NULL;
        r->msg_len = 0;
        r->is_done = 1;
    }
    return 0;
}
