// Codebooks of ternary patterns for groups of 8 consecutive input columns: the representation behind the
// variable-N codes, where each group of 8 weights of a row keeps as many non-zeros as its weights need
// instead of a fixed N of every 8. A pattern is 8 values in {-1, 0, +1}; a layer stores one index per group
// and one fp16 scale alpha per row per scale group: W_hat = alpha * pattern.
//
//   tern13: all 3^8 = 6561 patterns, index = base-3 number of (value + 1), column 0 least significant;
//           13 bits per 8 weights = 1.625 bits/weight.
//   tern11: 2048 patterns (11 bits per 8 = 1.375 bits/weight): every pattern with at most 4 non-zeros
//           (1697) and the 351 five-non-zero patterns with the fewest sign changes between neighbouring
//           non-zeros (ties by index); the table order is the code (see make_tern11 in the .cpp).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace pbs2p {

inline constexpr int kPatternWidth = 8;

struct PatternCodebook {
    std::string name;
    int code_bits = 0;
    std::vector<std::array<int8_t, kPatternWidth>> patterns;  // index = code
    std::vector<int32_t> code_of;                             // base-3 index -> code, -1 if not in the book

    int size() const { return static_cast<int>(patterns.size()); }
    // Code of a pattern, or -1 when the codebook does not hold it.
    int32_t find(const int8_t* values) const;
};

// Base-3 index of a pattern (value + 1 per column, column 0 least significant).
int32_t ternary_index(const int8_t* values);

// "tern11" | "tern13"; throws pbs2p::Error naming the choices otherwise.
const PatternCodebook& pattern_codebook(const std::string& name);
std::vector<std::string> pattern_codebook_names();

// Keep mask (bit j = column j non-zero) and sign mask (bit j = column j is +1) of a pattern.
void pattern_masks(const int8_t* values, uint8_t& keep_mask, uint8_t& sign_mask);

}  // namespace pbs2p
