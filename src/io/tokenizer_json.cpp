// Hugging Face tokenizer.json (model type BPE) -> VocabSpec. Recognised layouts:
//   byte-level: pre_tokenizer ByteLevel(use_regex) or Split(regex) + ByteLevel; decoder ByteLevel.
//   metaspace:  normalizer Prepend("▁") + Replace(" ", "▁"), or pre_tokenizer Metaspace; byte_fallback.
// A NFC normalizer is accepted and treated as the identity (inputs are expected to be NFC already).
#include <charconv>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/hf_config.h"
#include "io/tokenizer_vocab.h"

namespace pbs2p {
namespace {

using nlohmann::json;

// A tokenizer JSON file, refused before reading when it is larger than the tokenizer limits allow.
json read_tokenizer_json(const std::string& path) {
    check_tokenizer_file_size(path);
    return read_json_file(path);
}

// Components of a Sequence (or the single component itself); null -> none.
std::vector<json> components(const json& node, const char* list_key) {
    if (node.is_null()) return {};
    if (node.value("type", "") == "Sequence") return node.at(list_key).get<std::vector<json>>();
    return {node};
}

std::string pattern_text(const json& pattern) {
    if (pattern.contains("Regex")) return pattern.at("Regex").get<std::string>();
    return pattern.at("String").get<std::string>();
}

// A token id from JSON: an integer below the vocabulary limit, checked before any conversion (a float such as
// 6.7e48 converted to an integer is undefined behaviour).
int32_t json_token_id(const json& value, const std::string& what) {
    PBS2P_CHECK(value.is_number_integer(), "{}: token id {} is not an integer", what, value.dump());
    const bool huge = value.is_number_unsigned() && value.get<uint64_t>() > uint64_t{INT64_MAX};
    const int64_t id = huge ? INT64_MAX : value.get<int64_t>();
    check_vocab_id(id, what);
    return static_cast<int32_t>(id);
}

// A decimal token id used as a JSON key (tokenizer_config.json added_tokens_decoder).
int64_t parse_token_id(const std::string& text) {
    int64_t id = -1;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), id);
    PBS2P_CHECK(err == std::errc() && end == text.data() + text.size() && !text.empty(),
                "tokenizer_config.json: added_tokens_decoder key '{}' is not a token id", text);
    return id;
}

// Token text from a tokenizer_config.json field: "text" or {"content": "text"}.
std::string config_token(const json& config, const char* key) {
    if (!config.contains(key)) return {};
    const json& v = config.at(key);
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content")) return v.at("content").get<std::string>();
    return {};
}

void read_normalizer(const json& root, VocabSpec& spec) {
    bool prepend = false, replace = false;
    for (const json& n : components(root.value("normalizer", json()), "normalizers")) {
        const std::string type = n.value("type", "");
        if (type == "Prepend" && n.at("prepend") == "\u2581") {
            prepend = true;
        } else if (type == "Replace" && pattern_text(n.at("pattern")) == " " && n.at("content") == "\u2581") {
            replace = true;
        } else if (type == "NFC") {
            // identity on NFC input
        } else {
            fail("{}: unsupported normalizer '{}' (supported: Prepend(\u2581), Replace(' ', \u2581), NFC)", spec.source,
                 type);
        }
    }
    if (replace) {
        spec.mapping = TextMapping::metaspace;
        spec.prepend = prepend ? PrependScheme::always : PrependScheme::never;
    }
}

