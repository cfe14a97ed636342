// Many-token products with weights held in a compact form: panels of rows are expanded to fp32 once and
// multiplied with sgemm, so the expansion is amortised over all tokens while only one panel of fp32 weights
// exists at a time. Expansion runs in the caller's OpenMP loops; sgemm is called outside any parallel region
// (OpenBLAS threads itself, never nested inside our regions).
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/blas.h"
#include "core/tensor.h"

namespace pbs2p {

// Target size of one fp32 panel: large enough that sgemm sees wide panels and re-packs the activations
// only a few times (32 MB: 0.90x -> 0.97x sgemm at 512 x 14336 against 8 MB). Settable so that tests can
// exercise panel boundaries on small matrices.
inline int64_t& panel_bytes() {
    static int64_t bytes = int64_t{32} << 20;
    return bytes;
}

// Sets panel_bytes() for a scope (tests).
class PanelBytesScope {
  public:
    explicit PanelBytesScope(int64_t bytes) : saved_(panel_bytes()) { panel_bytes() = bytes; }
    ~PanelBytesScope() { panel_bytes() = saved_; }
    PanelBytesScope(const PanelBytesScope&) = delete;
    PanelBytesScope& operator=(const PanelBytesScope&) = delete;

  private:
    int64_t saved_;
};

// y[tokens x rows] = x[tokens x cols] * W^T. decode(r0, r1, panel) writes rows [r0, r1) of W as fp32,
// row-major with leading dimension cols. Panels start at multiples of row_align rows.
template <class Decode>
void panel_gemm(int64_t rows, int64_t cols, int64_t row_align, const float* x, int64_t tokens, float* y,
                Decode&& decode) {
    const int64_t bytes_per_unit = row_align * cols * static_cast<int64_t>(sizeof(float));
    const int64_t panel_rows = std::max<int64_t>(1, panel_bytes() / bytes_per_unit) * row_align;
    thread_local AlignedVector<float> panel;
    const auto need = static_cast<size_t>(std::min(panel_rows, rows) * cols);
    if (panel.size() < need) panel.resize(need);
    for (int64_t r0 = 0; r0 < rows; r0 += panel_rows) {
        const int64_t r1 = std::min(rows, r0 + panel_rows);
        decode(r0, r1, panel.data());
        sgemm(false, true, tokens, r1 - r0, cols, 1.0f, x, cols, panel.data(), cols, 0.0f, y + r0, rows);
    }
}

}  // namespace pbs2p
