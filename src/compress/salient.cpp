#include "compress/salient.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "compress/binarizer.h"
#include "compress/lanes.h"

namespace pbs2p {

namespace {

inline bool allowed_at(const Mask* allowed, int64_t k) {
    return allowed == nullptr || (*allowed)[k] != 0;
}

// Rows [i0, i0 + kLanes) of t (missing rows repeat the last one) and the allowed flags, interleaved.
void interleave_rows(const Matrix& t, const Mask* allowed, int64_t i0, std::vector<float>& wt,
                     std::vector<float>& mt) {
    const int64_t width = t.cols;
    wt.resize(static_cast<size_t>(width * kLanes));
    mt.resize(wt.size());
    for (int l = 0; l < kLanes; ++l) {
        const int64_t i = std::min<int64_t>(i0 + l, t.rows - 1);
        for (int64_t j = 0; j < width; ++j) {
            wt[j * kLanes + l] = t(i, j);
            mt[j * kLanes + l] = allowed_at(allowed, i * width + j) ? 1.0f : 0.0f;
        }
    }
}

std::vector<double> linear_levels(double lo, double hi, int count) {
    std::vector<double> l(static_cast<size_t>(count));
    for (int k = 0; k < count; ++k) l[k] = lo + (hi - lo) * k / (count - 1);
    return l;
}

// Order-1 BRAQ error of the values of one row falling into each of `groups` threshold bins, in two sweeps.
// bin(x) = number of thresholds <= |x| (thresholds ascending); entries with skip[j] are ignored.
template <int Groups>
double binned_braq1_error(const float* x, const uint8_t* use, int64_t n, const float* thresholds) {
    double sum[Groups] = {}, cnt[Groups] = {};
    auto bin_of = [&](float v) {
        int b = 0;
        for (int k = 0; k < Groups - 1; ++k) b += std::fabs(v) >= thresholds[k];
        return b;
    };
    for (int64_t j = 0; j < n; ++j)
        if (use[j]) {
            const int b = bin_of(x[j]);
            sum[b] += x[j];
            cnt[b] += 1.0;
        }
    double mu[Groups], abs_dev[Groups] = {}, sq_dev[Groups] = {};
    for (int b = 0; b < Groups; ++b) mu[b] = cnt[b] > 0 ? sum[b] / cnt[b] : 0.0;
    for (int64_t j = 0; j < n; ++j)
        if (use[j]) {
            const int b = bin_of(x[j]);
            const double d = x[j] - mu[b];
            abs_dev[b] += std::fabs(d);
            sq_dev[b] += d * d;
        }
    double err = 0.0;
    for (int b = 0; b < Groups; ++b)
        if (cnt[b] > 0) err += sq_dev[b] - abs_dev[b] * abs_dev[b] / cnt[b];
    return err;
}

// binned_braq1_error for kLanes interleaved rows over the listed columns (every other column unused in
// every lane); bit-identical per lane.
template <int Groups>
void binned_braq1_error_lanes(const float* xt, const float* use_t, const std::vector<int>& cols,
                              const float* thresholds, double* err) {
    using namespace lanes;
    for (int v = 0; v < kVecs; ++v) {
        auto bin_select = [&](int64_t k, int g) {  // 1.0 where the entry is used and falls into bin g
            const f8 x = load8(xt + k), ax = (f8)((i8v)x & 0x7fffffff);
            i8v bin = {};
            for (int q = 0; q < Groups - 1; ++q) bin -= ax >= splat8(thresholds[q]);
            return (load8(use_t + k) != 0.0f) & (bin == g) ? splat8(1.0f) : splat8(0.0f);
        };
        d4 sum[Groups][2] = {}, cnt[Groups][2] = {};
        for (int j : cols) {
            const int64_t k = static_cast<int64_t>(j) * kLanes + 8 * v;
            const f8 x = load8(xt + k);
            for (int g = 0; g < Groups; ++g) {
                const f8 sel = bin_select(k, g);
                sum[g][0] += lo4(sel * x), sum[g][1] += hi4(sel * x);
                cnt[g][0] += lo4(sel), cnt[g][1] += hi4(sel);
            }
        }
        d4 mu[Groups][2];
        for (int g = 0; g < Groups; ++g)
            for (int h = 0; h < 2; ++h) {
                double m4[4];
                for (int e = 0; e < 4; ++e) m4[e] = cnt[g][h][e] > 0 ? sum[g][h][e] / cnt[g][h][e] : 0.0;
                std::memcpy(&mu[g][h], m4, sizeof m4);
            }
        d4 abs_dev[Groups][2] = {}, sq_dev[Groups][2] = {};
        for (int j : cols) {
            const int64_t k = static_cast<int64_t>(j) * kLanes + 8 * v;
            const f8 x = load8(xt + k);
            const d4 xd[2] = {lo4(x), hi4(x)};
            for (int g = 0; g < Groups; ++g) {
                const f8 sel = bin_select(k, g);
                const d4 s2[2] = {lo4(sel), hi4(sel)};
                for (int h = 0; h < 2; ++h) {
                    const d4 d = (xd[h] - mu[g][h]) * s2[h];
                    abs_dev[g][h] +=
                        (d4)((__attribute__((vector_size(32))) long long)d & 0x7fffffffffffffffLL);
                    sq_dev[g][h] += d * d;
                }
            }
        }
        for (int l = 0; l < 8; ++l) {
            const int h = l / 4, e = l % 4;
            double total = 0.0;
            for (int g = 0; g < Groups; ++g)
                if (cnt[g][h][e] > 0)
                    total += sq_dev[g][h][e] - abs_dev[g][h][e] * abs_dev[g][h][e] / cnt[g][h][e];
            err[8 * v + l] = total;
        }
    }
}

Mask salient_column_mask(const Matrix& t, const Mask* allowed, const std::vector<int>& ranked, int count) {
    const int64_t rows = t.rows, width = t.cols;
    Mask m(static_cast<size_t>(rows * width), 0);
    for (int c = 0; c < count; ++c)
        for (int64_t i = 0; i < rows; ++i) {
            const int64_t k = i * width + ranked[c];
            m[k] = allowed_at(allowed, k) ? 1 : 0;
        }
    return m;
}

// Per-row "usable non-salient" flags and the flattened |T| of the non-salient part (zeros elsewhere).
void nonsalient(const Matrix& t, const Mask* allowed, const Mask& sal, Mask& use,
                std::vector<float>& abs_values) {
    use.assign(sal.size(), 0);
    abs_values.assign(sal.size(), 0.0f);
    const int64_t total = static_cast<int64_t>(sal.size());
#pragma omp parallel for schedule(static) if (total >= kParallelMinWork)
    for (int64_t k = 0; k < total; ++k) {
        use[k] = !sal[k] && allowed_at(allowed, k);
        if (use[k]) abs_values[k] = std::fabs(t.data[k]);
    }
}

template <int Groups>
void partition_nonsalient(const Matrix& t, const Mask& use, const std::vector<float>& best_thr,
                          Partition& part) {
    const int64_t rows = t.rows, width = t.cols;
    for (int g = 0; g < Groups; ++g) {
        Mask m(use.size(), 0);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
        for (int64_t k = 0; k < rows * width; ++k) {
            if (!use[k]) continue;
            int b = 0;
            for (int q = 0; q < Groups - 1; ++q) b += std::fabs(t.data[k]) >= best_thr[q];
            m[k] = b == g;
        }
        part.masks.push_back(std::move(m));
        part.orders.push_back(1);
        part.is_salient.push_back(0);
    }
    part.nonsalient_groups = Groups;
}

// Searches thresholds (Groups - 1 of them per candidate) minimising the binned error over all rows.
template <int Groups>
std::vector<float> search_thresholds(const Matrix& t, const Mask& use,
                                     const std::vector<std::vector<float>>& cands) {
    const int64_t rows = t.rows, width = t.cols;
    std::vector<double> err(cands.size() * static_cast<size_t>(rows));
    const int64_t batches = (rows + kLanes - 1) / kLanes;
#pragma omp parallel
    {
        std::vector<float> xt, use_t;
        std::vector<int> cols;
        double e[kLanes];
#pragma omp for schedule(dynamic, 2)
        for (int64_t bi = 0; bi < batches; ++bi) {
            const int64_t i0 = bi * kLanes;
            interleave_rows(t, &use, i0, xt, use_t);
            cols.clear();  // columns used in some lane of the batch
            for (int64_t j = 0; j < width; ++j) {
                bool any = false;
                for (int l = 0; l < kLanes; ++l) any |= use_t[j * kLanes + l] != 0.0f;
                if (any) cols.push_back(static_cast<int>(j));
            }
            for (size_t c = 0; c < cands.size(); ++c) {
                binned_braq1_error_lanes<Groups>(xt.data(), use_t.data(), cols, cands[c].data(), e);
                for (int l = 0; l < kLanes && i0 + l < rows; ++l) err[c * rows + i0 + l] = e[l];
            }
        }
    }
    size_t best = 0;
    double best_err = INFINITY;
    for (size_t c = 0; c < cands.size(); ++c) {
        double e = 0.0;
        for (int64_t i = 0; i < rows; ++i) e += err[c * rows + i];
        if (e < best_err) best_err = e, best = c;
    }
    return cands.empty() ? std::vector<float>(Groups - 1, INFINITY) : cands[best];
}

Partition salient_part(const Matrix& t, const Mask* allowed, int up_lim) {
    Partition part;
    const std::vector<int> ranked = rank_columns(t, allowed);
    part.salient_columns = search_salient_count(t, allowed, ranked, up_lim);
    part.masks.push_back(salient_column_mask(t, allowed, ranked, part.salient_columns));
    part.orders.push_back(2);
    part.is_salient.push_back(1);
    return part;
}

}  // namespace

std::vector<int> rank_columns(const Matrix& t, const Mask* allowed) {
    const int64_t rows = t.rows, width = t.cols;
    std::vector<double> score(static_cast<size_t>(width), 0.0);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < width; ++j)
            if (allowed_at(allowed, i * width + j)) score[j] += std::fabs(t(i, j));
    std::vector<int> order(static_cast<size_t>(width));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return score[a] > score[b]; });
    return order;
}

