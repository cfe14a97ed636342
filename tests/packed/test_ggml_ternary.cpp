// llama.cpp's ternary block types: bit-exact round trips (every trit pattern of a byte, random blocks,
// whole matrices), a golden block computed independently (tests/packed/golden/ternary_blocks.py) and the
// refusal of weights that are not exactly {-d, 0, +d} with d exact in fp16.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "core/half.h"
#include "io/safetensors_fixtures.h"
#include "packed/ggml_ternary.h"

namespace pbs2p {
namespace {

TernaryBlock random_block(std::mt19937& rng, float d) {
    TernaryBlock b;
    b.d_fp16 = f32_to_fp16(d);
    std::uniform_int_distribution<int> trit(-1, 1);
    for (auto& t : b.trits) t = static_cast<int8_t>(trit(rng));
    return b;
}

template <typename Block>
std::vector<uint8_t> bytes_of(const Block& b) {
    std::vector<uint8_t> out(sizeof(Block));
    std::memcpy(out.data(), &b, sizeof(Block));
    return out;
}

std::vector<uint8_t> from_hex(const std::string& hex) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

TEST(GgmlTernary, BlockSizesMatchGgmlTypeTable) {
    EXPECT_EQ(ggml_type_info(GgmlType::tq1_0).block_bytes, int64_t(sizeof(BlockTq1_0)));
    EXPECT_EQ(ggml_type_info(GgmlType::tq2_0).block_bytes, int64_t(sizeof(BlockTq2_0)));
    EXPECT_DOUBLE_EQ(ggml_type_info(GgmlType::tq1_0).bits_per_weight(), 1.6875);
    EXPECT_DOUBLE_EQ(ggml_type_info(GgmlType::tq2_0).bits_per_weight(), 2.0625);
}

// Every one of the 3^5 code patterns in every TQ1_0 trit byte position decodes back.
TEST(GgmlTernary, Tq1EveryBytePatternRoundTrips) {
    for (int pattern = 0; pattern < 243; ++pattern) {
        TernaryBlock b;
        b.d_fp16 = f32_to_fp16(1.0f);
        // Weight j gets digit j % 5 of the pattern. The weights of one byte (j0 + s n, strides s = 32, 16, 4)
        // have distinct j % 5, so over all patterns every byte takes every combination of codes.
        for (int j = 0; j < 256; ++j) {
            int digit = j % 5, value = pattern;
            for (int k = 0; k < digit; ++k) value /= 3;
            b.trits[j] = static_cast<int8_t>(value % 3 - 1);
        }
        BlockTq1_0 encoded;
        encode_tq1_0(b, encoded);
        const TernaryBlock decoded = decode_tq1_0(encoded);
        ASSERT_EQ(decoded.trits, b.trits) << "pattern " << pattern;
        ASSERT_EQ(decoded.d_fp16, b.d_fp16);
    }
}

// encode -> decode gives the block back; decode -> encode gives the same bytes.
template <typename Block>
void expect_round_trip(const TernaryBlock& b, void (*encode)(const TernaryBlock&, Block&),
                       TernaryBlock (*decode)(const Block&)) {
    Block encoded;
    encode(b, encoded);
    const TernaryBlock decoded = decode(encoded);
    EXPECT_EQ(decoded.trits, b.trits);
    EXPECT_EQ(decoded.d_fp16, b.d_fp16);
    Block again;
    encode(decoded, again);
    EXPECT_EQ(bytes_of(again), bytes_of(encoded));
}

TEST(GgmlTernary, RandomBlocksRoundTripBitExact) {
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
        const TernaryBlock b = random_block(rng, 0.001f * float(i + 1));
        expect_round_trip<BlockTq1_0>(b, encode_tq1_0, decode_tq1_0);
        expect_round_trip<BlockTq2_0>(b, encode_tq2_0, decode_tq2_0);
    }
}

TEST(GgmlTernary, GoldenBlocksFromIndependentScript) {
    std::ifstream in(std::string(PBS2P_SOURCE_DIR) + "/tests/packed/golden/ternary_blocks.json");
    ASSERT_TRUE(in) << "tests/packed/golden/ternary_blocks.json missing";
    const nlohmann::json golden = nlohmann::json::parse(in);
    TernaryBlock b;
    b.d_fp16 = f32_to_fp16(golden["d"].get<float>());
    const auto trits = golden["trits"].get<std::vector<int>>();
    ASSERT_EQ(trits.size(), 256u);
    for (int j = 0; j < 256; ++j) b.trits[j] = static_cast<int8_t>(trits[j]);

    BlockTq1_0 tq1;
    encode_tq1_0(b, tq1);
    EXPECT_EQ(bytes_of(tq1), from_hex(golden["tq1_0"].get<std::string>()));
    BlockTq2_0 tq2;
    encode_tq2_0(b, tq2);
    EXPECT_EQ(bytes_of(tq2), from_hex(golden["tq2_0"].get<std::string>()));

    // And the golden bytes decode to the golden values.
    std::vector<float> values(256);
    for (GgmlType type : {GgmlType::tq1_0, GgmlType::tq2_0}) {
        const std::vector<uint8_t> bytes = from_hex(golden[ggml_type_info(type).name].get<std::string>());
        decode_ternary_matrix(type, bytes.data(), 1, 256, values.data());
        for (int j = 0; j < 256; ++j)
            ASSERT_EQ(values[j], float(trits[j]) * 0.75f) << ggml_type_info(type).name << " " << j;
    }
}

// A [rows x cols] matrix of exact ternary blocks with per-block fp16 scales (some blocks all zero).
std::vector<float> ternary_matrix(int64_t rows, int64_t cols, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> trit(-1, 1);
    std::uniform_real_distribution<float> scale(0.001f, 2.0f);
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b < cols / 256; ++b) {
            const float d = (r + b) % 5 == 4 ? 0.0f : round_to_fp16(scale(rng));
            for (int64_t j = 0; j < 256; ++j) w[r * cols + b * 256 + j] = float(trit(rng)) * d;
        }
    return w;
}

