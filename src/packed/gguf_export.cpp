// The tables of the GGUF export: HF architecture -> GGUF architecture, HF tensor names -> GGUF names and
// roles, export type -> ggml types per role; then hyper-parameters and the SentencePiece vocabulary as
// GGUF metadata, and one tensor at a time through GgufWriter.
#include "packed/gguf_export.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/half.h"
#include "core/rng.h"
#include "io/gguf_writer.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/tokenizer_vocab.h"
#include "packed/ggml_ternary.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

struct FamilyRow {
    const char* hf_architecture;
    const char* gguf_architecture;
    bool permute_qk;  // llama.cpp's `llama` rotary layout wants q/k rows interleaved per head
    bool o_mlp_bias;  // o_proj and MLP biases have a GGUF slot (q/k/v biases always have one)
};
const FamilyRow families[] = {
    {"LlamaForCausalLM", "llama", true, true},
    {"MistralForCausalLM", "llama", true, true},
    {"Qwen2ForCausalLM", "qwen2", false, false},
};

enum class Role { embedding, head, norm, linear, bias };
enum class Permute { none, q, k };  // rows regrouped with num_heads (q) or num_kv_heads (k)

struct NameRow {
    const char* hf;    // per-block rows: relative to "model.layers.N."
    const char* gguf;  // per-block rows: relative to "blk.N."
    Role role;
    Permute permute = Permute::none;
    bool optional_bias = false;  // an o_proj / MLP bias (see FamilyRow::o_mlp_bias)
};
const NameRow global_names[] = {
    {"model.embed_tokens.weight", "token_embd.weight", Role::embedding},
    {"model.norm.weight", "output_norm.weight", Role::norm},
    {"lm_head.weight", "output.weight", Role::head},
};
const NameRow block_names[] = {
    {"input_layernorm.weight", "attn_norm.weight", Role::norm},
    {"self_attn.q_proj.weight", "attn_q.weight", Role::linear, Permute::q},
    {"self_attn.k_proj.weight", "attn_k.weight", Role::linear, Permute::k},
    {"self_attn.v_proj.weight", "attn_v.weight", Role::linear},
    {"self_attn.o_proj.weight", "attn_output.weight", Role::linear},
    {"self_attn.q_proj.bias", "attn_q.bias", Role::bias, Permute::q},
    {"self_attn.k_proj.bias", "attn_k.bias", Role::bias, Permute::k},
    {"self_attn.v_proj.bias", "attn_v.bias", Role::bias},
    {"self_attn.o_proj.bias", "attn_output.bias", Role::bias, Permute::none, true},
    {"post_attention_layernorm.weight", "ffn_norm.weight", Role::norm},
    {"mlp.gate_proj.weight", "ffn_gate.weight", Role::linear},
    {"mlp.up_proj.weight", "ffn_up.weight", Role::linear},
    {"mlp.down_proj.weight", "ffn_down.weight", Role::linear},
    {"mlp.gate_proj.bias", "ffn_gate.bias", Role::bias, Permute::none, true},
    {"mlp.up_proj.bias", "ffn_up.bias", Role::bias, Permute::none, true},
    {"mlp.down_proj.bias", "ffn_down.bias", Role::bias, Permute::none, true},
};
// Checkpoint entries that carry no weights (recomputed by every runtime).
bool ignorable(const std::string& hf_name) {
    return hf_name.ends_with(".rotary_emb.inv_freq");
}

struct TypeRow {
    GgufExportType type;
    const char* name;
    GgmlType linear, embedding;  // embedding also used for the LM head
    int64_t file_type;           // llama.h LLAMA_FTYPE_*
};
const TypeRow types[] = {
    {GgufExportType::f32, "f32", GgmlType::f32, GgmlType::f32, 0},
    {GgufExportType::f16, "f16", GgmlType::f16, GgmlType::f16, 1},
    {GgufExportType::tq1_0, "tq1_0", GgmlType::tq1_0, GgmlType::f16, 36},
    {GgufExportType::tq2_0, "tq2_0", GgmlType::tq2_0, GgmlType::f16, 37},
};
const TypeRow& type_row(GgufExportType type) {
    for (const TypeRow& row : types)
        if (row.type == type) return row;
    fail("unknown GGUF export type {}", static_cast<int>(type));
}

