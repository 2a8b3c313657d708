/*
 * riblt.c — see riblt.h.
 *
 * The encoder and the decoder's sets are "windows" after the reference's codingWindow: items
 * with their hashes and generator states, and a priority queue of each item's next index (a
 * timing wheel, see below) so that producing symbol i touches only the items mapped to i. A
 * decoder holds three windows (its own set, subtracted; the decoded remote-only items,
 * subtracted; the decoded local-only items, added back) plus every residual symbol received,
 * so a difference decoded late is also peeled off the symbols that arrive after it.
 *
 * Peeling is a FIFO of residual symbols that became pure. The reference trusts its input (its
 * README says so); here a queued symbol is checked again when it is taken, the queue and the
 * decoded differences are bounded by the symbols received (an honest stream never exceeds
 * either), and completion is counted directly as the number of residual symbols that are not
 * all-zero (count, checksum and sum), updated on every change. Hostile input can make decoding
 * fail, but not loop, overflow, allocate past the bounds or crash.
 */
#include "riblt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "p4p/p4p.h"

#define IDX_NEVER UINT64_MAX

/* ---- Hash and mapping ---------------------------------------------------------------------- */

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--) {
        v = (v << 8) | p[k];
    }
    return v;
}

static inline void store_le64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++) {
        p[k] = (uint8_t)(v >> (8 * k));
    }
}

static uint64_t hash_item(const uint8_t key[RIBLT_KEY_LEN], const uint8_t *item, uint32_t len)
{
    uint8_t out[crypto_shorthash_siphash24_BYTES];
    crypto_shorthash_siphash24(out, item, len, key);
    return load_le64(out);
}

uint64_t riblt_hash(const struct riblt_config *cfg, const uint8_t *item)
{
    return hash_item(cfg->key, item, cfg->item_len);
}

uint64_t riblt_mapping_next(uint64_t *state, uint64_t index)
{
    if (index == IDX_NEVER) {
        return IDX_NEVER;
    }
    /* mapping.go: lastIdx += uint64(math.Ceil((float64(lastIdx) + 1.5) *
     * ((1<<32)/math.Sqrt(float64(r)+1) - 1))). One IEEE operation per statement, in the same
     * order, so that no contraction or reassociation can change a rounding. r >= 0 makes the
     * factor >= 0 (sqrt(float64(r) + 1) <= 2^32), so the step is a whole number >= 0. */
    uint64_t r = *state * 0xda942042e4dd58b5ull;
    *state = r;
    double root = sqrt((double)r + 1.0);
    double factor = 4294967296.0 / root - 1.0;
    double base = (double)index + 1.5;
    double step = ceil(base * factor);
    /* 2^64 - index is exact enough here: anything near the limit saturates either way. */
    if (!(step < 18446744073709551616.0 - (double)index)) {
        return IDX_NEVER;
    }
    uint64_t d = (uint64_t)step;
    if (d >= IDX_NEVER - index) {
        return IDX_NEVER;
    }
    return index + d;
}

/* ---- Windows ------------------------------------------------------------------------------- */

/* A window is the reference's codingWindow: items, their hashes and generator states, and a
 * priority queue of each item's next index. The reference's queue is a binary heap; here it is
 * a hierarchical timing wheel, because indices are consumed strictly in order 0, 1, 2, ...:
 * filing an item costs O(1) and touches no other item, where a heap of a million items costs
 * a dozen dependent cache misses per step. The items applied at each index are the same
 * either way (XOR and counts commute, so their order does not matter).
 *
 * Level l has 256 slots; an item whose next index first differs from `now` in byte l is filed
 * in level l under byte l of that index. Level 0, slot (now & 255), therefore holds exactly the
 * items due now. When `now` crosses a multiple of 256^l, level l's slot for the new byte l is
 * re-filed into lower levels. A slot is a chain of 128-byte blocks of (item, index) entries
 * from a pool, so re-filing reads no item record and applying a block can fetch its ten
 * records at once. Each chain has at most one block that is not full, so the pool never needs
 * more than count/10 + min(count, 2048) + 3 blocks: it is sized when items are added, and
 * producing or taking symbols never allocates.
 *
 * Item record:  [hash 8][generator state 8][item, padded to 8]                              */
