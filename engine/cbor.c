/*
 * cbor.c — deterministic CBOR (RFC 8949): writer, strict cursor reader, item tree.
 *
 * The writer and the reader are the engine's hot path: every frame is built with cbor_put_*()
 * and taken apart with cbor_get_*(). Neither allocates nor recurses.
 *
 * One iterative walker, walk(), checks a whole item: it backs cbor_skip() (strict) and the
 * first pass of cbor_decode() (strict or not), where it also counts items and string bytes so
 * that the second pass, build(), fills one exactly sized block. build() recurses, but only
 * over input the walker has already accepted, so its depth is bounded by CBOR_DEPTH_MAX.
 *
 * Floats: the writer picks the shortest of half/single/double that holds the value exactly,
 * working on the bits (no float casts, which are undefined for out-of-range values). The
 * strict checks re-encode a decoded float and compare bytes, so "strict" means exactly "what
 * our encoder would have produced".
 */
#include "cbor.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Writer -------------------------------------------------------------------------------- */

void cbor_writer_init(struct cbor_writer *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->overflow = 0;
}

/* Appends n bytes, or none of them (and marks overflow) when they do not fit. */
static void put_bytes(struct cbor_writer *w, const void *p, size_t n)
{
    if (!w->overflow && n <= w->cap - w->len) {
        if (n > 0) {
            memcpy(w->buf + w->len, p, n);
        }
        w->len += n;
        return;
    }
    w->overflow = 1;
    w->len = (n > SIZE_MAX - w->len) ? SIZE_MAX : w->len + n;
}

/* Writes the shortest head for (major, arg) to h[0..9); returns its length. */
static size_t encode_head(uint8_t h[9], unsigned major, uint64_t arg)
{
    uint8_t mt = (uint8_t)((major & 7u) << 5);
    size_t n;

    if (arg < 24) {
        h[0] = (uint8_t)(mt | arg);
        return 1;
    }
    if (arg <= 0xff) {
        h[0] = mt | 24;
        n = 1;
    } else if (arg <= 0xffff) {
        h[0] = mt | 25;
        n = 2;
    } else if (arg <= 0xffffffffu) {
        h[0] = mt | 26;
        n = 4;
    } else {
        h[0] = mt | 27;
        n = 8;
    }
    for (size_t i = 0; i < n; i++) {
        h[n - i] = (uint8_t)(arg >> (8 * i));
    }
    return n + 1;
}

void cbor_put_head(struct cbor_writer *w, unsigned major, uint64_t arg)
{
    uint8_t h[9];
    size_t n = encode_head(h, major, arg);
    put_bytes(w, h, n);
}

void cbor_put_uint(struct cbor_writer *w, uint64_t v)
{
    cbor_put_head(w, CBOR_MAJOR_UINT, v);
}

void cbor_put_int(struct cbor_writer *w, int64_t v)
{
    if (v >= 0) {
        cbor_put_head(w, CBOR_MAJOR_UINT, (uint64_t)v);
    } else {
        /* -1 - v cannot overflow for any negative int64_t. */
        cbor_put_head(w, CBOR_MAJOR_NINT, (uint64_t)(-1 - v));
    }
}

void cbor_put_bstr(struct cbor_writer *w, const void *p, size_t n)
{
    cbor_put_head(w, CBOR_MAJOR_BSTR, n);
    put_bytes(w, p, n);
}

void cbor_put_tstr(struct cbor_writer *w, const char *s, size_t n)
{
    cbor_put_head(w, CBOR_MAJOR_TSTR, n);
    put_bytes(w, s, n);
}

void cbor_put_array(struct cbor_writer *w, uint64_t n)
{
    cbor_put_head(w, CBOR_MAJOR_ARRAY, n);
}

void cbor_put_map(struct cbor_writer *w, uint64_t n)
{
    cbor_put_head(w, CBOR_MAJOR_MAP, n);
}

void cbor_put_tag(struct cbor_writer *w, uint64_t tag)
{
    cbor_put_head(w, CBOR_MAJOR_TAG, tag);
}

void cbor_put_bool(struct cbor_writer *w, int v)
{
    uint8_t b = v ? 0xf5 : 0xf4;
    put_bytes(w, &b, 1);
}

void cbor_put_null(struct cbor_writer *w)
{
    uint8_t b = 0xf6;
    put_bytes(w, &b, 1);
}

void cbor_put_raw(struct cbor_writer *w, const void *p, size_t n)
{
    put_bytes(w, p, n);
}

/* ---- Floats -------------------------------------------------------------------------------- */

/* Can the finite, nonzero value sig * 2^(e - 52) (sig < 2^53) be held exactly by a binary
 * format with `mbits` stored mantissa bits, normal exponents emin..emax and bias `bias`? If
 * so, *out gets its bits without the sign. */
static int float_narrow(int e, uint64_t sig, int mbits, int emin, int emax, int bias, uint64_t *out)
{
    int drop;

    if (e > emax) {
        return 0;
    }
    if (e >= emin) {
        drop = 52 - mbits;
        if (sig & ((UINT64_C(1) << drop) - 1)) {
            return 0;
        }
        *out = ((uint64_t)(e + bias) << mbits) | ((sig >> drop) & ((UINT64_C(1) << mbits) - 1));
        return 1;
    }
    /* Subnormal in the narrow format: a multiple of 2^(emin - mbits). */
    drop = 52 - mbits + (emin - e);
    if (drop >= 64 || (sig & ((UINT64_C(1) << drop) - 1))) {
        return 0;
    }
    *out = sig >> drop;
    return 1;
}

