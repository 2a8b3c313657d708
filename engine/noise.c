/*
 * noise.c — see noise.h. Section numbers refer to the Noise spec, revision 34.
 */
#include "noise.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "p4p/p4p.h"

/* ---- Hash functions (section 4.3) ---------------------------------------------------------- */

union hash_state {
    crypto_hash_sha256_state sha256;
    crypto_hash_sha512_state sha512;
    crypto_generichash_state blake2b;
};

size_t noise_hash_len(enum noise_hash hash)
{
    switch (hash) {
    case NOISE_HASH_SHA256:
        return 32;
    case NOISE_HASH_SHA512:
    case NOISE_HASH_BLAKE2B:
        return 64;
    }
    return 0;
}

/* BLOCKLEN: 64 for SHA256, 128 for SHA512 and BLAKE2b. */
static size_t hash_block_len(enum noise_hash hash)
{
    return hash == NOISE_HASH_SHA256 ? 64 : 128;
}

static void hash_init(enum noise_hash hash, union hash_state *st)
{
    switch (hash) {
    case NOISE_HASH_SHA256:
        crypto_hash_sha256_init(&st->sha256);
        break;
    case NOISE_HASH_SHA512:
        crypto_hash_sha512_init(&st->sha512);
        break;
    case NOISE_HASH_BLAKE2B:
        crypto_generichash_init(&st->blake2b, NULL, 0, 64);
        break;
    }
}

static void hash_update(enum noise_hash hash, union hash_state *st, const uint8_t *p, size_t n)
{
    if (n == 0) {
        return;
    }
    switch (hash) {
    case NOISE_HASH_SHA256:
        crypto_hash_sha256_update(&st->sha256, p, n);
        break;
    case NOISE_HASH_SHA512:
        crypto_hash_sha512_update(&st->sha512, p, n);
        break;
    case NOISE_HASH_BLAKE2B:
        crypto_generichash_update(&st->blake2b, p, n);
        break;
    }
}

static void hash_final(enum noise_hash hash, union hash_state *st, uint8_t *out)
{
    switch (hash) {
    case NOISE_HASH_SHA256:
        crypto_hash_sha256_final(&st->sha256, out);
        break;
    case NOISE_HASH_SHA512:
        crypto_hash_sha512_final(&st->sha512, out);
        break;
    case NOISE_HASH_BLAKE2B:
        crypto_generichash_final(&st->blake2b, out, 64);
        break;
    }
    sodium_memzero(st, sizeof(*st));
}

/* HASH(a || b). */
static void hash2(enum noise_hash hash, const uint8_t *a, size_t a_len, const uint8_t *b,
                  size_t b_len, uint8_t *out)
{
    union hash_state st;

    hash_init(hash, &st);
    hash_update(hash, &st, a, a_len);
    hash_update(hash, &st, b, b_len);
    hash_final(hash, &st, out);
}

/* HMAC-HASH(key, d1 || d2), RFC 2104 with the hash's block length. */
static void hmac2(enum noise_hash hash, const uint8_t *key, size_t key_len, const uint8_t *d1,
                  size_t d1_len, const uint8_t *d2, size_t d2_len, uint8_t *out)
{
    size_t block = hash_block_len(hash), hlen = noise_hash_len(hash);
    uint8_t k0[128] = {0}, pad[128], inner[NOISE_HASHLEN_MAX];
    union hash_state st;

    if (key_len > block) {
        hash2(hash, key, key_len, NULL, 0, k0);
    } else {
        memcpy(k0, key, key_len);
    }
    for (size_t i = 0; i < block; i++) {
        pad[i] = k0[i] ^ 0x36;
    }
    hash_init(hash, &st);
    hash_update(hash, &st, pad, block);
    hash_update(hash, &st, d1, d1_len);
    hash_update(hash, &st, d2, d2_len);
    hash_final(hash, &st, inner);
    for (size_t i = 0; i < block; i++) {
        pad[i] = k0[i] ^ 0x5c;
    }
    hash_init(hash, &st);
    hash_update(hash, &st, pad, block);
    hash_update(hash, &st, inner, hlen);
    hash_final(hash, &st, out);
    sodium_memzero(k0, sizeof(k0));
    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
}

