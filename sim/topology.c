/*
 * topology.c — builds the simulator's network graph (see topology.h): igraph generators for the
 * synthetic kinds, a hand-written loader for edge-list files, and one CSR builder both feed.
 *
 * CSR without comparison sorting: the builder first buckets every directed slot by its target
 * (counting sort), then walks the targets in ascending order and appends each target to its
 * source's list. Every list therefore comes out sorted, in O(n + edges) time, and duplicate
 * edges sit next to each other where they are cheap to find.
 *
 * igraph keeps its error handler, warning handler and RNG in process-global state. The only
 * global mutable state here exists because of that: a once-flag for installing the handlers,
 * a mutex that serialises our use of igraph, and the buffer the error handler writes into
 * (igraph's handler has no context pointer, so the message cannot travel any other way).
 */
#include "topology.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <igraph.h>

/* ---- Small helpers ------------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *kind_name(enum sim_topology_kind kind)
{
    switch (kind) {
    case SIM_TOPO_RANDOM_REGULAR:
        return "random_regular";
    case SIM_TOPO_ERDOS_RENYI:
        return "erdos_renyi";
    case SIM_TOPO_BARABASI_ALBERT:
        return "barabasi_albert";
    case SIM_TOPO_WATTS_STROGATZ:
        return "watts_strogatz";
    case SIM_TOPO_RANDOM_GEOMETRIC:
        return "random_geometric";
    case SIM_TOPO_GRID:
        return "grid";
    case SIM_TOPO_FILE:
        return "file";
    }
    return "unknown";
}

/* ---- CSR builder -------------------------------------------------------------------------- */

/* Fills off[] with prefix sums of the degrees. off has n + 1 zeroed entries. */
static void csr_offsets(uint32_t n, uint64_t m, const uint32_t *ends, uint32_t *off)
{
    for (uint64_t i = 0; i < 2 * m; i++) {
        off[ends[i] + 1]++;
    }
    for (uint32_t u = 0; u < n; u++) {
        off[u + 1] += off[u];
    }
}

/*
 * The two counting passes. Pass 1 puts edge ids into the bucket of each endpoint; pass 2 walks
 * buckets t = 0..n-1 and appends t to the other endpoint's list, so lists come out ascending.
 * Within one bucket edge ids ascend, so copies of a duplicate edge appear in file order.
 */
static void csr_fill(uint32_t n, uint64_t m, const uint32_t *ends, const uint32_t *off,
                     uint32_t *pos, uint32_t *bucket, uint32_t *adj, uint32_t *eid)
{
    memcpy(pos, off, (size_t)n * sizeof *pos);
    for (uint64_t e = 0; e < m; e++) {
        bucket[pos[ends[2 * e]]++] = (uint32_t)e;
        bucket[pos[ends[2 * e + 1]]++] = (uint32_t)e;
    }
    memcpy(pos, off, (size_t)n * sizeof *pos);
    for (uint32_t t = 0; t < n; t++) {
        for (uint32_t s = off[t]; s < off[t + 1]; s++) {
            uint32_t e = bucket[s];
            uint32_t src = ends[2 * e] ^ ends[2 * e + 1] ^ t; /* the endpoint that is not t */
            uint32_t p = pos[src]++;
            adj[p] = t;
            eid[p] = e;
        }
    }
}

/*
 * Finds the duplicate edge that comes first in edge order: bad[0] = its id, bad[1] = the id of
 * the earlier copy. Returns 0 if every edge is distinct.
 */
static int csr_first_duplicate(uint32_t n, const uint32_t *off, const uint32_t *adj,
                               const uint32_t *eid, uint64_t bad[2])
{
    uint64_t first = UINT64_MAX, orig = 0;

    for (uint32_t u = 0; u < n; u++) {
        for (uint32_t s = off[u] + 1; s < off[u + 1]; s++) {
            if (adj[s] == adj[s - 1] && eid[s] < first) {
                first = eid[s];
                orig = eid[s - 1];
            }
        }
    }
    bad[0] = first;
    bad[1] = orig;
    return first != UINT64_MAX;
}

