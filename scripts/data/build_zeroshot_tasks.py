#!/usr/bin/env python3
"""Build the bundled zero-shot multiple-choice tasks under data/zeroshot/ from the held-out texts.

Two tasks, each built from data/test.txt (Persuasion, in-domain) and data/test-ood.txt (Moby-Dick,
out of domain); the training, calibration and validation splits are never read:

  lastword-<split>.jsonl  LAMBADA-style: a passage (at least MIN_CONTEXT_WORDS words, starting at a
                          sentence start) that stops before the last word of a sentence; choose that
                          word among it and 3 distractors: words that also end sentences in the same
                          text, with the same capitalisation and in the same frequency band
                          (floor(log2(count in the text))).
  nextsent-<split>.jsonl  the passage before a sentence (inside a paragraph); choose the true sentence
                          among it and 3 sentences of similar length from elsewhere in the same text
                          (more than FAR sentences away).

Each line is {"id", "context", "choices", "gold"} in the format `pbs2p zeroshot` reads (docs/EVALUATION.md):
the context ends with the separating space and the choices carry none, as lm-evaluation-harness
splits a request. Items are a seeded sample (fixed SEED, sorted inputs), so re-running reproduces
the files byte for byte; files over 1 MB are also written xz-compressed (LZMA2 preset 9, CRC64)
for committing, and SHA256SUMS lists the uncompressed files.

Usage: build_zeroshot_tasks.py [--data data] [--items 2000]
"""
import argparse
import bisect
import hashlib
import json
import lzma
import math
import os
import random
import re
import sys

SEED = 20261201
SOURCES = {"test": "test.txt", "ood": "test-ood.txt"}
MIN_CONTEXT_WORDS = 40
MAX_CONTEXT_WORDS = 150
SENTENCE_WORDS = (6, 40)  # true next sentence length range, in words
FAR = 50  # distractor sentences lie more than this many sentences away
LENGTH_TOLERANCE = 0.15  # distractor sentence length within +-15% of the true one's, in characters
XZ_THRESHOLD = 1_000_000
XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9}]

ABBREVIATIONS = {"Mr", "Mrs", "Ms", "Dr", "St", "Messrs", "Capt", "Col", "Gen", "Lt", "Rev", "Esq", "Sr",
                 "Jr", "No", "Mt", "Co"}
# A sentence ends at . ! or ? (plus closing quotes/brackets) followed by spaces and a capital letter,
# possibly behind an opening quote or bracket.
BOUNDARY = re.compile(r"[.!?]['\")\]]*(?=\s+['\"(\[]?[A-Z])")
LAST_WORD = re.compile(r"(?<= )([A-Za-z]{3,})[.!?]['\")\]]*$")
WORD = re.compile(r"[A-Za-z]+")


class Sentence:
    def __init__(self, text, start, end, paragraph, first_in_paragraph):
        self.start, self.end = start, end  # span in the whole text
        self.text = text
        self.paragraph = paragraph
        self.first_in_paragraph = first_in_paragraph
        self.words = len(text.split())
        self.complete = re.search(r"[.!?]['\")\]]*$", text) is not None


def split_sentences(text):
    """Sentences of every paragraph (paragraphs are separated by blank lines), with their spans."""
    sentences = []
    paragraph = 0
    for m in re.finditer(r"[^\n]+", text):
        para, base = m.group(0), m.start()
        start = 0
        first = True
        for b in BOUNDARY.finditer(para):
            before = para[:b.start()].rsplit(None, 1)
            if before and before[-1].strip("\"'(") in ABBREVIATIONS:
                continue
            end = b.end()
            sentences.append(Sentence(para[start:end], base + start, base + end, paragraph, first))
            first = False
            start = end + (len(para[end:]) - len(para[end:].lstrip()))
        if start < len(para):
            sentences.append(Sentence(para[start:], base + start, base + len(para), paragraph, first))
        paragraph += 1
    return sentences


def context_start(sentences, i, words_before):
    """Index of the first sentence of a context that ends inside/after sentence i-1 and has at least
    MIN_CONTEXT_WORDS words (counting `words_before` words of sentence i); None if too long."""
    words = words_before
    j = i
    while words < MIN_CONTEXT_WORDS and j > 0:
        j -= 1
        words += sentences[j].words
    if words < MIN_CONTEXT_WORDS or words > MAX_CONTEXT_WORDS:
        return None
    return j


def frequency_band(count):
    return int(math.floor(math.log2(count)))


