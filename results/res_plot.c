/*
 * res_plot.c — draws one results file as a figure through gnuplot (see res.h and plot.gp).
 *
 * gnuplot never sees the database. res_plot() checks the file (res_open_check), exports what
 * the three panels need into a private directory made by mkdtemp, as "x y" text files each
 * thinned to at most RES_PLOT_POINTS points (a run with a million deliveries still plots in
 * a blink), then writes a script made of variable assignments followed by plot.gp (embedded
 * as plot_gp) and runs gnuplot with that script on standard input and its standard error in
 * a file, whose first line becomes the message in err when gnuplot fails. Everything in the
 * directory is removed before returning.
 *
 *   results.sqlite --SQL--> latency.dat coverage.dat bytes.dat --+
 *                           plot.gp (vars + plot_gp) -- stdin ---+--> gnuplot --> out_path
 *
 * Strings from the database (the scenario name) and the output path reach gnuplot only inside
 * single-quoted string literals, where gnuplot expands neither macros nor backquotes.
 */
#include "res.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "p4p/p4p.h"
#include "plot_gp.h"

extern char **environ;

#define RES_PLOT_POINTS 2000 /* most points written per panel */

enum res_plot_kind {
    RES_PLOT_CDF,  /* one sorted value per row -> (value, fraction of rows up to it) */
    RES_PLOT_XY,   /* two values per row -> (x, y) */
    RES_PLOT_RANK, /* one sorted value per row -> (rank, value) */
};

/* What a panel needs: its data file, which rows to count, which to read (in order). */
struct res_plot_query {
    const char *file;
    const char *var; /* prefix of its gnuplot variables */
    enum res_plot_kind kind;
    const char *count_sql;
    const char *data_sql;
};

/* Rows with NULL or non-finite values are left out (BETWEEN is false for NULL). */
#define RES_LAT_FROM                                                                               \
    " FROM delivery AS d JOIN updates AS u ON u.update_id = d.update_id"                           \
    " WHERE (d.delivered_ns - u.created_ns) BETWEEN -1e300 AND 1e300"
#define RES_COV_FROM                                                                               \
    " FROM series WHERE name = 'coverage' AND t_ns BETWEEN -1e300 AND 1e300"                       \
    " AND value BETWEEN -1e300 AND 1e300"
#define RES_BYTES_FROM                                                                             \
    " FROM scalar WHERE name = 'bytes_out' AND node >= 0 AND value BETWEEN -1e300 AND 1e300"

static const struct res_plot_query res_plot_queries[] = {
    {"latency.dat", "lat", RES_PLOT_CDF, "SELECT count(*)" RES_LAT_FROM,
     "SELECT (d.delivered_ns - u.created_ns) / 1e9 AS s" RES_LAT_FROM " ORDER BY s"},
    {"coverage.dat", "cov", RES_PLOT_XY, "SELECT count(*)" RES_COV_FROM,
     "SELECT t_ns / 1e9, value" RES_COV_FROM " ORDER BY t_ns"},
    {"bytes.dat", "bytes", RES_PLOT_RANK, "SELECT count(*)" RES_BYTES_FROM,
     "SELECT value" RES_BYTES_FROM " ORDER BY value"},
};
#define RES_PLOT_PANELS (sizeof res_plot_queries / sizeof res_plot_queries[0])

/* What one export found, over all rows (not only the points written). */
struct res_plot_data {
    uint64_t n;
    double xmin, xmax, ymin, ymax;
    double p50, p99; /* CDF only */
    double xlo, xhi, ylo, yhi;
};

/* Files in the temporary directory, removed at the end. */
enum { RES_F_LAT, RES_F_COV, RES_F_BYTES, RES_F_SCRIPT, RES_F_ERR, RES_F_COUNT };
static const char *const res_plot_files[RES_F_COUNT] = {"latency.dat", "coverage.dat", "bytes.dat",
                                                        "plot.gp", "gnuplot.err"};

