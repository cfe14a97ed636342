#include "compress/binarizer.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "compress/lanes.h"
#include "core/blas.h"
#include "core/error.h"

namespace pbs2p {

namespace {

inline bool present(const uint8_t* m, int64_t j) {
    return m == nullptr || m[j] != 0;
}

int64_t count_present(const uint8_t* m, int64_t n) {
    if (m == nullptr) return n;
    int64_t c = 0;
    for (int64_t j = 0; j < n; ++j) c += m[j] != 0;
    return c;
}

}  // namespace

double braq_row(const float* w, const uint8_t* m, int64_t n, int order, float* out) {
    for (int64_t j = 0; j < n; ++j) out[j] = 0.0f;
    const int64_t cnt = count_present(m, n);
    if (cnt == 0) return 0.0;
    for (int pass = 0; pass < order; ++pass) {
        double sum = 0.0;
        for (int64_t j = 0; j < n; ++j)
            if (present(m, j)) sum += w[j] - out[j];
        const float mu = static_cast<float>(sum / cnt);
        double abs_sum = 0.0;
        for (int64_t j = 0; j < n; ++j)
            if (present(m, j)) abs_sum += std::fabs(w[j] - out[j] - mu);
        const float alpha = static_cast<float>(abs_sum / cnt);
        for (int64_t j = 0; j < n; ++j)
            if (present(m, j)) out[j] += alpha * sgnf(w[j] - out[j] - mu) + mu;
    }
    double err = 0.0;
    for (int64_t j = 0; j < n; ++j)
        if (present(m, j)) {
            const double r = w[j] - out[j];
            err += r * r;
        }
    return err;
}

void arb1_init(const float* w, const uint8_t* m, int64_t n, Arb1& p, int8_t* b) {
    const int64_t cnt = count_present(m, n);
    p = Arb1{};
    for (int64_t j = 0; j < n; ++j) b[j] = 0;
    if (cnt == 0) return;
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j)
        if (present(m, j)) sum += w[j];
    p.mu = static_cast<float>(sum / cnt);
    double abs_sum = 0.0;
    for (int64_t j = 0; j < n; ++j)
        if (present(m, j)) {
            abs_sum += std::fabs(w[j] - p.mu);
            b[j] = static_cast<int8_t>(sgnf(w[j] - p.mu));
        }
    p.alpha = static_cast<float>(abs_sum / cnt);
}

void arb1_refine(const float* w, const uint8_t* m, int64_t n, int iters, Arb1& p, int8_t* b) {
    const int64_t cnt = count_present(m, n);
    if (cnt == 0) {
        p = Arb1{};
        for (int64_t j = 0; j < n; ++j) b[j] = 0;
        return;
    }
    for (int64_t j = 0; j < n; ++j)
        if (!present(m, j)) b[j] = 0;
    for (int it = 0; it < iters; ++it) {
        double s = 0.0;
        for (int64_t j = 0; j < n; ++j)
            if (present(m, j)) s += w[j] - p.alpha * b[j];
        p.mu = static_cast<float>(s / cnt);
        double num = 0.0, den = 0.0;
        for (int64_t j = 0; j < n; ++j)
            if (present(m, j)) {
                num += b[j] * (w[j] - p.mu);
                den += b[j] * b[j];
            }
        p.alpha = static_cast<float>(num / (den + 1e-8));
        for (int64_t j = 0; j < n; ++j)
            if (present(m, j)) b[j] = static_cast<int8_t>(sgnf(w[j] - p.mu));
    }
}

double arb1_error(const float* w, const uint8_t* m, int64_t n, const Arb1& p, const int8_t* b) {
    double err = 0.0;
    for (int64_t j = 0; j < n; ++j)
        if (present(m, j)) {
            const double r = static_cast<double>(w[j]) - (p.alpha * b[j] + p.mu);
            err += r * r;
        }
    return err;
}

namespace {

using namespace lanes;

void count_lanes(const float* m, int64_t n, double* cnt) {
    LaneSum c;
    for (int64_t j = 0; j < n; ++j)
        for (int v = 0; v < kVecs; ++v) c.add(v, load8(m + j * kLanes + 8 * v));
    for (int l = 0; l < kLanes; ++l) cnt[l] = c[l];
}

}  // namespace

using namespace lanes;

