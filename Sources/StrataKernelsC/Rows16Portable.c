// Portable C kernels, the fallback for CPUs without AVX2 or AVX-512. They repeat the AVX-512
// arithmetic exactly: integer dot products per pair of elements (one "lane"), a fused
// multiply-add per lane into sixteen float accumulators per chain, and the same final
// reduction, so a machine gets the same bits whichever level it runs.
#include "Kernels.h"
#include <math.h>

#pragma clang fp contract(off)

/// The 32 codes of sub-block `sub` as integers (signed for Q8_0, Q3_K and Q6_K).
static void subblock_codes(uint32_t format, const uint8_t *block, int sub, int32_t codes[32]) {
    switch (format) {
    case FORMAT_Q2_K:
    case FORMAT_Q3_K:
        for (int index = 0; index < 32; index++) {
            codes[index] = low_bit_code(format, block, sub, index) - (format == FORMAT_Q3_K ? 4 : 0);
        }
        break;
    case FORMAT_Q4_0:
    case FORMAT_Q4_1:
    case FORMAT_Q5_0:
    case FORMAT_Q5_1: {
        size_t packed = format == FORMAT_Q4_0 ? 2 : format == FORMAT_Q4_1 ? 4 : format == FORMAT_Q5_0 ? 6 : 8;
        uint32_t fifth = format == FORMAT_Q5_0 ? load_u32(block + 2) : format == FORMAT_Q5_1 ? load_u32(block + 4) : 0;
        for (int index = 0; index < 16; index++) {
            codes[index] = (block[packed + index] & 0x0F) + (int32_t)((fifth >> index) & 1) * 16;
            codes[index + 16] = (block[packed + index] >> 4) + (int32_t)((fifth >> (index + 16)) & 1) * 16;
        }
        break;
    }
    case FORMAT_Q8_0:
        for (int index = 0; index < 32; index++) codes[index] = (int8_t)block[2 + index];
        break;
    case FORMAT_Q4_K:
    case FORMAT_Q5_K: {
        const uint8_t *packed = block + (format == FORMAT_Q4_K ? 16 : 48) + 32 * (sub / 2);
        for (int index = 0; index < 32; index++) {
            int32_t code = (sub & 1) ? packed[index] >> 4 : packed[index] & 0x0F;
            if (format == FORMAT_Q5_K) code += ((block[16 + index] >> sub) & 1) * 16;
            codes[index] = code;
        }
        break;
    }
    default: { // Q6_K
        int half = sub / 4, quarter = sub % 4;
        const uint8_t *low = block + 64 * half + 32 * (quarter & 1);
        const uint8_t *high = block + 128 + 32 * half;
        for (int index = 0; index < 32; index++) {
            int32_t nibble = quarter >= 2 ? low[index] >> 4 : low[index] & 0x0F;
            codes[index] = (nibble | (((high[index] >> (2 * quarter)) & 3) << 4)) - 32;
        }
    }
    }
}

/// Lanes l and l + 8 first, then `sum_eight_lanes`.
static float reduce_lanes(const float wide[16]) {
    float lanes[8];
    for (int lane = 0; lane < 8; lane++) lanes[lane] = wide[lane] + wide[lane + 8];
    return sum_eight_lanes(lanes);
}