#define WHEEL_LEVELS 8
#define WHEEL_SLOTS  256
#define BLOCK_ITEMS  10
#define REC_HEAD     16

struct block {
    uint32_t n, next; /* entries used; next block of the chain + 1, 0 = end */
    uint32_t item[BLOCK_ITEMS];
    uint64_t idx[BLOCK_ITEMS];
};

struct window {
    uint8_t *recs; /* cap records of `stride` bytes */
    uint32_t count, cap, max, item_len, stride;
    uint64_t now; /* the next index to apply */
    struct block *blocks;
    uint32_t block_cap, block_used, block_free; /* free: a free block + 1, 0 = none */
    uint32_t slot[WHEEL_LEVELS][WHEEL_SLOTS];   /* chain heads: block + 1, 0 = empty */
};

/* A residual (or produced) symbol being built, viewed through pointers into storage. */
struct sym_ref {
    uint8_t *sum;
    uint64_t *checksum;
    int64_t *count;
};

#define REC_HASH(r)  ((uint64_t *)(void *)(r))
#define REC_STATE(r) ((uint64_t *)(void *)(r) + 1)
#define REC_ITEM(r)  ((r) + REC_HEAD)

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

static uint32_t rec_stride(uint32_t item_len)
{
    return REC_HEAD + ((item_len + 7) & ~7u);
}

static uint64_t blocks_needed(uint64_t items)
{
    uint64_t chains = items < WHEEL_LEVELS * WHEEL_SLOTS ? items : WHEEL_LEVELS * WHEEL_SLOTS;
    return items / BLOCK_ITEMS + chains + 3;
}

static void window_init(struct window *w, uint32_t item_len, uint32_t max)
{
    memset(w, 0, sizeof(*w));
    w->item_len = item_len;
    w->max = max;
    w->stride = rec_stride(item_len);
}

static void window_free(struct window *w)
{
    free(w->recs);
    free(w->blocks);
    window_init(w, w->item_len, w->max);
}

static size_t window_memory(const struct window *w)
{
    return (size_t)w->cap * w->stride + (size_t)w->block_cap * sizeof(struct block);
}

static inline uint8_t *window_rec(const struct window *w, uint32_t i)
{
    return w->recs + (size_t)i * w->stride;
}

/* Makes room for one more item: P4P_EFULL at max, P4P_ENOMEM. */
static int window_reserve(struct window *w)
{
    if (w->count < w->cap) {
        return 0;
    }
    if (w->count >= w->max) {
        return P4P_EFULL;
    }
    uint64_t want = w->cap < 16 ? 16 : (uint64_t)w->cap * 2;
    uint32_t cap = want > w->max ? w->max : (uint32_t)want;
    uint64_t nblocks = blocks_needed(cap);
    if ((uint64_t)cap > SIZE_MAX / w->stride || nblocks > UINT32_MAX - 1 ||
        nblocks > SIZE_MAX / sizeof(struct block)) {
        return P4P_ENOMEM;
    }
    uint8_t *recs = realloc(w->recs, (size_t)cap * w->stride);
    if (recs == NULL) {
        return P4P_ENOMEM;
    }
    w->recs = recs;
    struct block *blocks = realloc(w->blocks, (size_t)nblocks * sizeof(*blocks));
    if (blocks == NULL) {
        return P4P_ENOMEM;
    }
    w->blocks = blocks;
    w->block_cap = (uint32_t)nblocks;
    w->cap = cap;
    return 0;
}

static uint32_t block_alloc(struct window *w)
{
    uint32_t b;
    if (w->block_free != 0) {
        b = w->block_free - 1;
        w->block_free = w->blocks[b].next;
    } else {
        if (w->block_used >= w->block_cap) {
            abort(); /* cannot happen: blocks_needed() bounds the pool (see above) */
        }
        b = w->block_used++;
    }
    w->blocks[b].n = 0;
    return b;
}

static void block_release(struct window *w, uint32_t b)
{
    w->blocks[b].next = w->block_free;
    w->block_free = b + 1;
}

