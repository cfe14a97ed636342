// Invariants of the per-layer compressors on synthetic layers with a realistic H.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "compress/binarizer.h"
#include "compress/cfs.h"
#include "compress/hessian.h"
#include "compress/layer_compressor.h"
#include "compress/spbo.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "synthetic_layer.h"

using namespace pbs2p;
using pbs2p::test::make_layer;

namespace {

CompressOptions opts(const std::string& method, int n = 4, int m = 8) {
    CompressOptions o;
    o.method = method;
    o.n_keep = n;
    o.m_group = m;
    o.block_size = 64;
    o.error_sample_rows = 0;
    return o;
}

void expect_nm(const Matrix& w, int n, int m) {
    for (int64_t i = 0; i < w.rows; ++i)
        for (int64_t g = 0; g < w.cols; g += m) {
            int nonzero = 0;
            for (int k = 0; k < m; ++k) nonzero += w(i, g + k) != 0.0f;
            ASSERT_LE(nonzero, n) << "row " << i << " group " << g;
        }
}

}  // namespace

TEST(Hessian, InverseCholeskyMatchesDirectRoute) {
    auto l = make_layer(4, 40, 1);
    MatrixD u;
    ASSERT_TRUE(inverse_cholesky_upper(l.h, u));
    MatrixD inv = l.h;
    ASSERT_TRUE(spd_inverse(inv));
    ASSERT_TRUE(cholesky_upper(inv));
    for (int64_t k = 0; k < u.size(); ++k) EXPECT_NEAR(u.data[k], inv.data[k], 1e-9 * std::fabs(inv(0, 0)) + 1e-12);
}

TEST(Hessian, SingularHessianIsHandledByDampingRetry) {
    // Rank-1 H: not positive definite without damping; percdamp 0 must retry with damping.
    MatrixD h(16, 16);
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 16; ++j) h(i, j) = (i + 1.0) * (j + 1.0);
    const HessianFactor f = factor_hessian(h, 0.0);
    EXPECT_GT(f.percdamp_used, 0.0);
    for (double d : f.u_diag) EXPECT_TRUE(std::isfinite(d) && d > 0.0);
}

TEST(Hessian, BadHessiansAreClearErrors) {
    MatrixD h(8, 8);
    for (int i = 0; i < 8; ++i) h(i, i) = 1.0;
    h(2, 3) = NAN;
    EXPECT_THROW(factor_hessian(h, 0.01), Error);
    EXPECT_THROW(factor_hessian(MatrixD(4, 5), 0.01), Error);
    const HessianFactor all_dead = factor_hessian(MatrixD(6, 6), 0.01);  // every column dead: identity
    for (uint8_t d : all_dead.dead) EXPECT_EQ(d, 1);
}

TEST(Binarizer, ArbRefinementNeverIncreasesMaskedError) {
    Rng rng(3);
    for (int trial = 0; trial < 50; ++trial) {
        const int n = 16 + trial * 3;
        std::vector<float> w(n);
        std::vector<uint8_t> m(n);
        for (int j = 0; j < n; ++j) {
            w[j] = static_cast<float>(rng.normal() * (j % 7 == 0 ? 4.0 : 1.0));
            m[j] = rng.uniform() < 0.6;
        }
        Arb1 p;
        std::vector<int8_t> b(n);
        arb1_init(w.data(), m.data(), n, p, b.data());
        double prev = arb1_error(w.data(), m.data(), n, p, b.data());
        for (int it = 0; it < 15; ++it) {
            arb1_refine(w.data(), m.data(), n, 1, p, b.data());
            const double e = arb1_error(w.data(), m.data(), n, p, b.data());
            ASSERT_LE(e, prev * (1 + 1e-6) + 1e-12) << "trial " << trial << " iteration " << it;
            prev = e;
        }
        for (int j = 0; j < n; ++j)
            if (!m[j]) EXPECT_EQ(b[j], 0);
    }
}

TEST(Binarizer, BraqOrderTwoBeatsOrderOneAndZeroSignIsZero) {
    const float w[5] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};  // w == mu: sgn(0) = 0, exact reconstruction
    float out[5];
    EXPECT_EQ(braq_row(w, nullptr, 5, 1, out), 0.0);
    EXPECT_EQ(out[2], 1.0f);
    Rng rng(5);
    std::vector<float> x(64), o(64);
    for (auto& v : x) v = static_cast<float>(rng.normal());
    EXPECT_LT(braq_row(x.data(), nullptr, 64, 2, o.data()), braq_row(x.data(), nullptr, 64, 1, o.data()));
}

