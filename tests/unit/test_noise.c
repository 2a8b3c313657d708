/*
 * test_noise.c — unit tests for engine/noise.{h,c}, the Noise framework (XX, IK; 25519,
 * ChaChaPoly; SHA256, SHA512, BLAKE2b).
 *
 * Conformance: every cacophony vector (../shared/data/noise/cacophony.txt, read with the
 * strict little JSON parser below) whose protocol_name is exactly Noise_{XX,IK}_25519_
 * ChaChaPoly_{SHA256,SHA512,BLAKE2b} is replayed: each handshake message and each transport
 * message must come out byte for byte in both directions, every payload must decrypt back, the
 * handshake hashes and the learned remote static keys must match. The number of vectors run
 * must equal the number present in the file (found independently by a text scan) and be > 0.
 *
 * Then the failure paths: every flipped byte of the authenticated handshake messages is
 * rejected and leaves the state unchanged (the genuine message then completes the handshake),
 * IK with a wrong responder key fails, transport tampering is rejected without advancing the
 * nonce, low-order ephemeral keys, the reserved nonce, truncation at every length, buffers that
 * are too small, calls out of order; plus Rekey and HMAC against libsodium's HMAC-SHA2.
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

#include <cmocka.h>
#include <sodium.h>

#include "noise.h"
#include "p4p/p4p.h"

#ifdef P4P_SHARED_DATA
#define CACOPHONY_PATH P4P_SHARED_DATA "/noise/cacophony.txt"
#else
#define CACOPHONY_PATH "../shared/data/noise/cacophony.txt"
#endif

/* ---- A strict JSON reader for the vector file ---------------------------------------------- */

/* The file is {"vectors": [ {key: string | [string...] | [{key: string...}...]}... ]}. The
 * reader accepts exactly that shape (any whitespace), decodes strings in place in the file
 * buffer and rejects anything else: unknown keys, numbers, trailing garbage. */

#define MSGS_MAX    16
#define VECTORS_MAX 32

struct vector {
    const char *protocol_name;
    const char *init_prologue, *init_static, *init_ephemeral, *init_remote_static;
    const char *resp_prologue, *resp_static, *resp_ephemeral, *resp_remote_static;
    const char *handshake_hash;
    int has_psks;
    size_t msg_count;
    const char *payload[MSGS_MAX], *ciphertext[MSGS_MAX];
};

struct reader {
    char *p, *end;
    int err;
    size_t total; /* vectors in the file */
    size_t kept;  /* vectors selected */
    struct vector kept_v[VECTORS_MAX];
};

static void skip_ws(struct reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) {
        r->p++;
    }
}

static int expect(struct reader *r, char c)
{
    skip_ws(r);
    if (r->p >= r->end || *r->p != c) {
        r->err = 1;
        return 0;
    }
    r->p++;
    return 1;
}

static int peek(struct reader *r, char c)
{
    skip_ws(r);
    return r->p < r->end && *r->p == c;
}

/* A JSON string, decoded in place; returns it NUL-terminated, or NULL. */
static const char *read_string(struct reader *r)
{
    if (!expect(r, '"')) {
        return NULL;
    }
    char *start = r->p, *w = r->p;
    while (r->p < r->end && *r->p != '"') {
        char c = *r->p++;
        if ((unsigned char)c < 0x20) {
            r->err = 1;
            return NULL;
        }
        if (c == '\\') {
            if (r->p >= r->end) {
                r->err = 1;
                return NULL;
            }
            char e = *r->p++;
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *hit = strchr(from, e);
            if (e == 0 || hit == NULL) {
                r->err = 1; /* \u escapes never occur in this file */
                return NULL;
            }
            c = to[hit - from];
        }
        *w++ = c;
    }
    if (r->p >= r->end) {
        r->err = 1;
        return NULL;
    }
    r->p++; /* closing quote; w <= its position, so the NUL fits */
    *w = 0;
    return start;
}

static void read_messages(struct reader *r, struct vector *v)
{
    if (!expect(r, '[')) {
        return;
    }
    if (peek(r, ']')) {
        r->p++;
        return;
    }
    do {
        const char *payload = NULL, *ct = NULL;
        if (!expect(r, '{')) {
            return;
        }
        do {
            const char *key = read_string(r);
            if (key == NULL || !expect(r, ':')) {
                return;
            }
            const char *val = read_string(r);
            if (val == NULL) {
                return;
            }
            if (strcmp(key, "payload") == 0 && payload == NULL) {
                payload = val;
            } else if (strcmp(key, "ciphertext") == 0 && ct == NULL) {
                ct = val;
            } else {
                r->err = 1;
                return;
            }
        } while (peek(r, ',') && r->p++);
        if (!expect(r, '}') || payload == NULL || ct == NULL || v->msg_count >= MSGS_MAX) {
            r->err = 1;
            return;
        }
        v->payload[v->msg_count] = payload;
        v->ciphertext[v->msg_count++] = ct;
    } while (peek(r, ',') && r->p++);
    expect(r, ']');
}

