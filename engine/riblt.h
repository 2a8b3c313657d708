/*
 * riblt.h — rateless set reconciliation: Rateless Invertible Bloom Lookup Tables (Lei Yang, Yossi
 * Gilad, Mohammad Alizadeh, "Practical Rateless Set Reconciliation", SIGCOMM 2024).
 *
 * Alice and Bob each hold a set of fixed-length items (32-byte update ids, or an id followed by
 * an 8-byte big-endian timestamp: item_len 40). Alice's encoder turns her set into an endless
 * stream of coded symbols 0, 1, 2, ...; each is the XOR of the items mapped to it, the XOR of
 * their 64-bit hashes (the checksum) and how many there are (the count). Bob's decoder
 * subtracts his own set from each symbol as it arrives, so what is left encodes only the
 * symmetric difference, and peels it: a symbol holding exactly one item (count +1 or -1 and the
 * checksum equal to the hash of the sum) yields that item, which is then removed from every
 * other symbol it maps to. Alice keeps sending until Bob has peeled everything; about 1.35
 * symbols per difference for large differences, one symbol to confirm that the sets are equal.
 *
 *   Alice                                          Bob
 *   riblt_enc_add(item) x |A|                      riblt_dec_add_local(item) x |B|
 *   riblt_enc_write_batch(n) --- batch bytes --->  riblt_dec_add_batch() == 1 ? done : more
 *   ...                      <--- "stop" -------   riblt_dec_remote_item(i): only Alice has
 *                                                  riblt_dec_local_item(i):  only Bob has
 *
 * The mapping is the reference implementation's (github.com/yangl1996/riblt, mapping.go):
 * item j is in symbol 0, and its next index after i is i + ceil((i + 1.5) * (2^32 / sqrt(r + 1)
 * - 1)) in IEEE double arithmetic, with r the next state of the multiplicative generator
 * r <- r * 0xda942042e4dd58b5 (mod 2^64) seeded with the item's hash. Index i is hit with
 * probability 1 / (1 + i/2). The hash is SipHash-2-4 under a 16-byte key that both sides must
 * share (libsodium crypto_shorthash_siphash24, the function the reference's examples use via
 * github.com/dchest/siphash with key = LE64(k0) || LE64(k1)); the same items and key give the
 * same coded symbols, bit for bit, as the reference. Callers should derive the key per session
 * so that no one can grind items whose hashes collide. One deviation: an index past 2^64 - 2
 * saturates to "never" (the reference's uint64 wraps); it takes a hash near 0 to get there.
 *
 * Wire (one batch of consecutive coded symbols; every integer is an unsigned LEB128 varint of
 * at most 10 bytes, shortest form only):
 *
 *   version (1 byte, = 1) | item_len (1 byte) | set_size | first_index | n (>= 1)
 *   n x ( sum (item_len bytes) | checksum (8 bytes, little-endian) | zigzag(count - expected) )
 *
 * expected = floor(2 * set_size / (index + 2)), the mean count of symbol `index`, so symbol 0
 * costs one byte of count and later ones one or two: 41-42 bytes per symbol for 32-byte ids.
 * set_size is the encoder's |A| (at most RIBLT_COUNT_MAX), repeated in every batch and
 * required to stay the same. Anything else (truncation, trailing bytes, a wrong version or
 * item_len, an overlong varint, a count outside [0, RIBLT_COUNT_MAX]) is P4P_EMALFORMED.
 *
 * Items are opaque bytes. With item_len 40 (id || BE64 timestamp) the same id under two
 * timestamps is two items, and both sides learn both; with 32 the timestamp is not reconciled.
 *
 * Memory is allocated as sets and streams grow, never past the configured bounds: an encoder
 * allocates only while items are added; a decoder also as symbols arrive (its per-symbol
 * arrays, and the windows its decoded differences go to). Each item of an encoder or of a
 * decoder's local set costs a record of 16 + item_len (rounded up to 8) bytes and its share of
 * the index queue's 128-byte blocks: one per 10 items plus at most one per occupied queue slot
 * (2048 slots, so at most 256 KiB); about 61 bytes per 32-byte item for large sets, at most
 * 190 for sets under 2048. Each queue also has 8 KiB of slot heads (a decoder has three). A
 * decoder keeps item_len + 16 bytes per coded symbol received plus 4 for the peel queue, and
 * each decoded difference becomes an item of one of its two difference windows. Received
 * symbols are capped by symbol_max (then P4P_EFULL: give up and fall back to sending the set),
 * and decoded differences cannot outnumber received symbols. Nothing here is global; no I/O.
 */
