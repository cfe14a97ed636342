// Method table. Each method below is a configuration of the shared parts; the order of operations of
// the Hessian-based ones is fixed by compensation.h's two block loops.
#include "compress/methods.h"

#include <cmath>
#include <numeric>

#include "compress/binarizer.h"
#include "compress/code_search.h"
#include "compress/compensation.h"
#include "compress/lanes.h"
#include "compress/nm_mask.h"
#include "compress/quantizer.h"
#include "compress/salient.h"
#include "compress/spbo.h"
#include "core/error.h"
#include "core/half.h"

namespace pbs2p {

double nm_pattern_bits(int n_keep, int m_group) {
    double log2c = 0.0;  // log2 C(M, N)
    for (int k = 1; k <= n_keep; ++k) log2c += std::log2(static_cast<double>(m_group - n_keep + k) / k);
    return std::ceil(log2c - 1e-9) / m_group;
}

double nm_pattern_sign_bits(int n_keep, int m_group) {
    double log2c = 0.0;
    for (int k = 1; k <= n_keep; ++k) log2c += std::log2(static_cast<double>(m_group - n_keep + k) / k);
    return std::ceil(log2c + n_keep - 1e-9) / m_group;
}

int64_t effective_scale_group(const CompressOptions& o, int64_t cols) {
    if (o.scale_group < 0 || o.scale_group > cols) return cols;  // one per row (also when wider than a row)
    return o.scale_group > 0 ? o.scale_group : std::gcd(static_cast<int64_t>(o.block_size), cols);
}

namespace {

// -1 resolves to the default, the exact whole-block error, for every method alike (so that a comparison
// between methods is not one of compensation forms); 0 selects the released diagonal form.
bool exact_error(const CompressOptions& o) {
    PBS2P_CHECK(o.exact_block_error >= -1 && o.exact_block_error <= 1,
                "compress: exact_block_error must be -1 (default: exact), 0 or 1, got {}",
                o.exact_block_error);
    return o.exact_block_error != 0;
}

double total_weights(const MethodContext& c) {
    return static_cast<double>(c.weight.rows) * c.weight.cols;
}

std::vector<double> hessian_diag(const MatrixD& h) {
    std::vector<double> d(static_cast<size_t>(h.rows));
    for (int64_t j = 0; j < h.rows; ++j) d[j] = h(j, j);
    return d;
}

// ---- quantization (rtn, gptq) ----

void set_quant_bits(MethodContext& c) {
    const auto& o = c.options;
    const int64_t grids_per_row = o.group_size > 0 ? (c.weight.cols + o.group_size - 1) / o.group_size : 1;
    c.stats.nominal_bits = o.bits;
    // b bits per weight + (fp16 scale, fp16 zero) per grid.
    c.stats.storage_bits = o.bits + 32.0 * grids_per_row / static_cast<double>(c.weight.cols);
}

void run_rtn(MethodContext& c) {
    const auto& o = c.options;
    Matrix& w = c.weight;
    const int64_t g = o.group_size > 0 ? o.group_size : w.cols;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < w.rows; ++i)
        for (int64_t s = 0; s < w.cols; s += g) {
            const int64_t n = std::min(g, w.cols - s);
            const QuantGrid grid = fit_grid(w.row(i) + s, n, o.bits, o.symmetric);
            for (int64_t j = s; j < s + n; ++j) w(i, j) = quantize_value(w(i, j), grid);
        }
    set_quant_bits(c);
}

void run_gptq(MethodContext& c) {
    const auto& o = c.options;
    Matrix& w = c.weight;
    std::vector<QuantGrid> grid(static_cast<size_t>(w.rows));
    if (o.group_size == 0)
        for (int64_t i = 0; i < w.rows; ++i) grid[i] = fit_grid(w.row(i), w.cols, o.bits, o.symmetric);
    const int g = o.group_size;
    exact_column_loop(w, c.factor, o.block_size, o.compensation,
                      [&](int64_t i, int64_t col, int t, const float* wb, const float*) {
                          // Grouped grids come from the current, error-updated weights of the group.
                          if (g > 0 && col % g == 0) grid[i] = fit_grid(wb + t, g, o.bits, o.symmetric);
                          return quantize_value(wb[t], grid[i]);
                      });
    set_quant_bits(c);
}

// ---- N:M pruning (sparsegpt, wanda) ----

void set_sparse_bits(MethodContext& c) {
    const auto& o = c.options;
    c.stats.n_keep = o.n_keep;
    c.stats.m_group = o.m_group;
    c.stats.nominal_bits = 16.0 * o.n_keep / o.m_group;
    c.stats.storage_bits = c.stats.nominal_bits + nm_pattern_bits(o.n_keep, o.m_group);
}

void run_sparsegpt(MethodContext& c) {
    const auto& o = c.options;
    Matrix& w = c.weight;
    const int m = o.m_group;
    std::vector<uint8_t> keep(static_cast<size_t>(w.rows * m));
    exact_column_loop(w, c.factor, o.block_size, o.compensation,
                      [&](int64_t i, int64_t, int t, const float* wb, const float* d) {
                          uint8_t* k = keep.data() + i * m;
                          if (t % m == 0) {  // choose the group's mask on the updated weights: OBS score
                              float s[64];
                              for (int l = 0; l < m; ++l)
                                  s[l] = wb[t + l] * wb[t + l] / (d[t + l] * d[t + l]);
                              nm_keep_group(s, m, o.n_keep, k);
                          }
                          return k[t % m] ? wb[t] : 0.0f;
                      });
    set_sparse_bits(c);
}

void run_wanda(MethodContext& c) {
    const auto& o = c.options;
    Matrix& w = c.weight;
    const std::vector<double> hd = hessian_diag(c.hessian);
    Matrix score(w.rows, w.cols);
    block_scores(ScoreKind::wanda, w.ptr(), w.rows, w.cols, 0, w.cols, nullptr, hd.data(), score.ptr());
    Mask keep(static_cast<size_t>(w.size()));
    nm_keep_mask(score.ptr(), w.rows, w.cols, w.cols, o.n_keep, o.m_group, keep.data());
    for (int64_t k = 0; k < w.size(); ++k)
        if (!keep[k]) w.data[k] = 0.0f;
    set_sparse_bits(c);
}

// ---- BiLLM family (billm, arb-llm, stbllm) ----

// Target matrix of the structure search: W^2 / U_jj^2 (hessian) or W (magnitude), zero outside `keep`.
Matrix search_target(const Matrix& block, int64_t start, const HessianFactor& f, const std::string& metric,
                     const Mask* keep) {
    Matrix t(block.rows, block.cols);
    const bool hessian = metric == "hessian";
    PBS2P_CHECK(hessian || metric == "magnitude",
                "compress: salient_metric must be hessian | magnitude, got '{}'", metric);
#pragma omp parallel for schedule(static) if (block.size() >= kParallelMinWork)
    for (int64_t i = 0; i < block.rows; ++i)
        for (int64_t j = 0; j < block.cols; ++j) {
            const float v = block(i, j);
            const double d = f.u_diag[start + j];
            float x = hessian ? static_cast<float>(v * v / (d * d)) : v;
            if (keep && !(*keep)[i * block.cols + j]) x = 0.0f;
            t(i, j) = x;
        }
    return t;
}

// Running storage account of partition-based methods.
struct PartitionBits {
    double bits = 0.0;
    int64_t salient_weights = 0;
};

void account_partition(const Partition& part, const std::vector<ParamCount>& params, int64_t width,
                       PartitionBits& acc) {
    int64_t salient_groups = 0;
    for (size_t g = 0; g < part.masks.size(); ++g) {
        int64_t members = 0;
        for (uint8_t v : part.masks[g]) members += v;
        acc.bits += static_cast<double>(part.orders[g]) * members;  // binary planes
        if (part.is_salient[g]) {
            acc.salient_weights += members;
            ++salient_groups;
        } else {
            acc.bits +=
                members * std::ceil(std::log2(static_cast<double>(std::max(part.nonsalient_groups, 1))));
        }
        acc.bits += 16.0 * static_cast<double>(params[g].row_values + params[g].col_values);
    }
    if (salient_groups > 1)  // CGB: one bit per salient weight
        for (size_t g = 0; g < part.masks.size(); ++g)
            if (part.is_salient[g])
                for (uint8_t v : part.masks[g]) acc.bits += v;
    acc.bits += static_cast<double>(width);  // salient-column flags of the block (amortised over rows)
}

// Binarizes every group of the partition on the block's weights and accounts its storage.
void binarize_partition(BinKind kind, const Matrix& block, const Partition& part, int iters,
                        const MatrixD* gram, Matrix& q, PartitionBits& acc) {
    std::vector<ParamCount> params;
    for (size_t g = 0; g < part.masks.size(); ++g) {
        params.push_back(binarize_group(kind, block, part.masks[g], part.orders[g], iters, gram, q));
    }
    account_partition(part, params, block.cols, acc);
}

void finish_partition_stats(MethodContext& c, const PartitionBits& acc, double nm_bits) {
    c.stats.salient_fraction = acc.salient_weights / total_weights(c);
    c.stats.storage_bits = acc.bits / total_weights(c) + nm_bits;
}

void run_billm(MethodContext& c) {
    const auto& o = c.options;
    PartitionBits acc;
    whole_block_loop(c.weight, c.factor, o.block_size, o.compensation, exact_error(o),
                     [&](int64_t start, int64_t, const Matrix& block, Matrix& q) {
                         const Matrix t = search_target(block, start, c.factor, o.salient_metric, nullptr);
                         const Partition part = billm_partition(t, nullptr, o.salient_up_lim);
                         binarize_partition(BinKind::braq, block, part, o.arb_iters, nullptr, q, acc);
                     });
    finish_partition_stats(c, acc, 0.0);
    c.stats.nominal_bits = 1.0 + c.stats.salient_fraction;
}

void run_arb_llm(MethodContext& c) {
    const auto& o = c.options;
    const BinKind kind = parse_bin_kind(o.arb_variant);
    PartitionBits acc;
    whole_block_loop(c.weight, c.factor, o.block_size, o.compensation, exact_error(o),
                     [&](int64_t start, int64_t end, const Matrix& block, Matrix& q) {
                         const Matrix t = search_target(block, start, c.factor, o.salient_metric, nullptr);
                         Partition part = billm_partition(t, nullptr, o.salient_up_lim);
                         if (o.cgb) cgb_split(t, part);
                         const MatrixD gram =
                             kind == BinKind::arb_x ? gram_block(c.hessian, start, end) : MatrixD();
                         binarize_partition(kind, block, part, o.arb_iters, &gram, q, acc);
                     });
    finish_partition_stats(c, acc, 0.0);
    c.stats.nominal_bits = 1.0 + c.stats.salient_fraction;
}

void run_stbllm(MethodContext& c) {
    const auto& o = c.options;
    Matrix& w = c.weight;
    // Mask pass first (STBLLM prunes before binarizing, without reconstruction), on the input weights.
    const std::vector<double> hd = hessian_diag(c.hessian);
    Matrix score;
    if (o.stbllm_metric == "ria") {
        score = ria_scores(w, hd.data());
    } else {
        score = Matrix(w.rows, w.cols);
        block_scores(parse_score_kind(o.stbllm_metric, "stbllm_metric"), w.ptr(), w.rows, w.cols, 0, w.cols,
                     nullptr, hd.data(), score.ptr());
    }
    Mask keep(static_cast<size_t>(w.size()));
    nm_keep_mask(score.ptr(), w.rows, w.cols, w.cols, o.n_keep, o.m_group, keep.data());
    PartitionBits acc;
    whole_block_loop(w, c.factor, o.block_size, o.compensation, exact_error(o),
                     [&](int64_t start, int64_t end, const Matrix& block, Matrix& q) {
                         // Pruned entries (refilled by earlier compensation) are targets of 0: never
                         // binarized.
                         Mask k(static_cast<size_t>(block.size()));
                         for (int64_t i = 0; i < block.rows; ++i)
                             for (int64_t j = start; j < end; ++j)
                                 k[i * block.cols + (j - start)] = keep[i * w.cols + j];
                         const Matrix t = search_target(block, start, c.factor, o.salient_metric, &k);
                         const Partition part = stbllm_partition(t, &k, o.salient_up_lim);
                         binarize_partition(BinKind::braq, block, part, o.arb_iters, nullptr, q, acc);
                     });
    finish_partition_stats(c, acc, nm_pattern_bits(o.n_keep, o.m_group));
    c.stats.n_keep = o.n_keep;
    c.stats.m_group = o.m_group;
    c.stats.nominal_bits = 1.1 * o.n_keep / o.m_group;
}

// ---- pbs2p ----

// True bits per weight of a row-wise layout (one fp16 (alpha, mu) pair per row and scale group). Where the
// packed format holds the N:M (M divides 8 and 8 divides the width) this is that file's size exactly: the
// (8N/M):8 joint pattern/sign code of every 8 columns, the whole bitstream padded to 64 bits, plus the
// scales (docs/FORMAT.md; tests compare it with the bytes of the packed file). Otherwise the ideal code.
double row_layout_bits(int64_t rows, int64_t cols, int n_keep, int m_group, int64_t scale_group) {
    const double weights = static_cast<double>(rows) * static_cast<double>(cols);
    const double scale_bits = 32.0 * static_cast<double>(rows * (cols / scale_group));
    if (8 % m_group != 0 || cols % 8 != 0)
        return nm_pattern_sign_bits(n_keep, m_group) + scale_bits / weights;
    const int64_t code_bits = std::llround(8 * nm_pattern_sign_bits(8 * n_keep / m_group, 8));
    const int64_t stream_bits = (rows * (cols / 8) * code_bits + 63) / 64 * 64;
    return (static_cast<double>(stream_bits) + scale_bits) / weights;
}

// U_BB^T U_BB for the block [start, end): the block of the inverse Hessian conditioned on the earlier
// columns being fixed (OBS variant of SPBO).
MatrixD block_inverse_hessian(const HessianFactor& f, int64_t start, int64_t end) {
    const int64_t w = end - start;
    MatrixD g(w, w);
    for (int64_t a = 0; a < w; ++a)
        for (int64_t b = a; b < w; ++b) {
            double s = 0.0;
            for (int64_t k = 0; k <= a; ++k) s += f.u(start + k, start + a) * f.u(start + k, start + b);
            g(a, b) = g(b, a) = s;
        }
    return g;
}

// Variable-N ternary codes: each group of 8 columns takes the codebook pattern with the least joint OBS
// loss (compress/code_search.h); the layout records keep/sign with mu = 0.
void run_coded(MethodContext& c) {
    const auto& o = c.options;
    Matrix& w = c.weight;
    const PatternCodebook& book = pattern_codebook(o.code);
    CodeSearchOptions so;
    so.scale_group = effective_scale_group(o, w.cols);
    so.block_size = o.block_size;
    so.compensate = o.compensation;
    so.alpha_passes = o.alpha_passes;
    so.hessian_weighted_alpha = o.hessian_weighted_alpha;
    const CodedWeights coded = code_search_loop(w, c.factor, book, so);

    BinaryLayout layout;
    layout.code = book.name;
    layout.rows = w.rows;
    layout.cols = w.cols;
    layout.n_keep = 0;
    layout.m_group = kPatternWidth;
    layout.scale_group = so.scale_group;
    layout.keep.assign(static_cast<size_t>(w.size()), 0);
    layout.sign.assign(static_cast<size_t>(w.size()), 0);
    layout.alpha = coded.alpha;
    layout.mu.assign(layout.alpha.size(), 0.0f);
    int64_t kept = 0;
    for (int64_t i = 0; i < w.rows; ++i)
        for (int64_t g = 0; g < w.cols / kPatternWidth; ++g) {
            const auto& p = book.patterns[static_cast<size_t>(coded.codes[i * (w.cols / kPatternWidth) + g])];
            for (int q = 0; q < kPatternWidth; ++q) {
                const size_t idx = static_cast<size_t>(i * w.cols + g * kPatternWidth + q);
                layout.keep[idx] = p[q] != 0;
                layout.sign[idx] = p[q] > 0;
                kept += p[q] != 0;
            }
        }
    c.stats.n_keep = 0;
    c.stats.m_group = kPatternWidth;
    c.stats.storage_bits =
        static_cast<double>(book.code_bits) / kPatternWidth + 16.0 / static_cast<double>(so.scale_group);
    // Paper convention (1.1 bits per kept weight) for comparison with the N:M settings.
    c.stats.nominal_bits = 1.1 * static_cast<double>(kept) / total_weights(c);
    c.layout = std::move(layout);
}

bool is_row_backbone(const CompressOptions& o) {
    return o.backbone == "arb" || o.backbone == "arb-x";
}

void run_pbs2p(MethodContext& c) {
    const auto& o = c.options;
    if (o.code != "nm") return run_coded(c);
    Matrix& w = c.weight;
    const ScoreKind fine = parse_score_kind(o.fine_metric, "fine_metric");
    const std::vector<double> hd = hessian_diag(c.hessian);
    const int64_t sg = effective_scale_group(o, w.cols);
    const bool row_backbone = is_row_backbone(o);
    SpboOptions sp;
    sp.steps = o.spbo ? o.spbo_steps : -1;
    sp.global_schedule = o.spbo_schedule == "global";
    sp.inner_iters = o.spbo_inner_iters;
    sp.obs_update = o.spbo_obs_update;
    sp.keep_best = o.spbo_keep_best;

    BinaryLayout layout;
    if (row_backbone) {
        layout.rows = w.rows;
        layout.cols = w.cols;
        layout.n_keep = o.n_keep;
        layout.m_group = o.m_group;
        layout.scale_group = sg;
        layout.keep.assign(static_cast<size_t>(w.size()), 0);
        layout.sign.assign(static_cast<size_t>(w.size()), 0);
        layout.alpha.assign(static_cast<size_t>(w.rows * (w.cols / sg)), 0.0f);
        layout.mu.assign(layout.alpha.size(), 0.0f);
    }
    PartitionBits acc;
    int64_t zero_signs = 0;
    whole_block_loop(
        w, c.factor, o.block_size, o.compensation, exact_error(o),
        [&](int64_t start, int64_t end, const Matrix& block, Matrix& q) {
            const int64_t rows = block.rows, width = end - start;
            // Fine stage: score on the error-updated block, keep the N largest of every M.
            Matrix score(rows, width);
#pragma omp parallel for schedule(static) if (rows * width >= kParallelMinWork)
            for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < width; ++j) {
                    const float v = block(i, j);
                    const double d = c.factor.u_diag[start + j];
                    score(i, j) =
                        fine == ScoreKind::obs ? static_cast<float>(v * v / (d * d))
                        : fine == ScoreKind::wanda
                            ? static_cast<float>(std::fabs(v) * std::sqrt(std::max(0.0, hd[start + j])))
                            : std::fabs(v);
                }
            Mask keep(static_cast<size_t>(rows * width));
            nm_keep_mask(score.ptr(), rows, width, width, o.n_keep, o.m_group, keep.data());

            if (!row_backbone) {
                if (o.backbone == "arb-rc") {
                    const ParamCount pc =
                        binarize_group(BinKind::arb_rc, block, keep, 1, o.arb_iters, nullptr, q);
                    acc.bits += 16.0 * static_cast<double>(pc.row_values + pc.col_values);
                } else {  // salient: BiLLM structure restricted to the kept entries, ARB binarizers
                    const Matrix t = search_target(block, start, c.factor, o.salient_metric, &keep);
                    const Partition part = billm_partition(t, &keep, o.salient_up_lim);
                    binarize_partition(BinKind::arb, block, part, o.arb_iters, nullptr, q, acc);
                }
                return;
            }
            // Row backbone: SPBO per row and scale group, then fp16 parameters and the layout.
            const MatrixD ginv = o.spbo_obs_update ? block_inverse_hessian(c.factor, start, end) : MatrixD();
            const int64_t groups = width / sg;
            std::vector<Arb1> params(static_cast<size_t>(rows * groups));
            std::vector<int8_t> signs(static_cast<size_t>(rows * width));
            if (o.spbo_obs_update) {
#pragma omp parallel for schedule(dynamic, 16)
                for (int64_t i = 0; i < rows; ++i)
                    for (int64_t g = 0; g < groups; ++g) {
                        const int64_t off = i * width + g * sg;
                        spbo_fit_row(block.row(i) + g * sg, keep.data() + off, score.row(i) + g * sg, sg,
                                     o.m_group, o.n_keep, sp, ginv.row(g * sg) + g * sg, width,
                                     params[i * groups + g], signs.data() + off);
                    }
            } else {
                // kLanes rows at a time (SIMD across rows, bit-identical to the per-row fit); dynamic chunks
                // balance the threads on a loaded machine (each batch is independent, so results do not
                // change).
                const int64_t batches = (rows + kLanes - 1) / kLanes;
#pragma omp parallel
                {
                    std::vector<Arb1> batch_params(kLanes);
#pragma omp for schedule(dynamic, 4)
                    for (int64_t bi = 0; bi < batches; ++bi) {
                        const int64_t i0 = bi * kLanes;
                        const int count = static_cast<int>(std::min<int64_t>(kLanes, rows - i0));
                        for (int64_t g = 0; g < groups; ++g) {
                            const int64_t off = i0 * width + g * sg;
                            spbo_fit_rows(block.row(i0) + g * sg, keep.data() + off, score.row(i0) + g * sg,
                                          width, count, sg, o.m_group, o.n_keep, sp, batch_params.data(),
                                          signs.data() + off);
                            for (int r = 0; r < count; ++r) params[(i0 + r) * groups + g] = batch_params[r];
                        }
                    }
                }
            }
            if (o.backbone == "arb-x")
                for (int64_t g = 0; g < groups; ++g) {
                    Matrix sub(rows, sg);
                    Mask sub_keep(static_cast<size_t>(rows * sg));
                    std::vector<int8_t> sub_signs(static_cast<size_t>(rows * sg));
                    std::vector<Arb1> sub_params(static_cast<size_t>(rows));
                    for (int64_t i = 0; i < rows; ++i)
                        for (int64_t j = 0; j < sg; ++j) {
                            sub(i, j) = block(i, g * sg + j);
                            sub_keep[i * sg + j] = keep[i * width + g * sg + j];
                            sub_signs[i * sg + j] = signs[i * width + g * sg + j];
                        }
                    for (int64_t i = 0; i < rows; ++i) sub_params[i] = params[i * groups + g];
                    const MatrixD gram = gram_block(c.hessian, start + g * sg, start + (g + 1) * sg);
                    arb_x_refit_order1(sub, sub_keep, sub_signs.data(), gram, o.arb_iters, sub_params.data());
                    for (int64_t i = 0; i < rows; ++i) params[i * groups + g] = sub_params[i];
                }
            const int64_t layout_groups = w.cols / sg, first_group = start / sg;
            int64_t block_zero_signs = 0;
#pragma omp parallel for schedule(static) reduction(+ : block_zero_signs) if (rows * width >= kParallelMinWork)
            for (int64_t i = 0; i < rows; ++i)
                for (int64_t g = 0; g < groups; ++g) {
                    Arb1 p = params[i * groups + g];
                    float alpha = round_to_fp16(p.alpha), mu = round_to_fp16(p.mu);
                    if (!std::isfinite(alpha) || !std::isfinite(mu)) alpha = mu = 0.0f;
                    const size_t lg = static_cast<size_t>(i * layout_groups + first_group + g);
                    layout.alpha[lg] = alpha;
                    layout.mu[lg] = mu;
                    for (int64_t j = g * sg; j < (g + 1) * sg; ++j) {
                        const int64_t k = i * width + j;
                        const size_t idx = static_cast<size_t>(i * w.cols + start + j);
                        if (!keep[k]) {
                            q(i, j) = 0.0f;
                            continue;
                        }
                        if (signs[k] == 0)
                            ++block_zero_signs;  // w == mu exactly: either level is as good; store +
                        const bool positive = signs[k] >= 0;
                        layout.keep[idx] = 1;
                        layout.sign[idx] = positive ? 1 : 0;
                        q(i, j) = mu + (positive ? alpha : -alpha);
                    }
                }
            zero_signs += block_zero_signs;
        });
    c.stats.n_keep = o.n_keep;
    c.stats.m_group = o.m_group;
    c.stats.nominal_bits = 1.1 * o.n_keep / o.m_group;
    c.stats.zero_signs_fixed = zero_signs;
    if (row_backbone) {
        c.stats.storage_bits = row_layout_bits(w.rows, w.cols, o.n_keep, o.m_group, sg);
        c.layout = std::move(layout);
    } else if (o.backbone == "arb-rc") {
        c.stats.storage_bits = nm_pattern_sign_bits(o.n_keep, o.m_group) + acc.bits / total_weights(c);
    } else {
        finish_partition_stats(c, acc, nm_pattern_bits(o.n_keep, o.m_group));
    }
}

}  // namespace

