// The innermost loops of Strata's quantized matrix kernels, in C for per-function CPU targets
// (Swift has none). Only StrataKernels calls these; it wraps them in safe Swift.
#ifndef STRATA_KERNELS_C_H
#define STRATA_KERNELS_C_H

#include <stddef.h>
#include <stdint.h>

/// 32 activations quantized to int16: element i means `scale × values[i]`. Sixteen bits keep
/// the rounding error of an activation ~256 times below eight bits, which small models with
/// large activation outliers need to keep their next-token choices.
typedef struct {
    /// max |x| / 32767 over the block's group of floats (its 32, or the 256 of its super-block;
    /// 0 for an all-zero group).
    float scale;
    /// `scale × Σ values[i]`, the block's sum, for weight formats with an offset.
    float sum;
    int16_t values[32];
} strata_activation_block16;

/// Token activations quantized to int8 for the 8-bit kernels: element c of token t means
/// `scales[t × columns / 32 + c / 32] × values[t × columns + c]`, one scale per 32 elements
/// (`max |x| / 127`; one scale per 256 moved perplexity by 1.5% on Qwen2.5-Coder-1.5B). Half
/// the per-token arithmetic of 16-bit blocks: vpmaddubsw multiplies 32 byte pairs where
/// vpmaddwd takes 16 word pairs. Separate arrays, so a K-format group's eight scales and
/// sixteen half sums each load as one vector.
typedef struct {
    int8_t *values;
    float *scales;
    /// `scale × Σ values` per 32-element block, for the 32-element formats with an offset.
    float *sums;
    /// Σ values over each run of 16 elements: K formats apply their minimums and Q6_K its code
    /// offset of 32 with integer arithmetic on these.
    int16_t *half_sums;
} strata_activations8;

/// Which implementation runs; chosen once by the caller from `strata_detect_level`.
enum {
    STRATA_LEVEL_PORTABLE = 0,
    STRATA_LEVEL_AVX2 = 1,
    STRATA_LEVEL_AVX512 = 2,
};

/// The fastest level this CPU runs: AVX-512 F/BW/VL/VNNI with FMA and F16C, else AVX2 with
/// FMA and F16C, else portable C.
int strata_detect_level(void);

/// Quantizes `count` floats into `count / 32` blocks, sharing one scale across each run of
/// `group` floats (32 or 256; `count` is a multiple of `group`). K-format kernels need the
/// 256-element groups: with one scale per super-block their integer dot products add up over
/// all eight sub-blocks before a single conversion to float.
void strata_quantize16(int level, const float *input, size_t count, size_t group,
                       strata_activation_block16 *output);

/// 1 when the quantized products (`strata_rows16_multiply`, `strata_rows8_multiply`) take the GGML
/// type number `format`, else 0.
int strata_multiply_supports(uint32_t format);

/// `output[t × rows + r] = Σ_c W[r, c] × A[t, c]` for rows `row_begin..<row_end` and tokens
/// `0..<tokens`. `weights` points at row 0 (`row_bytes` per row, `columns` elements, a whole
/// number of the format's blocks); `activations` holds `tokens × columns / 32` blocks, token
/// after token. Each output element takes the same float operations whatever `tokens`, the
/// row range or the level, so results do not depend on batch size or thread split.
void strata_rows16_multiply(int level, uint32_t format, const void *weights, size_t row_bytes, size_t rows,
                            size_t row_begin, size_t row_end, size_t columns,
                            const strata_activation_block16 *activations, size_t tokens, float *output);

/// Quantizes `count` floats (a multiple of 32) to 8 bits into `output`'s arrays.
void strata_quantize8(int level, const float *input, size_t count, strata_activations8 output);

/// `strata_rows16_multiply` with 8-bit activations; the same formats, the same independence from
/// batch size, row range and level. AVX-512 machines run the AVX2 code (there is no separate
/// AVX-512 8-bit level).
void strata_rows8_multiply(int level, uint32_t format, const void *weights, size_t row_bytes, size_t rows,
                           size_t row_begin, size_t row_end, size_t columns,
                           strata_activations8 activations, size_t tokens, float *output);

