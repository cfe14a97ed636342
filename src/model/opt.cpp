// OPT checkpoints: learned positions (offset 2), LayerNorm (pre- or post-), ReLU MLP, biases, optional
// project_in/project_out when word_embed_proj_dim differs from hidden_size.
#include <fmt/format.h>

#include "model/model.h"

namespace pbs2p {

Model::Parts load_opt_parts(const ModelConfig& c, const SafetensorsReader& tensors,
                            const LinearSource& source, const TableSource& tables) {
    const int64_t H = c.hidden_size, I = c.intermediate_size, E = c.embed_dim;
    // Hugging Face conversions name tensors "model.decoder.*"; some original checkpoints "decoder.*".
    const std::string root =
        !tensors.has("model.decoder.embed_tokens.weight") && tensors.has("decoder.embed_tokens.weight")
            ? "decoder."
            : "model.decoder.";
    auto norm = [&](const std::string& name) {
        return load_norm(tensors, name, NormKind::layer, c.norm_eps, H, c.norm_affine);
    };
    Model::Parts p;
    p.token_embedding = load_embedding(tensors, root + "embed_tokens.weight", c.vocab_size, E, tables);
    p.position_embedding = {root + "embed_positions.weight",
                            tensors.load_matrix(root + "embed_positions.weight",
                                                c.max_position_embeddings + c.position_offset, H),
                            nullptr};
    if (E != H) {
        p.project_in = load_linear(tensors, root + "project_in", H, E, false, {});
        p.project_out = load_linear(tensors, root + "project_out", E, H, false, {});
    }
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::string prefix = fmt::format("{}layers.{}.", root, l);
        Block b;
        b.attn_norm = norm(prefix + "self_attn_layer_norm");
        b.q = load_linear(tensors, prefix + "self_attn.q_proj", H, H, c.qkv_bias, source);
        b.k = load_linear(tensors, prefix + "self_attn.k_proj", H, H, c.qkv_bias, source);
        b.v = load_linear(tensors, prefix + "self_attn.v_proj", H, H, c.qkv_bias, source);
        b.o = load_linear(tensors, prefix + "self_attn.out_proj", H, H, c.o_bias, source);
        b.mlp_norm = norm(prefix + "final_layer_norm");
        b.up = load_linear(tensors, prefix + "fc1", I, H, c.mlp_bias, source);
        b.down = load_linear(tensors, prefix + "fc2", H, I, c.mlp_bias, source);
        p.blocks.push_back(std::move(b));
    }
    p.has_final_norm = c.final_norm;
    if (c.final_norm) p.final_norm = norm(root + "final_layer_norm");
    if (!c.tie_word_embeddings)
        p.lm_head = load_embedding(tensors, "lm_head.weight", c.vocab_size, E, tables);
    return p;
}

}  // namespace pbs2p
