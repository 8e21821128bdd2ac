// Q4_1 and Q5_0 with eight rows interleaved, for the 16-bit activation kernels (SmolLM2-135M is
// mostly Q4_1, Qwen2.5-Coder-0.5B mostly Q5_0).
//
// In the file's layouts a token's product with one row converts and scales sixteen int32 lanes
// per 32-element block (two conversions and two multiply-adds a block), because each block has
// its own d and activation scale: the float work outweighed the integer work. With eight rows
// interleaved, one ROW sits in each 32-bit lane instead: vpmaddwd multiplies two codes of each
// of the eight rows by the same two activations (broadcast), a block's sixteen such products add
// up as int32, and one conversion and one multiply-add per block serve all eight rows.
//
// Layout, per block of 32 columns and eight rows (as many bytes as in the file): the rows' d,
// then Q4_1's m (fp16 each) or Q5_0's fifth code bits, then four units of 32 bytes. Unit u holds
// the low four bits of elements 8u..8u+7 of every row as nibbles, placed so that splitting a
// unit's nibbles and widening the bytes with vpunpcklbw/vpunpckhbw yields word vectors whose
// 32-bit lane r holds row r's pair of codes: element e of row r (pair j = e / 2, u = j / 4) is
// in byte 16 × (r / 4) + 8 × (j % 2) + 2 × (r % 4) + e % 2 of unit u, in its low nibble if
// (j % 4) < 2, else its high nibble. Q5_0's fifth bit of that code is bit 2u + (nibble high) of
// the same byte position in the 32-byte fifth-bit area, so each nibble vector takes its fifth
// bits from one shift and mask of that area.
//
// Float operations per row and token, for each block b in order, with S_b the exact int32
// Σ code × value (Q5_0 codes unsigned, 0...31) and a_b, s_b the activation block's scale and sum:
//   factor = d_b × a_b;  accumulator = fma(S_b, factor, accumulator);  offset = fma(m_b, s_b, offset)
// with m_b = Q4_1's m, or -16 × d_b for Q5_0 (its codes mean code - 16; exact in float), and the
// result is accumulator + offset. Nothing depends on the tile or the thread split.
#include "Octets8.h"

#pragma clang fp contract(off)

size_t strata_octets16_size(uint32_t format, size_t rows, size_t columns) {
    if (format != FORMAT_Q4_1 && format != FORMAT_Q5_0) return 0;
    if (rows == 0 || rows % OCTET_ROWS != 0 || columns == 0 || columns % 32 != 0) return 0;
    return rows / OCTET_ROWS * (columns / 32) * octet16_block_bytes(format);
}

/// The byte of the code area (128 bytes) holding element `element` of row `row`, and whether it
/// is the high nibble.
static size_t octet16_code_byte(int row, int element, int *high) {
    const int pair = element / 2, unit = pair / 4;
    *high = (pair % 4) >= 2;
    return (size_t)(32 * unit + 16 * (row / 4) + 8 * (pair % 2) + 2 * (row % 4) + element % 2);
}

/// Q5_0: the fifth-bit byte (relative to the fifth-bit area) of the code whose low bits are at
/// `code_byte` of the code area (in its high nibble if `high`), and which of its bits holds it.
static size_t octet16_fifth_bit(size_t code_byte, int high, int *bit) {
    *bit = 2 * (int)(code_byte / 32) + high;
    return code_byte % 32;
}

/// Element `element`'s code in a file block: Q4_1 0...15, Q5_0 0...31.
static uint8_t file_code(uint32_t format, const uint8_t *block, int element) {
    const uint8_t *nibbles = block + (format == FORMAT_Q5_0 ? 6 : 4);
    uint8_t code = element < 16 ? nibbles[element] & 0x0F : nibbles[element - 16] >> 4;
    if (format == FORMAT_Q5_0) code |= (uint8_t)(((load_u32(block + 2) >> element) & 1) << 4);
    return code;
}

