// Hugging Face `config.json` for the supported decoder-only families, reduced to what the forward pass
// needs. LLaMA-style (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) and OPT (OPTForCausalLM).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pbs2p {

// Largest sizes accepted from a config.json, well above every published model of the supported families;
// a config beyond them is refused, naming the limit, before anything is allocated for it.
namespace config_limits {
inline constexpr int64_t kMaxConfigBytes = 16ll << 20;  // the file itself
inline constexpr int64_t kMaxVocabSize = 1ll << 22;
inline constexpr int64_t kMaxHiddenSize = 1ll << 16;
inline constexpr int64_t kMaxIntermediateSize = 1ll << 18;
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxHeads = 1024;
inline constexpr int64_t kMaxHeadDim = 1024;
inline constexpr int64_t kMaxPositions = 1ll << 24;
}  // namespace config_limits

enum class ModelFamily { llama, opt };
enum class NormKind { rms, layer };
enum class Activation { silu, relu };

// Frequency scaling of rotary embeddings ("rope_scaling" in config.json).
struct RopeScaling {
    std::string type;  // "" (none), "linear" or "llama3"
    double factor = 1.0;
    double low_freq_factor = 1.0;
    double high_freq_factor = 4.0;
    int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
    std::string architecture;  // e.g. "LlamaForCausalLM"
    std::string model_type;    // e.g. "llama", "qwen2", "opt"
    ModelFamily family = ModelFamily::llama;

    int64_t vocab_size = 0;
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;  // FFN width (OPT: ffn_dim)
    int64_t num_layers = 0;
    int64_t num_heads = 0;
    int64_t num_kv_heads = 0;
    int64_t head_dim = 0;
    int64_t max_position_embeddings = 0;
    int64_t embed_dim = 0;  // token-embedding width (OPT word_embed_proj_dim; else hidden_size)

    NormKind norm = NormKind::rms;
    double norm_eps = 1e-6;
    bool norm_affine = true;    // OPT layer_norm_elementwise_affine
    bool pre_norm = true;       // OPT do_layer_norm_before
    bool final_norm = true;     // a norm before the LM head
    Activation activation = Activation::silu;
    bool gated_mlp = true;      // SwiGLU (gate/up/down) vs fc1/fc2
    bool use_rope = true;       // rotary (LLaMA) vs learned positions (OPT)
    int64_t position_offset = 0;  // OPT learned positions start at row 2

    double rope_theta = 10000.0;
    RopeScaling rope_scaling;

    bool qkv_bias = false;
    bool o_bias = false;
    bool mlp_bias = false;
    bool tie_word_embeddings = false;

    int64_t sliding_window = 0;  // 0 = none
    int32_t bos_token_id = -1;
    int32_t eos_token_id = -1;
    std::string torch_dtype;

    int64_t q_dim() const { return num_heads * head_dim; }
    int64_t kv_dim() const { return num_kv_heads * head_dim; }
    // Parameters of the whole model (tied LM head counted once).
    int64_t parameter_count() const;
};

// Names of the architectures accepted by parse_hf_config, for messages.
std::string supported_architectures();

// Parses and validates a config; `source` names the file in error messages.
ModelConfig parse_hf_config(const nlohmann::json& json, const std::string& source);
// `path` is a config.json or a directory holding one.
ModelConfig load_hf_config(const std::string& path);

// Parses a JSON file (config.json, tokenizer.json); a syntax error names the file and the byte offset,
// never the bytes themselves.
nlohmann::json read_json_file(const std::string& path);

}  // namespace pbs2p
