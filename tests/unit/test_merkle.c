/*
 * test_merkle.c — unit tests for engine/merkle.{h,c}, the blob Merkle tree and its proofs.
 *
 * Roots are checked against two naive implementations written here: RFC 6962's recursive split
 * and level-by-level pairing with the odd node promoted (merkle.h says they are the same tree).
 * Every inclusion proof and every range proof up to n = 40 must verify, and fail when a leaf
 * hash, a proof hash, the root or the index is changed; proofs of the wrong length are refused
 * as malformed; garbage never crashes. An end-to-end case chunks a blob with FastCDC and checks
 * the leaf list piece by piece as a receiver would. Leaf hashes are ChaCha20 key stream with a
 * fixed key, so the run is deterministic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "fastcdc.h"
#include "merkle.h"

#define H MERKLE_HASH_LEN

/* ---- Helpers ------------------------------------------------------------------------------- */

static void stream(uint8_t *out, size_t len, uint8_t seed)
{
    uint8_t key[crypto_stream_chacha20_KEYBYTES];
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    memset(key, seed, sizeof(key));
    crypto_stream_chacha20(out, len, nonce, key);
}

/* n distinct pseudo-random leaf hashes. */
static uint8_t *make_leaves(size_t n)
{
    uint8_t *p = malloc(n * H + 1);
    assert_non_null(p);
    stream(p, n * H, 1);
    return p;
}

static void hex(const char *s, uint8_t *out, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * k, "%2x", &v), 1);
        out[k] = (uint8_t)v;
    }
}

static unsigned ceil_log2(uint64_t n)
{
    unsigned b = 0;
    while (b < 64 && (UINT64_C(1) << b) < n) {
        b++;
    }
    return b;
}

/* RFC 6962 section 2.1, with its hash replaced: MTH(D[0:n]) = N(MTH(D[0:k]), MTH(D[k:n])) for
 * the largest power of two k < n. Written from the RFC, sharing no code with merkle.c. */
static void naive_rfc6962(const uint8_t *leaves, size_t n, uint8_t out[H])
{
    if (n == 0) {
        crypto_generichash(out, H, NULL, 0, NULL, 0);
        return;
    }
    if (n == 1) {
        memcpy(out, leaves, H);
        return;
    }
    size_t k = 1;
    while (2 * k < n) {
        k *= 2;
    }
    uint8_t buf[1 + 2 * H];
    buf[0] = 1;
    naive_rfc6962(leaves, k, buf + 1);
    naive_rfc6962(leaves + k * H, n - k, buf + 1 + H);
    crypto_generichash(out, H, buf, sizeof(buf), NULL, 0);
}

/* Level by level: pair left to right, promote an odd last node unchanged. */
static void naive_levels(const uint8_t *leaves, size_t n, uint8_t out[H])
{
    uint8_t *level = malloc(n * H);
    assert_non_null(level);
    memcpy(level, leaves, n * H);
    while (n > 1) {
        size_t m = 0;
        for (size_t k = 0; k < n; k += 2, m++) {
            if (k + 1 == n) {
                memmove(level + m * H, level + k * H, H);
                continue;
            }
            uint8_t buf[1 + 2 * H];
            buf[0] = 1;
            memcpy(buf + 1, level + k * H, 2 * H);
            crypto_generichash(level + m * H, H, buf, sizeof(buf), NULL, 0);
        }
        n = m;
    }
    memcpy(out, level, H);
    free(level);
}

/* ---- Hashes and roots ---------------------------------------------------------------------- */

