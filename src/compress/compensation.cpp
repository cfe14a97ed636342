#include "compress/compensation.h"

#include <algorithm>

#include "compress/lanes.h"
#include "core/blas.h"

namespace pbs2p {

void propagate_block_error(Matrix& W, const HessianFactor& f, int64_t start, int64_t end, const float* err) {
    const int64_t rest = W.cols - end;
    if (rest <= 0) return;
    const int64_t width = end - start;
    sgemm(false, false, W.rows, rest, width, -1.0f, err, width, f.u_f32.row(start) + end, f.u_f32.cols, 1.0f,
          W.ptr() + end, W.cols);
}

void whole_block_loop(Matrix& W, const HessianFactor& f, int block_size, bool compensate, bool exact_error,
                      const BlockRule& rule) {
    const int64_t rows = W.rows, cols = W.cols;
    for (int64_t start = 0; start < cols; start += block_size) {
        const int64_t end = std::min<int64_t>(start + block_size, cols), width = end - start;
        Matrix block(rows, width), q(rows, width);
        for (int64_t i = 0; i < rows; ++i) std::copy(W.row(i) + start, W.row(i) + end, block.row(i));
        rule(start, end, block, q);
        Matrix err(rows, width);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
        for (int64_t i = 0; i < rows; ++i) {
            float* e = err.row(i);
            const float* b = block.row(i);
            const float* qr = q.row(i);
            for (int64_t t = 0; t < width; ++t) e[t] = b[t] - qr[t];
            if (exact_error) {
                // Solve e_new * U_BB = dW (U_BB upper): forward substitution over the block's columns.
                for (int64_t t = 0; t < width; ++t) {
                    e[t] = static_cast<float>(e[t] / f.u_diag[start + t]);
                    const float* urow = f.u_f32.row(start + t) + start;
                    for (int64_t k = t + 1; k < width; ++k) e[k] -= e[t] * urow[k];
                }
            } else {
                for (int64_t t = 0; t < width; ++t) e[t] = static_cast<float>(e[t] / f.u_diag[start + t]);
            }
            std::copy(qr, qr + width, W.row(i) + start);
        }
        if (compensate) propagate_block_error(W, f, start, end, err.ptr());
    }
}

}  // namespace pbs2p
