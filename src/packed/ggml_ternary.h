// llama.cpp's ternary weight types TQ1_0 and TQ2_0 (ggml type ids 34 and 35): scalar reference encoder and
// decoder, written from the format. A row is cut into blocks of 256 consecutive weights; a block stores one
// fp16 scale d and 256 trits t in {-1, 0, +1}, the weights being t * d. Both store the code c = t + 1.
//
// TQ2_0, 66 bytes = 2.0625 bits/weight: qs[64] 2-bit codes, then d. Byte k (half h = k / 32, m = k % 32)
// holds in bits 2n..2n+1 (n = 0..3) the code of weight 128 h + 32 n + m.
//
// TQ1_0, 54 bytes = 1.6875 bits/weight: qs[48] with 5 trits per byte, qh[4] with 4, then d. A byte holds
// its trits as a base-3 fixed-point fraction: the codes c_0..c_4 (c_0 most significant) form
// q = sum c_n 3^(4-n) in [0, 243), stored as ceil(q * 256 / 243), and trit n is read back as
// floor(((byte * 3^n) mod 256) * 3 / 256). Weights per byte:
//   qs[m],      m = 0..31: weights m + 32 n         (n = 0..4, weights 0..159)
//   qs[32 + m], m = 0..15: weights 160 + m + 16 n   (n = 0..4, weights 160..239)
//   qh[j],      j = 0..3:  weights 240 + j + 4 n    (n = 0..3, weights 240..255; trit 4 is 0)
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace pbs2p {

inline constexpr int64_t kTernaryBlockWeights = 256;  // ggml QK_K

struct BlockTq1_0 {
    uint8_t qs[48];  // 5 trits per byte
    uint8_t qh[4];   // 4 trits per byte
    uint16_t d;      // fp16 scale
};
static_assert(sizeof(BlockTq1_0) == 54, "TQ1_0 block: 48 + 4 bytes of trits + fp16 scale");
static_assert(sizeof(BlockTq1_0) * 8 * 10000 / kTernaryBlockWeights == 16875, "TQ1_0 is 1.6875 bits/weight");

struct BlockTq2_0 {
    uint8_t qs[64];  // 4 two-bit codes per byte
    uint16_t d;      // fp16 scale
};
static_assert(sizeof(BlockTq2_0) == 66, "TQ2_0 block: 64 bytes of codes + fp16 scale");
static_assert(sizeof(BlockTq2_0) * 8 * 10000 / kTernaryBlockWeights == 20625, "TQ2_0 is 2.0625 bits/weight");

// One block in value form.
struct TernaryBlock {
    uint16_t d_fp16 = 0;
    std::array<int8_t, kTernaryBlockWeights> trits{};  // -1, 0 or +1
};

void encode_tq1_0(const TernaryBlock& block, BlockTq1_0& out);
TernaryBlock decode_tq1_0(const BlockTq1_0& in);
void encode_tq2_0(const TernaryBlock& block, BlockTq2_0& out);
TernaryBlock decode_tq2_0(const BlockTq2_0& in);

// The block that 256 floats exactly are: d = max |x| must be exact in fp16 and every x in {-d, 0, +d}.
// Returns "" on success, else why not (the offending column is relative to the block).
std::string ternary_block_from_floats(const float* x, TernaryBlock& block);

// True for the ggml types this file codes (tq1_0, tq2_0).
bool is_ternary_ggml_type(GgmlType type);
// A [rows x cols] row-major matrix in `type` (tq1_0 or tq2_0), rows one after another, each
// cols / 256 blocks. Throws pbs2p::Error naming `layer`, the row and the columns of the first block that
// is not exactly ternary, or when cols is not a multiple of 256.
std::vector<uint8_t> encode_ternary_matrix(GgmlType type, const float* w, int64_t rows, int64_t cols,
                                           const std::string& layer);
// Inverse of encode_ternary_matrix: `out` gets rows * cols floats.
void decode_ternary_matrix(GgmlType type, const uint8_t* bytes, int64_t rows, int64_t cols, float* out);

}  // namespace pbs2p
