/*
 * cbor.h — deterministic CBOR (RFC 8949) for the p4p wire format.
 *
 * Three parts, from hot to cold:
 *
 *   writer   cbor_put_*()  caller-supplied buffer, shortest-form heads, never allocates.
 *            Every message the engine sends is built with it.
 *   reader   cbor_get_*()  a cursor over untrusted bytes for the engine's frame decoders.
 *            Strict: only the core deterministic encoding (RFC 8949 section 4.2.1) is
 *            accepted. No allocation, no recursion; pointers it returns point into the input.
 *   tree     cbor_decode() / cbor_encode() / cbor_diag()  a generic item tree for tests,
 *            tools and diagnostics. Accepts any well-formed CBOR (or only deterministic CBOR
 *            with strict=1) and allocates one block per decoded document.
 *
 * Errors: the reader and the tree decoder return P4P_EMALFORMED for any byte string they do
 * not accept; nothing here asserts on input or reads outside the given buffer.
 */
#ifndef P4P_CBOR_H
#define P4P_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include "p4p/p4p.h"

/* Deepest nesting of containers (arrays, maps, tags, indefinite-length strings) that the
 * reader's cbor_skip() and the tree decoder accept. An item inside N containers is at depth
 * N; N may be at most CBOR_DEPTH_MAX. */
#define CBOR_DEPTH_MAX 64

enum cbor_major {
    CBOR_MAJOR_UINT = 0,
    CBOR_MAJOR_NINT = 1,
    CBOR_MAJOR_BSTR = 2,
    CBOR_MAJOR_TSTR = 3,
    CBOR_MAJOR_ARRAY = 4,
    CBOR_MAJOR_MAP = 5,
    CBOR_MAJOR_TAG = 6,
    CBOR_MAJOR_SIMPLE = 7, /* simple values and floats */
};

/* Simple values with a name (major type 7). */
#define CBOR_SIMPLE_FALSE     20
#define CBOR_SIMPLE_TRUE      21
#define CBOR_SIMPLE_NULL      22
#define CBOR_SIMPLE_UNDEFINED 23

/* ---- Writer -------------------------------------------------------------------------------- */

/* Appends to buf[0..cap). When an item does not fit, nothing of it is written, `overflow` is
 * set and `len` keeps counting, so after a failed run `len` is the size that was needed.
 * buf may be NULL with cap 0 to measure an encoding. */
struct cbor_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int overflow;
};

void cbor_writer_init(struct cbor_writer *w, uint8_t *buf, size_t cap);
/* A head of `major` (0..7) with argument `arg`, in the shortest form. For major 7 only simple
 * values make sense (arg 0..23 or 32..255); floats go through cbor_put_double(). */
void cbor_put_head(struct cbor_writer *w, unsigned major, uint64_t arg);
void cbor_put_uint(struct cbor_writer *w, uint64_t v);
void cbor_put_int(struct cbor_writer *w, int64_t v);
void cbor_put_bstr(struct cbor_writer *w, const void *p, size_t n);
void cbor_put_tstr(struct cbor_writer *w, const char *s, size_t n); /* s must be UTF-8 */
void cbor_put_array(struct cbor_writer *w, uint64_t n);             /* then n items */
void cbor_put_map(struct cbor_writer *w, uint64_t n);   /* then n key/value pairs, keys sorted */
void cbor_put_tag(struct cbor_writer *w, uint64_t tag); /* then the tagged item */
void cbor_put_bool(struct cbor_writer *w, int v);
void cbor_put_null(struct cbor_writer *w);
/* The shortest of half/single/double precision that holds v exactly; any NaN is f97e00. */
void cbor_put_double(struct cbor_writer *w, double v);
/* Raw bytes, e.g. an item encoded earlier. */
void cbor_put_raw(struct cbor_writer *w, const void *p, size_t n);

static inline int cbor_writer_ok(const struct cbor_writer *w)
{
    return !w->overflow;
}

/* ---- Strict cursor reader ------------------------------------------------------------------ */

/* Reads items one by one from untrusted bytes. Accepted: shortest-form heads, definite
 * lengths, valid UTF-8 text, floats in their shortest form (NaN only as f97e00). Every
 * getter returns 0 or P4P_EMALFORMED; out-parameters and the position change only on
 * success. The first error sticks in `err` and makes every later call fail, so a decoder can
 * read a whole message and check once at the end with cbor_reader_done().
 *
 * Map key order is not checked by the getters (a message decoder reading known keys in order
 * enforces it by itself); cbor_skip() checks it for the items it skips. Array and map counts
 * are checked against the bytes left (each item needs at least one byte), so a count can be
 * used to size a loop but is still untrusted. */
struct cbor_reader {
    const uint8_t *p;
    const uint8_t *end;
    int err;
};