/*
 * Builds *out from m edges given as endpoint pairs ends[2e], ends[2e+1] (all < n, no self-loops)
 * and optional per-edge latencies lat[e]. Returns 0, P4P_ENOMEM, P4P_ETOOBIG (2m > UINT32_MAX),
 * or P4P_EMALFORMED with bad[] = the first duplicate edge id and the id of its earlier copy.
 */
static int csr_build(uint32_t n, uint64_t m, const uint32_t *ends, const uint64_t *lat,
                     struct sim_graph *out, uint64_t bad[2])
{
    struct sim_graph g = {.n = n, .edges = m};
    uint32_t *pos = NULL, *bucket = NULL, *eid = NULL;
    size_t slots = (size_t)(2 * m);
    int rc = P4P_ENOMEM;

    if (m > UINT32_MAX / 2) {
        return P4P_ETOOBIG;
    }
    g.off = calloc((size_t)n + 1, sizeof *g.off);
    g.adj = malloc((slots ? slots : 1) * sizeof *g.adj);
    pos = malloc(((size_t)n ? n : 1) * sizeof *pos);
    bucket = malloc((slots ? slots : 1) * sizeof *bucket);
    eid = malloc((slots ? slots : 1) * sizeof *eid);
    if (g.off == NULL || g.adj == NULL || pos == NULL || bucket == NULL || eid == NULL) {
        goto free_all;
    }
    csr_offsets(n, m, ends, g.off);
    csr_fill(n, m, ends, g.off, pos, bucket, g.adj, eid);
    free(bucket); /* early, to lower peak memory */
    bucket = NULL;
    if (csr_first_duplicate(n, g.off, g.adj, eid, bad)) {
        rc = P4P_EMALFORMED;
        goto free_all;
    }
    if (lat != NULL) {
        g.latency_ns = malloc((slots ? slots : 1) * sizeof *g.latency_ns);
        if (g.latency_ns == NULL) {
            goto free_all;
        }
        for (size_t s = 0; s < slots; s++) {
            g.latency_ns[s] = lat[eid[s]];
        }
    }
    *out = g;
    memset(&g, 0, sizeof g); /* now owned by *out */
    rc = 0;
free_all:
    sim_graph_free(&g);
    free(pos);
    free(bucket);
    free(eid);
    return rc;
}

/* ---- Edge-list files ---------------------------------------------------------------------- */

/* Longest latency accepted, in ms, so that latency_ms * 1e6 + 999999 still fits in uint64_t. */
#define MAX_LATENCY_MS (UINT64_MAX / 1000000u - 1u)

struct loader {
    const char *path;
    const char *p;   /* cursor into the file's bytes */
    const char *end; /* one past the last byte */
    uint64_t line;   /* 1-based line of the cursor */
    char *err;
    size_t errlen;
};

