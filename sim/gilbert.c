/*
 * gilbert.c — Gilbert-Elliott loss: closed forms and the per-link sampler. See gilbert.h.
 */
#include "gilbert.h"

#include <math.h>
#include <stddef.h>

#include "p4p/p4p.h"

static int in01(double x)
{
    return x >= 0 && x <= 1;
}

int sim_ge_check(const struct sim_ge_params *g)
{
    if (g == NULL || !in01(g->p) || !in01(g->r) || !in01(g->k) || !in01(g->h) ||
        !(g->p + g->r > 0)) {
        return P4P_EINVAL;
    }
    return 0;
}

double sim_ge_loss_rate(const struct sim_ge_params *g)
{
    if (sim_ge_check(g) != 0) {
        return NAN;
    }
    double pi_b = g->p / (g->p + g->r), pi_g = 1 - pi_b;
    return pi_g * (1 - g->k) + pi_b * (1 - g->h);
}

double sim_ge_mean_burst(const struct sim_ge_params *g)
{
    if (sim_ge_check(g) != 0) {
        return NAN;
    }
    double pi_b = g->p / (g->p + g->r), pi_g = 1 - pi_b;
    double loss = pi_g * (1 - g->k) + pi_b * (1 - g->h);
    if (loss == 0) {
        return 0;
    }
    /* P(delivered at t, lost at t+1): from state x (delivering with s_x) to state y. */
    double lg = 1 - g->k, lb = 1 - g->h;
    double from_g = pi_g * g->k * ((1 - g->p) * lg + g->p * lb);
    double from_b = pi_b * g->h * (g->r * lg + (1 - g->r) * lb);
    double starts = from_g + from_b;
    return starts > 0 ? loss / starts : INFINITY;
}

int sim_ge_init(struct sim_ge *g, const struct sim_ge_params *prm, struct sim_rng *r)
{
    if (g == NULL || r == NULL || sim_ge_check(prm) != 0) {
        return P4P_EINVAL;
    }
    g->prm = *prm;
    g->bad = sim_rng_uniform(r) < prm->p / (prm->p + prm->r);
    return 0;
}

int sim_ge_step(struct sim_ge *g, struct sim_rng *r)
{
    double deliver = g->bad ? g->prm.h : g->prm.k;
    int lost = sim_rng_uniform(r) >= deliver;
    double move = g->bad ? g->prm.r : g->prm.p;
    if (sim_rng_uniform(r) < move) {
        g->bad = !g->bad;
    }
    return lost;
}
