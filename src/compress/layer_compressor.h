// Public entry point of the per-layer compressors: compress one linear weight W [out x in] given its
// proxy Hessian H = 2 X X^T / T [in x in] and the shared factor of H. Every method is a configuration of
// the shared parts (hessian, quantizer, nm_mask, binarizer, salient, compensation, spbo, cfs); the
// method table lives in methods.cpp and the options are documented in docs/METHODS.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compress/binary_layout.h"
#include "compress/hessian.h"
#include "core/tensor.h"

namespace pbs2p {

struct CompressOptions {
    std::string method = "pbs2p";  // rtn | gptq | sparsegpt | wanda | billm | arb-llm | stbllm | pbs2p

    // rtn / gptq
    int bits = 2;            // 1..8
    int group_size = 0;      // 0 = one grid per row; else columns per grid (must divide block_size)
    bool symmetric = false;  // symmetric min-max grid (GPTQ --sym)

    // N:M semi-structured sparsity, N = kept count (sparsegpt, wanda, stbllm, pbs2p)
    int n_keep = 4;
    int m_group = 8;

    // Shared block loop
    int block_size = 128;      // beta: columns per compensation block
    double percdamp = 0.01;    // damping used by callers of factor_hessian (kept here for the report)
    bool compensation = true;  // propagate each block's error into later columns (OBS/GPTQ update)
    // Whole-block form's error: 1 = exact (solve E U_BB = dW, the OBS-consistent error of a block fixed at
    // once); 0 = dW / diag(U) as the released BiLLM/ARB-LLM/STBLLM code does; -1 = the default, exact for
    // every method (pbs2p and the BiLLM family are compared under the same compensation).
    int exact_block_error = -1;

    // BiLLM / ARB-LLM / STBLLM structure search
    std::string salient_metric = "hessian";  // hessian (W^2/U_jj^2) | magnitude (W)
    int salient_up_lim = 50;                 // salient-column candidates 1 .. up_lim-1
    std::string arb_variant = "rc";          // arb-llm: arb | x | rc
    bool cgb = true;                         // arb-llm column-group bitmap (split salient columns in two)
    int arb_iters = 15;                      // ARB refinement iterations (and ARB-X iterations)
    std::string stbllm_metric = "ria";       // stbllm N:M mask score: ria | wanda | magnitude

    // pbs2p weight code: nm = the paper's fixed N of every M with mu +- alpha per scale group; tern11 |
    // tern13 = variable-N ternary patterns per 8 columns from a codebook (compress/pattern_codebook.h),
    // chosen by the joint OBS loss inside the compensation loop (compress/code_search.h), one fp16 alpha per
    // scale group.
    std::string code = "nm";
    int alpha_passes = 2;  // tern codes: k = up to k - 1 least-squares re-fits of alpha, each re-run
    bool hessian_weighted_alpha = true;  // tern codes: initial alpha fit weighted by 1/U_jj^2

    // pbs2p
    std::string fine_metric = "obs";  // N:M keep score: obs (W^2/U_jj^2) | magnitude | wanda
    std::string backbone =
        "arb-x";          // arb | arb-x | arb-rc | salient (default chosen on valid: docs/FINDINGS.md)
    int scale_group = 0;  // columns per (alpha, mu) pair; 0 = gcd(block_size, width); < 0 or > width = one per row
    bool spbo = true;     // stepwise pruning with re-fits (false = one-shot prune then fit)
    int spbo_steps = 0;   // tau; 0 = M - N
    std::string spbo_schedule = "per_group";  // per_group (k-th lowest pruned score of each group at step k)
                                              // | global (score-ordered chunks of the row)
    int spbo_inner_iters = 15;                // ARB iterations after every step
    bool spbo_obs_update =
        false;  // after each step, OBS-update the still-kept block entries for the newly pruned ones
    bool spbo_keep_best =
        true;  // per row and scale group keep the better of the stepwise and the one-shot fit

