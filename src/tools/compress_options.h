// Command-line options shared by the commands that compress (compress, experiment): the method, its
// options, calibration and the driver settings.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "compress/driver.h"

namespace pbs2p::tools {

struct CompressCliOptions {
    DriverOptions driver;
    std::string nm = "4:8";  // N:M, N = kept
    std::string calib_path;
    int64_t calib_windows = 128;
    int64_t calib_seq = 0;  // 0 = min(2048, model context)
    uint64_t seed = 0;
    bool no_coarse = false;
    bool no_compensation = false;
    bool no_spbo = false;
    bool no_cgb = false;
    bool no_hessian_alpha = false;
    bool ternary = false;      // --ternary: tern13 with one alpha per 256 columns (TQ1_0/TQ2_0 shape)
    std::string recipe;        // TYPE=CODE@SG,... (compress/allocation.h)
    double bits_budget = 0.0;  // > 0: choose the recipe under this mean bits per weight
    std::string ladder = kDefaultLadder;
    std::string priority = kDefaultPriority;
    // default: pbs2p's best setting chosen on valid (docs/FINDINGS.md) unless the code is given explicitly;
    // paper: the paper's PBS2P (N:M code, mu +- alpha) exactly as reproduced in docs/RESULTS.md.
    std::string preset = "default";
    // --nm, --code, --scale-group, --recipe, --bits-budget, --backbone, --ternary: any of them given = the
    // code is chosen explicitly and the default preset's budget does not apply.
    std::vector<CLI::Option*> code_options;
    CLI::Option* alpha_passes_option = nullptr;
};

// llama.cpp's ternary types hold one fp16 scale per 256 weights of a row.
inline constexpr int kTernaryScaleGroup = 256;

// Adds the method / calibration / driver options to `app`.
void add_compress_options(CLI::App& app, CompressCliOptions& options, bool calib_required);
// Sets n_keep and m_group from "N:M"; throws pbs2p::Error naming --nm when malformed.
void parse_nm(const std::string& nm, CompressOptions& options);
// Resolves derived fields (N:M parsing, negated flags, the preset) and validates; throws pbs2p::Error.
// `use_preset` = false leaves the library defaults (the paper's PBS2P) in place whatever --preset says.
void finalize_compress_options(CompressCliOptions& options, bool use_preset = true);
// --recipe / --bits-budget: fills options.driver.code_by_type for the model's decoder linear layers and logs
// the chosen recipe with its exact bits per weight.
void resolve_code_allocation(CompressCliOptions& options, Model& model);

}  // namespace pbs2p::tools
