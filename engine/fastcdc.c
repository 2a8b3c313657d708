/*
 * fastcdc.c — FastCDC content-defined chunking (see fastcdc.h for the algorithm and rules).
 *
 * The scan runs in three phases per chunk, each a tight loop bounded by both the piece and the
 * phase end, so the per-byte work is one shift, one table load, one add and one test:
 *
 *   pos < min_len - 64         skip (no hashing)
 *   pos < min_len - 1          hash only: fill the 64-byte window
 *   length < normal_len        hash, cut when (fp & mask_s) == 0
 *   length < max_len           hash, cut when (fp & mask_l) == 0; forced cut at max_len
 *
 * where `pos` counts the bytes of the chunk consumed before the current one and `length` the
 * bytes including it. The state between pieces is (pos, fp), so a blob fed in pieces is cut
 * exactly as the same blob in one buffer.
 */
#include "fastcdc.h"

#include <string.h>

/* Generated once by the program below and fixed forever (tests/unit/test_fastcdc.c checks it):
 *
 *     for (int i = 0; i < 256; i++) {
 *         uint8_t in[17], out[8];
 *         memcpy(in, "p4p-fastcdc-gear", 16);
 *         in[16] = (uint8_t)i;
 *         crypto_generichash(out, 8, in, 17, NULL, 0);
 *         gear[i] = out[0] | out[1] << 8 | ... | out[7] << 56;   (little-endian)
 *     }
 */
