/*
 * cmd_hash.c — `p4p hash RESULTS...`: the SHA-256 of each file's simulated results
 * (res_hash(), defined in results/SCHEMA.md). Same scenario and seed give the same hash,
 * whatever machine, build or directory ran them.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "res.h"

int cli_hash(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs("usage: p4p hash RESULTS...\n", stderr);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    int status = CLI_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        char err[1024], hex[65];
        if (res_check(argv[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "p4p hash: %s\n", err);
            status = CLI_EXIT_USAGE;
            continue;
        }
        if (res_hash(argv[i], hex) != 0) {
            fprintf(stderr, "p4p hash: %s: cannot read the results\n", argv[i]);
            status = CLI_EXIT_FAIL;
            continue;
        }
        printf("%s  %s\n", hex, argv[i]);
    }
    return status;
}
