// Portable C kernels for 8-bit activations: the reference the AVX2 level repeats bit for bit.
// A "lane" here is the integer dot product of four consecutive elements (what vpmaddubsw
// followed by vpmaddwd leaves in one 32-bit lane); eight lanes cover a 32-element block. The
// integer sums are exact, so only the float operations need a fixed order, the one below:
// per lane, one multiply-add per 32-element block (each has its own activation scale), the
// offsets in their own chains, and the reduction of `sum_eight_lanes`.
#include "Kernels.h"

#pragma clang fp contract(off)

/// The 32 codes of a 32-element block as the 8-bit kernels multiply them: unsigned 0..31 for
/// Q4_0/Q4_1/Q5_0/Q5_1 (their offset is applied to the activation sum), signed for Q8_0.
static void block_codes8(uint32_t format, const uint8_t *block, int32_t codes[32]) {
    if (format == FORMAT_Q8_0) {
        for (int index = 0; index < 32; index++) codes[index] = (int8_t)block[2 + index];
        return;
    }
    size_t packed = format == FORMAT_Q4_0 ? 2 : format == FORMAT_Q4_1 ? 4 : format == FORMAT_Q5_0 ? 6 : 8;
    uint32_t fifth = format == FORMAT_Q5_0 ? load_u32(block + 2) : format == FORMAT_Q5_1 ? load_u32(block + 4) : 0;
    for (int index = 0; index < 16; index++) {
        codes[index] = (block[packed + index] & 0x0F) + (int32_t)((fifth >> index) & 1) * 16;
        codes[index + 16] = (block[packed + index] >> 4) + (int32_t)((fifth >> (index + 16)) & 1) * 16;
    }
}

/// Sub-block `sub` of a K group, unsigned: Q2_K codes 0..3, Q3_K 0..7, Q4_K/Q5_K 0..31, Q6_K
/// 0..63 (Q3_K's offset of 4 and Q6_K's of 32 are applied to the activation half sums).
static void k_codes8(uint32_t format, const uint8_t *block, int sub, int32_t codes[32]) {
    if (format == FORMAT_Q2_K || format == FORMAT_Q3_K) {
        for (int index = 0; index < 32; index++) codes[index] = low_bit_code(format, block, sub, index);
        return;
    }
    if (format == FORMAT_Q6_K) {
        int half = sub / 4, quarter = sub % 4;
        const uint8_t *low = block + 64 * half + 32 * (quarter & 1);
        const uint8_t *high = block + 128 + 32 * half;
        for (int index = 0; index < 32; index++) {
            int32_t nibble = quarter >= 2 ? low[index] >> 4 : low[index] & 0x0F;
            codes[index] = nibble | (((high[index] >> (2 * quarter)) & 3) << 4);
        }
        return;
    }
    const uint8_t *packed = block + (format == FORMAT_Q4_K ? 16 : 48) + 32 * (sub / 2);
    for (int index = 0; index < 32; index++) {
        int32_t code = (sub & 1) ? packed[index] >> 4 : packed[index] & 0x0F;
        if (format == FORMAT_Q5_K) code += ((block[16 + index] >> sub) & 1) * 16;
        codes[index] = code;
    }
}

/// Lane `lane` of a block: Σ codes[e] × values[e] over e = 4·lane ..< 4·lane + 4.
static inline int32_t lane_sum(const int32_t codes[32], const int8_t values[32], int lane) {
    int32_t sum = 0;
    for (int index = 4 * lane; index < 4 * lane + 4; index++) sum += codes[index] * values[index];
    return sum;
}

