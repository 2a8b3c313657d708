/*
 * main.c — `p4p`: dispatches to the subcommands in cli/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
          "  bench flood GRAPH [--messages M] [--app null|engine] [--repeat R] [--json] "
          "[--no-sigcache]\n"
          "        flood benchmark on an edge-list graph file\n"
          "  hash RESULTS...\n"
          "        SHA-256 of the simulated results (equal for equal scenario and seed)\n"
          "  link lora|ble|wifi OPTIONS [--json]\n"
          "        radio calculator: airtime, duty cycle, range, discovery, throughput\n"
          "  negentropy-harness [--nonstandard [--buckets N]] < COMMANDS\n"
          "        negentropy reference test-harness line protocol on stdin/stdout\n"
          "\n"
          "options:\n"
          "  -h, --help     this text\n"
          "  -V, --version  version and git commit\n"
          "\n"
          "exit codes: 0 success, 1 run failed, 2 usage or input error\n"
          "docs: README.md, scenarios/README.md, results/SCHEMA.md\n",
          out);
}

/* A large simulation touches hundreds of MB of small per-node tables in random order; with
 * 4 KiB pages, TLB misses dominate its run time (measured on the 100,000-node flood: 0.80 M
 * deliveries/s with 4 KiB pages, 1.18 M with huge pages). glibc backs malloc with transparent
 * huge pages when its tunable says so, and reads tunables only at start-up, so p4p restarts
 * itself once with the tunable set. A user's own GLIBC_TUNABLES is left alone, and if the
 * restart fails p4p simply goes on with normal pages. */
static void use_huge_pages(char **argv)
{
    if (getenv("GLIBC_TUNABLES") != NULL) {
        return;
    }
    if (setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 1) == 0) {
        execv("/proc/self/exe", argv);
    }
}

int main(int argc, char **argv)
{
    use_huge_pages(argv);
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
    if (strcmp(cmd, "hash") == 0) {
        return cli_hash(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "link") == 0) {
        return cli_link(argc - 1, argv + 1);
    }
    if (strcmp(cmd, "negentropy-harness") == 0) {
        return cli_negentropy_harness(argc - 1, argv + 1);
    }
    fprintf(stderr, "p4p: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
