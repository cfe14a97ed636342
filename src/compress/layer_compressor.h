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
    int bits = 2;              // 1..8
    int group_size = 0;        // 0 = one grid per row; else columns per grid (must divide block_size)
    bool symmetric = false;    // symmetric min-max grid (GPTQ --sym)

    // N:M semi-structured sparsity, N = kept count (sparsegpt, wanda, stbllm, pbs2p)
    int n_keep = 4;
    int m_group = 8;

    // Shared block loop
    int block_size = 128;          // beta: columns per compensation block
    double percdamp = 0.01;        // damping used by callers of factor_hessian (kept here for the report)
    bool compensation = true;      // propagate each block's error into later columns (OBS/GPTQ update)
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

    // pbs2p
    std::string fine_metric = "obs";      // N:M keep score: obs (W^2/U_jj^2) | magnitude | wanda
    std::string backbone = "arb-x";       // arb | arb-x | arb-rc | salient (default chosen on valid: docs/FINDINGS.md)
    int scale_group = 0;                  // columns per (alpha, mu) pair; 0 = gcd(block_size, width)
    bool spbo = true;                     // stepwise pruning with re-fits (false = one-shot prune then fit)
    int spbo_steps = 0;                   // tau; 0 = M - N
    std::string spbo_schedule = "per_group";  // per_group (k-th lowest pruned score of each group at step k) | global (score-ordered chunks of the row)
    int spbo_inner_iters = 15;            // ARB iterations after every step
    bool spbo_obs_update = false;         // after each step, OBS-update the still-kept block entries for the newly pruned ones
    bool spbo_keep_best = true;           // per row and scale group keep the better of the stepwise and the one-shot fit

    // Statistics
    int error_sample_rows = 512;           // rows used for rel_error (evenly spaced); 0 = all rows
    bool measure_uncompensated = false;    // also run with compensation off and report its error
};

struct LayerStats {
    std::string method;
    int64_t rows = 0, cols = 0;
    int n_keep = 0, m_group = 0;            // 0 for dense methods
    double rel_error = 0.0;                 // tr(dW H dW^T) / tr(W H W^T), raw H
    double rel_error_uncompensated = -1.0;  // same with compensation off; -1 = not measured
    double nominal_bits = 0.0;              // paper convention (docs/METHODS.md)
    double storage_bits = 0.0;              // true bits per weight of the structured form
    double salient_fraction = 0.0;          // weights in salient columns (billm, arb-llm, stbllm, pbs2p/salient)
    double seconds = 0.0;                   // wall time of compress_layer
    int64_t pruned = 0;                     // entries that are exactly 0 in the output and not in W
    int64_t sign_flips = 0;                 // nonzero outputs whose sign differs from W's
    int64_t zero_signs_fixed = 0;           // kept entries with W == mu exactly, given sign +1 in the layout
    double percdamp_used = 0.0;             // damping of the factor that was used
};

struct CompressedLayer {
    Matrix weight;                      // the compressed weight, dense fp32 [out x in]
    std::optional<BinaryLayout> layout;  // pbs2p with backbone arb/arb-x: dequantize(layout) == weight bit-exactly
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
