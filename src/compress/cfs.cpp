#include "compress/cfs.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace pbs2p {

std::vector<double> block_importance(const std::vector<double>& cosine, const std::string& variant) {
    PBS2P_CHECK(!cosine.empty(), "cfs: no block cosines given");
    PBS2P_CHECK(variant == "recip" || variant == "one_minus", "cfs: importance variant must be recip | one_minus, got '{}'",
                variant);
    constexpr double eps = 1e-3;
    std::vector<double> raw(cosine.size());
    for (size_t l = 0; l < cosine.size(); ++l) {
        PBS2P_CHECK(std::isfinite(cosine[l]), "cfs: cosine of block {} is not finite", l);
        raw[l] = variant == "recip" ? 1.0 / std::max(cosine[l], eps) : std::max(1.0 - cosine[l], eps);
    }
    const double mean = std::accumulate(raw.begin(), raw.end(), 0.0) / static_cast<double>(raw.size());
    for (double& r : raw) r /= mean;
    return raw;
}

std::vector<int> allocate_block_keep_counts(const std::vector<double>& importance, int n_target, int m_group,
                                            int n_low, int n_high, double gamma) {
    PBS2P_CHECK(!importance.empty(), "cfs: no block importances given");
    PBS2P_CHECK(1 <= n_low && n_low <= n_target && n_target <= n_high && n_high < m_group,
                "cfs: need 1 <= N_low <= N_target <= N_high < M, got {} <= {} <= {} < {}", n_low, n_target, n_high,
                m_group);
    const size_t L = importance.size();
    if (gamma <= 0.0) gamma = n_target;
    std::vector<double> x(L);
    for (size_t l = 0; l < L; ++l) {
        PBS2P_CHECK(std::isfinite(importance[l]), "cfs: importance of block {} is not finite", l);
        x[l] = n_target + gamma * (importance[l] - 1.0);
    }
    const long long target = static_cast<long long>(L) * n_target;
    auto count_at = [&](double c, std::vector<int>& n) {
        long long sum = 0;
        for (size_t l = 0; l < L; ++l) {
            const double v = std::floor(x[l] + c + 0.5);
            n[l] = static_cast<int>(std::clamp(v, static_cast<double>(n_low), static_cast<double>(n_high)));
            sum += n[l];
        }
        return sum;
    };
    std::vector<int> n(L);
    const auto [xmin, xmax] = std::minmax_element(x.begin(), x.end());
    double lo = n_low - *xmax - 1.0, hi = n_high - *xmin + 1.0;  // sum(lo) = L n_low <= target <= sum(hi)
    for (int it = 0; it < 200; ++it) {
        const double mid = 0.5 * (lo + hi);
        if (count_at(mid, n) <= target) lo = mid;
        else hi = mid;
    }
    long long sum = count_at(lo, n);
    // Distance of each layer to its next upward rounding boundary at shift lo.
    std::vector<size_t> order(L);
    std::iota(order.begin(), order.end(), 0);
    auto gap = [&](size_t l) {
        const double v = x[l] + lo + 0.5;
        return std::ceil(v) - v;
    };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const double ga = gap(a), gb = gap(b);
        if (ga != gb) return ga < gb;
        return importance[a] > importance[b];
    });
    for (size_t k = 0; sum < target && k < L; ++k) {
        const size_t l = order[k];
        if (n[l] < n_high) ++n[l], ++sum;
    }
    PBS2P_CHECK(sum == target, "cfs: could not reach the target mean {} (internal)", n_target);
    return n;
}

}  // namespace pbs2p
