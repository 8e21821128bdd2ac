// One query head's causal attention over a float KV cache, in blocks of 8 cache positions:
// eight scores at once, one running-maximum update per block and a vector exponential, where
// a position at a time paid a libm `expf` call and a branch for every cached position (20% of
// SmolLM2-135M's prompt processing, measured). Blocks start at multiples of 8 counted from
// position 0, so a query's result depends only on its own positions, never on how many other
// queries share the call. The AVX2 code and the portable code perform the same float
// operations in the same order and agree bit for bit.
#include "Kernels.h"

#pragma clang fp contract(off)

enum { POSITION_BLOCK = 8 };

#include "Exponential.h"

// e^x for x <= 0; below EXP_CUTOFF the result is 0, as e^-87 is under float's normal range and
// nothing it weights can show beside the weight 1 of the maximum.
#define EXP_CUTOFF (-87.0f)

static float exp_nonpositive(float x) {
    if (!(x >= EXP_CUTOFF)) return 0.0f;
    return exp_polynomial(x);
}

/// The sum of eight lanes in the order the AVX2 transpose-reduce of eight dot products adds them.
static float pairwise_sum8(const float lanes[8]) {
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

static void attention_portable(const float *query, const float *keys, const float *values, size_t row_stride,
                               size_t positions, size_t dimensions, float scale, float *accumulator, float *output) {
    float maximum = -INFINITY;
    float sums[POSITION_BLOCK] = {0};
    for (size_t d = 0; d < dimensions; d++) accumulator[d] = 0.0f;
    for (size_t start = 0; start < positions; start += POSITION_BLOCK) {
        size_t count = positions - start < POSITION_BLOCK ? positions - start : POSITION_BLOCK;
        float scores[POSITION_BLOCK];
        float block_maximum = -INFINITY;
        for (size_t j = 0; j < POSITION_BLOCK; j++) {
            float lanes[8] = {0};
            if (j < count) {
                const float *key = keys + (start + j) * row_stride;
                for (int lane = 0; lane < 8; lane++) lanes[lane] = query[lane] * key[lane];
                for (size_t d = 8; d < dimensions; d += 8) {
                    for (int lane = 0; lane < 8; lane++) lanes[lane] = fmaf(query[d + lane], key[d + lane], lanes[lane]);
                }
            }
            scores[j] = j < count ? pairwise_sum8(lanes) * scale : -INFINITY;
            block_maximum = scores[j] > block_maximum ? scores[j] : block_maximum;
        }
        if (block_maximum > maximum) {
            float correction = exp_nonpositive(maximum - block_maximum);
            for (int lane = 0; lane < POSITION_BLOCK; lane++) sums[lane] = sums[lane] * correction;
            for (size_t d = 0; d < dimensions; d++) accumulator[d] = accumulator[d] * correction;
            maximum = block_maximum;
        }
        float weights[POSITION_BLOCK];
        for (int j = 0; j < POSITION_BLOCK; j++) {
            weights[j] = exp_nonpositive(scores[j] - maximum);
            sums[j] = sums[j] + weights[j];
        }
        for (size_t j = 0; j < count; j++) {
            const float *value = values + (start + j) * row_stride;
            for (size_t d = 0; d < dimensions; d++) accumulator[d] = fmaf(weights[j], value[d], accumulator[d]);
        }
    }
    float inverse = 1.0f / pairwise_sum8(sums);
    for (size_t d = 0; d < dimensions; d++) output[d] = accumulator[d] * inverse;
}

#if defined(__x86_64__)
#include "VectorSupport.h"

STRATA_AVX2_INLINE __m256 exp_nonpositive8(__m256 x) {
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(EXP_CUTOFF), _CMP_GE_OQ);
    // lanes under the cutoff (or NaN, as -inf - -inf never occurs) are zeroed here, so their
    // out-of-range exponent bits do no harm
    return _mm256_and_ps(exp_polynomial8(x), keep);
}

