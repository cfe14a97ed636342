// The variable-N ternary codes: codebooks, the alpha fit, and the joint OBS group search against
// independent oracles (per-weight rounding where H is diagonal, exhaustive search over the codebook where the
// layer is one group).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "compress/code_search.h"
#include "compress/hessian.h"
#include "compress/layer_compressor.h"
#include "compress/pattern_codebook.h"
#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "synthetic_layer.h"

using namespace pbs2p;

namespace {

int nonzeros(const std::array<int8_t, kPatternWidth>& p) {
    int n = 0;
    for (int8_t v : p) n += v != 0;
    return n;
}

}  // namespace

TEST(PatternCodebook, Tern13HoldsEveryTernaryPatternOnce) {
    const PatternCodebook& book = pattern_codebook("tern13");
    EXPECT_EQ(book.size(), 6561);
    EXPECT_EQ(book.code_bits, 13);
    std::set<int32_t> seen;
    for (int c = 0; c < book.size(); ++c) {
        const int32_t idx = ternary_index(book.patterns[c].data());
        EXPECT_EQ(idx, c);  // tern13's code is the base-3 index itself
        EXPECT_EQ(book.find(book.patterns[c].data()), c);
        seen.insert(idx);
    }
    EXPECT_EQ(seen.size(), 6561u);
}

TEST(PatternCodebook, Tern11IsAllSparsePatternsPlusSomeFives) {
    const PatternCodebook& book = pattern_codebook("tern11");
    EXPECT_EQ(book.size(), 2048);
    EXPECT_EQ(book.code_bits, 11);
    int by_count[9] = {};
    std::set<int32_t> seen;
    for (int c = 0; c < book.size(); ++c) {
        ++by_count[nonzeros(book.patterns[c])];
        seen.insert(ternary_index(book.patterns[c].data()));
        EXPECT_EQ(book.find(book.patterns[c].data()), c);
    }
    EXPECT_EQ(seen.size(), 2048u);
    // C(8,k) 2^k patterns with k non-zeros: 1, 16, 112, 448, 1120 for k <= 4, the rest of 2048 with k = 5.
    EXPECT_EQ(by_count[0], 1);
    EXPECT_EQ(by_count[1], 16);
    EXPECT_EQ(by_count[2], 112);
    EXPECT_EQ(by_count[3], 448);
    EXPECT_EQ(by_count[4], 1120);
    EXPECT_EQ(by_count[5], 351);
    const int8_t dense[kPatternWidth] = {1, 1, 1, 1, 1, 1, 1, 1};
    EXPECT_EQ(book.find(dense), -1);
    EXPECT_THROW(pattern_codebook("tern12"), Error);
}

TEST(CodeSearch, AlphaFitIsTheBestOverAFineGrid) {
    Rng rng(5);
    for (int trial = 0; trial < 20; ++trial) {
        const int n = 1 + static_cast<int>(rng.below(64));
        std::vector<float> x(n), wt(n);
        for (int j = 0; j < n; ++j) {
            x[j] = static_cast<float>(rng.normal());
            wt[j] = static_cast<float>(0.1 + rng.uniform());
        }
        auto loss = [&](double a) {
            double s = 0.0;
            for (int j = 0; j < n; ++j) {
                const double q = a > 0 ? a * std::max(-1.0, std::min(1.0, std::nearbyint(x[j] / a))) : 0.0;
                s += wt[j] * (x[j] - q) * (x[j] - q);
            }
            return s;
        };
        const float alpha = fit_ternary_alpha(x.data(), wt.data(), n);
        EXPECT_EQ(alpha, round_to_fp16(alpha));
        double best = loss(0.0);
        for (int k = 1; k <= 4000; ++k) best = std::min(best, loss(4.0 * k / 4000));
        EXPECT_LE(loss(alpha), best * (1 + 2e-3) + 1e-12) << "trial " << trial;
    }
}

// With H diagonal nothing is compensated across columns and the joint loss separates per column: the
// unrestricted code must equal per-weight rounding to {-alpha, 0, +alpha}.
TEST(CodeSearch, DiagonalHessianGivesPerWeightRounding) {
    const int64_t rows = 9, cols = 64;
    Rng rng(3);
    Matrix w(rows, cols);
    for (auto& v : w.data) v = static_cast<float>(0.05 * rng.normal());
    MatrixD h(cols, cols);
    for (int64_t j = 0; j < cols; ++j) h(j, j) = 0.5 + rng.uniform();
    const HessianFactor f = factor_hessian(h, 0.01);
    CodeSearchOptions o;
    o.scale_group = 32;
    o.block_size = 32;
    o.alpha_passes = 1;
    Matrix q = w;
    const CodedWeights coded = code_search_loop(q, f, pattern_codebook("tern13"), o);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
            const float a = coded.alpha[static_cast<size_t>(i * (cols / 32) + j / 32)];
            const float r = std::max(-1.0f, std::min(1.0f, std::nearbyint(w(i, j) / a)));
            if (std::fabs(std::fabs(w(i, j) / a) - 0.5f) < 1e-4f) continue;  // a tie either way
            EXPECT_EQ(q(i, j), a * r) << i << "," << j;
        }
}