/* Files item i under index idx >= now; an item that will never map again is dropped. */
static void wheel_insert(struct window *w, uint32_t i, uint64_t idx)
{
    if (idx == IDX_NEVER) {
        return;
    }
    uint64_t diff = idx ^ w->now;
    unsigned l = WHEEL_LEVELS - 1;
    while (l > 0 && (diff >> (8 * l)) == 0) {
        l--;
    }
    uint32_t *head = &w->slot[l][(idx >> (8 * l)) & (WHEEL_SLOTS - 1)];
    if (*head == 0 || w->blocks[*head - 1].n == BLOCK_ITEMS) {
        uint32_t b = block_alloc(w);
        w->blocks[b].next = *head;
        *head = b + 1;
    }
    struct block *blk = &w->blocks[*head - 1];
    blk->item[blk->n] = i;
    blk->idx[blk->n] = idx;
    blk->n++;
}

/* Moves now to now + 1, re-filing the slots whose byte just came due. */
static void wheel_advance(struct window *w)
{
    uint64_t now = ++w->now;
    unsigned top = 0;
    while (top + 1 < WHEEL_LEVELS && ((now >> (8 * top)) & (WHEEL_SLOTS - 1)) == 0) {
        top++;
    }
    /* Levels below top were empty (their byte of now was 255); re-file from the top down. */
    for (unsigned l = top; l >= 1; l--) {
        uint32_t *head = &w->slot[l][(now >> (8 * l)) & (WHEEL_SLOTS - 1)];
        uint32_t cur = *head;
        *head = 0;
        while (cur != 0) {
            uint32_t b = cur - 1;
            cur = w->blocks[b].next;
            for (uint32_t k = 0; k < w->blocks[b].n; k++) {
                wheel_insert(w, w->blocks[b].item[k], w->blocks[b].idx[k]);
            }
            block_release(w, b);
        }
    }
}

/* Adds an item whose generator is at (state, idx), idx >= the window's now. The caller
 * reserved room. */
static void window_push(struct window *w, const uint8_t *item, uint64_t hash, uint64_t state,
                        uint64_t idx)
{
    uint32_t i = w->count++;
    uint8_t *r = window_rec(w, i);
    memset(r, 0, w->stride);
    *REC_HASH(r) = hash;
    *REC_STATE(r) = state;
    memcpy(REC_ITEM(r), item, w->item_len);
    wheel_insert(w, i, idx);
}

static inline void xor_bytes(uint8_t *dst, const uint8_t *src, uint32_t len)
{
    for (uint32_t k = 0; k < len; k++) {
        dst[k] ^= src[k];
    }
}

/* Applies every item mapped to coded symbol `now` to s, in direction dir (+1 or -1), moves
 * those items on to their next index and advances now (encoder.go applyWindow). An item whose
 * next index is now again (a zero step) is filed in the same slot and applied again, as in
 * the reference. */
static void window_apply(struct window *w, struct sym_ref s, int64_t dir)
{
    uint64_t idx = w->now;
    uint32_t *head = &w->slot[0][idx & (WHEEL_SLOTS - 1)];
    while (*head != 0) {
        uint32_t b = *head - 1;
        struct block *blk = &w->blocks[b];
        *head = blk->next; /* detach: zero steps start a new chain here */
        for (uint32_t k = 0; k < blk->n; k++) {
            PREFETCH(window_rec(w, blk->item[k]));
        }
        for (uint32_t k = 0; k < blk->n; k++) {
            uint32_t i = blk->item[k];
            uint8_t *r = window_rec(w, i);
            xor_bytes(s.sum, REC_ITEM(r), w->item_len);
            *s.checksum ^= *REC_HASH(r);
            *s.count += dir;
            wheel_insert(w, i, riblt_mapping_next(REC_STATE(r), idx));
        }
        block_release(w, b);
    }
    wheel_advance(w);
}

static int config_ok(const struct riblt_config *cfg)
{
    return cfg != NULL && cfg->item_len >= 1 && cfg->item_len <= RIBLT_ITEM_MAX;
}

/* ---- Encoder ------------------------------------------------------------------------------- */

struct riblt_enc {
    struct riblt_config cfg;
    struct window w;
    uint64_t next_idx;
};

