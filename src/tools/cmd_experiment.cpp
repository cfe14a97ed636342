// `pbs2p experiment MODEL... --calib FILE --test FILE --test-ood FILE --valid FILE -o DIR`: the paper's
// main table and ablations on each model, with results.json / results.csv, plots and a markdown report.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "compress/calibration.h"
#include "core/error.h"
#include "core/progress.h"
#include "eval/experiment.h"
#include "eval/results_report.h"
#include "eval/text.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "tools/command.h"

namespace pbs2p::tools {
namespace {

namespace fs = std::filesystem;

struct ExperimentCommand {
    CommonOptions common;
    std::vector<std::string> models;
    std::string calib, test, test_ood, valid;
    std::string out_dir = "results";
    std::string markdown;      // default OUT/RESULTS.md
    std::string plot_dir;      // default OUT/plots
    bool quick = false;
    bool no_ablations = false;
    bool reuse = false;
    int64_t calib_windows = 128;
    int64_t calib_seq = 0;
    int64_t eval_ctx = 0;
    int64_t max_eval_windows = 0;
    int64_t kl_windows = 16;
    uint64_t seed = 0;
    int seeds = 3;
    std::vector<std::string> zeroshot_tasks;
    int64_t zeroshot_items = 0;
    std::string command_line;
};

EvalText load_eval_text(const std::string& name, const std::string& path, const Tokenizer& tokenizer) {
    EvalText text{name, path, tokenizer.encode(read_text_file(path), true)};
    return text;
}

nlohmann::json model_info(const std::string& dir) {
    const ModelConfig config = load_hf_config(dir);
    return {{"architecture", config.architecture},
            {"parameters", config.parameter_count()},
            {"summary", fmt::format("{}, {} blocks, hidden {}, {:.1f}M parameters", config.architecture,
                                    config.num_layers, config.hidden_size, config.parameter_count() / 1e6)}};
}

void print_result(size_t done, size_t total, const ExperimentResult& r, bool json) {
    if (json) return;
    std::string ppl;
    for (const auto& [text, value] : r.ppl) ppl += fmt::format(" {} {:.3f}", text, value);
    fmt::print(stderr, "[{}/{}] {:<44} bits {:6.3f} nominal {:5.2f}{} kl {:.4f} ({:.1f} s)\n", done, total, r.label,
               r.storage_bits, r.nominal_bits, ppl, r.mean_kl, r.compress_seconds);
}

int run(ExperimentCommand& cmd) {
    apply_common_options(cmd.common);
    const std::string markdown = cmd.markdown.empty() ? (fs::path(cmd.out_dir) / "RESULTS.md").string() : cmd.markdown;
    const std::string plot_dir = cmd.plot_dir.empty() ? (fs::path(cmd.out_dir) / "plots").string() : cmd.plot_dir;
    fs::create_directories(cmd.out_dir);

    std::vector<ModelResults> all;
    for (size_t i = 0; i < cmd.models.size(); ++i) {
        const auto start = std::chrono::steady_clock::now();
        const std::string& dir = cmd.models[i];
        auto tokenizer = load_tokenizer(dir);
        ModelResults m;
        m.model_name = fs::path(dir).filename().string();
        if (m.model_name.empty()) m.model_name = fs::path(dir).parent_path().filename().string();
        m.model_dir = dir;
        m.model_info = model_info(dir);
        const int64_t context = load_hf_config(dir).max_position_embeddings;
        m.settings = {dir,
                      cmd.calib,
                      cmd.calib_windows,
                      window_length_or_default(cmd.calib_seq, context),
                      cmd.seed,
                      cmd.seeds,
                      window_length_or_default(cmd.eval_ctx, context),
                      cmd.max_eval_windows,
                      cmd.kl_windows,
                      cmd.zeroshot_tasks,
                      cmd.zeroshot_items};
        const bool with_ablations = i == 0 && !cmd.no_ablations && !cmd.valid.empty();
        // Everything that determines this model's numbers; a saved result is reused only when it matches.
        std::string key = fmt::format(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}", dir, cmd.calib, cmd.test, cmd.test_ood, cmd.valid,
            cmd.quick, m.settings.calib_windows, m.settings.calib_seq, m.settings.eval_ctx,
            m.settings.max_eval_windows, m.settings.kl_windows, cmd.common.threads, cmd.seed, cmd.seeds);
        if (!cmd.zeroshot_tasks.empty()) {  // keys of runs without zero-shot tasks stay as they were
            std::string tasks;
            for (const std::string& t : cmd.zeroshot_tasks) tasks += "|" + t;
            key += fmt::format("|zeroshot{}|{}", tasks, cmd.zeroshot_items);
        }
        const fs::path saved = fs::path(cmd.out_dir) / m.model_name / "results.json";
        if (cmd.reuse && fs::exists(saved)) {
            std::ifstream in(saved);
            const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
            if (!j.is_discarded() && j.value("key", std::string()) == key) {
                if (!cmd.common.json) fmt::print(stderr, "== {}: reusing {}\n", m.model_name, saved.string());
                all.push_back(model_results_from_json(j));
                continue;
            }
        }
        if (!cmd.common.json) fmt::print(stderr, "== {}: main table\n", m.model_name);
        // KL and top-1 are measured on the first text (test); valid, when given, is scored for every run too.
        std::vector<EvalText> texts = {load_eval_text("test", cmd.test, *tokenizer),
                                       load_eval_text("test-ood", cmd.test_ood, *tokenizer)};
        if (!cmd.valid.empty()) texts.push_back(load_eval_text("valid", cmd.valid, *tokenizer));
        m.main = run_experiments(m.settings, main_table_runs(cmd.quick), texts,
                                 [&](size_t d, size_t t, const ExperimentResult& r) { print_result(d, t, r, cmd.common.json); });
        // Ablations on the first model only, on the validation split.
        if (with_ablations) {
            if (!cmd.common.json) fmt::print(stderr, "== {}: ablations (valid split)\n", m.model_name);
            std::vector<EvalText> valid = {load_eval_text("valid", cmd.valid, *tokenizer)};
            ExperimentSettings ablation_settings = m.settings;
            ablation_settings.zeroshot_tasks.clear();  // zero-shot columns belong to the main table
            m.ablations = run_experiments(ablation_settings, ablation_runs(4, 8, cmd.quick), valid,
                                          [&](size_t d, size_t t, const ExperimentResult& r) {
                                              print_result(d, t, r, cmd.common.json);
                                          });
        }
        m.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        nlohmann::json j = model_results_to_json(m);
        j["key"] = key;
        fs::create_directories(saved.parent_path());
        std::ofstream(saved) << j.dump(1) << "\n";
        all.push_back(std::move(m));
    }

