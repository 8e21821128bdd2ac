// Repacking into the interleaved layouts (Octets8.h), their portable kernel, which the
// AVX2 level repeats bit for bit, and the pass over row octets.
//
// Per row and token the float operations are, for each group of 256 columns and each of its
// sub-blocks s in order, with S the sub-block's exact int32 dot product (below):
//   G = S × a_s for s = 0, then G = fma(S, a_s, G)    (a_s: the sub-block's activation scale)
// then accumulator = fma(G, d, accumulator); the result is the final accumulator.
//   Q4_K: S = scale_s × Σ code × value; its minimums add C = minimum_s × sum_s, chained like G
//         (sum_s = a_s × Σ values, from the quantizer), and accumulator = fma(C, -dmin, ...).
//   Q6_K: S = Σ over the sub-block's two sixteenths h of scale_h × (Σ code × value - 32 × Σ values):
//         its codes are stored plus 32, and the offset is taken off in integers.
// (The layouts only move bytes and bits; the kernels see the same integers either way.)
// Nothing depends on the tile, the thread split, or other rows and tokens.
#include "Octets8.h"

#pragma clang fp contract(off)

_Static_assert(OCTET_Q4K_D == 0 && OCTET_Q6K_D == 0, "both layouts start with the rows' d");

size_t strata_octets8_size(uint32_t format, size_t rows, size_t columns) {
    if (format != FORMAT_Q4_K && format != FORMAT_Q6_K) return 0;
    if (rows == 0 || rows % OCTET_ROWS != 0 || columns == 0 || columns % 256 != 0) return 0;
    return rows / OCTET_ROWS * (columns / 256) * octet_group_bytes(format);
}

/// One row's group header (fp16 fields, scales) into the interleaved group.
static void interleave_header(uint32_t format, const uint8_t *source, int row, uint8_t *destination) {
    if (format == FORMAT_Q6_K) {
        memcpy(destination + OCTET_Q6K_D + 2 * row, source + 208, 2);
        for (int sixteenth = 0; sixteenth < 16; sixteenth++) {
            destination[OCTET_Q6K_SCALES + 16 * (sixteenth / 2) + 2 * row + sixteenth % 2] = source[192 + sixteenth];
        }
        return;
    }
    memcpy(destination + OCTET_Q4K_D + 2 * row, source, 2);
    memcpy(destination + OCTET_Q4K_DMIN + 2 * row, source + 2, 2);
    uint64_t scales, minimums;
    unpack_k_scales(source, &scales, &minimums);
    for (int sub = 0; sub < 8; sub++) {
        destination[OCTET_Q4K_SCALES + 8 * sub + row] = (uint8_t)(scales >> (8 * sub));
        destination[OCTET_Q4K_MINIMUMS + 8 * sub + row] = (uint8_t)(minimums >> (8 * sub));
    }
}

/// The six-bit code (plus 32) of element `element` of sub-block `sub` in a file Q6_K block
/// (`dequantize_row_q6_K`'s order: low nibbles in `ql`, top two bits in `qh`).
static uint8_t q6k_file_code(const uint8_t *block, int sub, int element) {
    const int half = sub / 4, quarter = sub % 4;
    const uint8_t low = block[64 * half + 32 * (quarter % 2) + element];
    const uint8_t high = block[128 + 32 * half + element];
    return (uint8_t)((quarter < 2 ? low & 0x0F : low >> 4) | (((high >> (2 * quarter)) & 3) << 4));
}

/// One row's Q6_K codes (a file block) into the interleaved group's code units (Octets8.h).
static void interleave_q6k_codes(const uint8_t *source, int row, uint8_t *codes) {
    for (int half = 0; half < 2; half++) {
        const int a = 4 * half, b = a + 1, c = a + 2, d = a + 3;
        for (int chunk = 0; chunk < 8; chunk++) {
            for (int index = 0; index < 4; index++) {
                const int element = 4 * chunk + index;
                const uint8_t code_a = q6k_file_code(source, a, element), code_b = q6k_file_code(source, b, element);
                const uint8_t code_c = q6k_file_code(source, c, element), code_d = q6k_file_code(source, d, element);
                const size_t within = 4 * (size_t)row + (size_t)index;
                codes[32 * q6k_six_bit_unit(a, chunk) + within] = (uint8_t)(code_a | (code_c >> 4) << 6);
                codes[32 * q6k_six_bit_unit(b, chunk) + within] = (uint8_t)(code_b | (code_d >> 4) << 6);
                codes[32 * q6k_low_bits_unit(c, chunk) + within] = (uint8_t)((code_c & 0x0F) | (code_d & 0x0F) << 4);
            }
        }
    }
}

void strata_octets8_repack(uint32_t format, const void *weights, size_t row_bytes, size_t rows, size_t columns,
                           void *output) {
    if (strata_octets8_size(format, rows, columns) == 0) return;
    const size_t groups = columns / 256, bytes = octet_group_bytes(format), file_bytes = group_bytes(format);
    for (size_t octet = 0; octet < rows / OCTET_ROWS; octet++) {
        for (size_t group = 0; group < groups; group++) {
            uint8_t *destination = (uint8_t *)output + (octet * groups + group) * bytes;
            for (int row = 0; row < OCTET_ROWS; row++) {
                const uint8_t *source = (const uint8_t *)weights + (octet * OCTET_ROWS + row) * row_bytes + group * file_bytes;
                interleave_header(format, source, row, destination);
                if (format == FORMAT_Q6_K) {
                    interleave_q6k_codes(source, row, destination + OCTET_Q6K_CODES);
                    continue;
                }
                for (size_t unit = 0; unit < 32; unit++) {
                    memcpy(destination + OCTET_Q4K_CODES + 32 * unit + 4 * row, source + 16 + 4 * unit, 4);
                }
            }
        }
    }
}

