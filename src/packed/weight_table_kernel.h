// Products with a WeightTable (LM head) and row lookups (token embedding), table-driven like the packed
// kernels: one row per implementation (name, table type, instruction set, activations, GEMV). The
// reference rows are scalar (fp64 over decoded weights, or the int8-activation arithmetic of the fast
// kernels); the AVX2 rows (weight_table_kernels_avx2.cpp) are tested against them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/table_kernel.h"
#include "packed/weight_table.h"

namespace pbs2p {

// y[rows] = T x.
using TableGemvFn = void (*)(const WeightTable& table, const float* x, float* y);

struct TableKernelImpl {
    const char* name;
    TableType type;
    const char* isa;
    const char* activations;  // "f32" or "q8" (int8 per block of 32, see ActivationsQ8)
    TableGemvFn gemv;
};

// Every implementation in this build, the reference rows first.
const std::vector<TableKernelImpl>& table_kernels();
// The fastest implementation for a type (the last row of that type).
const TableKernelImpl& fastest_table_kernel(TableType type);
std::vector<TableKernelImpl> avx2_table_kernels();  // empty when AVX2/FMA/F16C are not compiled in

// Scalar int8-activation GEMV for q8 / q4 (the arithmetic of the fast kernels).
void table_gemv_q8_activations_reference(const WeightTable& table, const float* x, float* y);

// A table used as token embedding and/or LM head. Single tokens go through the GEMV kernel; from
// kPanelTokens tokens on, panels of rows are decoded to fp32 and multiplied with sgemm.
class WeightTableKernel : public TableKernel {
  public:
    static constexpr int64_t kPanelTokens = 8;
    // impl: nullptr = fastest_table_kernel(table.type).
    explicit WeightTableKernel(WeightTable table, const TableKernelImpl* impl = nullptr);

    void forward(const float* x, int64_t tokens, float* y) const override;
    void decode_row(int64_t row, float* out) const override { table_.decode_row(row, out); }
    int64_t in_features() const override { return table_.cols; }
    int64_t out_features() const override { return table_.rows; }
    int64_t weight_bytes() const override { return table_.bytes(); }
    std::string format_name() const override;
    const WeightTable& table() const { return table_; }

  private:
    WeightTable table_;
    const TableKernelImpl& impl_;
};

}  // namespace pbs2p
