// Helpers shared by the AVX2 kernels of both activation precisions (KernelsAVX2.c, 16-bit;
// Kernels8AVX2.c, 8-bit), so each float operation they share is written once.
#ifndef STRATA_AVX2_SUPPORT_H
#define STRATA_AVX2_SUPPORT_H
#if defined(__x86_64__)
#include "Blocks.h"
#include <immintrin.h>

#define STRATA_AVX2 __attribute__((target("avx2,fma,f16c")))
#define STRATA_AVX2_INLINE static inline __attribute__((always_inline)) STRATA_AVX2

/// A group's two fp16 fields in lanes 0 and 1. The empty asm keeps the whole 8-byte load, as
/// on the AVX-512 level (a narrowed 16-bit load became a partial-register insert that chained
/// each block to the previous one). Q6_K's `d` ends its block, so that load starts 6 bytes early.
STRATA_AVX2_INLINE __m128 group_halves(uint32_t format, const uint8_t *block) {
    const uint8_t *source = format == FORMAT_Q6_K ? block + 202 : block;
    __m128i bits = _mm_loadl_epi64((const __m128i *)source);
    __asm__("" : "+x"(bits));
    __m128 halves = _mm_cvtph_ps(bits);
    return format == FORMAT_Q6_K ? _mm_permute_ps(halves, 0xFF) : halves;
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
