#include "compress/layer_compressor.h"

#include <cblas.h>

#include <chrono>
#include <cmath>

#include "compress/methods.h"
#include "compress/nm_mask.h"
#include "compress/pattern_codebook.h"
#include "core/error.h"

namespace pbs2p {

std::vector<std::string> method_names() {
    std::vector<std::string> names;
    for (const auto& m : method_table()) names.emplace_back(m.name);
    return names;
}

void validate_options(const CompressOptions& o, int64_t cols) {
    const MethodEntry& method = find_method(o.method);
    const std::string name = method.name;
    PBS2P_CHECK(o.block_size >= 1, "compress: block_size must be >= 1, got {}", o.block_size);
    if (name == "rtn" || name == "gptq") {
        PBS2P_CHECK(o.bits >= 1 && o.bits <= 8, "compress: bits must be in 1..8, got {}", o.bits);
        PBS2P_CHECK(o.group_size >= 0, "compress: group_size must be >= 0, got {}", o.group_size);
        if (name == "gptq" && o.group_size > 0)
            PBS2P_CHECK(o.block_size % o.group_size == 0 && cols % o.group_size == 0,
                        "compress: group_size {} must divide block_size {} and the width {}", o.group_size,
                        o.block_size, cols);
    }
    if (name == "sparsegpt" || name == "wanda" || name == "stbllm" || (name == "pbs2p" && o.code == "nm")) {
        check_nm(o.n_keep, o.m_group, cols, "compress");
        PBS2P_CHECK(o.block_size % o.m_group == 0, "compress: block_size {} must be a multiple of M = {}",
                    o.block_size, o.m_group);
    }
    if (name == "billm" || name == "arb-llm" || name == "stbllm" || name == "pbs2p")
        PBS2P_CHECK(o.salient_up_lim >= 2, "compress: salient_up_lim must be >= 2, got {}", o.salient_up_lim);
    if (name == "pbs2p" && o.code != "nm") {
        pattern_codebook(o.code);  // throws for an unknown code
        const int64_t sg = effective_scale_group(o, cols);
        PBS2P_CHECK(cols % kPatternWidth == 0,
                    "compress: code {} needs a width that is a multiple of {}, got {}", o.code, kPatternWidth,
                    cols);
        PBS2P_CHECK(sg % kPatternWidth == 0 && cols % sg == 0,
                    "compress: scale_group {} must be a multiple of {} dividing the width {}", sg,
                    kPatternWidth, cols);
        PBS2P_CHECK(o.alpha_passes >= 1 && o.alpha_passes <= 8,
                    "compress: alpha_passes must be in 1..8, got {}", o.alpha_passes);
    } else if (name == "pbs2p") {
        PBS2P_CHECK(
            o.backbone == "arb" || o.backbone == "arb-x" || o.backbone == "arb-rc" || o.backbone == "salient",
            "compress: backbone must be arb | arb-x | arb-rc | salient, got '{}'", o.backbone);
        const int64_t sg = effective_scale_group(o, cols);
        PBS2P_CHECK(
            sg % o.m_group == 0 && o.block_size % sg == 0 && cols % sg == 0,
            "compress: scale_group {} must be a multiple of M = {} and divide block_size {} and the width {}",
            sg, o.m_group, o.block_size, cols);
        PBS2P_CHECK(o.spbo_steps >= 0, "compress: spbo_steps must be >= 0, got {}", o.spbo_steps);
        PBS2P_CHECK(o.spbo_inner_iters >= 0, "compress: spbo_inner_iters must be >= 0, got {}",
                    o.spbo_inner_iters);
        PBS2P_CHECK(o.spbo_schedule == "per_group" || o.spbo_schedule == "global",
                    "compress: spbo_schedule must be per_group | global, got '{}'", o.spbo_schedule);
        parse_score_kind(o.fine_metric, "fine_metric");
    }
    if (name == "arb-llm")
        PBS2P_CHECK(o.arb_variant == "arb" || o.arb_variant == "x" || o.arb_variant == "rc",
                    "compress: arb_variant must be arb | x | rc, got '{}'", o.arb_variant);
    if (name == "stbllm")
        PBS2P_CHECK(o.stbllm_metric == "ria" || o.stbllm_metric == "wanda" || o.stbllm_metric == "magnitude",
                    "compress: stbllm_metric must be ria | wanda | magnitude, got '{}'", o.stbllm_metric);
}

namespace {

// tr(D H D^T) / tr(W H W^T) over `sample` evenly spaced rows (all rows if sample <= 0 or >= rows).
double relative_output_error(const Matrix& original, const Matrix& compressed, const MatrixD& h, int sample) {
    const int64_t rows = original.rows, cols = original.cols;
    const int64_t s = (sample <= 0 || sample >= rows) ? rows : sample;
    MatrixD d(s, cols), w(s, cols), dh(s, cols), wh(s, cols);
    for (int64_t r = 0; r < s; ++r) {
        const int64_t i = r * rows / s;
        for (int64_t j = 0; j < cols; ++j) {
            w(r, j) = original(i, j);
            d(r, j) = static_cast<double>(original(i, j)) - compressed(i, j);
        }
    }
    const int n = static_cast<int>(cols), m = static_cast<int>(s);
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, m, n, 1.0, h.ptr(), n, d.ptr(), n, 0.0, dh.ptr(), n);
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, m, n, 1.0, h.ptr(), n, w.ptr(), n, 0.0, wh.ptr(), n);
    double num = 0.0, den = 0.0;
    for (int64_t k = 0; k < s * cols; ++k) {
        num += d.data[k] * dh.data[k];
        den += w.data[k] * wh.data[k];
    }
    return den > 0.0 ? num / den : (num > 0.0 ? INFINITY : 0.0);
}

