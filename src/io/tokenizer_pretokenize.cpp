// Hand-written matchers for the pre-tokenizer regexes (leftmost alternative wins, greedy with the
// backtracking these patterns need), on code points classified as letter / number / space / other:
//   gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   qwen2:  as llama3 with \p{N} instead of \p{N}{1,3}
#include <array>

#include "core/error.h"
#include "io/tokenizer_vocab.h"
#include "io/unicode.h"

namespace pbs2p {
namespace {

const char* const gpt2_regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const llama3_regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const qwen2_regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Text {
    const std::vector<uint32_t>& cps;
    std::vector<CharClass> classes;
    size_t size() const { return cps.size(); }
    // End of the run of class `c` starting at i.
    size_t run_end(size_t i, CharClass c) const {
        while (i < size() && classes[i] == c) ++i;
        return i;
    }
    bool is_newline(size_t i) const { return cps[i] == '\r' || cps[i] == '\n'; }
};

uint32_t ascii_lower(uint32_t c, bool fold) { return fold && c >= 'A' && c <= 'Z' ? c + 32 : c; }

// 's 't 're 've 'm 'll 'd at i (ASCII case-insensitive when `fold`); length or 0.
size_t match_contraction(const Text& t, size_t i, bool fold) {
    if (t.cps[i] != '\'' || i + 1 >= t.size()) return 0;
    const uint32_t a = ascii_lower(t.cps[i + 1], fold);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= t.size()) return 0;
    const uint32_t b = ascii_lower(t.cps[i + 2], fold);
    return ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) ? 3 : 0;
}

// \s+(?!\S)|\s+ at a space: the run minus its last space when a non-space follows (and the run is longer
// than one), else the whole run.
size_t match_trailing_space(const Text& t, size_t i) {
    const size_t end = t.run_end(i, CharClass::space);
    if (end == t.size() || end - i == 1) return end - i;
    return end - i - 1;
}

size_t match_gpt2(const Text& t, size_t i) {
    if (size_t n = match_contraction(t, i, false)) return n;
    const size_t j = t.cps[i] == ' ' ? i + 1 : i;
    if (j < t.size() && t.classes[j] != CharClass::space) return t.run_end(j, t.classes[j]) - i;
    return match_trailing_space(t, i);
}

template <size_t max_digits>
size_t match_llama3_family(const Text& t, size_t i) {
    if (size_t n = match_contraction(t, i, true)) return n;
    const CharClass c = t.classes[i];
    if (c == CharClass::letter) return t.run_end(i, CharClass::letter) - i;
    if (c != CharClass::number && !t.is_newline(i) && i + 1 < t.size() && t.classes[i + 1] == CharClass::letter)
        return t.run_end(i + 1, CharClass::letter) - i;
    if (c == CharClass::number) {
        size_t k = i;
        while (k < t.size() && k - i < max_digits && t.classes[k] == CharClass::number) ++k;
        return k - i;
    }
    const size_t j = t.cps[i] == ' ' ? i + 1 : i;
    if (j < t.size() && t.classes[j] == CharClass::other) {
        size_t k = t.run_end(j, CharClass::other);
        while (k < t.size() && t.is_newline(k)) ++k;
        return k - i;
    }
    // Here c is space. \s*[\r\n]+: up to and including the last newline of the space run.
    const size_t end = t.run_end(i, CharClass::space);
    for (size_t k = end; k > i; --k)
        if (t.is_newline(k - 1)) return k - i;
    return match_trailing_space(t, i);
}

using Matcher = size_t (*)(const Text&, size_t);

struct PatternRow {
    PreTokenizer kind;
    const char* name;
    const char* regex;
    Matcher match;
};
const std::array<PatternRow, 3> patterns{{
    {PreTokenizer::gpt2, "gpt2", gpt2_regex, match_gpt2},
    {PreTokenizer::llama3, "llama3", llama3_regex, match_llama3_family<3>},
    {PreTokenizer::qwen2, "qwen2", qwen2_regex, match_llama3_family<1>},
}};

}  // namespace

const char* pre_tokenizer_name(PreTokenizer kind) {
    for (const auto& row : patterns)
        if (row.kind == kind) return row.name;
    return "none";
}

PreTokenizer pre_tokenizer_from_regex(const std::string& regex, const std::string& source) {
    for (const auto& row : patterns)
        if (regex == row.regex) return row.kind;
    fail("{}: unsupported pre-tokenizer regex '{}' (supported: the GPT-2, LLaMA-3 and Qwen2 patterns)", source, regex);
}

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& words) {
    words.clear();
    if (text.empty()) return;
    if (kind == PreTokenizer::none) {
        words.emplace_back(0, static_cast<uint32_t>(text.size()));
        return;
    }
    Matcher match = nullptr;
    for (const auto& row : patterns)
        if (row.kind == kind) match = row.match;
    const Codepoints cp = utf8_codepoints(text);
    Text t{cp.cps, {}};
    t.classes.resize(cp.cps.size());
    for (size_t i = 0; i < cp.cps.size(); ++i) t.classes[i] = char_class(cp.cps[i]);
    for (size_t i = 0; i < t.size();) {
        const size_t n = match(t, i);  // every pattern matches at least one code point
        words.emplace_back(cp.offsets[i], cp.offsets[i + n]);
        i += n;
    }
}

}  // namespace pbs2p
