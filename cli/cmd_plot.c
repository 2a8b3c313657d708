/*
 * cmd_plot.c — `p4p plot RESULTS [--out FILE] [--format png|svg|pdf|txt]`: draws a results
 * file with the gnuplot script compiled in from results/plot.gp (res_plot()).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "res.h"

static int usage(void)
{
    fputs("usage: p4p plot RESULTS [--out FILE] [--format png|svg|pdf|txt]\n"
          "  default output: RESULTS with its extension replaced by the format's;\n"
          "  --format txt --out - prints the plot as text on stdout\n",
          stderr);
    return CLI_EXIT_USAGE;
}

int cli_plot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *format = "png";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:f:h", opts, NULL)) != -1) {
        if (c == 'o') {
            out = optarg;
        } else if (c == 'f') {
            format = optarg;
        } else if (c == 'h') {
            usage();
            return CLI_EXIT_OK;
        } else {
            return usage();
        }
    }
    if (optind != argc - 1) {
        return usage();
    }
    if (strcmp(format, "png") != 0 && strcmp(format, "svg") != 0 && strcmp(format, "pdf") != 0 &&
        strcmp(format, "txt") != 0) {
        fprintf(stderr, "p4p plot: unknown format '%s' (png, svg, pdf or txt)\n", format);
        return CLI_EXIT_USAGE;
    }
    const char *db = argv[optind];
    char derived[4096];
    if (out == NULL) {
        const char *dot = strrchr(db, '.');
        const char *slash = strrchr(db, '/');
        size_t stem =
            (dot != NULL && (slash == NULL || dot > slash)) ? (size_t)(dot - db) : strlen(db);
        if (stem + 5 >= sizeof(derived)) {
            fputs("p4p plot: path too long\n", stderr);
            return CLI_EXIT_USAGE;
        }
        snprintf(derived, sizeof(derived), "%.*s.%s", (int)stem, db, format);
        out = derived;
    }
    char err[1024];
    if (res_check(db, err, sizeof(err)) != 0) {
        fprintf(stderr, "p4p plot: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    if (res_plot(db, out, format, err, sizeof(err)) != 0) {
        fprintf(stderr, "p4p plot: %s\n", err);
        return CLI_EXIT_FAIL;
    }
    if (strcmp(out, "-") != 0) {
        printf("plot         %s\n", out);
    }
    return CLI_EXIT_OK;
}