const uint64_t fastcdc_gear[256] = {
    0x757aa75272f668e8ULL, 0x06af73028995b3e2ULL, 0x85b4df3c7584d7adULL, 0x259e344f215d4ba1ULL,
    0x6646f4a1b1995a7fULL, 0xef71b7b1e22250acULL, 0x6d84c683f96d247fULL, 0x57867dc0aad98ed0ULL,
    0xab45f6e92b21ff87ULL, 0x6a321dd3090cd205ULL, 0x0047b88fb97d7ce7ULL, 0x850b9a73b589fc7eULL,
    0x66b45f3b30ebb40cULL, 0x9313b9caa82dd478ULL, 0x73596834c6c086bbULL, 0x60b9be2b001590feULL,
    0xa862cf780f068611ULL, 0x4e35af4bdbe6c16eULL, 0x91b08eb7c75908bcULL, 0x78cee8bf6e80bc33ULL,
    0x8d7cf55407548c6dULL, 0x40130398d628d59bULL, 0x9086541b0ebe007aULL, 0x80600af76a17a0e6ULL,
    0x310729ef69e4eafcULL, 0xc7c60d153d388c72ULL, 0x866020bbcf8f1a97ULL, 0xfa229170f12e8dd1ULL,
    0xfb12ad18159cf56fULL, 0x3585d04793bd6235ULL, 0xa385dc26f3e0b996ULL, 0x05a90c5954286b44ULL,
    0x1dd0cf568f76c5aaULL, 0x3511e0f6e565a9b9ULL, 0x752c52fa6098b9b6ULL, 0xfe1cf120e13d6ae5ULL,
    0x8d30e0e0305f8e62ULL, 0x8aef4fd1be58d8adULL, 0x71bc92bb2ef6939eULL, 0x2819fd874f57adbbULL,
    0xdf280afa32513e9bULL, 0x4bb82fde3dd4cca6ULL, 0xc517771f84b5b0d9ULL, 0x3d260994b6a6a191ULL,
    0x3d4cd14f92d66457ULL, 0x747cc8a13232f439ULL, 0x7e45b74b14bc3ea7ULL, 0x7305de0355a85a3aULL,
    0xbf2b2136d7757567ULL, 0x31426c8e7a97da84ULL, 0x47eed326a25be2b9ULL, 0x2f56cfc915c7f540ULL,
    0x28a681beb2f8e809ULL, 0xef157b3c40e9a0c0ULL, 0xd68bbe782eb5d9e7ULL, 0xf3b64e76c615f5faULL,
    0xd410f4c742b196d7ULL, 0xaa6b8cc8bbf7bee1ULL, 0xdab2287b49501405ULL, 0xae75276a4719813fULL,
    0xb97e4b57e17245d7ULL, 0x8a8bd98133c33d01ULL, 0xd2ff8b3a9701bbc6ULL, 0xb16f9a997cf193dfULL,
    0xe06811f7b43464e4ULL, 0x503a4d16a637b110ULL, 0xef3a148f341c4d39ULL, 0x30f6f0da22904dc1ULL,
    0x0f2f887fd495509eULL, 0x4489285de932e6e9ULL, 0xf88ff2dbf5a54c84ULL, 0x3c219a2985478802ULL,
    0xb08284967f38ad59ULL, 0xaafca497e5006721ULL, 0xa6e66657c2aaca65ULL, 0x5bff8a003e5f861cULL,
    0xa5bcd39f71d91fb2ULL, 0x84c811c6f6db0faeULL, 0xaa3e4905304d6621ULL, 0x4c4029d6cc5e1ec1ULL,
    0x20568585be5b5435ULL, 0xb4b98b76560ae8eeULL, 0xec62ff7256cc0dc7ULL, 0x3a4001cc98e7791aULL,
    0x75704cf20de405b3ULL, 0x156c21b5eb3ec73dULL, 0xb41edf52a93a4eb1ULL, 0x9d37cc5c0b6a3351ULL,
    0xd5ac5436e2224f95ULL, 0x3bfc671e106b0300ULL, 0xe3d7bce4272acd66ULL, 0x144a307157aff872ULL,
    0xfbfa219786cbb6cbULL, 0x40721fad6c4425fdULL, 0x00d714c01fd64f26ULL, 0x345dbe1f21bd5958ULL,
    0xb26e55764c7ca3e1ULL, 0x5506933e8033c721ULL, 0x727a52a2782a75a3ULL, 0x8b441603eeb89dc6ULL,
    0xc480a9457836829cULL, 0xbe6ad55b2c2d5840ULL, 0x03ffc5d86d04e42eULL, 0x78520d7e94e626d7ULL,
    0x6047666bd34fe354ULL, 0x8e73f03c13dca301ULL, 0x238a55b5552a8951ULL, 0x693c343fd1b747d2ULL,
    0xcdbe7acf3b0d06e8ULL, 0x4480fe51a9277fd1ULL, 0xfe07cfd41b189584ULL, 0xa42392fee2167cf6ULL,
    0x9f9c7696de672d56ULL, 0x1b263ffac7403973ULL, 0xb02ad98bcc01a8adULL, 0x4f50d32c4e2f3065ULL,
    0xc3fb0f9dfa372f9dULL, 0x139f0ee2c493b0edULL, 0xae68a4d0ffe1fc2eULL, 0xb315538de6b69777ULL,
    0xd2a038e8a1f44dc8ULL, 0xda3c6206d5104534ULL, 0xf6b7c24459e6e7b2ULL, 0x5f48d18ea6012467ULL,
    0x97611ca6b8010aa4ULL, 0xa93d2f477aaa9410ULL, 0x753bf5cfffab076aULL, 0xa13a0de45280febfULL,
    0x9c98188d53bc123fULL, 0xdd3009cdde29bf1cULL, 0x4988d47239a8d6afULL, 0xa02e1c477d420f2fULL,
    0x6d44f7d44ada74a7ULL, 0x06f9080cca0874dfULL, 0xc10963f51658117bULL, 0x5a15bc7a3f7dfbc7ULL,
    0x0902e60e435cf7ebULL, 0x9d6357c27e88f573ULL, 0x40beb54f7a8f47edULL, 0xd2f5402a80db06bcULL,
    0x7faa15b9647c48dfULL, 0x5c731a8557f2486bULL, 0xc0fbff608e3e44f7ULL, 0xa17b4b86506dba90ULL,
    0x571f07208a9cd140ULL, 0x0588bdfa1ba086d4ULL, 0x9a7d018c7b8c9b9fULL, 0x66cb5d45f0a8c81eULL,
    0x17b7c1ef512d8c97ULL, 0xde140e4bb5bf544aULL, 0xa4f1b7cfc795524aULL, 0xcfb04ccc8d1caa9cULL,
    0x8546bb686ec3d46fULL, 0x1cb1c6fa28ef25baULL, 0xb5084b86f309f78dULL, 0x75c9838b22ae8681ULL,
    0x062adbe8db448ee1ULL, 0xee71c548279aa9b1ULL, 0xc73d2a3c6bd3261aULL, 0xc6057138ef99ec9eULL,
    0x38b50b4c31763ba7ULL, 0x8ffdae711bef8e53ULL, 0x3e247f7ba1abd27bULL, 0xe5f13057e269050aULL,
    0x11a867058c326c15ULL, 0x51096cd8fbe51547ULL, 0x5d1336efd2afd7dcULL, 0x1118bdb2e6b4e696ULL,
    0x8c9c0bf54e6116f1ULL, 0x6253baa6c1285c10ULL, 0x184a12929bd82aecULL, 0xedc96989b5d14f26ULL,
    0x0574156b44c4af33ULL, 0x18ad1fcac4086e8cULL, 0xbda33d0e8e51d88aULL, 0xf9285b28e2b701eeULL,
    0x61912b095930ce58ULL, 0x14d441cc00765919ULL, 0xd913d435db860c34ULL, 0x3c9873875bbb750cULL,
    0xbbde2f04bedb2d08ULL, 0x9c1328144e9b298aULL, 0xd3d6a87f819f3a69ULL, 0xbb6166f9b8f1c618ULL,
    0xffd3089ea21fe352ULL, 0xa148724e2c4e49cdULL, 0x85da6b65aabb5105ULL, 0xbe32db3537d9b839ULL,
    0x26e8420098cea2f0ULL, 0x21061f0aa129add1ULL, 0xe3b4fdfe79ae8aceULL, 0x966cb8f095914323ULL,
    0x92db3b4022820ed3ULL, 0x281dbebfae114761ULL, 0xf4f651f2eccd7d2bULL, 0x5ac1359fa39e605dULL,
    0x717995c9a1c1bc9bULL, 0xf91394202f7f421bULL, 0x3d5daa348423d04cULL, 0xb01961110ecaaa67ULL,
    0xe047b7d6a3257f74ULL, 0xe5b860a27788477eULL, 0xe3e8769fdd11ead0ULL, 0x325944bf420d5186ULL,
    0x2ebd8a91bbe0a7b2ULL, 0xe65697374680747cULL, 0xec7e07b87e8588f4ULL, 0x28ce897d0ab38d53ULL,
    0x605fe5f510e6e23fULL, 0x817cb4a6dfd11841ULL, 0xd97eded8807309abULL, 0xd71eb75e3b372101ULL,
    0x65fffa36d227d7fcULL, 0xe2704348ce7fa49fULL, 0xbf9bfa0c3afcf00cULL, 0x3c85b867108b7780ULL,
    0x0b8995ee73fa3060ULL, 0x53831e93057af4beULL, 0x528a6aa8672e0fc1ULL, 0x5a59353149fbf58dULL,
    0x1e254895a03b4dbcULL, 0x36277da2b3fabcaaULL, 0xdcc8be28eb3422feULL, 0x4b675042a159c83aULL,
    0x4d29aaae09e5f374ULL, 0x69be0050ec49a984ULL, 0x7209b8627e5cfc50ULL, 0x9c8a702ddd52d6a7ULL,
    0x14e4ab1f31b0ac6bULL, 0x470860321ae4c4c5ULL, 0x5881a4b7ec6a4214ULL, 0xe3873972e9f2aa62ULL,
    0xeb618a072ff23e87ULL, 0x159d3262c28a6262ULL, 0x594980cc9ca6d24dULL, 0x3d1129f251d71e01ULL,
    0x20c343bb185396e9ULL, 0x2833f542e4d5f578ULL, 0x323700b0c86678fcULL, 0xa2d3f4a836c058ecULL,
    0x0daf61ceb53dd19aULL, 0x695a2c5ac471c5e4ULL, 0x1d8f69723e2e94b1ULL, 0xbcbb85ed83ce28e4ULL,
    0x71364c30847a732fULL, 0x57c39f5885109d16ULL, 0x1fba4842cfb0c736ULL, 0x9d66ddb53b60b07fULL,
    0xe47a24ac5b50116dULL, 0xae9bb7a17e8f0246ULL, 0xbeece8eef935a2edULL, 0xd4a4f31299c0b6d4ULL,
    0xf4321ff556a35aabULL, 0x8bf85c1ca7d96394ULL, 0xd980a1949dbbedb2ULL, 0x14286ef8ac7b08ebULL,
};

