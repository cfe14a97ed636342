// Running packed layers inside the model: a LinearKernel over a packed layer, and loading a packed model
// directory (model.packed.safetensors + config.json) whose compressed linears never expand to fp32.
#pragma once

#include <memory>
#include <string>

#include "core/linear_kernel.h"
#include "model/model.h"
#include "packed/packed_kernels.h"

namespace pbs2p {

class PackedLinearKernel : public LinearKernel {
public:
    // Builds the compute layout when the kernel reads it, and then drops the storage codes.
    PackedLinearKernel(PackedLayer layer, const PackedKernel& kernel);

    void forward(const float* x, int64_t tokens, float* y) const override;
    int64_t in_features() const override { return weights_.cols(); }
    int64_t out_features() const override { return weights_.rows(); }
    // Bytes held in memory (compute layout, or storage codes and scales for the reference kernel).
    int64_t weight_bytes() const override;
    std::string format_name() const override;
    const PackedKernel& kernel() const { return kernel_; }

private:
    PackedMatrix weights_;
    const PackedKernel& kernel_;
};

// `path` is a directory holding model.packed.safetensors and config.json, or the packed file itself
// (config.json next to it). `kernel_name` empty = fastest_packed_kernel().
Model load_packed_model(const std::string& path, const std::string& kernel_name = "");

}  // namespace pbs2p
