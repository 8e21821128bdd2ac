// Float rows for the exact path: the dot product of two float rows and the dequantization of a
// weight row to float32. They were Swift SIMD code compiled for one fixed CPU level; here each
// level is a function with its own target, picked at run time like the quantized kernels.
//
// The dot product keeps the operations of the Swift code it replaced, so results are bitwise
// unchanged: two 16-lane accumulators, each lane a fused multiply-add per 32 elements (the
// first accumulator also takes a last run of 16), the tail multiplied and added unfused, then
// the lanes of `first + second` added in order 0...15 from -0, plus the tail. The AVX2 level
// holds each 16-lane accumulator in two 8-lane registers; lanes never mix, so the bits match.
//
// Dequantization evaluates GGML's expressions as separate multiplies and adds (the Swift
// code's order); see Dequantization.swift for why every level gives the same bits.
#include "Kernels.h"

#pragma clang fp contract(off)

enum { FORMAT_F32 = 0, FORMAT_F16 = 1, FORMAT_BF16 = 30 };

/// The unfused tail and the in-order reduction every level ends with.
static inline __attribute__((always_inline)) float finish_dot(const float first[16], const float second[16],
                                                             const float *a, const float *b, size_t index,
                                                             size_t count) {
    float tail = 0.0f;
    for (; index < count; index++) tail += a[index] * b[index];
    float sum = -0.0f;
    for (int lane = 0; lane < 16; lane++) sum += first[lane] + second[lane];
    return sum + tail;
}

static float dot_portable(const float *a, const float *b, size_t count) {
    float first[16] = {0}, second[16] = {0};
    size_t index = 0;
    for (; index + 32 <= count; index += 32) {
        for (int lane = 0; lane < 16; lane++) {
            first[lane] = fmaf(a[index + lane], b[index + lane], first[lane]);
            second[lane] = fmaf(a[index + 16 + lane], b[index + 16 + lane], second[lane]);
        }
    }
    if (index + 16 <= count) {
        for (int lane = 0; lane < 16; lane++) first[lane] = fmaf(a[index + lane], b[index + lane], first[lane]);
        index += 16;
    }
    return finish_dot(first, second, a, b, index, count);
}

// MARK: dequantization, written once for every level

/// Reads a block's fp16 field: `half_to_float` on the portable level, F16C on the vector level.
typedef float half_reader(const uint8_t *source);

/// GGML's get_scale_min_k4: the six-bit scale and minimum of K sub-block `index` (0..<8).
static inline __attribute__((always_inline)) void k_scale_and_minimum(const uint8_t *scales, int index,
                                                                     uint8_t *scale, uint8_t *minimum) {
    if (index < 4) {
        *scale = scales[index] & 63;
        *minimum = scales[index + 4] & 63;
    } else {
        *scale = (uint8_t)((scales[index + 4] & 0x0F) | ((scales[index - 4] >> 6) << 4));
        *minimum = (uint8_t)((scales[index + 4] >> 4) | ((scales[index] >> 6) << 4));
    }
}

/// The 32 codes of a Q4_x/Q5_x block: element i < 16 the low nibble of byte i, i + 16 its high
/// nibble, with bit i of `fifth` as bit 4 when the format has one.
static inline __attribute__((always_inline)) void nibble_codes(const uint8_t *bytes, uint32_t fifth, int has_fifth,
                                                              int32_t codes[32]) {
    for (int index = 0; index < 16; index++) {
        codes[index] = bytes[index] & 0x0F;
        codes[index + 16] = bytes[index] >> 4;
    }
    if (has_fifth) {
        for (int index = 0; index < 32; index++) codes[index] |= (int32_t)((fifth >> index) & 1) << 4;
    }
}

/// A Q4_0/Q5_0 block: `d × (q - offset)`.
static inline __attribute__((always_inline)) void symmetric_block(const uint8_t *bytes, float scale, uint32_t fifth,
                                                                 int has_fifth, int32_t offset, float *output) {
    int32_t codes[32];
    nibble_codes(bytes, fifth, has_fifth, codes);
    for (int index = 0; index < 32; index++) output[index] = scale * (float)(codes[index] - offset);
}

