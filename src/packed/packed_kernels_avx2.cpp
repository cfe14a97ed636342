// AVX2/FMA kernels over the compute layout (row blocks of 32 rows, keep and sign bitplanes per 8 columns).
//
// avx2_f32 : fp32 activations. Few tokens: per group of 8 activations a 256-entry table of all subset sums;
//            each row needs two gathers per group (keep byte, sign byte), 8 rows per gather. Many tokens:
//            panels of rows decoded once to fp32 and multiplied with sgemm.
// avx2_q8  : int8 activations (one scale per chunk of <= 256 columns inside a scale group). T-MAC-style
//            lookup: per 4 activations a 16-entry int16 table of subset sums, split into low and high
//            bytes, looked up for 32 rows at once with pshufb; int16 accumulation per chunk (|sum| <= 32
//            groups x 2 x 4 x 127 < 2^15), then fp32.
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/stage_profile.h"
#include "core/tensor.h"
#include "packed/packed_kernels.h"
#include "packed/panel_gemm.h"

namespace pbs2p {

#if defined(__AVX2__) && defined(__FMA__)
namespace {

constexpr int64_t kF32TableSize = 256;      // floats per group of 8 activations
constexpr int64_t kQ8Chunk = 256;           // columns per activation scale (at most)
constexpr int64_t kQ8PrefetchGroups = 128;  // compute groups (64 bytes each) fetched ahead
constexpr int64_t kQ8TableBytes = 64;  // per group of 8: [quad0 lo | quad0 hi | quad1 lo | quad1 hi] x 16

void store_rows(const float* out32, int64_t rb, int64_t rows, float* y) {
    const int64_t n = std::min<int64_t>(kRowBlock, rows - rb * kRowBlock);
    std::memcpy(y + rb * kRowBlock, out32, static_cast<size_t>(n) * sizeof(float));
}

// ---- fp32 activations ------------------------------------------------------------------------------

void build_f32_tables(const float* x, int64_t g_begin, int64_t g_end, float* tables) {
    for (int64_t g = g_begin; g < g_end; ++g) {
        const float* xg = x + g * kPackedGroup;
        alignas(32) float lo[16], hi[16];
        lo[0] = hi[0] = 0.0f;
        for (int m = 1; m < 16; ++m) {
            lo[m] = lo[m & (m - 1)] + xg[std::countr_zero(static_cast<unsigned>(m))];
            hi[m] = hi[m & (m - 1)] + xg[4 + std::countr_zero(static_cast<unsigned>(m))];
        }
        const __m256 lo0 = _mm256_load_ps(lo), lo1 = _mm256_load_ps(lo + 8);
        float* t = tables + g * kF32TableSize;
        for (int h = 0; h < 16; ++h) {
            const __m256 b = _mm256_set1_ps(hi[h]);
            _mm256_store_ps(t + 16 * h, _mm256_add_ps(lo0, b));
            _mm256_store_ps(t + 16 * h + 8, _mm256_add_ps(lo1, b));
        }
    }
}

void f32_row_block(const ComputeLayout& c, const float* tables, int64_t rb, float* out32) {
    const ComputeGroup* blk = c.block(rb);
    const float* ks = c.kept_scales(rb);
    const float* ss = c.sign_scales(rb);
    const int64_t per_scale = c.scale_group / kPackedGroup;
    __m256 y[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t s = 0; s < c.scale_groups_per_row(); ++s) {
        __m256 ak[4], as[4];
        for (int q = 0; q < 4; ++q) ak[q] = as[q] = _mm256_setzero_ps();
        for (int64_t g = s * per_scale; g < (s + 1) * per_scale; ++g) {
            const float* t = tables + g * kF32TableSize;
            const ComputeGroup& cg = blk[g];
            for (int q = 0; q < 4; ++q) {
                const __m256i ik =
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(cg.keep + 8 * q)));
                const __m256i is =
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(cg.sign + 8 * q)));
                ak[q] = _mm256_add_ps(ak[q], _mm256_i32gather_ps(t, ik, 4));
                as[q] = _mm256_add_ps(as[q], _mm256_i32gather_ps(t, is, 4));
            }
        }
        for (int q = 0; q < 4; ++q) {
            y[q] = _mm256_fmadd_ps(_mm256_load_ps(ks + s * kRowBlock + 8 * q), ak[q], y[q]);
            y[q] = _mm256_fmadd_ps(_mm256_load_ps(ss + s * kRowBlock + 8 * q), as[q], y[q]);
        }
    }
    for (int q = 0; q < 4; ++q) _mm256_storeu_ps(out32 + 8 * q, y[q]);
}

