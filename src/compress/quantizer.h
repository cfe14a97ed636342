// Min-max uniform grid (GPTQ/RTN): asymmetric by default, symmetric on request; one grid per row or per
// group of columns.
#pragma once

#include <cstdint>

namespace pbs2p {

struct QuantGrid {
    float scale = 1.0f;
    float zero = 0.0f;
    int maxq = 1;  // 2^bits - 1
};

// Grid for values x[0..n): xmin = min(0, min x), xmax = max(0, max x) (both 0 -> -1, +1);
// scale = (xmax - xmin) / maxq, zero = round(-xmin / scale). Symmetric: xmax = max(|xmin|, xmax),
// xmin = -xmax if xmin < 0, zero = (maxq + 1) / 2.
QuantGrid fit_grid(const float* x, int64_t n, int bits, bool symmetric);

// scale * (clamp(round(w / scale) + zero, 0, maxq) - zero); round half to even like torch.round.
inline float quantize_value(float w, const QuantGrid& g) {
    float q = __builtin_nearbyintf(w / g.scale) + g.zero;
    q = q < 0.0f ? 0.0f : (q > static_cast<float>(g.maxq) ? static_cast<float>(g.maxq) : q);
    return g.scale * (q - g.zero);
}

}  // namespace pbs2p
