#!/usr/bin/env python3
"""Train the small reference models (ref-llama, ref-opt, ref-llama-deep) on CPU.

Deterministic setup (fixed seeds; CPU float32 training), wall-clock budgeted:
each model trains until its time budget is spent, then is saved as a Hugging
Face checkpoint (bf16 safetensors).  The LR schedule is tied to the budget:
linear warmup over the first WARMUP steps, then cosine decay from the peak to
10% of it as a function of elapsed_time / budget.  Because the schedule and
the stopping point depend on wall time, the exact weights depend on machine
speed; the checkpoints committed in models/ are the reference artefacts.

Usage:
  train_ref_models.py --measure            # throughput of a few steps
  train_ref_models.py --models llama,opt --minutes 30 --out models
  train_ref_models.py --models llama,opt --minutes 45 --resume   # another phase on the saved models
  train_ref_models.py --models llama-deep --minutes 90            # the 12-block model (ref-llama-deep)
"""
import argparse
import csv
import json
import lzma
import math
import os
import shutil
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import hf_models  # noqa: E402
import safetensors_np  # noqa: E402

VOCAB = 4096
CTX = 512

LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": VOCAB,
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "hidden_act": "silu",
    "max_position_embeddings": CTX,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "pretraining_tp": 1,
    "tie_word_embeddings": False,
    "use_cache": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": None,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.0",
}

OPT_CONFIG = {
    "architectures": ["OPTForCausalLM"],
    "model_type": "opt",
    "vocab_size": VOCAB,
    "hidden_size": 256,
    "word_embed_proj_dim": 256,
    "ffn_dim": 1024,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "max_position_embeddings": CTX,
    "activation_function": "relu",
    "do_layer_norm_before": True,
    "_remove_final_layer_norm": False,
    "enable_bias": True,
    "layer_norm_elementwise_affine": True,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "layerdrop": 0.0,
    "init_std": 0.02,
    "tie_word_embeddings": True,
    "use_cache": True,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "prefix": "</s>",
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.0",
}

# ref-llama-deep: ref-llama's layout and width at 12 blocks, so that block importance can vary with depth.
LLAMA_DEEP_CONFIG = dict(LLAMA_CONFIG, num_hidden_layers=12)

CONFIGS = {"llama": LLAMA_CONFIG, "opt": OPT_CONFIG, "llama-deep": LLAMA_DEEP_CONFIG}
HPARAMS = {
    "llama": {"lr": 2e-3, "batch": 8, "seed": 1234},
    "opt": {"lr": 1.5e-3, "batch": 8, "seed": 4321},
    "llama-deep": {"lr": 1.5e-3, "batch": 8, "seed": 2468},
}
WARMUP = 40
MIN_LR_FRAC = 0.1
WEIGHT_DECAY = 0.1
BETAS = (0.9, 0.95)
CLIP = 1.0


def read_split(name):
    p = os.path.join(ROOT, "data", name)
    if os.path.exists(p):
        return open(p, "rb").read().decode("utf-8")
    return lzma.decompress(open(p + ".xz", "rb").read()).decode("utf-8")


def encode_train(tok_path):
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    ids = [sp.bos_id()] + sp.encode(read_split("train.txt"))
    return np.asarray(ids, dtype=np.int16 if VOCAB < 32768 else np.int32)


def init_weights(model, cfg):
    std = cfg.get("initializer_range", cfg.get("init_std", 0.02))
    n_layers = cfg["num_hidden_layers"]
    g = torch.Generator().manual_seed(0)
    for name, p in model.named_parameters():
        if p.dim() == 1:
            if "norm" in name and name.endswith("weight"):
                p.data.fill_(1.0)
            else:
                p.data.zero_()
            continue
        s = std
        if name.endswith(("o_proj.weight", "down_proj.weight", "out_proj.weight", "fc2.weight")):
            s = std / math.sqrt(2 * n_layers)
        p.data.normal_(0.0, s, generator=g)
    if cfg["model_type"] == "opt" and cfg.get("pad_token_id") is not None:
        model.model.decoder.embed_tokens.weight.data[cfg["pad_token_id"]].zero_()