int search_salient_count(const Matrix& t, const Mask* allowed, const std::vector<int>& ranked, int up_lim) {
    const int64_t rows = t.rows, width = t.cols;
    const int max_count = static_cast<int>(std::min<int64_t>(up_lim - 1, width - 1));
    if (max_count < 1) return 0;
    std::vector<double> err(static_cast<size_t>(max_count) * rows);
    // Column lists of the salient set and of the rest for every candidate count (ascending, as the
    // per-row BRAQ sums run), shared by all rows.
    std::vector<std::vector<int>> sal_cols(static_cast<size_t>(max_count)), rest_cols(sal_cols.size());
    {
        std::vector<uint8_t> is_sal(static_cast<size_t>(width), 0);
        for (int c = 1; c <= max_count; ++c) {
            is_sal[ranked[c - 1]] = 1;
            for (int j = 0; j < width; ++j) (is_sal[j] ? sal_cols : rest_cols)[c - 1].push_back(j);
        }
    }
    const int64_t batches = (rows + kLanes - 1) / kLanes;
#pragma omp parallel
    {
        std::vector<float> wt, mt, out(static_cast<size_t>(width * kLanes));
        double e_sal[kLanes], e_rest[kLanes];
#pragma omp for schedule(dynamic, 2)
        for (int64_t bi = 0; bi < batches; ++bi) {
            const int64_t i0 = bi * kLanes;
            interleave_rows(t, allowed, i0, wt, mt);
            for (int c = 1; c <= max_count; ++c) {
                const auto& sc = sal_cols[c - 1];
                const auto& rc = rest_cols[c - 1];
                braq_lanes(wt.data(), mt.data(), sc.data(), static_cast<int64_t>(sc.size()), 2, out.data(),
                           e_sal);
                braq_lanes(wt.data(), mt.data(), rc.data(), static_cast<int64_t>(rc.size()), 2, out.data(),
                           e_rest);
                for (int l = 0; l < kLanes && i0 + l < rows; ++l)
                    err[static_cast<size_t>(c - 1) * rows + i0 + l] = e_sal[l] + e_rest[l];
            }
        }
    }
    int best = 1;
    double best_err = INFINITY;
    for (int c = 1; c <= max_count; ++c) {
        double e = 0.0;
        for (int64_t i = 0; i < rows; ++i) e += err[static_cast<size_t>(c - 1) * rows + i];
        if (e < best_err) best_err = e, best = c;
    }
    return best;
}

