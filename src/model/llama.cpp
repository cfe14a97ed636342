// LLaMA-family checkpoints (LLaMA 1/2/3, Mistral, Qwen2): Hugging Face tensor names.
#include <fmt/format.h>

#include "model/model.h"

namespace pbs2p {

Model::Parts load_llama_parts(const ModelConfig& c, const SafetensorsReader& tensors,
                              const LinearSource& source, const TableSource& tables) {
    const int64_t H = c.hidden_size, I = c.intermediate_size;
    Model::Parts p;
    p.token_embedding = load_embedding(tensors, "model.embed_tokens.weight", c.vocab_size, H, tables);
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::string prefix = fmt::format("model.layers.{}.", l);
        Block b;
        b.attn_norm = load_norm(tensors, prefix + "input_layernorm", NormKind::rms, c.norm_eps, H, true);
        b.q = load_linear(tensors, prefix + "self_attn.q_proj", c.q_dim(), H, c.qkv_bias, source);
        b.k = load_linear(tensors, prefix + "self_attn.k_proj", c.kv_dim(), H, c.qkv_bias, source);
        b.v = load_linear(tensors, prefix + "self_attn.v_proj", c.kv_dim(), H, c.qkv_bias, source);
        b.o = load_linear(tensors, prefix + "self_attn.o_proj", H, c.q_dim(), c.o_bias, source);
        b.mlp_norm = load_norm(tensors, prefix + "post_attention_layernorm", NormKind::rms, c.norm_eps, H, true);
        b.gate = load_linear(tensors, prefix + "mlp.gate_proj", I, H, c.mlp_bias, source);
        b.up = load_linear(tensors, prefix + "mlp.up_proj", I, H, c.mlp_bias, source);
        b.down = load_linear(tensors, prefix + "mlp.down_proj", H, I, c.mlp_bias, source);
        p.blocks.push_back(std::move(b));
    }
    p.final_norm = load_norm(tensors, "model.norm", NormKind::rms, c.norm_eps, H, true);
    p.has_final_norm = true;
    if (!c.tie_word_embeddings)
        p.lm_head = load_embedding(tensors, "lm_head.weight", c.vocab_size, H, tables);
    return p;
}

}  // namespace pbs2p