def make_model(kind, seed):
    cfg = dict(CONFIGS[kind])
    torch.manual_seed(seed)
    model = hf_models.build_model(cfg)
    init_weights(model, cfg)
    return model, cfg


def param_groups(model):
    decay, no_decay = [], []
    seen = set()
    for n, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 and "embed_positions" not in n else no_decay).append(p)
    return [{"params": decay, "weight_decay": WEIGHT_DECAY},
            {"params": no_decay, "weight_decay": 0.0}]


def n_params(model):
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def lr_at(step, frac, peak):
    w = min(1.0, (step + 1) / WARMUP)
    frac = min(max(frac, 0.0), 1.0)
    return peak * w * (MIN_LR_FRAC + (1 - MIN_LR_FRAC) * 0.5 * (1 + math.cos(math.pi * frac)))


def batch(ids, rng, bsz, ctx):
    starts = rng.integers(0, len(ids) - ctx - 1, size=bsz)
    x = np.stack([ids[s:s + ctx + 1] for s in starts]).astype(np.int64)
    return torch.from_numpy(x)


def save_hf(model, cfg, out_dir, tok_dir, extra_meta=None):
    os.makedirs(out_dir, exist_ok=True)
    sd = hf_models.hf_state_dict(model)
    tensors = {k: v.float().numpy() for k, v in sd.items()}
    safetensors_np.save(os.path.join(out_dir, "model.safetensors"), tensors,
                        metadata={"format": "pt"}, dtypes={k: "BF16" for k in tensors})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    gen = {"_from_model_config": True, "bos_token_id": cfg["bos_token_id"],
           "eos_token_id": cfg["eos_token_id"], "transformers_version": cfg["transformers_version"]}
    if cfg.get("pad_token_id") is not None:
        gen["pad_token_id"] = cfg["pad_token_id"]
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2, sort_keys=True)
        f.write("\n")
    for fn in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(tok_dir, fn), os.path.join(out_dir, fn))


