// Zero-shot multiple-choice scoring by log-likelihood, in lm-evaluation-harness conventions.
//
// A task file is JSON Lines, one item per line: {"context": str, "choices": [str, ...], "gold": int}
// (other fields are ignored). Each choice is a continuation appended to the context verbatim.
//
// Tokenization (lm-eval's split): trailing whitespace of the context moves to the front of every
// continuation; the context is encoded alone (BOS first when the vocabulary has one), and a choice's
// tokens are those of encode(context + continuation) after the context's token count. An empty
// context is BOS (or EOS when there is no BOS) alone. Contexts too long for the model lose their oldest
// tokens after BOS, so that the context plus the longest continuation fits the position table.
//
// Score of a choice: sum over its tokens of log p(token | context, earlier tokens), fp64.
// acc: the highest score is the gold choice; acc_norm: the highest score divided by the choice's
// length in characters (Unicode code points of the choice string as written, lm-eval's len(choice)).
// Ties go to the first choice. Standard errors are sqrt(p(1-p)/(n-1)).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "model/model.h"

namespace pbs2p {

struct ChoiceItem {
    std::string id;  // the line's "id" when present, else "line N"
    std::string context;
    std::vector<std::string> choices;
    int64_t gold = 0;
};

// Reads a JSON Lines task file (blank lines skipped); errors name the file, the line and the field.
std::vector<ChoiceItem> read_choice_tasks(const std::string& path);

// An item's tokens: the context (BOS first) and each choice's continuation tokens.
struct EncodedChoiceItem {
    std::vector<int32_t> context;
    std::vector<std::vector<int32_t>> continuations;
    bool truncated = false;       // oldest context tokens were dropped to fit the model
    int64_t boundary_merges = 0;  // choices whose joint encoding does not start with the context's tokens
};

// Encodes `item` as described above; `max_positions` is the model's position table size.
EncodedChoiceItem encode_choice_item(const Tokenizer& tokenizer, const ChoiceItem& item,
                                     int64_t max_positions);

// Log-likelihood of every continuation. The context runs once into `cache` (capacity at least
// context + longest continuation - 1); each choice continues from it.
std::vector<double> choice_loglikelihoods(const Model& model, const EncodedChoiceItem& item, KvCache& cache);
// Reference: one full forward pass of context + continuation per choice, scored as a perplexity window
// whose scored rows are the continuation's.
std::vector<double> choice_loglikelihoods_reference(const Model& model, const EncodedChoiceItem& item);

// Length normaliser of acc_norm: the number of Unicode code points of a UTF-8 string.
int64_t utf8_length(const std::string& text);

struct ChoiceScore {
    std::vector<double> loglikelihoods;
    int64_t pred = 0;       // argmax of loglikelihoods
    int64_t pred_norm = 0;  // argmax of loglikelihood / utf8_length(choice)
};

// Index of the first maximum.
int64_t first_argmax(const std::vector<double>& values);
ChoiceScore score_choices(const ChoiceItem& item, std::vector<double> loglikelihoods);

struct ZeroShotOptions {
    int64_t max_items = 0;  // 0 = all
    bool progress = true;
    bool reference = false;  // use choice_loglikelihoods_reference (slow; for checks)
};

struct ZeroShotResult {
    int64_t items = 0;
    double acc = 0.0;
    double acc_stderr = 0.0;
    double acc_norm = 0.0;
    double acc_norm_stderr = 0.0;
    double chance = 0.0;              // mean over items of 1 / number of choices
    int64_t truncated = 0;            // items whose context was cut to fit the model
    int64_t boundary_merges = 0;      // choices whose tokens crossed the context boundary
    int64_t tokens_forwarded = 0;     // tokens run through the model
    std::vector<ChoiceScore> scores;  // per item, in file order
};

// sqrt(p (1 - p) / (n - 1)): the standard error of a mean of n 0/1 outcomes (0 when n < 2).
double accuracy_stderr(double p, int64_t n);

// The result without its per-item scores: items, acc, acc_stderr, acc_norm, acc_norm_stderr, chance,
// truncated, boundary_merges, tokens_forwarded.
nlohmann::json zeroshot_result_json(const ZeroShotResult& result);

ZeroShotResult evaluate_zeroshot(const Model& model, const Tokenizer& tokenizer,
                                 const std::vector<ChoiceItem>& items, const ZeroShotOptions& options);

}  // namespace pbs2p
