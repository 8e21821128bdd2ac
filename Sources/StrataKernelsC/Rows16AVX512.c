// AVX-512 VNNI kernels. Each 32-weight sub-block becomes 32 int16 codes (widened once per
// token tile), dotted with a token's 32 int16 activations by vpdpwssd (two products summed
// per int32 lane, 16 lanes). A 32-element block is converted to float and multiply-added into
// the token's 16-lane accumulator; a K super-block's eight sub-blocks add up in the integer
// lanes first and convert once. Signed codes need no special handling in 16 bits.
#if defined(__x86_64__)
#include "VectorSupport.h"

#pragma clang fp contract(off)

#define STRATA_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")))
#define STRATA_INLINE static inline __attribute__((always_inline)) STRATA_TARGET

/// 16 bytes of packed nibbles as 32 int16 codes: low nibbles first, then high (Q4_0/Q4_1/Q5_x).
STRATA_INLINE __m512i split_nibbles(const uint8_t *source) {
    __m256i bytes = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)source));
    __m256i low = _mm256_and_si256(bytes, _mm256_set1_epi16(0x0F));
    return _mm512_inserti64x4(_mm512_castsi256_si512(low), _mm256_srli_epi16(bytes, 4), 1);
}

/// Words 0-15 of `words` take word 2·sub of `per_sixteen`, words 16-31 word 2·sub + 1: the
/// scales (or Q2_K minimums) of sub-block `sub`'s two runs of 16 elements.
STRATA_INLINE __m512i sub_block_words(__m512i per_sixteen, int sub) {
    __m512i index = _mm512_mask_set1_epi16(_mm512_set1_epi16((short)(2 * sub)), 0xFFFF0000u, (short)(2 * sub + 1));
    return _mm512_permutexvar_epi16(index, per_sixteen);
}

/// The 32 codes of sub-block `sub` of a group as int16: unsigned, or signed for Q8_0, Q3_K and
/// Q6_K. Q2_K, Q3_K and Q6_K codes come multiplied by their sub-block scales (`sixteen`, 16
/// words): |code × scale| ≤ 32 × 128 fits 16 bits, and the integer dot product stays exact.
STRATA_INLINE __m512i subblock_codes(uint32_t format, const uint8_t *block, int sub, __m512i sixteen) {
    const __m512i low_nibbles = _mm512_set1_epi16(0x0F);
    switch (format) {
    case FORMAT_Q2_K:
    case FORMAT_Q3_K: {
        const uint8_t *packed = block + (format == FORMAT_Q2_K ? 16 : 32) + 32 * (sub / 4);
        __m512i codes = _mm512_and_si512(_mm512_srli_epi16(_mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)packed)), 2 * (sub % 4)),
                                         _mm512_set1_epi16(3));
        if (format == FORMAT_Q3_K) {
            // a clear bit `sub` in hmask[l] means code - 4
            __mmask32 high = _mm256_test_epi8_mask(_mm256_loadu_si256((const __m256i *)block), _mm256_set1_epi8((char)(1 << sub)));
            codes = _mm512_mask_add_epi16(_mm512_sub_epi16(codes, _mm512_set1_epi16(4)), high,
                                          _mm512_sub_epi16(codes, _mm512_set1_epi16(4)), _mm512_set1_epi16(4));
        }
        return _mm512_mullo_epi16(codes, sub_block_words(sixteen, sub));
    }
    case FORMAT_Q4_0: return split_nibbles(block + 2);
    case FORMAT_Q4_1: return split_nibbles(block + 4);
    case FORMAT_Q5_0: // bit i of the 32-bit qh field is the fifth bit of element i
        return _mm512_mask_add_epi16(split_nibbles(block + 6), (__mmask32)load_u32(block + 2),
                                     split_nibbles(block + 6), _mm512_set1_epi16(16));
    case FORMAT_Q5_1:
        return _mm512_mask_add_epi16(split_nibbles(block + 8), (__mmask32)load_u32(block + 4),
                                     split_nibbles(block + 8), _mm512_set1_epi16(16));
    case FORMAT_Q8_0: return _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(block + 2)));
    case FORMAT_Q4_K:
    case FORMAT_Q5_K: {
        // sub-blocks 2p and 2p+1 share 32 bytes: low nibbles, then high nibbles
        size_t codes_offset = format == FORMAT_Q4_K ? 16 : 48;
        __m512i packed = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(block + codes_offset + 32 * (sub / 2))));
        __m512i codes = (sub & 1) ? _mm512_srli_epi16(packed, 4) : _mm512_and_si512(packed, low_nibbles);
        if (format == FORMAT_Q4_K) return codes;
        // fifth bit of element l of sub-block s: bit s of qh[l]
        __m256i fifth = _mm256_loadu_si256((const __m256i *)(block + 16));
        __mmask32 high = _mm256_test_epi8_mask(fifth, _mm256_set1_epi8((char)(1 << sub)));
        return _mm512_mask_add_epi16(codes, high, codes, _mm512_set1_epi16(16));
    }
    default: { // Q6_K: half h = sub / 4, quarter q = sub % 4
        int half = sub / 4, quarter = sub % 4;
        __m512i packed = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(block + 64 * half + 32 * (quarter & 1))));
        __m512i low = quarter >= 2 ? _mm512_srli_epi16(packed, 4) : _mm512_and_si512(packed, low_nibbles);
        __m512i high_bits = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(block + 128 + 32 * half)));
        __m512i high = _mm512_and_si512(_mm512_srli_epi16(high_bits, 2 * quarter), _mm512_set1_epi16(3));
        __m512i codes = _mm512_sub_epi16(_mm512_or_si512(low, _mm512_slli_epi16(high, 4)), _mm512_set1_epi16(32));
        return _mm512_mullo_epi16(codes, sub_block_words(sixteen, sub));
    }
    }
}

