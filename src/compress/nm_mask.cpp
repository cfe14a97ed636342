#include "compress/nm_mask.h"

#include <cmath>

#include "core/error.h"

namespace pbs2p {

void check_nm(int n_keep, int m_group, int64_t cols, const char* who) {
    PBS2P_CHECK(m_group >= 2 && m_group <= 64, "{}: M (m_group) must be in 2..64, got {}", who, m_group);
    PBS2P_CHECK(n_keep >= 1 && n_keep < m_group, "{}: N (kept) must satisfy 1 <= N < M, got {}:{}", who, n_keep,
                m_group);
    PBS2P_CHECK(cols % m_group == 0, "{}: layer width {} is not a multiple of M = {}", who, cols, m_group);
}

void nm_keep_group(const float* score, int m, int n_keep, uint8_t* keep) {
    // Rank of each entry = number of entries that beat it (larger score, or equal with lower index).
    for (int k = 0; k < m; ++k) {
        int beaten_by = 0;
        for (int l = 0; l < m; ++l)
            beaten_by += (score[l] > score[k]) || (score[l] == score[k] && l < k);
        keep[k] = beaten_by < n_keep ? 1 : 0;
    }
}

void nm_keep_mask(const float* score, int64_t rows, int64_t cols, int64_t ld, int n_keep, int m_group, uint8_t* keep) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t g = 0; g + m_group <= cols; g += m_group)
            nm_keep_group(score + i * ld + g, m_group, n_keep, keep + i * cols + g);
}

ScoreKind parse_score_kind(const std::string& name, const char* option) {
    if (name == "obs" || name == "hessian") return ScoreKind::obs;
    if (name == "magnitude") return ScoreKind::magnitude;
    if (name == "wanda") return ScoreKind::wanda;
    fail("compress: option {} must be obs | magnitude | wanda, got '{}'", option, name);
}

void block_scores(ScoreKind kind, const float* w, int64_t rows, int64_t ldw, int64_t start, int64_t width,
                  const double* u_diag, const double* h_diag, float* out) {
    std::vector<float> col_factor(static_cast<size_t>(width), 1.0f);
    for (int64_t j = 0; j < width; ++j) {
        if (kind == ScoreKind::obs) col_factor[j] = static_cast<float>(1.0 / (u_diag[start + j] * u_diag[start + j]));
        if (kind == ScoreKind::wanda) col_factor[j] = static_cast<float>(std::sqrt(std::max(0.0, h_diag[start + j])));
    }
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
        const float* src = w + i * ldw + start;
        float* dst = out + i * width;
        if (kind == ScoreKind::obs)
            for (int64_t j = 0; j < width; ++j) dst[j] = src[j] * src[j] * col_factor[j];
        else
            for (int64_t j = 0; j < width; ++j) dst[j] = std::fabs(src[j]) * col_factor[j];
    }
}

Matrix ria_scores(const Matrix& W, const double* h_diag) {
    const int64_t r = W.rows, c = W.cols;
    std::vector<double> col_sum(static_cast<size_t>(c), 0.0), row_sum(static_cast<size_t>(r), 0.0);
    for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) {
            const double a = std::fabs(W(i, j));
            col_sum[j] += a;
            row_sum[i] += a;
        }
    std::vector<double> act(static_cast<size_t>(c));
    for (int64_t j = 0; j < c; ++j) act[j] = std::pow(std::max(0.0, 0.5 * h_diag[j]), 0.25);
    Matrix s(r, c);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) {
            const double a = std::fabs(W(i, j));
            const double rel = (col_sum[j] > 0 ? a / col_sum[j] : 0.0) + (row_sum[i] > 0 ? a / row_sum[i] : 0.0);
            s(i, j) = static_cast<float>(rel * act[j]);
        }
    return s;
}

}  // namespace pbs2p
