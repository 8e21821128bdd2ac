// AVX2 kernels for interleaved rows (Octets8.h): the portable kernel's operations, eight
// rows per vector. Chunk products add up as int16 before vpmaddwd: a lane is at most
// 2 × 15 × 127 per Q4_K chunk (30,480 over a sub-block's eight) and 2 × 63 × 127 per Q6_K
// chunk (32,004 over two, so Q6_K converts to int32 every two chunks).
#if defined(__x86_64__)
#include "VectorSupport.h"
#include "Octets8.h"

#pragma clang fp contract(off)

/// How many groups ahead the kernels ask for weights. A group reads its bytes in two or three
/// interleaved streams (codes, Q6_K's high bits), which the hardware prefetcher alone followed
/// poorly: a single token's Q6_K product over a matrix in memory took 1.55 ms without this and
/// 0.50 ms with it (8960 × 1536, one thread), Q4_K's ~7% less.
enum { PREFETCH_GROUPS = 2 };

/// Asks for the `bytes` at `group` (the layout's group size) to be brought into cache. Past the
/// end of a matrix this asks for nothing useful but is harmless: prefetches never fault.
STRATA_AVX2_INLINE void prefetch_group(const uint8_t *group, size_t bytes) {
    for (size_t line = 0; line < bytes; line += 64) _mm_prefetch((const char *)group + line, _MM_HINT_T0);
}

/// The four activations of chunk `chunk` of a sub-block, in every 32-bit lane.
STRATA_AVX2_INLINE __m256i chunk_values(const int8_t *values, int chunk) {
    return _mm256_set1_epi32((int)load_u32((const uint8_t *)values + 4 * chunk));
}

/// The nibbles of unit `unit` of a code area: the high ones when `high`, else the low ones.
STRATA_AVX2_INLINE __m256i unit_nibbles(const uint8_t *codes, int unit, int high) {
    __m256i packed = _mm256_loadu_si256((const __m256i *)(codes + 32 * unit));
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    return high ? _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles) : _mm256_and_si256(packed, low_nibbles);
}

/// Eight bytes from `source` (one per row) in the low half of a vector.
STRATA_AVX2_INLINE __m128i row_bytes(const uint8_t *source) { return _mm_loadl_epi64((const __m128i *)source); }

/// Each row's signed byte scale (`bytes`, one per row) in both int16 halves of its lane.
STRATA_AVX2_INLINE __m256i row_scales16(__m128i bytes) { return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(bytes, bytes)); }

/// Sub-block `sub`'s codes for chunk `chunk` (one byte per code, 0...15).
STRATA_AVX2_INLINE __m256i q4k_chunk_codes(const uint8_t *block, int sub, int chunk) {
    return unit_nibbles(block + OCTET_Q4K_CODES, q4k_first_unit(sub) + chunk, sub & 1);
}

/// Sub-block `sub`'s codes for chunks `2 pair` and `2 pair + 1` (one byte per code, 0...63).
STRATA_AVX2_INLINE void q6k_pair_codes(const uint8_t *block, int sub, int pair, __m256i codes[2]) {
    const uint8_t *units = block + OCTET_Q6K_CODES;
    const __m256i six_bits = _mm256_set1_epi8(0x3F), four_bits = _mm256_set1_epi8(0x0F), top_bits = _mm256_set1_epi8(0x30);
    for (int index = 0; index < 2; index++) {
        const int chunk = 2 * pair + index;
        const __m256i whole = _mm256_loadu_si256((const __m256i *)(units + 32 * q6k_six_bit_unit(sub, chunk)));
        if (sub % 4 < 2) {
            codes[index] = _mm256_and_si256(whole, six_bits);
            continue;
        }
        // bits 6-7 to bits 4-5 (16-bit shifts; the mask drops what crossed bytes)
        const __m256i top = _mm256_and_si256(_mm256_srli_epi16(whole, 2), top_bits);
        __m256i low = _mm256_loadu_si256((const __m256i *)(units + 32 * q6k_low_bits_unit(sub, chunk)));
        if (sub % 2) low = _mm256_srli_epi16(low, 4);
        codes[index] = _mm256_or_si256(_mm256_and_si256(low, four_bits), top);
    }
}

