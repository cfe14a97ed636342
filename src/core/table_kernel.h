// A [rows x cols] weight table (token embedding, LM head) held in a compact type: rows are looked up one
// at a time (embedding) or the whole table multiplies activations (LM head, through LinearKernel, with
// out_features = rows and in_features = cols).
#pragma once

#include <cstdint>

#include "core/linear_kernel.h"

namespace pbs2p {

class TableKernel : public LinearKernel {
  public:
    // out[cols] = row `row` of the table in fp32.
    virtual void decode_row(int64_t row, float* out) const = 0;
    int64_t rows() const { return out_features(); }
    int64_t cols() const { return in_features(); }
};

}  // namespace pbs2p
