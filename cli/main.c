/*
 * main.c — `p4p`: dispatches to the subcommands in cli/.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "p4p/p4p.h"
#include "version.h"

static void usage(FILE *out)
{
    fputs("usage: p4p COMMAND [ARGS]\n"
          "\n"
          "commands:\n"
          "  run SCENARIO [--seed N] [--set KEY=VALUE]... [--out FILE] [--quiet]\n"
          "        simulate a scenario file; write one SQLite results file\n"
          "  plot RESULTS [--out FILE] [--format png|svg|pdf|txt]\n"
          "        draw delivery latency, coverage and bytes per node (gnuplot)\n"
          "  bench flood GRAPH [--messages M] [--app null|engine] [--json]\n"
          "        flood benchmark on an edge-list graph file\n"
          "\n"
          "options:\n"
          "  -h, --help     this text\n"
          "  -V, --version  version and git commit\n"
          "\n"
          "exit codes: 0 success, 1 run failed, 2 usage or input error\n"
          "docs: README.md, scenarios/README.md, results/SCHEMA.md\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("p4p %s (%s)\n", P4P_VERSION, P4P_GIT_COMMIT);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "run") == 0) {
        return cli_run(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "plot") == 0) {
        return cli_plot(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "bench") == 0) {
        return cli_bench(argc - 1, argv + 1);
    }
    fprintf(stderr, "p4p: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