/// One group's sub-block `sub` for `tile` tokens, adding its S × a_s into `group_sums` (see
/// Octets8Portable.c); the codes come from `decoded` (64 chunks of 32 bytes, as `q6k_pair_codes`
/// makes them) when it is not null, else straight from `block`.
STRATA_AVX2_INLINE void q6k_sub_block(const int tile, const uint8_t *block, const uint8_t *decoded, int sub, size_t group,
                                      strata_activations8 activations, size_t columns, __m256 *group_sums) {
    // per row lane: its two sixteenths' scales as int16 (for the code offset), then each
    // sixteenth's scale in both halves of the lane (for the products)
    const __m256i offset_scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(block + OCTET_Q6K_SCALES + 16 * sub)));
    const __m256i sixteenth_scales[2] = {
        _mm256_shuffle_epi8(offset_scales, _mm256_setr_epi8(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13,
                                                            0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13)),
        _mm256_shuffle_epi8(offset_scales, _mm256_setr_epi8(2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15,
                                                            2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15)),
    };
    __m256i dots[TOKEN_TILE];
#pragma clang loop unroll(full)
    for (int pair = 0; pair < 4; pair++) {
        __m256i codes[2];
        if (decoded) {
            codes[0] = _mm256_load_si256((const __m256i *)(decoded + 32 * (8 * sub + 2 * pair)));
            codes[1] = _mm256_load_si256((const __m256i *)(decoded + 32 * (8 * sub + 2 * pair + 1)));
        } else {
            q6k_pair_codes(block, sub, pair, codes);
        }
        for (int token = 0; token < tile; token++) {
            const int8_t *values = activations.values + token * columns + group * 256 + sub * 32;
            __m256i products = _mm256_add_epi16(_mm256_maddubs_epi16(codes[0], chunk_values(values, 2 * pair)),
                                                _mm256_maddubs_epi16(codes[1], chunk_values(values, 2 * pair + 1)));
            __m256i lanes = _mm256_madd_epi16(products, sixteenth_scales[pair / 2]);
            dots[token] = pair == 0 ? lanes : _mm256_add_epi32(dots[token], lanes);
        }
    }
    for (int token = 0; token < tile; token++) {
        const int16_t *half_sums = activations.half_sums + token * columns / 16 + group * 16 + 2 * sub;
        __m256i offsets = _mm256_madd_epi16(offset_scales, _mm256_set1_epi32((int)load_u32((const uint8_t *)half_sums)));
        __m256 lanes = _mm256_cvtepi32_ps(_mm256_sub_epi32(dots[token], _mm256_slli_epi32(offsets, 5)));
        __m256 activation_scale = _mm256_broadcast_ss(activations.scales + token * columns / 32 + group * 8 + sub);
        group_sums[token] = sub == 0 ? _mm256_mul_ps(lanes, activation_scale)
                                     : _mm256_fmadd_ps(lanes, activation_scale, group_sums[token]);
    }
}

/// `accumulator` after one Q6_K group: fma(G, d, ·).
STRATA_AVX2_INLINE __m256 q6k_group_end(const uint8_t *block, __m256 group_sum, __m256 accumulator) {
    return _mm256_fmadd_ps(group_sum, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(block + OCTET_Q6K_D))), accumulator);
}

STRATA_AVX2_INLINE void q6k_octet_tile(const int tile, const uint8_t *octet, size_t groups,
                                       strata_activations8 activations, size_t columns, float *output, size_t output_stride) {
    __m256 accumulators[TOKEN_TILE];
    for (int token = 0; token < tile; token++) accumulators[token] = _mm256_setzero_ps();
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = octet + group * OCTET_Q6K_GROUP_BYTES;
        prefetch_group(block + PREFETCH_GROUPS * OCTET_Q6K_GROUP_BYTES, OCTET_Q6K_GROUP_BYTES);
        __m256 group_sums[TOKEN_TILE];
#pragma clang loop unroll(full)
        for (int sub = 0; sub < 8; sub++) q6k_sub_block(tile, block, NULL, sub, group, activations, columns, group_sums);
        for (int token = 0; token < tile; token++) accumulators[token] = q6k_group_end(block, group_sums[token], accumulators[token]);
    }
    for (int token = 0; token < tile; token++) _mm256_storeu_ps(output + token * output_stride, accumulators[token]);
}

/// `tile` tokens' pass over one group whose codes `decoded` holds, continuing the rows'
/// accumulators in `accumulators` (eight floats a token).
STRATA_AVX2_INLINE void q6k_decoded_tile(const int tile, const uint8_t *block, const uint8_t *decoded, size_t group,
                                         strata_activations8 activations, size_t columns, float *accumulators) {
    __m256 group_sums[TOKEN_TILE];
#pragma clang loop unroll(full)
    for (int sub = 0; sub < 8; sub++) q6k_sub_block(tile, block, decoded, sub, group, activations, columns, group_sums);
    for (int token = 0; token < tile; token++) {
        __m256 sum = q6k_group_end(block, group_sums[token], _mm256_loadu_ps(accumulators + 8 * token));
        _mm256_storeu_ps(accumulators + 8 * token, sum);
    }
}

