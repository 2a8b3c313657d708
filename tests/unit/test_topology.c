/*
 * test_topology.c — unit tests for sim/topology.c: every generator's structural guarantees with
 * fixed seeds, determinism, the edge-list loader on the shared benchmark graphs and on small
 * malformed files (error code and "PATH:LINE:"), slot lookup and connected components.
 * Run from the repository root (shared data is read from ../shared/data/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topology.h"

#define GRAPH_1000   "../shared/data/bench/graph-1000.txt"
#define GRAPH_100000 "../shared/data/bench/graph-100000.txt"

/* ---- Helpers ------------------------------------------------------------------------------ */

static struct sim_config make_cfg(enum sim_topology_kind kind, uint32_t count)
{
    struct sim_config cfg;

    memset(&cfg, 0, sizeof cfg);
    cfg.nodes.count = count;
    cfg.topology.kind = kind;
    return cfg;
}

static struct sim_graph build_ok(const struct sim_config *cfg, uint64_t seed)
{
    struct sim_graph g;
    char err[256] = "";
    int rc = sim_graph_build(cfg, seed, &g, err, sizeof err);

    if (rc != 0) {
        print_error("sim_graph_build: %d %s\n", rc, err);
    }
    assert_int_equal(rc, 0);
    return g;
}

static struct sim_graph load_ok(const char *path)
{
    struct sim_graph g;
    char err[256] = "";
    int rc = sim_graph_load_edges(path, &g, err, sizeof err);

    if (rc != 0) {
        print_error("sim_graph_load_edges: %d %s\n", rc, err);
    }
    assert_int_equal(rc, 0);
    return g;
}

static uint32_t degree(const struct sim_graph *g, uint32_t u)
{
    return g->off[u + 1] - g->off[u];
}

/* CSR well-formed, lists strictly ascending (so no multi-edges), no self-loops, symmetric. */
static void check_simple_symmetric(const struct sim_graph *g)
{
    assert_non_null(g->off);
    assert_int_equal(g->off[0], 0);
    assert_int_equal(g->off[g->n], 2 * g->edges);
    for (uint32_t u = 0; u < g->n; u++) {
        assert_true(g->off[u] <= g->off[u + 1]);
        for (uint32_t s = g->off[u]; s < g->off[u + 1]; s++) {
            uint32_t v = g->adj[s];
            uint64_t back;
            assert_true(v < g->n);
            assert_int_not_equal(v, u);
            if (s > g->off[u]) {
                assert_true(g->adj[s - 1] < v);
            }
            back = sim_graph_slot(g, v, u);
            assert_int_not_equal(back, SIM_GRAPH_NO_SLOT);
            if (g->latency_ns != NULL) {
                assert_int_equal(g->latency_ns[s], g->latency_ns[back]);
            }
        }
    }
}

static int graphs_equal(const struct sim_graph *a, const struct sim_graph *b)
{
    return a->n == b->n && a->edges == b->edges &&
           memcmp(a->off, b->off, ((size_t)a->n + 1) * sizeof *a->off) == 0 &&
           memcmp(a->adj, b->adj, (size_t)(2 * a->edges) * sizeof *a->adj) == 0;
}

