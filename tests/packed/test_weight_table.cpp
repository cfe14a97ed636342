// Weight tables (token embedding / LM head types f32, f16, q8, q4): the format table, round-trip error
// bounds, rejection of values a type cannot hold, and every table kernel against the scalar reference on
// awkward shapes.
//
// Tolerances, per output with S = sum_j |w_j x_j| over the decoded weights:
//   f32-activation kernels vs the fp64 product of the decoded table:      1e-5 S
//   int8-activation kernels vs the scalar int8-activation reference:     1e-5 S'  (S' over the int terms)
//   int8-activation reference vs the fp64 product:  1e-5 S + sum_b sum_{j in b} |w_j| * d_x(b) / 2
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "packed/weight_table.h"
#include "packed/weight_table_kernel.h"

namespace pbs2p {
namespace {

const int64_t kShapes[] = {1, 3, 7, 31, 32, 33, 127, 129, 256};

Matrix random_matrix(int64_t rows, int64_t cols, uint64_t seed, double scale = 1.0) {
    Rng rng(seed);
    Matrix m(rows, cols);
    for (auto& v : m.data) v = static_cast<float>(scale * rng.normal() * (rng.below(16) == 0 ? 6.0 : 1.0));
    return m;
}

TEST(WeightTable, FormatTableStatesBitsAndBlocks) {
    ASSERT_EQ(table_formats().size(), 4u);
    EXPECT_DOUBLE_EQ(table_format(TableType::f32).bits_per_weight(), 32.0);
    EXPECT_DOUBLE_EQ(table_format(TableType::f16).bits_per_weight(), 16.0);
    EXPECT_DOUBLE_EQ(table_format(TableType::q8).bits_per_weight(), 8.5);
    EXPECT_DOUBLE_EQ(table_format(TableType::q4).bits_per_weight(), 5.0);
    EXPECT_EQ(table_format(TableType::q8).row_bytes(33), 2 * 34);  // the last block padded
    EXPECT_EQ(table_format(TableType::q4).row_bytes(4096), 128 * 20);
    EXPECT_EQ(table_format(TableType::f16).row_bytes(7), 14);
    for (const TableFormat& f : table_formats()) EXPECT_EQ(parse_table_type(f.name), f.type);
    EXPECT_THROW(parse_table_type("q5"), Error);
    EXPECT_EQ(more_precise(TableType::q4, TableType::q8), TableType::q8);
    EXPECT_EQ(more_precise(TableType::f16, TableType::q8), TableType::f16);
}

// Largest round-trip error a type allows for one block of weights.
double block_error_bound(TableType type, const float* w, int64_t n) {
    double lo = w[0], hi = w[0], amax = 0;
    for (int64_t j = 0; j < n; ++j) lo = std::min<double>(lo, w[j]), hi = std::max<double>(hi, w[j]);
    amax = std::max(std::fabs(lo), std::fabs(hi));
    switch (type) {
        case TableType::f32:
            return 0.0;
        case TableType::f16:
            return amax * 0x1p-11 + 0x1p-24;
        case TableType::q8:  // half a step of d = amax / 127, d itself rounded to fp16
            return 0.5 * amax / 127.0 * (1 + 0x1p-10) + amax * 0x1p-10;
        case TableType::q4:  // half a step of (max - min) / 15, plus the fp16 rounding of min and d
            return 0.5 * (hi - lo) / 15.0 * (1 + 0x1p-10) + (amax + (hi - lo)) * 0x1p-10;
    }
    return 0.0;
}

TEST(WeightTable, RoundTripStaysWithinHalfAStep) {
    for (const TableFormat& f : table_formats())
        for (int64_t cols : kShapes) {
            const Matrix w = random_matrix(3, cols, 7 + cols);
            const WeightTable t = encode_table(w.ptr(), w.rows, w.cols, f.type, "test");
            ASSERT_EQ(t.bytes(), w.rows * f.row_bytes(cols));
            const Matrix back = decode_table(t);
            std::vector<float> row(static_cast<size_t>(cols));
            for (int64_t r = 0; r < w.rows; ++r) {
                t.decode_row(r, row.data());
                for (int64_t j0 = 0; j0 < cols; j0 += f.block) {
                    const int64_t n = std::min(f.block, cols - j0);
                    const double bound = block_error_bound(f.type, w.row(r) + j0, f.block == 1 ? 1 : n);
                    for (int64_t j = j0; j < j0 + n; ++j) {
                        EXPECT_LE(std::fabs(back(r, j) - w(r, j)), bound)
                            << f.name << " cols " << cols << " j " << j;
                        EXPECT_EQ(row[static_cast<size_t>(j)], back(r, j));
                    }
                }
            }
        }
}

// Zero blocks decode to zero in both blocked types; a constant block is exact in q4 (its min carries it).
TEST(WeightTable, ZeroBlocksAreExactAndQ4KeepsConstants) {
    std::vector<float> w(64, 0.0f);
    for (int j = 32; j < 64; ++j) w[static_cast<size_t>(j)] = 0.75f;
    for (TableType type : {TableType::q8, TableType::q4}) {
        const Matrix back = decode_table(encode_table(w.data(), 1, 64, type, "test"));
        for (int j = 0; j < 32; ++j) EXPECT_EQ(back(0, j), 0.0f) << table_type_name(type) << j;
        if (type == TableType::q4)
            for (int j = 32; j < 64; ++j) EXPECT_EQ(back(0, j), 0.75f) << j;
    }
}

TEST(WeightTable, RejectsValuesTheTypeCannotHold) {
    std::vector<float> w(40, 1.0f);
    w[35] = NAN;
    for (const TableFormat& f : table_formats()) {
        try {
            encode_table(w.data(), 1, 40, f.type, "model.embed_tokens.weight");
            FAIL() << f.name;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("model.embed_tokens.weight"), std::string::npos) << e.what();
        }
    }
    w[35] = 1e5f;  // beyond fp16
    EXPECT_THROW(encode_table(w.data(), 1, 40, TableType::f16, "t"), Error);
    EXPECT_NO_THROW(encode_table(w.data(), 1, 40, TableType::q8, "t"));
    EXPECT_NO_THROW(encode_table(w.data(), 1, 40, TableType::f32, "t"));
    const uint8_t bytes[10] = {};
    EXPECT_THROW(table_from_bytes(TableType::q8, 1, 32, bytes, 10, "t"), Error);
    EXPECT_NO_THROW(table_from_bytes(TableType::f16, 1, 5, bytes, 10, "t"));
}

struct Products {
    std::vector<double> y, abs_sum, quant_bound;
};

// fp64 product of the decoded table, S per row, and the int8-activation rounding bound per row.
Products dense_products(const WeightTable& t, const std::vector<float>& x) {
    const Matrix w = decode_table(t);
    Products p;
    for (int64_t r = 0; r < t.rows; ++r) {
        double y = 0, s = 0, q = 0;
        for (int64_t b = 0; b * kTableBlock < t.cols; ++b) {
            double amax = 0, wsum = 0;
            for (int64_t j = b * kTableBlock; j < std::min(t.cols, (b + 1) * kTableBlock); ++j) {
                y += static_cast<double>(w(r, j)) * x[static_cast<size_t>(j)];
                s += std::fabs(static_cast<double>(w(r, j)) * x[static_cast<size_t>(j)]);
                amax = std::max(amax, std::fabs(static_cast<double>(x[static_cast<size_t>(j)])));
                wsum += std::fabs(w(r, j));
            }
            q += wsum * amax / 127.0 / 2.0;
        }
        p.y.push_back(y);
        p.abs_sum.push_back(s);
        p.quant_bound.push_back(q);
    }
    return p;
}

TEST(WeightTableKernels, EveryKernelMatchesTheReferenceOnAwkwardShapes) {
    const int64_t shapes[] = {1, 3, 7, 127, 129};
    for (const TableKernelImpl& k : table_kernels())
        for (int64_t rows : shapes)
            for (int64_t cols : kShapes) {
                const Matrix w = random_matrix(rows, cols, 100 * rows + cols);
                const WeightTable t = encode_table(w.ptr(), rows, cols, k.type, "test");
                Rng rng(rows * 31 + cols);
                std::vector<float> x(static_cast<size_t>(cols));
                for (auto& v : x) v = static_cast<float>(rng.normal() * (rng.below(8) == 0 ? 10.0 : 1.0));
                const Products dense = dense_products(t, x);
                std::vector<float> y(static_cast<size_t>(rows)), tight(static_cast<size_t>(rows));
                k.gemv(t, x.data(), y.data());
                const bool q8 = std::string(k.activations) == "q8";
                if (q8) table_gemv_q8_activations_reference(t, x.data(), tight.data());
                for (int64_t r = 0; r < rows; ++r) {
                    const auto i = static_cast<size_t>(r);
                    const std::string where =
                        fmt::format("{} {} {}x{} row {}", k.name, table_type_name(k.type), rows, cols, r);
                    if (q8) {
                        EXPECT_NEAR(y[i], tight[i],
                                    1e-5 * dense.abs_sum[i] + 1e-6 * dense.quant_bound[i] + 1e-30)
                            << where;
                        EXPECT_NEAR(y[i], dense.y[i], 1e-5 * dense.abs_sum[i] + dense.quant_bound[i])
                            << where;
                    } else {
                        EXPECT_NEAR(y[i], dense.y[i], 1e-5 * dense.abs_sum[i] + 1e-30) << where;
                    }
                }
            }
}

TEST(WeightTableKernels, ForwardCoversSingleTokensAndPanels) {
    for (TableType type : {TableType::f16, TableType::q8, TableType::q4}) {
        const int64_t rows = 129, cols = 72;
        const Matrix w = random_matrix(rows, cols, 5);
        const WeightTableKernel kernel(encode_table(w.ptr(), rows, cols, type, "test"));
        EXPECT_EQ(kernel.rows(), rows);
        EXPECT_EQ(kernel.cols(), cols);
        EXPECT_EQ(kernel.weight_bytes(), rows * table_format(type).row_bytes(cols));
        for (int64_t tokens : {int64_t{1}, int64_t{3}, WeightTableKernel::kPanelTokens, int64_t{17}}) {
            const Matrix x = random_matrix(tokens, cols, 11 + tokens);
            std::vector<float> y(static_cast<size_t>(tokens * rows));
            kernel.forward(x.ptr(), tokens, y.data());
            for (int64_t t = 0; t < tokens; ++t) {
                const std::vector<float> xt(x.row(t), x.row(t) + cols);
                const Products dense = dense_products(kernel.table(), xt);
                for (int64_t r = 0; r < rows; ++r)
                    EXPECT_NEAR(y[static_cast<size_t>(t * rows + r)], dense.y[static_cast<size_t>(r)],
                                1e-5 * dense.abs_sum[static_cast<size_t>(r)] +
                                    dense.quant_bound[static_cast<size_t>(r)])
                        << table_type_name(type) << " tokens " << tokens << " row " << r;
            }
        }
    }
}

TEST(WeightTableKernels, FastestKernelIsTheLastOfItsType) {
    for (const TableFormat& f : table_formats()) {
        const TableKernelImpl& k = fastest_table_kernel(f.type);
        EXPECT_EQ(k.type, f.type);
    }
    EXPECT_STREQ(table_kernels().front().name, "reference");
}

}  // namespace
}  // namespace pbs2p