void arb1_init_lanes(const float* w, const float* m, int64_t n, Arb1Lanes& p, float* b) {
    double cnt[kLanes];
    count_lanes(m, n, cnt);
    LaneSum sum, abs_sum;
    for (int64_t j = 0; j < n; ++j)
        for (int v = 0; v < kVecs; ++v) {
            const int64_t k = j * kLanes + 8 * v;
            sum.add(v, load8(m + k) * load8(w + k));
        }
    for (int l = 0; l < kLanes; ++l) p.mu[l] = cnt[l] > 0.0 ? static_cast<float>(sum[l] / cnt[l]) : 0.0f;
    for (int64_t j = 0; j < n; ++j)
        for (int v = 0; v < kVecs; ++v) {
            const int64_t k = j * kLanes + 8 * v;
            const f8 mk = load8(m + k), d = load8(w + k) - load8(p.mu + 8 * v);
            const f8 ad = (f8)((i8v)d & 0x7fffffff);  // |d|
            abs_sum.add(v, mk * ad);
            store8(b + k, mk * sgn8(d));
        }
    for (int l = 0; l < kLanes; ++l)
        p.alpha[l] = cnt[l] > 0.0 ? static_cast<float>(abs_sum[l] / cnt[l]) : 0.0f;
}

void arb1_refine_lanes(const float* w, const float* m, int64_t n, int iters, Arb1Lanes& p, float* b) {
    double cnt[kLanes];
    count_lanes(m, n, cnt);
    for (int64_t k = 0; k < n * kLanes; k += 8) store8(b + k, load8(m + k) * load8(b + k));
    // One iteration: mu from the old (alpha, b); alpha from the new mu and the old b; b from the new mu.
    // The b update of one iteration and the mu sum of the next are fused into one pass (same terms).
    LaneSum s;
    for (int64_t j = 0; j < n; ++j)
        for (int v = 0; v < kVecs; ++v) {
            const int64_t k = j * kLanes + 8 * v;
            s.add(v, load8(m + k) * (load8(w + k) - load8(p.alpha + 8 * v) * load8(b + k)));
        }
    // The iteration is a deterministic map of (alpha, b); once it leaves both unchanged (bitwise) in every
    // lane, all later iterations repeat it exactly, so stopping there gives the same result.
    for (int it = 0; it < iters; ++it) {
        for (int l = 0; l < kLanes; ++l) p.mu[l] = static_cast<float>(s[l] / cnt[l]);
        LaneSum num;
        f8 den[kVecs] = {};  // sum of b^2: small integers, exact in float
        for (int64_t j = 0; j < n; ++j)
            for (int v = 0; v < kVecs; ++v) {
                const int64_t k = j * kLanes + 8 * v;
                const f8 bk = load8(b + k);
                num.add(v, bk * (load8(w + k) - load8(p.mu + 8 * v)));
                den[v] += bk * bk;
            }
        float old_alpha[kLanes];
        std::memcpy(old_alpha, p.alpha, sizeof old_alpha);
        for (int l = 0; l < kLanes; ++l)
            p.alpha[l] = static_cast<float>(num[l] / (static_cast<double>(den[l / 8][l % 8]) + 1e-8));
        const bool last = it + 1 == iters;
        s = LaneSum();
        i8v sign_changed[kVecs] = {};
        for (int64_t j = 0; j < n; ++j)
            for (int v = 0; v < kVecs; ++v) {
                const int64_t k = j * kLanes + 8 * v;
                const f8 mk = load8(m + k), wk = load8(w + k);
                const f8 bk = mk * sgn8(wk - load8(p.mu + 8 * v));
                sign_changed[v] |= (i8v)bk ^ (i8v)load8(b + k);
                store8(b + k, bk);
                if (!last) s.add(v, mk * (wk - load8(p.alpha + 8 * v) * bk));
            }
        bool fixed = std::memcmp(old_alpha, p.alpha, sizeof old_alpha) == 0;
        for (int v = 0; v < kVecs && fixed; ++v)
            for (int l = 0; l < 8; ++l) fixed &= sign_changed[v][l] == 0;
        if (fixed) break;
    }
    for (int l = 0; l < kLanes; ++l)
        if (cnt[l] == 0.0) p.alpha[l] = p.mu[l] = 0.0f;
}

