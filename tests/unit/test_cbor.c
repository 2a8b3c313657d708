/*
 * test_cbor.c — unit tests for engine/cbor.{h,c}, the deterministic CBOR codec.
 *
 * The RFC 8949 Appendix A vectors come from ../shared/data/cbor/appendix_a.json (read with a
 * small JSON scanner below, no JSON library): every vector must decode, the "roundtrip" ones
 * must re-encode to the same bytes and pass the strict decoder, "decoded" values are compared
 * item by item and "diagnostic" strings against cbor_diag(). Then hand-written byte tests for
 * the writer, the strict reader and the rejections, truncation at every prefix, deep nesting,
 * and a fixed-seed random fuzz loop with round-trip properties.
 *
 * Run from the repository root (the data path is relative to it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "cbor.h"

#define APPENDIX_A_PATH "../shared/data/cbor/appendix_a.json"
/* The one vector of the file that RFC 8949 no longer calls well-formed. */
#define RFC7049_ONLY_VECTOR "f818"

/* ---- Helpers ------------------------------------------------------------------------------- */

/* Hex string to bytes; returns the length, or -1 on a bad digit or overflow. */
static long hex_to_bytes(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);

    if (n % 2 || n / 2 > cap) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    return (long)(n / 2);
}

static void bytes_to_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", p[i]);
    }
    out[2 * n] = 0;
}

/* Writes with `fn` into a fresh writer and compares the result with `hex`. */
#define EXPECT_BYTES(hex, stmt)                                                                    \
    do {                                                                                           \
        uint8_t buf_[600];                                                                         \
        char got_[1201];                                                                           \
        struct cbor_writer w_;                                                                     \
        struct cbor_writer *w = &w_;                                                               \
        cbor_writer_init(w, buf_, sizeof buf_);                                                    \
        stmt;                                                                                      \
        assert_true(cbor_writer_ok(w));                                                            \
        bytes_to_hex(buf_, w->len, got_);                                                          \
        assert_string_equal(got_, (hex));                                                          \
    } while (0)

/* A malloc'd copy of exactly n bytes, so that ASan catches any read past the end. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    assert_non_null(q);
    if (n) {
        memcpy(q, p, n);
    }
    return q;
}

static int decode_hex(const char *hex, int strict, struct cbor_arena *arena, struct cbor_item **out)
{
    uint8_t buf[256];
    long n = hex_to_bytes(hex, buf, sizeof buf);
    assert_true(n >= 0);
    uint8_t *copy = dup_exact(buf, (size_t)n);
    int rc = cbor_decode(copy, (size_t)n, strict, arena, out);
    free(copy);
    return rc;
}

/* Encodes a tree and returns its hex. */
static int encode_hex(const struct cbor_item *it, char *hex, size_t hex_cap)
{
    uint8_t buf[512];
    struct cbor_writer w;
    int rc;

    cbor_writer_init(&w, buf, sizeof buf);
    rc = cbor_encode(it, &w);
    if (rc == 0) {
        assert_true(2 * w.len < hex_cap);
        bytes_to_hex(buf, w.len, hex);
    }
    return rc;
}

/* splitmix64: the fuzz loop's fixed-seed generator, state passed explicitly. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* ---- A tolerant JSON scanner for appendix_a.json ------------------------------------------- */

static void json_ws(const char **p)
{
    while (**p == ' ' || **p == '\n' || **p == '\r' || **p == '\t') {
        (*p)++;
    }
}

static void put_utf8(uint32_t c, char *out, size_t *n)
{
    if (c < 0x80) {
        out[(*n)++] = (char)c;
    } else if (c < 0x800) {
        out[(*n)++] = (char)(0xc0 | (c >> 6));
        out[(*n)++] = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        out[(*n)++] = (char)(0xe0 | (c >> 12));
        out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (c & 0x3f));
    } else {
        out[(*n)++] = (char)(0xf0 | (c >> 18));
        out[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3f));
        out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (c & 0x3f));
    }
}

