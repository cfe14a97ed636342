// AVX2/FMA kernels over the compute layout (row blocks of 32 rows, keep and sign bitplanes per 8 columns).
//
// avx2_f32 : fp32 activations. Few tokens: per group of 8 activations a 256-entry table of all subset sums;
//            each row needs two gathers per group (keep byte, sign byte), 8 rows per gather. Many tokens:
//            panels of rows decoded once to fp32 and multiplied with sgemm.
// avx2_q8  : int8 activations (one scale per chunk of <= 256 columns inside a scale group). T-MAC-style
//            lookup: per 4 activations a 16-entry int16 table of subset sums, split into low and high
//            bytes, looked up for 32 rows at once with pshufb; int16 accumulation per chunk (|sum| <= 32
//            groups x 2 x 4 x 127 < 2^15), then fp32.
// avx2_q8_lowbit : the same lookups over the low-bit layout (1.5 bits/weight read per token): the sign
//            indices of each group are rebuilt from the keep byte and the 4-bit sign code in registers
//            (six pshufb and ten other operations per 32 rows). Many tokens: row blocks expanded to bit
//            planes once per token tile. Layers that do not fit the layout were given bit planes and run as
//            avx2_q8.
// avx512_q8 : the drivers of avx2_q8 (tables, threading) with the AVX-512 row block of
//            packed_kernels_avx512.cpp; registered here, available where the CPU reports AVX-512 F/BW/VL.
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/stage_profile.h"
#include "core/tensor.h"
#include "packed/packed_kernels.h"
#include "packed/packed_kernels_q8.h"
#include "packed/panel_gemm.h"