int riblt_enc_create(riblt_enc **out, const struct riblt_config *cfg)
{
    if (out == NULL || !config_ok(cfg)) {
        return P4P_EINVAL;
    }
    riblt_enc *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return P4P_ENOMEM;
    }
    e->cfg = *cfg;
    window_init(&e->w, cfg->item_len, cfg->item_max);
    *out = e;
    return 0;
}

void riblt_enc_free(riblt_enc *e)
{
    if (e == NULL) {
        return;
    }
    window_free(&e->w);
    sodium_memzero(e, sizeof(*e));
    free(e);
}

int riblt_enc_add(riblt_enc *e, const uint8_t *item)
{
    if (e->next_idx != 0) {
        return P4P_EINVAL;
    }
    int rc = window_reserve(&e->w);
    if (rc != 0) {
        return rc;
    }
    uint64_t h = hash_item(e->cfg.key, item, e->cfg.item_len);
    window_push(&e->w, item, h, h, 0);
    return 0;
}

int riblt_enc_next(riblt_enc *e, struct riblt_symbol *out)
{
    memset(out, 0, sizeof(*out));
    struct sym_ref s = {out->sum, &out->checksum, &out->count};
    window_apply(&e->w, s, +1);
    e->next_idx++;
    return 0;
}

uint64_t riblt_enc_next_index(const riblt_enc *e)
{
    return e->next_idx;
}

uint32_t riblt_enc_size(const riblt_enc *e)
{
    return e->w.count;
}

size_t riblt_enc_memory(const riblt_enc *e)
{
    return sizeof(*e) + window_memory(&e->w);
}

/* ---- Varints ------------------------------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a shortest-form varint of at most 10 bytes (64 bits). 0 or P4P_EMALFORMED. */
static int get_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < 10; k++) {
        if (*pos >= len) {
            return P4P_EMALFORMED;
        }
        uint8_t b = buf[(*pos)++];
        if (k == 9 && b > 1) {
            return P4P_EMALFORMED; /* more than 64 bits */
        }
        v |= (uint64_t)(b & 0x7f) << (7 * k);
        if ((b & 0x80) == 0) {
            if (b == 0 && k > 0) {
                return P4P_EMALFORMED; /* overlong */
            }
            *out = v;
            return 0;
        }
    }
    return P4P_EMALFORMED;
}

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static inline int64_t unzigzag(uint64_t v)
{
    /* Computed in unsigned arithmetic, then reinterpreted: no overflow anywhere. */
    uint64_t u = (v >> 1) ^ (0 - (v & 1));
    int64_t r;
    memcpy(&r, &u, sizeof(r));
    return r;
}

/* The mean count of symbol idx for a set of n items: n / (1 + idx/2), rounded down. */
static inline int64_t expected_count(uint64_t n, uint64_t idx)
{
    return (int64_t)((2 * n) / (idx + 2));
}

/* ---- Wire ---------------------------------------------------------------------------------- */

#define WIRE_VERSION 1
/* Indices past this cannot be in a batch: keeps idx + 2 and first + n far from overflow. */
#define WIRE_INDEX_MAX ((uint64_t)1 << 62)

int riblt_batch_write(uint32_t item_len, uint64_t set_size, uint64_t first_index,
                      const struct riblt_symbol *syms, uint32_t n, uint8_t *buf, size_t cap,
                      size_t *len)
{
    if (item_len < 1 || item_len > RIBLT_ITEM_MAX || n == 0 || set_size > RIBLT_COUNT_MAX ||
        first_index >= WIRE_INDEX_MAX - n) {
        return P4P_EINVAL;
    }
    for (uint32_t k = 0; k < n; k++) {
        if (syms[k].count < 0 || (uint64_t)syms[k].count > RIBLT_COUNT_MAX) {
            return P4P_EINVAL;
        }
    }
    if (cap < RIBLT_BATCH_HEADER_MAX ||
        (cap - RIBLT_BATCH_HEADER_MAX) / RIBLT_SYMBOL_WIRE_MAX(item_len) < n) {
        return P4P_ETOOBIG;
    }
    size_t pos = 0;
    buf[pos++] = WIRE_VERSION;
    buf[pos++] = (uint8_t)item_len;
    pos += put_varint(buf + pos, set_size);
    pos += put_varint(buf + pos, first_index);
    pos += put_varint(buf + pos, n);
    for (uint32_t k = 0; k < n; k++) {
        memcpy(buf + pos, syms[k].sum, item_len);
        pos += item_len;
        store_le64(buf + pos, syms[k].checksum);
        pos += 8;
        int64_t delta = syms[k].count - expected_count(set_size, first_index + k);
        pos += put_varint(buf + pos, zigzag(delta));
    }
    *len = pos;
    return 0;
}

