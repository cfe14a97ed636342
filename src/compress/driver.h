// The sequential model-level calibration driver (GPTQ/BiLLM/ARB-LLM lineage):
//   calibration windows -> embeddings -> for each block: accumulate H = 2XX^T/T for every distinct linear
//   input (one pass over the still-uncompressed block), compress the block's linear layers, re-run the
//   block with compressed weights to produce the next block's inputs.
// For pbs2p the CFS coarse stage runs first on the FP model and assigns each block its own N.
// Completed blocks are checkpointed so an interrupted run resumes with byte-identical results.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/allocation.h"
#include "compress/binary_layout.h"
#include "compress/calibration.h"
#include "compress/distributed.h"
#include "compress/layer_compressor.h"
#include "core/error.h"
#include "model/model.h"

namespace pbs2p {

struct DriverOptions {
    CompressOptions layer;  // the per-layer method and its options
    // Weight code and scale group by tensor type (compress/allocation.h); empty = `layer` for every layer.
    std::map<std::string, CodeChoice> code_by_type;
    bool propagate_fp = false;  // feed FP block outputs (not compressed ones) to the next block
    bool coarse_stage = true;   // CFS coarse allocation of N per block (pbs2p only)
    std::string importance =
        "recip";     // coarse-stage importance from cosine: recip (1/cos) | one_minus (1-cos)
    int n_low = -1;  // coarse-stage bounds on N per block; -1 = N-1 / N+1
    int n_high = -1;
    std::string checkpoint_dir;  // where completed blocks are kept for resuming ("" = none)
    std::string fingerprint;     // identifies model + calibration + options; a checkpoint must match it
    int stop_after_blocks = -1;  // simulate an interruption after this many blocks (-1 = run to the end)
    // The ranks the run is split over (calibration windows, layer solves); nullptr = this process alone.
    // The result does not depend on it. Only the root writes the checkpoint.
    Communicator* communicator = nullptr;
};

// for_each_layer_option's rows followed by the driver's own (Options is DriverOptions, const or not).
template <typename Options, typename Visit>
void for_each_driver_option(Options& o, Visit&& visit) {
    for_each_layer_option(o.layer, visit);
    visit("propagate_fp", o.propagate_fp);
    visit("coarse_stage", o.coarse_stage);
    visit("importance", o.importance);
    visit("n_low", o.n_low);
    visit("n_high", o.n_high);
}

// Thrown when a run stops early on purpose (stop_after_blocks); the checkpoint is complete up to there.
struct CompressionInterrupted : Error {
    using Error::Error;
};

struct LayerRecord {
    std::string name;
    int block = 0;
    int64_t rows = 0;
    int64_t cols = 0;
    LayerStats stats;
};

// Phases of one block's compression, in the order they run: the coarse stage's forward pass over the FP
// model (pbs2p's CFS, a pass of its own before the others), reading the block's weights, the calibration
// forward (without the Hessian products), the Hessian products, the per-layer solves, the forward with the
// compressed block (the next block's inputs), writing (checkpoint and DriverHooks::block_done). In a run
// over several ranks the forward is this rank's share of the windows, the hessian phase includes summing
// the Hessians over the ranks, and the solve phase the broadcast of the layers solved on other ranks.
enum class BlockPhase { coarse_stage, load, forward, hessian, solve, forward_compressed, write };
inline constexpr int kBlockPhases = 7;
const char* block_phase_name(BlockPhase phase);  // "coarse_stage", "load", ... as in report.json

// Seconds of each phase of one block in the run that compressed it.
struct BlockTimes {
    std::array<double, kBlockPhases> seconds{};
    double& operator[](BlockPhase phase) { return seconds[static_cast<size_t>(phase)]; }
    double operator[](BlockPhase phase) const { return seconds[static_cast<size_t>(phase)]; }
    double total() const;
};

// One rank's share of a distributed run.
struct RankUsage {
    int64_t bytes_sent = 0;
    int64_t bytes_received = 0;
    int64_t peak_rss_bytes = 0;
    // CPU time of its computing phases (forward, solve, propagate: no transfers, no waiting), which is
    // what its share of the work costs on cores of its own.
    double compute_cpu_seconds = 0;
};

struct CompressionReport {
    std::string method;
    std::vector<double> block_cosine;  // coarse stage: mean cos(block input, block output) on the FP model
    std::vector<double> block_importance;  // normalised to mean 1
    std::vector<int> block_keep;           // N per block
    std::vector<LayerRecord> layers;
    int64_t calibration_tokens = 0;
    double compress_seconds = 0;  // this run only (a resumed run counts its own part)
    int resumed_blocks = 0;
    int ranks = 1;
    // This run's wall time by phase on the root: coarse_stage, forward (block passes accumulating the
    // Hessians), reduce (summing them over ranks), solve, exchange (broadcast of the layers solved
    // elsewhere, waiting included), propagate (next block's inputs), checkpoint.
    std::map<std::string, double> phase_seconds;
    std::vector<int64_t> block_bytes_communicated;  // bytes sent by all ranks during each block (root only)
    std::vector<RankUsage> rank_usage;              // by rank (root only)
    std::vector<BlockTimes> block_times;            // per block (resumed blocks: as their run measured them)