void braq_lanes(const float* w, const float* m, const int* cols, int64_t count, int order, float* out,
                double* err) {
    LaneSum cnt_sum;
    for (int64_t c = 0; c < count; ++c)
        for (int v = 0; v < kVecs; ++v) {
            const int64_t k = static_cast<int64_t>(cols[c]) * kLanes + 8 * v;
            cnt_sum.add(v, load8(m + k));
            store8(out + k, splat8(0.0f));
        }
    for (int pass = 0; pass < order; ++pass) {
        LaneSum sum, abs_sum;
        for (int64_t c = 0; c < count; ++c)
            for (int v = 0; v < kVecs; ++v) {
                const int64_t k = static_cast<int64_t>(cols[c]) * kLanes + 8 * v;
                sum.add(v, load8(m + k) * (load8(w + k) - load8(out + k)));
            }
        float mu[kLanes], alpha[kLanes];
        for (int l = 0; l < kLanes; ++l) mu[l] = static_cast<float>(sum[l] / cnt_sum[l]);
        for (int64_t c = 0; c < count; ++c)
            for (int v = 0; v < kVecs; ++v) {
                const int64_t k = static_cast<int64_t>(cols[c]) * kLanes + 8 * v;
                const f8 d = load8(w + k) - load8(out + k) - load8(mu + 8 * v);
                abs_sum.add(v, load8(m + k) * (f8)((i8v)d & 0x7fffffff));
            }
        for (int l = 0; l < kLanes; ++l) alpha[l] = static_cast<float>(abs_sum[l] / cnt_sum[l]);
        for (int64_t c = 0; c < count; ++c)
            for (int v = 0; v < kVecs; ++v) {
                const int64_t k = static_cast<int64_t>(cols[c]) * kLanes + 8 * v;
                const f8 o = load8(out + k), d = load8(w + k) - o - load8(mu + 8 * v);
                const f8 upd = o + (load8(alpha + 8 * v) * sgn8(d) + load8(mu + 8 * v));
                store8(out + k, load8(m + k) != 0.0f ? upd : o);
            }
    }
    d4 e[2 * kVecs] = {};
    for (int64_t c = 0; c < count; ++c)
        for (int v = 0; v < kVecs; ++v) {
            const int64_t k = static_cast<int64_t>(cols[c]) * kLanes + 8 * v;
            const f8 r = load8(m + k) * (load8(w + k) - load8(out + k));
            const d4 rl = lo4(r), rh = hi4(r);
            e[2 * v] += rl * rl;
            e[2 * v + 1] += rh * rh;
        }
    for (int l = 0; l < kLanes; ++l) err[l] = cnt_sum[l] > 0.0 ? e[l / 4][l % 4] : 0.0;
}

void arb2_fit(const float* w, const uint8_t* m, int64_t n, int iters, Arb2& p, int8_t* b1, int8_t* b2) {
    p = Arb2{};
    Arb1 first, second;
    arb1_init(w, m, n, first, b1);
    std::vector<float> resid(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) resid[j] = present(m, j) ? w[j] - (first.alpha * b1[j] + first.mu) : 0.0f;
    arb1_init(resid.data(), m, n, second, b2);
    const int64_t cnt = count_present(m, n);
    if (cnt == 0) return;
    p.alpha1 = first.alpha;
    p.alpha2 = second.alpha;
    p.mu = first.mu + second.mu;
    for (int it = 0; it < iters; ++it) {
        double s = 0.0;
        for (int64_t j = 0; j < n; ++j)
            if (present(m, j)) s += w[j] - p.alpha1 * b1[j] - p.alpha2 * b2[j];
        p.mu = static_cast<float>(s / cnt);
        double num = 0.0, den = 0.0;
        for (int64_t j = 0; j < n; ++j)
            if (present(m, j)) {
                num += b1[j] * (w[j] - p.mu - p.alpha2 * b2[j]);
                den += b1[j] * b1[j];
            }
        p.alpha1 = static_cast<float>(num / (den + 1e-8));
        num = den = 0.0;
        for (int64_t j = 0; j < n; ++j)
            if (present(m, j)) {
                num += b2[j] * (w[j] - p.mu - p.alpha1 * b1[j]);
                den += b2[j] * b2[j];
            }
        p.alpha2 = static_cast<float>(num / (den + 1e-8));
        const float cand[4] = {-p.alpha1 - p.alpha2, -p.alpha1 + p.alpha2, p.alpha1 - p.alpha2,
                               p.alpha1 + p.alpha2};
        for (int64_t j = 0; j < n; ++j) {
            if (!present(m, j)) continue;
            const float v = w[j] - p.mu;
            int best = 0;
            float best_d = std::fabs(v - cand[0]);
            for (int k = 1; k < 4; ++k) {
                const float d = std::fabs(v - cand[k]);
                if (d < best_d) best_d = d, best = k;
            }
            b1[j] = best < 2 ? -1 : 1;
            b2[j] = (best & 1) ? 1 : -1;
        }
    }
}

