#include "eval/results_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "core/error.h"

namespace pbs2p {

namespace fs = std::filesystem;

namespace {

// WikiText-2 perplexity reported in the PBS²P paper's Table 1 (LLaMA-1-7B, LLaMA-2-7B, OPT-1.3B), keyed by
// our run labels. Their numbers, shown for context only: different models, data and context.
struct PaperRow {
    const char* label;
    const char* llama1_7b;
    const char* llama2_7b;
    const char* opt_1_3b;
};
constexpr PaperRow kPaperTable1[] = {
    {"FP", "5.68", "5.47", "14.62"},
    {"RTN 3-bit", "25.54", "542.80", "1.3e4"},
    {"RTN 2-bit", "1.1e5", "1.8e4", "1.1e4"},
    {"RTN 1-bit", "1.7e5", "1.6e5", "1.7e4"},
    {"GPTQ 3-bit", "8.63", "6.44", "16.45"},
    {"GPTQ 2-bit", "129.20", "52.22", "1.2e2"},
    {"GPTQ 1-bit", "1.6e5", "6.0e4", "8.7e3"},
    {"BiLLM", "49.79", "32.31", "69.05"},
    {"ARB-LLM (RC)", "14.03", "16.44", "26.63"},
    {"STBLLM 6:8", "15.03", "13.06", "29.84"},
    {"STBLLM 5:8", "19.48", "18.74", "33.01"},
    {"STBLLM 4:8", "31.72", "27.93", "45.11"},
    {"PBS2P 6:8", "7.36", "7.17", "23.72"},
    {"PBS2P 5:8", "8.09", "8.00", "27.10"},
    {"PBS2P 4:8", "10.78", "10.64", "44.53"},
};

// Nominal W-bits as the paper prints them for its rows.
const char* paper_bits(const std::string& label) {
    if (label.rfind("STBLLM 6", 0) == 0 || label.rfind("PBS2P 6", 0) == 0) return "0.80";
    if (label.rfind("STBLLM 5", 0) == 0 || label.rfind("PBS2P 5", 0) == 0) return "0.70";
    if (label.rfind("STBLLM 4", 0) == 0 || label.rfind("PBS2P 4", 0) == 0) return "0.55";
    if (label == "BiLLM" || label.rfind("ARB", 0) == 0) return "1.11";
    return "";
}

const PaperRow* paper_row(const std::string& label) {
    for (const PaperRow& row : kPaperTable1)
        if (label == row.label) return &row;
    return nullptr;
}

std::string format_ppl(double ppl) {
    if (!std::isfinite(ppl)) return "inf";
    if (ppl >= 1e4) return fmt::format("{:.1e}", ppl);
    if (ppl >= 100) return fmt::format("{:.1f}", ppl);
    return fmt::format("{:.2f}", ppl);
}

const ExperimentResult* find_result(const std::vector<ExperimentResult>& results, const std::string& label) {
    for (const ExperimentResult& r : results)
        if (r.label == label) return &r;
    return nullptr;
}

double ppl_of(const ExperimentResult& r, const std::string& text) {
    auto it = r.ppl.find(text);
    return it == r.ppl.end() ? NAN : it->second;
}

std::string method_family(const ExperimentResult& r) {
    if (r.method == "fp") return "FP";
    if (r.method == "arb-llm") return "ARB-LLM";
    if (r.method == "pbs2p" && r.options.is_object() && r.options.value("backbone", std::string()) == "salient")
        return "PBS2P (salient backbone)";
    static const std::map<std::string, std::string> names = {
        {"rtn", "RTN"},       {"gptq", "GPTQ"},   {"billm", "BiLLM"}, {"stbllm", "STBLLM"},
        {"pbs2p", "PBS2P"},   {"sparsegpt", "SparseGPT"}, {"wanda", "Wanda"}};
    auto it = names.find(r.method);
    return it == names.end() ? r.method : it->second;
}

std::string slug(const std::string& name) {
    std::string out;
    for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    return out;
}

// ---- plots ------------------------------------------------------------------------------------------------

bool gnuplot_available() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

void run_gnuplot(const fs::path& script) {
    const std::string command = fmt::format("gnuplot '{}' 2>/dev/null", script.string());
    PBS2P_CHECK(std::system(command.c_str()) == 0, "{}: gnuplot failed", script.string());
}

// The setting part of a run label for point labels: "6:8" of "STBLLM 6:8", "2-bit" of "GPTQ 2-bit".
std::string setting_of(const std::string& label) {
    std::istringstream words(label);
    for (std::string w; words >> w;)
        if (std::isdigit(static_cast<unsigned char>(w[0])) &&
            (w.find(':') != std::string::npos || w.find("-bit") != std::string::npos))
            return w;
    return "";
}

std::string plot_ppl_vs_bits(const fs::path& dir, const ModelResults& m) {
    const std::string base = "ppl_vs_bits_" + slug(m.model_name);
    const fs::path data = dir / (base + ".dat");
    const ExperimentResult* fp = find_result(m.main, "FP");
    // The chart shows the region where methods compete (up to 5 bits, up to 2x the FP perplexity); the
    // runs outside it are named in a note under the chart.
    const double fp_ppl = fp ? ppl_of(*fp, "test") : NAN;
    const double ppl_cap = std::isfinite(fp_ppl) ? 2.0 * fp_ppl : INFINITY;
    std::ofstream out(data);
    std::vector<std::string> families, off_chart;
    std::map<std::string, std::vector<const ExperimentResult*>> by_family;
    for (const ExperimentResult& r : m.main) {
        if (r.method == "fp") continue;
        const double ppl = ppl_of(r, "test");
        if (r.storage_bits > 5.0 || !(ppl <= ppl_cap)) {
            off_chart.push_back(fmt::format("{} ({:.2f} bits, {})", r.label, r.storage_bits, format_ppl(ppl)));
            continue;
        }
        std::string family = method_family(r);
        if (!by_family.count(family)) families.push_back(family);
        by_family[family].push_back(&r);
    }
    for (const std::string& family : families) {
        out << "# " << family << "\n";
        for (const ExperimentResult* r : by_family[family])
            out << fmt::format("{:.4f} {:.6g} \"{}\"\n", r->storage_bits, ppl_of(*r, "test"), setting_of(r->label));
        out << "\n\n";
    }
    out.close();
    static const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"};
    const fs::path script = dir / (base + ".gp");
    std::ofstream gp(script);
    gp << "set terminal pngcairo size 1000,650 font 'Sans,10'\n";
    gp << fmt::format("set output '{}'\n", (dir / (base + ".png")).string());
    gp << fmt::format("set title 'Perplexity on test against true storage bits per weight ({})'\n", m.model_name);
    gp << "set xlabel 'true bits per weight (everything stored for the compressed layers)'\n";
    gp << "set ylabel 'perplexity, test split, gptq protocol'\nset grid\nset key outside right\n";
    gp << "set bmargin 7\n";
    if (std::isfinite(fp_ppl)) {
        gp << fmt::format("set arrow from graph 0, first {0} to graph 1, first {0} nohead dt 2 lc rgb '#555555'\n", fp_ppl);
        gp << fmt::format("set label 'FP {}' at graph 0.01, first {} offset 0,0.6 font 'Sans,8'\n", format_ppl(fp_ppl),
                          fp_ppl);
        gp << fmt::format("set yrange [{}:*]\n", 0.97 * fp_ppl);
    }
    if (!off_chart.empty()) {
        std::string note = "off the chart: ";
        for (size_t i = 0; i < off_chart.size(); ++i) note += (i ? (i % 3 == 0 ? ",\\n" : ", ") : "") + off_chart[i];
        gp << fmt::format("set label \"{}\" at screen 0.02, screen 0.07 font 'Sans,8'\n", note);
    }
    gp << "plot ";
    for (size_t i = 0; i < families.size(); ++i) {
        const char* colour = colours[i % (sizeof(colours) / sizeof(colours[0]))];
        gp << fmt::format("'{}' index {} using 1:2 with linespoints pt {} ps 1.3 lc rgb '{}' title '{}', ", data.string(),
                          i, 4 + 2 * (i % 5), colour, families[i]);
        gp << fmt::format("'' index {} using 1:2:3 with labels offset 0,0.9 font 'Sans,7' tc rgb '{}' notitle", i,
                          colour);
        gp << (i + 1 < families.size() ? ", " : "\n");
    }
    gp.close();
    run_gnuplot(script);
    return base + ".png";
}

std::string plot_cfs(const fs::path& dir, const ModelResults& m) {
    const ExperimentResult* r = find_result(m.main, "PBS2P 4:8");
    if (!r) r = find_result(m.main, "PBS2P 6:8");
    if (!r || !r->report.contains("block_importance") || r->report["block_importance"].empty()) return "";
    const std::string base = "cfs_" + slug(m.model_name);
    const fs::path data = dir / (base + ".dat");
    std::ofstream out(data);
    const auto importance = r->report["block_importance"].get<std::vector<double>>();
    const auto keep = r->report["block_keep"].get<std::vector<int>>();
    const auto cosine = r->report["block_cosine"].get<std::vector<double>>();
    for (size_t l = 0; l < importance.size(); ++l)
        out << fmt::format("{} {:.6f} {} {:.6f}\n", l, importance[l], keep[l], cosine[l]);
    out.close();
    const fs::path script = dir / (base + ".gp");
    std::ofstream gp(script);
    gp << "set terminal pngcairo size 900,500 font 'Sans,10'\n";
    gp << fmt::format("set output '{}'\n", (dir / (base + ".png")).string());
    gp << fmt::format("set title 'CFS coarse stage ({}, {}): block importance and allocated N'\n", m.model_name, r->label);
    gp << "set xlabel 'decoder block'\nset ylabel 'importance (mean 1)'\nset y2label 'kept N of 8'\n";
    gp << "set ytics nomirror\nset y2tics 1\nset y2range [0:8]\nset yrange [0:*]\nset style fill solid 0.5\n";
    gp << "set boxwidth 0.6\nset grid y\nset key top right\nset xtics 1\n";
    gp << fmt::format("set xrange [-0.6:{}]\n", static_cast<double>(importance.size()) - 0.4);
    gp << fmt::format("plot '{0}' using 1:2 with boxes lc rgb '#4477aa' title 'importance', 1 dt 2 lc rgb '#333333' "
                      "title 'average importance', '{0}' using 1:3 axes x1y2 with linespoints pt 7 lc rgb '#cc3311' "
                      "title 'N per block'\n",
                      data.string());
    gp.close();
    run_gnuplot(script);
    return base + ".png";
}

std::string plot_layer_errors(const fs::path& dir, const ModelResults& m) {
    const std::vector<std::string> labels = {"PBS2P 4:8", "STBLLM 4:8", "BiLLM", "ARB-LLM (RC)", "GPTQ 2-bit",
                                             "PBS2P 6:8"};
    std::vector<const ExperimentResult*> runs;
    for (const std::string& label : labels)
        if (const ExperimentResult* r = find_result(m.main, label); r && r->report.contains("layers")) runs.push_back(r);
    if (runs.empty()) return "";
    const std::string base = "layer_error_" + slug(m.model_name);
    const fs::path data = dir / (base + ".dat");
    std::ofstream out(data);
    for (const ExperimentResult* r : runs) {
        out << "# " << r->label << "\n";
        int index = 0;
        for (const auto& layer : r->report["layers"])
            out << fmt::format("{} {:.6g}\n", index++, std::max(1e-6, layer["stats"]["rel_error"].get<double>()));
        out << "\n\n";
    }
    out.close();
    const fs::path script = dir / (base + ".gp");
    std::ofstream gp(script);
    gp << "set terminal pngcairo size 1000,500 font 'Sans,10'\n";
    gp << fmt::format("set output '{}'\n", (dir / (base + ".png")).string());
    gp << fmt::format("set title 'Relative output error per layer, ||(W-Wq)X||^2 / ||WX||^2 ({})'\n", m.model_name);
    gp << "set xlabel 'layer (blocks in order; q k v o gate up down / q k v out fc1 fc2)'\n";
    gp << "set ylabel 'relative output error (log scale)'\nset logscale y\nset grid\nset key outside right\n";
    gp << "plot ";
    for (size_t i = 0; i < runs.size(); ++i)
        gp << fmt::format("'{}' index {} using 1:2 with linespoints pt 7 ps 0.6 title '{}'{}", data.string(), i,
                          runs[i]->label, i + 1 < runs.size() ? ", " : "\n");
    gp.close();
    run_gnuplot(script);
    return base + ".png";
}

// ---- markdown -----------------------------------------------------------------------------------------------

std::string main_table(const ModelResults& m) {
    std::string md;
    md += "| Method | #Block | W-bits (nominal) | true bits | PPL test | PPL test-ood | PPL valid | KL vs FP (nats) | "
          "top-1 vs FP | compress (s) | peak RSS (MiB) | paper L1-7B | paper L2-7B | paper OPT-1.3B |\n";
    md += "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const ExperimentResult& r : m.main) {
        const PaperRow* paper = paper_row(r.label);
        const bool fp = r.method == "fp";
        std::string block = fp || r.method == "rtn" || r.method == "wanda" ? "-" : "128";
        std::string nominal = fp ? "16" : fmt::format("{:.2f}", r.nominal_bits);
        if (const char* printed = paper_bits(r.label); *printed) nominal += fmt::format(" (paper {})", printed);
        const double valid = ppl_of(r, "valid");
        md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0f} | {} | {} | {} |\n",
                          r.label, block, nominal, true_bits_cell(r), format_ppl(ppl_of(r, "test")),
                          format_ppl(ppl_of(r, "test-ood")), std::isnan(valid) ? "-" : format_ppl(valid),
                          fp ? "0" : fmt::format("{:.4f}", r.mean_kl),
                          fp ? "100%" : fmt::format("{:.1f}%", 100.0 * r.top1_agreement),
                          fp ? "-" : fmt::format("{:.1f}", r.compress_seconds),
                          static_cast<double>(r.peak_rss_bytes) / (1 << 20), paper ? paper->llama1_7b : "",
                          paper ? paper->llama2_7b : "", paper ? paper->opt_1_3b : "");
    }
    return md;
}

