#include "compress/code_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "compress/compensation.h"
#include "compress/lanes.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/half.h"

namespace pbs2p {

namespace {

constexpr int W8 = kPatternWidth;

// The codebook seen through one group's metric: v_c = c L^-1 (8 values per codeword, stored as 8 planes
// of K floats so the scoring loop runs across codewords) and ||v_c||^2.
struct GroupMetric {
    std::vector<float> plane[W8];
    std::vector<float> norm;
    float inv[W8][W8] = {};  // L^-1 (upper triangular)
};

// L^-1 of the upper triangular 8x8 block L = U[col.., col..], by back substitution (fp64).
void invert_group(const HessianFactor& f, int64_t col, double inv[W8][W8]) {
    double l[W8][W8] = {};
    for (int a = 0; a < W8; ++a)
        for (int b = 0; b < W8; ++b) inv[a][b] = 0.0;
    for (int a = 0; a < W8; ++a)
        for (int b = a; b < W8; ++b) l[a][b] = f.u(col + a, col + b);
    for (int b = 0; b < W8; ++b) {
        // Column b of L^-1: solve L x = e_b.
        for (int a = W8 - 1; a >= 0; --a) {
            double s = a == b ? 1.0 : 0.0;
            for (int k = a + 1; k < W8; ++k) s -= l[a][k] * inv[k][b];
            inv[a][b] = s / l[a][a];
        }
    }
}

// v = p L^-1 (rounded to fp32) and ||v||^2 of one pattern: the same values whichever search scores it.
float codeword_metric(const std::array<int8_t, W8>& p, const double inv[W8][W8], float v_out[W8]) {
    double nrm = 0.0;
    for (int b = 0; b < W8; ++b) {
        double v = 0.0;
        for (int a = 0; a <= b; ++a) v += p[a] * inv[a][b];
        v_out[b] = static_cast<float>(v);
        nrm += v * v;
    }
    return static_cast<float>(nrm);
}

void build_metric(const HessianFactor& f, int64_t col, const PatternCodebook& book, GroupMetric& m) {
    double inv[W8][W8];
    invert_group(f, col, inv);
    const int K = book.size();
    for (int t = 0; t < W8; ++t) m.plane[t].assign(static_cast<size_t>(K), 0.0f);
    m.norm.assign(static_cast<size_t>(K), 0.0f);
    for (int a = 0; a < W8; ++a)
        for (int b = 0; b < W8; ++b) m.inv[a][b] = static_cast<float>(inv[a][b]);
    for (int c = 0; c < K; ++c) {
        float v[W8];
        m.norm[c] = codeword_metric(book.patterns[static_cast<size_t>(c)], inv, v);
        for (int b = 0; b < W8; ++b) m.plane[b][c] = v[b];
    }
}

// Best codeword for z = w L^-1 at scale alpha: argmin_c alpha^2 |v_c|^2 - 2 alpha z.v_c.
int best_code(const GroupMetric& m, const float* z, float alpha, std::vector<float>& cost) {
    const int K = static_cast<int>(m.norm.size());
    const float a2 = alpha * alpha, two_a = 2.0f * alpha;
    float* cs = cost.data();
    const float* n = m.norm.data();
    for (int c = 0; c < K; ++c) cs[c] = a2 * n[c];
    for (int t = 0; t < W8; ++t) {
        const float zt = two_a * z[t];
        const float* p = m.plane[t].data();
        for (int c = 0; c < K; ++c) cs[c] -= zt * p[c];
    }
    float best = std::numeric_limits<float>::infinity();
    for (int c = 0; c < K; ++c) best = std::min(best, cs[c]);
    for (int c = 0; c < K; ++c)
        if (cs[c] == best) return c;
    return 0;
}

// z = w L^-1 for one group's 8 weights (L^-1 upper triangular, fp32).
void group_z(const float* w, const float inv[W8][W8], float z[W8]) {
    for (int q = 0; q < W8; ++q) {
        float s = 0.0f;
        for (int a = 0; a <= q; ++a) s += w[a] * inv[a][q];
        z[q] = s;
    }
}

// Fixes one group (block columns t..t+7, layer column start + t) to alpha * p, v = p L^-1: records the
// error e' = z - alpha v, adds to the alpha re-fit's sums and pushes e' into block columns [t + 8, comp_end).
void fix_group(const std::array<int8_t, W8>& p, const float* z, const float* v, float norm, float alpha,
               const HessianFactor& f, int64_t start, int64_t t, int64_t comp_end, float* b, float* e,
               double& num, double& den) {
    float ep[W8];
    for (int q = 0; q < W8; ++q) {
        ep[q] = z[q] - alpha * v[q];
        num += static_cast<double>(z[q]) * v[q];
    }
    den += norm;
    for (int q = 0; q < W8; ++q) {
        b[t + q] = alpha * static_cast<float>(p[q]);
        e[t + q] = ep[q];
    }
    for (int q = 0; q < W8; ++q) {
        const float eq = ep[q];
        const float* urow = f.u_f32.row(start + t + q) + start;
        for (int64_t k = t + W8; k < comp_end; ++k) b[k] -= eq * urow[k];
    }
}

// Which digit prefixes the codebook holds: reachable[k][p] = 1 when some pattern's first k digits have the
// base-3 index p (digit a weighs 3^a, as in ternary_index).
struct PrefixTable {
    std::vector<uint8_t> reachable[W8 + 1];
};

PrefixTable prefix_table(const PatternCodebook& book) {
    PrefixTable t;
    int32_t pow3 = 1;
    for (int k = 0; k <= W8; ++k, pow3 *= 3) t.reachable[k].assign(static_cast<size_t>(pow3), 0);
    for (const auto& p : book.patterns) {
        const int32_t index = ternary_index(p.data());
        pow3 = 1;
        for (int k = 0; k <= W8; ++k, pow3 *= 3) t.reachable[k][static_cast<size_t>(index % pow3)] = 1;
    }
    return t;
}

// min over the book of sum_b (z_b - alpha v_b)^2 with v = c L^-1, depth first over the digits c_0..c_7.
// L^-1 is upper triangular, so digit k completes term k: the sum over a prefix bounds every completion.
// Children are tried in the order of their own term (the first leaf is sequential rounding), and a child
// whose bound reaches the best loss so far ends the level.
struct CodeBranchAndBound {
    const double (*inv)[W8];
    double z[W8];
    double alpha;
    const PrefixTable* prefixes;
    double best = std::numeric_limits<double>::infinity();
    int32_t best_index = -1;  // ternary index of the best pattern