/* A JSON string at *p (at its opening quote) into out (UTF-8, NUL-terminated); returns 0. */
static int json_string(const char **p, char *out, size_t cap, size_t *len)
{
    size_t n = 0;

    if (**p != '"') {
        return -1;
    }
    (*p)++;
    while (**p && **p != '"') {
        uint32_t c = (uint8_t) * (*p)++;
        if (n + 5 > cap) {
            return -1;
        }
        if (c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        c = (uint8_t) * (*p)++;
        switch (c) {
        case 'n':
            out[n++] = '\n';
            break;
        case 't':
            out[n++] = '\t';
            break;
        case 'r':
            out[n++] = '\r';
            break;
        case 'b':
            out[n++] = '\b';
            break;
        case 'f':
            out[n++] = '\f';
            break;
        case 'u': {
            unsigned u;
            if (sscanf(*p, "%4x", &u) != 1) {
                return -1;
            }
            *p += 4;
            if (u >= 0xd800 && u < 0xdc00 && (*p)[0] == '\\' && (*p)[1] == 'u') {
                unsigned lo;
                if (sscanf(*p + 2, "%4x", &lo) != 1) {
                    return -1;
                }
                *p += 6;
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(u, out, &n);
            break;
        }
        default:
            out[n++] = (char)c; /* '"', '\\', '/' */
            break;
        }
    }
    if (**p != '"') {
        return -1;
    }
    (*p)++;
    out[n] = 0;
    *len = n;
    return 0;
}

/* Skips any JSON value; returns 0. */
static int json_skip(const char **p)
{
    char tmp[1024];
    size_t n;

    json_ws(p);
    if (**p == '"') {
        return json_string(p, tmp, sizeof tmp, &n);
    }
    if (**p == '[' || **p == '{') {
        char close = (**p == '[') ? ']' : '}';
        (*p)++;
        json_ws(p);
        while (**p && **p != close) {
            if (json_skip(p)) {
                return -1;
            }
            json_ws(p);
            if (**p == ':' || **p == ',') {
                (*p)++;
            }
            json_ws(p);
        }
        if (**p != close) {
            return -1;
        }
        (*p)++;
        return 0;
    }
    const char *start = *p;
    while (**p && strchr("+-.0123456789eEtrufalsn", **p)) {
        (*p)++;
    }
    return *p > start ? 0 : -1;
}

struct vector {
    char hex[256];
    int roundtrip;
    const char *decoded; /* raw JSON text of the value, or NULL */
    char diagnostic[256];
    int has_diagnostic;
};

/* The next object of the top-level array; returns 1 when one was read, 0 at the end. */
static int json_next_vector(const char **p, struct vector *v)
{
    char key[64];
    size_t n;

    memset(v, 0, sizeof *v);
    json_ws(p);
    if (**p == '[' || **p == ',') {
        (*p)++;
        json_ws(p);
    }
    if (**p != '{') {
        return 0;
    }
    (*p)++;
    for (;;) {
        json_ws(p);
        if (**p == '}') {
            (*p)++;
            return 1;
        }
        if (**p == ',') {
            (*p)++;
            continue;
        }
        assert_int_equal(json_string(p, key, sizeof key, &n), 0);
        json_ws(p);
        assert_int_equal(**p, ':');
        (*p)++;
        json_ws(p);
        if (strcmp(key, "hex") == 0) {
            assert_int_equal(json_string(p, v->hex, sizeof v->hex, &n), 0);
        } else if (strcmp(key, "diagnostic") == 0) {
            assert_int_equal(json_string(p, v->diagnostic, sizeof v->diagnostic, &n), 0);
            v->has_diagnostic = 1;
        } else if (strcmp(key, "roundtrip") == 0) {
            v->roundtrip = (strncmp(*p, "true", 4) == 0);
            assert_int_equal(json_skip(p), 0);
        } else if (strcmp(key, "decoded") == 0) {
            v->decoded = *p;
            assert_int_equal(json_skip(p), 0);
        } else {
            assert_int_equal(json_skip(p), 0);
        }
    }
}

/* Big-endian magnitude bytes to decimal, adding `plus_one` first (for tag 3: -1 - n). */
static void bignum_decimal(const uint8_t *mag, size_t n, int plus_one, char *out, size_t cap)
{
    uint8_t num[32];
    char rev[80];
    size_t k = 0, len = n + 1;

    assert_true(len <= sizeof num);
    num[0] = 0;
    memcpy(num + 1, mag, n);
    for (size_t i = len; plus_one && i-- > 0;) {
        if (++num[i] != 0) {
            break;
        }
    }
    for (;;) {
        unsigned rem = 0;
        int nonzero = 0;
        for (size_t i = 0; i < len; i++) {
            unsigned cur = rem * 256 + num[i];
            num[i] = (uint8_t)(cur / 10);
            rem = cur % 10;
            nonzero |= num[i] != 0;
        }
        rev[k++] = (char)('0' + rem);
        if (!nonzero) {
            break;
        }
    }
    assert_true(k < cap);
    for (size_t i = 0; i < k; i++) {
        out[i] = rev[k - 1 - i];
    }
    out[k] = 0;
}

/* Does the JSON value at *p equal the item? Moves *p past the value. */
static int json_match(const char **p, const struct cbor_item *it)
{
    char buf[1024];
    size_t n;

    json_ws(p);
    if (**p == '"') {
        if (json_string(p, buf, sizeof buf, &n)) {
            return 0;
        }
        return it->type == CBOR_TSTR && it->len == n && memcmp(it->bytes, buf, n) == 0;
    }
    if (**p == '[' || **p == '{') {
        int is_map = (**p == '{');
        size_t count = 0, want = is_map ? 2 * it->len : it->len;
        int ok = (it->type == (is_map ? CBOR_MAP : CBOR_ARRAY));
        (*p)++;
        for (;;) {
            json_ws(p);
            if (**p == ']' || **p == '}') {
                (*p)++;
                return ok && count == want;
            }
            if (**p == ',' || **p == ':') {
                (*p)++;
                continue;
            }
            if (!ok || count >= want) {
                ok = 0;
                if (json_skip(p)) {
                    return 0;
                }
            } else if (!json_match(p, &it->items[count])) {
                ok = 0;
            }
            count++;
        }
    }
    const char *start = *p;
    if (json_skip(p)) {
        return 0;
    }
    n = (size_t)(*p - start);
    if (n == 4 && strncmp(start, "true", 4) == 0) {
        return it->type == CBOR_SIMPLE && it->u == CBOR_SIMPLE_TRUE;
    }
    if (n == 5 && strncmp(start, "false", 5) == 0) {
        return it->type == CBOR_SIMPLE && it->u == CBOR_SIMPLE_FALSE;
    }
    if (n == 4 && strncmp(start, "null", 4) == 0) {
        return it->type == CBOR_SIMPLE && it->u == CBOR_SIMPLE_NULL;
    }
    assert_true(n < 64);
    memcpy(buf, start, n);
    buf[n] = 0;
    if (strpbrk(buf, ".eE")) {
        double want = strtod(buf, NULL);
        return it->type == CBOR_FLOAT && it->f == want && !signbit(it->f) == !signbit(want);
    }
    /* An integer: compare decimal text, also for bignums (tags 2 and 3). */
    char got[128];
    if (it->type == CBOR_UINT || it->type == CBOR_NINT) {
        assert_int_equal(cbor_diag(it, got, sizeof got), 0);
    } else if (it->type == CBOR_TAG && (it->u == 2 || it->u == 3) &&
               it->items[0].type == CBOR_BSTR) {
        got[0] = '-';
        bignum_decimal(it->items[0].bytes, it->items[0].len, it->u == 3, got + (it->u == 3),
                       sizeof got - 1);
    } else {
        return 0;
    }
    return strcmp(got, buf) == 0;
}

/* ---- Appendix A ---------------------------------------------------------------------------- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void test_appendix_a(void **state)
{
    (void)state;
    char *json = read_file(APPENDIX_A_PATH);
    const char *p = json;
    struct vector v;
    struct cbor_arena arena = CBOR_ARENA_INIT, arena2 = CBOR_ARENA_INIT;
    int total = 0, roundtrips = 0, decoded = 0, diags = 0, diag_match = 0, diag_chunked = 0;
    int rfc7049_only = 0;

    while (json_next_vector(&p, &v)) {
        uint8_t bytes[256];
        char hex[600], diag[512];
        struct cbor_item *it, *it2;
        struct cbor_reader r;
        long n = hex_to_bytes(v.hex, bytes, sizeof bytes);

        assert_true(n > 0);
        total++;
        if (strcmp(v.hex, RFC7049_ONLY_VECTOR) == 0) {
            /* simple(24) as f818 came from RFC 7049's Appendix A (erratum 5917); RFC 8949
             * section 3.3 makes 0xf8 followed by a byte < 0x20 not well-formed. */
            rfc7049_only++;
            it = NULL;
            assert_int_equal(decode_hex(v.hex, 0, &arena, &it), P4P_EMALFORMED);
            assert_int_equal(decode_hex(v.hex, 1, &arena, &it), P4P_EMALFORMED);
            assert_null(it);
            cbor_reader_init(&r, bytes, (size_t)n);
            assert_int_equal(cbor_skip(&r), P4P_EMALFORMED);
            continue;
        }
        /* Every other vector is well-formed. */
        assert_int_equal(decode_hex(v.hex, 0, &arena, &it), 0);
        /* Re-encoding gives the deterministic form, which itself round-trips strictly. */
        assert_int_equal(encode_hex(it, hex, sizeof hex), 0);
        assert_int_equal(decode_hex(hex, 1, &arena2, &it2), 0);
        cbor_reader_init(&r, bytes, (size_t)n);
        if (v.roundtrip) {
            roundtrips++;
            assert_string_equal(hex, v.hex);
            assert_int_equal(decode_hex(v.hex, 1, &arena2, &it2), 0);
            assert_int_equal(cbor_skip(&r), 0);
            assert_true(cbor_reader_done(&r));
        } else {
            /* The others use non-deterministic encodings; strict decoding refuses them. */
            assert_int_equal(decode_hex(v.hex, 1, &arena2, &it2), P4P_EMALFORMED);
            assert_int_equal(cbor_skip(&r), P4P_EMALFORMED);
        }
        if (v.decoded) {
            const char *q = v.decoded;
            decoded++;
            if (!json_match(&q, it)) {
                fail_msg("vector %s: decoded value differs", v.hex);
            }
        }
        if (v.has_diagnostic) {
            diags++;
            assert_int_equal(cbor_diag(it, diag, sizeof diag), 0);
            if (strcmp(diag, v.diagnostic) == 0) {
                diag_match++;
            } else if (strncmp(v.diagnostic, "(_ ", 3) == 0) {
                diag_chunked++; /* chunk boundaries are not kept: strings are concatenated */
            } else {
                fail_msg("vector %s: diag '%s', expected '%s'", v.hex, diag, v.diagnostic);
            }
        }
    }
    print_message("appendix A: %d vectors, %d round-trip, %d decoded values match, "
                  "%d/%d diagnostics match (%d chunked strings print concatenated), "
                  "%d refused as not well-formed under RFC 8949\n",
                  total, roundtrips, decoded, diag_match, diags, diag_chunked, rfc7049_only);
    assert_int_equal(total, 82);
    assert_int_equal(roundtrips, 64);
    assert_int_equal(decoded, 59);
    assert_int_equal(rfc7049_only, 1);
    assert_int_equal(diag_chunked, 1);
    assert_int_equal(diag_match, diags - 1);
    cbor_arena_free(&arena);
    cbor_arena_free(&arena2);
    free(json);
}

