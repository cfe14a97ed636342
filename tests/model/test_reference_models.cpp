// The trained reference models (models/ref-llama, models/ref-opt, models/ref-llama-deep): logits against the
// trainer's PyTorch golden_logits.json and perplexity against reference_eval.json (test split, ctx 512,
// gptq protocol). Skipped when the models have not been fetched.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "eval/perplexity.h"
#include "eval/text.h"
#include "io/tokenizer.h"
#include "model/model.h"

namespace pbs2p {
namespace {

std::string model_dir(const std::string& name) { return std::string(PBS2P_SOURCE_DIR) + "/models/" + name; }

nlohmann::json read_json(const std::string& path) {
    std::ifstream in(path);
    return nlohmann::json::parse(in);
}

class ReferenceModel : public ::testing::TestWithParam<const char*> {
protected:
    void SetUp() override {
        dir_ = model_dir(GetParam());
        // Committed with the models: a missing file is a broken checkout, not a reason to skip.
        ASSERT_TRUE(std::filesystem::exists(dir_ + "/golden_logits.json")) << dir_;
        ASSERT_TRUE(std::filesystem::exists(dir_ + "/reference_eval.json")) << dir_;
    }
    std::string dir_;
};

TEST_P(ReferenceModel, LogitsMatchTrainerGolden) {
    Model model = Model::load(dir_);
    nlohmann::json g = read_json(dir_ + "/golden_logits.json");
    ASSERT_EQ(g["format"], "pbs2p-golden-logits-v1");
    std::vector<int32_t> ids = g["input_ids"].get<std::vector<int32_t>>();
    Matrix logits = model.forward(ids);
    const double tolerance = 1e-3 * g["max_abs_logit"].get<double>();
    double worst = 0.0;
    auto last = g["last_logits"].get<std::vector<float>>();
    ASSERT_EQ(static_cast<int64_t>(last.size()), logits.cols);
    for (int64_t k = 0; k < logits.cols; ++k)
        worst = std::max(worst, std::abs(static_cast<double>(logits(logits.rows - 1, k)) - last[k]));
    auto first8 = g["first8_logits"];
    for (int64_t t = 0; t < logits.rows; ++t)
        for (int64_t k = 0; k < 8; ++k)
            worst = std::max(worst, std::abs(static_cast<double>(logits(t, k)) - first8[t][k].get<double>()));
    std::printf("%s: max |dlogit| %.3g (tolerance %.3g)\n", GetParam(), worst, tolerance);
    EXPECT_LE(worst, tolerance);
    auto argmax = g["argmax"].get<std::vector<int64_t>>();
    for (int64_t t = 0; t < logits.rows; ++t) {
        const float* row = logits.row(t);
        EXPECT_EQ(std::max_element(row, row + logits.cols) - row, argmax[static_cast<size_t>(t)]) << "position " << t;
    }
}

TEST_P(ReferenceModel, TestPerplexityMatchesReferenceEval) {
    nlohmann::json ref = read_json(dir_ + "/reference_eval.json");
    ASSERT_EQ(ref["protocol"], "gptq");
    Model model = Model::load(dir_);
    auto tokenizer = load_tokenizer(dir_);
    const std::string text = read_text_file(std::string(PBS2P_SOURCE_DIR) + "/" + ref["files"]["test"].get<std::string>());
    EvalOptions options{PerplexityProtocol::gptq, ref["ctx"].get<int64_t>(), 0, false};
    PerplexityResult r = evaluate_perplexity(model, tokenizer->encode(text, true), tokenizer->bos_id(), options);
    const double expected = ref["test_ppl"].get<double>();
    std::printf("%s: test ppl %.4f (reference %.4f), %lld tokens scored\n", GetParam(), r.ppl, expected,
                static_cast<long long>(r.tokens_scored));
    EXPECT_EQ(r.tokens_scored, ref["n_tokens"]["test"].get<int64_t>());
    EXPECT_NEAR(r.ppl, expected, 0.005 * expected);
}

INSTANTIATE_TEST_SUITE_P(Trained, ReferenceModel, ::testing::Values("ref-llama", "ref-opt", "ref-llama-deep"));

}  // namespace
}  // namespace pbs2p
