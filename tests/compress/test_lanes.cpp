// The SIMD-across-rows ("lane") forms of the ARB / BRAQ / SPBO fits must equal the per-row reference
// functions bit for bit (same operations in the same order per row).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "compress/binarizer.h"
#include "compress/nm_mask.h"
#include "compress/spbo.h"
#include "core/rng.h"

using namespace pbs2p;

namespace {

bool same_bits(float a, float b) {
    return std::memcmp(&a, &b, sizeof a) == 0;
}
bool same_bits(double a, double b) {
    return std::memcmp(&a, &b, sizeof a) == 0;
}

// kLanes rows of n values with outliers, ties at the mean and masks (lane 3's mask is empty).
struct LaneData {
    int64_t n;
    std::vector<float> w;       // rows, row-major
    std::vector<uint8_t> m;     // rows, row-major
    std::vector<float> wt, mt;  // interleaved
};

LaneData make_lanes(Rng& rng, int64_t n) {
    LaneData d{n, std::vector<float>(n * kLanes), std::vector<uint8_t>(n * kLanes), {}, {}};
    for (int l = 0; l < kLanes; ++l)
        for (int64_t j = 0; j < n; ++j) {
            float v = static_cast<float>(rng.normal() * (j % 9 == 0 ? 5.0 : 1.0));
            if (l == 5) v = 0.25f * static_cast<float>(j % 3);  // many equal values (sgn 0 cases)
            d.w[l * n + j] = v;
            d.m[l * n + j] = l == 3 ? 0 : (l == 0 ? 1 : rng.uniform() < 0.6);
        }
    d.wt.resize(d.w.size());
    d.mt.resize(d.w.size());
    for (int l = 0; l < kLanes; ++l)
        for (int64_t j = 0; j < n; ++j) {
            d.wt[j * kLanes + l] = d.w[l * n + j];
            d.mt[j * kLanes + l] = d.m[l * n + j];
        }
    return d;
}

}  // namespace

TEST(Lanes, ArbFitEqualsPerRowBitForBit) {
    Rng rng(11);
    for (int trial = 0; trial < 20; ++trial) {
        const int64_t n = 8 + trial * 7;
        const LaneData d = make_lanes(rng, n);
        for (int iters : {0, 1, 15, 40}) {
            Arb1Lanes p;
            std::vector<float> b(n * kLanes);
            arb1_init_lanes(d.wt.data(), d.mt.data(), n, p, b.data());
            arb1_refine_lanes(d.wt.data(), d.mt.data(), n, iters, p, b.data());
            for (int l = 0; l < kLanes; ++l) {
                Arb1 r;
                std::vector<int8_t> rb(n);
                arb1_init(d.w.data() + l * n, d.m.data() + l * n, n, r, rb.data());
                arb1_refine(d.w.data() + l * n, d.m.data() + l * n, n, iters, r, rb.data());
                ASSERT_TRUE(same_bits(p.alpha[l], r.alpha) && same_bits(p.mu[l], r.mu))
                    << "trial " << trial << " iters " << iters << " lane " << l;
                for (int64_t j = 0; j < n; ++j) ASSERT_EQ(static_cast<int>(b[j * kLanes + l]), rb[j]);
            }
        }
    }
}

TEST(Lanes, BraqErrorEqualsPerRowBitForBit) {
    Rng rng(12);
    for (int trial = 0; trial < 20; ++trial) {
        const int64_t n = 16 + trial * 5;
        LaneData d = make_lanes(rng, n);
        // Only the listed columns may be inside the mask: drop every third column from the list and mask.
        std::vector<int> cols;
        for (int64_t j = 0; j < n; ++j)
            if (j % 3 != 1)
                cols.push_back(static_cast<int>(j));
            else
                for (int l = 0; l < kLanes; ++l) d.m[l * n + j] = 0, d.mt[j * kLanes + l] = 0.0f;
        for (int order : {1, 2}) {
            std::vector<float> out(n * kLanes), ref(n);
            double err[kLanes];
            braq_lanes(d.wt.data(), d.mt.data(), cols.data(), static_cast<int64_t>(cols.size()), order,
                       out.data(), err);
            for (int l = 0; l < kLanes; ++l) {
                const double e = braq_row(d.w.data() + l * n, d.m.data() + l * n, n, order, ref.data());
                ASSERT_TRUE(same_bits(err[l], e)) << "trial " << trial << " order " << order << " lane " << l;
                for (int c : cols) {
                    if (d.m[l * n + c]) {
                        ASSERT_TRUE(same_bits(out[c * kLanes + l], ref[c]));
                    }
                }
            }
        }
    }
}

TEST(Lanes, SpboRowsEqualPerRowFits) {
    Rng rng(13);
    const int64_t n = 128, rows = kLanes + 5;
    std::vector<float> w(rows * n), score(rows * n);
    for (int64_t k = 0; k < rows * n; ++k) {
        w[k] = static_cast<float>(0.02 * rng.normal());
        score[k] = w[k] * w[k] * static_cast<float>(0.5 + rng.uniform());
    }
    for (int variant = 0; variant < 5; ++variant) {
        SpboOptions o;
        int n_keep = 4;
        if (variant == 1) o.global_schedule = true, n_keep = 5;
        if (variant == 2) o.steps = -1;
        if (variant == 3) o.keep_best = false, n_keep = 6;
        if (variant == 4) o.steps = 7;  // more steps than pruned entries per group: empty steps are skipped
        Mask keep(rows * n);
        nm_keep_mask(score.data(), rows, n, n, n_keep, 8, keep.data());
        std::vector<Arb1> p(rows);
        std::vector<int8_t> b(rows * n);
        for (int64_t i0 = 0; i0 < rows; i0 += kLanes) {
            const int count = static_cast<int>(std::min<int64_t>(kLanes, rows - i0));
            spbo_fit_rows(w.data() + i0 * n, keep.data() + i0 * n, score.data() + i0 * n, n, count, n, 8,
                          n_keep, o, p.data() + i0, b.data() + i0 * n);
        }
        for (int64_t i = 0; i < rows; ++i) {
            Arb1 r;
            std::vector<int8_t> rb(n);
            spbo_fit_row(w.data() + i * n, keep.data() + i * n, score.data() + i * n, n, 8, n_keep, o,
                         nullptr, 0, r, rb.data());
            ASSERT_TRUE(same_bits(p[i].alpha, r.alpha) && same_bits(p[i].mu, r.mu))
                << "variant " << variant << " row " << i;
            for (int64_t j = 0; j < n; ++j)
                ASSERT_EQ(b[i * n + j], rb[j]) << "variant " << variant << " row " << i;
        }
    }
}