namespace pbs2p {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
namespace {

constexpr int64_t kF32TableSize = 256;  // floats per group of 8 activations
using q8::chunk_range;
using q8::ChunkRange;
using q8::chunks_per_scale;
constexpr int64_t kQ8PrefetchGroups = q8::kPrefetchGroups;
constexpr int64_t kQ8TableBytes = q8::kTableBytes;

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

// Quantizes chunk `chunk` (scale group s = chunk / per_scale) of one token to int8 and writes its lookup
// tables and scale. Table entry m of a quad is sum_{bit b of m} q[b], built 16 entries at once in int16,
// then split into a low-byte and a high-byte table.
void build_q8_chunk(int64_t scale_group, const float* x, int64_t chunk, uint8_t* tables, float* scales) {
    const int64_t per_scale = chunks_per_scale(scale_group);
    const ChunkRange r = chunk_range(scale_group, chunk / per_scale, chunk % per_scale);
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

// Nibble indices of one plane (32 rows): i0 = columns 0-3, i1 = columns 4-7.
struct PlaneIndices {
    __m256i i0, i1;
};

inline PlaneIndices split_plane(__m256i v) {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    return {_mm256_and_si256(v, nibble), _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble)};
}

// Adds the table values of one plane's indices (32 rows) to the int16 accumulators a (rows 0-7, 16-23) and
// b (rows 8-15, 24-31).
inline void lookup_plane(PlaneIndices p, __m256i t0lo, __m256i t0hi, __m256i t1lo, __m256i t1hi, __m256i& a,
                         __m256i& b) {
    const __m256i i0 = p.i0, i1 = p.i1;
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

// One row block against one token's tables. planes(g, keep, sign) yields the keep and sign indices of
// group g (32 rows); scales(s, kept, sign) the fp32 folded scales of scale group s (4 x 8 rows each).
template <class Planes, class Scales>
void q8_row_block(int64_t cols, int64_t scale_group, const uint8_t* tables, const float* chunk_scales,
                  Planes&& planes, Scales&& scales, float* out32) {
    const int64_t per_scale = chunks_per_scale(scale_group);
    __m256 y[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t s = 0; s < cols / scale_group; ++s) {
        __m256 fk[4], fs[4];
        for (int q = 0; q < 4; ++q) fk[q] = fs[q] = _mm256_setzero_ps();
        for (int64_t k = 0; k < per_scale; ++k) {
            const ChunkRange r = chunk_range(scale_group, s, k);
            __m256i ka = _mm256_setzero_si256(), kb = ka, sa = ka, sb = ka;
            for (int64_t g = r.begin / kPackedGroup; g < r.end / kPackedGroup; ++g) {
                const uint8_t* t = tables + g * kQ8TableBytes;
                const __m256i t0lo = broadcast16(t), t0hi = broadcast16(t + 16);
                const __m256i t1lo = broadcast16(t + 32), t1hi = broadcast16(t + 48);
                PlaneIndices keep, sign;
                planes(g, keep, sign);
                lookup_plane(keep, t0lo, t0hi, t1lo, t1hi, ka, kb);
                lookup_plane(sign, t0lo, t0hi, t1lo, t1hi, sa, sb);
            }
            const __m256 d = _mm256_set1_ps(chunk_scales[s * per_scale + k]);
            flush_int16(ka, kb, d, fk);
            flush_int16(sa, sb, d, fs);
        }
        __m256 kept[4], sign[4];
        scales(s, kept, sign);
        for (int q = 0; q < 4; ++q) {
            y[q] = _mm256_fmadd_ps(kept[q], fk[q], y[q]);
            y[q] = _mm256_fmadd_ps(sign[q], fs[q], y[q]);
        }
    }
    for (int q = 0; q < 4; ++q) _mm256_storeu_ps(out32 + 8 * q, y[q]);
}

// Row block rb of the bit-plane layout (or of decoded planes with the same geometry).
void q8_planes_row_block(int64_t cols, int64_t scale_group, const ComputeGroup* blk, const float* ks,
                         const float* ss, const uint8_t* tables, const float* chunk_scales, float* out32) {
    q8_row_block(
        cols, scale_group, tables, chunk_scales,
        [blk](int64_t g, PlaneIndices& keep, PlaneIndices& sign) {
            // Weights stream from memory once per token: fetch 8 KB ahead (1.8x on 136 MB of layers).
            _mm_prefetch(reinterpret_cast<const char*>(blk + g + kQ8PrefetchGroups), _MM_HINT_T0);
            keep = split_plane(_mm256_load_si256(reinterpret_cast<const __m256i*>(blk[g].keep)));
            sign = split_plane(_mm256_load_si256(reinterpret_cast<const __m256i*>(blk[g].sign)));
        },
        [ks, ss](int64_t s, __m256* kept, __m256* sign) {
            for (int q = 0; q < 4; ++q) {
                kept[q] = _mm256_load_ps(ks + s * kRowBlock + 8 * q);
                sign[q] = _mm256_load_ps(ss + s * kRowBlock + 8 * q);
            }
        },
        out32);
}

constexpr int64_t kQ8TokenTile = 32;  // tokens whose tables are built together
constexpr int64_t kQ8RowTile = 4;     // row blocks sharing one pass over a token's table

// Many tokens: tables of kQ8TokenTile tokens at a time; each thread takes tiles of kQ8RowTile row blocks,
// prepare(rb, slot) readies row block rb in the thread's slot (0..kQ8RowTile-1) once per token tile, and
// run(slot, rb, tables, chunk_scales, out32) multiplies it with one token.
template <class Prepare, class Run>
void q8_gemm_tiles(int64_t rows, int64_t cols, int64_t scale_group, int64_t row_blocks, const float* x,
                   int64_t tokens, float* y, Prepare&& prepare, Run&& run) {
    const int64_t table_bytes = cols / kPackedGroup * kQ8TableBytes;
    const int64_t n_scales = cols / scale_group * chunks_per_scale(scale_group);
    const int64_t tile = std::min(tokens, kQ8TokenTile);
    AlignedVector<uint8_t> tables(static_cast<size_t>(tile * table_bytes));
    std::vector<float> scales(static_cast<size_t>(tile * n_scales));
    const int64_t row_tiles = (row_blocks + kQ8RowTile - 1) / kQ8RowTile;
#pragma omp parallel
    {
        alignas(32) float out32[kRowBlock];
        for (int64_t t0 = 0; t0 < tokens; t0 += tile) {
            const int64_t nt = std::min(tile, tokens - t0);
#pragma omp for collapse(2) schedule(static)
            for (int64_t t = 0; t < nt; ++t)
                for (int64_t chunk = 0; chunk < n_scales; ++chunk)
                    build_q8_chunk(scale_group, x + (t0 + t) * cols, chunk, tables.data() + t * table_bytes,
                                   scales.data() + t * n_scales);
#pragma omp for schedule(static)
            for (int64_t rt = 0; rt < row_tiles; ++rt) {
                const int64_t rb_end = std::min(row_blocks, (rt + 1) * kQ8RowTile);
                for (int64_t rb = rt * kQ8RowTile; rb < rb_end; ++rb) prepare(rb, rb - rt * kQ8RowTile);
                for (int64_t t = 0; t < nt; ++t)
                    for (int64_t rb = rt * kQ8RowTile; rb < rb_end; ++rb) {
                        run(rb - rt * kQ8RowTile, rb, tables.data() + t * table_bytes,
                            scales.data() + t * n_scales, out32);
                        store_rows(out32, rb, rows, y + (t0 + t) * rows);
                    }
            }
        }
    }
}

// GEMM over the bit planes with the row block of one instruction set.
template <q8::PlanesRowBlockFn row_block>
void q8_planes_gemm(const PackedMatrix& w, const float* x, int64_t tokens, float* y) {
    const ComputeLayout& c = w.compute;
    q8_gemm_tiles(
        c.rows, c.cols, c.scale_group, c.row_blocks, x, tokens, y, [](int64_t, int64_t) {},
        [&c](int64_t, int64_t rb, const uint8_t* tables, const float* chunk_scales, float* out32) {
            row_block(c.cols, c.scale_group, c.block(rb), c.kept_scales(rb), c.sign_scales(rb), tables,
                      chunk_scales, out32);
        });
}

// One token: every thread builds the whole (small) table itself, so the call has a single fork/join and
// no barrier between table build and lookups; row blocks are handed out dynamically, so a thread that the
// OS preempts on a busy machine delays the call by at most one chunk of row blocks.
template <class RowBlock>
void q8_gemv_blocks(int64_t rows, int64_t cols, int64_t scale_group, int64_t row_blocks, const float* x,
                    float* y, RowBlock&& row_block) {
    const int64_t n_scales = cols / scale_group * chunks_per_scale(scale_group);
#pragma omp parallel
    {
        thread_local AlignedVector<uint8_t> tables;
        thread_local std::vector<float> scales;
        tables.resize(static_cast<size_t>(cols / kPackedGroup * kQ8TableBytes));
        scales.resize(static_cast<size_t>(n_scales));
        {
            const StageScope stage(Stage::act_quant);  // records on the calling thread only
            for (int64_t chunk = 0; chunk < n_scales; ++chunk)
                build_q8_chunk(scale_group, x, chunk, tables.data(), scales.data());
        }
        alignas(32) float out32[kRowBlock];
#pragma omp for schedule(dynamic, 8) nowait
        for (int64_t rb = 0; rb < row_blocks; ++rb) {
            row_block(rb, tables.data(), scales.data(), out32);
            store_rows(out32, rb, rows, y);
        }
    }
}

template <q8::PlanesRowBlockFn row_block>
void q8_planes_gemv(const PackedMatrix& w, const float* x, float* y) {
    const ComputeLayout& c = w.compute;
    q8_gemv_blocks(c.rows, c.cols, c.scale_group, c.row_blocks, x, y,
                   [&c](int64_t rb, const uint8_t* tables, const float* chunk_scales, float* out32) {
                       row_block(c.cols, c.scale_group, c.block(rb), c.kept_scales(rb), c.sign_scales(rb),
                                 tables, chunk_scales, out32);
                   });
}

void avx2_q8_gemv(const PackedMatrix& w, const float* x, float* y) {
    q8_planes_gemv<q8_planes_row_block>(w, x, y);
}

void avx2_q8_gemm(const PackedMatrix& w, const float* x, int64_t tokens, float* y) {
    q8_planes_gemm<q8_planes_row_block>(w, x, tokens, y);
}

// ---- int8 activations over the low-bit layout --------------------------------------------------------

// Sign indices from the keep indices and the sign code c, 32 rows at once. Per half, sign = OR_t (mask of
// the t-th kept column) AND (bit of c it takes, repeated over 4 bits); two such terms share one byte (low
// nibble, high nibble), so each half is two pshufb, two ANDs and one OR, folded to 4 bits at the end.
struct SignCodeTables {
    alignas(16) uint8_t lo01[16], lo23[16], hi01[16], hi23[16], b01[16], b23[16];
    SignCodeTables() {
        for (int k = 0; k < 16; ++k) {
            uint8_t up[4] = {0, 0, 0, 0}, down[4] = {0, 0, 0, 0};  // t-th kept column from bit 0 / from bit 3
            int u = 0, d = 0;
            for (int j = 0; j < 4; ++j)
                if (k >> j & 1) up[u++] = static_cast<uint8_t>(1u << j);
            for (int j = 3; j >= 0; --j)
                if (k >> j & 1) down[d++] = static_cast<uint8_t>(1u << j);
            // Columns 0-3 take code bits 0, 1, 2, 3 in order; columns 4-7 take bits 3, 2, 1, 0 from the top.
            lo01[k] = static_cast<uint8_t>(up[0] | up[1] << 4);
            lo23[k] = static_cast<uint8_t>(up[2] | up[3] << 4);
            hi01[k] = static_cast<uint8_t>(down[3] | down[2] << 4);
            hi23[k] = static_cast<uint8_t>(down[1] | down[0] << 4);
            b01[k] = static_cast<uint8_t>(((k & 1) ? 0x0f : 0) | ((k & 2) ? 0xf0 : 0));
            b23[k] = static_cast<uint8_t>(((k & 4) ? 0x0f : 0) | ((k & 8) ? 0xf0 : 0));
        }
    }
};

struct SignCodeDecoder {
    __m256i lo01, lo23, hi01, hi23, b01, b23;
    SignCodeDecoder() {
        static const SignCodeTables t;
        lo01 = broadcast16(t.lo01);
        lo23 = broadcast16(t.lo23);
        hi01 = broadcast16(t.hi01);
        hi23 = broadcast16(t.hi23);
        b01 = broadcast16(t.b01);
        b23 = broadcast16(t.b23);
    }
    // Sign indices of one group: keep = its keep indices, codes = its 16 bytes of sign codes.
    PlaneIndices operator()(PlaneIndices keep, const uint8_t* codes) const {
        const __m256i nibble = _mm256_set1_epi8(0x0f);
        // Rows 0-15 from the low nibbles (lane 0), rows 16-31 from the high nibbles (lane 1).
        const __m256i c = _mm256_and_si256(
            _mm256_srlv_epi32(
                _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes))),
                _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
            nibble);
        const __m256i klo = keep.i0, khi = keep.i1;
        const __m256i c01 = _mm256_shuffle_epi8(b01, c), c23 = _mm256_shuffle_epi8(b23, c);
        const __m256i qlo = _mm256_or_si256(_mm256_and_si256(_mm256_shuffle_epi8(lo01, klo), c01),
                                            _mm256_and_si256(_mm256_shuffle_epi8(lo23, klo), c23));
        const __m256i qhi = _mm256_or_si256(_mm256_and_si256(_mm256_shuffle_epi8(hi01, khi), c01),
                                            _mm256_and_si256(_mm256_shuffle_epi8(hi23, khi), c23));
        return {_mm256_and_si256(_mm256_or_si256(qlo, _mm256_srli_epi16(qlo, 4)), nibble),
                _mm256_and_si256(_mm256_or_si256(qhi, _mm256_srli_epi16(qhi, 4)), nibble)};
    }
};

// fp32 folded scales (mu - alpha, 2 alpha) of scale group s of a low-bit row block.
inline void lowbit_scales(const uint16_t* alpha, const uint16_t* mu, int64_t s, __m256* kept, __m256* sign) {
    for (int q = 0; q < 4; ++q) {
        const auto at = static_cast<size_t>(s * kRowBlock + 8 * q);
        const __m256 a = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(alpha + at)));
        const __m256 m = mu ? _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(mu + at)))
                            : _mm256_setzero_ps();
        kept[q] = _mm256_sub_ps(m, a);
        sign[q] = _mm256_add_ps(a, a);
    }
}