/* Writes the shortest exact encoding of v (f9/fa/fb + bits) to h; returns its length. */
static size_t encode_double(uint8_t h[9], double v)
{
    uint64_t bits, sign, nb;
    unsigned exp;
    uint64_t mant;
    int e;

    memcpy(&bits, &v, sizeof bits);
    sign = bits >> 63;
    exp = (unsigned)(bits >> 52) & 0x7ff;
    mant = bits & ((UINT64_C(1) << 52) - 1);
    if (exp == 0x7ff) {
        nb = mant ? 0x7e00 : (0x7c00 | (sign << 15)); /* every NaN becomes f97e00 */
        goto half;
    }
    if (exp == 0 && mant == 0) {
        nb = sign << 15;
        goto half;
    }
    e = exp ? (int)exp - 1023 : -1022;
    mant = exp ? (mant | (UINT64_C(1) << 52)) : mant;
    if (float_narrow(e, mant, 10, -14, 15, 15, &nb)) {
        nb |= sign << 15;
        goto half;
    }
    if (float_narrow(e, mant, 23, -126, 127, 127, &nb)) {
        nb |= sign << 31;
        h[0] = 0xfa;
        for (int i = 0; i < 4; i++) {
            h[4 - i] = (uint8_t)(nb >> (8 * i));
        }
        return 5;
    }
    h[0] = 0xfb;
    for (int i = 0; i < 8; i++) {
        h[8 - i] = (uint8_t)(bits >> (8 * i));
    }
    return 9;
half:
    h[0] = 0xf9;
    h[1] = (uint8_t)(nb >> 8);
    h[2] = (uint8_t)nb;
    return 3;
}

void cbor_put_double(struct cbor_writer *w, double v)
{
    uint8_t h[9];
    size_t n = encode_double(h, v);
    put_bytes(w, h, n);
}

static double half_to_double(uint64_t h)
{
    int e = (int)(h >> 10) & 0x1f;
    double m = (double)(h & 0x3ff);
    double v;

    if (e == 0) {
        v = ldexp(m, -24);
    } else if (e == 31) {
        v = (m != 0) ? NAN : INFINITY;
    } else {
        v = ldexp(m + 1024, e - 25);
    }
    return (h & 0x8000) ? -v : v;
}

