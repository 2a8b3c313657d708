/*
 * riblt_bench.c — rateless IBLT set reconciliation between two sets of 1,000,000 32-byte ids
 * that differ in d = 0, 10, 1,000 and 100,000 items (half only Alice's, half only Bob's).
 *
 * Alice streams coded symbols in wire batches whose size doubles from 1 up to 256 (a sender
 * that waits for Bob's "stop" after each batch); Bob adds each batch and stops when done. For
 * each d it prints the symbols Bob needed (and the ratio to d), the symbols and bytes actually
 * sent, and CPU time: Alice's set-up (hashing and filing 1M items) and encoding, Bob's set-up
 * and decoding (subtracting his set, peeling), and both sides' memory. A wrong answer (a
 * difference missed or invented) fails the run; speed never does. Items are ChaCha20 key stream, so
 * runs repeat.
 *
 * Usage: riblt_bench [set_size]   (default 1000000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "p4p/p4p.h"
#include "riblt.h"

#define ITEM      32
#define BATCH_MAX 256

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_item(const void *a, const void *b)
{
    return memcmp(a, b, ITEM);
}

/* Whether the decoder's remote (or local) list is exactly want[0..n) as a set. */
static int same_set(const riblt_dec *dec, int remote, const uint8_t *want, uint32_t n)
{
    if (n == 0) {
        return 1;
    }
    uint8_t *a = malloc((size_t)n * ITEM), *b = malloc((size_t)n * ITEM);
    if (a == NULL || b == NULL) {
        exit(1);
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *it = remote ? riblt_dec_remote_item(dec, i) : riblt_dec_local_item(dec, i);
        memcpy(a + (size_t)i * ITEM, it, ITEM);
    }
    memcpy(b, want, (size_t)n * ITEM);
    qsort(a, n, ITEM, cmp_item);
    qsort(b, n, ITEM, cmp_item);
    int same = memcmp(a, b, (size_t)n * ITEM) == 0;
    free(a);
    free(b);
    return same;
}

struct result {
    uint64_t needed, sent, bytes;
    double enc_setup, enc_stream, dec_setup, dec_stream;
    size_t enc_mem, dec_mem;
};