static void test_hashes(void **state)
{
    (void)state;
    uint8_t chunk[1000], a[H], b[H];
    stream(chunk, sizeof(chunk), 2);

    /* L(chunk) = BLAKE2b-256(0x00 || chunk), one-shot and streamed in pieces. */
    uint8_t buf[1 + sizeof(chunk)];
    buf[0] = 0;
    memcpy(buf + 1, chunk, sizeof(chunk));
    crypto_generichash(a, H, buf, sizeof(buf), NULL, 0);
    merkle_leaf_hash(chunk, sizeof(chunk), b);
    assert_memory_equal(a, b, H);
    crypto_generichash_state st;
    merkle_leaf_init(&st);
    crypto_generichash_update(&st, chunk, 1);
    crypto_generichash_update(&st, chunk + 1, 600);
    crypto_generichash_update(&st, chunk + 601, sizeof(chunk) - 601);
    crypto_generichash_final(&st, b, H);
    assert_memory_equal(a, b, H);

    /* N(l, r) = BLAKE2b-256(0x01 || l || r), also when out aliases an input. */
    uint8_t l[H], r[H], node[1 + 2 * H];
    stream(l, H, 3);
    stream(r, H, 4);
    node[0] = 1;
    memcpy(node + 1, l, H);
    memcpy(node + 1 + H, r, H);
    crypto_generichash(a, H, node, sizeof(node), NULL, 0);
    merkle_node_hash(l, r, b);
    assert_memory_equal(a, b, H);
    merkle_node_hash(l, r, l);
    assert_memory_equal(a, l, H);

    /* The empty root is BLAKE2b-256 of nothing (RFC 7693 test value). */
    uint8_t expect[H];
    hex("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8", expect, H);
    assert_int_equal(merkle_root(NULL, 0, a), 0);
    assert_memory_equal(a, expect, H);
}

static void test_roots_match_naive(void **state)
{
    (void)state;
    uint8_t *leaves = make_leaves(64);
    for (size_t n = 1; n <= 64; n++) {
        uint8_t got[H], rfc[H], lev[H];
        assert_int_equal(merkle_root(leaves, n, got), 0);
        naive_rfc6962(leaves, n, rfc);
        naive_levels(leaves, n, lev);
        assert_memory_equal(got, rfc, H);
        assert_memory_equal(got, lev, H);
    }
    /* One leaf: the root is the leaf hash. Changing any leaf changes the root. */
    uint8_t root[H], changed[H];
    assert_int_equal(merkle_root(leaves, 1, root), 0);
    assert_memory_equal(root, leaves, H);
    assert_int_equal(merkle_root(leaves, 37, root), 0);
    for (size_t k = 0; k < 37; k++) {
        leaves[k * H + 5] ^= 0x10;
        assert_int_equal(merkle_root(leaves, 37, changed), 0);
        assert_memory_not_equal(root, changed, H);
        leaves[k * H + 5] ^= 0x10;
    }
    assert_int_equal(merkle_root(NULL, 3, root), P4P_EINVAL);
    assert_int_equal(merkle_root(leaves, 3, NULL), P4P_EINVAL);
    free(leaves);
}

/* ---- Inclusion proofs ---------------------------------------------------------------------- */

static void test_inclusion_proofs(void **state)
{
    (void)state;
    uint8_t *leaves = make_leaves(64);
    uint8_t proof[MERKLE_PROOF_MAX * H], root[H];
    for (uint64_t n = 1; n <= 64; n++) {
        assert_int_equal(merkle_root(leaves, n, root), 0);
        for (uint64_t i = 0; i < n; i++) {
            size_t count = 999;
            const uint8_t *leaf = leaves + i * H;
            assert_int_equal(merkle_proof(leaves, n, i, proof, MERKLE_PROOF_MAX, &count), 0);
            assert_true(count <= ceil_log2(n));
            assert_int_equal(count, merkle_range_proof_count(n, i, i + 1));
            assert_int_equal(merkle_verify(root, n, i, leaf, proof, count), 0);

            /* A flipped bit anywhere: leaf, each proof hash, root. */
            uint8_t bad[H];
            memcpy(bad, leaf, H);
            bad[i % H] ^= 1;
            assert_int_equal(merkle_verify(root, n, i, bad, proof, count), P4P_EBADSIG);
            for (size_t k = 0; k < count; k++) {
                proof[k * H + 31] ^= 0x80;
                assert_int_equal(merkle_verify(root, n, i, leaf, proof, count), P4P_EBADSIG);
                proof[k * H + 31] ^= 0x80;
            }
            memcpy(bad, root, H);
            bad[0] ^= 4;
            assert_int_equal(merkle_verify(bad, n, i, leaf, proof, count), P4P_EBADSIG);

            /* Any other index of the same tree. */
            for (uint64_t other = 0; other < n; other++) {
                if (other != i) {
                    int rc = merkle_verify(root, n, other, leaf, proof, count);
                    assert_true(rc == P4P_EBADSIG || rc == P4P_EMALFORMED);
                }
            }
            assert_int_equal(merkle_verify(root, n, n, leaf, proof, count), P4P_EINVAL);

            /* Too short, too long. */
            if (count > 0) {
                assert_int_equal(merkle_verify(root, n, i, leaf, proof, count - 1), P4P_EMALFORMED);
            }
            assert_int_equal(merkle_verify(root, n, i, leaf, proof, count + 1), P4P_EMALFORMED);
        }
    }
    free(leaves);
}