/* The value of a float item whose head had additional info ai (25..27) and argument bits. */
static double float_value(unsigned ai, uint64_t bits)
{
    if (ai == 25) {
        return half_to_double(bits);
    }
    if (ai == 26) {
        uint32_t b32 = (uint32_t)bits;
        float f;
        memcpy(&f, &b32, sizeof f);
        return (double)f;
    }
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Is the float item enc[0..n) exactly what encode_double() writes for its value? */
static int float_is_shortest(const uint8_t *enc, size_t n, double v)
{
    uint8_t h[9];
    size_t m = encode_double(h, v);
    return m == n && memcmp(h, enc, n) == 0;
}

/* ---- UTF-8 --------------------------------------------------------------------------------- */

/* Well-formed UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        if (n - i >= 8) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            if ((x & UINT64_C(0x8080808080808080)) == 0) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c < 0xc2) {
            return 0;
        } else if (c < 0xe0) {
            k = 1;
        } else if (c < 0xf0) {
            k = 2;
            lo = (c == 0xe0) ? 0xa0 : 0x80;
            hi = (c == 0xed) ? 0x9f : 0xbf;
        } else if (c < 0xf5) {
            k = 3;
            lo = (c == 0xf0) ? 0x90 : 0x80;
            hi = (c == 0xf4) ? 0x8f : 0xbf;
        } else {
            return 0;
        }
        if (n - i - 1 < k || s[i + 1] < lo || s[i + 1] > hi) {
            return 0;
        }
        for (size_t j = 2; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) {
                return 0;
            }
        }
        i += k + 1;
    }
    return 1;
}

/* ---- Heads --------------------------------------------------------------------------------- */

#define HEAD_OK    0
#define HEAD_INDEF 1 /* additional info 31: indefinite length, or break for major 7 */
#define HEAD_BAD   (-1)

/* Parses one head at *pp. strict rejects non-shortest arguments of majors 0..6. For major 7,
 * ai 25..27 yield the raw float bits and ai 24 must carry a simple value >= 32. On HEAD_OK
 * and HEAD_INDEF, *pp moves past the head. */
static inline int parse_head(const uint8_t **pp, const uint8_t *end, int strict, unsigned *ib,
                             uint64_t *arg)
{
    const uint8_t *p = *pp;
    unsigned ai;
    size_t n;
    uint64_t v = 0;

    if (p == end) {
        return HEAD_BAD;
    }
    *ib = *p++;
    ai = *ib & 31;
    if (ai < 24) {
        *arg = ai;
        *pp = p;
        return HEAD_OK;
    }
    if (ai == 31) {
        *pp = p;
        return HEAD_INDEF;
    }
    if (ai > 27) {
        return HEAD_BAD;
    }
    n = (size_t)1 << (ai - 24);
    if ((size_t)(end - p) < n) {
        return HEAD_BAD;
    }
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    if ((*ib >> 5) == CBOR_MAJOR_SIMPLE) {
        if (ai == 24 && v < 32) {
            return HEAD_BAD; /* not well-formed (RFC 8949 section 3.3) */
        }
    } else if (strict && (ai == 24 ? v < 24 : v <= (UINT64_MAX >> (64 - 4 * n)))) {
        return HEAD_BAD; /* fits the next shorter form */
    }
    *arg = v;
    *pp = p + n;
    return HEAD_OK;
}

/* The strict head of a definite item of the given major (0..6). */
static inline int strict_head(const uint8_t **pp, const uint8_t *end, unsigned major, uint64_t *arg)
{
    unsigned ib;
    const uint8_t *p = *pp;

    if (p == end || (*p >> 5) != major) {
        return HEAD_BAD;
    }
    if (parse_head(&p, end, 1, &ib, arg) != HEAD_OK) {
        return HEAD_BAD;
    }
    *pp = p;
    return HEAD_OK;
}

/* ---- Walker -------------------------------------------------------------------------------- */

#define WALK_INDEF UINT64_MAX

struct walk_frame {
    uint64_t left;           /* items still due, WALK_INDEF for indefinite length */
    const uint8_t *prev_key; /* strict maps: encoding of the previous key, or NULL */
    const uint8_t *prev_end;
    const uint8_t *key; /* strict maps: where the current key began */
    uint8_t major;      /* ARRAY, MAP, TAG, or BSTR/TSTR for indefinite strings */
    uint8_t odd;        /* indefinite maps: a key was read, its value is due */
};

struct walk_count {
    size_t items; /* data items (chunks of indefinite strings excluded) */
    size_t bytes; /* string content bytes */
    size_t strs;  /* strings */
};

/* Is the key a[0..an) strictly after b[0..bn) in bytewise lexicographic order? */
static int key_after(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = memcmp(a, b, n);
    return c > 0 || (c == 0 && an > bn);
}

/* After an item ended at p: updates the enclosing containers, popping those that are now
 * complete. Returns 0, or -1 when a strict map key is out of order. */
static int walk_item_done(struct walk_frame *st, size_t *depth, const uint8_t *p, int strict)
{
    while (*depth > 0) {
        struct walk_frame *top = &st[*depth - 1];
        if (top->left == WALK_INDEF) {
            top->odd ^= (top->major == CBOR_MAJOR_MAP);
            return 0;
        }
        if (strict && top->major == CBOR_MAJOR_MAP && top->left % 2 == 0) {
            if (top->prev_key && !key_after(top->key, (size_t)(p - top->key), top->prev_key,
                                            (size_t)(top->prev_end - top->prev_key))) {
                return -1;
            }
            top->prev_key = top->key;
            top->prev_end = p;
        }
        if (--top->left > 0) {
            return 0;
        }
        (*depth)--;
    }
    return 0;
}

static int walk_push(struct walk_frame *st, size_t *depth, unsigned major, uint64_t left)
{
    if (*depth == CBOR_DEPTH_MAX) {
        return -1;
    }
    st[*depth] = (struct walk_frame){.left = left, .major = (uint8_t)major};
    (*depth)++;
    return 0;
}

/* One head inside an indefinite-length string: a definite chunk of the same major, or the
 * break. Returns 1 after the break, 0 after a chunk, -1 on error. */
static int walk_chunk(const uint8_t **pp, const uint8_t *end, unsigned major,
                      struct walk_count *cnt)
{
    unsigned ib;
    uint64_t arg;
    int h = parse_head(pp, end, 0, &ib, &arg);

    if (h == HEAD_INDEF && ib == 0xff) {
        return 1;
    }
    if (h != HEAD_OK || (ib >> 5) != major || arg > (uint64_t)(end - *pp)) {
        return -1;
    }
    cnt->bytes += (size_t)arg;
    *pp += arg;
    return 0;
}

#define WALK_DONE   0 /* the item is complete */
#define WALK_PUSHED 1 /* a container was opened; its items follow */

/* One item with a definite head (ib, arg) starting at `start`, its head already consumed up
 * to *pp: strings are skipped, arrays/maps/tags pushed, floats checked. Returns WALK_DONE,
 * WALK_PUSHED or -1. */
static int walk_definite(struct walk_frame *st, size_t *depth, const uint8_t **pp,
                         const uint8_t *end, int strict, unsigned ib, uint64_t arg,
                         const uint8_t *start, struct walk_count *cnt)
{
    unsigned major = ib >> 5;
    uint64_t room = (uint64_t)(end - *pp);

    switch (major) {
    case CBOR_MAJOR_BSTR:
    case CBOR_MAJOR_TSTR:
        if (arg > room || (strict && major == CBOR_MAJOR_TSTR && !utf8_valid(*pp, (size_t)arg))) {
            return -1;
        }
        cnt->bytes += (size_t)arg;
        cnt->strs++;
        *pp += arg;
        return WALK_DONE;
    case CBOR_MAJOR_ARRAY:
    case CBOR_MAJOR_MAP:
        /* Every item takes at least one byte: longer counts cannot be satisfied. */
        if (major == CBOR_MAJOR_MAP ? arg > room / 2 : arg > room) {
            return -1;
        }
        if (arg == 0) {
            return WALK_DONE;
        }
        if (walk_push(st, depth, major, major == CBOR_MAJOR_MAP ? 2 * arg : arg)) {
            return -1;
        }
        return WALK_PUSHED;
    case CBOR_MAJOR_TAG:
        return walk_push(st, depth, major, 1) ? -1 : WALK_PUSHED;
    case CBOR_MAJOR_SIMPLE:
        if (strict && (ib & 31) >= 25 &&
            !float_is_shortest(start, (size_t)(*pp - start), float_value(ib & 31, arg))) {
            return -1;
        }
        return WALK_DONE;
    default:
        return WALK_DONE;
    }
}

/* Checks one whole item at *pp and moves past it. Iterative: the container stack is a local
 * array of CBOR_DEPTH_MAX frames. Returns 0 or -1. */
static int walk(const uint8_t **pp, const uint8_t *end, int strict, struct walk_count *cnt)
{
    struct walk_frame st[CBOR_DEPTH_MAX];
    size_t depth = 0;
    const uint8_t *p = *pp;

    for (;;) {
        struct walk_frame *top = depth ? &st[depth - 1] : NULL;
        const uint8_t *start = p;
        unsigned ib, major;
        uint64_t arg;
        int h;

        if (top && top->left == WALK_INDEF && top->major <= CBOR_MAJOR_TSTR) {
            h = walk_chunk(&p, end, top->major, cnt);
            if (h < 0) {
                return -1;
            }
            if (h == 0) {
                continue;
            }
            depth--; /* the break ends the string */
        } else {
            h = parse_head(&p, end, strict, &ib, &arg);
            if (h == HEAD_BAD) {
                return -1;
            }
            major = ib >> 5;
            if (h == HEAD_INDEF && ib == 0xff) {
                if (!top || top->left != WALK_INDEF || top->odd) {
                    return -1; /* a break outside an indefinite container, or after a key */
                }
                depth--;
            } else if (h == HEAD_INDEF) {
                if (strict || major == CBOR_MAJOR_UINT || major == CBOR_MAJOR_NINT ||
                    major == CBOR_MAJOR_TAG || walk_push(st, &depth, major, WALK_INDEF)) {
                    return -1;
                }
                cnt->items++;
                cnt->strs += (major <= CBOR_MAJOR_TSTR);
                continue;
            } else {
                cnt->items++;
                if (strict && top && top->major == CBOR_MAJOR_MAP && top->left % 2 == 0) {
                    top->key = start;
                }
                h = walk_definite(st, &depth, &p, end, strict, ib, arg, start, cnt);
                if (h < 0) {
                    return -1;
                }
                if (h == WALK_PUSHED) {
                    continue;
                }
            }
        }
        if (walk_item_done(st, &depth, p, strict)) {
            return -1;
        }
        if (depth == 0) {
            *pp = p;
            return 0;
        }
    }
}

/* ---- Strict cursor reader ------------------------------------------------------------------ */

void cbor_reader_init(struct cbor_reader *r, const uint8_t *buf, size_t len)
{
    r->p = buf;
    r->end = buf ? buf + len : buf;
    r->err = 0;
}

static int reader_fail(struct cbor_reader *r)
{
    r->err = P4P_EMALFORMED;
    return P4P_EMALFORMED;
}

int cbor_get_uint(struct cbor_reader *r, uint64_t *v)
{
    const uint8_t *p = r->p;
    uint64_t a;

    if (r->err) {
        return r->err;
    }
    if (strict_head(&p, r->end, CBOR_MAJOR_UINT, &a)) {
        return reader_fail(r);
    }
    r->p = p;
    *v = a;
    return 0;
}

int cbor_get_int(struct cbor_reader *r, int64_t *v)
{
    const uint8_t *p = r->p;
    uint64_t a;
    unsigned major;

    if (r->err) {
        return r->err;
    }
    if (p == r->end) {
        return reader_fail(r);
    }
    major = *p >> 5;
    if (major > CBOR_MAJOR_NINT || strict_head(&p, r->end, major, &a) || a > INT64_MAX) {
        return reader_fail(r);
    }
    r->p = p;
    *v = (major == CBOR_MAJOR_UINT) ? (int64_t)a : -1 - (int64_t)a;
    return 0;
}

int cbor_get_bstr(struct cbor_reader *r, const uint8_t **bytes, size_t *n)
{
    const uint8_t *p = r->p;
    uint64_t a;

    if (r->err) {
        return r->err;
    }
    if (strict_head(&p, r->end, CBOR_MAJOR_BSTR, &a) || a > (uint64_t)(r->end - p)) {
        return reader_fail(r);
    }
    r->p = p + a;
    *bytes = p;
    *n = (size_t)a;
    return 0;
}

int cbor_get_tstr(struct cbor_reader *r, const char **s, size_t *n)
{
    const uint8_t *p = r->p;
    uint64_t a;

    if (r->err) {
        return r->err;
    }
    if (strict_head(&p, r->end, CBOR_MAJOR_TSTR, &a) || a > (uint64_t)(r->end - p) ||
        !utf8_valid(p, (size_t)a)) {
        return reader_fail(r);
    }
    r->p = p + a;
    *s = (const char *)p;
    *n = (size_t)a;
    return 0;
}

int cbor_get_array(struct cbor_reader *r, uint64_t *n)
{
    const uint8_t *p = r->p;
    uint64_t a;

    if (r->err) {
        return r->err;
    }
    if (strict_head(&p, r->end, CBOR_MAJOR_ARRAY, &a) || a > (uint64_t)(r->end - p)) {
        return reader_fail(r);
    }
    r->p = p;
    *n = a;
    return 0;
}

int cbor_get_map(struct cbor_reader *r, uint64_t *n)
{
    const uint8_t *p = r->p;
    uint64_t a;

    if (r->err) {
        return r->err;
    }
    if (strict_head(&p, r->end, CBOR_MAJOR_MAP, &a) || a > (uint64_t)(r->end - p) / 2) {
        return reader_fail(r);
    }
    r->p = p;
    *n = a;
    return 0;
}

int cbor_get_tag(struct cbor_reader *r, uint64_t *tag)
{
    const uint8_t *p = r->p;
    uint64_t a;

    if (r->err) {
        return r->err;
    }
    if (strict_head(&p, r->end, CBOR_MAJOR_TAG, &a)) {
        return reader_fail(r);
    }
    r->p = p;
    *tag = a;
    return 0;
}

int cbor_get_bool(struct cbor_reader *r, int *v)
{
    if (r->err) {
        return r->err;
    }
    if (r->p == r->end || (*r->p != 0xf4 && *r->p != 0xf5)) {
        return reader_fail(r);
    }
    *v = (*r->p == 0xf5);
    r->p++;
    return 0;
}

int cbor_get_null(struct cbor_reader *r)
{
    if (r->err) {
        return r->err;
    }
    if (r->p == r->end || *r->p != 0xf6) {
        return reader_fail(r);
    }
    r->p++;
    return 0;
}

int cbor_get_double(struct cbor_reader *r, double *v)
{
    const uint8_t *p = r->p;
    unsigned ib;
    uint64_t bits;
    double d;

    if (r->err) {
        return r->err;
    }
    if (p == r->end || *p < 0xf9 || *p > 0xfb || parse_head(&p, r->end, 1, &ib, &bits) != HEAD_OK) {
        return reader_fail(r);
    }
    d = float_value(ib & 31, bits);
    if (!float_is_shortest(r->p, (size_t)(p - r->p), d)) {
        return reader_fail(r);
    }
    r->p = p;
    *v = d;
    return 0;
}

int cbor_peek_major(const struct cbor_reader *r)
{
    if (r->err || r->p == r->end) {
        return -1;
    }
    return *r->p >> 5;
}

int cbor_skip(struct cbor_reader *r)
{
    const uint8_t *p = r->p;
    struct walk_count cnt = {0, 0, 0};

    if (r->err) {
        return r->err;
    }
    if (p == r->end || walk(&p, r->end, 1, &cnt)) {
        return reader_fail(r);
    }
    r->p = p;
    return 0;
}

/* ---- Tree: decode -------------------------------------------------------------------------- */

void cbor_arena_free(struct cbor_arena *arena)
{
    free(arena->block);
    arena->block = NULL;
    arena->size = 0;
}

/* Bump allocator over the block sized by the walker's counts. */
struct build {
    struct cbor_item *next;
    struct cbor_item *items_end;
    uint8_t *bytes;
    uint8_t *bytes_end;
};

static struct cbor_item *build_take(struct build *b, uint64_t n)
{
    struct cbor_item *it = b->next;

    if (n > (uint64_t)(b->items_end - b->next)) {
        return NULL;
    }
    b->next += n;
    return it;
}

static int build_item(struct build *b, const uint8_t **pp, const uint8_t *end, struct cbor_item *it,
                      unsigned depth);

/* Appends one string piece of n bytes at *pp to the string being built (dst[0..*total)). */
static int build_piece(struct build *b, const uint8_t **pp, const uint8_t *end, uint64_t n,
                       size_t *total)
{
    if (n > (uint64_t)(end - *pp) || n >= (uint64_t)(b->bytes_end - b->bytes) - *total) {
        return -1;
    }
    memcpy(b->bytes + *total, *pp, (size_t)n);
    *total += (size_t)n;
    *pp += n;
    return 0;
}

/* A string's content: one definite string, or the chunks of an indefinite one up to its
 * break, concatenated and NUL-terminated. */
static int build_string(struct build *b, const uint8_t **pp, const uint8_t *end,
                        struct cbor_item *it, unsigned major, int h, uint64_t arg)
{
    size_t total = 0;
    unsigned ib;

    if (h == HEAD_OK) {
        if (build_piece(b, pp, end, arg, &total)) {
            return -1;
        }
    } else {
        for (;;) {
            h = parse_head(pp, end, 0, &ib, &arg);
            if (h == HEAD_INDEF && ib == 0xff) {
                break;
            }
            if (h != HEAD_OK || (ib >> 5) != major || build_piece(b, pp, end, arg, &total)) {
                return -1;
            }
        }
    }
    it->type = (major == CBOR_MAJOR_BSTR) ? CBOR_BSTR : CBOR_TSTR;
    it->bytes = b->bytes;
    it->len = total;
    b->bytes[total] = 0;
    b->bytes += total + 1;
    return 0;
}

/* An array or map: n items (2 per pair), or for indefinite length as many as precede the
 * break (counted first with the walker). */
static int build_container(struct build *b, const uint8_t **pp, const uint8_t *end,
                           struct cbor_item *it, unsigned major, int h, uint64_t arg,
                           unsigned depth)
{
    uint64_t n = (h == HEAD_OK) ? (major == CBOR_MAJOR_MAP ? 2 * arg : arg) : 0;
    struct walk_count cnt = {0, 0, 0};
    struct cbor_item *items;

    if (h == HEAD_INDEF) {
        const uint8_t *q = *pp;
        while (q < end && *q != 0xff) {
            if (walk(&q, end, 0, &cnt)) {
                return -1;
            }
            n++;
        }
    }
    items = build_take(b, n);
    if (!items) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (build_item(b, pp, end, &items[i], depth + 1)) {
            return -1;
        }
    }
    if (h == HEAD_INDEF) {
        if (*pp == end || **pp != 0xff) {
            return -1;
        }
        (*pp)++;
    }
    it->type = (major == CBOR_MAJOR_MAP) ? CBOR_MAP : CBOR_ARRAY;
    it->len = (size_t)(major == CBOR_MAJOR_MAP ? n / 2 : n);
    it->items = n ? items : NULL;
    return 0;
}

