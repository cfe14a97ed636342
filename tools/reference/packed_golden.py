"""Writes the golden bitstreams of the packed format from docs/FORMAT.md alone (no code shared with the
C++ encoder), for tests/packed/test_packed_golden.cpp.

    /usr/bin/python3 tools/reference/packed_golden.py

Writes tests/packed/golden/packed_golden.json (every case's layout: shape, N:M, scale group, keep and
sign bits per row, alpha and mu) and, per case, <name>.codes (the code bitstream) and <name>.scales (the
fp16 (alpha, mu) pairs) as raw bytes. The shapes leave codes straddling bytes and the stream padded.
"""
import json
import os
import random
import struct

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out_dir = os.path.join(root, "tests", "packed", "golden")

# name, rows, cols, N, M, scale group
CASES = [
    ("nm4_8_3x24", 3, 24, 4, 8, 8),
    ("nm5_8_2x16", 2, 16, 5, 8, 16),
    ("nm6_8_1x8", 1, 8, 6, 8, 8),
    ("nm3_8_3x16", 3, 16, 3, 8, 8),
    ("nm1_8_5x8", 5, 8, 1, 8, 8),
    ("nm2_4_2x16", 2, 16, 2, 4, 8),
]


def masks_with(k):
    """8-bit masks with k bits set, in increasing numeric order (their index is the rank)."""
    return [m for m in range(256) if bin(m).count("1") == k]


def code_width(k):
    count = len(masks_with(k)) * 2**k
    return (count - 1).bit_length()


def group_code(keep_bits, sign_bits, k):
    mask = sum(1 << j for j, kept in enumerate(keep_bits) if kept)
    signs = 0
    t = 0
    for j in range(8):
        if keep_bits[j]:
            signs |= sign_bits[j] << t
            t += 1
    return masks_with(k).index(mask) * 2**k + signs


def make_case(rng, name, rows, cols, n, m, sg):
    keep, sign = [], []
    for _ in range(rows):
        row_keep, row_sign = [], []
        for _ in range(cols // m):
            kept = set(rng.sample(range(m), n))
            for j in range(m):
                row_keep.append(1 if j in kept else 0)
                row_sign.append(rng.randint(0, 1) if j in kept else 0)
        keep.append(row_keep)
        sign.append(row_sign)
    groups = rows * (cols // sg)
    alpha = [rng.randint(1, 255) / 256.0 for _ in range(groups)]  # exact in fp16
    mu = [rng.randint(-128, 128) / 512.0 for _ in range(groups)]
    return {"name": name, "rows": rows, "cols": cols, "n_keep": n, "m_group": m, "scale_group": sg,
            "keep": ["".join(map(str, r)) for r in keep], "sign": ["".join(map(str, r)) for r in sign],
            "alpha": alpha, "mu": mu}


def encode(case):
    k = case["n_keep"] * 8 // case["m_group"]
    width = code_width(k)
    bits = []  # the stream, bit b = bits[b]
    for row_keep, row_sign in zip(case["keep"], case["sign"]):
        for g in range(0, case["cols"], 8):
            code = group_code([int(c) for c in row_keep[g:g + 8]], [int(c) for c in row_sign[g:g + 8]], k)
            bits.extend((code >> b) & 1 for b in range(width))  # LSB first
    n_bytes = (len(bits) + 63) // 64 * 8
    codes = bytearray(n_bytes)
    for b, bit in enumerate(bits):
        codes[b // 8] |= bit << (b % 8)
    scales = b"".join(struct.pack("<ee", a, u) for a, u in zip(case["alpha"], case["mu"]))
    return bytes(codes), scales


def main():
    rng = random.Random(20260)
    cases = []
    for spec in CASES:
        case = make_case(rng, *spec)
        codes, scales = encode(case)
        with open(os.path.join(out_dir, case["name"] + ".codes"), "wb") as f:
            f.write(codes)
        with open(os.path.join(out_dir, case["name"] + ".scales"), "wb") as f:
            f.write(scales)
        case["code_bits"] = code_width(case["n_keep"] * 8 // case["m_group"])
        cases.append(case)
    with open(os.path.join(out_dir, "packed_golden.json"), "w") as f:
        json.dump({"generator": "tools/reference/packed_golden.py", "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
