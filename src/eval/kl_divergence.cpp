#include "eval/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/progress.h"

namespace pbs2p {
namespace {

// log-softmax of one row in fp64, and its argmax.
int64_t log_softmax(const float* logits, int64_t vocab, std::vector<double>& out) {
    out.resize(static_cast<size_t>(vocab));
    int64_t arg = 0;
    for (int64_t i = 1; i < vocab; ++i)
        if (logits[i] > logits[arg]) arg = i;
    const double mx = logits[arg];
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
    const double log_z = mx + std::log(sum);
    for (int64_t i = 0; i < vocab; ++i) out[static_cast<size_t>(i)] = static_cast<double>(logits[i]) - log_z;
    return arg;
}

double kl_of_log_probs(const std::vector<double>& p, const std::vector<double>& q) {
    double kl = 0.0;
    for (size_t i = 0; i < p.size(); ++i) kl += std::exp(p[i]) * (p[i] - q[i]);
    return std::max(kl, 0.0);
}

}  // namespace

double kl_from_logits(const float* reference, const float* model, int64_t vocab) {
    std::vector<double> p, q;
    log_softmax(reference, vocab, p);
    log_softmax(model, vocab, q);
    return kl_of_log_probs(p, q);
}

KlResult evaluate_kl(const Model& model, const Model& reference, const std::vector<int32_t>& tokens, int32_t bos_id,
                     const EvalOptions& options) {
    const int64_t vocab = model.config().vocab_size;
    PBS2P_CHECK(reference.config().vocab_size == vocab, "reference model vocabulary ({}) differs from the model's ({})",
                reference.config().vocab_size, vocab);
    const auto windows = make_eval_windows(tokens, bos_id, options);
    NllAccumulator model_nll, reference_nll;
    double kl_sum = 0.0, kl_max = 0.0;
    int64_t agree = 0;
    std::vector<double> p, q;
    Progress progress("eval+kl", static_cast<int64_t>(windows.size()), options.progress);
    for (size_t w = 0; w < windows.size(); ++w) {
        const EvalWindow& window = windows[w];
        Matrix hidden = model.forward_hidden(window.tokens, nullptr);
        Matrix reference_hidden = reference.forward_hidden(window.tokens, nullptr);
        for_each_scored_chunk(window, [&](int64_t row0, int64_t rows) {
            Matrix logits = model.final_logits(hidden, row0, rows);
            Matrix reference_logits = reference.final_logits(reference_hidden, row0, rows);
            for (int64_t i = 0; i < rows; ++i) {
                const int32_t target = window.tokens[row0 + i + 1];
                int64_t top_model = log_softmax(logits.row(i), vocab, q);
                int64_t top_reference = log_softmax(reference_logits.row(i), vocab, p);
                model_nll.add(-q[static_cast<size_t>(target)]);
                reference_nll.add(-p[static_cast<size_t>(target)]);
                const double kl = kl_of_log_probs(p, q);
                kl_sum += kl;
                kl_max = std::max(kl_max, kl);
                agree += top_model == top_reference;
            }
        });
        progress.update(static_cast<int64_t>(w) + 1,
                        fmt::format("ppl {:.3f} KL {:.4f}", std::exp(model_nll.sum / model_nll.count),
                                    kl_sum / model_nll.count));
    }
    progress.finish();
    KlResult r;
    const int64_t n = static_cast<int64_t>(windows.size());
    r.model = model_nll.result(options, n);
    r.reference = reference_nll.result(options, n);
    r.mean_kl = kl_sum / static_cast<double>(model_nll.count);
    r.max_kl = kl_max;
    r.top1_agreement = static_cast<double>(agree) / static_cast<double>(model_nll.count);
    return r;
}

}  // namespace pbs2p