/* Fills *it from input the walker accepted. The checks here only keep a bug from turning
 * into a memory error. */
static int build_item(struct build *b, const uint8_t **pp, const uint8_t *end, struct cbor_item *it,
                      unsigned depth)
{
    unsigned ib, major;
    uint64_t arg = 0;
    int h = parse_head(pp, end, 0, &ib, &arg);

    if (h == HEAD_BAD || depth > CBOR_DEPTH_MAX + 1) {
        return -1;
    }
    memset(it, 0, sizeof *it);
    major = ib >> 5;
    switch (major) {
    case CBOR_MAJOR_UINT:
    case CBOR_MAJOR_NINT:
        it->type = (major == CBOR_MAJOR_UINT) ? CBOR_UINT : CBOR_NINT;
        it->u = arg;
        return h == HEAD_OK ? 0 : -1;
    case CBOR_MAJOR_BSTR:
    case CBOR_MAJOR_TSTR:
        return build_string(b, pp, end, it, major, h, arg);
    case CBOR_MAJOR_ARRAY:
    case CBOR_MAJOR_MAP:
        return build_container(b, pp, end, it, major, h, arg, depth);
    case CBOR_MAJOR_TAG:
        it->type = CBOR_TAG;
        it->u = arg;
        it->len = 1;
        it->items = build_take(b, 1);
        if (h != HEAD_OK || !it->items) {
            return -1;
        }
        return build_item(b, pp, end, it->items, depth + 1);
    default:
        if (h != HEAD_OK) {
            return -1;
        }
        if ((ib & 31) >= 25) {
            it->type = CBOR_FLOAT;
            it->f = float_value(ib & 31, arg);
        } else {
            it->type = CBOR_SIMPLE;
            it->u = arg;
        }
        return 0;
    }
}

