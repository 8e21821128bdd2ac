// The one place that picks an implementation: detection here, the choice kept by the caller.
#include "Kernels.h"

/// How many rows ahead `strata_rows16_multiply` prefetches weights.
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

void strata_quantize16(int level, const float *input, size_t count, size_t group,
                       strata_activation_block16 *output) {
#if defined(__x86_64__)
    if (level == STRATA_LEVEL_AVX512) {
        strata_quantize16_avx512(input, count, group, output);
        return;
    }
    if (level == STRATA_LEVEL_AVX2) {
        strata_quantize16_avx2(input, count, group, output);
        return;
    }
#endif
    (void)level;
    strata_quantize16_portable(input, count, group, output);
}

int strata_multiply_supports(uint32_t format) {
    switch (format) {
#define STRATA_SUPPORTED(unused, name) case name:
    STRATA_EACH_FORMAT(STRATA_SUPPORTED, _) return 1;
#undef STRATA_SUPPORTED
    default: return 0;
    }
}

/// Where one tile's activations are and which kernel takes them: one of the two activation
/// precisions, so the pass structure below is written once.
typedef struct {
    row_function *row16;
    const strata_activation_block16 *blocks16;
    row8_function *row8;
    strata_activations8 arrays8;
} tile_source;

static void run_tile(const tile_source *source, uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                     size_t token, size_t columns, float *output, size_t rows) {
    if (source->row16) {
        source->row16(format, tile, row, groups, source->blocks16 + token * (columns / 32), columns / 32, output, rows);
    } else {
        source->row8(format, tile, row, groups, activations8_after(source->arrays8, token, columns), columns, output, rows);
    }
}

/// Rows `row_begin..<row_end` against all tokens. Tokens go in passes of `chunk` that keep
/// their activations in L2; within a pass each weight row is read once and dotted with tiles
/// of TOKEN_TILE tokens (the last tile may be shorter).
static void run_rows(const tile_source *source, uint32_t format, const void *weights, size_t row_bytes, size_t rows,
                     size_t row_begin, size_t row_end, size_t columns, size_t tokens, size_t chunk, float *output) {
    const size_t groups = columns / (32 * (size_t)group_subblocks(format));
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
                run_tile(source, format, tile, weight_row, groups, token, columns, output + token * rows + row, rows);
            }
        }
    }
}

void strata_rows16_multiply(int level, uint32_t format, const void *weights, size_t row_bytes, size_t rows,
                            size_t row_begin, size_t row_end, size_t columns,
                            const strata_activation_block16 *activations, size_t tokens, float *output) {
    tile_source source = {strata_rows16_portable, activations, 0, {0}};
#if defined(__x86_64__)
    if (level == STRATA_LEVEL_AVX512) source.row16 = strata_rows16_avx512;
    if (level == STRATA_LEVEL_AVX2) source.row16 = strata_rows16_avx2;
#endif
    run_rows(&source, format, weights, row_bytes, rows, row_begin, row_end, columns, tokens, token_chunk(columns), output);
}

void strata_quantize8(int level, const float *input, size_t count, strata_activations8 output) {
#if defined(__x86_64__)
    if (level >= STRATA_LEVEL_AVX2) {
        strata_quantize8_avx2(input, count, output);
        return;
    }
#endif
    (void)level;
    strata_quantize8_portable(input, count, output);
}

void strata_rows8_multiply(int level, uint32_t format, const void *weights, size_t row_bytes, size_t rows,
                           size_t row_begin, size_t row_end, size_t columns,
                           strata_activations8 activations, size_t tokens, float *output) {
    tile_source source = {0, 0, strata_rows8_portable, activations};
#if defined(__x86_64__)
    if (level >= STRATA_LEVEL_AVX2) source.row8 = strata_rows8_avx2;
#endif
    run_rows(&source, format, weights, row_bytes, rows, row_begin, row_end, columns, tokens, token_chunk8(columns), output);
}