/* Records "PATH:LINE: what" and returns code. */
static int ld_fail(struct loader *ld, int code, const char *fmt, ...)
{
    char what[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    set_err(ld->err, ld->errlen, "%s:%llu: %s", ld->path, (unsigned long long)ld->line, what);
    return code;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void ld_skip_blanks(struct loader *ld)
{
    while (ld->p < ld->end && is_blank(*ld->p)) {
        ld->p++;
    }
}

/* True if the cursor is at a field separator or the end of the line. */
static int ld_at_field_end(const struct loader *ld)
{
    return ld->p == ld->end || is_blank(*ld->p) || *ld->p == '\n' || *ld->p == '\r';
}

/* Skips blanks, then accepts "\n", "\r\n" or the end of the file, and moves to the next line. */
static int ld_end_line(struct loader *ld, const char *what)
{
    ld_skip_blanks(ld);
    if (ld->p == ld->end) {
        return 0;
    }
    if (*ld->p == '\r' && ld->p + 1 < ld->end && ld->p[1] == '\n') {
        ld->p++;
    }
    if (*ld->p != '\n') {
        return ld_fail(ld, P4P_EPARSE, "trailing garbage after %s", what);
    }
    ld->p++;
    ld->line++;
    return 0;
}

/* Parses an unsigned decimal field (blanks before it allowed) no larger than max. */
static int ld_uint(struct loader *ld, const char *what, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    ld_skip_blanks(ld);
    if (ld->p == ld->end || *ld->p == '\n' || *ld->p == '\r') {
        return ld_fail(ld, P4P_EPARSE, "missing %s", what);
    }
    if (!is_digit(*ld->p)) {
        return ld_fail(ld, P4P_EPARSE, "bad number for %s", what);
    }
    while (ld->p < ld->end && is_digit(*ld->p)) {
        unsigned d = (unsigned)(*ld->p - '0');
        if (v > (max - d) / 10) {
            return ld_fail(ld, P4P_EPARSE, "%s out of range (at most %llu)", what,
                           (unsigned long long)max);
        }
        v = v * 10 + d;
        ld->p++;
    }
    if (!ld_at_field_end(ld)) {
        return ld_fail(ld, P4P_EPARSE, "bad number for %s", what);
    }
    *out = v;
    return 0;
}

/* Parses "DIGITS[.DIGITS]" milliseconds into nanoseconds; digits below 1 ns are dropped. */
static int ld_latency(struct loader *ld, uint64_t *out_ns)
{
    const char *what = "latency_ms";
    uint64_t ms = 0, frac_ns = 0, scale = 100000; /* the first fraction digit is 0.1 ms */

    ld_skip_blanks(ld);
    if (ld->p == ld->end || *ld->p == '\n' || *ld->p == '\r') {
        return ld_fail(ld, P4P_EPARSE, "missing %s", what);
    }
    if (!is_digit(*ld->p)) {
        return ld_fail(ld, P4P_EPARSE, "bad number for %s", what);
    }
    while (ld->p < ld->end && is_digit(*ld->p)) {
        unsigned d = (unsigned)(*ld->p - '0');
        if (ms > (MAX_LATENCY_MS - d) / 10) {
            return ld_fail(ld, P4P_EPARSE, "%s out of range", what);
        }
        ms = ms * 10 + d;
        ld->p++;
    }
    if (ld->p < ld->end && *ld->p == '.') {
        ld->p++;
        if (ld->p == ld->end || !is_digit(*ld->p)) {
            return ld_fail(ld, P4P_EPARSE, "bad number for %s", what);
        }
        while (ld->p < ld->end && is_digit(*ld->p)) {
            frac_ns += (uint64_t)(*ld->p - '0') * scale;
            scale /= 10;
            ld->p++;
        }
    }
    if (!ld_at_field_end(ld)) {
        return ld_fail(ld, P4P_EPARSE, "bad number for %s", what);
    }
    *out_ns = ms * 1000000u + frac_ns;
    return 0;
}

struct edge_header {
    uint64_t n, degree, m, seed;
};

/* Line 1: "N D E SEED". */
static int ld_header(struct loader *ld, struct edge_header *h)
{
    int rc;

    if (ld->p == ld->end) {
        return ld_fail(ld, P4P_EPARSE, "empty file, expected header \"N D E SEED\"");
    }
    if ((rc = ld_uint(ld, "N in header \"N D E SEED\"", UINT32_MAX, &h->n)) != 0 ||
        (rc = ld_uint(ld, "D in header \"N D E SEED\"", UINT32_MAX, &h->degree)) != 0 ||
        (rc = ld_uint(ld, "E in header \"N D E SEED\"", UINT64_MAX, &h->m)) != 0 ||
        (rc = ld_uint(ld, "SEED in header \"N D E SEED\"", UINT64_MAX, &h->seed)) != 0) {
        return rc;
    }
    if (h->n == 0) {
        return ld_fail(ld, P4P_EPARSE, "header: N must be at least 1");
    }
    if (h->m > h->n * (h->n - 1) / 2) {
        return ld_fail(ld, P4P_EMALFORMED, "header: %llu edges do not fit in a graph of %llu nodes",
                       (unsigned long long)h->m, (unsigned long long)h->n);
    }
    if (h->m > UINT32_MAX / 2) {
        return ld_fail(ld, P4P_ETOOBIG, "header: %llu edges, at most %u supported",
                       (unsigned long long)h->m, UINT32_MAX / 2);
    }
    return ld_end_line(ld, "header \"N D E SEED\"");
}

/* Lines 2 .. E+1: "u v latency_ms"; then nothing but whitespace. cap bounds ends[]/lat[]. */
static int ld_edges(struct loader *ld, const struct edge_header *h, uint64_t cap, uint32_t *ends,
                    uint64_t *lat)
{
    int rc;

    for (uint64_t k = 0; k < h->m; k++) {
        uint64_t u, v;
        if (ld->p == ld->end || k >= cap) {
            return ld_fail(ld, P4P_EPARSE, "expected %llu edge lines, found %llu",
                           (unsigned long long)h->m, (unsigned long long)k);
        }
        if ((rc = ld_uint(ld, "node id u", UINT64_MAX, &u)) != 0 ||
            (rc = ld_uint(ld, "node id v", UINT64_MAX, &v)) != 0 ||
            (rc = ld_latency(ld, &lat[k])) != 0) {
            return rc;
        }
        if (u >= h->n || v >= h->n) {
            return ld_fail(ld, P4P_EMALFORMED, "node id %llu out of range (N = %llu)",
                           (unsigned long long)(u >= h->n ? u : v), (unsigned long long)h->n);
        }
        if (u == v) {
            return ld_fail(ld, P4P_EMALFORMED, "self-loop on node %llu", (unsigned long long)u);
        }
        if (u > v) {
            return ld_fail(ld, P4P_EMALFORMED, "edge %llu %llu: u must be less than v",
                           (unsigned long long)u, (unsigned long long)v);
        }
        ends[2 * k] = (uint32_t)u;
        ends[2 * k + 1] = (uint32_t)v;
        if ((rc = ld_end_line(ld, "latency_ms")) != 0) {
            return rc;
        }
    }
    while (ld->p < ld->end && (is_blank(*ld->p) || *ld->p == '\r' || *ld->p == '\n')) {
        ld->line += *ld->p == '\n';
        ld->p++;
    }
    if (ld->p != ld->end) {
        return ld_fail(ld, P4P_EPARSE, "unexpected data after the %llu edges of the header",
                       (unsigned long long)h->m);
    }
    return 0;
}

/* Reads the whole file into a new buffer in one go (the caller frees *out). */
static int read_whole_file(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
    struct stat st;
    char *data = NULL;
    size_t size, got = 0;
    int rc = P4P_EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return P4P_EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errlen, "%s: cannot read: not a regular file", path);
        goto close_fd;
    }
    size = (size_t)st.st_size;
    data = malloc(size ? size : 1);
    if (data == NULL) {
        set_err(err, errlen, "%s: out of memory reading %zu bytes", path, size);
        rc = P4P_ENOMEM;
        goto close_fd;
    }
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            free(data);
            goto close_fd;
        }
        if (r == 0) {
            break; /* the file shrank since fstat: parse what is there */
        }
        got += (size_t)r;
    }
    *out = data;
    *out_len = got;
    rc = 0;
