// Structured form of an N:M-pruned, binarized linear layer, as produced by the binary compressors
// (pbs2p, and stbllm without salient columns) and consumed by the packed format.
//
// For row i and column j, with g = j / scale_group:
//   W_hat[i][j] = keep[i][j] ? mu[i][g] + (sign[i][j] ? +alpha[i][g] : -alpha[i][g]) : 0
// code "nm": every aligned group of m_group consecutive columns of a row keeps exactly n_keep entries.
// Otherwise `code` names a pattern codebook (compress/pattern_codebook.h): n_keep = 0 (any count per group
// of m_group = 8), mu = 0 and every group's pattern is in that codebook.
// alpha and mu hold values already rounded to fp16, so storing them as fp16 is lossless.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace pbs2p {

struct BinaryLayout {
    int64_t rows = 0;
    int64_t cols = 0;
    std::string code = "nm";   // nm | a pattern codebook name
    int n_keep = 0;            // N: kept weights per group (0 = variable, codebook layouts)
    int m_group = 0;           // M: group width along the input dimension
    int64_t scale_group = 0;   // columns sharing one (alpha, mu) pair; a multiple of m_group dividing cols
    std::vector<uint8_t> keep;  // rows * cols, 1 = kept
    std::vector<uint8_t> sign;  // rows * cols, 1 = +alpha, 0 = -alpha (0 where pruned)
    std::vector<float> alpha;   // rows * (cols / scale_group)
    std::vector<float> mu;      // rows * (cols / scale_group)

    int64_t scale_groups_per_row() const { return cols / scale_group; }
};

// Expands the structured form into an fp32 matrix.
inline Matrix dequantize(const BinaryLayout& layout) {
    Matrix w(layout.rows, layout.cols);
    const int64_t groups = layout.scale_groups_per_row();
    for (int64_t i = 0; i < layout.rows; ++i)
        for (int64_t j = 0; j < layout.cols; ++j) {
            const size_t idx = static_cast<size_t>(i * layout.cols + j);
            if (!layout.keep[idx]) continue;
            const size_t g = static_cast<size_t>(i * groups + j / layout.scale_group);
            w(i, j) = layout.mu[g] + (layout.sign[idx] ? layout.alpha[g] : -layout.alpha[g]);
        }
    return w;
}

}  // namespace pbs2p
