"""Writes the tiny random-weight checkpoints and golden logits used by tests/model.

For each case: tests/model/golden/<name>/{config.json, model.safetensors, golden.json}. The weights are
written first (in the case's dtype) and read back, so the golden logits are those of exactly the stored
weights, computed by the independent PyTorch implementation in hf_models.py (fp32).

    PYENV_VERSION=system python3 tools/reference/golden_logits.py
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_models  # noqa: E402
import safetensors_np as stn  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "model", "golden")
SEQ_LEN = 16

LLAMA_BASE = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 96, "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
    "tie_word_embeddings": False, "bos_token_id": 1, "eos_token_id": 2,
}
OPT_BASE = {
    "architectures": ["OPTForCausalLM"], "model_type": "opt", "vocab_size": 96, "hidden_size": 32,
    "ffn_dim": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64,
    "word_embed_proj_dim": 32, "do_layer_norm_before": True, "activation_function": "relu",
    "enable_bias": True, "layer_norm_elementwise_affine": True, "tie_word_embeddings": True,
    "bos_token_id": 2, "eos_token_id": 2, "pad_token_id": 1,
}

CASES = {
    # LLaMA with grouped-query attention (4 query heads over 2 KV heads), bf16 weights, untied head.
    "llama_gqa": (dict(LLAMA_BASE), "BF16"),
    # LLaMA-3 style: llama3 rope_scaling with a short original context (64) so all three frequency bands occur,
    # explicit head_dim (q_dim 64 != hidden 32), one KV head, tied embeddings, fp16 weights.
    "llama3_rope": (dict(LLAMA_BASE, head_dim=16, num_key_value_heads=1, rope_theta=500000.0,
                         tie_word_embeddings=True,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
                    "F16"),
    # Qwen2: q/k/v biases (no o_proj bias), fp32 weights.
    "qwen2_bias": (dict(LLAMA_BASE, architectures=["Qwen2ForCausalLM"], model_type="qwen2",
                        num_key_value_heads=2, rope_theta=1000000.0, rms_norm_eps=1e-6), "F32"),
    # OPT, pre-LayerNorm with biases, tied head, fp16 weights.
    "opt_bias": (dict(OPT_BASE), "F16"),
    # OPT-350m style: word_embed_proj_dim 16 != hidden 32 (project_in/out), post-LayerNorm, bf16.
    "opt_proj": (dict(OPT_BASE, word_embed_proj_dim=16, do_layer_norm_before=False), "BF16"),
}


def randomize(model, gen):
    """Weights large enough that attention and the MLP shape the logits."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layer_norm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embed" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / (p.shape[-1] ** 0.5))


def write_case(name, cfg, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    model = hf_models.build_model(cfg)
    randomize(model, gen)
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    tensors = {k: v.float().numpy() for k, v in hf_models.hf_state_dict(model).items()}
    stn.save(os.path.join(folder, "model.safetensors"), tensors, metadata={"format": "pt"},
             dtypes={k: dtype for k in tensors})
    reloaded, _ = hf_models.load_hf_folder(folder)
    tokens = torch.randint(3, cfg["vocab_size"], (SEQ_LEN,), generator=gen)
    with torch.no_grad():
        logits = reloaded(tokens.unsqueeze(0))[0].numpy().astype(np.float64)
    with open(os.path.join(folder, "golden.json"), "w") as f:
        json.dump({"tokens": tokens.tolist(), "logits": [[float("%.7g" % v) for v in row] for row in logits]}, f)
    print("%-12s dtype %-4s max|logit| %.3f" % (name, dtype, np.abs(logits).max()))


def main():
    torch.set_num_threads(2)
    for i, (name, (cfg, dtype)) in enumerate(sorted(CASES.items())):
        write_case(name, cfg, dtype, seed=1234 + i)


if __name__ == "__main__":
    main()