void noise_hmac(enum noise_hash hash, const uint8_t *key, size_t key_len, const uint8_t *data,
                size_t data_len, uint8_t out[NOISE_HASHLEN_MAX])
{
    hmac2(hash, key, key_len, data, data_len, NULL, 0, out);
}

void noise_hkdf(enum noise_hash hash, const uint8_t *ck, const uint8_t *ikm, size_t ikm_len,
                uint8_t *out1, uint8_t *out2, uint8_t *out3)
{
    size_t hlen = noise_hash_len(hash);
    uint8_t temp_key[NOISE_HASHLEN_MAX];
    const uint8_t one = 1, two = 2, three = 3;

    hmac2(hash, ck, hlen, ikm, ikm_len, NULL, 0, temp_key);
    hmac2(hash, temp_key, hlen, &one, 1, NULL, 0, out1);
    hmac2(hash, temp_key, hlen, out1, hlen, &two, 1, out2);
    if (out3 != NULL) {
        hmac2(hash, temp_key, hlen, out2, hlen, &three, 1, out3);
    }
    sodium_memzero(temp_key, sizeof(temp_key));
}

/* ---- CipherState (section 5.1) ------------------------------------------------------------- */

/* ChaChaPoly nonce: 32 bits of zeros followed by the little-endian 64-bit counter. */
static void chachapoly_nonce(uint64_t n, uint8_t out[12])
{
    memset(out, 0, 4);
    for (int i = 0; i < 8; i++) {
        out[4 + i] = (uint8_t)(n >> (8 * i));
    }
}

void noise_cipher_init(struct noise_cipher *c, const uint8_t k[NOISE_KEYLEN])
{
    if (k != NULL) {
        memcpy(c->k, k, NOISE_KEYLEN);
    } else {
        sodium_memzero(c->k, NOISE_KEYLEN);
    }
    c->has_key = k != NULL;
    c->n = 0;
}

void noise_cipher_clear(struct noise_cipher *c)
{
    sodium_memzero(c, sizeof(*c));
}

void noise_cipher_set_nonce(struct noise_cipher *c, uint64_t n)
{
    c->n = n;
}

/* ENCRYPT(k, n, ad, plaintext) with no state change; the nonce is not checked. */
static int aead_encrypt(const uint8_t k[NOISE_KEYLEN], uint64_t n, const uint8_t *ad, size_t ad_len,
                        const uint8_t *pt, size_t pt_len, uint8_t *out, size_t out_cap,
                        size_t *out_len)
{
    uint8_t nonce[12];
    unsigned long long clen = 0;

    if (pt_len > out_cap || out_cap - pt_len < NOISE_TAGLEN) {
        return P4P_ETOOBIG;
    }
    chachapoly_nonce(n, nonce);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, pt_len, ad, ad_len, NULL, nonce, k);
    *out_len = (size_t)clen;
    return 0;
}

static int aead_decrypt(const uint8_t k[NOISE_KEYLEN], uint64_t n, const uint8_t *ad, size_t ad_len,
                        const uint8_t *ct, size_t ct_len, uint8_t *out, size_t out_cap,
                        size_t *out_len)
{
    uint8_t nonce[12];
    unsigned long long mlen = 0;

    if (ct_len < NOISE_TAGLEN) {
        return P4P_EMALFORMED;
    }
    if (ct_len - NOISE_TAGLEN > out_cap) {
        return P4P_ETOOBIG;
    }
    chachapoly_nonce(n, nonce);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, ct_len, ad, ad_len, nonce,
                                                  k) != 0) {
        return P4P_EBADSIG;
    }
    *out_len = (size_t)mlen;
    return 0;
}

int noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
                         const uint8_t *pt, size_t pt_len, uint8_t *out, size_t out_cap,
                         size_t *out_len)
{
    if (!c->has_key) {
        if (pt_len > out_cap) {
            return P4P_ETOOBIG;
        }
        if (pt_len > 0 && out != pt) {
            memmove(out, pt, pt_len);
        }
        *out_len = pt_len;
        return 0;
    }
    if (c->n == NOISE_NONCE_MAX) {
        return P4P_EFULL;
    }
    int rc = aead_encrypt(c->k, c->n, ad, ad_len, pt, pt_len, out, out_cap, out_len);
    if (rc == 0) {
        c->n++;
    }
    return rc;
}

int noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
                         const uint8_t *ct, size_t ct_len, uint8_t *out, size_t out_cap,
                         size_t *out_len)
{
    if (!c->has_key) {
        if (ct_len > out_cap) {
            return P4P_ETOOBIG;
        }
        if (ct_len > 0 && out != ct) {
            memmove(out, ct, ct_len);
        }
        *out_len = ct_len;
        return 0;
    }
    if (c->n == NOISE_NONCE_MAX) {
        return P4P_EFULL;
    }
    int rc = aead_decrypt(c->k, c->n, ad, ad_len, ct, ct_len, out, out_cap, out_len);
    if (rc == 0) {
        c->n++;
    }
    return rc;
}

int noise_cipher_encrypt_at(const struct noise_cipher *c, uint64_t n, const uint8_t *ad,
                            size_t ad_len, const uint8_t *pt, size_t pt_len, uint8_t *out,
                            size_t out_cap, size_t *out_len)
{
    if (!c->has_key) {
        return P4P_EINVAL;
    }
    if (n == NOISE_NONCE_MAX) {
        return P4P_EFULL;
    }
    return aead_encrypt(c->k, n, ad, ad_len, pt, pt_len, out, out_cap, out_len);
}

int noise_cipher_decrypt_at(const struct noise_cipher *c, uint64_t n, const uint8_t *ad,
                            size_t ad_len, const uint8_t *ct, size_t ct_len, uint8_t *out,
                            size_t out_cap, size_t *out_len)
{
    if (!c->has_key) {
        return P4P_EINVAL;
    }
    if (n == NOISE_NONCE_MAX) {
        return P4P_EFULL;
    }
    return aead_decrypt(c->k, n, ad, ad_len, ct, ct_len, out, out_cap, out_len);
}

int noise_cipher_rekey(struct noise_cipher *c)
{
    static const uint8_t zeros[NOISE_KEYLEN];
    uint8_t buf[NOISE_KEYLEN + NOISE_TAGLEN];
    size_t len;

    if (!c->has_key) {
        return P4P_EINVAL;
    }
    /* REKEY(k) = ENCRYPT(k, maxnonce, zerolen, zeros), truncated to 32 bytes (section 4.2). */
    aead_encrypt(c->k, NOISE_NONCE_MAX, NULL, 0, zeros, sizeof(zeros), buf, sizeof(buf), &len);
    memcpy(c->k, buf, NOISE_KEYLEN);
    sodium_memzero(buf, sizeof(buf));
    return 0;
}

/* ---- SymmetricState (section 5.2) ---------------------------------------------------------- */

int noise_symmetric_init(struct noise_symmetric *ss, enum noise_hash hash, const char *name)
{
    size_t hlen = noise_hash_len(hash), name_len = strlen(name);

    if (hlen == 0) {
        return P4P_EINVAL;
    }
    memset(ss, 0, sizeof(*ss));
    ss->hash = hash;
    ss->hash_len = hlen;
    if (name_len <= hlen) {
        memcpy(ss->h, name, name_len);
    } else {
        hash2(hash, (const uint8_t *)name, name_len, NULL, 0, ss->h);
    }
    memcpy(ss->ck, ss->h, hlen);
    noise_cipher_init(&ss->cs, NULL);
    return 0;
}

void noise_symmetric_mix_hash(struct noise_symmetric *ss, const uint8_t *data, size_t len)
{
    hash2(ss->hash, ss->h, ss->hash_len, data, len, ss->h);
}