/// Bytes `strata_octets8_repack` writes for a `rows × columns` matrix in `format`, or 0 when
/// the matrix has no interleaved form (only Q4_K and Q6_K with rows a multiple of 8 and
/// columns of 256 have one).
size_t strata_octets8_size(uint32_t format, size_t rows, size_t columns);

/// Repacks a matrix (`row_bytes` per row) into the interleaved layout `strata_octets8_multiply`
/// reads: eight rows at a time, so an 8-bit product handles one row per vector lane.
/// `output` holds `strata_octets8_size` bytes.
void strata_octets8_repack(uint32_t format, const void *weights, size_t row_bytes, size_t rows, size_t columns,
                           void *output);

/// `strata_rows8_multiply` over repacked weights, for row octets `octet_begin..<octet_end` (rows
/// 8 × octet_begin ..< 8 × octet_end): the same independence from batch size, row range and
/// level, with its own float operations (see Octets8Portable.c).
void strata_octets8_multiply(int level, uint32_t format, const void *packed, size_t rows, size_t octet_begin,
                             size_t octet_end, size_t columns, strata_activations8 activations, size_t tokens,
                             float *output);

/// Bytes `strata_octets16_repack` writes for a `rows × columns` matrix in `format`, or 0 when
/// the matrix has no interleaved form for 16-bit products (only Q4_1 and Q5_0 with rows a
/// multiple of 8 have one).
size_t strata_octets16_size(uint32_t format, size_t rows, size_t columns);

/// Repacks a Q4_1 or Q5_0 matrix into the layout `strata_octets16_multiply` reads
/// (Octets16Portable.c).
void strata_octets16_repack(uint32_t format, const void *weights, size_t row_bytes, size_t rows, size_t columns,
                            void *output);

/// `strata_rows16_multiply` over weights repacked by `strata_octets16_repack`, for row octets
/// `octet_begin..<octet_end`: the same independence from batch size, row range and level, with
/// its own float operations (see Octets16Portable.c).
void strata_octets16_multiply(int level, uint32_t format, const void *packed, size_t rows, size_t octet_begin,
                              size_t octet_end, size_t columns, const strata_activation_block16 *activations,
                              size_t tokens, float *output);

/// `gate[i] = gelu(gate[i]) × up[i]` for `i < count`, GELU with its tanh approximation
/// (computed as x / (1 + e^(-2u)), u = √(2/π)(x + 0.044715 x³)); the levels agree bit for bit.
void strata_gelu_tanh_glu(int level, float *gate, const float *up, size_t count);

/// Causal attention of one query head: `output[d] = Σ_p softmax_p(scale × query·key_p) × value_p[d]`
/// over cache positions `p < positions`, where key p starts at `keys + p × row_stride` (values
/// likewise) and each holds `dimensions` floats (a multiple of 8). `accumulator` is scratch of
/// `dimensions` floats. The result depends only on these arguments (not on other queries or
/// threads), and the levels agree bit for bit.
void strata_attention(int level, const float *query, const float *keys, const float *values, size_t row_stride,
                      size_t positions, size_t dimensions, float scale, float *accumulator, float *output);

/// `Σ a[i] × b[i]` for `i < count`, with the float operations of the Swift SIMD loop it
/// replaced (see FloatRows.c), so every level returns the same bits.
float strata_dot(int level, const float *a, const float *b, size_t count);

/// `count` elements of `format` (F32, F16, BF16 or a format `strata_multiply_supports`; whole
/// blocks) from `source` as float32 into `output`. Every level returns the same bits.
void strata_dequantize(int level, uint32_t format, const void *source, float *output, size_t count);

/// Tells the CPU the caller is in a spin-wait loop (x86 PAUSE): saves power and lets the
/// sibling hyper-thread run.
void strata_spin_pause(void);

#endif
