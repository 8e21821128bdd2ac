// Shared by the portable and AVX-512 kernels: block geometry, scale unpacking and the
// per-level entry points. Both levels perform the same float operations per output element
// (see the comment on `strata_matmul_rows`), so they agree bit for bit.
#ifndef STRATA_BLOCKS_H
#define STRATA_BLOCKS_H

#include "StrataKernelsC.h"
#include <string.h>

// GGML type numbers of the weight formats the kernels take.
enum {
    FORMAT_Q4_0 = 2, FORMAT_Q4_1 = 3, FORMAT_Q5_0 = 6, FORMAT_Q5_1 = 7, FORMAT_Q8_0 = 8,
    FORMAT_Q4_K = 12, FORMAT_Q5_K = 13, FORMAT_Q6_K = 14,
};

/// Tokens that share one pass over a weight row: each decoded 32-weight sub-block is dotted
/// with this many activation rows before the next is decoded.
enum { TOKEN_TILE = 4 };

/// A group is one block of the weight format: 32 elements, or a 256-element K super-block
/// holding eight 32-element sub-blocks.
static inline size_t group_bytes(uint32_t format) {
    switch (format) {
    case FORMAT_Q4_0: return 18;
    case FORMAT_Q4_1: return 20;
    case FORMAT_Q5_0: return 22;
    case FORMAT_Q5_1: return 24;
    case FORMAT_Q8_0: return 34;
    case FORMAT_Q4_K: return 144;
    case FORMAT_Q5_K: return 176;
    default: return 210; // Q6_K
    }
}

static inline int group_subblocks(uint32_t format) {
    return format == FORMAT_Q4_K || format == FORMAT_Q5_K || format == FORMAT_Q6_K ? 8 : 1;
}

/// Formats with an offset term `offset × activation sum` per sub-block.
static inline int format_has_offset(uint32_t format) { return format != FORMAT_Q8_0 && format != FORMAT_Q6_K; }

static inline uint16_t load_u16(const uint8_t *source) {
    uint16_t value;
    memcpy(&value, source, sizeof value);
    return value;
}

static inline uint32_t load_u32(const uint8_t *source) {
    uint32_t value;
    memcpy(&value, source, sizeof value);
    return value;
}

/// Per 32-element sub-block of a group: the weight scale and the offset coefficient, so a
/// sub-block contributes `scale × a.scale × Σ code·value + offset × a.sum`.
typedef struct {
    float scale[8];
    float offset[8];
} group_scales;

/// Fills `scales` from a group's header given its fp16 fields already converted (each level
/// converts with its own instruction; both conversions are exact). Products of an fp16 value
/// and a small integer are exact in float, so these are the same bits on every level.
static inline void decode_group_scales(uint32_t format, const uint8_t *block, float first, float second,
                                       group_scales *scales) {
    switch (format) {
    case FORMAT_Q4_0: scales->scale[0] = first; scales->offset[0] = -8.0f * first; break;
    case FORMAT_Q5_0: scales->scale[0] = first; scales->offset[0] = -16.0f * first; break;
    case FORMAT_Q4_1:
    case FORMAT_Q5_1: scales->scale[0] = first; scales->offset[0] = second; break;
    case FORMAT_Q8_0: scales->scale[0] = first; scales->offset[0] = 0; break;
    case FORMAT_Q4_K:
    case FORMAT_Q5_K: {
        // six-bit scales and minimums, packed as GGML's get_scale_min_k4 reads them
        const uint8_t *packed = block + 4;
        for (int index = 0; index < 8; index++) {
            uint8_t scale, minimum;
            if (index < 4) {
                scale = packed[index] & 63;
                minimum = packed[index + 4] & 63;
            } else {
                scale = (uint8_t)((packed[index + 4] & 0x0F) | ((packed[index - 4] >> 6) << 4));
                minimum = (uint8_t)((packed[index + 4] >> 4) | ((packed[index] >> 6) << 4));
            }
            scales->scale[index] = first * (float)scale;
            scales->offset[index] = -(second * (float)minimum);
        }
        break;
    }
    default: // Q6_K: the 16 signed sub-block scales multiply the codes in the integer lanes
        for (int index = 0; index < 8; index++) {
            scales->scale[index] = first;
            scales->offset[index] = 0;
        }
    }
}

/// Byte offsets of a group's two fp16 fields (the second is unused by some formats).
static inline size_t first_half_offset(uint32_t format) { return format == FORMAT_Q6_K ? 208 : 0; }
static inline size_t second_half_offset(uint32_t format) { return format == FORMAT_Q6_K ? 208 : 2; }

/// Tokens per pass over the rows: enough that the activation rows of one pass stay in L2
/// (about 256 KiB) while every weight row is streamed from memory once per pass.
static inline size_t token_chunk(size_t columns) {
    size_t bytes_per_token = columns / 32 * sizeof(strata_activation_block);
    size_t tokens = ((size_t)256 << 10) / (bytes_per_token ? bytes_per_token : 1);
    tokens -= tokens % TOKEN_TILE;
    return tokens < TOKEN_TILE ? TOKEN_TILE : tokens;
}

/// One weight row against `tile` (1...TOKEN_TILE) tokens: `output[t × output_stride]` for
/// token t, whose blocks start at `activations + t × stride`.
typedef void row_function(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                          const strata_activation_block *activations, size_t stride, float *output, size_t output_stride);

void strata_quantize_portable(const float *input, size_t count, strata_activation_block *output);
row_function strata_row_portable;
#if defined(__x86_64__)
void strata_quantize_avx512(const float *input, size_t count, strata_activation_block *output);
row_function strata_row_avx512;
#endif

#endif
