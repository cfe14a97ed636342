"""Trains the tiny SentencePiece BPE model used by the tokenizer tests and writes its goldens.

    PYENV_VERSION=system python3 tools/reference/tokenizer_spm_fixture.py

Writes tests/io/golden/tiny_spm.model (vocab 400, byte fallback, identity normalization so the file stays
small) trained on the first 200 KB of data/calib.txt, and tests/io/golden/tiny_spm_goldens.json: ids
(without BOS) of the tokenizer sample texts from Python's sentencepiece.
"""
import json
import os
import tempfile

import sentencepiece as spm

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
golden = os.path.join(root, "tests", "io", "golden")

with open(os.path.join(root, "data", "calib.txt"), encoding="utf-8") as f:
    text = f.read()[:200_000]
with tempfile.TemporaryDirectory() as tmp:
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(text.replace(". ", ".\n"))
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(tmp, "tiny"), model_type="bpe", vocab_size=400,
        byte_fallback=True, normalization_rule_name="identity", character_coverage=0.9995,
        num_threads=2, minloglevel=2)
    with open(os.path.join(tmp, "tiny.model"), "rb") as f:
        model = f.read()
with open(os.path.join(golden, "tiny_spm.model"), "wb") as f:
    f.write(model)

sp = spm.SentencePieceProcessor(model_file=os.path.join(golden, "tiny_spm.model"))
with open(os.path.join(golden, "tokenizer_samples.json"), encoding="utf-8") as f:
    texts = json.load(f)["texts"]
ids = [sp.encode(t) for t in texts]
with open(os.path.join(golden, "tiny_spm_goldens.json"), "w", encoding="utf-8") as f:
    f.write('{\n  "generator": "sentencepiece %s, encode(text)",\n  "ids": [\n' % spm.__version__)
    f.write(",\n".join("    " + json.dumps(r, separators=(",", ":")) for r in ids))
    f.write("\n  ]\n}\n")
print(f"tiny_spm.model: {len(model)} bytes, {sp.get_piece_size()} pieces")
