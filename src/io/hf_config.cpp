#include "io/hf_config.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"

namespace pbs2p {
namespace {

using json = nlohmann::json;

struct ArchitectureRow {
    const char* name;
    ModelFamily family;
};

constexpr ArchitectureRow kArchitectures[] = {
    {"LlamaForCausalLM", ModelFamily::llama},
    {"MistralForCausalLM", ModelFamily::llama},
    {"Qwen2ForCausalLM", ModelFamily::llama},
    {"OPTForCausalLM", ModelFamily::opt},
};

// Typed access to config keys with the file and key named in errors.
class Reader {
public:
    Reader(const json& j, const std::string& source) : j_(j), source_(source) {}

    bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

    int64_t integer(const char* key) const {
        PBS2P_CHECK(has(key), "{}: missing key '{}'", source_, key);
        return integer_value(j_[key], key);
    }
    int64_t integer(const char* key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }

    double number(const char* key, double fallback) const {
        if (!has(key)) return fallback;
        PBS2P_CHECK(j_[key].is_number(), "{}: key '{}' must be a number", source_, key);
        return j_[key].get<double>();
    }
    bool boolean(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        PBS2P_CHECK(j_[key].is_boolean(), "{}: key '{}' must be true or false", source_, key);
        return j_[key].get<bool>();
    }
    std::string string(const char* key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        PBS2P_CHECK(j_[key].is_string(), "{}: key '{}' must be a string", source_, key);
        return j_[key].get<std::string>();
    }
    // A token id given as an integer or a list of integers (first one taken).
    int32_t token_id(const char* key) const {
        if (!has(key)) return -1;
        const json& v = j_[key];
        if (v.is_array()) return v.empty() ? -1 : static_cast<int32_t>(integer_value(v[0], key));
        return static_cast<int32_t>(integer_value(v, key));
    }
    const json& raw(const char* key) const { return j_[key]; }
    const std::string& source() const { return source_; }

private:
    int64_t integer_value(const json& v, const char* key) const {
        PBS2P_CHECK(v.is_number_integer(), "{}: key '{}' must be an integer", source_, key);
        return v.get<int64_t>();
    }
    const json& j_;
    const std::string& source_;
};

void parse_rope_scaling(const Reader& r, ModelConfig& c) {
    if (!r.has("rope_scaling")) return;
    const json& s = r.raw("rope_scaling");
    PBS2P_CHECK(s.is_object(), "{}: rope_scaling must be an object", r.source());
    std::string source = r.source() + " rope_scaling";
    Reader sr(s, source);
    std::string type = sr.string("rope_type", sr.string("type", ""));
    if (type == "default" || type.empty()) return;
    PBS2P_CHECK(type == "llama3" || type == "linear",
                "{}: unsupported rope_scaling type '{}' (supported: llama3, linear)", r.source(), type);
    c.rope_scaling.type = type;
    c.rope_scaling.factor = sr.number("factor", 1.0);
    PBS2P_CHECK(c.rope_scaling.factor > 0, "{}: rope_scaling factor must be positive", r.source());
    if (type == "llama3") {
        c.rope_scaling.low_freq_factor = sr.number("low_freq_factor", 1.0);
        c.rope_scaling.high_freq_factor = sr.number("high_freq_factor", 4.0);
        c.rope_scaling.original_max_position_embeddings = sr.integer("original_max_position_embeddings", 8192);
        PBS2P_CHECK(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor,
                    "{}: rope_scaling high_freq_factor must exceed low_freq_factor", r.source());
    }
}

void parse_llama(const Reader& r, ModelConfig& c) {
    c.hidden_size = r.integer("hidden_size");
    c.intermediate_size = r.integer("intermediate_size");
    c.num_layers = r.integer("num_hidden_layers");
    c.num_heads = r.integer("num_attention_heads");
    c.num_kv_heads = r.integer("num_key_value_heads", c.num_heads);
    PBS2P_CHECK(c.num_heads > 0, "{}: num_attention_heads must be positive", r.source());
    PBS2P_CHECK(r.has("head_dim") || c.hidden_size % c.num_heads == 0,
                "{}: hidden_size ({}) is not divisible by num_attention_heads ({})", r.source(), c.hidden_size,
                c.num_heads);
    c.head_dim = r.integer("head_dim", c.hidden_size / c.num_heads);
    c.max_position_embeddings = r.integer("max_position_embeddings", 2048);
    c.embed_dim = c.hidden_size;
    c.norm = NormKind::rms;
    c.norm_eps = r.number("rms_norm_eps", 1e-6);
    c.activation = Activation::silu;
    std::string act = r.string("hidden_act", "silu");
    PBS2P_CHECK(act == "silu", "{}: hidden_act '{}' is not supported (only silu)", r.source(), act);
    c.gated_mlp = true;
    c.use_rope = true;
    c.rope_theta = r.number("rope_theta", 10000.0);
    parse_rope_scaling(r, c);
    bool qwen2 = c.model_type == "qwen2" || c.architecture == "Qwen2ForCausalLM";
    bool attention_bias = r.boolean("attention_bias", false);
    c.qkv_bias = attention_bias || qwen2;
    c.o_bias = attention_bias && !qwen2;
    c.mlp_bias = r.boolean("mlp_bias", false);
    c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
    if (r.has("sliding_window") && r.boolean("use_sliding_window", c.model_type == "mistral")) {
        c.sliding_window = r.integer("sliding_window");
    }
}

void parse_opt(const Reader& r, ModelConfig& c) {
    c.hidden_size = r.integer("hidden_size");
    c.intermediate_size = r.integer("ffn_dim");
    c.num_layers = r.integer("num_hidden_layers");
    c.num_heads = r.integer("num_attention_heads");
    c.num_kv_heads = c.num_heads;
    PBS2P_CHECK(c.num_heads > 0, "{}: num_attention_heads must be positive", r.source());
    c.head_dim = c.hidden_size / c.num_heads;
    c.max_position_embeddings = r.integer("max_position_embeddings");
    c.embed_dim = r.integer("word_embed_proj_dim", c.hidden_size);
    c.norm = NormKind::layer;
    c.norm_eps = 1e-5;
    c.norm_affine = r.boolean("layer_norm_elementwise_affine", true);
    c.pre_norm = r.boolean("do_layer_norm_before", true);
    c.final_norm = c.pre_norm && !r.boolean("_remove_final_layer_norm", false);
    std::string act = r.string("activation_function", "relu");
    PBS2P_CHECK(act == "relu", "{}: activation_function '{}' is not supported (only relu)", r.source(), act);
    c.activation = Activation::relu;
    c.gated_mlp = false;
    c.use_rope = false;
    c.position_offset = 2;
    bool bias = r.boolean("enable_bias", true);
    c.qkv_bias = c.o_bias = c.mlp_bias = bias;
    c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
}

// One row per size a config gives: it must be positive and at most the limit, checked before any tensor
// of that size is allocated.
struct SizeRow {
    const char* key;
    int64_t ModelConfig::*field;
    int64_t limit;
};
constexpr SizeRow kSizes[] = {
    {"vocab_size", &ModelConfig::vocab_size, config_limits::kMaxVocabSize},
    {"hidden_size", &ModelConfig::hidden_size, config_limits::kMaxHiddenSize},
    {"intermediate size", &ModelConfig::intermediate_size, config_limits::kMaxIntermediateSize},
    {"num_hidden_layers", &ModelConfig::num_layers, config_limits::kMaxLayers},
    {"num_attention_heads", &ModelConfig::num_heads, config_limits::kMaxHeads},
    {"num_key_value_heads", &ModelConfig::num_kv_heads, config_limits::kMaxHeads},
    {"head_dim", &ModelConfig::head_dim, config_limits::kMaxHeadDim},
    {"max_position_embeddings", &ModelConfig::max_position_embeddings, config_limits::kMaxPositions},
    {"word_embed_proj_dim", &ModelConfig::embed_dim, config_limits::kMaxHiddenSize},
};

void validate(const ModelConfig& c, const std::string& source) {
    for (const SizeRow& row : kSizes) {
        const int64_t v = c.*row.field;
        PBS2P_CHECK(v > 0, "{}: {} must be positive (got {})", source, row.key, v);
        PBS2P_CHECK(v <= row.limit, "{}: {} = {} exceeds the limit of {} (config_limits in io/hf_config.h)",
                    source, row.key, v, row.limit);
    }
    PBS2P_CHECK(c.sliding_window >= 0 && c.sliding_window <= config_limits::kMaxPositions,
                "{}: sliding_window = {} is outside [0, {}]", source, c.sliding_window,
                config_limits::kMaxPositions);
    PBS2P_CHECK(c.num_heads % c.num_kv_heads == 0,
                "{}: num_attention_heads ({}) must be a multiple of num_key_value_heads ({})", source, c.num_heads,
                c.num_kv_heads);
    if (c.family == ModelFamily::opt) {
        PBS2P_CHECK(c.hidden_size % c.num_heads == 0, "{}: hidden_size ({}) is not divisible by num_attention_heads ({})",
                    source, c.hidden_size, c.num_heads);
    }
    if (c.use_rope) PBS2P_CHECK(c.head_dim % 2 == 0, "{}: head_dim ({}) must be even for rotary embeddings", source, c.head_dim);
    PBS2P_CHECK(c.norm_eps > 0, "{}: norm eps must be positive", source);
}

}  // namespace

int64_t ModelConfig::parameter_count() const {
    int64_t h = hidden_size;
    int64_t norm_params = norm == NormKind::rms ? h : (norm_affine ? 2 * h : 0);
    int64_t attn = h * q_dim() + 2 * h * kv_dim() + q_dim() * h;
    if (qkv_bias) attn += q_dim() + 2 * kv_dim();
    if (o_bias) attn += h;
    int64_t mlp = (gated_mlp ? 3 : 2) * h * intermediate_size;
    if (mlp_bias) mlp += (gated_mlp ? 2 : 1) * intermediate_size + h;
    int64_t per_block = attn + mlp + 2 * norm_params;
    int64_t total = num_layers * per_block + vocab_size * embed_dim;
    if (!tie_word_embeddings) total += vocab_size * embed_dim;
    if (final_norm) total += norm_params;
    if (!use_rope) total += (max_position_embeddings + position_offset) * h;
    if (embed_dim != h) total += 2 * embed_dim * h;
    return total;
}

std::string supported_architectures() {
    std::string names;
    for (const auto& row : kArchitectures) names += (names.empty() ? "" : ", ") + std::string(row.name);
    return names;
}

ModelConfig parse_hf_config(const nlohmann::json& j, const std::string& source) {
    PBS2P_CHECK(j.is_object(), "{}: config must be a JSON object", source);
    Reader r(j, source);
    ModelConfig c;
    if (r.has("architectures")) {
        const json& a = r.raw("architectures");
        PBS2P_CHECK(a.is_array() && !a.empty() && a[0].is_string(), "{}: 'architectures' must be a list of names",
                    source);
        c.architecture = a[0].get<std::string>();
    }
    c.model_type = r.string("model_type", "");
    const ArchitectureRow* row = nullptr;
    for (const auto& candidate : kArchitectures) {
        if (c.architecture == candidate.name) row = &candidate;
    }
    PBS2P_CHECK(row, "{}: unsupported architecture '{}' (supported: {})", source,
                c.architecture.empty() ? c.model_type : c.architecture, supported_architectures());
    c.family = row->family;
    c.vocab_size = r.integer("vocab_size");
    if (c.family == ModelFamily::opt) {
        parse_opt(r, c);
    } else {
        parse_llama(r, c);
    }
    c.bos_token_id = r.token_id("bos_token_id");
    c.eos_token_id = r.token_id("eos_token_id");
    c.torch_dtype = r.string("torch_dtype", "");
    validate(c, source);
    return c;
}

ModelConfig load_hf_config(const std::string& path) {
    std::filesystem::path p(path);
    if (std::filesystem::is_directory(p)) p /= "config.json";
    PBS2P_CHECK(std::ifstream(p).good(), "{}: cannot open config: {}", p.string(), std::strerror(errno));
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(p, ec);
    PBS2P_CHECK(ec || bytes <= config_limits::kMaxConfigBytes,
                "{}: {} bytes exceeds the limit of {} for a config file (config_limits in io/hf_config.h)",
                p.string(), bytes, config_limits::kMaxConfigBytes);
    return parse_hf_config(read_json_file(p.string()), p.string());
}

json read_json_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    PBS2P_CHECK(in, "{}: cannot open", path);
    try {
        return json::parse(in);
    } catch (const json::parse_error& e) {
        fail("{}: malformed JSON (syntax error at byte {})", path, e.byte);
    } catch (const json::exception& e) {
        fail("{}: malformed JSON: {}", path, e.what());
    }
}

}  // namespace pbs2p