/// The float sum of a 16-lane accumulator, in the order the portable level repeats:
/// lanes l and l + 8 first, then the AVX2 level's sum of eight lanes.
STRATA_INLINE float reduce_lanes(__m512 wide) {
    return reduce_eight_lanes(_mm256_add_ps(_mm512_castps512_ps256(wide),
                                            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(wide), 1))));
}

/// Adds one 32-element block to the accumulators of `tile` tokens on chain `chain` (the
/// block's index mod 2): one multiply-add per lane by `d × activation scale`.
STRATA_INLINE void add_block(const uint32_t format, const int tile, const uint8_t *block,
                             const strata_activation_block16 *column_block, size_t stride, int chain,
                             __m512 accumulators[TOKEN_TILE][2], float offsets[TOKEN_TILE][2]) {
    group_scales scales;
    uint64_t multipliers = 0;
    group_scales_of(format, block, &scales, &multipliers);
    __m512i codes = subblock_codes(format, block, 0, _mm512_setzero_si512());
    for (int token = 0; token < tile; token++) {
        const strata_activation_block16 *input = column_block + token * stride;
        __m512i lanes = _mm512_dpwssd_epi32(_mm512_setzero_si512(), codes, _mm512_loadu_si512((const void *)input->values));
        accumulators[token][chain] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes), _mm512_set1_ps(scales.scale * input->scale),
                                                     accumulators[token][chain]);
        if (format_has_offset(format)) offsets[token][chain] = fused_multiply_add(scales.offset[0], input->sum, offsets[token][chain]);
    }
}

/// K formats: per group and token, vpdpwssd adds the pair sums of all eight sub-blocks into
/// one int32 register, converted once and multiplied by `d × activation scale` (the
/// activations share one scale per super-block), as on the portable level; Q2_K's minimums
/// take a second register and multiply-add.
STRATA_INLINE void k_row(const uint32_t format, const int tile, const uint8_t *row, size_t groups,
                         const strata_activation_block16 *activations, size_t stride,
                         float *output, size_t output_stride) {
    const size_t bytes = group_bytes(format);
    __m512 accumulators[TOKEN_TILE];
    // four offset chains (sub-block k to chain k mod 4), as on the portable level
    float offsets[TOKEN_TILE][4];
    for (int token = 0; token < tile; token++) {
        accumulators[token] = _mm512_setzero_ps();
        offsets[token][0] = offsets[token][1] = offsets[token][2] = offsets[token][3] = 0;
    }
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = row + group * bytes;
        const strata_activation_block16 *column_block = activations + group * 8;
        group_scales scales;
        uint64_t multipliers = 0;
        group_scales_of(format, block, &scales, &multipliers);
        __m512i sixteen = _mm512_setzero_si512(), minimums = _mm512_setzero_si512();
        if (has_sixteen_scales(format)) {
            __m256i scale_words, minimum_words;
            sixteen_scale_words(format, block, &scale_words, &minimum_words);
            sixteen = _mm512_castsi256_si512(scale_words);
            minimums = _mm512_castsi256_si512(minimum_words);
        }
        __m512i lanes[TOKEN_TILE], minimum_lanes[TOKEN_TILE];
        for (int token = 0; token < tile; token++) lanes[token] = minimum_lanes[token] = _mm512_setzero_si512();
#pragma clang loop unroll(full)
        for (int sub = 0; sub < 8; sub++) {
            __m512i codes = subblock_codes(format, block, sub, sixteen);
            if (!has_sixteen_scales(format)) {
                codes = _mm512_mullo_epi16(codes, _mm512_set1_epi16((short)((multipliers >> (8 * sub)) & 0xFF)));
            }
            const __m512i sub_minimums = format == FORMAT_Q2_K ? sub_block_words(minimums, sub) : _mm512_setzero_si512();
            for (int token = 0; token < tile; token++) {
                const strata_activation_block16 *input = column_block + sub + token * stride;
                const __m512i values = _mm512_loadu_si512((const void *)input->values);
                lanes[token] = _mm512_dpwssd_epi32(lanes[token], codes, values);
                if (format == FORMAT_Q2_K) minimum_lanes[token] = _mm512_dpwssd_epi32(minimum_lanes[token], sub_minimums, values);
                if (format_has_offset(format)) offsets[token][sub & 3] = fused_multiply_add(scales.offset[sub], input->sum, offsets[token][sub & 3]);
            }
        }
        for (int token = 0; token < tile; token++) {
            const float activation_scale = column_block[token * stride].scale;
            __m512 factor = _mm512_set1_ps(scales.scale * activation_scale);
            accumulators[token] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lanes[token]), factor, accumulators[token]);
            if (format == FORMAT_Q2_K) {
                accumulators[token] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(minimum_lanes[token]),
                                                      _mm512_set1_ps(scales.offset[0] * activation_scale), accumulators[token]);
            }
        }
    }
    for (int token = 0; token < tile; token++) {
        float offset = (offsets[token][0] + offsets[token][1]) + (offsets[token][2] + offsets[token][3]);
        output[token * output_stride] = reduce_lanes(accumulators[token]) + offset;
    }
}

