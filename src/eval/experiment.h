// The paper's experiments on one model: a list of runs (FP, baselines, PBS²P settings, ablations), each
// compressed by the same driver with the same calibration and evaluated the same way (perplexity under the
// gptq protocol on every evaluation text, KL divergence and top-1 agreement against the FP model, nominal
// and true bits per weight, wall time, peak memory).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compress/driver.h"

namespace pbs2p {

struct ExperimentRun {
    std::string label;        // e.g. "PBS2P 4:8"
    std::string table;        // "main" or the ablation it belongs to ("spbo", "coarse", ...)
    bool full_precision = false;
    DriverOptions options;    // ignored for the FP run
    int64_t calib_windows = 0;  // 0 = the experiment's setting
    bool compared = false;      // a row of the claim checks: run with every calibration seed
    double bits_budget = 0;     // > 0: the code per tensor type is allocated under this budget on the model
};

struct EvalText {
    std::string name;         // "test", "test-ood", "valid"
    std::string path;
    std::vector<int32_t> tokens;
};

struct ExperimentSettings {
    std::string model_dir;
    std::string calib_path;
    int64_t calib_windows = 128;
    int64_t calib_seq = 0;  // 0 = min(2048, model context)
    uint64_t seed = 0;      // calibration window sampler; compared runs also use seed+1 .. seed+seeds-1
    int seeds = 3;          // calibration seeds of the compared runs (their spread decides a verdict)
    int64_t eval_ctx = 0;   // 0 = min(2048, model context)
    int64_t max_eval_windows = 0;  // per text, 0 = all
    int64_t kl_windows = 16;       // windows of the first text used for KL / top-1
    // Zero-shot task files (eval/zeroshot.h) scored for the FP model and the first seed of every run;
    // empty = none. zeroshot_items = the first items of each file (0 = all).
    std::vector<std::string> zeroshot_tasks;
    int64_t zeroshot_items = 0;
};

struct ExperimentResult {
    std::string label;
    std::string table;
    std::string method;
    nlohmann::json options;
    std::map<std::string, double> ppl;                     // per evaluation text (calibration seed `seed`)
    std::map<std::string, std::vector<double>> ppl_seeds;  // compared runs: per text, one value per seed
    double mean_kl = 0;
    double top1_agreement = 1;
    double nominal_bits = 16;
    double storage_bits = 16;  // the compressor's count of the structured form (report.json)
    double stored_bits = -1;   // measured: bytes of the packed form built from the layouts; -1 = none
    double compress_seconds = 0;
    int64_t peak_rss_bytes = 0;
    // Per zero-shot task (file stem): zeroshot_result_json of its result.
    std::map<std::string, nlohmann::json> zeroshot;
    nlohmann::json report;        // the driver's report (per-layer errors, block importance, N per block)

    nlohmann::json to_json() const;
    static ExperimentResult from_json(const nlohmann::json& j);
};

// The main table of the paper (its Table 1 rows) for one model.
std::vector<ExperimentRun> main_table_runs(bool quick);
// The ablations of the paper's section 4.4, around PBS²P at `nm` (evaluated on the validation text).
std::vector<ExperimentRun> ablation_runs(int n_keep, int m_group, bool quick);

using ExperimentProgress = std::function<void(size_t done, size_t total, const ExperimentResult&)>;

// Runs every run on the model; texts are tokenized by the caller. Each run starts from the checkpoint.
std::vector<ExperimentResult> run_experiments(const ExperimentSettings& settings, const std::vector<ExperimentRun>& runs,
                                              const std::vector<EvalText>& texts,
                                              const ExperimentProgress& progress = {});

}  // namespace pbs2p
