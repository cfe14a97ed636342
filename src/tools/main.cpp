// pbs2p command-line entry point: dispatches to the registered subcommands.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "core/threads.h"
#include "io/unicode.h"
#include "tools/command.h"

namespace pbs2p::tools {

std::vector<Command>& command_table() {
    static std::vector<Command> table;
    return table;
}

void add_common_options(CLI::App& app, CommonOptions& options) {
    app.add_flag("--json", options.json, "Print machine-readable JSON on stdout (disables the progress bar)");
    app.add_option("-t,--threads", options.threads, "Threads for OpenMP and BLAS (0 = all cores)")
        ->capture_default_str();
}

void apply_common_options(const CommonOptions& options) {
    set_num_threads(options.threads);
    if (options.json) Progress::set_enabled(false);
}

}  // namespace pbs2p::tools

int main(int argc, char** argv) {
    using namespace pbs2p::tools;
    // A write past `ulimit -f` then fails with EFBIG and a one-line error instead of killing the process.
    std::signal(SIGXFSZ, SIG_IGN);
    CLI::App app{
        "pbs2p: compress LLMs to sub-1-bit weights (binarization + N:M pruning) and run them fast on CPUs"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "pbs2p 0.1.0");
    auto& table = command_table();
    std::sort(table.begin(), table.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
    std::function<int()> action;
    for (auto& command : table) {
        CLI::App* sub = app.add_subcommand(command.name, command.summary);
        auto run = std::make_shared<std::function<int()>>(command.setup(*sub));
        sub->callback([run, &action] { action = *run; });
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        return action ? action() : 0;
    } catch (const pbs2p::Interrupted& e) {
        std::fprintf(stderr, "\npbs2p: %s\n", e.what());
        return pbs2p::kInterruptedExitCode;
    } catch (const pbs2p::Error& e) {
        std::fprintf(stderr, "pbs2p: error: %s\n", pbs2p::printable_utf8(e.what()).c_str());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pbs2p: internal error: %s\n", pbs2p::printable_utf8(e.what()).c_str());
        return 2;
    }
}
