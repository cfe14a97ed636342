// Perplexity under two labelled protocols, and the window schedule shared with KL divergence.
//
// gptq:     the whole text tokenized once with BOS at the start, cut into non-overlapping windows of
//           ctx tokens (last partial window dropped); every predicted token is scored (ctx-1 per window).
// llamacpp: as llama.cpp's `perplexity`: chunks of ctx tokens (512 by default), the first token of each
//           chunk replaced by BOS, only the second half of each chunk scored (ctx/2 - 1 per chunk).
// ppl = exp(mean NLL), log-softmax accumulated in fp64.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"

namespace pbs2p {

enum class PerplexityProtocol { gptq, llamacpp };

const char* protocol_name(PerplexityProtocol protocol);
// "gptq" or "llamacpp"; anything else is an error listing both.
PerplexityProtocol parse_protocol(const std::string& name);
// ctx used when none is given: 2048 for gptq, 512 for llamacpp, capped by the model's position table.
int64_t default_context(PerplexityProtocol protocol, const ModelConfig& config);

struct EvalOptions {
    PerplexityProtocol protocol = PerplexityProtocol::gptq;
    int64_t ctx = 2048;
    int64_t max_windows = 0;  // 0 = all
    bool progress = true;
};

// One window: its tokens, and the logit rows scored: row r in [first_scored, tokens.size()-1) predicts
// tokens[r+1].
struct EvalWindow {
    std::vector<int32_t> tokens;
    int64_t first_scored = 0;
};

// Cuts `tokens` (already tokenized, BOS at the start when the vocabulary has one) into windows.
// Throws when there are fewer than ctx+1 tokens.
std::vector<EvalWindow> make_eval_windows(const std::vector<int32_t>& tokens, int32_t bos_id,
                                          const EvalOptions& options);

struct PerplexityResult {
    std::string protocol;
    int64_t ctx = 0;
    int64_t windows = 0;
    int64_t tokens_scored = 0;
    double mean_nll = 0.0;
    double ppl = 0.0;
};

PerplexityResult evaluate_perplexity(const Model& model, const std::vector<int32_t>& tokens, int32_t bos_id,
                                     const EvalOptions& options);

// -log softmax(logits)[target], in fp64.
double token_nll(const float* logits, int64_t vocab, int32_t target);

// ---- pieces shared with KL divergence ----

// Logit rows computed at a time (bounds memory to kLogitChunkRows x vocab floats per model).
constexpr int64_t kLogitChunkRows = 128;

struct NllAccumulator {
    double sum = 0.0;
    int64_t count = 0;
    void add(double nll);
    PerplexityResult result(const EvalOptions& options, int64_t windows) const;
};

// Calls fn(row0, rows) over the scored logit rows of `window` in chunks of kLogitChunkRows.
void for_each_scored_chunk(const EvalWindow& window, const std::function<void(int64_t row0, int64_t rows)>& fn);


}  // namespace pbs2p
