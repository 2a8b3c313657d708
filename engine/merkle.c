/*
 * merkle.c — the blob Merkle tree (see merkle.h for hashing, shape and proof format).
 *
 * Two building blocks:
 *
 *   subtree_root  the root over a run of leaf hashes, left to right with a stack: after the
 *                 m-th leaf is pushed, the top two entries are merged once for every trailing
 *                 zero bit of m. The stack then holds perfect subtrees of strictly decreasing
 *                 size, and folding it from the top gives the RFC 6962 shape. At most 65
 *                 entries for any n < 2^64.
 *   split         the RFC 6962 split of a subtree of s >= 2 leaves: the largest power of two
 *                 below s goes left.
 *
 * A range proof walks the tree from the root: a subtree disjoint from [i, j) contributes its
 * root to the proof, one inside it is recomputed from the range's leaf hashes, one that
 * straddles an end of the range is split. Only straddling subtrees recurse, at most two per
 * level, so the depth is at most 64 and the proof at most 2 hashes per level.
 */
#include "merkle.h"

#include <string.h>

#define H MERKLE_HASH_LEN

void merkle_leaf_init(crypto_generichash_state *st)
{
    static const uint8_t tag = 0x00;
    crypto_generichash_init(st, NULL, 0, H);
    crypto_generichash_update(st, &tag, 1);
}

void merkle_leaf_hash(const uint8_t *chunk, size_t len, uint8_t out[H])
{
    crypto_generichash_state st;
    merkle_leaf_init(&st);
    crypto_generichash_update(&st, chunk, len);
    crypto_generichash_final(&st, out, H);
}

void merkle_node_hash(const uint8_t left[H], const uint8_t right[H], uint8_t out[H])
{
    uint8_t buf[1 + 2 * H];
    buf[0] = 0x01;
    memcpy(buf + 1, left, H);
    memcpy(buf + 1 + H, right, H);
    crypto_generichash(out, H, buf, sizeof(buf), NULL, 0);
}

/* The root over count >= 1 consecutive leaf hashes. */
static void subtree_root(const uint8_t *leaves, uint64_t count, uint8_t out[H])
{
    uint8_t stack[65][H];
    unsigned top = 0; /* entries in use */

    for (uint64_t m = 1; m <= count; m++) {
        memcpy(stack[top++], leaves + (m - 1) * H, H);
        for (uint64_t t = m; (t & 1) == 0; t >>= 1) {
            top--;
            merkle_node_hash(stack[top - 1], stack[top], stack[top - 1]);
        }
    }
    while (top > 1) {
        top--;
        merkle_node_hash(stack[top - 1], stack[top], stack[top - 1]);
    }
    memcpy(out, stack[0], H);
}

/* The largest power of two strictly below s (s >= 2). */
static uint64_t split(uint64_t s)
{
    uint64_t k = 1;
    while (k < s - k) {
        k <<= 1;
    }
    return k;
}

int merkle_root(const uint8_t *leaves, uint64_t n, uint8_t root[H])
{
    if (root == NULL || (n > 0 && leaves == NULL)) {
        return P4P_EINVAL;
    }
    if (n == 0) {
        crypto_generichash(root, H, NULL, 0, NULL, 0);
        return 0;
    }
    subtree_root(leaves, n, root);
    return 0;
}

/* ---- Proofs -------------------------------------------------------------------------------- */

/* Lists the subtrees disjoint from [i, j), left to right: counts them, and when `leaves` is
 * given writes their roots to `proof` (which the caller has sized by counting first). */
struct walk {
    const uint8_t *leaves;
    uint64_t i, j;
    uint8_t *proof;
    size_t count;
};

static void walk(struct walk *w, uint64_t a, uint64_t b)
{
    if (b <= w->i || a >= w->j) {
        if (w->leaves != NULL) {
            subtree_root(w->leaves + a * H, b - a, w->proof + w->count * H);
        }
        w->count++;
        return;
    }
    if (a >= w->i && b <= w->j) {
        return;
    }
    uint64_t k = split(b - a);
    walk(w, a, a + k);
    walk(w, a + k, b);
}

int merkle_range_proof_count(uint64_t n, uint64_t i, uint64_t j)
{
    if (!(i < j && j <= n)) {
        return P4P_EINVAL;
    }
    struct walk w = {.leaves = NULL, .i = i, .j = j, .proof = NULL, .count = 0};
    walk(&w, 0, n);
    return (int)w.count;
}

int merkle_range_proof(const uint8_t *leaves, uint64_t n, uint64_t i, uint64_t j, uint8_t *proof,
                       size_t proof_max, size_t *proof_count)
{
    int count = merkle_range_proof_count(n, i, j);
    if (count < 0 || leaves == NULL || proof_count == NULL || (proof == NULL && proof_max > 0)) {
        return P4P_EINVAL;
    }
    if ((size_t)count > proof_max) {
        return P4P_ETOOBIG;
    }
    struct walk w = {.leaves = leaves, .i = i, .j = j, .proof = proof, .count = 0};
    walk(&w, 0, n);
    *proof_count = w.count;
    return 0;
}

/* Recomputes the root of the subtree [a, b) from the range's leaf hashes and the proof, whose
 * length the caller has checked. */
struct recompute {
    const uint8_t *range, *proof;
    uint64_t i, j;
    size_t used;
};

static void recompute(struct recompute *r, uint64_t a, uint64_t b, uint8_t out[H])
{
    if (b <= r->i || a >= r->j) {
        memcpy(out, r->proof + r->used * H, H);
        r->used++;
        return;
    }
    if (a >= r->i && b <= r->j) {
        subtree_root(r->range + (a - r->i) * H, b - a, out);
        return;
    }
    uint64_t k = split(b - a);
    uint8_t left[H], right[H];
    recompute(r, a, a + k, left);
    recompute(r, a + k, b, right);
    merkle_node_hash(left, right, out);
}

int merkle_range_verify(const uint8_t root[H], uint64_t n, uint64_t i, uint64_t j,
                        const uint8_t *range, const uint8_t *proof, size_t proof_count)
{
    int expected = merkle_range_proof_count(n, i, j);
    if (expected < 0 || root == NULL || range == NULL || (proof == NULL && proof_count > 0)) {
        return P4P_EINVAL;
    }
    if ((size_t)expected != proof_count) {
        return P4P_EMALFORMED;
    }
    struct recompute r = {.range = range, .proof = proof, .i = i, .j = j, .used = 0};
    uint8_t got[H];
    recompute(&r, 0, n, got);
    return memcmp(got, root, H) == 0 ? 0 : P4P_EBADSIG;
}

int merkle_proof(const uint8_t *leaves, uint64_t n, uint64_t i, uint8_t *proof, size_t proof_max,
                 size_t *proof_count)
{
    if (i >= n) {
        return P4P_EINVAL;
    }
    return merkle_range_proof(leaves, n, i, i + 1, proof, proof_max, proof_count);
}

int merkle_verify(const uint8_t root[H], uint64_t n, uint64_t i, const uint8_t leaf[H],
                  const uint8_t *proof, size_t proof_count)
{
    if (i >= n) {
        return P4P_EINVAL;
    }
    return merkle_range_verify(root, n, i, i + 1, leaf, proof, proof_count);
}