/* items: [common: n - d/2][only Alice: d/2][only Bob: d/2]. Returns 0 or -1 (wrong answer). */
static int reconcile(const uint8_t *items, uint32_t n, uint32_t d, struct result *res)
{
    uint32_t half = d / 2, nc = n - half;
    const uint8_t *only_a = items + (size_t)nc * ITEM;
    const uint8_t *only_b = only_a + (size_t)half * ITEM;
    struct riblt_config cfg = {.item_len = ITEM, .item_max = n, .symbol_max = 4 * d + 1024};
    memset(cfg.key, 0x5a, sizeof(cfg.key));
    riblt_enc *e = NULL;
    riblt_dec *dec = NULL;
    uint8_t *buf = malloc(RIBLT_BATCH_HEADER_MAX + BATCH_MAX * RIBLT_SYMBOL_WIRE_MAX(ITEM));
    if (buf == NULL || riblt_enc_create(&e, &cfg) != 0 || riblt_dec_create(&dec, &cfg) != 0) {
        fprintf(stderr, "riblt_bench: out of memory\n");
        exit(1);
    }
    memset(res, 0, sizeof(*res));

    double t0 = cpu_s();
    for (uint32_t i = 0; i < nc + half; i++) {
        if (riblt_enc_add(e, items + (size_t)i * ITEM) != 0) {
            exit(1);
        }
    }
    double t1 = cpu_s();
    for (uint32_t i = 0; i < nc; i++) {
        if (riblt_dec_add_local(dec, items + (size_t)i * ITEM) != 0) {
            exit(1);
        }
    }
    for (uint32_t i = 0; i < half; i++) {
        if (riblt_dec_add_local(dec, only_b + (size_t)i * ITEM) != 0) {
            exit(1);
        }
    }
    double t2 = cpu_s();
    res->enc_setup = t1 - t0;
    res->dec_setup = t2 - t1;

    int rc = 0;
    uint32_t batch = 1;
    while (rc == 0) {
        size_t len;
        double a = cpu_s();
        if (riblt_enc_write_batch(e, batch, buf,
                                  RIBLT_BATCH_HEADER_MAX + BATCH_MAX * RIBLT_SYMBOL_WIRE_MAX(ITEM),
                                  &len) != 0) {
            exit(1);
        }
        double b = cpu_s();
        rc = riblt_dec_add_batch(dec, buf, len);
        double c = cpu_s();
        res->enc_stream += b - a;
        res->dec_stream += c - b;
        res->sent += batch;
        res->bytes += len;
        if (rc < 0) {
            fprintf(stderr, "riblt_bench: d=%u: decoder: %s\n", d, p4p_strerror(rc));
            return -1;
        }
        batch = batch * 2 > BATCH_MAX ? BATCH_MAX : batch * 2;
    }
    res->needed = riblt_dec_received(dec);
    res->enc_mem = riblt_enc_memory(e);
    res->dec_mem = riblt_dec_memory(dec);

    /* Check the answer: exactly the d/2 + d/2 items, each in its list. */
    int ok = riblt_dec_remote_count(dec) == half && riblt_dec_local_count(dec) == half &&
             same_set(dec, 1, only_a, half) && same_set(dec, 0, only_b, half);
    free(buf);
    riblt_enc_free(e);
    riblt_dec_free(dec);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        return 1;
    }
    uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
    static const uint32_t ds[] = {0, 10, 1000, 100000};
    uint32_t dmax = ds[sizeof(ds) / sizeof(ds[0]) - 1];
    if (n < dmax) {
        fprintf(stderr, "riblt_bench: set_size must be at least %u\n", dmax);
        return 1;
    }
    /* n - d/2 common + d/2 + d/2 distinct items, for the largest d; smaller d use a prefix
     * of the same layout (common part shifted so both sets keep n items). */
    size_t total = (size_t)n + dmax / 2;
    uint8_t *pool = malloc(total * ITEM);
    if (pool == NULL) {
        return 1;
    }
    uint8_t key[crypto_stream_chacha20_KEYBYTES] = {7};
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    crypto_stream_chacha20(pool, total * ITEM, nonce, key);

    printf("riblt: two sets of %u 32-byte ids, d differences (d/2 on each side); batches "
           "doubling 1..%d\n",
           n, BATCH_MAX);
    printf("%7s %8s %7s %8s %10s %9s | %9s %9s | %9s %9s | %7s %7s\n", "d", "needed", "ratio",
           "sent", "bytes", "B/diff", "enc_setup", "enc_cpu", "dec_setup", "dec_cpu", "enc_MB",
           "dec_MB");
    int fail = 0;
    for (size_t k = 0; k < sizeof(ds) / sizeof(ds[0]); k++) {
        struct result r;
        if (reconcile(pool, n, ds[k], &r) != 0) {
            printf("%7u WRONG ANSWER\n", ds[k]);
            fail = 1;
            continue;
        }
        double ratio = ds[k] ? (double)r.needed / ds[k] : 0;
        double per = ds[k] ? (double)r.bytes / ds[k] : 0;
        printf("%7u %8llu %7.3f %8llu %10llu %9.1f | %8.3fs %8.3fs | %8.3fs %8.3fs | %7.1f "
               "%7.1f\n",
               ds[k], (unsigned long long)r.needed, ratio, (unsigned long long)r.sent,
               (unsigned long long)r.bytes, per, r.enc_setup, r.enc_stream, r.dec_setup,
               r.dec_stream, (double)r.enc_mem / 1e6, (double)r.dec_mem / 1e6);
    }
    free(pool);
    return fail;
}
