#include "compress/code_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "compress/compensation.h"
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

void build_metric(const HessianFactor& f, int64_t col, const PatternCodebook& book, GroupMetric& m) {
    // Invert the upper triangular 8x8 block L = U[col.., col..] by back substitution (fp64).
    double l[W8][W8] = {}, inv[W8][W8] = {};
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
    const int K = book.size();
    for (int t = 0; t < W8; ++t) m.plane[t].assign(static_cast<size_t>(K), 0.0f);
    m.norm.assign(static_cast<size_t>(K), 0.0f);
    for (int a = 0; a < W8; ++a)
        for (int b = 0; b < W8; ++b) m.inv[a][b] = static_cast<float>(inv[a][b]);
    for (int c = 0; c < K; ++c) {
        const auto& p = book.patterns[static_cast<size_t>(c)];
        double nrm = 0.0;
        for (int b = 0; b < W8; ++b) {
            double v = 0.0;
            for (int a = 0; a <= b; ++a) v += p[a] * inv[a][b];
            m.plane[b][c] = static_cast<float>(v);
            nrm += v * v;
        }
        m.norm[c] = static_cast<float>(nrm);
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

CodedWeights code_search_loop(Matrix& W, const HessianFactor& f, const PatternCodebook& book,
                              const CodeSearchOptions& o) {
    const int64_t rows = W.rows, cols = W.cols, sg = o.scale_group;
    PBS2P_CHECK(cols % W8 == 0, "code search: width {} is not a multiple of {}", cols, W8);
    PBS2P_CHECK(sg > 0 && sg % W8 == 0 && cols % sg == 0,
                "code search: scale group {} must be a multiple of {} dividing the width {}", sg, W8, cols);
    PBS2P_CHECK(o.alpha_passes >= 1 && o.alpha_passes <= 8,
                "code search: alpha_passes must be in 1..8, got {}", o.alpha_passes);
    int64_t bw = std::max<int64_t>(o.block_size, sg);
    bw = (bw / sg) * sg;  // whole scale groups per block

    CodedWeights out;
    out.rows = rows;
    out.cols = cols;
    out.scale_group = sg;
    out.codes.assign(static_cast<size_t>(rows * (cols / W8)), 0);
    out.alpha.assign(static_cast<size_t>(rows * (cols / sg)), 0.0f);
    const int32_t zero_code = book.find(std::array<int8_t, W8>{}.data());
    PBS2P_CHECK(zero_code >= 0, "code search: codebook {} has no all-zero pattern", book.name);

    std::vector<float> col_weight(static_cast<size_t>(cols));
    for (int64_t j = 0; j < cols; ++j)
        col_weight[j] =
            o.hessian_weighted_alpha ? static_cast<float>(1.0 / (f.u_diag[j] * f.u_diag[j])) : 1.0f;

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
                            for (int q = 0; q < W8; ++q) {
                                float s = 0.0f;
                                for (int a = 0; a <= q; ++a) s += b[t + a] * m.inv[a][q];
                                z[q] = s;
                            }
                            const int c = alpha > 0.0f ? best_code(m, z, alpha, cost) : zero_code;
                            const auto& p = book.patterns[static_cast<size_t>(c)];
                            float ep[W8];
                            for (int q = 0; q < W8; ++q) {
                                ep[q] = z[q] - alpha * m.plane[q][c];
                                num += static_cast<double>(z[q]) * m.plane[q][c];
                            }
                            den += m.norm[c];
                            for (int q = 0; q < W8; ++q) {
                                b[t + q] = alpha * static_cast<float>(p[q]);
                                e[t + q] = ep[q];
                            }
                            out.codes[static_cast<size_t>(i * (cols / W8) + col / W8)] = c;
                            if (o.compensate)
                                for (int q = 0; q < W8; ++q) {
                                    const float eq = ep[q];
                                    const float* urow = f.u_f32.row(col + q) + start;
                                    for (int64_t k = t + W8; k < width; ++k) b[k] -= eq * urow[k];
                                }
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

}  // namespace pbs2p
