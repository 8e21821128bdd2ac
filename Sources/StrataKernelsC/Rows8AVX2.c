// AVX2 kernels for 8-bit activations. Weight codes stay bytes (unsigned, except Q8_0), and a
// block of 32 is dotted with a token's 32 int8 activations by vpmaddubsw (byte pairs to int16)
// then vpmaddwd (pairs of those, times 1 or the sub-block scale, to int32): 32 multiply-adds
// in two instructions, where the 16-bit kernels need four. Lane i of the result holds the
// elements 4i..4i+3, the portable level's `lane_sum`; the float work is the portable level's
// in the same order, so both return the same bits.
#if defined(__x86_64__)
#include "VectorSupport.h"

#pragma clang fp contract(off)

/// A group's two fp16 fields as floats.
STRATA_AVX2_INLINE void group_halves8(uint32_t format, const uint8_t *block, float *first, float *second) {
    __m128 halves = group_halves(format, block);
    *first = _mm_cvtss_f32(halves);
    *second = _mm_cvtss_f32(_mm_movehdup_ps(halves));
}

/// 16 bytes of nibbles as 32 byte codes: low nibbles (elements 0-15), then high nibbles.
STRATA_AVX2_INLINE __m256i nibble_bytes(const uint8_t *source) {
    __m128i packed = _mm_loadu_si128((const __m128i *)source);
    const __m128i mask = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), _mm_and_si128(packed, mask));
}

/// 16 in byte e where bit e of `bits` is set, else 0: the fifth bit of Q5_0/Q5_1 codes.
STRATA_AVX2_INLINE __m256i fifth_bit_bytes(uint32_t bits) {
    // byte e takes byte e / 8 of `bits`, then tests its bit e % 8
    const __m256i which_byte = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i which_bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), which_byte);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, which_bit), which_bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

/// A 32-element block's codes as the portable `block_codes8`: unsigned bytes, or for Q8_0
/// the signed codes (the caller takes their magnitude and moves the sign to the activations).
STRATA_AVX2_INLINE __m256i block_codes8(uint32_t format, const uint8_t *block) {
    switch (format) {
    case FORMAT_Q4_0: return nibble_bytes(block + 2);
    case FORMAT_Q4_1: return nibble_bytes(block + 4);
    case FORMAT_Q5_0: return _mm256_add_epi8(nibble_bytes(block + 6), fifth_bit_bytes(load_u32(block + 2)));
    case FORMAT_Q5_1: return _mm256_add_epi8(nibble_bytes(block + 8), fifth_bit_bytes(load_u32(block + 4)));
    default: return _mm256_loadu_si256((const __m256i *)(block + 2)); // Q8_0
    }
}

/// Sub-block `sub` of a K group as unsigned byte codes, as the portable `k_codes8`.
STRATA_AVX2_INLINE __m256i k_codes8(uint32_t format, const uint8_t *block, int sub) {
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    if (format == FORMAT_Q2_K || format == FORMAT_Q3_K) {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(block + (format == FORMAT_Q2_K ? 16 : 32) + 32 * (sub / 4)));
        __m256i codes = _mm256_and_si256(_mm256_srli_epi16(packed, 2 * (sub % 4)), _mm256_set1_epi8(3));
        if (format == FORMAT_Q2_K) return codes;
        const __m256i bit = _mm256_set1_epi8((char)(1 << sub));
        __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_loadu_si256((const __m256i *)block), bit), bit);
        return _mm256_add_epi8(codes, _mm256_and_si256(set, _mm256_set1_epi8(4)));
    }
    if (format == FORMAT_Q6_K) {
        int half = sub / 4, quarter = sub % 4;
        __m256i low = _mm256_loadu_si256((const __m256i *)(block + 64 * half + 32 * (quarter & 1)));
        low = quarter >= 2 ? _mm256_and_si256(_mm256_srli_epi16(low, 4), low_nibbles) : _mm256_and_si256(low, low_nibbles);
        __m256i high = _mm256_loadu_si256((const __m256i *)(block + 128 + 32 * half));
        high = _mm256_and_si256(_mm256_srli_epi16(high, 2 * quarter), _mm256_set1_epi8(3));
        return _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
    }
    __m256i packed = _mm256_loadu_si256((const __m256i *)(block + (format == FORMAT_Q4_K ? 16 : 48) + 32 * (sub / 2)));
    __m256i codes = (sub & 1) ? _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles) : _mm256_and_si256(packed, low_nibbles);
    if (format == FORMAT_Q5_K) {
        const __m256i bit = _mm256_set1_epi8((char)(1 << sub));
        __m256i fifth = _mm256_loadu_si256((const __m256i *)(block + 16));
        __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(fifth, bit), bit);
        codes = _mm256_add_epi8(codes, _mm256_and_si256(set, _mm256_set1_epi8(16)));
    }
    return codes;
}