void read_pre_tokenizer(const json& root, VocabSpec& spec) {
    for (const json& p : components(root.value("pre_tokenizer", json()), "pretokenizers")) {
        const std::string type = p.value("type", "");
        if (type == "ByteLevel") {
            spec.mapping = TextMapping::byte_level;
            PBS2P_CHECK(!p.value("add_prefix_space", false), "{}: ByteLevel add_prefix_space is not supported",
                        spec.source);
            if (p.value("use_regex", true)) spec.pre = PreTokenizer::gpt2;
        } else if (type == "Split") {
            PBS2P_CHECK(p.value("behavior", "") == "Isolated" && !p.value("invert", false),
                        "{}: unsupported Split pre-tokenizer (supported: Isolated, not inverted)", spec.source);
            spec.pre = pre_tokenizer_from_regex(pattern_text(p.at("pattern")), spec.source);
        } else if (type == "Metaspace") {
            spec.mapping = TextMapping::metaspace;
            const std::string scheme = p.value("prepend_scheme", p.value("add_prefix_space", true) ? "always" : "never");
            spec.prepend = scheme == "first" ? PrependScheme::first
                           : scheme == "never" ? PrependScheme::never
                                               : PrependScheme::always;
            spec.metaspace_split = p.value("split", true);
        } else {
            fail("{}: unsupported pre_tokenizer '{}' (supported: ByteLevel, Split with the GPT-2/LLaMA-3/Qwen2 "
                 "regex, Metaspace)",
                 spec.source, type);
        }
    }
}

// Id of a token given by its text: added tokens first, then the vocabulary; -1 when absent or empty.
int32_t token_id_of(const VocabSpec& spec, const std::string& text) {
    if (text.empty()) return -1;
    for (const auto& a : spec.added)
        if (a.content == text) return a.id;
    for (size_t i = 0; i < spec.tokens.size(); ++i)
        if (spec.tokens[i] == text) return static_cast<int32_t>(i);
    return -1;
}

// Added tokens and BOS/EOS of a byte-level vocabulary from tokenizer_config.json (GPT-2/OPT layout).
void read_config_tokens(const json& config, VocabSpec& spec, bool add_bos_default) {
    if (config.contains("added_tokens_decoder") && config.at("added_tokens_decoder").is_object()) {
        for (const auto& [id, token] : config.at("added_tokens_decoder").items()) {
            const int64_t value = parse_token_id(id);
            check_vocab_id(value, "tokenizer_config.json added_tokens_decoder");
            spec.added.push_back({static_cast<int32_t>(value), token.at("content").get<std::string>(),
                                  token.value("special", false)});
        }
    }
    bool add_bos = add_bos_default;
    if (config.contains("add_bos_token") && config.at("add_bos_token").is_boolean())
        add_bos = config.at("add_bos_token").get<bool>();
    spec.bos_id = add_bos ? token_id_of(spec, config_token(config, "bos_token")) : -1;
    spec.eos_id = token_id_of(spec, config_token(config, "eos_token"));
    // Special tokens that are whole vocabulary entries (GPT-2's <|endoftext|>, OPT's </s>) are matched too.
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
        const std::string text = config_token(config, key);
        const int32_t id = token_id_of(spec, text);
        bool known = false;
        for (const auto& a : spec.added) known = known || a.id == id;
        if (id >= 0 && !known) spec.added.push_back({id, text, true});
    }
}

}  // namespace

