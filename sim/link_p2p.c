/*
 * link_p2p.c — the p2p link model (see link.h).
 *
 *   send(src -> dst, len) at now
 *     no edge src-dst            -> lost_no_link
 *     len > mtu                  -> lost_mtu
 *     queue would exceed limit   -> lost_queue     (bytes waiting = (busy - now) * bw)
 *     Bernoulli(loss)            -> lost_loss      (the frame still used the transmitter)
 *     arrive = max(now, busy) + len*8/bw + latency + U[0, jitter]
 */
#include <stdlib.h>

#include "gilbert.h"
#include "link.h"
#include "rng.h"

struct p2p {
    struct sim_link_model base;
    const struct sim_graph *g;
    uint64_t latency_ns, jitter_ns, bandwidth_bps, queue_bytes;
    uint32_t mtu;
    double loss;
    struct sim_ge_params ge; /* burst loss when ge.p > 0 */
    uint8_t *ge_bad;         /* per directed slot: the Gilbert-Elliott state; NULL without */
    uint64_t *busy_until;    /* per directed slot; NULL when bandwidth is unlimited */
    uint64_t *latency;       /* per directed slot, drawn (link.latency_max); else NULL */
    struct sim_rng rng;
};

static void p2p_one(struct p2p *m, struct sim_world *w, uint32_t src, uint64_t slot,
                    const struct p4p_frame *f, uint64_t now)
{
    struct sim_link_stats *st = &m->base.stats;
    uint64_t depart = now;
    if (m->busy_until != NULL) {
        uint64_t busy = m->busy_until[slot] > now ? m->busy_until[slot] : now;
        if (m->queue_bytes > 0) {
            /* Bytes still waiting in front of this frame. */
            double waiting = (double)(busy - now) * (double)m->bandwidth_bps / 8e9;
            if (waiting + (double)f->len > (double)m->queue_bytes) {
                st->lost_queue++;
                return;
            }
        }
        uint64_t tx =
            ((uint64_t)f->len * 8u * 1000000000u + m->bandwidth_bps - 1) / m->bandwidth_bps;
        depart = busy + tx;
        m->busy_until[slot] = depart;
    }
    st->frames_sent++;
    st->bytes_sent += f->len;
    if (m->ge_bad != NULL) {
        struct sim_ge ge = {m->ge, m->ge_bad[slot]};
        int lost = sim_ge_step(&ge, &m->rng);
        m->ge_bad[slot] = (uint8_t)ge.bad;
        if (lost) {
            st->lost_loss++;
            return;
        }
    } else if (m->loss > 0 && sim_rng_uniform(&m->rng) < m->loss) {
        st->lost_loss++;
        return;
    }
    uint64_t at = depart + (m->g->latency_ns ? m->g->latency_ns[slot]
                            : m->latency     ? m->latency[slot]
                                             : m->latency_ns);
    if (m->jitter_ns > 0) {
        at += sim_rng_below(&m->rng, m->jitter_ns + 1);
    }
    sim_world_arrive(w, m->g->adj[slot], at, src, f);
}

static void p2p_send(struct sim_link_model *base, struct sim_world *w, uint32_t src,
                     const struct p4p_frame *f, uint64_t now)
{
    struct p2p *m = (struct p2p *)base;
    if (f->len > m->mtu) {
        base->stats.lost_mtu++;
        return;
    }
    if (f->peer == P4P_ADDR_BROADCAST) {
        for (uint64_t s = m->g->off[src]; s < m->g->off[src + 1]; s++) {
            p2p_one(m, w, src, s, f, now);
        }
        return;
    }
    uint64_t slot = f->peer < m->g->n ? sim_graph_slot(m->g, src, f->peer) : UINT64_MAX;
    if (slot == UINT64_MAX) {
        base->stats.lost_no_link++;
        return;
    }
    p2p_one(m, w, src, slot, f, now);
}

static void p2p_destroy(struct sim_link_model *base)
{
    struct p2p *m = (struct p2p *)base;
    free(m->busy_until);
    free(m->ge_bad);
    free(m->latency);
    free(m);
}

static const struct sim_link_ops p2p_ops = {
    .name = "p2p",
    .send = p2p_send,
    .destroy = p2p_destroy,
};

int sim_link_p2p_create(const struct sim_config *cfg, const struct sim_graph *g, uint64_t seed,
                        struct sim_link_model **out)
{
    struct p2p *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return P4P_ENOMEM;
    }
    m->base.ops = &p2p_ops;
    m->g = g;
    m->latency_ns = cfg->link.latency_ns;
    m->jitter_ns = cfg->link.jitter_ns;
    m->bandwidth_bps = cfg->link.bandwidth_bps;
    m->queue_bytes = cfg->link.queue_bytes;
    m->mtu = cfg->link.mtu;
    m->loss = cfg->link.loss;
    if (m->bandwidth_bps > 0) {
        m->busy_until = calloc(g->off[g->n] > 0 ? g->off[g->n] : 1, sizeof(uint64_t));
        if (m->busy_until == NULL) {
            free(m);
            return P4P_ENOMEM;
        }
    }
    sim_rng_derive(&m->rng, seed, "link", 0);
    if (cfg->link.latency_max_ns > cfg->link.latency_ns && g->latency_ns == NULL) {
        /* One latency per link, the same both ways, uniform in [latency, latency_max]. */
        struct sim_rng r;
        sim_rng_derive(&r, seed, "link-latency", 0);
        m->latency = malloc((g->off[g->n] > 0 ? g->off[g->n] : 1) * sizeof(uint64_t));
        if (m->latency == NULL) {
            p2p_destroy(&m->base);
            return P4P_ENOMEM;
        }
        uint64_t span = cfg->link.latency_max_ns - cfg->link.latency_ns;
        for (uint32_t u = 0; u < g->n; u++) {
            for (uint64_t s = g->off[u]; s < g->off[u + 1]; s++) {
                uint32_t v = g->adj[s];
                if (u < v) {
                    uint64_t lat = cfg->link.latency_ns + sim_rng_below(&r, span + 1);
                    m->latency[s] = lat;
                    m->latency[sim_graph_slot(g, v, u)] = lat;
                }
            }
        }
    }
    if (cfg->link.ge_p > 0) {
        m->ge =
            (struct sim_ge_params){cfg->link.ge_p, cfg->link.ge_r, cfg->link.ge_k, cfg->link.ge_h};
        uint64_t slots = g->off[g->n] > 0 ? g->off[g->n] : 1;
        m->ge_bad = malloc(slots);
        struct sim_ge ge;
        for (uint64_t s = 0; m->ge_bad != NULL && s < slots; s++) { /* stationary start */
            if (sim_ge_init(&ge, &m->ge, &m->rng) != 0) {
                break;
            }
            m->ge_bad[s] = (uint8_t)ge.bad;
        }
        if (m->ge_bad == NULL || sim_ge_check(&m->ge) != 0) {
            p2p_destroy(&m->base);
            return P4P_ENOMEM;
        }
    }
    *out = &m->base;
    return 0;
}
