/*
 * test_tables.c — the engine's bounded tables against simple references: the seen set
 * (membership, FIFO eviction at the bound, growth) and the update store (FIFO, lookup by
 * id prefix, bytes intact across compaction).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rng.h"
#include "seen.h"
#include "store.h"

/* Random inserts from a small key space; the reference is the list of the last `max`
 * distinct inserted keys. */
static void seen_against_reference(uint32_t max)
{
    struct seen_set s;
    seen_init(&s, max);
    struct sim_rng r;
    sim_rng_derive(&r, max, "seen", 0);
    struct seen_key *ref = calloc(max, sizeof(*ref));
    assert_non_null(ref);
    uint32_t ref_n = 0, evictions = 0;
    for (int step = 0; step < 20000; step++) {
        struct seen_key k = {sim_rng_below(&r, 4) * 0x0101010101010101ull,
                             1 + sim_rng_below(&r, max * 2)};
        int in_ref = 0;
        for (uint32_t i = 0; i < ref_n; i++) {
            in_ref |= ref[i].origin == k.origin && ref[i].seq == k.seq;
        }
        assert_int_equal(seen_contains(&s, k), in_ref);
        if (!in_ref) {
            int rc = seen_insert(&s, k);
            assert_true(rc == 0 || rc == 1);
            if (ref_n == max) {
                assert_int_equal(rc, 1);
                memmove(ref, ref + 1, (max - 1) * sizeof(*ref));
                ref_n--;
                evictions++;
            } else {
                assert_int_equal(rc, 0);
            }
            ref[ref_n++] = k;
        }
    }
    assert_true(evictions > 0);
    assert_int_equal(s.count, ref_n);
    seen_free(&s);
    free(ref);
}

static void test_seen_small(void **state)
{
    (void)state;
    seen_against_reference(1);
    seen_against_reference(3);
    seen_against_reference(16);
}

static void test_seen_large(void **state)
{
    (void)state;
    seen_against_reference(300);
}

static void test_seen_memory_grows_lazily(void **state)
{
    (void)state;
    struct seen_set s;
    seen_init(&s, 1000000);
    assert_int_equal(seen_memory(&s), 0);
    assert_int_equal(seen_insert(&s, (struct seen_key){1, 1}), 0);
    assert_true(seen_memory(&s) > 0 && seen_memory(&s) < 1024);
    seen_free(&s);
}

static void id_of(uint32_t n, uint8_t id[32])
{
    memset(id, 0, 32);
    memcpy(id, &n, sizeof(n));
    id[31] = 0x5a;
}

static void test_store_fifo_and_lookup(void **state)
{
    (void)state;
    struct store s;
    store_init(&s, 50);
    uint8_t frame[300];
    for (uint32_t n = 0; n < 400; n++) {
        uint8_t id[32];
        id_of(n, id);
        size_t len = 1 + n % 300;
        memset(frame, (int)(n & 0xff), len);
        assert_int_equal(store_add(&s, id, frame, len), 0);
        uint32_t held = n + 1 < 50 ? n + 1 : 50;
        assert_int_equal(s.count, held);
        /* newest first */
        assert_int_equal(store_newest(&s, 0)->prefix, store_prefix(id));
        /* everything held is intact; what fell off is gone */
        for (uint32_t m = n + 1 - held; m <= n; m++) {
            uint8_t mid[32];
            id_of(m, mid);
            const struct store_entry *e = store_find(&s, store_prefix(mid));
            assert_non_null(e);
            assert_int_equal(e->len, 1 + m % 300);
            const uint8_t *b = store_bytes(&s, e);
            assert_int_equal(b[0], m & 0xff);
            assert_int_equal(b[e->len - 1], m & 0xff);
        }
        if (n >= 50) {
            uint8_t old[32];
            id_of(n - 50, old);
            assert_null(store_find(&s, store_prefix(old)));
        }
    }
    /* The log stays bounded: compaction reclaims the bytes of dropped frames. */
    assert_true(store_memory(&s) < 50 * 300 * 4 + 50 * sizeof(struct store_entry) * 2);
    store_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seen_small),
        cmocka_unit_test(test_seen_large),
        cmocka_unit_test(test_seen_memory_grows_lazily),
        cmocka_unit_test(test_store_fifo_and_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
