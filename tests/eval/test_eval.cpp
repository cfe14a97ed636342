// Perplexity protocols, KL divergence and generation on the tiny golden checkpoints.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "core/error.h"
#include "eval/generate.h"
#include "eval/kl_divergence.h"
#include "eval/perplexity.h"
#include "eval/text.h"
#include "model/model_test_util.h"

namespace pbs2p {
namespace {

using test::golden_dir;
using test::load_golden;

// Independent NLL from a row of (golden) logits.
double reference_nll(const float* row, int64_t vocab, int32_t target) {
    double z = 0.0;
    for (int64_t i = 0; i < vocab; ++i) z += std::exp(static_cast<double>(row[i]));
    return std::log(z) - row[target];
}

TEST(Perplexity, GptqWindowMatchesGoldenLogits) {
    Model model = Model::load(golden_dir("llama_gqa"));
    test::Golden g = load_golden("llama_gqa");
    EvalOptions options{PerplexityProtocol::gptq, 15, 0, false};
    PerplexityResult r = evaluate_perplexity(model, g.tokens, 1, options);  // 16 tokens: one window of 15
    double sum = 0.0;
    for (int64_t t = 0; t < 14; ++t) sum += reference_nll(g.logits.row(t), g.logits.cols, g.tokens[t + 1]);
    EXPECT_EQ(r.protocol, "gptq");
    EXPECT_EQ(r.ctx, 15);
    EXPECT_EQ(r.windows, 1);
    EXPECT_EQ(r.tokens_scored, 14);
    EXPECT_NEAR(r.mean_nll, sum / 14, 1e-4);
    EXPECT_NEAR(r.ppl, std::exp(sum / 14), 1e-3 * r.ppl);
}

TEST(Perplexity, WindowSchedules) {
    std::vector<int32_t> tokens(50);
    for (int i = 0; i < 50; ++i) tokens[i] = 10 + i;
    auto gptq = make_eval_windows(tokens, 1, {PerplexityProtocol::gptq, 16, 0, false});
    ASSERT_EQ(gptq.size(), 3u);  // 50 / 16, partial window dropped
    EXPECT_EQ(gptq[1].tokens.front(), 26);
    EXPECT_EQ(gptq[1].first_scored, 0);
    auto llamacpp = make_eval_windows(tokens, 1, {PerplexityProtocol::llamacpp, 16, 0, false});
    ASSERT_EQ(llamacpp.size(), 3u);
    EXPECT_EQ(llamacpp[1].tokens.front(), 1);  // BOS replaces the first token of every chunk
    EXPECT_EQ(llamacpp[1].tokens[1], 27);
    EXPECT_EQ(llamacpp[1].first_scored, 8);
    auto limited = make_eval_windows(tokens, -1, {PerplexityProtocol::llamacpp, 16, 2, false});
    ASSERT_EQ(limited.size(), 2u);
    EXPECT_EQ(limited[1].tokens.front(), 26);  // no BOS in the vocabulary: token kept
}

TEST(Perplexity, LlamacppScoresSecondHalf) {
    Model model = Model::load(golden_dir("opt_bias"));
    std::vector<int32_t> tokens;
    for (int i = 0; i < 70; ++i) tokens.push_back(3 + (i * 37) % 90);
    PerplexityResult r = evaluate_perplexity(model, tokens, 2, {PerplexityProtocol::llamacpp, 32, 0, false});
    EXPECT_EQ(r.protocol, "llamacpp");
    EXPECT_EQ(r.windows, 2);
    EXPECT_EQ(r.tokens_scored, 2 * (32 / 2 - 1));
    // Same number by hand from full forward passes.
    double sum = 0.0;
    for (int w = 0; w < 2; ++w) {
        std::vector<int32_t> window(tokens.begin() + 32 * w, tokens.begin() + 32 * (w + 1));
        window[0] = 2;
        Matrix logits = model.forward(window);
        for (int t = 16; t < 31; ++t) sum += reference_nll(logits.row(t), logits.cols, window[t + 1]);
    }
    EXPECT_NEAR(r.mean_nll, sum / 30, 1e-6);
}

TEST(Perplexity, TooShortTextIsAnError) {
    Model model = Model::load(golden_dir("llama_gqa"));
    std::vector<int32_t> tokens(16, 5);
    try {
        evaluate_perplexity(model, tokens, 1, {PerplexityProtocol::gptq, 16, 0, false});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("too short"), std::string::npos) << e.what();
    }
    EXPECT_THROW(parse_protocol("wikitext"), Error);
    EXPECT_EQ(parse_protocol("llamacpp"), PerplexityProtocol::llamacpp);
}

TEST(KlDivergence, ZeroAgainstItselfPositiveAgainstAPerturbedCopy) {
    Model model = Model::load(golden_dir("qwen2_bias"));
    Model perturbed = Model::load(golden_dir("qwen2_bias"));
    for (Linear* l : perturbed.all_linears())
        for (size_t i = 0; i < l->weight.data.size(); i += 3) l->weight.data[i] *= -1.0f;
    std::vector<int32_t> tokens;
    for (int i = 0; i < 41; ++i) tokens.push_back(3 + (i * 11) % 90);
    EvalOptions options{PerplexityProtocol::gptq, 20, 0, false};
    KlResult same = evaluate_kl(model, model, tokens, 1, options);
    EXPECT_NEAR(same.mean_kl, 0.0, 1e-9);
    EXPECT_DOUBLE_EQ(same.top1_agreement, 1.0);
    EXPECT_DOUBLE_EQ(same.model.ppl, same.reference.ppl);
    KlResult other = evaluate_kl(perturbed, model, tokens, 1, options);
    EXPECT_GT(other.mean_kl, 1e-3);
    EXPECT_LT(other.top1_agreement, 1.0);
    EXPECT_EQ(other.model.tokens_scored, 2 * 19);
    EXPECT_NEAR(other.reference.ppl, evaluate_perplexity(model, tokens, 1, options).ppl, 1e-9);
}

TEST(KlDivergence, MatchesClosedForm) {
    const float p[3] = {0.0f, 1.0f, 2.0f}, q[3] = {0.5f, 0.5f, 0.5f};
    double zp = std::exp(0.0) + std::exp(1.0) + std::exp(2.0);
    double expected = 0.0;
    for (double v : p) expected += std::exp(v) / zp * (v - std::log(zp) + std::log(3.0));
    EXPECT_NEAR(kl_from_logits(p, q, 3), expected, 1e-12);
}

TEST(Generate, GreedyFollowsArgmaxAndStops) {
    Model model = Model::load(golden_dir("llama_gqa"));
    std::vector<int32_t> prompt{1, 17, 42, 5};
    std::vector<int32_t> streamed;
    GenerateOptions options;
    options.max_tokens = 6;
    GenerateResult r = generate(model, prompt, -1, options, [&](int32_t t) { streamed.push_back(t); });
    ASSERT_EQ(r.tokens.size(), 6u);
    EXPECT_EQ(streamed, r.tokens);
    EXPECT_EQ(r.stop_reason, "max_tokens");
    std::vector<int32_t> context = prompt;
    for (int32_t t : r.tokens) {
        Matrix logits = model.forward(context);
        const float* last = logits.row(logits.rows - 1);
        EXPECT_EQ(t, std::max_element(last, last + logits.cols) - last);
        context.push_back(t);
    }
    // Stops at EOS (not emitted): take the first generated token that differs from the first one.
    size_t k = 1;
    while (k < r.tokens.size() && r.tokens[k] == r.tokens[0]) ++k;
    ASSERT_LT(k, r.tokens.size());
    GenerateResult stopped = generate(model, prompt, r.tokens[k], options);
    EXPECT_EQ(stopped.stop_reason, "eos");
    EXPECT_EQ(stopped.tokens, std::vector<int32_t>(r.tokens.begin(), r.tokens.begin() + k));
}

TEST(Generate, SamplingIsSeededAndRespectsTopK) {
    Model model = Model::load(golden_dir("opt_bias"));
    GenerateOptions options;
    options.max_tokens = 12;
    options.sampling = {1.0, 0, 7};
    auto a = generate(model, {2, 10, 11}, -1, options).tokens;
    auto b = generate(model, {2, 10, 11}, -1, options).tokens;
    EXPECT_EQ(a, b);
    options.sampling.seed = 8;
    EXPECT_NE(a, generate(model, {2, 10, 11}, -1, options).tokens);

    float logits[6] = {0.1f, 3.0f, 2.0f, -1.0f, 2.5f, 0.0f};
    Rng rng(3);
    std::set<int32_t> seen;
    for (int i = 0; i < 300; ++i) seen.insert(sample_token(logits, 6, {5.0, 3, 0}, rng));
    EXPECT_EQ(seen, (std::set<int32_t>{1, 2, 4}));
    EXPECT_EQ(sample_token(logits, 6, {0.0, 0, 0}, rng), 1);
    EXPECT_EQ(sample_token(logits, 6, {2.0, 1, 0}, rng), 1);
}

TEST(Generate, OptStopsAtPositionTable) {
    Model model = Model::load(golden_dir("opt_bias"));  // 64 positions
    GenerateOptions options;
    options.max_tokens = 100;
    GenerateResult r = generate(model, {2, 10, 11}, -1, options);
    EXPECT_EQ(r.stop_reason, "context");
    EXPECT_EQ(r.prompt_tokens + static_cast<int64_t>(r.tokens.size()), 64 + 1);
}

TEST(Text, ReadErrorsNameTheFile) {
    EXPECT_THROW(read_text_file("/nonexistent/file.txt"), Error);
    test::ScratchDir dir("text");
    std::ofstream(dir.file("empty.txt")).close();
    try {
        read_text_file(dir.file("empty.txt"));
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("empty.txt"), std::string::npos);
    }
    std::ofstream(dir.file("a.txt")) << "hello";
    EXPECT_EQ(read_text_file(dir.file("a.txt")), "hello");
}

}  // namespace
}  // namespace pbs2p
