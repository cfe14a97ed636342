#include "packed/packed_kernels.h"

#include <fmt/format.h>

#include <utility>

#include "core/error.h"
#include "core/half.h"

namespace pbs2p {

PackedMatrix make_packed_matrix(PackedLayer layer, ComputeForm form) {
    PackedMatrix m;
    m.storage = std::move(layer);
    if (form == ComputeForm::lowbit && fits_lowbit_layout(m.storage))
        m.lowbit = make_lowbit_layout(m.storage);
    else if (form != ComputeForm::none)
        m.compute = make_compute_layout(m.storage);
    return m;
}

void reference_gemm(const PackedMatrix& w, const float* x, int64_t tokens, float* y) {
    const PackedLayer& layer = w.storage;
    const PackedLayerDesc& d = layer.desc;
    const int64_t groups = d.groups_per_row(), scale_groups = d.scale_groups_per_row();
    const int64_t groups_per_scale = d.scale_group / kPackedGroup;
#pragma omp parallel
    {
        std::vector<uint8_t> keep(static_cast<size_t>(groups)), sign(static_cast<size_t>(groups));
#pragma omp for schedule(static)
        for (int64_t i = 0; i < d.rows; ++i) {
            for (int64_t g = 0; g < groups; ++g)
                decode_code(d, layer.code(i, g), keep[static_cast<size_t>(g)], sign[static_cast<size_t>(g)]);
            for (int64_t t = 0; t < tokens; ++t) {
                const float* xt = x + t * d.cols;
                double acc = 0.0;
                for (int64_t s = 0; s < scale_groups; ++s) {
                    double kept_sum = 0.0, signed_sum = 0.0;
                    for (int64_t g = s * groups_per_scale; g < (s + 1) * groups_per_scale; ++g)
                        for (int j = 0; j < kPackedGroup; ++j) {
                            if (!(keep[static_cast<size_t>(g)] >> j & 1)) continue;
                            const double v = xt[g * kPackedGroup + j];
                            kept_sum += v;
                            signed_sum += (sign[static_cast<size_t>(g)] >> j & 1) ? v : -v;
                        }
                    const ScalePair& p = layer.scales[static_cast<size_t>(i * scale_groups + s)];
                    acc += fp16_to_f32(p.mu_fp16) * kept_sum + fp16_to_f32(p.alpha_fp16) * signed_sum;
                }
                y[t * d.rows + i] = static_cast<float>(acc);
            }
        }
    }
}

void reference_gemv(const PackedMatrix& w, const float* x, float* y) {
    reference_gemm(w, x, 1, y);
}

const std::vector<PackedKernel>& packed_kernels() {
    static const std::vector<PackedKernel> table = [] {
        std::vector<PackedKernel> t{
            {"reference", "scalar", "f32", ComputeForm::none, reference_gemv, reference_gemm}};
        for (const PackedKernel& k : avx2_packed_kernels()) t.push_back(k);
        return t;
    }();
    return table;
}

const PackedKernel& packed_kernel(const std::string& name) {
    std::string names;
    for (const PackedKernel& k : packed_kernels()) {
        if (name == k.name) {
            PBS2P_CHECK(k.available, "packed kernel '{}' needs {}, which this CPU lacks", name, k.isa);
            return k;
        }
        names += names.empty() ? k.name : fmt::format(", {}", k.name);
    }
    fail("unknown packed kernel '{}' (available: {})", name, names);
}

namespace {

// The last available row with the given activations (any when null); the reference row always is.
const PackedKernel& last_available(const char* activations) {
    const PackedKernel* best = &packed_kernels().front();
    for (const PackedKernel& k : packed_kernels())
        if (k.available && (!activations || std::string(k.activations) == activations)) best = &k;
    return *best;
}

}  // namespace

const PackedKernel& fastest_packed_kernel() {
    return last_available(nullptr);
}

const PackedKernel& default_packed_kernel() {
    return last_available("f32");
}

}  // namespace pbs2p