/// A Q4_1/Q5_1 block: `d × q + m`.
static inline __attribute__((always_inline)) void offset_block(const uint8_t *bytes, float scale, float minimum,
                                                              uint32_t fifth, int has_fifth, float *output) {
    int32_t codes[32];
    nibble_codes(bytes, fifth, has_fifth, codes);
    for (int index = 0; index < 32; index++) output[index] = scale * (float)codes[index] + minimum;
}

/// A Q4_K/Q5_K super-block: `(d × sc) × q - dmin × m` per sub-block of 32.
static inline __attribute__((always_inline)) void k_block(const uint8_t *block, float super_scale, float super_minimum,
                                                         int has_fifth, float *output) {
    const uint8_t *codes = block + (has_fifth ? 48 : 16);
    for (int pair = 0; pair < 4; pair++) {
        uint8_t low_code_scale, low_code_minimum, high_code_scale, high_code_minimum;
        k_scale_and_minimum(block + 4, 2 * pair, &low_code_scale, &low_code_minimum);
        k_scale_and_minimum(block + 4, 2 * pair + 1, &high_code_scale, &high_code_minimum);
        const float low_scale = super_scale * (float)low_code_scale;
        const float low_minimum = super_minimum * (float)low_code_minimum;
        const float high_scale = super_scale * (float)high_code_scale;
        const float high_minimum = super_minimum * (float)high_code_minimum;
        for (int index = 0; index < 32; index++) {
            uint8_t byte = codes[32 * pair + index];
            uint8_t low = byte & 0x0F, high = byte >> 4;
            if (has_fifth) {
                uint8_t fifth = block[16 + index];
                low |= ((fifth >> (2 * pair)) & 1) << 4;
                high |= ((fifth >> (2 * pair + 1)) & 1) << 4;
            }
            output[64 * pair + index] = low_scale * (float)low - low_minimum;
            output[64 * pair + 32 + index] = high_scale * (float)high - high_minimum;
        }
    }
}

/// A Q6_K super-block: `(d × scale) × (q - 32)` per sub-block of 16.
static inline __attribute__((always_inline)) void q6_k_block(const uint8_t *block, float super_scale, float *output) {
    for (int half = 0; half < 2; half++) {
        const uint8_t *low = block + 64 * half, *high = block + 128 + 32 * half;
        const int8_t *scales = (const int8_t *)(block + 192 + 8 * half);
        float *half_output = output + 128 * half;
        for (int part = 0; part < 2; part++) {
            float scale[4];
            for (int quarter = 0; quarter < 4; quarter++) scale[quarter] = super_scale * (float)scales[part + 2 * quarter];
            for (int lane = 0; lane < 16; lane++) {
                int index = 16 * part + lane;
                uint8_t first = low[index], second = low[index + 32], bits = high[index];
                int32_t codes[4] = {
                    (first & 0x0F) | (bits & 3) << 4, (second & 0x0F) | ((bits >> 2) & 3) << 4,
                    (first >> 4) | ((bits >> 4) & 3) << 4, (second >> 4) | (bits >> 6) << 4};
                for (int quarter = 0; quarter < 4; quarter++) {
                    half_output[index + 32 * quarter] = scale[quarter] * (float)(codes[quarter] - 32);
                }
            }
        }
    }
}

/// Two-bit code `index` (0..<256) of a Q2_K/Q3_K code plane: in each half of 128 elements,
/// byte `l` holds elements l, l + 32, l + 64, l + 96 in bits 0-1, 2-3, 4-5, 6-7.
static inline __attribute__((always_inline)) int32_t two_bit_code(const uint8_t *codes, int index) {
    const int within = index % 128;
    return (codes[32 * (index / 128) + within % 32] >> (2 * (within / 32))) & 3;
}

/// A Q2_K super-block: `(d × sc) × q - dmin × m` per sub-block of 16 (scale and minimum in
/// the nibbles of byte `s`).
static inline __attribute__((always_inline)) void q2_k_block(const uint8_t *block, float super_scale,
                                                            float super_minimum, float *output) {
    for (int sub = 0; sub < 16; sub++) {
        const float scale = super_scale * (float)(block[sub] & 0x0F);
        const float minimum = super_minimum * (float)(block[sub] >> 4);
        for (int index = 16 * sub; index < 16 * sub + 16; index++) {
            output[index] = scale * (float)two_bit_code(block + 16, index) - minimum;
        }
    }
}

