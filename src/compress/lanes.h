// SIMD-across-rows helpers shared by the lane forms of the fits (binarizer.cpp, salient.cpp): kLanes rows
// are processed together, entry j of lane l at [j * kLanes + l]; each lane performs exactly the scalar
// reference's operations in the same order, so the lane forms are bit-identical to the per-row ones.
// Masked terms are multiplied by a 0/1 mask: a term becomes itself or a signed zero, and adding a zero
// leaves a sum unchanged.
#pragma once

#include <cstdint>
#include <cstring>

#include "compress/binarizer.h"

namespace pbs2p {

// Below this many entries a loop runs on one thread: on a shared machine waking the pool costs more than
// the loop (results never depend on the thread count).
constexpr int64_t kParallelMinWork = int64_t{1} << 15;

}  // namespace pbs2p

namespace pbs2p::lanes {

// kLanes floats as a few 8-wide GCC vectors; double sums in 4-wide halves.
typedef float f8 __attribute__((vector_size(32)));
typedef double d4 __attribute__((vector_size(32)));
typedef int i8v __attribute__((vector_size(32)));
constexpr int kVecs = kLanes / 8;

inline f8 load8(const float* p) {
    f8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store8(float* p, f8 v) {
    std::memcpy(p, &v, sizeof v);
}
inline f8 splat8(float x) {
    return f8{x, x, x, x, x, x, x, x};
}
// Exact float -> double widening of the low / high four lanes.
inline d4 lo4(f8 v) {
    return __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3), d4);
}
inline d4 hi4(f8 v) {
    return __builtin_convertvector(__builtin_shufflevector(v, v, 4, 5, 6, 7), d4);
}
// sgn(x) in {-1, 0, +1} (0 for 0 and NaN), as sgnf.
inline f8 sgn8(f8 x) {
    return __builtin_convertvector((x < 0.0f) - (x > 0.0f), f8);
}

// Per-lane double accumulator: acc[2v], acc[2v+1] hold lanes 8v..8v+3, 8v+4..8v+7.
struct LaneSum {
    d4 acc[2 * kVecs] = {};
    void add(int v, f8 x) {
        acc[2 * v] += lo4(x);
        acc[2 * v + 1] += hi4(x);
    }
    double operator[](int l) const { return acc[l / 4][l % 4]; }
};

}  // namespace pbs2p::lanes