void noise_symmetric_mix_key(struct noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
    uint8_t temp_k[NOISE_HASHLEN_MAX];

    noise_hkdf(ss->hash, ss->ck, ikm, len, ss->ck, temp_k, NULL);
    noise_cipher_init(&ss->cs, temp_k); /* truncated to 32 bytes when HASHLEN is 64 */
    sodium_memzero(temp_k, sizeof(temp_k));
}

void noise_symmetric_mix_key_and_hash(struct noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
    uint8_t temp_h[NOISE_HASHLEN_MAX], temp_k[NOISE_HASHLEN_MAX];

    noise_hkdf(ss->hash, ss->ck, ikm, len, ss->ck, temp_h, temp_k);
    noise_symmetric_mix_hash(ss, temp_h, ss->hash_len);
    noise_cipher_init(&ss->cs, temp_k);
    sodium_memzero(temp_h, sizeof(temp_h));
    sodium_memzero(temp_k, sizeof(temp_k));
}

int noise_symmetric_encrypt_and_hash(struct noise_symmetric *ss, const uint8_t *pt, size_t pt_len,
                                     uint8_t *out, size_t out_cap, size_t *out_len)
{
    size_t len;
    int rc = noise_cipher_encrypt(&ss->cs, ss->h, ss->hash_len, pt, pt_len, out, out_cap, &len);

    if (rc != 0) {
        return rc;
    }
    noise_symmetric_mix_hash(ss, out, len);
    *out_len = len;
    return 0;
}

int noise_symmetric_decrypt_and_hash(struct noise_symmetric *ss, const uint8_t *ct, size_t ct_len,
                                     uint8_t *out, size_t out_cap, size_t *out_len)
{
    uint8_t next_h[NOISE_HASHLEN_MAX];
    size_t len;

    /* h' = HASH(h || ciphertext) is computed first, so that out may overwrite ct, and is
     * committed only when the decryption succeeded. */
    hash2(ss->hash, ss->h, ss->hash_len, ct, ct_len, next_h);
    int rc = noise_cipher_decrypt(&ss->cs, ss->h, ss->hash_len, ct, ct_len, out, out_cap, &len);
    if (rc != 0) {
        return rc;
    }
    memcpy(ss->h, next_h, ss->hash_len);
    *out_len = len;
    return 0;
}

void noise_symmetric_split(const struct noise_symmetric *ss, struct noise_cipher *c1,
                           struct noise_cipher *c2)
{
    uint8_t k1[NOISE_HASHLEN_MAX], k2[NOISE_HASHLEN_MAX];

    noise_hkdf(ss->hash, ss->ck, NULL, 0, k1, k2, NULL);
    noise_cipher_init(c1, k1);
    noise_cipher_init(c2, k2);
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
}

/* ---- HandshakeState (section 5.3) ---------------------------------------------------------- */

enum token { TOK_END = 0, TOK_E, TOK_S, TOK_EE, TOK_ES, TOK_SE, TOK_SS };

#define TOKENS_MAX 5

static const uint8_t pattern_xx[3][TOKENS_MAX] = {
    {TOK_E},
    {TOK_E, TOK_EE, TOK_S, TOK_ES},
    {TOK_S, TOK_SE},
};

static const uint8_t pattern_ik[2][TOKENS_MAX] = {
    {TOK_E, TOK_ES, TOK_S, TOK_SS},
    {TOK_E, TOK_EE, TOK_SE},
};

static uint32_t pattern_messages(enum noise_pattern p)
{
    return p == NOISE_PATTERN_XX ? 3 : 2;
}

static const uint8_t *pattern_tokens(enum noise_pattern p, uint32_t i)
{
    return p == NOISE_PATTERN_XX ? pattern_xx[i] : pattern_ik[i];
}

