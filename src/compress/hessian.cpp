#include "compress/hessian.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/blas.h"
#include "core/error.h"

extern "C" void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda,
                        int* info);

namespace pbs2p {

namespace {

// In place: given R with P A P = R^T R already factored (R upper, row-major), turn it into U with
// A^-1 = U^T U. LAPACK's inverse of the column-major lower view of R, read back row-major, is R^-1;
// U = P R^-T P is the anti-transpose of R^-1 (an involution, so swap in place).
bool reversed_factor_to_inverse_factor(MatrixD& r) {
    const int64_t n = r.rows;
    int ni = static_cast<int>(n), info = 0;
    const char uplo = 'L', diag = 'N';
    dtrtri_(&uplo, &diag, &ni, r.ptr(), &ni, &info);
    if (info != 0) return false;
    // Tiled so both sides of each swap stay in cache (each pair (i, j), j < n-1-i, is swapped once).
    constexpr int64_t tile = 64;
    for (int64_t i0 = 0; i0 < n; i0 += tile)
        for (int64_t j0 = 0; j0 < n - 1 - i0; j0 += tile)
            for (int64_t i = i0; i < std::min(n, i0 + tile); ++i)
                for (int64_t j = j0; j < std::min(n - 1 - i, j0 + tile); ++j)
                    std::swap(r(i, j), r(n - 1 - j, n - 1 - i));
    for (int64_t i = 0; i < n; ++i)
        if (!(r(i, i) > 0.0) || !std::isfinite(r(i, i))) return false;
    return true;
}

// P (A + lambda I) P with dead diagonal entries replaced by 1 before damping.
void reversed_damped(const MatrixD& a, const std::vector<uint8_t>& dead, double lambda, MatrixD& out) {
    const int64_t n = a.rows;
    out = MatrixD(n, n);
    for (int64_t i = 0; i < n; ++i) {
        const double* src = a.row(n - 1 - i);
        double* dst = out.row(i);
        for (int64_t j = 0; j < n; ++j) dst[j] = src[n - 1 - j];
        const size_t orig = static_cast<size_t>(n - 1 - i);
        if (!dead.empty() && dead[orig]) dst[i] = 1.0;
        dst[i] += lambda;
    }
}

}  // namespace

bool inverse_cholesky_upper(const MatrixD& a, MatrixD& u) {
    reversed_damped(a, {}, 0.0, u);
    return cholesky_upper(u) && reversed_factor_to_inverse_factor(u);
}

HessianFactor factor_hessian(const MatrixD& H, double percdamp) {
    PBS2P_CHECK(H.rows == H.cols && H.rows > 0, "hessian: H must be square and non-empty, got {}x{}", H.rows,
                H.cols);
    PBS2P_CHECK(percdamp >= 0.0 && std::isfinite(percdamp), "hessian: percdamp must be >= 0, got {}",
                percdamp);
    const int64_t m = H.rows;
    for (int64_t k = 0; k < m * m; ++k)
        PBS2P_CHECK(std::isfinite(H.data[static_cast<size_t>(k)]),
                    "hessian: H has a non-finite entry at ({}, {})", k / m, k % m);

    HessianFactor f;
    f.size = m;
    f.dead.assign(static_cast<size_t>(m), 0);
    double diag_sum = 0.0;
    for (int64_t j = 0; j < m; ++j) {
        if (H(j, j) == 0.0) f.dead[static_cast<size_t>(j)] = 1;
        diag_sum += f.dead[static_cast<size_t>(j)] ? 1.0 : H(j, j);
    }
    const double mean_diag = diag_sum / static_cast<double>(m);
    PBS2P_CHECK(mean_diag > 0.0, "hessian: mean of diag(H) is {} (must be > 0)", mean_diag);

    double damp = percdamp;
    for (;;) {
        const double lambda = damp * mean_diag;
        reversed_damped(H, f.dead, lambda, f.u);
        if (cholesky_upper(f.u) && reversed_factor_to_inverse_factor(f.u)) {
            f.percdamp_used = damp;
            f.damping = lambda;
            break;
        }
        damp = damp > 0.0 ? damp * 10.0 : 1e-4;
        PBS2P_CHECK(damp <= 1e4, "hessian: H ({}x{}) is not positive definite even with damping {}", m, m,
                    damp / 10.0);
    }
    f.u_f32 = Matrix(m, m);
    f.u_diag.resize(static_cast<size_t>(m));
#pragma omp parallel for schedule(static)
    for (int64_t k = 0; k < m * m; ++k)
        f.u_f32.data[static_cast<size_t>(k)] = static_cast<float>(f.u.data[static_cast<size_t>(k)]);
    for (int64_t j = 0; j < m; ++j) f.u_diag[static_cast<size_t>(j)] = f.u(j, j);
    return f;
}

MatrixD gram_block(const MatrixD& H, int64_t start, int64_t end) {
    const int64_t w = end - start;
    MatrixD s(w, w);
    for (int64_t i = 0; i < w; ++i)
        for (int64_t j = 0; j < w; ++j) s(i, j) = 0.5 * H(start + i, start + j);
    return s;
}

}  // namespace pbs2p
