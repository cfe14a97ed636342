// N:M keep masks (N = kept count per aligned group of M consecutive input columns) from a score, and the
// scores used to choose them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pbs2p {

using Mask = std::vector<uint8_t>;  // row-major, 1 = kept / member

// Checks 1 <= n_keep < m_group and that m_group divides cols; throws pbs2p::Error otherwise.
void check_nm(int n_keep, int m_group, int64_t cols, const char* who);

// Keeps the n_keep largest scores of every group of m_group columns in each row of a rows x cols score
// (row stride ld). Ties keep the lower column index. Writes keep[rows x cols] (row stride cols).
void nm_keep_mask(const float* score, int64_t rows, int64_t cols, int64_t ld, int n_keep, int m_group, uint8_t* keep);

// One group of m scores: keep flags of the n largest (ties: lower index).
void nm_keep_group(const float* score, int m, int n_keep, uint8_t* keep);

// Scores over a block of columns [start, start + width) of W (row stride ldw), written rows x width.
// obs: W^2 / U_jj^2 (d = U diag of the whole layer); magnitude: |W|; wanda: |W| * sqrt(H_jj).
enum class ScoreKind { obs, magnitude, wanda };
ScoreKind parse_score_kind(const std::string& name, const char* option);
void block_scores(ScoreKind kind, const float* w, int64_t rows, int64_t ldw, int64_t start, int64_t width,
                  const double* u_diag, const double* h_diag, float* out);

// STBLLM's RIA score (code 091a6b4, a = 0.5): (|W|/colsum|W| + |W|/rowsum|W|) * (H_jj / 2)^(a/2).
Matrix ria_scores(const Matrix& W, const double* h_diag);

}  // namespace pbs2p