static void read_string_array(struct reader *r)
{
    if (!expect(r, '[')) {
        return;
    }
    if (peek(r, ']')) {
        r->p++;
        return;
    }
    do {
        if (read_string(r) == NULL) {
            return;
        }
    } while (peek(r, ',') && r->p++);
    expect(r, ']');
}

/* Selected: exactly one of the six names, and no PSK. */
static int is_selected(const struct vector *v)
{
    static const char *const names[] = {
        "Noise_XX_25519_ChaChaPoly_SHA256",  "Noise_XX_25519_ChaChaPoly_SHA512",
        "Noise_XX_25519_ChaChaPoly_BLAKE2b", "Noise_IK_25519_ChaChaPoly_SHA256",
        "Noise_IK_25519_ChaChaPoly_SHA512",  "Noise_IK_25519_ChaChaPoly_BLAKE2b",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (v->protocol_name != NULL && strcmp(v->protocol_name, names[i]) == 0) {
            return !v->has_psks;
        }
    }
    return 0;
}

static void read_vector(struct reader *r)
{
    struct vector v;
    struct {
        const char *key;
        const char **field;
    } fields[] = {
        {"protocol_name", &v.protocol_name},
        {"init_prologue", &v.init_prologue},
        {"init_static", &v.init_static},
        {"init_ephemeral", &v.init_ephemeral},
        {"init_remote_static", &v.init_remote_static},
        {"resp_prologue", &v.resp_prologue},
        {"resp_static", &v.resp_static},
        {"resp_ephemeral", &v.resp_ephemeral},
        {"resp_remote_static", &v.resp_remote_static},
        {"handshake_hash", &v.handshake_hash},
    };

    memset(&v, 0, sizeof(v));
    if (!expect(r, '{')) {
        return;
    }
    do {
        const char *key = read_string(r);
        if (key == NULL || !expect(r, ':')) {
            return;
        }
        if (strcmp(key, "messages") == 0) {
            read_messages(r, &v);
            continue;
        }
        if (strcmp(key, "init_psks") == 0 || strcmp(key, "resp_psks") == 0) {
            v.has_psks = 1;
            read_string_array(r);
            continue;
        }
        size_t i = 0;
        while (i < sizeof(fields) / sizeof(fields[0]) && strcmp(key, fields[i].key) != 0) {
            i++;
        }
        if (i == sizeof(fields) / sizeof(fields[0]) || *fields[i].field != NULL) {
            r->err = 1; /* unknown or repeated key */
            return;
        }
        *fields[i].field = read_string(r);
    } while (!r->err && peek(r, ',') && r->p++);
    if (!expect(r, '}') || v.protocol_name == NULL) {
        r->err = 1;
        return;
    }
    r->total++;
    if (is_selected(&v)) {
        if (r->kept >= VECTORS_MAX) {
            r->err = 1;
            return;
        }
        r->kept_v[r->kept++] = v;
    }
}

static void read_file(struct reader *r)
{
    if (!expect(r, '{')) {
        return;
    }
    const char *key = read_string(r);
    if (key == NULL || strcmp(key, "vectors") != 0 || !expect(r, ':') || !expect(r, '[')) {
        r->err = 1;
        return;
    }
    do {
        read_vector(r);
    } while (!r->err && peek(r, ',') && r->p++);
    if (!r->err && expect(r, ']') && expect(r, '}')) {
        skip_ws(r);
        if (r->p != r->end) {
            r->err = 1;
        }
    }
}

static char *load_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

/* Occurrences of the six selected names as JSON strings in the raw text (a count made without
 * the parser, to check that the parser missed nothing). PSK variants have other names. */
static size_t count_in_text(const char *text)
{
    static const char *const names[] = {
        "\"Noise_XX_25519_ChaChaPoly_SHA256\"",  "\"Noise_XX_25519_ChaChaPoly_SHA512\"",
        "\"Noise_XX_25519_ChaChaPoly_BLAKE2b\"", "\"Noise_IK_25519_ChaChaPoly_SHA256\"",
        "\"Noise_IK_25519_ChaChaPoly_SHA512\"",  "\"Noise_IK_25519_ChaChaPoly_BLAKE2b\"",
    };
    size_t count = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (const char *p = strstr(text, names[i]); p != NULL; p = strstr(p + 1, names[i])) {
            count++;
        }
    }
    return count;
}

/* ---- Helpers ------------------------------------------------------------------------------- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    assert_int_equal(n % 2, 0);
    assert_true(n / 2 <= cap);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

/* A deterministic random source for tests (splitmix64 stream). */
static void test_random(void *ctx, uint8_t *out, size_t len)
{
    uint64_t *state = ctx;
    for (size_t i = 0; i < len; i++) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        out[i] = (uint8_t)(z ^ (z >> 31));
    }
}

