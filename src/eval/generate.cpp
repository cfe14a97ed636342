#include "eval/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace pbs2p {

int32_t sample_token(const float* logits, int64_t vocab, const SamplingOptions& options, Rng& rng) {
    if (options.temperature <= 0.0 || options.top_k == 1) {
        return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
    }
    // Candidates: the top-k ids (ties broken by id), or the whole vocabulary.
    std::vector<int32_t> ids(static_cast<size_t>(vocab));
    std::iota(ids.begin(), ids.end(), 0);
    int64_t k = options.top_k > 0 ? std::min(options.top_k, vocab) : vocab;
    auto higher = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    if (k < vocab) {
        std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), higher);
        ids.resize(static_cast<size_t>(k));
    }
    const float mx = logits[*std::min_element(ids.begin(), ids.end(), higher)];
    std::vector<double> weights(ids.size());
    double total = 0.0;
    for (size_t i = 0; i < ids.size(); ++i) {
        weights[i] = std::exp((static_cast<double>(logits[ids[i]]) - mx) / options.temperature);
        total += weights[i];
    }
    double u = rng.uniform() * total;
    for (size_t i = 0; i < ids.size(); ++i) {
        u -= weights[i];
        if (u < 0.0) return ids[i];
    }
    return ids.back();
}

GenerateResult generate(const Model& model, const std::vector<int32_t>& prompt, int32_t eos_id,
                        const GenerateOptions& options, const std::function<void(int32_t)>& on_token) {
    using clock = std::chrono::steady_clock;
    PBS2P_CHECK(!prompt.empty(), "generate: empty prompt");
    PBS2P_CHECK(options.max_tokens >= 0, "generate: max tokens must not be negative");
    const ModelConfig& c = model.config();
    int64_t capacity = static_cast<int64_t>(prompt.size()) + options.max_tokens;
    if (!c.use_rope) capacity = std::min(capacity, c.max_position_embeddings);  // learned positions end there
    PBS2P_CHECK(static_cast<int64_t>(prompt.size()) <= capacity, "generate: prompt of {} tokens exceeds the context {}",
                prompt.size(), capacity);
    Rng rng(options.sampling.seed);
    DecodeSession session(model, capacity);  // decoding steps allocate nothing in the model
    GenerateResult result;
    result.prompt_tokens = static_cast<int64_t>(prompt.size());
    auto t0 = clock::now();
    const float* last = session.prefill(prompt);
    auto t1 = clock::now();
    result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
    result.stop_reason = "max_tokens";
    for (int64_t i = 0; i < options.max_tokens; ++i) {
        const int64_t vocab = options.sampling.vocab_limit > 0 ? std::min(options.sampling.vocab_limit, c.vocab_size)
                                                               : c.vocab_size;
        int32_t next = sample_token(last, vocab, options.sampling, rng);
        if (next == eos_id) {
            result.stop_reason = "eos";
            break;
        }
        result.tokens.push_back(next);
        if (on_token) on_token(next);
        if (i + 1 == options.max_tokens) break;
        if (session.length() >= session.capacity()) {
            result.stop_reason = "context";
            break;
        }
        last = session.step(next);
    }
    result.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    return result;
}

}  // namespace pbs2p
