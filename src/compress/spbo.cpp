#include "compress/spbo.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace pbs2p {

void spbo_schedule(const uint8_t* keep, const float* score, int64_t n, int m_group, int n_keep, int tau,
                   bool global_schedule, int* step_of) {
    for (int64_t j = 0; j < n; ++j) step_of[j] = 0;
    auto assign = [&](std::vector<int64_t>& pruned) {
        std::stable_sort(pruned.begin(), pruned.end(),
                         [&](int64_t a, int64_t b) { return score[a] < score[b]; });
        const int64_t p = static_cast<int64_t>(pruned.size());
        for (int64_t r = 0; r < p; ++r) step_of[pruned[r]] = static_cast<int>(r * tau / p) + 1;
    };
    std::vector<int64_t> pruned;
    if (global_schedule) {
        for (int64_t j = 0; j < n; ++j)
            if (!keep[j]) pruned.push_back(j);
        assign(pruned);
        return;
    }
    for (int64_t g = 0; g < n; g += m_group) {
        pruned.clear();
        for (int64_t j = g; j < std::min<int64_t>(g + m_group, n); ++j)
            if (!keep[j]) pruned.push_back(j);
        assign(pruned);
    }
    (void)n_keep;
}

namespace {

// Target update for the OBS variant: with Q = entries pruned so far, t <- t - t_Q (Ginv_QQ)^-1 Ginv_Q,:,
// which makes t_Q exactly 0 while moving the rest optimally (under the block's quadratic form).
void obs_zero(std::vector<float>& t, const std::vector<int64_t>& q, const double* ginv, int64_t ld) {
    const size_t k = q.size();
    if (k == 0) return;
    std::vector<double> a(k * k), z(k);
    for (size_t r = 0; r < k; ++r) {
        for (size_t c = 0; c < k; ++c) a[r * k + c] = ginv[q[r] * ld + q[c]];
        z[r] = t[q[r]];
    }
    // Cholesky solve (a is SPD as a principal submatrix of an SPD matrix).
    for (size_t c = 0; c < k; ++c) {
        double d = a[c * k + c];
        for (size_t p = 0; p < c; ++p) d -= a[c * k + p] * a[c * k + p];
        d = std::sqrt(std::max(d, 1e-300));
        a[c * k + c] = d;
        for (size_t r = c + 1; r < k; ++r) {
            double s = a[r * k + c];
            for (size_t p = 0; p < c; ++p) s -= a[r * k + p] * a[c * k + p];
            a[r * k + c] = s / d;
        }
    }
    for (size_t r = 0; r < k; ++r) {
        double s = z[r];
        for (size_t p = 0; p < r; ++p) s -= a[r * k + p] * z[p];
        z[r] = s / a[r * k + r];
    }
    for (size_t r = k; r-- > 0;) {
        double s = z[r];
        for (size_t p = r + 1; p < k; ++p) s -= a[p * k + r] * z[p];
        z[r] = s / a[r * k + r];
    }
    const int64_t n = static_cast<int64_t>(t.size());
    for (size_t r = 0; r < k; ++r) {
        const double* g = ginv + q[r] * ld;
        for (int64_t j = 0; j < n; ++j) t[j] -= static_cast<float>(z[r] * g[j]);
    }
    for (int64_t j : q) t[j] = 0.0f;
}

}  // namespace

SpboRowResult spbo_fit_row(const float* w, const uint8_t* keep, const float* score, int64_t n, int m_group,
                           int n_keep, const SpboOptions& opt, const double* ginv, int64_t ld_ginv,
                           Arb1& params, int8_t* b) {
    SpboRowResult result;
    // One-shot: prune, then ARB on the kept entries.
    Arb1 one;
    std::vector<int8_t> b_one(static_cast<size_t>(n));
    const bool run_steps = opt.steps >= 0;
    const bool need_one_shot = !run_steps || (opt.keep_best && !opt.obs_update);
    if (need_one_shot) {
        arb1_init(w, keep, n, one, b_one.data());
        arb1_refine(w, keep, n, opt.inner_iters, one, b_one.data());
        if (!run_steps) {
            params = one;
            std::copy(b_one.begin(), b_one.end(), b);
            return result;
        }
    }
    const int tau = opt.steps > 0 ? opt.steps : m_group - n_keep;
    std::vector<int> step_of(static_cast<size_t>(n));
    spbo_schedule(keep, score, n, m_group, n_keep, tau, opt.global_schedule, step_of.data());
    // Step 0: dense fit of the whole segment.
    std::vector<float> target(w, w + n);
    std::vector<uint8_t> mask(static_cast<size_t>(n), 1);
    arb1_init(target.data(), nullptr, n, params, b);
    arb1_refine(target.data(), nullptr, n, opt.inner_iters, params, b);
    std::vector<int64_t> pruned_so_far;
    for (int k = 1; k <= tau; ++k) {
        bool changed = false;
        for (int64_t j = 0; j < n; ++j)
            if (step_of[j] == k) {
                mask[j] = 0;
                pruned_so_far.push_back(j);
                changed = true;
            }
        if (!changed) continue;
        if (opt.obs_update && ginv != nullptr) obs_zero(target, pruned_so_far, ginv, ld_ginv);
        arb1_refine(target.data(), mask.data(), n, opt.inner_iters, params, b);
    }
    for (int64_t j = 0; j < n; ++j)
        if (!keep[j]) b[j] = 0;
    if (need_one_shot && arb1_error(w, keep, n, one, b_one.data()) < arb1_error(w, keep, n, params, b)) {
        params = one;
        std::copy(b_one.begin(), b_one.end(), b);
        result.one_shot_won = true;
    }
    return result;
}

