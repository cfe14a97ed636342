// A linear layer with bf16 weights (16 bits/weight), the usual half-size baseline for the packed format:
// weights stay bf16 in memory and are widened to fp32 on the fly (AVX2) for single tokens, and panel by
// panel into sgemm for many tokens. Accumulation is fp32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/linear_kernel.h"

namespace pbs2p {

class Bf16LinearKernel : public LinearKernel {
  public:
    // weights: [out x in] row-major bf16 bit patterns.
    Bf16LinearKernel(std::vector<uint16_t> weights, int64_t out, int64_t in);
    // Rounds fp32 weights [out x in] to bf16 (nearest even).
    static Bf16LinearKernel from_f32(const float* weights, int64_t out, int64_t in);

    void forward(const float* x, int64_t tokens, float* y) const override;
    int64_t in_features() const override { return in_; }
    int64_t out_features() const override { return out_; }
    int64_t weight_bytes() const override { return static_cast<int64_t>(weights_.size() * sizeof(uint16_t)); }
    std::string format_name() const override { return "bf16"; }
    const std::vector<uint16_t>& weights() const { return weights_; }

  private:
    std::vector<uint16_t> weights_;
    int64_t out_ = 0, in_ = 0;
};

// y[out] = W x with bf16 W (scalar reference, fp64 accumulation; for tests).
void bf16_gemv_reference(const uint16_t* w, int64_t out, int64_t in, const float* x, float* y);

}  // namespace pbs2p
