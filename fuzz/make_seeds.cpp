// Writes the seed corpora (fuzz/corpus/<target>/): small valid inputs of every kind each target reads, so the
// fuzzers start past the magic numbers and checksums. Deterministic; rerun after a format change:
//     build-fuzz/fuzz/fuzz_make_seeds fuzz/corpus
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/tokenizer_vocab.h"
#include "io/unicode.h"
#include "packed/packed_file.h"

namespace fs = std::filesystem;
using namespace pbs2p;

namespace {

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

void safetensors_seeds(const fs::path& dir) {
    const float f[6] = {1.0f, -2.5f, 0.0f, 3.25f, 1e-3f, -7.0f};
    const uint8_t u8[4] = {0, 1, 2, 255};
    const int32_t i32[1] = {-5};
    std::vector<uint8_t> u8_bytes(u8, u8 + 4), i32_bytes(4);
    std::memcpy(i32_bytes.data(), i32, 4);
    write_safetensors((dir / "mixed.safetensors").string(),
                      {tensor_from_floats("w.f32", f, {2, 3}, DType::f32),
                       tensor_from_floats("w.f16", f, {6}, DType::f16),
                       tensor_from_floats("w.bf16", f, {3, 2}, DType::bf16),
                       {"ids.u8", DType::u8, {4}, u8_bytes},
                       {"ids.i32", DType::i32, {1}, i32_bytes}},
                      {{"format", "pt"}});
    write_safetensors(
        (dir / "empty_tensor.safetensors").string(),
        {tensor_from_floats("empty", f, {0, 3}, DType::f32), tensor_from_floats("one", f, {1}, DType::f32)});
    write_text(
        dir / "index.json",
        R"({"metadata": {"total_size": 22}, "weight_map": {"a.weight": "a.safetensors", "b.weight": "b.safetensors"}})");
    write_text(dir / "index_one_shard.json", R"({"weight_map": {"a.weight": "a.safetensors"}})");
}

void hf_config_seeds(const fs::path& dir) {
    write_text(dir / "llama.json",
               R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
 "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64,
 "max_position_embeddings": 512, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "vocab_size": 4096,
 "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"})");
    write_text(dir / "llama3_rope.json",
               R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
 "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
 "max_position_embeddings": 2048, "vocab_size": 300, "rope_theta": 500000.0, "eos_token_id": [5, 6],
 "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
 "original_max_position_embeddings": 8192}})");
    write_text(dir / "mistral.json",
               R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 64,
 "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2,
 "max_position_embeddings": 1024, "vocab_size": 320, "sliding_window": 256, "rope_scaling": {"type": "linear", "factor": 2.0}})");
    write_text(dir / "qwen2.json",
               R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64,
 "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
 "max_position_embeddings": 512, "vocab_size": 500, "tie_word_embeddings": true, "use_sliding_window": false})");
    write_text(
        dir / "opt.json",
        R"({"architectures": ["OPTForCausalLM"], "model_type": "opt", "hidden_size": 64, "ffn_dim": 256,
 "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 512, "vocab_size": 400,
 "word_embed_proj_dim": 32, "do_layer_norm_before": true, "activation_function": "relu", "enable_bias": true,
 "layer_norm_elementwise_affine": true, "bos_token_id": 2, "eos_token_id": 2})");
}

// Byte-level vocabulary: the 256 byte tokens of GPT-2's alphabet, then `merged` tokens made by `merges`.
nlohmann::json byte_level_model(const std::vector<std::pair<std::string, std::string>>& merges) {
    nlohmann::json vocab = nlohmann::json::object(), merge_list = nlohmann::json::array();
    for (int b = 0; b < 256; ++b) {
        std::string text;
        utf8_append(text, byte_to_codepoint(static_cast<uint8_t>(b)));
        vocab[text] = b;
    }
    for (const auto& [left, right] : merges) {
        if (!vocab.contains(left + right)) vocab[left + right] = static_cast<int>(vocab.size());
        merge_list.push_back(left + " " + right);
    }
    return {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}};
}