/// A K group's header, unpacked for the sub-block loop.
typedef struct {
    float d, correction_factor;
    __m256i scales_by_half, corrections;
} k_header8;

STRATA_AVX2_INLINE k_header8 k_header(uint32_t format, const uint8_t *block) {
    k_header8 header;
    float second;
    group_halves8(format, block, &header.d, &second);
    if (has_sixteen_scales(format)) {
        __m256i minimums;
        sixteen_scale_words(format, block, &header.scales_by_half, &minimums);
        header.corrections = format == FORMAT_Q2_K ? minimums : header.scales_by_half;
    } else {
        uint64_t scales, minimums;
        unpack_k_scales(block, &scales, &minimums);
        __m128i packed_scales = _mm_cvtsi64_si128((long long)scales), packed_minimums = _mm_cvtsi64_si128((long long)minimums);
        header.scales_by_half = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(packed_scales, packed_scales));
        header.corrections = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(packed_minimums, packed_minimums));
    }
    header.correction_factor = format == FORMAT_Q6_K ? -32.0f * header.d : format == FORMAT_Q3_K ? -4.0f * header.d : -second;
    return header;
}

/// Sub-block `sub`'s code scales as int16 lanes: lanes 0-7 (elements 0-15) take its first
/// scale, lanes 8-15 its second (vpermd puts int16 lanes 2k, 2k+1 in every dword, vpshufb
/// spreads them).
STRATA_AVX2_INLINE __m256i k_sub_scale(const k_header8 *header, int sub) {
    const __m256i spread = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                            2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    return _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(header->scales_by_half, _mm256_set1_epi32(sub)), spread);
}

/// Sub-block `sub`'s integer products with one token, as float lanes (before its activation scale).
STRATA_AVX2_INLINE __m256 k_sub_lanes8(uint32_t format, const uint8_t *block, const k_header8 *header, int sub, const int8_t *values) {
    __m256i scale = k_sub_scale(header, sub);
    __m256i pairs = _mm256_maddubs_epi16(k_codes8(format, block, sub), _mm256_loadu_si256((const __m256i *)values));
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, scale));
}

/// One step of a group's chain over its sub-blocks: the first sub-block starts it with a
/// multiply, the others multiply-add, as the portable level does (the bits depend on it).
STRATA_AVX2_INLINE __m256 k_chain_step(int sub, __m256 lanes, __m256 activation_scale, __m256 group_sums) {
    return sub == 0 ? _mm256_mul_ps(lanes, activation_scale) : _mm256_fmadd_ps(lanes, activation_scale, group_sums);
}

/// Adds a group's sums to a token's accumulator: the same operations as the tiled loop below.
STRATA_AVX2_INLINE __m256 k_accumulate8(const k_header8 *header, __m256 group_sums, const int16_t *half_sums,
                                        const float *block_scales, __m256 accumulator) {
    accumulator = _mm256_fmadd_ps(group_sums, _mm256_set1_ps(header->d), accumulator);
    __m256i correction = _mm256_madd_epi16(header->corrections, _mm256_loadu_si256((const __m256i *)half_sums));
    __m256 scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(correction), _mm256_loadu_ps(block_scales));
    return _mm256_fmadd_ps(scaled, _mm256_set1_ps(header->correction_factor), accumulator);
}

