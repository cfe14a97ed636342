// Consistency harness: every packed kernel in the build against the reference kernel, and the reference
// against a dequantized fp32 product, on awkward shapes and token counts.
//
// Tolerances, per output y_ti, with S = sum_j |w_ij| |x_tj|:
//   reference vs dequantized fp64 product: 1e-6 S
//   f32-activation kernels:                1e-5 S
//   q8-activation kernels:                 1e-5 S + sum_j |w_ij| * max_j |x_tj| / 254  (int8 rounding bound)
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/rng.h"
#include "packed/packed_kernels.h"
#include "packed/panel_gemm.h"
#include "packed/random_layout.h"

namespace pbs2p {
namespace {

struct Case {
    int64_t rows, cols;
    int n_keep;
    int64_t scale_group;
};

std::vector<float> random_activations(int64_t tokens, int64_t cols, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> x(static_cast<size_t>(tokens * cols));
    for (auto& v : x) v = static_cast<float>(rng.normal() * (rng.below(16) == 0 ? 8.0 : 1.0));
    return x;
}

// Exact product of the dequantized weights in fp64, and S and sum |w| per output.
struct DenseResult {
    std::vector<double> y, abs_sum, w_abs;
};

DenseResult dense_product(const Matrix& w, const std::vector<float>& x, int64_t tokens) {
    DenseResult r;
    for (int64_t t = 0; t < tokens; ++t)
        for (int64_t i = 0; i < w.rows; ++i) {
            double y = 0, s = 0, a = 0;
            for (int64_t j = 0; j < w.cols; ++j) {
                const double xv = x[static_cast<size_t>(t * w.cols + j)];
                y += w(i, j) * xv;
                s += std::fabs(w(i, j) * xv);
                a += std::fabs(w(i, j));
            }
            r.y.push_back(y);
            r.abs_sum.push_back(s);
            r.w_abs.push_back(a);
        }
    return r;
}

// Every kernel in the build against the fp64 product of the dequantized layout, for `tokens` random
// activation rows (gemv for one token, gemm otherwise); `what` names the case in failures.
void expect_kernels_match_dense(const BinaryLayout& layout, int64_t tokens, uint64_t seed,
                                const std::string& what) {
    const PackedMatrix w = make_packed_matrix(encode_layer(layout));
    const Matrix dense = dequantize(layout);
    const int64_t rows = layout.rows, cols = layout.cols;
    const std::vector<float> x = random_activations(tokens, cols, seed);
    const DenseResult oracle = dense_product(dense, x, tokens);
    std::vector<float> x_max(static_cast<size_t>(tokens), 0.0f);
    for (int64_t t = 0; t < tokens; ++t)
        for (int64_t j = 0; j < cols; ++j)
            x_max[static_cast<size_t>(t)] =
                std::max(x_max[static_cast<size_t>(t)], std::fabs(x[static_cast<size_t>(t * cols + j)]));
    for (const PackedKernel& k : packed_kernels()) {
        std::vector<float> y(static_cast<size_t>(tokens * rows), std::nanf(""));
        if (tokens == 1)
            k.gemv(w, x.data(), y.data());
        else
            k.gemm(w, x.data(), tokens, y.data());
        const bool reference = std::string(k.name) == "reference";
        const bool q8 = std::string(k.activations) == "q8";
        for (int64_t t = 0; t < tokens; ++t)
            for (int64_t i = 0; i < rows; ++i) {
                const auto at = static_cast<size_t>(t * rows + i);
                double tol = (reference ? 1e-6 : 1e-5) * oracle.abs_sum[at] + 1e-30;
                if (q8) tol += oracle.w_abs[at] * x_max[static_cast<size_t>(t)] / 254.0;
                ASSERT_NEAR(y[at], oracle.y[at], tol)
                    << k.name << " " << what << " tokens " << tokens << " at token " << t << " row " << i;
            }
    }
}

TEST(PackedKernels, TableListsReferenceFirst) {
    ASSERT_FALSE(packed_kernels().empty());
    EXPECT_STREQ(packed_kernels().front().name, "reference");
    EXPECT_THROW(packed_kernel("no_such_kernel"), Error);
    EXPECT_STREQ(default_packed_kernel().activations, "f32");
}

TEST(PackedKernels, AllKernelsMatchReferenceOnAwkwardShapes) {
    const Case cases[] = {{1, 8, 4, 8},       {3, 24, 5, 24},    {7, 136, 6, 8},     {127, 264, 4, 264},
                          {129, 136, 5, 136}, {33, 520, 6, 520}, {64, 1024, 4, 512}, {31, 2048, 6, 2048}};
    const int64_t token_counts[] = {1, 2, 3, 7, 17, 64, 129};
    uint64_t seed = 100;
    for (const Case& c : cases) {
        const BinaryLayout layout = random_layout(c.rows, c.cols, c.n_keep, 8, c.scale_group, seed++);
        for (int64_t tokens : token_counts) {
            if (c.cols >= 1024 && tokens > 17) continue;  // keep the fp64 oracle fast
            expect_kernels_match_dense(
                layout, tokens, seed++,
                fmt::format("{}x{} {}:8 sg {}", c.rows, c.cols, c.n_keep, c.scale_group));
            if (::testing::Test::HasFatalFailure()) return;
        }
    }
}

// Codebook codes (variable N per group, alpha only) through every kernel against the dequantized product.
TEST(PackedKernels, CodebookCodesMatchDequantizedProduct) {
    struct CodeCase {
        const char* code;
        int64_t rows, cols, scale_group;
    };
    const CodeCase cases[] = {
        {"tern11", 1, 8, 8}, {"tern13", 7, 136, 8}, {"tern11", 129, 264, 264}, {"tern13", 33, 520, 104}};
    uint64_t seed = 300;
    for (const CodeCase& c : cases) {
        const BinaryLayout layout = random_code_layout(c.rows, c.cols, c.code, c.scale_group, seed++);
        for (int64_t tokens : {1, 3, 17}) {
            expect_kernels_match_dense(layout, tokens, seed++,
                                       fmt::format("{} {}x{} sg {}", c.code, c.rows, c.cols, c.scale_group));
            if (::testing::Test::HasFatalFailure()) return;
        }
    }
}

TEST(PackedKernels, ManyRowPanelsMatchReference) {
    const int64_t rows = 1100, cols = 2048;
    const PanelBytesScope small_panels(1 << 20);  // 128 rows per panel
    const PackedMatrix w = make_packed_matrix(random_packed_layer(rows, cols, 5, cols, 11));
    for (int64_t tokens : {7, 9}) {
        const std::vector<float> x = random_activations(tokens, cols, 12);
        std::vector<float> expect(static_cast<size_t>(tokens * rows));
        reference_gemm(w, x.data(), tokens, expect.data());
        for (const PackedKernel& k : packed_kernels()) {
            if (std::string(k.activations) != "f32") continue;
            std::vector<float> y(expect.size(), std::nanf(""));
            k.gemm(w, x.data(), tokens, y.data());
            for (size_t at = 0; at < y.size(); ++at)
                ASSERT_NEAR(y[at], expect[at], 1e-4 * (std::fabs(expect[at]) + 1.0))
                    << k.name << " tokens " << tokens << " at " << at;
        }
    }
}

TEST(PackedKernels, RandomPackedLayerIsValidAndRoundTrips) {
    for (int n_keep : {1, 4, 5, 6, 8}) {
        const PackedLayer layer = random_packed_layer(33, 264, n_keep, 88, 5);
        EXPECT_NO_THROW(validate_layer(layer, "random"));
        const PackedLayer again = encode_layer(decode_layer(layer));
        EXPECT_EQ(again.codes, layer.codes) << n_keep;
    }
}

TEST(PackedKernels, GemvEqualsSingleTokenGemm) {
    const BinaryLayout layout = random_layout(70, 264, 5, 8, 264, 7);
    const PackedMatrix w = make_packed_matrix(encode_layer(layout));
    const std::vector<float> x = random_activations(1, 264, 8);
    for (const PackedKernel& k : packed_kernels()) {
        std::vector<float> a(70), b(70);
        k.gemv(w, x.data(), a.data());
        k.gemm(w, x.data(), 1, b.data());
        EXPECT_EQ(a, b) << k.name;
    }
}

}  // namespace
}  // namespace pbs2p
