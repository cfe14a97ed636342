// `pbs2p pack IN_DIR -o OUT_DIR`: compressed model directory (layouts.safetensors + model tensors) to the
// packed format.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "packed/packed_model_dir.h"
#include "tools/command.h"

namespace pbs2p::tools {
namespace {

CommandRegistrar registrar{{"pack", "Pack a compressed model directory into the sub-1-bit packed format",
                            [](CLI::App& app) {
                                struct Options {
                                    CommonOptions common;
                                    std::string in_dir, out_dir;
                                };
                                auto opt = std::make_shared<Options>();
                                app.add_option("IN_DIR", opt->in_dir, "Directory with layouts.safetensors")
                                    ->required();
                                app.add_option("-o,--output", opt->out_dir, "Output directory")->required();
                                add_common_options(app, opt->common);
                                return std::function<int()>([opt] {
                                    apply_common_options(opt->common);
                                    const PackSummary s = pack_model_dir(opt->in_dir, opt->out_dir);
                                    if (opt->common.json) {
                                        fmt::print("{}\n", nlohmann::json{{"layers", s.layers},
                                                                          {"packed_weights", s.packed_weights},
                                                                          {"packed_bytes", s.packed_bytes},
                                                                          {"bits_per_weight", s.bits_per_weight()},
                                                                          {"other_tensors", s.other_tensors},
                                                                          {"file_bytes", s.file_bytes}}
                                                               .dump());
                                    } else {
                                        fmt::print("packed {} layers ({} weights) at {:.4f} true bits/weight; "
                                                   "{} other tensors; file {:.2f} MB\n",
                                                   s.layers, s.packed_weights, s.bits_per_weight(), s.other_tensors,
                                                   s.file_bytes / 1e6);
                                    }
                                    return 0;
                                });
                            }}};

}  // namespace
}  // namespace pbs2p::tools
