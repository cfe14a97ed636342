#include <gtest/gtest.h>

#include <cmath>

#include "core/half.h"

namespace pbs2p {

TEST(Half, Fp16RoundTripIsExactForEveryFiniteCode) {
    for (uint32_t code = 0; code < 0x10000u; ++code) {
        uint16_t h = static_cast<uint16_t>(code);
        if (((h >> 10) & 0x1f) == 0x1f) continue;  // inf / NaN
        float f = fp16_to_f32(h);
        EXPECT_EQ(f32_to_fp16(f), h) << "code " << code;
    }
}

TEST(Half, Fp16RoundsToNearestEven) {
    EXPECT_EQ(fp16_to_f32(f32_to_fp16(1.0f + 1.0f / 2048.0f)), 1.0f);  // halfway, ties to even
    EXPECT_EQ(fp16_to_f32(f32_to_fp16(1.0f + 3.0f / 4096.0f)), 1.0f + 1.0f / 1024.0f);  // 0.75 ulp up
    EXPECT_TRUE(std::isinf(fp16_to_f32(f32_to_fp16(70000.0f))));
    EXPECT_EQ(fp16_to_f32(f32_to_fp16(65504.0f)), 65504.0f);
    EXPECT_EQ(fp16_to_f32(f32_to_fp16(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));
}

TEST(Half, Bf16RoundTrip) {
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.5f)), 1.5f);
    EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256.0f)), 1.0f);  // tie to even
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

}  // namespace pbs2p
