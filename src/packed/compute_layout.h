// In-memory compute layouts of a packed layer, built at load time for the fast kernels (the storage codes
// are not SIMD-friendly). Two forms:
//   bit planes (ComputeLayout, 2 bits/weight): the codes expanded into a keep plane and a sign plane,
//     transposed so that one row block of 32 rows holds, per group of 8 columns, the 32 keep bytes then the
//     32 sign bytes (bit j = column j of the group); fp32 scales folded for
//     y_i = sum_g [ (mu - alpha) * sum_{kept j} x_j + 2 alpha * sum_{kept j, sign +} x_j ].
//   low bit (LowbitLayout, 1.5 bits/weight): the keep plane and a 4-bit sign code per row and group, fp16
//     scales; for layers whose groups keep at most 4 weights (details below).
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
    int64_t row_blocks = 0;              // ceil(rows / 32); padding rows are all zero
    AlignedVector<ComputeGroup> groups;  // [row_block][cols / 8]
    AlignedVector<float> kept_scale;     // mu - alpha, [row_block][scale group][32]
    AlignedVector<float> sign_scale;     // 2 alpha,    [row_block][scale group][32]

    int64_t groups_per_row() const { return cols / kPackedGroup; }
    int64_t scale_groups_per_row() const { return cols / scale_group; }
    const ComputeGroup* block(int64_t row_block) const {
        return groups.data() + row_block * groups_per_row();
    }
    const float* kept_scales(int64_t row_block) const {
        return kept_scale.data() + row_block * scale_groups_per_row() * kRowBlock;
    }
    const float* sign_scales(int64_t row_block) const {
        return sign_scale.data() + row_block * scale_groups_per_row() * kRowBlock;
    }
    int64_t bytes() const {
        return static_cast<int64_t>(groups.size() * sizeof(ComputeGroup) +
                                    2 * kept_scale.size() * sizeof(float));
    }
};

// Decodes the codes of a validated packed layer into the compute layout.
ComputeLayout make_compute_layout(const PackedLayer& layer);

// ---- low-bit layout (1.5 bits/weight) -----------------------------------------------------------------
// Per row block of 32 rows and group of 8 columns: the 32 keep bytes, then 16 bytes of 4-bit sign codes
// (byte b: low nibble = row b, high nibble = row b + 16): 12 bits per group of 8 weights. The sign code
// holds the signs of the kept weights, the columns 0-3 from bit 0 upwards in column order, the columns
// 4-7 from bit 3 downwards starting at column 7; the sign byte (bit j = column j kept and +) is rebuilt in
// SIMD from the keep byte and the code (packed_kernels_avx2.cpp). Any group with at most 4 kept weights
// fits; one with more fits only where the weights that share a bit have the same sign (5 kept: the last
// kept of columns 0-3 and the first kept of columns 4-7). Scales stay fp16 as stored: alpha, and mu for
// N:M codes, [row_block][scale group][32].
inline constexpr int kSignCodeBits = 4;

struct LowbitGroup {
    uint8_t keep[kRowBlock];
    uint8_t sign_code[kRowBlock / 2];
};
static_assert(sizeof(LowbitGroup) == 48, "LowbitGroup must be 32 keep bytes + 32 nibbles");

// Sign code of a group, false when the group does not fit (see above).
bool encode_sign_code(uint8_t keep_mask, uint8_t sign_mask, uint8_t& code);
// Sign byte of a keep byte and a sign code (scalar reference of the SIMD rebuild).
uint8_t decode_sign_code(uint8_t keep_mask, uint8_t code);

struct LowbitLayout {
    int64_t rows = 0;
    int64_t cols = 0;
    int64_t scale_group = 0;
    int64_t row_blocks = 0;
    bool has_mu = false;                 // N:M codes; codebook codes have mu = 0
    AlignedVector<LowbitGroup> groups;   // [row_block][cols / 8]
    AlignedVector<uint16_t> alpha_fp16;  // [row_block][scale group][32]
    AlignedVector<uint16_t> mu_fp16;     // same, empty without mu

    bool empty() const { return groups.empty(); }
    int64_t groups_per_row() const { return cols / kPackedGroup; }
    int64_t scale_groups_per_row() const { return cols / scale_group; }
    const LowbitGroup* block(int64_t row_block) const { return groups.data() + row_block * groups_per_row(); }
    const uint16_t* alphas(int64_t row_block) const {
        return alpha_fp16.data() + row_block * scale_groups_per_row() * kRowBlock;
    }
    const uint16_t* mus(int64_t row_block) const {
        return mu_fp16.data() + row_block * scale_groups_per_row() * kRowBlock;
    }
    int64_t bytes() const {
        return static_cast<int64_t>(groups.size() * sizeof(LowbitGroup) +
                                    (alpha_fp16.size() + mu_fp16.size()) * sizeof(uint16_t));
    }
};

// True when every group of the layer fits the low-bit layout: always for N:M with at most 4 of 8 kept.
bool fits_lowbit_layout(const PackedLayer& layer);
// Low-bit layout of a layer that fits (throws pbs2p::Error otherwise).
LowbitLayout make_lowbit_layout(const PackedLayer& layer);

}  // namespace pbs2p