int cbor_decode(const uint8_t *buf, size_t len, int strict, struct cbor_arena *arena,
                struct cbor_item **out)
{
    struct walk_count cnt = {0, 0, 0};
    const uint8_t *p = buf;
    const uint8_t *end;
    struct build b;
    struct cbor_item *root;
    size_t size;
    void *block;

    if (!arena || !out || (!buf && len > 0)) {
        return P4P_EINVAL;
    }
    if (len == 0) {
        return P4P_EMALFORMED;
    }
    end = buf + len;
    if (walk(&p, end, strict, &cnt) || p != end) {
        return P4P_EMALFORMED;
    }
    /* items, bytes and strs are each at most len, so this cannot wrap for sane len; check. */
    if (cnt.items > (SIZE_MAX - cnt.bytes - cnt.strs) / sizeof(struct cbor_item)) {
        return P4P_ENOMEM;
    }
    size = cnt.items * sizeof(struct cbor_item) + cnt.bytes + cnt.strs;
    block = malloc(size);
    if (!block) {
        return P4P_ENOMEM;
    }
    b.next = block;
    b.items_end = b.next + cnt.items;
    b.bytes = (uint8_t *)b.items_end;
    b.bytes_end = b.bytes + cnt.bytes + cnt.strs;
    p = buf;
    root = build_take(&b, 1);
    if (!root || build_item(&b, &p, end, root, 0) || p != end) {
        free(block);
        return P4P_EMALFORMED;
    }
    cbor_arena_free(arena);
    arena->block = block;
    arena->size = size;
    *out = root;
    return 0;
}

