#include "compress/quantizer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pbs2p {

QuantGrid fit_grid(const float* x, int64_t n, int bits, bool symmetric) {
    PBS2P_CHECK(bits >= 1 && bits <= 8, "quantizer: bits must be in 1..8, got {}", bits);
    QuantGrid g;
    g.maxq = (1 << bits) - 1;
    float xmin = 0.0f, xmax = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
        xmin = std::min(xmin, x[j]);
        xmax = std::max(xmax, x[j]);
    }
    if (symmetric) {
        xmax = std::max(std::fabs(xmin), xmax);
        if (xmin < 0.0f) xmin = -xmax;
    }
    if (xmin == 0.0f && xmax == 0.0f) {
        xmin = -1.0f;
        xmax = 1.0f;
    }
    g.scale = (xmax - xmin) / static_cast<float>(g.maxq);
    g.zero = symmetric ? static_cast<float>((g.maxq + 1) / 2) : std::nearbyint(-xmin / g.scale);
    return g;
}

}  // namespace pbs2p