close_fd:
    close(fd);
    return rc;
}

/* Parses the file's bytes and builds the CSR graph. */
static int parse_edge_list(struct loader *ld, struct sim_graph *out)
{
    struct edge_header h = {0};
    uint32_t *ends = NULL;
    uint64_t *lat = NULL;
    uint64_t cap, bad[2];
    int rc;

    if ((rc = ld_header(ld, &h)) != 0) {
        return rc;
    }
    /* Every edge line takes at least 5 bytes ("0 1 0"), so the bytes left bound the number of
     * edges present: a header that lies about E cannot make us allocate more than that. */
    cap = (uint64_t)(ld->end - ld->p) / 5 + 1;
    cap = cap < h.m ? cap : h.m;
    ends = malloc((size_t)(cap ? 2 * cap : 1) * sizeof *ends);
    lat = malloc((size_t)(cap ? cap : 1) * sizeof *lat);
    if (ends == NULL || lat == NULL) {
        rc = ld_fail(ld, P4P_ENOMEM, "out of memory for %llu edges", (unsigned long long)cap);
        goto free_edges;
    }
    if ((rc = ld_edges(ld, &h, cap, ends, lat)) != 0) {
        goto free_edges;
    }
    rc = csr_build((uint32_t)h.n, h.m, ends, lat, out, bad);
    if (rc == P4P_EMALFORMED) {
        ld->line = bad[0] + 2; /* edge k is on line k + 2 */
        rc = ld_fail(ld, rc, "duplicate edge %u %u (first on line %llu)", ends[2 * bad[0]],
                     ends[2 * bad[0] + 1], (unsigned long long)(bad[1] + 2));
    } else if (rc != 0) {
        set_err(ld->err, ld->errlen, "%s: out of memory building the graph", ld->path);
    }
free_edges:
    free(ends);
    free(lat);
    return rc;
}

