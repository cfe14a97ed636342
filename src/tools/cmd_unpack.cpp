// `pbs2p unpack PACKED -o OUT_DIR`: packed model back to layouts.safetensors (+ dequantized weights).
#include <fmt/format.h>

#include "packed/packed_model_dir.h"
#include "tools/command.h"

namespace pbs2p::tools {
namespace {

CommandRegistrar registrar{{"unpack", "Unpack a packed model into layouts.safetensors (and fp32 weights)",
                            [](CLI::App& app) {
                                struct Options {
                                    CommonOptions common;
                                    std::string in_path, out_dir;
                                    bool dequantize = false;
                                };
                                auto opt = std::make_shared<Options>();
                                app.add_option("PACKED", opt->in_path,
                                               "Packed model directory or model.packed.safetensors")
                                    ->required();
                                app.add_option("-o,--output", opt->out_dir, "Output directory")->required();
                                app.add_flag("--dequantize", opt->dequantize,
                                             "Also write every packed layer as an fp32 <layer>.weight");
                                add_common_options(app, opt->common);
                                return std::function<int()>([opt] {
                                    apply_common_options(opt->common);
                                    unpack_model_dir(opt->in_path, opt->out_dir, opt->dequantize);
                                    if (!opt->common.json) fmt::print("unpacked to {}\n", opt->out_dir);
                                    return 0;
                                });
                            }}};

}  // namespace
}  // namespace pbs2p::tools