    void descend(int k, const double* acc, double partial, int32_t prefix, int32_t pow3) {
        double term[3];
        for (int x = 0; x < 3; ++x) {
            const double r = z[k] - alpha * (acc[k] + (x - 1) * inv[k][k]);
            term[x] = r * r;
        }
        int order[3] = {0, 1, 2};
        if (term[order[1]] < term[order[0]]) std::swap(order[0], order[1]);
        if (term[order[2]] < term[order[1]]) std::swap(order[1], order[2]);
        if (term[order[1]] < term[order[0]]) std::swap(order[0], order[1]);
        for (const int x : order) {
            const double cost = partial + term[x];
            if (cost >= best) break;
            const int32_t next = prefix + x * pow3;
            if (!prefixes->reachable[k + 1][static_cast<size_t>(next)]) continue;
            if (k == W8 - 1) {
                best = cost;
                best_index = next;
                continue;
            }
            double child[W8];
            for (int b = k + 1; b < W8; ++b) child[b] = acc[b] + (x - 1) * inv[k][b];
            descend(k + 1, child, cost, next, pow3 * 3);
        }
    }
};

int32_t search_code(const PatternCodebook& book, const PrefixTable& prefixes, const double inv[W8][W8],
                    const float* z, float alpha) {
    CodeBranchAndBound bb{inv, {}, alpha, &prefixes};
    for (int q = 0; q < W8; ++q) bb.z[q] = z[q];
    const double acc[W8] = {};
    bb.descend(0, acc, 0.0, 0, 1);
    return book.code_of[static_cast<size_t>(bb.best_index)];
}

void check_options(int64_t cols, const CodeSearchOptions& o) {
    PBS2P_CHECK(cols % W8 == 0, "code search: width {} is not a multiple of {}", cols, W8);
    PBS2P_CHECK(o.scale_group > 0 && o.scale_group % W8 == 0 && cols % o.scale_group == 0,
                "code search: scale group {} must be a multiple of {} dividing the width {}", o.scale_group,
                W8, cols);
    PBS2P_CHECK(o.alpha_passes >= 1 && o.alpha_passes <= 8,
                "code search: alpha_passes must be in 1..8, got {}", o.alpha_passes);
}

// Columns per block: at least block_size, whole scale groups.
int64_t block_width(const CodeSearchOptions& o) {
    const int64_t bw = std::max<int64_t>(o.block_size, o.scale_group);
    return (bw / o.scale_group) * o.scale_group;
}

CodedWeights empty_codes(int64_t rows, int64_t cols, int64_t scale_group) {
    CodedWeights out;
    out.rows = rows;
    out.cols = cols;
    out.scale_group = scale_group;
    out.codes.assign(static_cast<size_t>(rows * (cols / W8)), 0);
    out.alpha.assign(static_cast<size_t>(rows * (cols / scale_group)), 0.0f);
    return out;
}

int32_t zero_code_of(const PatternCodebook& book) {
    const int32_t zero_code = book.find(std::array<int8_t, W8>{}.data());
    PBS2P_CHECK(zero_code >= 0, "code search: codebook {} has no all-zero pattern", book.name);
    return zero_code;
}

std::vector<float> alpha_fit_weights(const HessianFactor& f, int64_t cols, const CodeSearchOptions& o) {
    std::vector<float> col_weight(static_cast<size_t>(cols));
    for (int64_t j = 0; j < cols; ++j)
        col_weight[j] =
            o.hessian_weighted_alpha ? static_cast<float>(1.0 / (f.u_diag[j] * f.u_diag[j])) : 1.0f;
    return col_weight;
}

}  // namespace

float fit_ternary_alpha(const float* x, const float* wt, int64_t n) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const float fa = std::fabs(x[a]), fb = std::fabs(x[b]);
        return fa != fb ? fa > fb : a < b;
    });
    // Keeping the k largest magnitudes with alpha = sum w|x| / sum w reduces the loss by (sum w|x|)^2 / sum
    // w.
    double swx = 0.0, sw = 0.0, best_gain = 0.0, best_alpha = 0.0;
    for (int64_t k = 0; k < n; ++k) {
        const int64_t j = order[static_cast<size_t>(k)];
        const double w = wt ? wt[j] : 1.0;
        swx += w * std::fabs(x[j]);
        sw += w;
        if (sw <= 0.0) continue;
        const double gain = swx * swx / sw;
        if (gain > best_gain) {
            best_gain = gain;
            best_alpha = swx / sw;
        }
    }
    return round_to_fp16(static_cast<float>(best_alpha));
}

