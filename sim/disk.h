/*
 * disk.h — the simulated nodes' stores: one per node, of the scenario's storage.backend, each
 * outliving the node that uses it the way a flash chip outlives a crash.
 *
 *   memory  storage/storage_mem.c, a compact store in RAM per node
 *   sqlite  storage/storage_sqlite.c, an in-memory database per node, or with storage.dir a
 *           file per node (dir/node-N.sqlite; files of that name from an earlier run are
 *           removed when the world is built)
 *
 * A crash drops the node's handle: whatever its open transaction held is lost, as on power
 * loss. The restart opens a new handle, which starts a new epoch and so fences the old one.
 */
#ifndef SIM_DISK_H
#define SIM_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "p4p/p4p.h"

struct sim_disks;

/* NULL *out (and 0) when the scenario has no storage. */
int sim_disks_create(const struct sim_config *cfg, uint32_t n, struct sim_disks **out, char *err,
                     size_t errlen);
void sim_disks_destroy(struct sim_disks *d);

/* Opens node i's store, creating it on first use; the handle is valid until the next crash or
 * open of the same node. */
int sim_disks_open(struct sim_disks *d, uint32_t i, struct p4p_storage *out, char *err,
                   size_t errlen);
/* Node i died: its handle is gone, and its open transaction with it. */
void sim_disks_crash(struct sim_disks *d, uint32_t i);
/* The n-th write from now on node i's handle fails, and every one after (0 = never). */
void sim_disks_fail_after(struct sim_disks *d, uint32_t i, uint64_t writes);

/* The update digest of what node i's log holds, rebuilt from the records alone. 0, or the
 * scan's error. */
int sim_disks_held(struct sim_disks *d, uint32_t i, struct p4p_held *out);

/* Counters of node i's store, summed over its handles; heap bytes of all stores. */
void sim_disks_stats(const struct sim_disks *d, uint32_t i, struct p4p_storage_stats *out);
size_t sim_disks_memory(const struct sim_disks *d);

#endif /* SIM_DISK_H */