/* What merkle.h warns about: the root does not commit to n by itself. Leaf 2 of 3 verifies as
 * leaf 1 of 2, its proof N(leaf 0, leaf 1) standing in for a leaf. */
static void test_root_does_not_bind_n(void **state)
{
    (void)state;
    uint8_t *leaves = make_leaves(3);
    uint8_t root[H], proof[MERKLE_PROOF_MAX * H];
    size_t count;
    assert_int_equal(merkle_root(leaves, 3, root), 0);
    assert_int_equal(merkle_proof(leaves, 3, 2, proof, MERKLE_PROOF_MAX, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(merkle_verify(root, 3, 2, leaves + 2 * H, proof, count), 0);
    assert_int_equal(merkle_verify(root, 2, 1, leaves + 2 * H, proof, count), 0);
    free(leaves);
}

/* ---- Range proofs -------------------------------------------------------------------------- */

static void check_range(const uint8_t *leaves, uint64_t n, uint64_t i, uint64_t j)
{
    uint8_t proof[MERKLE_PROOF_MAX * H], root[H];
    uint8_t *range = malloc((j - i) * H);
    assert_non_null(range);
    memcpy(range, leaves + i * H, (j - i) * H);
    assert_int_equal(merkle_root(leaves, n, root), 0);

    size_t count = 999;
    assert_int_equal(merkle_range_proof(leaves, n, i, j, proof, MERKLE_PROOF_MAX, &count), 0);
    assert_int_equal(count, merkle_range_proof_count(n, i, j));
    assert_true(count <= 2 * ceil_log2(n));
    if (i == 0 && j == n) {
        assert_int_equal(count, 0);
    }
    assert_int_equal(merkle_range_verify(root, n, i, j, range, proof, count), 0);

    /* Any leaf hash of the range altered. */
    for (uint64_t k = 0; k < j - i; k++) {
        range[k * H + (k % H)] ^= 0x01;
        assert_int_equal(merkle_range_verify(root, n, i, j, range, proof, count), P4P_EBADSIG);
        range[k * H + (k % H)] ^= 0x01;
    }
    /* Any proof hash altered. */
    for (size_t k = 0; k < count; k++) {
        proof[k * H + 7] ^= 0x40;
        assert_int_equal(merkle_range_verify(root, n, i, j, range, proof, count), P4P_EBADSIG);
        proof[k * H + 7] ^= 0x40;
    }
    /* Two proof hashes swapped (order matters), unless equal. */
    if (count >= 2) {
        uint8_t t[H];
        memcpy(t, proof, H);
        memcpy(proof, proof + H, H);
        memcpy(proof + H, t, H);
        assert_int_equal(merkle_range_verify(root, n, i, j, range, proof, count), P4P_EBADSIG);
        memcpy(proof + H, proof, H);
        memcpy(proof, t, H);
    }
    /* The same hashes claimed one position to the right. */
    if (j < n) {
        int rc = merkle_range_verify(root, n, i + 1, j + 1, range, proof, count);
        assert_true(rc == P4P_EBADSIG || rc == P4P_EMALFORMED);
    }
    /* Wrong lengths. */
    if (count > 0) {
        assert_int_equal(merkle_range_verify(root, n, i, j, range, proof, count - 1),
                         P4P_EMALFORMED);
        assert_int_equal(merkle_range_verify(root, n, i, j, range, NULL, 0), P4P_EMALFORMED);
    }
    assert_int_equal(merkle_range_verify(root, n, i, j, range, proof, count + 1), P4P_EMALFORMED);
    /* Too small an output buffer: refused, count untouched. */
    if (count > 0) {
        size_t untouched = 12345;
        assert_int_equal(merkle_range_proof(leaves, n, i, j, proof, count - 1, &untouched),
                         P4P_ETOOBIG);
        assert_int_equal(untouched, 12345);
    }
    free(range);
}

static void test_range_proofs(void **state)
{
    (void)state;
    uint8_t *leaves = make_leaves(40);
    for (uint64_t n = 1; n <= 40; n++) {
        for (uint64_t i = 0; i < n; i++) {
            for (uint64_t j = i + 1; j <= n; j++) {
                check_range(leaves, n, i, j);
            }
        }
    }
    free(leaves);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uint8_t *leaves = make_leaves(8);
    uint8_t proof[MERKLE_PROOF_MAX * H], root[H];
    size_t count;
    assert_int_equal(merkle_root(leaves, 8, root), 0);

    assert_int_equal(merkle_range_proof_count(8, 3, 3), P4P_EINVAL);
    assert_int_equal(merkle_range_proof_count(8, 4, 3), P4P_EINVAL);
    assert_int_equal(merkle_range_proof_count(8, 0, 9), P4P_EINVAL);
    assert_int_equal(merkle_range_proof_count(0, 0, 0), P4P_EINVAL);
    assert_int_equal(merkle_range_proof(leaves, 8, 5, 5, proof, MERKLE_PROOF_MAX, &count),
                     P4P_EINVAL);
    assert_int_equal(merkle_range_proof(NULL, 8, 0, 1, proof, MERKLE_PROOF_MAX, &count),
                     P4P_EINVAL);
    assert_int_equal(merkle_range_proof(leaves, 8, 0, 1, proof, MERKLE_PROOF_MAX, NULL),
                     P4P_EINVAL);
    assert_int_equal(merkle_proof(leaves, 8, 8, proof, MERKLE_PROOF_MAX, &count), P4P_EINVAL);
    assert_int_equal(merkle_proof(leaves, 8, 0, proof, MERKLE_PROOF_MAX, &count), 0);
    assert_int_equal(count, 3);
    assert_int_equal(merkle_range_verify(NULL, 8, 0, 1, leaves, proof, 3), P4P_EINVAL);
    assert_int_equal(merkle_range_verify(root, 8, 0, 1, NULL, proof, 3), P4P_EINVAL);
    assert_int_equal(merkle_range_verify(root, 8, 0, 1, leaves, NULL, 3), P4P_EINVAL);
    assert_int_equal(merkle_range_verify(root, 8, 2, 1, leaves, proof, 3), P4P_EINVAL);
    assert_int_equal(merkle_range_verify(root, 8, 0, 9, leaves, proof, 3), P4P_EINVAL);
    assert_int_equal(merkle_verify(root, 0, 0, leaves, proof, 0), P4P_EINVAL);
    assert_int_equal(merkle_verify(root, 8, 0, leaves, proof, 3), 0);
    free(leaves);
}

/* Proofs for trees far too large to build: the counts stay within MERKLE_PROOF_MAX and a
 * made-up proof is refused without a crash (the verifier never touches leaves outside the
 * range). Then random proof lengths and bytes against a real root. */
static void test_garbage_and_huge(void **state)
{
    (void)state;
    uint8_t junk[(MERKLE_PROOF_MAX + 2) * H], root[H];
    stream(junk, sizeof(junk), 5);
    stream(root, H, 6);

    static const uint64_t sizes[] = {UINT64_MAX,        UINT64_MAX - 1,
                                     UINT64_C(1) << 63, (UINT64_C(1) << 63) + 1,
                                     UINT64_C(1) << 40, 1000001};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint64_t n = sizes[s];
        uint64_t ranges[][2] = {{0, 1}, {n - 1, n}, {n / 2 - 2, n / 2 + 3}, {12345, 12350}};
        for (size_t r = 0; r < 4; r++) {
            uint64_t i = ranges[r][0], j = ranges[r][1];
            int count = merkle_range_proof_count(n, i, j);
            assert_true(count > 0 && count <= 2 * (int)ceil_log2(n) && count <= MERKLE_PROOF_MAX);
            if (j - i == 1) {
                assert_true(count <= (int)ceil_log2(n));
            }
            assert_int_equal(merkle_range_verify(root, n, i, j, junk, junk, (size_t)count),
                             P4P_EBADSIG);
            assert_int_equal(merkle_range_verify(root, n, i, j, junk, junk, (size_t)count + 1),
                             P4P_EMALFORMED);
        }
    }
    /* 2^64 - 1 leaves: leaf 0 needs all 64 levels. */
    assert_int_equal(merkle_range_proof_count(UINT64_MAX, 0, 1), 64);

    uint8_t *leaves = make_leaves(33);
    assert_int_equal(merkle_root(leaves, 33, root), 0);
    uint64_t seed = 0x1234;
    for (int t = 0; t < 2000; t++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t i = (seed >> 33) % 33;
        uint64_t j = i + 1 + (seed >> 45) % (33 - i);
        size_t count = (size_t)((seed >> 20) % (MERKLE_PROOF_MAX + 2));
        int rc = merkle_range_verify(root, 33, i, j, leaves + i * H, junk + (t % 3), count);
        if (i == 0 && j == 33 && count == 0) {
            assert_int_equal(rc, 0); /* the whole tree needs no proof */
        } else {
            assert_true(rc == P4P_EBADSIG || rc == P4P_EMALFORMED);
        }
    }
    free(leaves);
}

/* ---- End to end ---------------------------------------------------------------------------- */

/* A sender chunks a blob and builds the leaf list and root; a receiver that knows (root, n)
 * checks the leaf list in pieces of 7 with range proofs, then every chunk against its leaf. */
static void test_blob_sync_flow(void **state)
{
    (void)state;
    size_t len = 1024 * 1024;
    uint8_t *blob = malloc(len);
    assert_non_null(blob);
    stream(blob, len, 7);

    struct fastcdc_params p;
    struct fastcdc cdc;
    fastcdc_params_default(&p);
    assert_int_equal(fastcdc_init(&cdc, &p), 0);
    uint8_t *leaves = malloc(len / 2048 * H + H);
    size_t *offs = malloc((len / 2048 + 2) * sizeof(size_t));
    assert_non_null(leaves);
    assert_non_null(offs);
    size_t n = 0, off = 0;
    while (off < len) {
        uint32_t l = fastcdc_chunk_len(&cdc, blob + off, len - off);
        merkle_leaf_hash(blob + off, l, leaves + n * H);
        offs[n++] = off;
        off += l;
    }
    offs[n] = len;
    uint8_t root[H];
    assert_int_equal(merkle_root(leaves, n, root), 0);

    uint8_t proof[MERKLE_PROOF_MAX * H];
    for (size_t i = 0; i < n; i += 7) {
        size_t j = i + 7 < n ? i + 7 : n, count;
        assert_int_equal(merkle_range_proof(leaves, n, i, j, proof, MERKLE_PROOF_MAX, &count), 0);
        assert_int_equal(merkle_range_verify(root, n, i, j, leaves + i * H, proof, count), 0);
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t h[H];
        merkle_leaf_hash(blob + offs[i], offs[i + 1] - offs[i], h);
        assert_memory_equal(h, leaves + i * H, H);
    }
    /* A corrupted chunk no longer matches its leaf. */
    blob[offs[n / 2] + 3] ^= 1;
    uint8_t h[H];
    merkle_leaf_hash(blob + offs[n / 2], offs[n / 2 + 1] - offs[n / 2], h);
    assert_memory_not_equal(h, leaves + (n / 2) * H, H);

    free(offs);
    free(leaves);
    free(blob);
}

int main(void)
{
    if (sodium_init() < 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashes),           cmocka_unit_test(test_roots_match_naive),
        cmocka_unit_test(test_inclusion_proofs), cmocka_unit_test(test_root_does_not_bind_n),
        cmocka_unit_test(test_range_proofs),     cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_garbage_and_huge), cmocka_unit_test(test_blob_sync_flow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
