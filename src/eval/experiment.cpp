#include "eval/experiment.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "compress/calibration.h"
#include "core/error.h"
#include "core/memory.h"
#include "eval/kl_divergence.h"
#include "eval/perplexity.h"
#include "eval/text.h"
#include "eval/zeroshot.h"
#include "io/tokenizer.h"
#include "packed/packed_layer.h"

namespace pbs2p {

namespace {

// Resets the kernel's peak-RSS mark so each run reports its own peak (Linux >= 4.0).
void reset_peak_rss() {
    std::ofstream clear("/proc/self/clear_refs");
    if (clear) clear << "5";
}

DriverOptions method_options(const std::string& method) {
    DriverOptions options;
    options.layer.method = method;
    return options;
}

ExperimentRun quantizer_run(const std::string& method, const std::string& label, int bits) {
    ExperimentRun run{label, "main", false, method_options(method)};
    run.options.layer.bits = bits;
    return run;
}

ExperimentRun nm_run(const std::string& method, const std::string& label, int n, int m, const std::string& table) {
    ExperimentRun run{label, table, false, method_options(method)};
    run.options.layer.n_keep = n;
    run.options.layer.m_group = m;
    return run;
}

// Bits per weight of the packed form of every compressed layer, measured on the encoded bytes (codes and
// scales); -1 when a layer has no packed form (the method produced no layout, or an N:M the format lacks).
double measured_packed_bits(const CompressionReport& report,
                            const std::map<std::string, BinaryLayout>& layouts) {
    if (report.layers.empty()) return -1;
    int64_t bytes = 0;
    for (const LayerRecord& layer : report.layers) {
        auto it = layouts.find(layer.name);
        if (it == layouts.end() || kPackedGroup % it->second.m_group != 0) return -1;
        bytes += encode_layer(it->second, layer.name).storage_bytes();
    }
    return 8.0 * static_cast<double>(bytes) / static_cast<double>(report.compressed_parameters());
}

}  // namespace

nlohmann::json ExperimentResult::to_json() const {
    return {{"label", label},
            {"table", table},
            {"method", method},
            {"options", options},
            {"ppl", ppl},
            {"mean_kl", mean_kl},
            {"top1_agreement", top1_agreement},
            {"nominal_bits", nominal_bits},
            {"storage_bits", storage_bits},
            {"stored_bits", stored_bits},
            {"ppl_seeds", ppl_seeds},
            {"compress_seconds", compress_seconds},
            {"peak_rss_bytes", peak_rss_bytes},
            {"zeroshot", zeroshot},
            {"report", report}};
}

ExperimentResult ExperimentResult::from_json(const nlohmann::json& j) {
    ExperimentResult r;
    r.label = j.at("label").get<std::string>();
    r.table = j.at("table").get<std::string>();
    r.method = j.at("method").get<std::string>();
    r.options = j.at("options");
    r.ppl = j.at("ppl").get<std::map<std::string, double>>();
    r.mean_kl = j.at("mean_kl").get<double>();
    r.top1_agreement = j.at("top1_agreement").get<double>();
    r.nominal_bits = j.at("nominal_bits").get<double>();
    r.storage_bits = j.at("storage_bits").get<double>();
    r.stored_bits = j.value("stored_bits", -1.0);
    if (j.contains("ppl_seeds"))
        r.ppl_seeds = j.at("ppl_seeds").get<std::map<std::string, std::vector<double>>>();
    r.compress_seconds = j.at("compress_seconds").get<double>();
    r.peak_rss_bytes = j.at("peak_rss_bytes").get<int64_t>();
    r.report = j.at("report");
    if (j.contains("zeroshot")) r.zeroshot = j.at("zeroshot").get<std::map<std::string, nlohmann::json>>();
    return r;
}

std::vector<ExperimentRun> main_table_runs(bool quick) {
    std::vector<ExperimentRun> runs;
    runs.push_back({"FP", "main", true, {}});
    const std::vector<int> bit_widths = quick ? std::vector<int>{2} : std::vector<int>{3, 2, 1};
    for (int bits : bit_widths) runs.push_back(quantizer_run("rtn", fmt::format("RTN {}-bit", bits), bits));
    for (int bits : bit_widths) runs.push_back(quantizer_run("gptq", fmt::format("GPTQ {}-bit", bits), bits));
    // The rows the claim checks compare run with every calibration seed.
    auto compared = [](ExperimentRun run) {
        run.compared = true;
        return run;
    };
    runs.push_back(compared({"BiLLM", "main", false, method_options("billm")}));
    ExperimentRun arb{"ARB-LLM (RC)", "main", false, method_options("arb-llm")};
    arb.options.layer.arb_variant = "rc";
    runs.push_back(compared(arb));
    const std::vector<int> kept = quick ? std::vector<int>{4} : std::vector<int>{6, 5, 4};
    for (int n : kept)
        runs.push_back(compared(nm_run("stbllm", fmt::format("STBLLM {}:8", n), n, 8, "main")));
    for (int n : kept) runs.push_back(compared(nm_run("pbs2p", fmt::format("PBS2P {}:8", n), n, 8, "main")));
    {   // the CLI's default preset: variable-N ternary codes allocated by tensor type under a bits budget
        ExperimentRun preset{fmt::format("pbs2p default ({}-bit budget)", kDefaultBitsBudget), "main", false,
                             method_options("pbs2p")};
        preset.options.layer.alpha_passes = kDefaultAlphaPasses;
        preset.bits_budget = kDefaultBitsBudget;
        runs.push_back(preset);
    }
    if (!quick) {
        // PBS2P with the salient-column structure of BiLLM/STBLLM: the baselines' storage class.
        for (int n : kept) {
            ExperimentRun run = nm_run("pbs2p", fmt::format("PBS2P {}:8 (salient backbone)", n), n, 8, "main");
            run.options.layer.backbone = "salient";
            runs.push_back(compared(run));
        }
        for (int n : {6, 4}) runs.push_back(nm_run("sparsegpt", fmt::format("SparseGPT {}:8 (FP16 kept)", n), n, 8, "main"));
        for (int n : {6, 4}) runs.push_back(nm_run("wanda", fmt::format("Wanda {}:8 (FP16 kept)", n), n, 8, "main"));
    }
    return runs;
}

std::vector<ExperimentRun> ablation_runs(int n, int m, bool quick) {
    std::vector<ExperimentRun> runs;
    auto base = [&](const std::string& table, const std::string& label) {
        return nm_run("pbs2p", fmt::format("{} ({}:{})", label, n, m), n, m, table);
    };
    runs.push_back(base("default", "PBS2P defaults"));
    const CompressOptions defaults;  // each row below changes one thing against the defaults
    {   // SPBO on/off, its number of steps and the OBS update between steps
        ExperimentRun off = base("spbo", "SPBO off (one-shot prune, then binarize)");
        off.options.layer.spbo = false;
        runs.push_back(off);
        if (!quick) {
            ExperimentRun two = base("spbo", "SPBO 2 steps (score-ordered chunks)");
            two.options.layer.spbo_steps = 2;
            two.options.layer.spbo_schedule = "global";
            runs.push_back(two);
            ExperimentRun obs = base("spbo", defaults.spbo_obs_update ? "SPBO without the OBS update of kept weights"
                                                                      : "SPBO + OBS update of kept weights per step");
            obs.options.layer.spbo_obs_update = !defaults.spbo_obs_update;
            runs.push_back(obs);
        }
    }
    {   // coarse stage on/off and importance variants
        ExperimentRun off = base("coarse", "coarse stage off (uniform N)");
        off.options.coarse_stage = false;
        runs.push_back(off);
        if (!quick) {
            ExperimentRun one_minus = base("coarse", "importance 1 - cos");
            one_minus.options.importance = "one_minus";
            runs.push_back(one_minus);
        }
    }
    if (!quick) {
        for (const char* metric : {"magnitude", "wanda"}) {  // fine-stage metric
            ExperimentRun r = base("fine", fmt::format("fine metric {}", metric));
            r.options.layer.fine_metric = metric;
            runs.push_back(r);
        }
        for (const char* backbone : {"arb", "arb-x", "salient"}) {  // binarizer backbone
            if (backbone == defaults.backbone) continue;
            ExperimentRun r = base("backbone", fmt::format("backbone {}", backbone));
            r.options.layer.backbone = backbone;
            runs.push_back(r);
        }
        ExperimentRun block64 = base("block size", "block size 64 (one alpha, mu per row per block)");
        block64.options.layer.block_size = 64;
        runs.push_back(block64);
        ExperimentRun no_comp = base("compensation", "compensation off");
        no_comp.options.layer.compensation = false;
        runs.push_back(no_comp);
        ExperimentRun diagonal = base("compensation", "block error divided by diag(U) (as released BiLLM code)");
        diagonal.options.layer.exact_block_error = 0;
        runs.push_back(diagonal);
        ExperimentRun small_calibration = base("calibration", "16 calibration windows");
        small_calibration.calib_windows = 16;
        runs.push_back(small_calibration);
    }
    return runs;
}

std::vector<ExperimentResult> run_experiments(const ExperimentSettings& settings, const std::vector<ExperimentRun>& runs,
                                              const std::vector<EvalText>& texts, const ExperimentProgress& progress) {
    PBS2P_CHECK(!texts.empty(), "experiment: no evaluation text");
    const Model fp = Model::load(settings.model_dir);
    auto tokenizer = load_tokenizer(settings.model_dir);
    const std::vector<int32_t> calib_stream = tokenizer->encode(read_text_file(settings.calib_path), true);
    const int64_t context = fp.config().max_position_embeddings;
    const int64_t calib_seq = window_length_or_default(settings.calib_seq, context);
    const int64_t eval_ctx = window_length_or_default(settings.eval_ctx, context);
    const int32_t bos = tokenizer->bos_id();

    EvalOptions eval_options;
    eval_options.protocol = PerplexityProtocol::gptq;
    eval_options.ctx = eval_ctx;
    eval_options.max_windows = settings.max_eval_windows;
    eval_options.progress = false;
    EvalOptions kl_options = eval_options;
    kl_options.max_windows = settings.kl_windows;

    // Zero-shot tasks: read once, scored on the FP model and on the first seed of every compressed run.
    std::vector<std::pair<std::string, std::vector<ChoiceItem>>> tasks;
    for (const std::string& path : settings.zeroshot_tasks)
        tasks.emplace_back(std::filesystem::path(path).stem().string(), read_choice_tasks(path));
    ZeroShotOptions zeroshot_options;
    zeroshot_options.max_items = settings.zeroshot_items;
    zeroshot_options.progress = false;
    auto score_zeroshot = [&](const Model& model, ExperimentResult& result) {
        for (const auto& [name, items] : tasks) {
            const ZeroShotResult z = evaluate_zeroshot(model, *tokenizer, items, zeroshot_options);
            result.zeroshot[name] = zeroshot_result_json(z);
        }
    };

    std::vector<ExperimentResult> results;
    for (const ExperimentRun& run : runs) {
        reset_peak_rss();
        ExperimentResult result;
        result.label = run.label;
        result.table = run.table;
        result.method = run.full_precision ? "fp" : run.options.layer.method;
        if (run.full_precision) {
            for (const EvalText& text : texts)
                result.ppl[text.name] = evaluate_perplexity(fp, text.tokens, bos, eval_options).ppl;
            result.peak_rss_bytes = peak_rss_bytes();
            score_zeroshot(fp, result);
        } else {
            int64_t windows = run.calib_windows > 0 ? run.calib_windows : settings.calib_windows;
            if (run.options.layer.method == "rtn") windows = 1;  // needs no calibration
            const int seeds = run.compared ? std::max(1, settings.seeds) : 1;
            DriverOptions options = run.options;
            if (run.bits_budget > 0)
                options.code_by_type = allocate_codes(decoder_layer_shapes(fp), parse_ladder(kDefaultLadder),
                                                      parse_priority(kDefaultPriority), run.bits_budget);
            for (int k = 0; k < seeds; ++k) {
                Model model = Model::load(settings.model_dir);
                const CalibrationSet calibration = sample_calibration(calib_stream, windows, calib_seq,
                                                                      settings.seed + k, settings.calib_path);
                std::map<std::string, BinaryLayout> layouts;
                const auto start = std::chrono::steady_clock::now();
                CompressionReport report = compress_model(model, calibration, options, &layouts);
                const double seconds =
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                for (const EvalText& text : texts) {
                    const double ppl = evaluate_perplexity(model, text.tokens, bos, eval_options).ppl;
                    if (run.compared) result.ppl_seeds[text.name].push_back(ppl);
                    if (k == 0) result.ppl[text.name] = ppl;
                }
                if (k > 0) continue;  // the other seeds only give the spread of the perplexities
                result.compress_seconds = seconds;
                result.peak_rss_bytes = peak_rss_bytes();
                result.options = compress_options_to_json(options);
                result.nominal_bits = report.nominal_bits();
                result.storage_bits = report.storage_bits();
                result.stored_bits = measured_packed_bits(report, layouts);
                result.report = report.to_json();
                KlResult kl = evaluate_kl(model, fp, texts.front().tokens, bos, kl_options);
                result.mean_kl = kl.mean_kl;
                result.top1_agreement = kl.top1_agreement;
                score_zeroshot(model, result);
            }
        }
        results.push_back(result);
        if (progress) progress(results.size(), runs.size(), results.back());
    }
    return results;
}

}  // namespace pbs2p