// Zero-shot accuracy of the main-table runs beside their test perplexity: one column pair (acc, acc_norm,
// each with its standard error) per task, in the order of the settings' task files. Empty without tasks.
std::string zeroshot_table(const ModelResults& m) {
    std::vector<std::string> tasks;
    for (const std::string& path : m.settings.zeroshot_tasks) tasks.push_back(fs::path(path).stem().string());
    if (tasks.empty()) return "";
    std::string md = "| Method | true bits | PPL test |", rule = "|---|---|---|";
    for (const std::string& t : tasks) {
        md += fmt::format(" {} acc | {} acc_norm |", t, t);
        rule += "---|---|";
    }
    md += "\n" + rule + "\n";
    auto cell = [](const nlohmann::json& z, const char* key) {
        return fmt::format("{:.1f} ± {:.1f}", 100.0 * z.at(key).get<double>(),
                           100.0 * z.at(std::string(key) + "_stderr").get<double>());
    };
    for (const ExperimentResult& r : m.main) {
        md += fmt::format("| {} | {} | {} |", r.label, r.method == "fp" ? "16" : true_bits_cell(r),
                          format_ppl(ppl_of(r, "test")));
        for (const std::string& t : tasks) {
            auto it = r.zeroshot.find(t);
            md += it == r.zeroshot.end() ? " - | - |"
                                         : fmt::format(" {} | {} |", cell(it->second, "acc"), cell(it->second, "acc_norm"));
        }
        md += "\n";
    }
    const ExperimentResult* any = nullptr;
    for (const ExperimentResult& r : m.main)
        if (!r.zeroshot.empty()) any = &r;
    if (any) {
        std::string chance, items;
        for (const std::string& t : tasks) {
            auto it = any->zeroshot.find(t);
            if (it == any->zeroshot.end()) continue;
            chance += fmt::format("{}{} {:.1f}%", chance.empty() ? "" : ", ", t, 100.0 * it->second.at("chance").get<double>());
            items += fmt::format("{}{} {}", items.empty() ? "" : ", ", t, it->second.at("items").get<int64_t>());
        }
        md += fmt::format("\nAccuracy in % ± standard error (`pbs2p zeroshot` conventions, docs/EVALUATION.md); "
                          "chance: {}; items scored: {}.\n",
                          chance, items);
    }
    return md;
}

