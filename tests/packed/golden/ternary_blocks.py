#!/usr/bin/env python3
"""Golden TQ1_0 / TQ2_0 blocks for tests/packed/test_ggml_ternary.cpp, computed from the format
description alone (see src/packed/ggml_ternary.h), without the C++ code.

Block: 256 weights t[j] * d with t[j] in {-1, 0, +1}; codes c[j] = t[j] + 1.
TQ2_0 (66 bytes): byte k = 32 h + m holds c[128 h + 32 n + m] in bits 2n..2n+1, then d (fp16, LE).
TQ1_0 (54 bytes): 48 + 4 trit bytes, then d. A trit byte holding codes c_0..c_4 (c_0 most significant)
is ceil(256 q / 243) with q = sum c_n 3^(4-n); qs[m] (m < 32) holds weights m + 32 n, qs[32 + m]
(m < 16) weights 160 + m + 16 n, qh[j] (j < 4) weights 240 + j + 4 n for n < 4 and a 0 as fifth trit.

Usage: ternary_blocks.py > ternary_blocks.json
"""
import json
import struct


def trits():
    # A fixed pseudo-random pattern (31-bit linear congruential generator).
    x, out = 20261201, []
    for _ in range(256):
        x = (x * 1103515245 + 12345) % 2**31
        out.append((x >> 16) % 3 - 1)
    return out


def fp16_bytes(value):
    return struct.pack("<e", value)


def tq2_0(t, d):
    out = bytearray(64)
    for k in range(64):
        h, m = divmod(k, 32)
        for n in range(4):
            out[k] |= (t[128 * h + 32 * n + m] + 1) << (2 * n)
    return bytes(out) + fp16_bytes(d)


def trit_byte(codes):
    q = 0
    for c in codes:
        q = q * 3 + c
    return -(-256 * q // 243)  # ceiling division


def tq1_0(t, d):
    c = [x + 1 for x in t]
    qs = [trit_byte([c[m + 32 * n] for n in range(5)]) for m in range(32)]
    qs += [trit_byte([c[160 + m + 16 * n] for n in range(5)]) for m in range(16)]
    qh = [trit_byte([c[240 + j + 4 * n] for n in range(4)] + [0]) for j in range(4)]
    return bytes(qs + qh) + fp16_bytes(d)


def main():
    t, d = trits(), 0.75
    print(json.dumps({"d": d, "trits": t, "tq1_0": tq1_0(t, d).hex(), "tq2_0": tq2_0(t, d).hex()}))


if __name__ == "__main__":
    main()
