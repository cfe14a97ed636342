// `pbs2p zeroshot` end to end: known answers on the reference model, the library's numbers on a golden
// model and on a packed model, and one-line errors on bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "eval/zeroshot.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "packed/packed_model.h"
#include "tools/cli_test_util.h"

namespace pbs2p {
namespace {

using namespace cli_test;

// Each item's gold choice is ref-llama's greedy continuation of the context (`pbs2p generate`, 3-6
// tokens, decoded), the others are strings of random vocabulary pieces: the model must get all right.
const fs::path kKnownAnswers = source_dir() / "tests/eval/data/zeroshot_known_answers.jsonl";

TEST(CliZeroShot, ReferenceModelFindsItsOwnContinuations) {
    const std::string dir = reference_model("ref-llama");
    if (dir.empty()) GTEST_SKIP() << "models/ref-llama is not in this checkout";
    const CliRun r = run_cli({"zeroshot", dir, "--tasks", kKnownAnswers.string(), "--json", "-t", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.at("tasks").size(), 1u);
    const auto& t = j.at("tasks")[0];
    EXPECT_EQ(t.at("items").get<int64_t>(),
              static_cast<int64_t>(read_choice_tasks(kKnownAnswers.string()).size()));
    EXPECT_DOUBLE_EQ(t.at("acc").get<double>(), 1.0) << t.dump();
    EXPECT_DOUBLE_EQ(t.at("acc_norm").get<double>(), 1.0) << t.dump();
    EXPECT_DOUBLE_EQ(t.at("chance").get<double>(), 0.25);
    EXPECT_EQ(t.at("truncated").get<int64_t>(), 0);

    // Text output names the file and the accuracy.
    const CliRun text = run_cli({"zeroshot", dir, "--tasks", kKnownAnswers.string(), "--max-items", "2"});
    ASSERT_EQ(text.exit_code, 0) << text.describe();
    EXPECT_TRUE(contains(text.out, "acc 1.0000")) << text.out;
    EXPECT_TRUE(contains(text.out, "2 items")) << text.out;
}

double library_acc(const Model& model, const Tokenizer& tokenizer, const std::vector<ChoiceItem>& items) {
    ZeroShotOptions options;
    options.progress = false;
    return evaluate_zeroshot(model, tokenizer, items, options).acc_norm;
}

TEST(CliZeroShot, MatchesTheLibraryOnDenseAndPackedModels) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "m");
    const fs::path out = tmp / "out";
    const std::string calib = (source_dir() / "data/calib.txt").string();
    const CliRun c =
        run_cli({"compress", model_dir.string(), "--method", "pbs2p", "--nm", "4:8", "--calib", calib,
                 "--calib-windows", "4", "--calib-seq", "64", "-o", out.string(), "-t", "1"});
    ASSERT_EQ(c.exit_code, 0) << c.describe();
    const std::string tasks = kKnownAnswers.string();
    const auto items = read_choice_tasks(tasks);
    const auto tokenizer = load_tokenizer(model_dir.string());
    const fs::path packed = out / "model.packed.safetensors";
    const std::vector<std::pair<std::string, Model>> models = [&] {
        std::vector<std::pair<std::string, Model>> m;
        m.emplace_back(model_dir.string(), Model::load(model_dir.string()));
        m.emplace_back(packed.string(), load_packed_model(packed.string(), "reference"));
        return m;
    }();
    for (const auto& [path, model] : models) {
        const CliRun r = run_cli({"zeroshot", path, "--tasks", tasks, "--tasks", tasks, "--max-items", "3",
                                  "--kernel", "reference", "--json", "-t", "1"});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const auto j = nlohmann::json::parse(r.out);
        ASSERT_EQ(j.at("tasks").size(), 2u);
        const std::vector<ChoiceItem> first(items.begin(), items.begin() + 3);
        for (const auto& t : j.at("tasks")) {
            EXPECT_EQ(t.at("items"), 3);
            EXPECT_DOUBLE_EQ(t.at("acc_norm").get<double>(), library_acc(model, *tokenizer, first)) << path;
        }
    }
}

TEST(CliZeroShot, BadInputIsOneLine) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "m");
    const CliRun missing =
        run_cli({"zeroshot", model_dir.string(), "--tasks", (tmp / "none.jsonl").string()});
    expect_clean_error(missing, {"none.jsonl"});

    write_file(tmp / "bad.jsonl",
               "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"gold\": 0}\n"
               "{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"gold\": 5}\n");
    const CliRun bad = run_cli({"zeroshot", model_dir.string(), "--tasks", (tmp / "bad.jsonl").string()});
    expect_clean_error(bad, {"bad.jsonl:2", "gold"});

    const CliRun no_tasks = run_cli({"zeroshot", model_dir.string()});
    EXPECT_NE(no_tasks.exit_code, 0) << no_tasks.describe();
    expect_no_crash(no_tasks);

    const CliRun help = run_cli({"zeroshot", "--help"});
    EXPECT_EQ(help.exit_code, 0) << help.describe();
    EXPECT_TRUE(contains(help.out, "--tasks")) << help.out;
}

}  // namespace
}  // namespace pbs2p
