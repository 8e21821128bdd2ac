// AVX2 kernels, for x86 CPUs without AVX-512 VNNI (AMD Zen 2/3, Intel before Ice Lake).
// They perform the AVX-512 level's arithmetic with each 16-lane vector held as two 8-lane
// halves: a sub-block's 32 int16 codes are two registers (elements 0-15 and 16-31), and
// vpmaddwd of each half with the token's activations gives the same sixteen int32 pair sums
// as one vpdpwssd (lanes 0-7, then 8-15). The float operations per lane and the final
// reduction are the same, so every level returns the same bits.
#if defined(__x86_64__)
#include "VectorSupport.h"

#pragma clang fp contract(off)

/// Sixteen lanes as two 8-lane halves: `low` holds lanes 0-7, `high` lanes 8-15.
typedef struct { __m256 low, high; } wide_float;
/// A sub-block's 32 codes as int16: `low` elements 0-15, `high` elements 16-31.
typedef struct { __m256i low, high; } wide_codes;

/// 16 bytes of packed nibbles as 32 int16 codes: low nibbles first, then high.
STRATA_AVX2_INLINE wide_codes split_nibbles(const uint8_t *source) {
    __m256i bytes = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)source));
    return (wide_codes){_mm256_and_si256(bytes, _mm256_set1_epi16(0x0F)), _mm256_srli_epi16(bytes, 4)};
}

/// 16 mask bits as 16 words of 16 (bit i set) or 0: the fifth bit of Q5_0/Q5_1 codes.
STRATA_AVX2_INLINE __m256i fifth_bits(uint32_t bits) {
    const __m256i selectors = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
                                                (short)0x8000);
    __m256i spread = _mm256_and_si256(_mm256_set1_epi16((short)bits), selectors);
    return _mm256_and_si256(_mm256_cmpeq_epi16(spread, selectors), _mm256_set1_epi16(16));
}

STRATA_AVX2_INLINE wide_codes add_fifth_bits(wide_codes codes, uint32_t bits) {
    return (wide_codes){_mm256_add_epi16(codes.low, fifth_bits(bits & 0xFFFF)), _mm256_add_epi16(codes.high, fifth_bits(bits >> 16))};
}

/// 32 bytes as int16 codes: their low nibbles, or (`upper`) their high nibbles.
STRATA_AVX2_INLINE wide_codes nibbles_of(const uint8_t *source, int upper) {
    __m256i low = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)source));
    __m256i high = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(source + 16)));
    if (upper) return (wide_codes){_mm256_srli_epi16(low, 4), _mm256_srli_epi16(high, 4)};
    const __m256i mask = _mm256_set1_epi16(0x0F);
    return (wide_codes){_mm256_and_si256(low, mask), _mm256_and_si256(high, mask)};
}

