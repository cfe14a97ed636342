// `pbs2p eval MODEL --text FILE`: perplexity under a labelled protocol, and with --reference the KL
// divergence and top-1 agreement against a reference model over the same windows.
#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/kl_divergence.h"
#include "eval/perplexity.h"
#include "eval/text.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "tools/command.h"
#include "tools/model_loading.h"

namespace pbs2p::tools {
namespace {

struct EvalCliOptions {
    std::string model;
    std::string kernel;  // packed models only
    std::string text;
    std::string protocol = "gptq";
    int64_t ctx = 0;
    int64_t max_windows = 0;
    std::string reference;
    CommonOptions common;
};

nlohmann::json to_json(const PerplexityResult& r) {
    return {{"protocol", r.protocol}, {"ctx", r.ctx},          {"windows", r.windows},
            {"tokens_scored", r.tokens_scored}, {"mean_nll", r.mean_nll}, {"ppl", r.ppl}};
}

std::string describe(const PerplexityResult& r) {
    return fmt::format("ppl {:.4f}  (protocol {}, ctx {}, {} windows, {} tokens scored, mean NLL {:.5f})", r.ppl,
                       r.protocol, r.ctx, r.windows, r.tokens_scored, r.mean_nll);
}

int run(const EvalCliOptions& o) {
    apply_common_options(o.common);
    const auto start = std::chrono::steady_clock::now();
    const PerplexityProtocol protocol = parse_protocol(o.protocol);
    const std::string text = read_text_file(o.text);
    const Model model = load_model_for_cli(o.model, o.kernel);
    const auto tokenizer = load_tokenizer(model_directory(o.model));
    PBS2P_CHECK(tokenizer->vocab_size() <= model.config().vocab_size,
                "{}: tokenizer has {} tokens but the model's vocabulary is {}", o.model, tokenizer->vocab_size(),
                model.config().vocab_size);
    const std::vector<int32_t> tokens = tokenizer->encode(text, true);
    EvalOptions options;
    options.protocol = protocol;
    options.ctx = o.ctx > 0 ? o.ctx : default_context(protocol, model.config());
    PBS2P_CHECK(static_cast<int64_t>(tokens.size()) >= options.ctx + 1,
                "{}: text too short: {} tokens, the {} protocol with ctx {} needs at least {}", o.text, tokens.size(),
                o.protocol, options.ctx, options.ctx + 1);
    options.max_windows = o.max_windows;
    options.progress = !o.common.json;
    nlohmann::json out{{"model", o.model}, {"text", o.text}, {"text_tokens", tokens.size()}};
    std::string summary;
    if (o.reference.empty()) {
        PerplexityResult r = evaluate_perplexity(model, tokens, tokenizer->bos_id(), options);
        out["perplexity"] = to_json(r);
        summary = fmt::format("{}: {}\n", o.model, describe(r));
    } else {
        const Model reference = load_model_for_cli(o.reference);
        KlResult r = evaluate_kl(model, reference, tokens, tokenizer->bos_id(), options);
        out["perplexity"] = to_json(r.model);
        out["reference"] = {{"model", o.reference}, {"perplexity", to_json(r.reference)}};
        out["kl"] = {{"mean", r.mean_kl}, {"max", r.max_kl}, {"top1_agreement", r.top1_agreement}};
        summary = fmt::format("{}: {}\n{}: {}\nKL(reference || model) mean {:.5f} nats (max {:.4f}), top-1 agreement {:.2f}%\n",
                              o.model, describe(r.model), o.reference, describe(r.reference), r.mean_kl, r.max_kl,
                              100.0 * r.top1_agreement);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out["seconds"] = seconds;
    if (o.common.json) {
        fmt::print("{}\n", out.dump(2));
    } else {
        fmt::print("{}", summary);
        fmt::print(stderr, "{:.1f} s, {} text tokens\n", seconds, tokens.size());
    }
    return 0;
}

CommandRegistrar registrar{
    {"eval", "Perplexity of a model on a text file (and KL divergence against a reference model)", [](CLI::App& app) {
         auto o = std::make_shared<EvalCliOptions>();
         app.add_option("model", o->model, "Model directory (config.json, *.safetensors, tokenizer)")->required();
         add_kernel_option(app, o->kernel);
         app.add_option("--text", o->text, "UTF-8 text file to score (tokenized whole, BOS at the start)")->required();
         app.add_option("--protocol", o->protocol,
                        "gptq: non-overlapping ctx windows, every token scored; llamacpp: ctx chunks starting with "
                        "BOS, second half of each scored")
             ->check(CLI::IsMember({"gptq", "llamacpp"}))
             ->capture_default_str();
         app.add_option("--ctx", o->ctx,
                        "Window length in tokens (default: 2048 for gptq, 512 for llamacpp, capped by the model's "
                        "max_position_embeddings)");
         app.add_option("--max-windows", o->max_windows, "Score only the first K windows (0 = all)")
             ->capture_default_str();
         app.add_option("--reference", o->reference,
                        "Reference model directory: also report KL(reference || model) and top-1 agreement");
         add_common_options(app, o->common);
         return std::function<int()>([o] { return run(*o); });
     }}};

}  // namespace
}  // namespace pbs2p::tools
