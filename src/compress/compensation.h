// The block loop shared by every Hessian-based method: the one place that decides the order of
// operations (compress a block, measure its error, push the error into the later columns).
//
// Two forms, both with lazy updates of the later columns by one sgemm per block (beta = block_size):
//  * exact column form (GPTQ / SparseGPT): inside the block columns are compressed one at a time and
//    each column's error is propagated to the remaining columns of the block (OBS update with the row of U);
//  * whole-block form (BiLLM / ARB-LLM / STBLLM / PBS2P): the block is compressed at once from its
//    error-updated weights, its error divided by diag(U) (as released) or solved exactly against U_BB.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "compress/hessian.h"
#include "core/tensor.h"

namespace pbs2p {

// Lazy update of all later columns: W[:, end:] -= err[rows x (end-start)] * U[start:end, end:].
void propagate_block_error(Matrix& W, const HessianFactor& f, int64_t start, int64_t end, const float* err);

// Exact column form. `rule(row, col, t, w, d)` returns the compressed value of column t of the block for
// one row: w points at that row's block values (width entries, already updated by the earlier columns;
// entries >= t may be read to choose a mask), d at the block's U diagonal, col = start + t.
// Rows are independent, so they run in parallel; the rule must only touch per-row state.
template <typename Rule>
void exact_column_loop(Matrix& W, const HessianFactor& f, int block_size, bool compensate, Rule&& rule);

// Whole-block form. `rule(start, end, block, q)` receives the block's current weights (rows x width,
// contiguous) and writes its compressed form into q (same shape). With compensate = false the error is
// not propagated (the 'uncompensated' baseline).
using BlockRule = std::function<void(int64_t start, int64_t end, const Matrix& block, Matrix& q)>;
void whole_block_loop(Matrix& W, const HessianFactor& f, int block_size, bool compensate, bool exact_error,
                      const BlockRule& rule);

// ---- implementation of the template ----

template <typename Rule>
void exact_column_loop(Matrix& W, const HessianFactor& f, int block_size, bool compensate, Rule&& rule) {
    const int64_t rows = W.rows, cols = W.cols;
    for (int64_t start = 0; start < cols; start += block_size) {
        const int64_t end = std::min<int64_t>(start + block_size, cols), width = end - start;
        std::vector<float> d(static_cast<size_t>(width));
        for (int64_t t = 0; t < width; ++t) d[t] = static_cast<float>(f.u_diag[start + t]);
        Matrix err(rows, width);
#pragma omp parallel
        {
            std::vector<float> w(static_cast<size_t>(width));
#pragma omp for schedule(static)
            for (int64_t i = 0; i < rows; ++i) {
                float* wrow = W.row(i) + start;
                for (int64_t t = 0; t < width; ++t) w[t] = wrow[t];
                float* e = err.row(i);
                for (int64_t t = 0; t < width; ++t) {
                    const float q = rule(i, start + t, static_cast<int>(t), w.data(), d.data());
                    const float et = (w[t] - q) / d[t];
                    e[t] = et;
                    w[t] = q;
                    if (compensate) {
                        const float* urow = f.u_f32.row(start + t) + start;
                        for (int64_t k = t + 1; k < width; ++k) w[k] -= et * urow[k];
                    }
                }
                for (int64_t t = 0; t < width; ++t) wrow[t] = w[t];
            }
        }
        if (compensate) propagate_block_error(W, f, start, end, err.ptr());
    }
}

}  // namespace pbs2p
