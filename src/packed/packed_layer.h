// Storage form of one N:8-pruned, binarized linear layer (the packed sub-1-bit format, see docs/FORMAT.md),
// and its scalar reference encoder/decoder, which define the format.
//
// Per row, every aligned group of 8 input columns keeps exactly N weights. The keep pattern and the signs
// of the kept weights are coded jointly as one integer
//     code = rank(keep mask among the C(8,N) masks with N bits set, in increasing mask order) * 2^N
//          + kept sign bits (bit t = sign of the t-th kept column, 1 = +alpha)
// of code_bits(N) = ceil(log2(C(8,N) * 2^N)) bits (11 bits = 1.375 bits/weight for N = 4, 5, 6).
// Codes are concatenated in row-major group order into one LSB-first bitstream.
// Scales: one ScalePair (fp16 alpha, fp16 mu) per row per scale group: 32 / scale_group bits/weight.
// N:M with M dividing 8 (1:2, 2:4, ...) is stored as the equivalent (8N/M):8 pattern; other M are rejected.
//
// Codebook codes (code = "tern11" | "tern13", compress/pattern_codebook.h): the code of a group is the index
// of its ternary pattern in the codebook (11 or 13 bits per 8 columns = 1.375 or 1.625 bits/weight), any
// number of kept weights per group (n_keep = 0), and the scales are one fp16 alpha per row per scale group
// (16 / scale_group bits/weight; mu = 0): W_hat = alpha * pattern.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compress/binary_layout.h"

namespace pbs2p {

inline constexpr int kPackedGroup = 8;  // columns per code

// One (alpha, mu) pair in fp16: 32 bits per row per scale group.
struct ScalePair {
    uint16_t alpha_fp16;
    uint16_t mu_fp16;
};
static_assert(sizeof(ScalePair) == 4, "ScalePair must be 2 x fp16");

// Shape and coding parameters of one packed layer (the per-layer descriptor in the container).
struct PackedLayerDesc {
    int64_t rows = 0;
    int64_t cols = 0;
    int n_keep = 0;           // N of the layer's own N:M pattern
    int m_group = 0;          // M of the layer's own N:M pattern (divides 8)
    int64_t scale_group = 0;  // columns per (alpha, mu) pair; multiple of 8 dividing cols
    int code_bits = 0;        // bits per code of 8 columns
    std::string code = "nm";  // nm (N:M rank code, alpha and mu) | a pattern codebook name (alpha only)

    bool is_nm() const { return code == "nm"; }
    int keep_per_8() const { return n_keep * kPackedGroup / m_group; }
    int64_t scale_bytes() const { return is_nm() ? 4 : 2; }  // stored bytes per scale group
    int64_t groups_per_row() const { return cols / kPackedGroup; }
    int64_t scale_groups_per_row() const { return cols / scale_group; }
    int64_t code_bytes() const;  // stored bytes of the code bitstream (padded to 8 bytes)
};

// Bits of one code for `kept` of 8 columns kept: ceil(log2(C(8,kept) * 2^kept)); 1 <= kept <= 8.
int code_bits_for(int kept);

// Joint keep/sign code of one group of 8 columns (bit j of a mask = column j of the group).
uint32_t encode_group(uint8_t keep_mask, uint8_t sign_mask, int kept);
// Inverse of encode_group; returns false for a code that names no valid pattern.
bool decode_group(uint32_t code, int kept, uint8_t& keep_mask, uint8_t& sign_mask);
// Keep and sign masks of a group's code under the layer's code (N:M rank code or codebook index); false for
// a code that names no pattern.
bool decode_code(const PackedLayerDesc& desc, uint32_t code, uint8_t& keep_mask, uint8_t& sign_mask);

struct PackedLayer {
    PackedLayerDesc desc;
    std::vector<uint8_t> codes;     // desc.code_bytes() bytes, LSB-first bitstream
    std::vector<ScalePair> scales;  // rows * scale_groups_per_row, row-major (mu = 0 for codebook codes)

    // Code of group g (0-based, g < cols/8) of row i.
    uint32_t code(int64_t row, int64_t group) const;
    // Bytes on disk for this layer (codes + scales) and true bits per weight.
    int64_t storage_bytes() const;
    double bits_per_weight() const;
};

// Checks a descriptor: shape, N:M support, scale group, code width. `what` names the layer in errors.
void validate_desc(const PackedLayerDesc& desc, const std::string& what);
// Descriptor for a layout (validates N:M and shapes).
PackedLayerDesc desc_for(const BinaryLayout& layout, const std::string& what);

// Reference encoder: validates the layout (exactly N kept per group, fp16-exact finite scales) and packs it.
// Signs of pruned weights are ignored (decoded as 0).
PackedLayer encode_layer(const BinaryLayout& layout, const std::string& what = "layer");
// Reference decoder: bit-exact inverse of encode_layer; throws on codes that name no pattern.
BinaryLayout decode_layer(const PackedLayer& layer, const std::string& what = "layer");
// Checks sizes of codes/scales and every code; throws pbs2p::Error naming `what`.
void validate_layer(const PackedLayer& layer, const std::string& what);

// True bits per weight of the format for a layer shape (codes + scales, including padding); N:M code.
double packed_bits_per_weight(int64_t rows, int64_t cols, int n_keep, int m_group, int64_t scale_group);
// Same for a descriptor of any code (code_bits filled in by desc_for or the container).
double packed_bits_per_weight(const PackedLayerDesc& desc);

}  // namespace pbs2p
