// KL divergence and top-1 agreement of a model against a reference model's logits over the same
// windows and scored positions as the perplexity protocol; computed streaming, window by window.
#pragma once

#include "eval/perplexity.h"

namespace pbs2p {

struct KlResult {
    PerplexityResult model;      // perplexity of the evaluated model
    PerplexityResult reference;  // perplexity of the reference model
    double mean_kl = 0.0;        // mean over scored tokens of KL(reference || model), nats
    double max_kl = 0.0;
    double top1_agreement = 0.0;  // fraction of scored tokens where both argmaxes agree, in [0, 1]
};

KlResult evaluate_kl(const Model& model, const Model& reference, const std::vector<int32_t>& tokens, int32_t bos_id,
                     const EvalOptions& options);

// KL(p || q) for one row of logits each (p = softmax(reference), q = softmax(model)), fp64.
double kl_from_logits(const float* reference, const float* model, int64_t vocab);

}  // namespace pbs2p