void tokenizer_json_seeds(const fs::path& dir) {
    const std::vector<std::pair<std::string, std::string>> merges = {
        {"H", "e"}, {"l", "l"}, {"\u0120", "w"}, {"He", "ll"}, {"o", "r"}, {"\u0120w", "or"}};
    // GPT-2 layout: ByteLevel pre-tokenizer with its regex, <|endoftext|> as an added token.
    nlohmann::json gpt2 = {
        {"added_tokens", {{{"id", 262}, {"content", "<|endoftext|>"}, {"special", true}}}},
        {"normalizer", nullptr},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", byte_level_model(merges)}};
    write_text(dir / "bytelevel.json", gpt2.dump());
    // LLaMA-3 layout: Split with the LLaMA-3 regex, ByteLevel without regex, a BOS template, merges as pairs.
    nlohmann::json llama3 = gpt2;
    llama3["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex",
              R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
    llama3["added_tokens"] = {{{"id", 263}, {"content", "<|begin_of_text|>"}, {"special", true}}};
    llama3["post_processor"] = {{"type", "TemplateProcessing"},
                                {"single",
                                 {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
    llama3["model"]["ignore_merges"] = true;
    write_text(dir / "llama3_split.json", llama3.dump());
    // SentencePiece-style BPE with metaspace and byte fallback (LLaMA-2 tokenizer.json layout).
    write_text(
        dir / "metaspace.json",
        R"({"added_tokens": [{"id": 1, "content": "<s>", "special": true}, {"id": 2, "content": "</s>", "special": true}],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
 "pre_tokenizer": null, "decoder": {"type": "Sequence", "decoders": []},
 "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true,
 "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x41>": 3, "<0xC3>": 4, "<0xA9>": 5, "▁": 6, "H": 7, "i": 8, "▁H": 9, "▁Hi": 10},
 "merges": ["▁ H", "▁H i"]}})");
    write_text(
        dir / "metaspace_pretok.json",
        R"({"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
 "model": {"type": "BPE", "vocab": {"▁": 0, "a": 1, "▁a": 2}, "merges": ["▁ a"]}})");
}

// A minimal GGUF writer for the seeds (little endian, version 3).
class GgufBuilder {
  public:
    void u32(uint32_t v) { raw(&v, 4); }
    void u64(uint64_t v) { raw(&v, 8); }
    void str(const std::string& s) {
        u64(s.size());
        raw(s.data(), s.size());
    }
    void kv_string(const std::string& key, const std::string& value) {
        str(key), u32(8), str(value), ++count_;
    }
    void kv_u32(const std::string& key, uint32_t value) { str(key), u32(4), u32(value), ++count_; }
    void kv_bool(const std::string& key, bool value) {
        str(key), u32(7);
        const uint8_t b = value;
        raw(&b, 1);
        ++count_;
    }
    void kv_strings(const std::string& key, const std::vector<std::string>& values) {
        str(key), u32(9), u32(8), u64(values.size());
        for (const std::string& v : values) str(v);
        ++count_;
    }
    void kv_floats(const std::string& key, const std::vector<float>& values) {
        str(key), u32(9), u32(6), u64(values.size());
        for (float v : values) raw(&v, 4);
        ++count_;
    }
    void kv_i32s(const std::string& key, const std::vector<int32_t>& values) {
        str(key), u32(9), u32(5), u64(values.size());
        for (int32_t v : values) raw(&v, 4);
        ++count_;
    }
    std::string file() const {
        std::string out = "GGUF";
        const uint32_t version = 3;
        const uint64_t tensors = 0;
        out.append(reinterpret_cast<const char*>(&version), 4);
        out.append(reinterpret_cast<const char*>(&tensors), 8);
        out.append(reinterpret_cast<const char*>(&count_), 8);
        return out + body_;
    }

  private:
    void raw(const void* p, size_t n) { body_.append(static_cast<const char*>(p), n); }
    std::string body_;
    uint64_t count_ = 0;
};

void gguf_seeds(const fs::path& dir) {
    GgufBuilder spm;
    spm.kv_string("general.architecture", "llama");
    spm.kv_u32("llama.context_length", 512);
    spm.kv_string("tokenizer.ggml.model", "llama");
    spm.kv_strings("tokenizer.ggml.tokens",
                   {"<unk>", "<s>", "</s>", "<0x41>", "<0xC3>", "<0xA9>", "▁", "H", "i", "▁H", "▁Hi"});
    spm.kv_floats("tokenizer.ggml.scores", {0, 0, 0, 0, 0, 0, -1, -2, -3, -0.5f, -0.25f});
    spm.kv_i32s("tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1});
    spm.kv_u32("tokenizer.ggml.bos_token_id", 1);
    spm.kv_u32("tokenizer.ggml.eos_token_id", 2);
    spm.kv_bool("tokenizer.ggml.add_bos_token", true);
    write_text(dir / "spm.gguf", spm.file());

    GgufBuilder bpe;
    bpe.kv_string("general.architecture", "qwen2");
    bpe.kv_string("tokenizer.ggml.model", "gpt2");
    bpe.kv_string("tokenizer.ggml.pre", "qwen2");
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) {
        tokens.emplace_back();
        utf8_append(tokens.back(), byte_to_codepoint(static_cast<uint8_t>(b)));
    }
    for (const char* merged : {"He", "ll", "Hell", "<|endoftext|>"}) tokens.emplace_back(merged);
    std::vector<int32_t> types(tokens.size(), 1);
    types.back() = 3;
    bpe.kv_strings("tokenizer.ggml.tokens", tokens);
    bpe.kv_i32s("tokenizer.ggml.token_type", types);
    bpe.kv_strings("tokenizer.ggml.merges", {"H e", "l l", "He ll"});
    bpe.kv_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tokens.size() - 1));
    write_text(dir / "bpe.gguf", bpe.file());

    // Nested arrays and every scalar width (no vocabulary).
    GgufBuilder nested;
    nested.kv_string("general.name", "nested");
    nested.kv_floats("some.floats", {1.5f, -2.0f});
    write_text(dir / "plain.gguf", nested.file());
}