const char* const decoder_linear_names[] = {"attn_q",   "attn_k", "attn_v",  "attn_output",
                                            "ffn_gate", "ffn_up", "ffn_down"};

// Row r of the result is row source(r) of the input: per head of `rows / heads` rows, the two halves
// [0, half) and [half, 2 half) are interleaved (llama.cpp's rotary layout for the `llama` architecture).
int64_t permuted_source_row(int64_t r, int64_t rows, int64_t heads) {
    const int64_t per_head = rows / heads, half = per_head / 2;
    const int64_t head = r / per_head, within = r % per_head;
    return head * per_head + (within % 2) * half + within / 2;
}

std::vector<uint8_t> permute_rows(const std::vector<uint8_t>& bytes, int64_t rows, int64_t heads) {
    const size_t row_bytes = bytes.size() / static_cast<size_t>(rows);
    std::vector<uint8_t> out(bytes.size());
    for (int64_t r = 0; r < rows; ++r)
        std::memcpy(out.data() + r * row_bytes,
                    bytes.data() + permuted_source_row(r, rows, heads) * row_bytes, row_bytes);
    return out;
}

std::vector<uint8_t> encode_floats(GgmlType type, const float* x, int64_t rows, int64_t cols,
                                   const std::string& layer) {
    if (is_ternary_ggml_type(type)) return encode_ternary_matrix(type, x, rows, cols, layer);
    return encode_float_tensor(type, x, rows * cols);
}

nlohmann::json read_json_if_present(const fs::path& path) {
    if (!fs::exists(path)) return nlohmann::json::object();
    std::ifstream in(path, std::ios::binary);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    PBS2P_CHECK(!j.is_discarded() && j.is_object(), "{}: malformed JSON", path.string());
    return j;
}

bool json_bool(const nlohmann::json& j, const char* key, bool fallback) {
    return j.contains(key) && j.at(key).is_boolean() ? j.at(key).get<bool>() : fallback;
}

// The SentencePiece-style tables of a `llama` GGUF vocabulary.
void write_llama_vocabulary(GgufWriter& w, const SentencePieceVocab& vocab, bool add_bos, bool add_eos) {
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_string("tokenizer.ggml.pre", "default");
    w.set("tokenizer.ggml.tokens", GgufValue::of_strings(vocab.pieces));
    w.set("tokenizer.ggml.scores",
          GgufValue::of_reals(GgufType::float32,
                              std::vector<double>(vocab.scores.begin(), vocab.scores.end())));
    std::vector<int64_t> token_types;
    for (GgufTokenType t : vocab.types) token_types.push_back(static_cast<int64_t>(t));
    w.set("tokenizer.ggml.token_type", GgufValue::of_ints(GgufType::int32, std::move(token_types)));
    const std::pair<const char*, int32_t> ids[] = {{"tokenizer.ggml.bos_token_id", vocab.bos_id},
                                                   {"tokenizer.ggml.eos_token_id", vocab.eos_id},
                                                   {"tokenizer.ggml.unknown_token_id", vocab.unk_id},
                                                   {"tokenizer.ggml.padding_token_id", vocab.pad_id}};
    for (const auto& [key, id] : ids)
        if (id >= 0) w.set_u32(key, id);
    w.set_bool("tokenizer.ggml.add_bos_token", add_bos);
    w.set_bool("tokenizer.ggml.add_eos_token", add_eos);
}

