/*
 * metrics.c — see metrics.h.
 */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "p4p/p4p.h"

static int grow(void **p, size_t *cap, size_t elem, size_t need)
{
    if (need <= *cap) {
        return 0;
    }
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (q == NULL) {
        return P4P_ENOMEM;
    }
    *p = q;
    *cap = c;
    return 0;
}

int metrics_init(struct sim_metrics *m, uint32_t nodes)
{
    memset(m, 0, sizeof(*m));
    m->nodes = nodes;
    return 0;
}

void metrics_free(struct sim_metrics *m)
{
    free(m->updates);
    free(m->index);
    free(m->deliveries);
    free(m->samples);
    memset(m, 0, sizeof(*m));
}

static uint64_t prefix(const uint8_t *id)
{
    uint64_t v;
    memcpy(&v, id, sizeof(v));
    return v;
}

static int reindex(struct sim_metrics *m, uint32_t cap)
{
    uint32_t *idx = calloc(cap, sizeof(*idx));
    if (idx == NULL) {
        return P4P_ENOMEM;
    }
    for (uint32_t u = 0; u < m->update_count; u++) {
        uint32_t i = (uint32_t)prefix(m->updates[u].id) & (cap - 1);
        while (idx[i] != 0) {
            i = (i + 1) & (cap - 1);
        }
        idx[i] = u + 1;
    }
    free(m->index);
    m->index = idx;
    m->index_cap = cap;
    return 0;
}

uint32_t metrics_find(const struct sim_metrics *m, const uint8_t id[32])
{
    if (m->index_cap == 0) {
        return UINT32_MAX;
    }
    for (uint32_t i = (uint32_t)prefix(id) & (m->index_cap - 1);;
         i = (i + 1) & (m->index_cap - 1)) {
        uint32_t v = m->index[i];
        if (v == 0) {
            return UINT32_MAX;
        }
        if (memcmp(m->updates[v - 1].id, id, 32) == 0) {
            return v - 1;
        }
    }
}

int metrics_published(struct sim_metrics *m, uint32_t node, const uint8_t id[32], uint64_t t_ns,
                      uint32_t size)
{
    size_t cap = m->update_cap;
    if (grow((void **)&m->updates, &cap, sizeof(*m->updates), (size_t)m->update_count + 1) != 0) {
        return P4P_ENOMEM;
    }
    m->update_cap = (uint32_t)cap;
    struct sim_update *u = &m->updates[m->update_count++];
    memcpy(u->id, id, 32);
    u->created_ns = t_ns;
    u->origin = node;
    u->size = size;
    u->reached = 0;
    if ((uint64_t)m->update_count * 2 > m->index_cap) {
        return reindex(m, m->index_cap ? m->index_cap * 2 : 1024);
    }
    uint32_t i = (uint32_t)prefix(id) & (m->index_cap - 1);
    while (m->index[i] != 0) {
        i = (i + 1) & (m->index_cap - 1);
    }
    m->index[i] = m->update_count;
    return 0;
}

int metrics_delivered(struct sim_metrics *m, uint32_t node, const uint8_t id[32], uint64_t t_ns,
                      uint32_t hops)
{
    uint32_t u = metrics_find(m, id);
    if (u == UINT32_MAX) {
        m->unknown++;
        return P4P_ENOTFOUND;
    }
    if (grow((void **)&m->deliveries, &m->delivery_cap, sizeof(*m->deliveries),
             m->delivery_count + 1) != 0) {
        return P4P_ENOMEM;
    }
    m->deliveries[m->delivery_count++] = (struct sim_delivery){t_ns, u, node, hops};
    m->updates[u].reached++;
    return 0;
}

double metrics_coverage(const struct sim_metrics *m)
{
    if (m->update_count == 0 || m->nodes < 2) {
        return 0;
    }
    return (double)m->delivery_count / ((double)m->update_count * (m->nodes - 1));
}