int sim_graph_load_edges(const char *path, struct sim_graph *out, char *err, size_t errlen)
{
    struct loader ld = {.path = path, .line = 1, .err = err, .errlen = errlen};
    struct sim_graph g;
    char *data = NULL;
    size_t len = 0;
    int rc;

    if (path == NULL || out == NULL) {
        set_err(err, errlen, "sim_graph_load_edges: NULL argument");
        return P4P_EINVAL;
    }
    if ((rc = read_whole_file(path, &data, &len, err, errlen)) != 0) {
        return rc;
    }
    ld.p = data;
    ld.end = data + len;
    rc = parse_edge_list(&ld, &g);
    free(data);
    if (rc == 0) {
        *out = g;
    }
    return rc;
}

/* ---- igraph generators -------------------------------------------------------------------- */

static pthread_once_t igraph_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t igraph_lock = PTHREAD_MUTEX_INITIALIZER;
static char igraph_msg[256]; /* first message of the failing call; guarded by igraph_lock */

/*
 * igraph calls this once where an error starts and again, with an empty reason, at each level it
 * unwinds through; keep the first real message. IGRAPH_FINALLY_FREE() releases igraph's
 * temporaries for this level; returning (not aborting) makes the igraph call return the code.
 */
static void on_igraph_error(const char *reason, const char *file, int line, igraph_error_t code)
{
    (void)file;
    (void)line;
    if (igraph_msg[0] == '\0' && reason != NULL && reason[0] != '\0') {
        snprintf(igraph_msg, sizeof igraph_msg, "%s (%s)", reason, igraph_strerror(code));
    }
    IGRAPH_FINALLY_FREE();
}

/* Warnings are about igraph's choices, not errors in ours: stay quiet. */
static void on_igraph_warning(const char *reason, const char *file, int line)
{
    (void)reason;
    (void)file;
    (void)line;
}

static void igraph_install_handlers(void)
{
    igraph_set_error_handler(on_igraph_error);
    igraph_set_warning_handler(on_igraph_warning);
}

/* Checks the parameters of a generated kind so users get our words, not igraph's. */
static int check_params(const struct sim_config *cfg, char *err, size_t errlen)
{
    const uint32_t n = cfg->nodes.count, k = cfg->topology.degree;
    const double p = cfg->topology.p, radius = cfg->topology.radius;
    const char *why = NULL;

    switch (cfg->topology.kind) {
    case SIM_TOPO_RANDOM_REGULAR:
        if (k >= n) {
            why = "degree must be less than nodes.count";
        } else if ((uint64_t)n * k % 2 != 0) {
            why = "nodes.count * degree must be even";
        }
        break;
    case SIM_TOPO_ERDOS_RENYI:
        if (n < 2 || k > n - 1) {
            why = "needs nodes.count >= 2 and degree <= nodes.count - 1";
        }
        break;
    case SIM_TOPO_BARABASI_ALBERT:
        if (n == 0 || cfg->topology.m == 0) {
            why = "needs nodes.count >= 1 and m >= 1";
        }
        break;
    case SIM_TOPO_WATTS_STROGATZ:
        if (k < 2 || k % 2 != 0 || k >= n) {
            why = "degree must be even, at least 2 and less than nodes.count";
        } else if (!(p >= 0.0 && p <= 1.0)) {
            why = "p must be in [0, 1]";
        }
        break;
    case SIM_TOPO_RANDOM_GEOMETRIC:
        if (n == 0 || !(radius >= 0.0) || !isfinite(radius)) {
            why = "needs nodes.count >= 1 and a finite radius >= 0";
        }
        break;
    case SIM_TOPO_GRID:
        if (cfg->topology.width == 0 || cfg->topology.height == 0 ||
            (uint64_t)cfg->topology.width * cfg->topology.height != n) {
            why = "width and height must be at least 1 and width * height must equal nodes.count";
        }
        break;
    default:
        why = "unknown topology kind";
        break;
    }
    if (why != NULL) {
        set_err(err, errlen, "topology %s: %s", kind_name(cfg->topology.kind), why);
        return P4P_EINVAL;
    }
    return 0;
}