// tokenizer.model (+ tokenizer_config.json) as a `llama` GGUF vocabulary of config.vocab_size entries.
void add_sentencepiece_vocabulary(GgufWriter& w, const fs::path& dir, const ModelConfig& config) {
    const fs::path model_path = dir / "tokenizer.model";
    PBS2P_CHECK(fs::exists(model_path),
                "{}: no tokenizer.model (the GGUF export writes SentencePiece vocabularies only)",
                dir.string());
    SentencePieceVocab vocab = read_sentencepiece_vocab(model_path.string());
    const int64_t n = config.vocab_size;
    PBS2P_CHECK(int64_t(vocab.pieces.size()) <= n, "{}: {} pieces but the model has vocab_size {}",
                model_path.string(), vocab.pieces.size(), n);
    // Embedding rows beyond the SentencePiece model get unused placeholder tokens.
    for (int64_t id = int64_t(vocab.pieces.size()); id < n; ++id) {
        vocab.pieces.push_back(fmt::format("[PAD{}]", id));
        vocab.scores.push_back(-10000.0f);
        vocab.types.push_back(GgufTokenType::unused);
    }
    const nlohmann::json tokenizer_config = read_json_if_present(dir / "tokenizer_config.json");
    // Added tokens that SentencePiece does not know (or knows as ordinary pieces).
    if (tokenizer_config.contains("added_tokens_decoder") &&
        tokenizer_config["added_tokens_decoder"].is_object()) {
        for (const auto& [key, token] : tokenizer_config["added_tokens_decoder"].items()) {
            const int64_t id = std::stoll(key);
            if (id < 0 || id >= n || !token.contains("content") || !token["content"].is_string()) continue;
            const GgufTokenType type = vocab.types[id];
            if (type != GgufTokenType::normal && type != GgufTokenType::unused) continue;
            vocab.pieces[id] = token["content"].get<std::string>();
            vocab.types[id] =
                json_bool(token, "special", false) ? GgufTokenType::control : GgufTokenType::user_defined;
        }
    }
    write_llama_vocabulary(w, vocab, json_bool(tokenizer_config, "add_bos_token", true),
                           json_bool(tokenizer_config, "add_eos_token", false));
    if (tokenizer_config.contains("add_prefix_space") && tokenizer_config["add_prefix_space"].is_boolean())
        w.set_bool("tokenizer.ggml.add_space_prefix", tokenizer_config["add_prefix_space"].get<bool>());
}

void add_hyper_parameters(GgufWriter& w, const std::string& arch, const ModelConfig& c,
                          const std::string& source) {
    const std::string p = arch + ".";
    w.set_u32(p + "vocab_size", c.vocab_size);
    w.set_u32(p + "context_length", c.max_position_embeddings);
    w.set_u32(p + "embedding_length", c.hidden_size);
    w.set_u32(p + "feed_forward_length", c.intermediate_size);
    w.set_u32(p + "block_count", c.num_layers);
    w.set_u32(p + "attention.head_count", c.num_heads);
    w.set_u32(p + "attention.head_count_kv", c.num_kv_heads);
    w.set_f32(p + "attention.layer_norm_rms_epsilon", c.norm_eps);
    w.set_f32(p + "rope.freq_base", c.rope_theta);
    w.set_u32(p + "rope.dimension_count", c.head_dim);
    if (c.head_dim * c.num_heads != c.hidden_size) {
        w.set_u32(p + "attention.key_length", c.head_dim);
        w.set_u32(p + "attention.value_length", c.head_dim);
    }
    if (c.rope_scaling.type == "linear") {
        w.set_string(p + "rope.scaling.type", "linear");
        w.set_f32(p + "rope.scaling.factor", c.rope_scaling.factor);
    } else {
        PBS2P_CHECK(c.rope_scaling.type.empty(),
                    "{}: rope_scaling type '{}' is not supported by the GGUF export", source,
                    c.rope_scaling.type);
    }
}

const FamilyRow& family_of(const ModelConfig& c, const std::string& source) {
    for (const FamilyRow& row : families)
        if (c.architecture == row.hf_architecture) {
            PBS2P_CHECK(
                c.norm == NormKind::rms && c.activation == Activation::silu && c.gated_mlp && c.use_rope,
                "{}: {} with non-LLaMA blocks cannot be exported to GGUF", source, c.architecture);
            return row;
        }
    std::string names;
    for (const FamilyRow& row : families)
        names += (names.empty() ? "" : ", ") + std::string(row.hf_architecture);
    fail("{}: architecture {} cannot be exported to GGUF (supported: {})", source,
         c.architecture.empty() ? c.model_type : c.architecture, names);
}

// Shape (rows, cols) of an HF tensor: 1-D tensors are one row.
std::pair<int64_t, int64_t> matrix_shape(const TensorInfo& t) {
    if (t.shape.size() == 1) return {1, t.shape[0]};
    PBS2P_CHECK(t.shape.size() == 2, "{}: tensor '{}' has {} dimensions, expected 1 or 2", t.file, t.name,
                t.shape.size());
    return {t.shape[0], t.shape[1]};
}

}  // namespace

const char* gguf_export_type_name(GgufExportType type) {
    return type_row(type).name;
}

std::string gguf_export_type_names() {
    std::string s;
    for (const TypeRow& row : types) s += (s.empty() ? "" : ", ") + std::string(row.name);
    return s;
}

