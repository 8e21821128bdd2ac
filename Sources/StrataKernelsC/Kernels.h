// Shared by every kernel file: block geometry, scale unpacking, token tiles and the per-level
// entry points. Kernel files are named by what they hold: the weight layout (Rows, as in the
// model file; Octets, eight rows repacked together), the activation precision (8 or 16 bits)
// and the level (Portable, AVX2, AVX512). Every level of a kernel performs the same float
// operations per output element, so the levels agree bit for bit.
#ifndef STRATA_KERNELS_H
#define STRATA_KERNELS_H

#include "StrataKernelsC.h"
#include <float.h>
#include <math.h>
#include <string.h>

// GGML type numbers of the weight formats the kernels take.
enum {
    FORMAT_Q4_0 = 2, FORMAT_Q4_1 = 3, FORMAT_Q5_0 = 6, FORMAT_Q5_1 = 7, FORMAT_Q8_0 = 8,
    FORMAT_Q2_K = 10, FORMAT_Q3_K = 11, FORMAT_Q4_K = 12, FORMAT_Q5_K = 13, FORMAT_Q6_K = 14,
};

/// Expands `MACRO(argument, format)` for every weight format the kernels take: the one list
/// behind `strata_multiply_supports` and the SIMD levels' kernel switches.
#define STRATA_EACH_FORMAT(MACRO, argument)                                                     \
    MACRO(argument, FORMAT_Q4_0) MACRO(argument, FORMAT_Q4_1) MACRO(argument, FORMAT_Q5_0)     \
    MACRO(argument, FORMAT_Q5_1) MACRO(argument, FORMAT_Q8_0) MACRO(argument, FORMAT_Q2_K)     \
    MACRO(argument, FORMAT_Q3_K) MACRO(argument, FORMAT_Q4_K) MACRO(argument, FORMAT_Q5_K)     \
    MACRO(argument, FORMAT_Q6_K)

/// The scale of an activation group whose largest magnitude is `magnitude`, for codes up to
/// `largest_code`; 0 when it would fall below the smallest normal float, where its inverse can
/// overflow to infinity and turn every code into the most negative one (values ~1e-34 and less).
static inline float quantization_scale(float magnitude, float largest_code) {
    const float scale = magnitude / largest_code;
    return scale < FLT_MIN ? 0.0f : scale;
}

/// A rounded `scaled` value as a code within ±`largest`, as vcvtps2dq and a clamp give it: NaN
/// (which vcvtps2dq turns into INT_MIN) becomes -`largest`, where a plain cast is undefined.
static inline int32_t clamped_code(float scaled, int32_t largest) {
    if (scaled > (float)largest) return largest;
    if (scaled >= (float)-largest) return (int32_t)scaled;
    return -largest;
}

/// Tokens that share one pass over a weight row: each decoded 32-weight sub-block is dotted
/// with this many activation rows before the next is decoded.
enum { TOKEN_TILE = 4 };

/// Calls `kernel(tile, arguments...)` with `tile` (1...TOKEN_TILE) as a constant, so each tile
/// size gets its own fully unrolled copy of an inlined kernel: the one place the vector levels
/// specialise on the tile.
#define STRATA_WITH_CONSTANT_TILE(tile, kernel, ...)         \
    switch (tile) {                                          \
    case 1: kernel(1, __VA_ARGS__); break;                   \
    case 2: kernel(2, __VA_ARGS__); break;                   \
    case 3: kernel(3, __VA_ARGS__); break;                   \
    default: kernel(4, __VA_ARGS__); break;                  \
    }
_Static_assert(TOKEN_TILE == 4, "STRATA_WITH_CONSTANT_TILE lists tiles 1...4");

/// A group is one block of the weight format: 32 elements, or a 256-element K super-block
/// holding eight 32-element sub-blocks.
static inline size_t group_bytes(uint32_t format) {
    switch (format) {
    case FORMAT_Q4_0: return 18;
    case FORMAT_Q4_1: return 20;
    case FORMAT_Q5_0: return 22;
    case FORMAT_Q5_1: return 24;
    case FORMAT_Q8_0: return 34;
    case FORMAT_Q4_K: return 144;
    case FORMAT_Q5_K: return 176;
    case FORMAT_Q2_K: return 84;
    case FORMAT_Q3_K: return 110;
    default: return 210; // Q6_K
    }
}