/// A Q3_K super-block: `(d × (sc - 32)) × code` per sub-block of 16, code = two low bits minus
/// 4 when the element's `hmask` bit is clear.
static inline __attribute__((always_inline)) void q3_k_block(const uint8_t *block, float super_scale, float *output) {
    const uint8_t *scales = block + 96;
    for (int sub = 0; sub < 16; sub++) {
        const int low = sub < 8 ? scales[sub] & 0x0F : scales[sub - 8] >> 4;
        const int high = (scales[8 + sub % 4] >> (2 * (sub / 4))) & 3;
        const float scale = super_scale * (float)((low | high << 4) - 32);
        for (int index = 16 * sub; index < 16 * sub + 16; index++) {
            const int32_t code = two_bit_code(block + 32, index) - (((block[index % 32] >> (index / 32)) & 1) ? 0 : 4);
            output[index] = scale * (float)code;
        }
    }
}

static inline __attribute__((always_inline)) float bfloat16_to_float(const uint8_t *source) {
    uint32_t bits = (uint32_t)load_u16(source) << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/// `count` elements of `format` (whole blocks) from `source` into `output`, reading fp16 fields
/// with `half`. Inlined into each level, so its loops are vectorized for that level.
static inline __attribute__((always_inline)) void dequantize_row(uint32_t format, const uint8_t *source, float *output,
                                                                size_t count, half_reader *half) {
    switch (format) {
    case FORMAT_F32: memcpy(output, source, 4 * count); return;
    case FORMAT_F16:
        for (size_t index = 0; index < count; index++) output[index] = half(source + 2 * index);
        return;
    case FORMAT_BF16:
        for (size_t index = 0; index < count; index++) output[index] = bfloat16_to_float(source + 2 * index);
        return;
    default: break;
    }
    const size_t bytes = group_bytes(format), elements = group_subblocks(format) * 32;
    for (size_t block_index = 0; block_index < count / elements; block_index++) {
        const uint8_t *block = source + block_index * bytes;
        float *block_output = output + block_index * elements;
        switch (format) {
        case FORMAT_Q4_0: symmetric_block(block + 2, half(block), 0, 0, 8, block_output); break;
        case FORMAT_Q5_0: symmetric_block(block + 6, half(block), load_u32(block + 2), 1, 16, block_output); break;
        case FORMAT_Q4_1: offset_block(block + 4, half(block), half(block + 2), 0, 0, block_output); break;
        case FORMAT_Q5_1:
            offset_block(block + 8, half(block), half(block + 2), load_u32(block + 4), 1, block_output);
            break;
        case FORMAT_Q8_0: {
            const float scale = half(block);
            const int8_t *codes = (const int8_t *)(block + 2);
            for (int index = 0; index < 32; index++) block_output[index] = scale * (float)codes[index];
            break;
        }
        case FORMAT_Q4_K: k_block(block, half(block), half(block + 2), 0, block_output); break;
        case FORMAT_Q5_K: k_block(block, half(block), half(block + 2), 1, block_output); break;
        case FORMAT_Q2_K: q2_k_block(block, half(block + 80), half(block + 82), block_output); break;
        case FORMAT_Q3_K: q3_k_block(block, half(block + 108), block_output); break;
        default: q6_k_block(block, half(block + 208), block_output); break; // Q6_K
        }
    }
}

static void dequantize_portable(uint32_t format, const uint8_t *source, float *output, size_t count) {
    dequantize_row(format, source, output, count, half_to_float);
}

#if defined(__x86_64__)
#include "VectorSupport.h"

STRATA_AVX2
static float dot_avx2(const float *a, const float *b, size_t count) {
    // lanes 0-7 and 8-15 of each 16-lane accumulator
    __m256 first_low = _mm256_setzero_ps(), first_high = _mm256_setzero_ps();
    __m256 second_low = _mm256_setzero_ps(), second_high = _mm256_setzero_ps();
    size_t index = 0;
    for (; index + 32 <= count; index += 32) {
        first_low = _mm256_fmadd_ps(_mm256_loadu_ps(a + index), _mm256_loadu_ps(b + index), first_low);
        first_high = _mm256_fmadd_ps(_mm256_loadu_ps(a + index + 8), _mm256_loadu_ps(b + index + 8), first_high);
        second_low = _mm256_fmadd_ps(_mm256_loadu_ps(a + index + 16), _mm256_loadu_ps(b + index + 16), second_low);
        second_high = _mm256_fmadd_ps(_mm256_loadu_ps(a + index + 24), _mm256_loadu_ps(b + index + 24), second_high);
    }
    if (index + 16 <= count) {
        first_low = _mm256_fmadd_ps(_mm256_loadu_ps(a + index), _mm256_loadu_ps(b + index), first_low);
        first_high = _mm256_fmadd_ps(_mm256_loadu_ps(a + index + 8), _mm256_loadu_ps(b + index + 8), first_high);
        index += 16;
    }
    float first[16], second[16];
    _mm256_storeu_ps(first, first_low);
    _mm256_storeu_ps(first + 8, first_high);
    _mm256_storeu_ps(second, second_low);
    _mm256_storeu_ps(second + 8, second_high);
    return finish_dot(first, second, a, b, index, count);
}

STRATA_AVX2_INLINE float half_to_float_f16c(const uint8_t *source) { return _cvtsh_ss(load_u16(source)); }

/// Eight consecutive codes of a block (bytes from `bytes`: signed for Q8_0, else the low or,
/// with `high`, the high nibbles, minus `offset`) as floats.
STRATA_AVX2_INLINE __m256 eight_codes(uint32_t format, const uint8_t *bytes, int high, int32_t offset) {
    const __m128i packed = _mm_loadl_epi64((const __m128i *)bytes);
    if (format == FORMAT_Q8_0) return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(packed));
    const __m128i nibbles = _mm_and_si128(high ? _mm_srli_epi16(packed, 4) : packed, _mm_set1_epi8(0x0F));
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(nibbles), _mm256_set1_epi32(offset)));
}

