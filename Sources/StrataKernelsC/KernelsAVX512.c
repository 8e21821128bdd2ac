// AVX-512 VNNI kernels. Each 32-weight sub-block becomes 32 bytes of codes, dotted with a
// token's 32 int8 activations by one vpdpbusd (unsigned × signed bytes, four products summed
// per int32 lane), converted to float and fused-multiply-added into that token's 8-lane
// accumulator. Signed codes (Q8_0, Q6_K) go through the sign trick: |code| times the
// activation negated where the code is negative.
#if defined(__x86_64__)
#include "Blocks.h"
#include <immintrin.h>

#pragma clang fp contract(off)

#define STRATA_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")))
#define STRATA_INLINE static inline __attribute__((always_inline)) STRATA_TARGET

/// A group's two fp16 fields (`first_half_offset`, `second_half_offset`) in lanes 0 and 1.
/// _cvtsh_ss, and any load the compiler can narrow to 16 bits, became vpinsrw into whatever
/// register was free, often an accumulator: a false dependency that chained each block to the
/// previous one (1.7x slower). The empty asm keeps the whole zero-extending 8-byte load.
/// Q6_K's `d` ends its 210-byte block, so that load starts six bytes early.
STRATA_INLINE __m128 group_halves(uint32_t format, const uint8_t *block) {
    const uint8_t *source = format == FORMAT_Q6_K ? block + 202 : block;
    __m128i bits = _mm_loadl_epi64((const __m128i *)source);
    __asm__("" : "+x"(bits));
    __m128 halves = _mm_cvtph_ps(bits);
    return format == FORMAT_Q6_K ? _mm_permute_ps(halves, 0xFF) : halves;
}

/// 16 bytes of packed nibbles as 32 codes: low nibbles first, then high (Q4_0/Q4_1/Q5_x order).
STRATA_INLINE __m256i split_nibbles(const uint8_t *source) {
    __m128i packed = _mm_loadu_si128((const __m128i *)source);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/// The 32 codes of sub-block `sub` of a group: unsigned, or signed for Q8_0 and Q6_K.
STRATA_INLINE __m256i subblock_codes(uint32_t format, const uint8_t *block, int sub) {
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    switch (format) {
    case FORMAT_Q4_0: return split_nibbles(block + 2);
    case FORMAT_Q4_1: return split_nibbles(block + 4);
    case FORMAT_Q5_0: // bit i of the 32-bit qh field is the fifth bit of element i
        return _mm256_mask_add_epi8(split_nibbles(block + 6), (__mmask32)load_u32(block + 2),
                                    split_nibbles(block + 6), _mm256_set1_epi8(16));
    case FORMAT_Q5_1:
        return _mm256_mask_add_epi8(split_nibbles(block + 8), (__mmask32)load_u32(block + 4),
                                    split_nibbles(block + 8), _mm256_set1_epi8(16));
    case FORMAT_Q8_0: return _mm256_loadu_si256((const __m256i *)(block + 2));
    case FORMAT_Q4_K:
    case FORMAT_Q5_K: {
        // sub-blocks 2p and 2p+1 share 32 bytes: low nibbles, then high nibbles
        size_t codes_offset = format == FORMAT_Q4_K ? 16 : 48;
        __m256i packed = _mm256_loadu_si256((const __m256i *)(block + codes_offset + 32 * (sub / 2)));
        __m256i codes = (sub & 1) ? _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles)
                                  : _mm256_and_si256(packed, low_nibbles);
        if (format == FORMAT_Q4_K) return codes;
        // fifth bit of element l of sub-block s: bit s of qh[l]
        __m256i fifth = _mm256_loadu_si256((const __m256i *)(block + 16));
        __mmask32 high = _mm256_test_epi8_mask(fifth, _mm256_set1_epi8((char)(1 << sub)));
        return _mm256_mask_add_epi8(codes, high, codes, _mm256_set1_epi8(16));
    }
    default: { // Q6_K: half h = sub / 4, quarter q = sub % 4
        int half = sub / 4, quarter = sub % 4;
        __m256i packed = _mm256_loadu_si256((const __m256i *)(block + 64 * half + 32 * (quarter & 1)));
        __m256i low = quarter >= 2 ? _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles)
                                   : _mm256_and_si256(packed, low_nibbles);
        __m256i high_bits = _mm256_loadu_si256((const __m256i *)(block + 128 + 32 * half));
        __m256i high = _mm256_and_si256(_mm256_srl_epi16(high_bits, _mm_cvtsi32_si128(2 * quarter)),
                                        _mm256_set1_epi8(3));
        // high ≤ 3 per byte, so the 16-bit shift cannot carry into the next byte
        __m256i codes = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
        return _mm256_sub_epi8(codes, _mm256_set1_epi8(32));
    }
    }
}

/// The float sum of an 8-lane accumulator, in the order the portable level repeats:
/// ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
STRATA_INLINE float reduce_lanes(__m256 lanes) {
    __m128 pairs = _mm_add_ps(_mm256_castps256_ps128(lanes), _mm256_extractf128_ps(lanes, 1));
    __m128 quads = _mm_add_ps(pairs, _mm_movehl_ps(pairs, pairs));
    return _mm_cvtss_f32(_mm_add_ss(quads, _mm_movehdup_ps(quads)));
}