void cbor_reader_init(struct cbor_reader *r, const uint8_t *buf, size_t len);
int cbor_get_uint(struct cbor_reader *r, uint64_t *v);
int cbor_get_int(struct cbor_reader *r, int64_t *v); /* major 0 or 1, in int64_t range */
/* *p points into the reader's buffer and stays valid as long as it does. */
int cbor_get_bstr(struct cbor_reader *r, const uint8_t **p, size_t *n);
/* Checks UTF-8 validity; the text is not NUL-terminated. */
int cbor_get_tstr(struct cbor_reader *r, const char **s, size_t *n);
int cbor_get_array(struct cbor_reader *r, uint64_t *n);
int cbor_get_map(struct cbor_reader *r, uint64_t *n); /* n pairs */
int cbor_get_tag(struct cbor_reader *r, uint64_t *tag);
int cbor_get_bool(struct cbor_reader *r, int *v);
int cbor_get_null(struct cbor_reader *r);
int cbor_get_double(struct cbor_reader *r, double *v); /* any float width, shortest form */
/* The major type (0..7) of the next item, or -1 at the end or after an error. */
int cbor_peek_major(const struct cbor_reader *r);
/* Skips one whole item with the same strictness as the getters, plus sorted unique map keys;
 * nesting deeper than CBOR_DEPTH_MAX is an error. Iterative, no allocation. */
int cbor_skip(struct cbor_reader *r);

static inline int cbor_reader_done(const struct cbor_reader *r)
{
    return r->err == 0 && r->p == r->end;
}

/* ---- Generic item tree --------------------------------------------------------------------- */

enum cbor_type {
    CBOR_UINT,
    CBOR_NINT,
    CBOR_BSTR,
    CBOR_TSTR,
    CBOR_ARRAY,
    CBOR_MAP,
    CBOR_TAG,
    CBOR_SIMPLE,
    CBOR_FLOAT,
};

/* One data item. Which fields mean something depends on `type`:
 *
 *   CBOR_UINT    u = the value
 *   CBOR_NINT    u = n, the value is -1 - n (so it reaches -2^64)
 *   CBOR_BSTR    bytes[0..len), followed by a NUL byte that is not part of the string
 *   CBOR_TSTR    bytes[0..len), NUL-terminated the same way (UTF-8; checked only if strict)
 *   CBOR_ARRAY   items[0..len)
 *   CBOR_MAP     len pairs: items[2i] is a key, items[2i+1] its value, in input order
 *   CBOR_TAG     u = the tag number, items[0] the tagged item, len = 1
 *   CBOR_SIMPLE  u = 0..255 (CBOR_SIMPLE_FALSE, _TRUE, _NULL, _UNDEFINED, ...)
 *   CBOR_FLOAT   f = the value (width is not kept: cbor_encode picks the shortest)
 *
 * Indefinite-length strings are concatenated. Trees may also be built by hand (any memory)
 * and passed to cbor_encode() and cbor_diag(). */
struct cbor_item {
    enum cbor_type type;
    size_t len;
    union {
        uint64_t u;
        double f;
    };
    union {
        const uint8_t *bytes;
        struct cbor_item *items;
    };
};

/* Owns the memory of one decoded tree: a single malloc'd block holding every item and every
 * string. Start with CBOR_ARENA_INIT (or all zero); release with cbor_arena_free(). */
struct cbor_arena {
    void *block;
    size_t size;
};
#define CBOR_ARENA_INIT                                                                            \
    {                                                                                              \
        NULL, 0                                                                                    \
    }

void cbor_arena_free(struct cbor_arena *arena);

/* Decodes exactly one item filling buf[0..len) (trailing bytes are an error).
 * strict = 0: any well-formed CBOR — indefinite lengths, non-shortest heads, every float
 * width, simple values, tags. strict = 1: only the core deterministic encoding, which is
 * exactly what cbor_encode() produces: shortest heads, definite lengths, shortest floats
 * (NaN as f97e00), map keys in bytewise order of their encodings with no duplicates, valid
 * UTF-8 text.
 * Returns 0, P4P_EMALFORMED or P4P_ENOMEM. On success the tree lives in a new block owned by
 * `arena` (any block it held before is freed) and *out points to its root; the tree does not
 * point into buf. On failure nothing is changed. */
int cbor_decode(const uint8_t *buf, size_t len, int strict, struct cbor_arena *arena,
                struct cbor_item **out);

/* Core deterministic encoding of a tree: shortest heads, definite lengths, map pairs sorted
 * by the bytes of their encoded keys, floats in the shortest exact width, NaN as f97e00.
 * Returns 0; P4P_ETOOBIG if the writer overflowed (w->len is then the size needed);
 * P4P_EINVAL for a tree that has no deterministic encoding (duplicate map keys, simple value
 * 24..31, a tag without its item, nesting deeper than CBOR_DEPTH_MAX); P4P_ENOMEM when the
 * scratch memory for sorting map keys cannot be allocated. After an error the writer holds
 * unspecified bytes. */
int cbor_encode(const struct cbor_item *item, struct cbor_writer *w);

/* RFC 8949 diagnostic notation, e.g. [1, {"a": h'01'}], 1.5, -Infinity, simple(16),
 * 23(h'01'). Text is printed with JSON-style escapes for '"', '\' and control characters.
 * Always NUL-terminates when cap > 0. Returns 0, P4P_ETOOBIG when truncated, or P4P_EINVAL
 * for nesting deeper than CBOR_DEPTH_MAX. */
int cbor_diag(const struct cbor_item *item, char *out, size_t cap);

#endif /* P4P_CBOR_H */