std::vector<float> quantiles(std::vector<float> values, const std::vector<double>& levels) {
    std::vector<float> q(levels.size(), 0.0f);
    if (values.empty()) return q;
    // Two halves sorted in parallel, then merged (the sorted sequence is the same as one sort's).
    const int64_t n = static_cast<int64_t>(values.size()), half = n / 2;
#pragma omp parallel for schedule(static, 1) if (n >= 4 * kParallelMinWork)
    for (int part = 0; part < 2; ++part)
        std::sort(values.begin() + (part ? half : 0), part ? values.end() : values.begin() + half);
    std::inplace_merge(values.begin(), values.begin() + half, values.end());
    const double last = static_cast<double>(values.size() - 1);
    for (size_t k = 0; k < levels.size(); ++k) {
        const double pos = levels[k] * last;
        const size_t lo = static_cast<size_t>(std::floor(pos));
        const size_t hi = std::min(lo + 1, values.size() - 1);
        const double frac = pos - static_cast<double>(lo);
        q[k] = static_cast<float>(values[lo] + frac * (static_cast<double>(values[hi]) - values[lo]));
    }
    return q;
}

Partition billm_partition(const Matrix& t, const Mask* allowed, int up_lim) {
    Partition part = salient_part(t, allowed, up_lim);
    Mask use;
    std::vector<float> abs_values;
    nonsalient(t, allowed, part.masks[0], use, abs_values);
    const std::vector<float> levels = quantiles(abs_values, linear_levels(0.10, 0.90, 81));
    std::vector<std::vector<float>> cands;
    for (float l : levels) cands.push_back({l});
    partition_nonsalient<2>(t, use, search_thresholds<2>(t, use, cands), part);
    return part;
}