static igraph_error_t make_grid(const struct sim_config *cfg, igraph_t *g)
{
    igraph_vector_int_t dims;
    igraph_vector_bool_t circular;
    igraph_error_t ie;

    if ((ie = igraph_vector_int_init(&dims, 2)) != IGRAPH_SUCCESS) {
        return ie;
    }
    if ((ie = igraph_vector_bool_init(&circular, 2)) != IGRAPH_SUCCESS) {
        igraph_vector_int_destroy(&dims);
        return ie;
    }
    /* igraph numbers lattice nodes with the first dimension fastest: id = x + y * width. */
    VECTOR(dims)[0] = cfg->topology.width;
    VECTOR(dims)[1] = cfg->topology.height;
    VECTOR(circular)[0] = cfg->topology.torus != 0;
    VECTOR(circular)[1] = cfg->topology.torus != 0;
    ie = igraph_square_lattice(g, &dims, 1, false, false, &circular);
    igraph_vector_bool_destroy(&circular);
    igraph_vector_int_destroy(&dims);
    return ie;
}

/* Runs the generator for cfg's kind; on success *g is a new graph the caller destroys. */
static igraph_error_t run_generator(const struct sim_config *cfg, igraph_t *g, igraph_vector_t *x,
                                    igraph_vector_t *y)
{
    const igraph_integer_t n = cfg->nodes.count, k = cfg->topology.degree;

    switch (cfg->topology.kind) {
    case SIM_TOPO_RANDOM_REGULAR:
        return igraph_k_regular_game(g, n, k, false, false);
    case SIM_TOPO_ERDOS_RENYI:
        return igraph_erdos_renyi_game_gnp(g, n, (double)k / (double)(n - 1), false, false);
    case SIM_TOPO_BARABASI_ALBERT:
        /* power 1, attractiveness A = 1 (a node with degree d is chosen with weight d + 1). */
        return igraph_barabasi_game(g, n, 1.0, cfg->topology.m, NULL, false, 1.0, false,
                                    IGRAPH_BARABASI_PSUMTREE, NULL);
    case SIM_TOPO_WATTS_STROGATZ:
        return igraph_watts_strogatz_game(g, 1, n, k / 2, cfg->topology.p, false, false);
    case SIM_TOPO_RANDOM_GEOMETRIC:
        return igraph_grg_game(g, n, cfg->topology.radius, cfg->topology.torus != 0, x, y);
    case SIM_TOPO_GRID:
        return make_grid(cfg, g);
    default:
        return IGRAPH_EINVAL;
    }
}

