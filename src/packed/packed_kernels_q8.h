// Pieces shared by the int8-activation (q8) kernels of different instruction sets: the chunks that carry
// one activation scale, the per-group lookup tables, and the row blocks built for other instruction sets.
// The translation units including this header are compiled for different instruction sets, so everything
// it defines has internal linkage (an inline function merged across them could run the wrong code).
#pragma once

#include <cstdint>

#include "packed/compute_layout.h"

namespace pbs2p::q8 {

constexpr int64_t kChunk = 256;           // columns per activation scale (at most)
constexpr int64_t kTableBytes = 64;       // per group of 8: [quad0 lo | quad0 hi | quad1 lo | quad1 hi] x 16
constexpr int64_t kPrefetchGroups = 128;  // compute groups (64 bytes each) fetched ahead

struct ChunkRange {
    int64_t begin, end;  // columns
};

static inline int64_t chunks_per_scale(int64_t scale_group) {
    return (scale_group + kChunk - 1) / kChunk;
}

// Chunk k of scale group s.
static inline ChunkRange chunk_range(int64_t scale_group, int64_t s, int64_t k) {
    const int64_t begin = s * scale_group + k * kChunk, scale_end = (s + 1) * scale_group;
    return {begin, begin + kChunk < scale_end ? begin + kChunk : scale_end};
}

// Row block of bit planes (32 rows: groups blk[0 .. cols / 8), folded scales ks / ss per scale group)
// against one token's tables and chunk scales; writes the 32 outputs to out32.
using PlanesRowBlockFn = void (*)(int64_t cols, int64_t scale_group, const ComputeGroup* blk, const float* ks,
                                  const float* ss, const uint8_t* tables, const float* chunk_scales,
                                  float* out32);

// AVX-512 F/BW/VL (packed_kernels_avx512.cpp; defined where the build has PBS2P_AVX512_KERNELS): the same
// lookups, keep and sign plane of a group in one 64-byte register.
void avx512_planes_row_block(int64_t cols, int64_t scale_group, const ComputeGroup* blk, const float* ks,
                             const float* ss, const uint8_t* tables, const float* chunk_scales, float* out32);

}  // namespace pbs2p::q8