// Rows [r0, r1) of W_hat (r0 a multiple of 32) expanded to fp32 (mu +- alpha or 0), row-major with leading
// dimension cols. One keep/sign byte pair -> 8 floats via per-lane bit tests.
void decode_f32_rows(const ComputeLayout& c, int64_t r0, int64_t r1, float* panel) {
    const int64_t cols = c.cols, per_scale = c.scale_group / kPackedGroup;
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const int64_t rb0 = r0 / kRowBlock, rb_end = (r1 + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static)
    for (int64_t rb = rb0; rb < rb_end; ++rb) {
        const ComputeGroup* blk = c.block(rb);
        const float* ks = c.kept_scales(rb);
        const float* ss = c.sign_scales(rb);
        const int64_t n = std::min<int64_t>(kRowBlock, r1 - rb * kRowBlock);
        for (int64_t r = 0; r < n; ++r) {
            float* out = panel + (rb * kRowBlock + r - r0) * cols;
            for (int64_t s = 0; s < c.scale_groups_per_row(); ++s) {
                const __m256 kept = _mm256_set1_ps(ks[s * kRowBlock + r]);
                const __m256 sign = _mm256_set1_ps(ss[s * kRowBlock + r]);
                for (int64_t g = s * per_scale; g < (s + 1) * per_scale; ++g) {
                    const __m256i kb = _mm256_and_si256(_mm256_set1_epi32(blk[g].keep[r]), bits);
                    const __m256i sb = _mm256_and_si256(_mm256_set1_epi32(blk[g].sign[r]), bits);
                    const __m256 km = _mm256_castsi256_ps(_mm256_cmpeq_epi32(kb, bits));
                    const __m256 sm = _mm256_castsi256_ps(_mm256_cmpeq_epi32(sb, bits));
                    _mm256_storeu_ps(out + g * kPackedGroup,
                                     _mm256_add_ps(_mm256_and_ps(km, kept), _mm256_and_ps(sm, sign)));
                }
            }
        }
    }
}

constexpr int64_t kDecodeMinTokens = 8;  // from this many tokens on, decode panels and use sgemm

void avx2_f32_gemm(const PackedMatrix& w, const float* x, int64_t tokens, float* y) {
    const ComputeLayout& c = w.compute;
    if (tokens >= kDecodeMinTokens) {
        panel_gemm(c.rows, c.cols, kRowBlock, x, tokens, y,
                   [&](int64_t r0, int64_t r1, float* panel) { decode_f32_rows(c, r0, r1, panel); });
        return;
    }
    const int64_t groups = c.groups_per_row();
    AlignedVector<float> tables(static_cast<size_t>(groups * kF32TableSize));
#pragma omp parallel
    {
        alignas(32) float out32[kRowBlock];
        for (int64_t t = 0; t < tokens; ++t) {
#pragma omp for schedule(static)
            for (int64_t g0 = 0; g0 < groups; g0 += 16)
                build_f32_tables(x + t * c.cols, g0, std::min(groups, g0 + 16), tables.data());
#pragma omp for schedule(static)
            for (int64_t rb = 0; rb < c.row_blocks; ++rb) {
                f32_row_block(c, tables.data(), rb, out32);
                store_rows(out32, rb, c.rows, y + t * c.rows);
            }
        }
    }
}

void avx2_f32_gemv(const PackedMatrix& w, const float* x, float* y) {
    avx2_f32_gemm(w, x, 1, y);
}

// ---- int8 activations, pshufb lookup ----------------------------------------------------------------

struct ChunkRange {
    int64_t begin, end;  // columns
};

int64_t chunks_per_scale(const ComputeLayout& c) {
    return (c.scale_group + kQ8Chunk - 1) / kQ8Chunk;
}

ChunkRange chunk_range(const ComputeLayout& c, int64_t s, int64_t k) {
    const int64_t begin = s * c.scale_group + k * kQ8Chunk;
    return {begin, std::min(begin + kQ8Chunk, (s + 1) * c.scale_group)};
}