// One group of 8 columns: the search must find the exhaustive argmin of (w - a c)^T H_d (w - a c) over the
// codebook (for a single group (H_d^-1)_gg^-1 = H_d).
TEST(CodeSearch, SingleGroupMatchesExhaustiveSearch) {
    for (const char* code : {"tern11", "tern13"}) {
        const PatternCodebook& book = pattern_codebook(code);
        auto layer = test::make_layer(16, 8, 21);
        const HessianFactor f = factor_hessian(layer.h, 0.01);
        MatrixD hd = layer.h;
        for (int j = 0; j < 8; ++j) hd(j, j) += f.damping;
        CodeSearchOptions o;
        o.scale_group = 8;
        o.alpha_passes = 1;
        Matrix q = layer.w;
        const CodedWeights coded = code_search_loop(q, f, book, o);
        for (int64_t i = 0; i < 16; ++i) {
            const double a = coded.alpha[static_cast<size_t>(i)];
            auto loss = [&](const std::array<int8_t, kPatternWidth>& p) {
                double s = 0.0;
                for (int x = 0; x < 8; ++x)
                    for (int y = 0; y < 8; ++y)
                        s += (layer.w(i, x) - a * p[x]) * hd(x, y) * (layer.w(i, y) - a * p[y]);
                return s;
            };
            double best = 1e300;
            for (const auto& p : book.patterns) best = std::min(best, loss(p));
            const auto& chosen = book.patterns[static_cast<size_t>(coded.codes[static_cast<size_t>(i)])];
            EXPECT_LE(loss(chosen), best * (1 + 1e-4) + 1e-12) << code << " row " << i;
            for (int x = 0; x < 8; ++x) EXPECT_EQ(q(i, x), static_cast<float>(a) * chosen[x]);
        }
    }
}

TEST(CodeSearch, CompensationLowersTheOutputError) {
    auto layer = test::make_layer(48, 128, 8);
    CompressOptions o;
    o.method = "pbs2p";
    o.code = "tern11";
    o.block_size = 64;
    o.scale_group = 64;
    o.error_sample_rows = 0;
    const CompressedLayer with = compress_layer(layer.w, layer.h, o);
    o.compensation = false;
    const CompressedLayer without = compress_layer(layer.w, layer.h, o);
    EXPECT_LT(with.stats.rel_error, 0.8 * without.stats.rel_error);
    // tern13 holds every pattern tern11 has, and more: never worse by more than noise of the alpha fit.
    o.compensation = true;
    o.code = "tern13";
    const CompressedLayer wide = compress_layer(layer.w, layer.h, o);
    EXPECT_LT(wide.stats.rel_error, with.stats.rel_error);
}

TEST(CodeSearch, LayoutDequantizesToTheWeightAndCountsItsBits) {
    auto layer = test::make_layer(24, 96, 9, /*dead_col=*/5);
    for (const char* code : {"tern11", "tern13"}) {
        CompressOptions o;
        o.method = "pbs2p";
        o.code = code;
        o.block_size = 32;
        o.scale_group = 32;
        const CompressedLayer out = compress_layer(layer.w, layer.h, o);
        ASSERT_TRUE(out.layout.has_value());
        const Matrix d = dequantize(*out.layout);
        for (int64_t k = 0; k < d.size(); ++k)
            ASSERT_EQ(d.data[k], out.weight.data[k]) << code << " at " << k;
        for (int64_t i = 0; i < 24; ++i) EXPECT_EQ(out.weight(i, 5), 0.0f);  // dead column
        const double code_bits = std::string(code) == "tern11" ? 11.0 : 13.0;
        EXPECT_DOUBLE_EQ(out.stats.storage_bits, code_bits / 8 + 16.0 / 32);
        EXPECT_EQ(out.stats.n_keep, 0);
    }
}