std::unique_ptr<Tokenizer> load_vocab_merges(const std::string& vocab_path, const std::string& merges_path,
                                             const std::string& config_path) {
    const json vocab = read_tokenizer_json(vocab_path);
    const json config = config_path.empty() ? json::object() : read_tokenizer_json(config_path);
    VocabSpec spec;
    spec.source = vocab_path;
    spec.kind = "bpe-bytelevel";
    spec.mapping = TextMapping::byte_level;
    spec.pre = PreTokenizer::gpt2;
    try {
        PBS2P_CHECK(vocab.is_object(), "{}: not a vocab.json (expected an object of token -> id)", vocab_path);
        for (const auto& [text, id] : vocab.items()) {
            const int32_t i = json_token_id(id, fmt::format("{}: vocab entry '{}'", vocab_path, text));
            if (static_cast<size_t>(i) >= spec.tokens.size()) spec.tokens.resize(i + 1);
            spec.tokens[i] = text;
        }
        read_config_tokens(config, spec, false);
    } catch (const json::exception& e) {
        fail("{}: malformed vocabulary: {}", vocab_path, e.what());
    }
    std::ifstream in(merges_path, std::ios::binary);
    PBS2P_CHECK(in, "{}: cannot open", merges_path);
    check_tokenizer_file_size(merges_path);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line.rfind("#version", 0) == 0) continue;
        const size_t space = line.find(' ', 1);
        PBS2P_CHECK(space != std::string::npos, "{}: malformed merge '{}'", merges_path, line);
        spec.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    }
    return make_vocab_tokenizer(std::move(spec));
}

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path, const std::string& config_path) {
    const json root = read_tokenizer_json(path);
    const json config = config_path.empty() ? json::object() : read_tokenizer_json(config_path);
    VocabSpec spec;
    spec.source = path;
    try {
        PBS2P_CHECK(root.is_object() && root.contains("model"), "{}: not a tokenizer.json (no 'model')", path);
        const json& model = root.at("model");
        const std::string type = model.value("type", "");
        PBS2P_CHECK(type == "BPE", "{}: unsupported tokenizer model type '{}' (supported: BPE)", path, type);
        PBS2P_CHECK(model.value("continuing_subword_prefix", json()).is_null() || model.at("continuing_subword_prefix") == "",
                    "{}: BPE continuing_subword_prefix is not supported", path);

        spec.mapping = TextMapping::byte_level;
        bool has_metaspace = false;
        read_normalizer(root, spec);
        has_metaspace = spec.mapping == TextMapping::metaspace;
        read_pre_tokenizer(root, spec);
        has_metaspace = has_metaspace || spec.mapping == TextMapping::metaspace;
        if (has_metaspace) spec.mapping = TextMapping::metaspace;
        spec.kind = spec.mapping == TextMapping::byte_level ? "bpe-bytelevel" : "spm-bpe";
        spec.strip_leading_space = spec.mapping == TextMapping::metaspace && spec.prepend != PrependScheme::never;

        for (const auto& [text, id] : model.at("vocab").items()) {
            const int32_t i = json_token_id(id, fmt::format("{}: vocab entry '{}'", path, text));
            if (static_cast<size_t>(i) >= spec.tokens.size()) spec.tokens.resize(i + 1);
            spec.tokens[i] = text;
        }
        for (const json& m : model.at("merges")) {
            if (m.is_array()) {
                spec.merges.emplace_back(m.at(0).get<std::string>(), m.at(1).get<std::string>());
            } else {
                const std::string s = m.get<std::string>();
                const size_t space = s.find(' ', 1);
                PBS2P_CHECK(space != std::string::npos, "{}: malformed merge '{}'", path, s);
                spec.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
            }
        }
        spec.byte_fallback = model.value("byte_fallback", false);
        spec.fuse_unk = model.value("fuse_unk", false);
        spec.ignore_merges = model.value("ignore_merges", false);

        for (const json& a : root.value("added_tokens", json::array())) {
            const int32_t id = json_token_id(a.at("id"), fmt::format("{}: added token", path));
            spec.added.push_back({id, a.at("content").get<std::string>(), a.value("special", false)});
        }
        const json unk = model.value("unk_token", json());
        if (unk.is_string()) spec.unk_id = token_id_of(spec, unk.get<std::string>());

        // BOS: tokenizer_config.json decides; otherwise a TemplateProcessing post-processor that starts with a
        // special token; otherwise none. The metaspace (LLaMA-style) family defaults to adding BOS.
        std::string bos_text = config_token(config, "bos_token");
        bool add_bos = spec.mapping == TextMapping::metaspace;
        const json post = root.value("post_processor", json());
        if (!post.is_null() && post.value("type", "") == "TemplateProcessing") {
            const json& first = post.at("single").at(0);
            add_bos = first.contains("SpecialToken");
            if (add_bos && bos_text.empty()) bos_text = first.at("SpecialToken").at("id").get<std::string>();
        }
        if (config.contains("add_bos_token") && config.at("add_bos_token").is_boolean())
            add_bos = config.at("add_bos_token").get<bool>();
        spec.bos_id = add_bos ? token_id_of(spec, bos_text) : -1;
        spec.eos_id = token_id_of(spec, config_token(config, "eos_token"));
    } catch (const json::exception& e) {
        fail("{}: malformed tokenizer.json: {}", path, e.what());
    }
    return make_vocab_tokenizer(std::move(spec));
}

}  // namespace pbs2p