    write_results_json((fs::path(cmd.out_dir) / "results.json").string(), all);
    write_results_csv((fs::path(cmd.out_dir) / "results.csv").string(), all);
    const std::vector<std::string> plots = draw_plots(plot_dir, all);
    const std::string prefix = fs::relative(fs::absolute(plot_dir), fs::absolute(markdown).parent_path()).string();
    {
        fs::create_directories(fs::absolute(markdown).parent_path());
        std::ofstream md(markdown);
        PBS2P_CHECK(md.good(), "{}: cannot write", markdown);
        md << results_markdown(all, plots, prefix, cmd.command_line);
    }
    if (cmd.common.json) {
        std::ifstream in(fs::path(cmd.out_dir) / "results.json");
        fmt::print("{}\n", std::string(std::istreambuf_iterator<char>(in), {}));
    } else {
        fmt::print("wrote {}, {}/results.json, {}/results.csv and {} plots in {}\n", markdown, cmd.out_dir,
                   cmd.out_dir, plots.size(), plot_dir);
    }
    return 0;
}

CommandRegistrar registrar{
    {"experiment", "Run the paper's main table and ablations on models and write a results report with plots",
     [](CLI::App& app) {
         auto cmd = std::make_shared<ExperimentCommand>();
         app.add_option("models", cmd->models, "Hugging Face model directories")->required()->check(CLI::ExistingDirectory);
         app.add_option("--calib", cmd->calib, "Calibration text")->required()->check(CLI::ExistingFile);
         app.add_option("--test", cmd->test, "In-domain evaluation text")->required()->check(CLI::ExistingFile);
         app.add_option("--test-ood", cmd->test_ood, "Out-of-domain evaluation text")->required()->check(CLI::ExistingFile);
         app.add_option("--valid", cmd->valid, "Validation text: scored for every run, and the text of the ablations (choosing defaults)")
             ->check(CLI::ExistingFile);
         app.add_option("-o,--output", cmd->out_dir, "Directory for results.json, results.csv and plots")
             ->capture_default_str();
         app.add_option("--markdown", cmd->markdown, "Markdown report path (default OUT/RESULTS.md)");
         app.add_option("--plots", cmd->plot_dir, "Directory for the PNG plots (default OUT/plots)");
         app.add_flag("--quick", cmd->quick, "Smoke-test size: fewer methods and ablations");
         app.add_flag("--no-ablations", cmd->no_ablations, "Only the main table");
         app.add_flag("--reuse", cmd->reuse,
                      "Reuse OUT/<model>/results.json from an earlier run with identical settings instead of "
                      "rerunning");
         app.add_option("--calib-windows", cmd->calib_windows, "Calibration windows per run")
             ->capture_default_str();
         app.add_option("--calib-seq", cmd->calib_seq,
                        "Tokens per calibration window (0 = min(2048, context))")
             ->capture_default_str();
         app.add_option("--eval-ctx", cmd->eval_ctx, "Evaluation context (0 = min(2048, context))")
             ->capture_default_str();
         app.add_option("--max-eval-windows", cmd->max_eval_windows,
                        "At most this many windows per text (0 = all)")
             ->capture_default_str();
         app.add_option("--kl-windows", cmd->kl_windows, "Windows of the test text used for KL and top-1")
             ->capture_default_str();
         app.add_option("--seed", cmd->seed, "Seed of the calibration window sampler")->capture_default_str();
         app.add_option(
                "--seeds", cmd->seeds,
                "Calibration seeds (seed, seed+1, ...) of the runs the claim checks compare; their spread "
                "decides each verdict")
             ->capture_default_str()
             ->check(CLI::Range(1, 16));
         app.add_option("--zeroshot-tasks", cmd->zeroshot_tasks,
                        "Zero-shot task files (JSONL, docs/EVALUATION.md) scored for FP and every main-table run "
                        "(first calibration seed); repeat or list several")
             ->check(CLI::ExistingFile);
         app.add_option("--zeroshot-items", cmd->zeroshot_items,
                        "Zero-shot: score the first N items of each task file (0 = all)")
             ->capture_default_str()
             ->check(CLI::NonNegativeNumber);
         add_common_options(app, cmd->common);
         return std::function<int()>([cmd] {
             cmd->command_line = "pbs2p experiment";
             for (const std::string& m : cmd->models) cmd->command_line += " " + m;
             cmd->command_line += " --calib " + cmd->calib + " --test " + cmd->test + " --test-ood " + cmd->test_ood;
             if (!cmd->valid.empty()) cmd->command_line += " --valid " + cmd->valid;
             if (cmd->quick) cmd->command_line += " --quick";
             if (cmd->no_ablations) cmd->command_line += " --no-ablations";
             cmd->command_line += fmt::format(" --calib-windows {} --max-eval-windows {} --kl-windows {}",
                                              cmd->calib_windows, cmd->max_eval_windows, cmd->kl_windows);
             if (cmd->calib_seq > 0) cmd->command_line += fmt::format(" --calib-seq {}", cmd->calib_seq);
             if (cmd->eval_ctx > 0) cmd->command_line += fmt::format(" --eval-ctx {}", cmd->eval_ctx);
             if (cmd->seed != 0) cmd->command_line += fmt::format(" --seed {}", cmd->seed);
             cmd->command_line += fmt::format(" --seeds {}", cmd->seeds);
             for (const std::string& t : cmd->zeroshot_tasks) cmd->command_line += " --zeroshot-tasks " + t;
             if (!cmd->zeroshot_tasks.empty())
                 cmd->command_line += fmt::format(" --zeroshot-items {}", cmd->zeroshot_items);
             return run(*cmd);
         });
     }}};

}  // namespace
}  // namespace pbs2p::tools