// A random row segment with an N:M keep mask from a noisy magnitude score.
struct SpboCase {
    std::vector<float> w, score;
    Mask keep;
};

SpboCase spbo_case(Rng& rng, int n) {
    SpboCase c{std::vector<float>(n), std::vector<float>(n), Mask(n)};
    for (int j = 0; j < n; ++j) {
        c.w[j] = static_cast<float>(rng.normal());
        c.score[j] = c.w[j] * c.w[j] * static_cast<float>(0.5 + rng.uniform());
    }
    nm_keep_mask(c.score.data(), 1, n, n, 4, 8, c.keep.data());
    return c;
}

// SPBO's own path, written out from the paper's description with the ARB building blocks: dense fit of
// the whole segment, then the pruned entries of every 8-group leave the mask one per step in increasing
// score order (tau = M - N = 4 steps), each step followed by a re-fit on the entries still present.
void reference_spbo_path(const SpboCase& c, int iters, Arb1& p, std::vector<int8_t>& b) {
    const int n = static_cast<int>(c.w.size());
    Mask mask(n, 1);
    b.assign(n, 0);
    arb1_init(c.w.data(), nullptr, n, p, b.data());
    arb1_refine(c.w.data(), nullptr, n, iters, p, b.data());
    for (int step = 0; step < 4; ++step) {
        for (int g = 0; g < n; g += 8) {
            int lowest = -1;  // the lowest-scored pruned entry of the group still in the mask
            for (int j = g; j < g + 8; ++j)
                if (!c.keep[j] && mask[j] && (lowest < 0 || c.score[j] < c.score[lowest])) lowest = j;
            mask[lowest] = 0;
        }
        arb1_refine(c.w.data(), mask.data(), n, iters, p, b.data());
    }
}

TEST(Spbo, PathWithoutKeepBestIsTheStepwiseRefit) {
    // keep_best off: the result is SPBO's path alone, never replaced by the one-shot fit.
    Rng rng(7);
    SpboOptions path;
    path.keep_best = false;
    SpboOptions one_shot;
    one_shot.steps = -1;
    int path_better = 0, one_shot_better = 0;
    for (int trial = 0; trial < 400; ++trial) {
        const int n = 16;
        const SpboCase c = spbo_case(rng, n);
        Arb1 a, ref, o;
        std::vector<int8_t> sa(n), sref, so(n);
        const SpboRowResult r =
            spbo_fit_row(c.w.data(), c.keep.data(), c.score.data(), n, 8, 4, path, nullptr, 0, a, sa.data());
        EXPECT_FALSE(r.one_shot_won);
        reference_spbo_path(c, path.inner_iters, ref, sref);
        ASSERT_EQ(a.alpha, ref.alpha) << trial;
        ASSERT_EQ(a.mu, ref.mu) << trial;
        for (int j = 0; j < n; ++j) ASSERT_EQ(sa[j], c.keep[j] ? sref[j] : 0) << trial << " " << j;
        // The path ends at a fit of the final mask: every kept sign is the better one for (alpha, mu).
        for (int j = 0; j < n; ++j)
            if (c.keep[j]) {
                const double d = c.w[j] - a.mu;
                EXPECT_LE(std::fabs(d - a.alpha * sa[j]), std::fabs(d + a.alpha * sa[j]) + 1e-7) << trial;
            }
        spbo_fit_row(c.w.data(), c.keep.data(), c.score.data(), n, 8, 4, one_shot, nullptr, 0, o, so.data());
        const double e_path = arb1_error(c.w.data(), c.keep.data(), n, a, sa.data());
        const double e_one = arb1_error(c.w.data(), c.keep.data(), n, o, so.data());
        path_better += e_path < e_one;
        one_shot_better += e_one < e_path;
    }
    // SPBO's claim, on its own: where the two fits differ, the stepwise path is the better one more often
    // (16-wide segments: 51 against 11 of 400). It is not never-worse, which is why the compressor keeps the
    // better of the two by default (keep_best); on 64-wide segments the fits differ in under 1% of cases.
    EXPECT_GT(one_shot_better, 0);
    EXPECT_GT(path_better, 2 * one_shot_better);
    RecordProperty("path_better", path_better);
    RecordProperty("one_shot_better", one_shot_better);
}

