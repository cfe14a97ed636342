// Shared helpers of the tokenizer tests: asset paths (filled by scripts/fetch_test_assets.sh) and file I/O.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace pbs2p::test {

inline std::string assets_dir() {
    if (const char* env = std::getenv("PBS2P_ASSETS")) return env;
    return std::string(PBS2P_SOURCE_DIR) + "/.cache/assets";
}

inline std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void write_text_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

// A missing asset fails the current test (scripts/setup fetches them; CI runs setup first). Only with
// PBS2P_ALLOW_MISSING_ASSETS=1 in the environment (an offline machine) is the test skipped instead.
inline bool missing_assets_allowed() {
    const char* allow = std::getenv("PBS2P_ALLOW_MISSING_ASSETS");
    return allow != nullptr && std::string(allow) == "1";
}

#define PBS2P_REQUIRE_ASSET(path)                                                                         \
    do {                                                                                                  \
        if (!std::filesystem::exists(path)) {                                                             \
            if (::pbs2p::test::missing_assets_allowed())                                                  \
                GTEST_SKIP() << (path) << " missing (PBS2P_ALLOW_MISSING_ASSETS=1)";                      \
            FAIL() << (path) << " missing: run scripts/fetch_test_assets.sh (or scripts/setup)";          \
        }                                                                                                 \
    } while (0)

}  // namespace pbs2p::test
