#include "core/interrupt.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace pbs2p {
namespace {

std::atomic<int> g_signal{0};

extern "C" void on_interrupt(int signal) {
    if (g_signal.exchange(signal) != 0) {
        constexpr char kMessage[] = "\npbs2p: interrupted again; exiting now\n";
        [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
        ::_exit(kInterruptedExitCode);
    }
}

}  // namespace

void install_interrupt_handlers() {
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

bool interrupt_requested() {
    return g_signal.load() != 0;
}

void throw_if_interrupted(const std::string& while_doing) {
    const int signal = g_signal.load();
    if (signal != 0)
        throw Interrupted(
            fmt::format("interrupted by {} {}", signal == SIGTERM ? "SIGTERM" : "SIGINT", while_doing));
}

}  // namespace pbs2p
