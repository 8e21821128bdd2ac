// The AVX2 kernel for interleaved Q4_1 rows and 16-bit activations: the portable kernel's
// operations (Interleaved16.c), eight rows per vector.
#if defined(__x86_64__)
#include "AVX2Support.h"
#include "Interleaved.h"

#pragma clang fp contract(off)

/// Blocks ahead whose weights are requested from memory.
enum { PREFETCH_BLOCKS = 8 };

STRATA_AVX2_INLINE void q41_octet_tile(const int tile, const uint8_t *octet, size_t blocks,
                                       const strata_activation_block *activations, float *output, size_t output_stride) {
    const __m256i four_bits = _mm256_set1_epi8(0x0F), zero = _mm256_setzero_si256();
    __m256 accumulators[TOKEN_TILE], offsets[TOKEN_TILE];
    for (int token = 0; token < tile; token++) accumulators[token] = offsets[token] = _mm256_setzero_ps();
    for (size_t block = 0; block < blocks; block++) {
        const uint8_t *packed = octet + block * OCTET_Q41_BLOCK_BYTES;
        const uint8_t *ahead = packed + PREFETCH_BLOCKS * OCTET_Q41_BLOCK_BYTES;
        _mm_prefetch((const char *)ahead, _MM_HINT_T0);
        _mm_prefetch((const char *)ahead + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)ahead + 128, _MM_HINT_T0);
        __m256i sums[TOKEN_TILE];
#pragma clang loop unroll(full)
        for (int unit = 0; unit < 4; unit++) {
            const __m256i bytes = _mm256_loadu_si256((const __m256i *)(packed + OCTET_Q41_CODES + 32 * unit));
            const __m256i low = _mm256_and_si256(bytes, four_bits);
            const __m256i high = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), four_bits);
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
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(packed + OCTET_Q41_D)));
        const __m256 m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(packed + OCTET_Q41_M)));
        for (int token = 0; token < tile; token++) {
            const strata_activation_block *input = activations + token * blocks + block;
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
void strata_octet16_avx2(size_t tile, const uint8_t *octet, size_t blocks, const strata_activation_block *activations,
                         float *output, size_t output_stride) {
    switch (tile) {
    case 1: q41_octet_tile(1, octet, blocks, activations, output, output_stride); break;
    case 2: q41_octet_tile(2, octet, blocks, activations, output, output_stride); break;
    case 3: q41_octet_tile(3, octet, blocks, activations, output, output_stride); break;
    default: q41_octet_tile(4, octet, blocks, activations, output, output_stride); break;
    }
}
#endif
