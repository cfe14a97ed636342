#!/usr/bin/env python3
"""Train the reference SentencePiece BPE tokenizer (vocab 4096, LLaMA-2 style).

Trained on data/train.txt only (decompressed from train.txt.xz if needed).
unk=0 <unk>, bos=1 <s>, eos=2 </s>, byte_fallback, digits split, identity
normalisation, dummy prefix, whitespace preserved.  Deterministic: a single
thread, no sentence shuffling, every input sentence used.

Usage: train_tokenizer.py [--data data] [--out tokenizer_out_dir]
Writes OUT/tokenizer.model (+ tokenizer.vocab).
"""
import argparse
import lzma
import os
import shutil
import tempfile

import sentencepiece as spm

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def train_text(data_dir):
    p = os.path.join(data_dir, "train.txt")
    if os.path.exists(p):
        return open(p, "rb").read()
    return lzma.decompress(open(p + ".xz", "rb").read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "data"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "tokenizer"))
    ap.add_argument("--vocab", type=int, default=4096)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="pbs2p-tok-")
    try:
        # One paragraph per line (sentencepiece reads line by line).
        text = train_text(a.data).decode("utf-8")
        lines = [l for l in text.split("\n") if l.strip()]
        inp = os.path.join(tmp, "train_lines.txt")
        with open(inp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        # Relative paths only: the trainer spec (incl. file names) is stored in
        # the model, and a random temp dir name would break bit-reproducibility.
        cwd = os.getcwd()
        os.chdir(tmp)
        spm.SentencePieceTrainer.train(
            input="train_lines.txt",
            model_prefix="tokenizer",
            model_type="bpe",
            vocab_size=a.vocab,
            character_coverage=0.99995,
            byte_fallback=True,
            split_digits=True,
            allow_whitespace_only_pieces=True,
            normalization_rule_name="identity",
            add_dummy_prefix=True,
            remove_extra_whitespaces=False,
            split_by_unicode_script=True,
            split_by_whitespace=True,
            max_sentence_length=1 << 20,
            input_sentence_size=0,          # use every line, no sampling
            shuffle_input_sentence=False,
            num_threads=1,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
            minloglevel=1,
        )
        os.chdir(cwd)
        for ext in ("model", "vocab"):
            shutil.copy(os.path.join(tmp, "tokenizer." + ext), os.path.join(a.out, "tokenizer." + ext))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.out, "tokenizer.model"))
    print("vocab", sp.get_piece_size(), "example", sp.encode("Hello world, 1999.", out_type=str))


if __name__ == "__main__":
    main()
