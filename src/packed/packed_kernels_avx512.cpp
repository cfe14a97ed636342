// AVX-512 (F/BW/VL) row blocks of the int8-activation kernel over the bit planes. This file is compiled for
// AVX-512 whatever the build's baseline; its kernel rows (registered in packed_kernels_avx2.cpp) run only
// where the CPU reports the features at run time. It instantiates no library code (no std templates), so
// nothing built for AVX-512 can be merged into code that runs without it.
//
// One ComputeGroup (32 keep bytes, 32 sign bytes) is one 64-byte register: the nibble indices of both
// planes are looked up in one vpshufb per table (the AVX2 rows need two), 128-bit lanes = keep rows 0-15,
// keep 16-31, sign 0-15, sign 16-31. The int16 sums after unpacking hold per lane rows 0-7 (a) and rows
// 8-15 (b) of that lane.
// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_* read as uninitialized, GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

#include "packed/packed_kernels_q8.h"

#if defined(PBS2P_AVX512_KERNELS) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)

namespace pbs2p::q8 {
namespace {

inline __m512i broadcast_table(const uint8_t* t) {
    return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}

// Two runs of 8 floats, p[0..7] and p[16..23], as one register (the row order of the a / b sums).
inline __m512 load_split_rows(const float* p) {
    const __m512d lo = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(p)));
    return _mm512_castpd_ps(_mm512_insertf64x4(lo, _mm256_castps_pd(_mm256_loadu_ps(p + 16)), 1));
}

inline __m512 int16_half_to_f32(__m256i v) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(v));
}

}  // namespace

void avx512_planes_row_block(int64_t cols, int64_t scale_group, const ComputeGroup* blk, const float* ks,
                             const float* ss, const uint8_t* tables, const float* chunk_scales,
                             float* out32) {
    const int64_t per_scale = chunks_per_scale(scale_group);
    const __m512i nibble = _mm512_set1_epi8(0x0f);
    __m512 ya = _mm512_setzero_ps(), yb = _mm512_setzero_ps();  // rows 0-7 + 16-23, rows 8-15 + 24-31
    for (int64_t s = 0; s < cols / scale_group; ++s) {
        // kept / signed sums of the scale group, fp32: ka, sa rows 0-7 + 16-23; kb, sb rows 8-15 + 24-31
        __m512 ka = _mm512_setzero_ps(), kb = ka, sa = ka, sb = ka;
        for (int64_t k = 0; k < per_scale; ++k) {
            const ChunkRange r = chunk_range(scale_group, s, k);
            __m512i a = _mm512_setzero_si512(), b = a;  // int16, lanes: keep lo, keep hi, sign lo, sign hi
            for (int64_t g = r.begin / kPackedGroup; g < r.end / kPackedGroup; ++g) {
                const uint8_t* t = tables + g * kTableBytes;
                _mm_prefetch(reinterpret_cast<const char*>(blk + g + kPrefetchGroups), _MM_HINT_T0);
                const __m512i v = _mm512_load_si512(blk + g);
                const __m512i i0 = _mm512_and_si512(v, nibble);
                const __m512i i1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
                const __m512i r0lo = _mm512_shuffle_epi8(broadcast_table(t), i0);
                const __m512i r0hi = _mm512_shuffle_epi8(broadcast_table(t + 16), i0);
                const __m512i r1lo = _mm512_shuffle_epi8(broadcast_table(t + 32), i1);
                const __m512i r1hi = _mm512_shuffle_epi8(broadcast_table(t + 48), i1);
                a = _mm512_add_epi16(
                    a, _mm512_add_epi16(_mm512_unpacklo_epi8(r0lo, r0hi), _mm512_unpacklo_epi8(r1lo, r1hi)));
                b = _mm512_add_epi16(
                    b, _mm512_add_epi16(_mm512_unpackhi_epi8(r0lo, r0hi), _mm512_unpackhi_epi8(r1lo, r1hi)));
            }
            const __m512 d = _mm512_set1_ps(chunk_scales[s * per_scale + k]);
            ka = _mm512_fmadd_ps(int16_half_to_f32(_mm512_castsi512_si256(a)), d, ka);
            sa = _mm512_fmadd_ps(int16_half_to_f32(_mm512_extracti64x4_epi64(a, 1)), d, sa);
            kb = _mm512_fmadd_ps(int16_half_to_f32(_mm512_castsi512_si256(b)), d, kb);
            sb = _mm512_fmadd_ps(int16_half_to_f32(_mm512_extracti64x4_epi64(b, 1)), d, sb);
        }
        const float* kss = ks + s * kRowBlock;
        const float* sss = ss + s * kRowBlock;
        ya = _mm512_fmadd_ps(load_split_rows(kss), ka, _mm512_fmadd_ps(load_split_rows(sss), sa, ya));
        yb = _mm512_fmadd_ps(load_split_rows(kss + 8), kb, _mm512_fmadd_ps(load_split_rows(sss + 8), sb, yb));
    }
    _mm256_storeu_ps(out32, _mm512_castps512_ps256(ya));
    _mm256_storeu_ps(out32 + 8, _mm512_castps512_ps256(yb));
    _mm256_storeu_ps(out32 + 16, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(ya), 1)));
    _mm256_storeu_ps(out32 + 24, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(yb), 1)));
}

}  // namespace pbs2p::q8

#endif
