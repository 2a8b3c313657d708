/*
 * identity.h — a node's Ed25519 identity (libsodium) and the signatures made with it.
 *
 * The secret key is derived from a 32-byte seed that the host's random stream supplies, so a
 * simulated node has the same identity in every run with the same seed.
 */
#ifndef P4P_IDENTITY_H
#define P4P_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

struct identity {
    uint8_t pk[32];
    uint8_t sk[64]; /* libsodium layout: seed || public key */
};

void identity_from_seed(struct identity *id, const uint8_t seed[32]);
void identity_sign(const struct identity *id, const uint8_t *msg, size_t len, uint8_t sig[64]);
/* 0 when sig is a valid signature of msg by pk, P4P_EBADSIG otherwise. */
int identity_verify(const uint8_t pk[32], const uint8_t *msg, size_t len, const uint8_t sig[64]);

#endif /* P4P_IDENTITY_H */
