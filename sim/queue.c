/*
 * queue.c — 4-ary min-heap of events with a root hole (see queue.h).
 *
 *              [0]
 *     [1]   [2]   [3]   [4]        children of i: 4i+1 .. 4i+4, parent of i: (i-1)/4
 *
 * A 4-ary heap is half as deep as a binary one and its four children share a cache line or
 * two, which is what makes the sift-down of a pop cheap.
 */
#include "queue.h"

#include <stdlib.h>

#include "p4p/p4p.h"

static inline int ev_less(const struct sim_event *a, const struct sim_event *b)
{
    /* (time, key) as one 128-bit number: a single branch-free comparison. */
    unsigned __int128 x = ((unsigned __int128)a->time_ns << 64) | a->key;
    unsigned __int128 y = ((unsigned __int128)b->time_ns << 64) | b->key;
    return x < y;
}

int sim_queue_init(struct sim_queue *q, size_t initial_cap)
{
    if (initial_cap < 16) {
        initial_cap = 16;
    }
    struct sim_event *heap = malloc(initial_cap * sizeof(*heap));
    if (heap == NULL) {
        return P4P_ENOMEM;
    }
    q->heap = heap;
    q->count = 0;
    q->cap = initial_cap;
    q->next_seq = 0;
    q->has_hole = 0;
    return 0;
}

void sim_queue_free(struct sim_queue *q)
{
    free(q->heap);
    q->heap = NULL;
    q->count = q->cap = 0;
}

/* The root is empty: move the hole down along the path of smallest children to a leaf,
 * then let `ev` rise from there (Floyd's bottom-up variant). A new event is usually later
 * than most pending ones, so it rises little and the per-level comparison with it is saved.
 * The smallest of four children is picked without data-dependent branches. */
static void sift_down_root(struct sim_event *h, size_t n, struct sim_event ev)
{
    size_t i = 0;
    for (;;) {
        size_t c = 4 * i + 1;
        if (c + 3 < n) {
            size_t a = c + (size_t)ev_less(&h[c + 1], &h[c]);
            size_t b = c + 2 + (size_t)ev_less(&h[c + 3], &h[c + 2]);
            size_t best = ev_less(&h[b], &h[a]) ? b : a;
            h[i] = h[best];
            i = best;
            continue;
        }
        if (c < n) {
            size_t best = c;
            for (size_t k = c + 1; k < n; k++) {
                if (ev_less(&h[k], &h[best])) {
                    best = k;
                }
            }
            h[i] = h[best];
            i = best;
        }
        break;
    }
    /* i is now a hole at a leaf: sift ev up from it. */
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!ev_less(&ev, &h[parent])) {
            break;
        }
        h[i] = h[parent];
        i = parent;
    }
    h[i] = ev;
}

static void sift_up(struct sim_event *h, size_t i, struct sim_event ev)
{
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!ev_less(&ev, &h[parent])) {
            break;
        }
        h[i] = h[parent];
        i = parent;
    }
    h[i] = ev;
}

int sim_queue_push(struct sim_queue *q, uint64_t time_ns, unsigned kind, uint32_t node,
                   uint32_t arg)
{
    struct sim_event ev = {
        .time_ns = time_ns,
        .key = (q->next_seq++ << 8) | (kind & 0xffu),
        .node = node,
        .arg = arg,
    };
    if (q->has_hole) {
        /* The root is free: the new event enters there and sinks. */
        q->has_hole = 0;
        sift_down_root(q->heap, q->count, ev);
        return 0;
    }
    if (q->count == q->cap) {
        size_t cap = q->cap * 2;
        struct sim_event *heap = realloc(q->heap, cap * sizeof(*heap));
        if (heap == NULL) {
            return P4P_ENOMEM;
        }
        q->heap = heap;
        q->cap = cap;
    }
    sift_up(q->heap, q->count++, ev);
    return 0;
}

int sim_queue_pop(struct sim_queue *q, struct sim_event *out)
{
    if (q->has_hole) {
        /* Two pops in a row: close the previous hole with the last element. */
        q->has_hole = 0;
        q->count--;
        if (q->count > 0) {
            sift_down_root(q->heap, q->count, q->heap[q->count]);
        }
    }
    if (q->count == 0) {
        return P4P_EAGAIN;
    }
    *out = q->heap[0];
    if (q->count == 1) {
        q->count = 0;
    } else {
        q->has_hole = 1;
    }
    return 0;
}
