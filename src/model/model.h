// Decoder-only transformer in fp32: weights, the shared block runner (attention, norms, MLP), the KV
// cache, and the block-by-block API used by the compressor. Families differ only in how their weights
// are named and loaded (llama.cpp, opt.cpp) and in the flags of ModelConfig that the runner reads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/linear_kernel.h"
#include "core/table_kernel.h"
#include "core/tensor.h"
#include "io/hf_config.h"
#include "io/safetensors.h"

namespace pbs2p {

// y = x W^T + b.
struct Linear {
    std::string name;  // HF prefix, e.g. "model.layers.0.self_attn.q_proj"
    int64_t in_features = 0;
    int64_t out_features = 0;
    Matrix weight;            // [out x in] fp32; may be empty when `kernel` is set
    std::vector<float> bias;  // empty when none
    std::shared_ptr<const LinearKernel> kernel;  // used instead of `weight` when set

    void forward(const float* x, int64_t tokens, float* y) const;  // y[tokens x out]
    bool present() const { return out_features > 0; }
    int64_t weight_bytes() const;
};

// RMSNorm (weight only) or LayerNorm (weight and bias, both optional when not affine).
struct Norm {
    std::string name;  // HF prefix, e.g. "model.layers.0.input_layernorm"
    NormKind kind = NormKind::rms;
    float eps = 1e-6f;
    std::vector<float> weight;
    std::vector<float> bias;
    void forward(const float* x, int64_t rows, int64_t cols, float* y) const;
};

// A named embedding table [rows x cols]: fp32 `weight`, or a compact `table` kernel (then weight is
// empty) that also serves as LM head when the embedding is tied.
struct Embedding {
    std::string name;  // full tensor name, e.g. "model.embed_tokens.weight"
    Matrix weight;
    std::shared_ptr<const TableKernel> table;

    bool present() const { return !weight.empty() || table; }
    int64_t rows() const { return table ? table->rows() : weight.rows; }
    int64_t cols() const { return table ? table->cols() : weight.cols; }
    void copy_row(int64_t row, float* out) const;
    // y[tokens x rows] = x[tokens x cols] * table^T (the LM head product).
    void multiply(const float* x, int64_t tokens, float* y) const;
    int64_t weight_bytes() const;
};

struct Block {
    Norm attn_norm;  // LLaMA input_layernorm / OPT self_attn_layer_norm
    Norm mlp_norm;   // LLaMA post_attention_layernorm / OPT final_layer_norm
    Linear q, k, v, o;
    Linear gate;     // gated MLP only
    Linear up;       // LLaMA up_proj / OPT fc1
    Linear down;     // LLaMA down_proj / OPT fc2
};

// Keys and values of every layer for one sequence: [capacity x kv_dim] per layer, rotary already applied.
struct KvCache {
    std::vector<Matrix> keys;
    std::vector<Matrix> values;
    int64_t length = 0;

    int64_t size() const { return length; }
    int64_t capacity() const { return keys.empty() ? 0 : keys[0].rows; }
    void clear() { length = 0; }
};

// Called by the loader for every decoder linear before reading "<name>.weight"; returning true means the
// callback filled `linear` (e.g. with a packed kernel) and the loader must not read the weight.
using LinearSource = std::function<bool(const std::string& name, int64_t out, int64_t in, Linear& linear)>;
// Called by the loader for the token embedding and LM head tensors (full tensor name) before reading them;
// a non-null kernel is used instead of an fp32 matrix.
using TableSource =
    std::function<std::shared_ptr<const TableKernel>(const std::string& name, int64_t rows, int64_t cols)>;

class Model;
// Single-token decoding with every buffer allocated once (hidden state, workspace, rotary table,
// attention scores, logits): after construction a step performs no heap allocation in the model layer.
class DecodeSession {
  public:
    DecodeSession(const Model& model, int64_t capacity);
    ~DecodeSession();
    DecodeSession(DecodeSession&&) noexcept;
    DecodeSession& operator=(DecodeSession&&) noexcept;
    // Appends `token` at position length(); returns its logits [vocab], valid until the next step.
    const float* step(int32_t token);
    // Appends a prompt in one pass (allocates its own workspace); returns the last position's logits.
    const float* prefill(const std::vector<int32_t>& tokens);
    int64_t length() const;
    int64_t capacity() const;
    void reset();  // empties the cache