def write_tokenizer_files(tok_dir):
    tc = {
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
        "add_bos_token": True, "add_eos_token": False,
        "clean_up_tokenization_spaces": False, "legacy": True,
        "model_max_length": CTX, "sp_model_kwargs": {},
        "added_tokens_decoder": {
            "0": {"content": "<unk>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
            "1": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
            "2": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
        },
    }
    with open(os.path.join(tok_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2)
        f.write("\n")
    stm = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    with open(os.path.join(tok_dir, "special_tokens_map.json"), "w") as f:
        json.dump(stm, f, indent=2)
        f.write("\n")


def train_one(kind, ids, minutes, out_root, tok_dir, max_steps=None, log_every=10, resume=False):
    """Train ref-KIND for `minutes`; with resume, continue the checkpoint saved in out_root/ref-KIND
    (a second phase: fresh optimizer, new warmup + cosine schedule at half the peak rate, the step,
    token and time counters and the loss curve continue from the saved ones)."""
    hp = dict(HPARAMS[kind])
    prior = None
    if resume:
        prior_dir = os.path.join(out_root, "ref-" + kind)
        model, cfg = hf_models.load_hf_folder(prior_dir)
        with open(os.path.join(prior_dir, "train_info.json")) as f:
            prior = json.load(f)
        with open(os.path.join(prior_dir, "loss_curve.csv")) as f:
            prior_log = [(int(r[0]), int(r[1]), float(r[2]), *(float(v) for v in r[3:]))
                         for r in list(csv.reader(f))[1:]]
        hp["lr"] = hp["lr"] * 0.5
        hp["seed"] = hp["seed"] + prior["steps"]  # new batches, still deterministic
    else:
        model, cfg = make_model(kind, hp["seed"])
    model.train()
    npar = n_params(model)
    print("[%s] params %d (%.2fM)" % (kind, npar, npar / 1e6), flush=True)
    opt = torch.optim.AdamW(param_groups(model), lr=hp["lr"], betas=BETAS, eps=1e-8)
    rng = np.random.default_rng(hp["seed"])
    budget = minutes * 60.0
    t0 = time.time()
    step, tokens = 0, 0
    log = []
    ema = None
    while True:
        el = time.time() - t0
        if el >= budget or (max_steps is not None and step >= max_steps):
            break
        lr = lr_at(step, el / budget, hp["lr"])
        for g in opt.param_groups:
            g["lr"] = lr
        xb = batch(ids, rng, hp["batch"], CTX)
        logits = model(xb[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), xb[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        step += 1
        tokens += hp["batch"] * CTX
        lv = loss.item()
        ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        if step % log_every == 0 or step == 1:
            el = time.time() - t0
            log.append((step, tokens, round(el, 1), round(lr, 7), round(lv, 4), round(ema, 4), round(float(gn), 3)))
            print("[%s] step %d tok %d t %.0fs lr %.2e loss %.4f ema %.4f gn %.2f tok/s %.0f"
                  % (kind, step, tokens, el, lr, lv, ema, gn, tokens / max(el, 1e-9)), flush=True)
    wall = time.time() - t0
    model.eval()
    if prior is not None:  # continue the counters and the curve of the first phase
        step0, tokens0, wall0 = prior["steps"], prior["tokens_seen"], prior["wall_s"]
        log = prior_log + [(s_ + step0, t_ + tokens0, round(e_ + wall0, 1), *rest) for (s_, t_, e_, *rest) in log]
        step, tokens, wall = step + step0, tokens + tokens0, wall + wall0
    if out_root is None:
        return model, cfg, {"steps": step, "tokens": tokens, "wall_s": wall}
    out_dir = os.path.join(out_root, "ref-" + kind)
    save_hf(model, cfg, out_dir, tok_dir)
    with open(os.path.join(out_dir, "loss_curve.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "tokens", "elapsed_s", "lr", "loss", "loss_ema", "grad_norm"])
        w.writerows(log)
    info = {"model": "ref-" + kind, "params": npar, "steps": step, "tokens_seen": tokens,
            "wall_s": round(wall, 1), "batch": hp["batch"], "ctx": CTX, "peak_lr": hp["lr"],
            "min_lr_frac": MIN_LR_FRAC, "warmup_steps": WARMUP, "weight_decay": WEIGHT_DECAY,
            "betas": list(BETAS), "grad_clip": CLIP, "seed": hp["seed"], "budget_minutes": minutes,
            "torch_version": torch.__version__, "threads": torch.get_num_threads(),
            "phases": (prior.get("phases", [{"minutes": prior["budget_minutes"], "peak_lr": prior["peak_lr"],
                                             "steps": prior["steps"]}]) if prior else [])
                      + [{"minutes": minutes, "peak_lr": hp["lr"], "steps": step - (prior["steps"] if prior else 0)}],
            "train_tokens_available": int(len(ids))}
    with open(os.path.join(out_dir, "train_info.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    print("[%s] saved %s: %s" % (kind, out_dir, info), flush=True)
    return model, cfg, info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="llama,opt")
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-time budget per model")
    ap.add_argument("--out", default=os.path.join(ROOT, "models"))
    ap.add_argument("--tokenizer-dir", default=os.path.join(ROOT, "build", "tokenizer"),
                    help="dir with tokenizer.model from train_tokenizer.py")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1 is much faster than 2 on a CPU shared with other jobs)")
    ap.add_argument("--measure", action="store_true", help="time a few steps of each model and exit")
    ap.add_argument("--layers", type=int, default=None, help="override num_hidden_layers (llama)")
    ap.add_argument("--resume", action="store_true",
                    help="continue training the models already saved in --out for another --minutes")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.layers:
        LLAMA_CONFIG["num_hidden_layers"] = a.layers
    tok = os.path.join(a.tokenizer_dir, "tokenizer.model")
    write_tokenizer_files(a.tokenizer_dir)
    t = time.time()
    ids = encode_train(tok)
    print("train tokens %d (encoded in %.0fs)" % (len(ids), time.time() - t), flush=True)
    for kind in a.models.split(","):
        if a.measure:
            _, _, info = train_one(kind, ids, 100, None, None, max_steps=6, log_every=1)
            print("[%s] measure: %s -> %.0f tok/s" % (kind, info, info["tokens"] / info["wall_s"]), flush=True)
        else:
            train_one(kind, ids, a.minutes, a.out, a.tokenizer_dir, resume=a.resume)


if __name__ == "__main__":
    main()