/// One token against a K row, two groups at a time: each group's eight sub-block sums form a
/// chain of dependent multiply-adds, and interleaving two groups' chains hides their latency.
/// Per group the float operations and their order are those of `k_row8`, so the bits are too.
STRATA_AVX2_INLINE void k_row8_single(const uint32_t format, const uint8_t *row, size_t groups,
                                      strata_activations8 activations, float *output) {
    const size_t bytes = group_bytes(format);
    __m256 accumulator = _mm256_setzero_ps();
    size_t group = 0;
    for (; group + 2 <= groups; group += 2) {
        const uint8_t *first_block = row + group * bytes, *second_block = first_block + bytes;
        k_header8 first = k_header(format, first_block), second = k_header(format, second_block);
        const int8_t *first_values = activations.values + group * 256, *second_values = first_values + 256;
        const float *first_scales = activations.scales + group * 8, *second_scales = first_scales + 8;
        __m256 first_sums = _mm256_setzero_ps(), second_sums = _mm256_setzero_ps();
#pragma clang loop unroll(full)
        for (int sub = 0; sub < 8; sub++) {
            __m256 first_lanes = k_sub_lanes8(format, first_block, &first, sub, first_values + 32 * sub);
            __m256 second_lanes = k_sub_lanes8(format, second_block, &second, sub, second_values + 32 * sub);
            __m256 first_scale = _mm256_broadcast_ss(first_scales + sub), second_scale = _mm256_broadcast_ss(second_scales + sub);
            first_sums = k_chain_step(sub, first_lanes, first_scale, first_sums);
            second_sums = k_chain_step(sub, second_lanes, second_scale, second_sums);
        }
        accumulator = k_accumulate8(&first, first_sums, activations.half_sums + group * 16, first_scales, accumulator);
        accumulator = k_accumulate8(&second, second_sums, activations.half_sums + (group + 1) * 16, second_scales, accumulator);
    }
    if (group < groups) {
        const uint8_t *block = row + group * bytes;
        k_header8 header = k_header(format, block);
        __m256 sums = _mm256_setzero_ps();
#pragma clang loop unroll(full)
        for (int sub = 0; sub < 8; sub++) {
            __m256 lanes = k_sub_lanes8(format, block, &header, sub, activations.values + group * 256 + 32 * sub);
            __m256 scale = _mm256_broadcast_ss(activations.scales + group * 8 + sub);
            sums = k_chain_step(sub, lanes, scale, sums);
        }
        accumulator = k_accumulate8(&header, sums, activations.half_sums + group * 16, activations.scales + group * 8, accumulator);
    }
    output[0] = reduce_eight_lanes(accumulator);
}

STRATA_AVX2_INLINE void k_row8(const uint32_t format, const int tile, const uint8_t *row, size_t groups,
                               strata_activations8 activations, size_t columns, float *output, size_t output_stride) {
    if (tile == 1) {
        k_row8_single(format, row, groups, activations, output);
        return;
    }
    const size_t bytes = group_bytes(format);
    __m256 accumulators[TOKEN_TILE];
    for (int token = 0; token < tile; token++) accumulators[token] = _mm256_setzero_ps();
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = row + group * bytes;
        const k_header8 header = k_header(format, block);
        __m256 group_sums[TOKEN_TILE];
#pragma clang loop unroll(full)
        for (int sub = 0; sub < 8; sub++) {
            __m256i codes = k_codes8(format, block, sub);
            __m256i scale = k_sub_scale(&header, sub);
            for (int token = 0; token < tile; token++) {
                const int8_t *values = activations.values + token * columns + group * 256 + sub * 32;
                __m256i pairs = _mm256_maddubs_epi16(codes, _mm256_loadu_si256((const __m256i *)values));
                __m256 lanes = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, scale));
                __m256 activation_scale = _mm256_broadcast_ss(activations.scales + token * columns / 32 + group * 8 + sub);
                group_sums[token] = k_chain_step(sub, lanes, activation_scale, group_sums[token]);
            }
        }
        for (int token = 0; token < tile; token++) {
            accumulators[token] = k_accumulate8(&header, group_sums[token], activations.half_sums + token * columns / 16 + group * 16,
                                                activations.scales + token * columns / 32 + group * 8, accumulators[token]);
        }
    }
    for (int token = 0; token < tile; token++) output[token * output_stride] = reduce_eight_lanes(accumulators[token]);
}

/// One 32-element block against `tile` tokens on chain `chain` (the block's index mod 2).
STRATA_AVX2_INLINE void add_block8(const uint32_t format, const int tile, const uint8_t *block, size_t group,
                                   strata_activations8 activations, size_t columns, int chain,
                                   __m256 accumulators[TOKEN_TILE][2], float offsets[TOKEN_TILE][2]) {
    float first, second;
    group_halves8(format, block, &first, &second);
    group_scales scales;
    decode_group_scales(format, block, first, second, &scales);
    __m256i codes = block_codes8(format, block);
    // vpmaddubsw takes unsigned bytes first: Q8_0 gives it the codes' magnitudes and moves
    // their signs to the activations (|-128| is 128 as an unsigned byte, so it is exact too)
    const __m256i magnitudes = format == FORMAT_Q8_0 ? _mm256_sign_epi8(codes, codes) : codes;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int token = 0; token < tile; token++) {
        const size_t block_index = token * columns / 32 + group;
        __m256i values = _mm256_loadu_si256((const __m256i *)(activations.values + token * columns + group * 32));
        if (format == FORMAT_Q8_0) values = _mm256_sign_epi8(values, codes);
        __m256i lanes = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitudes, values), ones);
        accumulators[token][chain] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lanes), _mm256_set1_ps(scales.scale * activations.scales[block_index]),
                                                     accumulators[token][chain]);
        if (format_has_offset(format)) {
            offsets[token][chain] = fused_multiply_add(scales.offset[0], activations.sums[block_index], offsets[token][chain]);
        }
    }
}