/* ---- Writer -------------------------------------------------------------------------------- */

static void test_writer_ints(void **state)
{
    (void)state;
    EXPECT_BYTES("00", cbor_put_uint(w, 0));
    EXPECT_BYTES("17", cbor_put_uint(w, 23));
    EXPECT_BYTES("1818", cbor_put_uint(w, 24));
    EXPECT_BYTES("18ff", cbor_put_uint(w, 255));
    EXPECT_BYTES("190100", cbor_put_uint(w, 256));
    EXPECT_BYTES("19ffff", cbor_put_uint(w, 65535));
    EXPECT_BYTES("1a00010000", cbor_put_uint(w, 65536));
    EXPECT_BYTES("1affffffff", cbor_put_uint(w, 0xffffffffu));
    EXPECT_BYTES("1b0000000100000000", cbor_put_uint(w, UINT64_C(0x100000000)));
    EXPECT_BYTES("1bffffffffffffffff", cbor_put_uint(w, UINT64_MAX));
    EXPECT_BYTES("1864", cbor_put_int(w, 100));
    EXPECT_BYTES("20", cbor_put_int(w, -1));
    EXPECT_BYTES("37", cbor_put_int(w, -24));
    EXPECT_BYTES("3818", cbor_put_int(w, -25));
    EXPECT_BYTES("38ff", cbor_put_int(w, -256));
    EXPECT_BYTES("390100", cbor_put_int(w, -257));
    EXPECT_BYTES("3903e7", cbor_put_int(w, -1000));
    EXPECT_BYTES("1b7fffffffffffffff", cbor_put_int(w, INT64_MAX));
    EXPECT_BYTES("3b7fffffffffffffff", cbor_put_int(w, INT64_MIN));
    EXPECT_BYTES("d9d9f7", cbor_put_head(w, CBOR_MAJOR_TAG, 55799));
}

static void test_writer_other(void **state)
{
    (void)state;
    static const uint8_t b4[] = {1, 2, 3, 4};
    uint8_t b24[24];
    char want[2 * 26 + 1];

    memset(b24, 0xab, sizeof b24);
    strcpy(want, "5818");
    bytes_to_hex(b24, sizeof b24, want + 4);
    EXPECT_BYTES("40", cbor_put_bstr(w, NULL, 0));
    EXPECT_BYTES("4401020304", cbor_put_bstr(w, b4, sizeof b4));
    EXPECT_BYTES(want, cbor_put_bstr(w, b24, sizeof b24));
    EXPECT_BYTES("60", cbor_put_tstr(w, "", 0));
    EXPECT_BYTES("6449455446", cbor_put_tstr(w, "IETF", 4));
    EXPECT_BYTES("62c3bc", cbor_put_tstr(w, "\xc3\xbc", 2));
    EXPECT_BYTES("80", cbor_put_array(w, 0));
    EXPECT_BYTES("83", cbor_put_array(w, 3));
    EXPECT_BYTES("9819", cbor_put_array(w, 25));
    EXPECT_BYTES("a0", cbor_put_map(w, 0));
    EXPECT_BYTES("a2", cbor_put_map(w, 2));
    EXPECT_BYTES("b903e8", cbor_put_map(w, 1000));
    EXPECT_BYTES("c1", cbor_put_tag(w, 1));
    EXPECT_BYTES("d820", cbor_put_tag(w, 32));
    EXPECT_BYTES("f4", cbor_put_bool(w, 0));
    EXPECT_BYTES("f5", cbor_put_bool(w, 7));
    EXPECT_BYTES("f6", cbor_put_null(w));
    EXPECT_BYTES("f0", cbor_put_head(w, CBOR_MAJOR_SIMPLE, 16));
    EXPECT_BYTES("f8ff", cbor_put_head(w, CBOR_MAJOR_SIMPLE, 255));
    EXPECT_BYTES("0102", cbor_put_raw(w, b4, 2));
    /* A whole message: {1: "a", 2: [h'01', true]} */
    EXPECT_BYTES("a201616102824101f5", {
        cbor_put_map(w, 2);
        cbor_put_uint(w, 1);
        cbor_put_tstr(w, "a", 1);
        cbor_put_uint(w, 2);
        cbor_put_array(w, 2);
        cbor_put_bstr(w, b4, 1);
        cbor_put_bool(w, 1);
    });
}

static void test_writer_double(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *hex;
    } cases[] = {
        {0.0, "f90000"},
        {-0.0, "f98000"},
        {1.0, "f93c00"},
        {1.5, "f93e00"},
        {-4.0, "f9c400"},
        {65504.0, "f97bff"},
        {100000.0, "fa47c35000"},
        {3.4028234663852886e+38, "fa7f7fffff"},
        {1.1, "fb3ff199999999999a"},
        {1.0e300, "fb7e37e43c8800759c"},
        {5.960464477539063e-8, "f90001"}, /* smallest half subnormal, 2^-24 */
        {-5.960464477539063e-8, "f98001"},
        {6.103515625e-05, "f90400"}, /* smallest half normal */
        {9.1552734375e-05, "f90600"},
        {65505.0, "fa477fe100"},
        {65536.0, "fa47800000"},                        /* exponent too big for half */
        {2.9802322387695312e-08, "fa33000000"},         /* 2^-25: below half range */
        {1.401298464324817e-45, "fa00000001"},          /* 2^-149: single subnormal */
        {7.006492321624085e-46, "fb3690000000000000"},  /* 2^-150 */
        {3.4028235677973366e+38, "fb47effffff0000000"}, /* just above FLT_MAX */
        {1e-310, "fb000012688b70e62b"},                 /* double subnormal */
        {0.1, "fb3fb999999999999a"},
        {INFINITY, "f97c00"},
        {-INFINITY, "f9fc00"},
        {NAN, "f97e00"},
        {-NAN, "f97e00"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EXPECT_BYTES(cases[i].hex, cbor_put_double(w, cases[i].v));
    }
    /* A NaN with a payload is canonicalised too. */
    uint64_t bits = UINT64_C(0x7ff0000000000123);
    double nan_payload;
    memcpy(&nan_payload, &bits, sizeof nan_payload);
    EXPECT_BYTES("f97e00", cbor_put_double(w, nan_payload));
}

