// A linear layer's weight in some compute format other than a plain fp32 matrix (for example packed
// sub-1-bit weights). The model layer calls it through this interface, once per layer per forward
// pass, so the virtual call never sits in an inner loop.
#pragma once

#include <cstdint>
#include <string>

namespace pbs2p {

class LinearKernel {
public:
    virtual ~LinearKernel() = default;
    // y[tokens x out] = x[tokens x in] * W^T (no bias; the caller adds it).
    virtual void forward(const float* x, int64_t tokens, float* y) const = 0;
    virtual int64_t in_features() const = 0;
    virtual int64_t out_features() const = 0;
    // Bytes of weight data held in memory by this kernel.
    virtual int64_t weight_bytes() const = 0;
    virtual std::string format_name() const = 0;
};

}  // namespace pbs2p
