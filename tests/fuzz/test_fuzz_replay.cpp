// Replays every committed fuzz input (fuzz/corpus/<target>/ seeds and fuzz/regressions/<target>/ crashes
// found and fixed) through the same target bodies the libFuzzer executables run. A regression input that
// crashes again, or throws anything but pbs2p::Error, fails the suite (under scripts/test --sanitize with the
// same sanitizer reports the fuzzers give).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz_targets.h"

namespace fs = std::filesystem;
using pbs2p::fuzz::FuzzTarget;

namespace pbs2p::fuzz {
// Test names and messages show the target's name rather than its bytes.
void PrintTo(const FuzzTarget& target, std::ostream* os) {
    *os << target.name;
}
}  // namespace pbs2p::fuzz

namespace {

const fs::path kFuzzDir = fs::path(PBS2P_SOURCE_DIR) / "fuzz";

std::vector<fs::path> inputs_under(const fs::path& dir) {
    std::vector<fs::path> files;
    if (fs::is_directory(dir))
        for (const auto& entry : fs::directory_iterator(dir))
            if (entry.is_regular_file() && entry.path().filename().string()[0] != '.')
                files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    return files;
}

// Runs every input of `folder` (corpus or regressions) for each target; returns how many ran.
size_t replay(const FuzzTarget& target, const char* folder) {
    size_t count = 0;
    for (const fs::path& file : inputs_under(kFuzzDir / folder / target.name)) {
        SCOPED_TRACE(file.string());
        std::ifstream in(file, std::ios::binary);
        const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                         std::istreambuf_iterator<char>());
        EXPECT_NO_THROW(target.run(bytes.data(), bytes.size()));
        ++count;
    }
    return count;
}

class FuzzReplay : public ::testing::TestWithParam<FuzzTarget> {};

TEST_P(FuzzReplay, SeedCorpusRunsCleanly) {
    EXPECT_GT(replay(GetParam(), "corpus"), 0u) << "no seeds committed for target " << GetParam().name;
}

TEST_P(FuzzReplay, RegressionInputsRunCleanly) {
    replay(GetParam(), "regressions");
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay,
                         ::testing::ValuesIn(pbs2p::fuzz::fuzz_targets().begin(),
                                             pbs2p::fuzz::fuzz_targets().end()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(FuzzReplay, EveryCorpusFolderNamesATarget) {
    for (const char* folder : {"corpus", "regressions"}) {
        if (!fs::is_directory(kFuzzDir / folder)) continue;
        for (const auto& entry : fs::directory_iterator(kFuzzDir / folder))
            EXPECT_NE(pbs2p::fuzz::find_fuzz_target(entry.path().filename().string()), nullptr)
                << folder << "/" << entry.path().filename().string() << " belongs to no fuzz target";
    }
}

}  // namespace