// The claims the report checks: the default PBS2P, then the same claims with PBS2P given the baselines'
// salient-column structure.
std::vector<std::pair<std::string, std::string>> claimed_orderings() {
    std::vector<std::pair<std::string, std::string>> claims;
    for (const char* variant : {"", " (salient backbone)"}) {
        for (int n : {6, 5, 4})
            claims.emplace_back(fmt::format("PBS2P {}:8{}", n, variant), fmt::format("STBLLM {}:8", n));
        claims.emplace_back(fmt::format("PBS2P 6:8{}", variant), "BiLLM");
        claims.emplace_back(fmt::format("PBS2P 6:8{}", variant), "ARB-LLM (RC)");
    }
    return claims;
}

// A run's perplexities on `text`, one per calibration seed (the single run when it has no seed list).
std::vector<double> seed_ppls(const ExperimentResult& r, const std::string& text) {
    if (auto it = r.ppl_seeds.find(text); it != r.ppl_seeds.end() && !it->second.empty()) return it->second;
    const double p = ppl_of(r, text);
    return std::isnan(p) ? std::vector<double>{} : std::vector<double>{p};
}

std::string claim_rule() {
    return "Each claim is decided by one rule on the perplexities of the two runs over their calibration "
           "seeds "
           "(the window sampler's `--seed`, the seeds listed per row): margin = mean(second) - mean(first), "
           "seed "
           "spread = the larger of the two runs' ranges (max - min over the seeds). The claim **holds** when "
           "the "
           "margin is larger than the spread, **does not hold** when the reversed margin is larger than the "
           "spread, "
           "and is a **tie** otherwise. The main table shows the first seed.\n\n";
}