BinKind parse_bin_kind(const std::string& name) {
    if (name == "braq") return BinKind::braq;
    if (name == "arb") return BinKind::arb;
    if (name == "x" || name == "arb-x") return BinKind::arb_x;
    if (name == "rc" || name == "arb-rc") return BinKind::arb_rc;
    fail("compress: binarizer must be braq | arb | arb-x | arb-rc, got '{}'", name);
}

namespace {

// P = V * S for a rows x width matrix V (fp32) and the fp64 Gram S.
Matrix times_gram(const Matrix& v, const Matrix& gram_f32) {
    Matrix p(v.rows, v.cols);
    sgemm(false, false, v.rows, v.cols, v.cols, 1.0f, v.ptr(), v.cols, gram_f32.ptr(), gram_f32.cols, 0.0f,
          p.ptr(), p.cols);
    return p;
}

Matrix to_f32(const MatrixD& s) {
    Matrix f(s.rows, s.cols);
    for (int64_t k = 0; k < s.size(); ++k) f.data[k] = static_cast<float>(s.data[k]);
    return f;
}

double dot(const float* a, const float* b, int64_t n) {
    double s = 0.0;
    for (int64_t j = 0; j < n; ++j) s += static_cast<double>(a[j]) * b[j];
    return s;
}

// Quadratic forms for the ARB-X closed forms: rows of masked w (wm), mask (mf) and sign planes.
struct XForms {
    Matrix wm, mf, ms;  // w*m, m as float, m*S
};

XForms x_forms(const Matrix& block, const Mask& mask, const Matrix& gram_f32) {
    XForms x{Matrix(block.rows, block.cols), Matrix(block.rows, block.cols), Matrix()};
    for (int64_t k = 0; k < block.size(); ++k) {
        x.mf.data[k] = mask[k] ? 1.0f : 0.0f;
        x.wm.data[k] = mask[k] ? block.data[k] : 0.0f;
    }
    x.ms = times_gram(x.mf, gram_f32);
    return x;
}

Matrix signs_to_f32(const std::vector<int8_t>& b, int64_t rows, int64_t cols) {
    Matrix f(rows, cols);
    for (int64_t k = 0; k < rows * cols; ++k) f.data[k] = b[k];
    return f;
}

// ARB-RC: one refit of row scales a then column scales c for target t with fixed signs b (0 = absent).
void rc_refit(const Matrix& t, const std::vector<int8_t>& b, std::vector<float>& a, std::vector<float>& c) {
    const int64_t rows = t.rows, width = t.cols;
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
    for (int64_t i = 0; i < rows; ++i) {
        double num = 0.0, den = 0.0;
        for (int64_t j = 0; j < width; ++j) {
            const double k = static_cast<double>(c[j]) * b[i * width + j];
            num += k * t(i, j);
            den += k * k;
        }
        a[i] = static_cast<float>(num / (den + 1e-8));
    }
    // Column scales: each thread owns a range of columns and sums them over the rows in ascending order
    // (the same order as a serial pass, so the result does not depend on the thread count).
    std::vector<double> num(static_cast<size_t>(width), 0.0), den(static_cast<size_t>(width), 0.0);
    constexpr int64_t col_chunk = 16;
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
    for (int64_t j0 = 0; j0 < width; j0 += col_chunk) {
        const int64_t j1 = std::min(width, j0 + col_chunk);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = j0; j < j1; ++j) {
                const double k = static_cast<double>(a[i]) * b[i * width + j];
                num[j] += k * t(i, j);
                den[j] += k * k;
            }
    }
    for (int64_t j = 0; j < width; ++j) c[j] = static_cast<float>(num[j] / (den[j] + 1e-8));
}

