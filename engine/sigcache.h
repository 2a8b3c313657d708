/*
 * sigcache.h — internal lookups of the shared signature cache (creation is public, p4p.h).
 */
#ifndef P4P_SIGCACHE_H
#define P4P_SIGCACHE_H

#include <stdint.h>

struct p4p_sigcache;

/* 1 when exactly this (id, signature) pair verified before. */
int sigcache_hit(const struct p4p_sigcache *c, const uint8_t id[32], const uint8_t sig[64]);
/* Records a pair that verified, replacing whatever shared its slot. */
void sigcache_put(struct p4p_sigcache *c, const uint8_t id[32], const uint8_t sig[64]);

#endif /* P4P_SIGCACHE_H */
