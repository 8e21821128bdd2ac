// The AVX2 kernel for interleaved Q4_1 and Q5_0 rows and 16-bit activations: the portable
// kernel's operations (Octets16Portable.c), eight rows per vector.
#if defined(__x86_64__)
#include "VectorSupport.h"
#include "Octets8.h"

#pragma clang fp contract(off)

/// Blocks ahead whose weights are requested from memory.
enum { PREFETCH_BLOCKS = 8 };

/// Q5_0's fifth bits (value 16) for the nibble vector `vector` = 2u + (high nibbles) of a block:
/// bit `vector` of each byte of the fifth-bit area, moved to bit 4 (16-bit shifts; the mask
/// drops what crossed bytes).
STRATA_AVX2_INLINE __m256i fifth_bits(__m256i area, const int vector) {
    const __m256i bit_four = _mm256_set1_epi8(0x10);
    if (vector < 4) return _mm256_and_si256(_mm256_slli_epi16(area, 4 - vector), bit_four);
    if (vector == 4) return _mm256_and_si256(area, bit_four);
    return _mm256_and_si256(_mm256_srli_epi16(area, vector - 4), bit_four);
}

STRATA_AVX2_INLINE void octet16_tile(const int tile, const uint32_t format, const uint8_t *octet, size_t blocks,
                                     const strata_activation_block16 *activations, float *output, size_t output_stride) {
    const size_t bytes = octet16_block_bytes(format), codes = octet16_codes(format);
    const __m256i four_bits = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    __m256 accumulators[TOKEN_TILE], offsets[TOKEN_TILE];
    for (int token = 0; token < tile; token++) accumulators[token] = offsets[token] = _mm256_setzero_ps();
    for (size_t block = 0; block < blocks; block++) {
        const uint8_t *packed = octet + block * bytes;
        const uint8_t *ahead = packed + PREFETCH_BLOCKS * bytes;
        _mm_prefetch((const char *)ahead, _MM_HINT_T0);
        _mm_prefetch((const char *)ahead + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)ahead + 128, _MM_HINT_T0);
        __m256i sums[TOKEN_TILE];
#pragma clang loop unroll(full)
        for (int unit = 0; unit < 4; unit++) {
            const __m256i nibbles = _mm256_loadu_si256((const __m256i *)(packed + codes + 32 * unit));
            __m256i low = _mm256_and_si256(nibbles, four_bits);
            __m256i high = _mm256_and_si256(_mm256_srli_epi16(nibbles, 4), four_bits);
            if (format == FORMAT_Q5_0) {
                const __m256i area = _mm256_loadu_si256((const __m256i *)(packed + OCTET_Q50_FIFTH_BITS));
                low = _mm256_or_si256(low, fifth_bits(area, 2 * unit));
                high = _mm256_or_si256(high, fifth_bits(area, 2 * unit + 1));
            }
            // pairs 4u, 4u + 1 (low nibbles), 4u + 2, 4u + 3 (high nibbles); lane r = row r
            const __m256i words[4] = {_mm256_unpacklo_epi8(low, zero), _mm256_unpackhi_epi8(low, zero),
                                      _mm256_unpacklo_epi8(high, zero), _mm256_unpackhi_epi8(high, zero)};
            for (int token = 0; token < tile; token++) {
                const int16_t *values = activations[token * blocks + block].values + 8 * unit;
#pragma clang loop unroll(full)
                for (int pair = 0; pair < 4; pair++) {
                    const __m256i both = _mm256_set1_epi32((int)load_u32((const uint8_t *)(values + 2 * pair)));
                    const __m256i product = _mm256_madd_epi16(words[pair], both);
                    sums[token] = unit == 0 && pair == 0 ? product : _mm256_add_epi32(sums[token], product);
                }
            }
        }
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(packed + OCTET16_D)));
        const __m256 m = format == FORMAT_Q5_0 ? _mm256_mul_ps(d, _mm256_set1_ps(-16.0f))
                                               : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(packed + OCTET_Q41_M)));
        for (int token = 0; token < tile; token++) {
            const strata_activation_block16 *input = activations + token * blocks + block;
            const __m256 factor = _mm256_mul_ps(d, _mm256_set1_ps(input->scale));
            accumulators[token] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[token]), factor, accumulators[token]);
            offsets[token] = _mm256_fmadd_ps(m, _mm256_set1_ps(input->sum), offsets[token]);
        }
    }
    for (int token = 0; token < tile; token++) {
        _mm256_storeu_ps(output + token * output_stride, _mm256_add_ps(accumulators[token], offsets[token]));
    }
}

STRATA_AVX2
void strata_octets16_avx2(uint32_t format, size_t tile, const uint8_t *octet, size_t blocks,
                          const strata_activation_block16 *activations, float *output, size_t output_stride) {
    if (format == FORMAT_Q5_0) {
        STRATA_WITH_CONSTANT_TILE(tile, octet16_tile, FORMAT_Q5_0, octet, blocks, activations, output, output_stride)
    } else {
        STRATA_WITH_CONSTANT_TILE(tile, octet16_tile, FORMAT_Q4_1, octet, blocks, activations, output, output_stride)
    }
}
#endif