/* Reads symbol number idx at *pos (the header already checked). 0 or P4P_EMALFORMED. */
static int read_symbol(const uint8_t *buf, size_t len, size_t *pos, uint32_t item_len,
                       uint64_t set_size, uint64_t idx, struct riblt_symbol *out)
{
    if (len - *pos < (size_t)item_len + 8) {
        return P4P_EMALFORMED;
    }
    if (out != NULL) {
        memset(out->sum + item_len, 0, RIBLT_ITEM_MAX - item_len);
        memcpy(out->sum, buf + *pos, item_len);
        out->checksum = load_le64(buf + *pos + item_len);
    }
    *pos += (size_t)item_len + 8;
    uint64_t z;
    if (get_varint(buf, len, pos, &z) != 0) {
        return P4P_EMALFORMED;
    }
    int64_t delta = unzigzag(z);
    int64_t exp = expected_count(set_size, idx); /* 0 .. set_size <= 2^40 */
    if (delta < -exp || delta > (int64_t)RIBLT_COUNT_MAX - exp) {
        return P4P_EMALFORMED;
    }
    if (out != NULL) {
        out->count = exp + delta;
    }
    return 0;
}

/* Parses the header; *pos is left at the first symbol. */
static int read_header(const uint8_t *buf, size_t len, uint32_t item_len, size_t *pos,
                       struct riblt_batch_info *info)
{
    if (buf == NULL || len < 2 || buf[0] != WIRE_VERSION || buf[1] != item_len) {
        return P4P_EMALFORMED;
    }
    *pos = 2;
    struct riblt_batch_info in = {.item_len = item_len};
    if (get_varint(buf, len, pos, &in.set_size) != 0 ||
        get_varint(buf, len, pos, &in.first_index) != 0 || get_varint(buf, len, pos, &in.n) != 0) {
        return P4P_EMALFORMED;
    }
    if (in.set_size > RIBLT_COUNT_MAX || in.n == 0 || in.first_index >= WIRE_INDEX_MAX ||
        in.n > (len - *pos) / ((size_t)item_len + 9) || in.n >= WIRE_INDEX_MAX - in.first_index) {
        return P4P_EMALFORMED;
    }
    *info = in;
    return 0;
}

int riblt_batch_parse(const uint8_t *buf, size_t len, uint32_t item_len,
                      struct riblt_batch_info *info)
{
    size_t pos = 0;
    struct riblt_batch_info in;
    int rc = read_header(buf, len, item_len, &pos, &in);
    if (rc != 0) {
        return rc;
    }
    for (uint64_t k = 0; k < in.n; k++) {
        rc = read_symbol(buf, len, &pos, item_len, in.set_size, in.first_index + k, NULL);
        if (rc != 0) {
            return rc;
        }
    }
    if (pos != len) {
        return P4P_EMALFORMED; /* trailing bytes */
    }
    *info = in;
    return 0;
}

int riblt_enc_write_batch(riblt_enc *e, uint32_t n, uint8_t *buf, size_t cap, size_t *len)
{
    uint32_t il = e->cfg.item_len;
    if (n == 0 || e->next_idx >= WIRE_INDEX_MAX - n) {
        return P4P_EINVAL;
    }
    if (cap < RIBLT_BATCH_HEADER_MAX ||
        (cap - RIBLT_BATCH_HEADER_MAX) / RIBLT_SYMBOL_WIRE_MAX(il) < n) {
        return P4P_ETOOBIG;
    }
    uint64_t set_size = e->w.count;
    size_t pos = 0;
    buf[pos++] = WIRE_VERSION;
    buf[pos++] = (uint8_t)il;
    pos += put_varint(buf + pos, set_size);
    pos += put_varint(buf + pos, e->next_idx);
    pos += put_varint(buf + pos, n);
    for (uint32_t k = 0; k < n; k++) {
        /* Build the symbol in place: the sum straight into the buffer. */
        uint8_t *sum = buf + pos;
        uint64_t checksum = 0;
        int64_t count = 0;
        memset(sum, 0, il);
        struct sym_ref s = {sum, &checksum, &count};
        uint64_t idx = e->next_idx++;
        window_apply(&e->w, s, +1);
        pos += il;
        store_le64(buf + pos, checksum);
        pos += 8;
        pos += put_varint(buf + pos, zigzag(count - expected_count(set_size, idx)));
    }
    *len = pos;
    return 0;
}