BinaryLayout layout_seed(int64_t rows, int64_t cols, int n_keep, int m_group, int64_t scale_group) {
    BinaryLayout l;
    l.rows = rows, l.cols = cols, l.n_keep = n_keep, l.m_group = m_group, l.scale_group = scale_group;
    l.keep.assign(rows * cols, 0);
    l.sign.assign(rows * cols, 0);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
            const int64_t in_group = (j + i) % m_group;
            l.keep[i * cols + j] = in_group < n_keep;
            l.sign[i * cols + j] = l.keep[i * cols + j] && ((i * 7 + j * 3) % 5 < 2);
        }
    for (int64_t k = 0; k < rows * (cols / scale_group); ++k) {
        l.alpha.push_back(0.125f * static_cast<float>(k + 1));
        l.mu.push_back(k % 2 ? -0.0625f : 0.0f);
    }
    return l;
}

void packed_seeds(const fs::path& dir) {
    const float norm[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    write_packed_file((dir / "one_layer.packed.safetensors").string(),
                      {{"model.layers.0.mlp.up_proj", encode_layer(layout_seed(2, 16, 4, 8, 8))}},
                      {tensor_from_floats("model.norm.weight", norm, {8}, DType::f32)},
                      {{"pbs2p.method", "pbs2p"}});
    write_packed_file(
        (dir / "two_layers.packed.safetensors").string(),
        {{"a", encode_layer(layout_seed(3, 8, 2, 4, 8))}, {"b", encode_layer(layout_seed(1, 32, 6, 8, 16))}});
}

void calib_text_seeds(const fs::path& dir) {
    write_text(dir / "english.txt",
               "The quick brown fox jumps over the lazy dog.\nShe said: \"it's 42, isn't it?\"\n\n");
    write_text(dir / "unicode.txt",
               "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 \xe2\x96\x81 "
               "tabs\tand\r\nlines\n");
    write_text(dir / "invalid_utf8.txt",
               std::string("ok \xff\xfe bad \xc3 cut \xe2\x82") + std::string(3, '\0') + "end");
}

struct SeedSet {
    const char* target;
    void (*write)(const fs::path&);
};
constexpr SeedSet kSeedSets[] = {
    {"safetensors", safetensors_seeds},
    {"hf_config", hf_config_seeds},
    {"tokenizer_json", tokenizer_json_seeds},
    {"gguf", gguf_seeds},
    {"packed_file", packed_seeds},
    {"calib_text", calib_text_seeds},
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
        return 2;
    }
    try {
        for (const SeedSet& set : kSeedSets) {
            const fs::path dir = fs::path(argv[1]) / set.target;
            fs::create_directories(dir);
            set.write(dir);
        }
    } catch (const Error& e) {
        std::fprintf(stderr, "fuzz_make_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
