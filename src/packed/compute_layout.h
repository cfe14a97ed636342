// In-memory compute layout of a packed layer, built at load time for the fast kernels: the 11-bit codes
// expanded into a keep plane and a sign plane, transposed so that one row block of 32 rows holds, per group
// of 8 columns, the 32 keep bytes then the 32 sign bytes (bit j = column j of the group). Scales are folded
// for  y_i = sum_g [ (mu - alpha) * sum_{kept j} x_j + 2 alpha * sum_{kept j, sign +} x_j ].
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "packed/packed_layer.h"

namespace pbs2p {

inline constexpr int kRowBlock = 32;

// 32 rows x 8 columns = 256 weights in 64 bytes: 2 bits/weight.
struct ComputeGroup {
    uint8_t keep[kRowBlock];
    uint8_t sign[kRowBlock];  // set only where kept and the sign is +
};
static_assert(sizeof(ComputeGroup) == 64, "ComputeGroup must be 2 bitplanes of 32 x 8");

struct ComputeLayout {
    int64_t rows = 0;
    int64_t cols = 0;
    int64_t scale_group = 0;
    int64_t row_blocks = 0;                 // ceil(rows / 32); padding rows are all zero
    AlignedVector<ComputeGroup> groups;     // [row_block][cols / 8]
    AlignedVector<float> kept_scale;        // mu - alpha, [row_block][scale group][32]
    AlignedVector<float> sign_scale;        // 2 alpha,    [row_block][scale group][32]

    int64_t groups_per_row() const { return cols / kPackedGroup; }
    int64_t scale_groups_per_row() const { return cols / scale_group; }
    const ComputeGroup* block(int64_t row_block) const { return groups.data() + row_block * groups_per_row(); }
    const float* kept_scales(int64_t row_block) const {
        return kept_scale.data() + row_block * scale_groups_per_row() * kRowBlock;
    }
    const float* sign_scales(int64_t row_block) const {
        return sign_scale.data() + row_block * scale_groups_per_row() * kRowBlock;
    }
    int64_t bytes() const {
        return static_cast<int64_t>(groups.size() * sizeof(ComputeGroup) + 2 * kept_scale.size() * sizeof(float));
    }
};

// Decodes the codes of a validated packed layer into the compute layout.
ComputeLayout make_compute_layout(const PackedLayer& layer);

}  // namespace pbs2p
