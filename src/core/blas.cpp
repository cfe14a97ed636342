#include "core/blas.h"

#include <cblas.h>

#include <algorithm>
#include <vector>

// LAPACK (Fortran symbols exported by OpenBLAS; Debian ships no LAPACKE for it by default).
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info);
}

namespace pbs2p {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
                static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void matmul_xwt(const float* x, int64_t tokens, int64_t in, const float* w, int64_t out, float* y) {
    if (tokens == 1) {
        sgemv(w, out, in, x, y);
        return;
    }
    sgemm(false, true, tokens, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}

void sgemv(const float* w, int64_t out, int64_t in, const float* x, float* y) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(out), static_cast<int>(in), 1.0f, w,
                static_cast<int>(in), x, 1, 0.0f, y, 1);
}

namespace {

// fp32 ssyrk over chunks of rows keeps the product fast; chunk sums are added into fp64 through
// row_of(i), the accumulator's row i (entries j >= i are used).
template <typename RowOf>
void syrk_accumulate_rows(const float* a, int64_t t, int64_t n, double alpha, RowOf row_of) {
    constexpr int64_t chunk_rows = 2048;
    std::vector<float> partial(static_cast<size_t>(n * n));
    for (int64_t r0 = 0; r0 < t; r0 += chunk_rows) {
        int64_t rows = std::min(chunk_rows, t - r0);
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(n), static_cast<int>(rows), 1.0f,
                    a + r0 * n, static_cast<int>(n), 0.0f, partial.data(), static_cast<int>(n));
        for (int64_t i = 0; i < n; ++i) {
            const float* src = partial.data() + i * n;
            double* dst = row_of(i);
            for (int64_t j = i; j < n; ++j) dst[j] += alpha * static_cast<double>(src[j]);
        }
    }
}

}  // namespace

void syrk_accumulate(const float* a, int64_t t, int64_t n, double alpha, MatrixD& c) {
    syrk_accumulate_rows(a, t, n, alpha, [&c](int64_t i) { return c.row(i); });
}

void syrk_accumulate_packed(const float* a, int64_t t, int64_t n, double alpha, double* upper) {
    // Row i starts at packed_upper_offset(i, n); shifted back by i so that it is indexed by the column j.
    syrk_accumulate_rows(a, t, n, alpha,
                         [upper, n](int64_t i) { return upper + packed_upper_offset(i, n) - i; });
}

void symmetrize_from_upper(MatrixD& c) {
    for (int64_t i = 0; i < c.rows; ++i)
        for (int64_t j = 0; j < i; ++j) c(i, j) = c(j, i);
}

// Row-major A equals column-major A^T; for a symmetric matrix asking LAPACK for the lower factor of the
// column-major view yields L with A = L L^T, i.e. row-major storage of U = L^T.
bool cholesky_upper(MatrixD& a) {
    int n = static_cast<int>(a.rows);
    int info = 0;
    const char uplo = 'L';
    dpotrf_(&uplo, &n, a.ptr(), &n, &info);
    if (info != 0) return false;
    for (int64_t i = 0; i < a.rows; ++i)
        for (int64_t j = 0; j < i; ++j) a(i, j) = 0.0;
    return true;
}

bool spd_inverse(MatrixD& a) {
    int n = static_cast<int>(a.rows);
    int info = 0;
    const char uplo = 'L';
    dpotrf_(&uplo, &n, a.ptr(), &n, &info);
    if (info != 0) return false;
    dpotri_(&uplo, &n, a.ptr(), &n, &info);
    if (info != 0) return false;
    // Column-major lower == row-major upper: mirror it down.
    symmetrize_from_upper(a);
    return true;
}

}  // namespace pbs2p
