// Random valid BinaryLayouts for tests and benchmarks of the packed format: exactly N kept of every M, random signs,
// fp16-exact alpha > 0 and mu.
#pragma once

#include <algorithm>
#include <numeric>

#include "compress/binary_layout.h"
#include "core/half.h"
#include "core/rng.h"

namespace pbs2p {

inline BinaryLayout random_layout(int64_t rows, int64_t cols, int n_keep, int m_group, int64_t scale_group,
                                  uint64_t seed) {
    Rng rng(seed);
    BinaryLayout l;
    l.rows = rows;
    l.cols = cols;
    l.n_keep = n_keep;
    l.m_group = m_group;
    l.scale_group = scale_group;
    l.keep.assign(static_cast<size_t>(rows * cols), 0);
    l.sign.assign(static_cast<size_t>(rows * cols), 0);
    std::vector<int> order(static_cast<size_t>(m_group));
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j0 = 0; j0 < cols; j0 += m_group) {
            std::iota(order.begin(), order.end(), 0);
            for (int k = m_group - 1; k > 0; --k) std::swap(order[k], order[rng.below(static_cast<uint64_t>(k + 1))]);
            for (int k = 0; k < n_keep; ++k) {
                const auto idx = static_cast<size_t>(i * cols + j0 + order[k]);
                l.keep[idx] = 1;
                l.sign[idx] = static_cast<uint8_t>(rng.below(2));
            }
        }
    const auto n_scales = static_cast<size_t>(rows * (cols / scale_group));
    for (size_t s = 0; s < n_scales; ++s) {
        l.alpha.push_back(round_to_fp16(static_cast<float>(0.01 + 0.1 * rng.uniform())));
        l.mu.push_back(round_to_fp16(static_cast<float>(0.02 * rng.normal())));
    }
    return l;
}

}  // namespace pbs2p