    // Statistics
    int error_sample_rows = 512;         // rows used for rel_error (evenly spaced); 0 = all rows
    bool measure_uncompensated = false;  // also run with compensation off and report its error
};

// The options that determine the result, one row each, under the name used in reports, checkpoint
// fingerprints and the Python API: calls visit(name, field) for every row. Options is CompressOptions,
// const or not. A new option gets its row here.
template <typename Options, typename Visit>
void for_each_layer_option(Options& o, Visit&& visit) {
    visit("method", o.method);
    visit("bits", o.bits);
    visit("group_size", o.group_size);
    visit("symmetric", o.symmetric);
    visit("n_keep", o.n_keep);
    visit("m_group", o.m_group);
    visit("block_size", o.block_size);
    visit("percdamp", o.percdamp);
    visit("compensation", o.compensation);
    visit("exact_block_error", o.exact_block_error);
    visit("salient_metric", o.salient_metric);
    visit("salient_up_lim", o.salient_up_lim);
    visit("arb_variant", o.arb_variant);
    visit("cgb", o.cgb);
    visit("arb_iters", o.arb_iters);
    visit("stbllm_metric", o.stbllm_metric);
    visit("code", o.code);
    visit("alpha_passes", o.alpha_passes);
    visit("hessian_weighted_alpha", o.hessian_weighted_alpha);
    visit("fine_metric", o.fine_metric);
    visit("backbone", o.backbone);
    visit("scale_group", o.scale_group);
    visit("spbo", o.spbo);
    visit("spbo_steps", o.spbo_steps);
    visit("spbo_schedule", o.spbo_schedule);
    visit("spbo_inner_iters", o.spbo_inner_iters);
    visit("spbo_obs_update", o.spbo_obs_update);
    visit("spbo_keep_best", o.spbo_keep_best);
    visit("measure_uncompensated", o.measure_uncompensated);
}

struct LayerStats {
    std::string method;
    int64_t rows = 0, cols = 0;
    int n_keep = 0, m_group = 0;            // 0 for dense methods
    double rel_error = 0.0;                 // tr(dW H dW^T) / tr(W H W^T), raw H
    double rel_error_uncompensated = -1.0;  // same with compensation off; -1 = not measured
    double nominal_bits = 0.0;              // paper convention (docs/METHODS.md)
    double storage_bits = 0.0;              // true bits per weight of the structured form
    double salient_fraction = 0.0;  // weights in salient columns (billm, arb-llm, stbllm, pbs2p/salient)
    double seconds = 0.0;           // wall time of compress_layer
    int64_t pruned = 0;             // entries that are exactly 0 in the output and not in W
    int64_t sign_flips = 0;         // nonzero outputs whose sign differs from W's
    int64_t zero_signs_fixed = 0;   // kept entries with W == mu exactly, given sign +1 in the layout
    double percdamp_used = 0.0;     // damping of the factor that was used
};

struct CompressedLayer {
    Matrix weight;  // the compressed weight, dense fp32 [out x in]
    std::optional<BinaryLayout>
        layout;  // pbs2p with backbone arb/arb-x: dequantize(layout) == weight bit-exactly
    LayerStats stats;
};

// Compresses W (rows = outputs). H is the raw proxy Hessian (needed by wanda, arb-x and the error
// statistic) and factor = factor_hessian(H, percdamp). Throws pbs2p::Error on invalid options or shapes.
CompressedLayer compress_layer(const Matrix& W, const MatrixD& H, const HessianFactor& factor,
                               const CompressOptions& options);

// Convenience: factors H itself.
CompressedLayer compress_layer(const Matrix& W, const MatrixD& H, const CompressOptions& options);

// Method names in table order (for --help and validation).
std::vector<std::string> method_names();

// Checks an option set against a layer width; throws pbs2p::Error naming the offending option.
void validate_options(const CompressOptions& options, int64_t cols);

}  // namespace pbs2p
