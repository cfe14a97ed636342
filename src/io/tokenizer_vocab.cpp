// The merge engine shared by all our vocabularies: symbols in a linked list, candidate merges in a heap
// ordered by (priority, position), stale candidates dropped when popped. O(n log n) per pre-token.
#include "io/tokenizer_vocab.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "io/unicode.h"

namespace pbs2p {
namespace {

const std::string_view metaspace = "\xE2\x96\x81";  // U+2581 "▁"

// GPT-2's byte alphabet: printable Latin-1 bytes map to themselves, the rest to 256, 257, ...
const std::array<uint32_t, 256>& byte_alphabet() {
    static const auto table = [] {
        std::array<uint32_t, 256> t{};
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
            t[b] = printable ? b : next++;
        }
        return t;
    }();
    return table;
}

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Symbol {
    int32_t id;            // -1: not in the vocabulary (byte fallback or unk at output)
    uint32_t begin, end;   // bytes of the word
    int32_t prev, next;    // linked list; -1 at the ends
};

struct Candidate {
    double priority;  // lower merges first
    uint32_t begin;   // position of the left symbol: ties go to the leftmost
    int32_t left, right, merged;
    uint32_t end;  // end of the right symbol when the candidate was made (detects stale entries)
    bool operator<(const Candidate& o) const {  // for std::priority_queue (max-heap): invert
        return priority != o.priority ? priority > o.priority : begin > o.begin;
    }
};

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

std::string byte_token_text(int b) { return fmt::format("<0x{:02X}>", b); }

}  // namespace

void check_vocab_id(int64_t id, const std::string& what) {
    PBS2P_CHECK(id >= 0 && id < tokenizer_limits::kMaxVocabSize,
                "{}: token id {} outside [0, {}) (tokenizer_limits::kMaxVocabSize)", what, id,
                tokenizer_limits::kMaxVocabSize);
}

void check_tokenizer_file_size(const std::string& path) {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    PBS2P_CHECK(ec || bytes <= static_cast<uintmax_t>(tokenizer_limits::kMaxFileBytes),
                "{}: {} bytes exceeds the limit of {} for a tokenizer file (tokenizer_limits::kMaxFileBytes)",
                path, bytes, tokenizer_limits::kMaxFileBytes);
}

namespace {

class VocabTokenizer final : public Tokenizer {
public:
    explicit VocabTokenizer(VocabSpec spec) : spec_(std::move(spec)) {
        const auto& tokens = spec_.tokens;
        for (size_t id = 0; id < tokens.size(); ++id)
            if (!tokens[id].empty()) token_ids_.insert_or_assign(tokens[id], static_cast<int32_t>(id));  // last wins, as llama.cpp
        PBS2P_CHECK(tokens.size() <= static_cast<size_t>(tokenizer_limits::kMaxVocabSize),
                    "{}: {} tokens exceed the limit of {} (tokenizer_limits::kMaxVocabSize)", spec_.source,
                    tokens.size(), tokenizer_limits::kMaxVocabSize);
        int32_t size = static_cast<int32_t>(tokens.size());
        for (const auto& a : spec_.added) {
            check_vocab_id(a.id, fmt::format("{}: added token '{}'", spec_.source, a.content));
            size = std::max(size, a.id + 1);
        }
        vocab_size_ = size;

        if (spec_.rule == MergeRule::ranked_pairs) {
            merges_.reserve(spec_.merges.size());
            for (size_t rank = 0; rank < spec_.merges.size(); ++rank) {
                const auto& [a, b] = spec_.merges[rank];
                const int32_t ia = find(a), ib = find(b), im = find(a + b);
                if (ia < 0 || ib < 0 || im < 0) continue;  // merge of tokens outside the vocabulary: unusable
                merges_.emplace(pair_key(ia, ib), std::make_pair(static_cast<int32_t>(rank), im));
            }
        } else {
            PBS2P_CHECK(spec_.scores.size() == tokens.size(), "{}: {} scores for {} tokens", spec_.source,
                        spec_.scores.size(), tokens.size());
        }
        for (int b = 0; b < 256; ++b) {
            std::string text;
            if (spec_.mapping == TextMapping::byte_level)
                utf8_append(text, byte_alphabet()[b]);
            else
                text = byte_token_text(b);
            byte_ids_[b] = find(text);
        }
        if (spec_.mapping == TextMapping::byte_level)
            for (int b = 0; b < 256; ++b)
                PBS2P_CHECK(byte_ids_[b] >= 0, "{}: byte-level vocabulary lacks the token for byte {}", spec_.source, b);

        // Code point pairs that occur inside some token: a merge can only span a boundary between such a pair.
        if (spec_.mapping == TextMapping::metaspace) {
            for (const auto& token : tokens) {
                uint32_t prev = 0;
                for (size_t pos = 0, n = 0; pos < token.size(); pos += n) {
                    const uint32_t cp = utf8_decode(token, pos, n);
                    if (pos > 0) joinable_pairs_.insert(pair_key(int32_t(prev), int32_t(cp)));
                    prev = cp;
                }
            }
        }

        // Decoded bytes of every id; special/control ids decode to nothing.
        skip_.assign(vocab_size_, 0);
        for (int32_t id : spec_.control_ids)
            if (id >= 0 && id < vocab_size_) skip_[id] = 1;
        pieces_.resize(vocab_size_);
        for (size_t id = 0; id < tokens.size(); ++id) pieces_[id] = decode_token_text(tokens[id]);
        for (const auto& a : spec_.added) {
            PBS2P_CHECK(a.id >= 0 && !a.content.empty(), "{}: invalid added token '{}' (id {})", spec_.source,
                        a.content, a.id);
            pieces_[a.id] = a.content;
            if (a.special) skip_[a.id] = 1;
            added_by_first_byte_[static_cast<unsigned char>(a.content[0])].push_back(&a);
        }
        for (auto& list : added_by_first_byte_)
            std::stable_sort(list.begin(), list.end(),
                             [](const AddedToken* x, const AddedToken* y) { return x->content.size() > y->content.size(); });
    }

