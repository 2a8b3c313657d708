/*
 * test_storage.c — the storage conformance suite (storage_suite.h) on the in-memory backend,
 * then what only that backend promises: an idle store costs the struct alone, freed space
 * comes back, memory per log record stays small, a stale handle's writes are refused at once,
 * oversized input is refused without being read, and a disk destroyed under an open handle
 * lives until that handle closes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "storage_mem.h"
#include "storage_suite.h"

static void *mem_create(void)
{
    struct storage_mem *d = NULL;
    return storage_mem_create(&d) == 0 ? d : NULL;
}

static int mem_open(void *disk, struct p4p_storage *out)
{
    return storage_mem_open(disk, out);
}

static void mem_destroy(void *disk)
{
    storage_mem_destroy(disk);
}

static int mem_corrupt(void *disk, uint64_t byte, uint64_t record)
{
    return storage_mem_corrupt(disk, byte, record);
}

static const struct suite_backend mem_backend = {
    .name = "storage_mem",
    .create = mem_create,
    .open = mem_open,
    .close = storage_mem_close,
    .destroy = mem_destroy,
    .fail_after = storage_mem_fail_after,
    .corrupt = mem_corrupt,
};

/* ---- What only the memory backend promises -------------------------------------------------- */

#define OPS(st) ((st).ops)

static void append_n(struct p4p_storage st, size_t n, size_t len)
{
    uint8_t rec[256];
    assert_true(len <= sizeof(rec));
    for (size_t i = 0; i < n; i++) {
        suite_fill(rec, len, i);
        assert_int_equal(OPS(st)->log_append(st.ctx, rec, len, NULL), 0);
    }
}

static void test_mem_idle(void **state)
{
    (void)state;
    struct storage_mem *d;
    assert_int_equal(storage_mem_create(&d), 0);
    size_t idle = storage_mem_memory(d);
    assert_true(idle < 512);
    struct p4p_storage st;
    assert_int_equal(storage_mem_open(d, &st), 0);
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    assert_int_equal(OPS(st)->commit(st.ctx), 0);
    assert_int_equal(storage_mem_memory(d), idle);

    /* Fill everything, empty everything: back to the struct alone. */
    uint8_t id[P4P_CHUNK_ID_LEN] = {1};
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    append_n(st, 100, 100);
    assert_int_equal(OPS(st)->kv_put(st.ctx, (const uint8_t *)"k", 1, id, sizeof(id)), 0);
    assert_int_equal(OPS(st)->chunk_put(st.ctx, id, id, sizeof(id)), 0);
    assert_int_equal(OPS(st)->commit(st.ctx), 0);
    assert_true(storage_mem_memory(d) > idle + 100 * 100);
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    assert_int_equal(OPS(st)->log_truncate(st.ctx, 0), 0);
    assert_int_equal(OPS(st)->kv_del(st.ctx, (const uint8_t *)"k", 1), 0);
    assert_int_equal(OPS(st)->chunk_del(st.ctx, id), 0);
    assert_int_equal(OPS(st)->commit(st.ctx), 0);
    assert_int_equal(storage_mem_memory(d), idle);

    /* An aborted batch leaves nothing behind either. */
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    append_n(st, 50, 200);
    assert_int_equal(OPS(st)->kv_put(st.ctx, (const uint8_t *)"k", 1, id, sizeof(id)), 0);
    OPS(st)->abort(st.ctx);
    assert_int_equal(storage_mem_memory(d), idle);

    /* Nor on top of committed data: the arenas are back to their committed fill. */
    struct p4p_storage_stats s1, s2;
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    append_n(st, 5, 100);
    assert_int_equal(OPS(st)->kv_put(st.ctx, (const uint8_t *)"k", 1, id, sizeof(id)), 0);
    assert_int_equal(OPS(st)->commit(st.ctx), 0);
    OPS(st)->stats(st.ctx, &s1);
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    append_n(st, 5, 100);
    assert_int_equal(OPS(st)->kv_put(st.ctx, (const uint8_t *)"k", 1, id, 8), 0);
    assert_int_equal(OPS(st)->kv_put(st.ctx, (const uint8_t *)"j", 1, id, 8), 0);
    OPS(st)->abort(st.ctx);
    OPS(st)->stats(st.ctx, &s2);
    assert_int_equal(s2.stored_bytes, s1.stored_bytes);
    storage_mem_close(&st);
    storage_mem_destroy(d);
}