/* Copies igraph's edge list into uint32_t endpoint pairs (*ends, freed by the caller). */
static int edges_from_igraph(const igraph_t *g, uint32_t n, uint32_t **ends, uint64_t *m, char *err,
                             size_t errlen)
{
    igraph_vector_int_t el;
    uint32_t *pairs = NULL;
    igraph_integer_t len;
    int rc = P4P_ENOMEM;

    if (igraph_vector_int_init(&el, 0) != IGRAPH_SUCCESS) {
        set_err(err, errlen, "topology: out of memory");
        return P4P_ENOMEM;
    }
    if (igraph_get_edgelist(g, &el, false) != IGRAPH_SUCCESS) {
        set_err(err, errlen, "topology: igraph: %s", igraph_msg);
        goto destroy_el;
    }
    len = igraph_vector_int_size(&el);
    if ((uint64_t)len / 2 > UINT32_MAX / 2) {
        set_err(err, errlen, "topology: %lld edges, at most %u supported", (long long)len / 2,
                UINT32_MAX / 2);
        rc = P4P_ETOOBIG;
        goto destroy_el;
    }
    pairs = malloc((size_t)(len ? len : 1) * sizeof *pairs);
    if (pairs == NULL) {
        set_err(err, errlen, "topology: out of memory for %lld edges", (long long)len / 2);
        goto destroy_el;
    }
    for (igraph_integer_t i = 0; i < len; i++) {
        igraph_integer_t v = VECTOR(el)[i];
        if (v < 0 || v >= (igraph_integer_t)n || (i % 2 == 1 && v == VECTOR(el)[i - 1])) {
            set_err(err, errlen, "topology: igraph returned a bad edge (internal error)");
            free(pairs);
            rc = P4P_EINVAL;
            goto destroy_el;
        }
        pairs[i] = (uint32_t)v;
    }
    *ends = pairs;
    *m = (uint64_t)len / 2;
    rc = 0;
destroy_el:
    igraph_vector_int_destroy(&el);
    return rc;
}

/* Sets g->xy for the kinds that have positions (random_geometric, grid); others keep NULL. */
static int attach_positions(const struct sim_config *cfg, const igraph_vector_t *x,
                            const igraph_vector_t *y, struct sim_graph *g)
{
    const uint32_t w = cfg->topology.width, h = cfg->topology.height;
    enum sim_topology_kind kind = cfg->topology.kind;

    if (kind != SIM_TOPO_RANDOM_GEOMETRIC && kind != SIM_TOPO_GRID) {
        return 0;
    }
    g->xy = malloc(((size_t)g->n ? 2 * (size_t)g->n : 1) * sizeof *g->xy);
    if (g->xy == NULL) {
        return P4P_ENOMEM;
    }
    for (uint32_t i = 0; i < g->n; i++) {
        if (kind == SIM_TOPO_RANDOM_GEOMETRIC) {
            g->xy[2 * i] = VECTOR(*x)[i];
            g->xy[2 * i + 1] = VECTOR(*y)[i];
        } else {
            g->xy[2 * i] = ((double)(i % w) + 0.5) / (double)w;
            g->xy[2 * i + 1] = ((double)(i / w) + 0.5) / (double)h;
        }
    }
    return 0;
}

/* Seeds igraph, generates, converts to CSR. Call with igraph_lock held. */
static int build_igraph_locked(const struct sim_config *cfg, uint64_t seed, struct sim_graph *out,
                               char *err, size_t errlen)
{
    const uint32_t n = cfg->nodes.count;
    const char *name = kind_name(cfg->topology.kind);
    struct sim_graph g;
    igraph_t ig;
    igraph_vector_t x, y;
    igraph_error_t ie;
    uint32_t *ends = NULL;
    uint64_t m = 0, bad[2];
    int rc = P4P_ENOMEM;

    igraph_msg[0] = '\0';
    if (igraph_vector_init(&x, 0) != IGRAPH_SUCCESS) {
        set_err(err, errlen, "topology %s: out of memory", name);
        return P4P_ENOMEM;
    }
    if (igraph_vector_init(&y, 0) != IGRAPH_SUCCESS) {
        set_err(err, errlen, "topology %s: out of memory", name);
        goto destroy_x;
    }
    ie = igraph_rng_seed(igraph_rng_default(), (igraph_uint_t)seed);
    if (ie == IGRAPH_SUCCESS) {
        ie = run_generator(cfg, &ig, &x, &y);
    }
    if (ie != IGRAPH_SUCCESS) {
        rc = ie == IGRAPH_ENOMEM ? P4P_ENOMEM : P4P_EINVAL;
        set_err(err, errlen, "topology %s: igraph: %s", name,
                igraph_msg[0] != '\0' ? igraph_msg : igraph_strerror(ie));
        goto destroy_y;
    }
    rc = edges_from_igraph(&ig, n, &ends, &m, err, errlen);
    igraph_destroy(&ig); /* before building the CSR copy, to lower peak memory */
    if (rc != 0) {
        goto destroy_y;
    }
    rc = csr_build(n, m, ends, NULL, &g, bad);
    if (rc == 0 && attach_positions(cfg, &x, &y, &g) != 0) {
        sim_graph_free(&g);
        rc = P4P_ENOMEM;
    }
    if (rc != 0) {
        set_err(err, errlen, "topology %s: %s", name,
                rc == P4P_EMALFORMED ? "igraph returned a multi-edge (internal error)"
                                     : "out of memory or too many edges");
        goto free_ends;
    }
    *out = g;
free_ends:
    free(ends);
destroy_y:
    igraph_vector_destroy(&y);
destroy_x:
    igraph_vector_destroy(&x);
    return rc;
}