TEST(Spbo, KeepBestReturnsTheLowerErrorOfPathAndOneShot) {
    Rng rng(11);
    SpboOptions best, path, one_shot;
    path.keep_best = false;
    one_shot.steps = -1;
    int one_shot_won = 0;
    for (int trial = 0; trial < 200; ++trial) {
        const int n = 16;
        const SpboCase c = spbo_case(rng, n);
        Arb1 a, p, o;
        std::vector<int8_t> sa(n), sp(n), so(n);
        const SpboRowResult r =
            spbo_fit_row(c.w.data(), c.keep.data(), c.score.data(), n, 8, 4, best, nullptr, 0, a, sa.data());
        spbo_fit_row(c.w.data(), c.keep.data(), c.score.data(), n, 8, 4, path, nullptr, 0, p, sp.data());
        spbo_fit_row(c.w.data(), c.keep.data(), c.score.data(), n, 8, 4, one_shot, nullptr, 0, o, so.data());
        const bool one_lower =
            arb1_error(c.w.data(), c.keep.data(), n, o, so.data()) < arb1_error(c.w.data(), c.keep.data(), n, p, sp.data());
        EXPECT_EQ(r.one_shot_won, one_lower) << trial;
        const Arb1& expect = one_lower ? o : p;
        const std::vector<int8_t>& expect_signs = one_lower ? so : sp;
        EXPECT_EQ(a.alpha, expect.alpha) << trial;
        EXPECT_EQ(a.mu, expect.mu) << trial;
        EXPECT_EQ(sa, expect_signs) << trial;
        one_shot_won += r.one_shot_won;
    }

    // Both branches of the choice are taken on these segments.
    EXPECT_GT(one_shot_won, 0);
    EXPECT_LT(one_shot_won, 200);
}

TEST(Spbo, ScheduleIntroducesLowestScoresFirst) {
    const float score[8] = {5, 1, 7, 3, 8, 2, 6, 4};
    Mask keep(8);
    nm_keep_mask(score, 1, 8, 8, 4, 8, keep.data());
    int step[8];
    spbo_schedule(keep.data(), score, 8, 8, 4, 4, false, step);
    EXPECT_EQ(step[1], 1);  // score 1
    EXPECT_EQ(step[5], 2);  // score 2
    EXPECT_EQ(step[3], 3);
    EXPECT_EQ(step[7], 4);
    EXPECT_EQ(step[0] + step[2] + step[4] + step[6], 0);
}

class NmMethods : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(NmMethods, ExactlyNKeptPerGroupAndPrunedExactlyZero) {
    const auto [method, n] = GetParam();
    auto l = make_layer(24, 128, 11, /*dead_col=*/9);
    const CompressedLayer out = compress_layer(l.w, l.h, opts(method, n, 8));
    expect_nm(out.weight, n, 8);
    EXPECT_GT(out.stats.rel_error, 0.0);
    EXPECT_LT(out.stats.rel_error, 1.0);
    for (int64_t i = 0; i < out.weight.rows; ++i) EXPECT_EQ(out.weight(i, 9), 0.0f);
    if (out.layout) {
        const BinaryLayout& lay = *out.layout;
        for (int64_t i = 0; i < lay.rows; ++i)
            for (int64_t g = 0; g < lay.cols; g += 8) {
                int kept = 0;
                for (int k = 0; k < 8; ++k) kept += lay.keep[i * lay.cols + g + k];
                ASSERT_EQ(kept, n);
            }
        const Matrix back = dequantize(lay);
        EXPECT_EQ(0, std::memcmp(back.ptr(), out.weight.ptr(), sizeof(float) * back.size()));
        // every kept value is mu +- alpha of its row's scale group
        for (int64_t i = 0; i < lay.rows; ++i)
            for (int64_t j = 0; j < lay.cols; ++j) {
                const size_t g = i * lay.scale_groups_per_row() + j / lay.scale_group;
                const float v = out.weight(i, j);
                if (lay.keep[i * lay.cols + j]) {
                    EXPECT_TRUE(v == lay.mu[g] + lay.alpha[g] || v == lay.mu[g] - lay.alpha[g]);
                } else {
                    EXPECT_EQ(v, 0.0f);
                }
            }
    }
}

INSTANTIATE_TEST_SUITE_P(All, NmMethods,
                         ::testing::Combine(::testing::Values("sparsegpt", "wanda", "stbllm", "pbs2p"),
                                            ::testing::Values(4, 5, 6)));

TEST(Pbs2p, BackbonesAndVariantsKeepTheStructure) {
    auto l = make_layer(16, 128, 13);
    for (const char* backbone : {"arb", "arb-x", "arb-rc", "salient"})
        for (bool obs : {false, true}) {
            CompressOptions o = opts("pbs2p");
            o.backbone = backbone;
            o.spbo_obs_update = obs;
            o.spbo_schedule = obs ? "global" : "per_group";
            const CompressedLayer out = compress_layer(l.w, l.h, o);
            expect_nm(out.weight, 4, 8);
            EXPECT_EQ(out.layout.has_value(), std::string(backbone) == "arb" || std::string(backbone) == "arb-x");
            EXPECT_LT(out.stats.rel_error, 1.0) << backbone;
            EXPECT_GT(out.stats.storage_bits, 1.0);
        }
}

