/*
 * disk.c — per-node stores for the simulator (see disk.h).
 */
#include "disk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_mem.h"
#include "storage_sqlite.h"

struct disk {
    struct storage_mem *mem;       /* memory backend */
    struct storage_sqlite *sql;    /* sqlite backend */
    struct p4p_storage handle;     /* the live handle, ops == NULL when none */
    struct p4p_storage_stats past; /* counters as of the last crash */
};

struct sim_disks {
    enum sim_storage_backend backend;
    char dir[SIM_PATH_MAX];
    uint32_t n;
    struct disk *d;
};

static void node_path(const struct sim_disks *s, uint32_t i, const char *suffix, char *out,
                      size_t cap)
{
    snprintf(out, cap, "%s/node-%u.sqlite%s", s->dir, i, suffix);
}

int sim_disks_create(const struct sim_config *cfg, uint32_t n, struct sim_disks **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    if (cfg->storage.backend == SIM_STORAGE_NONE) {
        return 0;
    }
    struct sim_disks *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->d = calloc(n, sizeof(*s->d))) == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory for %u stores", n);
        return P4P_ENOMEM;
    }
    s->backend = cfg->storage.backend;
    s->n = n;
    memcpy(s->dir, cfg->storage.dir, sizeof(s->dir));
    if (s->dir[0] != '\0') {
        if (mkdir(s->dir, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "storage.dir: cannot create '%s': %s", s->dir, strerror(errno));
            sim_disks_destroy(s);
            return P4P_EIO;
        }
        for (uint32_t i = 0; i < n; i++) {
            static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
            for (size_t k = 0; k < 4; k++) {
                char path[SIM_PATH_MAX + 64];
                node_path(s, i, suffixes[k], path, sizeof(path));
                if (unlink(path) != 0 && errno != ENOENT) {
                    snprintf(err, errlen, "storage.dir: cannot remove '%s': %s", path,
                             strerror(errno));
                    sim_disks_destroy(s);
                    return P4P_EIO;
                }
            }
        }
    }
    *out = s;
    return 0;
}

static void add_stats(struct p4p_storage_stats *a, const struct p4p_storage_stats *b)
{
    a->commits += b->commits;
    a->aborts += b->aborts;
    a->records += b->records;
    a->logical_bytes += b->logical_bytes;
    a->written_bytes += b->written_bytes;
    a->stored_bytes = b->stored_bytes; /* a level, not a count */
    a->corrupt += b->corrupt;
}

void sim_disks_crash(struct sim_disks *s, uint32_t i)
{
    struct disk *d = &s->d[i];
    if (d->handle.ops == NULL) {
        return;
    }
    /* Keep the counters for while the node is down. A new SQLite connection starts them from
     * zero, so its counts add up; the memory backend counts per disk, so they carry on. */
    struct p4p_storage_stats st;
    d->handle.ops->stats(d->handle.ctx, &st);
    if (s->backend == SIM_STORAGE_SQLITE) {
        add_stats(&d->past, &st);
    } else {
        d->past = st;
    }
    if (s->backend == SIM_STORAGE_MEMORY) {
        storage_mem_close(&d->handle);
    } else if (s->dir[0] != '\0') {
        storage_sqlite_close(d->sql); /* a file: the process dies, its connection with it */
        d->sql = NULL;
    } else {
        /* The database lives on, the transaction does not. Should this fail, the restart
         * that follows fails or its checks do, and the run stops saying so. */
        (void)storage_sqlite_crash(d->sql);
    }
    d->handle.ops = NULL;
}

int sim_disks_open(struct sim_disks *s, uint32_t i, struct p4p_storage *out, char *err,
                   size_t errlen)
{
    struct disk *d = &s->d[i];
    sim_disks_crash(s, i);
    int rc = 0;
    if (s->backend == SIM_STORAGE_MEMORY) {
        if (d->mem == NULL) {
            rc = storage_mem_create(&d->mem);
        }
        rc = rc ? rc : storage_mem_open(d->mem, &d->handle);
        if (rc != 0) {
            snprintf(err, errlen, "node %u: memory store: %s", i, p4p_strerror(rc));
        }
    } else {
        /* Simulated power loss is the handle's, not the OS's: no fsync needed. */
        struct storage_sqlite_opts o = {.synchronous_normal = 1};
        if (d->sql == NULL) {
            char path[SIM_PATH_MAX + 64];
            if (s->dir[0] != '\0') {
                node_path(s, i, "", path, sizeof(path));
            } else {
                snprintf(path, sizeof(path), ":memory:");
            }
            char msg[256] = "";
            rc = storage_sqlite_open(path, &o, &d->sql, msg, sizeof(msg));
            if (rc != 0) {
                snprintf(err, errlen, "node %u: %s", i, msg);
                return rc;
            }
        }
        d->handle = storage_sqlite_storage(d->sql);
    }
    *out = d->handle;
    return rc;
}

void sim_disks_fail_after(struct sim_disks *s, uint32_t i, uint64_t writes)
{
    struct disk *d = &s->d[i];
    if (d->handle.ops == NULL) {
        return;
    }
    if (s->backend == SIM_STORAGE_MEMORY) {
        storage_mem_fail_after(&d->handle, writes);
    } else {
        storage_sqlite_fail_after(d->sql, writes);
    }
}

static int held_one(void *arg, uint64_t index, const uint8_t *rec, size_t len)
{
    (void)index;
    uint8_t id[32];
    if (p4p_record_id(rec, len, id) != 0) {
        return P4P_EMALFORMED;
    }
    p4p_held_add(arg, id);
    return 0;
}

int sim_disks_held(struct sim_disks *s, uint32_t i, struct p4p_held *out)
{
    *out = (struct p4p_held){0};
    const struct p4p_storage *h = &s->d[i].handle;
    if (h->ops == NULL) {
        return P4P_EINVAL;
    }
    return h->ops->log_scan(h->ctx, 1, held_one, out, NULL);
}

void sim_disks_stats(const struct sim_disks *s, uint32_t i, struct p4p_storage_stats *out)
{
    const struct disk *d = &s->d[i];
    *out = d->past;
    if (d->handle.ops != NULL) {
        struct p4p_storage_stats st;
        d->handle.ops->stats(d->handle.ctx, &st);
        if (s->backend == SIM_STORAGE_SQLITE) {
            add_stats(out, &st);
        } else {
            *out = st;
        }
    }
}

size_t sim_disks_memory(const struct sim_disks *s)
{
    size_t total = sizeof(*s) + (size_t)s->n * sizeof(*s->d);
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->d[i].mem != NULL) {
            total += storage_mem_memory(s->d[i].mem);
        }
    }
    return total;
}

void sim_disks_destroy(struct sim_disks *s)
{
    if (s == NULL) {
        return;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        sim_disks_crash(s, i);
        storage_mem_destroy(s->d[i].mem);
        storage_sqlite_close(s->d[i].sql);
    }
    free(s->d);
    free(s);
}
