// `pbs2p export` end to end: GGUF files from golden models, the --json summary agreeing with
// `pbs2p info FILE.gguf --json`, and one-line errors for bad options and unsupported models.
#include <gtest/gtest.h>

#include "tools/cli_test_util.h"

namespace pbs2p {
namespace {

using namespace cli_test;

TEST(CliExport, GgufSummaryMatchesInfo) {
    TempDir tmp;
    const fs::path model = copy_golden("llama_gqa", tmp / "model");
    const fs::path out = tmp / "m.gguf";
    const CliRun r = run_cli(
        {"export", model.string(), "--format", "gguf", "--type", "f16", "-o", out.string(), "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["type"], "f16");
    EXPECT_EQ(j["architecture"], "llama");
    EXPECT_EQ(j["tensors"], 21);
    EXPECT_EQ(j["linear_bits_per_weight"], 16.0);
    EXPECT_EQ(j["file_bytes"].get<int64_t>(), int64_t(fs::file_size(out)));

    const CliRun info = run_cli({"info", out.string(), "--json"});
    ASSERT_EQ(info.exit_code, 0) << info.describe();
    const nlohmann::json k = nlohmann::json::parse(info.out);
    for (const char* key : {"tensors", "file_bytes", "weights", "linear_weights", "linear_bytes",
                            "linear_bits_per_weight", "file_bits_per_weight", "tensors_by_type"})
        EXPECT_EQ(k[key], j[key]) << key;

    const CliRun text =
        run_cli({"export", model.string(), "--type", "f32", "-o", (tmp / "f32.gguf").string()});
    ASSERT_EQ(text.exit_code, 0) << text.describe();
    EXPECT_TRUE(contains(text.out, "32.0000 bits/weight")) << text.out;
}

TEST(CliExport, BadInputIsOneLineError) {
    TempDir tmp;
    const fs::path model = copy_golden("llama_gqa", tmp / "model");
    const std::string out = (tmp / "x.gguf").string();
    expect_clean_error(run_cli({"export", model.string(), "--type", "q4_0", "-o", out}), {"q4_0", "tq1_0"});
    expect_clean_error(run_cli({"export", model.string(), "--format", "onnx", "-o", out}), {"onnx", "gguf"});
    expect_clean_error(run_cli({"export", model.string(), "--type", "tq1_0", "-o", out}),
                       {"blk.0.attn_q.weight", "tq1_0"});
    expect_clean_error(run_cli({"export", copy_golden("opt_bias", tmp / "opt").string(), "-o", out}),
                       {"OPTForCausalLM"});
    expect_clean_error(run_cli({"export", (tmp / "absent").string(), "-o", out}), {"absent"});
    // --synthetic: either it or MODEL, a known shape, --blocks only with it.
    expect_clean_error(run_cli({"export", model.string(), "--synthetic", "7b", "-o", out}),
                       {"MODEL", "--synthetic"});
    expect_clean_error(run_cli({"export", "--synthetic", "13b", "-o", out}), {"13b", "7b"});
    expect_clean_error(run_cli({"export", model.string(), "--blocks", "2", "-o", out}),
                       {"--blocks", "--synthetic"});
    EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace pbs2p