/// One group's sub-block `sub` for `tile` tokens, adding into `group_sums` and `corrections`
/// (see Octets8Portable.c); the codes come from `decoded` (64 chunks of 32 bytes) when it is not
/// null, else straight from `block`.
STRATA_AVX2_INLINE void q4k_sub_block(const int tile, const uint8_t *block, const uint8_t *decoded, int sub, size_t group,
                                      strata_activations8 activations, size_t columns, __m256 *group_sums, __m256 *corrections) {
    // six-bit scales: sign extension is zero extension
    const __m256i scales = row_scales16(row_bytes(block + OCTET_Q4K_SCALES + 8 * sub));
    __m256i products[TOKEN_TILE];
#pragma clang loop unroll(full)
    for (int chunk = 0; chunk < 8; chunk++) {
        __m256i codes = decoded ? _mm256_load_si256((const __m256i *)(decoded + 32 * (8 * sub + chunk)))
                                : q4k_chunk_codes(block, sub, chunk);
        for (int token = 0; token < tile; token++) {
            const int8_t *values = activations.values + token * columns + group * 256 + sub * 32;
            __m256i product = _mm256_maddubs_epi16(codes, chunk_values(values, chunk));
            products[token] = chunk == 0 ? product : _mm256_add_epi16(products[token], product);
        }
    }
    const __m256 minimums = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(row_bytes(block + OCTET_Q4K_MINIMUMS + 8 * sub)));
    for (int token = 0; token < tile; token++) {
        const size_t block_index = token * columns / 32 + group * 8 + sub;
        __m256 lanes = _mm256_cvtepi32_ps(_mm256_madd_epi16(products[token], scales));
        __m256 activation_scale = _mm256_broadcast_ss(activations.scales + block_index);
        __m256 sum = _mm256_broadcast_ss(activations.sums + block_index);
        group_sums[token] = sub == 0 ? _mm256_mul_ps(lanes, activation_scale)
                                     : _mm256_fmadd_ps(lanes, activation_scale, group_sums[token]);
        corrections[token] = sub == 0 ? _mm256_mul_ps(minimums, sum) : _mm256_fmadd_ps(minimums, sum, corrections[token]);
    }
}

/// `accumulators` after one Q4_K group: fma(G, d, ·), then fma(C, -dmin, ·).
STRATA_AVX2_INLINE __m256 q4k_group_end(const uint8_t *block, __m256 group_sum, __m256 correction, __m256 accumulator) {
    const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(block + OCTET_Q4K_D)));
    const __m256 negative_dmin = _mm256_xor_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(block + OCTET_Q4K_DMIN))),
                                               _mm256_set1_ps(-0.0f));
    return _mm256_fmadd_ps(correction, negative_dmin, _mm256_fmadd_ps(group_sum, d, accumulator));
}

STRATA_AVX2_INLINE void q4k_octet_tile(const int tile, const uint8_t *octet, size_t groups,
                                   strata_activations8 activations, size_t columns, float *output, size_t output_stride) {
    __m256 accumulators[TOKEN_TILE];
    for (int token = 0; token < tile; token++) accumulators[token] = _mm256_setzero_ps();
    for (size_t group = 0; group < groups; group++) {
        const uint8_t *block = octet + group * OCTET_Q4K_GROUP_BYTES;
        prefetch_group(block + PREFETCH_GROUPS * OCTET_Q4K_GROUP_BYTES, OCTET_Q4K_GROUP_BYTES);
        __m256 group_sums[TOKEN_TILE], corrections[TOKEN_TILE];
#pragma clang loop unroll(full)
        for (int sub = 0; sub < 8; sub++) q4k_sub_block(tile, block, NULL, sub, group, activations, columns, group_sums, corrections);
        for (int token = 0; token < tile; token++)
            accumulators[token] = q4k_group_end(block, group_sums[token], corrections[token], accumulators[token]);
    }
    for (int token = 0; token < tile; token++) _mm256_storeu_ps(output + token * output_stride, accumulators[token]);
}

/// `q6k_decoded_tile` for Q4_K.
STRATA_AVX2_INLINE void q4k_decoded_tile(const int tile, const uint8_t *block, const uint8_t *decoded, size_t group,
                                         strata_activations8 activations, size_t columns, float *accumulators) {
    __m256 group_sums[TOKEN_TILE], corrections[TOKEN_TILE];
#pragma clang loop unroll(full)
    for (int sub = 0; sub < 8; sub++) q4k_sub_block(tile, block, decoded, sub, group, activations, columns, group_sums, corrections);
    for (int token = 0; token < tile; token++) {
        __m256 sum = q4k_group_end(block, group_sums[token], corrections[token], _mm256_loadu_ps(accumulators + 8 * token));
        _mm256_storeu_ps(accumulators + 8 * token, sum);
    }
}