def build_lastword(text, sentences, rng):
    counts = {}
    for w in WORD.findall(text):
        counts[w] = counts.get(w, 0) + 1
    candidates = []  # (sentence index, word, word start in text)
    for i, s in enumerate(sentences):
        m = LAST_WORD.search(s.text)
        if not s.complete or not m:
            continue
        word_start = s.start + m.start(1)
        j = context_start(sentences, i, len(s.text[:m.start(1)].split()))
        if j is not None:
            candidates.append((i, m.group(1), word_start, j))
    # Distractor pool: words that end sentences in this text, by (capitalised, frequency band).
    pool = {}
    for word in sorted({c[1] for c in candidates}):
        pool.setdefault((word[0].isupper(), frequency_band(counts[word])), []).append(word)

    def distractors(word):
        key_case, band = word[0].isupper(), frequency_band(counts[word])
        for width in range(0, 20):
            options = [w for b in range(band - width, band + width + 1) for w in pool.get((key_case, b), [])
                       if w != word]
            if len(options) >= 3:
                return rng.sample(options, 3)
        raise SystemExit(f"no distractors for '{word}'")

    items = []
    for i, word, word_start, j in candidates:
        choices = [word] + distractors(word)
        items.append((text[sentences[j].start:word_start], choices))
    return items


def build_nextsent(text, sentences, rng):
    eligible = [i for i, s in enumerate(sentences)
                if s.complete and not s.first_in_paragraph and SENTENCE_WORDS[0] <= s.words <= SENTENCE_WORDS[1]]
    by_length = sorted((len(s.text), k) for k, s in enumerate(sentences) if s.complete)
    items = []
    for i in eligible:
        s = sentences[i]
        j = context_start(sentences, i, 0)
        if j is None:
            continue
        # The true sentence's rank by length among the 4 choices is uniform: r distractors a little
        # shorter, 3 - r a little longer, so that neither length nor summed log-likelihood alone wins.
        length = len(s.text)
        lo = bisect.bisect_left(by_length, (length * (1 - LENGTH_TOLERANCE), -1))
        hi = bisect.bisect_right(by_length, (length * (1 + LENGTH_TOLERANCE), len(sentences)))
        near = sorted(k for _, k in by_length[lo:hi] if abs(k - i) > FAR and sentences[k].text != s.text)
        shorter = [k for k in near if len(sentences[k].text) < length]
        longer = [k for k in near if len(sentences[k].text) > length]
        r = rng.randrange(4)
        if len(shorter) < r or len(longer) < 3 - r:
            continue
        picked = rng.sample(shorter, r) + rng.sample(longer, 3 - r)
        context = text[sentences[j].start:s.start]
        items.append((context, [s.text] + [sentences[k].text for k in picked]))
    return items


TASKS = {"lastword": build_lastword, "nextsent": build_nextsent}


def write_task(out_dir, name, items, rng, n_items):
    if len(items) > n_items:
        keep = sorted(rng.sample(range(len(items)), n_items))
        items = [items[k] for k in keep]
    lines = []
    for k, (context, choices) in enumerate(items):
        order = list(range(len(choices)))
        rng.shuffle(order)
        shuffled = [choices[o] for o in order]
        record = {"id": f"{name}-{k:05d}", "context": context, "choices": shuffled, "gold": order.index(0)}
        lines.append(json.dumps(record, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path = os.path.join(out_dir, name + ".jsonl")
    with open(path, "wb") as f:
        f.write(data)
    if len(data) > XZ_THRESHOLD:
        with open(path + ".xz", "wb") as f:
            f.write(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, filters=XZ_FILTERS))
    shortest = sum(len(c[0]) < min(len(x) for x in c[1:]) for _, c in items) / len(items)
    print(f"{path}: {len(items)} items, {len(data)} bytes; the true choice is the shortest in "
          f"{100 * shortest:.1f}% of items", file=sys.stderr)
    return name + ".jsonl", hashlib.sha256(data).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data", help="directory holding test.txt and test-ood.txt")
    parser.add_argument("--items", type=int, default=2000, help="items per task file (a seeded sample)")
    args = parser.parse_args()
    out_dir = os.path.join(args.data, "zeroshot")
    os.makedirs(out_dir, exist_ok=True)
    sums = []
    for task, build in TASKS.items():
        for split, filename in SOURCES.items():
            with open(os.path.join(args.data, filename), encoding="utf-8") as f:
                text = f.read()
            rng = random.Random(f"{SEED}-{task}-{split}")
            items = build(text, split_sentences(text), rng)
            sums.append(write_task(out_dir, f"{task}-{split}", items, rng, args.items))
    with open(os.path.join(out_dir, "SHA256SUMS"), "w") as f:
        for name, digest in sums:
            f.write(f"{digest}  {name}\n")


if __name__ == "__main__":
    main()