static void test_writer_overflow(void **state)
{
    (void)state;
    uint8_t buf[8];
    struct cbor_writer w;
    static const uint8_t ten[10] = {0};

    memset(buf, 0xee, sizeof buf);
    cbor_writer_init(&w, buf, 4);
    cbor_put_uint(&w, 1000); /* 3 bytes: fits */
    assert_true(cbor_writer_ok(&w));
    cbor_put_uint(&w, 1000); /* would need 6: nothing of it is written */
    assert_false(cbor_writer_ok(&w));
    assert_int_equal(w.len, 6);
    assert_memory_equal(buf, "\x19\x03\xe8\xee\xee", 5);
    cbor_put_uint(&w, 1); /* one byte would fit in cap, but overflow sticks */
    assert_int_equal(buf[3], 0xee);
    cbor_put_bstr(&w, ten, sizeof ten);
    assert_int_equal(w.len, 6 + 1 + 11);
    assert_false(cbor_writer_ok(&w));

    /* Measuring with a NULL buffer. */
    cbor_writer_init(&w, NULL, 0);
    cbor_put_array(&w, 2);
    cbor_put_tstr(&w, "hello", 5);
    cbor_put_double(&w, 1.1);
    assert_int_equal(w.len, 1 + 6 + 9);
    assert_false(cbor_writer_ok(&w));

    /* cbor_encode reports the size it needed, and succeeds with exactly that much room. */
    struct cbor_arena arena = CBOR_ARENA_INIT;
    struct cbor_item *it;
    assert_int_equal(decode_hex("8301820203820405", 0, &arena, &it), 0);
    cbor_writer_init(&w, buf, 3);
    assert_int_equal(cbor_encode(it, &w), P4P_ETOOBIG);
    assert_int_equal(w.len, 8);
    cbor_writer_init(&w, buf, 8);
    assert_int_equal(cbor_encode(it, &w), 0);
    assert_memory_equal(buf, "\x83\x01\x82\x02\x03\x82\x04\x05", 8);
    cbor_arena_free(&arena);
}

/* ---- Strict reader ------------------------------------------------------------------------- */

static void reader_on(struct cbor_reader *r, const char *hex, uint8_t *buf, size_t cap)
{
    long n = hex_to_bytes(hex, buf, cap);
    assert_true(n >= 0);
    cbor_reader_init(r, buf, (size_t)n);
}