// Quantizes chunk `chunk` (scale group s = chunk / per_scale) of one token to int8 and writes its lookup
// tables and scale. Table entry m of a quad is sum_{bit b of m} q[b], built 16 entries at once in int16,
// then split into a low-byte and a high-byte table.
void build_q8_chunk(const ComputeLayout& c, const float* x, int64_t chunk, uint8_t* tables, float* scales) {
    const int64_t per_scale = chunks_per_scale(c);
    const ChunkRange r = chunk_range(c, chunk / per_scale, chunk % per_scale);
    float amax = 0.0f;
    for (int64_t j = r.begin; j < r.end; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float inv = d > 0.0f ? 1.0f / d : 0.0f;
    scales[chunk] = d;
    const __m256i bit_masks[4] = {_mm256_setr_epi16(0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1),
                                  _mm256_setr_epi16(0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1),
                                  _mm256_setr_epi16(0, 0, 0, 0, -1, -1, -1, -1, 0, 0, 0, 0, -1, -1, -1, -1),
                                  _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1)};
    // Gathers the low bytes of the 16 int16 entries into bytes 0..7 of each lane, high bytes into 8..15.
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6,
                                           8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    for (int64_t j0 = r.begin; j0 < r.end; j0 += 4) {
        __m256i e = _mm256_setzero_si256();
        for (int b = 0; b < 4; ++b) {
            const auto q = static_cast<int16_t>(std::lrintf(x[j0 + b] * inv));
            e = _mm256_add_epi16(e, _mm256_and_si256(_mm256_set1_epi16(q), bit_masks[b]));
        }
        // bytes: [lo 0-7 | hi 0-7 | lo 8-15 | hi 8-15] -> table [lo 0-15 | hi 0-15]
        const __m256i s = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(e, split), 0xd8);
        _mm256_store_si256(reinterpret_cast<__m256i*>(tables + j0 / 4 * 32), s);
    }
}

inline __m256i broadcast16(const uint8_t* p) {
    return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}

// Adds the table values of one bitplane (32 rows) to the int16 accumulators a (rows 0-7, 16-23) and
// b (rows 8-15, 24-31).
inline void lookup_plane(const uint8_t* plane, __m256i t0lo, __m256i t0hi, __m256i t1lo, __m256i t1hi,
                         __m256i& a, __m256i& b) {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(plane));
    const __m256i i0 = _mm256_and_si256(v, nibble);
    const __m256i i1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
    const __m256i r0lo = _mm256_shuffle_epi8(t0lo, i0), r0hi = _mm256_shuffle_epi8(t0hi, i0);
    const __m256i r1lo = _mm256_shuffle_epi8(t1lo, i1), r1hi = _mm256_shuffle_epi8(t1hi, i1);
    a = _mm256_add_epi16(
        a, _mm256_add_epi16(_mm256_unpacklo_epi8(r0lo, r0hi), _mm256_unpacklo_epi8(r1lo, r1hi)));
    b = _mm256_add_epi16(
        b, _mm256_add_epi16(_mm256_unpackhi_epi8(r0lo, r0hi), _mm256_unpackhi_epi8(r1lo, r1hi)));
}

// acc[0..3] (rows 0-7, 8-15, 16-23, 24-31) += d * float(a, b).
inline void flush_int16(__m256i a, __m256i b, __m256 d, __m256* acc) {
    const __m256i rows[4] = {_mm256_cvtepi16_epi32(_mm256_castsi256_si128(a)),
                             _mm256_cvtepi16_epi32(_mm256_castsi256_si128(b)),
                             _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1)),
                             _mm256_cvtepi16_epi32(_mm256_extracti128_si256(b, 1))};
    for (int q = 0; q < 4; ++q) acc[q] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(rows[q]), d, acc[q]);
}

void q8_row_block(const ComputeLayout& c, const uint8_t* tables, const float* chunk_scales, int64_t rb,
                  float* out32) {
    const ComputeGroup* blk = c.block(rb);
    const float* ks = c.kept_scales(rb);
    const float* ss = c.sign_scales(rb);
    const int64_t per_scale = chunks_per_scale(c);
    __m256 y[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t s = 0; s < c.scale_groups_per_row(); ++s) {
        __m256 fk[4], fs[4];
        for (int q = 0; q < 4; ++q) fk[q] = fs[q] = _mm256_setzero_ps();
        for (int64_t k = 0; k < per_scale; ++k) {
            const ChunkRange r = chunk_range(c, s, k);
            __m256i ka = _mm256_setzero_si256(), kb = ka, sa = ka, sb = ka;
            for (int64_t g = r.begin / kPackedGroup; g < r.end / kPackedGroup; ++g) {
                // Weights stream from memory once per token: fetch 8 KB ahead (1.8x on 136 MB of layers).
                _mm_prefetch(reinterpret_cast<const char*>(blk + g + kQ8PrefetchGroups), _MM_HINT_T0);
                const uint8_t* t = tables + g * kQ8TableBytes;
                const __m256i t0lo = broadcast16(t), t0hi = broadcast16(t + 16);
                const __m256i t1lo = broadcast16(t + 32), t1hi = broadcast16(t + 48);
                lookup_plane(blk[g].keep, t0lo, t0hi, t1lo, t1hi, ka, kb);
                lookup_plane(blk[g].sign, t0lo, t0hi, t1lo, t1hi, sa, sb);
            }
            const __m256 d = _mm256_set1_ps(chunk_scales[s * per_scale + k]);
            flush_int16(ka, kb, d, fk);
            flush_int16(sa, sb, d, fs);
        }
        for (int q = 0; q < 4; ++q) {
            y[q] = _mm256_fmadd_ps(_mm256_load_ps(ks + s * kRowBlock + 8 * q), fk[q], y[q]);
            y[q] = _mm256_fmadd_ps(_mm256_load_ps(ss + s * kRowBlock + 8 * q), fs[q], y[q]);
        }
    }
    for (int q = 0; q < 4; ++q) _mm256_storeu_ps(out32 + 8 * q, y[q]);
}