struct res_plot_ctx {
    char dir[4096];
    char file[RES_F_COUNT][4200];
    char *err;
    size_t errlen;
};

static void res_plot_err(struct res_plot_ctx *c, const char *fmt, ...)
{
    if (c->err == NULL || c->errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
}

static int res_has_control(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return 1;
        }
    }
    return 0;
}

static double res_min(double a, double b)
{
    return a < b ? a : b;
}

static double res_max(double a, double b)
{
    return a > b ? a : b;
}

/* Nearest-rank index, as in res_summarize(). */
static uint64_t res_plot_rank(uint64_t n, unsigned p)
{
    uint64_t rank = n / 100 * p + (n % 100 * p + 99) / 100;
    return rank > 0 ? rank - 1 : 0;
}

/* Axis ranges that gnuplot accepts (lo < hi) and that show every point with some margin. */
static void res_plot_ranges(enum res_plot_kind kind, struct res_plot_data *d)
{
    d->xlo = 0.0;
    d->xhi = 1.0;
    d->ylo = 0.0;
    d->yhi = 1.0;
    if (d->n == 0) {
        return;
    }
    switch (kind) {
    case RES_PLOT_CDF:
        d->xlo = res_min(0.0, d->xmin);
        d->xhi = d->xmax + 0.05 * (d->xmax - d->xlo);
        break;
    case RES_PLOT_XY:
        d->xlo = res_min(0.0, d->xmin);
        d->xhi = d->xmax;
        d->ylo = res_min(0.0, d->ymin);
        d->yhi = res_max(1.0, d->ymax);
        d->yhi += 0.05 * (d->yhi - d->ylo);
        break;
    case RES_PLOT_RANK:
        d->xhi = res_max(1.0, (double)(d->n - 1));
        d->ylo = res_min(0.0, d->ymin);
        d->yhi = d->ymax + 0.05 * (d->ymax - d->ylo);
        break;
    }
    if (!(d->xhi > d->xlo)) {
        d->xhi = d->xlo + 1.0;
    }
    if (!(d->yhi > d->ylo)) {
        d->yhi = d->ylo + 1.0;
    }
}

/* Takes one row into the running figures and writes it if it is one of the kept points. */
static void res_plot_row(FILE *f, const struct res_plot_query *q, sqlite3_stmt *st, uint64_t i,
                         uint64_t step, struct res_plot_data *d)
{
    double a = sqlite3_column_double(st, 0);
    double x = a;
    double y;
    if (q->kind == RES_PLOT_CDF) {
        y = (double)(i + 1) / (double)d->n;
        d->p50 = i == res_plot_rank(d->n, 50) ? a : d->p50;
        d->p99 = i == res_plot_rank(d->n, 99) ? a : d->p99;
        if (i == 0) {
            fprintf(f, "%.9g 0\n", x);
        }
    } else if (q->kind == RES_PLOT_RANK) {
        x = (double)i;
        y = a;
    } else {
        y = sqlite3_column_double(st, 1);
    }
    d->xmin = i == 0 ? x : res_min(d->xmin, x);
    d->xmax = i == 0 ? x : res_max(d->xmax, x);
    d->ymin = i == 0 ? y : res_min(d->ymin, y);
    d->ymax = i == 0 ? y : res_max(d->ymax, y);
    if (i == 0 || i + 1 == d->n || (i + 1) % step == 0) {
        fprintf(f, "%.9g %.9g\n", x, y);
    }
}

