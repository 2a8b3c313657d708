/*
 * queue.h — the simulator's pending-event set: a 4-ary min-heap of 24-byte events ordered by
 * (time, insertion sequence), so that events at the same instant run in the order they were
 * scheduled and every run with the same inputs pops the same sequence.
 *
 * One array, grown by doubling and never shrunk: no allocation per event. A pop leaves a
 * "hole" at the root that the next push fills with a single sift-down (the hold pattern of a
 * discrete-event loop: pop one, push one or more), which halves the work of the common case.
 */
#ifndef SIM_QUEUE_H
#define SIM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

/* `key` is (sequence << 8 | kind): unique and increasing in scheduling order, so comparing
 * (time_ns, key) orders ties by insertion. `node` and `arg` are the event's payload. */
struct sim_event {
    uint64_t time_ns;
    uint64_t key;
    uint32_t node;
    uint32_t arg;
};

#define SIM_EVENT_KIND(ev) ((unsigned)((ev)->key & 0xffu))

struct sim_queue {
    struct sim_event *heap;
    size_t count; /* live events, including heap[0] unless has_hole */
    size_t cap;
    uint64_t next_seq;
    int has_hole; /* heap[0] was popped and not yet refilled */
};

int sim_queue_init(struct sim_queue *q, size_t initial_cap);
void sim_queue_free(struct sim_queue *q);

/* Schedules an event; returns 0 or P4P_ENOMEM. */
int sim_queue_push(struct sim_queue *q, uint64_t time_ns, unsigned kind, uint32_t node,
                   uint32_t arg);

/* Removes the earliest event into *out; returns 0, or P4P_EAGAIN when empty. */
int sim_queue_pop(struct sim_queue *q, struct sim_event *out);

/* Pending events. */
static inline size_t sim_queue_size(const struct sim_queue *q)
{
    return q->count - (q->has_hole ? 1u : 0u);
}

/* Bytes held per pending event (for the benchmark's bytes/event figure). */
static inline size_t sim_queue_bytes(const struct sim_queue *q)
{
    return q->cap * sizeof(struct sim_event);
}

#endif /* SIM_QUEUE_H */