// The backbones without a layout against the forms they extend, at the same 4:8 mask rule: row x column
// scales (arb-rc) fit better than one (alpha, mu) per row (arb); the salient structure (a second binary
// plane on salient columns, two groups for the rest) fits better still, and better than STBLLM, whose
// structure it shares but whose groups are BRAQ fits without SPBO.
TEST(Pbs2p, RicherBackbonesLowerTheErrorOfThePlainOnes) {
    for (uint64_t seed : {13, 5, 41})
        for (double outliers : {1.0, 2.0}) {
            auto l = make_layer(16, 128, seed, -1, 0, outliers);
            auto error = [&](const char* method, const char* backbone) {
                CompressOptions o = opts(method);
                o.backbone = backbone;
                return compress_layer(l.w, l.h, o).stats.rel_error;
            };
            const double arb = error("pbs2p", "arb"), rc = error("pbs2p", "arb-rc");
            const double salient = error("pbs2p", "salient"), stbllm = error("stbllm", "arb");
            EXPECT_LT(rc, 0.92 * arb) << seed << " " << outliers;
            EXPECT_LT(salient, 0.9 * rc) << seed << " " << outliers;
            EXPECT_LT(salient, 0.9 * stbllm) << seed << " " << outliers;
        }
}

TEST(Pbs2p, StorageBitsFollowThePatternSignScaleFormula) {
    auto l = make_layer(8, 128, 17);
    CompressOptions o = opts("pbs2p", 4, 8);
    o.block_size = 128;
    const CompressedLayer out = compress_layer(l.w, l.h, o);
    EXPECT_DOUBLE_EQ(out.stats.storage_bits, 11.0 / 8 + 32.0 / 128);
    EXPECT_NEAR(out.stats.nominal_bits, 0.55, 1e-12);
}

class Compensation : public ::testing::TestWithParam<std::string> {};