static inline int group_subblocks(uint32_t format) {
    return format == FORMAT_Q4_K || format == FORMAT_Q5_K || format == FORMAT_Q6_K || format == FORMAT_Q2_K ||
                   format == FORMAT_Q3_K
               ? 8
               : 1;
}

/// Formats with an offset term `offset × activation sum` per 32-element (sub-)block. Q2_K's
/// minimums change every 16 elements, finer than the activation sums, so the 16-bit kernels
/// take them as a second integer dot product (`sixteen_scales`).
static inline int format_has_offset(uint32_t format) {
    return format != FORMAT_Q8_0 && format != FORMAT_Q6_K && format != FORMAT_Q2_K && format != FORMAT_Q3_K;
}

/// The K formats with a scale per 16 elements: Q2_K, Q3_K and Q6_K.
static inline int has_sixteen_scales(uint32_t format) {
    return format == FORMAT_Q2_K || format == FORMAT_Q3_K || format == FORMAT_Q6_K;
}

static inline uint16_t load_u16(const uint8_t *source) {
    uint16_t value;
    memcpy(&value, source, sizeof value);
    return value;
}

static inline uint32_t load_u32(const uint8_t *source) {
    uint32_t value;
    memcpy(&value, source, sizeof value);
    return value;
}

/// A group's scales, arranged so that the float work per token is one multiply-add per lane
/// per group: with the activation scale `a.scale` shared by the whole group, it contributes
/// `(scale × a.scale) × Σ_sub Σ_i (code_i × multiplier) × a.value_i + Σ_sub offset[sub] × a.sum[sub]`.
/// The integer multipliers (K formats' sub-block scales) are applied to the 16-bit codes,
/// where `|code × multiplier|` ≤ 4096 cannot overflow; a lane's sum over a super-block stays
/// below 16 × 4096 × 32767 < 2^31.
typedef struct {
    /// fp16 `d` of a K group, the block scale of a 32-element format.
    float scale;
    float offset[8];
    /// Q4_K/Q5_K six-bit sub-block scales (1 for other formats; Q6_K's are per 16 elements).
    int16_t multiplier[8];
} group_scales;

/// The six-bit scales (low 8 bytes) and minimums (high 8 bytes) of a Q4_K/Q5_K group, packed
/// as GGML's get_scale_min_k4 reads them, unpacked four at a time in 32-bit words.
static inline void unpack_k_scales(const uint8_t *block, uint64_t *scales, uint64_t *minimums) {
    uint32_t first = load_u32(block + 4), second = load_u32(block + 8), third = load_u32(block + 12);
    uint32_t upper_scales = (third & 0x0F0F0F0Fu) | (((first >> 6) & 0x03030303u) << 4);
    uint32_t upper_minimums = ((third >> 4) & 0x0F0F0F0Fu) | (((second >> 6) & 0x03030303u) << 4);
    *scales = (uint64_t)(first & 0x3F3F3F3Fu) | ((uint64_t)upper_scales << 32);
    *minimums = (uint64_t)(second & 0x3F3F3F3Fu) | ((uint64_t)upper_minimums << 32);
}

/// Fills `scales` from a group's header given its fp16 fields already converted (each level
/// converts with its own instruction; both conversions are exact). Products of an fp16 value
/// and a small integer are exact in float, so these are the same bits on every level.
static inline void decode_group_scales(uint32_t format, const uint8_t *block, float first, float second,
                                       group_scales *scales) {
    scales->scale = first;
    for (int index = 0; index < 8; index++) {
        scales->offset[index] = 0;
        scales->multiplier[index] = 1;
    }
    switch (format) {
    case FORMAT_Q4_0: scales->offset[0] = -8.0f * first; break;
    case FORMAT_Q5_0: scales->offset[0] = -16.0f * first; break;
    case FORMAT_Q4_1:
    case FORMAT_Q5_1: scales->offset[0] = second; break;
    case FORMAT_Q4_K:
    case FORMAT_Q5_K: {
        uint64_t packed_scales, packed_minimums;
        unpack_k_scales(block, &packed_scales, &packed_minimums);
        for (int index = 0; index < 8; index++) {
            scales->multiplier[index] = (int16_t)((packed_scales >> (8 * index)) & 0xFF);
            scales->offset[index] = -(second * (float)((packed_minimums >> (8 * index)) & 0xFF));
        }
        break;
    }
    // Q2_K: -dmin, the factor of its minimum lanes (`sixteen_scales`)
    case FORMAT_Q2_K: scales->offset[0] = -second; break;
    default: break; // Q8_0 has no offset; Q3_K's and Q6_K's 16 signed scales multiply the codes in place
    }
}

