// Text generation with a KV cache: greedy, or temperature sampling restricted to the top-k tokens,
// seeded for reproducibility.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "model/model.h"

namespace pbs2p {

struct SamplingOptions {
    double temperature = 0.0;  // 0 = greedy (argmax)
    int64_t top_k = 0;         // 0 = whole vocabulary
    uint64_t seed = 0;
    int64_t vocab_limit = 0;   // sample among the first ids only (a tokenizer smaller than a padded vocabulary); 0 = all
};

struct GenerateOptions {
    int64_t max_tokens = 128;
    SamplingOptions sampling;
};

struct GenerateResult {
    std::vector<int32_t> tokens;  // generated tokens (EOS not included)
    int64_t prompt_tokens = 0;
    double prefill_seconds = 0.0;
    double decode_seconds = 0.0;
    std::string stop_reason;  // "eos", "max_tokens" or "context"
};

// Next token from one row of logits.
int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, Rng& rng);

// Generates after `prompt`; `on_token` is called for every generated token as soon as it is chosen.
GenerateResult generate(const Model& model, const std::vector<int32_t>& prompt, int32_t eos_id,
                        const GenerateOptions& options, const std::function<void(int32_t)>& on_token = {});

}  // namespace pbs2p
