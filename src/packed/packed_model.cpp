#include "packed/packed_model.h"

#include <fmt/format.h>

#include <filesystem>
#include <utility>

#include "core/error.h"
#include "io/hf_config.h"
#include "packed/packed_file.h"
#include "packed/weight_table_kernel.h"

namespace pbs2p {

PackedLinearKernel::PackedLinearKernel(PackedLayer layer, const PackedKernel& kernel)
    : weights_(make_packed_matrix(std::move(layer), kernel.form)), kernel_(kernel) {
    if (kernel.form != ComputeForm::none) {
        weights_.storage.codes = {};
        weights_.storage.scales = {};
    }
}

void PackedLinearKernel::forward(const float* x, int64_t tokens, float* y) const {
    if (tokens == 1)
        kernel_.gemv(weights_, x, y);
    else
        kernel_.gemm(weights_, x, tokens, y);
}

int64_t PackedLinearKernel::weight_bytes() const {
    return weights_.storage.storage_bytes() + weights_.compute_bytes();
}

std::string PackedLinearKernel::format_name() const {
    const PackedLayerDesc& d = weights_.storage.desc;
    if (!d.is_nm()) return fmt::format("{} {} ({})", kPackedFormatName, d.code, kernel_.name);
    return fmt::format("{} {}:{} ({})", kPackedFormatName, d.n_keep, d.m_group, kernel_.name);
}

Model load_packed_model(const std::string& path, const std::string& kernel_name) {
    namespace fs = std::filesystem;
    const fs::path p(path);
    const fs::path file = fs::is_directory(p) ? p / kPackedModelFileName : p;
    const PackedFile packed = PackedFile::open(file.string());
    const ModelConfig config = load_hf_config(file.parent_path().empty() ? "." : file.parent_path().string());
    const PackedKernel& kernel = kernel_name.empty() ? fastest_packed_kernel() : packed_kernel(kernel_name);
    const LinearSource source = [&](const std::string& name, int64_t out, int64_t in, Linear& linear) {
        if (!packed.has_layer(name)) return false;
        const PackedLayerDesc& d = packed.desc(name);
        PBS2P_CHECK(d.rows == out && d.cols == in, "{}: packed layer '{}' is {}x{}, the config needs {}x{}",
                    file.string(), name, d.rows, d.cols, out, in);
        linear.kernel = std::make_shared<PackedLinearKernel>(packed.load_layer(name), kernel);
        return true;
    };
    // Tables (f16 / q8 / q4 embedding and head) stay in their stored type; fp32 ones load as matrices.
    const TableSource tables = [&](const std::string& name, int64_t,
                                   int64_t) -> std::shared_ptr<const TableKernel> {
        if (!packed.has_table(name)) return nullptr;
        return std::make_shared<WeightTableKernel>(packed.load_table(name));
    };
    return Model::load(config, packed.tensors(), source, tables);
}

}  // namespace pbs2p