TEST_P(Compensation, LowersOutputErrorVersusNone) {
    // Moderate outlier features (x2). With strong ones (x8) compensation into a single row-wise
    // (alpha, mu) can raise the error of pbs2p's arb backbone (docs/METHODS.md).
    auto l = make_layer(32, 256, 19, -1, 0, 2.0);
    CompressOptions o = opts(GetParam());
    o.measure_uncompensated = true;
    const CompressedLayer out = compress_layer(l.w, l.h, o);
    EXPECT_LT(out.stats.rel_error, out.stats.rel_error_uncompensated) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(All, Compensation,
                         ::testing::Values("gptq", "sparsegpt", "billm", "arb-llm", "stbllm", "pbs2p"));

TEST(Methods, AllRunDeterministicallyWithOneAndTwoThreads) {
    auto l = make_layer(24, 128, 23, 4);
    for (const std::string& m : method_names()) {
        CompressOptions o = opts(m);
        set_num_threads(1);
        const CompressedLayer a = compress_layer(l.w, l.h, o);
        set_num_threads(2);
        const CompressedLayer b = compress_layer(l.w, l.h, o);
        const CompressedLayer c = compress_layer(l.w, l.h, o);
        EXPECT_EQ(0, std::memcmp(a.weight.ptr(), b.weight.ptr(), sizeof(float) * a.weight.size())) << m;
        EXPECT_EQ(0, std::memcmp(b.weight.ptr(), c.weight.ptr(), sizeof(float) * b.weight.size())) << m;
        for (float v : b.weight.data) ASSERT_TRUE(std::isfinite(v)) << m;
        EXPECT_GT(b.stats.storage_bits, 0.0) << m;
        EXPECT_GT(b.stats.nominal_bits, 0.0) << m;
    }
}

TEST(Methods, BinaryBaselinesAreOneBitPlusSalient) {
    auto l = make_layer(24, 128, 29);
    for (const char* m : {"billm", "arb-llm"}) {
        const CompressedLayer out = compress_layer(l.w, l.h, opts(m));
        EXPECT_GT(out.stats.salient_fraction, 0.0) << m;
        EXPECT_NEAR(out.stats.nominal_bits, 1.0 + out.stats.salient_fraction, 1e-12);
        EXPECT_LT(out.stats.rel_error, 1.0) << m;
    }
    for (const char* v : {"arb", "x", "rc"}) {
        CompressOptions o = opts("arb-llm");
        o.arb_variant = v;
        EXPECT_LT(compress_layer(l.w, l.h, o).stats.rel_error, 1.0) << v;
    }
}

TEST(Methods, BadInputsAreClearErrors) {
    auto l = make_layer(8, 64, 31);
    EXPECT_THROW(compress_layer(l.w, l.h, opts("sparsegpt", 8, 8)), Error);   // N >= M
    EXPECT_THROW(compress_layer(l.w, l.h, opts("pbs2p", 0, 8)), Error);       // N < 1
    EXPECT_THROW(compress_layer(l.w, l.h, opts("wanda", 2, 3)), Error);       // M does not divide 64 (and block)
    EXPECT_THROW(compress_layer(l.w, l.h, opts("no-such-method")), Error);
    auto odd = make_layer(8, 60, 31);
    EXPECT_THROW(compress_layer(odd.w, odd.h, opts("pbs2p", 4, 8)), Error);  // 8 does not divide 60
    Matrix bad = l.w;
    bad(1, 2) = NAN;
    EXPECT_THROW(compress_layer(bad, l.h, opts("gptq")), Error);
    MatrixD wrong(32, 32);
    EXPECT_THROW(compress_layer(l.w, wrong, opts("gptq")), Error);
}

TEST(Methods, DeadColumnsBecomeZeroAndNeverNaN) {
    auto l = make_layer(8, 64, 37, /*dead_col=*/20);
    for (const std::string& m : method_names()) {
        const CompressedLayer out = compress_layer(l.w, l.h, opts(m));
        for (float v : out.weight.data) ASSERT_TRUE(std::isfinite(v)) << m;
        if (m == "gptq" || m == "sparsegpt" || m == "wanda")  // GPTQ handling: the column is zeroed
            for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(out.weight(i, 20), 0.0f) << m;
    }
}

TEST(Methods, GptqBeatsRtnInOutputError) {
    auto l = make_layer(32, 128, 41);
    CompressOptions o = opts("rtn");
    o.bits = 3;
    const double rtn = compress_layer(l.w, l.h, o).stats.rel_error;
    o.method = "gptq";
    EXPECT_LT(compress_layer(l.w, l.h, o).stats.rel_error, rtn);
}

TEST(Cfs, ImportanceHasMeanOneAndGuardsNonPositiveCosine) {
    for (const char* v : {"recip", "one_minus"}) {
        const auto imp = block_importance({0.9, 0.99, -0.2, 0.0, 0.5}, v);
        double s = 0;
        for (double x : imp) {
            EXPECT_TRUE(std::isfinite(x) && x > 0);
            s += x;
        }
        EXPECT_NEAR(s / imp.size(), 1.0, 1e-12);
    }
    const auto r = block_importance({0.5, 0.9}, "recip");
    EXPECT_GT(r[0], r[1]);  // less similar = more important
    EXPECT_THROW(block_importance({}, "recip"), Error);
    EXPECT_THROW(block_importance({0.5}, "bogus"), Error);
}

TEST(Cfs, AllocationAveragesExactlyTheTargetWithinBounds) {
    Rng rng(43);
    for (int trial = 0; trial < 2000; ++trial) {
        const int L = 1 + static_cast<int>(rng.below(48));
        const int m = 8;
        const int lo = 1 + static_cast<int>(rng.below(6));
        const int hi = lo + static_cast<int>(rng.below(static_cast<uint64_t>(m - lo)));
        const int target = lo + static_cast<int>(rng.below(static_cast<uint64_t>(hi - lo + 1)));
        std::vector<double> cosines(L);
        for (auto& c : cosines) c = rng.uniform() * 1.2 - 0.1;
        const auto imp = block_importance(cosines, trial % 2 ? "recip" : "one_minus");
        const auto n = allocate_block_keep_counts(imp, target, m, lo, hi);
        ASSERT_EQ(static_cast<int>(n.size()), L);
        long long sum = 0;
        for (int x : n) {
            ASSERT_GE(x, lo);
            ASSERT_LE(x, hi);
            sum += x;
        }
        ASSERT_EQ(sum, static_cast<long long>(L) * target) << "trial " << trial;
    }
    // More important blocks never get fewer kept weights.
    const auto n = allocate_block_keep_counts({2.8, 1.0, 0.3, 0.5, 1.4}, 4, 8, 3, 5);
    EXPECT_GE(n[0], n[1]);
    EXPECT_GE(n[1], n[2]);
    EXPECT_THROW(allocate_block_keep_counts({1.0}, 4, 8, 5, 6), Error);
    EXPECT_THROW(allocate_block_keep_counts({1.0}, 4, 8, 3, 8), Error);
}
