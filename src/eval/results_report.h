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
