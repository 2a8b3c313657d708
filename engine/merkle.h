/*
 * merkle.h — the Merkle tree over a blob's chunks: its root is the blob's id, and proofs let a
 * receiver check any run of chunk hashes against that id before it fetches the chunks.
 *
 * Hashes are BLAKE2b-256 with RFC 6962's domain separation, so that a leaf can never pass for
 * an interior node or the other way round:
 *
 *   leaf      L(chunk) = BLAKE2b-256(0x00 || chunk bytes)      (the length is not included)
 *   interior  N(l, r)  = BLAKE2b-256(0x01 || l || r)
 *   empty     root of 0 leaves = BLAKE2b-256("")
 *
 * Shape: the leaves are paired level by level, left to right, and an odd node at the end of a
 * level is promoted unchanged to the next. This is the same tree as RFC 6962's recursive split
 * (the left subtree holds the largest power of two of leaves smaller than n), which the code
 * uses; every subtree covers a contiguous run of leaves.
 *
 *            root                 n = 5:  root = N(N(N(a,b), N(c,d)), e)
 *           /    \
 *       N(ab,cd)  e               e is promoted twice
 *       /    \
 *   N(a,b)  N(c,d)
 *
 * Proofs. A range proof for the leaves [i, j) of an n-leaf tree is the list of the roots of the
 * maximal subtrees that contain no leaf of the range, ordered left to right by the leaves they
 * cover. With the j - i leaf hashes of the range it recomputes the root; it has at most
 * 2 * ceil(log2 n) hashes. An inclusion proof is the range proof of [i, i + 1).
 *
 * The receiver of a large blob learns (id, n) from its announcement, fetches the leaf-hash list
 * in pieces and checks each with merkle_range_verify(), then fetches chunks and checks each
 * against its leaf hash with merkle_leaf_hash().
 *
 * Caution: the root does not by itself commit to n. The same root and leaf hash verify at
 * different (i, n) when the proof's claimed tree shape treats an interior node as a leaf, e.g.
 * leaf 2 of 3 verifies as leaf 1 of 2 with N(a, b) as its sibling. The chunk check catches such
 * a "leaf" (no chunk hashes to an interior node), but n must come from the same authenticated
 * source as the id, or the id must be bound to n one level up.
 *
 * Nothing allocates. Hash arrays are flat: k hashes are k * 32 consecutive bytes, owned by the
 * caller. Verification recurses at most 64 levels (n < 2^64) with a small frame, and builds a
 * root with a stack of at most 65 hashes (2 KiB). Work: merkle_root O(n) hashes; making a proof
 * O(n); verifying a range proof O(j - i + log n).
 *
 * Errors: P4P_EINVAL for arguments that make no sense (i >= j, j > n, NULL); P4P_EMALFORMED
 * when a proof has the wrong number of hashes for (n, i, j); P4P_EBADSIG when it is well formed
 * but does not lead to the root (the data or the proof is not authentic); P4P_ETOOBIG when an
 * output buffer is too small.
 */
#ifndef P4P_MERKLE_H
#define P4P_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "p4p/p4p.h"

#define MERKLE_HASH_LEN  32
#define MERKLE_PROOF_MAX 128 /* hashes in any range proof: 2 per level, 64 levels */

/* L(chunk). */
void merkle_leaf_hash(const uint8_t *chunk, size_t len, uint8_t out[MERKLE_HASH_LEN]);

/* L(chunk) for a chunk that arrives in pieces (fastcdc_feed() hands them out): after this, pass
 * the chunk's bytes to crypto_generichash_update(st, ...), then call
 * crypto_generichash_final(st, out, MERKLE_HASH_LEN). */
void merkle_leaf_init(crypto_generichash_state *st);

/* N(left, right). out may alias either input. */
void merkle_node_hash(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
                      uint8_t out[MERKLE_HASH_LEN]);

/* The root over n leaf hashes (n * 32 bytes); n == 0 gives the empty root. 0 or P4P_EINVAL. */
int merkle_root(const uint8_t *leaves, uint64_t n, uint8_t root[MERKLE_HASH_LEN]);

/* The number of hashes in the range proof for [i, j) of n leaves, or P4P_EINVAL unless
 * i < j <= n. */
int merkle_range_proof_count(uint64_t n, uint64_t i, uint64_t j);

/* Writes the range proof for leaves [i, j) of the n leaf hashes `leaves` into `proof`, which has
 * room for proof_max hashes, and its length in hashes to *proof_count. 0, P4P_EINVAL or
 * P4P_ETOOBIG (nothing written to *proof_count then). */
int merkle_range_proof(const uint8_t *leaves, uint64_t n, uint64_t i, uint64_t j, uint8_t *proof,
                       size_t proof_max, size_t *proof_count);

/* Checks that `range` (the j - i leaf hashes of [i, j)) and `proof` (proof_count hashes) lead to
 * `root` in a tree of n leaves. 0, P4P_EINVAL, P4P_EMALFORMED or P4P_EBADSIG. */
int merkle_range_verify(const uint8_t root[MERKLE_HASH_LEN], uint64_t n, uint64_t i, uint64_t j,
                        const uint8_t *range, const uint8_t *proof, size_t proof_count);

/* Inclusion proofs: the range proofs of [i, i + 1), at most 64 hashes. */
int merkle_proof(const uint8_t *leaves, uint64_t n, uint64_t i, uint8_t *proof, size_t proof_max,
                 size_t *proof_count);
int merkle_verify(const uint8_t root[MERKLE_HASH_LEN], uint64_t n, uint64_t i,
                  const uint8_t leaf[MERKLE_HASH_LEN], const uint8_t *proof, size_t proof_count);

#endif /* P4P_MERKLE_H */
