// `pbs2p tokenize` end to end on the committed tiny SentencePiece model.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "io/tokenizer.h"
#include "test_tokenizer_util.h"

namespace pbs2p {
namespace {

const std::string model = std::string(PBS2P_SOURCE_DIR) + "/tests/io/golden/tiny_spm.model";

// Runs the CLI; returns stdout and sets `status` to the exit code.
std::string run_cli(const std::string& args, int& status) {
    const std::string command = std::string(PBS2P_BINARY) + " tokenize " + args + " 2>/dev/null";
    FILE* pipe = popen(command.c_str(), "r");
    std::string out;
    std::array<char, 4096> buffer;
    for (size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) out.append(buffer.data(), n);
    status = WEXITSTATUS(pclose(pipe));
    return out;
}

TEST(TokenizeCli, EncodeDecodeJson) {
    const auto tokenizer = load_tokenizer(model);
    const auto ids = tokenizer->encode("Hello world", false);
    std::string expected;
    for (int32_t id : ids) expected += (expected.empty() ? "" : " ") + std::to_string(id);

    int status = -1;
    EXPECT_EQ(run_cli(model + " --prompt 'Hello world'", status), expected + "\n");
    EXPECT_EQ(status, 0);

    const auto json = nlohmann::json::parse(run_cli(model + " --prompt 'Hello world' --json", status));
    EXPECT_EQ(json.at("count").get<size_t>(), ids.size());
    EXPECT_EQ(json.at("ids").get<std::vector<int32_t>>(), ids);

    EXPECT_EQ(run_cli(model + " --decode --prompt '" + expected + "'", status), "Hello world\n");
    EXPECT_EQ(status, 0);

    const std::string path = (std::filesystem::temp_directory_path() / "pbs2p_test_cli_ids.txt").string();
    test::write_text_file(path, expected + "\n");
    EXPECT_EQ(run_cli(model + " --decode --text " + path, status), "Hello world\n");
    std::filesystem::remove(path);
}

TEST(TokenizeCli, ErrorsExitNonZero) {
    int status = 0;
    run_cli(model + " --decode --prompt 'abc'", status);
    EXPECT_NE(status, 0);
    run_cli(model, status);  // neither --text nor --prompt
    EXPECT_NE(status, 0);
    run_cli(model + " --text /nonexistent/file.txt", status);
    EXPECT_NE(status, 0);
}

}  // namespace
}  // namespace pbs2p
