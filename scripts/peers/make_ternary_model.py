#!/usr/bin/env python3
"""Rounds a model's decoder linear layers to ternary blocks, for the TQ1_0 / TQ2_0 export checks.

Every row of every q/k/v/o/gate/up/down weight is cut into blocks of 256 columns; a block becomes t * d with
d = mean |x| rounded to fp16 and t = clip(round(x / d), -1, 1), i.e. exactly what llama.cpp's TQ1_0 and TQ2_0
store. All other tensors are kept. The result is a model directory like `pbs2p compress` writes
(model.safetensors in f32, config.json and the tokenizer files copied). Needs numpy only.

Usage: make_ternary_model.py MODEL_DIR OUT_DIR
"""
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BLOCK = 256


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        chunk = np.frombuffer(data[begin:end], dtype=np.uint8)
        dtype = info["dtype"]
        if dtype == "BF16":
            values = (chunk.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype == "F16":
            values = chunk.view(np.float16).astype(np.float32)
        elif dtype == "F32":
            values = chunk.view(np.float32)
        else:
            sys.exit(f"{path}: tensor {name} has unsupported dtype {dtype}")
        tensors[name] = values.reshape(info["shape"])
    return tensors


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        blob = np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for blob in blobs:
            f.write(blob)
    tmp.rename(path)


def ternarize(w):
    rows, cols = w.shape
    if cols % BLOCK:
        sys.exit(f"{cols} columns are not a multiple of {BLOCK}")
    blocks = w.reshape(rows, cols // BLOCK, BLOCK).astype(np.float32)
    d = np.abs(blocks).mean(axis=2, keepdims=True).astype(np.float16).astype(np.float32)
    safe = np.where(d > 0, d, 1.0)
    t = np.clip(np.rint(blocks / safe), -1, 1)
    return (t * d).reshape(rows, cols)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    tensors = read_safetensors(src / "model.safetensors")
    count = 0
    for name in tensors:
        if name.endswith(".weight") and name.split(".")[-2] in LINEARS:
            tensors[name] = ternarize(tensors[name])
            count += 1
    write_safetensors(out / "model.safetensors", tensors)
    for f in src.iterdir():
        if f.is_file() and f.suffix != ".safetensors" and (f.name.startswith("tokenizer") or f.name.endswith("config.json")
                                                            or f.name == "special_tokens_map.json"):
            shutil.copy(f, out / f.name)
    print(f"{out}: {count} linear layers rounded to ternary blocks of {BLOCK}")


if __name__ == "__main__":
    main()