static enum noise_hash hash_of(const char *name)
{
    if (strstr(name, "_SHA256") != NULL) {
        return NOISE_HASH_SHA256;
    }
    if (strstr(name, "_SHA512") != NULL) {
        return NOISE_HASH_SHA512;
    }
    return NOISE_HASH_BLAKE2B;
}

/* ---- Cacophony vectors --------------------------------------------------------------------- */

struct side {
    struct noise_handshake hs;
    struct noise_cipher send, recv;
    uint8_t s[32], e[32], rs[32], prologue[64];
    size_t prologue_len;
};

static void side_init(struct side *sd, const struct vector *v, int initiator)
{
    struct noise_handshake_config cfg = {0};
    const char *prologue = initiator ? v->init_prologue : v->resp_prologue;
    const char *s = initiator ? v->init_static : v->resp_static;
    const char *e = initiator ? v->init_ephemeral : v->resp_ephemeral;
    const char *rs = initiator ? v->init_remote_static : v->resp_remote_static;

    assert_non_null(s);
    assert_non_null(e);
    cfg.pattern =
        strncmp(v->protocol_name, "Noise_XX", 8) == 0 ? NOISE_PATTERN_XX : NOISE_PATTERN_IK;
    cfg.hash = hash_of(v->protocol_name);
    cfg.is_initiator = initiator;
    sd->prologue_len = prologue ? unhex(prologue, sd->prologue, sizeof(sd->prologue)) : 0;
    cfg.prologue = sd->prologue;
    cfg.prologue_len = sd->prologue_len;
    assert_int_equal(unhex(s, sd->s, 32), 32);
    assert_int_equal(unhex(e, sd->e, 32), 32);
    cfg.s_priv = sd->s;
    cfg.e_priv = sd->e;
    if (rs != NULL) {
        assert_int_equal(unhex(rs, sd->rs, 32), 32);
        cfg.rs = sd->rs;
    }
    assert_int_equal(noise_handshake_init(&sd->hs, &cfg), 0);
}

static void run_vector(const struct vector *v)
{
    static struct side sides[2]; /* [0] initiator, [1] responder */
    uint8_t payload[1024], expected[1024], out[1024], back[1024], h[2][64], want_h[64];
    size_t plen, elen, olen, blen;

    side_init(&sides[0], v, 1);
    side_init(&sides[1], v, 0);
    assert_true(v->msg_count > 0);
    for (size_t i = 0; i < v->msg_count; i++) {
        struct side *tx = &sides[i % 2], *rx = &sides[(i + 1) % 2];
        plen = unhex(v->payload[i], payload, sizeof(payload));
        elen = unhex(v->ciphertext[i], expected, sizeof(expected));
        if (noise_handshake_action(&tx->hs) == NOISE_ACTION_WRITE) {
            assert_int_equal(noise_handshake_write_len(&tx->hs, plen), elen);
            assert_int_equal(noise_handshake_write(&tx->hs, payload, plen, out, sizeof(out), &olen),
                             0);
            assert_int_equal(olen, elen);
            assert_memory_equal(out, expected, elen);
            assert_int_equal(noise_handshake_action(&rx->hs), NOISE_ACTION_READ);
            assert_int_equal(noise_handshake_read(&rx->hs, out, olen, back, sizeof(back), &blen),
                             0);
            assert_int_equal(blen, plen);
            assert_memory_equal(back, payload, plen);
            if (noise_handshake_action(&tx->hs) == NOISE_ACTION_SPLIT) {
                /* Both sides are done after this message: compare h, then split. */
                assert_int_equal(noise_handshake_action(&rx->hs), NOISE_ACTION_SPLIT);
                size_t hlen = noise_handshake_hash(&tx->hs, h[0]);
                assert_int_equal(noise_handshake_hash(&rx->hs, h[1]), hlen);
                assert_int_equal(unhex(v->handshake_hash, want_h, sizeof(want_h)), hlen);
                assert_memory_equal(h[0], want_h, hlen);
                assert_memory_equal(h[1], want_h, hlen);
                for (int s = 0; s < 2; s++) {
                    const uint8_t *peer = noise_handshake_remote_static(&sides[s].hs);
                    assert_non_null(peer);
                    assert_memory_equal(peer, noise_handshake_local_static(&sides[1 - s].hs), 32);
                    assert_int_equal(
                        noise_handshake_split(&sides[s].hs, &sides[s].send, &sides[s].recv), 0);
                    assert_int_equal(noise_handshake_action(&sides[s].hs), NOISE_ACTION_DONE);
                }
            }
            continue;
        }
        /* Transport phase. */
        assert_int_equal(noise_handshake_action(&tx->hs), NOISE_ACTION_DONE);
        assert_int_equal(
            noise_cipher_encrypt(&tx->send, NULL, 0, payload, plen, out, sizeof(out), &olen), 0);
        assert_int_equal(olen, elen);
        assert_memory_equal(out, expected, elen);
        assert_int_equal(
            noise_cipher_decrypt(&rx->recv, NULL, 0, out, olen, back, sizeof(back), &blen), 0);
        assert_int_equal(blen, plen);
        assert_memory_equal(back, payload, plen);
    }
    for (int s = 0; s < 2; s++) {
        /* Split wiped the secrets. */
        static const uint8_t zero[64];
        assert_memory_equal(sides[s].hs.ss.ck, zero, 64);
        assert_memory_equal(sides[s].hs.s_priv, zero, 32);
        assert_memory_equal(sides[s].hs.e_priv, zero, 32);
        noise_handshake_destroy(&sides[s].hs);
        noise_cipher_clear(&sides[s].send);
        noise_cipher_clear(&sides[s].recv);
    }
}