/* Overwrites, deletes and truncations in many commits: memory follows the live data. */
static void test_mem_reclaim(void **state)
{
    (void)state;
    struct storage_mem *d;
    assert_int_equal(storage_mem_create(&d), 0);
    struct p4p_storage st;
    assert_int_equal(storage_mem_open(d, &st), 0);
    uint8_t val[100];
    size_t peak = 0;
    for (uint32_t i = 0; i < 20000; i++) {
        suite_fill(val, sizeof(val), i);
        uint8_t key[4] = {(uint8_t)(i % 4)};
        assert_int_equal(OPS(st)->begin(st.ctx), 0);
        assert_int_equal(OPS(st)->kv_put(st.ctx, key, sizeof(key), val, sizeof(val)), 0);
        assert_int_equal(OPS(st)->log_append(st.ctx, val, sizeof(val), NULL), 0);
        if (i % 50 == 49) {
            assert_int_equal(OPS(st)->log_truncate(st.ctx, 10), 0);
        }
        assert_int_equal(OPS(st)->commit(st.ctx), 0);
        size_t m = storage_mem_memory(d);
        peak = m > peak ? m : peak;
    }
    /* 4 keys and at most 60 records of ~100 bytes live at any time. */
    assert_true(peak < 24 * 1024);
    size_t vlen = 0;
    uint8_t key[4] = {3};
    assert_int_equal(OPS(st)->kv_get(st.ctx, key, sizeof(key), val, sizeof(val), &vlen), 0);
    uint8_t want[100];
    suite_fill(want, sizeof(want), 19999);
    assert_memory_equal(val, want, sizeof(want));
    storage_mem_close(&st);
    storage_mem_destroy(d);
}

/* 10,000 log records of 200 bytes: the bytes each costs beyond its data. */
static void test_mem_per_record(void **state)
{
    (void)state;
    struct storage_mem *d;
    assert_int_equal(storage_mem_create(&d), 0);
    struct p4p_storage st;
    assert_int_equal(storage_mem_open(d, &st), 0);
    size_t idle = storage_mem_memory(d);
    for (int batch = 0; batch < 100; batch++) {
        assert_int_equal(OPS(st)->begin(st.ctx), 0);
        append_n(st, 100, 200);
        assert_int_equal(OPS(st)->commit(st.ctx), 0);
    }
    size_t overhead = (storage_mem_memory(d) - idle - 10000 * 200) / 10000;
    print_message("storage_mem: 10,000 records of 200 bytes: %zu bytes, %zu per record beyond "
                  "the data\n",
                  storage_mem_memory(d), overhead);
    assert_true(overhead >= 16);               /* the header and the offset, at least */
    assert_true(overhead <= 16 + 208 / 8 + 1); /* plus at most an eighth of slack */
    storage_mem_close(&st);
    storage_mem_destroy(d);
}

/* This backend refuses a stale handle's writes at once, and its reads see the disk. */
static void test_mem_stale_handle(void **state)
{
    (void)state;
    struct storage_mem *d;
    assert_int_equal(storage_mem_create(&d), 0);
    struct p4p_storage a, b;
    assert_int_equal(storage_mem_open(d, &a), 0);
    assert_int_equal(storage_mem_open(d, &b), 0);
    assert_int_equal(OPS(a)->begin(a.ctx), 0);
    uint8_t rec[4] = {1, 2, 3, 4};
    assert_int_equal(OPS(a)->log_append(a.ctx, rec, 4, NULL), P4P_EFENCED);
    assert_int_equal(OPS(a)->kv_put(a.ctx, rec, 1, rec, 4), P4P_EFENCED);
    assert_int_equal(OPS(a)->commit(a.ctx), P4P_EFENCED);
    assert_int_equal(OPS(b)->begin(b.ctx), 0);
    assert_int_equal(OPS(b)->log_append(b.ctx, rec, 4, NULL), 0);
    assert_int_equal(OPS(b)->commit(b.ctx), 0);
    assert_int_equal(OPS(a)->log_count(a.ctx), 1);
    storage_mem_close(&a);
    storage_mem_close(&b);
    storage_mem_destroy(d);
}

/* Lengths beyond the limits are refused before anything is read; the batch is then spoiled:
 * commit reports the error and discards it. Bad arguments to the test hooks are refused. */
static void test_mem_limits(void **state)
{
    (void)state;
    struct storage_mem *d;
    assert_int_equal(storage_mem_create(&d), 0);
    struct p4p_storage st;
    assert_int_equal(storage_mem_open(d, &st), 0);
    static const uint8_t small[1] = {7};
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    assert_int_equal(OPS(st)->log_append(st.ctx, small, 1, NULL), 0);
    assert_int_equal(OPS(st)->log_append(st.ctx, small, (size_t)UINT32_MAX + 1, NULL), P4P_ETOOBIG);
    assert_int_equal(OPS(st)->commit(st.ctx), P4P_ETOOBIG);
    assert_int_equal(OPS(st)->log_count(st.ctx), 0);
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    assert_int_equal(OPS(st)->kv_put(st.ctx, small, (size_t)1 << 31, small, 1), P4P_ETOOBIG);
    assert_int_equal(OPS(st)->kv_put(st.ctx, small, 1, small, 1), P4P_ETOOBIG); /* spoiled */
    OPS(st)->abort(st.ctx);
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    assert_int_equal(OPS(st)->kv_put(st.ctx, small, 1, small, (size_t)UINT32_MAX + 1), P4P_ETOOBIG);
    OPS(st)->abort(st.ctx);
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    assert_int_equal(OPS(st)->chunk_put(st.ctx, NULL, small, 1), P4P_EINVAL);
    OPS(st)->abort(st.ctx);
    assert_int_equal(OPS(st)->log_count(st.ctx), 0);
    uint64_t index = 0;
    assert_int_equal(OPS(st)->log_scan(st.ctx, 0, suite_scan_fn, NULL, &index), P4P_EINVAL);
    assert_int_equal(storage_mem_corrupt(d, 0, 1), P4P_EINVAL); /* no record 1 */
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    assert_int_equal(OPS(st)->log_append(st.ctx, small, 1, NULL), 0);
    assert_int_equal(OPS(st)->commit(st.ctx), 0);
    assert_int_equal(storage_mem_corrupt(d, 1, 1), P4P_EINVAL); /* no byte 1 */
    assert_int_equal(storage_mem_corrupt(d, 0, 0), P4P_EINVAL);
    assert_int_equal(storage_mem_corrupt(d, 0, 1), 0);
    storage_mem_close(&st);
    storage_mem_destroy(d);
}

