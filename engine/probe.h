/*
 * probe.h — the one subtle rule shared by the engine's linear-probing hash tables (seen.c,
 * store.c), which delete by shifting entries back instead of leaving tombstones (Knuth,
 * TAOCP vol. 3, algorithm 6.4R).
 */
#ifndef P4P_PROBE_H
#define P4P_PROBE_H

#include <stdint.h>

/* With a hole at slot i, the entry found at slot j whose home slot is `home` must stay where
 * it is when its home lies cyclically in (i, j]; otherwise it moves back into the hole. */
static inline int probe_stays(uint32_t i, uint32_t j, uint32_t home)
{
    return (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
}

#endif /* P4P_PROBE_H */