/* ---- Decoder ------------------------------------------------------------------------------- */

struct riblt_dec {
    struct riblt_config cfg;
    struct window mine;        /* the local set B, subtracted from every symbol */
    struct window remote_only; /* decoded A \ B, subtracted */
    struct window local_only;  /* decoded B \ A, added back */
    uint8_t *cs_sum;           /* residual symbols: cs_cap x item_len */
    uint64_t *cs_checksum;
    int64_t *cs_count;
    uint32_t cs_cap;
    uint32_t received;
    uint32_t *queue; /* indices of residuals that became pure, FIFO */
    uint32_t q_head, q_len, q_cap;
    uint32_t nonzero; /* residuals that are not all-zero */
    uint64_t remote_size;
    int has_remote_size;
    int dead;
};

int riblt_dec_create(riblt_dec **out, const struct riblt_config *cfg)
{
    if (out == NULL || !config_ok(cfg) || cfg->symbol_max == 0) {
        return P4P_EINVAL;
    }
    riblt_dec *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return P4P_ENOMEM;
    }
    d->cfg = *cfg;
    window_init(&d->mine, cfg->item_len, cfg->item_max);
    window_init(&d->remote_only, cfg->item_len, cfg->symbol_max);
    window_init(&d->local_only, cfg->item_len, cfg->symbol_max);
    *out = d;
    return 0;
}

void riblt_dec_free(riblt_dec *d)
{
    if (d == NULL) {
        return;
    }
    window_free(&d->mine);
    window_free(&d->remote_only);
    window_free(&d->local_only);
    free(d->cs_sum);
    free(d->cs_checksum);
    free(d->cs_count);
    free(d->queue);
    sodium_memzero(d, sizeof(*d));
    free(d);
}

int riblt_dec_add_local(riblt_dec *d, const uint8_t *item)
{
    if (d->received != 0 || d->dead) {
        return P4P_EINVAL;
    }
    int rc = window_reserve(&d->mine);
    if (rc != 0) {
        return rc;
    }
    uint64_t h = hash_item(d->cfg.key, item, d->cfg.item_len);
    window_push(&d->mine, item, h, h, 0);
    return 0;
}

static struct sym_ref residual(riblt_dec *d, uint32_t i)
{
    return (struct sym_ref){d->cs_sum + (size_t)i * d->cfg.item_len, &d->cs_checksum[i],
                            &d->cs_count[i]};
}

static int residual_is_zero(riblt_dec *d, uint32_t i)
{
    if (d->cs_count[i] != 0 || d->cs_checksum[i] != 0) {
        return 0;
    }
    const uint8_t *p = d->cs_sum + (size_t)i * d->cfg.item_len;
    uint8_t acc = 0;
    for (uint32_t k = 0; k < d->cfg.item_len; k++) {
        acc |= p[k];
    }
    return acc == 0;
}

/* Holds exactly one item: count +-1 and the checksum is the hash of the sum. */
static int residual_is_pure(riblt_dec *d, uint32_t i)
{
    if (d->cs_count[i] != 1 && d->cs_count[i] != -1) {
        return 0;
    }
    const uint8_t *p = d->cs_sum + (size_t)i * d->cfg.item_len;
    return hash_item(d->cfg.key, p, d->cfg.item_len) == d->cs_checksum[i];
}

