/*
 * test_kill.c — a real process killed with SIGKILL while it writes, many times, at random
 * moments: a p4p node on an SQLite file (synchronous=FULL) publishes updates as fast as it
 * can and reports each id to the parent only after the publish returned, that is after its
 * commit (the acknowledgement). The parent kills it, restarts the node from the file and
 * checks: the store opens (quick_check and every record's checksum), the node replays it,
 * it is the same identity, every acknowledged update is in the log, and a new publish gets a
 * sequence number above every earlier one (none is ever signed twice).
 *
 * The kill moments come from a fixed seed but land wherever the child happens to be: in the
 * middle of a commit, of a checkpoint, of the replay at start. What is checked holds at every
 * one of them.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p4p/p4p.h"
#include "rng.h"
#include "storage_sqlite.h"

#define ROUNDS 40

struct ack {
    uint8_t id[32];
    uint64_t seq;
};

static void rnd(void *ctx, uint8_t *out, size_t len)
{
    sim_rng_bytes(ctx, out, len);
}

static int open_node(const char *path, struct sim_rng *r, struct storage_sqlite **db,
                     p4p_node **node, char *err, size_t cap)
{
    int rc = storage_sqlite_open(path, NULL, db, err, cap);
    if (rc != 0) {
        return rc;
    }
    struct p4p_config c;
    p4p_config_default(&c);
    struct p4p_env env = {.ctx = r, .random = rnd, .storage = storage_sqlite_storage(*db)};
    rc = p4p_node_create(&c, &env, node);
    if (rc != 0) {
        snprintf(err, cap, "node: %s", p4p_strerror(rc));
        storage_sqlite_close(*db);
    }
    return rc;
}

/* The child: publish until killed, reporting each acknowledged update on fd. */
static void child(const char *path, int fd, uint64_t round)
{
    struct sim_rng r;
    sim_rng_derive(&r, 99, "kill-child", round);
    struct storage_sqlite *db;
    p4p_node *node;
    char err[256];
    if (open_node(path, &r, &db, &node, err, sizeof(err)) != 0) {
        fprintf(stderr, "child: %s\n", err);
        _exit(3);
    }
    uint8_t payload[200];
    for (uint64_t k = 0;; k++) {
        memset(payload, (int)k, sizeof(payload));
        struct ack a = {{0}, 0};
        if (p4p_node_publish(node, k, payload, sizeof(payload), a.id) != 0) {
            _exit(4);
        }
        struct p4p_event ev;
        while (p4p_node_poll_event(node, &ev) == 0) {
            a.seq = ev.seq;
        }
        if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a)) { /* atomic: < PIPE_BUF */
            _exit(5);
        }
    }
}

struct idset {
    uint8_t (*ids)[32];
    size_t n, cap;
};

static int collect(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    (void)index;
    struct idset *s = arg;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->ids = realloc(s->ids, s->cap * 32);
        assert_non_null(s->ids);
    }
    assert_int_equal(p4p_record_id(rec, len, s->ids[s->n]), 0);
    s->n++;
    return 0;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static void test_sigkill_loop(void **state)
{
    (void)state;
    char dir[] = "/tmp/p4p-kill-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/node.sqlite", dir);
    struct sim_rng timing;
    sim_rng_derive(&timing, 99, "kill-timing", 0);

    struct ack *acked = NULL;
    size_t n_acked = 0, cap = 0;
    uint8_t pk0[32] = {0};
    uint64_t max_seq = 0, killed_busy = 0;
    for (uint64_t round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child(path, fds[1], round);
        }
        close(fds[1]);
        /* Let it write for 2..120 ms, then pull the plug. */
        uint64_t us = 2000 + sim_rng_below(&timing, 118000);
        struct timespec ts = {0, (long)(us * 1000)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
            fail_msg("round %llu: child exited by itself (status %d)", (unsigned long long)round,
                     status);
        }
        size_t before = n_acked;
        for (;;) {
            if (n_acked == cap) {
                cap = cap ? cap * 2 : 1024;
                acked = realloc(acked, cap * sizeof(*acked));
                assert_non_null(acked);
            }
            ssize_t got = read(fds[0], &acked[n_acked], sizeof(*acked));
            if (got == 0) {
                break;
            }
            assert_int_equal(got, sizeof(*acked));
            n_acked++;
        }
        close(fds[0]);
        killed_busy += n_acked > before; /* killed while writing, not while starting */

        /* Restart from the file. */
        struct sim_rng r;
        sim_rng_derive(&r, 99, "kill-parent", round);
        struct storage_sqlite *db;
        p4p_node *node;
        char err[256] = "";
        if (open_node(path, &r, &db, &node, err, sizeof(err)) != 0) {
            fail_msg("round %llu: restart refused: %s", (unsigned long long)round, err);
        }
        uint8_t pk[32];
        p4p_node_public_key(node, pk);
        if (round == 0) {
            memcpy(pk0, pk, 32);
        }
        assert_memory_equal(pk, pk0, 32);

        struct idset held = {0};
        struct p4p_storage st = storage_sqlite_storage(db);
        assert_int_equal(st.ops->log_scan(st.ctx, 1, collect, &held, NULL), 0);
        struct p4p_held h;
        p4p_node_held(node, &h);
        assert_int_equal(h.count, held.n);
        assert_true(held.n >= n_acked);
        qsort(held.ids, held.n, 32, cmp_id);
        for (size_t k = 0; k < n_acked; k++) {
            if (bsearch(acked[k].id, held.ids, held.n, 32, cmp_id) == NULL) {
                fail_msg("round %llu: acknowledged update seq %llu lost", (unsigned long long)round,
                         (unsigned long long)acked[k].seq);
            }
            if (acked[k].seq > max_seq) {
                max_seq = acked[k].seq;
            }
        }
        free(held.ids);

        /* No sequence number is used twice: the next one is above all acknowledged. */
        struct ack a;
        uint8_t payload[8] = {0};
        assert_int_equal(p4p_node_publish(node, 0, payload, sizeof(payload), a.id), 0);
        struct p4p_event ev;
        assert_int_equal(p4p_node_poll_event(node, &ev), 0);
        assert_true(ev.seq > max_seq);
        a.seq = max_seq = ev.seq;
        if (n_acked == cap) {
            cap *= 2;
            acked = realloc(acked, cap * sizeof(*acked));
            assert_non_null(acked);
        }
        acked[n_acked++] = a;
        p4p_node_destroy(node);
        storage_sqlite_close(db);
    }
    print_message("%d kills (%llu while writing), %zu acknowledged writes, none lost\n", ROUNDS,
                  (unsigned long long)killed_busy, n_acked);
    assert_true(killed_busy > ROUNDS / 4);
    free(acked);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
