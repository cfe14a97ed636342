#!/usr/bin/env python3
"""Reference perplexity of a Hugging Face folder (config.json, model.safetensors,
tokenizer.model) on a text file, using the protocol shared with the C++ engine:

  * the whole file is tokenized once with SentencePiece, BOS prepended
    (no EOS), i.e. ids = [bos] + sp.encode(text);
  * ids are split into non-overlapping windows of ``ctx`` tokens, the last
    partial window is dropped;
  * every window is scored independently: ctx-1 next-token predictions per
    window (positions 1..ctx-1 given the preceding positions of that window);
  * ppl = exp(mean NLL over all predicted tokens);
  * weights are read as stored (bf16) and upcast to fp32; all math in fp32.

The unigram baseline scores the same predicted tokens with
p(t) = (count_train(t) + 1) / (N_train + V), counts taken over
[bos] + sp.encode(train.txt), V = vocabulary size (add-one smoothing).

Usage: perplexity.py MODEL_DIR TEXT [--ctx 512] [--train data/train.txt.xz] [--no-unigram]
TEXT may be .xz-compressed.  Prints a JSON object.
"""
import argparse
import json
import lzma
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_models  # noqa: E402


def read_text(path):
    if not os.path.exists(path) and os.path.exists(path + ".xz"):
        path = path + ".xz"
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        data = lzma.decompress(data)
    return data.decode("utf-8")


def load_tokenizer(model_dir):
    import sentencepiece as spm
    return spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))


def tokenize(sp, text):
    return np.asarray([sp.bos_id()] + sp.encode(text), dtype=np.int64)


def window_targets(ids, ctx):
    n = len(ids) // ctx
    return ids[: n * ctx].reshape(n, ctx)


@torch.no_grad()
def window_nll(model, windows, batch=4):
    """-> float64 array (n_windows, ctx-1) of per-token NLL."""
    out = []
    for i in range(0, len(windows), batch):
        x = torch.from_numpy(windows[i:i + batch])
        logits = model(x[:, :-1]).float()
        lp = F.log_softmax(logits, dim=-1)
        nll = -lp.gather(-1, x[:, 1:].unsqueeze(-1)).squeeze(-1)
        out.append(nll.double().numpy())
    return np.concatenate(out, axis=0)


def unigram_logprobs(sp, train_text):
    ids = tokenize(sp, train_text)
    v = sp.get_piece_size()
    counts = np.bincount(ids, minlength=v).astype(np.float64)
    return np.log((counts + 1.0) / (counts.sum() + v))


def evaluate(model, sp, text, ctx=512, unigram_lp=None):
    ids = tokenize(sp, text)
    w = window_targets(ids, ctx)
    nll = window_nll(model, w)
    res = {"ctx": ctx, "n_tokens_text": int(len(ids)), "n_windows": int(len(w)),
           "n_tokens": int(nll.size), "nll": float(nll.mean()), "ppl": float(math.exp(nll.mean()))}
    if unigram_lp is not None:
        u = -unigram_lp[w[:, 1:]].mean()
        res["unigram_ppl"] = float(math.exp(u))
        res["ratio_to_unigram"] = res["ppl"] / res["unigram_ppl"]
    return res


def main():
    ap = argparse.ArgumentParser(description="reference perplexity (non-overlapping windows)")
    ap.add_argument("model_dir")
    ap.add_argument("text")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--train", default=None, help="train text for the unigram baseline "
                    "(default: data/train.txt[.xz] next to this repo)")
    ap.add_argument("--no-unigram", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, cfg = hf_models.load_hf_folder(a.model_dir)
    sp = load_tokenizer(a.model_dir)
    ulp = None
    if not a.no_unigram:
        train = a.train or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "train.txt")
        ulp = unigram_logprobs(sp, read_text(train))
    res = evaluate(model, sp, read_text(a.text), a.ctx, ulp)
    res["model"] = os.path.basename(os.path.normpath(a.model_dir))
    res["text"] = os.path.basename(a.text)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