Partition stbllm_partition(const Matrix& t, const Mask* allowed, int up_lim) {
    Partition part = salient_part(t, allowed, up_lim);
    Mask use;
    std::vector<float> abs_values;
    nonsalient(t, allowed, part.masks[0], use, abs_values);
    std::vector<double> lv = linear_levels(0.10, 0.90, 160);
    const std::vector<float> levels = quantiles(abs_values, lv);
    const float q90 = levels.back();
    std::vector<std::vector<float>> cands;
    for (float p : levels)
        if (2.0f * p <= q90) cands.push_back({p, 2.0f * p});
    if (cands.empty()) cands.push_back({levels.front(), 2.0f * levels.front()});
    partition_nonsalient<3>(t, use, search_thresholds<3>(t, use, cands), part);
    return part;
}

void cgb_split(const Matrix& t, Partition& part) {
    const int64_t rows = t.rows, width = t.cols;
    const Mask sal = part.masks[0];
    std::vector<float> nonzero;
    for (size_t k = 0; k < sal.size(); ++k)
        if (sal[k] && t.data[k] != 0.0f) nonzero.push_back(std::fabs(t.data[k]));
    if (nonzero.size() < 2) return;
    const std::vector<float> levels = quantiles(nonzero, linear_levels(0.10, 0.90, 81));
    std::vector<double> err(levels.size() * static_cast<size_t>(rows));
    const int64_t batches = (rows + kLanes - 1) / kLanes;
#pragma omp parallel
    {
        std::vector<float> wt, mt, lo(static_cast<size_t>(width * kLanes)), hi(lo.size()), out(lo.size());
        std::vector<int> cols;
        double e_lo[kLanes], e_hi[kLanes];
#pragma omp for schedule(dynamic, 2)
        for (int64_t bi = 0; bi < batches; ++bi) {
            const int64_t i0 = bi * kLanes;
            interleave_rows(t, &sal, i0, wt, mt);  // mt = salient flags of the batch
            // Only columns holding a salient entry in some lane can be inside either half.
            cols.clear();
            for (int64_t j = 0; j < width; ++j) {
                bool any = false;
                for (int l = 0; l < kLanes; ++l) any |= mt[j * kLanes + l] != 0.0f;
                if (any) cols.push_back(static_cast<int>(j));
            }
            for (size_t c = 0; c < levels.size(); ++c) {
                for (int j : cols)
                    for (int l = 0; l < kLanes; ++l) {
                        const int64_t k = static_cast<int64_t>(j) * kLanes + l;
                        const bool in_lo = mt[k] != 0.0f && std::fabs(wt[k]) < levels[c];
                        lo[k] = in_lo ? 1.0f : 0.0f;
                        hi[k] = mt[k] != 0.0f && !in_lo ? 1.0f : 0.0f;
                    }
                const int64_t nc = static_cast<int64_t>(cols.size());
                braq_lanes(wt.data(), lo.data(), cols.data(), nc, 2, out.data(), e_lo);
                braq_lanes(wt.data(), hi.data(), cols.data(), nc, 2, out.data(), e_hi);
                for (int l = 0; l < kLanes && i0 + l < rows; ++l) err[c * rows + i0 + l] = e_lo[l] + e_hi[l];
            }
        }
    }
    size_t best = 0;
    double best_err = INFINITY;
    for (size_t c = 0; c < levels.size(); ++c) {
        double e = 0.0;
        for (int64_t i = 0; i < rows; ++i) e += err[c * rows + i];
        if (e < best_err) best_err = e, best = c;
    }
    Mask lo(sal.size(), 0), hi(sal.size(), 0);
    for (size_t k = 0; k < sal.size(); ++k) {
        lo[k] = sal[k] && std::fabs(t.data[k]) < levels[best];
        hi[k] = sal[k] && !lo[k];
    }
    part.masks[0] = std::move(hi);
    part.masks.insert(part.masks.begin() + 1, std::move(lo));
    part.orders.insert(part.orders.begin() + 1, 2);
    part.is_salient.insert(part.is_salient.begin() + 1, 1);
}

}  // namespace pbs2p
