/*
 * run.c — see run.h.
 */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "res.h"
#include "scenario.h"
#include "version.h"

/* SHA-256 of a file in hex, or "" when it cannot be read. */
static void file_sha256(const char *path, char out[65])
{
    out[0] = '\0';
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (f == NULL) {
        return;
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    uint8_t buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        crypto_hash_sha256_update(&st, buf, n);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        return;
    }
    uint8_t h[32];
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

struct param_ctx {
    int rc;
    res_db *db;
};

static void param_cb(void *ctx, const char *key, const char *value)
{
    struct param_ctx *p = ctx;
    if (p->rc == 0) {
        p->rc = res_param(p->db, key, value);
    }
}

static int open_results(const struct sim_config *cfg, const struct sim_run_opts *o, res_db **db,
                        char *err, size_t errlen)
{
    char sha[65];
    file_sha256(o->scenario_path, sha);
    size_t json_len = sim_config_json(cfg, NULL, 0) + 1;
    char *json = malloc(json_len);
    if (json == NULL) {
        snprintf(err, errlen, "out of memory");
        return P4P_ENOMEM;
    }
    sim_config_json(cfg, json, json_len);
    struct res_run_info info = {
        .mode = "sim",
        .scenario_path = o->scenario_path ? o->scenario_path : "",
        .scenario_sha256 = sha[0] ? sha : NULL,
        .config_json = json,
        .tool_version = P4P_VERSION,
        .git_commit = P4P_GIT_COMMIT,
        .seed = cfg->seed,
    };
    int rc = res_create(o->out_path, &info, db);
    free(json);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot create results file: %s", o->out_path, p4p_strerror(rc));
        return rc;
    }
    struct param_ctx p = {0, *db};
    sim_config_each(cfg, param_cb, &p);
    if (p.rc == 0 && cfg->topology.kind == SIM_TOPO_FILE) {
        /* The path differs between machines; the content identifies the topology. */
        file_sha256(cfg->topology.file, sha);
        p.rc = res_param(*db, "topology.file_sha256", sha);
    }
    if (p.rc != 0) {
        snprintf(err, errlen, "%s: %s", o->out_path, res_errmsg(*db));
        res_abort(*db);
        *db = NULL;
    }
    return p.rc;
}

static void summarize(const struct sim_world *w, struct sim_run_summary *s)
{
    const struct sim_graph *g = sim_world_graph(w);
    const struct sim_metrics *m = sim_world_metrics(w);
    const struct sim_counters *c = sim_world_counters(w);
    const struct sim_link_stats *ls = sim_world_link_stats(w);
    uint32_t largest = 0;
    struct res_summary lat;
    s->nodes = g->n;
    s->edges = g->edges;
    sim_graph_components(g, &s->components, &largest);
    s->updates = m->update_count;
    s->deliveries = m->delivery_count;
    s->coverage = metrics_coverage(m);
    metrics_latency(m, &lat);
    s->latency_p50_s = lat.p50;
    s->latency_p90_s = lat.p90;
    s->latency_p99_s = lat.p99;
    s->frames_sent = c->frames_out;
    s->bytes_sent = c->bytes_out;
    s->frames_lost = ls->lost_loss + ls->lost_queue + ls->lost_mtu + ls->lost_no_link;
    s->events = c->events;
    s->sim_end_ns = sim_world_now(w);
}

static int write_wall(res_db *db, const struct sim_run_summary *s)
{
    int rc = res_wall(db, "setup_s", s->setup_s);
    rc = rc ? rc : res_wall(db, "wall_s", s->wall_s);
    rc = rc ? rc : res_wall(db, "events_per_s", s->events_per_s);
    rc = rc ? rc : res_wall(db, "peak_rss_kb", (double)s->peak_rss_kb);
    rc = rc ? rc : res_wall(db, "bytes_per_node", s->bytes_per_node);
    return rc;
}

int sim_run(const struct sim_config *cfg, const struct sim_run_opts *o,
            struct sim_run_summary *summary, char *err, size_t errlen)
{
    struct sim_run_summary s = {0};
    struct sim_world *w = NULL;
    res_db *db = NULL;
    double t0 = o->wall_s ? o->wall_s() : 0;
    err[0] = '\0';
    struct sim_world_opts wo = o->world;
    if (wo.wall_s == NULL) {
        wo.wall_s = o->wall_s;
    }
    int rc = sim_world_create(cfg, &wo, &w, err, errlen);
    if (rc != 0) {
        return rc;
    }
    s.bytes_per_node = sim_world_bytes_per_node(w);
    double t1 = o->wall_s ? o->wall_s() : 0;
    rc = open_results(cfg, o, &db, err, errlen);
    if (rc != 0) {
        goto done;
    }
    rc = sim_world_run(w, cfg->duration_ns, o->progress, o->progress_ctx);
    double t2 = o->wall_s ? o->wall_s() : 0;
    rc = rc ? rc : sim_world_check_stores(w, NULL);
    if (rc == P4P_ECORRUPT) {
        snprintf(err, errlen, "check failed: %s", sim_world_error(w));
        res_finish(db, "failed", err, sim_world_now(w));
        goto done;
    }
    if (rc != 0) {
        snprintf(err, errlen, "simulation stopped: %s", p4p_strerror(rc));
        res_finish(db, "failed", err, sim_world_now(w));
        goto done;
    }
    summarize(w, &s);
    s.setup_s = t1 - t0;
    s.wall_s = t2 - t1;
    s.events_per_s = s.wall_s > 0 ? (double)s.events / s.wall_s : 0;
    s.peak_rss_kb = o->peak_rss_kb ? o->peak_rss_kb() : 0;
    rc = sim_world_write_results(w, db);
    rc = rc ? rc : write_wall(db, &s);
    if (rc != 0) {
        snprintf(err, errlen, "%s: writing results: %s", o->out_path, res_errmsg(db));
        res_finish(db, "failed", err, s.sim_end_ns);
        goto done;
    }
    rc = res_finish(db, "ok", "", s.sim_end_ns);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot finish results file: %s", o->out_path, p4p_strerror(rc));
    }
done:
    sim_world_destroy(w);
    if (rc == 0 && summary != NULL) {
        *summary = s;
    }
    return rc;
}
