#!/usr/bin/env python3
"""Evaluate the saved reference models and write their artefacts:

  models/<name>/reference_eval.json   perplexities (protocol of tools/reference/perplexity.py)
  models/<name>/golden_logits.json    logits for a fixed prompt (format below)
  models/<name>/MODEL_CARD.md         card (architecture, data, training, eval, samples)

Everything is computed from model.safetensors as saved (bf16), upcast to fp32.

golden_logits.json format (one JSON object):
  "format"          : "pbs2p-golden-logits-v1"
  "model"           : model folder name
  "weights"         : "model.safetensors (bf16) upcast to fp32; fp32 forward"
  "prompt_text"     : text the ids were encoded from (for information)
  "input_ids"       : list of 16 token ids (BOS first), fed as one sequence
                      (positions 0..15, no padding, no KV cache)
  "vocab_size"      : V
  "last_logits"     : V floats, logits of the LAST position (15)
  "max_abs_logit"   : max |logit| over all positions and all vocab entries
  "first8_logits"   : 16 lists of 8 floats: logits[pos][0:8] for every position
  "argmax"          : argmax token id of each position
  "min_top1_margin" : smallest (top-1 minus top-2) logit gap over the positions
  "tolerance"       : suggested check, max|dlogit| <= 1e-3 * max_abs_logit

Usage: eval_ref_models.py [--models ref-llama,ref-opt] [--root models]
"""
import argparse
import csv
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import hf_models  # noqa: E402
import perplexity as P  # noqa: E402

# The first prompt whose top-1 logit margin is >= 3e-3 * max|logit| at every position is
# used (else the one with the largest relative margin), so that an engine within the
# 1e-3 tolerance also reproduces every argmax.
GOLDEN_PROMPTS = ["It is a truth universally acknowledged, that the President of the United States",
                  "The ship sailed from the harbour at dawn, and the captain told his men that",
                  "In the year of our Lord, the people of this nation have seen great changes in"]
SAMPLE_PROMPTS = ["It is a truth universally acknowledged", "The President said that",
                  "She walked into the room and"]
REPEAT_PENALTY = 1.3  # for the second set of samples (CTRL-style, as llama.cpp's --repeat-penalty)
# Training commands per model (after the corpora and the tokenizer are built).
REPRODUCE = {
    "ref-llama": "python3 scripts/train/train_ref_models.py --models llama,opt --minutes 27 --threads 1\n"
                 "python3 scripts/train/train_ref_models.py --models llama,opt --minutes 45 --threads 1 --resume\n"
                 "python3 scripts/train/eval_ref_models.py\n",
    "ref-llama-deep": "python3 scripts/train/train_ref_models.py --models llama-deep --minutes 90 --threads 1\n"
                      "python3 scripts/train/eval_ref_models.py --models ref-llama-deep\n",
}
REPRODUCE["ref-opt"] = REPRODUCE["ref-llama"]
SPLITS = [("test", "test.txt"), ("test_ood", "test-ood.txt"), ("valid", "valid.txt")]


@torch.no_grad()
def greedy(model, sp, prompt, n=64, repeat_penalty=1.0):
    """Greedy continuation; with repeat_penalty > 1 the logits of tokens already in the context are
    divided (positive) or multiplied (negative) by it before the argmax."""
    ids = [sp.bos_id()] + sp.encode(prompt)
    start = len(ids)
    for _ in range(n):
        x = torch.tensor([ids[-512:]])
        logits = model(x)[0, -1].clone()
        if repeat_penalty != 1.0:
            seen = torch.tensor(sorted(set(ids[1:])))
            v = logits[seen]
            logits[seen] = torch.where(v > 0, v / repeat_penalty, v * repeat_penalty)
        ids.append(int(logits.argmax()))
    return sp.decode(ids[start:]), ids[start:]


