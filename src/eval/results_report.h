// Writing experiment results: JSON and CSV of every run, markdown tables in the paper's layout (with the
// paper's own LLaMA/OPT numbers beside ours, labelled as theirs), and PNG plots drawn with gnuplot when
// it is installed (an optional dependency).
#pragma once

#include <string>
#include <vector>

#include "eval/experiment.h"

namespace pbs2p {

struct ModelResults {
    std::string model_name;   // e.g. "ref-llama"
    std::string model_dir;
    nlohmann::json model_info;  // architecture, parameters
    ExperimentSettings settings;
    std::vector<ExperimentResult> main;
    std::vector<ExperimentResult> ablations;  // evaluated on the validation text
    double wall_seconds = 0;
};

// One of the paper's orderings "better < worse" (perplexity) on one text, decided by the seed rule:
// with the mean perplexity of each run over its calibration seeds, margin = mean(worse) - mean(better) and
// spread = the larger of the two runs' ranges (max - min over the seeds), the claim *holds* when
// margin > spread, *does not hold* when -margin > spread, and is a *tie* otherwise. With one seed the spread
// is 0 and the rule is a plain comparison (reported as such).
enum class Verdict { holds, tie, does_not_hold };
struct ClaimCheck {
    std::string better, worse, text;
    double mean_better = 0, mean_worse = 0;
    double margin = 0, spread = 0;
    size_t seeds = 0;  // the smaller seed count of the two runs
    Verdict verdict = Verdict::tie;
};
ClaimCheck check_claim(const std::string& better, const std::vector<double>& better_ppl,
                       const std::string& worse, const std::vector<double>& worse_ppl,
                       const std::string& text);
// Every claim the report checks whose two runs are present in m.main, on every text both were scored on.
std::vector<ClaimCheck> claim_checks(const ModelResults& m);
const char* verdict_name(Verdict v);
// The main-table cell of a run's true bits: "stored" when a packed form was built and measured (its size
// must equal the compressor's count), "analytic" when the bits are counted for a form that is not stored.
std::string true_bits_cell(const ExperimentResult& r);

nlohmann::json model_results_to_json(const ModelResults& m);
ModelResults model_results_from_json(const nlohmann::json& j);
void write_results_json(const std::string& path, const std::vector<ModelResults>& models);
void write_results_csv(const std::string& path, const std::vector<ModelResults>& models);

// Draws the plots into `plot_dir` (PNG); returns the file names drawn (empty when gnuplot is missing).
std::vector<std::string> draw_plots(const std::string& plot_dir, const std::vector<ModelResults>& models);

// The markdown report; `plot_prefix` is the path of the plot directory relative to the markdown file.
std::string results_markdown(const std::vector<ModelResults>& models, const std::vector<std::string>& plots,
                             const std::string& plot_prefix, const std::string& command_line);

}  // namespace pbs2p
