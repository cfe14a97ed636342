// `pbs2p zeroshot MODEL --tasks FILE.jsonl`: multiple-choice accuracy by log-likelihood (acc and
// length-normalised acc_norm, lm-evaluation-harness conventions; see eval/zeroshot.h).
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/zeroshot.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "tools/command.h"
#include "tools/model_loading.h"

namespace pbs2p::tools {
namespace {

struct ZeroShotCliOptions {
    std::string model;
    std::string kernel;  // packed models only
    std::vector<std::string> tasks;
    int64_t max_items = 0;
    std::string log_items;  // JSONL of per-item scores
    CommonOptions common;
};

// One line per scored item: file, id, gold, predictions and every choice's log-likelihood.
void write_item_log(std::ofstream& log, const std::string& file, const std::vector<ChoiceItem>& items,
                    const ZeroShotResult& r) {
    for (size_t k = 0; k < r.scores.size(); ++k) {
        const ChoiceScore& s = r.scores[k];
        log << nlohmann::json{{"file", file},
                              {"id", items[k].id},
                              {"gold", items[k].gold},
                              {"pred", s.pred},
                              {"pred_norm", s.pred_norm},
                              {"loglikelihoods", s.loglikelihoods}}
                   .dump()
            << "\n";
    }
}

int run(const ZeroShotCliOptions& o) {
    apply_common_options(o.common);
    std::vector<std::vector<ChoiceItem>> task_items;
    for (const std::string& path : o.tasks) task_items.push_back(read_choice_tasks(path));
    const Model model = load_model_for_cli(o.model, o.kernel);
    const auto tokenizer = load_tokenizer(model_directory(o.model));
    PBS2P_CHECK(tokenizer->vocab_size() <= model.config().vocab_size,
                "{}: tokenizer has {} tokens but the model's vocabulary is {}", o.model,
                tokenizer->vocab_size(), model.config().vocab_size);
    ZeroShotOptions options;
    options.max_items = o.max_items;
    options.progress = !o.common.json;
    std::ofstream log;
    if (!o.log_items.empty()) {
        log.open(o.log_items, std::ios::trunc);
        PBS2P_CHECK(log, "{}: cannot write the item log", o.log_items);
    }
    nlohmann::json out{{"model", o.model}, {"tasks", nlohmann::json::array()}};
    for (size_t t = 0; t < o.tasks.size(); ++t) {
        const auto start = std::chrono::steady_clock::now();
        const ZeroShotResult r = evaluate_zeroshot(model, *tokenizer, task_items[t], options);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (log.is_open()) write_item_log(log, o.tasks[t], task_items[t], r);
        nlohmann::json j = zeroshot_result_json(r);
        j["file"] = o.tasks[t];
        j["seconds"] = seconds;
        out["tasks"].push_back(j);
        if (!o.common.json) {
            fmt::print("{}: {}: acc {:.4f} ± {:.4f}  acc_norm {:.4f} ± {:.4f}  (chance {:.4f}, {} items)\n",
                       o.model, o.tasks[t], r.acc, r.acc_stderr, r.acc_norm, r.acc_norm_stderr, r.chance,
                       r.items);
            fmt::print(stderr,
                       "{:.1f} s, {} tokens forwarded, {} contexts truncated, {} choices crossing the "
                       "context's token boundary\n",
                       seconds, r.tokens_forwarded, r.truncated, r.boundary_merges);
        }
    }
    if (o.common.json) fmt::print("{}\n", out.dump(2));
    return 0;
}

CommandRegistrar registrar{
    {"zeroshot", "Multiple-choice accuracy by log-likelihood (acc, acc_norm) on JSONL task files",
     [](CLI::App& app) {
         auto o = std::make_shared<ZeroShotCliOptions>();
         app.add_option("model", o->model, "Model directory or packed model file (as for eval)")->required();
         add_kernel_option(app, o->kernel);
         app.add_option("--tasks", o->tasks,
                        "JSONL task file(s): one {\"context\", \"choices\", \"gold\"} object per line "
                        "(see docs/EVALUATION.md); repeat for several")
             ->required();
         app.add_option("--max-items", o->max_items, "Score only the first N items of each file (0 = all)")
             ->check(CLI::NonNegativeNumber)
             ->capture_default_str();
         app.add_option("--log-items", o->log_items,
                        "Also write every item's log-likelihoods and predictions to this JSONL file");
         add_common_options(app, o->common);
         return std::function<int()>([o] { return run(*o); });
     }}};

}  // namespace
}  // namespace pbs2p::tools