def training_note(info):
    rate = info["tokens_seen"] / max(info["wall_s"], 1e-9)
    return ("Training ran on two CPU cores shared with other jobs at %.0f tokens/s on average; the model saw "
            "%.2f epochs and is short of convergence. That is enough for its purpose (a small, non-trivial "
            "fixture for testing compression and perplexity code).\n"
            % (rate, info["tokens_seen"] / info["train_tokens_available"]))


@torch.no_grad()
def golden(model, sp, name):
    best = None
    for prompt in GOLDEN_PROMPTS:
        ids = ([sp.bos_id()] + sp.encode(prompt))[:16]
        assert len(ids) == 16, len(ids)
        logits = model(torch.tensor([ids]))[0].float().numpy()
        top2 = np.sort(logits, axis=-1)[:, -2:]
        margin = float((top2[:, 1] - top2[:, 0]).min())
        rel = margin / float(np.abs(logits).max())
        if best is None or rel > best[0]:
            best = (rel, prompt, ids, logits, margin)
        if rel >= 3e-3:
            break
    _, prompt, ids, logits, margin = best
    f = lambda a: [float(np.float32(v)) for v in a]  # noqa: E731
    return {
        "format": "pbs2p-golden-logits-v1",
        "model": name,
        "weights": "model.safetensors (bf16) upcast to fp32; fp32 forward",
        "prompt_text": prompt,
        "input_ids": ids,
        "vocab_size": int(logits.shape[1]),
        "last_logits": f(logits[-1]),
        "max_abs_logit": float(np.abs(logits).max()),
        "first8_logits": [f(r[:8]) for r in logits],
        "argmax": [int(i) for i in logits.argmax(-1)],
        "min_top1_margin": margin,
        "tolerance": "max|dlogit| <= 1e-3 * max_abs_logit",
    }


