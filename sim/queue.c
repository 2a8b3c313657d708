/*
 * queue.c — the pending-event set as a radix heap on the event time (see queue.h).
 *
 * Every pending event is at or after `last_ns` (the time of the last pop). Times are read as
 * sixteen 4-bit digits; an event is kept in the bucket of the highest digit (level) in which
 * its time differs from last_ns, and of its value there, which is larger than last_ns's:
 *
 *   last_ns  = 0x...5 3 7          bucket 0:            0x...5 3 7   (equal)
 *                                  level 0, digit 8..f: 0x...5 3 8 .. 0x...5 3 f
 *                                  level 1, digit 4..f: 0x...5 4 x .. 0x...5 f x
 *                                  level 2, digit 6..f: 0x...6 x x .. ...
 *
 * Buckets in index order (0, then level by level, digit by digit) hold ever later times. A
 * pop takes the front of bucket 0. When bucket 0 is empty it takes the first non-empty bucket
 * (a bitmap, count-trailing-zeros), sets last_ns to that bucket's earliest time (tracked on
 * insertion) and moves its events, in order, into the buckets below it, which are all empty
 * then; the buckets above keep their meaning. If the bucket holds one time only, its chain
 * simply becomes bucket 0. An event moves only downwards, at most once per level: 4.1 times
 * per event in bench/queue_bench (8.4 with 1-bit digits, the classic radix heap; 17 against
 * 26 million events/s) and 1.1 times in the flood benchmark, and every move reads and writes
 * whole blocks sequentially. Wider digits move less but hold more partly filled blocks
 * (6 bits: 2.8 moves, 33 bytes/event in bench/queue_bench, over the budget of 32).
 *
 * Ties: events with the same time always share a bucket, pushes append the largest sequence
 * number so far, and moves keep the order within a bucket. So within a bucket events of equal
 * time stay in sequence order, bucket 0 is FIFO, and pops come out in (time, key) order
 * without comparing keys. (Keying the buckets on the 128-bit (time, key) instead would spread
 * every tie over the sequence bits: the flood benchmark pops 7,000,022 events at only 2,130
 * distinct times.)
 *
 * Memory: a bucket is a chain of SIM_QUEUE_BLOCK_EVENTS-event blocks, full except at its
 * ends; empty blocks go to one free list and are reused before anything is allocated. Blocks
 * are carved from slabs that are freed only by sim_queue_free(). A pop may need fresh blocks
 * while it moves a bucket, and a pop cannot fail, so a push keeps enough blocks held for the
 * worst case (blocks_needed()).
 */
#include "queue.h"

#include <stdio.h>
#include <stdlib.h>

#include "p4p/p4p.h"

/* 64 events (1.5 KiB) per block: a little faster than 16 or 32 in bench/queue_bench, and
 * 128 is no faster but holds 31 instead of 27 bytes/event there. */
#define SIM_QUEUE_BLOCK_EVENTS 64

/* Buckets that can be non-empty at once: bucket 0, and per level the digits above last_ns's. */
#define LIVE_BUCKETS (1 + SIM_QUEUE_LEVELS * ((1u << SIM_QUEUE_DIGIT_BITS) - 1))

struct sim_qblock {
    struct sim_qblock *next;
    struct sim_event ev[SIM_QUEUE_BLOCK_EVENTS];
};

struct sim_qslab {
    struct sim_qslab *next;
    size_t blocks;
    struct sim_qblock block[];
};

/* Always on: a broken invariant here would silently reorder or lose events. */
#define QUEUE_ASSERT(cond, msg)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: sim_queue: %s\n", __FILE__, __LINE__, (msg));                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Blocks that can be in use with `count` events pending, at any moment of a push or pop:
 * full blocks hold distinct events (count / B of them); each non-empty bucket has at most one
 * partly filled tail, bucket 0 also a partly read head, and a bucket being moved (detached,
 * its own bucket empty or not its target) one partly read block. */
static size_t blocks_needed(size_t count)
{
    return count / SIM_QUEUE_BLOCK_EVENTS + LIVE_BUCKETS + 2;
}

/* The level of the highest digit in which two different times differ. */
static inline unsigned level_of(uint64_t x)
{
    return (63u - (unsigned)__builtin_clzll(x)) / SIM_QUEUE_DIGIT_BITS;
}

