#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/progress.h"

namespace pbs2p {

const char* protocol_name(PerplexityProtocol protocol) {
    return protocol == PerplexityProtocol::gptq ? "gptq" : "llamacpp";
}

PerplexityProtocol parse_protocol(const std::string& name) {
    if (name == "gptq") return PerplexityProtocol::gptq;
    if (name == "llamacpp") return PerplexityProtocol::llamacpp;
    fail("unknown perplexity protocol '{}' (supported: gptq, llamacpp)", name);
}

int64_t default_context(PerplexityProtocol protocol, const ModelConfig& config) {
    int64_t ctx = protocol == PerplexityProtocol::gptq ? 2048 : 512;
    return std::min(ctx, config.max_position_embeddings);
}

std::vector<EvalWindow> make_eval_windows(const std::vector<int32_t>& tokens, int32_t bos_id,
                                          const EvalOptions& options) {
    const int64_t ctx = options.ctx;
    PBS2P_CHECK(ctx >= 4, "context {} is too small (at least 4 tokens)", ctx);
    const int64_t n = static_cast<int64_t>(tokens.size());
    PBS2P_CHECK(n >= ctx + 1, "text too short: {} tokens, the {} protocol with ctx {} needs at least {}", n,
                protocol_name(options.protocol), ctx, ctx + 1);
    int64_t count = n / ctx;
    if (options.max_windows > 0) count = std::min(count, options.max_windows);
    std::vector<EvalWindow> windows(static_cast<size_t>(count));
    for (int64_t w = 0; w < count; ++w) {
        EvalWindow& window = windows[static_cast<size_t>(w)];
        window.tokens.assign(tokens.begin() + w * ctx, tokens.begin() + (w + 1) * ctx);
        if (options.protocol == PerplexityProtocol::llamacpp) {
            if (bos_id >= 0) window.tokens[0] = bos_id;
            window.first_scored = ctx / 2;
        }
    }
    return windows;
}

double token_nll(const float* logits, int64_t vocab, int32_t target) {
    float mx = logits[0];
    for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, logits[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
    return std::log(sum) + mx - static_cast<double>(logits[target]);
}

void NllAccumulator::add(double nll) {
    sum += nll;
    ++count;
}

PerplexityResult NllAccumulator::result(const EvalOptions& options, int64_t windows) const {
    PerplexityResult r;
    r.protocol = protocol_name(options.protocol);
    r.ctx = options.ctx;
    r.windows = windows;
    r.tokens_scored = count;
    r.mean_nll = count > 0 ? sum / static_cast<double>(count) : 0.0;
    r.ppl = std::exp(r.mean_nll);
    PBS2P_CHECK(std::isfinite(r.mean_nll), "perplexity is not finite (mean NLL {})", r.mean_nll);
    return r;
}

void for_each_scored_chunk(const EvalWindow& window, const std::function<void(int64_t row0, int64_t rows)>& fn) {
    const int64_t last = static_cast<int64_t>(window.tokens.size()) - 1;  // rows [first_scored, last) are scored
    for (int64_t r0 = window.first_scored; r0 < last; r0 += kLogitChunkRows) fn(r0, std::min(kLogitChunkRows, last - r0));
}

PerplexityResult evaluate_perplexity(const Model& model, const std::vector<int32_t>& tokens, int32_t bos_id,
                                     const EvalOptions& options) {
    const auto windows = make_eval_windows(tokens, bos_id, options);
    const int64_t vocab = model.config().vocab_size;
    NllAccumulator acc;
    Progress progress("eval", static_cast<int64_t>(windows.size()), options.progress);
    for (size_t w = 0; w < windows.size(); ++w) {
        const EvalWindow& window = windows[w];
        Matrix hidden = model.forward_hidden(window.tokens, nullptr);
        for_each_scored_chunk(window, [&](int64_t row0, int64_t rows) {
            Matrix logits = model.final_logits(hidden, row0, rows);
            for (int64_t i = 0; i < rows; ++i) acc.add(token_nll(logits.row(i), vocab, window.tokens[row0 + i + 1]));
        });
        progress.update(static_cast<int64_t>(w) + 1, fmt::format("ppl {:.3f}", std::exp(acc.sum / acc.count)));
    }
    progress.finish();
    return acc.result(options, static_cast<int64_t>(windows.size()));
}

}  // namespace pbs2p