/* ---- Tree: encode -------------------------------------------------------------------------- */

struct map_key {
    const uint8_t *key; /* encoded key */
    size_t key_len;
    size_t pair; /* index of the pair in the map */
};

static int map_key_cmp(const void *a, const void *b)
{
    const struct map_key *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);

    if (c != 0) {
        return c;
    }
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static int encode_item(const struct cbor_item *it, struct cbor_writer *w, unsigned depth, int sort);

/* Encodes the keys into one scratch block, sorts them, then writes each key followed by its
 * value. Values are encoded straight into w; only keys are encoded twice (to size them and to
 * write them), so the work is O(size * depth), not exponential in depth. */
static int encode_map(const struct cbor_item *it, struct cbor_writer *w, unsigned depth)
{
    struct map_key *keys = NULL;
    uint8_t *scratch = NULL;
    size_t total = 0, off = 0;
    int rc = 0;

    if (it->len == 0) {
        cbor_put_map(w, 0);
        return 0;
    }
    if (it->len > SIZE_MAX / 2 / sizeof *keys) {
        return P4P_EINVAL;
    }
    keys = malloc(it->len * sizeof *keys);
    if (!keys) {
        return P4P_ENOMEM;
    }
    for (size_t i = 0; i < it->len; i++) {
        struct cbor_writer m;
        cbor_writer_init(&m, NULL, 0);
        rc = encode_item(&it->items[2 * i], &m, depth + 1, 0);
        if (rc) {
            goto free_keys;
        }
        keys[i].key_len = m.len;
        keys[i].pair = i;
        if (m.len > SIZE_MAX - total) {
            rc = P4P_ENOMEM;
            goto free_keys;
        }
        total += m.len;
    }
    scratch = malloc(total);
    if (!scratch) {
        rc = P4P_ENOMEM;
        goto free_keys;
    }
    for (size_t i = 0; i < it->len; i++) {
        struct cbor_writer kw;
        cbor_writer_init(&kw, scratch + off, keys[i].key_len);
        rc = encode_item(&it->items[2 * i], &kw, depth + 1, 1);
        if (rc || kw.overflow || kw.len != keys[i].key_len) {
            rc = rc ? rc : P4P_EINVAL;
            goto free_scratch;
        }
        keys[i].key = scratch + off;
        off += keys[i].key_len;
    }
    qsort(keys, it->len, sizeof *keys, map_key_cmp);
    cbor_put_map(w, it->len);
    for (size_t i = 0; i < it->len; i++) {
        if (i > 0 && map_key_cmp(&keys[i - 1], &keys[i]) == 0) {
            rc = P4P_EINVAL; /* duplicate key: no deterministic encoding */
            goto free_scratch;
        }
        put_bytes(w, keys[i].key, keys[i].key_len);
        rc = encode_item(&it->items[2 * keys[i].pair + 1], w, depth + 1, 1);
        if (rc) {
            goto free_scratch;
        }
    }
free_scratch:
    free(scratch);
free_keys:
    free(keys);
    return rc;
}

