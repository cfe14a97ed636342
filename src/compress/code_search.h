// Joint OBS choice of a whole group's pattern from a codebook, inside the exact compensation loop.
//
// Columns are fixed 8 at a time, left to right. For a group g with the upper Cholesky block L = U[g, g] of
// the inverse Hessian (H^-1 = U^T U), fixing the group's weights w to q = alpha * c costs, after the optimal
// update of every later column, ||(w - q) L^-1||^2 (the OBS loss of a group; for one column it is GPTQ's
// (w - q)^2 / U_jj^2). Every codeword c is scored with that loss, the best one is kept, and the error
// e' = (w - q) L^-1 is pushed into the later columns of the block (e' U[g, later]) and, lazily, of the layer.
//
// alpha: one fp16 value per row per scale group, fitted when the scale group starts on its current
// (error-updated) weights: the exact weighted least-squares ternary fit (weights 1/U_jj^2 or uniform). With
// alpha_passes = k > 1 the scale group is re-run from the same start up to k - 1 times, each time with alpha
// re-fitted by least squares on the joint loss of the codes the previous pass chose (stopping early when
// alpha no longer changes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compress/hessian.h"
#include "compress/pattern_codebook.h"
#include "core/tensor.h"

namespace pbs2p {

struct CodeSearchOptions {
    int64_t scale_group = 128;  // columns per alpha; a multiple of 8 dividing the layer width
    int block_size = 128;       // columns per lazy update (raised to scale_group when smaller)
    bool compensate = true;     // propagate errors into later columns
    int alpha_passes = 2;  // 1: alpha from the weights only; k: up to k - 1 least-squares re-fits and re-runs
    bool hessian_weighted_alpha = true;  // initial alpha fit weighted by 1/U_jj^2 (else uniform)
};

struct CodedWeights {
    int64_t rows = 0, cols = 0, scale_group = 0;
    std::vector<int32_t> codes;  // rows * cols / 8, row-major: index into the codebook
    std::vector<float> alpha;    // rows * cols / scale_group, fp16-exact
};

// Compresses W in place (W becomes alpha * pattern per group) and returns the codes and scales.
// Throws pbs2p::Error if the width or scale group do not fit the 8-column groups.
//
// The fast form: rows in tiles, the error compensated exactly inside sub-blocks of block_size columns and
// lazily (one sgemm per tile) beyond them, even when a scale group spans the whole row; each group's best
// codeword found by a depth-first branch and bound over its 8 ternary digits (the loss of a prefix bounds
// every completion, so only a few of the codebook's patterns are scored). Equal to the reference below in
// exact arithmetic; in floating point the two differ in the last bits (tests compare them).
CodedWeights code_search_loop(Matrix& W, const HessianFactor& f, const PatternCodebook& book,
                              const CodeSearchOptions& options);

// The reference: one row at a time over the whole block, every codeword of the book scored.
CodedWeights code_search_loop_reference(Matrix& W, const HessianFactor& f, const PatternCodebook& book,
                                        const CodeSearchOptions& options);

// Weighted least-squares ternary fit of x[0..n) (weights wt, or uniform when wt is null): the alpha that
// minimises sum_j wt_j (x_j - alpha * round_ternary(x_j / alpha))^2, found exactly over all thresholds.
float fit_ternary_alpha(const float* x, const float* wt, int64_t n);

}  // namespace pbs2p
