"""Small, self-contained PyTorch re-implementations of Hugging Face
``LlamaForCausalLM`` (also Qwen2-style q/k/v bias) and ``OPTForCausalLM``.

Parameter names match the Hugging Face checkpoints exactly, so a
``model.safetensors`` produced by ``transformers`` loads with
``load_state_dict`` and vice versa.  Only the plain forward pass is
implemented (no KV cache, no padding masks): ``forward(input_ids)`` with
input_ids of shape (batch, seq) returns logits of shape (batch, seq, vocab).

Usage:
    from hf_models import load_hf_folder
    model, config = load_hf_folder("models/ref-llama")   # fp32, eval mode
    logits = model(torch.tensor([[1, 306, 4091]]))
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


def _causal_attention(q, k, v, scale):
    """q: (B,H,T,D); k,v: (B,H,T,D) (already expanded for GQA)."""
    T = q.shape[-2]
    att = torch.matmul(q, k.transpose(-1, -2)) * scale
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    att = att.masked_fill(mask, float("-inf"))
    att = torch.softmax(att.float(), dim=-1).to(q.dtype)
    return torch.matmul(att, v)


# ----------------------------------------------------------------------------
# LLaMA / Qwen2
# ----------------------------------------------------------------------------

class LlamaRMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dt)


def rope_inv_freq(head_dim, theta, rope_scaling=None, device=None):
    """HF inverse frequencies, with optional "linear" or "llama3" rope_scaling."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float().to(device) / head_dim))
    if not rope_scaling:
        return inv_freq
    kind = rope_scaling.get("rope_type", rope_scaling.get("type"))
    factor = float(rope_scaling.get("factor", 1.0))
    if kind in (None, "default"):
        return inv_freq
    if kind == "linear":
        return inv_freq / factor
    if kind != "llama3":
        raise ValueError("rope_scaling type %r is not supported" % kind)
    low = float(rope_scaling.get("low_freq_factor", 1.0))
    high = float(rope_scaling.get("high_freq_factor", 4.0))
    old_len = float(rope_scaling.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = old_len / low, old_len / high
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


def rope_cos_sin(seq_len, head_dim, theta, device=None, dtype=torch.float32, rope_scaling=None):
    """HF convention: inv_freq over even indices, emb = cat(freqs, freqs)."""
    inv_freq = rope_inv_freq(head_dim, theta, rope_scaling, device)
    t = torch.arange(seq_len, device=device, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(x, cos, sin):
    # x: (B,H,T,D); cos/sin: (T,D)
    return x * cos + rotate_half(x) * sin


class LlamaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.hidden = cfg["hidden_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.n_kv = cfg.get("num_key_value_heads") or self.n_heads
        self.head_dim = cfg.get("head_dim") or self.hidden // self.n_heads
        bias = bool(cfg.get("attention_bias", False)) or cfg.get("model_type") == "qwen2"
        self.q_proj = nn.Linear(self.hidden, self.n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(self.hidden, self.n_kv * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(self.hidden, self.n_kv * self.head_dim, bias=bias)
        o_bias = bool(cfg.get("attention_bias", False)) and cfg.get("model_type") != "qwen2"
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, self.hidden, bias=o_bias)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        rep = self.n_heads // self.n_kv
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        y = _causal_attention(q, k, v, 1.0 / math.sqrt(self.head_dim))
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)
        return self.o_proj(y)


class LlamaMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, i = cfg["hidden_size"], cfg["intermediate_size"]
        bias = bool(cfg.get("mlp_bias", False))
        self.gate_proj = nn.Linear(h, i, bias=bias)
        self.up_proj = nn.Linear(h, i, bias=bias)
        self.down_proj = nn.Linear(i, h, bias=bias)
        act = cfg.get("hidden_act", "silu")
        if act != "silu":
            raise ValueError("only hidden_act=silu is supported")

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        eps = cfg.get("rms_norm_eps", 1e-6)
        self.self_attn = LlamaAttention(cfg)
        self.mlp = LlamaMLP(cfg)
        self.input_layernorm = LlamaRMSNorm(cfg["hidden_size"], eps)
        self.post_attention_layernorm = LlamaRMSNorm(cfg["hidden_size"], eps)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([LlamaDecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = LlamaRMSNorm(cfg["hidden_size"], cfg.get("rms_norm_eps", 1e-6))


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_word_embeddings", False):
            self.lm_head.weight = self.model.embed_tokens.weight
        self.rope_scaling = cfg.get("rope_scaling")
        rope_inv_freq(2, 10000.0, self.rope_scaling)  # rejects unsupported scaling types early
        self.head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        self.rope_theta = float(cfg.get("rope_theta", 10000.0))

    def forward(self, input_ids):
        T = input_ids.shape[1]
        x = self.model.embed_tokens(input_ids)
        cos, sin = rope_cos_sin(T, self.head_dim, self.rope_theta, x.device, x.dtype, self.rope_scaling)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.model.norm(x))


# ----------------------------------------------------------------------------
# OPT (pre- or post-LayerNorm; project_in/out when word_embed_proj_dim != hidden_size)
# ----------------------------------------------------------------------------

class OPTLearnedPositionalEmbedding(nn.Embedding):
    OFFSET = 2  # HF OPT reserves the first two rows

    def __init__(self, num_positions, dim):
        super().__init__(num_positions + self.OFFSET, dim)

    def forward(self, seq_len):
        pos = torch.arange(seq_len, device=self.weight.device) + self.OFFSET
        return F.embedding(pos, self.weight)


class OPTAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.n_heads = cfg["num_attention_heads"]
        self.head_dim = d // self.n_heads
        bias = cfg.get("enable_bias", True)
        self.k_proj = nn.Linear(d, d, bias=bias)
        self.v_proj = nn.Linear(d, d, bias=bias)
        self.q_proj = nn.Linear(d, d, bias=bias)
        self.out_proj = nn.Linear(d, d, bias=bias)

    def forward(self, x):
        B, T, D = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        y = _causal_attention(q, k, v, self.head_dim ** -0.5)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, D))


class OPTDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        bias = cfg.get("enable_bias", True)
        affine = cfg.get("layer_norm_elementwise_affine", True)
        self.pre_ln = cfg.get("do_layer_norm_before", True)
        self.self_attn = OPTAttention(cfg)
        self.self_attn_layer_norm = nn.LayerNorm(d, elementwise_affine=affine)
        self.fc1 = nn.Linear(d, cfg["ffn_dim"], bias=bias)
        self.fc2 = nn.Linear(cfg["ffn_dim"], d, bias=bias)
        self.final_layer_norm = nn.LayerNorm(d, elementwise_affine=affine)
        if cfg.get("activation_function", "relu") != "relu":
            raise ValueError("only activation_function=relu is supported")

    def forward(self, x):
        if self.pre_ln:
            x = x + self.self_attn(self.self_attn_layer_norm(x))
            x = x + self.fc2(F.relu(self.fc1(self.final_layer_norm(x))))
        else:  # post-LN (OPT-350m style)
            x = self.self_attn_layer_norm(x + self.self_attn(x))
            x = self.final_layer_norm(x + self.fc2(F.relu(self.fc1(x))))
        return x


class OPTDecoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        e = cfg.get("word_embed_proj_dim") or d
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], e, padding_idx=cfg.get("pad_token_id"))
        if e != d:  # OPT-350m style projections around the decoder
            self.project_in = nn.Linear(e, d, bias=False)
            self.project_out = nn.Linear(d, e, bias=False)
        else:
            self.project_in = self.project_out = None
        self.embed_positions = OPTLearnedPositionalEmbedding(cfg["max_position_embeddings"], d)
        self.pre_ln = cfg.get("do_layer_norm_before", True)
        if self.pre_ln and not cfg.get("_remove_final_layer_norm", False):
            self.final_layer_norm = nn.LayerNorm(d, elementwise_affine=cfg.get("layer_norm_elementwise_affine", True))
        else:
            self.final_layer_norm = None
        self.layers = nn.ModuleList([OPTDecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])


class OPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.decoder = OPTDecoder(cfg)


class OPTForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.config = cfg
        self.model = OPTModel(cfg)
        self.lm_head = nn.Linear(cfg.get("word_embed_proj_dim") or cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_word_embeddings", True):
            self.lm_head.weight = self.model.decoder.embed_tokens.weight

    def forward(self, input_ids):
        dec = self.model.decoder
        T = input_ids.shape[1]
        x = dec.embed_tokens(input_ids)
        if dec.project_in is not None:
            x = dec.project_in(x)
        x = x + dec.embed_positions(T)
        for layer in dec.layers:
            x = layer(x)
        if dec.final_layer_norm is not None:
            x = dec.final_layer_norm(x)
        if dec.project_out is not None:
            x = dec.project_out(x)
        return self.lm_head(x)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def build_model(cfg):
    mt = cfg.get("model_type")
    if mt in ("llama", "qwen2", "mistral"):
        return LlamaForCausalLM(cfg)
    if mt == "opt":
        return OPTForCausalLM(cfg)
    raise ValueError("unsupported model_type %r" % mt)


def hf_state_dict(model):
    """State dict with HF names; tied lm_head omitted (as HF saves it)."""
    sd = model.state_dict()
    if model.config.get("tie_word_embeddings", model.config.get("model_type") == "opt"):
        sd.pop("lm_head.weight", None)
    return {k: v.detach() for k, v in sd.items()}


def load_hf_folder(path, dtype=torch.float32):
    """Load config.json + model.safetensors; weights are upcast to ``dtype``."""
    import numpy as np
    try:
        from . import safetensors_np as stn
    except ImportError:
        import safetensors_np as stn
    with open(os.path.join(path, "config.json")) as f:
        cfg = json.load(f)
    model = build_model(cfg)
    tensors, _ = stn.load(os.path.join(path, "model.safetensors"))
    sd = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in tensors.items()}
    tied = "lm_head.weight" not in sd
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not (tied and m == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError("state dict mismatch: missing=%s unexpected=%s" % (missing, unexpected))
    return model.to(dtype).eval(), cfg
