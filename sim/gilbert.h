/*
 * gilbert.h — the Gilbert-Elliott channel: bursty packet loss from a two-state Markov chain.
 *
 * Notation (Hasslinger and Hohlfeld, "The Gilbert-Elliott Model for Packet Loss in Real Time
 * Services on the Internet", MMB 2008):
 *     p = P(Good -> Bad),   r = P(Bad -> Good)      per packet (step)
 *     k = P(delivered | Good),   h = P(delivered | Bad)
 * so a packet is lost with probability 1 - k in Good and 1 - h in Bad. The simple Gilbert
 * model is k = 1, h = 0 (every packet in Bad is lost, none in Good); Bernoulli loss is the
 * degenerate case k = h.
 *
 * One step per packet: the packet is lost or delivered according to the current state, then
 * the state moves. Stationary state probabilities pi_G = r / (p + r), pi_B = p / (p + r):
 *     loss rate        = pi_G (1 - k) + pi_B (1 - h)
 *     mean loss burst  = P(loss) / P(delivered, then lost)      (runs of consecutive losses)
 * where P(delivered, then lost) = sum over states x, y of pi_x s_x P(x -> y) (1 - s_y), s the
 * delivery probability; for k = 1, h = 0 this is 1 / r.
 *
 * One struct sim_ge per directed link; its draws come from the sim_rng the caller passes.
 */
#ifndef SIM_GILBERT_H
#define SIM_GILBERT_H

#include <stdint.h>

#include "rng.h"

struct sim_ge_params {
    double p, r, k, h;
};

/* All four in [0, 1] and p + r > 0. 0 or P4P_EINVAL. */
int sim_ge_check(const struct sim_ge_params *g);

/* Stationary loss rate; NAN if the parameters are invalid. */
double sim_ge_loss_rate(const struct sim_ge_params *g);

/* Mean length of a run of consecutive losses; 0 if nothing is ever lost, INFINITY if every
 * packet is lost, NAN if the parameters are invalid. */
double sim_ge_mean_burst(const struct sim_ge_params *g);

struct sim_ge {
    struct sim_ge_params prm;
    int bad; /* current state: 0 Good, 1 Bad */
};

/* Starts the chain in a state drawn from its stationary distribution. 0 or P4P_EINVAL. */
int sim_ge_init(struct sim_ge *g, const struct sim_ge_params *prm, struct sim_rng *r);

/* One packet: 1 if it is lost, 0 if delivered; then the state moves. */
int sim_ge_step(struct sim_ge *g, struct sim_rng *r);

#endif /* SIM_GILBERT_H */
