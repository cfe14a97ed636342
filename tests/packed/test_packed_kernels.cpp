// Consistency harness: every packed kernel in the build against the reference kernel, and the reference
// against a dequantized fp32 product, on awkward shapes and token counts.
//
// Tolerances, per output y_ti, with S = sum_j |w_ij| |x_tj|:
//   reference vs dequantized fp64 product: 1e-6 S
//   f32-activation kernels:                1e-5 S
//   q8-activation kernels:                 1e-5 S + sum_j |w_ij| * max_j |x_tj| / 254  (int8 rounding bound)
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <set>
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

// False (and says so once per row) for a kernel row this CPU lacks the instruction set of.
bool runs_here(const PackedKernel& k) {
    if (k.available) return true;
    static std::set<std::string> told;
    if (told.insert(k.name).second) std::printf("[ SKIPPED  ] kernel %s: this CPU lacks %s\n", k.name, k.isa);
    return false;
}

// Every kernel in the build against the fp64 product of the dequantized layout, for `tokens` random
// activation rows (gemv for one token, gemm otherwise); `what` names the case in failures.
void expect_kernels_match_dense(const BinaryLayout& layout, int64_t tokens, uint64_t seed,
                                const std::string& what) {
    const PackedLayer encoded = encode_layer(layout);
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
        if (!runs_here(k)) continue;
        const PackedMatrix w = make_packed_matrix(encoded, k.form);  // the layout this kernel reads
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

// The fastest row is the last one this CPU runs; a row it cannot run is refused by name and skipped.
TEST(PackedKernels, FastestRowIsTheLastAvailableOne) {
    const std::vector<PackedKernel>& table = packed_kernels();
    const PackedKernel* last = nullptr;
    for (const PackedKernel& k : table)
        if (k.available) last = &k;
    ASSERT_NE(last, nullptr);
    EXPECT_EQ(&fastest_packed_kernel(), last);
    EXPECT_TRUE(default_packed_kernel().available);
    std::string lacking;
    for (const PackedKernel& k : table) {
        if (k.available) {
            EXPECT_EQ(&packed_kernel(k.name), &k);
            continue;
        }
        EXPECT_THROW(packed_kernel(k.name), Error) << k.name;
        lacking += fmt::format(" {} ({})", k.name, k.isa);
    }
    if (!lacking.empty()) GTEST_SKIP() << "rows this CPU lacks the instruction set of:" << lacking;
}

TEST(PackedKernels, AllKernelsMatchReferenceOnAwkwardShapes) {
    const Case cases[] = {{1, 8, 4, 8},       {3, 24, 5, 24},    {7, 136, 6, 8},     {127, 264, 4, 264},
                          {129, 136, 5, 136}, {33, 520, 6, 520}, {64, 1024, 4, 512}, {31, 2048, 6, 2048},
                          {45, 640, 4, 64},   {97, 384, 3, 128}, {33, 768, 4, 256},  {70, 1280, 2, 256}};
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

// A codebook layout whose groups all keep at most `max_kept` weights (patterns drawn from the book).
BinaryLayout code_layout_with_at_most(int64_t rows, int64_t cols, const std::string& code,
                                      int64_t scale_group, int max_kept, uint64_t seed) {
    BinaryLayout l = random_code_layout(rows, cols, code, scale_group, seed);
    const PatternCodebook& book = pattern_codebook(code);
    Rng rng(seed + 1);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j0 = 0; j0 < cols; j0 += kPackedGroup) {
            const std::array<int8_t, kPatternWidth>* p = nullptr;
            int kept = kPatternWidth + 1;
            while (kept > max_kept) {
                p = &book.patterns[rng.below(static_cast<uint64_t>(book.size()))];
                kept = 0;
                for (int8_t v : *p) kept += v != 0;
            }
            for (int j = 0; j < kPackedGroup; ++j) {
                const auto idx = static_cast<size_t>(i * cols + j0 + j);
                l.keep[idx] = (*p)[j] != 0;
                l.sign[idx] = (*p)[j] > 0;
            }
        }
    return l;
}

struct CodeCase {
    const char* code;
    int64_t rows, cols, scale_group;
};

// Codebook layouts (groups keeping at most max_kept weights) through every kernel against the dequantized
// product, for 1, 3 and `many` tokens.
void expect_code_cases_match(const std::vector<CodeCase>& cases, int max_kept, int64_t many, uint64_t seed) {
    for (const CodeCase& c : cases) {
        const BinaryLayout layout =
            max_kept >= kPatternWidth
                ? random_code_layout(c.rows, c.cols, c.code, c.scale_group, seed)
                : code_layout_with_at_most(c.rows, c.cols, c.code, c.scale_group, max_kept, seed);
        ++seed;
        if (max_kept <= kSignCodeBits) ASSERT_TRUE(fits_lowbit_layout(encode_layer(layout)));
        for (int64_t tokens : {int64_t{1}, int64_t{3}, many}) {
            expect_kernels_match_dense(
                layout, tokens, seed++,
                fmt::format("{} (<= {} kept) {}x{} sg {}", c.code, max_kept, c.rows, c.cols, c.scale_group));
            if (::testing::Test::HasFatalFailure()) return;
        }
    }
}

// Codebook codes (variable N per group, alpha only) through every kernel against the dequantized product.
TEST(PackedKernels, CodebookCodesMatchDequantizedProduct) {
    expect_code_cases_match(
        {{"tern11", 1, 8, 8}, {"tern13", 7, 136, 8}, {"tern11", 129, 264, 264}, {"tern13", 33, 520, 104}},
        kPatternWidth, 17, 300);
}

// Codebook layers that fit the low-bit layout, through every kernel (the low-bit rows read it).
TEST(PackedKernels, LowbitCodebookLayersMatchDequantizedProduct) {
    expect_code_cases_match({{"tern11", 45, 640, 64},
                             {"tern11", 97, 264, 264},
                             {"tern13", 33, 768, 256},
                             {"tern13", 7, 384, 128}},
                            kSignCodeBits, 40, 500);
}

TEST(PackedKernels, SignCodeHoldsEveryGroupOfAtMostFourKept) {
    for (int keep = 0; keep < 256; ++keep)
        for (int sign = 0; sign < 256; ++sign) {
            if (sign & ~keep) continue;
            const auto k = static_cast<uint8_t>(keep), sg = static_cast<uint8_t>(sign);
            uint8_t code = 0xff;
            const bool fits = encode_sign_code(k, sg, code);
            if (std::popcount(k) <= kSignCodeBits) ASSERT_TRUE(fits) << keep << " " << sign;
            if (!fits) continue;
            ASSERT_LT(code, 16);
            ASSERT_EQ(decode_sign_code(k, code), sg) << keep << " " << sign;
        }
    // Five kept: fits exactly when the last kept of columns 0-3 and the first of columns 4-7 agree in sign.
    uint8_t code = 0;
    EXPECT_TRUE(encode_sign_code(0b00111011, 0b00011011, code));
    EXPECT_FALSE(encode_sign_code(0b00111011, 0b00010011, code));
}

TEST(PackedKernels, LowbitLayoutHoldsLayersOfAtMostFourKept) {
    struct FitCase {
        BinaryLayout layout;
        bool fits;
    };
    const FitCase cases[] = {
        {random_layout(33, 264, 4, 8, 88, 1), true},
        {random_layout(33, 264, 2, 4, 264, 2), true},
        {random_layout(33, 264, 5, 8, 264, 3), false},
        {random_code_layout(33, 264, "tern11", 264, 4), false},  // five-kept groups across the halves
        {code_layout_with_at_most(33, 264, "tern11", 264, 4, 5), true},
        {code_layout_with_at_most(33, 264, "tern13", 88, 4, 6), true},
    };
    for (const FitCase& c : cases) {
        const PackedLayer layer = encode_layer(c.layout);
        ASSERT_EQ(fits_lowbit_layout(layer), c.fits) << c.layout.code << " " << c.layout.n_keep;
        const PackedMatrix m = make_packed_matrix(layer, ComputeForm::lowbit);
        EXPECT_EQ(m.lowbit.empty(), !c.fits);
        EXPECT_EQ(m.compute.groups.empty(), c.fits);  // exactly one layout is built
        if (!c.fits) {
            EXPECT_THROW(make_lowbit_layout(layer), Error);
            continue;
        }
        // 12 bits per group of 8 (1.5 bits/weight) over the padded row blocks, plus the stored fp16 scales.
        const int64_t slots = m.lowbit.row_blocks * kRowBlock;
        EXPECT_EQ(static_cast<int64_t>(m.lowbit.groups.size() * sizeof(LowbitGroup)) * 8,
                  slots * c.layout.cols * 3 / 2);
        EXPECT_EQ(m.lowbit.bytes() - static_cast<int64_t>(m.lowbit.groups.size() * sizeof(LowbitGroup)),
                  slots * (c.layout.cols / c.layout.scale_group) * layer.desc.scale_bytes());
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
            if (std::string(k.activations) != "f32" || !runs_here(k)) continue;
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
    const BinaryLayout layout = random_layout(70, 264, 4, 8, 264, 7);
    const std::vector<float> x = random_activations(1, 264, 8);
    for (const PackedKernel& k : packed_kernels()) {
        if (!runs_here(k)) continue;
        const PackedMatrix w = make_packed_matrix(encode_layer(layout), k.form);
        std::vector<float> a(70), b(70);
        k.gemv(w, x.data(), a.data());
        k.gemm(w, x.data(), 1, b.data());
        EXPECT_EQ(a, b) << k.name;
    }
}

}  // namespace
}  // namespace pbs2p