/* sort = 0 writes map pairs in tree order: same length, used to size keys. */
static int encode_item(const struct cbor_item *it, struct cbor_writer *w, unsigned depth, int sort)
{
    int rc;

    switch (it->type) {
    case CBOR_UINT:
    case CBOR_NINT:
        cbor_put_head(w, it->type == CBOR_UINT ? CBOR_MAJOR_UINT : CBOR_MAJOR_NINT, it->u);
        return 0;
    case CBOR_BSTR:
    case CBOR_TSTR:
        if (it->len > 0 && !it->bytes) {
            return P4P_EINVAL;
        }
        cbor_put_head(w, it->type == CBOR_BSTR ? CBOR_MAJOR_BSTR : CBOR_MAJOR_TSTR, it->len);
        put_bytes(w, it->bytes, it->len);
        return 0;
    case CBOR_ARRAY:
    case CBOR_MAP:
    case CBOR_TAG:
        if ((depth >= CBOR_DEPTH_MAX && it->len > 0) || (it->len > 0 && !it->items) ||
            (it->type == CBOR_TAG && it->len != 1)) {
            return P4P_EINVAL;
        }
        if (it->type == CBOR_MAP && sort) {
            return encode_map(it, w, depth);
        }
        if (it->type == CBOR_MAP && it->len > SIZE_MAX / 2) {
            return P4P_EINVAL;
        }
        cbor_put_head(w,
                      it->type == CBOR_ARRAY ? CBOR_MAJOR_ARRAY
                      : it->type == CBOR_MAP ? CBOR_MAJOR_MAP
                                             : CBOR_MAJOR_TAG,
                      it->type == CBOR_TAG ? it->u : it->len);
        for (size_t i = 0; i < (it->type == CBOR_MAP ? 2 * it->len : it->len); i++) {
            rc = encode_item(&it->items[i], w, depth + 1, sort);
            if (rc) {
                return rc;
            }
        }
        return 0;
    case CBOR_SIMPLE:
        if (it->u > 255 || (it->u >= 24 && it->u < 32)) {
            return P4P_EINVAL;
        }
        cbor_put_head(w, CBOR_MAJOR_SIMPLE, it->u);
        return 0;
    case CBOR_FLOAT:
        cbor_put_double(w, it->f);
        return 0;
    }
    return P4P_EINVAL;
}

int cbor_encode(const struct cbor_item *item, struct cbor_writer *w)
{
    int rc;

    if (!item || !w) {
        return P4P_EINVAL;
    }
    rc = encode_item(item, w, 0, 1);
    if (rc) {
        return rc;
    }
    return w->overflow ? P4P_ETOOBIG : 0;
}

/* ---- Tree: diagnostic notation ------------------------------------------------------------- */

struct diag {
    char *out;
    size_t cap;
    size_t len;
    int truncated;
};

static void diag_put(struct diag *d, const char *s, size_t n)
{
    size_t room = d->cap > d->len ? d->cap - d->len - 1 : 0;

    if (n > room) {
        n = room;
        d->truncated = 1;
    }
    memcpy(d->out + d->len, s, n);
    d->len += n;
    d->out[d->len] = 0;
}

static void diag_puts(struct diag *d, const char *s)
{
    diag_put(d, s, strlen(s));
}

/* The shortest decimal digits that read back as a (finite, positive): *m holds them as an
 * integer and the value is m * 10^*x. For each precision the correctly rounded candidate and
 * its two neighbours are tried: when v sits on a rounding tie or next to a power of two, the
 * shortest string that reads back is not always the correctly rounded one. */
static void shortest_digits(double a, uint64_t *m, int *x)
{
    char e[48], t[48];

    for (int prec = 0; prec < 17; prec++) {
        uint64_t base = 0;
        snprintf(e, sizeof e, "%.*e", prec, a);
        for (const char *s = e; *s && *s != 'e'; s++) {
            if (*s >= '0' && *s <= '9') {
                base = base * 10 + (uint64_t)(*s - '0');
            }
        }
        int ex = atoi(strchr(e, 'e') + 1) - prec;
        for (int delta = 0; delta <= 2; delta++) {
            uint64_t cand = delta == 0 ? base : delta == 1 ? base + 1 : base - 1;
            if (cand == 0) {
                continue;
            }
            snprintf(t, sizeof t, "%" PRIu64 "e%d", cand, ex);
            if (strtod(t, NULL) == a) {
                *m = cand;
                *x = ex;
                return;
            }
        }
    }
    /* Unreachable: 17 significant digits always read back. */
    *m = 0;
    *x = 0;
}

/* The shortest decimal that reads back as v, JavaScript style: fixed notation for decimal
 * exponents -7..20, otherwise d.ddde+X; always with a '.' (1.0, 1.0e+300). */