// ARB-RC initialisation: a_i = mean_row |t|, c_j = mean_col |t| / a_i, b = sgn(t) on the mask.
void rc_init(const Matrix& t, const Mask& mask, std::vector<int8_t>& b, std::vector<float>& a,
             std::vector<float>& c) {
    const int64_t rows = t.rows, width = t.cols;
    a.assign(static_cast<size_t>(rows), 0.0f);
    c.assign(static_cast<size_t>(width), 0.0f);
    b.assign(static_cast<size_t>(rows * width), 0);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
    for (int64_t i = 0; i < rows; ++i) {
        double s = 0.0;
        int64_t cnt = 0;
        for (int64_t j = 0; j < width; ++j)
            if (mask[i * width + j]) {
                s += std::fabs(t(i, j));
                ++cnt;
                b[i * width + j] = static_cast<int8_t>(sgnf(t(i, j)));
            }
        a[i] = cnt ? static_cast<float>(s / cnt) : 0.0f;
    }
    std::vector<double> s(static_cast<size_t>(width), 0.0);
    std::vector<int64_t> cnt(static_cast<size_t>(width), 0);
    constexpr int64_t col_chunk = 16;  // as in rc_refit: columns per thread, rows in ascending order
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
    for (int64_t j0 = 0; j0 < width; j0 += col_chunk)
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = j0; j < std::min(width, j0 + col_chunk); ++j)
                if (mask[i * width + j] && a[i] > 0.0f) {
                    s[j] += std::fabs(t(i, j)) / a[i];
                    ++cnt[j];
                }
    for (int64_t j = 0; j < width; ++j) c[j] = cnt[j] ? static_cast<float>(s[j] / cnt[j]) : 0.0f;
}

void rc_binarize(const Matrix& block, const Mask& mask, int order, int iters, Matrix& q) {
    const int64_t rows = block.rows, width = block.cols;
    std::vector<int8_t> b1, b2;
    std::vector<float> a1, c1, a2, c2;
    rc_init(block, mask, b1, a1, c1);
    if (order == 1) {
        for (int it = 0; it < iters; ++it) rc_refit(block, b1, a1, c1);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < width; ++j)
                if (mask[i * width + j]) q(i, j) += a1[i] * c1[j] * b1[i * width + j];
        return;
    }
    Matrix resid(rows, width), target(rows, width);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < width; ++j)
            resid(i, j) = mask[i * width + j] ? block(i, j) - a1[i] * c1[j] * b1[i * width + j] : 0.0f;
    rc_init(resid, mask, b2, a2, c2);
    // target = block - (a c^T) .* b for one plane, row by row.
    auto minus_plane = [&](const std::vector<float>& a, const std::vector<float>& c,
                           const std::vector<int8_t>& b) {
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < width; ++j) {
                const int64_t k = i * width + j;
                target.data[k] = block.data[k] - a[i] * c[j] * b[k];
            }
    };
    for (int it = 0; it < iters; ++it) {
        minus_plane(a2, c2, b2);
        rc_refit(target, b1, a1, c1);
        minus_plane(a1, c1, b1);
        rc_refit(target, b2, a2, c2);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < width; ++j) {
                const int64_t k = i * width + j;
                if (!mask[k]) continue;
                const float k1 = a1[i] * c1[j], k2 = a2[i] * c2[j];
                const float cand[4] = {-k1 - k2, -k1 + k2, k1 - k2, k1 + k2};
                int best = 0;
                float best_d = std::fabs(block.data[k] - cand[0]);
                for (int s = 1; s < 4; ++s) {
                    const float d = std::fabs(block.data[k] - cand[s]);
                    if (d < best_d) best_d = d, best = s;
                }
                b1[k] = best < 2 ? -1 : 1;
                b2[k] = (best & 1) ? 1 : -1;
            }
    }
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < width; ++j) {
            const int64_t k = i * width + j;
            if (mask[k]) q(i, j) += a1[i] * c1[j] * b1[k] + a2[i] * c2[j] * b2[k];
        }
}

}  // namespace

void arb_x_refit_order1(const Matrix& block, const Mask& mask, const int8_t* signs, const MatrixD& gram,
                        int iters, Arb1* params) {
    const int64_t rows = block.rows, width = block.cols;
    const Matrix gram_f32 = to_f32(gram);
    const XForms x = x_forms(block, mask, gram_f32);
    Matrix bf(rows, width);
    for (int64_t k = 0; k < block.size(); ++k) bf.data[k] = signs[k];
    const Matrix bs = times_gram(bf, gram_f32);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
    for (int64_t i = 0; i < rows; ++i) {
        const double msm = dot(x.mf.row(i), x.ms.row(i), width), wsm = dot(x.wm.row(i), x.ms.row(i), width);
        const double bsm = dot(bf.row(i), x.ms.row(i), width), bsb = dot(bf.row(i), bs.row(i), width);
        const double bsw = dot(x.wm.row(i), bs.row(i), width);
        if (msm <= 0.0) continue;
        double alpha = params[i].alpha, mu = params[i].mu;
        for (int it = 0; it < iters; ++it) {
            mu = (wsm - alpha * bsm) / (msm + 1e-10);
            alpha = (bsw - mu * bsm) / (bsb + 1e-10);
        }
        params[i].alpha = static_cast<float>(alpha);
        params[i].mu = static_cast<float>(mu);
    }
}