int noise_handshake_init(struct noise_handshake *hs, const struct noise_handshake_config *cfg)
{
    static const char *const hash_names[] = {"", "SHA256", "SHA512", "BLAKE2b"};
    char name[64];
    int rc;

    if (cfg->pattern != NOISE_PATTERN_XX && cfg->pattern != NOISE_PATTERN_IK) {
        return P4P_EINVAL;
    }
    if (noise_hash_len(cfg->hash) == 0 || cfg->s_priv == NULL ||
        (cfg->e_priv == NULL && cfg->random == NULL) ||
        (cfg->prologue == NULL && cfg->prologue_len > 0)) {
        return P4P_EINVAL;
    }
    bool wants_rs = cfg->pattern == NOISE_PATTERN_IK && cfg->is_initiator;
    if (wants_rs != (cfg->rs != NULL)) {
        return P4P_EINVAL;
    }
    snprintf(name, sizeof(name), "Noise_%s_25519_ChaChaPoly_%s",
             cfg->pattern == NOISE_PATTERN_XX ? "XX" : "IK", hash_names[cfg->hash]);

    memset(hs, 0, sizeof(*hs));
    rc = noise_symmetric_init(&hs->ss, cfg->hash, name);
    if (rc != 0) {
        return rc;
    }
    hs->pattern = cfg->pattern;
    hs->is_initiator = cfg->is_initiator;
    hs->random = cfg->random;
    hs->random_ctx = cfg->random_ctx;
    memcpy(hs->s_priv, cfg->s_priv, NOISE_DHLEN);
    crypto_scalarmult_base(hs->s_pub, hs->s_priv);
    if (cfg->e_priv != NULL) {
        memcpy(hs->fixed_e, cfg->e_priv, NOISE_DHLEN);
        hs->has_fixed_e = true;
    }
    if (cfg->rs != NULL) {
        memcpy(hs->rs, cfg->rs, NOISE_DHLEN);
        hs->has_rs = true;
    }
    noise_symmetric_mix_hash(&hs->ss, cfg->prologue, cfg->prologue_len);
    if (hs->pattern == NOISE_PATTERN_IK) {
        /* Pre-message "<- s": both sides hash the responder's static key. */
        noise_symmetric_mix_hash(&hs->ss, hs->is_initiator ? hs->rs : hs->s_pub, NOISE_DHLEN);
    }
    return 0;
}

enum noise_action noise_handshake_action(const struct noise_handshake *hs)
{
    if (hs->split_done || (hs->pattern != NOISE_PATTERN_XX && hs->pattern != NOISE_PATTERN_IK)) {
        return NOISE_ACTION_DONE;
    }
    if (hs->msg_index >= pattern_messages(hs->pattern)) {
        return NOISE_ACTION_SPLIT;
    }
    bool initiator_sends = hs->msg_index % 2 == 0;
    return initiator_sends == hs->is_initiator ? NOISE_ACTION_WRITE : NOISE_ACTION_READ;
}

size_t noise_handshake_write_len(const struct noise_handshake *hs, size_t payload_len)
{
    if (noise_handshake_action(hs) != NOISE_ACTION_WRITE) {
        return 0;
    }
    const uint8_t *tok = pattern_tokens(hs->pattern, hs->msg_index);
    bool has_key = hs->ss.cs.has_key;
    size_t len = 0;
    for (int i = 0; i < TOKENS_MAX && tok[i] != TOK_END; i++) {
        if (tok[i] == TOK_E) {
            len += NOISE_DHLEN;
        } else if (tok[i] == TOK_S) {
            len += NOISE_DHLEN + (has_key ? NOISE_TAGLEN : 0);
        } else {
            has_key = true;
        }
    }
    return len + payload_len + (has_key ? NOISE_TAGLEN : 0);
}

/* MixKey(DH(priv, pub)); the all-zero result of a low-order point is refused. */
static int mix_dh(struct noise_symmetric *ss, const uint8_t *priv, const uint8_t *pub)
{
    uint8_t shared[NOISE_DHLEN];

    if (crypto_scalarmult(shared, priv, pub) != 0) {
        sodium_memzero(shared, sizeof(shared));
        return P4P_EMALFORMED;
    }
    noise_symmetric_mix_key(ss, shared, sizeof(shared));
    sodium_memzero(shared, sizeof(shared));
    return 0;
}