  private:
    struct State;
    std::unique_ptr<State> state_;
};

class Model {
public:
    static Model load(const std::string& dir, const LinearSource& source = {});
    static Model load(const ModelConfig& config, const SafetensorsReader& tensors,
                      const LinearSource& source = {}, const TableSource& tables = {});
    // Loads everything but the decoder blocks' linear weights, which stay in the (mmapped) checkpoint
    // until materialize_block reads them: a model larger than memory can be worked on one block at a
    // time (the compressor). Shapes are checked here; forward through a block that is not resident fails.
    static Model load_lazy(const std::string& dir);

    // Lazily loaded models: reads block l's linear weights in fp32 (no-op when resident or when the model
    // was loaded normally), and frees them again. A released block reads the file again when materialized.
    void materialize_block(int l);
    void release_block(int l);
    bool is_lazy() const { return lazy_tensors_ != nullptr; }

    const ModelConfig& config() const { return config_; }
    int num_blocks() const { return static_cast<int>(parts_.blocks.size()); }

    // Block-by-block API. hidden is [batch*seq x hidden_size], row b*seq+t.
    Matrix embed(const std::vector<int32_t>& tokens, int64_t batch, int64_t seq) const;
    // Called with the input of every distinct linear input in forward order: (linears sharing the input,
    // input rows). q/k/v share one input, gate/up share one. May be called several times per group with
    // consecutive chunks of rows; the caller accumulates.
    using LinearObserver =
        std::function<void(const std::vector<const Linear*>& linears, const float* input, int64_t rows, int64_t cols)>;
    // Runs block l in place (positions 0..seq-1 per sequence, causal).
    void run_block(int l, Matrix& hidden, int64_t batch, int64_t seq, const LinearObserver& observer = {}) const;
    std::vector<Linear*> block_linears(int l);  // forward order
    std::vector<const Linear*> block_linears(int l) const;
    std::vector<Linear*> all_linears();
    Matrix final_logits(const Matrix& hidden) const;  // final norm + LM head: [rows x vocab]
    // Final norm + LM head for rows [row0, row0+rows) of hidden.
    Matrix final_logits(const Matrix& hidden, int64_t row0, int64_t rows) const;

    Matrix forward(const std::vector<int32_t>& tokens) const;  // one sequence, logits [n x vocab]
    // Incremental decoding: positions continue from cache.size(); returns logits of the new tokens.
    KvCache new_cache(int64_t capacity) const;
    Matrix forward(const std::vector<int32_t>& tokens, KvCache& cache) const;
    // Hidden states after the last block (before the final norm) for one sequence continuing `cache`.
    Matrix forward_hidden(const std::vector<int32_t>& tokens, KvCache* cache) const;

    // Every tensor as save() writes it, under its Hugging Face name: those of block l, or those outside
    // the blocks (embeddings, final norm, LM head). Weights held by a kernel are skipped.
    using TensorVisitor =
        std::function<void(const std::string& name, const float* data, const std::vector<int64_t>& shape)>;
    void for_each_block_tensor(int l, const TensorVisitor& visit) const;
    void for_each_shared_tensor(const TensorVisitor& visit) const;
    // Names and shapes of block l's tensors as save() writes them, resident or not.
    std::vector<std::pair<std::string, std::vector<int64_t>>> block_tensor_shapes(int l) const;

