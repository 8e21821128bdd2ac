// Q4_1 with eight rows interleaved, for the 16-bit activation kernels (SmolLM2's format).
//
// In the file's layout a token's product with one Q4_1 row converts and scales sixteen int32
// lanes per 32-element block (two conversions and two multiply-adds a block), because each
// block has its own d and activation scale: the float work outweighed the integer work. With
// eight rows interleaved, one ROW sits in each 32-bit lane instead: vpmaddwd multiplies two
// codes of each of the eight rows by the same two activations (broadcast), a block's sixteen
// such products add up as int32, and one conversion and one multiply-add per block serve all
// eight rows.
//
// Layout, per block of 32 columns and eight rows (160 bytes, as many as in the file): the
// rows' d, their m (fp16 each), then four units of 32 bytes. Unit u holds elements 8u..8u+7 of
// every row as nibbles, placed so that splitting a unit's nibbles and widening the bytes with
// vpunpcklbw/vpunpckhbw yields word vectors whose 32-bit lane r holds row r's pair of codes:
// element e of row r (pair j = e / 2 with u = j / 4) is in byte
//   16 × (r / 4) + 8 × (j % 2) + 2 × (r % 4) + e % 2,   low nibble if (j % 4) < 2, else high.
//
// Float operations per row and token, for each block b in order, with S_b the exact int32
// Σ code × value and a_b, s_b the activation block's scale and sum:
//   factor = d_b × a_b;  accumulator = fma(S_b, factor, accumulator);  offset = fma(m_b, s_b, offset)
// and the result is accumulator + offset. Nothing depends on the tile or the thread split.
#include "Interleaved.h"

#pragma clang fp contract(off)

size_t strata_interleaved16_size(uint32_t format, size_t rows, size_t columns) {
    if (format != FORMAT_Q4_1 || rows == 0 || rows % OCTET_ROWS != 0 || columns == 0 || columns % 32 != 0) return 0;
    return rows / OCTET_ROWS * (columns / 32) * OCTET_Q41_BLOCK_BYTES;
}

/// The byte of a unit area (128 bytes) holding element `element` of row `row`, and whether it
/// is the high nibble.
static size_t q41_code_byte(int row, int element, int *high) {
    const int pair = element / 2, unit = pair / 4;
    *high = (pair % 4) >= 2;
    return (size_t)(32 * unit + 16 * (row / 4) + 8 * (pair % 2) + 2 * (row % 4) + element % 2);
}

void strata_interleave_rows16(uint32_t format, const void *weights, size_t row_bytes, size_t rows, size_t columns,
                              void *output) {
    if (strata_interleaved16_size(format, rows, columns) == 0) return;
    const size_t blocks = columns / 32;
    for (size_t octet = 0; octet < rows / OCTET_ROWS; octet++) {
        for (size_t block = 0; block < blocks; block++) {
            uint8_t *destination = (uint8_t *)output + (octet * blocks + block) * OCTET_Q41_BLOCK_BYTES;
            memset(destination + OCTET_Q41_CODES, 0, 128);
            for (int row = 0; row < OCTET_ROWS; row++) {
                const uint8_t *source = (const uint8_t *)weights + (octet * OCTET_ROWS + row) * row_bytes + block * 20;
                memcpy(destination + OCTET_Q41_D + 2 * row, source, 2);
                memcpy(destination + OCTET_Q41_M + 2 * row, source + 2, 2);
                for (int element = 0; element < 32; element++) {
                    const uint8_t code = element < 16 ? source[4 + element] & 0x0F : source[4 + element - 16] >> 4;
                    int high;
                    const size_t byte = q41_code_byte(row, element, &high);
                    destination[OCTET_Q41_CODES + byte] |= (uint8_t)(high ? code << 4 : code);
                }
            }
        }
    }
}

void strata_octet16_portable(size_t tile, const uint8_t *octet, size_t blocks, const strata_activation_block *activations,
                             float *output, size_t output_stride) {
    for (size_t token = 0; token < tile; token++) {
        float accumulators[OCTET_ROWS] = {0}, offsets[OCTET_ROWS] = {0};
        for (size_t block = 0; block < blocks; block++) {
            const uint8_t *packed = octet + block * OCTET_Q41_BLOCK_BYTES;
            const strata_activation_block *input = activations + token * blocks + block;
            for (int row = 0; row < OCTET_ROWS; row++) {
                int32_t dot = 0;
                for (int element = 0; element < 32; element++) {
                    int high;
                    const uint8_t byte = packed[OCTET_Q41_CODES + q41_code_byte(row, element, &high)];
                    dot += (int32_t)(high ? byte >> 4 : byte & 0x0F) * input->values[element];
                }
                const float factor = half_to_float(packed + OCTET_Q41_D + 2 * row) * input->scale;
                accumulators[row] = fmaf((float)dot, factor, accumulators[row]);
                offsets[row] = fmaf(half_to_float(packed + OCTET_Q41_M + 2 * row), input->sum, offsets[row]);
            }
        }
        for (int row = 0; row < OCTET_ROWS; row++) output[token * output_stride + row] = accumulators[row] + offsets[row];
    }
}

void strata_matmul16_interleaved(int level, uint32_t format, const void *packed, size_t rows, size_t octet_begin,
                                 size_t octet_end, size_t columns, const strata_activation_block *activations,
                                 size_t tokens, float *output) {
    if (strata_interleaved16_size(format, rows, columns) == 0) return;
    octet16_function *kernel = strata_octet16_portable;
#if defined(__x86_64__)
    if (level >= STRATA_LEVEL_AVX2) kernel = strata_octet16_avx2;
#endif
    const size_t blocks = columns / 32, chunk = token_chunk(columns);
    for (size_t chunk_start = 0; chunk_start < tokens; chunk_start += chunk) {
        const size_t chunk_end = chunk_start + chunk < tokens ? chunk_start + chunk : tokens;
        for (size_t octet = octet_begin; octet < octet_end; octet++) {
            const uint8_t *rows_packed = (const uint8_t *)packed + octet * blocks * OCTET_Q41_BLOCK_BYTES;
            for (size_t token = chunk_start; token < chunk_end; token += TOKEN_TILE) {
                const size_t tile = chunk_end - token < TOKEN_TILE ? chunk_end - token : TOKEN_TILE;
                kernel(tile, rows_packed, blocks, activations + token * blocks, output + token * rows + octet * OCTET_ROWS, rows);
            }
        }
    }
}
