// Minimal leveled logging to stderr (fmt-formatted).
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <utility>

namespace pbs2p {

enum class LogLevel { quiet = 0, info = 1, debug = 2 };

LogLevel log_level();
void set_log_level(LogLevel level);

template <typename... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
    if (log_level() >= LogLevel::info) fmt::print(stderr, "{}\n", fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void log_debug(fmt::format_string<Args...> format, Args&&... args) {
    if (log_level() >= LogLevel::debug) fmt::print(stderr, "{}\n", fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace pbs2p