static void test_cacophony_vectors(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = load_file(CACOPHONY_PATH, &len);
    assert_non_null(text);
    size_t present = count_in_text(text);

    static struct reader r;
    memset(&r, 0, sizeof(r));
    r.p = text;
    r.end = text + len;
    read_file(&r);
    assert_int_equal(r.err, 0);
    assert_true(r.total > 100); /* the whole file was read, not a prefix */

    size_t run = 0, seen_name[6] = {0};
    for (size_t i = 0; i < r.kept; i++) {
        const struct vector *v = &r.kept_v[i];
        run_vector(v);
        run++;
        int idx = (strncmp(v->protocol_name, "Noise_XX", 8) == 0 ? 0 : 3) +
                  (int)hash_of(v->protocol_name) - 1;
        seen_name[idx]++;
    }
    assert_true(present > 0);
    assert_int_equal(run, present);
    for (int i = 0; i < 6; i++) {
        assert_true(seen_name[i] >= 1); /* each pattern x hash combination was exercised */
    }
    free(text);
}

/* ---- Handshakes with random ephemerals ----------------------------------------------------- */

struct pair {
    struct noise_handshake i, r;
    struct noise_cipher i_send, i_recv, r_send, r_recv;
    uint8_t i_s[32], r_s[32], r_pub[32];
    uint64_t rng;
};

static void pair_init(struct pair *p, enum noise_pattern pattern, enum noise_hash hash,
                      const uint8_t *rs_override)
{
    struct noise_handshake_config c = {0};

    memset(p, 0, sizeof(*p));
    p->rng = 42;
    test_random(&p->rng, p->i_s, 32);
    test_random(&p->rng, p->r_s, 32);
    crypto_scalarmult_base(p->r_pub, p->r_s);
    c.pattern = pattern;
    c.hash = hash;
    c.prologue = (const uint8_t *)"p4p";
    c.prologue_len = 3;
    c.random = test_random;
    c.random_ctx = &p->rng;
    c.is_initiator = true;
    c.s_priv = p->i_s;
    c.rs = pattern == NOISE_PATTERN_IK ? (rs_override ? rs_override : p->r_pub) : NULL;
    assert_int_equal(noise_handshake_init(&p->i, &c), 0);
    c.is_initiator = false;
    c.s_priv = p->r_s;
    c.rs = NULL;
    assert_int_equal(noise_handshake_init(&p->r, &c), 0);
}

/* Runs the remaining handshake messages; returns the first failing read's code. */
static int pair_run(struct pair *p)
{
    uint8_t msg[256], pl[64];
    size_t mlen, plen;

    for (int guard = 0; guard < 4; guard++) {
        struct noise_handshake *tx, *rx;
        if (noise_handshake_action(&p->i) == NOISE_ACTION_WRITE) {
            tx = &p->i;
            rx = &p->r;
        } else if (noise_handshake_action(&p->r) == NOISE_ACTION_WRITE) {
            tx = &p->r;
            rx = &p->i;
        } else {
            break;
        }
        assert_int_equal(
            noise_handshake_write(tx, (const uint8_t *)"hi", 2, msg, sizeof(msg), &mlen), 0);
        int rc = noise_handshake_read(rx, msg, mlen, pl, sizeof(pl), &plen);
        if (rc != 0) {
            return rc;
        }
        assert_int_equal(plen, 2);
    }
    assert_int_equal(noise_handshake_split(&p->i, &p->i_send, &p->i_recv), 0);
    assert_int_equal(noise_handshake_split(&p->r, &p->r_send, &p->r_recv), 0);
    return 0;
}

static void roundtrip(struct noise_cipher *tx, struct noise_cipher *rx, const char *text)
{
    uint8_t ct[256], pt[256];
    size_t clen, plen, n = strlen(text);

    assert_int_equal(noise_cipher_encrypt(tx, (const uint8_t *)"ad", 2, (const uint8_t *)text, n,
                                          ct, sizeof(ct), &clen),
                     0);
    assert_int_equal(clen, n + 16);
    assert_int_equal(
        noise_cipher_decrypt(rx, (const uint8_t *)"ad", 2, ct, clen, pt, sizeof(pt), &plen), 0);
    assert_int_equal(plen, n);
    assert_memory_equal(pt, text, n);
}

