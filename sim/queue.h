/*
 * queue.h — the simulator's pending-event set: 24-byte events popped in (time, insertion
 * sequence) order, so that events at the same instant run in the order they were scheduled
 * and every run with the same inputs pops the same sequence.
 *
 * It is a radix heap on the 64-bit time with 4-bit digits (a monotone priority queue, see
 * queue.c): events are kept in buckets by the highest digit in which their time differs from
 * the last popped time, and a pop moves only the events of the earliest bucket, each to a
 * lower bucket, reading and writing them sequentially. So a queue of millions of events does
 * not miss the cache on every pop as a binary or 4-ary heap does, and events at one instant
 * (common: link latencies are whole milliseconds) are popped without being compared.
 *
 * Events live in fixed-size blocks recycled through a free list; memory grows in slabs and is
 * returned only by sim_queue_free(), so a running simulation does not allocate per event.
 * A push may be earlier than the last pop (e.g. a publish scheduled between two
 * sim_world_run() calls, the first of which popped an event after its end and put it back):
 * the order is still exact, at a cost proportional to the events pending near that time.
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

/* Bucket 0 holds the events at exactly last_ns; bucket 1 + 16 * level + digit those whose
 * time first differs from last_ns in 4-bit digit `level` (0 = lowest), where it is `digit`. */
#define SIM_QUEUE_DIGIT_BITS 4
#define SIM_QUEUE_LEVELS     (64 / SIM_QUEUE_DIGIT_BITS)
#define SIM_QUEUE_BUCKETS    (1 + (SIM_QUEUE_LEVELS << SIM_QUEUE_DIGIT_BITS))
#define SIM_QUEUE_MAP_WORDS  ((SIM_QUEUE_BUCKETS - 1 + 63) / 64)

struct sim_qblock; /* a fixed-size block of events (queue.c) */
struct sim_qslab;  /* one allocation of blocks (queue.c) */

/* One bucket: a FIFO chain of blocks, all full but the tail (bucket 0 is also read from the
 * front, at sim_queue.head0_pos). Empty iff head == NULL. 32 bytes: two buckets a line. */
struct sim_qbucket {
    struct sim_qblock *head, *tail;
    uint64_t min_ns;   /* earliest time in the bucket */
    uint32_t tail_len; /* events in the tail block */
    uint32_t one_time; /* 1 while every event in the bucket is at min_ns */
};

/* Internal state, caller-allocated; use only the functions below. */
struct sim_queue {
    uint64_t last_ns; /* no pending event is earlier; buckets are relative to it */
    uint64_t nonempty[SIM_QUEUE_MAP_WORDS]; /* bit i-1 set iff bucket i >= 1 is not empty */
    size_t count;                           /* pending events */
    uint64_t next_seq;
    uint32_t head0_pos; /* events already popped from bucket 0's head block */
    struct sim_qblock *free_blocks;
    struct sim_qslab *slabs;
    size_t blocks_held; /* blocks in all slabs, in use or free */
    size_t bytes_held;  /* bytes of all slabs */
    struct sim_qbucket b[SIM_QUEUE_BUCKETS];
};

/* Prepares an empty queue with room for `initial_cap` events; returns 0 or P4P_ENOMEM (and
 * leaves *q untouched). */
int sim_queue_init(struct sim_queue *q, size_t initial_cap);

/* Frees all memory, pending events included; *q may then be initialised again. */
void sim_queue_free(struct sim_queue *q);

/* Schedules an event; returns 0 or P4P_ENOMEM (the queue is then unchanged). */
int sim_queue_push(struct sim_queue *q, uint64_t time_ns, unsigned kind, uint32_t node,
                   uint32_t arg);

/* Removes the earliest event into *out; returns 0, or P4P_EAGAIN when empty. Never
 * allocates: pushes keep enough memory for any pop. */
int sim_queue_pop(struct sim_queue *q, struct sim_event *out);

/* The time of the earliest pending event, or UINT64_MAX when there is none. */
uint64_t sim_queue_peek_time(const struct sim_queue *q);

/* Pending events. */
static inline size_t sim_queue_size(const struct sim_queue *q)
{
    return q->count;
}

/* Bytes of memory the queue holds (for the benchmark's bytes/event figure). */
static inline size_t sim_queue_bytes(const struct sim_queue *q)
{
    return q->bytes_held;
}

#endif /* SIM_QUEUE_H */
