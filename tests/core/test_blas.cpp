#include <gtest/gtest.h>

#include <vector>

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

// The packed accumulator does the same arithmetic as the square one, entry for entry (over several
// 2048-row chunks and onto a nonzero start).
Matrix random_normal_matrix(int64_t rows, int64_t cols, uint64_t seed) {
    Rng rng(seed);
    Matrix a(rows, cols);
    for (auto& v : a.data) v = static_cast<float>(rng.normal());
    return a;
}

TEST(Blas, PackedSyrkEqualsSquareSyrkBitForBit) {
    const int64_t n = 9, t = 4100;
    const Matrix a = random_normal_matrix(t, n, 3);
    MatrixD square(n, n);
    std::vector<double> packed(static_cast<size_t>(packed_upper_offset(n, n)));
    ASSERT_EQ(packed.size(), static_cast<size_t>(n * (n + 1) / 2));
    for (int round = 0; round < 2; ++round) {
        syrk_accumulate(a.ptr(), t, n, 0.37, square);
        syrk_accumulate_packed(a.ptr(), t, n, 0.37, packed.data());
    }
    size_t k = 0;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = i; j < n; ++j, ++k) {
            ASSERT_EQ(static_cast<size_t>(packed_upper_offset(i, n) + (j - i)), k);
            EXPECT_EQ(packed[k], square(i, j)) << i << "," << j;
        }
}

TEST(Blas, CholeskyAndInverseOfSpdMatrix) {
    const int64_t n = 6, t = 20;
    const Matrix a = random_normal_matrix(t, n, 2);
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