/* The DH tokens ee, es, se, ss, from this side's point of view. */
static int mix_dh_token(struct noise_handshake *hs, uint8_t tok)
{
    bool ini = hs->is_initiator;

    switch (tok) {
    case TOK_EE:
        return mix_dh(&hs->ss, hs->e_priv, hs->re);
    case TOK_ES:
        return ini ? mix_dh(&hs->ss, hs->e_priv, hs->rs) : mix_dh(&hs->ss, hs->s_priv, hs->re);
    case TOK_SE:
        return ini ? mix_dh(&hs->ss, hs->s_priv, hs->re) : mix_dh(&hs->ss, hs->e_priv, hs->rs);
    case TOK_SS:
        return mix_dh(&hs->ss, hs->s_priv, hs->rs);
    }
    return P4P_EINVAL;
}

static int write_ephemeral(struct noise_handshake *hs, uint8_t *out, size_t cap)
{
    if (cap < NOISE_DHLEN) {
        return P4P_ETOOBIG;
    }
    if (hs->has_fixed_e) {
        memcpy(hs->e_priv, hs->fixed_e, NOISE_DHLEN);
    } else {
        hs->random(hs->random_ctx, hs->e_priv, NOISE_DHLEN);
    }
    crypto_scalarmult_base(hs->e_pub, hs->e_priv);
    memcpy(out, hs->e_pub, NOISE_DHLEN);
    noise_symmetric_mix_hash(&hs->ss, hs->e_pub, NOISE_DHLEN);
    return 0;
}

static int write_tokens(struct noise_handshake *hs, const uint8_t *payload, size_t payload_len,
                        uint8_t *out, size_t out_cap, size_t *out_len)
{
    const uint8_t *tok = pattern_tokens(hs->pattern, hs->msg_index);
    size_t off = 0, n;
    int rc = 0;

    for (int i = 0; i < TOKENS_MAX && tok[i] != TOK_END && rc == 0; i++) {
        if (tok[i] == TOK_E) {
            rc = write_ephemeral(hs, out + off, out_cap - off);
            off += rc == 0 ? NOISE_DHLEN : 0;
        } else if (tok[i] == TOK_S) {
            rc = noise_symmetric_encrypt_and_hash(&hs->ss, hs->s_pub, NOISE_DHLEN, out + off,
                                                  out_cap - off, &n);
            off += rc == 0 ? n : 0;
        } else {
            rc = mix_dh_token(hs, tok[i]);
        }
    }
    if (rc == 0) {
        rc = noise_symmetric_encrypt_and_hash(&hs->ss, payload, payload_len, out + off,
                                              out_cap - off, &n);
    }
    if (rc == 0) {
        *out_len = off + n;
    }
    return rc;
}

int noise_handshake_write(struct noise_handshake *hs, const uint8_t *payload, size_t payload_len,
                          uint8_t *out, size_t out_cap, size_t *out_len)
{
    struct noise_handshake tmp;
    size_t len = 0;

    if (noise_handshake_action(hs) != NOISE_ACTION_WRITE || (payload == NULL && payload_len)) {
        return P4P_EINVAL;
    }
    size_t need = noise_handshake_write_len(hs, payload_len);
    if (need > NOISE_MSG_MAX || need > out_cap) {
        return P4P_ETOOBIG;
    }
    tmp = *hs;
    int rc = write_tokens(&tmp, payload, payload_len, out, out_cap, &len);
    if (rc == 0) {
        tmp.msg_index++;
        *hs = tmp;
        *out_len = len;
    }
    sodium_memzero(&tmp, sizeof(tmp));
    return rc;
}

