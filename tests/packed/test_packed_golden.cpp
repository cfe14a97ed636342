// The reference codec against golden bitstreams written by an independent encoder
// (tools/reference/packed_golden.py, from docs/FORMAT.md alone): a change of rank order, sign order, bit
// order, code width or padding that round-trips consistently still fails here.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "packed/packed_layer.h"

namespace pbs2p {
namespace {

const std::string kGolden = std::string(PBS2P_SOURCE_DIR) + "/tests/packed/golden/";

std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << path;
    return {std::istreambuf_iterator<char>(in), {}};
}

BinaryLayout layout_of(const nlohmann::json& c) {
    BinaryLayout l;
    l.rows = c.at("rows");
    l.cols = c.at("cols");
    l.n_keep = c.at("n_keep");
    l.m_group = c.at("m_group");
    l.scale_group = c.at("scale_group");
    for (const auto& row : c.at("keep"))
        for (char bit : row.get<std::string>()) l.keep.push_back(bit == '1');
    for (const auto& row : c.at("sign"))
        for (char bit : row.get<std::string>()) l.sign.push_back(bit == '1');
    l.alpha = c.at("alpha").get<std::vector<float>>();
    l.mu = c.at("mu").get<std::vector<float>>();
    return l;
}

nlohmann::json golden_cases() {
    std::ifstream in(kGolden + "packed_golden.json");
    EXPECT_TRUE(in.good());
    return nlohmann::json::parse(in).at("cases");
}

TEST(PackedGolden, EncoderWritesTheIndependentBitstream) {
    const nlohmann::json cases = golden_cases();
    ASSERT_GE(cases.size(), 6u);
    for (const auto& c : cases) {
        const std::string name = c.at("name");
        const BinaryLayout layout = layout_of(c);
        const PackedLayer packed = encode_layer(layout, name);
        EXPECT_EQ(packed.desc.code_bits, c.at("code_bits").get<int>()) << name;
        EXPECT_EQ(packed.codes, read_bytes(kGolden + name + ".codes")) << name;
        const std::vector<uint8_t> scales = read_bytes(kGolden + name + ".scales");
        ASSERT_EQ(scales.size(), packed.scales.size() * sizeof(ScalePair)) << name;
        EXPECT_EQ(std::memcmp(scales.data(), packed.scales.data(), scales.size()), 0) << name;
        EXPECT_EQ(packed.storage_bytes(), static_cast<int64_t>(packed.codes.size() + scales.size())) << name;
    }
}

TEST(PackedGolden, DecoderReadsTheIndependentBitstream) {
    for (const auto& c : golden_cases()) {
        const std::string name = c.at("name");
        const BinaryLayout expected = layout_of(c);
        PackedLayer packed;
        packed.desc = desc_for(expected, name);
        packed.codes = read_bytes(kGolden + name + ".codes");
        const std::vector<uint8_t> scales = read_bytes(kGolden + name + ".scales");
        packed.scales.resize(scales.size() / sizeof(ScalePair));
        std::memcpy(packed.scales.data(), scales.data(), scales.size());
        const BinaryLayout decoded = decode_layer(packed, name);
        EXPECT_EQ(decoded.keep, expected.keep) << name;
        EXPECT_EQ(decoded.sign, expected.sign) << name;
        EXPECT_EQ(decoded.alpha, expected.alpha) << name;
        EXPECT_EQ(decoded.mu, expected.mu) << name;
        EXPECT_EQ(decoded.n_keep, expected.n_keep) << name;
        EXPECT_EQ(decoded.m_group, expected.m_group) << name;
    }
}

}  // namespace
}  // namespace pbs2p