std::string claim_table(const ModelResults& m) {
    std::string md =
        "| paper's claim | text | ours (mean over calibration seeds) | margin | seed spread | seeds | "
        "verdict |\n"
        "|---|---|---|---|---|---|---|\n";
    for (const ClaimCheck& c : claim_checks(m)) {
        const char* v = verdict_name(c.verdict);
        md += fmt::format("| {} < {} | {} | {} vs {} | {:+.2f} | {:.2f} | {} | {} |\n", c.better, c.worse,
                          c.text, format_ppl(c.mean_better), format_ppl(c.mean_worse), c.margin, c.spread,
                          c.seeds, c.verdict == Verdict::holds ? std::string(v) : fmt::format("**{}**", v));
    }
    return md;
}

std::string ablation_table(const ModelResults& m) {
    const ExperimentResult* base = m.ablations.empty() ? nullptr : &m.ablations.front();
    std::string md =
        "| ablation | setting | PPL valid | change vs default | true bits | KL vs FP (valid) | compress (s) "
        "|\n";
    md += "|---|---|---|---|---|---|---|\n";
    for (const ExperimentResult& r : m.ablations) {
        const double ppl = ppl_of(r, "valid");
        const double change = base ? 100.0 * (ppl / ppl_of(*base, "valid") - 1.0) : 0.0;
        md += fmt::format("| {} | {} | {} | {:+.2f}% | {:.3f} | {:.4f} | {:.1f} |\n", r.table, r.label, format_ppl(ppl),
                          change, r.storage_bits, r.mean_kl, r.compress_seconds);
    }
    return md;
}

}  // namespace