CodedWeights code_search_loop_reference(Matrix& W, const HessianFactor& f, const PatternCodebook& book,
                                        const CodeSearchOptions& o) {
    const int64_t rows = W.rows, cols = W.cols, sg = o.scale_group;
    check_options(cols, o);
    const int64_t bw = block_width(o);
    CodedWeights out = empty_codes(rows, cols, sg);
    const int32_t zero_code = zero_code_of(book);
    const std::vector<float> col_weight = alpha_fit_weights(f, cols, o);

    std::vector<GroupMetric> metrics(static_cast<size_t>(sg / W8));
    for (int64_t start = 0; start < cols; start += bw) {
        const int64_t end = std::min(start + bw, cols), width = end - start;
        Matrix block(rows, width), err(rows, width);
        for (int64_t i = 0; i < rows; ++i) std::copy(W.row(i) + start, W.row(i) + end, block.row(i));
        for (int64_t s0 = 0; s0 < width; s0 += sg) {
            for (int64_t g = 0; g < sg / W8; ++g)
                build_metric(f, start + s0 + g * W8, book, metrics[static_cast<size_t>(g)]);
            const int64_t sgi = (start + s0) / sg;  // scale group index within the row
#pragma omp parallel
            {
                std::vector<float> cost(static_cast<size_t>(book.size()));
                std::vector<float> saved(static_cast<size_t>(width - s0));
#pragma omp for schedule(static)
                for (int64_t i = 0; i < rows; ++i) {
                    float* b = block.row(i);
                    float* e = err.row(i);
                    if (o.alpha_passes > 1) std::copy(b + s0, b + width, saved.begin());
                    float alpha = fit_ternary_alpha(b + s0, col_weight.data() + start + s0, sg);
                    for (int pass = 0; pass < o.alpha_passes; ++pass) {
                        if (pass > 0) std::copy(saved.begin(), saved.end(), b + s0);
                        double num = 0.0, den = 0.0;
                        for (int64_t g = 0; g < sg / W8; ++g) {
                            const GroupMetric& m = metrics[static_cast<size_t>(g)];
                            const int64_t t = s0 + g * W8, col = start + t;
                            float z[W8];
                            group_z(b + t, m.inv, z);
                            const int c = alpha > 0.0f ? best_code(m, z, alpha, cost) : zero_code;
                            const auto& p = book.patterns[static_cast<size_t>(c)];
                            float v[W8];
                            for (int q = 0; q < W8; ++q) v[q] = m.plane[q][c];
                            fix_group(p, z, v, m.norm[c], alpha, f, start, t, o.compensate ? width : t + W8,
                                      b, e, num, den);
                            out.codes[static_cast<size_t>(i * (cols / W8) + col / W8)] = c;
                        }
                        if (pass + 1 < o.alpha_passes) {
                            const float refit =
                                den > 0.0 && num > 0.0 ? round_to_fp16(static_cast<float>(num / den)) : alpha;
                            if (refit == alpha) break;  // the re-run would repeat this pass exactly
                            alpha = refit;
                        }
                    }
                    out.alpha[static_cast<size_t>(i * (cols / sg) + sgi)] = alpha;
                }
            }
        }
        for (int64_t i = 0; i < rows; ++i) std::copy(block.row(i), block.row(i) + width, W.row(i) + start);
        if (o.compensate) propagate_block_error(W, f, start, end, err.ptr());
    }
    return out;
}