constexpr int64_t kLowbitPrefetchBytes = 8192;

void q8_lowbit_row_block(const LowbitLayout& c, const SignCodeDecoder& decode, int64_t rb,
                         const uint8_t* tables, const float* chunk_scales, float* out32) {
    const LowbitGroup* blk = c.block(rb);
    const uint16_t* alpha = c.alphas(rb);
    const uint16_t* mu = c.has_mu ? c.mus(rb) : nullptr;
    q8_row_block(
        c.cols, c.scale_group, tables, chunk_scales,
        [blk, &decode](int64_t g, PlaneIndices& keep, PlaneIndices& sign) {
            _mm_prefetch(reinterpret_cast<const char*>(blk + g) + kLowbitPrefetchBytes, _MM_HINT_T0);
            keep = split_plane(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[g].keep)));
            sign = decode(keep, blk[g].sign_code);
        },
        [alpha, mu](int64_t s, __m256* kept, __m256* sign) { lowbit_scales(alpha, mu, s, kept, sign); },
        out32);
}

void avx2_q8_lowbit_gemv(const PackedMatrix& w, const float* x, float* y) {
    if (w.lowbit.empty()) return avx2_q8_gemv(w, x, y);  // the layer did not fit: bit planes
    const LowbitLayout& c = w.lowbit;
    const SignCodeDecoder decode;
    q8_gemv_blocks(c.rows, c.cols, c.scale_group, c.row_blocks, x, y,
                   [&](int64_t rb, const uint8_t* tables, const float* chunk_scales, float* out32) {
                       q8_lowbit_row_block(c, decode, rb, tables, chunk_scales, out32);
                   });
}