const char* verdict_name(Verdict v) {
    switch (v) {
        case Verdict::holds:
            return "holds";
        case Verdict::tie:
            return "tie";
        case Verdict::does_not_hold:
            return "does not hold";
    }
    return "";
}

ClaimCheck check_claim(const std::string& better, const std::vector<double>& better_ppl,
                       const std::string& worse, const std::vector<double>& worse_ppl,
                       const std::string& text) {
    PBS2P_CHECK(!better_ppl.empty() && !worse_ppl.empty(), "claim {} < {} ({}): no perplexity", better, worse,
                text);
    auto mean = [](const std::vector<double>& v) {
        return std::accumulate(v.begin(), v.end(), 0.0) / v.size();
    };
    auto range = [](const std::vector<double>& v) {
        const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
        return *hi - *lo;
    };
    ClaimCheck c{better, worse, text};
    c.mean_better = mean(better_ppl);
    c.mean_worse = mean(worse_ppl);
    c.margin = c.mean_worse - c.mean_better;
    c.spread = std::max(range(better_ppl), range(worse_ppl));
    c.seeds = std::min(better_ppl.size(), worse_ppl.size());
    c.verdict = c.margin > c.spread    ? Verdict::holds
                : -c.margin > c.spread ? Verdict::does_not_hold
                                       : Verdict::tie;
    return c;
}

