// `pbs2p export MODEL --format gguf --type f32|f16|tq1_0|tq2_0 -o FILE.gguf`: a Hugging Face or compressed
// model directory as a GGUF file for llama.cpp (see docs/FORMAT.md, "GGUF export"); with
// `--synthetic SHAPE [--blocks B]` instead of MODEL, a random-weight model of that shape (for speed
// comparisons with llama.cpp, scripts/peers/bench_side_by_side).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/bench.h"
#include "packed/gguf_export.h"
#include "tools/command.h"

namespace pbs2p::tools {
namespace {

CommandRegistrar registrar{
    {"export", "Export a model directory to another runtime's format (GGUF for llama.cpp)",
     [](CLI::App& app) {
         struct Options {
             CommonOptions common;
             std::string model, output, format = "gguf", type = "f16", synthetic;
             int64_t blocks = -1;
             uint64_t seed = 1;
         };
         auto opt = std::make_shared<Options>();
         app.description(
             "Export a Hugging Face or compressed model directory (config.json, model.safetensors, "
             "SentencePiece "
             "tokenizer.model) as a GGUF file that llama.cpp loads. LLaMA, Mistral and Qwen2 architectures.\n"
             "  f32, f16      every weight matrix in that type (norms and biases f32)\n"
             "  tq1_0, tq2_0  decoder linear layers in llama.cpp's ternary types (1.6875 / 2.0625 "
             "bits/weight);\n"
             "                every 256-column block of a row must be exactly {-d, 0, +d} with d exact in "
             "fp16,\n"
             "                otherwise the layer is refused; embeddings and LM head f16, norms f32\n"
             "With --synthetic 7b [--blocks B] instead of MODEL: random weights of that shape (ternary\n"
             "types: uniform trits, one fp16 scale per 256 weights), a placeholder vocabulary; for speed "
             "tests.");
         app.add_option("MODEL", opt->model, "Model directory (Hugging Face or `pbs2p compress` output)");
         app.add_option("--synthetic", opt->synthetic, "Write a random-weight model of this shape (7b)");
         app.add_option("--blocks", opt->blocks, "With --synthetic: blocks (default: all of the shape)")
             ->check(CLI::NonNegativeNumber);
         app.add_option("--seed", opt->seed, "With --synthetic: random seed")->capture_default_str();
         app.add_option("-o,--output", opt->output, "Output file (FILE.gguf), written atomically")
             ->required();
         app.add_option("--format", opt->format, "Output format (gguf)")->capture_default_str();
         app.add_option("--type", opt->type, "Weight type: " + gguf_export_type_names())
             ->capture_default_str();
         add_common_options(app, opt->common);
         return std::function<int()>([opt] {
             apply_common_options(opt->common);
             PBS2P_CHECK(opt->format == "gguf", "unknown export format '{}' (supported: gguf)", opt->format);
             const GgufExportType type = parse_gguf_export_type(opt->type);
             PBS2P_CHECK(opt->model.empty() != opt->synthetic.empty(),
                         "export: give either MODEL or --synthetic SHAPE");
             PBS2P_CHECK(opt->blocks < 0 || !opt->synthetic.empty(), "export: --blocks needs --synthetic");
             GgufExportSummary s;
             if (opt->synthetic.empty()) {
                 s = export_gguf(opt->model, opt->output, type);
             } else {
                 ModelConfig config = synthetic_config(opt->synthetic);
                 if (opt->blocks >= 0) config.num_layers = opt->blocks;
                 s = write_random_gguf(config, opt->output, type, opt->seed);
             }
             if (opt->common.json) {
                 nlohmann::json j = gguf_bit_count_json(s.bits);
                 j["output"] = s.path;
                 j["format"] = "gguf";
                 j["type"] = gguf_export_type_name(s.type);
                 j["architecture"] = s.architecture;
                 fmt::print("{}\n", j.dump(2));
             } else {
                 fmt::print(
                     "wrote {} ({}, {}): {} tensors, {:.2f} MB; decoder linear layers {:.4f} bits/weight, "
                     "whole file {:.4f} bits/weight\n",
                     s.path, s.architecture, gguf_export_type_name(s.type), s.bits.tensors,
                     s.bits.file_bytes / 1e6, s.bits.linear_bits_per_weight(), s.bits.file_bits_per_weight());
             }
             return 0;
         });
     }}};

}  // namespace
}  // namespace pbs2p::tools
