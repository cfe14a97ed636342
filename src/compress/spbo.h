// SPBO: stepwise semi-structured pruning with binarization optimisation (the paper's §2.6, arXiv 2502.01705), for one row
// segment sharing one (alpha, mu): start from the dense ARB fit, introduce the pruned entries in tau
// steps (lowest score first), re-fitting alpha, mu and the signs on the kept entries after every step.
#pragma once

#include <cstdint>

#include "compress/binarizer.h"

namespace pbs2p {

struct SpboOptions {
    int steps = 0;                 // tau; 0 = M - N
    bool global_schedule = false;  // false: per group (k-th lowest pruned score of each M-group at step k)
    int inner_iters = 15;          // ARB iterations after every step (and for the dense start)
    bool obs_update = false;  // OBS-update the kept entries for everything pruned so far before each re-fit
    bool keep_best =
        true;  // keep the one-shot fit instead when its masked error is lower (not with obs_update)
};

struct SpboRowResult {
    bool one_shot_won = false;
};

// Step (1..tau) at which each pruned entry of the segment is introduced; 0 for kept entries.
void spbo_schedule(const uint8_t* keep, const float* score, int64_t n, int m_group, int n_keep, int tau,
                   bool global_schedule, int* step_of);

// Fits one segment w[0..n) with final keep mask `keep` and pruning score `score`. `ginv` (n x n, row
// stride ld_ginv) is the segment's inverse-Hessian block (U_BB^T U_BB) used by the OBS variant; may be
// null otherwise. Output: params, signs b (0 where pruned). Plain mode (spbo off) is the same call with
// steps = -1: one-shot ARB on the final mask.
SpboRowResult spbo_fit_row(const float* w, const uint8_t* keep, const float* score, int64_t n, int m_group,
                           int n_keep, const SpboOptions& opt, const double* ginv, int64_t ld_ginv,
                           Arb1& params, int8_t* b);

// spbo_fit_row for `count` (1..kLanes) rows of one segment at once (SIMD across rows), bit-identical to
// calling spbo_fit_row per row. Row r's data start at w + r * ld (same for keep, score, b); params[r] is
// its result. Not for the OBS variant (opt.obs_update), which rewrites the targets per row.
void spbo_fit_rows(const float* w, const uint8_t* keep, const float* score, int64_t ld, int count, int64_t n,
                   int m_group, int n_keep, const SpboOptions& opt, Arb1* params, int8_t* b);

}  // namespace pbs2p
