// Export of a Hugging Face or compressed-model directory (config.json, model.safetensors, SentencePiece
// tokenizer.model) as a GGUF file that llama.cpp runs, and the bit count of any GGUF file's tensors.
//
// Families (one table, gguf_export.cpp): LlamaForCausalLM and MistralForCausalLM as llama.cpp's `llama`
// architecture (q_proj/k_proj rows permuted to its rotary layout), Qwen2ForCausalLM as `qwen2` (q/k/v
// biases, no permutation). Weight types: f32 / f16 store every weight matrix in that type; tq1_0 / tq2_0
// store the decoder linear layers in llama.cpp's ternary types (each 256-column block of a row must be
// exactly {-d, 0, +d} with d exact in fp16; any other layer is refused, naming it) with embeddings and LM
// head in f16. Norms and biases are always f32.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "io/gguf.h"

namespace pbs2p {

enum class GgufExportType { f32, f16, tq1_0, tq2_0 };
// "f32", "f16", "tq1_0", "tq2_0"; parse throws pbs2p::Error listing the choices.
const char* gguf_export_type_name(GgufExportType type);
GgufExportType parse_gguf_export_type(const std::string& name);
std::string gguf_export_type_names();  // "f32, f16, tq1_0, tq2_0"

// Storage of a GGUF file's tensors, counted from its tensor infos and the ggml block sizes.
// "Decoder linear layers" are the blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight.
struct GgufBitCount {
    int64_t tensors = 0;
    int64_t file_bytes = 0;
    int64_t weights = 0;       // elements of all tensors
    int64_t tensor_bytes = 0;  // data bytes of all tensors (without alignment padding)
    int64_t linear_weights = 0;
    int64_t linear_bytes = 0;
    std::map<std::string, int64_t> tensors_by_type;         // ggml type name -> tensors
    std::map<std::string, int64_t> linear_weights_by_type;  // ggml type name -> decoder linear weights

    double linear_bits_per_weight() const;  // 8 * linear_bytes / linear_weights
    double tensor_bits_per_weight() const;  // 8 * tensor_bytes / weights
    double file_bits_per_weight() const;    // 8 * file_bytes / weights (metadata and padding included)
};
// Throws pbs2p::Error naming the file and tensor when a tensor's ggml type is not in our table.
GgufBitCount count_gguf_bits(const GgufMetadata& gguf);
// {"tensors", "file_bytes", "weights", "tensor_bytes", "linear_weights", "linear_bytes",
//  "linear_bits_per_weight", "tensor_bits_per_weight", "file_bits_per_weight", "tensors_by_type",
//  "linear_weights_by_type"}.
nlohmann::json gguf_bit_count_json(const GgufBitCount& count);
// True for the GGUF names of the decoder linear layers (see GgufBitCount).
bool is_gguf_decoder_linear(const std::string& gguf_name);

struct GgufExportSummary {
    std::string path;
    std::string architecture;  // GGUF general.architecture
    GgufExportType type = GgufExportType::f16;
    GgufBitCount bits;  // counted from the written file
};

// Writes `out_path` atomically. Throws pbs2p::Error naming the model file and the tensor or layer for an
// unsupported architecture or tokenizer, a tensor without a GGUF name, or a layer not representable in
// the requested type.
GgufExportSummary export_gguf(const std::string& model_dir, const std::string& out_path, GgufExportType type);

struct ModelConfig;
// A GGUF of `config`'s shape (a LLaMA-family config, e.g. eval's synthetic_config) with random weights,
// for speed measurements of other runtimes: the tensors, types and hyper-parameters export_gguf writes for
// such a model, norms 1, linear layers uniform with variance 1 / fan-in (f32, f16) or uniform trits with
// one fp16 scale per 256-weight block (tq1_0, tq2_0), and a placeholder vocabulary of vocab_size pieces
// (<unk>, <s>, </s>, the 256 byte pieces, then "▁t<id>"). Deterministic for a seed.
GgufExportSummary write_random_gguf(const ModelConfig& config, const std::string& out_path,
                                    GgufExportType type, uint64_t seed = 1);

}  // namespace pbs2p
