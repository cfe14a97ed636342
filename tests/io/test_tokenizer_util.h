// Shared helpers of the tokenizer tests: asset paths (filled by scripts/fetch_test_assets.sh) and file I/O.
#pragma once

#include <gtest/gtest.h>

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

// Skips the current test when an asset is missing.
#define PBS2P_REQUIRE_ASSET(path)                                                               \
    do {                                                                                        \
        if (!std::filesystem::exists(path))                                                     \
            GTEST_SKIP() << (path) << " missing: run scripts/fetch_test_assets.sh";             \
    } while (0)

}  // namespace pbs2p::test
