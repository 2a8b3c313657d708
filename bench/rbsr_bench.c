/*
 * rbsr_bench.c — range-based set reconciliation (engine/negentropy.c, negentropy protocol v1)
 * on two sets of 1,000,000 items that differ by 0, 10, 1,000 and 100,000 items (half missing
 * on each side), without a frame size limit and with 65,536-byte and 4,096-byte frames.
 *
 * Items are random 32-byte ids with random timestamps over 10^6 seconds (a fixed splitmix64
 * seed). Each line is "name value unit": the CPU time to seal (sort + running sums) one
 * 1,000,000-item set, then per case the rounds (one message each way), the bytes each way, the
 * largest message and the CPU time of each side. The run fails only when the have/need lists
 * are not exactly the differences.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "negentropy.h"
#include "p4p/p4p.h"

enum { SET_SIZE = 1000000 };

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void random_item(uint64_t *seed, struct neg_item *it)
{
    it->timestamp = 1700000000 + splitmix64(seed) % 1000000;
    for (int j = 0; j < NEG_ID_LEN; j += 8) {
        uint64_t v = splitmix64(seed);
        memcpy(it->id + j, &v, sizeof(v));
    }
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, NEG_ID_LEN);
}

/* Sorts and checks a reported id list against the expected one (sorted); repeats are allowed
 * (with a frame limit an id can be reported twice, as in the reference). */
static int same_ids(uint8_t *got, size_t count, const uint8_t *want, size_t want_count)
{
    if (count > 1) {
        qsort(got, count, NEG_ID_LEN, id_cmp);
    }
    size_t unique = 0;
    for (size_t i = 0; i < count; i++) {
        if (unique == 0 ||
            memcmp(got + (unique - 1) * NEG_ID_LEN, got + i * NEG_ID_LEN, NEG_ID_LEN) != 0) {
            memmove(got + unique * NEG_ID_LEN, got + i * NEG_ID_LEN, NEG_ID_LEN);
            unique++;
        }
    }
    return unique == want_count && memcmp(got, want, unique * NEG_ID_LEN) == 0;
}

struct sets {
    struct neg_storage a, b;
    uint8_t *only_a, *only_b; /* sorted ids */
    size_t diff_each;
};

/* A and B share SET_SIZE - diff / 2 items and each has diff / 2 of its own. */
static int make_sets(struct sets *s, size_t diff, double *seal_s)
{
    uint64_t seed = 0x5eed0000 + diff;
    s->diff_each = diff / 2;
    neg_storage_init(&s->a, 0);
    neg_storage_init(&s->b, 0);
    s->only_a = malloc(s->diff_each * NEG_ID_LEN + 1);
    s->only_b = malloc(s->diff_each * NEG_ID_LEN + 1);
    if (s->only_a == NULL || s->only_b == NULL) {
        return -1;
    }
    size_t common = SET_SIZE - s->diff_each;
    for (size_t i = 0; i < common + 2 * s->diff_each; i++) {
        struct neg_item it;
        random_item(&seed, &it);
        int in_a = i < common + s->diff_each, in_b = i < common || !in_a;
        if ((in_a && neg_storage_add(&s->a, it.timestamp, it.id) != 0) ||
            (in_b && neg_storage_add(&s->b, it.timestamp, it.id) != 0)) {
            return -1;
        }
        if (in_a && !in_b) {
            memcpy(s->only_a + (i - common) * NEG_ID_LEN, it.id, NEG_ID_LEN);
        } else if (in_b && !in_a) {
            memcpy(s->only_b + (i - common - s->diff_each) * NEG_ID_LEN, it.id, NEG_ID_LEN);
        }
    }
    qsort(s->only_a, s->diff_each, NEG_ID_LEN, id_cmp);
    qsort(s->only_b, s->diff_each, NEG_ID_LEN, id_cmp);
    double t0 = cpu_s();
    int rc = neg_storage_seal(&s->a);
    *seal_s = cpu_s() - t0;
    return rc == 0 ? neg_storage_seal(&s->b) : rc;
}

static void free_sets(struct sets *s)
{
    neg_storage_free(&s->a);
    neg_storage_free(&s->b);
    free(s->only_a);
    free(s->only_b);
}

struct outcome {
    size_t rounds, bytes_up, bytes_down, max_msg, have, need;
    double init_s, resp_s;
};