    // Parameter-weighted averages over the compressed layers.
    double nominal_bits() const;
    double storage_bits() const;
    int64_t compressed_parameters() const;
    nlohmann::json to_json() const;
};

// Called after each layer: (layers done, layers total, record of the layer just done).
using DriverProgress = std::function<void(int, int, const LayerRecord&)>;

// Optional calls around each block, for callers that write outputs block by block and show progress.
struct DriverHooks {
    // A phase of `block` starts (solves also report every layer through DriverProgress).
    std::function<void(int block, BlockPhase phase)> phase;
    // A layer's solve starts (full layer name).
    std::function<void(int block, const std::string& layer)> layer_start;
    // `block` is final (compressed, or restored from the checkpoint) and checkpointed, its weights are
    // resident; `layouts` holds its binary layouts (keyed by layer name), which the hook may take. Runs in
    // the `write` phase, for every block in order, also on resumed runs.
    std::function<void(int block, std::map<std::string, BinaryLayout>& layouts)> block_done;
    // After each block with its phase times; `resumed`: restored from the checkpoint in this run.
    std::function<void(int block, const BlockTimes& times, bool resumed)> block_finished;
};

// Compresses every decoder linear layer of `model` in place. Binary methods also fill `layouts`
// (keyed by layer name) when it is given, with what hooks.block_done leaves. A lazily loaded model
// (Model::load_lazy) has one block resident at a time: each is materialized before its phases and
// released after block_done, so that its compressed weights live on only in the checkpoint and in what
// the hook wrote.
CompressionReport compress_model(Model& model, const CalibrationSet& calibration,
                                 const DriverOptions& options,
                                 std::map<std::string, BinaryLayout>* layouts = nullptr,
                                 const DriverProgress& progress = {}, const DriverHooks& hooks = {});

// The options of one layer: `layer` with the code and scale group of its tensor type applied.
CompressOptions layer_options_for(const DriverOptions& options, const std::string& layer_name);
// Name and shape of every decoder linear layer, in block and forward order (what a code allocation spans).
std::vector<LayerShape> decoder_layer_shapes(const Model& model);

// Every option that determines the result (for_each_driver_option and the recipe), for reports and
// checkpoint fingerprints.
nlohmann::json compress_options_to_json(const DriverOptions& options);

// Mean cosine similarity between each block's input and output hidden states, on the model as it is
// (the calibration windows split over the ranks of `communicator`; the result is the same on all; a lazily
// loaded model's blocks are materialized one at a time). `phase` (optional) is told of each block's
// coarse_stage phase, `seconds` (optional) receives each block's time.
std::vector<double> block_cosine_similarity(Model& model, const CalibrationSet& calibration,
                                            Communicator& communicator = single_process_communicator(),
                                            const std::function<void(int, BlockPhase)>& phase = {},
                                            std::vector<double>* seconds = nullptr);

}  // namespace pbs2p