constexpr int64_t kQ8TokenTile = 32;  // tokens whose tables are built together
constexpr int64_t kQ8RowTile = 4;     // row blocks sharing one pass over a token's table

void avx2_q8_gemm(const PackedMatrix& w, const float* x, int64_t tokens, float* y) {
    const ComputeLayout& c = w.compute;
    const int64_t table_bytes = c.groups_per_row() * kQ8TableBytes;
    const int64_t n_scales = c.scale_groups_per_row() * chunks_per_scale(c);
    const int64_t tile = std::min(tokens, kQ8TokenTile);
    AlignedVector<uint8_t> tables(static_cast<size_t>(tile * table_bytes));
    std::vector<float> scales(static_cast<size_t>(tile * n_scales));
    const int64_t row_tiles = (c.row_blocks + kQ8RowTile - 1) / kQ8RowTile;
#pragma omp parallel
    {
        alignas(32) float out32[kRowBlock];
        for (int64_t t0 = 0; t0 < tokens; t0 += tile) {
            const int64_t nt = std::min(tile, tokens - t0);
#pragma omp for collapse(2) schedule(static)
            for (int64_t t = 0; t < nt; ++t)
                for (int64_t chunk = 0; chunk < n_scales; ++chunk)
                    build_q8_chunk(c, x + (t0 + t) * c.cols, chunk, tables.data() + t * table_bytes,
                                   scales.data() + t * n_scales);
#pragma omp for schedule(static)
            for (int64_t rt = 0; rt < row_tiles; ++rt)
                for (int64_t t = 0; t < nt; ++t)
                    for (int64_t rb = rt * kQ8RowTile; rb < std::min(c.row_blocks, (rt + 1) * kQ8RowTile);
                         ++rb) {
                        q8_row_block(c, tables.data() + t * table_bytes, scales.data() + t * n_scales, rb,
                                     out32);
                        store_rows(out32, rb, c.rows, y + (t0 + t) * c.rows);
                    }
        }
    }
}

// One token: every thread builds the whole (small) table itself, so the call has a single fork/join and
// no barrier between table build and lookups; row blocks are handed out dynamically, so a thread that the
// OS preempts on a busy machine delays the call by at most one chunk of row blocks.
void avx2_q8_gemv(const PackedMatrix& w, const float* x, float* y) {
    const ComputeLayout& c = w.compute;
    const int64_t n_scales = c.scale_groups_per_row() * chunks_per_scale(c);
#pragma omp parallel
    {
        thread_local AlignedVector<uint8_t> tables;
        thread_local std::vector<float> scales;
        tables.resize(static_cast<size_t>(c.groups_per_row() * kQ8TableBytes));
        scales.resize(static_cast<size_t>(n_scales));
        {
            const StageScope stage(Stage::act_quant);  // records on the calling thread only
            for (int64_t chunk = 0; chunk < n_scales; ++chunk)
                build_q8_chunk(c, x, chunk, tables.data(), scales.data());
        }
        alignas(32) float out32[kRowBlock];
#pragma omp for schedule(dynamic, 8) nowait
        for (int64_t rb = 0; rb < c.row_blocks; ++rb) {
            q8_row_block(c, tables.data(), scales.data(), rb, out32);
            store_rows(out32, rb, c.rows, y);
        }
    }
}

}  // namespace

std::vector<PackedKernel> avx2_packed_kernels() {
    return {{"avx2_f32", "avx2+fma", "f32", true, avx2_f32_gemv, avx2_f32_gemm},
            {"avx2_q8", "avx2+fma", "q8", true, avx2_q8_gemv, avx2_q8_gemm}};
}

#else

std::vector<PackedKernel> avx2_packed_kernels() {
    return {};
}

#endif

}  // namespace pbs2p