/* The bucket of time_ns >= last_ns. */
static inline unsigned bucket_of(uint64_t time_ns, uint64_t last_ns)
{
    uint64_t x = time_ns ^ last_ns;
    if (x == 0) {
        return 0;
    }
    unsigned level = level_of(x);
    unsigned digit =
        (unsigned)(time_ns >> (level * SIM_QUEUE_DIGIT_BITS)) & ((1u << SIM_QUEUE_DIGIT_BITS) - 1);
    return 1 + (level << SIM_QUEUE_DIGIT_BITS) + digit;
}

/* Adds a slab of `blocks` blocks to the free list; returns 0 or P4P_ENOMEM. */
static int add_slab(struct sim_queue *q, size_t blocks)
{
    if (blocks > (SIZE_MAX - sizeof(struct sim_qslab)) / sizeof(struct sim_qblock)) {
        return P4P_ENOMEM;
    }
    size_t bytes = sizeof(struct sim_qslab) + blocks * sizeof(struct sim_qblock);
    struct sim_qslab *s = malloc(bytes);
    if (s == NULL) {
        return P4P_ENOMEM;
    }
    s->next = q->slabs;
    s->blocks = blocks;
    q->slabs = s;
    /* Linked so that the first block of the slab is taken first. */
    for (size_t i = blocks; i-- > 0;) {
        s->block[i].next = q->free_blocks;
        q->free_blocks = &s->block[i];
    }
    q->blocks_held += blocks;
    q->bytes_held += bytes;
    return 0;
}

/* Ensures blocks_needed(count) blocks are held, growing by at least an eighth so that the
 * number of slabs stays logarithmic while the memory held stays close to what is needed. */
static int reserve(struct sim_queue *q, size_t count)
{
    size_t need = blocks_needed(count);
    if (q->blocks_held >= need) {
        return 0;
    }
    size_t grow = need - q->blocks_held;
    if (grow < q->blocks_held / 8) {
        grow = q->blocks_held / 8;
    }
    return add_slab(q, grow);
}

static inline struct sim_qblock *take_block(struct sim_queue *q)
{
    struct sim_qblock *blk = q->free_blocks;
    QUEUE_ASSERT(blk != NULL, "no free block (blocks_needed() is wrong)");
    q->free_blocks = blk->next;
    blk->next = NULL;
    return blk;
}

static inline void give_block(struct sim_queue *q, struct sim_qblock *blk)
{
    blk->next = q->free_blocks;
    q->free_blocks = blk;
}

/* Appends ev to bucket i (its time must belong there). */
static inline void append(struct sim_queue *q, unsigned i, const struct sim_event *ev)
{
    struct sim_qbucket *b = &q->b[i];
    if (b->head == NULL) {
        struct sim_qblock *blk = take_block(q);
        b->head = b->tail = blk;
        b->tail_len = 0;
        b->min_ns = ev->time_ns;
        b->one_time = 1;
        if (i > 0) {
            q->nonempty[(i - 1) / 64] |= 1ull << ((i - 1) % 64);
        } else {
            q->head0_pos = 0;
        }
    } else {
        if (b->tail_len == SIM_QUEUE_BLOCK_EVENTS) {
            struct sim_qblock *blk = take_block(q);
            b->tail->next = blk;
            b->tail = blk;
            b->tail_len = 0;
        }
        b->one_time &= ev->time_ns == b->min_ns;
        if (ev->time_ns < b->min_ns) {
            b->min_ns = ev->time_ns;
        }
    }
    b->tail->ev[b->tail_len++] = *ev;
}

/* Empties bucket i and returns its contents (the caller moves them and frees the blocks). */
static struct sim_qbucket detach(struct sim_queue *q, unsigned i)
{
    struct sim_qbucket src = q->b[i];
    q->b[i].head = q->b[i].tail = NULL;
    if (i > 0) {
        q->nonempty[(i - 1) / 64] &= ~(1ull << ((i - 1) % 64));
    }
    return src;
}

/* Appends every event of a detached bucket, in order, to the bucket its time now belongs to,
 * releasing each source block once it has been read. */
static void redistribute(struct sim_queue *q, const struct sim_qbucket *src, uint32_t pos)
{
    struct sim_qblock *blk = src->head;
    while (blk != NULL) {
        struct sim_qblock *next = blk->next;
        uint32_t end = next == NULL ? src->tail_len : SIM_QUEUE_BLOCK_EVENTS;
        if (next != NULL) {
            __builtin_prefetch(next);
        }
        for (uint32_t k = pos; k < end; k++) {
            append(q, bucket_of(blk->ev[k].time_ns, q->last_ns), &blk->ev[k]);
        }
        give_block(q, blk);
        blk = next;
        pos = 0;
    }
}