    std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
        std::vector<int32_t> out;
        out.reserve(text.size() / 3 + 2);
        if (add_bos && spec_.bos_id >= 0) out.push_back(spec_.bos_id);
        Cache cache;
        bool first = true;
        size_t segment_begin = 0;
        // Added tokens split the text; each piece of text between them is encoded on its own.
        for (size_t pos = 0; pos < text.size();) {
            const AddedToken* token = match_added(text, pos);
            if (!token) {
                ++pos;
                continue;
            }
            encode_segment(text.substr(segment_begin, pos - segment_begin), first, cache, out);
            out.push_back(token->id);
            first = false;
            pos += token->content.size();
            segment_begin = pos;
        }
        encode_segment(text.substr(segment_begin), first, cache, out);
        return out;
    }

    std::string decode(const std::vector<int32_t>& ids) const override {
        std::string out;
        for (int32_t id : ids) {
            PBS2P_CHECK(id >= 0 && id < vocab_size_, "{}: token id {} out of range [0, {})", spec_.source, id,
                        vocab_size_);
            if (!skip_[id]) out += pieces_[id];
        }
        if (spec_.strip_leading_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
        return out;
    }

    std::string piece(int32_t id) const override {
        PBS2P_CHECK(id >= 0 && id < vocab_size_, "{}: token id {} out of range [0, {})", spec_.source, id, vocab_size_);
        return skip_[id] ? std::string() : pieces_[id];
    }

    int32_t vocab_size() const override { return vocab_size_; }
    int32_t bos_id() const override { return spec_.bos_id; }
    int32_t eos_id() const override { return spec_.eos_id; }
    std::string kind() const override { return spec_.kind; }

private:
    using Cache = std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>;
    static constexpr size_t max_cached_word = 64;

    int32_t find(std::string_view text) const {
        auto it = token_ids_.find(text);
        return it == token_ids_.end() ? -1 : it->second;
    }

    // A word as the vocabulary stores it (byte-level: each byte as its alphabet code point).
    std::string stored_form(std::string_view word) const {
        if (spec_.mapping != TextMapping::byte_level) return std::string(word);
        std::string out;
        out.reserve(word.size() * 2);
        for (char c : word) utf8_append(out, byte_alphabet()[static_cast<unsigned char>(c)]);
        return out;
    }

    // Bytes a stored token stands for.
    std::string decode_token_text(const std::string& token) const {
        std::string out;
        if (spec_.mapping == TextMapping::byte_level) {
            for (size_t pos = 0, n = 0; pos < token.size(); pos += n) {
                const uint32_t cp = utf8_decode(token, pos, n);
                const int b = byte_from_codepoint(cp);
                if (b >= 0)
                    out += static_cast<char>(b);
                else
                    out.append(token, pos, n);
            }
            return out;
        }
        if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>') {
            int b = -1;  // "<0xQ9>" is an ordinary token, not a byte
            const auto [end, err] = std::from_chars(token.data() + 3, token.data() + 5, b, 16);
            if (err == std::errc() && end == token.data() + 5 && byte_token_text(b) == token)
                return std::string(1, static_cast<char>(b));
        }
        for (size_t pos = 0; pos < token.size();) {
            if (token.compare(pos, metaspace.size(), metaspace) == 0) {
                out += ' ';
                pos += metaspace.size();
            } else {
                out += token[pos++];
            }
        }
        return out;
    }