TEST(GgmlTernary, MatricesRoundTripExactly) {
    const int64_t rows = 5, cols = 768;
    const std::vector<float> w = ternary_matrix(rows, cols, 11);
    for (GgmlType type : {GgmlType::tq1_0, GgmlType::tq2_0}) {
        const std::vector<uint8_t> bytes = encode_ternary_matrix(type, w.data(), rows, cols, "layer");
        EXPECT_EQ(int64_t(bytes.size()), rows * ggml_row_bytes(type, cols));
        std::vector<float> back(w.size());
        decode_ternary_matrix(type, bytes.data(), rows, cols, back.data());
        EXPECT_EQ(back, w) << ggml_type_info(type).name;
        EXPECT_EQ(encode_ternary_matrix(type, back.data(), rows, cols, "layer"), bytes);
    }
}

void expect_refused(const std::vector<float>& w, int64_t rows, int64_t cols,
                    std::vector<std::string> mentions) {
    mentions.push_back("model.layers.3.mlp.up_proj.weight");
    testing_fixtures::expect_error_mentioning(
        [&] {
            encode_ternary_matrix(GgmlType::tq2_0, w.data(), rows, cols, "model.layers.3.mlp.up_proj.weight");
        },
        mentions);
}

TEST(GgmlTernary, RefusesBlocksThatAreNotExactlyTernary) {
    const int64_t rows = 3, cols = 512;
    const std::vector<float> w = ternary_matrix(rows, cols, 5);
    EXPECT_NO_THROW(encode_ternary_matrix(GgmlType::tq2_0, w.data(), rows, cols, "layer"));
    // A third magnitude in row 1, second block.
    std::vector<float> bad = w;
    for (int64_t j = 256; j < 512; ++j) bad[cols + j] = (j % 2 ? 0.5f : -0.5f);
    bad[cols + 300] = 0.25f;
    expect_refused(bad, rows, cols, {"row 1, columns 256..511", "0.25", "tq2_0"});
    // A scale that fp16 cannot hold exactly.
    bad = w;
    for (int64_t j = 0; j < 256; ++j) bad[2 * cols + j] = (j % 3 == 0 ? 0.1f : 0.0f);
    expect_refused(bad, rows, cols, {"row 2, columns 0..255", "not exact in fp16"});
    // Rows that are not whole blocks.
    expect_refused(std::vector<float>(3 * 100, 0.0f), 3, 100, {"100 columns are not a multiple of 256"});
}

}  // namespace
}  // namespace pbs2p
