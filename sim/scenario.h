/*
 * scenario.h — reads a scenario file (YAML, via libyaml) into a validated struct sim_config,
 * applies command-line overrides (--set key=value, --seed N), and writes a resolved config
 * back out as a flat key list or as JSON (for the results database).
 *
 * Everything the parser knows about a key (its dotted name, type, place in the struct, range
 * and default) lives in one table in scenario.c; defaults, validation, overrides, the key list
 * and the JSON all come from it. scenarios/README.md documents every key for users.
 *
 * Errors are reported as one line "FILE:LINE:COLUMN: message" (1-based, pointing at the
 * offending key or value), or "--set:INDEX:COLUMN: message" when an override is at fault
 * (INDEX is the 1-based override number, COLUMN counts within "key=value"). Return codes:
 *   P4P_EPARSE     YAML syntax, unknown or duplicate key, wrong node type, alias/anchor/tag,
 *                  several documents, a value that does not parse as its type
 *   P4P_EINVAL     a value out of range, or keys that do not fit together
 *   P4P_EIO        the scenario file or the topology file cannot be read
 *   P4P_EMALFORMED the topology file's first line is not "N D E SEED"
 *   P4P_ETOOBIG    the scenario file is larger than SIM_SCENARIO_MAX_BYTES
 *   P4P_ENOMEM
 * No function here keeps a pointer to its arguments or keeps state between calls.
 */
#ifndef SIM_SCENARIO_H
#define SIM_SCENARIO_H

#include <stddef.h>

#include "config.h"

/* Scenario files are small; anything bigger is a mistake (or an attack on the parser). */
#define SIM_SCENARIO_MAX_BYTES (1024 * 1024)

/* One --set key=value, already split by the caller; --seed N arrives as key "seed". `value`
 * is taken literally (no YAML quoting). Both strings are only read during the call. */
struct sim_override {
    const char *key;
    const char *value;
};

/* Every key's default; name is "scenario". */
void sim_config_defaults(struct sim_config *cfg);

/* Loads `path`, applies `ov` (ov_count entries, in order; later ones win) on top of the file,
 * then validates. The name defaults to the file's base name without extension, and a relative
 * topology.file is taken from the file's directory. Returns 0 and fills *out, or a negative
 * P4P_E* code with exactly one line (no trailing newline) in err (err may be NULL if errlen is
 * 0); *out is written only on success. */
int sim_scenario_load(const char *path, const struct sim_override *ov, size_t ov_count,
                      struct sim_config *out, char *err, size_t errlen);

/* The same from `len` bytes of text (need not be NUL-terminated). `name` stands for the file
 * in error messages; `base_dir` (NULL = ".") resolves a relative topology.file. The name
 * defaults to "scenario". */
int sim_scenario_parse(const char *text, size_t len, const char *name, const char *base_dir,
                       const struct sim_override *ov, size_t ov_count, struct sim_config *out,
                       char *err, size_t errlen);

/* Calls cb once per leaf key, in table order, with its dotted path ("link.loss") and a
 * canonical value string ("5min", "65536B", "1000000bps", "2/s", "0.05", "gossip") that the
 * parser reads back to the identical value, whether as a quoted YAML scalar or as --set. Both
 * strings are valid only during the callback. */
void sim_config_each(const struct sim_config *cfg,
                     void (*cb)(void *ctx, const char *key, const char *value), void *ctx);

/* The config as one compact JSON object shaped like the YAML tree: integers and plain numbers
 * as JSON numbers, booleans as true/false, strings, enums and values with units as strings.
 * Writes at most cap bytes including a terminating NUL (when cap > 0) and returns the length
 * the whole object needs without the NUL, like snprintf. */
size_t sim_config_json(const struct sim_config *cfg, char *out, size_t cap);

#endif /* SIM_SCENARIO_H */