CodedWeights code_search_loop(Matrix& W, const HessianFactor& f, const PatternCodebook& book,
                              const CodeSearchOptions& o) {
    constexpr int64_t kTileRows = 32;  // rows sharing one lazy sgemm update
    const int64_t rows = W.rows, cols = W.cols, sg = o.scale_group;
    check_options(cols, o);
    const int64_t bw = block_width(o);
    // Columns compensated exactly before the lazy update: block_size, whole groups, at most a scale group.
    const int64_t sub = std::max<int64_t>(W8, std::min<int64_t>(o.block_size, sg) / W8 * W8);
    CodedWeights out = empty_codes(rows, cols, sg);
    const int32_t zero_code = zero_code_of(book);
    const std::vector<float> col_weight = alpha_fit_weights(f, cols, o);
    const PrefixTable prefixes = prefix_table(book);

    // L^-1 of every group, fp64 for the search, fp32 for z (as the reference).
    struct GroupInverse {
        double d[W8][W8];
        float f[W8][W8];
    };
    std::vector<GroupInverse> inverses(static_cast<size_t>(cols / W8));
#pragma omp parallel for schedule(static) if (cols * W8 * W8 >= kParallelMinWork)
    for (int64_t g = 0; g < cols / W8; ++g) {
        GroupInverse& gi = inverses[static_cast<size_t>(g)];
        invert_group(f, g * W8, gi.d);
        for (int a = 0; a < W8; ++a)
            for (int b = 0; b < W8; ++b) gi.f[a][b] = static_cast<float>(gi.d[a][b]);
    }

    const int64_t tiles = (rows + kTileRows - 1) / kTileRows;
    for (int64_t start = 0; start < cols; start += bw) {
        const int64_t end = std::min(start + bw, cols), width = end - start;
        Matrix block(rows, width), err(rows, width);
        for (int64_t i = 0; i < rows; ++i) std::copy(W.row(i) + start, W.row(i) + end, block.row(i));
        for (int64_t s0 = 0; s0 < width; s0 += sg) {
            const int64_t s1 = s0 + sg, sgi = (start + s0) / sg;
#pragma omp parallel for schedule(dynamic, 1) if (rows * sg >= kParallelMinWork)
            for (int64_t tile = 0; tile < tiles; ++tile) {
                const int64_t r0 = tile * kTileRows, r1 = std::min(rows, r0 + kTileRows), nr = r1 - r0;
                float alpha[kTileRows];
                double num[kTileRows], den[kTileRows];
                bool active[kTileRows];
                Matrix saved(o.alpha_passes > 1 ? nr : 0, width - s0);
                std::vector<float> tile_err(static_cast<size_t>(nr * sub));
                for (int64_t r = 0; r < nr; ++r) {
                    const float* b = block.row(r0 + r);
                    alpha[r] = fit_ternary_alpha(b + s0, col_weight.data() + start + s0, sg);
                    active[r] = true;
                    if (saved.rows) std::copy(b + s0, b + width, saved.row(r));
                }
                for (int pass = 0; pass < o.alpha_passes; ++pass) {
                    for (int64_t r = 0; r < nr; ++r) {
                        if (!active[r]) continue;
                        if (pass > 0)
                            std::copy(saved.row(r), saved.row(r) + (width - s0), block.row(r0 + r) + s0);
                        num[r] = den[r] = 0.0;
                    }
                    for (int64_t u0 = s0; u0 < s1; u0 += sub) {
                        const int64_t u1 = std::min(u0 + sub, s1);
                        for (int64_t r = 0; r < nr; ++r) {
                            if (!active[r]) continue;
                            const int64_t i = r0 + r;
                            float* b = block.row(i);
                            float* e = err.row(i);
                            for (int64_t t = u0; t < u1; t += W8) {
                                const int64_t col = start + t;
                                const GroupInverse& gi = inverses[static_cast<size_t>(col / W8)];
                                float z[W8];
                                group_z(b + t, gi.f, z);
                                const int32_t c = alpha[r] > 0.0f
                                                      ? search_code(book, prefixes, gi.d, z, alpha[r])
                                                      : zero_code;
                                const auto& p = book.patterns[static_cast<size_t>(c)];
                                float v[W8];
                                const float norm = codeword_metric(p, gi.d, v);
                                fix_group(p, z, v, norm, alpha[r], f, start, t, o.compensate ? u1 : t + W8, b,
                                          e, num[r], den[r]);
                                out.codes[static_cast<size_t>(i * (cols / W8) + col / W8)] = c;
                            }
                        }
                        if (!o.compensate || u1 >= width) continue;
                        // The sub-block's errors of the tile's active rows into the rest of the block
                        // (rows already done contribute zeros, which leave their weights as they are).
                        const int64_t w = u1 - u0;
                        for (int64_t r = 0; r < nr; ++r) {
                            float* dst = tile_err.data() + r * w;
                            if (active[r])
                                std::copy(err.row(r0 + r) + u0, err.row(r0 + r) + u1, dst);
                            else
                                std::fill(dst, dst + w, 0.0f);
                        }
                        sgemm(false, false, nr, width - u1, w, -1.0f, tile_err.data(), w,
                              f.u_f32.row(start + u0) + start + u1, f.u_f32.cols, 1.0f, block.row(r0) + u1,
                              width);
                    }
                    if (pass + 1 < o.alpha_passes)
                        for (int64_t r = 0; r < nr; ++r) {
                            if (!active[r]) continue;
                            const float refit = den[r] > 0.0 && num[r] > 0.0
                                                    ? round_to_fp16(static_cast<float>(num[r] / den[r]))
                                                    : alpha[r];
                            if (refit == alpha[r])
                                active[r] = false;  // a re-run would repeat this pass exactly
                            else
                                alpha[r] = refit;
                        }
                }
                for (int64_t r = 0; r < nr; ++r)
                    out.alpha[static_cast<size_t>((r0 + r) * (cols / sg) + sgi)] = alpha[r];
            }
        }
        for (int64_t i = 0; i < rows; ++i) std::copy(block.row(i), block.row(i) + width, W.row(i) + start);
        if (o.compensate) propagate_block_error(W, f, start, end, err.ptr());
    }
    return out;
}

}  // namespace pbs2p