    // Writes config.json (copied), model.safetensors (current weights in `dtype`), and copies tokenizer
    // and generation config files from `source_dir`.
    void save(const std::string& out_dir, const std::string& source_dir, DType dtype,
              const std::map<std::string, std::string>& metadata = {}) const;
    int64_t weight_bytes() const;

    // Parts filled by the family loaders (llama.cpp, opt.cpp).
    struct Parts {
        Embedding token_embedding;     // [vocab x embed_dim]
        Embedding position_embedding;  // OPT: [max_pos + offset x hidden]; empty otherwise
        Linear project_in;             // OPT: embed_dim -> hidden when they differ
        Linear project_out;            // OPT: hidden -> embed_dim
        std::vector<Block> blocks;
        Norm final_norm;               // empty weight and kind when absent (OPT post-LN)
        bool has_final_norm = true;
        Embedding lm_head;             // empty when tied to token_embedding
    };
    const Parts& parts() const { return parts_; }
    // A model assembled from parts built in memory (synthetic benchmark models, tests); no file involved.
    static Model from_parts(const ModelConfig& config, Parts parts);

private:
  friend class DecodeSession;
  Model() = default;
  struct Workspace;
  // Runs block l on `batch` sequences of `seq` rows each, positions starting at `pos0`. With a cache
  // (batch must be 1) keys/values are appended to it and attention spans the cached positions.
  void block_forward(int l, float* hidden, int64_t batch, int64_t seq, int64_t pos0, KvCache* cache,
                     const LinearObserver& observer, Workspace& ws) const;
  Matrix embed_at(const std::vector<int32_t>& tokens, int64_t batch, int64_t seq, int64_t pos0) const;
  // Embeds rows tokens (sequences of seq rows, positions from pos0) into hidden [rows x hidden_size];
  // `embedded` holds rows x embed_dim floats when project_in is present.
  void embed_into(const int32_t* tokens, int64_t rows, int64_t seq, int64_t pos0, float* hidden,
                  float* embedded) const;
  // Final norm + LM head for rows of x into logits [rows x vocab]; normed: rows x hidden_size floats,
  // projected: rows x embed_dim floats when project_out is present.
  void logits_into(const float* x, int64_t rows, float* logits, float* normed, float* projected) const;
  const Embedding& lm_head() const;

  ModelConfig config_;
  Parts parts_;
  std::vector<float> rope_inv_freq_;
  std::shared_ptr<const SafetensorsReader> lazy_tensors_;  // lazily loaded models: the checkpoint
};

// Family loaders: fill Model::Parts from a checkpoint. Every decoder linear goes through `source` first.
Model::Parts load_llama_parts(const ModelConfig& config, const SafetensorsReader& tensors,
                              const LinearSource& source, const TableSource& tables);
Model::Parts load_opt_parts(const ModelConfig& config, const SafetensorsReader& tensors,
                            const LinearSource& source, const TableSource& tables);

// Shared loading helpers for the family files.
Linear load_linear(const SafetensorsReader& tensors, const std::string& name, int64_t out, int64_t in, bool bias,
                   const LinearSource& source);
Norm load_norm(const SafetensorsReader& tensors, const std::string& name, NormKind kind, double eps, int64_t dim,
               bool affine);
Embedding load_embedding(const SafetensorsReader& tensors, const std::string& name, int64_t rows,
                         int64_t cols, const TableSource& tables);

// Copies config.json, the tokenizer files and generation_config.json (those present) between model folders.
void copy_model_side_files(const std::string& source_dir, const std::string& out_dir);

// Rotary inverse frequencies for the config (HF convention, with llama3/linear scaling).
std::vector<float> rope_inverse_frequencies(const ModelConfig& config);

inline Model Model::from_parts(const ModelConfig& config, Parts parts) {
    Model model;
    model.config_ = config;
    model.parts_ = std::move(parts);
    if (config.use_rope) model.rope_inv_freq_ = rope_inverse_frequencies(config);
    return model;
}

}  // namespace pbs2p