STRATA_AVX2
static void attention_avx2(const float *query, const float *keys, const float *values, size_t row_stride,
                           size_t positions, size_t dimensions, float scale, float *accumulator, float *output) {
    float maximum = -INFINITY;
    __m256 sums = _mm256_setzero_ps();
    for (size_t d = 0; d < dimensions; d++) accumulator[d] = 0.0f;
    const __m256 lane_index = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    for (size_t start = 0; start < positions; start += POSITION_BLOCK) {
        size_t count = positions - start < POSITION_BLOCK ? positions - start : POSITION_BLOCK;
        // The eight dot products side by side: eight independent chains of multiply-adds instead
        // of one at a time (each lane's chain is the portable one). Past the last position a
        // lane reads the block's first key, which exists, and its score is replaced by -inf below.
        const float *key[POSITION_BLOCK];
        for (size_t j = 0; j < POSITION_BLOCK; j++) key[j] = keys + (start + (j < count ? j : 0)) * row_stride;
        __m256 lanes[POSITION_BLOCK];
        __m256 q = _mm256_loadu_ps(query);
        for (size_t j = 0; j < POSITION_BLOCK; j++) lanes[j] = _mm256_mul_ps(q, _mm256_loadu_ps(key[j]));
        for (size_t d = 8; d < dimensions; d += 8) {
            q = _mm256_loadu_ps(query + d);
            for (size_t j = 0; j < POSITION_BLOCK; j++) lanes[j] = _mm256_fmadd_ps(q, _mm256_loadu_ps(key[j] + d), lanes[j]);
        }
        // transpose-reduce: score j = ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)) of lanes[j]
        __m256 first = _mm256_hadd_ps(_mm256_hadd_ps(lanes[0], lanes[1]), _mm256_hadd_ps(lanes[2], lanes[3]));
        __m256 second = _mm256_hadd_ps(_mm256_hadd_ps(lanes[4], lanes[5]), _mm256_hadd_ps(lanes[6], lanes[7]));
        __m256 scores = _mm256_add_ps(_mm256_permute2f128_ps(first, second, 0x20), _mm256_permute2f128_ps(first, second, 0x31));
        scores = _mm256_mul_ps(scores, _mm256_set1_ps(scale));
        __m256 valid = _mm256_cmp_ps(lane_index, _mm256_set1_ps((float)count), _CMP_LT_OQ);
        scores = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), scores, valid);
        float block_maximum = horizontal_max(scores);
        if (block_maximum > maximum) {
            __m256 correction = _mm256_set1_ps(exp_nonpositive(maximum - block_maximum));
            sums = _mm256_mul_ps(sums, correction);
            for (size_t d = 0; d < dimensions; d += 8) {
                _mm256_storeu_ps(accumulator + d, _mm256_mul_ps(_mm256_loadu_ps(accumulator + d), correction));
            }
            maximum = block_maximum;
        }
        __m256 weights = exp_nonpositive8(_mm256_sub_ps(scores, _mm256_set1_ps(maximum)));
        sums = _mm256_add_ps(sums, weights);
        float weight[POSITION_BLOCK];
        _mm256_storeu_ps(weight, weights);
        const float *value = values + start * row_stride;
        if (count == POSITION_BLOCK) {
            // two dimension chunks at a time: two independent chains over the block's positions
            for (size_t d = 0; d < dimensions; d += 16) {
                __m256 total = _mm256_loadu_ps(accumulator + d);
                __m256 next = d + 8 < dimensions ? _mm256_loadu_ps(accumulator + d + 8) : _mm256_setzero_ps();
                for (size_t j = 0; j < POSITION_BLOCK; j++) {
                    __m256 w = _mm256_set1_ps(weight[j]);
                    total = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + j * row_stride + d), total);
                    if (d + 8 < dimensions) next = _mm256_fmadd_ps(w, _mm256_loadu_ps(value + j * row_stride + d + 8), next);
                }
                _mm256_storeu_ps(accumulator + d, total);
                if (d + 8 < dimensions) _mm256_storeu_ps(accumulator + d + 8, next);
            }
        } else {
            for (size_t d = 0; d < dimensions; d += 8) {
                __m256 total = _mm256_loadu_ps(accumulator + d);
                for (size_t j = 0; j < count; j++) {
                    total = _mm256_fmadd_ps(_mm256_set1_ps(weight[j]), _mm256_loadu_ps(value + j * row_stride + d), total);
                }
                _mm256_storeu_ps(accumulator + d, total);
            }
        }
    }
    float sum_lanes[8];
    _mm256_storeu_ps(sum_lanes, sums);
    __m256 inverse = _mm256_set1_ps(1.0f / pairwise_sum8(sum_lanes));
    for (size_t d = 0; d < dimensions; d += 8) _mm256_storeu_ps(output + d, _mm256_mul_ps(_mm256_loadu_ps(accumulator + d), inverse));
}
#endif

void strata_attention(int level, const float *query, const float *keys, const float *values, size_t row_stride,
                      size_t positions, size_t dimensions, float scale, float *accumulator, float *output) {
#if defined(__x86_64__)
    if (level >= STRATA_LEVEL_AVX2) {
        attention_avx2(query, keys, values, row_stride, positions, dimensions, scale, accumulator, output);
        return;
    }
#endif
    (void)level;
    attention_portable(query, keys, values, row_stride, positions, dimensions, scale, accumulator, output);
}