TEST(CodeSearch, RejectsScaleGroupsThatDoNotFitTheGroups) {
    auto layer = test::make_layer(4, 48, 1);
    CompressOptions o;
    o.method = "pbs2p";
    o.code = "tern11";
    o.scale_group = 12;
    EXPECT_THROW(compress_layer(layer.w, layer.h, o), Error);
    o.scale_group = 0;
    o.code = "tern7";
    EXPECT_THROW(compress_layer(layer.w, layer.h, o), Error);
}

TEST(CodeSearch, ScaleGroupWiderThanTheRowIsOnePerRow) {
    // The default ladder's tern11@256 on a 48-wide layer: the same layer as an explicit per-row scale.
    auto layer = test::make_layer(8, 48, 3);
    CompressOptions o;
    o.method = "pbs2p";
    o.code = "tern11";
    o.block_size = 16;
    o.scale_group = 256;
    const CompressedLayer wide = compress_layer(layer.w, layer.h, o);
    o.scale_group = -1;
    const CompressedLayer per_row = compress_layer(layer.w, layer.h, o);
    ASSERT_TRUE(wide.layout && per_row.layout);
    EXPECT_EQ(wide.layout->scale_group, 48);
    EXPECT_EQ(wide.weight.data, per_row.weight.data);
    EXPECT_DOUBLE_EQ(wide.stats.storage_bits, per_row.stats.storage_bits);
}

namespace {

// tr((W - Q) H (W - Q)^T): the output error both loops minimise.
double output_loss(const Matrix& w, const Matrix& q, const MatrixD& h) {
    double total = 0.0;
    for (int64_t i = 0; i < w.rows; ++i)
        for (int64_t a = 0; a < w.cols; ++a) {
            const double da = w(i, a) - q(i, a);
            if (da == 0.0) continue;
            for (int64_t b = 0; b < w.cols; ++b) total += da * h(a, b) * (w(i, b) - q(i, b));
        }
    return total;
}

}  // namespace

// The tiled branch-and-bound loop against the row-at-a-time exhaustive reference. Without compensation
// each group's choice depends on its own weights only, so the two must pick the same codes (bar float ties);
// with it, the lazy updates round differently and a different code can move the rest of its row, so the
// loops must agree on nearly all codes and on the loss. 70 rows: two full tiles and a partial one.
TEST(CodeSearch, FastLoopMatchesTheReference) {
    auto layer = test::make_layer(70, 128, 31);
    const HessianFactor f = factor_hessian(layer.h, 0.01);
    struct Case {
        int64_t scale_group;
        int block_size, passes;
        bool compensate;
    };
    const Case cases[] = {{128, 32, 3, true}, {32, 64, 2, true}, {64, 16, 1, true}, {128, 32, 3, false}};
    for (const char* code : {"tern11", "tern13"})
        for (const Case& c : cases) {
            CodeSearchOptions o;
            o.scale_group = c.scale_group;
            o.block_size = c.block_size;
            o.alpha_passes = c.passes;
            o.compensate = c.compensate;
            Matrix fast = layer.w, ref = layer.w;
            const CodedWeights a = code_search_loop(fast, f, pattern_codebook(code), o);
            const CodedWeights b = code_search_loop_reference(ref, f, pattern_codebook(code), o);
            size_t same = 0;
            for (size_t k = 0; k < a.codes.size(); ++k) same += a.codes[k] == b.codes[k];
            const double agree = static_cast<double>(same) / static_cast<double>(a.codes.size());
            const std::string what = std::string(code) + " sg " + std::to_string(c.scale_group) + " block " +
                                     std::to_string(c.block_size) + " passes " + std::to_string(c.passes) +
                                     (c.compensate ? "" : " uncompensated");
            const double loss_fast = output_loss(layer.w, fast, layer.h);
            const double loss_ref = output_loss(layer.w, ref, layer.h);
            if (!c.compensate) {
                EXPECT_GE(agree, 0.999) << what;
                EXPECT_NEAR(loss_fast, loss_ref, 1e-4 * loss_ref) << what;
            } else {
                EXPECT_GE(agree, 0.95) << what;
                EXPECT_NEAR(loss_fast, loss_ref, 5e-3 * loss_ref) << what;
            }
            // Every weight is alpha times its code's pattern.
            for (int64_t i = 0; i < fast.rows; ++i)
                for (int64_t j = 0; j < fast.cols; ++j) {
                    const int32_t cw = a.codes[static_cast<size_t>(i * (fast.cols / 8) + j / 8)];
                    const float al =
                        a.alpha[static_cast<size_t>(i * (fast.cols / c.scale_group) + j / c.scale_group)];
                    ASSERT_EQ(fast(i, j),
                              al * pattern_codebook(code).patterns[static_cast<size_t>(cw)][j % 8])
                        << what;
                }
        }
}