// Many tokens: each row block is expanded once per token tile into bit planes and fp32 scales (thread-local
// scratch), then multiplied like the bit-plane layout, so the decode is amortised over the tile.
void avx2_q8_lowbit_gemm(const PackedMatrix& w, const float* x, int64_t tokens, float* y) {
    if (w.lowbit.empty()) return avx2_q8_gemm(w, x, tokens, y);
    const LowbitLayout& c = w.lowbit;
    const SignCodeDecoder decode;
    const int64_t groups = c.groups_per_row(), scale_floats = c.scale_groups_per_row() * kRowBlock;
    thread_local AlignedVector<ComputeGroup> planes;
    thread_local AlignedVector<float> kept_scales, sign_scales;
    const auto prepare = [&](int64_t rb, int64_t slot) {
        planes.resize(static_cast<size_t>(kQ8RowTile * groups));
        kept_scales.resize(static_cast<size_t>(kQ8RowTile * scale_floats));
        sign_scales.resize(kept_scales.size());
        const LowbitGroup* blk = c.block(rb);
        ComputeGroup* out = planes.data() + slot * groups;
        for (int64_t g = 0; g < groups; ++g) {
            const __m256i keep = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[g].keep));
            _mm256_store_si256(reinterpret_cast<__m256i*>(out[g].keep), keep);
            const PlaneIndices sign = decode(split_plane(keep), blk[g].sign_code);
            _mm256_store_si256(reinterpret_cast<__m256i*>(out[g].sign),
                               _mm256_or_si256(sign.i0, _mm256_slli_epi16(sign.i1, 4)));
        }
        for (int64_t s = 0; s < c.scale_groups_per_row(); ++s) {
            __m256 kept[4], sign[4];
            lowbit_scales(c.alphas(rb), c.has_mu ? c.mus(rb) : nullptr, s, kept, sign);
            for (int q = 0; q < 4; ++q) {
                _mm256_store_ps(kept_scales.data() + slot * scale_floats + s * kRowBlock + 8 * q, kept[q]);
                _mm256_store_ps(sign_scales.data() + slot * scale_floats + s * kRowBlock + 8 * q, sign[q]);
            }
        }
    };
    const auto run = [&](int64_t slot, int64_t, const uint8_t* tables, const float* chunk_scales,
                         float* out32) {
        q8_planes_row_block(c.cols, c.scale_group, planes.data() + slot * groups,
                            kept_scales.data() + slot * scale_floats,
                            sign_scales.data() + slot * scale_floats, tables, chunk_scales, out32);
    };
    q8_gemm_tiles(c.rows, c.cols, c.scale_group, c.row_blocks, x, tokens, y, prepare, run);
}