Matrix run_method(const MethodEntry& method, const Matrix& W, const MatrixD& H, const HessianFactor& factor,
                  const CompressOptions& options, std::optional<BinaryLayout>& layout, LayerStats& stats) {
    Matrix work = W;
    if (method.uses_hessian)
        for (int64_t i = 0; i < work.rows; ++i)
            for (int64_t j = 0; j < work.cols; ++j)
                if (factor.dead[j]) work(i, j) = 0.0f;
    MethodContext ctx{W, H, factor, options, work, layout, stats};
    method.run(ctx);
    for (int64_t k = 0; k < work.size(); ++k)
        PBS2P_CHECK(std::isfinite(work.data[k]),
                    "compress: method {} produced a non-finite weight at ({}, {})", method.name,
                    k / work.cols, k % work.cols);
    return work;
}

}  // namespace

CompressedLayer compress_layer(const Matrix& W, const MatrixD& H, const HessianFactor& factor,
                               const CompressOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    PBS2P_CHECK(W.rows > 0 && W.cols > 0, "compress: empty weight ({}x{})", W.rows, W.cols);
    PBS2P_CHECK(H.rows == W.cols && H.cols == W.cols,
                "compress: H is {}x{} but the weight has {} input columns", H.rows, H.cols, W.cols);
    PBS2P_CHECK(factor.size == W.cols,
                "compress: Hessian factor is for width {} but the weight has {} columns", factor.size,
                W.cols);
    for (int64_t k = 0; k < W.size(); ++k)
        PBS2P_CHECK(std::isfinite(W.data[k]), "compress: weight has a non-finite entry at ({}, {})",
                    k / W.cols, k % W.cols);
    validate_options(options, W.cols);
    const MethodEntry& method = find_method(options.method);

    CompressedLayer out;
    LayerStats& st = out.stats;
    st.method = method.name;
    st.rows = W.rows;
    st.cols = W.cols;
    st.percdamp_used = factor.percdamp_used;
    out.weight = run_method(method, W, H, factor, options, out.layout, st);
    st.rel_error = relative_output_error(W, out.weight, H, options.error_sample_rows);
    if (options.measure_uncompensated) {
        CompressOptions plain = options;
        plain.compensation = false;
        std::optional<BinaryLayout> unused;
        LayerStats unused_stats;
        const Matrix w0 = run_method(method, W, H, factor, plain, unused, unused_stats);
        st.rel_error_uncompensated = relative_output_error(W, w0, H, options.error_sample_rows);
    }
    for (int64_t k = 0; k < W.size(); ++k) {
        const float a = W.data[k], b = out.weight.data[k];
        st.pruned += (b == 0.0f && a != 0.0f);
        st.sign_flips += (b != 0.0f && a != 0.0f && ((a > 0.0f) != (b > 0.0f)));
    }
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

CompressedLayer compress_layer(const Matrix& W, const MatrixD& H, const CompressOptions& options) {
    return compress_layer(W, H, factor_hessian(H, options.percdamp), options);
}

}  // namespace pbs2p
