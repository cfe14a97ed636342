#include "packed/packed_layer.h"

#include <array>
#include <bit>
#include <cmath>

#include "compress/pattern_codebook.h"
#include "core/error.h"
#include "core/half.h"

namespace pbs2p {
namespace {

// Masks of 8 bits with `kept` bits set, in increasing order, and each mask's rank among them.
struct MaskTable {
    std::vector<uint8_t> masks;
    std::array<int16_t, 256> rank{};
};

const MaskTable& mask_table(int kept) {
    static const std::array<MaskTable, 9> tables = [] {
        std::array<MaskTable, 9> t;
        for (auto& table : t) table.rank.fill(-1);
        for (int m = 0; m < 256; ++m) {
            MaskTable& table = t[static_cast<size_t>(std::popcount(static_cast<unsigned>(m)))];
            table.rank[static_cast<size_t>(m)] = static_cast<int16_t>(table.masks.size());
            table.masks.push_back(static_cast<uint8_t>(m));
        }
        return t;
    }();
    return tables[static_cast<size_t>(kept)];
}

// Sign bits of the kept columns, compacted to the low bits in column order (a software pext).
uint32_t compact_signs(uint8_t keep_mask, uint8_t sign_mask) {
    uint32_t out = 0;
    int t = 0;
    for (int j = 0; j < 8; ++j)
        if (keep_mask >> j & 1) out |= static_cast<uint32_t>(sign_mask >> j & 1) << t++;
    return out;
}

uint8_t expand_signs(uint8_t keep_mask, uint32_t compact) {
    uint8_t out = 0;
    int t = 0;
    for (int j = 0; j < 8; ++j)
        if (keep_mask >> j & 1) out |= static_cast<uint8_t>((compact >> t++ & 1) << j);
    return out;
}

bool is_fp16_exact(float v) {
    return std::isfinite(v) && round_to_fp16(v) == v;
}

}  // namespace

int code_bits_for(int kept) {
    PBS2P_CHECK(kept >= 1 && kept <= 8, "packed format: {} kept of 8 is not supported (1..8)", kept);
    const uint64_t count = mask_table(kept).masks.size() << kept;
    return std::bit_width(count - 1);
}

uint32_t encode_group(uint8_t keep_mask, uint8_t sign_mask, int kept) {
    const int rank = mask_table(kept).rank[keep_mask];
    return (static_cast<uint32_t>(rank) << kept) | compact_signs(keep_mask, sign_mask);
}

bool decode_group(uint32_t code, int kept, uint8_t& keep_mask, uint8_t& sign_mask) {
    const MaskTable& table = mask_table(kept);
    const uint32_t rank = code >> kept;
    if (rank >= table.masks.size()) return false;
    keep_mask = table.masks[rank];
    sign_mask = expand_signs(keep_mask, code & ((1u << kept) - 1));
    return true;
}

bool decode_code(const PackedLayerDesc& d, uint32_t code, uint8_t& keep_mask, uint8_t& sign_mask) {
    if (d.is_nm()) return decode_group(code, d.keep_per_8(), keep_mask, sign_mask);
    const PatternCodebook& book = pattern_codebook(d.code);
    if (code >= static_cast<uint32_t>(book.size())) return false;
    pattern_masks(book.patterns[code].data(), keep_mask, sign_mask);
    return true;
}

int64_t PackedLayerDesc::code_bytes() const {
    const int64_t bits = rows * groups_per_row() * code_bits;
    return (bits + 63) / 64 * 8;
}

void validate_desc(const PackedLayerDesc& d, const std::string& what) {
    PBS2P_CHECK(d.rows >= 1 && d.cols >= 1 && d.rows <= (int64_t{1} << 31) && d.cols <= (int64_t{1} << 31),
                "{}: invalid shape {}x{}", what, d.rows, d.cols);
    // Sizes derived from the shape (code bits, scale counts) must fit in 64 bits.
    PBS2P_CHECK(d.rows * d.cols <= (int64_t{1} << 40),
                "{}: shape {}x{} exceeds the limit of 2^40 weights per layer", what, d.rows, d.cols);
    PBS2P_CHECK(d.cols % kPackedGroup == 0, "{}: {} columns is not a multiple of 8", what, d.cols);
    PBS2P_CHECK(
        d.scale_group >= kPackedGroup && d.scale_group % kPackedGroup == 0 && d.cols % d.scale_group == 0,
        "{}: scale group {} must be a multiple of 8 dividing {} columns", what, d.scale_group, d.cols);
    if (!d.is_nm()) {
        bool known = false;
        for (const std::string& name : pattern_codebook_names()) known = known || name == d.code;
        PBS2P_CHECK(known, "{}: unknown code '{}'", what, d.code);
        const PatternCodebook& book = pattern_codebook(d.code);
        PBS2P_CHECK(d.n_keep == 0 && d.m_group == kPackedGroup,
                    "{}: code {} needs n_keep 0 and m_group 8, got {}:{}", what, d.code, d.n_keep, d.m_group);
        PBS2P_CHECK(d.code_bits == book.code_bits, "{}: code width {} bits, expected {} for {}", what,
                    d.code_bits, book.code_bits, d.code);
        return;
    }
    PBS2P_CHECK(d.m_group >= 1 && kPackedGroup % d.m_group == 0,
                "{}: N:M = {}:{} not supported by the packed format (M must divide 8)", what, d.n_keep,
                d.m_group);
    PBS2P_CHECK(d.n_keep >= 1 && d.n_keep <= d.m_group, "{}: invalid N:M = {}:{}", what, d.n_keep, d.m_group);
    PBS2P_CHECK(d.code_bits == code_bits_for(d.keep_per_8()), "{}: code width {} bits, expected {} for {}:{}",
                what, d.code_bits, code_bits_for(d.keep_per_8()), d.n_keep, d.m_group);
}

PackedLayerDesc desc_for(const BinaryLayout& layout, const std::string& what) {
    PackedLayerDesc d;
    d.code = layout.code;
    d.rows = layout.rows;
    d.cols = layout.cols;
    d.n_keep = layout.n_keep;
    d.m_group = layout.m_group;
    d.scale_group = layout.scale_group;
    if (!d.is_nm()) {
        PBS2P_CHECK(d.m_group == kPackedGroup && d.n_keep == 0, "{}: code {} needs groups of 8 with n_keep 0",
                    what, d.code);
        d.code_bits = pattern_codebook(d.code).code_bits;
        validate_desc(d, what);
        return d;
    }
    PBS2P_CHECK(d.m_group >= 1 && kPackedGroup % d.m_group == 0 && d.n_keep >= 1 && d.n_keep <= d.m_group,
                "{}: N:M = {}:{} not supported by the packed format (need 1 <= N <= M, M dividing 8)", what,
                d.n_keep, d.m_group);
    d.code_bits = code_bits_for(d.keep_per_8());
    validate_desc(d, what);
    return d;
}

uint32_t PackedLayer::code(int64_t row, int64_t group) const {
    const int64_t bit = (row * desc.groups_per_row() + group) * desc.code_bits;
    const int64_t byte = bit >> 3;
    uint32_t window = 0;  // a code spans at most 4 bytes (code_bits <= 13, offset <= 7)
    for (int k = 0; k < 4 && byte + k < static_cast<int64_t>(codes.size()); ++k)
        window |= static_cast<uint32_t>(codes[static_cast<size_t>(byte + k)]) << (8 * k);
    return (window >> (bit & 7)) & ((1u << desc.code_bits) - 1);
}

int64_t PackedLayer::storage_bytes() const {
    return static_cast<int64_t>(codes.size()) + static_cast<int64_t>(scales.size()) * desc.scale_bytes();
}

double PackedLayer::bits_per_weight() const {
    return 8.0 * static_cast<double>(storage_bytes()) / static_cast<double>(desc.rows * desc.cols);
}

double packed_bits_per_weight(int64_t rows, int64_t cols, int n_keep, int m_group, int64_t scale_group) {
    PackedLayerDesc d{rows, cols, n_keep, m_group, scale_group, 0};
    d.code_bits = code_bits_for(d.keep_per_8());
    return packed_bits_per_weight(d);
}

double packed_bits_per_weight(const PackedLayerDesc& d) {
    const int64_t bytes = d.code_bytes() + d.rows * d.scale_groups_per_row() * d.scale_bytes();
    return 8.0 * static_cast<double>(bytes) / static_cast<double>(d.rows * d.cols);
}

PackedLayer encode_layer(const BinaryLayout& layout, const std::string& what) {
    PackedLayer out;
    out.desc = desc_for(layout, what);
    const PackedLayerDesc& d = out.desc;
    const auto n = static_cast<size_t>(d.rows * d.cols);
    const auto n_scales = static_cast<size_t>(d.rows * d.scale_groups_per_row());
    PBS2P_CHECK(layout.keep.size() == n && layout.sign.size() == n,
                "{}: keep/sign hold {}/{} entries, expected {}", what, layout.keep.size(), layout.sign.size(),
                n);
    PBS2P_CHECK(layout.alpha.size() == n_scales && layout.mu.size() == n_scales,
                "{}: alpha/mu hold {}/{} entries, expected {}", what, layout.alpha.size(), layout.mu.size(),
                n_scales);

    out.scales.resize(n_scales);
    for (size_t s = 0; s < n_scales; ++s) {
        PBS2P_CHECK(is_fp16_exact(layout.alpha[s]) && is_fp16_exact(layout.mu[s]),
                    "{}: scale pair {} (alpha {}, mu {}) is not a finite fp16 value", what, s,
                    layout.alpha[s], layout.mu[s]);
        PBS2P_CHECK(d.is_nm() || layout.mu[s] == 0.0f,
                    "{}: code {} stores no mu, but scale group {} has mu {}", what, d.code, s, layout.mu[s]);
        out.scales[s] = {f32_to_fp16(layout.alpha[s]), f32_to_fp16(layout.mu[s])};
    }

    out.codes.assign(static_cast<size_t>(d.code_bytes()), 0);
    const PatternCodebook* book = d.is_nm() ? nullptr : &pattern_codebook(d.code);
    const int kept = d.is_nm() ? d.keep_per_8() : 0;
    int64_t bit = 0;
    for (int64_t i = 0; i < d.rows; ++i) {
        for (int64_t j0 = 0; j0 < d.cols; j0 += kPackedGroup) {
            uint8_t keep_mask = 0, sign_mask = 0;
            for (int j = 0; j < kPackedGroup; ++j) {
                const auto idx = static_cast<size_t>(i * d.cols + j0 + j);
                PBS2P_CHECK(layout.keep[idx] <= 1 && layout.sign[idx] <= 1,
                            "{}: keep/sign at ({}, {}) must be 0 or 1", what, i, j0 + j);
                keep_mask |= static_cast<uint8_t>(layout.keep[idx] << j);
                sign_mask |= static_cast<uint8_t>((layout.keep[idx] & layout.sign[idx]) << j);
            }
            uint32_t code = 0;
            if (book) {
                int8_t values[kPackedGroup];
                for (int j = 0; j < kPackedGroup; ++j)
                    values[j] = static_cast<int8_t>(keep_mask >> j & 1 ? (sign_mask >> j & 1 ? 1 : -1) : 0);
                const int32_t c = book->find(values);
                PBS2P_CHECK(c >= 0, "{}: row {} columns {}..{} hold a pattern that code {} does not have",
                            what, i, j0, j0 + kPackedGroup - 1, d.code);
                code = static_cast<uint32_t>(c);
            } else {
                for (int64_t m0 = 0; m0 < kPackedGroup; m0 += d.m_group) {
                    const int count =
                        std::popcount(static_cast<unsigned>((keep_mask >> m0) & ((1u << d.m_group) - 1)));
                    PBS2P_CHECK(count == d.n_keep,
                                "{}: row {} columns {}..{} keep {} weights, expected {}:{}", what, i, j0 + m0,
                                j0 + m0 + d.m_group - 1, count, d.n_keep, d.m_group);
                }
                code = encode_group(keep_mask, sign_mask, kept);
            }
            for (int b = 0; b < d.code_bits; ++b, ++bit)
                out.codes[static_cast<size_t>(bit >> 3)] |=
                    static_cast<uint8_t>((code >> b & 1) << (bit & 7));
        }
    }
    return out;
}

void validate_layer(const PackedLayer& layer, const std::string& what) {
    const PackedLayerDesc& d = layer.desc;
    validate_desc(d, what);
    PBS2P_CHECK(static_cast<int64_t>(layer.codes.size()) == d.code_bytes(),
                "{}: codes hold {} bytes, expected {}", what, layer.codes.size(), d.code_bytes());
    PBS2P_CHECK(static_cast<int64_t>(layer.scales.size()) == d.rows * d.scale_groups_per_row(),
                "{}: {} scale pairs, expected {}", what, layer.scales.size(),
                d.rows * d.scale_groups_per_row());
    for (int64_t i = 0; i < d.rows; ++i)
        for (int64_t g = 0; g < d.groups_per_row(); ++g) {
            uint8_t keep_mask, sign_mask;
            PBS2P_CHECK(decode_code(d, layer.code(i, g), keep_mask, sign_mask),
                        "{}: invalid pattern code {} at row {} group {}", what, layer.code(i, g), i, g);
        }
    for (size_t s = 0; s < layer.scales.size(); ++s)
        PBS2P_CHECK(std::isfinite(fp16_to_f32(layer.scales[s].alpha_fp16)) &&
                        std::isfinite(fp16_to_f32(layer.scales[s].mu_fp16)),
                    "{}: scale pair {} is not finite", what, s);
    if (!d.is_nm())
        for (size_t s = 0; s < layer.scales.size(); ++s)
            PBS2P_CHECK(layer.scales[s].mu_fp16 == 0, "{}: code {} has no mu, scale group {} holds one", what,
                        d.code, s);
}

BinaryLayout decode_layer(const PackedLayer& layer, const std::string& what) {
    validate_layer(layer, what);
    const PackedLayerDesc& d = layer.desc;
    BinaryLayout out;
    out.code = d.code;
    out.rows = d.rows;
    out.cols = d.cols;
    out.n_keep = d.n_keep;
    out.m_group = d.m_group;
    out.scale_group = d.scale_group;
    out.keep.assign(static_cast<size_t>(d.rows * d.cols), 0);
    out.sign.assign(static_cast<size_t>(d.rows * d.cols), 0);
    for (int64_t i = 0; i < d.rows; ++i)
        for (int64_t g = 0; g < d.groups_per_row(); ++g) {
            uint8_t keep_mask = 0, sign_mask = 0;
            decode_code(d, layer.code(i, g), keep_mask, sign_mask);
            for (int j = 0; j < kPackedGroup; ++j) {
                const auto idx = static_cast<size_t>(i * d.cols + g * kPackedGroup + j);
                out.keep[idx] = keep_mask >> j & 1;
                out.sign[idx] = sign_mask >> j & 1;
            }
        }
    out.alpha.resize(layer.scales.size());
    out.mu.resize(layer.scales.size());
    for (size_t s = 0; s < layer.scales.size(); ++s) {
        out.alpha[s] = fp16_to_f32(layer.scales[s].alpha_fp16);
        out.mu[s] = fp16_to_f32(layer.scales[s].mu_fp16);
    }
    return out;
}

}  // namespace pbs2p
