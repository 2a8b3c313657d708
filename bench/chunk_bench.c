/*
 * chunk_bench.c — blob chunking speed on 64 MiB of ChaCha20 key stream (fixed key): FastCDC
 * cut points alone, FastCDC plus the BLAKE2b-256 leaf hash of every chunk (what a sender does
 * to name a blob), and crypto_generichash BLAKE2b-256 over the whole buffer in one call (the
 * hashing floor). Default parameters (2/8/64 KiB, level 2). Prints MB/s (10^6 bytes), best of
 * 5 rounds each; fails only when the two chunking passes disagree on the chunks.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fastcdc.h"
#include "merkle.h"

enum { DATA_LEN = 64 << 20, ROUNDS = 5 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Chunks the buffer; with `leaves`, also hashes every chunk into it. Returns the chunk count. */
static size_t chunk_pass(const struct fastcdc *c, const uint8_t *data, size_t len, uint8_t *leaves)
{
    size_t count = 0;
    for (size_t off = 0; off < len; count++) {
        uint32_t n = fastcdc_chunk_len(c, data + off, len - off);
        if (leaves != NULL) {
            merkle_leaf_hash(data + off, n, leaves + count * MERKLE_HASH_LEN);
        }
        off += n;
    }
    return count;
}

static double mb_per_s(double seconds)
{
    return (double)DATA_LEN / 1e6 / seconds;
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    uint8_t key[crypto_stream_chacha20_KEYBYTES], nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    memset(key, 0x42, sizeof(key));
    uint8_t *data = malloc(DATA_LEN);
    /* At least min_len bytes per chunk except the last. */
    uint8_t *leaves = malloc((DATA_LEN / FASTCDC_DEFAULT_MIN + 1) * MERKLE_HASH_LEN);
    if (data == NULL || leaves == NULL) {
        return 1;
    }
    crypto_stream_chacha20(data, DATA_LEN, nonce, key);

    struct fastcdc_params p;
    struct fastcdc c;
    fastcdc_params_default(&p);
    if (fastcdc_init(&c, &p) != 0) {
        return 1;
    }
    double best_cdc = 1e9, best_both = 1e9, best_hash = 1e9;
    size_t chunks = 0, chunks_hashed = 0;
    uint8_t digest[32];
    for (int round = 0; round < ROUNDS; round++) {
        double t0 = now_s();
        chunks = chunk_pass(&c, data, DATA_LEN, NULL);
        double t1 = now_s();
        chunks_hashed = chunk_pass(&c, data, DATA_LEN, leaves);
        double t2 = now_s();
        crypto_generichash(digest, sizeof(digest), data, DATA_LEN, NULL, 0);
        double t3 = now_s();
        best_cdc = t1 - t0 < best_cdc ? t1 - t0 : best_cdc;
        best_both = t2 - t1 < best_both ? t2 - t1 : best_both;
        best_hash = t3 - t2 < best_hash ? t3 - t2 : best_hash;
    }
    if (chunks != chunks_hashed || chunks == 0) {
        fprintf(stderr, "chunk_bench: the passes disagree (%zu and %zu chunks)\n", chunks,
                chunks_hashed);
        return 1;
    }
    printf("fastcdc 2/8/64 KiB level 2, 64 MiB: %zu chunks, mean %.0f bytes\n", chunks,
           (double)DATA_LEN / (double)chunks);
    printf("  chunking:                        %7.0f MB/s\n", mb_per_s(best_cdc));
    printf("  chunking + BLAKE2b-256 per chunk: %7.0f MB/s\n", mb_per_s(best_both));
    printf("  BLAKE2b-256 alone (one call):     %7.0f MB/s\n", mb_per_s(best_hash));
    free(leaves);
    free(data);
    return 0;
}