/// One weight row against `tile` tokens (constant after inlining). `activations` is token 0's
/// first block; tokens are `stride` blocks apart, outputs `output_stride` floats apart.
STRATA_INLINE void row_against_tokens(const int tile, const uint32_t format, const uint8_t *row, size_t groups,
                                      const strata_activation_block16 *activations, size_t stride,
                                      float *output, size_t output_stride) {
    if (group_subblocks(format) == 8) {
        k_row(format, tile, row, groups, activations, stride, output, output_stride);
        return;
    }
    const size_t bytes = group_bytes(format);
    __m512 accumulators[TOKEN_TILE][2];
    float offsets[TOKEN_TILE][2];
    for (int token = 0; token < tile; token++) {
        accumulators[token][0] = accumulators[token][1] = _mm512_setzero_ps();
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
        float sum = reduce_lanes(_mm512_add_ps(accumulators[token][0], accumulators[token][1]));
        output[token * output_stride] = sum + (offsets[token][0] + offsets[token][1]);
    }
}

/// One row against `tile` (1...TOKEN_TILE) tokens: a switch to the instance whose format
/// and tile are constants, so the block loops are specialised and unrolled.
STRATA_TARGET
void strata_rows16_avx512(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                          const strata_activation_block16 *activations, size_t stride, float *output, size_t output_stride) {
    switch (format) {
#define STRATA_CASE(unused, name) \
    case name: STRATA_WITH_CONSTANT_TILE(tile, row_against_tokens, name, row, groups, activations, stride, output, output_stride) break;
    STRATA_EACH_FORMAT(STRATA_CASE, _)
#undef STRATA_CASE
    default: break;
    }
}

STRATA_TARGET
void strata_quantize16_avx512(const float *input, size_t count, size_t group, strata_activation_block16 *output) {
    const __m512i smallest = _mm512_set1_epi32(-32767);
    for (size_t first = 0; first < count; first += group) {
        __m512 magnitude = _mm512_setzero_ps();
        for (size_t index = 0; index < group; index += 16) {
            magnitude = _mm512_max_ps(magnitude, _mm512_abs_ps(_mm512_loadu_ps(input + first + index)));
        }
        float scale = quantization_scale(_mm512_reduce_max_ps(magnitude), 32767.0f);
        __m512 inverse = _mm512_set1_ps(scale != 0.0f ? 1.0f / scale : 0.0f);
        for (size_t block = first / 32; block < (first + group) / 32; block++) {
            // vcvtps2dq rounds to nearest even under the default MXCSR, as the portable nearbyintf;
            // codes stay within ±32767 (vpmovsdw alone would allow -32768)
            __m512i low = _mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(input + 32 * block), inverse)), smallest);
            __m512i high = _mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(input + 32 * block + 16), inverse)), smallest);
            _mm256_storeu_si256((__m256i *)output[block].values, _mm512_cvtsepi32_epi16(low));
            _mm256_storeu_si256((__m256i *)(output[block].values + 16), _mm512_cvtsepi32_epi16(high));
            output[block].scale = scale;
            // |Σ codes| ≤ 32 × 32767 < 2^24, so the conversion is exact
            output[block].sum = scale * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(low, high));
        }
    }
}
#endif
