// Command-line options shared by the commands that compress (compress, experiment): the method, its
// options, calibration and the driver settings.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "compress/driver.h"

namespace pbs2p::tools {

struct CompressCliOptions {
    DriverOptions driver;
    std::string nm = "4:8";        // N:M, N = kept
    std::string calib_path;
    int64_t calib_windows = 128;
    int64_t calib_seq = 0;         // 0 = min(2048, model context)
    uint64_t seed = 0;
    bool no_coarse = false;
    bool no_compensation = false;
    bool no_spbo = false;
    bool no_cgb = false;
};

// Adds the method / calibration / driver options to `app`.
void add_compress_options(CLI::App& app, CompressCliOptions& options, bool calib_required);
// Sets n_keep and m_group from "N:M"; throws pbs2p::Error naming --nm when malformed.
void parse_nm(const std::string& nm, CompressOptions& options);
// Resolves derived fields (N:M parsing, negated flags) and validates; throws pbs2p::Error.
void finalize_compress_options(CompressCliOptions& options);

}  // namespace pbs2p::tools
