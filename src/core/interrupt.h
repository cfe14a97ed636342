// Orderly stop on Ctrl-C (SIGINT) or SIGTERM for long jobs: the first signal only raises a flag that the job
// polls at safe points (between layers, before publishing outputs); a second one exits at once (code 130).
#pragma once

#include <string>

#include "core/error.h"

namespace pbs2p {

// Thrown by throw_if_interrupted; the CLI exits with kInterruptedExitCode.
struct Interrupted : Error {
    using Error::Error;
};
inline constexpr int kInterruptedExitCode = 130;  // 128 + SIGINT, as shells report it

// Installs the SIGINT/SIGTERM handlers (idempotent).
void install_interrupt_handlers();
bool interrupt_requested();
// Throws Interrupted("interrupted by <signal> <while>") once a signal has arrived.
void throw_if_interrupted(const std::string& while_doing);

}  // namespace pbs2p
