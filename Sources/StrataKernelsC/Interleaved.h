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
#ifndef STRATA_INTERLEAVED_H
#define STRATA_INTERLEAVED_H

#include "Blocks.h"

/// Rows interleaved in one pass.
enum { OCTET_ROWS = 8 };

/// In both layouts a group (256 columns) of eight rows holds the rows' fp16 fields and scales
/// side by side, then the rows' code bytes exactly as in the file, interleaved in units of four:
/// unit u of the code area (32 bytes) holds bytes 4u..4u+3 of row 0's codes, then of row 1,
/// ... row 7. Which elements a unit holds follows from the file's code order (Q4_K: 32-byte
/// runs with sub-blocks 2j and 2j+1 in the two nibbles; Q6_K: `ql` then `qh`), so the kernels
/// address sub-block s's chunk c (elements 4c..4c+3) as unit `first_unit(s) + c`.
///
/// Q4_K: the rows' `d`, their `dmin`, the six-bit scales as bytes `[sub-block][row]`, the
/// six-bit minimums likewise, then 32 units of codes.
enum {
    OCTET_Q4K_D = 0,
    OCTET_Q4K_DMIN = 16,
    OCTET_Q4K_SCALES = 32,
    OCTET_Q4K_MINIMUMS = 96,
    OCTET_Q4K_CODES = 160,
    OCTET_Q4K_GROUP_BYTES = 160 + 1024,
};

/// Q6_K, as many bytes as in the file: the rows' `d`, the signed scales of each sixteen
/// elements as bytes `[sixteenth][row]`, then 48 units of codes: 32 of low four bits, 16 of
/// top two bits.
enum {
    OCTET_Q6K_D = 0,
    OCTET_Q6K_SCALES = 16,
    OCTET_Q6K_CODES = 144,
    OCTET_Q6K_GROUP_BYTES = 144 + 1536,
};

/// Q4_K: the unit of sub-block `sub`'s first chunk; its codes are the low nibbles for even
/// sub-blocks, the high ones for odd.
static inline int q4k_first_unit(int sub) { return 8 * (sub / 2); }

/// Q6_K: the unit of sub-block `sub`'s low four bits (the low nibbles for sub-blocks 4h and
/// 4h+1, the high ones for 4h+2 and 4h+3) and of its top two bits (bits 2q and 2q+1 for
/// sub-block 4h+q).
static inline int q6k_low_unit(int sub) { return 16 * (sub / 4) + 8 * (sub % 2); }
static inline int q6k_high_unit(int sub) { return 32 + 8 * (sub / 4); }

/// Bytes of one interleaved group of eight rows.
static inline size_t octet_group_bytes(uint32_t format) {
    return format == FORMAT_Q6_K ? OCTET_Q6K_GROUP_BYTES : OCTET_Q4K_GROUP_BYTES;
}

/// Eight interleaved rows against `tile` (1...TOKEN_TILE) tokens: row r of token t goes to
/// `output[t × output_stride + r]`. `activations` as for `row8_function`.
typedef void octet8_function(uint32_t format, size_t tile, const uint8_t *octet, size_t groups, strata_activations8 activations,
                             size_t columns, float *output, size_t output_stride);

octet8_function strata_octet8_portable;
#if defined(__x86_64__)
octet8_function strata_octet8_avx2;

/// Tokens whose accumulators `strata_octet8_batch_avx2` keeps while it walks the groups.
enum { OCTET_BATCH_TOKENS = 32 };

/// `strata_octet8_avx2` for any number of tokens, bit for bit: each group's codes are decoded
/// once into a buffer and then used by every tile of four tokens. For more than one tile this
/// is faster (Q4_K 8960 x 1536 at 8 tokens: 1.48 -> 1.32 cycles per 32 products; Q6_K
/// 1536 x 8960 0.28 -> 0.25 ms a token): the single-tile kernel decodes each group again per
/// tile and, with the codes and four tokens' sums live at once, spills registers.
void strata_octet8_batch_avx2(uint32_t format, const uint8_t *octet, size_t groups, strata_activations8 activations,
                              size_t tokens, size_t columns, float *output, size_t output_stride);
#endif

#endif
