// Model-level benchmark library and `pbs2p bench`: statistics, extrapolation, synthetic models in every form
// (fp32, bf16, packed) and the CLI's JSON. Nothing here asserts a speed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "eval/bench.h"

namespace pbs2p {
namespace {

TEST(Bench, StatIsTokensPerSecondMeanAndSampleStddev) {
    const BenchStat s = make_stat({1.0, 2.0, 4.0}, 8);
    ASSERT_EQ(s.tokens_per_s.size(), 3u);
    EXPECT_DOUBLE_EQ(s.tokens_per_s[1], 4.0);
    EXPECT_DOUBLE_EQ(s.mean, (8.0 + 4.0 + 2.0) / 3.0);
    EXPECT_NEAR(
        s.stddev,
        std::sqrt(((8 - s.mean) * (8 - s.mean) + (4 - s.mean) * (4 - s.mean) + (2 - s.mean) * (2 - s.mean)) /
                  2.0),
        1e-12);
    EXPECT_DOUBLE_EQ(s.seconds, 7.0 / 3.0);
    EXPECT_FALSE(make_stat({}, 8).measured());
}

TEST(Bench, ExtrapolatesFromHeadAndPerBlockTime) {
    // 4 blocks take 1.0 s per run, the head alone 0.2 s: 0.2 s per block, 32 blocks = 0.2 + 6.4 s.
    const Extrapolated e = extrapolate_blocks(make_stat({1.0}, 10), 4, make_stat({0.2}, 10), 10, 32);
    EXPECT_NEAR(e.block_seconds, 0.2, 1e-12);
    EXPECT_NEAR(e.tokens_per_s, 10.0 / 6.6, 1e-12);
    EXPECT_EQ(extrapolate_blocks(BenchStat{}, 4, make_stat({0.2}, 10), 10, 32).tokens_per_s, 0.0);
    // From CPU time: 4 blocks 0.5 s of CPU, the head 0.1 s.
    const BenchStat measured = make_stat({1.0, 3.0}, 10, {0.4, 0.6}), head = make_stat({0.2}, 10, {0.1});
    EXPECT_DOUBLE_EQ(measured.cpu_seconds, 0.5);
    EXPECT_DOUBLE_EQ(measured.cpu_tokens_per_s(10), 20.0);
    const Extrapolated c = extrapolate_blocks(measured, 4, head, 10, 32, true);
    EXPECT_NEAR(c.block_seconds, 0.1, 1e-12);
    EXPECT_NEAR(c.tokens_per_s, 10.0 / 3.3, 1e-12);
}

TEST(Bench, CompareFormsGivesRatiosAgainstFp32AndBf16) {
    BenchResult head, fp32, packed;
    head.decode = make_stat({0.1}, 1);
    fp32.weights = "fp32", fp32.blocks = 2, fp32.gen_tokens = 1,
    fp32.decode = make_stat({2.1}, 1);  // 1 s/block
    packed.weights = "packed 4:8", packed.blocks = 4, packed.gen_tokens = 1,
    packed.decode = make_stat({0.5}, 1);
    const auto rows = compare_forms({fp32, packed}, head, 8);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_NEAR(rows[1].decode.block_seconds, 0.1, 1e-12);
    EXPECT_NEAR(rows[1].decode_block_vs_fp32, 10.0, 1e-9);
    EXPECT_NEAR(rows[1].decode_vs_fp32, (0.1 + 8 * 1.0) / (0.1 + 8 * 0.1), 1e-9);
    EXPECT_EQ(rows[1].decode_vs_bf16, 0.0);  // no bf16 form measured
    EXPECT_NEAR(rows[0].decode_vs_fp32, 1.0, 1e-12);
}

TEST(Bench, SyntheticFormsAgreeOnTheSameWeights) {
    EXPECT_THROW(synthetic_config("13b-ish"), Error);
    SyntheticModelSpec spec;
    spec.shape = "tiny";
    const Model fp32 = make_synthetic_model(spec);
    spec.weights = SyntheticWeights::bf16;
    const Model bf16 = make_synthetic_model(spec);
    ASSERT_EQ(fp32.num_blocks(), synthetic_config("tiny").num_layers);
    EXPECT_LT(bf16.weight_bytes(), fp32.weight_bytes());
    const std::vector<int32_t> tokens{1, 5, 9, 200};
    const Matrix a = fp32.forward(tokens), b = bf16.forward(tokens);
    ASSERT_EQ(a.size(), b.size());
    double max_diff = 0, max_abs = 0;
    for (int64_t i = 0; i < a.size(); ++i) {
        ASSERT_TRUE(std::isfinite(b.data[static_cast<size_t>(i)]));
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(a.data[static_cast<size_t>(i)] -
                                                                    b.data[static_cast<size_t>(i)])));
        max_abs = std::max(max_abs, static_cast<double>(std::fabs(a.data[static_cast<size_t>(i)])));
    }
    EXPECT_GT(max_diff, 0.0);             // bf16 rounding changes something
    EXPECT_LT(max_diff, 0.05 * max_abs);  // but not much