    const AddedToken* match_added(std::string_view text, size_t pos) const {
        for (const AddedToken* a : added_by_first_byte_[static_cast<unsigned char>(text[pos])])
            if (text.compare(pos, a->content.size(), a->content) == 0) return a;
        return nullptr;
    }

    void encode_segment(std::string_view segment, bool first, Cache& cache, std::vector<int32_t>& out) const {
        if (segment.empty()) return;
        std::string mapped;
        std::string_view text = segment;
        if (spec_.mapping == TextMapping::metaspace) {
            const bool prefix = spec_.prepend == PrependScheme::always || (spec_.prepend == PrependScheme::first && first);
            mapped.reserve(segment.size() + 16);
            if (prefix) mapped += metaspace;
            for (char c : segment) {
                if (c == ' ')
                    mapped += metaspace;
                else
                    mapped += c;
            }
            text = mapped;
        }
        std::vector<std::pair<uint32_t, uint32_t>> words;
        if (spec_.mapping == TextMapping::metaspace && spec_.metaspace_split)
            split_before_metaspace(text, words);
        else if (spec_.mapping == TextMapping::metaspace && spec_.pre == PreTokenizer::none)
            split_unjoinable(text, words);
        else
            pre_tokenize(spec_.pre, text, words);
        for (const auto& [begin, end] : words) {
            const std::string_view word = text.substr(begin, end - begin);
            if (word.size() <= max_cached_word) {
                auto it = cache.find(word);
                if (it == cache.end()) {
                    std::vector<int32_t> ids;
                    encode_word(word, ids);
                    it = cache.emplace(std::string(word), std::move(ids)).first;
                }
                out.insert(out.end(), it->second.begin(), it->second.end());
            } else {
                encode_word(word, out);
            }
        }
    }

    static void split_before_metaspace(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& words) {
        words.clear();
        uint32_t begin = 0;
        for (size_t pos = 1; pos < text.size(); ++pos) {
            if (text.compare(pos, metaspace.size(), metaspace) == 0) {
                words.emplace_back(begin, static_cast<uint32_t>(pos));
                begin = static_cast<uint32_t>(pos);
            }
        }
        if (begin < text.size()) words.emplace_back(begin, static_cast<uint32_t>(text.size()));
    }

    // Splits between code points that no token contains side by side: no merge can cross such a boundary,
    // so the pieces tokenize independently with the same result (and short pieces hit the word cache).
    void split_unjoinable(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& words) const {
        words.clear();
        uint32_t begin = 0, prev = 0;
        for (size_t pos = 0, n = 0; pos < text.size(); pos += n) {
            const uint32_t cp = utf8_decode(text, pos, n);
            if (pos > 0 && !joinable_pairs_.count(pair_key(int32_t(prev), int32_t(cp)))) {
                words.emplace_back(begin, static_cast<uint32_t>(pos));
                begin = static_cast<uint32_t>(pos);
            }
            prev = cp;
        }
        if (begin < text.size()) words.emplace_back(begin, static_cast<uint32_t>(text.size()));
    }

    // Appends the ids of one pre-token.
    void encode_word(std::string_view word, std::vector<int32_t>& out) const {
        if (spec_.ignore_merges) {
            if (int32_t id = find(stored_form(word)); id >= 0) {
                out.push_back(id);
                return;
            }
        }
        std::vector<Symbol> symbols;
        symbols.reserve(word.size());
        if (spec_.mapping == TextMapping::byte_level) {
            for (size_t i = 0; i < word.size(); ++i)
                symbols.push_back({byte_ids_[static_cast<unsigned char>(word[i])], uint32_t(i), uint32_t(i + 1), 0, 0});
        } else {
            for (size_t pos = 0; pos < word.size();) {
                const size_t n = std::min(utf8_length(static_cast<unsigned char>(word[pos])), word.size() - pos);
                symbols.push_back({find(word.substr(pos, n)), uint32_t(pos), uint32_t(pos + n), 0, 0});
                pos += n;
            }
        }
        merge(word, symbols);
        emit(word, symbols, out);
    }

