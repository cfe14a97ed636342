// How the CLI opens a model: a Hugging Face directory (fp32 engine) or a packed sub-1-bit file
// (model.packed.safetensors, run directly by the packed kernels without expanding weights).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "model/model.h"

namespace pbs2p::tools {

// True when `path` is a packed model file, or a directory that holds one and no model.safetensors.
bool is_packed_model(const std::string& path);
// Loads either form; `kernel` picks the packed kernel ("" = fastest in this build).
Model load_model_for_cli(const std::string& path, const std::string& kernel = "");
// Adds --kernel (packed kernel: reference | avx2_f32 | avx2_q8_lowbit | avx2_q8 | avx512_q8; default the
// fastest) to a command.
void add_kernel_option(CLI::App& app, std::string& kernel);
// Directory holding the tokenizer and config for `path` (the packed file's directory for a packed file).
std::string model_directory(const std::string& path);

}  // namespace pbs2p::tools