static void test_random_handshakes(void **state)
{
    (void)state;
    static struct pair p;
    for (int pat = NOISE_PATTERN_XX; pat <= NOISE_PATTERN_IK; pat++) {
        for (int h = NOISE_HASH_SHA256; h <= NOISE_HASH_BLAKE2B; h++) {
            pair_init(&p, (enum noise_pattern)pat, (enum noise_hash)h, NULL);
            assert_int_equal(pair_run(&p), 0);
            assert_memory_equal(noise_handshake_remote_static(&p.i), p.r_pub, 32);
            uint8_t hi[64], hr[64];
            size_t hl = noise_handshake_hash(&p.i, hi);
            assert_int_equal(noise_handshake_hash(&p.r, hr), hl);
            assert_memory_equal(hi, hr, hl);
            roundtrip(&p.i_send, &p.r_recv, "one");
            roundtrip(&p.r_send, &p.i_recv, "two");
            roundtrip(&p.i_send, &p.r_recv, "three");
        }
    }
}

/* ---- Failure paths ------------------------------------------------------------------------- */

/* Every flipped bit position of XX messages 2 and 3 is rejected without changing the reader,
 * which then accepts the genuine message and completes the handshake. */
static void test_flipped_bytes_rejected(void **state)
{
    (void)state;
    static struct pair p;
    static struct noise_handshake before;
    uint8_t msg[256], bad[256], pl[64];
    size_t mlen, plen;

    for (int h = NOISE_HASH_SHA256; h <= NOISE_HASH_BLAKE2B; h++) {
        pair_init(&p, NOISE_PATTERN_XX, (enum noise_hash)h, NULL);
        assert_int_equal(noise_handshake_write(&p.i, NULL, 0, msg, sizeof(msg), &mlen), 0);
        assert_int_equal(noise_handshake_read(&p.r, msg, mlen, pl, sizeof(pl), &plen), 0);
        for (int m = 1; m <= 2; m++) {
            struct noise_handshake *tx = m == 1 ? &p.r : &p.i, *rx = m == 1 ? &p.i : &p.r;
            assert_int_equal(
                noise_handshake_write(tx, (const uint8_t *)"pay", 3, msg, sizeof(msg), &mlen), 0);
            before = *rx;
            for (size_t pos = 0; pos < mlen; pos++) {
                memcpy(bad, msg, mlen);
                bad[pos] ^= 0x01;
                int rc = noise_handshake_read(rx, bad, mlen, pl, sizeof(pl), &plen);
                assert_true(rc == P4P_EBADSIG || rc == P4P_EMALFORMED);
                assert_memory_equal(rx, &before, sizeof(before));
            }
            /* The MAC byte at the very end, specifically. */
            memcpy(bad, msg, mlen);
            bad[mlen - 1] ^= 0x80;
            assert_int_equal(noise_handshake_read(rx, bad, mlen, pl, sizeof(pl), &plen),
                             P4P_EBADSIG);
            assert_int_equal(noise_handshake_read(rx, msg, mlen, pl, sizeof(pl), &plen), 0);
            assert_int_equal(plen, 3);
        }
        assert_int_equal(noise_handshake_split(&p.i, &p.i_send, &p.i_recv), 0);
        assert_int_equal(noise_handshake_split(&p.r, &p.r_send, &p.r_recv), 0);
        roundtrip(&p.i_send, &p.r_recv, "after tampering");
        roundtrip(&p.r_send, &p.i_recv, "still fine");
    }
}

static void test_ik_wrong_responder_key(void **state)
{
    (void)state;
    static struct pair p, good;
    static struct noise_handshake before;
    uint8_t wrong_priv[32], wrong_pub[32], msg[256], pl[64];
    size_t mlen, plen;

    memset(wrong_priv, 7, sizeof(wrong_priv));
    crypto_scalarmult_base(wrong_pub, wrong_priv);
    for (int h = NOISE_HASH_SHA256; h <= NOISE_HASH_BLAKE2B; h++) {
        pair_init(&p, NOISE_PATTERN_IK, (enum noise_hash)h, wrong_pub);
        assert_int_equal(noise_handshake_write(&p.i, NULL, 0, msg, sizeof(msg), &mlen), 0);
        before = p.r;
        assert_int_equal(noise_handshake_read(&p.r, msg, mlen, pl, sizeof(pl), &plen), P4P_EBADSIG);
        assert_memory_equal(&p.r, &before, sizeof(before));
        assert_null(noise_handshake_remote_static(&p.r));
        /* The responder is still usable: an initiator with the right key gets through. */
        pair_init(&good, NOISE_PATTERN_IK, (enum noise_hash)h, NULL);
        p.r.random_ctx = &good.rng;
        assert_int_equal(noise_handshake_write(&good.i, NULL, 0, msg, sizeof(msg), &mlen), 0);
        assert_int_equal(noise_handshake_read(&p.r, msg, mlen, pl, sizeof(pl), &plen), 0);
    }
}