static int res_plot_count(sqlite3 *sql, const char *q, uint64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 n = sqlite3_column_int64(st, 0);
        *out = n > 0 ? (uint64_t)n : 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Writes one panel's data file; fills *d. */
static int res_plot_export(struct res_plot_ctx *c, sqlite3 *sql, const struct res_plot_query *q,
                           const char *path, struct res_plot_data *d)
{
    sqlite3_stmt *st = NULL;
    uint64_t i = 0;
    int err = 0;
    memset(d, 0, sizeof *d);
    int rc = res_plot_count(sql, q->count_sql, &d->n);
    FILE *f = rc == SQLITE_OK ? fopen(path, "w") : NULL;
    if (rc == SQLITE_OK && f == NULL) {
        res_plot_err(c, "%s: %s", path, strerror(errno));
        return P4P_EIO;
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(sql, q->data_sql, -1, &st, NULL);
    }
    uint64_t step = d->n > RES_PLOT_POINTS ? (d->n + RES_PLOT_POINTS - 1) / RES_PLOT_POINTS : 1;
    while (rc == SQLITE_OK && i < d->n && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        res_plot_row(f, q, st, i, step, d);
        i++;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        res_plot_err(c, "reading the results for %s: %s", q->file, sqlite3_errstr(rc));
        err = (rc & 0xff) == SQLITE_NOMEM ? P4P_ENOMEM : P4P_EMALFORMED;
    }
    d->n = i; /* the rows actually read */
    res_plot_ranges(q->kind, d);
    if (q->kind == RES_PLOT_CDF && d->n > 0 && f != NULL) {
        fprintf(f, "%.9g 1\n", d->xhi); /* the CDF stays at 1 to the right edge */
    }
    if (f != NULL) {
        int bad = ferror(f);
        bad |= fclose(f) != 0;
        if (bad && err == 0) {
            res_plot_err(c, "%s: cannot write", path);
            err = P4P_EIO;
        }
    }
    return err;
}

/* Writes name = 'value' with value as a gnuplot single-quoted string. */
static void res_gp_string(FILE *f, const char *name, const char *value)
{
    fprintf(f, "%s = '", name);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\'') {
            fputs("''", f);
        } else if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            fputc('?', f);
        } else {
            fputc(*p, f);
        }
    }
    fputs("'\n", f);
}

/* "scenario, seed 42, sim" (+ ", status failed"): from the run row, which is untrusted. */
static int res_plot_title(sqlite3 *sql, char *out, size_t outlen)
{
    static const char q[] = "SELECT scenario_path, seed, mode, status FROM run";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *path = (const char *)sqlite3_column_text(st, 0);
        const char *seed = (const char *)sqlite3_column_text(st, 1);
        const char *mode = (const char *)sqlite3_column_text(st, 2);
        const char *status = (const char *)sqlite3_column_text(st, 3);
        const char *base = path != NULL ? strrchr(path, '/') : NULL;
        base = base != NULL ? base + 1 : path != NULL ? path : "(no scenario)";
        const char *dot = strrchr(base, '.');
        int len = dot != NULL && dot != base ? (int)(dot - base) : (int)strlen(base);
        len = len > 200 ? 200 : len;
        snprintf(out, outlen, "%.*s, seed %.40s, %.10s%s%.20s", len, base, seed ? seed : "?",
                 mode ? mode : "?", status != NULL && strcmp(status, "ok") != 0 ? ", status " : "",
                 status != NULL && strcmp(status, "ok") != 0 ? status : "");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : P4P_EMALFORMED;
}

