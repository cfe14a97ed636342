// Vocabularies stored in GGUF metadata (llama.cpp's conventions), selected by `tokenizer.ggml.model`:
//   llama: SentencePiece vocabulary, merges by score, <0xNN> byte fallback, "▁" space prefix.
//   gpt2:  byte-level BPE, merges from tokenizer.ggml.merges, pre-tokenizer from tokenizer.ggml.pre.
#include <array>

#include "core/error.h"
#include "io/gguf.h"
#include "io/tokenizer_vocab.h"

namespace pbs2p {
namespace {

constexpr int64_t type_id(GgufTokenType t) {
    return static_cast<int64_t>(t);
}
constexpr int64_t normal = type_id(GgufTokenType::normal), unknown = type_id(GgufTokenType::unknown),
                  control = type_id(GgufTokenType::control),
                  user_defined = type_id(GgufTokenType::user_defined),
                  unused = type_id(GgufTokenType::unused);

struct PreRow {
    const char* name;
    PreTokenizer kind;
    bool ignore_merges;
};
// tokenizer.ggml.pre names -> our patterns.
const std::array<PreRow, 6> pre_names{{
    {"gpt-2", PreTokenizer::gpt2, false},
    {"gpt2", PreTokenizer::gpt2, false},
    {"llama-bpe", PreTokenizer::llama3, true},
    {"llama3", PreTokenizer::llama3, true},
    {"llama-v3", PreTokenizer::llama3, true},
    {"qwen2", PreTokenizer::qwen2, false},
}};

std::string supported_pre_names() {
    std::string s;
    for (const auto& row : pre_names) s += (s.empty() ? "" : ", ") + std::string(row.name);
    return s;
}

void read_common(const GgufMetadata& m, VocabSpec& spec) {
    spec.tokens = m.get_strings("tokenizer.ggml.tokens");
    const size_t n = spec.tokens.size();
    std::vector<int64_t> types(n, normal);
    if (m.has("tokenizer.ggml.token_type")) {
        types = m.get_ints("tokenizer.ggml.token_type");
        PBS2P_CHECK(types.size() == n, "{}: tokenizer.ggml.token_type has {} entries for {} tokens", m.path(),
                    types.size(), n);
    }
    for (size_t id = 0; id < n; ++id) {
        if (types[id] == user_defined) spec.added.push_back({int32_t(id), spec.tokens[id], false});
        if (types[id] == control || types[id] == unknown || types[id] == unused)
            spec.control_ids.push_back(int32_t(id));
    }
    const auto id_key = [&](const char* key) -> int32_t {
        const int64_t id = m.get_int(key, -1);
        PBS2P_CHECK(id >= -1 && id < int64_t(n), "{}: {} = {} out of range", m.path(), key, id);
        return static_cast<int32_t>(id);
    };
    spec.bos_id = id_key("tokenizer.ggml.bos_token_id");
    spec.eos_id = id_key("tokenizer.ggml.eos_token_id");
    spec.unk_id = id_key("tokenizer.ggml.unknown_token_id");
}

void read_llama(const GgufMetadata& m, VocabSpec& spec) {
    spec.kind = "gguf-llama";
    spec.mapping = TextMapping::metaspace;
    spec.rule = MergeRule::scored_concat;
    const std::vector<double> scores = m.get_reals("tokenizer.ggml.scores");
    PBS2P_CHECK(scores.size() == spec.tokens.size(), "{}: tokenizer.ggml.scores has {} entries for {} tokens",
                m.path(), scores.size(), spec.tokens.size());
    spec.scores.assign(scores.begin(), scores.end());
    const bool space_prefix = m.get_bool("tokenizer.ggml.add_space_prefix", true);
    spec.prepend = space_prefix ? PrependScheme::always : PrependScheme::never;
    spec.strip_leading_space = space_prefix;
    spec.byte_fallback = true;
    if (spec.unk_id < 0) spec.unk_id = 0;
    if (!m.get_bool("tokenizer.ggml.add_bos_token", true)) spec.bos_id = -1;
}

void read_gpt2(const GgufMetadata& m, VocabSpec& spec) {
    spec.kind = "gguf-gpt2";
    spec.mapping = TextMapping::byte_level;
    spec.rule = MergeRule::ranked_pairs;
    const std::string pre = m.get_string("tokenizer.ggml.pre", "gpt-2");
    const PreRow* row = nullptr;
    for (const auto& r : pre_names)
        if (pre == r.name) row = &r;
    PBS2P_CHECK(row, "{}: unsupported tokenizer.ggml.pre '{}' (supported: {})", m.path(), pre,
                supported_pre_names());
    spec.pre = row->kind;
    spec.ignore_merges = row->ignore_merges;
    for (const std::string& merge : m.get_strings("tokenizer.ggml.merges")) {
        const size_t space = merge.find(' ', 1);
        PBS2P_CHECK(space != std::string::npos, "{}: malformed tokenizer.ggml.merges entry '{}'", m.path(),
                    merge);
        spec.merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
    }
    // llama.cpp adds BOS for BPE vocabularies only when asked to.
    if (!m.get_bool("tokenizer.ggml.add_bos_token", false)) spec.bos_id = -1;
}

struct ModelRow {
    const char* name;
    void (*read)(const GgufMetadata&, VocabSpec&);
};
const std::array<ModelRow, 2> models{{{"llama", read_llama}, {"gpt2", read_gpt2}}};

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path) {
    const GgufMetadata m = GgufMetadata::read(path);
    const std::string model = m.get_string("tokenizer.ggml.model");
    VocabSpec spec;
    spec.source = path;
    for (const auto& row : models) {
        if (model != row.name) continue;
        read_common(m, spec);
        row.read(m, spec);
        return make_vocab_tokenizer(std::move(spec));
    }
    fail("{}: unsupported tokenizer.ggml.model '{}' (supported: llama, gpt2)", path, model);
}

}  // namespace pbs2p