static void test_transport_tamper_keeps_state(void **state)
{
    (void)state;
    static struct pair p;
    uint8_t ct[64], bad[64], pt[64];
    size_t clen, plen;

    pair_init(&p, NOISE_PATTERN_XX, NOISE_HASH_SHA256, NULL);
    assert_int_equal(pair_run(&p), 0);
    assert_int_equal(noise_cipher_encrypt(&p.i_send, NULL, 0, (const uint8_t *)"secret", 6, ct,
                                          sizeof(ct), &clen),
                     0);
    assert_int_equal(p.i_send.n, 1);
    for (size_t pos = 0; pos < clen; pos++) {
        memcpy(bad, ct, clen);
        bad[pos] ^= 0x40;
        assert_int_equal(noise_cipher_decrypt(&p.r_recv, NULL, 0, bad, clen, pt, sizeof(pt), &plen),
                         P4P_EBADSIG);
        assert_int_equal(p.r_recv.n, 0);
    }
    /* Wrong associated data, and a ciphertext shorter than a tag. */
    assert_int_equal(
        noise_cipher_decrypt(&p.r_recv, (const uint8_t *)"x", 1, ct, clen, pt, sizeof(pt), &plen),
        P4P_EBADSIG);
    for (size_t n = 0; n < 16; n++) {
        assert_int_equal(noise_cipher_decrypt(&p.r_recv, NULL, 0, ct, n, pt, sizeof(pt), &plen),
                         P4P_EMALFORMED);
    }
    assert_int_equal(noise_cipher_decrypt(&p.r_recv, NULL, 0, ct, clen, pt, 5, &plen), P4P_ETOOBIG);
    assert_int_equal(p.r_recv.n, 0);
    assert_int_equal(noise_cipher_decrypt(&p.r_recv, NULL, 0, ct, clen, pt, sizeof(pt), &plen), 0);
    assert_int_equal(plen, 6);
    assert_memory_equal(pt, "secret", 6);
    assert_int_equal(p.r_recv.n, 1);
    /* A replay of the same ciphertext is rejected: the nonce moved on. */
    assert_int_equal(noise_cipher_decrypt(&p.r_recv, NULL, 0, ct, clen, pt, sizeof(pt), &plen),
                     P4P_EBADSIG);
    roundtrip(&p.i_send, &p.r_recv, "next");
}