    // Best merge of two adjacent symbols, if any.
    bool candidate(std::string_view word, const std::vector<Symbol>& s, int32_t left, Candidate& c) const {
        const int32_t right = s[left].next;
        if (right < 0) return false;
        const Symbol &a = s[left], &b = s[right];
        if (spec_.rule == MergeRule::ranked_pairs) {
            if (a.id < 0 || b.id < 0) return false;
            auto it = merges_.find(pair_key(a.id, b.id));
            if (it == merges_.end()) return false;
            c = {double(it->second.first), a.begin, left, right, it->second.second, b.end};
        } else {
            const int32_t id = find(word.substr(a.begin, b.end - a.begin));
            if (id < 0) return false;
            c = {-double(spec_.scores[id]), a.begin, left, right, id, b.end};
        }
        return true;
    }

    void merge(std::string_view word, std::vector<Symbol>& s) const {
        const int32_t n = static_cast<int32_t>(s.size());
        for (int32_t i = 0; i < n; ++i) {
            s[i].prev = i - 1;
            s[i].next = i + 1 < n ? i + 1 : -1;
        }
        std::priority_queue<Candidate> heap;
        Candidate c;
        for (int32_t i = 0; i + 1 < n; ++i)
            if (candidate(word, s, i, c)) heap.push(c);
        while (!heap.empty()) {
            const Candidate top = heap.top();
            heap.pop();
            Symbol &a = s[top.left], &b = s[top.right];
            if (a.end == a.begin || b.end == b.begin || a.next != top.right || b.end != top.end) continue;  // stale
            a.id = top.merged;
            a.end = b.end;
            a.next = b.next;
            if (b.next >= 0) s[b.next].prev = top.left;
            b.begin = b.end;  // dead
            if (a.prev >= 0 && candidate(word, s, a.prev, c)) heap.push(c);
            if (candidate(word, s, top.left, c)) heap.push(c);
        }
    }

    void emit(std::string_view word, const std::vector<Symbol>& s, std::vector<int32_t>& out) const {
        bool last_unk = false;
        for (int32_t i = s.empty() ? -1 : 0; i >= 0; i = s[i].next) {
            const Symbol& sym = s[i];
            if (sym.id >= 0) {
                out.push_back(sym.id);
                last_unk = false;
                continue;
            }
            bool all_bytes = spec_.byte_fallback;
            for (uint32_t k = sym.begin; all_bytes && k < sym.end; ++k)
                all_bytes = byte_ids_[static_cast<unsigned char>(word[k])] >= 0;
            if (all_bytes) {
                for (uint32_t k = sym.begin; k < sym.end; ++k) out.push_back(byte_ids_[static_cast<unsigned char>(word[k])]);
                last_unk = false;
                continue;
            }
            PBS2P_CHECK(spec_.unk_id >= 0, "{}: text '{}' has no token and the vocabulary has no unknown token",
                        spec_.source, std::string(word.substr(sym.begin, sym.end - sym.begin)));
            if (!(spec_.fuse_unk && last_unk)) out.push_back(spec_.unk_id);
            last_unk = true;
        }
    }

    VocabSpec spec_;
    int32_t vocab_size_ = 0;
    TokenMap token_ids_;
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (left, right) -> (rank, merged)
    std::unordered_set<uint64_t> joinable_pairs_;  // metaspace: (code point, next code point) inside a token
    std::array<int32_t, 256> byte_ids_{};
    std::vector<std::string> pieces_;
    std::vector<uint8_t> skip_;
    std::array<std::vector<const AddedToken*>, 256> added_by_first_byte_;
};

}  // namespace

uint32_t byte_to_codepoint(uint8_t byte) { return byte_alphabet()[byte]; }

int byte_from_codepoint(uint32_t cp) {
    static const auto reverse = [] {
        std::array<int16_t, 512> r;
        r.fill(-1);
        for (int b = 0; b < 256; ++b) r[byte_alphabet()[b]] = static_cast<int16_t>(b);
        return r;
    }();
    return cp < reverse.size() ? reverse[cp] : -1;
}

std::unique_ptr<Tokenizer> make_vocab_tokenizer(VocabSpec spec) {
    PBS2P_CHECK(!spec.tokens.empty(), "{}: empty vocabulary", spec.source);
    return std::make_unique<VocabTokenizer>(std::move(spec));
}

}  // namespace pbs2p
