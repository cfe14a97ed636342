// bf16 and IEEE fp16 <-> fp32 conversions (scalar, round to nearest even).
#pragma once

#include <cstdint>
#include <cstring>

namespace pbs2p {

inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>((bits + rounding) >> 16);
}

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);

// Value after a round trip through fp16 (what a stored fp16 scale will be when read back).
inline float round_to_fp16(float f) { return fp16_to_f32(f32_to_fp16(f)); }

void bf16_to_f32_row(const uint16_t* src, float* dst, int64_t n);
void fp16_to_f32_row(const uint16_t* src, float* dst, int64_t n);

}  // namespace pbs2p
