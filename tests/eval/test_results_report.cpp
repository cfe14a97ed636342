// The report logic behind docs/RESULTS.md on hand-made results with known answers: the seed rule of the
// claim checks (holds / tie / does not hold), which claims are checked, and the stored / analytic label
// of the true bits.
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/results_report.h"

namespace pbs2p {
namespace {

ExperimentResult run_with_seeds(const std::string& label, const std::string& method,
                                const std::map<std::string, std::vector<double>>& ppl_seeds) {
    ExperimentResult r;
    r.label = label;
    r.table = "main";
    r.method = method;
    r.ppl_seeds = ppl_seeds;
    for (const auto& [text, values] : ppl_seeds) r.ppl[text] = values.front();
    return r;
}

TEST(ClaimCheck, MarginAgainstTheLargerSeedRange) {
    // margin 0.9 > spread 0.2
    ClaimCheck c = check_claim("A", {10.0, 10.2, 10.1}, "B", {11.0, 11.1, 10.9}, "test");
    EXPECT_EQ(c.verdict, Verdict::holds);
    EXPECT_NEAR(c.mean_better, 10.1, 1e-12);
    EXPECT_NEAR(c.mean_worse, 11.0, 1e-12);
    EXPECT_NEAR(c.margin, 0.9, 1e-12);
    EXPECT_NEAR(c.spread, 0.2, 1e-12);
    EXPECT_EQ(c.seeds, 3u);
    // The same means with a wider spread on one side: margin 0.9 < spread 1.0.
    EXPECT_EQ(check_claim("A", {9.6, 10.6, 10.1}, "B", {11.0, 11.1, 10.9}, "test").verdict, Verdict::tie);
    // Reversed beyond the spread.
    EXPECT_EQ(check_claim("A", {12.0, 12.1, 12.05}, "B", {11.0, 11.05, 11.1}, "test").verdict,
              Verdict::does_not_hold);
    // A margin exactly equal to the spread is not larger than it.
    EXPECT_EQ(check_claim("A", {10.0, 11.0}, "B", {11.5, 11.5}, "test").verdict, Verdict::tie);
    // One seed: spread 0, a plain comparison; equal values tie.
    EXPECT_EQ(check_claim("A", {10.0}, "B", {10.5}, "test").verdict, Verdict::holds);
    EXPECT_EQ(check_claim("A", {10.5}, "B", {10.0}, "test").verdict, Verdict::does_not_hold);
    EXPECT_EQ(check_claim("A", {10.0}, "B", {10.0}, "test").verdict, Verdict::tie);
    EXPECT_THROW(check_claim("A", {}, "B", {10.0}, "test"), Error);
}

ModelResults fixture() {
    ModelResults m;
    m.model_name = "fixture";
    m.model_info = {{"summary", "hand-made"}};
    m.main.push_back(run_with_seeds("FP", "fp", {{"test", {9.0}}}));
    m.main.push_back(run_with_seeds(
        "PBS2P 4:8", "pbs2p",
        {{"test", {10.0, 10.2, 10.1}}, {"test-ood", {12.0, 12.1, 12.05}}, {"valid", {10.0, 10.5, 9.8}}}));
    m.main.push_back(run_with_seeds(
        "STBLLM 4:8", "stbllm",
        {{"test", {11.0, 11.1, 10.9}}, {"test-ood", {11.0, 11.05, 11.1}}, {"valid", {10.3, 10.4, 10.2}}}));
    // BiLLM without a PBS2P 6:8 row: its claims are not checked.
    m.main.push_back(run_with_seeds("BiLLM", "billm", {{"test", {20.0, 20.0, 20.0}}}));
    return m;
}

TEST(ClaimCheck, ChecksEveryClaimWhoseRunsArePresent) {
    const std::vector<ClaimCheck> checks = claim_checks(fixture());
    ASSERT_EQ(checks.size(), 3u);
    for (const ClaimCheck& c : checks) {
        EXPECT_EQ(c.better, "PBS2P 4:8");
        EXPECT_EQ(c.worse, "STBLLM 4:8");
    }
    EXPECT_EQ(checks[0].text, "test");
    EXPECT_EQ(checks[0].verdict, Verdict::holds);
    EXPECT_EQ(checks[1].text, "test-ood");
    EXPECT_EQ(checks[1].verdict, Verdict::does_not_hold);
    EXPECT_EQ(checks[2].text, "valid");  // margin 0.2, spread 0.7
    EXPECT_EQ(checks[2].verdict, Verdict::tie);
}

TEST(ResultsMarkdown, ClaimRowsStateMeansMarginSpreadAndVerdict) {
    const std::string md = results_markdown({fixture()}, {}, "plots", "pbs2p experiment fixture");
    EXPECT_NE(md.find("| PBS2P 4:8 < STBLLM 4:8 | test | 10.10 vs 11.00 | +0.90 | 0.20 | 3 | holds |"),
              std::string::npos)
        << md;
    EXPECT_NE(
        md.find(
            "| PBS2P 4:8 < STBLLM 4:8 | test-ood | 12.05 vs 11.05 | -1.00 | 0.10 | 3 | **does not hold** |"),
        std::string::npos)
        << md;
    EXPECT_NE(md.find("| PBS2P 4:8 < STBLLM 4:8 | valid | 10.10 vs 10.30 | +0.20 | 0.70 | 3 | **tie** |"),
              std::string::npos)
        << md;
    EXPECT_EQ(md.find("< BiLLM"), std::string::npos);
    EXPECT_NE(md.find("margin is larger than the spread"), std::string::npos);  // the rule is stated
}

TEST(ResultsMarkdown, TrueBitsAreLabelledStoredOrAnalytic) {
    ExperimentResult r;
    r.method = "pbs2p";
    r.storage_bits = 1.5625;
    r.stored_bits = 1.5625;
    EXPECT_EQ(true_bits_cell(r), "1.562 stored");
    r.stored_bits = 1.5;  // a packed file that disagrees with the count shows both
    EXPECT_EQ(true_bits_cell(r), "1.500 stored (counted 1.562)");
    r.method = "stbllm";
    r.storage_bits = 3.539;
    r.stored_bits = -1;
    EXPECT_EQ(true_bits_cell(r), "3.539 analytic");
    r.method = "fp";
    EXPECT_EQ(true_bits_cell(r), "16 (bf16 stored)");

    ModelResults m = fixture();
    m.main[1].storage_bits = m.main[1].stored_bits = 1.5625;
    m.main[2].storage_bits = 3.539;
    m.main[1].nominal_bits = m.main[2].nominal_bits = 0.55;
    const std::string md = results_markdown({m}, {}, "plots", "pbs2p experiment fixture");
    EXPECT_NE(md.find("| PBS2P 4:8 | 128 | 0.55 (paper 0.55) | 1.562 stored |"), std::string::npos) << md;
    EXPECT_NE(md.find("| STBLLM 4:8 | 128 | 0.55 (paper 0.55) | 3.539 analytic |"), std::string::npos) << md;
}

TEST(ResultsMarkdown, ZeroShotTableHasOneColumnPairPerTaskAndSurvivesJson) {
    ModelResults m = fixture();
    m.settings.zeroshot_tasks = {"data/zeroshot/lastword-test.jsonl", "tasks/other.jsonl"};
    m.settings.zeroshot_items = 40;
    m.main[0].zeroshot["lastword-test"] = {{"items", 40}, {"acc", 0.5},        {"acc_stderr", 0.08},
                                           {"acc_norm", 0.45}, {"acc_norm_stderr", 0.0797}, {"chance", 0.25}};
    m.main[1].zeroshot["lastword-test"] = {{"items", 40}, {"acc", 0.375},       {"acc_stderr", 0.0775},
                                           {"acc_norm", 0.4},  {"acc_norm_stderr", 0.0784}, {"chance", 0.25}};
    // Round trip through results.json (what --reuse reads back).
    const ModelResults back = model_results_from_json(model_results_to_json(m));
    ASSERT_EQ(back.settings.zeroshot_tasks, m.settings.zeroshot_tasks);
    EXPECT_EQ(back.settings.zeroshot_items, 40);
    ASSERT_EQ(back.main[1].zeroshot.count("lastword-test"), 1u);
    EXPECT_DOUBLE_EQ(back.main[1].zeroshot.at("lastword-test").at("acc").get<double>(), 0.375);

    const std::string md = results_markdown({back}, {}, "plots", "pbs2p experiment fixture");
    EXPECT_NE(md.find("| Method | true bits | PPL test | lastword-test acc | lastword-test acc_norm | other acc | "
                      "other acc_norm |"),
              std::string::npos)
        << md;
    EXPECT_NE(md.find("| FP | 16 | 9.00 | 50.0 ± 8.0 | 45.0 ± 8.0 | - | - |"), std::string::npos) << md;
    EXPECT_NE(md.find("| PBS2P 4:8 |"), std::string::npos);
    EXPECT_NE(md.find("37.5 ± 7.8 | 40.0 ± 7.8 | - | - |"), std::string::npos) << md;
    EXPECT_NE(md.find("| BiLLM |"), std::string::npos);  // a run without scores shows dashes
    EXPECT_NE(md.find("chance: lastword-test 25.0%; items scored: lastword-test 40."), std::string::npos) << md;
    // Without tasks there is no zero-shot section.
    EXPECT_EQ(results_markdown({fixture()}, {}, "plots", "x").find("Zero-shot accuracy"), std::string::npos);
}

TEST(ResultsMarkdown, EachModelShowsItsOwnPlotsOnly) {
    // "ref-llama" is a prefix of "ref-llama-deep": each plot belongs to the model its name ends with.
    ModelResults a = fixture(), b = fixture();
    a.model_name = "ref-llama";
    b.model_name = "ref-llama-deep";
    const std::string md =
        results_markdown({a, b}, {"cfs_ref-llama.png", "cfs_ref-llama-deep.png"}, "plots", "pbs2p experiment");
    auto count = [&md](const std::string& s) {
        size_t n = 0;
        for (size_t at = md.find(s); at != std::string::npos; at = md.find(s, at + 1)) ++n;
        return n;
    };
    EXPECT_EQ(count("(plots/cfs_ref-llama.png)"), 1u) << md;
    EXPECT_EQ(count("(plots/cfs_ref-llama-deep.png)"), 1u) << md;
    EXPECT_LT(md.find("(plots/cfs_ref-llama.png)"), md.find("## ref-llama-deep"));
    EXPECT_GT(md.find("(plots/cfs_ref-llama-deep.png)"), md.find("## ref-llama-deep"));
}

}  // namespace
}  // namespace pbs2p