STRATA_AVX2
void strata_octets8_avx2(uint32_t format, size_t tile, const uint8_t *octet, size_t groups, strata_activations8 activations,
                         size_t columns, float *output, size_t output_stride) {
    if (format == FORMAT_Q6_K) {
        STRATA_WITH_CONSTANT_TILE(tile, q6k_octet_tile, octet, groups, activations, columns, output, output_stride)
    } else {
        STRATA_WITH_CONSTANT_TILE(tile, q4k_octet_tile, octet, groups, activations, columns, output, output_stride)
    }
}

/// A group's codes, one byte each, as 64 chunks of 32 bytes (sub-block s, chunk c at 8s + c).
STRATA_AVX2_INLINE void decode_group(uint32_t format, const uint8_t *block, uint8_t *decoded) {
    for (int sub = 0; sub < 8; sub++) {
        for (int pair = 0; pair < 4; pair++) {
            __m256i codes[2];
            if (format == FORMAT_Q6_K) {
                q6k_pair_codes(block, sub, pair, codes);
            } else {
                codes[0] = q4k_chunk_codes(block, sub, 2 * pair);
                codes[1] = q4k_chunk_codes(block, sub, 2 * pair + 1);
            }
            _mm256_store_si256((__m256i *)(decoded + 32 * (8 * sub + 2 * pair)), codes[0]);
            _mm256_store_si256((__m256i *)(decoded + 32 * (8 * sub + 2 * pair + 1)), codes[1]);
        }
    }
}

/// The batch pass over one octet for one format (`strata_octets8_batch_avx2`). A function per
/// format: compiled as one function with both formats' tiles, it ran 15% slower.
#define STRATA_OCTET_BATCH(name, format, decoded_tile)                                                                  \
    STRATA_AVX2 static void name(const uint8_t *octet, size_t groups, strata_activations8 activations, size_t tokens,    \
                                 size_t columns, float *output, size_t output_stride) {                                  \
        const size_t bytes = octet_group_bytes(format);                                                                 \
        _Alignas(32) uint8_t decoded[64 * 32];                                                                          \
        _Alignas(32) float accumulators[OCTET_BATCH_TOKENS * OCTET_ROWS];                                               \
        for (size_t first = 0; first < tokens; first += OCTET_BATCH_TOKENS) {                                          \
            const size_t count = tokens - first < OCTET_BATCH_TOKENS ? tokens - first : OCTET_BATCH_TOKENS;            \
            const strata_activations8 batch = activations8_after(activations, first, columns);                          \
            memset(accumulators, 0, count * OCTET_ROWS * sizeof(float));                                                \
            for (size_t group = 0; group < groups; group++) {                                                           \
                const uint8_t *block = octet + group * bytes;                                                           \
                prefetch_group(block + PREFETCH_GROUPS * bytes, bytes);                                                 \
                decode_group(format, block, decoded);                                                                   \
                for (size_t token = 0; token < count; token += TOKEN_TILE) {                                            \
                    const size_t tile = count - token < TOKEN_TILE ? count - token : TOKEN_TILE;                        \
                    const strata_activations8 values = activations8_after(batch, token, columns);                       \
                    float *rows = accumulators + 8 * token;                                                             \
                    STRATA_WITH_CONSTANT_TILE(tile, decoded_tile, block, decoded, group, values, columns, rows)        \
                }                                                                                                       \
            }                                                                                                           \
            for (size_t token = 0; token < count; token++)                                                              \
                memcpy(output + (first + token) * output_stride, accumulators + 8 * token, 8 * sizeof(float));          \
        }                                                                                                               \
    }

STRATA_OCTET_BATCH(q4k_octet_batch, FORMAT_Q4_K, q4k_decoded_tile)
STRATA_OCTET_BATCH(q6k_octet_batch, FORMAT_Q6_K, q6k_decoded_tile)
#undef STRATA_OCTET_BATCH

STRATA_AVX2
void strata_octets8_batch_avx2(uint32_t format, const uint8_t *octet, size_t groups, strata_activations8 activations,
                               size_t tokens, size_t columns, float *output, size_t output_stride) {
    if (format == FORMAT_Q6_K) {
        q6k_octet_batch(octet, groups, activations, tokens, columns, output, output_stride);
    } else {
        q4k_octet_batch(octet, groups, activations, tokens, columns, output, output_stride);
    }
}
#endif
