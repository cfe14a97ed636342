// Bf16LinearKernel against the scalar bf16 reference (GEMV) and against fp64 products of the bf16 weights
// (GEMM through decoded panels), on awkward shapes.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "packed/bf16_linear.h"
#include "packed/panel_gemm.h"

namespace pbs2p {
namespace {

std::vector<float> random_floats(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = static_cast<float>(rng.normal());
    return v;
}

TEST(Bf16Linear, MatchesFp64ProductOfBf16Weights) {
    const PanelBytesScope small_panels(16 << 10);  // several panels on the larger shapes
    const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {3, 7}, {7, 8}, {5, 9}, {129, 264}, {64, 1030}};
    const int64_t token_counts[] = {1, 2, 9, 33};
    uint64_t seed = 1;
    for (const auto& [out, in] : shapes) {
        const std::vector<float> w32 = random_floats(out * in, seed++);
        const Bf16LinearKernel kernel = Bf16LinearKernel::from_f32(w32.data(), out, in);
        ASSERT_EQ(kernel.weight_bytes(), out * in * 2);
        for (int64_t tokens : token_counts) {
            const std::vector<float> x = random_floats(tokens * in, seed++);
            std::vector<float> y(static_cast<size_t>(tokens * out), std::nanf(""));
            kernel.forward(x.data(), tokens, y.data());
            for (int64_t t = 0; t < tokens; ++t) {
                std::vector<float> expect(static_cast<size_t>(out));
                bf16_gemv_reference(kernel.weights().data(), out, in, x.data() + t * in, expect.data());
                for (int64_t i = 0; i < out; ++i) {
                    double abs_sum = 0;
                    for (int64_t j = 0; j < in; ++j)
                        abs_sum += std::fabs(bf16_to_f32(kernel.weights()[static_cast<size_t>(i * in + j)]) *
                                             x[static_cast<size_t>(t * in + j)]);
                    ASSERT_NEAR(y[static_cast<size_t>(t * out + i)], expect[static_cast<size_t>(i)],
                                1e-5 * abs_sum + 1e-30)
                        << out << "x" << in << " tokens " << tokens << " token " << t << " row " << i;
                }
            }
        }
    }
}

TEST(Bf16Linear, RoundsToNearestBf16AndRejectsWrongSizes) {
    const float w[2] = {1.0f + 1.0f / 256.0f, -3.0f};  // 1 + 2^-8 is a tie: rounds to even (1.0)
    const Bf16LinearKernel k = Bf16LinearKernel::from_f32(w, 1, 2);
    EXPECT_EQ(bf16_to_f32(k.weights()[0]), 1.0f);
    EXPECT_EQ(bf16_to_f32(k.weights()[1]), -3.0f);
    EXPECT_THROW(Bf16LinearKernel(std::vector<uint16_t>(5), 2, 3), Error);
}

}  // namespace
}  // namespace pbs2p
