// CFS coarse stage (the paper's §2.4, arXiv 2502.01705): per-block importance from the cosine similarity of each decoder
// block's input and output, and the per-block kept counts N_l. Pure functions; the model-level driver
// measures the cosines. (The fine stage, the N:M choice inside a block, is nm_mask's OBS score.)
#pragma once

#include <string>
#include <vector>

namespace pbs2p {

// raw_l = 1 / max(cos_l, eps) ("recip", default) or max(1 - cos_l, eps) ("one_minus"); normalised to
// mean 1. eps = 1e-3. Throws pbs2p::Error on an empty list, a non-finite cosine or an unknown variant.
std::vector<double> block_importance(const std::vector<double>& cosine, const std::string& variant = "recip");

// Kept counts N_l in [n_low, n_high] (1 <= n_low <= n_target <= n_high < m_group) whose mean is exactly
// n_target: x_l = n_target + gamma (I_l - 1) (gamma <= 0 means gamma = n_target, i.e. N_l ~ n_target I_l);
// N_l = clip(floor(x_l + c + 1/2), n_low, n_high) with the shift c found by bisection so that the sum
// does not exceed L n_target, then the remainder is given one by one to the layers closest to their next
// rounding boundary (ties: more important, then lower index).
std::vector<int> allocate_block_keep_counts(const std::vector<double>& importance, int n_target, int m_group,
                                            int n_low, int n_high, double gamma = 0.0);

}  // namespace pbs2p
