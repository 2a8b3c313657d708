/*
 * cli.h — the `p4p` command's subcommands and the few helpers they share.
 *
 * Conventions: data (tables, JSON) on stdout; progress and messages on stderr. Exit codes:
 *   0  success
 *   1  the run failed (results could not be written, out of memory, a checker failed)
 *   2  usage error, or a bad scenario / input file (message: FILE:LINE:COLUMN: what)
 */
#ifndef CLI_H
#define CLI_H

#include <stdint.h>

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

int cli_run(int argc, char **argv);
int cli_plot(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_hash(int argc, char **argv);
int cli_link(int argc, char **argv);
int cli_negentropy_harness(int argc, char **argv);

/* Monotonic wall-clock seconds (for progress and wall figures only, never for results). */
double cli_wall_s(void);
/* Peak resident set of this process, KiB. */
long cli_peak_rss_kb(void);
/* Makes libsodium's random source a stream of `seed` and initialises libsodium, so that
 * nothing in a simulation draws OS randomness. Returns 0 or -1. */
int cli_sodium_init_seeded(uint64_t seed);

#endif /* CLI_H */