static void test_low_order_points(void **state)
{
    (void)state;
    static struct pair p;
    static const uint8_t bad_points[][32] = {
        {0},                                                               /* 0 */
        {1},                                                               /* 1 */
        {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, /* order 8 */
         0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
         0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
    };
    uint8_t msg[256], pl[64];
    size_t mlen, plen;

    for (size_t b = 0; b < sizeof(bad_points) / sizeof(bad_points[0]); b++) {
        /* IK: the responder's first read does es = DH(s, re). */
        pair_init(&p, NOISE_PATTERN_IK, NOISE_HASH_SHA256, NULL);
        assert_int_equal(noise_handshake_write(&p.i, NULL, 0, msg, sizeof(msg), &mlen), 0);
        memcpy(msg, bad_points[b], 32);
        assert_int_equal(noise_handshake_read(&p.r, msg, mlen, pl, sizeof(pl), &plen),
                         P4P_EMALFORMED);
        /* XX: the responder accepts "e" (no DH yet) and refuses to write ee with it. */
        pair_init(&p, NOISE_PATTERN_XX, NOISE_HASH_SHA256, NULL);
        assert_int_equal(noise_handshake_write(&p.i, NULL, 0, msg, sizeof(msg), &mlen), 0);
        memcpy(msg, bad_points[b], 32);
        assert_int_equal(noise_handshake_read(&p.r, msg, mlen, pl, sizeof(pl), &plen), 0);
        assert_int_equal(noise_handshake_write(&p.r, NULL, 0, msg, sizeof(msg), &mlen),
                         P4P_EMALFORMED);
        assert_int_equal(noise_handshake_action(&p.r), NOISE_ACTION_WRITE);
    }
}

static void test_truncation_and_misuse(void **state)
{
    (void)state;
    static struct pair p;
    static struct noise_handshake before;
    uint8_t msg[256], pl[64];
    size_t mlen, plen;
    struct noise_cipher c1, c2;

    pair_init(&p, NOISE_PATTERN_IK, NOISE_HASH_BLAKE2B, NULL);
    /* Out of order calls. */
    assert_int_equal(noise_handshake_read(&p.i, msg, 10, pl, sizeof(pl), &plen), P4P_EINVAL);
    assert_int_equal(noise_handshake_write(&p.r, NULL, 0, msg, sizeof(msg), &mlen), P4P_EINVAL);
    assert_int_equal(noise_handshake_split(&p.i, &c1, &c2), P4P_EINVAL);
    /* Output too small: refused, nothing changes. */
    size_t need = noise_handshake_write_len(&p.i, 5);
    assert_int_equal(need, 32 + 48 + 5 + 16);
    before = p.i;
    assert_int_equal(noise_handshake_write(&p.i, (const uint8_t *)"hello", 5, msg, need - 1, &mlen),
                     P4P_ETOOBIG);
    assert_memory_equal(&p.i, &before, sizeof(before));
    assert_int_equal(noise_handshake_write(&p.i, (const uint8_t *)"hello", 5, msg, need, &mlen), 0);
    assert_int_equal(mlen, need);
    /* Every truncation fails and changes nothing; then the whole message passes. */
    before = p.r;
    for (size_t n = 0; n < mlen; n++) {
        int rc = noise_handshake_read(&p.r, msg, n, pl, sizeof(pl), &plen);
        assert_true(rc == P4P_EMALFORMED || rc == P4P_EBADSIG);
        assert_memory_equal(&p.r, &before, sizeof(before));
    }
    assert_int_equal(noise_handshake_read(&p.r, msg, mlen, pl, 4, &plen), P4P_ETOOBIG);
    assert_memory_equal(&p.r, &before, sizeof(before));
    assert_int_equal(noise_handshake_read(&p.r, msg, mlen, pl, sizeof(pl), &plen), 0);
    assert_int_equal(plen, 5);
    /* Oversized messages. */
    static uint8_t huge[NOISE_MSG_MAX + 100];
    assert_int_equal(noise_handshake_write(&p.r, huge, NOISE_MSG_MAX, huge, sizeof(huge), &mlen),
                     P4P_ETOOBIG);
    assert_int_equal(pair_run(&p), 0);
    assert_int_equal(noise_handshake_write(&p.i, NULL, 0, msg, sizeof(msg), &mlen), P4P_EINVAL);

    /* Bad configurations. */
    struct noise_handshake_config c = {0};
    struct noise_handshake hs;
    c.pattern = NOISE_PATTERN_IK;
    c.hash = NOISE_HASH_SHA256;
    c.is_initiator = true;
    c.s_priv = p.i_s;
    c.random = test_random;
    c.random_ctx = &p.rng;
    assert_int_equal(noise_handshake_init(&hs, &c), P4P_EINVAL); /* IK initiator needs rs */
    c.pattern = NOISE_PATTERN_XX;
    c.random = NULL;
    assert_int_equal(noise_handshake_init(&hs, &c), P4P_EINVAL); /* no randomness */
    c.random = test_random;
    c.hash = (enum noise_hash)9;
    assert_int_equal(noise_handshake_init(&hs, &c), P4P_EINVAL);
    c.hash = NOISE_HASH_SHA256;
    c.s_priv = NULL;
    assert_int_equal(noise_handshake_init(&hs, &c), P4P_EINVAL);
}

static void test_nonce_limit_and_no_key(void **state)
{
    (void)state;
    struct noise_cipher c;
    uint8_t k[32], out[64], pt[64];
    size_t len;

    memset(k, 3, sizeof(k));
    noise_cipher_init(&c, k);
    noise_cipher_set_nonce(&c, UINT64_MAX - 1);
    assert_int_equal(
        noise_cipher_encrypt(&c, NULL, 0, (const uint8_t *)"a", 1, out, sizeof(out), &len), 0);
    assert_int_equal(c.n, UINT64_MAX);
    assert_int_equal(
        noise_cipher_encrypt(&c, NULL, 0, (const uint8_t *)"a", 1, out, sizeof(out), &len),
        P4P_EFULL);
    assert_int_equal(noise_cipher_decrypt(&c, NULL, 0, out, 17, pt, sizeof(pt), &len), P4P_EFULL);
    assert_int_equal(
        noise_cipher_encrypt_at(&c, UINT64_MAX, NULL, 0, pt, 1, out, sizeof(out), &len), P4P_EFULL);
    /* Explicit nonces: encrypt_at(n) equals encrypt with c.n = n, and leaves c.n alone. */
    uint8_t a[64], b[64];
    size_t alen, blen;
    noise_cipher_set_nonce(&c, 77);
    assert_int_equal(
        noise_cipher_encrypt_at(&c, 77, NULL, 0, (const uint8_t *)"xyz", 3, a, sizeof(a), &alen),
        0);
    assert_int_equal(c.n, 77);
    assert_int_equal(
        noise_cipher_encrypt(&c, NULL, 0, (const uint8_t *)"xyz", 3, b, sizeof(b), &blen), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_int_equal(noise_cipher_decrypt_at(&c, 77, NULL, 0, a, alen, pt, sizeof(pt), &len), 0);
    assert_int_equal(noise_cipher_decrypt_at(&c, 78, NULL, 0, a, alen, pt, sizeof(pt), &len),
                     P4P_EBADSIG);
    /* Without a key, EncryptWithAd is the identity (spec 5.1). */
    noise_cipher_clear(&c);
    noise_cipher_init(&c, NULL);
    assert_int_equal(
        noise_cipher_encrypt(&c, NULL, 0, (const uint8_t *)"plain", 5, out, sizeof(out), &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "plain", 5);
    assert_int_equal(noise_cipher_rekey(&c), P4P_EINVAL);
    assert_int_equal(noise_cipher_encrypt_at(&c, 0, NULL, 0, pt, 1, out, sizeof(out), &len),
                     P4P_EINVAL);
}

static void test_rekey(void **state)
{
    (void)state;
    static struct pair p;
    uint8_t expect_k[48], zeros[32] = {0}, nonce[12];
    unsigned long long elen;

    pair_init(&p, NOISE_PATTERN_XX, NOISE_HASH_SHA512, NULL);
    assert_int_equal(pair_run(&p), 0);
    roundtrip(&p.i_send, &p.r_recv, "before");
    /* REKEY(k) = ENCRYPT(k, 2^64-1, "", zeros)[0..32], computed here with libsodium directly. */
    memset(nonce, 0xff, sizeof(nonce));
    memset(nonce, 0, 4);
    crypto_aead_chacha20poly1305_ietf_encrypt(expect_k, &elen, zeros, 32, NULL, 0, NULL, nonce,
                                              p.i_send.k);
    assert_int_equal(noise_cipher_rekey(&p.i_send), 0);
    assert_memory_equal(p.i_send.k, expect_k, 32);
    assert_int_equal(p.i_send.n, 1); /* n is kept */
    /* One side rekeyed: the other can no longer read. */
    uint8_t ct[64], pt[64];
    size_t clen, plen;
    assert_int_equal(
        noise_cipher_encrypt(&p.i_send, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof(ct), &clen),
        0);
    assert_int_equal(noise_cipher_decrypt(&p.r_recv, NULL, 0, ct, clen, pt, sizeof(pt), &plen),
                     P4P_EBADSIG);
    assert_int_equal(noise_cipher_rekey(&p.r_recv), 0);
    assert_int_equal(noise_cipher_decrypt(&p.r_recv, NULL, 0, ct, clen, pt, sizeof(pt), &plen), 0);
    roundtrip(&p.i_send, &p.r_recv, "after");
    roundtrip(&p.r_send, &p.i_recv, "other direction untouched");
}

/* HMAC-SHA256/512 built from the hash (spec 4.3) equals libsodium's HMAC-SHA2, for keys
 * shorter than, equal to and longer than the block. */
static void test_hmac_against_libsodium(void **state)
{
    (void)state;
    uint8_t key[200], data[300], ours[64], theirs[64];
    uint64_t rng = 7;

    test_random(&rng, key, sizeof(key));
    test_random(&rng, data, sizeof(data));
    static const size_t key_lens[] = {0, 1, 32, 64, 65, 128, 129, 200};
    for (size_t i = 0; i < sizeof(key_lens) / sizeof(key_lens[0]); i++) {
        size_t kl = key_lens[i];
        crypto_auth_hmacsha256_state s256;
        crypto_auth_hmacsha512_state s512;

        noise_hmac(NOISE_HASH_SHA256, key, kl, data, 100 + i, ours);
        crypto_auth_hmacsha256_init(&s256, key, kl);
        crypto_auth_hmacsha256_update(&s256, data, 100 + i);
        crypto_auth_hmacsha256_final(&s256, theirs);
        assert_memory_equal(ours, theirs, 32);

        noise_hmac(NOISE_HASH_SHA512, key, kl, data, 200 + i, ours);
        crypto_auth_hmacsha512_init(&s512, key, kl);
        crypto_auth_hmacsha512_update(&s512, data, 200 + i);
        crypto_auth_hmacsha512_final(&s512, theirs);
        assert_memory_equal(ours, theirs, 64);
    }
    /* RFC 4231 test case 2 for SHA-256. */
    static const uint8_t rfc4231_2[32] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
        0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
        0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
    };
    noise_hmac(NOISE_HASH_SHA256, (const uint8_t *)"Jefe", 4,
               (const uint8_t *)"what do ya want for nothing?", 28, ours);
    assert_memory_equal(ours, rfc4231_2, 32);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cacophony_vectors),
        cmocka_unit_test(test_random_handshakes),
        cmocka_unit_test(test_flipped_bytes_rejected),
        cmocka_unit_test(test_ik_wrong_responder_key),
        cmocka_unit_test(test_transport_tamper_keeps_state),
        cmocka_unit_test(test_low_order_points),
        cmocka_unit_test(test_truncation_and_misuse),
        cmocka_unit_test(test_nonce_limit_and_no_key),
        cmocka_unit_test(test_rekey),
        cmocka_unit_test(test_hmac_against_libsodium),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