/* Grows an array of elem-sized entries to hold at least need, at most max. */
static int grow(void **p, uint32_t *cap, uint32_t need, uint32_t max, size_t elem)
{
    if (need <= *cap) {
        return 0;
    }
    if (need > max) {
        return P4P_EFULL;
    }
    uint64_t want = *cap < 64 ? 64 : (uint64_t)*cap * 2;
    uint32_t c = want > max ? max : (uint32_t)want;
    if (c < need) {
        c = need;
    }
    if ((uint64_t)c > SIZE_MAX / elem) {
        return P4P_ENOMEM;
    }
    void *q = realloc(*p, (size_t)c * elem);
    if (q == NULL) {
        return P4P_ENOMEM;
    }
    *p = q;
    *cap = c;
    return 0;
}

static int reserve_symbol(riblt_dec *d)
{
    uint32_t need = d->received + 1;
    if (need <= d->cs_cap) {
        return 0;
    }
    uint32_t max = d->cfg.symbol_max;
    uint32_t cap = d->cs_cap;
    void *p = d->cs_sum;
    int rc = grow(&p, &cap, need, max, d->cfg.item_len);
    if (rc != 0) {
        return rc;
    }
    d->cs_sum = p;
    uint32_t c2 = d->cs_cap;
    p = d->cs_checksum;
    rc = grow(&p, &c2, cap, cap, sizeof(uint64_t));
    if (rc != 0) {
        return rc;
    }
    d->cs_checksum = p;
    c2 = d->cs_cap;
    p = d->cs_count;
    rc = grow(&p, &c2, cap, cap, sizeof(int64_t));
    if (rc != 0) {
        return rc;
    }
    d->cs_count = p;
    d->cs_cap = cap; /* only once all three arrays hold cap entries */
    return 0;
}

/* Queues residual i for peeling. Honest streams queue each residual at most once, so a queue
 * longer than the symbols received proves the stream inconsistent. */
static int enqueue(riblt_dec *d, uint32_t i)
{
    uint32_t need = d->q_head + d->q_len + 1;
    if (need > d->received) {
        return P4P_EMALFORMED;
    }
    void *p = d->queue;
    int rc = grow(&p, &d->q_cap, need, d->cfg.symbol_max, sizeof(uint32_t));
    if (rc != 0) {
        return rc == P4P_EFULL ? P4P_EMALFORMED : rc;
    }
    d->queue = p;
    d->queue[d->q_head + d->q_len++] = i;
    return 0;
}

/* Adds or removes a freshly decoded item from every residual it maps to (decoder.go
 * applyNewSymbol) and files it in its window with the generator positioned past them. */
static int peel_item(riblt_dec *d, struct window *w, const uint8_t *item, uint64_t hash,
                     int64_t dir)
{
    int rc = window_reserve(w);
    if (rc != 0) {
        return rc == P4P_EFULL ? P4P_EMALFORMED : rc;
    }
    uint8_t copy[RIBLT_ITEM_MAX];
    memcpy(copy, item, d->cfg.item_len); /* item points into a residual we are about to zero */
    uint64_t state = hash;
    uint64_t idx = 0;
    while (idx < d->received) {
        uint32_t i = (uint32_t)idx;
        int was_zero = residual_is_zero(d, i);
        struct sym_ref s = residual(d, i);
        xor_bytes(s.sum, copy, d->cfg.item_len);
        *s.checksum ^= hash;
        *s.count += dir;
        d->nonzero += (uint32_t)was_zero - (uint32_t)residual_is_zero(d, i);
        if (residual_is_pure(d, i)) {
            rc = enqueue(d, i);
            if (rc != 0) {
                return rc;
            }
        }
        idx = riblt_mapping_next(&state, idx);
    }
    window_push(w, copy, hash, state, idx);
    return 0;
}

/* Peels until the queue is empty (decoder.go TryDecode). */
static int peel(riblt_dec *d)
{
    while (d->q_len > 0) {
        uint32_t i = d->queue[d->q_head++];
        d->q_len--;
        if (!residual_is_pure(d, i)) {
            continue; /* changed since it was queued: only hostile or colliding input */
        }
        if (d->remote_only.count + d->local_only.count >= d->received) {
            return P4P_EMALFORMED; /* more differences than symbols */
        }
        const uint8_t *item = d->cs_sum + (size_t)i * d->cfg.item_len;
        uint64_t h = d->cs_checksum[i];
        int rc = d->cs_count[i] == 1 ? peel_item(d, &d->remote_only, item, h, -1)
                                     : peel_item(d, &d->local_only, item, h, +1);
        if (rc != 0) {
            return rc;
        }
    }
    d->q_head = 0;
    return 0;
}

