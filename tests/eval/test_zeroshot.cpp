// Zero-shot multiple-choice scoring: the task-file reader, lm-eval's tokenization split, the cached
// scorer against the full-forward reference and the perplexity path, and the accuracy bookkeeping.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "eval/perplexity.h"
#include "eval/zeroshot.h"
#include "io/tokenizer.h"
#include "model/model_test_util.h"

namespace pbs2p {
namespace {

using test::golden_dir;
using test::ScratchDir;

std::unique_ptr<Tokenizer> tiny_tokenizer() {
    return load_tokenizer(std::string(PBS2P_SOURCE_DIR) + "/tests/tools/fixtures/tiny_tokenizer.model");
}

// Deterministic token ids inside the golden models' 96-entry vocabulary (clear of the specials 0-2).
std::vector<int32_t> pseudo_tokens(int n, int seed) {
    std::vector<int32_t> t;
    for (int i = 0; i < n; ++i) t.push_back(3 + (i * 37 + seed * 11 + i * i * seed) % 90);
    return t;
}

std::string write_lines(const ScratchDir& dir, const std::vector<std::string>& lines) {
    const std::string path = dir.file("tasks.jsonl");
    std::ofstream out(path);
    for (const auto& l : lines) out << l << "\n";
    return path;
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(ZeroShotReader, ParsesItemsAndSkipsBlankLines) {
    ScratchDir dir("zeroshot");
    const std::string path = write_lines(
        dir,
        {R"({"id": "a1", "context": "The cat sat on the", "choices": [" mat", " moon"], "gold": 0, "note": 5})",
         "", R"({"context": "", "choices": ["x", "y", "z"], "gold": 2})"});
    const auto items = read_choice_tasks(path);
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].id, "a1");
    EXPECT_EQ(items[0].context, "The cat sat on the");
    EXPECT_EQ(items[0].choices, (std::vector<std::string>{" mat", " moon"}));
    EXPECT_EQ(items[0].gold, 0);
    EXPECT_EQ(items[1].id, "line 3");
    EXPECT_EQ(items[1].gold, 2);
}

TEST(ZeroShotReader, BadLinesNameFileAndLine) {
    const std::string good = R"({"context": "a", "choices": ["b", "c"], "gold": 1})";
    for (const std::string& bad : {std::string("{not json"), std::string(R"(["a", "b"])"),
                                   std::string(R"({"choices": ["b", "c"], "gold": 0})"),
                                   std::string(R"({"context": "a", "choices": ["b"], "gold": 0})"),
                                   std::string(R"({"context": "a", "choices": ["b", ""], "gold": 0})"),
                                   std::string(R"({"context": "a", "choices": ["b", 3], "gold": 0})"),
                                   std::string(R"({"context": "a", "choices": ["b", "c"], "gold": "0"})"),
                                   std::string(R"({"context": "a", "choices": ["b", "c"], "gold": 2})"),
                                   std::string(R"({"context": "a", "choices": ["b", "c"], "gold": -1})")}) {
        ScratchDir dir("zeroshot");
        const std::string path = write_lines(dir, {good, bad});
        const std::string message = error_of([&] { read_choice_tasks(path); });
        EXPECT_NE(message.find(path + ":2:"), std::string::npos) << bad << " -> " << message;
    }
    ScratchDir dir("zeroshot");
    EXPECT_NE(error_of([&] { read_choice_tasks(write_lines(dir, {""})); }).find("no items"),
              std::string::npos);
    EXPECT_NE(error_of([&] { read_choice_tasks(dir.file("missing.jsonl")); }).find("missing.jsonl"),
              std::string::npos);
}

TEST(ZeroShotEncode, SplitsTheJointEncodingAfterTheContext) {
    const auto tokenizer = tiny_tokenizer();
    const ChoiceItem item{"i", "the state of the", {" union", " art", " nation and the people"}, 0};
    const EncodedChoiceItem enc = encode_choice_item(*tokenizer, item, 128);
    EXPECT_EQ(enc.context, tokenizer->encode("the state of the", true));
    EXPECT_EQ(enc.context.front(), tokenizer->bos_id());
    ASSERT_EQ(enc.continuations.size(), 3u);
    for (size_t c = 0; c < 3; ++c) {
        const auto whole = tokenizer->encode(item.context + item.choices[c], true);
        EXPECT_EQ(enc.continuations[c],
                  std::vector<int32_t>(whole.begin() + enc.context.size(), whole.end()));
    }
    EXPECT_FALSE(enc.truncated);

    // The context's trailing space moves onto the continuations: the same tokens as above.
    const EncodedChoiceItem moved = encode_choice_item(
        *tokenizer, {"i", "the state of the ", {"union", "art", "nation and the people"}, 0}, 128);
    EXPECT_EQ(moved.context, enc.context);
    EXPECT_EQ(moved.continuations, enc.continuations);

    // An empty context is BOS alone; the continuation is encoded without BOS.
    const EncodedChoiceItem empty = encode_choice_item(*tokenizer, {"e", "", {"the state", "union"}, 1}, 128);
    EXPECT_EQ(empty.context, std::vector<int32_t>{tokenizer->bos_id()});
    EXPECT_EQ(empty.continuations[0], tokenizer->encode("the state", false));
}

TEST(ZeroShotEncode, LongContextLosesItsOldestTokensAfterBos) {
    const auto tokenizer = tiny_tokenizer();
    std::ifstream in(std::string(PBS2P_SOURCE_DIR) + "/data/test.txt");
    std::string text(2000, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    const ChoiceItem item{"long", text, {" and the", " of"}, 0};
    const auto full = tokenizer->encode(text, true);
    ASSERT_GT(full.size(), 100u);
    const EncodedChoiceItem enc = encode_choice_item(*tokenizer, item, 64);
    EXPECT_TRUE(enc.truncated);
    size_t longest = std::max(enc.continuations[0].size(), enc.continuations[1].size());
    EXPECT_EQ(enc.context.size() + longest - 1, 64u);
    EXPECT_EQ(enc.context.front(), tokenizer->bos_id());
    EXPECT_TRUE(
        std::equal(enc.context.begin() + 1, enc.context.end(), full.end() - (enc.context.size() - 1)));
    // A choice that cannot fit at all is an error naming the item.
    const std::string message = error_of([&] {
        encode_choice_item(*tokenizer, {"huge", "a", {text, " b"}, 0}, 64);
    });
    EXPECT_NE(message.find("huge"), std::string::npos) << message;
}

// Tokens of an item given directly: context (BOS first) and continuations of several lengths.
EncodedChoiceItem token_item(int32_t bos, int context_length, int seed) {
    EncodedChoiceItem item;
    item.context = pseudo_tokens(context_length, seed);
    item.context.front() = bos;
    for (int length : {1, 3, 7, 2}) item.continuations.push_back(pseudo_tokens(length, seed + length));
    return item;
}

TEST(ZeroShotScoring, CachedScorerMatchesTheFullForwardReference) {
    for (const auto& [name, bos] : {std::pair<std::string, int32_t>{"llama_gqa", 1}, {"opt_bias", 2}}) {
        const Model model = Model::load(golden_dir(name));
        KvCache cache = model.new_cache(model.config().max_position_embeddings);
        // The cache is reused: later items must not see earlier ones. The last item fills the position
        // table exactly (context + longest continuation - 1 positions).
        const int full = static_cast<int>(model.config().max_position_embeddings) - 6;
        for (const auto& [length, seed] : {std::pair{25, 1}, std::pair{30, 2}, std::pair{full, 3}}) {
            const EncodedChoiceItem item = token_item(bos, length, seed);
            const auto fast = choice_loglikelihoods(model, item, cache);
            const auto reference = choice_loglikelihoods_reference(model, item);
            ASSERT_EQ(fast.size(), item.continuations.size());
            for (size_t c = 0; c < fast.size(); ++c) {
                EXPECT_LT(reference[c], 0.0);
                EXPECT_NEAR(fast[c], reference[c], 1e-4 * std::max(1.0, std::abs(reference[c])))
                    << name << " choice " << c;
            }
        }
    }
}

// The reference scorer is the perplexity code path: a continuation after BOS alone scores exactly the
// summed NLL that `evaluate_perplexity` reports for the same tokens as one gptq window.
TEST(ZeroShotScoring, EqualsThePerplexityOfTheContinuation) {
    const Model model = Model::load(golden_dir("llama_gqa"));
    std::vector<int32_t> tokens = pseudo_tokens(31, 5);
    tokens.front() = 1;
    EncodedChoiceItem item;
    item.context = {1};
    item.continuations = {std::vector<int32_t>(tokens.begin() + 1, tokens.end())};
    const double ll = choice_loglikelihoods_reference(model, item)[0];

    std::vector<int32_t> text = tokens;
    text.push_back(7);  // one token past the window, which is dropped
    const PerplexityResult p = evaluate_perplexity(model, text, 1, {PerplexityProtocol::gptq, 31, 0, false});
    ASSERT_EQ(p.tokens_scored, 30);
    EXPECT_NEAR(ll, -p.mean_nll * static_cast<double>(p.tokens_scored), 1e-12 * std::abs(ll));

    // Chain rule: the same tokens split into context and continuation add up to the same total.
    KvCache cache = model.new_cache(128);
    EncodedChoiceItem head, tail;
    head.context = {1};
    head.continuations = {std::vector<int32_t>(tokens.begin() + 1, tokens.begin() + 12)};
    tail.context = std::vector<int32_t>(tokens.begin(), tokens.begin() + 12);
    tail.continuations = {std::vector<int32_t>(tokens.begin() + 12, tokens.end())};
    const double split =
        choice_loglikelihoods(model, head, cache)[0] + choice_loglikelihoods(model, tail, cache)[0];
    EXPECT_NEAR(split, ll, 1e-4 * std::abs(ll));
}

// A known answer: among single-token choices the model's own most likely next token must win.
TEST(ZeroShotScoring, TheMostLikelyNextTokenIsChosen) {
    for (const auto& [name, bos] : {std::pair<std::string, int32_t>{"llama_gqa", 1}, {"opt_bias", 2}}) {
        const Model model = Model::load(golden_dir(name));
        KvCache cache = model.new_cache(model.config().max_position_embeddings);
        for (int seed : {3, 4, 5}) {
            std::vector<int32_t> context = pseudo_tokens(16, seed);
            context.front() = bos;
            const Matrix logits = model.forward(context);
            const float* last = logits.row(logits.rows - 1);
            int32_t best = 3;
            for (int32_t t = 3; t < 96; ++t)
                if (last[t] > last[best]) best = t;
            EncodedChoiceItem item;
            item.context = context;
            for (int32_t other : {best == 10 ? 11 : 10, best == 20 ? 21 : 20, best == 30 ? 31 : 30})
                item.continuations.push_back({other});
            item.continuations.insert(item.continuations.begin() + 2, {best});
            const ChoiceItem text{"k", "", {"a", "b", "c", "d"}, 2};
            const ChoiceScore s = score_choices(text, choice_loglikelihoods(model, item, cache));
            EXPECT_EQ(s.pred, 2) << name << " seed " << seed;
            EXPECT_EQ(s.pred_norm, 2) << name << " seed " << seed;
        }
    }
}

TEST(ZeroShotAccuracy, NormalisationTiesAndStandardErrors) {
    EXPECT_EQ(utf8_length("a\xe2\x80\x94"
                          "b"),
              3);                                 // an em dash is one character, three bytes
    EXPECT_EQ(first_argmax({1.0, 3.0, 3.0}), 1);  // ties go to the first
    // Length normalisation flips the choice: -4/2 < -6/6.
    const ChoiceScore s = score_choices({"n", "", {"ab", "abcdef"}, 0}, {-4.0, -6.0});
    EXPECT_EQ(s.pred, 0);
    EXPECT_EQ(s.pred_norm, 1);
    EXPECT_DOUBLE_EQ(accuracy_stderr(0.5, 5), 0.25);
    EXPECT_DOUBLE_EQ(accuracy_stderr(1.0, 10), 0.0);
    EXPECT_DOUBLE_EQ(accuracy_stderr(0.5, 1), 0.0);
}

// evaluate_zeroshot end to end on a golden model with the tiny tokenizer: gold set to the model's own
// choices gives accuracy 1, gold set elsewhere 0, half of each 0.5; chance averages 1/k over items.
TEST(ZeroShotAccuracy, EvaluateCountsAgainstTheModelsOwnChoices) {
    const Model model = Model::load(golden_dir("llama_gqa"));
    const auto tokenizer = tiny_tokenizer();
    std::vector<ChoiceItem> items = {
        {"0", "the state of the", {" union", " art", " people", " nation"}, 0},
        {"1", "in the year of", {" the war", " our lord"}, 0},
        {"2", "we the people of the united", {" states", " kingdom", " nations", " front"}, 0},
        {"3", "it is a truth", {" universally acknowledged", " told", " of the", " and the"}, 0},
    };
    ZeroShotOptions options;
    options.progress = false;
    const ZeroShotResult first = evaluate_zeroshot(model, *tokenizer, items, options);
    ASSERT_EQ(first.scores.size(), items.size());
    for (size_t k = 0; k < items.size(); ++k) items[k].gold = first.scores[k].pred;
    const ZeroShotResult own = evaluate_zeroshot(model, *tokenizer, items, options);
    EXPECT_EQ(own.items, 4);
    EXPECT_DOUBLE_EQ(own.acc, 1.0);
    EXPECT_DOUBLE_EQ(own.acc_stderr, 0.0);
    EXPECT_DOUBLE_EQ(own.chance, (0.25 + 0.5 + 0.25 + 0.25) / 4);
    EXPECT_GT(own.tokens_forwarded, 0);
    for (size_t k = 0; k < items.size(); ++k)
        items[k].gold = (first.scores[k].pred + (k % 2)) % static_cast<int64_t>(items[k].choices.size());
    const ZeroShotResult half = evaluate_zeroshot(model, *tokenizer, items, options);
    EXPECT_DOUBLE_EQ(half.acc, 0.5);
    EXPECT_DOUBLE_EQ(half.acc_stderr, std::sqrt(0.25 / 3));

    // The reference scorer gives the same log-likelihoods; --max-items keeps the first items.
    options.reference = true;
    options.max_items = 2;
    const ZeroShotResult reference = evaluate_zeroshot(model, *tokenizer, items, options);
    ASSERT_EQ(reference.items, 2);
    for (size_t k = 0; k < 2; ++k)
        for (size_t c = 0; c < items[k].choices.size(); ++c)
            EXPECT_NEAR(reference.scores[k].loglikelihoods[c], first.scores[k].loglikelihoods[c],
                        1e-4 * std::abs(first.scores[k].loglikelihoods[c]));
}

}  // namespace
}  // namespace pbs2p