/* Makes bucket 0 non-empty: the first non-empty bucket is redistributed around its earliest
 * time. Requires count > 0. */
static void refill(struct sim_queue *q)
{
    unsigned w = 0;
    while (w < SIM_QUEUE_MAP_WORDS && q->nonempty[w] == 0) {
        w++;
    }
    QUEUE_ASSERT(w < SIM_QUEUE_MAP_WORDS, "events counted but no bucket holds any");
    unsigned i = w * 64 + (unsigned)__builtin_ctzll(q->nonempty[w]) + 1;
    struct sim_qbucket src = detach(q, i);
    q->last_ns = src.min_ns;
    if (src.one_time) {
        /* All at one time (a common case: ties, or a single event): the chain becomes
         * bucket 0 as it is, in order, without moving an event. */
        q->b[0] = src;
        q->head0_pos = 0;
    } else {
        redistribute(q, &src, 0);
    }
}

/* A push earlier than last_ns makes it the new last_ns. If the two first differ at level L,
 * the events of bucket 0 and of the levels below L all move to level L (at last_ns's old
 * digit there, a bucket that was empty); the buckets of level L and above keep their events,
 * which differ from the new time exactly where they differed from the old one. */
static void rebase(struct sim_queue *q, uint64_t time_ns)
{
    unsigned top = 1 + (level_of(time_ns ^ q->last_ns) << SIM_QUEUE_DIGIT_BITS);
    q->last_ns = time_ns;
    for (unsigned i = 0; i < top; i++) {
        if (q->b[i].head != NULL) {
            uint32_t pos = i == 0 ? q->head0_pos : 0;
            struct sim_qbucket src = detach(q, i);
            redistribute(q, &src, pos);
        }
    }
}

int sim_queue_init(struct sim_queue *q, size_t initial_cap)
{
    struct sim_queue fresh = {0};
    if (add_slab(&fresh, blocks_needed(initial_cap)) != 0) {
        return P4P_ENOMEM;
    }
    *q = fresh;
    return 0;
}

void sim_queue_free(struct sim_queue *q)
{
    struct sim_qslab *s = q->slabs;
    while (s != NULL) {
        struct sim_qslab *next = s->next;
        free(s);
        s = next;
    }
    *q = (struct sim_queue){0};
}

int sim_queue_push(struct sim_queue *q, uint64_t time_ns, unsigned kind, uint32_t node,
                   uint32_t arg)
{
    if (reserve(q, q->count + 1) != 0) {
        return P4P_ENOMEM;
    }
    if (time_ns < q->last_ns) {
        rebase(q, time_ns);
    }
    struct sim_event ev = {
        .time_ns = time_ns,
        .key = (q->next_seq++ << 8) | (kind & 0xffu),
        .node = node,
        .arg = arg,
    };
    append(q, bucket_of(time_ns, q->last_ns), &ev);
    q->count++;
    return 0;
}

int sim_queue_pop(struct sim_queue *q, struct sim_event *out)
{
    if (q->count == 0) {
        return P4P_EAGAIN;
    }
    struct sim_qbucket *b = &q->b[0];
    if (b->head == NULL) {
        refill(q);
    }
    struct sim_qblock *blk = b->head;
    *out = blk->ev[q->head0_pos++];
    if (blk == b->tail) {
        if (q->head0_pos == b->tail_len) {
            give_block(q, blk);
            b->head = b->tail = NULL;
        }
    } else if (q->head0_pos == SIM_QUEUE_BLOCK_EVENTS) {
        b->head = blk->next;
        q->head0_pos = 0;
        give_block(q, blk);
    }
    q->count--;
    return 0;
}

uint64_t sim_queue_peek_time(const struct sim_queue *q)
{
    if (q->count == 0) {
        return UINT64_MAX;
    }
    if (q->b[0].head != NULL) {
        return q->last_ns;
    }
    unsigned w = 0;
    while (q->nonempty[w] == 0) {
        w++;
    }
    return q->b[w * 64 + (unsigned)__builtin_ctzll(q->nonempty[w]) + 1].min_ns;
}