/// The 32 codes of sub-block `sub`, as on the AVX-512 level: unsigned, or signed for Q8_0, Q3_K
/// and Q6_K; Q4_K/Q5_K codes times their six-bit scale, Q2_K/Q3_K codes times their scales
/// from `sixteen`, Q6_K codes times their 8-bit scales.
STRATA_AVX2_INLINE wide_codes subblock_codes(uint32_t format, const uint8_t *block, int sub, int16_t multiplier,
                                             const int8_t sixteen[16]) {
    switch (format) {
    case FORMAT_Q2_K:
    case FORMAT_Q3_K: {
        const uint8_t *packed = block + (format == FORMAT_Q2_K ? 16 : 32) + 32 * (sub / 4);
        const __m256i three = _mm256_set1_epi16(3);
        __m256i low = _mm256_and_si256(_mm256_srli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)packed)), 2 * (sub % 4)), three);
        __m256i high = _mm256_and_si256(_mm256_srli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(packed + 16))), 2 * (sub % 4)), three);
        if (format == FORMAT_Q3_K) {
            // bit `sub` of hmask[l] set: 4 more; then the offset of 4 comes off every code
            const __m256i one = _mm256_set1_epi16(1);
            __m256i mask_low = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)block));
            __m256i mask_high = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(block + 16)));
            const __m256i four = _mm256_set1_epi16(4);
            low = _mm256_sub_epi16(_mm256_add_epi16(low, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(mask_low, sub), one), 2)), four);
            high = _mm256_sub_epi16(_mm256_add_epi16(high, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(mask_high, sub), one), 2)), four);
        }
        return (wide_codes){_mm256_mullo_epi16(low, _mm256_set1_epi16(sixteen[2 * sub])),
                            _mm256_mullo_epi16(high, _mm256_set1_epi16(sixteen[2 * sub + 1]))};
    }
    case FORMAT_Q4_0: return split_nibbles(block + 2);
    case FORMAT_Q4_1: return split_nibbles(block + 4);
    case FORMAT_Q5_0: return add_fifth_bits(split_nibbles(block + 6), load_u32(block + 2));
    case FORMAT_Q5_1: return add_fifth_bits(split_nibbles(block + 8), load_u32(block + 4));
    case FORMAT_Q8_0:
        return (wide_codes){_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(block + 2))),
                            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(block + 18)))};
    case FORMAT_Q4_K:
    case FORMAT_Q5_K: {
        // sub-blocks 2p and 2p+1 share 32 bytes: low nibbles, then high nibbles
        size_t codes_offset = format == FORMAT_Q4_K ? 16 : 48;
        wide_codes codes = nibbles_of(block + codes_offset + 32 * (sub / 2), sub & 1);
        if (format == FORMAT_Q5_K) {
            // fifth bit of element l: bit `sub` of qh[l]
            const __m256i one = _mm256_set1_epi16(1);
            __m256i low = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(block + 16)));
            __m256i high = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(block + 32)));
            codes.low = _mm256_add_epi16(codes.low, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(low, sub), one), 4));
            codes.high = _mm256_add_epi16(codes.high, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, sub), one), 4));
        }
        __m256i scale = _mm256_set1_epi16(multiplier);
        return (wide_codes){_mm256_mullo_epi16(codes.low, scale), _mm256_mullo_epi16(codes.high, scale)};
    }
    default: { // Q6_K: half h = sub / 4, quarter q = sub % 4
        int half = sub / 4, quarter = sub % 4;
        wide_codes low = nibbles_of(block + 64 * half + 32 * (quarter & 1), quarter >= 2);
        const uint8_t *high_bits = block + 128 + 32 * half;
        const __m256i three = _mm256_set1_epi16(3), offset = _mm256_set1_epi16(32);
        __m256i high_low = _mm256_and_si256(_mm256_srli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)high_bits)), 2 * quarter), three);
        __m256i high_high = _mm256_and_si256(_mm256_srli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(high_bits + 16))), 2 * quarter), three);
        __m256i codes_low = _mm256_sub_epi16(_mm256_or_si256(low.low, _mm256_slli_epi16(high_low, 4)), offset);
        __m256i codes_high = _mm256_sub_epi16(_mm256_or_si256(low.high, _mm256_slli_epi16(high_high, 4)), offset);
        // elements 0-15 take scale 2s, elements 16-31 scale 2s+1
        const int8_t *scales = (const int8_t *)(block + 192);
        return (wide_codes){_mm256_mullo_epi16(codes_low, _mm256_set1_epi16(scales[2 * sub])),
                            _mm256_mullo_epi16(codes_high, _mm256_set1_epi16(scales[2 * sub + 1]))};
    }
    }
}

/// The float sum of sixteen lanes, in the portable level's order: lanes l and l + 8 first,
/// then ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
STRATA_AVX2_INLINE float reduce_lanes(wide_float wide) {
    return reduce_eight_lanes(_mm256_add_ps(wide.low, wide.high));
}

STRATA_AVX2_INLINE wide_float fused_multiply_add_wide(wide_float a, __m256 b, wide_float c) {
    return (wide_float){_mm256_fmadd_ps(a.low, b, c.low), _mm256_fmadd_ps(a.high, b, c.high)};
}

/// Adds one 32-element block to the accumulators of `tile` tokens on chain `chain` (the
/// block's index mod 2): one multiply-add per lane by `d × activation scale`, as on the
/// portable level.
STRATA_AVX2_INLINE void add_block(const uint32_t format, const int tile, const uint8_t *block,
                                  const strata_activation_block16 *column_block, size_t stride, int chain,
                                  wide_float accumulators[TOKEN_TILE][2], float offsets[TOKEN_TILE][2]) {
    group_scales scales;
    uint64_t multipliers = 0;
    group_scales_of(format, block, &scales, &multipliers);
    wide_codes codes = subblock_codes(format, block, 0, 1, 0);
    for (int token = 0; token < tile; token++) {
        const strata_activation_block16 *input = column_block + token * stride;
        __m256i low = _mm256_madd_epi16(codes.low, _mm256_loadu_si256((const __m256i *)input->values));
        __m256i high = _mm256_madd_epi16(codes.high, _mm256_loadu_si256((const __m256i *)(input->values + 16)));
        wide_float lanes = {_mm256_cvtepi32_ps(low), _mm256_cvtepi32_ps(high)};
        accumulators[token][chain] = fused_multiply_add_wide(lanes, _mm256_set1_ps(scales.scale * input->scale), accumulators[token][chain]);
        if (format_has_offset(format)) offsets[token][chain] = fused_multiply_add(scales.offset[0], input->sum, offsets[token][chain]);
    }
}

