#include "packed/compute_layout.h"

#include "core/error.h"
#include "core/half.h"

namespace pbs2p {

ComputeLayout make_compute_layout(const PackedLayer& layer) {
    const PackedLayerDesc& d = layer.desc;
    ComputeLayout c;
    c.rows = d.rows;
    c.cols = d.cols;
    c.scale_group = d.scale_group;
    c.row_blocks = (d.rows + kRowBlock - 1) / kRowBlock;
    const int64_t groups = d.groups_per_row();
    const int64_t scale_groups = d.scale_groups_per_row();
    c.groups.assign(static_cast<size_t>(c.row_blocks * groups), ComputeGroup{});
    c.kept_scale.assign(static_cast<size_t>(c.row_blocks * scale_groups * kRowBlock), 0.0f);
    c.sign_scale.assign(c.kept_scale.size(), 0.0f);
    // Row blocks own disjoint groups and scales: decoded in parallel.
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < d.rows; ++i) {
        const int64_t rb = i / kRowBlock, r = i % kRowBlock;
        for (int64_t g = 0; g < groups; ++g) {
            uint8_t keep_mask = 0, sign_mask = 0;
            decode_code(d, layer.code(i, g), keep_mask, sign_mask);
            ComputeGroup& cg = c.groups[static_cast<size_t>(rb * groups + g)];
            cg.keep[r] = keep_mask;
            cg.sign[r] = sign_mask;
        }
        for (int64_t s = 0; s < scale_groups; ++s) {
            const ScalePair& p = layer.scales[static_cast<size_t>(i * scale_groups + s)];
            const float alpha = fp16_to_f32(p.alpha_fp16), mu = fp16_to_f32(p.mu_fp16);
            const auto at = static_cast<size_t>((rb * scale_groups + s) * kRowBlock + r);
            c.kept_scale[at] = mu - alpha;
            c.sign_scale[at] = 2.0f * alpha;
        }
    }
    return c;
}

}  // namespace pbs2p

namespace pbs2p {

bool encode_sign_code(uint8_t keep_mask, uint8_t sign_mask, uint8_t& code) {
    uint8_t assigned = 0, value = 0;
    // Bit `bit` of the code takes the sign of column j; false when it already holds the other sign.
    const auto put = [&](int bit, int j) {
        const auto b = static_cast<uint8_t>(1u << bit);
        const auto v = static_cast<uint8_t>((sign_mask >> j & 1) << bit);
        if ((assigned & b) && (value & b) != v) return false;
        assigned |= b;
        value |= v;
        return true;
    };
    int up = 0, down = kSignCodeBits - 1;
    for (int j = 0; j < 4; ++j)
        if ((keep_mask >> j & 1) && !put(up++, j)) return false;
    for (int j = 7; j >= 4; --j)
        if ((keep_mask >> j & 1) && !put(down--, j)) return false;
    code = value;
    return true;
}

uint8_t decode_sign_code(uint8_t keep_mask, uint8_t code) {
    uint8_t sign = 0;
    int up = 0, down = kSignCodeBits - 1;
    for (int j = 0; j < 4; ++j)
        if (keep_mask >> j & 1) sign |= static_cast<uint8_t>((code >> up++ & 1) << j);
    for (int j = 7; j >= 4; --j)
        if (keep_mask >> j & 1) sign |= static_cast<uint8_t>((code >> down-- & 1) << j);
    return sign;
}

bool fits_lowbit_layout(const PackedLayer& layer) {
    const PackedLayerDesc& d = layer.desc;
    if (d.is_nm() && d.keep_per_8() <= kSignCodeBits) return true;
    const int64_t groups = d.groups_per_row();
    bool fits = true;
#pragma omp parallel for schedule(static) reduction(&& : fits)
    for (int64_t i = 0; i < d.rows; ++i)
        for (int64_t g = 0; g < groups && fits; ++g) {
            uint8_t keep = 0, sign = 0, code = 0;
            decode_code(d, layer.code(i, g), keep, sign);
            fits = encode_sign_code(keep, sign, code);
        }
    return fits;
}

LowbitLayout make_lowbit_layout(const PackedLayer& layer) {
    const PackedLayerDesc& d = layer.desc;
    PBS2P_CHECK(fits_lowbit_layout(layer), "{}x{} layer ({} code) does not fit the low-bit layout", d.rows,
                d.cols, d.code);
    LowbitLayout c;
    c.rows = d.rows;
    c.cols = d.cols;
    c.scale_group = d.scale_group;
    c.row_blocks = (d.rows + kRowBlock - 1) / kRowBlock;
    c.has_mu = d.is_nm();
    const int64_t groups = d.groups_per_row();
    const int64_t scale_groups = d.scale_groups_per_row();
    c.groups.assign(static_cast<size_t>(c.row_blocks * groups), LowbitGroup{});
    c.alpha_fp16.assign(static_cast<size_t>(c.row_blocks * scale_groups * kRowBlock), 0);
    if (c.has_mu) c.mu_fp16.assign(c.alpha_fp16.size(), 0);
        // Rows r and r + 16 share sign-code bytes: row blocks are decoded in parallel, their rows in order.
#pragma omp parallel for schedule(static)
    for (int64_t rb = 0; rb < c.row_blocks; ++rb)
        for (int64_t r = 0; r < kRowBlock && rb * kRowBlock + r < d.rows; ++r) {
            const int64_t i = rb * kRowBlock + r;
            for (int64_t g = 0; g < groups; ++g) {
                uint8_t keep = 0, sign = 0, code = 0;
                decode_code(d, layer.code(i, g), keep, sign);
                encode_sign_code(keep, sign, code);
                LowbitGroup& lg = c.groups[static_cast<size_t>(rb * groups + g)];
                lg.keep[r] = keep;
                lg.sign_code[r % 16] |= static_cast<uint8_t>(code << (4 * (r / 16)));
            }
            for (int64_t s = 0; s < scale_groups; ++s) {
                const ScalePair& p = layer.scales[static_cast<size_t>(i * scale_groups + s)];
                const auto at = static_cast<size_t>((rb * scale_groups + s) * kRowBlock + r);
                c.alpha_fp16[at] = p.alpha_fp16;
                if (c.has_mu) c.mu_fp16[at] = p.mu_fp16;
            }
        }
    return c;
}

}  // namespace pbs2p