#if defined(PBS2P_AVX512_KERNELS)
// The AVX-512 rows: the drivers above with the AVX-512 row block (packed_kernels_avx512.cpp).
bool cpu_has_avx512bw() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

void avx512_q8_gemv(const PackedMatrix& w, const float* x, float* y) {
    q8_planes_gemv<q8::avx512_planes_row_block>(w, x, y);
}

void avx512_q8_gemm(const PackedMatrix& w, const float* x, int64_t tokens, float* y) {
    q8_planes_gemm<q8::avx512_planes_row_block>(w, x, tokens, y);
}
#endif

}  // namespace

std::vector<PackedKernel> avx2_packed_kernels() {
    std::vector<PackedKernel> rows = {
        {"avx2_f32", "avx2+fma", "f32", ComputeForm::bit_planes, avx2_f32_gemv, avx2_f32_gemm},
        {"avx2_q8_lowbit", "avx2+fma+f16c", "q8", ComputeForm::lowbit, avx2_q8_lowbit_gemv,
         avx2_q8_lowbit_gemm},
        {"avx2_q8", "avx2+fma", "q8", ComputeForm::bit_planes, avx2_q8_gemv, avx2_q8_gemm}};
#if defined(PBS2P_AVX512_KERNELS)
    rows.push_back({"avx512_q8", "avx512f+bw+vl", "q8", ComputeForm::bit_planes, avx512_q8_gemv,
                    avx512_q8_gemm, cpu_has_avx512bw()});
#endif
    return rows;
}

#else

std::vector<PackedKernel> avx2_packed_kernels() {
    return {};
}

#endif

}  // namespace pbs2p