int riblt_dec_add_symbol(riblt_dec *d, const struct riblt_symbol *s)
{
    if (d->dead) {
        return P4P_EMALFORMED;
    }
    if (d->received >= d->cfg.symbol_max) {
        return P4P_EFULL;
    }
    int rc = reserve_symbol(d);
    if (rc != 0) {
        return rc;
    }
    uint32_t i = d->received;
    struct sym_ref r = residual(d, i);
    memcpy(r.sum, s->sum, d->cfg.item_len);
    *r.checksum = s->checksum;
    *r.count = s->count;
    window_apply(&d->mine, r, -1);
    window_apply(&d->remote_only, r, -1);
    window_apply(&d->local_only, r, +1);
    d->received++;
    d->nonzero += residual_is_zero(d, i) ? 0 : 1;
    rc = residual_is_pure(d, i) ? enqueue(d, i) : 0;
    if (rc == 0) {
        rc = peel(d);
    }
    if (rc != 0) {
        d->dead = 1; /* peeling stopped half-way: the residuals are no longer consistent */
        return rc == P4P_ENOMEM ? P4P_ENOMEM : P4P_EMALFORMED;
    }
    return d->nonzero == 0 ? 1 : 0;
}

int riblt_dec_add_batch(riblt_dec *d, const uint8_t *buf, size_t len)
{
    if (d->dead) {
        return P4P_EMALFORMED;
    }
    struct riblt_batch_info info;
    int rc = riblt_batch_parse(buf, len, d->cfg.item_len, &info);
    if (rc != 0) {
        return rc;
    }
    if (d->has_remote_size && info.set_size != d->remote_size) {
        return P4P_EMALFORMED;
    }
    if (info.first_index > d->received) {
        return P4P_EINVAL;
    }
    d->remote_size = info.set_size;
    d->has_remote_size = 1;
    size_t pos = 0;
    read_header(buf, len, d->cfg.item_len, &pos, &info);
    rc = riblt_dec_is_done(d);
    for (uint64_t k = 0; k < info.n; k++) {
        uint64_t idx = info.first_index + k;
        struct riblt_symbol s;
        read_symbol(buf, len, &pos, d->cfg.item_len, info.set_size, idx, &s);
        if (idx < d->received) {
            continue; /* already have it */
        }
        rc = riblt_dec_add_symbol(d, &s);
        if (rc != 0) {
            break; /* done (1) or an error */
        }
    }
    return rc;
}

int riblt_dec_is_done(const riblt_dec *d)
{
    return !d->dead && d->received > 0 && d->nonzero == 0;
}

uint64_t riblt_dec_received(const riblt_dec *d)
{
    return d->received;
}

uint64_t riblt_dec_remote_size(const riblt_dec *d)
{
    return d->remote_size;
}

uint32_t riblt_dec_remote_count(const riblt_dec *d)
{
    return d->remote_only.count;
}

const uint8_t *riblt_dec_remote_item(const riblt_dec *d, uint32_t i)
{
    return i < d->remote_only.count ? REC_ITEM(window_rec(&d->remote_only, i)) : NULL;
}

uint32_t riblt_dec_local_count(const riblt_dec *d)
{
    return d->local_only.count;
}

const uint8_t *riblt_dec_local_item(const riblt_dec *d, uint32_t i)
{
    return i < d->local_only.count ? REC_ITEM(window_rec(&d->local_only, i)) : NULL;
}

size_t riblt_dec_memory(const riblt_dec *d)
{
    return sizeof(*d) + window_memory(&d->mine) + window_memory(&d->remote_only) +
           window_memory(&d->local_only) +
           (size_t)d->cs_cap * (d->cfg.item_len + sizeof(uint64_t) + sizeof(int64_t)) +
           (size_t)d->q_cap * sizeof(uint32_t);
}
