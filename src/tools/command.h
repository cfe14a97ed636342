// Subcommand registry: each subcommand lives in its own file and registers itself with a static
// CommandRegistrar, so adding a command touches only its file.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace pbs2p::tools {

struct Command {
    std::string name;
    std::string summary;
    // Adds options to the subcommand and returns the action to run after parsing.
    std::function<std::function<int()>(CLI::App&)> setup;
};

std::vector<Command>& command_table();

struct CommandRegistrar {
    explicit CommandRegistrar(Command command) { command_table().push_back(std::move(command)); }
};

// Common options every command may share.
struct CommonOptions {
    bool json = false;    // machine-readable output on stdout, progress off
    int threads = 0;      // 0 = all cores
};
void add_common_options(CLI::App& app, CommonOptions& options);
// Applies threads/progress settings; call at the start of an action.
void apply_common_options(const CommonOptions& options);

}  // namespace pbs2p::tools
