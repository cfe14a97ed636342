#include "packed/bf16_linear.h"

#include <immintrin.h>

#include <utility>

#include "core/error.h"
#include "core/half.h"
#include "packed/panel_gemm.h"

namespace pbs2p {

namespace {

constexpr int64_t kGemvRows = 4;            // rows sharing one pass over x
constexpr int64_t kPrefetchWeights = 1024;  // bf16 weights ahead of use

#if defined(__AVX2__) && defined(__FMA__)
inline __m256 load8_bf16(const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

// y[r0 .. r0+n) for n <= kGemvRows rows.
void dot_rows(const uint16_t* w, int64_t in, const float* x, int64_t r0, int64_t n, float* y) {
    int64_t j = 0;
    float acc[kGemvRows] = {};
#if defined(__AVX2__) && defined(__FMA__)
    if (n == kGemvRows) {
        __m256 a[kGemvRows] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                               _mm256_setzero_ps()};
        // 32 weights = one 64-byte line per row per step; lines fetched 2 KB ahead of use.
        for (; j + 32 <= in; j += 32) {
            for (int64_t r = 0; r < kGemvRows; ++r)
                _mm_prefetch(reinterpret_cast<const char*>(w + (r0 + r) * in + j + kPrefetchWeights),
                             _MM_HINT_T0);
            for (int64_t k = j; k < j + 32; k += 8) {
                const __m256 xv = _mm256_loadu_ps(x + k);
                for (int64_t r = 0; r < kGemvRows; ++r)
                    a[r] = _mm256_fmadd_ps(load8_bf16(w + (r0 + r) * in + k), xv, a[r]);
            }
        }
        for (; j + 8 <= in; j += 8) {
            const __m256 xv = _mm256_loadu_ps(x + j);
            for (int64_t r = 0; r < kGemvRows; ++r)
                a[r] = _mm256_fmadd_ps(load8_bf16(w + (r0 + r) * in + j), xv, a[r]);
        }
        for (int64_t r = 0; r < kGemvRows; ++r) acc[r] = hsum(a[r]);
    }
#endif
    for (int64_t r = 0; r < n; ++r) {
        const uint16_t* row = w + (r0 + r) * in;
        for (int64_t k = j; k < in; ++k) acc[r] += bf16_to_f32(row[k]) * x[k];
        y[r0 + r] = acc[r];
    }
}

}  // namespace

Bf16LinearKernel::Bf16LinearKernel(std::vector<uint16_t> weights, int64_t out, int64_t in)
    : weights_(std::move(weights)), out_(out), in_(in) {
    PBS2P_CHECK(out > 0 && in > 0 && static_cast<int64_t>(weights_.size()) == out * in,
                "bf16 linear: {} weights given for a [{} x {}] layer", weights_.size(), out, in);
}

Bf16LinearKernel Bf16LinearKernel::from_f32(const float* weights, int64_t out, int64_t in) {
    std::vector<uint16_t> w(static_cast<size_t>(out * in));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < out * in; ++i) w[static_cast<size_t>(i)] = f32_to_bf16(weights[i]);
    return Bf16LinearKernel(std::move(w), out, in);
}

void Bf16LinearKernel::forward(const float* x, int64_t tokens, float* y) const {
    const uint16_t* w = weights_.data();
    const int64_t in = in_;
    if (tokens == 1) {
#pragma omp parallel for schedule(dynamic, 16)
        for (int64_t r0 = 0; r0 < out_; r0 += kGemvRows)
            dot_rows(w, in, x, r0, std::min(kGemvRows, out_ - r0), y);
        return;
    }
    panel_gemm(out_, in, 1, x, tokens, y, [&](int64_t r0, int64_t r1, float* panel) {
#pragma omp parallel for schedule(static)
        for (int64_t r = r0; r < r1; ++r) bf16_to_f32_row(w + r * in, panel + (r - r0) * in, in);
    });
}

void bf16_gemv_reference(const uint16_t* w, int64_t out, int64_t in, const float* x, float* y) {
    for (int64_t r = 0; r < out; ++r) {
        double acc = 0.0;
        for (int64_t j = 0; j < in; ++j) acc += static_cast<double>(bf16_to_f32(w[r * in + j])) * x[j];
        y[r] = static_cast<float>(acc);
    }
}

}  // namespace pbs2p