static int res_plot_script(struct res_plot_ctx *c, const char *out_path, const char *format,
                           const char *title, const struct res_plot_data *d)
{
    FILE *f = fopen(c->file[RES_F_SCRIPT], "w");
    if (f == NULL) {
        res_plot_err(c, "%s: %s", c->file[RES_F_SCRIPT], strerror(errno));
        return P4P_EIO;
    }
    res_gp_string(f, "fmt", format);
    res_gp_string(f, "outfile", strcmp(out_path, "-") == 0 ? "" : out_path);
    res_gp_string(f, "title_text", title);
    for (size_t i = 0; i < RES_PLOT_PANELS; i++) {
        const char *v = res_plot_queries[i].var;
        char name[32];
        snprintf(name, sizeof name, "%s_file", v);
        res_gp_string(f, name, c->file[i]);
        fprintf(f, "%s_n = %" PRIu64 "\n", v, d[i].n);
    }
    fprintf(f, "lat_p50 = %.17g\nlat_p99 = %.17g\nlat_lo = %.17g\nlat_hi = %.17g\n", d[0].p50,
            d[0].p99, d[0].xlo, d[0].xhi);
    fprintf(f, "cov_lo = %.17g\ncov_hi = %.17g\ncov_ylo = %.17g\ncov_yhi = %.17g\n", d[1].xlo,
            d[1].xhi, d[1].ylo, d[1].yhi);
    fprintf(f, "bytes_xhi = %.17g\nbytes_lo = %.17g\nbytes_hi = %.17g\n", d[2].xhi, d[2].ylo,
            d[2].yhi);
    fputs(plot_gp, f);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad) {
        res_plot_err(c, "%s: cannot write", c->file[RES_F_SCRIPT]);
        return P4P_EIO;
    }
    return 0;
}

/* The most useful line gnuplot wrote to standard error: plot.gp's own "p4p: " message if
 * there is one, else the first line that is neither an echo of the failing command
 * ("gnuplot> ...", "more> ...") nor the caret under it, without gnuplot's "line N:" prefix. */
static void res_plot_gnuplot_err(struct res_plot_ctx *c, const char *what)
{
    char line[512];
    char first[512] = "";
    FILE *f = fopen(c->file[RES_F_ERR], "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *s = line + strspn(line, " \t");
        s[strcspn(s, "\r\n")] = '\0';
        if (strncmp(s, "p4p: ", 5) == 0) {
            snprintf(first, sizeof first, "%s", s + 5);
            break;
        }
        if (strncmp(s, "line ", 5) == 0 && strchr(s, ':') != NULL) {
            s = strchr(s, ':') + 1;
            s += strspn(s, " \t");
        }
        if (first[0] == '\0' && *s != '\0' && *s != '^' && strncmp(s, "gnuplot>", 8) != 0 &&
            strncmp(s, "more>", 5) != 0) {
            snprintf(first, sizeof first, "%s", s);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    res_plot_err(c, "gnuplot %s%s%s", what, first[0] != '\0' ? ": " : "", first);
}

/* Runs gnuplot on the script; its standard output is ours only for a text plot to "-". */
static int res_plot_run(struct res_plot_ctx *c, int to_stdout)
{
    posix_spawn_file_actions_t fa;
    char *argv[] = {"gnuplot", NULL};
    pid_t pid;
    int status = 0;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        return P4P_ENOMEM;
    }
    int rc = posix_spawn_file_actions_addopen(&fa, 0, c->file[RES_F_SCRIPT], O_RDONLY, 0);
    if (rc == 0) {
        rc = posix_spawn_file_actions_addopen(&fa, 2, c->file[RES_F_ERR],
                                              O_WRONLY | O_CREAT | O_TRUNC, 0600);
    }
    if (rc == 0 && !to_stdout) {
        rc = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    }
    fflush(stdout); /* a text plot to "-" follows whatever we printed before */
    if (rc == 0) {
        rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    }
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        res_plot_err(c, "cannot run gnuplot: %s%s", strerror(rc),
                     rc == ENOENT ? " (install gnuplot-nox)" : "");
        return rc == ENOENT ? P4P_ENOTFOUND : P4P_EIO;
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            res_plot_err(c, "waiting for gnuplot: %s", strerror(errno));
            return P4P_EIO;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        res_plot_err(c, "cannot run gnuplot (install gnuplot-nox)");
        return P4P_ENOTFOUND;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        res_plot_gnuplot_err(c, WIFEXITED(status) ? "failed" : "was killed");
        return P4P_EIO;
    }
    return 0;
}