/* A flipped bit in a kv value or a chunk: P4P_ECORRUPT, counted, never data; a new put of the
 * same key heals it (a chunk must be deleted first: a put of a present id stores nothing). */
static void test_mem_corrupt_items(void **state)
{
    (void)state;
    struct storage_mem *d;
    assert_int_equal(storage_mem_create(&d), 0);
    struct p4p_storage st;
    assert_int_equal(storage_mem_open(d, &st), 0);
    uint8_t id[P4P_CHUNK_ID_LEN] = {9, 9}, val[64], buf[64];
    suite_fill(val, sizeof(val), 1);
    const uint8_t *key = (const uint8_t *)"key";
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    assert_int_equal(OPS(st)->kv_put(st.ctx, key, 3, val, sizeof(val)), 0);
    assert_int_equal(OPS(st)->chunk_put(st.ctx, id, val, sizeof(val)), 0);
    assert_int_equal(OPS(st)->commit(st.ctx), 0);
    assert_int_equal(storage_mem_corrupt_item(d, 0, key, 3, 64), P4P_EINVAL);
    assert_int_equal(storage_mem_corrupt_item(d, 0, key, 2, 0), P4P_ENOTFOUND);
    assert_int_equal(storage_mem_corrupt_item(d, 0, key, 3, 5), 0);
    assert_int_equal(storage_mem_corrupt_item(d, 1, id, sizeof(id), 63), 0);
    size_t len = 0;
    memset(buf, 0, sizeof(buf));
    assert_int_equal(OPS(st)->kv_get(st.ctx, key, 3, buf, sizeof(buf), &len), P4P_ECORRUPT);
    assert_int_equal(OPS(st)->chunk_get(st.ctx, id, buf, sizeof(buf), &len), P4P_ECORRUPT);
    uint8_t zero[64] = {0};
    assert_memory_equal(buf, zero, sizeof(buf)); /* nothing copied out */
    struct p4p_storage_stats s;
    OPS(st)->stats(st.ctx, &s);
    assert_int_equal(s.corrupt, 2);
    assert_int_equal(OPS(st)->chunk_has(st.ctx, id), 1);

    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    assert_int_equal(OPS(st)->kv_put(st.ctx, key, 3, val, sizeof(val)), 0);
    assert_int_equal(OPS(st)->chunk_del(st.ctx, id), 0);
    assert_int_equal(OPS(st)->chunk_put(st.ctx, id, val, sizeof(val)), 0);
    assert_int_equal(OPS(st)->commit(st.ctx), 0);
    assert_int_equal(OPS(st)->kv_get(st.ctx, key, 3, buf, sizeof(buf), &len), 0);
    assert_memory_equal(buf, val, sizeof(val));
    assert_int_equal(OPS(st)->chunk_get(st.ctx, id, buf, sizeof(buf), &len), 0);
    assert_memory_equal(buf, val, sizeof(val));
    storage_mem_close(&st);
    storage_mem_destroy(d);
}

/* A disk destroyed while a handle is open lives until that handle closes. */
static void test_mem_destroy_open(void **state)
{
    (void)state;
    struct storage_mem *d;
    assert_int_equal(storage_mem_create(&d), 0);
    struct p4p_storage st;
    assert_int_equal(storage_mem_open(d, &st), 0);
    storage_mem_destroy(d);
    assert_int_equal(OPS(st)->begin(st.ctx), 0);
    append_n(st, 3, 10);
    assert_int_equal(OPS(st)->commit(st.ctx), 0);
    assert_int_equal(OPS(st)->log_count(st.ctx), 3);
    storage_mem_close(&st); /* frees the disk: the leak checker would see otherwise */
}

int main(void)
{
    int failed = storage_suite_run(&mem_backend);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mem_idle),          cmocka_unit_test(test_mem_reclaim),
        cmocka_unit_test(test_mem_per_record),    cmocka_unit_test(test_mem_stale_handle),
        cmocka_unit_test(test_mem_limits),        cmocka_unit_test(test_mem_destroy_open),
        cmocka_unit_test(test_mem_corrupt_items),
    };
    failed += cmocka_run_group_tests_name("storage_mem_only", tests, NULL, NULL);
    return failed;
}
