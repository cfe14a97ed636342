// Random valid BinaryLayouts for tests and benchmarks of the packed format: exactly N kept of every M, random
// signs, fp16-exact alpha > 0 and mu. random_packed_layer draws the codes directly (uniform over the valid
// codes of N:8), fast enough for LLaMA-7B-sized synthetic models.
#pragma once

#include <algorithm>
#include <numeric>
#include <string>

#include "compress/binary_layout.h"
#include "compress/pattern_codebook.h"
#include "core/half.h"
#include "core/rng.h"
#include "packed/packed_layer.h"

namespace pbs2p {

// A layout of this shape with nothing kept and no scales yet.
inline BinaryLayout empty_layout(int64_t rows, int64_t cols, const std::string& code, int n_keep, int m_group,
                                 int64_t scale_group) {
    BinaryLayout l;
    l.code = code;
    l.rows = rows;
    l.cols = cols;
    l.n_keep = n_keep;
    l.m_group = m_group;
    l.scale_group = scale_group;
    l.keep.assign(static_cast<size_t>(rows * cols), 0);
    l.sign.assign(static_cast<size_t>(rows * cols), 0);
    return l;
}

inline BinaryLayout random_layout(int64_t rows, int64_t cols, int n_keep, int m_group, int64_t scale_group,
                                  uint64_t seed) {
    Rng rng(seed);
    BinaryLayout l = empty_layout(rows, cols, "nm", n_keep, m_group, scale_group);
    std::vector<int> order(static_cast<size_t>(m_group));
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j0 = 0; j0 < cols; j0 += m_group) {
            std::iota(order.begin(), order.end(), 0);
            for (int k = m_group - 1; k > 0; --k)
                std::swap(order[k], order[rng.below(static_cast<uint64_t>(k + 1))]);
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

// Random layout of a codebook code (tern11 | tern13): uniform codebook patterns, fp16-exact alpha > 0, mu =
// 0.
inline BinaryLayout random_code_layout(int64_t rows, int64_t cols, const std::string& code,
                                       int64_t scale_group, uint64_t seed) {
    const PatternCodebook& book = pattern_codebook(code);
    Rng rng(seed);
    BinaryLayout l = empty_layout(rows, cols, code, 0, kPackedGroup, scale_group);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j0 = 0; j0 < cols; j0 += kPackedGroup) {
            const auto& p = book.patterns[rng.below(static_cast<uint64_t>(book.size()))];
            for (int j = 0; j < kPackedGroup; ++j) {
                const auto idx = static_cast<size_t>(i * cols + j0 + j);
                l.keep[idx] = p[j] != 0;
                l.sign[idx] = p[j] > 0;
            }
        }
    const auto n_scales = static_cast<size_t>(rows * (cols / scale_group));
    for (size_t s = 0; s < n_scales; ++s)
        l.alpha.push_back(round_to_fp16(static_cast<float>(0.01 + 0.1 * rng.uniform())));
    l.mu.assign(n_scales, 0.0f);
    return l;
}

// Uniformly random valid codes for n_keep:8 and scales like random_layout's.
inline PackedLayer random_packed_layer(int64_t rows, int64_t cols, int n_keep, int64_t scale_group,
                                       uint64_t seed) {
    PackedLayer layer;
    PackedLayerDesc& d = layer.desc;
    d.rows = rows;
    d.cols = cols;
    d.n_keep = n_keep;
    d.m_group = kPackedGroup;
    d.scale_group = scale_group;
    d.code_bits = code_bits_for(n_keep);
    validate_desc(d, "random packed layer");
    uint64_t patterns = 1;  // C(8, n_keep) * 2^n_keep valid codes
    for (int k = 0; k < n_keep; ++k) patterns = patterns * static_cast<uint64_t>(kPackedGroup - k) / (k + 1);
    const uint64_t valid_codes = patterns << n_keep;
    layer.codes.assign(static_cast<size_t>(d.code_bytes()), 0);
    Rng rng(seed);
    uint64_t acc = 0;  // LSB-first bit writer
    int filled = 0;
    size_t out = 0;
    for (int64_t k = 0; k < rows * d.groups_per_row(); ++k) {
        acc |= (rng.next_u64() % valid_codes) << filled;
        filled += d.code_bits;
        while (filled >= 8) {
            layer.codes[out++] = static_cast<uint8_t>(acc);
            acc >>= 8;
            filled -= 8;
        }
    }
    if (filled > 0) layer.codes[out] = static_cast<uint8_t>(acc);
    layer.scales.resize(static_cast<size_t>(rows * d.scale_groups_per_row()));
    for (ScalePair& p : layer.scales) {
        p.alpha_fp16 = f32_to_fp16(static_cast<float>(0.01 + 0.1 * rng.uniform()));
        p.mu_fp16 = f32_to_fp16(static_cast<float>(0.02 * rng.normal()));
    }
    return layer;
}

}  // namespace pbs2p
