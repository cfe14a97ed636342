#include "packed/weight_table_kernel.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/stage_profile.h"
#include "packed/panel_gemm.h"

namespace pbs2p {

void table_gemv_q8_activations_reference(const WeightTable& table, const float* x, float* y) {
    ActivationsQ8 xq;
    quantize_activations_q8(x, table.cols, xq);
    for (int64_t r = 0; r < table.rows; ++r) y[r] = table_dot_q8_activations(table, r, xq);
}

const std::vector<TableKernelImpl>& table_kernels() {
    static const std::vector<TableKernelImpl> kernels = [] {
        std::vector<TableKernelImpl> k;
        for (const TableFormat& f : table_formats())
            k.push_back({"reference", f.type, "scalar", "f32", table_gemv_reference});
        for (TableType t : {TableType::q8, TableType::q4})
            k.push_back({"reference_q8", t, "scalar", "q8", table_gemv_q8_activations_reference});
        for (const TableKernelImpl& a : avx2_table_kernels()) k.push_back(a);
        return k;
    }();
    return kernels;
}

const TableKernelImpl& fastest_table_kernel(TableType type) {
    const TableKernelImpl* best = nullptr;
    for (const TableKernelImpl& k : table_kernels())
        if (k.type == type) best = &k;
    PBS2P_CHECK(best, "no table kernel for type {}", table_type_name(type));
    return *best;
}

WeightTableKernel::WeightTableKernel(WeightTable table, const TableKernelImpl* impl)
    : table_(std::move(table)), impl_(impl ? *impl : fastest_table_kernel(table_.type)) {
    PBS2P_CHECK(impl_.type == table_.type, "table kernel {} is for {} tables, not {}", impl_.name,
                table_type_name(impl_.type), table_type_name(table_.type));
}

void WeightTableKernel::forward(const float* x, int64_t tokens, float* y) const {
    const StageScope stage(Stage::head);
    if (tokens < kPanelTokens) {
        for (int64_t t = 0; t < tokens; ++t) impl_.gemv(table_, x + t * table_.cols, y + t * table_.rows);
        return;
    }
    panel_gemm(table_.rows, table_.cols, 1, x, tokens, y, [&](int64_t r0, int64_t r1, float* panel) {
#pragma omp parallel for schedule(static)
        for (int64_t r = r0; r < r1; ++r) table_.decode_row(r, panel + (r - r0) * table_.cols);
    });
}

std::string WeightTableKernel::format_name() const {
    return fmt::format("{} table ({})", table_.format().name, impl_.name);
}

}  // namespace pbs2p