static int build_from_file(const struct sim_config *cfg, struct sim_graph *out, char *err,
                           size_t errlen)
{
    struct sim_graph g;
    int rc = sim_graph_load_edges(cfg->topology.file, &g, err, errlen);

    if (rc != 0) {
        return rc;
    }
    if (g.n != cfg->nodes.count) {
        set_err(err, errlen, "%s: the file has %u nodes but nodes.count is %u", cfg->topology.file,
                g.n, cfg->nodes.count);
        sim_graph_free(&g);
        return P4P_EINVAL;
    }
    *out = g;
    return 0;
}

int sim_graph_build(const struct sim_config *cfg, uint64_t seed, struct sim_graph *out, char *err,
                    size_t errlen)
{
    struct sim_graph g;
    int rc;

    if (cfg == NULL || out == NULL) {
        set_err(err, errlen, "sim_graph_build: NULL argument");
        return P4P_EINVAL;
    }
    if (cfg->topology.kind == SIM_TOPO_FILE) {
        return build_from_file(cfg, out, err, errlen);
    }
    if ((rc = check_params(cfg, err, errlen)) != 0) {
        return rc;
    }
    pthread_once(&igraph_once, igraph_install_handlers);
    pthread_mutex_lock(&igraph_lock);
    rc = build_igraph_locked(cfg, seed, &g, err, errlen);
    pthread_mutex_unlock(&igraph_lock);
    if (rc == 0) {
        *out = g;
    }
    return rc;
}

/* ---- Using a graph ------------------------------------------------------------------------ */

void sim_graph_free(struct sim_graph *g)
{
    if (g == NULL) {
        return;
    }
    free(g->off);
    free(g->adj);
    free(g->latency_ns);
    free(g->xy);
    memset(g, 0, sizeof *g);
}

uint64_t sim_graph_slot(const struct sim_graph *g, uint32_t u, uint32_t v)
{
    uint32_t lo, hi;

    if (u >= g->n) {
        return SIM_GRAPH_NO_SLOT;
    }
    lo = g->off[u];
    hi = g->off[u + 1];
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->adj[mid] < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < g->off[u + 1] && g->adj[lo] == v ? lo : SIM_GRAPH_NO_SLOT;
}

int sim_graph_components(const struct sim_graph *g, uint32_t *count, uint32_t *largest)
{
    uint32_t *queue = malloc(((size_t)g->n ? g->n : 1) * sizeof *queue);
    uint8_t *seen = calloc((size_t)g->n ? g->n : 1, 1);
    uint32_t components = 0, best = 0;

    if (queue == NULL || seen == NULL) {
        free(queue);
        free(seen);
        return P4P_ENOMEM;
    }
    /* Breadth-first search from each unseen node; the queue restarts empty for each one. */
    for (uint32_t root = 0; root < g->n; root++) {
        uint32_t head = 0, tail = 0;
        if (seen[root]) {
            continue;
        }
        seen[root] = 1;
        queue[tail++] = root;
        while (head < tail) {
            uint32_t u = queue[head++];
            for (uint32_t s = g->off[u]; s < g->off[u + 1]; s++) {
                if (!seen[g->adj[s]]) {
                    seen[g->adj[s]] = 1;
                    queue[tail++] = g->adj[s];
                }
            }
        }
        components++;
        best = tail > best ? tail : best;
    }
    free(queue);
    free(seen);
    *count = components;
    *largest = best;
    return 0;
}