/// K formats (see `strata_rows16_portable`): per group and token, the integer pair sums of all
/// eight sub-blocks add up in sixteen int32 lanes, and each lane takes one multiply-add by
/// `d × activation scale` (the activations share one scale per super-block). Q2_K's minimums,
/// one per 16 elements, add up in a second set of lanes that takes a multiply-add by
/// `-dmin × activation scale` after the first.
static void k_row(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                  const strata_activation_block16 *activations, size_t stride, float *output, size_t output_stride) {
    const size_t bytes = group_bytes(format);
    float accumulators[TOKEN_TILE][16] = {{0}};
    // four offset chains (sub-block k to chain k mod 4): one chain of eight multiply-adds per
    // group would bound a single token's speed by their latency
    float offsets[TOKEN_TILE][4] = {{0}};
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = row + group * bytes;
        group_scales scales;
        decode_group_scales(format, block, half_to_float(block + first_half_offset(format)),
                            half_to_float(block + second_half_offset(format)), &scales);
        int8_t sixteen[16] = {0}, minimums[16] = {0};
        if (has_sixteen_scales(format)) sixteen_scales(format, block, sixteen, minimums);
        int32_t lanes[TOKEN_TILE][16] = {{0}}, minimum_lanes[TOKEN_TILE][16] = {{0}};
        for (int sub = 0; sub < 8; sub++) {
            int32_t codes[32];
            subblock_codes(format, block, sub, codes);
            for (int index = 0; index < 32; index++) {
                codes[index] *= has_sixteen_scales(format) ? sixteen[2 * sub + index / 16] : scales.multiplier[sub];
            }
            const strata_activation_block16 *column_block = activations + group * 8 + sub;
            for (size_t token = 0; token < tile; token++) {
                const strata_activation_block16 *input = column_block + token * stride;
                for (int lane = 0; lane < 16; lane++) {
                    lanes[token][lane] += codes[2 * lane] * input->values[2 * lane] + codes[2 * lane + 1] * input->values[2 * lane + 1];
                    if (format == FORMAT_Q2_K) {
                        minimum_lanes[token][lane] += minimums[2 * sub + lane / 8] * (input->values[2 * lane] + input->values[2 * lane + 1]);
                    }
                }
                if (format_has_offset(format)) offsets[token][sub & 3] = fmaf(scales.offset[sub], input->sum, offsets[token][sub & 3]);
            }
        }
        for (size_t token = 0; token < tile; token++) {
            const float activation_scale = activations[group * 8 + token * stride].scale;
            float factor = scales.scale * activation_scale;
            for (int lane = 0; lane < 16; lane++) {
                accumulators[token][lane] = fmaf((float)lanes[token][lane], factor, accumulators[token][lane]);
            }
            if (format == FORMAT_Q2_K) {
                float minimum_factor = scales.offset[0] * activation_scale;
                for (int lane = 0; lane < 16; lane++) {
                    accumulators[token][lane] = fmaf((float)minimum_lanes[token][lane], minimum_factor, accumulators[token][lane]);
                }
            }
        }
    }
    for (size_t token = 0; token < tile; token++) {
        float offset = (offsets[token][0] + offsets[token][1]) + (offsets[token][2] + offsets[token][3]);
        output[token * output_stride] = reduce_lanes(accumulators[token]) + offset;
    }
}

void strata_rows16_portable(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                            const strata_activation_block16 *activations, size_t stride,
                            float *output, size_t output_stride) {
    if (group_subblocks(format) == 8) {
        k_row(format, tile, row, groups, activations, stride, output, output_stride);
        return;
    }
    // 32-element formats: block k of the row goes to chain k mod 2, so a token has two
    // independent multiply-add chains; each block takes one multiply-add per lane by
    // `d × activation scale`
    const size_t bytes = group_bytes(format);
    float accumulators[TOKEN_TILE][2][16] = {{{0}}};
    float offsets[TOKEN_TILE][2] = {{0}};
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = row + group * bytes;
        group_scales scales;
        decode_group_scales(format, block, half_to_float(block + first_half_offset(format)),
                            half_to_float(block + second_half_offset(format)), &scales);
        int32_t codes[32];
        subblock_codes(format, block, 0, codes);
        const int chain = (int)(group & 1);
        for (size_t token = 0; token < tile; token++) {
            const strata_activation_block16 *input = activations + group + token * stride;
            const float factor = scales.scale * input->scale;
            for (int lane = 0; lane < 16; lane++) {
                int32_t sum = codes[2 * lane] * input->values[2 * lane] + codes[2 * lane + 1] * input->values[2 * lane + 1];
                accumulators[token][chain][lane] = fmaf((float)sum, factor, accumulators[token][chain][lane]);
            }
            if (format_has_offset(format)) offsets[token][chain] = fmaf(scales.offset[0], input->sum, offsets[token][chain]);
        }
    }
    for (size_t token = 0; token < tile; token++) {
        float wide[16];
        for (int lane = 0; lane < 16; lane++) wide[lane] = accumulators[token][0][lane] + accumulators[token][1][lane];
        output[token * output_stride] = reduce_lanes(wide) + (offsets[token][0] + offsets[token][1]);
    }
}

void strata_quantize16_portable(const float *input, size_t count, size_t group, strata_activation_block16 *output) {
    for (size_t first = 0; first < count; first += group) {
        float magnitude = 0;
        for (size_t index = 0; index < group; index++) magnitude = fmaxf(magnitude, fabsf(input[first + index]));
        float scale = quantization_scale(magnitude, 32767.0f);
        float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
        for (size_t block = first / 32; block < (first + group) / 32; block++) {
            const float *source = input + 32 * block;
            int32_t sum = 0;
            for (int index = 0; index < 32; index++) {
                // nearbyintf rounds to nearest even in the default mode, as vcvtps2dq does
                float scaled = nearbyintf(source[index] * inverse);
                int32_t code = clamped_code(scaled, 32767);
                output[block].values[index] = (int16_t)code;
                sum += code;
            }
            output[block].scale = scale;
            output[block].sum = scale * (float)sum;
        }
    }
}