/// Q4_0, Q4_1 and Q8_0 blocks with explicit vectors (the generic loops' conversions came out
/// partly scalar and ~30% slower on Q4_1 rows); the same multiplies and adds per element.
STRATA_AVX2_INLINE void dequantize_small_blocks_avx2(uint32_t format, const uint8_t *source, float *output,
                                                    size_t count) {
    const size_t bytes = group_bytes(format);
    const size_t codes_offset = format == FORMAT_Q4_1 ? 4 : 2;
    for (size_t block_index = 0; block_index < count / 32; block_index++) {
        const uint8_t *block = source + block_index * bytes, *codes = block + codes_offset;
        float *block_output = output + 32 * block_index;
        const __m256 scale = _mm256_set1_ps(half_to_float_f16c(block));
        const __m256 minimum = _mm256_set1_ps(format == FORMAT_Q4_1 ? half_to_float_f16c(block + 2) : 0.0f);
        for (int part = 0; part < 4; part++) {
            // elements 8 part ..< 8 part + 8: Q8_0's bytes in order; Q4_x's low nibbles of
            // bytes 0-15, then their high nibbles
            __m256 values = format == FORMAT_Q8_0
                                ? eight_codes(format, codes + 8 * part, 0, 0)
                                : eight_codes(format, codes + 8 * (part & 1), part >= 2, format == FORMAT_Q4_0 ? 8 : 0);
            values = _mm256_mul_ps(scale, values);
            if (format == FORMAT_Q4_1) values = _mm256_add_ps(values, minimum);
            _mm256_storeu_ps(block_output + 8 * part, values);
        }
    }
}

STRATA_AVX2
static void dequantize_avx2(uint32_t format, const uint8_t *source, float *output, size_t count) {
    switch (format) {
    case FORMAT_Q4_0: dequantize_small_blocks_avx2(FORMAT_Q4_0, source, output, count); return;
    case FORMAT_Q4_1: dequantize_small_blocks_avx2(FORMAT_Q4_1, source, output, count); return;
    case FORMAT_Q8_0: dequantize_small_blocks_avx2(FORMAT_Q8_0, source, output, count); return;
    default: dequantize_row(format, source, output, count, half_to_float_f16c); return;
    }
}
#endif

float strata_dot(int level, const float *a, const float *b, size_t count) {
#if defined(__x86_64__)
    if (level >= STRATA_LEVEL_AVX2) return dot_avx2(a, b, count);
#endif
    (void)level;
    return dot_portable(a, b, count);
}

void strata_dequantize(int level, uint32_t format, const void *source, float *output, size_t count) {
#if defined(__x86_64__)
    if (level >= STRATA_LEVEL_AVX2) {
        dequantize_avx2(format, source, output, count);
        return;
    }
#endif
    (void)level;
    dequantize_portable(format, source, output, count);
}
