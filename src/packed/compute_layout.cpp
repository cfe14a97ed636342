#include "packed/compute_layout.h"

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