#ifndef P4P_RIBLT_H
#define P4P_RIBLT_H

#include <stddef.h>
#include <stdint.h>

#define RIBLT_ITEM_MAX                  64                  /* largest item_len */
#define RIBLT_KEY_LEN                   16                  /* SipHash-2-4 key */
#define RIBLT_COUNT_MAX                 ((uint64_t)1 << 40) /* bound on set_size and counts */
#define RIBLT_BATCH_HEADER_MAX          32                  /* 2 bytes + 3 varints */
#define RIBLT_SYMBOL_WIRE_MAX(item_len) ((size_t)(item_len) + 8 + 10)

struct riblt_config {
    uint32_t item_len;   /* bytes per item, 1..RIBLT_ITEM_MAX (32: id; 40: id || BE64 time) */
    uint32_t item_max;   /* most items an encoder, or a decoder's local set, may hold */
    uint32_t symbol_max; /* decoder: most coded symbols it accepts (ignored by the encoder) */
    uint8_t key[RIBLT_KEY_LEN]; /* hash key; both sides must use the same one */
};

/* One coded symbol; only the first item_len bytes of sum are meaningful. */
struct riblt_symbol {
    uint8_t sum[RIBLT_ITEM_MAX]; /* XOR of the items mapped to it */
    uint64_t checksum;           /* XOR of their hashes */
    int64_t count;               /* how many (a decoder's residue may be negative) */
};

/* What a batch header says; filled by riblt_batch_parse. */
struct riblt_batch_info {
    uint32_t item_len;
    uint64_t set_size;    /* the encoder's set size */
    uint64_t first_index; /* index of the first symbol in the batch */
    uint64_t n;           /* symbols in the batch */
};

typedef struct riblt_enc riblt_enc;
typedef struct riblt_dec riblt_dec;

/* The 64-bit hash of an item (SipHash-2-4 under cfg->key, read little-endian). */
uint64_t riblt_hash(const struct riblt_config *cfg, const uint8_t *item);

/* The mapping generator: given the state (initially the item's hash) and the current index
 * (initially 0), advances the state and returns the next index the item maps to, or
 * UINT64_MAX ("never") once the index would pass 2^64 - 2. Exposed for tests. */
uint64_t riblt_mapping_next(uint64_t *state, uint64_t index);

/* ---- Encoder ------------------------------------------------------------------------------- */

/* Creates an empty encoder; cfg is copied. 0, P4P_EINVAL (bad item_len) or P4P_ENOMEM. */
int riblt_enc_create(riblt_enc **out, const struct riblt_config *cfg);
void riblt_enc_free(riblt_enc *e);

/* Adds an item (item_len bytes, copied). Items must be distinct: a duplicate cancels itself.
 * 0; P4P_EINVAL once a symbol has been produced; P4P_EFULL at item_max; P4P_ENOMEM. */
int riblt_enc_add(riblt_enc *e, const uint8_t *item);

/* Produces coded symbol number riblt_enc_next_index() and advances. Always 0. */
int riblt_enc_next(riblt_enc *e, struct riblt_symbol *out);

/* Produces the next n symbols (n >= 1) as one wire batch into buf. 0 and *len; P4P_EINVAL for
 * n == 0; P4P_ETOOBIG, producing nothing, when cap < RIBLT_BATCH_HEADER_MAX + n *
 * RIBLT_SYMBOL_WIRE_MAX(item_len). */
int riblt_enc_write_batch(riblt_enc *e, uint32_t n, uint8_t *buf, size_t cap, size_t *len);