std::vector<ClaimCheck> claim_checks(const ModelResults& m) {
    std::vector<ClaimCheck> checks;
    for (const auto& [better, worse] : claimed_orderings()) {
        const ExperimentResult* a = find_result(m.main, better);
        const ExperimentResult* b = find_result(m.main, worse);
        if (!a || !b) continue;
        for (const char* text : {"test", "test-ood", "valid"}) {
            const std::vector<double> pa = seed_ppls(*a, text), pb = seed_ppls(*b, text);
            if (!pa.empty() && !pb.empty()) checks.push_back(check_claim(better, pa, worse, pb, text));
        }
    }
    return checks;
}

std::string true_bits_cell(const ExperimentResult& r) {
    if (r.method == "fp") return "16 (bf16 stored)";
    if (r.stored_bits < 0) return fmt::format("{:.3f} analytic", r.storage_bits);
    if (std::fabs(r.stored_bits - r.storage_bits) > 1e-9)
        return fmt::format("{:.3f} stored (counted {:.3f})", r.stored_bits, r.storage_bits);
    return fmt::format("{:.3f} stored", r.stored_bits);
}

nlohmann::json model_results_to_json(const ModelResults& m) {
    nlohmann::json main = nlohmann::json::array(), ablations = nlohmann::json::array();
    for (const ExperimentResult& r : m.main) main.push_back(r.to_json());
    for (const ExperimentResult& r : m.ablations) ablations.push_back(r.to_json());
    return {{"model", m.model_name},
            {"model_dir", m.model_dir},
            {"model_info", m.model_info},
            {"calib", m.settings.calib_path},
            {"calib_windows", m.settings.calib_windows},
            {"calib_seq", m.settings.calib_seq},
            {"seed", m.settings.seed},
            {"seeds", m.settings.seeds},
            {"eval_ctx", m.settings.eval_ctx},
            {"max_eval_windows", m.settings.max_eval_windows},
            {"kl_windows", m.settings.kl_windows},
            {"zeroshot_tasks", m.settings.zeroshot_tasks},
            {"zeroshot_items", m.settings.zeroshot_items},
            {"wall_seconds", m.wall_seconds},
            {"main", main},
            {"ablations", ablations}};
}

ModelResults model_results_from_json(const nlohmann::json& j) {
    ModelResults m;
    m.model_name = j.at("model").get<std::string>();
    m.model_dir = j.at("model_dir").get<std::string>();
    m.model_info = j.at("model_info");
    m.settings.model_dir = m.model_dir;
    m.settings.calib_path = j.at("calib").get<std::string>();
    m.settings.calib_windows = j.at("calib_windows").get<int64_t>();
    m.settings.calib_seq = j.at("calib_seq").get<int64_t>();
    m.settings.seed = j.value("seed", uint64_t{0});
    m.settings.seeds = j.value("seeds", 1);
    m.settings.eval_ctx = j.at("eval_ctx").get<int64_t>();
    m.settings.max_eval_windows = j.at("max_eval_windows").get<int64_t>();
    m.settings.kl_windows = j.at("kl_windows").get<int64_t>();
    m.settings.zeroshot_tasks = j.value("zeroshot_tasks", std::vector<std::string>{});
    m.settings.zeroshot_items = j.value("zeroshot_items", int64_t{0});
    m.wall_seconds = j.at("wall_seconds").get<double>();
    for (const auto& r : j.at("main")) m.main.push_back(ExperimentResult::from_json(r));
    for (const auto& r : j.at("ablations")) m.ablations.push_back(ExperimentResult::from_json(r));
    return m;
}

void write_results_json(const std::string& path, const std::vector<ModelResults>& models) {
    nlohmann::json out = nlohmann::json::array();
    for (const ModelResults& m : models) out.push_back(model_results_to_json(m));
    std::ofstream file(path);
    PBS2P_CHECK(file.good(), "{}: cannot write", path);
    file << out.dump(1) << "\n";
}