static void diag_double(struct diag *d, double v)
{
    char digits[24], buf[64];
    size_t nd, k = 0;
    uint64_t m;
    int x;

    if (isnan(v)) {
        diag_puts(d, "NaN");
        return;
    }
    if (isinf(v)) {
        diag_puts(d, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (v == 0) {
        diag_puts(d, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    shortest_digits(fabs(v), &m, &x);
    nd = (size_t)snprintf(digits, sizeof digits, "%" PRIu64, m);
    while (nd > 1 && digits[nd - 1] == '0') {
        digits[--nd] = 0;
        x++;
    }
    x += (int)nd - 1; /* now the exponent of the first digit */
    if (v < 0) {
        buf[k++] = '-';
    }
    if (x >= -7 && x < 21) {
        if (x < 0) {
            buf[k++] = '0';
            buf[k++] = '.';
            for (int i = 0; i < -x - 1; i++) {
                buf[k++] = '0';
            }
            memcpy(buf + k, digits, nd);
            k += nd;
        } else {
            for (int i = 0; i <= x; i++) {
                buf[k++] = (size_t)i < nd ? digits[i] : '0';
            }
            buf[k++] = '.';
            if ((size_t)x + 1 < nd) {
                memcpy(buf + k, digits + x + 1, nd - (size_t)x - 1);
                k += nd - (size_t)x - 1;
            } else {
                buf[k++] = '0';
            }
        }
        buf[k] = 0;
    } else {
        snprintf(buf + k, sizeof buf - k, "%c.%se%c%d", digits[0], nd > 1 ? digits + 1 : "0",
                 x < 0 ? '-' : '+', x < 0 ? -x : x);
    }
    diag_puts(d, buf);
}

static void diag_text(struct diag *d, const uint8_t *s, size_t n)
{
    char esc[8];

    diag_put(d, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            esc[0] = '\\';
            esc[1] = (char)s[i];
            diag_put(d, esc, 2);
        } else if (s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", s[i]);
            diag_puts(d, esc);
        } else {
            diag_put(d, (const char *)&s[i], 1);
        }
    }
    diag_put(d, "\"", 1);
}

static int diag_item(struct diag *d, const struct cbor_item *it, unsigned depth)
{
    static const char hex[] = "0123456789abcdef";
    static const char *const names[] = {"false", "true", "null", "undefined"};
    char num[48];

    switch (it->type) {
    case CBOR_UINT:
        snprintf(num, sizeof num, "%" PRIu64, it->u);
        diag_puts(d, num);
        return 0;
    case CBOR_NINT:
        if (it->u == UINT64_MAX) {
            diag_puts(d, "-18446744073709551616");
        } else {
            snprintf(num, sizeof num, "-%" PRIu64, it->u + 1);
            diag_puts(d, num);
        }
        return 0;
    case CBOR_BSTR:
    case CBOR_TSTR:
        if (it->len > 0 && !it->bytes) {
            return P4P_EINVAL;
        }
        if (it->type == CBOR_TSTR) {
            diag_text(d, it->bytes, it->len);
            return 0;
        }
        diag_puts(d, "h'");
        for (size_t i = 0; i < it->len; i++) {
            char h2[2] = {hex[it->bytes[i] >> 4], hex[it->bytes[i] & 15]};
            diag_put(d, h2, 2);
        }
        diag_puts(d, "'");
        return 0;
    case CBOR_ARRAY:
    case CBOR_MAP:
    case CBOR_TAG:
        if ((depth >= CBOR_DEPTH_MAX && it->len > 0) || (it->len > 0 && !it->items) ||
            (it->type == CBOR_TAG && it->len != 1) ||
            (it->type == CBOR_MAP && it->len > SIZE_MAX / 2)) {
            return P4P_EINVAL;
        }
        if (it->type == CBOR_TAG) {
            snprintf(num, sizeof num, "%" PRIu64 "(", it->u);
            diag_puts(d, num);
        } else {
            diag_puts(d, it->type == CBOR_ARRAY ? "[" : "{");
        }
        for (size_t i = 0; i < (it->type == CBOR_MAP ? 2 * it->len : it->len); i++) {
            if (i > 0) {
                diag_puts(d, it->type == CBOR_MAP && i % 2 ? ": " : ", ");
            }
            int rc = diag_item(d, &it->items[i], depth + 1);
            if (rc) {
                return rc;
            }
        }
        diag_puts(d, it->type == CBOR_ARRAY ? "]" : it->type == CBOR_MAP ? "}" : ")");
        return 0;
    case CBOR_SIMPLE:
        if (it->u >= CBOR_SIMPLE_FALSE && it->u <= CBOR_SIMPLE_UNDEFINED) {
            diag_puts(d, names[it->u - CBOR_SIMPLE_FALSE]);
        } else {
            snprintf(num, sizeof num, "simple(%" PRIu64 ")", it->u);
            diag_puts(d, num);
        }
        return 0;
    case CBOR_FLOAT:
        diag_double(d, it->f);
        return 0;
    }
    return P4P_EINVAL;
}

int cbor_diag(const struct cbor_item *item, char *out, size_t cap)
{
    struct diag d = {out, cap, 0, 0};
    int rc;

    if (!item || (!out && cap > 0)) {
        return P4P_EINVAL;
    }
    if (cap == 0) {
        return P4P_ETOOBIG;
    }
    out[0] = 0;
    rc = diag_item(&d, item, 0);
    if (rc) {
        return rc;
    }
    return d.truncated ? P4P_ETOOBIG : 0;
}