const std::vector<MethodEntry>& method_table() {
    static const std::vector<MethodEntry> table = {
        {"rtn", "round-to-nearest min-max grid per row or group (no Hessian)", false, run_rtn},
        {"gptq", "GPTQ: exact column loop with OBS updates, min-max grid", true, run_gptq},
        {"sparsegpt", "SparseGPT N:M: OBS-score mask chosen inside the exact column loop", true,
         run_sparsegpt},
        {"wanda", "Wanda N:M: |W| * ||X_j|| mask, no update", true, run_wanda},
        {"billm", "BiLLM: salient columns (order 2) + bell-shaped split (order 1), whole-block compensation",
         true, run_billm},
        {"arb-llm", "ARB-LLM: BiLLM structure + CGB with ARB / ARB-X / ARB-RC binarizers", true, run_arb_llm},
        {"stbllm",
         "STBLLM (sparsity-preserving): N:M mask, then salient + trisection binarization of kept entries",
         true, run_stbllm},
        {"pbs2p", "PBS2P: per block OBS N:M mask + SPBO stepwise ARB fits + block-wise compensation", true,
         run_pbs2p},
    };
    return table;
}

const MethodEntry& find_method(const std::string& name) {
    for (const auto& m : method_table())
        if (name == m.name) return m;
    std::string all;
    for (const auto& m : method_table()) all += std::string(all.empty() ? "" : " | ") + m.name;
    fail("compress: unknown method '{}' (expected {})", name, all);
}

bool produces_layout(const CompressOptions& options) {
    return options.method == "pbs2p" && (options.code != "nm" || is_row_backbone(options));
}

}  // namespace pbs2p
