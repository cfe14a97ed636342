#include "eval/zeroshot.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/progress.h"
#include "eval/perplexity.h"

namespace pbs2p {
namespace {

ChoiceItem parse_item(const std::string& path, int64_t line_number, const std::string& line) {
    const std::string where = fmt::format("{}:{}", path, line_number);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
        fail("{}: not valid JSON ({})", where, e.what());
    }
    PBS2P_CHECK(j.is_object(), "{}: an item must be a JSON object with context, choices and gold", where);
    ChoiceItem item;
    item.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>()
                                                      : fmt::format("line {}", line_number);
    PBS2P_CHECK(j.contains("context") && j["context"].is_string(), "{}: 'context' must be a string", where);
    item.context = j["context"].get<std::string>();
    PBS2P_CHECK(j.contains("choices") && j["choices"].is_array() && j["choices"].size() >= 2,
                "{}: 'choices' must be a list of at least 2 strings", where);
    for (const auto& c : j["choices"]) {
        PBS2P_CHECK(c.is_string() && !c.get<std::string>().empty(),
                    "{}: every choice must be a non-empty string", where);
        item.choices.push_back(c.get<std::string>());
    }
    PBS2P_CHECK(j.contains("gold") && j["gold"].is_number_integer(), "{}: 'gold' must be an integer index",
                where);
    item.gold = j["gold"].get<int64_t>();
    PBS2P_CHECK(item.gold >= 0 && item.gold < static_cast<int64_t>(item.choices.size()),
                "{}: 'gold' {} is out of range for {} choices", where, item.gold, item.choices.size());
    return item;
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

std::vector<ChoiceItem> read_choice_tasks(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    PBS2P_CHECK(in, "{}: cannot open task file", path);
    std::vector<ChoiceItem> items;
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
        if (std::all_of(line.begin(), line.end(), is_space)) continue;
        items.push_back(parse_item(path, n, line));
    }
    PBS2P_CHECK(!in.bad(), "{}: read error", path);
    PBS2P_CHECK(!items.empty(), "{}: task file has no items", path);
    return items;
}

EncodedChoiceItem encode_choice_item(const Tokenizer& tokenizer, const ChoiceItem& item,
                                     int64_t max_positions) {
    size_t keep = item.context.size();
    while (keep > 0 && is_space(item.context[keep - 1])) --keep;
    const std::string context = item.context.substr(0, keep);
    const std::string moved = item.context.substr(keep);  // becomes the front of every continuation
    EncodedChoiceItem out;
    const bool empty_context = context.empty();
    if (empty_context) {
        const int32_t prefix = tokenizer.bos_id() >= 0 ? tokenizer.bos_id() : tokenizer.eos_id();
        PBS2P_CHECK(prefix >= 0, "item {}: empty context and the tokenizer has neither BOS nor EOS", item.id);
        out.context = {prefix};
    } else {
        out.context = tokenizer.encode(context, true);
        PBS2P_CHECK(!out.context.empty(), "item {}: the context encodes to no tokens", item.id);
    }
    size_t longest = 0;
    for (size_t c = 0; c < item.choices.size(); ++c) {
        std::vector<int32_t> continuation;
        if (empty_context) {
            continuation = tokenizer.encode(moved + item.choices[c], false);
        } else {
            const std::vector<int32_t> whole = tokenizer.encode(context + moved + item.choices[c], true);
            if (whole.size() > out.context.size())
                continuation.assign(whole.begin() + out.context.size(), whole.end());
            if (!std::equal(out.context.begin(), out.context.end(), whole.begin(),
                            whole.begin() + std::min(whole.size(), out.context.size())))
                ++out.boundary_merges;
        }
        PBS2P_CHECK(!continuation.empty(), "item {}: choice {} adds no tokens to the context", item.id, c);
        longest = std::max(longest, continuation.size());
        out.continuations.push_back(std::move(continuation));
    }
    // Positions fed to the model: the context and all but the last token of the longest continuation.
    const int64_t budget = max_positions - static_cast<int64_t>(longest) + 1;
    PBS2P_CHECK(budget >= 2, "item {}: a choice of {} tokens does not fit the model's {} positions", item.id,
                longest, max_positions);
    const int64_t excess = static_cast<int64_t>(out.context.size()) - budget;
    if (excess > 0) {
        const bool has_bos = tokenizer.bos_id() >= 0 && out.context.front() == tokenizer.bos_id();
        const auto first_dropped = out.context.begin() + (has_bos ? 1 : 0);
        out.context.erase(first_dropped, first_dropped + excess);
        out.truncated = true;
    }
    return out;
}

std::vector<double> choice_loglikelihoods(const Model& model, const EncodedChoiceItem& item, KvCache& cache) {
    const int64_t vocab = model.config().vocab_size;
    cache.clear();
    const Matrix hidden = model.forward_hidden(item.context, &cache);
    const Matrix last = model.final_logits(hidden, hidden.rows - 1, 1);  // predicts each choice's first token
    const int64_t context_length = cache.length;
    std::vector<double> loglikelihoods;
    for (const std::vector<int32_t>& continuation : item.continuations) {
        double ll = -token_nll(last.row(0), vocab, continuation.front());
        if (continuation.size() > 1) {
            cache.length = context_length;  // rewind to the shared context
            const std::vector<int32_t> fed(continuation.begin(), continuation.end() - 1);
            const Matrix h = model.forward_hidden(fed, &cache);
            for (int64_t r0 = 0; r0 < h.rows; r0 += kLogitChunkRows) {
                const int64_t rows = std::min(kLogitChunkRows, h.rows - r0);
                const Matrix logits = model.final_logits(h, r0, rows);
                for (int64_t i = 0; i < rows; ++i)
                    ll -= token_nll(logits.row(i), vocab, continuation[r0 + i + 1]);
            }
        }
        loglikelihoods.push_back(ll);
    }
    return loglikelihoods;
}

std::vector<double> choice_loglikelihoods_reference(const Model& model, const EncodedChoiceItem& item) {
    const int64_t vocab = model.config().vocab_size;
    std::vector<double> loglikelihoods;
    for (const std::vector<int32_t>& continuation : item.continuations) {
        EvalWindow window;
        window.tokens = item.context;
        window.tokens.insert(window.tokens.end(), continuation.begin(), continuation.end());
        window.first_scored = static_cast<int64_t>(item.context.size()) - 1;
        // The last token is only a target; it is fed as well (as the perplexity path does) unless that
        // would overrun the position table.
        const bool fits =
            static_cast<int64_t>(window.tokens.size()) <= model.config().max_position_embeddings;
        const Matrix hidden = model.forward_hidden(
            fits ? window.tokens : std::vector<int32_t>(window.tokens.begin(), window.tokens.end() - 1),
            nullptr);
        double nll = 0.0;
        for_each_scored_chunk(window, [&](int64_t row0, int64_t rows) {
            const Matrix logits = model.final_logits(hidden, row0, rows);
            for (int64_t i = 0; i < rows; ++i)
                nll += token_nll(logits.row(i), vocab, window.tokens[row0 + i + 1]);
        });
        loglikelihoods.push_back(-nll);
    }
    return loglikelihoods;
}

int64_t utf8_length(const std::string& text) {
    return std::count_if(text.begin(), text.end(),
                         [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

int64_t first_argmax(const std::vector<double>& values) {
    return std::distance(values.begin(), std::max_element(values.begin(), values.end()));
}

ChoiceScore score_choices(const ChoiceItem& item, std::vector<double> loglikelihoods) {
    ChoiceScore s;
    std::vector<double> normalised(loglikelihoods.size());
    for (size_t c = 0; c < loglikelihoods.size(); ++c)
        normalised[c] = loglikelihoods[c] / static_cast<double>(utf8_length(item.choices[c]));
    s.pred = first_argmax(loglikelihoods);
    s.pred_norm = first_argmax(normalised);
    s.loglikelihoods = std::move(loglikelihoods);
    return s;
}

double accuracy_stderr(double p, int64_t n) {
    return n < 2 ? 0.0 : std::sqrt(p * (1.0 - p) / static_cast<double>(n - 1));
}

ZeroShotResult evaluate_zeroshot(const Model& model, const Tokenizer& tokenizer,
                                 const std::vector<ChoiceItem>& items, const ZeroShotOptions& options) {
    const int64_t max_positions = model.config().max_position_embeddings;
    int64_t n = static_cast<int64_t>(items.size());
    if (options.max_items > 0) n = std::min(n, options.max_items);
    PBS2P_CHECK(n > 0, "zeroshot: no items to score");
    ZeroShotResult r;
    KvCache cache = model.new_cache(max_positions);
    int64_t correct = 0, correct_norm = 0;
    double chance = 0.0;
    Progress progress("zeroshot", n, options.progress);
    for (int64_t k = 0; k < n; ++k) {
        const ChoiceItem& item = items[static_cast<size_t>(k)];
        const EncodedChoiceItem encoded = encode_choice_item(tokenizer, item, max_positions);
        r.truncated += encoded.truncated ? 1 : 0;
        r.boundary_merges += encoded.boundary_merges;
        const auto context_tokens = static_cast<int64_t>(encoded.context.size());
        if (!options.reference) r.tokens_forwarded += context_tokens;
        for (const auto& c : encoded.continuations)
            r.tokens_forwarded += static_cast<int64_t>(c.size()) + (options.reference ? context_tokens : -1);
        ChoiceScore s =
            score_choices(item, options.reference ? choice_loglikelihoods_reference(model, encoded)
                                                  : choice_loglikelihoods(model, encoded, cache));
        correct += s.pred == item.gold ? 1 : 0;
        correct_norm += s.pred_norm == item.gold ? 1 : 0;
        chance += 1.0 / static_cast<double>(item.choices.size());
        r.scores.push_back(std::move(s));
        progress.update(k + 1,
                        fmt::format("acc {:.3f} acc_norm {:.3f}", static_cast<double>(correct) / (k + 1),
                                    static_cast<double>(correct_norm) / (k + 1)));
    }
    progress.finish();
    r.items = n;
    r.acc = static_cast<double>(correct) / static_cast<double>(n);
    r.acc_norm = static_cast<double>(correct_norm) / static_cast<double>(n);
    r.acc_stderr = accuracy_stderr(r.acc, n);
    r.acc_norm_stderr = accuracy_stderr(r.acc_norm, n);
    r.chance = chance / static_cast<double>(n);
    return r;
}

nlohmann::json zeroshot_result_json(const ZeroShotResult& r) {
    return {{"items", r.items},
            {"acc", r.acc},
            {"acc_stderr", r.acc_stderr},
            {"acc_norm", r.acc_norm},
            {"acc_norm_stderr", r.acc_norm_stderr},
            {"chance", r.chance},
            {"truncated", r.truncated},
            {"boundary_merges", r.boundary_merges},
            {"tokens_forwarded", r.tokens_forwarded}};
}

}  // namespace pbs2p