uint64_t riblt_enc_next_index(const riblt_enc *e);
uint32_t riblt_enc_size(const riblt_enc *e); /* items added */
size_t riblt_enc_memory(const riblt_enc *e); /* bytes allocated */

/* ---- Decoder ------------------------------------------------------------------------------- */

/* Creates an empty decoder; cfg is copied. 0, P4P_EINVAL (bad item_len, symbol_max == 0) or
 * P4P_ENOMEM. */
int riblt_dec_create(riblt_dec **out, const struct riblt_config *cfg);
void riblt_dec_free(riblt_dec *d);

/* Adds an item of the decoder's own set (copied, distinct). 0; P4P_EINVAL once a coded
 * symbol has been received; P4P_EFULL at item_max; P4P_ENOMEM. */
int riblt_dec_add_local(riblt_dec *d, const uint8_t *item);

/* Takes the remote's coded symbol number riblt_dec_received() and peels what it can.
 * 1: every difference is decoded (all symbols received so far reduce to zero); 0: send more;
 * P4P_EFULL: symbol_max symbols already received; P4P_ENOMEM; P4P_EMALFORMED: the stream is
 * inconsistent (more differences than symbols, a peel queue past its bound). After
 * P4P_EMALFORMED, or P4P_ENOMEM while peeling, the decoder is dead: adding symbols or batches
 * returns P4P_EMALFORMED from then on. Other errors leave it as it was. */
int riblt_dec_add_symbol(riblt_dec *d, const struct riblt_symbol *s);

/* Validates a whole wire batch and, if it is well formed, adds its symbols in order. Symbols
 * the decoder already has (a retransmitted overlap) are skipped; adding stops early once
 * decoding completes. Returns as riblt_dec_add_symbol, and also P4P_EMALFORMED for a bad
 * batch (state unchanged, decoder still usable), P4P_EINVAL when first_index is past
 * riblt_dec_received() (a gap: batches must arrive in order), P4P_EFULL after adding what fits
 * under symbol_max. */
int riblt_dec_add_batch(riblt_dec *d, const uint8_t *buf, size_t len);

/* 1 when every difference is decoded (at least one symbol received), else 0. */
int riblt_dec_is_done(const riblt_dec *d);
uint64_t riblt_dec_received(const riblt_dec *d);    /* coded symbols taken so far */
uint64_t riblt_dec_remote_size(const riblt_dec *d); /* set_size from the batches; 0 if none */

/* The decoded differences: items only the remote has, and items only this side has. The
 * pointers (item_len bytes) point into the decoder and stay valid until the next add call or
 * riblt_dec_free. Counts and items are final only once riblt_dec_is_done(). */
uint32_t riblt_dec_remote_count(const riblt_dec *d);
const uint8_t *riblt_dec_remote_item(const riblt_dec *d, uint32_t i);
uint32_t riblt_dec_local_count(const riblt_dec *d);
const uint8_t *riblt_dec_local_item(const riblt_dec *d, uint32_t i);

size_t riblt_dec_memory(const riblt_dec *d); /* bytes allocated */

/* ---- Wire ---------------------------------------------------------------------------------- */

/* Writes n >= 1 symbols, numbered first_index.., of an encoder whose set has set_size items.
 * 0 and *len; P4P_EINVAL (bad item_len, n == 0, set_size or a count out of range, a negative
 * count); P4P_ETOOBIG when cap is short of the bound given at riblt_enc_write_batch. */
int riblt_batch_write(uint32_t item_len, uint64_t set_size, uint64_t first_index,
                      const struct riblt_symbol *syms, uint32_t n, uint8_t *buf, size_t cap,
                      size_t *len);

/* Checks a whole batch without decoding anything. 0 and *info, or P4P_EMALFORMED (also for
 * an item_len other than the expected one). */
int riblt_batch_parse(const uint8_t *buf, size_t len, uint32_t item_len,
                      struct riblt_batch_info *info);

#endif /* P4P_RIBLT_H */
