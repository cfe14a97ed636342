// The few BLAS/LAPACK calls the project uses, on row-major data. OpenBLAS (OpenMP flavour) underneath,
// so BLAS and our own OpenMP loops share one thread pool.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace pbs2p {

// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major with leading dimensions.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Y[tokens x out] = X[tokens x in] * W^T, where W is [out x in] (the linear-layer product).
void matmul_xwt(const float* x, int64_t tokens, int64_t in, const float* w, int64_t out, float* y);

// y[out] = W[out x in] * x[in].
void sgemv(const float* w, int64_t out, int64_t in, const float* x, float* y);

// Upper triangle of C[n x n] += alpha * A^T A, A is [t x n] row-major (fp32 data, fp64 accumulator via
// fp32 partial products in blocks of rows).
void syrk_accumulate(const float* a, int64_t t, int64_t n, double alpha, MatrixD& c);

// Packed upper triangle of an n x n matrix: row i holds columns i..n-1 and starts at this offset; the
// whole triangle has packed_upper_offset(n, n) = n (n + 1) / 2 entries.
inline int64_t packed_upper_offset(int64_t i, int64_t n) {
    return i * n - i * (i - 1) / 2;
}

// syrk_accumulate into a packed upper triangle (the same arithmetic, entry for entry).
void syrk_accumulate_packed(const float* a, int64_t t, int64_t n, double alpha, double* upper);

// Copies the upper triangle of a square matrix into its lower triangle.
void symmetrize_from_upper(MatrixD& c);

// In-place Cholesky factorisation of a symmetric positive definite row-major matrix. On success the
// matrix holds the upper factor U with A = U^T U (strict lower part zeroed). Returns false if A is not
// positive definite.
bool cholesky_upper(MatrixD& a);

// In-place inverse of a symmetric positive definite matrix (full matrix returned). Returns false on failure.
bool spd_inverse(MatrixD& a);

}  // namespace pbs2p