static int res_plot_args_ok(struct res_plot_ctx *c, const char *db_path, const char *out_path,
                            const char *format)
{
    static const char *const formats[] = {"png", "svg", "pdf", "txt"};
    int known = 0;
    if (db_path == NULL || out_path == NULL || out_path[0] == '\0' || format == NULL) {
        res_plot_err(c, "res_plot needs a database, an output path and a format");
        return 0;
    }
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        known |= strcmp(format, formats[i]) == 0;
    }
    if (!known) {
        res_plot_err(c, "unknown plot format '%.40s' (png, svg, pdf or txt)", format);
        return 0;
    }
    if (strcmp(out_path, "-") == 0 && strcmp(format, "txt") != 0) {
        res_plot_err(c, "only the txt format can be written to standard output");
        return 0;
    }
    if (res_has_control(out_path) || strlen(out_path) > 4000) {
        res_plot_err(c, "unusable output path (control characters or too long)");
        return 0;
    }
    return 1;
}

/* Makes the private directory and names the files in it. */
static int res_plot_mkdir(struct res_plot_ctx *c)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] != '/' || res_has_control(base) || strlen(base) > 3000) {
        base = "/tmp";
    }
    snprintf(c->dir, sizeof c->dir, "%s/p4p-plot-XXXXXX", base);
    if (mkdtemp(c->dir) == NULL) {
        res_plot_err(c, "cannot make a temporary directory in %s: %s", base, strerror(errno));
        c->dir[0] = '\0';
        return P4P_EIO;
    }
    size_t len = strlen(c->dir); /* < 3100, and the names are short */
    for (int i = 0; i < RES_F_COUNT; i++) {
        memcpy(c->file[i], c->dir, len);
        c->file[i][len] = '/';
        memcpy(c->file[i] + len + 1, res_plot_files[i], strlen(res_plot_files[i]) + 1);
    }
    return 0;
}

static void res_plot_rmdir(struct res_plot_ctx *c)
{
    if (c->dir[0] == '\0') {
        return;
    }
    for (int i = 0; i < RES_F_COUNT; i++) {
        unlink(c->file[i]);
    }
    rmdir(c->dir);
}

int res_plot(const char *db_path, const char *out_path, const char *format, char *err,
             size_t errlen)
{
    struct res_plot_ctx *c = calloc(1, sizeof *c);
    struct res_plot_data data[RES_PLOT_PANELS];
    char title[320];
    sqlite3 *sql = NULL;
    locale_t c_locale = (locale_t)0;
    locale_t old_locale;
    int e;
    if (c == NULL) {
        return P4P_ENOMEM;
    }
    c->err = err;
    c->errlen = errlen;
    res_plot_err(c, "%s", "");
    if (!res_plot_args_ok(c, db_path, out_path, format)) {
        free(c);
        return P4P_EINVAL;
    }
    e = res_open_check(db_path, &sql, err, errlen);
    if (e != 0) {
        goto cleanup;
    }
    /* Numbers are written for gnuplot, which reads '.' as the decimal point. */
    c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_locale == (locale_t)0) {
        e = P4P_ENOMEM;
        goto cleanup;
    }
    old_locale = uselocale(c_locale);
    e = res_plot_mkdir(c);
    for (size_t i = 0; e == 0 && i < RES_PLOT_PANELS; i++) {
        e = res_plot_export(c, sql, &res_plot_queries[i], c->file[i], &data[i]);
    }
    if (e == 0) {
        e = res_plot_title(sql, title, sizeof title);
        if (e != 0) {
            res_plot_err(c, "%s: cannot read the run row", db_path);
        }
    }
    if (e == 0) {
        e = res_plot_script(c, out_path, format, title, data);
    }
    uselocale(old_locale);
    freelocale(c_locale);
    if (e == 0) {
        e = res_plot_run(c, strcmp(out_path, "-") == 0);
    }

cleanup:
    res_plot_rmdir(c);
    sqlite3_close(sql);
    free(c);
    return e;
}
