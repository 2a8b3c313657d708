/*
 * topology.h — the simulator's network graph: who is linked to whom, built from a scenario's
 * topology section (igraph generators) or loaded from an edge-list file, and stored as a
 * compact, read-only CSR (compressed sparse row) structure that scales to millions of nodes.
 *
 * The simulator asks three things of a topology: the neighbours of a node (a contiguous,
 * ascending slice of `adj`), a per-directed-link index (the "slot", the position in `adj`) to
 * hang per-link state on, and optionally a latency per link or a position per node.
 *
 *     node u's neighbours:  adj[off[u] .. off[u+1])        sorted ascending, no duplicates
 *     link u->v:            slot s with adj[s] == v        latency_ns[s] == latency of v->u
 *
 * igraph is used only inside topology.c. Its error handler, warning handler and default RNG
 * are process-global: the first sim_graph_build() installs a handler that records the message
 * and returns (igraph never aborts the process) and a quiet warning handler, replacing whatever
 * was installed before. sim_graph_build() serialises itself with a mutex, but other code in the
 * same process that calls igraph concurrently is not covered.
 */
#ifndef SIM_TOPOLOGY_H
#define SIM_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* sim_graph_slot()'s result when there is no link u->v. */
#define SIM_GRAPH_NO_SLOT UINT64_MAX

/*
 * An undirected simple graph (no self-loops, no multi-edges) in CSR form. All arrays are owned
 * by the struct and released by sim_graph_free(); they stay valid and unchanged until then.
 * Because `off` holds uint32_t, 2 * edges is at most UINT32_MAX.
 */
struct sim_graph {
    uint32_t n;
    uint64_t edges;       /* undirected edge count */
    uint32_t *off;        /* n + 1 offsets into adj; off[n] == 2 * edges */
    uint32_t *adj;        /* 2 * edges neighbour ids; each node's neighbours sorted ascending */
    uint64_t *latency_ns; /* per directed slot (same index as adj), or NULL when the topology
                             gives none; symmetric: latency(u->v) == latency(v->u) */
    double *xy;           /* 2 * n positions in the unit square (x0,y0,x1,y1,...), or NULL */
};

/*
 * Builds cfg->topology for cfg->nodes.count nodes. `seed` seeds igraph's default RNG, so the
 * same (cfg, seed) gives the identical graph. Kinds:
 *   random_regular   every node has `degree` neighbours (count * degree even, degree < count)
 *   erdos_renyi      G(n, p) with p = degree / (count - 1)
 *   barabasi_albert  `m` links per new node, linear preferential attachment, no multi-edges;
 *                    node i < m links to all i earlier nodes
 *   watts_strogatz   ring with degree/2 neighbours each side (degree even, degree < count),
 *                    each edge rewired with probability p, no loops or multi-edges
 *   random_geometric points uniform in the unit square, linked within `radius` (optionally on a
 *                    torus); positions are kept in xy
 *   grid             width x height (must equal count), 4-neighbour, torus = periodic; node
 *                    x + y * width sits at the cell centre ((x + 0.5) / width, (y + 0.5) / height)
 *   file             sim_graph_load_edges(topology.file); its N must equal count
 * Returns 0 and fills *out, or P4P_EINVAL (bad parameters, or igraph refused them), P4P_ENOMEM,
 * or a sim_graph_load_edges() error, with a message in err (may be NULL when errlen is 0).
 * Not reentrant with respect to other igraph users (see the top of this file).
 */
int sim_graph_build(const struct sim_config *cfg, uint64_t seed, struct sim_graph *out, char *err,
                    size_t errlen);

/*
 * Loads an edge-list file: first line "N D E SEED" (N >= 1 nodes, D nominal degree, E edges,
 * generator seed; D and SEED are informational), then exactly E lines "u v latency_ms" with
 * u < v < N and latency_ms a non-negative decimal number ("14", "0.25"; digits below 1 ns are
 * dropped). Fields are separated by spaces or tabs; lines end in "\n" or "\r\n" (the last may
 * lack it); nothing but whitespace may follow the last edge. The whole file is read at once and
 * parsed in place. Returns 0 and fills *out (latency_ns set, xy NULL), or:
 *   P4P_EIO        the file cannot be opened or read ("PATH: cannot open: reason")
 *   P4P_EPARSE     bad syntax: header, numbers, missing or extra edge lines, trailing garbage
 *   P4P_EMALFORMED well-formed but not a simple graph: id out of range, self-loop, u > v,
 *                  duplicate edge, or more edges than N can hold
 *   P4P_ENOMEM
 * with a message "PATH:LINE: what" in err (the first offending line).
 */
int sim_graph_load_edges(const char *path, struct sim_graph *out, char *err, size_t errlen);

/* Releases the arrays and zeroes *g. Safe on a zeroed or already freed graph, and on NULL. */
void sim_graph_free(struct sim_graph *g);

/* Index into adj (and latency_ns) of the directed link u->v, found by binary search in u's
 * sorted range, or SIM_GRAPH_NO_SLOT if there is no such link or u is out of range. */
uint64_t sim_graph_slot(const struct sim_graph *g, uint32_t u, uint32_t v);

/*
 * Connected components: their number (isolated nodes count, an empty graph has 0) and the size
 * of the largest. Returns 0, or P4P_ENOMEM (the out-parameters are then untouched).
 */
int sim_graph_components(const struct sim_graph *g, uint32_t *count, uint32_t *largest);

#endif /* SIM_TOPOLOGY_H */
