// Synthetic layers for the compressor tests: W with a few large rows, H = 2 X^T X / T from correlated
// random inputs X with outlier columns (the shape of real LLM activations), optionally a dead column.
#pragma once

#include <cmath>

#include "core/rng.h"
#include "core/tensor.h"

namespace pbs2p::test {

struct SyntheticLayer {
    Matrix w;
    MatrixD h;
};

inline SyntheticLayer make_layer(int64_t rows, int64_t cols, uint64_t seed, int64_t dead_col = -1, int64_t tokens = 0,
                                 double outlier_scale = 8.0) {
    Rng rng(seed);
    if (tokens <= 0) tokens = 2 * cols + 64;
    // X = Z * (I + 0.3 G) with heavy columns.
    MatrixD mix(cols, cols);
    for (int64_t i = 0; i < cols; ++i)
        for (int64_t j = 0; j < cols; ++j) mix(i, j) = (i == j ? 1.0 : 0.0) + 0.3 * rng.normal() / std::sqrt(double(cols) / 16);
    std::vector<double> col_scale(static_cast<size_t>(cols), 1.0);
    for (int64_t j = 0; j < cols; j += 17) col_scale[j] = outlier_scale;
    MatrixD x(tokens, cols);
    std::vector<double> z(static_cast<size_t>(cols));
    for (int64_t t = 0; t < tokens; ++t) {
        for (auto& v : z) v = rng.normal();
        for (int64_t j = 0; j < cols; ++j) {
            double s = 0.0;
            for (int64_t k = 0; k < cols; ++k) s += z[k] * mix(k, j);
            x(t, j) = (j == dead_col) ? 0.0 : s * col_scale[j];
        }
    }
    SyntheticLayer l{Matrix(rows, cols), MatrixD(cols, cols)};
    for (int64_t i = 0; i < cols; ++i)
        for (int64_t j = i; j < cols; ++j) {
            double s = 0.0;
            for (int64_t t = 0; t < tokens; ++t) s += x(t, i) * x(t, j);
            l.h(i, j) = l.h(j, i) = 2.0 * s / tokens;
        }
    for (int64_t i = 0; i < rows; ++i) {
        const double row_scale = (i % 11 == 0) ? 3.0 : 1.0;
        for (int64_t j = 0; j < cols; ++j) l.w(i, j) = static_cast<float>(0.02 * row_scale * rng.normal());
    }
    return l;
}

}  // namespace pbs2p::test
