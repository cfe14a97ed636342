// Error handling: one exception type carrying a one-line message that names the file and the item.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace pbs2p {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
    throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace pbs2p

// Throws pbs2p::Error with a formatted message when `cond` is false.
#define PBS2P_CHECK(cond, ...)                 \
    do {                                       \
        if (!(cond)) ::pbs2p::fail(__VA_ARGS__); \
    } while (0)