void spbo_fit_rows(const float* w, const uint8_t* keep, const float* score, int64_t ld, int count, int64_t n,
                   int m_group, int n_keep, const SpboOptions& opt, Arb1* params, int8_t* b) {
    PBS2P_CHECK(count >= 1 && count <= kLanes && !opt.obs_update, "spbo: bad lane batch ({} rows)", count);
    const size_t len = static_cast<size_t>(n * kLanes);
    // Interleave the rows; missing lanes repeat the last row (their results are discarded).
    std::vector<float> wt(len), keep_t(len), mask(len), bt(len), b_one(len);
    for (int l = 0; l < kLanes; ++l) {
        const int64_t r = std::min(l, count - 1);
        for (int64_t j = 0; j < n; ++j) {
            wt[j * kLanes + l] = w[r * ld + j];
            keep_t[j * kLanes + l] = keep[r * ld + j] ? 1.0f : 0.0f;
        }
    }
    auto write_back = [&](const Arb1Lanes& p, const std::vector<float>& signs) {
        for (int r = 0; r < count; ++r) {
            params[r] = Arb1{p.alpha[r], p.mu[r]};
            for (int64_t j = 0; j < n; ++j) b[r * ld + j] = static_cast<int8_t>(signs[j * kLanes + r]);
        }
    };
    const bool run_steps = opt.steps >= 0;
    const bool need_one_shot = !run_steps || opt.keep_best;
    Arb1Lanes one;
    if (need_one_shot) {
        arb1_init_lanes(wt.data(), keep_t.data(), n, one, b_one.data());
        arb1_refine_lanes(wt.data(), keep_t.data(), n, opt.inner_iters, one, b_one.data());
        if (!run_steps) {
            write_back(one, b_one);
            return;
        }
    }
    const int tau = opt.steps > 0 ? opt.steps : m_group - n_keep;
    std::vector<int> step_of(len), row_steps(static_cast<size_t>(n));
    for (int l = 0; l < kLanes; ++l) {
        const int64_t r = std::min(l, count - 1);
        spbo_schedule(keep + r * ld, score + r * ld, n, m_group, n_keep, tau, opt.global_schedule,
                      row_steps.data());
        for (int64_t j = 0; j < n; ++j) step_of[j * kLanes + l] = row_steps[j];
    }
    // Step 0: dense fit; then the pruned entries are introduced step by step. A lane whose row has no entry
    // at step k skips that re-fit (as the per-row loop does): its state is restored afterwards.
    std::fill(mask.begin(), mask.end(), 1.0f);
    Arb1Lanes p;
    arb1_init_lanes(wt.data(), mask.data(), n, p, bt.data());
    arb1_refine_lanes(wt.data(), mask.data(), n, opt.inner_iters, p, bt.data());
    std::vector<float> saved_b;
    for (int k = 1; k <= tau; ++k) {
        bool changed[kLanes] = {}, any = false, all = true;
        for (int64_t j = 0; j < n; ++j)
            for (int l = 0; l < kLanes; ++l)
                if (step_of[j * kLanes + l] == k) {
                    mask[j * kLanes + l] = 0.0f;
                    changed[l] = true;
                }
        for (int l = 0; l < kLanes; ++l) any |= changed[l], all &= changed[l];
        if (!any) continue;
        const Arb1Lanes before = p;
        if (!all) saved_b = bt;
        arb1_refine_lanes(wt.data(), mask.data(), n, opt.inner_iters, p, bt.data());
        if (!all)
            for (int l = 0; l < kLanes; ++l)
                if (!changed[l]) {
                    p.alpha[l] = before.alpha[l];
                    p.mu[l] = before.mu[l];
                    for (int64_t j = 0; j < n; ++j) bt[j * kLanes + l] = saved_b[j * kLanes + l];
                }
    }
    for (size_t k = 0; k < len; ++k)
        if (keep_t[k] == 0.0f) bt[k] = 0.0f;
    write_back(p, bt);
    if (!need_one_shot) return;
    // Keep the one-shot fit where its masked error is lower (the scalar error, so the choice is the same).
    std::vector<int8_t> signs_one(static_cast<size_t>(n));
    for (int r = 0; r < count; ++r) {
        for (int64_t j = 0; j < n; ++j) signs_one[j] = static_cast<int8_t>(b_one[j * kLanes + r]);
        const Arb1 o{one.alpha[r], one.mu[r]};
        if (arb1_error(w + r * ld, keep + r * ld, n, o, signs_one.data()) <
            arb1_error(w + r * ld, keep + r * ld, n, params[r], b + r * ld)) {
            params[r] = o;
            std::copy(signs_one.begin(), signs_one.end(), b + r * ld);
        }
    }
}

}  // namespace pbs2p