#define GEAR_STEP(fp, byte) (((fp) << 1) + fastcdc_gear[(byte)])

void fastcdc_params_default(struct fastcdc_params *p)
{
    p->min_len = FASTCDC_DEFAULT_MIN;
    p->avg_len = FASTCDC_DEFAULT_AVG;
    p->max_len = FASTCDC_DEFAULT_MAX;
    p->level = FASTCDC_DEFAULT_LVL;
}

/* log2 of the power of two nearest to v (v >= 1): b when v < 1.5 * 2^b, else b + 1. */
static uint32_t nearest_log2(uint32_t v)
{
    uint32_t b = 0;
    while ((v >> b) > 1) {
        b++;
    }
    uint32_t low = 1u << b;
    return v - low < low / 2 ? b : b + 1;
}

int fastcdc_init(struct fastcdc *c, const struct fastcdc_params *p)
{
    if (c == NULL || p == NULL) {
        return P4P_EINVAL;
    }
    if (p->min_len < FASTCDC_MIN_LIMIT || p->min_len >= p->avg_len || p->avg_len >= p->max_len ||
        p->max_len > FASTCDC_MAX_LIMIT || p->level > FASTCDC_LEVEL_MAX) {
        return P4P_EINVAL;
    }
    /* avg_len > 64 gives bits >= 6, so both masks have at least 3 and at most 34 bits. */
    uint32_t bits = nearest_log2(p->avg_len);
    uint32_t tail = 1u << (bits - p->level);
    c->min_len = p->min_len;
    c->max_len = p->max_len;
    c->normal_len = p->avg_len - p->min_len > tail ? p->avg_len - tail : p->min_len;
    c->bits = bits;
    c->level = p->level;
    c->mask_s = UINT64_MAX << (64 - (bits + p->level));
    c->mask_l = UINT64_MAX << (64 - (bits - p->level));
    fastcdc_reset(c);
    return 0;
}