/* Writes len bytes to a new temporary file; path receives its name. */
static void write_temp(char path[64], const char *data, size_t len)
{
    int fd;

    strcpy(path, "/tmp/p4p_test_topology_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static struct sim_graph load_text_ok(const char *text)
{
    char path[64];
    struct sim_graph g;

    write_temp(path, text, strlen(text));
    g = load_ok(path);
    unlink(path);
    return g;
}

/* ---- Generators --------------------------------------------------------------------------- */

static void test_random_regular(void **state)
{
    struct sim_config cfg = make_cfg(SIM_TOPO_RANDOM_REGULAR, 1000);
    struct sim_graph g;

    (void)state;
    cfg.topology.degree = 8;
    g = build_ok(&cfg, 42);
    assert_int_equal(g.n, 1000);
    assert_int_equal(g.edges, 1000 * 8 / 2);
    for (uint32_t u = 0; u < g.n; u++) {
        assert_int_equal(degree(&g, u), 8);
    }
    check_simple_symmetric(&g);
    assert_null(g.latency_ns);
    assert_null(g.xy);
    sim_graph_free(&g);
}

static void test_random_regular_100000(void **state)
{
    struct sim_config cfg = make_cfg(SIM_TOPO_RANDOM_REGULAR, 100000);
    struct sim_graph g;

    (void)state;
    cfg.topology.degree = 8;
    g = build_ok(&cfg, 1);
    assert_int_equal(g.n, 100000);
    assert_int_equal(g.edges, 400000);
    for (uint32_t u = 0; u < g.n; u++) {
        assert_int_equal(degree(&g, u), 8);
    }
    check_simple_symmetric(&g);
    sim_graph_free(&g);
}

static void test_erdos_renyi(void **state)
{
    struct sim_config cfg = make_cfg(SIM_TOPO_ERDOS_RENYI, 2000);
    struct sim_graph g;

    (void)state;
    cfg.topology.degree = 8;
    g = build_ok(&cfg, 5);
    assert_int_equal(g.n, 2000);
    /* Binomial(1999000, 8/1999): mean 8000, sd ~89; a fixed seed lands well inside. */
    assert_in_range(g.edges, 7500, 8500);
    check_simple_symmetric(&g);
    sim_graph_free(&g);
}

static void test_barabasi_albert(void **state)
{
    struct sim_config cfg = make_cfg(SIM_TOPO_BARABASI_ALBERT, 1000);
    struct sim_graph g;
    uint64_t expect = 0;

    (void)state;
    cfg.topology.m = 3;
    g = build_ok(&cfg, 5);
    /* Node i links to min(i, m) distinct earlier nodes. */
    for (uint64_t i = 1; i < 1000; i++) {
        expect += i < 3 ? i : 3;
    }
    assert_int_equal(g.n, 1000);
    assert_int_equal(g.edges, expect);
    for (uint32_t u = 0; u < g.n; u++) {
        assert_true(degree(&g, u) >= (u == 0 ? 1u : (u < 3 ? u : 3u)));
    }
    check_simple_symmetric(&g);
    sim_graph_free(&g);
}

static void test_watts_strogatz(void **state)
{
    struct sim_config cfg = make_cfg(SIM_TOPO_WATTS_STROGATZ, 1000);
    struct sim_graph g, ring;

    (void)state;
    cfg.topology.degree = 6;
    cfg.topology.p = 0.1;
    g = build_ok(&cfg, 5);
    assert_int_equal(g.n, 1000);
    assert_int_equal(g.edges, 1000 * 3);
    check_simple_symmetric(&g);

    /* p = 0 is the plain ring lattice: node 0 sees 1, 2, 3 and 997, 998, 999. */
    cfg.topology.p = 0.0;
    ring = build_ok(&cfg, 5);
    assert_int_equal(degree(&ring, 0), 6);
    assert_int_equal(ring.adj[ring.off[0]], 1);
    assert_int_equal(ring.adj[ring.off[0] + 2], 3);
    assert_int_equal(ring.adj[ring.off[0] + 3], 997);
    assert_int_equal(ring.adj[ring.off[0] + 5], 999);
    assert_false(graphs_equal(&g, &ring));
    sim_graph_free(&ring);
    sim_graph_free(&g);
}

/* Squared distance between nodes i and j, wrapping around when torus is set. */
static double dist2(const double *xy, uint32_t i, uint32_t j, int torus)
{
    double dx = fabs(xy[2 * i] - xy[2 * j]), dy = fabs(xy[2 * i + 1] - xy[2 * j + 1]);

    if (torus) {
        dx = dx > 0.5 ? 1.0 - dx : dx;
        dy = dy > 0.5 ? 1.0 - dy : dy;
    }
    return dx * dx + dy * dy;
}

/* Linked exactly when within the radius (pairs within 1e-12 of the boundary are not judged). */
static void check_geometric(int torus)
{
    struct sim_config cfg = make_cfg(SIM_TOPO_RANDOM_GEOMETRIC, 600);
    struct sim_graph g;
    const double r = 0.08;

    cfg.topology.radius = r;
    cfg.topology.torus = torus;
    g = build_ok(&cfg, 9);
    assert_int_equal(g.n, 600);
    assert_non_null(g.xy);
    assert_true(g.edges > 0);
    check_simple_symmetric(&g);
    for (uint32_t i = 0; i < g.n; i++) {
        assert_true(g.xy[2 * i] >= 0.0 && g.xy[2 * i] <= 1.0);
        assert_true(g.xy[2 * i + 1] >= 0.0 && g.xy[2 * i + 1] <= 1.0);
        for (uint32_t j = i + 1; j < g.n; j++) {
            double d2 = dist2(g.xy, i, j, torus);
            int linked = sim_graph_slot(&g, i, j) != SIM_GRAPH_NO_SLOT;
            if (fabs(d2 - r * r) > 1e-12) {
                assert_int_equal(linked, d2 < r * r);
            }
        }
    }
    sim_graph_free(&g);
}

static void test_random_geometric(void **state)
{
    (void)state;
    check_geometric(0);
}

static void test_random_geometric_torus(void **state)
{
    (void)state;
    check_geometric(1);
}

static void test_grid(void **state)
{
    struct sim_config cfg = make_cfg(SIM_TOPO_GRID, 5 * 4);
    struct sim_graph g;
    uint32_t count = 0, largest = 0;

    (void)state;
    cfg.topology.width = 5;
    cfg.topology.height = 4;
    g = build_ok(&cfg, 0);
    assert_int_equal(g.n, 20);
    assert_int_equal(g.edges, (5 - 1) * 4 + 5 * (4 - 1));
    check_simple_symmetric(&g);
    /* Node x + 5y links to its 4-neighbours that exist, nothing else. */
    for (uint32_t y = 0; y < 4; y++) {
        for (uint32_t x = 0; x < 5; x++) {
            uint32_t u = x + 5 * y;
            uint32_t expect = (x > 0) + (x < 4) + (y > 0) + (y < 3);
            assert_int_equal(degree(&g, u), expect);
            assert_int_equal(x < 4, sim_graph_slot(&g, u, u + 1) != SIM_GRAPH_NO_SLOT);
            assert_int_equal(y < 3, sim_graph_slot(&g, u, u + 5) != SIM_GRAPH_NO_SLOT);
            assert_float_equal(g.xy[2 * u], (x + 0.5) / 5.0, 1e-12);
            assert_float_equal(g.xy[2 * u + 1], (y + 0.5) / 4.0, 1e-12);
        }
    }
    assert_int_equal(sim_graph_components(&g, &count, &largest), 0);
    assert_int_equal(count, 1);
    assert_int_equal(largest, 20);
    sim_graph_free(&g);
}

static void test_grid_torus(void **state)
{
    struct sim_config cfg = make_cfg(SIM_TOPO_GRID, 5 * 4);
    struct sim_graph g;
    const uint32_t node0[4] = {1, 4, 5, 15};

    (void)state;
    cfg.topology.width = 5;
    cfg.topology.height = 4;
    cfg.topology.torus = 1;
    g = build_ok(&cfg, 0);
    assert_int_equal(g.edges, 2 * 20);
    for (uint32_t u = 0; u < g.n; u++) {
        assert_int_equal(degree(&g, u), 4);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(g.adj[g.off[0] + i], node0[i]);
    }
    check_simple_symmetric(&g);
    sim_graph_free(&g);
}

static void test_same_seed_same_graph(void **state)
{
    const enum sim_topology_kind kinds[] = {SIM_TOPO_RANDOM_REGULAR, SIM_TOPO_ERDOS_RENYI,
                                            SIM_TOPO_BARABASI_ALBERT, SIM_TOPO_WATTS_STROGATZ,
                                            SIM_TOPO_RANDOM_GEOMETRIC};

    (void)state;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        struct sim_config cfg = make_cfg(kinds[i], 500);
        struct sim_config other = make_cfg(SIM_TOPO_ERDOS_RENYI, 300);
        struct sim_graph a, b, c, d;
        cfg.topology.degree = 6;
        cfg.topology.m = 2;
        cfg.topology.p = 0.2;
        cfg.topology.radius = 0.1;
        other.topology.degree = 4;
        a = build_ok(&cfg, 7);
        d = build_ok(&other, 99); /* moves igraph's RNG: b must not depend on it */
        b = build_ok(&cfg, 7);
        c = build_ok(&cfg, 8);
        assert_true(graphs_equal(&a, &b));
        assert_false(graphs_equal(&a, &c));
        if (a.xy != NULL) {
            assert_memory_equal(a.xy, b.xy, 2 * (size_t)a.n * sizeof *a.xy);
        }
        sim_graph_free(&a);
        sim_graph_free(&b);
        sim_graph_free(&c);
        sim_graph_free(&d);
    }
}

static void test_bad_config(void **state)
{
    struct {
        enum sim_topology_kind kind;
        uint32_t count, degree, m, width, height;
        double p, radius;
    } cases[] = {
        {SIM_TOPO_RANDOM_REGULAR, 5, 3, 0, 0, 0, 0, 0},    /* n * k odd */
        {SIM_TOPO_RANDOM_REGULAR, 8, 8, 0, 0, 0, 0, 0},    /* k >= n */
        {SIM_TOPO_RANDOM_REGULAR, 0, 0, 0, 0, 0, 0, 0},    /* no nodes */
        {SIM_TOPO_ERDOS_RENYI, 1, 0, 0, 0, 0, 0, 0},       /* p undefined */
        {SIM_TOPO_ERDOS_RENYI, 10, 10, 0, 0, 0, 0, 0},     /* p > 1 */
        {SIM_TOPO_BARABASI_ALBERT, 10, 0, 0, 0, 0, 0, 0},  /* m = 0 */
        {SIM_TOPO_WATTS_STROGATZ, 10, 3, 0, 0, 0, 0.1, 0}, /* odd degree */
        {SIM_TOPO_WATTS_STROGATZ, 10, 4, 0, 0, 0, 1.5, 0}, /* p > 1 */
        {SIM_TOPO_WATTS_STROGATZ, 4, 4, 0, 0, 0, 0.1, 0},  /* degree >= n */
        {SIM_TOPO_RANDOM_GEOMETRIC, 10, 0, 0, 0, 0, 0, -0.5},
        {SIM_TOPO_RANDOM_GEOMETRIC, 10, 0, 0, 0, 0, 0, NAN},
        {SIM_TOPO_GRID, 20, 0, 0, 5, 5, 0, 0}, /* 5 x 5 != 20 */
        {SIM_TOPO_GRID, 0, 0, 0, 0, 5, 0, 0},
        {(enum sim_topology_kind)99, 10, 0, 0, 0, 0, 0, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sim_config cfg = make_cfg(cases[i].kind, cases[i].count);
        struct sim_graph g = {.n = 12345};
        char err[256] = "";
        cfg.topology.degree = cases[i].degree;
        cfg.topology.m = cases[i].m;
        cfg.topology.width = cases[i].width;
        cfg.topology.height = cases[i].height;
        cfg.topology.p = cases[i].p;
        cfg.topology.radius = cases[i].radius;
        assert_int_equal(sim_graph_build(&cfg, 1, &g, err, sizeof err), P4P_EINVAL);
        assert_int_equal(strncmp(err, "topology ", 9), 0);
        assert_int_equal(g.n, 12345); /* out untouched on failure */
    }
}

/* ---- Edge-list files ---------------------------------------------------------------------- */

static void test_load_graph_1000(void **state)
{
    struct sim_graph g = load_ok(GRAPH_1000);
    FILE *f = fopen(GRAPH_1000, "r");
    unsigned u, v, ms, lines = 0;
    uint64_t s01, s10;

    (void)state;
    assert_int_equal(g.n, 1000);
    assert_int_equal(g.edges, 4000);
    assert_null(g.xy);
    assert_non_null(g.latency_ns);
    for (uint32_t i = 0; i < g.n; i++) {
        assert_int_equal(degree(&g, i), 8);
    }
    check_simple_symmetric(&g);
    s01 = sim_graph_slot(&g, 0, 259);
    s10 = sim_graph_slot(&g, 259, 0);
    assert_int_not_equal(s01, SIM_GRAPH_NO_SLOT);
    assert_int_not_equal(s10, SIM_GRAPH_NO_SLOT);
    assert_int_equal(g.latency_ns[s01], 14000000);
    assert_int_equal(g.latency_ns[s10], 14000000);
    /* Every line of the file is an edge with its latency, in both directions. */
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%*u %*u %*u %*u"), 0);
    while (fscanf(f, "%u %u %u", &u, &v, &ms) == 3) {
        s01 = sim_graph_slot(&g, u, v);
        assert_int_not_equal(s01, SIM_GRAPH_NO_SLOT);
        assert_int_equal(g.latency_ns[s01], (uint64_t)ms * 1000000);
        assert_int_equal(g.latency_ns[sim_graph_slot(&g, v, u)], (uint64_t)ms * 1000000);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 4000);
    sim_graph_free(&g);
}

static void test_load_graph_100000(void **state)
{
    struct sim_graph g = load_ok(GRAPH_100000);
    uint64_t s;

    (void)state;
    assert_int_equal(g.n, 100000);
    assert_int_equal(g.edges, 400000); /* the header's E: 800,000 directed slots */
    assert_int_equal(g.off[g.n], 800000);
    for (uint32_t i = 0; i < g.n; i++) {
        assert_int_equal(degree(&g, i), 8);
    }
    s = sim_graph_slot(&g, 13607, 0); /* first line: "0 13607 14" */
    assert_int_not_equal(s, SIM_GRAPH_NO_SLOT);
    assert_int_equal(g.latency_ns[s], 14000000);
    check_simple_symmetric(&g);
    sim_graph_free(&g);
}

static void test_load_lenient_syntax(void **state)
{
    /* CRLF, tabs, extra blanks, fractional latencies, trailing blank lines. */
    struct sim_graph g = load_text_ok("4 2 3 7\r\n0\t1  1.5\r\n 1 2 0.000001\n2 3 "
                                      "0.0000019\t\n\n  \n");
    struct sim_graph h = load_text_ok("2 1 1 0\n0 1 250"); /* no final newline */

    (void)state;
    assert_int_equal(g.n, 4);
    assert_int_equal(g.edges, 3);
    assert_int_equal(g.latency_ns[sim_graph_slot(&g, 1, 0)], 1500000);
    assert_int_equal(g.latency_ns[sim_graph_slot(&g, 2, 1)], 1);
    assert_int_equal(g.latency_ns[sim_graph_slot(&g, 3, 2)], 1); /* sub-ns digits dropped */
    assert_int_equal(h.latency_ns[sim_graph_slot(&h, 0, 1)], 250000000);
    sim_graph_free(&g);
    sim_graph_free(&h);
}

static void test_load_malformed(void **state)
{
    static const struct {
        const char *text;
        size_t len; /* 0 = strlen(text) */
        int rc;
        unsigned line;
        const char *what;
    } cases[] = {
        {"", 0, P4P_EPARSE, 1, "empty file"},
        {"3 2 x 1\n0 1 5\n", 0, P4P_EPARSE, 1, "bad number"},
        {"3 2 2\n0 1 5\n1 2 5\n", 0, P4P_EPARSE, 1, "missing SEED"},
        {"3 2 2 1 9\n0 1 5\n1 2 5\n", 0, P4P_EPARSE, 1, "trailing garbage"},
        {"0 0 0 1\n", 0, P4P_EPARSE, 1, "N must be"},
        {"3 2 4 1\n", 0, P4P_EMALFORMED, 1, "do not fit"},
        {"100000 8 4000000000 1\n0 1 5\n", 0, P4P_ETOOBIG, 1, "at most"},
        {"100000 8 1000000000 1\n0 1 5\n", 0, P4P_EPARSE, 3, "found 1"},
        {"3 2 2 1\n0 1 5\n", 0, P4P_EPARSE, 3, "expected 2 edge lines, found 1"},
        {"3 2 1 1\n0 1 5\n1 2 5\n", 0, P4P_EPARSE, 3, "unexpected data"},
        {"3 2 1 1\n0 1 5\n\n\nfoo\n", 0, P4P_EPARSE, 5, "unexpected data"},
        {"3 2 2 1\n\n0 1 5\n1 2 5\n", 0, P4P_EPARSE, 2, "missing node id u"},
        {"3 2 2 1\n0 1 5\n1 1 5\n", 0, P4P_EMALFORMED, 3, "self-loop"},
        {"3 2 2 1\n0 1 5\n2 1 5\n", 0, P4P_EMALFORMED, 3, "u must be less than v"},
        {"4 2 3 1\n0 1 5\n1 2 5\n0 1 7\n", 0, P4P_EMALFORMED, 4, "first on line 2"},
        {"4 2 3 1\n0 1 5\n2 3 5\n2 3 5\n", 0, P4P_EMALFORMED, 4, "duplicate edge 2 3"},
        {"3 2 2 1\n0 1 5\n1 3 5\n", 0, P4P_EMALFORMED, 3, "out of range"},
        {"3 2 2 1\n0 1 5\n1 2 5x\n", 0, P4P_EPARSE, 3, "bad number for latency"},
        {"3 2 2 1\n0 1 5\n1 2 -5\n", 0, P4P_EPARSE, 3, "bad number for latency"},
        {"3 2 2 1\n0 1 5.\n1 2 5\n", 0, P4P_EPARSE, 2, "bad number for latency"},
        {"3 2 2 1\n0 1 1e3\n1 2 5\n", 0, P4P_EPARSE, 2, "bad number for latency"},
        {"3 2 2 1\n0 1 5 7\n1 2 5\n", 0, P4P_EPARSE, 2, "trailing garbage"},
        {"3 2 2 1\n0 1\n1 2 5\n", 0, P4P_EPARSE, 2, "missing latency"},
        {"3 2 2 1\n0 1x 5\n", 0, P4P_EPARSE, 2, "bad number for node id v"},
        {"3 2 1 1\n0 99999999999999999999999 5\n", 0, P4P_EPARSE, 2, "out of range"},
        {"3 2 1 1\n0 1 99999999999999999\n", 0, P4P_EPARSE, 2, "latency_ms out of range"},
        {"3 2 1 1\n0 1\0 5\n", 15, P4P_EPARSE, 2, "bad number for node id v"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[64], err[256] = "", prefix[96];
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        struct sim_graph g = {.n = 12345};
        int rc;
        write_temp(path, cases[i].text, len);
        rc = sim_graph_load_edges(path, &g, err, sizeof err);
        unlink(path);
        snprintf(prefix, sizeof prefix, "%s:%u: ", path, cases[i].line);
        if (rc != cases[i].rc || strncmp(err, prefix, strlen(prefix)) != 0 ||
            strstr(err, cases[i].what) == NULL) {
            print_error("case %zu: rc %d, err \"%s\"\n", i, rc, err);
        }
        assert_int_equal(rc, cases[i].rc);
        assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);
        assert_non_null(strstr(err, cases[i].what));
        assert_int_equal(g.n, 12345); /* out untouched on failure */
    }
}

static void test_load_missing_file(void **state)
{
    struct sim_graph g = {.n = 12345};
    char err[256] = "";
    const char *path = "../shared/data/bench/no-such-graph.txt";

    (void)state;
    assert_int_equal(sim_graph_load_edges(path, &g, err, sizeof err), P4P_EIO);
    assert_int_equal(strncmp(err, path, strlen(path)), 0);
    assert_int_equal(sim_graph_load_edges("/tmp", &g, err, sizeof err), P4P_EIO);
    assert_int_equal(sim_graph_load_edges(path, &g, NULL, 0), P4P_EIO);
    assert_int_equal(g.n, 12345);
}

static void test_build_from_file(void **state)
{
    struct sim_config cfg = make_cfg(SIM_TOPO_FILE, 1000);
    struct sim_graph g;
    char err[256] = "";

    (void)state;
    strcpy(cfg.topology.file, GRAPH_1000);
    g = build_ok(&cfg, 0);
    assert_int_equal(g.edges, 4000);
    sim_graph_free(&g);
    cfg.nodes.count = 999;
    assert_int_equal(sim_graph_build(&cfg, 0, &g, err, sizeof err), P4P_EINVAL);
    assert_non_null(strstr(err, "nodes.count"));
}

/* ---- Slots and components ----------------------------------------------------------------- */

static void test_slot(void **state)
{
    struct sim_graph g = load_text_ok("5 2 4 1\n0 2 1\n0 4 2\n1 4 3\n2 4 4\n");

    (void)state;
    /* adj: 0:[2,4] 1:[4] 2:[0,4] 3:[] 4:[0,1,2] */
    assert_int_equal(sim_graph_slot(&g, 0, 2), 0);
    assert_int_equal(sim_graph_slot(&g, 0, 4), 1);
    assert_int_equal(sim_graph_slot(&g, 1, 4), 2);
    assert_int_equal(sim_graph_slot(&g, 4, 0), 5);
    assert_int_equal(sim_graph_slot(&g, 4, 2), 7);
    assert_int_equal(g.latency_ns[sim_graph_slot(&g, 4, 1)], 3000000);
    assert_int_equal(sim_graph_slot(&g, 0, 1), SIM_GRAPH_NO_SLOT);
    assert_int_equal(sim_graph_slot(&g, 0, 3), SIM_GRAPH_NO_SLOT);
    assert_int_equal(sim_graph_slot(&g, 0, 5), SIM_GRAPH_NO_SLOT);
    assert_int_equal(sim_graph_slot(&g, 3, 0), SIM_GRAPH_NO_SLOT);
    assert_int_equal(sim_graph_slot(&g, 4, 3), SIM_GRAPH_NO_SLOT);
    assert_int_equal(sim_graph_slot(&g, 5, 0), SIM_GRAPH_NO_SLOT);
    assert_int_equal(sim_graph_slot(&g, UINT32_MAX, 0), SIM_GRAPH_NO_SLOT);
    sim_graph_free(&g);
    sim_graph_free(&g); /* freeing twice is safe */
}

static void test_components(void **state)
{
    struct sim_graph two = load_text_ok("7 2 5 1\n0 1 1\n1 2 1\n0 2 1\n3 4 1\n4 5 1\n");
    struct sim_graph empty = {0};
    uint32_t count = 0, largest = 0;

    (void)state;
    /* {0,1,2}, {3,4,5} and the isolated node 6. */
    assert_int_equal(sim_graph_components(&two, &count, &largest), 0);
    assert_int_equal(count, 3);
    assert_int_equal(largest, 3);
    sim_graph_free(&two);

    two = load_text_ok("6 2 4 1\n0 1 1\n1 2 1\n2 3 1\n4 5 1\n");
    assert_int_equal(sim_graph_components(&two, &count, &largest), 0);
    assert_int_equal(count, 2);
    assert_int_equal(largest, 4);
    sim_graph_free(&two);

    assert_int_equal(sim_graph_components(&empty, &count, &largest), 0);
    assert_int_equal(count, 0);
    assert_int_equal(largest, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_regular),
        cmocka_unit_test(test_random_regular_100000),
        cmocka_unit_test(test_erdos_renyi),
        cmocka_unit_test(test_barabasi_albert),
        cmocka_unit_test(test_watts_strogatz),
        cmocka_unit_test(test_random_geometric),
        cmocka_unit_test(test_random_geometric_torus),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_grid_torus),
        cmocka_unit_test(test_same_seed_same_graph),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_load_graph_1000),
        cmocka_unit_test(test_load_graph_100000),
        cmocka_unit_test(test_load_lenient_syntax),
        cmocka_unit_test(test_load_malformed),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_build_from_file),
        cmocka_unit_test(test_slot),
        cmocka_unit_test(test_components),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
