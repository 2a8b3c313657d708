/*
 * session_bench.c — `make bench`: what secure sessions cost on this machine.
 *   - Noise handshakes per second, both sides in one thread (XX and IK, each hash);
 *   - session handshakes per second (two session tables, connect to confirmed keys and close);
 *   - transport: ChaCha20-Poly1305 seal + open of 1 KiB payloads through the session layer
 *     (header, counter, replay window included), against raw libsodium AEAD on the same data.
 * Prints "name value unit" lines. Keys and ephemerals come from a fixed-seed stream.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "noise.h"
#include "session.h"

static void rnd(void *ctx, uint8_t *out, size_t len)
{
    uint64_t *s = ctx;
    for (size_t i = 0; i < len; i++) { /* splitmix64, one byte per step */
        uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        out[i] = (uint8_t)(z ^ (z >> 31));
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* One full Noise handshake, both sides; returns 0 on success. */
static int handshake(enum noise_pattern pat, enum noise_hash h, uint64_t *rng, const uint8_t *is,
                     const uint8_t *rsk, const uint8_t *rpub)
{
    struct noise_handshake i, r;
    struct noise_handshake_config c = {.pattern = pat, .hash = h, .random = rnd, .random_ctx = rng};
    c.is_initiator = 1;
    c.s_priv = is;
    c.rs = pat == NOISE_PATTERN_IK ? rpub : NULL;
    if (noise_handshake_init(&i, &c) != 0) {
        return -1;
    }
    c.is_initiator = 0;
    c.s_priv = rsk;
    c.rs = NULL;
    if (noise_handshake_init(&r, &c) != 0) {
        return -1;
    }
    uint8_t msg[256], pl[64];
    size_t ml, pll;
    for (;;) {
        struct noise_handshake *tx = noise_handshake_action(&i) == NOISE_ACTION_WRITE   ? &i
                                     : noise_handshake_action(&r) == NOISE_ACTION_WRITE ? &r
                                                                                        : NULL;
        if (tx == NULL) {
            break;
        }
        struct noise_handshake *rx = tx == &i ? &r : &i;
        if (noise_handshake_write(tx, NULL, 0, msg, sizeof msg, &ml) != 0 ||
            noise_handshake_read(rx, msg, ml, pl, sizeof pl, &pll) != 0) {
            return -1;
        }
    }
    struct noise_cipher c1, c2;
    int rc = noise_handshake_split(&i, &c1, &c2) | noise_handshake_split(&r, &c1, &c2);
    noise_cipher_clear(&c1);
    noise_cipher_clear(&c2);
    return rc;
}

static session_table *A, *B;
static uint8_t buf[2048];

