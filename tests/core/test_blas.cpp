#include <gtest/gtest.h>

#include "core/blas.h"
#include "core/rng.h"

namespace pbs2p {

TEST(Blas, MatmulXwtMatchesNaive) {
    Rng rng(1);
    const int64_t t = 5, in = 7, out = 3;
    Matrix x(t, in), w(out, in), y(t, out);
    for (auto& v : x.data) v = static_cast<float>(rng.normal());
    for (auto& v : w.data) v = static_cast<float>(rng.normal());
    matmul_xwt(x.ptr(), t, in, w.ptr(), out, y.ptr());
    for (int64_t i = 0; i < t; ++i)
        for (int64_t j = 0; j < out; ++j) {
            double s = 0;
            for (int64_t k = 0; k < in; ++k) s += x(i, k) * w(j, k);
            EXPECT_NEAR(y(i, j), s, 1e-4);
        }
}

TEST(Blas, CholeskyAndInverseOfSpdMatrix) {
    Rng rng(2);
    const int64_t n = 6, t = 20;
    Matrix a(t, n);
    for (auto& v : a.data) v = static_cast<float>(rng.normal());
    MatrixD h(n, n);
    syrk_accumulate(a.ptr(), t, n, 1.0, h);
    symmetrize_from_upper(h);
    MatrixD u = h;
    ASSERT_TRUE(cholesky_upper(u));
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t k = 0; k < n; ++k) s += u(k, i) * u(k, j);
            EXPECT_NEAR(s, h(i, j), 1e-8 * (1 + std::abs(h(i, j))));
        }
    MatrixD inv = h;
    ASSERT_TRUE(spd_inverse(inv));
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t k = 0; k < n; ++k) s += h(i, k) * inv(k, j);
            EXPECT_NEAR(s, i == j ? 1.0 : 0.0, 1e-8);
        }
    MatrixD singular(2, 2, 1.0);
    EXPECT_FALSE(cholesky_upper(singular));
}

}  // namespace pbs2p