    // Packed: the reference kernel and the fastest exact-activation kernel give the same logits.
    spec.weights = SyntheticWeights::packed;
    spec.n_keep = 5;
    spec.kernel = "reference";
    const Matrix r = make_synthetic_model(spec).forward(tokens);
    spec.kernel = "avx2_f32";
    bool have_avx2 = true;
    try {
        (void)make_synthetic_model(spec);
    } catch (const Error&) {
        have_avx2 = false;
    }
    if (have_avx2) {
        const Matrix f = make_synthetic_model(spec).forward(tokens);
        for (int64_t i = 0; i < r.size(); ++i)
            ASSERT_NEAR(f.data[static_cast<size_t>(i)], r.data[static_cast<size_t>(i)],
                        1e-3 * (1.0 + std::fabs(r.data[static_cast<size_t>(i)])));
    }
}

TEST(Bench, BenchModelMeasuresBothTests) {
    SyntheticModelSpec spec;
    spec.shape = "tiny";
    spec.weights = SyntheticWeights::packed;
    const Model model = make_synthetic_model(spec);
    BenchOptions o;
    o.prompt_tokens = 5;
    o.gen_tokens = 3;
    o.repetitions = 2;
    const BenchResult r = bench_model(model, o);
    ASSERT_EQ(r.prefill.tokens_per_s.size(), 2u);
    ASSERT_EQ(r.decode.tokens_per_s.size(), 2u);
    EXPECT_GT(r.prefill.mean, 0.0);
    EXPECT_GT(r.decode.mean, 0.0);
    EXPECT_GT(r.weight_bytes, 0);
    o.repetitions = 0;
    EXPECT_THROW(bench_model(model, o), Error);
}

std::string run_cli(const std::string& args, int& status) {
    const std::string command = std::string(PBS2P_BINARY) + " " + args + " 2>/dev/null";
    FILE* pipe = popen(command.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    status = pclose(pipe);
    return out;
}

TEST(Bench, CliSyntheticJsonHasEveryFormAndRatios) {
    int status = 0;
    const std::string out =
        run_cli("bench --synthetic tiny --forms fp32,bf16,4:8 -p 4 -n 2 -r 1 -t 1 --json", status);
    ASSERT_EQ(status, 0) << out;
    const nlohmann::json j = nlohmann::json::parse(out);
    ASSERT_EQ(j["results"].size(), 4u);  // head only + 3 forms
    EXPECT_EQ(j["results"][0]["weights"], "head only");
    EXPECT_EQ(j["results"][1]["weights"], "fp32");
    EXPECT_EQ(j["results"][1]["prefill"]["tokens"], 4);
    EXPECT_EQ(j["results"][1]["decode"]["samples"].size(), 1u);
    ASSERT_EQ(j["comparison"]["forms"].size(), 3u);
    EXPECT_EQ(j["comparison"]["target_blocks"], 2);
    EXPECT_DOUBLE_EQ(j["comparison"]["forms"][0]["decode_vs_fp32"].get<double>(), 1.0);
    EXPECT_GT(j["comparison"]["forms"][2]["decode_vs_bf16"].get<double>(), 0.0);

    run_cli("bench -p 4", status);  // neither a model nor --synthetic
    EXPECT_NE(status, 0);
    run_cli("bench --synthetic tiny --forms 3:4 -p 1 -n 0 -r 1", status);
    EXPECT_NE(status, 0);
}

// --profile: per-stage times of one more decode run; with one thread the calling thread's stage CPU times
// add up to the process CPU time of that run.
TEST(Bench, CliProfileAccountsForTheDecodeStep) {
    int status = 0;
    const std::string out = run_cli(
        "bench --synthetic tiny --forms 4:8 -p 0 -n 8 -r 1 -t 1 --profile --head-type q8 --embedding-type q4 "
        "--json",
        status);
    ASSERT_EQ(status, 0) << out;
    const nlohmann::json j = nlohmann::json::parse(out);
    ASSERT_EQ(j["results"].size(), 2u);
    for (const auto& r : j["results"]) {
        const auto& p = r.at("decode_profile_ms_per_token");
        EXPECT_EQ(p["tokens"], 8);
        EXPECT_GT(p["thread_cpu"]["head"].get<double>(), 0.0);
        EXPECT_NEAR(p["thread_cpu_sum"].get<double>(), p["process_cpu_measured"].get<double>(),
                    0.05 * p["process_cpu_measured"].get<double>() + 1e-3);
        EXPECT_NEAR(p["wall_sum"].get<double>(), p["wall_measured"].get<double>(),
                    0.05 * p["wall_measured"].get<double>() + 1e-3);
    }
    EXPECT_GT(j["results"][1]["decode_profile_ms_per_token"]["thread_cpu"]["ffn"].get<double>(), 0.0);
    run_cli("bench --synthetic tiny --forms 4:8 -p 0 -n 0 -r 1 --profile", status);  // nothing to profile
    EXPECT_NE(status, 0);
    run_cli("bench --synthetic tiny --forms 4:8 -p 0 -n 2 -r 1 --head-type q5", status);
    EXPECT_NE(status, 0);
}

}  // namespace
}  // namespace pbs2p