/* Carries datagrams between the two tables until both are quiet. */
static void pump(uint32_t k)
{
    struct session_datagram d;
    size_t olen;
    for (int moved = 1; moved;) {
        moved = 0;
        while (session_poll(A, &d) == 0) {
            moved = 1;
            session_recv(B, 1, 2000 + k, d.data, d.len, buf, sizeof buf, &olen);
        }
        while (session_poll(B, &d) == 0) {
            moved = 1;
            session_recv(A, 1, 1000 + k, d.data, d.len, buf, sizeof buf, &olen);
        }
    }
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    static const char *const hash_name[] = {"", "sha256", "sha512", "blake2b"};
    uint64_t rng = 1;
    uint8_t is[32], rsk[32], rpub[32];
    rnd(&rng, is, 32);
    rnd(&rng, rsk, 32);
    crypto_scalarmult_base(rpub, rsk);
    for (int pat = NOISE_PATTERN_XX; pat <= NOISE_PATTERN_IK; pat++) {
        for (int h = NOISE_HASH_SHA256; h <= NOISE_HASH_BLAKE2B; h++) {
            int n = 2000;
            double t0 = now_s();
            for (int k = 0; k < n; k++) {
                if (handshake(pat, h, &rng, is, rsk, rpub) != 0) {
                    fprintf(stderr, "session_bench: handshake failed\n");
                    return 1;
                }
            }
            printf("noise_%s_%s_handshakes %.0f /s (both sides)\n",
                   pat == NOISE_PATTERN_XX ? "xx" : "ik", hash_name[h], n / (now_s() - t0));
        }
    }

    uint64_t ra = 1, rb = 2;
    uint8_t ka[32], kb[32], pb[32];
    rnd(&ra, ka, 32);
    rnd(&rb, kb, 32);
    crypto_scalarmult_base(pb, kb);
    struct session_config cfg;
    session_config_default(&cfg);
    cfg.session_max = 64;
    cfg.mtu = 1400;
    cfg.outbox_max = 64;
    struct session_env ea = {.ctx = &ra, .random = rnd}, eb = {.ctx = &rb, .random = rnd};
    if (session_table_create(&cfg, &ea, ka, &A) != 0 || session_table_create(&cfg, &eb, kb, &B)) {
        return 1;
    }
    for (int ik = 0; ik <= 1; ik++) {
        int n = 2000;
        double t0 = now_s();
        for (int k = 0; k < n; k++) {
            struct session_info inf;
            session_connect(A, 1, 1000 + (uint32_t)k, ik ? pb : NULL);
            pump((uint32_t)k);
            if (session_get(B, 2000 + (uint32_t)k, &inf) != 0 || !inf.has_keys) {
                fprintf(stderr, "session_bench: session handshake failed\n");
                return 1;
            }
            session_close(A, 1, 1000 + (uint32_t)k);
            session_close(B, 1, 2000 + (uint32_t)k);
            struct session_event e;
            while (session_poll_event(A, &e) == 0 || session_poll_event(B, &e) == 0) {
            }
        }
        printf("session_%s_handshakes %.0f /s (two tables, to confirmed keys)\n", ik ? "ik" : "xx",
               n / (now_s() - t0));
    }

    session_connect(A, 1, 1000, NULL);
    pump(0);
    static uint8_t pl[1024];
    struct session_datagram d;
    int n = 200000;
    size_t got = 0, olen;
    double t0 = now_s();
    for (int k = 0; k < n; k++) {
        session_send(A, 1, 1000, pl, sizeof pl);
        session_poll(A, &d);
        if (session_recv(B, 1, 2000, d.data, d.len, buf, sizeof buf, &olen) == 0) {
            got += olen;
        }
    }
    double dt = now_s() - t0;
    if (got != (size_t)n * sizeof pl) {
        fprintf(stderr, "session_bench: %zu of %d datagrams delivered\n", got / sizeof pl, n);
        return 1;
    }
    printf("session_seal_open_1KiB %.0f MB/s of payload (%.0f datagrams/s, %d bytes each)\n",
           (double)got / dt / 1e6, n / dt, (int)(sizeof pl + SESSION_OVERHEAD));
    session_table_destroy(A);
    session_table_destroy(B);

    uint8_t key[32], nonce[12] = {0}, ct[1024 + 16], back[1024];
    unsigned long long cl, bl;
    rnd(&rng, key, 32);
    t0 = now_s();
    for (int k = 0; k < n; k++) {
        memcpy(nonce, &k, sizeof k);
        crypto_aead_chacha20poly1305_ietf_encrypt(ct, &cl, pl, sizeof pl, NULL, 0, NULL, nonce,
                                                  key);
        if (crypto_aead_chacha20poly1305_ietf_decrypt(back, &bl, NULL, ct, cl, NULL, 0, nonce,
                                                      key)) {
            return 1;
        }
    }
    dt = now_s() - t0;
    printf("raw_chachapoly_seal_open_1KiB %.0f MB/s of payload (libsodium, same sizes)\n",
           (double)n * sizeof pl / dt / 1e6);
    return 0;
}
