// BiLLM-family structure search over one block's target matrix T (the metric: W^2/U_jj^2 or W):
// salient-column count, bell-shaped split of the rest (BiLLM / ARB-LLM), STBLLM trisection, and ARB-LLM's
// column-group bitmap (CGB) split of the salient columns. An optional `allowed` mask restricts every
// group to kept entries (sparsity-preserving STBLLM, pbs2p with the salient backbone).
#pragma once

#include <cstdint>
#include <vector>

#include "compress/nm_mask.h"
#include "core/tensor.h"

namespace pbs2p {

struct Partition {
    std::vector<Mask> masks;   // disjoint, each rows x width
    std::vector<int> orders;   // binarization order per mask (1 or 2)
    std::vector<uint8_t> is_salient;  // per mask
    int salient_columns = 0;
    int nonsalient_groups = 0;
};

// Column ranking by sum_i |T_ij| over allowed entries, descending (ties: lower index first).
std::vector<int> rank_columns(const Matrix& t, const Mask* allowed);

// BiLLM: number of salient columns in 1 .. up_lim-1 minimising the BRAQ_2 + BRAQ_2 error on T.
int search_salient_count(const Matrix& t, const Mask* allowed, const std::vector<int>& ranked, int up_lim);

// numpy-style ('linear') quantiles of the values.
std::vector<float> quantiles(std::vector<float> values, const std::vector<double>& levels);

// BiLLM / ARB-LLM partition: salient columns (order 2) + bell-shaped split of the rest into |T| < tau and
// |T| >= tau (order 1 each) over 81 quantile candidates 0.10 .. 0.90.
Partition billm_partition(const Matrix& t, const Mask* allowed, int up_lim);

// STBLLM partition: salient columns (order 2) + trisection of the rest at (p, 2p) over 160 quantile
// candidates (candidates with 2p above the 0.90 quantile skipped).
Partition stbllm_partition(const Matrix& t, const Mask* allowed, int up_lim);

// ARB-LLM CGB: splits the salient mask of `part` in two by |T| at the best of 81 quantiles of the
// non-zero |T| inside it (scored with BRAQ_2 on each half).
void cgb_split(const Matrix& t, Partition& part);

}  // namespace pbs2p
