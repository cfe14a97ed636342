#include "tools/model_loading.h"

#include <filesystem>

#include "packed/packed_file.h"
#include "packed/packed_model.h"

namespace pbs2p::tools {

namespace fs = std::filesystem;

bool is_packed_model(const std::string& path) {
    const fs::path p(path);
    if (fs::is_regular_file(p)) return p.filename().string().find(".packed.") != std::string::npos;
    return fs::is_directory(p) && fs::exists(p / kPackedModelFileName) &&
           !fs::exists(p / "model.safetensors") && !fs::exists(p / "model.safetensors.index.json");
}

Model load_model_for_cli(const std::string& path, const std::string& kernel) {
    if (is_packed_model(path)) return load_packed_model(path, kernel);
    return Model::load(path);
}

void add_kernel_option(CLI::App& app, std::string& kernel) {
    std::string names;
    for (const PackedKernel& k : packed_kernels()) names += std::string(names.empty() ? "" : " | ") + k.name;
    app.add_option(
        "--kernel", kernel,
        "Kernel for a packed model: " + names +
            " (default: the fastest this CPU runs; avx2_q8 and avx512_q8 quantize activations to int8,"
            " avx2_q8_lowbit does so over the 1.5-bit layout where the layer keeps at most 4 of 8, avx2_f32"
            " keeps them fp32)");
}

std::string model_directory(const std::string& path) {
    const fs::path p(path);
    if (fs::is_regular_file(p)) return p.parent_path().empty() ? std::string(".") : p.parent_path().string();
    return path;
}

}  // namespace pbs2p::tools