GgufExportType parse_gguf_export_type(const std::string& name) {
    for (const TypeRow& row : types)
        if (name == row.name) return row.type;
    fail("unknown GGUF type '{}' (choose one of {})", name, gguf_export_type_names());
}

bool is_gguf_decoder_linear(const std::string& name) {
    if (!name.starts_with("blk.") || !name.ends_with(".weight")) return false;
    const size_t dot = name.find('.', 4);
    if (dot == std::string::npos || dot == 4) return false;
    for (size_t i = 4; i < dot; ++i)
        if (name[i] < '0' || name[i] > '9') return false;
    const std::string base = name.substr(dot + 1, name.size() - dot - 1 - std::string(".weight").size());
    for (const char* linear : decoder_linear_names)
        if (base == linear) return true;
    return false;
}

double GgufBitCount::linear_bits_per_weight() const {
    return linear_weights ? 8.0 * double(linear_bytes) / double(linear_weights) : 0.0;
}
double GgufBitCount::tensor_bits_per_weight() const {
    return weights ? 8.0 * double(tensor_bytes) / double(weights) : 0.0;
}
double GgufBitCount::file_bits_per_weight() const {
    return weights ? 8.0 * double(file_bytes) / double(weights) : 0.0;
}

GgufBitCount count_gguf_bits(const GgufMetadata& gguf) {
    GgufBitCount count;
    count.file_bytes = static_cast<int64_t>(fs::file_size(gguf.path()));
    for (const GgufTensorInfo& t : gguf.tensors()) {
        const GgmlTypeInfo* info = find_ggml_type(t.type);
        PBS2P_CHECK(info, "{}: tensor '{}' has ggml type id {}, not in the type table", gguf.path(), t.name,
                    t.type);
        ++count.tensors;
        ++count.tensors_by_type[info->name];
        count.weights += t.numel();
        count.tensor_bytes += t.nbytes;
        if (is_gguf_decoder_linear(t.name)) {
            count.linear_weights += t.numel();
            count.linear_bytes += t.nbytes;
            count.linear_weights_by_type[info->name] += t.numel();
        }
    }
    return count;
}

nlohmann::json gguf_bit_count_json(const GgufBitCount& c) {
    return {{"tensors", c.tensors},
            {"file_bytes", c.file_bytes},
            {"weights", c.weights},
            {"tensor_bytes", c.tensor_bytes},
            {"linear_weights", c.linear_weights},
            {"linear_bytes", c.linear_bytes},
            {"linear_bits_per_weight", c.linear_bits_per_weight()},
            {"tensor_bits_per_weight", c.tensor_bits_per_weight()},
            {"file_bits_per_weight", c.file_bits_per_weight()},
            {"tensors_by_type", c.tensors_by_type},
            {"linear_weights_by_type", c.linear_weights_by_type}};
}

namespace {

// The summary of a file just written, its bits counted from the file.
GgufExportSummary written_summary(const std::string& path, const FamilyRow& family, GgufExportType type) {
    GgufExportSummary summary;
    summary.path = path;
    summary.architecture = family.gguf_architecture;
    summary.type = type;
    summary.bits = count_gguf_bits(GgufMetadata::read(path));
    return summary;
}

}  // namespace