void write_results_csv(const std::string& path, const std::vector<ModelResults>& models) {
    std::ofstream file(path);
    PBS2P_CHECK(file.good(), "{}: cannot write", path);
    file << "model,table,label,method,nominal_bits,storage_bits,ppl_test,ppl_test_ood,ppl_valid,mean_kl,top1_"
            "agreement,"
            "compress_seconds,peak_rss_bytes\n";
    for (const ModelResults& m : models)
        for (const auto* list : {&m.main, &m.ablations})
            for (const ExperimentResult& r : *list)
                file << fmt::format("{},{},\"{}\",{},{:.4f},{:.4f},{:.6g},{:.6g},{:.6g},{:.6g},{:.6f},{:.3f},{}\n",
                                    m.model_name, r.table, r.label, r.method, r.nominal_bits, r.storage_bits,
                                    ppl_of(r, "test"), ppl_of(r, "test-ood"), ppl_of(r, "valid"), r.mean_kl,
                                    r.top1_agreement, r.compress_seconds, r.peak_rss_bytes);
}

std::vector<std::string> draw_plots(const std::string& plot_dir, const std::vector<ModelResults>& models) {
    std::vector<std::string> drawn;
    if (!gnuplot_available()) return drawn;
    fs::create_directories(plot_dir);
    for (const ModelResults& m : models) {
        for (const std::string& name : {plot_ppl_vs_bits(plot_dir, m), plot_cfs(plot_dir, m), plot_layer_errors(plot_dir, m)})
            if (!name.empty()) drawn.push_back(name);
    }
    return drawn;
}

std::string results_markdown(const std::vector<ModelResults>& models, const std::vector<std::string>& plots,
                             const std::string& plot_prefix, const std::string& command_line) {
    std::string md = "# Results\n\n";
    md += "Generated by `" + command_line + "`; every number below is one that command printed.\n\n";
    md +=
        "Perplexity uses the gptq protocol (non-overlapping windows, every predicted token scored) at the "
        "context "
        "given per model. KL divergence and top-1 agreement compare each compressed model's next-token "
        "distribution with the FP model's on the first windows of the test split. *W-bits (nominal)* follows "
        "the "
        "paper's convention; *true bits* counts everything the structured form of the compressed layers "
        "holds (signs, N:M pattern, scales, salient bitmaps): **stored** where the packed form was built and "
        "its "
        "bytes measured (they equal the count), **analytic** where the form is counted but no packed form of "
        "it "
        "exists. Every method uses the same compensation (the exact whole-block error) unless a row says "
        "otherwise. The `paper` columns are the PBS²P paper's own WikiText-2 numbers on "
        "LLaMA/OPT models, shown for context only: different models, text and context length.\n\n";
    auto plots_for = [&](const std::string& model) {
        std::string out;
        for (const std::string& p : plots)
            if (p.find("_" + slug(model) + ".") != std::string::npos) out += fmt::format("![{}]({}/{})\n\n", p, plot_prefix, p);
        return out;
    };
    for (const ModelResults& m : models) {
        md += fmt::format("## {}\n\n", m.model_name);
        md += fmt::format(
            "Model `{}` ({}), calibration `{}`: {} windows of {} tokens, sampler seed {} (the rows the "
            "claims compare: seeds {} to {}); evaluation context {}{}; run took {:.1f} min.\n\n",
            m.model_dir, m.model_info.value("summary", std::string()), m.settings.calib_path,
            m.settings.calib_windows, m.settings.calib_seq, m.settings.seed, m.settings.seed,
            m.settings.seed + std::max(1, m.settings.seeds) - 1, m.settings.eval_ctx,
            m.settings.max_eval_windows > 0
                ? fmt::format(", at most {} windows per text", m.settings.max_eval_windows)
                : "",
            m.wall_seconds / 60.0);
        md += "### Main table (the paper's Table 1 layout)\n\n" + main_table(m) + "\n";
        if (const std::string z = zeroshot_table(m); !z.empty())
            md += "### Zero-shot accuracy of the main-table runs\n\n" + z + "\n";
        md += "### The paper's orderings, checked on this model\n\n" + claim_rule() + claim_table(m) + "\n";
        if (!m.ablations.empty())
            md += "### Ablations (validation split; defaults are chosen here, never on test)\n\n" + ablation_table(m) + "\n";
        md += plots_for(m.model_name);
    }
    return md;
}

}  // namespace pbs2p