def loss_summary(path):
    rows = list(csv.DictReader(open(path)))
    pick = [rows[0], rows[len(rows) // 4], rows[len(rows) // 2], rows[3 * len(rows) // 4], rows[-1]]
    return rows, pick


def arch_text(cfg, npar):
    if cfg["model_type"] == "llama":
        return ("LlamaForCausalLM: %d layers, hidden %d, SwiGLU intermediate %d, %d query heads x %d dims, "
                "%d KV heads (GQA), RoPE theta %g (HF rotate_half convention), RMSNorm eps %g, "
                "untied lm_head, no biases, vocab %d, max positions %d. Parameters: %d (%.2fM)."
                % (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"],
                   cfg["num_attention_heads"], cfg["head_dim"], cfg["num_key_value_heads"],
                   cfg["rope_theta"], cfg["rms_norm_eps"], cfg["vocab_size"],
                   cfg["max_position_embeddings"], npar, npar / 1e6))
    return ("OPTForCausalLM: %d layers, hidden %d, ffn %d (ReLU), %d heads x %d dims, pre-LayerNorm "
            "(do_layer_norm_before), learned positions (%d rows = max positions %d + offset 2), "
            "biases on all linears and LayerNorms, final LayerNorm, lm_head tied to embed_tokens, "
            "vocab %d. Parameters: %d (%.2fM, tied weights counted once)."
            % (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["ffn_dim"], cfg["num_attention_heads"],
               cfg["hidden_size"] // cfg["num_attention_heads"], cfg["max_position_embeddings"] + 2,
               cfg["max_position_embeddings"], cfg["vocab_size"], npar, npar / 1e6))


def card(name, cfg, npar, info, ev, rows, pick, samples, sizes):
    L = []
    L.append("# %s\n" % name)
    L.append("Small reference model for pbs2p tests and examples, trained from scratch on public-domain "
             "English text. Not intended for any use beyond testing compression.\n")
    L.append("## Architecture\n\n" + arch_text(cfg, npar) + "\n")
    L.append("Stored as a Hugging Face checkpoint: `config.json`, `generation_config.json`, "
             "`model.safetensors` (bf16, `__metadata__` {\"format\": \"pt\"}%s), SentencePiece "
             "`tokenizer.model` with `tokenizer_config.json` / `special_tokens_map.json` "
             "(LlamaTokenizer style, BOS added, no EOS).\n"
             % (", no separate `lm_head.weight` (tied)" if cfg.get("tie_word_embeddings") else ""))
    L.append("## Tokenizer\n\nSentencePiece BPE, 4096 pieces (`<unk>`=0, `<s>`=1, `</s>`=2, 256 byte-fallback "
             "pieces), trained on `data/train.txt` only; identity normalisation, dummy prefix, "
             "whitespace kept, digits split (LLaMA-2 style). See `scripts/train/train_tokenizer.py`.\n")
    L.append("## Training data\n\n`data/train.txt` (see `data/README.md`): five Jane Austen novels "
             "(not *Persuasion*, minus the calib/valid chunks), US State of the Union addresses "
             "(minus held-out ones) and the Brown corpus (minus held-out samples); %d tokens.\n"
             % info["train_tokens_available"])
    L.append("## Training\n\n%sCPU, fp32, PyTorch %s, %d thread(s). AdamW (betas %s, weight decay %g on matrices, "
             "eps 1e-8), peak LR %g, linear warmup %d steps then cosine decay to %g x peak as a function of "
             "elapsed / budgeted wall time (budget %g min), gradient clipping %g, batch %d random windows "
             "of %d tokens from the training token stream, seed %d.\n"
             % ("Settings of the last training phase: " if info.get("phases") else "",
                info["torch_version"], info["threads"], tuple(info["betas"]), info["weight_decay"],
                info["peak_lr"], info["warmup_steps"], info["min_lr_frac"], info["budget_minutes"],
                info["grad_clip"], info["batch"], info["ctx"], info["seed"]))
    if info.get("phases"):
        L.append("Training phases (each with a fresh optimizer, its own warmup and cosine schedule): "
                 + "; ".join("%g min at peak LR %g, %d steps" % (ph["minutes"], ph["peak_lr"], ph["steps"])
                             for ph in info["phases"]) + ".\n")
    L.append("- steps: %d, tokens seen: %d (%.2f epochs), wall time: %.1f min"
             % (info["steps"], info["tokens_seen"], info["tokens_seen"] / info["train_tokens_available"],
                info["wall_s"] / 60))
    L.append(training_note(info))
    L.append("- loss curve (`loss_curve.csv`, training loss of single batches and its EMA):\n")
    L.append("| step | tokens | elapsed s | lr | loss | loss EMA |\n|---:|---:|---:|---:|---:|---:|")
    for r in pick:
        L.append("| %s | %s | %s | %s | %s | %s |" % (r["step"], r["tokens"], r["elapsed_s"], r["lr"],
                                                   r["loss"], r["loss_ema"]))
    L.append("")
    L.append("## Evaluation\n\nComputed by `tools/reference/perplexity.py` from the saved bf16 weights "
             "upcast to fp32. Protocol: the whole file is tokenized once with BOS prepended, split into "
             "non-overlapping windows of 512 tokens (last partial window dropped), every window scored "
             "independently (511 predictions per window), ppl = exp(mean NLL). Unigram ppl: the same "
             "predicted tokens scored with p(t) = (count_train(t) + 1) / (N_train + 4096), counts over "
             "the tokenized `data/train.txt`.\n")
    L.append("| split | file | tokens scored | ppl | unigram ppl | ppl / unigram |\n|---|---|---:|---:|---:|---:|")
    for key, fn in SPLITS:
        e = ev[key]
        L.append("| %s | data/%s | %d | %.3f | %.2f | %.4f |" % (key, fn, e["n_tokens"], e["ppl"],
                                                              e["unigram_ppl"], e["ratio_to_unigram"]))
    L.append("\n`test` is Austen's *Persuasion* (in-domain author, unseen novel); `test_ood` is Melville's "
             "*Moby-Dick* (out of domain). Values in `reference_eval.json`.\n")
    L.append("## Greedy samples (64 tokens)\n")
    L.append("Plain greedy decoding first, then greedy with a repetition penalty of %g (the logit of every "
             "token already in the context divided by it when positive, multiplied when negative), which "
             "keeps a model this small out of loops.\n" % REPEAT_PENALTY)
    for p, plain, penalised in samples:
        L.append("**Prompt:** `%s`\n\n- greedy: %s\n- greedy, repetition penalty %g: %s\n"
                 % (p, plain.replace("\n", " "), REPEAT_PENALTY, penalised.replace("\n", " ")))
    L.append("## Files\n")
    for fn, sz in sizes:
        L.append("- `%s`: %d bytes" % (fn, sz))
    L.append("\n`golden_logits.json` holds fp32 logits for a fixed 16-token prompt (format documented in "
             "`scripts/train/eval_ref_models.py`).\n")
    L.append("## Reproduce\n\n```\npython3 scripts/data/build_corpora.py --keep-plain\n"
             "python3 scripts/train/train_tokenizer.py\n"
             + REPRODUCE.get(name, REPRODUCE["ref-llama"]) +
             "```\n\nTraining is budgeted by wall time, so "
             "re-training on another machine gives a different (similar) model; the committed weights are "
             "the reference.\n\nLicence: the training texts are public domain; the model is released "
             "under the same terms as this repository.\n")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="ref-llama,ref-opt")
    ap.add_argument("--root", default=os.path.join(ROOT, "models"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ulp = None
    for name in a.models.split(","):
        d = os.path.join(a.root, name)
        model, cfg = hf_models.load_hf_folder(d)
        sp = P.load_tokenizer(d)
        if ulp is None:
            ulp = P.unigram_logprobs(sp, P.read_text(os.path.join(ROOT, "data", "train.txt")))
        ev = {}
        for key, fn in SPLITS:
            ev[key] = P.evaluate(model, sp, P.read_text(os.path.join(ROOT, "data", fn)), 512, ulp)
            print(name, key, ev[key], flush=True)
        ref = {"protocol": "gptq", "ctx": 512,
               "test_ppl": ev["test"]["ppl"], "test_ood_ppl": ev["test_ood"]["ppl"],
               "valid_ppl": ev["valid"]["ppl"],
               "n_tokens": {k: ev[k]["n_tokens"] for k, _ in SPLITS},
               "unigram_ppl": {k: ev[k]["unigram_ppl"] for k, _ in SPLITS},
               "files": {k: "data/" + fn for k, fn in SPLITS},
               "weights": "bf16 as saved, upcast to fp32"}
        with open(os.path.join(d, "reference_eval.json"), "w") as f:
            json.dump(ref, f, indent=2)
            f.write("\n")
        with open(os.path.join(d, "golden_logits.json"), "w") as f:
            json.dump(golden(model, sp, name), f)
            f.write("\n")
        samples = [(p, greedy(model, sp, p)[0], greedy(model, sp, p, repeat_penalty=REPEAT_PENALTY)[0])
                   for p in SAMPLE_PROMPTS]
        for p, plain, penalised in samples:
            print(name, repr(p), "->", repr(plain), "| penalty:", repr(penalised), flush=True)
        info = json.load(open(os.path.join(d, "train_info.json")))
        rows, pick = loss_summary(os.path.join(d, "loss_curve.csv"))
        npar = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
        sizes = [(fn, os.path.getsize(os.path.join(d, fn))) for fn in sorted(os.listdir(d))
                 if fn != "MODEL_CARD.md"]
        with open(os.path.join(d, "MODEL_CARD.md"), "w") as f:
            f.write(card(name, cfg, npar, info, ev, rows, pick, samples, sizes))


if __name__ == "__main__":
    main()
