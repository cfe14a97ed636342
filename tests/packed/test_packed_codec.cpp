// Reference codec of the packed format: code widths, bit-exact round trips on awkward shapes, rejection of
// invalid layouts and corrupted codes.
#include <gtest/gtest.h>

#include "core/error.h"
#include "packed/packed_layer.h"
#include "packed/random_layout.h"

namespace pbs2p {
namespace {

TEST(PackedCodec, CodeBitsPerKeptCount) {
    const int expected[9] = {0, 4, 7, 9, 11, 11, 11, 10, 8};
    for (int kept = 1; kept <= 8; ++kept) EXPECT_EQ(code_bits_for(kept), expected[kept]) << kept;
    EXPECT_THROW(code_bits_for(0), Error);
}

TEST(PackedCodec, EveryGroupPatternRoundTrips) {
    for (int kept = 1; kept <= 8; ++kept) {
        int seen = 0;
        for (int keep = 0; keep < 256; ++keep) {
            if (__builtin_popcount(keep) != kept) continue;
            for (int sign = 0; sign < 256; ++sign) {
                if (sign & ~keep) continue;
                const uint32_t code =
                    encode_group(static_cast<uint8_t>(keep), static_cast<uint8_t>(sign), kept);
                ASSERT_LT(code, 1u << code_bits_for(kept));
                uint8_t k2, s2;
                ASSERT_TRUE(decode_group(code, kept, k2, s2));
                ASSERT_EQ(k2, keep);
                ASSERT_EQ(s2, sign);
                ++seen;
            }
        }
        // Codes beyond the last pattern are invalid.
        uint8_t k2, s2;
        EXPECT_FALSE(decode_group(static_cast<uint32_t>(seen), kept, k2, s2)) << kept;
    }
}

void expect_same(const BinaryLayout& a, const BinaryLayout& b) {
    EXPECT_EQ(a.rows, b.rows);
    EXPECT_EQ(a.cols, b.cols);
    EXPECT_EQ(a.n_keep, b.n_keep);
    EXPECT_EQ(a.m_group, b.m_group);
    EXPECT_EQ(a.scale_group, b.scale_group);
    EXPECT_EQ(a.keep, b.keep);
    EXPECT_EQ(a.sign, b.sign);
    EXPECT_EQ(a.alpha, b.alpha);
    EXPECT_EQ(a.mu, b.mu);
}

TEST(PackedCodec, RoundTripAwkwardShapes) {
    const int64_t rows_list[] = {1, 3, 7, 127, 129};
    const int64_t cols_list[] = {8, 24, 136, 264};
    const int nm[][2] = {{4, 8}, {5, 8}, {6, 8}, {1, 8}, {7, 8}, {8, 8}, {3, 8}, {2, 4}, {1, 2}};
    uint64_t seed = 1;
    for (int64_t rows : rows_list)
        for (int64_t cols : cols_list)
            for (const auto& p : nm) {
                const int64_t sg = (seed % 2 == 0) ? cols : 8;
                BinaryLayout layout = random_layout(rows, cols, p[0], p[1], sg, seed++);
                PackedLayer packed = encode_layer(layout);
                EXPECT_EQ(static_cast<int64_t>(packed.codes.size()), packed.desc.code_bytes());
                expect_same(decode_layer(packed), layout);
                if (::testing::Test::HasFailure()) {
                    ADD_FAILURE() << rows << "x" << cols << " " << p[0] << ":" << p[1];
                    return;
                }
            }
}

TEST(PackedCodec, TrueBitsPerWeight) {
    // 11-bit codes (1.375 bits) + one fp16 pair per row.
    EXPECT_NEAR(packed_bits_per_weight(4096, 4096, 4, 8, 4096), 1.375 + 32.0 / 4096, 1e-9);
    EXPECT_LE(packed_bits_per_weight(4096, 1280, 5, 8, 1280), 1.40);
    EXPECT_NEAR(packed_bits_per_weight(4096, 4096, 6, 8, 128), 1.375 + 0.25, 1e-9);
    BinaryLayout layout = random_layout(64, 256, 4, 8, 256, 3);
    EXPECT_NEAR(encode_layer(layout).bits_per_weight(), 1.5, 1e-9);
}

TEST(PackedCodec, RejectsInvalidLayouts) {
    BinaryLayout base = random_layout(3, 24, 4, 8, 24, 5);
    {
        BinaryLayout bad = base;
        bad.keep[0] ^= 1;  // group now keeps 3 or 5
        EXPECT_THROW(encode_layer(bad), Error);
    }
    {
        BinaryLayout bad = base;
        bad.alpha[1] = 0.1f;  // not fp16-exact
        EXPECT_THROW(encode_layer(bad), Error);
    }
    {
        BinaryLayout bad = base;
        bad.mu[0] = std::numeric_limits<float>::quiet_NaN();
        EXPECT_THROW(encode_layer(bad), Error);
    }
    {
        BinaryLayout bad = random_layout(3, 30, 2, 3, 30, 1);  // M = 3 does not divide 8
        try {
            encode_layer(bad, "blk.q");
            FAIL();
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("2:3"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("blk.q"), std::string::npos) << e.what();
        }
    }
    {
        BinaryLayout bad = base;
        bad.scale_group = 12;
        EXPECT_THROW(encode_layer(bad), Error);
    }
    {
        BinaryLayout bad = base;
        bad.sign.pop_back();
        EXPECT_THROW(encode_layer(bad), Error);
    }
}

TEST(PackedCodec, CodebookLayoutsRoundTripAndCountAlphaOnly) {
    uint64_t seed = 40;
    for (const char* code : {"tern11", "tern13"})
        for (int64_t rows : {1, 5, 33})
            for (int64_t cols : {8, 24, 136}) {
                const int64_t sg = (seed % 2 == 0) ? cols : 8;
                const BinaryLayout layout = random_code_layout(rows, cols, code, sg, seed++);
                const PackedLayer packed = encode_layer(layout);
                EXPECT_EQ(packed.desc.code, code);
                expect_same(decode_layer(packed), layout);
                EXPECT_EQ(decode_layer(packed).code, code);
                EXPECT_EQ(encode_layer(decode_layer(packed)).codes, packed.codes);
                // codes + one fp16 alpha per row per scale group, nothing else.
                const int bits = std::string(code) == "tern11" ? 11 : 13;
                const int64_t code_bytes = (rows * cols / 8 * bits + 63) / 64 * 8;
                EXPECT_EQ(packed.storage_bytes(), code_bytes + rows * (cols / sg) * 2)
                    << code << " " << rows << "x" << cols;
                EXPECT_DOUBLE_EQ(packed_bits_per_weight(packed.desc), packed.bits_per_weight());
            }
}

// Golden bitstream worked out by hand: tern13's code is the base-3 number of (value + 1), column 0 first.
// [+1, 0, -1, 0, 0, 0, 0, +1] -> 2 + 1*3 + 0*9 + 1*27 + 1*81 + 1*243 + 1*729 + 2*2187 = 5459 = 0x1553, stored
// LSB-first in 13 bits, padded to 8 bytes.
TEST(PackedCodec, Tern13GoldenBitstream) {
    BinaryLayout l;
    l.code = "tern13";
    l.rows = 1;
    l.cols = 8;
    l.m_group = 8;
    l.scale_group = 8;
    const int8_t values[8] = {1, 0, -1, 0, 0, 0, 0, 1};
    for (int8_t v : values) {
        l.keep.push_back(v != 0);
        l.sign.push_back(v > 0);
    }
    l.alpha = {0.5f};
    l.mu = {0.0f};
    const PackedLayer packed = encode_layer(l);
    const std::vector<uint8_t> expected = {0x53, 0x15, 0, 0, 0, 0, 0, 0};
    EXPECT_EQ(packed.codes, expected);
    EXPECT_EQ(packed.code(0, 0), 5459u);
}

TEST(PackedCodec, CodebookLayoutsRejectWhatTheCodeCannotHold) {
    BinaryLayout base = random_code_layout(2, 16, "tern11", 16, 7);
    {
        BinaryLayout bad = base;
        for (int j = 0; j < 8; ++j) bad.keep[static_cast<size_t>(j)] = 1;  // 8 non-zeros: not in tern11
        try {
            encode_layer(bad, "blk.0.v_proj");
            FAIL();
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("blk.0.v_proj"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("tern11"), std::string::npos) << e.what();
        }
    }
    {
        BinaryLayout bad = base;
        bad.mu[0] = 0.25f;  // codebook codes store no mu
        EXPECT_THROW(encode_layer(bad), Error);
    }
    {
        PackedLayer packed = encode_layer(base);
        for (int b = 0; b < 11; ++b)
            packed.codes[static_cast<size_t>(b / 8)] |= static_cast<uint8_t>(1 << (b % 8));
        EXPECT_NO_THROW(decode_layer(packed));  // 2047 < 2048: every 11-bit code is valid for tern11
        PackedLayer t13 = encode_layer(random_code_layout(1, 8, "tern13", 8, 3));
        for (int b = 0; b < 13; ++b)
            t13.codes[static_cast<size_t>(b / 8)] |= static_cast<uint8_t>(1 << (b % 8));
        EXPECT_THROW(decode_layer(t13), Error);  // 8191 >= 6561
    }
}

TEST(PackedCodec, RejectsCorruptedCodes) {
    PackedLayer packed = encode_layer(random_layout(2, 16, 4, 8, 16, 9));
    // 4 codes of 11 bits; set code 1 to all ones (2047 >= 1120 patterns).
    for (int b = 11; b < 22; ++b)
        packed.codes[static_cast<size_t>(b / 8)] |= static_cast<uint8_t>(1 << (b % 8));
    EXPECT_THROW(decode_layer(packed), Error);
    PackedLayer truncated = encode_layer(random_layout(2, 16, 4, 8, 16, 9));
    truncated.codes.resize(2);
    EXPECT_THROW(decode_layer(truncated), Error);
}

}  // namespace
}  // namespace pbs2p