/// Sub-block `sub`'s exact dot product S with `values` for row `row` (see the top of the file).
static int32_t octet_dot(uint32_t format, const uint8_t *group, int sub, int row, const int8_t *values,
                         const int16_t *half_sums) {
    int32_t sixteenths[2] = {0, 0};
    for (int element = 0; element < 32; element++) {
        // the element's byte within its chunk's unit: this row's four bytes, then the element's
        const int chunk = element / 4;
        const size_t within = 4 * (size_t)row + (size_t)(element % 4);
        int32_t code;
        if (format == FORMAT_Q6_K) {
            uint8_t six_bits = group[OCTET_Q6K_CODES + 32 * q6k_six_bit_unit(sub, chunk) + within];
            uint8_t low_bits = group[OCTET_Q6K_CODES + 32 * q6k_low_bits_unit(sub, chunk) + within];
            code = sub % 4 < 2 ? six_bits & 0x3F
                               : ((sub % 2 ? low_bits >> 4 : low_bits & 0x0F) | ((six_bits >> 6) << 4));
        } else {
            uint8_t byte = group[OCTET_Q4K_CODES + 32 * (q4k_first_unit(sub) + chunk) + within];
            code = (sub & 1) ? byte >> 4 : byte & 0x0F;
        }
        sixteenths[element / 16] += code * values[element];
    }
    if (format == FORMAT_Q6_K) {
        int32_t dot = 0;
        for (int half = 0; half < 2; half++) {
            int32_t scale = (int8_t)group[OCTET_Q6K_SCALES + 16 * sub + 2 * row + half];
            dot += scale * (sixteenths[half] - 32 * half_sums[2 * sub + half]);
        }
        return dot;
    }
    return (sixteenths[0] + sixteenths[1]) * (int32_t)group[OCTET_Q4K_SCALES + 8 * sub + row];
}

void strata_octets8_portable(uint32_t format, size_t tile, const uint8_t *octet, size_t groups,
                             strata_activations8 activations, size_t columns, float *output, size_t output_stride) {
    const size_t bytes = octet_group_bytes(format);
    for (size_t token = 0; token < tile; token++) {
        float accumulators[OCTET_ROWS] = {0};
        for (size_t group = 0; group < groups; group++) {
            const uint8_t *block = octet + group * bytes;
            const int16_t *half_sums = activations.half_sums + token * columns / 16 + group * 16;
            float group_sums[OCTET_ROWS], corrections[OCTET_ROWS];
            for (int sub = 0; sub < 8; sub++) {
                const int8_t *values = activations.values + token * columns + group * 256 + sub * 32;
                const size_t block_index = token * columns / 32 + group * 8 + sub;
                const float activation_scale = activations.scales[block_index], sum = activations.sums[block_index];
                for (int row = 0; row < OCTET_ROWS; row++) {
                    float lane = (float)octet_dot(format, block, sub, row, values, half_sums);
                    group_sums[row] = sub == 0 ? lane * activation_scale : fmaf(lane, activation_scale, group_sums[row]);
                    if (format == FORMAT_Q4_K) {
                        float minimum = (float)block[OCTET_Q4K_MINIMUMS + 8 * sub + row];
                        corrections[row] = sub == 0 ? minimum * sum : fmaf(minimum, sum, corrections[row]);
                    }
                }
            }
            for (int row = 0; row < OCTET_ROWS; row++) {
                accumulators[row] = fmaf(group_sums[row], half_to_float(block + 2 * row), accumulators[row]);
                if (format == FORMAT_Q4_K) {
                    float dmin = half_to_float(block + OCTET_Q4K_DMIN + 2 * row);
                    accumulators[row] = fmaf(corrections[row], -dmin, accumulators[row]);
                }
            }
        }
        for (int row = 0; row < OCTET_ROWS; row++) output[token * output_stride + row] = accumulators[row];
    }
}

void strata_octets8_multiply(int level, uint32_t format, const void *packed, size_t rows, size_t octet_begin,
                             size_t octet_end, size_t columns, strata_activations8 activations, size_t tokens,
                             float *output) {
    if (strata_octets8_size(format, rows, columns) == 0) return;
    octet8_function *kernel = strata_octets8_portable;
#if defined(__x86_64__)
    if (level >= STRATA_LEVEL_AVX2) kernel = strata_octets8_avx2;
#endif
    const size_t groups = columns / 256, chunk = token_chunk8(columns), bytes = octet_group_bytes(format);
    for (size_t chunk_start = 0; chunk_start < tokens; chunk_start += chunk) {
        size_t chunk_end = chunk_start + chunk < tokens ? chunk_start + chunk : tokens;
        for (size_t octet = octet_begin; octet < octet_end; octet++) {
            const uint8_t *rows_packed = (const uint8_t *)packed + octet * groups * bytes;
#if defined(__x86_64__)
            // more than one tile: decode each group once for all of them (for one tile the
            // buffer costs more than it saves)
            if (level >= STRATA_LEVEL_AVX2 && chunk_end - chunk_start > TOKEN_TILE) {
                strata_octets8_batch_avx2(format, rows_packed, groups, activations8_after(activations, chunk_start, columns),
                                          chunk_end - chunk_start, columns, output + chunk_start * rows + octet * OCTET_ROWS, rows);
                continue;
            }
#endif
            for (size_t token = chunk_start; token < chunk_end; token += TOKEN_TILE) {
                size_t tile = chunk_end - token < TOKEN_TILE ? chunk_end - token : TOKEN_TILE;
                kernel(format, tile, rows_packed, groups, activations8_after(activations, token, columns), columns,
                       output + token * rows + octet * OCTET_ROWS, rows);
            }
        }
    }
}
