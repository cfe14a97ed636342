// What `pbs2p compress` runs, shared by the CLI and the Python module: calibration windows from the
// text, the calibration driver with its checkpoint in OUT/.checkpoint (a rerun resumes), the dequantized
// model, the packed file for binary N:M methods and report.json. The model is loaded lazily and worked on
// one block at a time: each block's weights are read just before it is compressed, its dequantized
// weights written (block by block, sharded when large) and its layouts kept in packed form once it is
// done, so memory grows with one block, not with depth.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "compress/distributed.h"
#include "tools/compress_options.h"
#include "tools/table_options.h"

namespace pbs2p::tools {

struct CompressJob {
    CompressCliOptions compress;  // already finalized (finalize_compress_options)
    std::string model_dir;
    std::string out_dir;
    // Dequantized weights written: f32 | f16 | bf16, or none (only the packed file; binary methods only).
    std::string dtype = "f32";
    int64_t max_shard_bytes = 5'000'000'000;  // largest file of the dequantized weights
    bool no_resume = false;     // ignore a checkpoint left by an interrupted run
    bool show_progress = true;  // a start line and a progress bar on stderr
    TableTypeOptions tables;    // precision of the packed file's embedding and LM head
    // The ranks of a distributed run (nullptr = this process alone); only the root writes OUT.
    Communicator* communicator = nullptr;
};

// The dequantized forms `dtype` accepts, with what each costs (for --help).
extern const char* const kDequantizedHelp;

// Called after each compressed layer: (layers done, layers total, short status of the layer just done).
using CompressJobProgress = std::function<void(int64_t done, int64_t total, const std::string& status)>;

// Runs the job and returns what it wrote to OUT/report.json. Throws CompressionInterrupted when the
// run stops on purpose (stop_after_blocks; the checkpoint is kept) and pbs2p::Error on bad input; an
// exception thrown by `progress` stops the run the same way, between two layers.
nlohmann::json run_compress_job(const CompressJob& job, const CompressJobProgress& progress = {});

// Directory of the job's checkpoint.
std::string checkpoint_directory(const CompressJob& job);

}  // namespace pbs2p::tools
