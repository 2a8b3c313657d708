/*
 * identity.c — Ed25519 through libsodium (see identity.h).
 */
#include "identity.h"

#include <sodium.h>

#include "p4p/p4p.h"

void identity_from_seed(struct identity *id, const uint8_t seed[32])
{
    crypto_sign_seed_keypair(id->pk, id->sk, seed);
}

void identity_sign(const struct identity *id, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    crypto_sign_detached(sig, NULL, msg, len, id->sk);
}

int identity_verify(const uint8_t pk[32], const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : P4P_EBADSIG;
}