GgufExportSummary export_gguf(const std::string& model_dir, const std::string& out_path,
                              GgufExportType type) {
    PBS2P_CHECK(fs::exists(model_dir), "{}: no such model directory", model_dir);
    const fs::path dir =
        fs::is_directory(model_dir) ? fs::path(model_dir) : fs::path(model_dir).parent_path();
    const std::string config_path = (dir / "config.json").string();
    const ModelConfig config = load_hf_config(config_path);
    const FamilyRow& family = family_of(config, config_path);
    auto tensors = std::make_shared<SafetensorsReader>(SafetensorsReader::open(model_dir));
    const TypeRow& types_of = type_row(type);

    GgufWriter w(out_path);
    w.set_string("general.architecture", family.gguf_architecture);
    w.set_string("general.name", fs::absolute(dir).lexically_normal().filename().string());
    w.set_u32("general.file_type", types_of.file_type);
    w.set_u32("general.quantization_version", 2);
    add_hyper_parameters(w, family.gguf_architecture, config, config_path);
    add_sentencepiece_vocabulary(w, dir, config);

    // (HF name, GGUF name, row) of every tensor to write, in GGUF order.
    struct Entry {
        std::string hf, gguf;
        const NameRow* row;
    };
    std::vector<Entry> entries;
    const auto add_if_present = [&](const std::string& hf, const std::string& gguf, const NameRow& row) {
        if (tensors->has(hf)) entries.push_back({hf, gguf, &row});
    };
    add_if_present(global_names[0].hf, global_names[0].gguf, global_names[0]);
    for (int64_t l = 0; l < config.num_layers; ++l)
        for (const NameRow& row : block_names)
            add_if_present(fmt::format("model.layers.{}.{}", l, row.hf),
                           fmt::format("blk.{}.{}", l, row.gguf), row);
    for (size_t i = 1; i < std::size(global_names); ++i)
        add_if_present(global_names[i].hf, global_names[i].gguf, global_names[i]);

    std::set<std::string> mapped;
    for (const Entry& e : entries) {
        PBS2P_CHECK(family.o_mlp_bias || !e.row->optional_bias,
                    "{}: tensor '{}' has no place in llama.cpp's {} architecture", tensors->tensor(e.hf).file,
                    e.hf, family.gguf_architecture);
        mapped.insert(e.hf);
    }
    for (const std::string& name : tensors->names())
        PBS2P_CHECK(mapped.count(name) || ignorable(name), "{}: tensor '{}' has no GGUF name for {}",
                    tensors->tensor(name).file, name, config.architecture);
    const auto require = [&](const std::string& hf) {
        PBS2P_CHECK(mapped.count(hf), "{}: missing tensor '{}'", model_dir, hf);
    };
    require("model.embed_tokens.weight");
    require("model.norm.weight");
    if (!config.tie_word_embeddings) require("lm_head.weight");

    for (const Entry& e : entries) {
        const TensorInfo& info = tensors->tensor(e.hf);
        const auto [rows, cols] = matrix_shape(info);
        const Role role = e.row->role;
        const GgmlType ggml = role == Role::linear                            ? types_of.linear
                              : role == Role::embedding || role == Role::head ? types_of.embedding
                                                                              : GgmlType::f32;
        const int64_t heads = e.row->permute == Permute::q ? config.num_heads : config.num_kv_heads;
        const bool permute = family.permute_qk && e.row->permute != Permute::none;
        const bool vector = role == Role::norm || role == Role::bias;
        const int64_t output_rows = vector ? rows * cols : rows;
        PBS2P_CHECK(!permute || output_rows % (2 * heads) == 0,
                    "{}: tensor '{}' of {} rows cannot be split into {} heads of two rotary halves",
                    info.file, e.hf, output_rows, heads);
        std::vector<int64_t> shape =
            vector ? std::vector<int64_t>{rows * cols} : std::vector<int64_t>{rows, cols};
        w.add_tensor(
            e.gguf, std::move(shape), ggml,
            [tensors, e, rows, cols, ggml, heads, permute, vector, output_rows](std::vector<uint8_t>& bytes) {
                // A vector is permuted like the rows of its matrix: one element per row.
                if (vector) {
                    const std::vector<float> v = tensors->load_vector(e.hf, rows * cols);
                    bytes = encode_floats(ggml, v.data(), 1, rows * cols, e.hf);
                } else {
                    const Matrix m = tensors->load_matrix(e.hf, rows, cols);
                    bytes = encode_floats(ggml, m.ptr(), rows, cols, e.hf);
                }
                if (permute) bytes = permute_rows(bytes, output_rows, heads);
            });
    }
    w.write();
    return written_summary(out_path, family, type);
}