/// K formats: per group and token, vpmaddwd pair sums of all eight sub-blocks add up in two
/// int32 halves, converted once and multiplied by `d × activation scale` (the activations share
/// one scale per super-block), as on the portable level; Q2_K's minimums take a second pair of
/// halves and multiply-add.
STRATA_AVX2_INLINE void k_row(const uint32_t format, const int tile, const uint8_t *row, size_t groups,
                              const strata_activation_block16 *activations, size_t stride,
                              float *output, size_t output_stride) {
    const size_t bytes = group_bytes(format);
    wide_float accumulators[TOKEN_TILE];
    // four offset chains (sub-block k to chain k mod 4), as on the portable level
    float offsets[TOKEN_TILE][4];
    for (int token = 0; token < tile; token++) {
        accumulators[token] = (wide_float){_mm256_setzero_ps(), _mm256_setzero_ps()};
        offsets[token][0] = offsets[token][1] = offsets[token][2] = offsets[token][3] = 0;
    }
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = row + group * bytes;
        const strata_activation_block16 *column_block = activations + group * 8;
        group_scales scales;
        uint64_t multipliers = 0;
        group_scales_of(format, block, &scales, &multipliers);
        int8_t sixteen[16] = {0}, minimums[16] = {0};
        if (format == FORMAT_Q2_K || format == FORMAT_Q3_K) sixteen_scales(format, block, sixteen, minimums);
        const wide_codes zero = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        wide_codes lanes[TOKEN_TILE], minimum_lanes[TOKEN_TILE];
        for (int token = 0; token < tile; token++) lanes[token] = minimum_lanes[token] = zero;
#pragma clang loop unroll(full)
        for (int sub = 0; sub < 8; sub++) {
            wide_codes codes = subblock_codes(format, block, sub, (int16_t)((multipliers >> (8 * sub)) & 0xFF), sixteen);
            const __m256i low_minimum = _mm256_set1_epi16(minimums[2 * sub]), high_minimum = _mm256_set1_epi16(minimums[2 * sub + 1]);
            for (int token = 0; token < tile; token++) {
                const strata_activation_block16 *input = column_block + sub + token * stride;
                const __m256i low_values = _mm256_loadu_si256((const __m256i *)input->values);
                const __m256i high_values = _mm256_loadu_si256((const __m256i *)(input->values + 16));
                lanes[token].low = _mm256_add_epi32(lanes[token].low, _mm256_madd_epi16(codes.low, low_values));
                lanes[token].high = _mm256_add_epi32(lanes[token].high, _mm256_madd_epi16(codes.high, high_values));
                if (format == FORMAT_Q2_K) {
                    minimum_lanes[token].low = _mm256_add_epi32(minimum_lanes[token].low, _mm256_madd_epi16(low_minimum, low_values));
                    minimum_lanes[token].high = _mm256_add_epi32(minimum_lanes[token].high, _mm256_madd_epi16(high_minimum, high_values));
                }
                if (format_has_offset(format)) offsets[token][sub & 3] = fused_multiply_add(scales.offset[sub], input->sum, offsets[token][sub & 3]);
            }
        }
        for (int token = 0; token < tile; token++) {
            const float activation_scale = column_block[token * stride].scale;
            __m256 factor = _mm256_set1_ps(scales.scale * activation_scale);
            wide_float converted = {_mm256_cvtepi32_ps(lanes[token].low), _mm256_cvtepi32_ps(lanes[token].high)};
            accumulators[token] = fused_multiply_add_wide(converted, factor, accumulators[token]);
            if (format == FORMAT_Q2_K) {
                wide_float minimum_sums = {_mm256_cvtepi32_ps(minimum_lanes[token].low), _mm256_cvtepi32_ps(minimum_lanes[token].high)};
                accumulators[token] = fused_multiply_add_wide(minimum_sums, _mm256_set1_ps(scales.offset[0] * activation_scale), accumulators[token]);
            }
        }
    }
    for (int token = 0; token < tile; token++) {
        float offset = (offsets[token][0] + offsets[token][1]) + (offsets[token][2] + offsets[token][3]);
        output[token * output_stride] = reduce_lanes(accumulators[token]) + offset;
    }
}

