// GPTQ and SparseGPT against the committed PyTorch float64 oracle (tools/reference/compress_oracle.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "compress/layer_compressor.h"

using namespace pbs2p;

namespace {

nlohmann::json load_golden() {
    std::ifstream in(std::string(PBS2P_SOURCE_DIR) + "/tests/compress/golden/compress_oracle.json");
    EXPECT_TRUE(in.good());
    return nlohmann::json::parse(in);
}

}  // namespace

TEST(CompressOracle, HessianFactorMatchesTorch) {
    const auto g = load_golden();
    const int64_t cols = g["cols"];
    MatrixD h(cols, cols);
    for (int64_t k = 0; k < cols * cols; ++k) h.data[k] = g["hessian"][k];
    const HessianFactor f = factor_hessian(h, g["percdamp"]);
    EXPECT_TRUE(f.dead[5]);
    for (int64_t j = 0; j < cols; ++j) EXPECT_NEAR(f.u_diag[j], g["u_diag"][j].get<double>(), 1e-9 * f.u_diag[j]);
}

TEST(CompressOracle, GptqAndSparseGptMatchTorch) {
    const auto g = load_golden();
    const int64_t rows = g["rows"], cols = g["cols"];
    Matrix w(rows, cols);
    MatrixD h(cols, cols);
    for (int64_t k = 0; k < rows * cols; ++k) w.data[k] = g["weight"][k];
    for (int64_t k = 0; k < cols * cols; ++k) h.data[k] = g["hessian"][k];
    const HessianFactor f = factor_hessian(h, g["percdamp"]);
    for (const auto& c : g["cases"]) {
        CompressOptions o;
        o.method = c["method"];
        o.block_size = g["block_size"];
        if (o.method == "gptq") {
            o.bits = c["bits"];
            o.group_size = c["group_size"];
            o.symmetric = c["symmetric"];
        } else {
            o.n_keep = c["n_keep"];
            o.m_group = c["m_group"];
        }
        const CompressedLayer out = compress_layer(w, h, f, o);
        double max_abs = 0.0;
        for (int64_t k = 0; k < rows * cols; ++k) max_abs = std::max(max_abs, std::fabs(c["expected"][k].get<double>()));
        int64_t exact_zero_mismatch = 0;
        for (int64_t k = 0; k < rows * cols; ++k) {
            const double e = c["expected"][k];
            ASSERT_NEAR(out.weight.data[k], e, 2e-5 * max_abs) << o.method << " entry " << k;
            exact_zero_mismatch += (e == 0.0) != (out.weight.data[k] == 0.0f);
        }
        if (o.method == "sparsegpt") EXPECT_EQ(exact_zero_mismatch, 0);
        for (int64_t i = 0; i < rows; ++i) EXPECT_EQ(out.weight(i, 5), 0.0f);  // dead column
    }
}