void fastcdc_reset(struct fastcdc *c)
{
    c->pos = 0;
    c->fp = 0;
}

/* How many of `avail` bytes fit before the chunk position reaches `bound` (pos <= bound). */
static size_t take(size_t avail, uint32_t pos, uint32_t bound)
{
    size_t room = bound - pos;
    return avail < room ? avail : room;
}

/* The common scan: consumes d[0 .. len) from chunk state (*pos_io, *fp_io) up to the next cut.
 * Returns the bytes consumed; on a cut sets *cut_len to the chunk length and resets the state,
 * otherwise sets *cut_len = 0 and saves the state. */
static size_t scan(const struct fastcdc *c, const uint8_t *d, size_t len, uint32_t *pos_io,
                   uint64_t *fp_io, uint32_t *cut_len)
{
    uint32_t pos = *pos_io;
    uint64_t fp = *fp_io;
    size_t i = 0, start, end;

    /* Skip: bytes that can neither end a chunk nor reach the window of one that can. */
    if (pos < c->min_len - FASTCDC_WINDOW) {
        start = take(len, pos, c->min_len - FASTCDC_WINDOW);
        i = start;
        pos += (uint32_t)start;
    }
    /* Fill the window up to, not including, the byte that makes the chunk min_len long. */
    if (pos < c->min_len - 1) {
        start = i;
        for (end = i + take(len - i, pos, c->min_len - 1); i < end; i++) {
            fp = GEAR_STEP(fp, d[i]);
        }
        pos += (uint32_t)(i - start);
    }
    /* Lengths min_len .. normal_len - 1: the hard mask. */
    if (pos < c->normal_len - 1) {
        start = i;
        for (end = i + take(len - i, pos, c->normal_len - 1); i < end;) {
            fp = GEAR_STEP(fp, d[i]);
            i++;
            if ((fp & c->mask_s) == 0) {
                pos += (uint32_t)(i - start);
                goto cut;
            }
        }
        pos += (uint32_t)(i - start);
    }
    /* Lengths normal_len .. max_len: the easy mask, and the forced cut at max_len. */
    start = i;
    for (end = i + take(len - i, pos, c->max_len); i < end;) {
        fp = GEAR_STEP(fp, d[i]);
        i++;
        if ((fp & c->mask_l) == 0) {
            break;
        }
    }
    pos += (uint32_t)(i - start);
    if (pos == c->max_len || (i > start && (fp & c->mask_l) == 0)) {
        goto cut;
    }
    *pos_io = pos;
    *fp_io = fp;
    *cut_len = 0;
    return i;

cut:
    *pos_io = 0;
    *fp_io = 0;
    *cut_len = pos;
    return i;
}

size_t fastcdc_feed(struct fastcdc *c, const uint8_t *data, size_t len, uint32_t *chunk_len)
{
    return scan(c, data, len, &c->pos, &c->fp, chunk_len);
}

uint32_t fastcdc_finish(struct fastcdc *c)
{
    uint32_t last = c->pos;
    fastcdc_reset(c);
    return last;
}

uint32_t fastcdc_chunk_len(const struct fastcdc *c, const uint8_t *data, size_t len)
{
    uint32_t pos = 0, cut_len;
    uint64_t fp = 0;
    scan(c, data, len, &pos, &fp, &cut_len);
    /* Without a cut all of data was consumed, and len < max_len. */
    return cut_len != 0 ? cut_len : (uint32_t)len;
}
