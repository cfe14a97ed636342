// AVX2 GEMV over weight tables, one output row per dot product, rows spread over OpenMP threads.
//
// f16: fp32 activations; 8 weights widened with F16C per FMA.
// q8 : int8 activations (ActivationsQ8, quantized once per call); per block of 32, |w| * (x * sign w)
//      with maddubs (pairs <= 2 * 127 * 127 < 2^15), widened to int32 and scaled by d_w * d_x in fp32.
// q4 : int8 activations; nibbles unpacked to 32 bytes (0..15, unsigned operand of maddubs), scaled by
//      d_w * d_x, plus the min term m_w * d_x * sum(q_x) of the block.
#include <immintrin.h>

#include "core/stage_profile.h"
#include "packed/weight_table_kernel.h"

namespace pbs2p {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
namespace {

constexpr int64_t kParallelWeights = 1 << 16;  // smaller tables run on one thread
constexpr int64_t kRowChunk = 16;              // rows per scheduling unit

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline __m256 widen8(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

void avx2_f16_gemv(const WeightTable& t, const float* x, float* y) {
    const int64_t cols = t.cols, wide = cols / 32 * 32, narrow = cols / 8 * 8;
#pragma omp parallel for schedule(static, kRowChunk) if (t.rows * cols >= kParallelWeights)
    for (int64_t r = 0; r < t.rows; ++r) {
        const auto* w = reinterpret_cast<const uint16_t*>(t.row(r));
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t j = 0;
        for (; j < wide; j += 32) {
            a0 = _mm256_fmadd_ps(widen8(w + j), _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(widen8(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
            a2 = _mm256_fmadd_ps(widen8(w + j + 16), _mm256_loadu_ps(x + j + 16), a2);
            a3 = _mm256_fmadd_ps(widen8(w + j + 24), _mm256_loadu_ps(x + j + 24), a3);
        }
        for (; j < narrow; j += 8) a0 = _mm256_fmadd_ps(widen8(w + j), _mm256_loadu_ps(x + j), a0);
        float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; j < cols; ++j) s += _cvtsh_ss(w[j]) * x[j];
        y[r] = s;
    }
}

// Activations of the calling thread, quantized once per call (grown, never shrunk: no allocation per
// call once the largest width has been seen).
const ActivationsQ8& quantized(const float* x, int64_t cols) {
    const StageScope stage(Stage::act_quant);
    thread_local ActivationsQ8 xq;
    quantize_activations_q8(x, cols, xq);
    return xq;
}

inline __m256 block_products(__m256i w_abs_or_unsigned, __m256i x_signed, __m256 scale, __m256 acc) {
    const __m256i p16 = _mm256_maddubs_epi16(w_abs_or_unsigned, x_signed);
    const __m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), scale, acc);
}

void avx2_q8_gemv(const WeightTable& t, const float* x, float* y) {
    const ActivationsQ8& xq = quantized(x, t.cols);
    const int64_t blocks = static_cast<int64_t>(xq.scale.size());
#pragma omp parallel for schedule(static, kRowChunk) if (t.rows * t.cols >= kParallelWeights)
    for (int64_t r = 0; r < t.rows; ++r) {
        const auto* blk = reinterpret_cast<const BlockQ8*>(t.row(r));
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b = 0; b < blocks; ++b) {
            const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b].q));
            const __m256i a =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(xq.q.data() + b * kTableBlock));
            const __m256 d = _mm256_set1_ps(_cvtsh_ss(blk[b].scale_fp16) * xq.scale[static_cast<size_t>(b)]);
            acc = block_products(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w), d, acc);
        }
        y[r] = hsum(acc);
    }
}

void avx2_q4_gemv(const WeightTable& t, const float* x, float* y) {
    const ActivationsQ8& xq = quantized(x, t.cols);
    const int64_t blocks = static_cast<int64_t>(xq.scale.size());
    const __m128i nibble = _mm_set1_epi8(0x0f);
#pragma omp parallel for schedule(static, kRowChunk) if (t.rows * t.cols >= kParallelWeights)
    for (int64_t r = 0; r < t.rows; ++r) {
        const auto* blk = reinterpret_cast<const BlockQ4*>(t.row(r));
        __m256 acc = _mm256_setzero_ps();
        float min_term = 0.0f;
        for (int64_t b = 0; b < blocks; ++b) {
            const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[b].q));
            const __m256i w =
                _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), nibble), _mm_and_si128(raw, nibble));
            const __m256i a =
                _mm256_load_si256(reinterpret_cast<const __m256i*>(xq.q.data() + b * kTableBlock));
            const float dx = xq.scale[static_cast<size_t>(b)];
            acc = block_products(w, a, _mm256_set1_ps(_cvtsh_ss(blk[b].scale_fp16) * dx), acc);
            min_term += _cvtsh_ss(blk[b].min_fp16) * dx * static_cast<float>(xq.sum[static_cast<size_t>(b)]);
        }
        y[r] = hsum(acc) + min_term;
    }
}

}  // namespace

std::vector<TableKernelImpl> avx2_table_kernels() {
    return {{"avx2_f16", TableType::f16, "avx2+fma+f16c", "f32", avx2_f16_gemv},
            {"avx2_q8", TableType::q8, "avx2+fma+f16c", "q8", avx2_q8_gemv},
            {"avx2_q4", TableType::q4, "avx2+fma+f16c", "q8", avx2_q4_gemv}};
}

#else

std::vector<TableKernelImpl> avx2_table_kernels() {
    return {};
}

#endif

}  // namespace pbs2p
