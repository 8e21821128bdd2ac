// Q4_K and Q6_K weights with eight rows interleaved, for the 8-bit activation kernels.
//
// In the file's layout a token's dot product with one row leaves eight partial sums in the
// lanes of a vector, which must be converted, scaled and finally added across lanes: four
// vector operations per 32 weights and token. Interleaving eight rows puts one ROW in each
// 32-bit lane instead: vpmaddubsw multiplies four codes of each of the eight rows by the same
// four activations (broadcast), and a sub-block's eight such products add up as int16 with
// one vpmaddwd (times the rows' sub-block scales) and one conversion at the end, so the
// per-sub-block float work (activation scale, minimum) is shared by eight rows. The weights
// are repacked once, when a model is prepared for 8-bit products.
#ifndef STRATA_OCTETS8_H
#define STRATA_OCTETS8_H

#include "Kernels.h"

/// Rows interleaved in one pass.
enum { OCTET_ROWS = 8 };

/// In both layouts a group (256 columns) of eight rows holds the rows' fp16 fields and scales
/// side by side, then the rows' codes in units of 32 bytes: four bytes of row 0, then of row 1,
/// ... row 7, so a unit is one chunk (four elements) of a sub-block for all eight rows.
///
/// Q4_K: the rows' `d`, their `dmin`, the six-bit scales as bytes `[sub-block][row]`, the
/// six-bit minimums likewise, then 32 units of codes: the file's code bytes, four at a time
/// (sub-blocks 2j and 2j+1 in the low and high nibbles of units 8j...8j+7).
enum {
    OCTET_Q4K_D = 0,
    OCTET_Q4K_DMIN = 16,
    OCTET_Q4K_SCALES = 32,
    OCTET_Q4K_MINIMUMS = 96,
    OCTET_Q4K_CODES = 160,
    OCTET_Q4K_GROUP_BYTES = 160 + 1024,
};

/// Q6_K, as many bytes as in the file: the rows' `d`, the signed scales of each sixteen
/// elements as bytes `[sub-block][row][sixteenth]`, then 48 units of six-bit codes (stored
/// plus 32, as in the file), rearranged so that half of them need one AND to decode. For each
/// half h (sub-blocks A = 4h, B = 4h+1, C = 4h+2, D = 4h+3) and chunk c, units 24h + 3c + k:
///   k = 0: A | (C >> 4) << 6      k = 1: B | (D >> 4) << 6      k = 2: (C & 15) | (D & 15) << 4
/// so A = X & 63, B = Y & 63, C = (Z & 15) | (X >> 2 & 48), D = (Z >> 4) | (Y >> 2 & 48):
/// eleven vector operations for four chunks, where the file's order (low nibbles, then the
/// top two bits of four sub-blocks in one byte) took seventeen.
enum {
    OCTET_Q6K_D = 0,
    OCTET_Q6K_SCALES = 16,
    OCTET_Q6K_CODES = 144,
    OCTET_Q6K_GROUP_BYTES = 144 + 1536,
};

/// Q4_1 and Q5_0 for the 16-bit activation kernels (Octets16Portable.c): per block of 32 columns
/// the rows' `d`, then Q4_1's `m` (fp16 each) or Q5_0's fifth code bits (32 bytes), then four
/// units of low four bits.
enum {
    OCTET16_D = 0,
    OCTET_Q41_M = 16,
    OCTET_Q41_CODES = 32,
    OCTET_Q41_BLOCK_BYTES = 32 + 128,
    OCTET_Q50_FIFTH_BITS = 16,
    OCTET_Q50_CODES = 48,
    OCTET_Q50_BLOCK_BYTES = 48 + 128,
};

/// Bytes of one interleaved 16-bit block of eight rows, and where its code units start.
static inline size_t octet16_block_bytes(uint32_t format) {
    return format == FORMAT_Q5_0 ? OCTET_Q50_BLOCK_BYTES : OCTET_Q41_BLOCK_BYTES;
}
static inline size_t octet16_codes(uint32_t format) { return format == FORMAT_Q5_0 ? OCTET_Q50_CODES : OCTET_Q41_CODES; }

/// Q4_K: the unit of sub-block `sub`'s first chunk; its codes are the low nibbles for even
/// sub-blocks, the high ones for odd.
static inline int q4k_first_unit(int sub) { return 8 * (sub / 2); }

/// Q6_K: the unit holding sub-block `sub`'s six bits (A, B) or top two bits (C, D) for chunk
/// `chunk`, and the unit holding the low four bits of C and D.
static inline int q6k_six_bit_unit(int sub, int chunk) { return 24 * (sub / 4) + 3 * chunk + (sub % 2); }
static inline int q6k_low_bits_unit(int sub, int chunk) { return 24 * (sub / 4) + 3 * chunk + 2; }

/// Bytes of one interleaved group of eight rows.
static inline size_t octet_group_bytes(uint32_t format) {
    return format == FORMAT_Q6_K ? OCTET_Q6K_GROUP_BYTES : OCTET_Q4K_GROUP_BYTES;
}

/// Eight interleaved rows against `tile` (1...TOKEN_TILE) tokens: row r of token t goes to
/// `output[t × output_stride + r]`. `activations` as for `row8_function`.
typedef void octet8_function(uint32_t format, size_t tile, const uint8_t *octet, size_t groups, strata_activations8 activations,
                             size_t columns, float *output, size_t output_stride);

octet8_function strata_octets8_portable;
#if defined(__x86_64__)
octet8_function strata_octets8_avx2;

/// Tokens whose accumulators `strata_octets8_batch_avx2` keeps while it walks the groups.
enum { OCTET_BATCH_TOKENS = 32 };

/// `strata_octets8_avx2` for any number of tokens, bit for bit: each group's codes are decoded
/// once into a buffer and then used by every tile of four tokens. For more than one tile this
/// is faster (Q4_K 8960 x 1536 at 8 tokens: 1.48 -> 1.32 cycles per 32 products; Q6_K
/// 1536 x 8960 0.28 -> 0.25 ms a token): the single-tile kernel decodes each group again per
/// tile and, with the codes and four tokens' sums live at once, spills registers.
void strata_octets8_batch_avx2(uint32_t format, const uint8_t *octet, size_t groups, strata_activations8 activations,
                               size_t tokens, size_t columns, float *output, size_t output_stride);
#endif

/// Eight interleaved Q4_1 or Q5_0 rows against `tile` (1...TOKEN_TILE) tokens of 16-bit
/// activation blocks (`blocks` per token): row r of token t goes to `output[t × output_stride + r]`.
typedef void octet16_function(uint32_t format, size_t tile, const uint8_t *octet, size_t blocks,
                              const strata_activation_block16 *activations, float *output, size_t output_stride);

octet16_function strata_octets16_portable;
#if defined(__x86_64__)
octet16_function strata_octets16_avx2;
#endif

#endif