/// One weight row against `tile` tokens (constant after inlining). `activations` is token 0's
/// first block; tokens are `stride` blocks apart, outputs `output_stride` floats apart.
STRATA_INLINE void row_against_tokens(const uint32_t format, const int tile, const uint8_t *row, size_t groups,
                                      const strata_activation_block *activations, size_t stride,
                                      float *output, size_t output_stride) {
    const int subblocks = group_subblocks(format);
    const size_t bytes = group_bytes(format);
    __m256 accumulators[TOKEN_TILE];
    float offsets[TOKEN_TILE];
    for (int token = 0; token < tile; token++) {
        accumulators[token] = _mm256_setzero_ps();
        offsets[token] = 0;
    }
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = row + group * bytes;
        group_scales scales;
        __m128 halves = group_halves(format, block);
        decode_group_scales(format, block, _mm_cvtss_f32(halves), _mm_cvtss_f32(_mm_movehdup_ps(halves)), &scales);
        __m512i sixth_scales = _mm512_setzero_si512();
        if (format == FORMAT_Q6_K) sixth_scales = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(block + 192)));
        for (int sub = 0; sub < subblocks; sub++) {
            __m256i codes = subblock_codes(format, block, sub);
            __mmask32 negative = 0;
            if (format_is_signed(format)) {
                negative = _mm256_movepi8_mask(codes);
                codes = _mm256_abs_epi8(codes);
            }
            // Q6_K: lanes 0-3 hold the first 16 elements (scale 2s), lanes 4-7 the next 16
            __m256i lane_scales = _mm256_setzero_si256();
            if (format == FORMAT_Q6_K) {
                __m512i index = _mm512_set1_epi32(2 * sub);
                index = _mm512_mask_add_epi32(index, 0xF0, index, _mm512_set1_epi32(1));
                lane_scales = _mm512_castsi512_si256(_mm512_permutexvar_epi32(index, sixth_scales));
            }
            const strata_activation_block *column_block = activations + group * subblocks + sub;
            for (int token = 0; token < tile; token++) {
                const strata_activation_block *input = column_block + token * stride;
                __m256i values = _mm256_loadu_si256((const __m256i *)input->values);
                if (format_is_signed(format)) values = _mm256_mask_sub_epi8(values, negative, _mm256_setzero_si256(), values);
                __m256i lanes = _mm256_dpbusd_epi32(_mm256_setzero_si256(), codes, values);
                if (format == FORMAT_Q6_K) lanes = _mm256_mullo_epi32(lanes, lane_scales);
                __m256 scale = _mm256_set1_ps(scales.scale[sub] * input->scale);
                accumulators[token] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), scale, accumulators[token]);
                if (format_has_offset(format)) offsets[token] = offsets[token] + scales.offset[sub] * input->sum;
            }
        }
    }
    for (int token = 0; token < tile; token++) {
        output[token * output_stride] = reduce_lanes(accumulators[token]) + offsets[token];
    }
}

/// One row against `tile` (1...TOKEN_TILE) tokens: a switch to the instance whose format
/// and tile are constants, so the block loops are specialised and unrolled.
STRATA_TARGET
void strata_row_avx512(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                       const strata_activation_block *activations, size_t stride, float *output, size_t output_stride) {
    switch (format * 8 + tile) {
#define STRATA_CASE(name, size) \
    case name * 8 + size: row_against_tokens(name, size, row, groups, activations, stride, output, output_stride); break;
#define STRATA_TILES(name) STRATA_CASE(name, 1) STRATA_CASE(name, 2) STRATA_CASE(name, 3) STRATA_CASE(name, 4)
    STRATA_TILES(FORMAT_Q4_0) STRATA_TILES(FORMAT_Q4_1) STRATA_TILES(FORMAT_Q5_0) STRATA_TILES(FORMAT_Q5_1)
    STRATA_TILES(FORMAT_Q8_0) STRATA_TILES(FORMAT_Q4_K) STRATA_TILES(FORMAT_Q5_K) STRATA_TILES(FORMAT_Q6_K)
#undef STRATA_TILES
#undef STRATA_CASE
    default: break;
    }
}

STRATA_TARGET
void strata_quantize_avx512(const float *input, size_t count, strata_activation_block *output) {
    for (size_t block = 0; block < count / 32; block++) {
        __m512 first = _mm512_loadu_ps(input + 32 * block);
        __m512 second = _mm512_loadu_ps(input + 32 * block + 16);
        __m512 magnitude = _mm512_max_ps(_mm512_abs_ps(first), _mm512_abs_ps(second));
        float scale = _mm512_reduce_max_ps(magnitude) / 127.0f;
        float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
        // vcvtps2dq rounds to nearest even under the default MXCSR, as the portable nearbyintf
        __m512i low = _mm512_cvtps_epi32(_mm512_mul_ps(first, _mm512_set1_ps(inverse)));
        __m512i high = _mm512_cvtps_epi32(_mm512_mul_ps(second, _mm512_set1_ps(inverse)));
        _mm_storeu_si128((__m128i *)output[block].values, _mm512_cvtsepi32_epi8(low));
        _mm_storeu_si128((__m128i *)(output[block].values + 16), _mm512_cvtsepi32_epi8(high));
        output[block].scale = scale;
        output[block].sum = scale * (float)_mm512_reduce_add_epi32(_mm512_add_epi32(low, high));
    }
}
#endif
