#include "packed/ggml_ternary.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"

namespace pbs2p {
namespace {

constexpr int kTq1Bytes = 52;  // trit bytes of a TQ1_0 block: qs[48] then qh[4]

// Weight index of trit n (n = 0 most significant) of TQ1_0 trit byte `byte` (0..51, qs then qh).
int tq1_weight(int byte, int n) {
    if (byte < 32) return byte + 32 * n;
    if (byte < 48) return 160 + (byte - 32) + 16 * n;
    return 240 + (byte - 48) + 4 * n;
}
int tq1_trits_in(int byte) {
    return byte < 48 ? 5 : 4;
}

// Codes c_0..c_4 (c_0 most significant) as a base-3 fraction in one byte: ceil(q * 256 / 243).
uint8_t pack_trits(const int (&codes)[5]) {
    int q = 0;
    for (int c : codes) q = 3 * q + c;
    return static_cast<uint8_t>((q * 256 + 242) / 243);
}
// Code n of a byte written by pack_trits: multiplying by 3^n drops the n leading trits (mod 256), the
// next one is then the integer part of 3 * fraction.
int unpack_trit(uint8_t byte, int n) {
    int scaled = byte;
    for (int i = 0; i < n; ++i) scaled = (scaled * 3) & 0xff;
    return (scaled * 3) >> 8;
}

// TQ2_0 byte k, bits 2n..2n+1.
int tq2_weight(int byte, int n) {
    return 128 * (byte / 32) + 32 * n + byte % 32;
}

struct TernaryCodec {
    GgmlType type;
    size_t block_bytes;
    void (*encode)(const TernaryBlock&, uint8_t*);
    TernaryBlock (*decode)(const uint8_t*);
};

// Byte-buffer adapters of the typed block coders.
template <typename Block, void (*encode)(const TernaryBlock&, Block&)>
void encode_to_bytes(const TernaryBlock& b, uint8_t* out) {
    Block block;
    encode(b, block);
    std::memcpy(out, &block, sizeof(block));
}
template <typename Block, TernaryBlock (*decode)(const Block&)>
TernaryBlock decode_from_bytes(const uint8_t* in) {
    Block block;
    std::memcpy(&block, in, sizeof(block));
    return decode(block);
}

const TernaryCodec codecs[] = {
    {GgmlType::tq1_0, sizeof(BlockTq1_0), encode_to_bytes<BlockTq1_0, encode_tq1_0>,
     decode_from_bytes<BlockTq1_0, decode_tq1_0>},
    {GgmlType::tq2_0, sizeof(BlockTq2_0), encode_to_bytes<BlockTq2_0, encode_tq2_0>,
     decode_from_bytes<BlockTq2_0, decode_tq2_0>},
};

const TernaryCodec& codec(GgmlType type) {
    for (const TernaryCodec& c : codecs)
        if (c.type == type) return c;
    fail("ggml type {} is not a ternary type (tq1_0, tq2_0)", ggml_type_info(type).name);
}

}  // namespace

void encode_tq1_0(const TernaryBlock& block, BlockTq1_0& out) {
    uint8_t bytes[kTq1Bytes];
    for (int byte = 0; byte < kTq1Bytes; ++byte) {
        int codes[5] = {1, 1, 1, 1, 0};  // the unused fifth trit of a qh byte is 0
        for (int n = 0; n < tq1_trits_in(byte); ++n) codes[n] = block.trits[tq1_weight(byte, n)] + 1;
        bytes[byte] = pack_trits(codes);
    }
    std::memcpy(out.qs, bytes, sizeof(out.qs));
    std::memcpy(out.qh, bytes + sizeof(out.qs), sizeof(out.qh));
    out.d = block.d_fp16;
}

TernaryBlock decode_tq1_0(const BlockTq1_0& in) {
    TernaryBlock block;
    block.d_fp16 = in.d;
    for (int byte = 0; byte < kTq1Bytes; ++byte) {
        const uint8_t value = byte < 48 ? in.qs[byte] : in.qh[byte - 48];
        for (int n = 0; n < tq1_trits_in(byte); ++n)
            block.trits[tq1_weight(byte, n)] = static_cast<int8_t>(unpack_trit(value, n) - 1);
    }
    return block;
}

void encode_tq2_0(const TernaryBlock& block, BlockTq2_0& out) {
    for (int byte = 0; byte < 64; ++byte) {
        int value = 0;
        for (int n = 0; n < 4; ++n) value |= (block.trits[tq2_weight(byte, n)] + 1) << (2 * n);
        out.qs[byte] = static_cast<uint8_t>(value);
    }
    out.d = block.d_fp16;
}

TernaryBlock decode_tq2_0(const BlockTq2_0& in) {
    TernaryBlock block;
    block.d_fp16 = in.d;
    for (int byte = 0; byte < 64; ++byte)
        for (int n = 0; n < 4; ++n)
            block.trits[tq2_weight(byte, n)] = static_cast<int8_t>(((in.qs[byte] >> (2 * n)) & 3) - 1);
    return block;
}

std::string ternary_block_from_floats(const float* x, TernaryBlock& block) {
    float d = 0.0f;
    for (int64_t j = 0; j < kTernaryBlockWeights; ++j) {
        if (!std::isfinite(x[j])) return fmt::format("value {} at column {} is not finite", x[j], j);
        d = std::max(d, std::fabs(x[j]));
    }
    if (round_to_fp16(d) != d)
        return fmt::format("scale {} is not exact in fp16 (nearest {})", d, round_to_fp16(d));
    for (int64_t j = 0; j < kTernaryBlockWeights; ++j) {
        if (x[j] != 0.0f && std::fabs(x[j]) != d)
            return fmt::format("value {} at column {} is neither 0 nor +-{}", x[j], j, d);
        block.trits[j] = static_cast<int8_t>(x[j] > 0.0f ? 1 : x[j] < 0.0f ? -1 : 0);
    }
    block.d_fp16 = f32_to_fp16(d);
    return "";
}

bool is_ternary_ggml_type(GgmlType type) {
    for (const TernaryCodec& c : codecs)
        if (c.type == type) return true;
    return false;
}

std::vector<uint8_t> encode_ternary_matrix(GgmlType type, const float* w, int64_t rows, int64_t cols,
                                           const std::string& layer) {
    const TernaryCodec& c = codec(type);
    PBS2P_CHECK(cols % kTernaryBlockWeights == 0,
                "{}: {} columns are not a multiple of {} ({} stores blocks of {})", layer, cols,
                kTernaryBlockWeights, ggml_type_info(type).name, kTernaryBlockWeights);
    const int64_t blocks = cols / kTernaryBlockWeights;
    std::vector<uint8_t> bytes(static_cast<size_t>(rows * blocks) * c.block_bytes);
    TernaryBlock block;
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t b = 0; b < blocks; ++b) {
            const int64_t col0 = b * kTernaryBlockWeights;
            const std::string why = ternary_block_from_floats(w + r * cols + col0, block);
            PBS2P_CHECK(why.empty(),
                        "{}: row {}, columns {}..{} are not exactly {{-d, 0, +d}} with d exact in fp16 ({}), "
                        "as {} requires",
                        layer, r, col0, col0 + kTernaryBlockWeights - 1, why, ggml_type_info(type).name);
            c.encode(block, bytes.data() + static_cast<size_t>(r * blocks + b) * c.block_bytes);
        }
    }
    return bytes;
}

void decode_ternary_matrix(GgmlType type, const uint8_t* bytes, int64_t rows, int64_t cols, float* out) {
    const TernaryCodec& c = codec(type);
    PBS2P_CHECK(cols % kTernaryBlockWeights == 0, "{} rows of {} columns are not whole blocks of {}",
                ggml_type_info(type).name, cols, kTernaryBlockWeights);
    const int64_t blocks = rows * (cols / kTernaryBlockWeights);
    for (int64_t b = 0; b < blocks; ++b) {
        const TernaryBlock block = c.decode(bytes + static_cast<size_t>(b) * c.block_bytes);
        const float d = fp16_to_f32(block.d_fp16);
        for (int64_t j = 0; j < kTernaryBlockWeights; ++j)
            out[b * kTernaryBlockWeights + j] = static_cast<float>(block.trits[j]) * d;
    }
}

}  // namespace pbs2p