/// An fp16 value as float, exactly, without F16C (the portable levels).
static inline float half_to_float(const uint8_t *source) {
    uint16_t bits = load_u16(source);
    uint32_t sign = (uint32_t)(bits >> 15) << 31;
    int exponent = (bits >> 10) & 0x1F;
    uint32_t mantissa = bits & 0x3FF;
    float magnitude;
    if (exponent == 0) {
        magnitude = ldexpf((float)mantissa, -24); // zero or subnormal, exact
    } else if (exponent == 0x1F) {
        uint32_t special = 0x7F800000u | (mantissa << 13) | (mantissa ? 0x00400000u : 0);
        memcpy(&magnitude, &special, sizeof magnitude);
    } else {
        magnitude = ldexpf((float)(mantissa | 0x400), exponent - 25);
    }
    uint32_t result;
    memcpy(&result, &magnitude, sizeof result);
    result |= sign;
    memcpy(&magnitude, &result, sizeof magnitude);
    return magnitude;
}

/// The float sum of eight lanes in the order every level uses:
/// ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) (the portable levels' form).
static inline float sum_eight_lanes(const float lanes[8]) {
    float pairs[4];
    for (int lane = 0; lane < 4; lane++) pairs[lane] = lanes[lane] + lanes[lane + 4];
    return (pairs[0] + pairs[2]) + (pairs[1] + pairs[3]);
}

/// Byte offsets of a group's two fp16 fields (the second is unused by some formats).
static inline size_t first_half_offset(uint32_t format) {
    return format == FORMAT_Q6_K ? 208 : format == FORMAT_Q2_K ? 80 : format == FORMAT_Q3_K ? 108 : 0;
}
static inline size_t second_half_offset(uint32_t format) {
    return format == FORMAT_Q6_K ? 208 : format == FORMAT_Q2_K ? 82 : format == FORMAT_Q3_K ? 108 : 2;
}

/// Q3_K's sixteen six-bit scales as stored (plus 32), byte i of word w being scale 4w + i. Scale
/// s takes its low four bits from byte s of the packed twelve (s < 8) or the high nibble of byte
/// s - 8, and its top two from bits 2(s / 4) of byte 8 + s mod 4; 32-bit word arithmetic does four
/// scales at once. A loop over the scales one at a time cost more than a group's codes: with it
/// uniform Q3_K on Qwen2.5-Coder-1.5B decoded at 9-10.5 tokens/s (8-bit activations), with
/// this at 17-17.7.
static inline void q3k_scale_words(const uint8_t *block, uint32_t words[4]) {
    const uint8_t *packed = block + 96;
    const uint32_t first = load_u32(packed), second = load_u32(packed + 4), top = load_u32(packed + 8);
    const uint32_t nibbles = 0x0F0F0F0Fu, pairs = 0x03030303u;
    words[0] = (first & nibbles) | (top & pairs) << 4;
    words[1] = (second & nibbles) | (top >> 2 & pairs) << 4;
    words[2] = (first >> 4 & nibbles) | (top >> 4 & pairs) << 4;
    words[3] = (second >> 4 & nibbles) | (top >> 6 & pairs) << 4;
}

