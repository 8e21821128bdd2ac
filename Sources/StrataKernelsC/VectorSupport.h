// Helpers shared by the vector levels: the AVX2 kernels of both activation precisions and both
// layouts, and the AVX-512 level, whose target includes AVX2, FMA and F16C, so these inline
// into it. Each float operation the levels share is written once.
#ifndef STRATA_VECTOR_SUPPORT_H
#define STRATA_VECTOR_SUPPORT_H
#if defined(__x86_64__)
#include "Kernels.h"
#include <immintrin.h>

#define STRATA_AVX2 __attribute__((target("avx2,fma,f16c")))
#define STRATA_AVX2_INLINE static inline __attribute__((always_inline)) STRATA_AVX2

/// A group's two fp16 fields (`first_half_offset`, `second_half_offset`) in lanes 0 and 1.
/// _cvtsh_ss, and any load the compiler can narrow to 16 bits, became vpinsrw into whatever
/// register was free, often an accumulator: a false dependency that chained each block to the
/// previous one (1.7x slower on the AVX-512 level). The empty asm keeps the whole zero-extending
/// 8-byte load. Q2_K's, Q3_K's and Q6_K's fields end their blocks, so their loads start early
/// enough to stay inside the block.
STRATA_AVX2_INLINE __m128 group_halves(uint32_t format, const uint8_t *block) {
    const uint8_t *source = format == FORMAT_Q6_K ? block + 202
                            : format == FORMAT_Q3_K ? block + 102
                            : format == FORMAT_Q2_K ? block + 76
                                                    : block;
    __m128i bits = _mm_loadl_epi64((const __m128i *)source);
    __asm__("" : "+x"(bits));
    __m128 halves = _mm_cvtph_ps(bits);
    if (format == FORMAT_Q6_K || format == FORMAT_Q3_K) return _mm_permute_ps(halves, 0xFF);
    return format == FORMAT_Q2_K ? _mm_permute_ps(halves, 0x0E) : halves;
}

/// A Q2_K, Q3_K or Q6_K group's sixteen scales as int16 words 0-15 of `scales`, and Q2_K's
/// minimums likewise in `minimums` (zero for the others).
STRATA_AVX2_INLINE void sixteen_scale_words(uint32_t format, const uint8_t *block, __m256i *scales, __m256i *minimums) {
    if (format == FORMAT_Q6_K) {
        *scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(block + 192)));
        *minimums = _mm256_setzero_si256();
    } else if (format == FORMAT_Q2_K) {
        __m256i bytes = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)block));
        *scales = _mm256_and_si256(bytes, _mm256_set1_epi16(0x0F));
        *minimums = _mm256_srli_epi16(bytes, 4);
    } else { // Q3_K
        uint32_t words[4];
        q3k_scale_words(block, words);
        __m128i stored = _mm_loadu_si128((const __m128i *)words);
        *scales = _mm256_cvtepi8_epi16(_mm_sub_epi8(stored, _mm_set1_epi8(32)));
        *minimums = _mm256_setzero_si256();
    }
}

/// A group's block scale and offsets (see `group_scales`). Q4_K/Q5_K minimums are converted
/// eight at a time and their six-bit multipliers left packed in `multipliers`, one per byte
/// (a scalar loop over them cost more than the codes' arithmetic when decoding one token).
STRATA_AVX2_INLINE void group_scales_of(uint32_t format, const uint8_t *block, group_scales *scales, uint64_t *multipliers) {
    __m128 halves = group_halves(format, block);
    const float first = _mm_cvtss_f32(halves), second = _mm_cvtss_f32(_mm_movehdup_ps(halves));
    if (format != FORMAT_Q4_K && format != FORMAT_Q5_K) {
        decode_group_scales(format, block, first, second, scales);
        return;
    }
    uint64_t minimums;
    unpack_k_scales(block, multipliers, &minimums);
    __m256 products = _mm256_mul_ps(_mm256_set1_ps(second),
                                    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)minimums))));
    _mm256_storeu_ps(scales->offset, _mm256_xor_ps(products, _mm256_set1_ps(-0.0f)));
    scales->scale = first;
}

/// The float sum of eight lanes in the portable levels' order:
/// ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)).
STRATA_AVX2_INLINE float reduce_eight_lanes(__m256 lanes) {
    __m128 pairs = _mm_add_ps(_mm256_castps256_ps128(lanes), _mm256_extractf128_ps(lanes, 1));
    __m128 quads = _mm_add_ps(pairs, _mm_movehl_ps(pairs, pairs));
    return _mm_cvtss_f32(_mm_add_ss(quads, _mm_movehdup_ps(quads)));
}

/// `a × b + c` rounded once, as the portable levels' `fmaf`.
STRATA_AVX2_INLINE float fused_multiply_add(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

STRATA_AVX2_INLINE float horizontal_max(__m256 values) {
    __m128 half = _mm_max_ps(_mm256_castps256_ps128(values), _mm256_extractf128_ps(values, 1));
    half = _mm_max_ps(half, _mm_movehl_ps(half, half));
    return _mm_cvtss_f32(_mm_max_ss(half, _mm_movehdup_ps(half)));
}

#endif
#endif