STRATA_AVX2_INLINE void row_against_tokens(const int tile, const uint32_t format, const uint8_t *row, size_t groups,
                                           const strata_activation_block16 *activations, size_t stride,
                                           float *output, size_t output_stride) {
    if (group_subblocks(format) == 8) {
        k_row(format, tile, row, groups, activations, stride, output, output_stride);
        return;
    }
    const size_t bytes = group_bytes(format);
    const wide_float zero = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    wide_float accumulators[TOKEN_TILE][2];
    float offsets[TOKEN_TILE][2];
    for (int token = 0; token < tile; token++) {
        accumulators[token][0] = accumulators[token][1] = zero;
        offsets[token][0] = offsets[token][1] = 0;
    }
    // blocks in pairs, so each chain is a constant register
    size_t group = 0;
    for (; group + 2 <= groups; group += 2) {
        add_block(format, tile, row + group * bytes, activations + group, stride, 0, accumulators, offsets);
        add_block(format, tile, row + (group + 1) * bytes, activations + group + 1, stride, 1, accumulators, offsets);
    }
    if (group < groups) add_block(format, tile, row + group * bytes, activations + group, stride, 0, accumulators, offsets);
    for (int token = 0; token < tile; token++) {
        wide_float sum = {_mm256_add_ps(accumulators[token][0].low, accumulators[token][1].low),
                          _mm256_add_ps(accumulators[token][0].high, accumulators[token][1].high)};
        output[token * output_stride] = reduce_lanes(sum) + (offsets[token][0] + offsets[token][1]);
    }
}

STRATA_AVX2
void strata_rows16_avx2(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                        const strata_activation_block16 *activations, size_t stride, float *output, size_t output_stride) {
    switch (format) {
#define STRATA_CASE(unused, name) \
    case name: STRATA_WITH_CONSTANT_TILE(tile, row_against_tokens, name, row, groups, activations, stride, output, output_stride) break;
    STRATA_EACH_FORMAT(STRATA_CASE, _)
#undef STRATA_CASE
    default: break;
    }
}

STRATA_AVX2
void strata_quantize16_avx2(const float *input, size_t count, size_t group, strata_activation_block16 *output) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i smallest = _mm256_set1_epi32(-32767), largest = _mm256_set1_epi32(32767);
    for (size_t first = 0; first < count; first += group) {
        __m256 magnitude = _mm256_setzero_ps();
        for (size_t index = 0; index < group; index += 8) {
            magnitude = _mm256_max_ps(magnitude, _mm256_andnot_ps(sign, _mm256_loadu_ps(input + first + index)));
        }
        float scale = quantization_scale(horizontal_max(magnitude), 32767.0f);
        __m256 inverse = _mm256_set1_ps(scale != 0.0f ? 1.0f / scale : 0.0f);
        for (size_t block = first / 32; block < (first + group) / 32; block++) {
            const float *source = input + 32 * block;
            __m256i codes[4];
            __m256i sum = _mm256_setzero_si256();
            for (int part = 0; part < 4; part++) {
                // vcvtps2dq rounds to nearest even under the default MXCSR, as the portable nearbyintf
                __m256i code = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(source + 8 * part), inverse));
                codes[part] = _mm256_min_epi32(_mm256_max_epi32(code, smallest), largest);
                sum = _mm256_add_epi32(sum, codes[part]);
            }
            // packs interleaves 128-bit lanes: put elements back in order
            __m256i low = _mm256_permute4x64_epi64(_mm256_packs_epi32(codes[0], codes[1]), 0xD8);
            __m256i high = _mm256_permute4x64_epi64(_mm256_packs_epi32(codes[2], codes[3]), 0xD8);
            _mm256_storeu_si256((__m256i *)output[block].values, low);
            _mm256_storeu_si256((__m256i *)(output[block].values + 16), high);
            __m128i total = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
            total = _mm_add_epi32(total, _mm_shuffle_epi32(total, 0x4E));
            total = _mm_add_epi32(total, _mm_shuffle_epi32(total, 0xB1));
            output[block].scale = scale;
            // |Σ codes| ≤ 32 × 32767 < 2^24, so the conversion is exact
            output[block].sum = scale * (float)_mm_cvtsi128_si32(total);
        }
    }
}
#endif