namespace {

// Placeholder SentencePiece-style vocabulary: <unk>, <s>, </s>, the 256 byte pieces, then "▁t<id>".
SentencePieceVocab placeholder_vocabulary(int64_t size) {
    PBS2P_CHECK(size >= 259, "random GGUF: vocab_size {} is below the 259 special and byte pieces", size);
    SentencePieceVocab v;
    v.unk_id = 0;
    v.bos_id = 1;
    v.eos_id = 2;
    const auto add = [&v](std::string piece, float score, GgufTokenType type) {
        v.pieces.push_back(std::move(piece));
        v.scores.push_back(score);
        v.types.push_back(type);
    };
    add("<unk>", 0.0f, GgufTokenType::unknown);
    add("<s>", 0.0f, GgufTokenType::control);
    add("</s>", 0.0f, GgufTokenType::control);
    for (int b = 0; b < 256; ++b) add(fmt::format("<0x{:02X}>", b), 0.0f, GgufTokenType::byte);
    for (int64_t id = 259; id < size; ++id)
        add(fmt::format("\u2581t{}", id), -static_cast<float>(id), GgufTokenType::normal);
    return v;
}

// Random [rows x cols] weights in `type`: uniform with variance 1 / cols (f32, f16), or uniform trits
// times one fp16 scale per 256-weight block drawn from the same range (tq1_0, tq2_0).
std::vector<uint8_t> random_weights(GgmlType type, int64_t rows, int64_t cols, uint64_t seed,
                                    const std::string& name) {
    Rng rng(seed);
    const double bound = std::sqrt(3.0 / static_cast<double>(cols));
    std::vector<float> w(static_cast<size_t>(rows * cols));
    if (is_ternary_ggml_type(type)) {
        PBS2P_CHECK(cols % kTernaryBlockWeights == 0, "random GGUF: {} has {} columns, not a multiple of {}",
                    name, cols, kTernaryBlockWeights);
        for (size_t b = 0; b < w.size(); b += kTernaryBlockWeights) {
            const float d = round_to_fp16(static_cast<float>(bound * (0.5 + 0.5 * rng.uniform())));
            for (int64_t k = 0; k < kTernaryBlockWeights; ++k)
                w[b + k] = d * static_cast<float>(static_cast<int>(rng.below(3)) - 1);
        }
    } else {
        for (float& x : w) x = static_cast<float>(bound * (2.0 * rng.uniform() - 1.0));
    }
    return encode_floats(type, w.data(), rows, cols, name);
}

}  // namespace

GgufExportSummary write_random_gguf(const ModelConfig& config, const std::string& out_path,
                                    GgufExportType type, uint64_t seed) {
    const ModelConfig& c = config;
    const std::string source = "random GGUF";
    const FamilyRow& family = family_of(c, source);
    const TypeRow& types_of = type_row(type);
    GgufWriter w(out_path);
    w.set_string("general.architecture", family.gguf_architecture);
    w.set_string("general.name", fmt::format("random-{}-blocks", c.num_layers));
    w.set_u32("general.file_type", types_of.file_type);
    w.set_u32("general.quantization_version", 2);
    add_hyper_parameters(w, family.gguf_architecture, c, source);
    write_llama_vocabulary(w, placeholder_vocabulary(c.vocab_size), true, false);

    const int64_t H = c.hidden_size, F = c.intermediate_size, kv = c.num_kv_heads * c.head_dim;
    const auto add_matrix = [&](const std::string& name, int64_t rows, int64_t cols, GgmlType ggml) {
        const uint64_t tensor_seed = seed * 1000003 + w.tensor_bytes();  // distinct per tensor
        w.add_tensor(name, {rows, cols}, ggml, [=](std::vector<uint8_t>& bytes) {
            bytes = random_weights(ggml, rows, cols, tensor_seed, name);
        });
    };
    const auto add_norm = [&](const std::string& name) {
        const std::vector<float> ones(static_cast<size_t>(H), 1.0f);
        w.add_tensor(name, {H}, GgmlType::f32, encode_float_tensor(GgmlType::f32, ones.data(), H));
    };
    add_matrix("token_embd.weight", c.vocab_size, H, types_of.embedding);
    // (GGUF name, rows, cols) of the linear layers of one block, in export order.
    const std::tuple<const char*, int64_t, int64_t> linears[] = {
        {"attn_q", H, H},   {"attn_k", kv, H}, {"attn_v", kv, H}, {"attn_output", H, H},
        {"ffn_gate", F, H}, {"ffn_up", F, H},  {"ffn_down", H, F}};
    for (int64_t l = 0; l < c.num_layers; ++l) {
        add_norm(fmt::format("blk.{}.attn_norm.weight", l));
        for (const auto& [name, rows, cols] : linears) {
            if (std::string(name) == "ffn_gate") add_norm(fmt::format("blk.{}.ffn_norm.weight", l));
            add_matrix(fmt::format("blk.{}.{}.weight", l, name), rows, cols, types_of.linear);
        }
    }
    add_norm("output_norm.weight");
    add_matrix("output.weight", c.vocab_size, H, types_of.embedding);
    w.write();
    return written_summary(out_path, family, type);
}

}  // namespace pbs2p
