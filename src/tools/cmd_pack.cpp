// `pbs2p pack IN_DIR -o OUT_DIR`: compressed model directory (layouts.safetensors + model tensors) to the
// packed format.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "packed/packed_model_dir.h"
#include "tools/command.h"
#include "tools/table_options.h"

namespace pbs2p::tools {
namespace {

CommandRegistrar registrar{{"pack", "Pack a compressed model directory into the sub-1-bit packed format",
                            [](CLI::App& app) {
                                struct Options {
                                    CommonOptions common;
                                    TableTypeOptions tables;
                                    std::string in_dir, out_dir;
                                };
                                auto opt = std::make_shared<Options>();
                                app.add_option("IN_DIR", opt->in_dir, "Directory with layouts.safetensors")
                                    ->required();
                                app.add_option("-o,--output", opt->out_dir, "Output directory")->required();
                                add_table_type_options(app, opt->tables);
                                add_common_options(app, opt->common);
                                return std::function<int()>([opt] {
                                    apply_common_options(opt->common);
                                    const PackSummary s =
                                        pack_model_dir(opt->in_dir, opt->out_dir, opt->tables.types());
                                    if (opt->common.json)
                                        fmt::print("{}\n", pack_summary_json(s).dump());
                                    else
                                        fmt::print("packed {}\n", pack_summary_line(s));
                                    return 0;
                                });
                            }}};

}  // namespace
}  // namespace pbs2p::tools
