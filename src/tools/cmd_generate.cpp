// `pbs2p generate MODEL --prompt TEXT`: streams generated text to stdout, speed to stderr.
#include <fmt/format.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/generate.h"
#include "io/tokenizer.h"
#include "io/unicode.h"
#include "model/model.h"
#include "tools/command.h"
#include "tools/model_loading.h"

namespace pbs2p::tools {
namespace {

struct GenerateCliOptions {
    std::string model;
    std::string kernel;  // packed models only
    std::string prompt;
    int64_t max_tokens = 128;
    double temperature = 0.0;
    int64_t top_k = 0;
    uint64_t seed = 0;
    CommonOptions common;
};

int run(const GenerateCliOptions& o) {
    apply_common_options(o.common);
    const Model model = load_model_for_cli(o.model, o.kernel);
    const auto tokenizer = load_tokenizer(model_directory(o.model));
    require_utf8(o.prompt, "--prompt");
    const std::vector<int32_t> prompt = tokenizer->encode(o.prompt, true);
    PBS2P_CHECK(!prompt.empty(), "--prompt: empty prompt");
    GenerateOptions options;
    options.max_tokens = o.max_tokens;
    options.sampling = {o.temperature, o.top_k, o.seed, tokenizer->vocab_size()};
    const int32_t eos = tokenizer->eos_id() >= 0 ? tokenizer->eos_id() : model.config().eos_token_id;
    if (!o.common.json) {
        fmt::print("{}", o.prompt);
        std::fflush(stdout);
    }
    GenerateResult r = generate(model, prompt, eos, options, [&](int32_t id) {
        if (o.common.json) return;
        fmt::print("{}", tokenizer->piece(id));
        std::fflush(stdout);
    });
    const double prefill_tps = r.prefill_seconds > 0 ? r.prompt_tokens / r.prefill_seconds : 0.0;
    // The first generated token comes from the prefill logits; each later one costs one decode step.
    const int64_t decode_steps = std::max<int64_t>(0, static_cast<int64_t>(r.tokens.size()) - 1);
    const double decode_tps = r.decode_seconds > 0 ? decode_steps / r.decode_seconds : 0.0;
    if (o.common.json) {
        nlohmann::json j{{"prompt", o.prompt},
                         {"text", tokenizer->decode(r.tokens)},
                         {"tokens", r.tokens},
                         {"prompt_tokens", r.prompt_tokens},
                         {"stop_reason", r.stop_reason},
                         {"prefill_tokens_per_s", prefill_tps},
                         {"decode_tokens_per_s", decode_tps}};
        fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
        fmt::print("\n");
        std::fflush(stdout);
        fmt::print(stderr, "prompt {} tokens at {:.1f} tokens/s; generated {} tokens at {:.1f} tokens/s (stop: {})\n",
                   r.prompt_tokens, prefill_tps, r.tokens.size(), decode_tps, r.stop_reason);
    }
    return 0;
}

CommandRegistrar registrar{{"generate", "Generate text from a prompt, streaming tokens", [](CLI::App& app) {
                                auto o = std::make_shared<GenerateCliOptions>();
                                app.add_option("model", o->model, "Model directory (config.json, *.safetensors, tokenizer)")
                                    ->required();
         add_kernel_option(app, o->kernel);
                                app.add_option("-p,--prompt", o->prompt, "Prompt text (BOS is prepended)")->required();
                                app.add_option("-n,--max-tokens", o->max_tokens, "Maximum number of tokens to generate")
                                    ->capture_default_str()
                                    ->check(CLI::NonNegativeNumber);
                                app.add_option("--temperature", o->temperature,
                                               "Sampling temperature; 0 = greedy (always the most likely token)")
                                    ->capture_default_str()
                                    ->check(CLI::NonNegativeNumber);
                                app.add_option("--top-k", o->top_k, "Sample only among the k most likely tokens (0 = all)")
                                    ->capture_default_str()
                                    ->check(CLI::NonNegativeNumber);
                                app.add_option("--seed", o->seed, "Random seed for sampling")->capture_default_str();
                                add_common_options(app, o->common);
                                return std::function<int()>([o] { return run(*o); });
                            }}};

}  // namespace
}  // namespace pbs2p::tools
