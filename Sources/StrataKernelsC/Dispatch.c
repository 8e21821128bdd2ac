// The one place that picks an implementation: detection here, the choice kept by the caller.
#include "Blocks.h"

/// How many rows ahead `strata_matmul` prefetches weights.
enum { PREFETCH_ROWS = 2 };

int strata_detect_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        return STRATA_LEVEL_AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        return STRATA_LEVEL_AVX2;
    }
#endif
    return STRATA_LEVEL_PORTABLE;
}

void strata_quantize_activations(int level, const float *input, size_t count, size_t group,
                                 strata_activation_block *output) {
#if defined(__x86_64__)
    if (level == STRATA_LEVEL_AVX512) {
        strata_quantize_avx512(input, count, group, output);
        return;
    }
    if (level == STRATA_LEVEL_AVX2) {
        strata_quantize_avx2(input, count, group, output);
        return;
    }
#endif
    (void)level;
    strata_quantize_portable(input, count, group, output);
}

int strata_matmul_supports(uint32_t format) {
    switch (format) {
    case FORMAT_Q4_0: case FORMAT_Q4_1: case FORMAT_Q5_0: case FORMAT_Q5_1: case FORMAT_Q8_0:
    case FORMAT_Q4_K: case FORMAT_Q5_K: case FORMAT_Q6_K: return 1;
    default: return 0;
    }
}

void strata_matmul(int level, uint32_t format, const void *weights, size_t row_bytes, size_t rows,
                   size_t row_begin, size_t row_end, size_t columns,
                   const strata_activation_block *activations, size_t tokens, float *output) {
    row_function *row_kernel = strata_row_portable;
#if defined(__x86_64__)
    if (level == STRATA_LEVEL_AVX512) row_kernel = strata_row_avx512;
    if (level == STRATA_LEVEL_AVX2) row_kernel = strata_row_avx2;
#endif
    const size_t stride = columns / 32;
    const size_t groups = columns / (32 * (size_t)group_subblocks(format));
    // Tokens go in passes that keep their activations in L2; within a pass each weight row is
    // read once and dotted with tiles of TOKEN_TILE tokens (the last tile may be shorter).
    const size_t chunk = token_chunk(columns);
    for (size_t chunk_start = 0; chunk_start < tokens; chunk_start += chunk) {
        size_t chunk_end = chunk_start + chunk < tokens ? chunk_start + chunk : tokens;
        for (size_t row = row_begin; row < row_end; row++) {
            const uint8_t *weight_row = (const uint8_t *)weights + row * row_bytes;
            // Rows are short (hundreds of bytes) and each is read once: ask for the row after
            // next while this one is computed, so its loads do not wait on memory.
            if (row + PREFETCH_ROWS < row_end) {
                const uint8_t *ahead = weight_row + PREFETCH_ROWS * row_bytes;
                for (size_t offset = 0; offset < row_bytes; offset += 64) __builtin_prefetch(ahead + offset, 0, 0);
            }
            for (size_t token = chunk_start; token < chunk_end; token += TOKEN_TILE) {
                size_t tile = chunk_end - token < TOKEN_TILE ? chunk_end - token : TOKEN_TILE;
                row_kernel(format, tile, weight_row, groups, activations + token * stride, stride,
                           output + token * rows + row, rows);
            }
        }
    }
}
