// `pbs2p version`: build information.
#include <fmt/format.h>

#include "tools/command.h"

namespace pbs2p::tools {
namespace {

CommandRegistrar registrar{{"version", "Print version and build configuration", [](CLI::App& app) {
                                return std::function<int()>([] {
                                    fmt::print("pbs2p 0.1.0 (C++20, OpenBLAS OpenMP, {})\n",
#if defined(__AVX2__)
                                               "AVX2"
#else
                                               "scalar"
#endif
                                    );
                                    return 0;
                                });
                            }}};

}  // namespace
}  // namespace pbs2p::tools
