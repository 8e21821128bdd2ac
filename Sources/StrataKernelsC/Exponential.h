// e^x in single precision by Cephes' method (x = n ln 2 + r, |r| <= ln 2 / 2, a degree-7
// polynomial for e^r, then 2^n by the exponent bits), shared by attention's softmax and the
// gated activations. The scalar and AVX2 forms perform the same float operations in the same
// order, so kernels built on them agree bit for bit across levels. Callers keep x within
// [-87, 88] (where 2^n is a normal float); attention zeroes what lies below.
#ifndef STRATA_EXPONENTIAL_H
#define STRATA_EXPONENTIAL_H
#include <math.h>
#include <stdint.h>
#include <string.h>

#define LOG2_E 1.44269504088896341f
#define LN2_HIGH 0.693359375f
#define LN2_LOW (-2.12194440e-4f)
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f

static inline float exp_polynomial(float x) {
    float n = nearbyintf(x * LOG2_E);
    float r = fmaf(n, -LN2_HIGH, x);
    r = fmaf(n, -LN2_LOW, r);
    float p = EXP_P0;
    p = fmaf(p, r, EXP_P1);
    p = fmaf(p, r, EXP_P2);
    p = fmaf(p, r, EXP_P3);
    p = fmaf(p, r, EXP_P4);
    p = fmaf(p, r, EXP_P5);
    float y = fmaf(p, r * r, r) + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float power;
    memcpy(&power, &bits, sizeof power);
    return y * power;
}

#if defined(__x86_64__)
#include <immintrin.h>

static inline __attribute__((always_inline, target("avx2,fma,f16c"))) __m256 exp_polynomial8(__m256 x) {
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2_E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HIGH), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LOW), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}
#endif
#endif
