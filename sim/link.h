/*
 * link.h — the interface every link model implements, and the first model, `p2p`.
 *
 * A link model decides the fate of each frame a node sends: who receives it, when, and what
 * is lost and why. The world hands it every frame a node emits; the model calls
 * sim_world_arrive() once per receiver (scheduling the arrival) and counts the rest. Models
 * for radios (LoRa duty-cycle ledger -> channel access/collisions -> loss -> delay, BLE,
 * Wi-Fi) plug in through the same two functions.
 *
 * p2p: wired point-to-point links along the topology's edges. Per directed link: latency
 * (the topology's, else link.latency) plus uniform jitter, a transmitter of link.bandwidth
 * with a FIFO queue of link.queue bytes (tail drop), and Bernoulli loss link.loss. Jitter is
 * drawn per frame, so, as with netem, frames on one link can overtake each other. A frame to
 * P4P_ADDR_BROADCAST goes to every neighbour.
 */
#ifndef SIM_LINK_H
#define SIM_LINK_H

#include <stdint.h>

#include "config.h"
#include "p4p/p4p.h"
#include "topology.h"

struct sim_world;

#define SIM_LINK_STATS(X)                                                                          \
    X(frames_sent)                                                                                 \
    X(bytes_sent)                                                                                  \
    X(lost_loss)                                                                                   \
    X(lost_queue)                                                                                  \
    X(lost_mtu)                                                                                    \
    X(lost_no_link)

struct sim_link_stats {
#define SIM_LINK_FIELD_(name) uint64_t name;
    SIM_LINK_STATS(SIM_LINK_FIELD_)
#undef SIM_LINK_FIELD_
};

struct sim_link_model;

struct sim_link_ops {
    const char *name;
    void (*send)(struct sim_link_model *m, struct sim_world *w, uint32_t src,
                 const struct p4p_frame *f, uint64_t now_ns);
    void (*destroy)(struct sim_link_model *m);
};

struct sim_link_model {
    const struct sim_link_ops *ops;
    struct sim_link_stats stats;
};

/* The p2p model over graph g (which must outlive it); its loss and jitter draws come from
 * the stream ("link", 0) of `seed`. */
int sim_link_p2p_create(const struct sim_config *cfg, const struct sim_graph *g, uint64_t seed,
                        struct sim_link_model **out);

/* Implemented by the world: schedule the arrival of a copy of f at dst. */
void sim_world_arrive(struct sim_world *w, uint32_t dst, uint64_t at_ns, uint32_t src,
                      const struct p4p_frame *f);

#endif /* SIM_LINK_H */
