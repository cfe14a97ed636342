// Binarizers as pure functions over masked data. Row-wise forms (one alpha/mu per row of the segment):
// plain/BRAQ residual order k, ARB order 1 and 2; block forms: ARB-X (output-weighted refit with the
// block Gram S) and ARB-RC (row x column scales, no mean). sgn(0) = 0 everywhere, as in the reference
// code; entries outside the mask contribute nothing and are output as 0.
#pragma once

#include <cstdint>
#include <string>

#include "compress/nm_mask.h"
#include "core/tensor.h"

namespace pbs2p {

inline float sgnf(float x) {
    return static_cast<float>((x > 0.0f) - (x < 0.0f));
}

// ---- row-wise primitives (w, m, out have n entries; m may be null = all present) ----

// BRAQ_k: k residual passes of mu = mean R, alpha = mean |R - mu|, B = sgn(R - mu). Writes the
// approximation (0 outside the mask) to out; returns the squared error over the masked entries.
double braq_row(const float* w, const uint8_t* m, int64_t n, int order, float* out);

// ARB order 1 state of one row.
struct Arb1 {
    float alpha = 0.0f;
    float mu = 0.0f;
};
// BRAQ_1 initialisation (mu = mean, alpha = mean |w - mu|, B = sgn(w - mu)); B is 0 outside the mask.
void arb1_init(const float* w, const uint8_t* m, int64_t n, Arb1& p, int8_t* b);
// `iters` ARB iterations in the reference order: mu <- mean(w - alpha B); alpha <- sum B(w - mu) /
// (sum B^2 + 1e-8) with the old B; B <- sgn(w - mu). Entries outside the mask get B = 0.
void arb1_refine(const float* w, const uint8_t* m, int64_t n, int iters, Arb1& p, int8_t* b);
// Squared error over the masked entries of (alpha B + mu) against w.
double arb1_error(const float* w, const uint8_t* m, int64_t n, const Arb1& p, const int8_t* b);

// ---- row lanes: kLanes rows fitted together (entry j of lane l at [j * kLanes + l]) ----
// Each lane performs exactly the operations of the scalar arb1_init / arb1_refine for its row, in the same
// order (double accumulators, float terms), so the results are bit-identical to the scalar functions; the
// lanes only share the instruction stream (SIMD across rows). Masks are 0/1 floats (never null here).
constexpr int kLanes = 16;  // a multiple of 8
struct Arb1Lanes {
    float alpha[kLanes] = {};
    float mu[kLanes] = {};
};
// Scalar arb1_init per lane; b gets -1/0/+1 as floats.
void arb1_init_lanes(const float* w, const float* m, int64_t n, Arb1Lanes& p, float* b);
// Scalar arb1_refine per lane (`iters` iterations, entries outside the mask get b = 0).
void arb1_refine_lanes(const float* w, const float* m, int64_t n, int iters, Arb1Lanes& p, float* b);

// Scalar braq_row per lane, over the listed columns only (ascending; every other column must be outside
// the mask in every lane, so skipping it changes nothing). out (n * kLanes) is scratch/output for the
// listed columns; err[l] = the lane's squared error, bit-identical to braq_row on that row.
void braq_lanes(const float* w, const float* m, const int* cols, int64_t count, int order, float* out,
                double* err);

// ARB order 2 (shared mu; joint sign choice among {-a1-a2, -a1+a2, a1-a2, a1+a2}, first minimum wins).
struct Arb2 {
    float alpha1 = 0.0f, alpha2 = 0.0f, mu = 0.0f;
};
void arb2_fit(const float* w, const uint8_t* m, int64_t n, int iters, Arb2& p, int8_t* b1, int8_t* b2);

// ---- block forms over a rows x width block with a rows x width mask ----

enum class BinKind { braq, arb, arb_x, arb_rc };
BinKind parse_bin_kind(const std::string& name);

struct ParamCount {
    int64_t row_values = 0;  // fp16 values stored per row (summed over rows)
    int64_t col_values = 0;  // fp16 values stored per column (summed over columns)
};

// Binarizes the masked entries of `block` with `order` planes (1 or 2) and adds the approximation into
// q at the masked positions. arb_x needs the block Gram S (width x width); iters = ARB (and ARB-X)
// iterations. Returns the number of stored scale/mean values.
ParamCount binarize_group(BinKind kind, const Matrix& block, const Mask& mask, int order, int iters,
                          const MatrixD* gram, Matrix& q);

// ARB-X refit with frozen signs (15 iterations by default) of order-1 row parameters for one block:
// mu <- (m.(w - alpha b))^T S m / (m^T S m), alpha <- b^T S (w - mu m) / (b^T S b). w, b, m rows x width.
void arb_x_refit_order1(const Matrix& block, const Mask& mask, const int8_t* signs, const MatrixD& gram,
                        int iters, Arb1* params);

}  // namespace pbs2p