ParamCount binarize_group(BinKind kind, const Matrix& block, const Mask& mask, int order, int iters,
                          const MatrixD* gram, Matrix& q) {
    PBS2P_CHECK(order == 1 || order == 2, "binarizer: order must be 1 or 2, got {}", order);
    const int64_t rows = block.rows, width = block.cols;
    ParamCount count;
    if (kind == BinKind::arb_rc) {
        rc_binarize(block, mask, order, iters, q);
        count.row_values = rows * order;
        count.col_values = width * order;
        return count;
    }
    if (kind == BinKind::braq) {
#pragma omp parallel if (rows * width >= kParallelMinWork)
        {
            std::vector<float> out(static_cast<size_t>(width));
#pragma omp for schedule(static)
            for (int64_t i = 0; i < rows; ++i) {
                braq_row(block.row(i), mask.data() + i * width, width, order, out.data());
                for (int64_t j = 0; j < width; ++j) q(i, j) += out[j];
            }
        }
        count.row_values = rows * 2 * order;
        return count;
    }
    PBS2P_CHECK(kind != BinKind::arb_x || gram != nullptr, "binarizer: arb-x needs the block Gram matrix");
    std::vector<int8_t> b1(static_cast<size_t>(rows * width)), b2(static_cast<size_t>(rows * width));
    if (order == 1) {
        std::vector<Arb1> p(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
        for (int64_t i = 0; i < rows; ++i) {
            const uint8_t* m = mask.data() + i * width;
            arb1_init(block.row(i), m, width, p[i], b1.data() + i * width);
            arb1_refine(block.row(i), m, width, iters, p[i], b1.data() + i * width);
        }
        if (kind == BinKind::arb_x) arb_x_refit_order1(block, mask, b1.data(), *gram, iters, p.data());
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < width; ++j)
                if (mask[i * width + j]) q(i, j) += p[i].alpha * b1[i * width + j] + p[i].mu;
        count.row_values = rows * 2;
        return count;
    }
    std::vector<Arb2> p(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
    for (int64_t i = 0; i < rows; ++i)
        arb2_fit(block.row(i), mask.data() + i * width, width, iters, p[i], b1.data() + i * width,
                 b2.data() + i * width);
    if (kind == BinKind::arb_x) {
        // Order-2 ARB-X: frozen signs, exact minimisers of the S-weighted error over (mu, alpha1, alpha2).
        const Matrix gram_f32 = to_f32(*gram);
        const XForms x = x_forms(block, mask, gram_f32);
        const Matrix f1 = signs_to_f32(b1, rows, width), f2 = signs_to_f32(b2, rows, width);
        const Matrix s1 = times_gram(f1, gram_f32), s2 = times_gram(f2, gram_f32);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
        for (int64_t i = 0; i < rows; ++i) {
            const double msm = dot(x.mf.row(i), x.ms.row(i), width);
            if (msm <= 0.0) continue;
            const double wsm = dot(x.wm.row(i), x.ms.row(i), width),
                         b1sm = dot(f1.row(i), x.ms.row(i), width), b2sm = dot(f2.row(i), x.ms.row(i), width),
                         b1sw = dot(x.wm.row(i), s1.row(i), width), b2sw = dot(x.wm.row(i), s2.row(i), width),
                         b1sb1 = dot(f1.row(i), s1.row(i), width), b2sb2 = dot(f2.row(i), s2.row(i), width),
                         b1sb2 = dot(f1.row(i), s2.row(i), width);
            double mu = p[i].mu, a1 = p[i].alpha1, a2 = p[i].alpha2;
            for (int it = 0; it < iters; ++it) {
                mu = (wsm - a1 * b1sm - a2 * b2sm) / (msm + 1e-10);
                a1 = (b1sw - mu * b1sm - a2 * b1sb2) / (b1sb1 + 1e-10);
                a2 = (b2sw - mu * b2sm - a1 * b1sb2) / (b2sb2 + 1e-10);
            }
            p[i] = Arb2{static_cast<float>(a1), static_cast<float>(a2), static_cast<float>(mu)};
        }
    }
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < width; ++j) {
            const int64_t k = i * width + j;
            if (mask[k]) q(i, j) += p[i].alpha1 * b1[k] + p[i].alpha2 * b2[k] + p[i].mu;
        }
    count.row_values = rows * 3;
    return count;
}

}  // namespace pbs2p
