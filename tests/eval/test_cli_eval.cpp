// The info / eval / generate commands end to end: success on a golden checkpoint, one-line errors and a
// non-zero exit status on bad input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "model/model_test_util.h"

namespace pbs2p {
namespace {

struct CliRun {
    int status = -1;
    std::string out;  // stdout and stderr together
};

CliRun run_cli(const std::string& args) {
    CliRun r;
    std::string command = std::string(PBS2P_BINARY) + " " + args + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return r;
    std::array<char, 4096> buffer;
    size_t n;
    while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.out.append(buffer.data(), n);
    int status = pclose(pipe);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

TEST(CliInfo, DescribesGoldenCheckpoint) {
    CliRun r = run_cli("info --json " + test::golden_dir("opt_proj"));
    ASSERT_EQ(r.status, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["architecture"], "OPTForCausalLM");
    EXPECT_EQ(j["parameters"], j["stored_parameters"]);
    EXPECT_EQ(j["tokenizer"], "none");
    EXPECT_EQ(j["dtypes"].begin().key(), "BF16");
}

TEST(CliInfo, UnsupportedArchitectureFailsWithOneLine) {
    test::ScratchDir dir("cli");
    std::ifstream in(test::golden_dir("llama_gqa") + "/config.json");
    auto config = nlohmann::json::parse(in);
    config["architectures"] = {"BloomForCausalLM"};
    std::ofstream(dir.file("config.json")) << config.dump();
    CliRun r = run_cli("info " + dir.str());
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("BloomForCausalLM"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("config.json"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
}

TEST(CliEval, MissingTextFileAndBadProtocol) {
    CliRun r = run_cli("eval " + test::golden_dir("llama_gqa") + " --text /nonexistent/corpus.txt");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("/nonexistent/corpus.txt"), std::string::npos) << r.out;
    r = run_cli("eval " + test::golden_dir("llama_gqa") + " --text x --protocol wikitext");
    EXPECT_NE(r.status, 0);
}

TEST(CliGenerate, NoTokenizerIsAnError) {
    CliRun r = run_cli("generate " + test::golden_dir("llama_gqa") + " --prompt hello");
    EXPECT_EQ(r.status, 1) << r.out;
    EXPECT_NE(r.out.find("pbs2p: error:"), std::string::npos) << r.out;
}

TEST(CliHelp, ExplainsEveryOption) {
    CliRun r = run_cli("eval --help");
    EXPECT_EQ(r.status, 0);
    for (const char* option : {"--text", "--ctx", "--protocol", "--max-windows", "--reference", "--json"})
        EXPECT_NE(r.out.find(option), std::string::npos) << option;
    r = run_cli("generate --help");
    for (const char* option : {"--prompt", "--max-tokens", "--temperature", "--top-k", "--seed"})
        EXPECT_NE(r.out.find(option), std::string::npos) << option;
}

}  // namespace
}  // namespace pbs2p