void strata_octets16_repack(uint32_t format, const void *weights, size_t row_bytes, size_t rows, size_t columns,
                            void *output) {
    if (strata_octets16_size(format, rows, columns) == 0) return;
    const size_t blocks = columns / 32, bytes = octet16_block_bytes(format), codes = octet16_codes(format);
    const size_t file_bytes = format == FORMAT_Q5_0 ? 22 : 20;
    for (size_t octet = 0; octet < rows / OCTET_ROWS; octet++) {
        for (size_t block = 0; block < blocks; block++) {
            uint8_t *destination = (uint8_t *)output + (octet * blocks + block) * bytes;
            memset(destination + OCTET16_D + 16, 0, bytes - 16);
            for (int row = 0; row < OCTET_ROWS; row++) {
                const uint8_t *source = (const uint8_t *)weights + (octet * OCTET_ROWS + row) * row_bytes + block * file_bytes;
                memcpy(destination + OCTET16_D + 2 * row, source, 2);
                if (format == FORMAT_Q4_1) memcpy(destination + OCTET_Q41_M + 2 * row, source + 2, 2);
                for (int element = 0; element < 32; element++) {
                    const uint8_t code = file_code(format, source, element);
                    // positions first: the operands of |= are not sequenced
                    int high, bit;
                    const size_t byte = octet16_code_byte(row, element, &high);
                    destination[codes + byte] |= (uint8_t)(high ? (code & 0x0F) << 4 : code & 0x0F);
                    if (format == FORMAT_Q5_0) {
                        const size_t fifth = octet16_fifth_bit(byte, high, &bit);
                        destination[OCTET_Q50_FIFTH_BITS + fifth] |= (uint8_t)((code >> 4) << bit);
                    }
                }
            }
        }
    }
}

void strata_octets16_portable(uint32_t format, size_t tile, const uint8_t *octet, size_t blocks,
                              const strata_activation_block16 *activations, float *output, size_t output_stride) {
    const size_t bytes = octet16_block_bytes(format), codes = octet16_codes(format);
    for (size_t token = 0; token < tile; token++) {
        float accumulators[OCTET_ROWS] = {0}, offsets[OCTET_ROWS] = {0};
        for (size_t block = 0; block < blocks; block++) {
            const uint8_t *packed = octet + block * bytes;
            const strata_activation_block16 *input = activations + token * blocks + block;
            for (int row = 0; row < OCTET_ROWS; row++) {
                int32_t dot = 0;
                for (int element = 0; element < 32; element++) {
                    int high, bit;
                    const size_t position = octet16_code_byte(row, element, &high);
                    const uint8_t byte = packed[codes + position];
                    int32_t code = high ? byte >> 4 : byte & 0x0F;
                    if (format == FORMAT_Q5_0) {
                        const uint8_t fifth = packed[OCTET_Q50_FIFTH_BITS + octet16_fifth_bit(position, high, &bit)];
                        code |= ((fifth >> bit) & 1) << 4;
                    }
                    dot += code * input->values[element];
                }
                const float d = half_to_float(packed + OCTET16_D + 2 * row);
                const float m = format == FORMAT_Q5_0 ? d * -16.0f : half_to_float(packed + OCTET_Q41_M + 2 * row);
                accumulators[row] = fmaf((float)dot, d * input->scale, accumulators[row]);
                offsets[row] = fmaf(m, input->sum, offsets[row]);
            }
        }
        for (int row = 0; row < OCTET_ROWS; row++) output[token * output_stride + row] = accumulators[row] + offsets[row];
    }
}

void strata_octets16_multiply(int level, uint32_t format, const void *packed, size_t rows, size_t octet_begin,
                              size_t octet_end, size_t columns, const strata_activation_block16 *activations,
                              size_t tokens, float *output) {
    if (strata_octets16_size(format, rows, columns) == 0) return;
    octet16_function *kernel = strata_octets16_portable;
#if defined(__x86_64__)
    if (level >= STRATA_LEVEL_AVX2) kernel = strata_octets16_avx2;
#endif
    const size_t blocks = columns / 32, chunk = token_chunk(columns), bytes = octet16_block_bytes(format);
    for (size_t chunk_start = 0; chunk_start < tokens; chunk_start += chunk) {
        const size_t chunk_end = chunk_start + chunk < tokens ? chunk_start + chunk : tokens;
        for (size_t octet = octet_begin; octet < octet_end; octet++) {
            const uint8_t *rows_packed = (const uint8_t *)packed + octet * blocks * bytes;
            for (size_t token = chunk_start; token < chunk_end; token += TOKEN_TILE) {
                const size_t tile = chunk_end - token < TOKEN_TILE ? chunk_end - token : TOKEN_TILE;
                kernel(format, tile, rows_packed, blocks, activations + token * blocks, output + token * rows + octet * OCTET_ROWS, rows);
            }
        }
    }
}