STRATA_AVX2_INLINE void row_against_tokens8(const int tile, const uint32_t format, const uint8_t *row, size_t groups,
                                            strata_activations8 activations, size_t columns,
                                            float *output, size_t output_stride) {
    if (group_subblocks(format) == 8) {
        k_row8(format, tile, row, groups, activations, columns, output, output_stride);
        return;
    }
    const size_t bytes = group_bytes(format);
    __m256 accumulators[TOKEN_TILE][2];
    float offsets[TOKEN_TILE][2];
    for (int token = 0; token < tile; token++) {
        accumulators[token][0] = accumulators[token][1] = _mm256_setzero_ps();
        offsets[token][0] = offsets[token][1] = 0;
    }
    size_t group = 0;
    for (; group + 2 <= groups; group += 2) {
        add_block8(format, tile, row + group * bytes, group, activations, columns, 0, accumulators, offsets);
        add_block8(format, tile, row + (group + 1) * bytes, group + 1, activations, columns, 1, accumulators, offsets);
    }
    if (group < groups) add_block8(format, tile, row + group * bytes, group, activations, columns, 0, accumulators, offsets);
    for (int token = 0; token < tile; token++) {
        __m256 lanes = _mm256_add_ps(accumulators[token][0], accumulators[token][1]);
        output[token * output_stride] = reduce_eight_lanes(lanes) + (offsets[token][0] + offsets[token][1]);
    }
}

STRATA_AVX2
void strata_rows8_avx2(uint32_t format, size_t tile, const uint8_t *row, size_t groups,
                       strata_activations8 activations, size_t columns, float *output, size_t output_stride) {
    switch (format) {
#define STRATA_CASE(unused, name) \
    case name: STRATA_WITH_CONSTANT_TILE(tile, row_against_tokens8, name, row, groups, activations, columns, output, output_stride) break;
    STRATA_EACH_FORMAT(STRATA_CASE, _)
#undef STRATA_CASE
    default: break;
    }
}

STRATA_AVX2
void strata_quantize8_avx2(const float *input, size_t count, strata_activations8 output) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i smallest = _mm256_set1_epi32(-127), largest = _mm256_set1_epi32(127);
    // vpackssdw/vpacksswb interleave 128-bit lanes; this puts the 32 bytes back in order
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t block = 0; block < count / 32; block++) {
        const float *source = input + 32 * block;
        __m256 magnitude = _mm256_setzero_ps();
        for (int part = 0; part < 4; part++) magnitude = _mm256_max_ps(magnitude, _mm256_andnot_ps(sign, _mm256_loadu_ps(source + 8 * part)));
        float scale = quantization_scale(horizontal_max(magnitude), 127.0f);
        __m256 inverse = _mm256_set1_ps(scale != 0.0f ? 1.0f / scale : 0.0f);
        __m256i codes[4];
        for (int part = 0; part < 4; part++) {
            __m256i code = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(source + 8 * part), inverse));
            codes[part] = _mm256_min_epi32(_mm256_max_epi32(code, smallest), largest);
        }
        __m256i words = _mm256_packs_epi32(codes[0], codes[1]);
        __m256i more_words = _mm256_packs_epi32(codes[2], codes[3]);
        __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(words, more_words), order);
        _mm256_storeu_si256((__m256i *)(output.values + 32 * block), bytes);
        // both halves' sums at once: hadd pairs lanes up within each 128-bit half
        __m256i sums = _mm256_hadd_epi32(_mm256_add_epi32(codes[0], codes[1]), _mm256_add_epi32(codes[2], codes[3]));
        sums = _mm256_hadd_epi32(sums, sums);
        __m128i totals = _mm_add_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
        int32_t first_total = _mm_cvtsi128_si32(totals), second_total = _mm_extract_epi32(totals, 1);
        output.scales[block] = scale;
        output.sums[block] = scale * (float)(first_total + second_total);
        output.half_sums[2 * block] = (int16_t)first_total;
        output.half_sums[2 * block + 1] = (int16_t)second_total;
    }
}
#endif