/// The sixteen per-16-element scales of a Q2_K, Q3_K or Q6_K group, and Q2_K's minimums (zero
/// for the others): Q2_K's four-bit scale and minimum share a byte; Q3_K's six-bit scales,
/// stored plus 32, keep their low four bits in the nibbles of bytes 96-103 and their top two
/// bits in bytes 104-107; Q6_K's are signed bytes.
static inline void sixteen_scales(uint32_t format, const uint8_t *block, int8_t scales[16], int8_t minimums[16]) {
    if (format == FORMAT_Q3_K) {
        uint32_t words[4];
        q3k_scale_words(block, words);
        uint8_t stored[16];
        memcpy(stored, words, sizeof stored);
        for (int index = 0; index < 16; index++) {
            scales[index] = (int8_t)(stored[index] - 32);
            minimums[index] = 0;
        }
        return;
    }
    for (int index = 0; index < 16; index++) {
        switch (format) {
        case FORMAT_Q2_K:
            scales[index] = (int8_t)(block[index] & 0x0F);
            minimums[index] = (int8_t)(block[index] >> 4);
            break;
        default: // Q6_K
            scales[index] = (int8_t)block[192 + index];
            minimums[index] = 0;
        }
    }
}

/// Element `l` (0..<32) of sub-block `sub` of a Q2_K or Q3_K group, as an unsigned code: the
/// two bits at `2 × (sub mod 4)` of byte `l` of the sub-block's half of `qs` (Q2_K 0...3), plus
/// 4 when bit `sub` of `hmask[l]` is set (Q3_K 0...7, stored offset by 4).
static inline int32_t low_bit_code(uint32_t format, const uint8_t *block, int sub, int element) {
    const uint8_t *codes = block + (format == FORMAT_Q2_K ? 16 : 32) + 32 * (sub / 4);
    int32_t code = (codes[element] >> (2 * (sub % 4))) & 3;
    if (format == FORMAT_Q3_K) code += ((block[element] >> sub) & 1) * 4;
    return code;
}

/// Tokens per pass over the rows: enough that the activation rows of one pass stay in L2
/// (about 256 KiB) while every weight row is streamed from memory once per pass.
static inline size_t token_chunk(size_t columns) {
    size_t bytes_per_token = columns / 32 * sizeof(strata_activation_block16);
    size_t tokens = ((size_t)256 << 10) / (bytes_per_token ? bytes_per_token : 1);
    tokens -= tokens % TOKEN_TILE;
    return tokens < TOKEN_TILE ? TOKEN_TILE : tokens;
}

/// `token_chunk` for 8-bit activation blocks.
static inline size_t token_chunk8(size_t columns) {
    size_t bytes_per_token = columns + columns / 32 * 8 + columns / 16 * 2;
    size_t tokens = ((size_t)256 << 10) / (bytes_per_token ? bytes_per_token : 1);
    tokens -= tokens % TOKEN_TILE;
    return tokens < TOKEN_TILE ? TOKEN_TILE : tokens;
}

/// One weight row against `tile` (1...TOKEN_TILE) tokens: `output[t × output_stride]` for
/// token t, whose blocks start at `activations + t × stride`.
typedef void row_function(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                          const strata_activation_block16 *activations, size_t stride, float *output, size_t output_stride);

/// `row_function` for 8-bit activations: `activations` points at the first token's first
/// element in each array; token t's elements start `t × columns` values (`t × columns / 32`
/// scales and sums, `t × columns / 16` half sums) further.
typedef void row8_function(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                           strata_activations8 activations, size_t columns, float *output, size_t output_stride);

/// `activations` advanced by `tokens` tokens of `columns` elements.
static inline strata_activations8 activations8_after(strata_activations8 activations, size_t tokens, size_t columns) {
    return (strata_activations8){activations.values + tokens * columns, activations.scales + tokens * columns / 32,
                                 activations.sums + tokens * columns / 32, activations.half_sums + tokens * columns / 16};
}

void strata_quantize8_portable(const float *input, size_t count, strata_activations8 output);
row8_function strata_rows8_portable;
#if defined(__x86_64__)
void strata_quantize8_avx2(const float *input, size_t count, strata_activations8 output);
row8_function strata_rows8_avx2;
#endif

void strata_quantize16_portable(const float *input, size_t count, size_t group, strata_activation_block16 *output);
row_function strata_rows16_portable;
#if defined(__x86_64__)
void strata_quantize16_avx512(const float *input, size_t count, size_t group, strata_activation_block16 *output);
row_function strata_rows16_avx512;
void strata_quantize16_avx2(const float *input, size_t count, size_t group, strata_activation_block16 *output);
row_function strata_rows16_avx2;
#endif

#endif