int metrics_sample(struct sim_metrics *m, uint64_t t_ns, uint64_t frames_sent, uint64_t bytes_sent)
{
    if (grow((void **)&m->samples, &m->sample_cap, sizeof(*m->samples), m->sample_count + 1) != 0) {
        return P4P_ENOMEM;
    }
    m->samples[m->sample_count++] = (struct sim_sample){
        .t_ns = t_ns,
        .coverage = metrics_coverage(m),
        .deliveries = m->delivery_count,
        .frames_sent = frames_sent,
        .bytes_sent = bytes_sent,
    };
    return 0;
}

static int write_series(const struct sim_metrics *m, res_db *db)
{
    int rc = 0;
    for (size_t i = 0; i < m->sample_count && rc == 0; i++) {
        const struct sim_sample *s = &m->samples[i];
        rc = res_series(db, "coverage", s->t_ns, s->coverage);
        rc = rc ? rc : res_series(db, "deliveries", s->t_ns, (double)s->deliveries);
        rc = rc ? rc : res_series(db, "frames_sent", s->t_ns, (double)s->frames_sent);
        rc = rc ? rc : res_series(db, "bytes_sent", s->t_ns, (double)s->bytes_sent);
    }
    return rc;
}

int metrics_latency(const struct sim_metrics *m, struct res_summary *out)
{
    double *v = malloc((m->delivery_count ? m->delivery_count : 1) * sizeof(*v));
    if (v == NULL) {
        return P4P_ENOMEM;
    }
    for (size_t i = 0; i < m->delivery_count; i++) {
        const struct sim_delivery *d = &m->deliveries[i];
        v[i] = (double)(d->t_ns - m->updates[d->update].created_ns) / 1e9;
    }
    res_summarize(v, m->delivery_count, out);
    free(v);
    return 0;
}

/* Statistics over deliveries (latency, hops) and updates (reach). */
static int write_stats(const struct sim_metrics *m, res_db *db)
{
    struct res_summary s;
    int rc = metrics_latency(m, &s);
    rc = rc ? rc : res_stat(db, "delivery_latency_s", &s);
    size_t n = m->delivery_count > m->update_count ? m->delivery_count : m->update_count;
    double *v = malloc((n ? n : 1) * sizeof(*v));
    if (v == NULL) {
        return P4P_ENOMEM;
    }
    for (size_t i = 0; i < m->delivery_count; i++) {
        v[i] = m->deliveries[i].hops;
    }
    res_summarize(v, m->delivery_count, &s);
    rc = rc ? rc : res_stat(db, "delivery_hops", &s);
    for (uint32_t u = 0; u < m->update_count; u++) {
        v[u] = m->nodes > 1 ? (double)m->updates[u].reached / (m->nodes - 1) : 0;
    }
    res_summarize(v, m->update_count, &s);
    rc = rc ? rc : res_stat(db, "update_reach", &s);
    free(v);
    return rc;
}

int metrics_write(const struct sim_metrics *m, res_db *db, int rows)
{
    int rc = 0;
    char idhex[65];
    for (uint32_t u = 0; u < m->update_count && rc == 0; u++) {
        const struct sim_update *x = &m->updates[u];
        sodium_bin2hex(idhex, sizeof(idhex), x->id, 32);
        rc = res_update(db, u, idhex, x->origin, x->created_ns, x->size);
    }
    for (size_t i = 0; rows && i < m->delivery_count && rc == 0; i++) {
        const struct sim_delivery *d = &m->deliveries[i];
        rc = res_delivery(db, d->update, d->node, d->t_ns, d->hops);
    }
    rc = rc ? rc : write_series(m, db);
    rc = rc ? rc : write_stats(m, db);
    rc = rc ? rc : res_scalar(db, -1, "updates", m->update_count);
    rc = rc ? rc : res_scalar(db, -1, "deliveries", (double)m->delivery_count);
    rc = rc ? rc : res_scalar(db, -1, "coverage", metrics_coverage(m));
    rc = rc ? rc : res_scalar(db, -1, "unknown_deliveries", (double)m->unknown);
    return rc;
}