/* A initiates, B responds, until A is done. */
static int run(const struct sets *s, uint64_t limit, struct outcome *o)
{
    struct neg_options opt = {.frame_size_limit = limit};
    struct neg_session ni, nr;
    struct neg_result r, q = {0};
    const uint8_t *msg;
    size_t len, cap_have = 1024, cap_need = 1024;
    uint8_t *have = malloc(cap_have * NEG_ID_LEN), *need = malloc(cap_need * NEG_ID_LEN);
    memset(o, 0, sizeof(*o));
    if (have == NULL || need == NULL || neg_session_init(&ni, &s->a, &opt) != 0 ||
        neg_session_init(&nr, &s->b, &opt) != 0) {
        return -1;
    }
    double t0 = cpu_s();
    int rc = neg_initiate(&ni, &msg, &len);
    o->init_s += cpu_s() - t0;
    while (rc == 0 && !q.is_done) {
        o->bytes_up += len;
        o->max_msg = len > o->max_msg ? len : o->max_msg;
        t0 = cpu_s();
        rc = neg_reconcile(&nr, msg, len, &r);
        double t1 = cpu_s();
        o->resp_s += t1 - t0;
        if (rc != 0) {
            break;
        }
        o->bytes_down += r.msg_len;
        o->max_msg = r.msg_len > o->max_msg ? r.msg_len : o->max_msg;
        rc = neg_reconcile(&ni, r.msg, r.msg_len, &q);
        o->init_s += cpu_s() - t1;
        o->rounds++;
        if (rc != 0) {
            break;
        }
        while (o->have + q.have_count > cap_have || o->need + q.need_count > cap_need) {
            cap_have *= 2;
            cap_need *= 2;
            have = realloc(have, cap_have * NEG_ID_LEN);
            need = realloc(need, cap_need * NEG_ID_LEN);
            if (have == NULL || need == NULL) {
                return -1;
            }
        }
        if (q.have_count > 0) {
            memcpy(have + o->have * NEG_ID_LEN, q.have, q.have_count * NEG_ID_LEN);
        }
        if (q.need_count > 0) {
            memcpy(need + o->need * NEG_ID_LEN, q.need, q.need_count * NEG_ID_LEN);
        }
        o->have += q.have_count;
        o->need += q.need_count;
        msg = q.msg;
        len = q.msg_len;
    }
    if (rc == 0 && (!same_ids(have, o->have, s->only_a, s->diff_each) ||
                    !same_ids(need, o->need, s->only_b, s->diff_each))) {
        rc = -1;
    }
    free(have);
    free(need);
    neg_session_free(&ni);
    neg_session_free(&nr);
    return rc;
}

int main(void)
{
    static const size_t diffs[] = {0, 10, 1000, 100000};
    static const uint64_t limits[] = {0, 65536, 4096};
    if (sodium_init() < 0) {
        return 1;
    }
    for (size_t d = 0; d < sizeof(diffs) / sizeof(diffs[0]); d++) {
        struct sets s;
        double seal_s;
        if (make_sets(&s, diffs[d], &seal_s) != 0) {
            fprintf(stderr, "rbsr_bench: cannot build the sets\n");
            return 1;
        }
        if (d == 0) {
            printf("rbsr.seal_1m_cpu %.3f s\n", seal_s);
            printf("rbsr.storage_bytes_per_item %.1f B\n",
                   (double)(sizeof(struct neg_item)) + 32.0 / NEG_SUM_STRIDE);
        }
        for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
            struct outcome o;
            char name[64];
            if (run(&s, limits[l], &o) != 0) {
                fprintf(stderr, "rbsr_bench: d=%zu limit=%llu: wrong have/need or error\n",
                        diffs[d], (unsigned long long)limits[l]);
                return 1;
            }
            snprintf(name, sizeof(name), "rbsr.1m_d%zu_frame%llu", diffs[d],
                     (unsigned long long)limits[l]);
            printf("%s.rounds %zu rounds\n", name, o.rounds);
            printf("%s.bytes_up %zu B\n", name, o.bytes_up);
            printf("%s.bytes_down %zu B\n", name, o.bytes_down);
            printf("%s.largest_msg %zu B\n", name, o.max_msg);
            printf("%s.cpu_initiator %.3f ms\n", name, o.init_s * 1e3);
            printf("%s.cpu_responder %.3f ms\n", name, o.resp_s * 1e3);
            fflush(stdout);
        }
        free_sets(&s);
    }
    return 0;
}
