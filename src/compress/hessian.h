// Conditioning and factoring of a layer's proxy Hessian H = 2 X X^T / T (m x m, fp64).
// One HessianFactor is computed per distinct layer input and shared by every layer reading that input
// (q/k/v share one, gate/up share one).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace pbs2p {

struct HessianFactor {
    int64_t size = 0;                // m: input width
    std::vector<uint8_t> dead;       // 1 where H_jj == 0 (the column carries no signal; its weights become 0)
    double percdamp_used = 0.0;      // damping actually applied, as a fraction of mean(diag H)
    double damping = 0.0;            // lambda added to the diagonal
    MatrixD u;                       // upper Cholesky factor of the damped inverse: H_d^-1 = U^T U
    Matrix u_f32;                    // fp32 copy of U for the sgemm lazy updates
    std::vector<double> u_diag;      // d_j = U_jj
};

// Dead columns get H_jj = 1; then H += percdamp * mean(diag H) * I and U is formed. If the damped H is
// not positive definite the damping is multiplied by 10 and retried (up to percdamp 1e4); throws
// pbs2p::Error for a non-square or non-finite H, or if every retry fails.
HessianFactor factor_hessian(const MatrixD& H, double percdamp = 0.01);

// Upper Cholesky factor of the inverse of an SPD matrix (A^-1 = U^T U), computed from the Cholesky
// factor of the reversed matrix and one triangular inverse (2/3 n^3 instead of 4/3 n^3). Returns false
// if A is not positive definite.
bool inverse_cholesky_upper(const MatrixD& a, MatrixD& u);

// Gram block S = H[s:e, s:e] / 2 of the raw (undamped) Hessian, i.e. X^T X / T restricted to the block
// (ARB-X's calibration-aware refit; every closed form there is invariant to the scale of S).
MatrixD gram_block(const MatrixD& H, int64_t start, int64_t end);

}  // namespace pbs2p
