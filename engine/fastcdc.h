/*
 * fastcdc.h — content-defined chunking for blob sync: FastCDC with normalised chunking.
 *
 * A blob is cut where its content says so, not at fixed offsets, so an edit in the middle of a
 * file changes only the chunks around the edit; every other chunk keeps its bytes and hence its
 * hash (merkle.h), and peers that hold it need not fetch it again. The algorithm is FastCDC
 * (Xia et al., USENIX ATC 2016; IEEE TPDS 2020):
 *
 *   gear hash   fp = (fp << 1) + GEAR[byte]. After 64 bytes every earlier byte has been
 *               shifted out, so fp is a function of the last 64 bytes only.
 *   skipping    the first min_len - 64 bytes of a chunk are not looked at: no cut can fall
 *               there. Hashing starts 64 bytes before min_len, so that whether a position
 *               is a cut candidate depends on the 64 bytes ending there and on nothing else.
 *   normalising a chunk of length L (min_len <= L < max_len) ends when (fp & mask) == 0, with
 *               a harder mask (bits + level one-bits) while L < normal_len and an easier one
 *               (bits - level one-bits) from normal_len on; at max_len it ends regardless.
 *               This narrows the spread of chunk lengths around the average.
 *
 *   chunk:  |<-- skipped -->|<- 64 ->|<-- mask_s -->|<------- mask_l ------->|
 *           0        min_len - 64    min_len     normal_len              max_len (forced cut)
 *
 * The rules that turn the parameters into masks (fixed forever, like the gear table, because
 * they decide where chunks end and so what every chunk's id is):
 *
 *   bits        log2 of the power of two nearest to avg_len (avg_len < 1.5 * 2^b gives b,
 *               otherwise b + 1), so avg_len need not be a power of two.
 *   masks       mask_s = the top (bits + level) bits of the 64-bit fp, mask_l = the top
 *               (bits - level) bits. The top bits are used because bit k of fp depends on the
 *               last k + 1 bytes only; the top bits see the whole 64-byte window.
 *   normal_len  avg_len - 2^(bits - level), but at least min_len. After normal_len a chunk
 *               ends after 2^(bits - level) more bytes on average, so the mean lands near
 *               avg_len. (The paper puts the switch at avg_len itself; with min_len skipped
 *               that makes the mean about 14 % larger than avg_len for the defaults.)
 *
 * Valid parameters: 64 <= min_len < avg_len < max_len <= FASTCDC_MAX_LIMIT, level 0..3.
 * Defaults: 2 KiB / 8 KiB / 64 KiB, level 2. On random data the expected chunk length is then
 * 7706 bytes (0.94 of avg_len; measured 7691 over 8 MiB in test_fastcdc, 7706 over 64 MiB in
 * bench/chunk_bench), 12 % of chunks end before normal_len (6 KiB), 0.08 % run past
 * 20 KiB, and the forced cut at max_len comes about once in 4.5e12 chunks. The last chunk of a
 * blob may be shorter than min_len.
 *
 * Streaming: feed the blob in pieces of any size; the cut points are the same as for the whole
 * blob in one buffer. Nothing is buffered or allocated: fastcdc_feed() reports how many bytes
 * of the piece belong to the current chunk, so the caller can hash them as they pass.
 *
 *     size_t used; uint32_t chunk_len;
 *     while (len > 0) {
 *         used = fastcdc_feed(&c, p, len, &chunk_len);
 *         hash_update(p, used);          (merkle_leaf_init(), crypto_generichash_update())
 *         if (chunk_len) { chunk ended: chunk_len bytes, the last of them p[used - 1] }
 *         p += used; len -= used;
 *     }
 *     at the end of the blob: chunk_len = fastcdc_finish(&c); if nonzero, a last chunk.
 *
 * The engine is pure: no allocation, no global mutable state; the gear table is constant.
 */
#ifndef P4P_FASTCDC_H
#define P4P_FASTCDC_H

#include <stddef.h>
#include <stdint.h>

#include "p4p/p4p.h"

#define FASTCDC_WINDOW      64         /* bytes that decide a cut candidate */
#define FASTCDC_MIN_LIMIT   64         /* smallest min_len */
#define FASTCDC_MAX_LIMIT   (1u << 30) /* largest max_len */
#define FASTCDC_LEVEL_MAX   3
#define FASTCDC_DEFAULT_MIN 2048
#define FASTCDC_DEFAULT_AVG 8192
#define FASTCDC_DEFAULT_MAX 65536
#define FASTCDC_DEFAULT_LVL 2

/* The gear table: GEAR[i] is the first 8 bytes, read little-endian, of BLAKE2b with an 8-byte
 * output (crypto_generichash(out, 8, in, 17, NULL, 0)) of the 17 bytes "p4p-fastcdc-gear"
 * followed by the byte i. Fixed forever: changing one value changes chunk ids. */
extern const uint64_t fastcdc_gear[256];

struct fastcdc_params {
    uint32_t min_len, avg_len, max_len;
    uint32_t level; /* normalisation level, 0 (plain gear chunking) .. FASTCDC_LEVEL_MAX */
};

/* A chunker: derived constants and the state of the chunk in progress. Caller-allocated;
 * fields are read-only for the caller. */
struct fastcdc {
    uint32_t min_len, normal_len, max_len;
    uint32_t bits, level;
    uint64_t mask_s, mask_l;
    uint32_t pos; /* bytes of the current chunk consumed so far, < max_len */
    uint64_t fp;
};

/* 2 KiB / 8 KiB / 64 KiB, level 2. */
void fastcdc_params_default(struct fastcdc_params *p);

/* Validates p (rules above) and sets c up at the start of a blob. 0, or P4P_EINVAL (c is then
 * left untouched). */
int fastcdc_init(struct fastcdc *c, const struct fastcdc_params *p);

/* Forgets the chunk in progress: the next byte fed starts a new blob. */
void fastcdc_reset(struct fastcdc *c);

/* Consumes bytes of `data` up to and including the next cut point, or all `len` if none falls
 * within them. Returns the number consumed. When a chunk ends at data[ret - 1], *chunk_len is
 * set to its length (it may have begun in earlier pieces), otherwise to 0 (and ret == len). */
size_t fastcdc_feed(struct fastcdc *c, const uint8_t *data, size_t len, uint32_t *chunk_len);

/* The blob ended: returns the length of its last chunk (the bytes fed since the last cut, 1 ..
 * max_len - 1), or 0 when there are none, and resets c for the next blob. */
uint32_t fastcdc_finish(struct fastcdc *c);

/* One-shot: the length of the chunk that starts at data[0], when data[0 .. len) is the rest of
 * the blob. 0 only when len == 0. Uses c's parameters, not its stream state. */
uint32_t fastcdc_chunk_len(const struct fastcdc *c, const uint8_t *data, size_t len);

#endif /* P4P_FASTCDC_H */