static void test_reader_message(void **state)
{
    (void)state;
    uint8_t buf[128];
    struct cbor_reader r;
    uint64_t u, n;
    int64_t i;
    int b;
    const uint8_t *bp;
    const char *s;
    size_t len;
    double d;

    /* [0, 1000, -1000, h'0102', "ü", {1: true}, 32(null), 1.5, 1.1, [[]]] */
    reader_on(&r, "8a001903e83903e742010262c3bca101f5d820f6f93e00fb3ff199999999999a8180", buf,
              sizeof buf);
    assert_int_equal(cbor_peek_major(&r), CBOR_MAJOR_ARRAY);
    assert_int_equal(cbor_get_array(&r, &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(cbor_get_uint(&r, &u), 0);
    assert_int_equal(u, 0);
    assert_int_equal(cbor_get_uint(&r, &u), 0);
    assert_int_equal(u, 1000);
    assert_int_equal(cbor_peek_major(&r), CBOR_MAJOR_NINT);
    assert_int_equal(cbor_get_int(&r, &i), 0);
    assert_int_equal(i, -1000);
    assert_int_equal(cbor_get_bstr(&r, &bp, &len), 0);
    assert_int_equal(len, 2);
    assert_ptr_equal(bp, buf + 9); /* points into the input */
    assert_int_equal(cbor_get_tstr(&r, &s, &len), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(s, "\xc3\xbc", 2);
    assert_int_equal(cbor_get_map(&r, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(cbor_get_uint(&r, &u), 0);
    assert_int_equal(cbor_get_bool(&r, &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(cbor_get_tag(&r, &u), 0);
    assert_int_equal(u, 32);
    assert_int_equal(cbor_get_null(&r), 0);
    assert_int_equal(cbor_get_double(&r, &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(cbor_get_double(&r, &d), 0);
    assert_true(d == 1.1);
    assert_int_equal(cbor_skip(&r), 0); /* [[]] */
    assert_true(cbor_reader_done(&r));
    assert_int_equal(cbor_peek_major(&r), -1);
    assert_int_equal(cbor_get_uint(&r, &u), P4P_EMALFORMED); /* past the end */
    assert_false(cbor_reader_done(&r));

    /* int64 limits */
    reader_on(&r, "3b7fffffffffffffff1b7fffffffffffffff", buf, sizeof buf);
    assert_int_equal(cbor_get_int(&r, &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(cbor_get_int(&r, &i), 0);
    assert_true(i == INT64_MAX);
    assert_true(cbor_reader_done(&r));
    static const char *const too_big[] = {"1b8000000000000000", "3b8000000000000000"};
    for (size_t k = 0; k < 2; k++) {
        reader_on(&r, too_big[k], buf, sizeof buf);
        assert_int_equal(cbor_get_int(&r, &i), P4P_EMALFORMED);
    }

    /* Skipping: nested containers and strict key order. */
    reader_on(&r, "a3016161028201a1030403c1fa3fc00000", buf, sizeof buf);
    assert_int_equal(cbor_get_map(&r, &n), 0);
    assert_int_equal(cbor_get_uint(&r, &u), 0);
    assert_int_equal(cbor_skip(&r), 0);
    assert_int_equal(cbor_get_uint(&r, &u), 0);
    assert_int_equal(cbor_skip(&r), 0);
    assert_int_equal(cbor_get_uint(&r, &u), 0);
    assert_int_equal(u, 3);
    /* 1(1.5 as a single): not the shortest float */
    assert_int_equal(cbor_skip(&r), P4P_EMALFORMED);
}

/* Each hex must be refused by the strict getter `which` (and by cbor_skip and strict decode). */
static void test_reader_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "1817",               /* 23 in two bytes */
        "1900ff",             /* 255 in three */
        "1a0000ffff",         /* 65535 in five */
        "1b00000000ffffffff", /* 2^32-1 in nine */
        "3817",               /* -24 in two */
        "5801ff",             /* bstr length not shortest */
        "780161",             /* tstr length not shortest */
        "980100",             /* array count not shortest */
        "b8010000",           /* map count not shortest */
        "d81700",             /* tag 23 not shortest */
        "5fff",               /* indefinite bstr */
        "7fff",               /* indefinite tstr */
        "9fff",               /* indefinite array */
        "bfff",               /* indefinite map */
        "1c",
        "3d",
        "5e",
        "7c",
        "9d",
        "be",
        "dc",
        "fc",
        "fd",
        "fe", /* reserved ai 28..30 */
        "ff", /* break at top level */
        "1f",
        "3f",
        "df",   /* ai 31 on majors 0, 1, 6 */
        "f800", /* simple value < 32 in two bytes: never well-formed */
        "f818",
        "fa3fc00000",         /* 1.5 as a single */
        "fb3ff8000000000000", /* 1.5 as a double */
        "fa7f800000",         /* Infinity as a single */
        "f97e01",             /* NaN with a payload */
        "f9fe00",             /* negative NaN */
        "fb7ff8000000000000", /* NaN as a double */
        "62c3",               /* text shorter than its length */
        "61ff",
        "61c0",
        "62c080",
        "63eda080",
        "64f4908080",
        "63e6b0",
        "6180",               /* bad UTF-8 */
        "a202000100",         /* keys out of order */
        "a201000100",         /* duplicate key */
        "a22000186400",       /* -1 (0x20) sorts after 100 (0x1864) */
        "a262616100616200",   /* "aa" sorts after "b": shorter encodings first */
        "9a000000ff00",       /* count larger than the input */
        "b901000000",         /* map count larger than the input */
        "5bffffffffffffffff", /* length larger than the input */
        "8200",               /* truncated array */
        "c1",                 /* tag without its item */
    };
    uint8_t buf[64];
    struct cbor_reader r;
    struct cbor_arena arena = CBOR_ARENA_INIT;
    struct cbor_item *it = NULL;

    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        reader_on(&r, bad[k], buf, sizeof buf);
        if (cbor_skip(&r) != P4P_EMALFORMED) {
            fail_msg("cbor_skip accepted %s", bad[k]);
        }
        assert_int_equal(r.err, P4P_EMALFORMED);
        assert_ptr_equal(r.p, buf); /* the position does not move on error */
        if (decode_hex(bad[k], 1, &arena, &it) != P4P_EMALFORMED) {
            fail_msg("strict cbor_decode accepted %s", bad[k]);
        }
        assert_null(it);
    }

    /* The typed getters refuse the same heads. */
    uint64_t u = 77;
    const uint8_t *bp;
    const char *s;
    size_t n;
    double d;
    reader_on(&r, "1817", buf, sizeof buf);
    assert_int_equal(cbor_get_uint(&r, &u), P4P_EMALFORMED);
    assert_int_equal(u, 77);
    reader_on(&r, "5801ff", buf, sizeof buf);
    assert_int_equal(cbor_get_bstr(&r, &bp, &n), P4P_EMALFORMED);
    reader_on(&r, "63eda080", buf, sizeof buf);
    assert_int_equal(cbor_get_tstr(&r, &s, &n), P4P_EMALFORMED);
    reader_on(&r, "9fff", buf, sizeof buf);
    assert_int_equal(cbor_get_array(&r, &u), P4P_EMALFORMED);
    reader_on(&r, "9a000000ff00", buf, sizeof buf);
    assert_int_equal(cbor_get_array(&r, &u), P4P_EMALFORMED);
    reader_on(&r, "a30102", buf, sizeof buf);
    assert_int_equal(cbor_get_map(&r, &u), P4P_EMALFORMED);
    reader_on(&r, "bfff", buf, sizeof buf);
    assert_int_equal(cbor_get_map(&r, &u), P4P_EMALFORMED);
    reader_on(&r, "fa3fc00000", buf, sizeof buf);
    assert_int_equal(cbor_get_double(&r, &d), P4P_EMALFORMED);
    int bv = 5;
    int64_t iv;
    reader_on(&r, "f6", buf, sizeof buf);
    assert_int_equal(cbor_get_bool(&r, &bv), P4P_EMALFORMED);
    assert_int_equal(bv, 5);

    /* Type mismatch, then the error sticks even for valid input. */
    reader_on(&r, "2001", buf, sizeof buf);
    assert_int_equal(cbor_get_uint(&r, &u), P4P_EMALFORMED);
    assert_int_equal(cbor_peek_major(&r), -1);
    assert_int_equal(cbor_get_int(&r, &iv), P4P_EMALFORMED);
    assert_int_equal(cbor_skip(&r), P4P_EMALFORMED);
    assert_false(cbor_reader_done(&r));

    /* Valid UTF-8 at the edges is accepted. */
    static const char *const good_text[] = {"62c280",     "63e0a080",   "63ed9fbf",
                                            "64f0908080", "64f48fbfbf", "69616263646566676869"};
    for (size_t k = 0; k < sizeof good_text / sizeof good_text[0]; k++) {
        reader_on(&r, good_text[k], buf, sizeof buf);
        assert_int_equal(cbor_get_tstr(&r, &s, &n), 0);
        assert_true(cbor_reader_done(&r));
    }

    /* Sorted maps pass cbor_skip. */
    static const char *const good_maps[] = {"a20a00186400", "a21864002000", "a261620062616100",
                                            "a1a0a0"};
    for (size_t k = 0; k < sizeof good_maps / sizeof good_maps[0]; k++) {
        reader_on(&r, good_maps[k], buf, sizeof buf);
        assert_int_equal(cbor_skip(&r), 0);
        assert_true(cbor_reader_done(&r));
    }
    cbor_arena_free(&arena);
}

/* ---- Tree decode --------------------------------------------------------------------------- */

static void test_decode_lenient(void **state)
{
    (void)state;
    struct cbor_arena arena = CBOR_ARENA_INIT;
    struct cbor_item *it;
    char hex[256], diag[256];

    /* Non-shortest heads decode, and re-encode in shortest form. */
    assert_int_equal(decode_hex("1b0000000000000017", 0, &arena, &it), 0);
    assert_int_equal(it->type, CBOR_UINT);
    assert_int_equal(it->u, 23);
    assert_int_equal(encode_hex(it, hex, sizeof hex), 0);
    assert_string_equal(hex, "17");

    /* Indefinite strings are concatenated and NUL-terminated. */
    assert_int_equal(decode_hex("5f42010243030405ff", 0, &arena, &it), 0);
    assert_int_equal(it->type, CBOR_BSTR);
    assert_int_equal(it->len, 5);
    assert_memory_equal(it->bytes, "\x01\x02\x03\x04\x05\x00", 6);
    assert_int_equal(decode_hex("7f60ff", 0, &arena, &it), 0);
    assert_int_equal(it->type, CBOR_TSTR);
    assert_int_equal(it->len, 0);
    assert_int_equal(it->bytes[0], 0);

    /* Unsorted map with a non-shortest key: kept in input order, encoded sorted. */
    assert_int_equal(decode_hex("bf616201616102181803ff", 0, &arena, &it), 0);
    assert_int_equal(it->type, CBOR_MAP);
    assert_int_equal(it->len, 3);
    assert_int_equal(it->items[0].type, CBOR_TSTR);
    assert_int_equal(encode_hex(it, hex, sizeof hex), 0);
    assert_string_equal(hex, "a3181803616102616201");
    assert_int_equal(cbor_diag(it, diag, sizeof diag), 0);
    assert_string_equal(diag, "{\"b\": 1, \"a\": 2, 24: 3}");

    /* A duplicate key decodes leniently but has no deterministic encoding. */
    assert_int_equal(decode_hex("a201000100", 0, &arena, &it), 0);
    assert_int_equal(encode_hex(it, hex, sizeof hex), P4P_EINVAL);

    /* Nested indefinite containers; floats of every width. */
    assert_int_equal(decode_hex("9f9f9fffff5f4100ff7f6178ffbfff80fa3fc00000ff", 0, &arena, &it), 0);
    assert_int_equal(cbor_diag(it, diag, sizeof diag), 0);
    assert_string_equal(diag, "[[[]], h'00', \"x\", {}, [], 1.5]");
    assert_int_equal(encode_hex(it, hex, sizeof hex), 0);
    assert_string_equal(hex, "86818041006178a080f93e00");

    /* Well-formedness errors are refused in lenient mode too. */
    static const char *const bad[] = {
        "",
        "ff",
        "81ff",
        "bf01ff",
        "bf0102",
        "9f01",
        "5f6161ff",
        "5f5f4100ffff",
        "5f01ff",
        "7f4100ff",
        "1c",
        "fe",
        "f81f",
        "0000",
        "810101",
        "5a000000ff",
        "c1",
        "a1",
        "7b0000000000000001",
        "9b00000000000000ff00",
        "3f",
        "df00",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        it = NULL;
        if (bad[k][0] == 0) {
            assert_int_equal(cbor_decode((const uint8_t *)"", 0, 0, &arena, &it), P4P_EMALFORMED);
        } else if (decode_hex(bad[k], 0, &arena, &it) != P4P_EMALFORMED) {
            fail_msg("lenient cbor_decode accepted %s", bad[k]);
        }
        assert_null(it);
    }
    assert_int_equal(cbor_decode(NULL, 0, 0, &arena, &it), P4P_EMALFORMED);
    assert_int_equal(cbor_decode(NULL, 5, 0, &arena, &it), P4P_EINVAL);
    cbor_arena_free(&arena);
    assert_null(arena.block);
    cbor_arena_free(&arena); /* idempotent */
}

static void test_truncation(void **state)
{
    (void)state;
    static const char *const items[] = {
        "1bffffffffffffffff",
        "c249010000000000000000",
        "a26161016162820203",
        "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
        "fb3ff199999999999a",
        "d82076687474703a2f2f7777772e6578616d706c652e636f6d",
        "64f0908591",
        "bf61610161629f0203ffff",
        "5f42010243030405ff",
        "8a001903e83903e742010262c3bca101f5d820f6f93e00fb3ff199999999999a8180",
    };
    struct cbor_arena arena = CBOR_ARENA_INIT;
    struct cbor_item *it;
    uint8_t buf[128];

    for (size_t k = 0; k < sizeof items / sizeof items[0]; k++) {
        long n = hex_to_bytes(items[k], buf, sizeof buf);
        assert_true(n > 0);
        assert_int_equal(cbor_decode(buf, (size_t)n, 0, &arena, &it), 0);
        for (long m = 0; m < n; m++) {
            uint8_t *copy = dup_exact(buf, (size_t)m);
            struct cbor_reader r;
            it = NULL;
            assert_int_equal(cbor_decode(copy, (size_t)m, 0, &arena, &it), P4P_EMALFORMED);
            assert_int_equal(cbor_decode(copy, (size_t)m, 1, &arena, &it), P4P_EMALFORMED);
            assert_null(it);
            cbor_reader_init(&r, copy, (size_t)m);
            assert_int_equal(cbor_skip(&r), P4P_EMALFORMED);
            free(copy);
        }
    }
    cbor_arena_free(&arena);
}

/* Builds `count` copies of the byte `b` followed by `tail`. */
static uint8_t *nest(uint8_t b, size_t count, const char *tail, size_t *len)
{
    uint8_t t[16];
    long tn = hex_to_bytes(tail, t, sizeof t);
    uint8_t *p;

    assert_true(tn >= 0);
    p = malloc(count + (size_t)tn);
    assert_non_null(p);
    memset(p, b, count);
    memcpy(p + count, t, (size_t)tn);
    *len = count + (size_t)tn;
    return p;
}

static void test_deep_nesting(void **state)
{
    (void)state;
    struct cbor_arena arena = CBOR_ARENA_INIT;
    struct cbor_item *it;
    struct cbor_reader r;
    size_t len;
    uint8_t *p;
    uint8_t out[256];
    struct cbor_writer w;

    /* Exactly CBOR_DEPTH_MAX containers around an item: accepted everywhere. */
    static const char *const tails[] = {"00", "80", "a0"};
    for (size_t k = 0; k < 3; k++) {
        p = nest(0x81, CBOR_DEPTH_MAX, tails[k], &len);
        assert_int_equal(cbor_decode(p, len, 1, &arena, &it), 0);
        cbor_writer_init(&w, out, sizeof out);
        assert_int_equal(cbor_encode(it, &w), 0);
        assert_int_equal(w.len, len);
        assert_memory_equal(out, p, len);
        cbor_reader_init(&r, p, len);
        assert_int_equal(cbor_skip(&r), 0);
        assert_true(cbor_reader_done(&r));
        free(p);
    }
    /* One more is refused. */
    p = nest(0x81, CBOR_DEPTH_MAX + 1, "00", &len);
    assert_int_equal(cbor_decode(p, len, 0, &arena, &it), P4P_EMALFORMED);
    cbor_reader_init(&r, p, len);
    assert_int_equal(cbor_skip(&r), P4P_EMALFORMED);
    free(p);

    /* Very deep input of every container kind: refused without exhausting the stack. */
    static const uint8_t kinds[] = {0x81, 0x9f, 0xa1, 0xbf, 0xc1, 0xd8};
    for (size_t k = 0; k < sizeof kinds; k++) {
        p = nest(kinds[k], 100000, "00", &len);
        assert_int_equal(cbor_decode(p, len, 0, &arena, &it), P4P_EMALFORMED);
        assert_int_equal(cbor_decode(p, len, 1, &arena, &it), P4P_EMALFORMED);
        cbor_reader_init(&r, p, len);
        assert_int_equal(cbor_skip(&r), P4P_EMALFORMED);
        free(p);
    }

    /* A hand-built tree deeper than the limit is refused by encode and diag. */
    struct cbor_item chain[CBOR_DEPTH_MAX + 2];
    for (size_t i = 0; i < CBOR_DEPTH_MAX + 1; i++) {
        chain[i] = (struct cbor_item){.type = CBOR_ARRAY, .len = 1, .items = &chain[i + 1]};
    }
    chain[CBOR_DEPTH_MAX + 1] = (struct cbor_item){.type = CBOR_UINT, .u = 0};
    cbor_writer_init(&w, out, sizeof out);
    assert_int_equal(cbor_encode(chain, &w), P4P_EINVAL);
    assert_int_equal(cbor_diag(chain, (char *)out, sizeof out), P4P_EINVAL);
    cbor_writer_init(&w, out, sizeof out);
    assert_int_equal(cbor_encode(&chain[1], &w), 0); /* 64 arrays around 0 */
    assert_int_equal(w.len, CBOR_DEPTH_MAX + 1);
    assert_int_equal(cbor_diag(&chain[1], (char *)out, sizeof out), 0);
    assert_int_equal(strlen((char *)out), 2 * CBOR_DEPTH_MAX + 1);
    cbor_arena_free(&arena);
}

/* ---- Tree encode and diagnostic notation --------------------------------------------------- */

static void test_encode_tree(void **state)
{
    (void)state;
    struct cbor_item kv[10] = {
        {.type = CBOR_TSTR, .len = 1, .bytes = (const uint8_t *)"b"},
        {.type = CBOR_UINT, .u = 1},
        {.type = CBOR_TSTR, .len = 1, .bytes = (const uint8_t *)"a"},
        {.type = CBOR_UINT, .u = 2},
        {.type = CBOR_UINT, .u = 100},
        {.type = CBOR_UINT, .u = 5},
        {.type = CBOR_NINT, .u = 0},
        {.type = CBOR_UINT, .u = 4},
        {.type = CBOR_UINT, .u = 10},
        {.type = CBOR_FLOAT, .f = 1.0},
    };
    struct cbor_item map = {.type = CBOR_MAP, .len = 5, .items = kv};
    char hex[256], diag[256];

    /* Sorted by encoded key: 0a < 1864 < 20 < 6161 < 6162. */
    assert_int_equal(encode_hex(&map, hex, sizeof hex), 0);
    assert_string_equal(hex, "a50af93c001864052004616102616201");
    assert_int_equal(cbor_diag(&map, diag, sizeof diag), 0);
    assert_string_equal(diag, "{\"b\": 1, \"a\": 2, 100: 5, -1: 4, 10: 1.0}");

    /* Map keys that are themselves maps are sorted inside first. */
    struct cbor_item inner_kv[4] = {
        {.type = CBOR_UINT, .u = 2},
        {.type = CBOR_SIMPLE, .u = CBOR_SIMPLE_NULL},
        {.type = CBOR_UINT, .u = 1},
        {.type = CBOR_SIMPLE, .u = CBOR_SIMPLE_TRUE},
    };
    struct cbor_item outer_kv[2] = {
        {.type = CBOR_MAP, .len = 2, .items = inner_kv},
        {.type = CBOR_ARRAY, .len = 0, .items = NULL},
    };
    struct cbor_item outer = {.type = CBOR_MAP, .len = 1, .items = outer_kv};
    assert_int_equal(encode_hex(&outer, hex, sizeof hex), 0);
    assert_string_equal(hex, "a1a201f502f680");

    /* Trees with no deterministic encoding. */
    struct cbor_item bad_simple = {.type = CBOR_SIMPLE, .u = 24};
    struct cbor_item bad_tag = {.type = CBOR_TAG, .u = 1, .len = 0};
    struct cbor_item bad_array = {.type = CBOR_ARRAY, .len = 2, .items = NULL};
    kv[2] = kv[0]; /* duplicate "b" */
    assert_int_equal(encode_hex(&bad_simple, hex, sizeof hex), P4P_EINVAL);
    assert_int_equal(encode_hex(&bad_tag, hex, sizeof hex), P4P_EINVAL);
    assert_int_equal(encode_hex(&bad_array, hex, sizeof hex), P4P_EINVAL);
    assert_int_equal(encode_hex(&map, hex, sizeof hex), P4P_EINVAL);
}

static void test_diag(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        const char *diag;
    } cases[] = {
        {"8301820203820405", "[1, [2, 3], [4, 5]]"},
        {"a161614101", "{\"a\": h'01'}"},
        {"d74101", "23(h'01')"},
        {"f0", "simple(16)"},
        {"f7", "undefined"},
        {"3bffffffffffffffff", "-18446744073709551616"},
        {"3bfffffffffffffffe", "-18446744073709551615"},
        {"f93e00", "1.5"},
        {"f98000", "-0.0"},
        {"f90400", "0.00006103515625"},
        {"f90001", "5.960464477539063e-8"},
        {"fb7e37e43c8800759c", "1.0e+300"},
        {"fa47c35000", "100000.0"},
        {"fa7f7fffff", "3.4028234663852886e+38"},
        {"fbc010666666666666", "-4.1"},
        {"fb3fb999999999999a", "0.1"},
        {"fb4415af1d78b58c40", "100000000000000000000.0"},
        {"fb444b1ae4d6e2ef50", "1.0e+21"},
        {"f9fc00", "-Infinity"},
        {"690a22415c7f0001c3bc", "\"\\u000a\\\"A\\\\\\u007f\\u0000\\u0001\xc3\xbc\""},
    };
    struct cbor_arena arena = CBOR_ARENA_INIT;
    struct cbor_item *it;
    char diag[128];

    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(decode_hex(cases[k].hex, 0, &arena, &it), 0);
        assert_int_equal(cbor_diag(it, diag, sizeof diag), 0);
        assert_string_equal(diag, cases[k].diag);
    }
    /* Truncated output: ETOOBIG, and still NUL-terminated. */
    assert_int_equal(decode_hex("8301820203820405", 0, &arena, &it), 0);
    memset(diag, 'x', sizeof diag);
    assert_int_equal(cbor_diag(it, diag, 8), P4P_ETOOBIG);
    assert_string_equal(diag, "[1, [2,");
    assert_int_equal(cbor_diag(it, diag, 0), P4P_ETOOBIG);
    cbor_arena_free(&arena);
}

/* ---- Fuzz ---------------------------------------------------------------------------------- */

/* Random bytes biased towards interesting heads so that containers and floats are common. */
static size_t fuzz_input(uint64_t *seed, uint8_t *buf, size_t cap)
{
    static const uint8_t heads[] = {0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x20, 0x38, 0x40,
                                    0x41, 0x58, 0x5f, 0x60, 0x61, 0x62, 0x7f, 0x80, 0x81,
                                    0x82, 0x9f, 0xa0, 0xa1, 0xa2, 0xbf, 0xc1, 0xd8, 0xf4,
                                    0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xff, 0x1c, 0xc3};
    size_t n = (size_t)(rng_next(seed) % cap);

    for (size_t i = 0; i < n; i++) {
        uint64_t x = rng_next(seed);
        buf[i] = (x & 1) ? heads[(x >> 8) % sizeof heads] : (uint8_t)(x >> 16);
    }
    return n;
}

/* Raw output for the structured generator: a byte array that silently stops at its end. */
struct gen {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint64_t *seed;
};

static void gen_byte(struct gen *g, uint8_t b)
{
    if (g->len < g->cap) {
        g->buf[g->len++] = b;
    }
}

/* A head, usually in shortest form but sometimes wider (not deterministic, still valid). */
static void gen_head(struct gen *g, unsigned major, uint64_t arg)
{
    unsigned ai = arg < 24             ? (unsigned)arg
                  : arg <= 0xff        ? 24
                  : arg <= 0xffff      ? 25
                  : arg <= 0xffffffffu ? 26
                                       : 27;
    if (ai < 27 && rng_next(g->seed) % 8 == 0) {
        ai = ai < 24 ? 24 + (unsigned)(rng_next(g->seed) % 4) : ai + 1;
    }
    gen_byte(g, (uint8_t)(major << 5 | ai));
    for (int i = ai < 24 ? 0 : 1 << (ai - 24); i-- > 0;) {
        gen_byte(g, (uint8_t)(arg >> (8 * i)));
    }
}

/* Appends one random well-formed item: mostly deterministic, sometimes with wide heads,
 * indefinite lengths, unsorted or duplicate keys, any float width, invalid UTF-8. */
static void gen_item(struct gen *g, int depth)
{
    uint64_t r = rng_next(g->seed);
    unsigned kind = (unsigned)(r % (depth > 4 ? 6 : 10));
    uint64_t small = (r >> 8) % 4, val = (r >> 16) % 3 == 0 ? r >> 20 : (r >> 20) % 40;
    int indef = (r >> 12) % 8 == 0;

    switch (kind) {
    case 0:
    case 1:
        gen_head(g, kind, val);
        break;
    case 2:
    case 3:
        if (indef) {
            gen_byte(g, (uint8_t)(kind << 5 | 31));
            for (uint64_t i = 0; i < small; i++) {
                gen_head(g, kind, 1);
                gen_byte(g, (uint8_t)('a' + i));
            }
            gen_byte(g, 0xff);
        } else {
            gen_head(g, kind, small);
            for (uint64_t i = 0; i < small; i++) {
                gen_byte(g, (r >> 30) % 4 ? (uint8_t)('a' + i) : (uint8_t)(r >> (8 * i)));
            }
        }
        break;
    case 4:
        if ((r >> 24) % 3 == 0) {
            gen_byte(g, 0xf9 + (uint8_t)((r >> 26) % 3));
            for (int i = 0; i < (2 << ((r >> 26) % 3)); i++) {
                gen_byte(g, (uint8_t)rng_next(g->seed));
            }
        } else {
            static const uint8_t simples[] = {0xf4, 0xf5, 0xf6, 0xf7, 0xf0, 0xf9, 0xfa, 0xfb};
            uint8_t s = simples[(r >> 24) % 8];
            gen_byte(g, s);
            /* canonical-ish floats: 1.5 in each width */
            if (s == 0xf9) {
                gen_byte(g, 0x3e);
                gen_byte(g, 0x00);
            } else if (s == 0xfa) {
                static const uint8_t f[4] = {0x3f, 0xc0, 0, 0};
                for (int i = 0; i < 4; i++) {
                    gen_byte(g, f[i]);
                }
            } else if (s == 0xfb) {
                static const uint8_t f[8] = {0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a};
                for (int i = 0; i < 8; i++) {
                    gen_byte(g, f[i]);
                }
            }
        }
        break;
    case 5:
        gen_head(g, 6, small);
        gen_item(g, depth + 1);
        break;
    case 6:
    case 7:
    case 8:
    case 9: {
        int is_map = kind >= 8;
        if (indef) {
            gen_byte(g, is_map ? 0xbf : 0x9f);
        } else {
            gen_head(g, is_map ? 5 : 4, small);
        }
        for (uint64_t i = 0; i < small; i++) {
            if (is_map) {
                gen_head(g, 0, (r >> 40) % 2 ? i : small - i); /* sorted or not */
            }
            gen_item(g, depth + 1);
        }
        if (indef) {
            gen_byte(g, 0xff);
        }
        break;
    }
    }
}

/* Half the fuzz inputs are structured items, some with one byte changed or cut short. */
static size_t fuzz_structured(uint64_t *seed, uint8_t *buf, size_t cap)
{
    struct gen g = {buf, cap, 0, seed};
    uint64_t r;

    gen_item(&g, 0);
    r = rng_next(seed);
    if (g.len > 0 && r % 4 == 0) {
        buf[(r >> 8) % g.len] = (uint8_t)(r >> 32);
    } else if (g.len > 0 && r % 4 == 1) {
        g.len = (size_t)((r >> 8) % g.len);
    }
    return g.len;
}

/* Runs one kind of typed getter (chosen by iter) over the input: they must never read out of
 * bounds either. */
static void fuzz_getters(const uint8_t *in, size_t n, int iter)
{
    struct cbor_reader r;
    uint64_t u;
    int64_t i64;
    const uint8_t *bp;
    const char *s;
    size_t len;
    int b;
    double d;
    switch (iter % 9) {
    case 0:
        cbor_reader_init(&r, in, n);
        while (cbor_get_uint(&r, &u) == 0) {
        }
        break;
    case 1:
        cbor_reader_init(&r, in, n);
        (void)cbor_get_int(&r, &i64);
        break;
    case 2:
        cbor_reader_init(&r, in, n);
        (void)cbor_get_bstr(&r, &bp, &len);
        break;
    case 3:
        cbor_reader_init(&r, in, n);
        (void)cbor_get_tstr(&r, &s, &len);
        break;
    case 4:
        cbor_reader_init(&r, in, n);
        while (cbor_get_array(&r, &u) == 0) {
        }
        break;
    case 5:
        cbor_reader_init(&r, in, n);
        (void)cbor_get_map(&r, &u);
        (void)cbor_get_tag(&r, &u);
        break;
    case 6:
        cbor_reader_init(&r, in, n);
        (void)cbor_get_bool(&r, &b);
        (void)cbor_get_null(&r);
        break;
    case 7:
        cbor_reader_init(&r, in, n);
        (void)cbor_get_double(&r, &d);
        break;
    default:
        cbor_reader_init(&r, in, n);
        while (cbor_skip(&r) == 0) {
        }
        break;
    }
}

static void test_fuzz(void **state)
{
    (void)state;
    uint64_t seed = 0x5eedc0de;
    uint8_t buf[512], out[4096];
    char diag[256];
    struct cbor_arena arena = CBOR_ARENA_INIT, arena2 = CBOR_ARENA_INIT;
    int lenient_ok = 0, strict_ok = 0, strict_nested = 0;

    for (int iter = 0; iter < 200000; iter++) {
        size_t n =
            (iter % 2) ? fuzz_input(&seed, buf, 48) : fuzz_structured(&seed, buf, sizeof buf);
        uint8_t *in = dup_exact(buf, n);
        struct cbor_item *it, *it2;
        struct cbor_writer w;
        struct cbor_reader r;
        int skip_ok;

        cbor_reader_init(&r, in, n);
        skip_ok = (cbor_skip(&r) == 0 && cbor_reader_done(&r));

        int rs = cbor_decode(in, n, 1, &arena, &it);
        assert_true(rs == 0 || rs == P4P_EMALFORMED);
        /* The strict walker and the strict decoder agree, and strict input is canonical. */
        assert_int_equal(skip_ok, rs == 0);
        if (rs == 0) {
            strict_ok++;
            strict_nested += (it->type == CBOR_ARRAY || it->type == CBOR_MAP) && n > 4;
            cbor_writer_init(&w, out, sizeof out);
            assert_int_equal(cbor_encode(it, &w), 0);
            assert_int_equal(w.len, n);
            assert_memory_equal(out, in, n);
        }

        int rl = cbor_decode(in, n, 0, &arena, &it);
        assert_true(rl == 0 || rl == P4P_EMALFORMED);
        if (rs == 0) {
            assert_int_equal(rl, 0);
        }
        if (rl == 0) {
            int re;
            lenient_ok++;
            (void)cbor_diag(it, diag, sizeof diag);
            cbor_writer_init(&w, out, sizeof out);
            re = cbor_encode(it, &w);
            assert_true(re == 0 || re == P4P_EINVAL); /* EINVAL: duplicate keys */
            if (re == 0) {
                /* The re-encoding is deterministic: strict decode of it succeeds unless the
                 * text was invalid UTF-8, and it re-encodes to itself. */
                int r2 = cbor_decode(out, w.len, 1, &arena2, &it2);
                if (r2 != 0) {
                    assert_int_equal(cbor_decode(out, w.len, 0, &arena2, &it2), 0);
                }
                uint8_t again[4096];
                struct cbor_writer w2;
                cbor_writer_init(&w2, again, sizeof again);
                assert_int_equal(cbor_encode(it2, &w2), 0);
                assert_int_equal(w2.len, w.len);
                assert_memory_equal(again, out, w.len);
            }
        }

        fuzz_getters(in, n, iter);
        free(in);
    }
    print_message("fuzz: 200000 inputs, %d well-formed, %d deterministic (%d nested)\n", lenient_ok,
                  strict_ok, strict_nested);
    /* The bias must actually reach the interesting paths. */
    assert_true(lenient_ok > 1000);
    assert_true(strict_ok > 1000);
    assert_true(strict_nested > 1000);
    cbor_arena_free(&arena);
    cbor_arena_free(&arena2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appendix_a),
        cmocka_unit_test(test_writer_ints),
        cmocka_unit_test(test_writer_other),
        cmocka_unit_test(test_writer_double),
        cmocka_unit_test(test_writer_overflow),
        cmocka_unit_test(test_reader_message),
        cmocka_unit_test(test_reader_rejects),
        cmocka_unit_test(test_decode_lenient),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_encode_tree),
        cmocka_unit_test(test_diag),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