/// K formats, per group and token: each sub-block's eight int32 lanes (codes times their
/// sub-block scale, Q2_K's, Q3_K's and Q6_K's per 16 elements) are converted and multiplied by
/// that sub-block's activation scale into a group sum, which takes one multiply-add by `d`;
/// then the minimums (Q2_K/Q4_K/Q5_K, times `-dmin`) or the code offset (Q3_K times `-4 d`,
/// Q6_K times `-32 d`, each per scale), one lane per sub-block from the half sums, times the
/// sub-block's activation scale.
static void k_row8(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                   strata_activations8 activations, size_t columns, float *output, size_t output_stride) {
    const size_t bytes = group_bytes(format);
    float accumulators[TOKEN_TILE][8] = {{0}};
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = row + group * bytes;
        const float d = half_to_float(block + first_half_offset(format));
        const float second = half_to_float(block + second_half_offset(format));
        int32_t scale_of[16], correction_of[16];
        if (has_sixteen_scales(format)) {
            int8_t scales[16], minimums[16];
            sixteen_scales(format, block, scales, minimums);
            for (int index = 0; index < 16; index++) {
                scale_of[index] = scales[index];
                correction_of[index] = format == FORMAT_Q2_K ? minimums[index] : scales[index];
            }
        } else {
            uint64_t scales, minimums;
            unpack_k_scales(block, &scales, &minimums);
            for (int sub = 0; sub < 8; sub++) {
                scale_of[2 * sub] = scale_of[2 * sub + 1] = (int32_t)((scales >> (8 * sub)) & 0xFF);
                correction_of[2 * sub] = correction_of[2 * sub + 1] = (int32_t)((minimums >> (8 * sub)) & 0xFF);
            }
        }
        // Q6_K codes are stored plus 32, Q3_K's plus 4; Q2_K/Q4_K/Q5_K weights are
        // d × scale × code - dmin × minimum
        const float correction_factor = format == FORMAT_Q6_K ? -32.0f * d : format == FORMAT_Q3_K ? -4.0f * d : -second;
        float group_sums[TOKEN_TILE][8] = {{0}};
        for (int sub = 0; sub < 8; sub++) {
            int32_t codes[32];
            k_codes8(format, block, sub, codes);
            for (size_t token = 0; token < tile; token++) {
                const int8_t *values = activations.values + token * columns + group * 256 + sub * 32;
                const float activation_scale = activations.scales[token * columns / 32 + group * 8 + sub];
                for (int lane = 0; lane < 8; lane++) {
                    float lane_value = (float)(lane_sum(codes, values, lane) * scale_of[2 * sub + lane / 4]);
                    group_sums[token][lane] = sub == 0 ? lane_value * activation_scale
                                                       : fmaf(lane_value, activation_scale, group_sums[token][lane]);
                }
            }
        }
        for (size_t token = 0; token < tile; token++) {
            const int16_t *half_sums = activations.half_sums + token * columns / 16 + group * 16;
            const float *scales = activations.scales + token * columns / 32 + group * 8;
            for (int lane = 0; lane < 8; lane++) {
                accumulators[token][lane] = fmaf(group_sums[token][lane], d, accumulators[token][lane]);
            }
            for (int lane = 0; lane < 8; lane++) {
                int32_t correction = correction_of[2 * lane] * half_sums[2 * lane] + correction_of[2 * lane + 1] * half_sums[2 * lane + 1];
                float scaled = (float)correction * scales[lane];
                accumulators[token][lane] = fmaf(scaled, correction_factor, accumulators[token][lane]);
            }
        }
    }
    for (size_t token = 0; token < tile; token++) output[token * output_stride] = sum_eight_lanes(accumulators[token]);
}

void strata_rows8_portable(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                           strata_activations8 activations, size_t columns, float *output, size_t output_stride) {
    if (group_subblocks(format) == 8) {
        k_row8(format, tile, row, groups, activations, columns, output, output_stride);
        return;
    }
    // block k of the row goes to chain k mod 2, as in the 16-bit kernels
    const size_t bytes = group_bytes(format);
    float accumulators[TOKEN_TILE][2][8] = {{{0}}};
    float offsets[TOKEN_TILE][2] = {{0}};
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = row + group * bytes;
        group_scales scales;
        decode_group_scales(format, block, half_to_float(block + first_half_offset(format)),
                            half_to_float(block + second_half_offset(format)), &scales);
        int32_t codes[32];
        block_codes8(format, block, codes);
        const int chain = (int)(group & 1);
        for (size_t token = 0; token < tile; token++) {
            const int8_t *values = activations.values + token * columns + group * 32;
            const size_t block_index = token * columns / 32 + group;
            const float factor = scales.scale * activations.scales[block_index];
            for (int lane = 0; lane < 8; lane++) {
                accumulators[token][chain][lane] = fmaf((float)lane_sum(codes, values, lane), factor,
                                                        accumulators[token][chain][lane]);
            }
            if (format_has_offset(format)) {
                offsets[token][chain] = fmaf(scales.offset[0], activations.sums[block_index], offsets[token][chain]);
            }
        }
    }
    for (size_t token = 0; token < tile; token++) {
        float lanes[8];
        for (int lane = 0; lane < 8; lane++) lanes[lane] = accumulators[token][0][lane] + accumulators[token][1][lane];
        output[token * output_stride] = sum_eight_lanes(lanes) + (offsets[token][0] + offsets[token][1]);
    }
}

void strata_quantize8_portable(const float *input, size_t count, strata_activations8 output) {
    for (size_t block = 0; block < count / 32; block++) {
        const float *source = input + 32 * block;
        float magnitude = 0;
        for (int index = 0; index < 32; index++) magnitude = fmaxf(magnitude, fabsf(source[index]));
        float scale = quantization_scale(magnitude, 127.0f);
        float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
        int32_t halves[2] = {0, 0};
        for (int index = 0; index < 32; index++) {
            // nearbyintf rounds to nearest even in the default mode, as vcvtps2dq does
            float scaled = nearbyintf(source[index] * inverse);
            int32_t code = clamped_code(scaled, 127);
            output.values[32 * block + index] = (int8_t)code;
            halves[index / 16] += code;
        }
        output.scales[block] = scale;
        output.sums[block] = scale * (float)(halves[0] + halves[1]);
        output.half_sums[2 * block] = (int16_t)halves[0];
        output.half_sums[2 * block + 1] = (int16_t)halves[1];
    }
}