static int read_tokens(struct noise_handshake *hs, const uint8_t *msg, size_t msg_len,
                       uint8_t *payload, size_t payload_cap, size_t *payload_len)
{
    const uint8_t *tok = pattern_tokens(hs->pattern, hs->msg_index);
    size_t off = 0, n;
    int rc = 0;

    for (int i = 0; i < TOKENS_MAX && tok[i] != TOK_END && rc == 0; i++) {
        if (tok[i] == TOK_E) {
            if (msg_len - off < NOISE_DHLEN) {
                return P4P_EMALFORMED;
            }
            memcpy(hs->re, msg + off, NOISE_DHLEN);
            hs->has_re = true;
            noise_symmetric_mix_hash(&hs->ss, hs->re, NOISE_DHLEN);
            off += NOISE_DHLEN;
        } else if (tok[i] == TOK_S) {
            size_t len = NOISE_DHLEN + (hs->ss.cs.has_key ? NOISE_TAGLEN : 0);
            if (msg_len - off < len) {
                return P4P_EMALFORMED;
            }
            rc = noise_symmetric_decrypt_and_hash(&hs->ss, msg + off, len, hs->rs, NOISE_DHLEN, &n);
            hs->has_rs = rc == 0;
            off += len;
        } else {
            rc = mix_dh_token(hs, tok[i]);
        }
    }
    if (rc != 0) {
        return rc;
    }
    return noise_symmetric_decrypt_and_hash(&hs->ss, msg + off, msg_len - off, payload, payload_cap,
                                            payload_len);
}

int noise_handshake_read(struct noise_handshake *hs, const uint8_t *msg, size_t msg_len,
                         uint8_t *payload, size_t payload_cap, size_t *payload_len)
{
    struct noise_handshake tmp;
    size_t len = 0;

    if (noise_handshake_action(hs) != NOISE_ACTION_READ || (msg == NULL && msg_len)) {
        return P4P_EINVAL;
    }
    if (msg_len > NOISE_MSG_MAX) {
        return P4P_EMALFORMED;
    }
    tmp = *hs;
    int rc = read_tokens(&tmp, msg, msg_len, payload, payload_cap, &len);
    if (rc == 0) {
        tmp.msg_index++;
        *hs = tmp;
        *payload_len = len;
    }
    sodium_memzero(&tmp, sizeof(tmp));
    return rc;
}

const uint8_t *noise_handshake_remote_static(const struct noise_handshake *hs)
{
    return hs->has_rs ? hs->rs : NULL;
}

const uint8_t *noise_handshake_local_static(const struct noise_handshake *hs)
{
    return hs->s_pub;
}

size_t noise_handshake_hash(const struct noise_handshake *hs, uint8_t out[NOISE_HASHLEN_MAX])
{
    memcpy(out, hs->ss.h, hs->ss.hash_len);
    return hs->ss.hash_len;
}

int noise_handshake_split(struct noise_handshake *hs, struct noise_cipher *send,
                          struct noise_cipher *recv)
{
    struct noise_cipher c1, c2;

    if (noise_handshake_action(hs) != NOISE_ACTION_SPLIT) {
        return P4P_EINVAL;
    }
    noise_symmetric_split(&hs->ss, &c1, &c2);
    *send = hs->is_initiator ? c1 : c2;
    *recv = hs->is_initiator ? c2 : c1;
    sodium_memzero(&c1, sizeof(c1));
    sodium_memzero(&c2, sizeof(c2));
    /* Keep h (channel binding) and rs (the peer's identity); wipe the rest. */
    sodium_memzero(hs->ss.ck, sizeof(hs->ss.ck));
    noise_cipher_clear(&hs->ss.cs);
    sodium_memzero(hs->s_priv, sizeof(hs->s_priv));
    sodium_memzero(hs->e_priv, sizeof(hs->e_priv));
    sodium_memzero(hs->fixed_e, sizeof(hs->fixed_e));
    hs->split_done = true;
    return 0;
}

void noise_handshake_destroy(struct noise_handshake *hs)
{
    sodium_memzero(hs, sizeof(*hs));
}
