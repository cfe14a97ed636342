"""Minimal safetensors reader/writer built on numpy only.

Supported dtypes: F32, F16, BF16 (bf16 is carried as uint16 bit patterns).

    tensors, meta = load("model.safetensors")          # dict name -> np.ndarray
    save("out.safetensors", tensors, metadata={"format": "pt"})

Arrays returned for BF16 tensors are float32 (exact upcast) unless
``bf16_as_uint16=True`` is passed, in which case the raw uint16 bit patterns
are returned.  To write a tensor as BF16 either pass a uint16 array tagged via
``dtypes={name: "BF16"}`` or pass float32 and ``dtypes={name: "BF16"}``
(rounded to nearest-even).
"""
import json
import struct

import numpy as np

_NP = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16,
       "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def f32_to_bf16_bits(x):
    """Round float32 -> bfloat16 (nearest even) and return uint16 bit patterns."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    b = x.view(np.uint32).astype(np.uint64)
    rounding = ((b >> 16) & 1) + 0x7FFF
    out = ((b + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = 0x7FC0
    return out


def bf16_bits_to_f32(u):
    u = np.ascontiguousarray(u, dtype=np.uint16)
    return (u.astype(np.uint32) << 16).view(np.float32)


def load(path, bf16_as_uint16=False):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _NP:
            raise ValueError("unsupported dtype %s for %s" % (dt, name))
        s, e = info["data_offsets"]
        arr = np.frombuffer(data, dtype=_NP[dt], count=(e - s) // np.dtype(_NP[dt]).itemsize,
                            offset=base + s).reshape(info["shape"]).copy()
        if dt == "BF16" and not bf16_as_uint16:
            arr = bf16_bits_to_f32(arr).reshape(info["shape"])
        out[name] = arr
    return out, meta


def save(path, tensors, metadata=None, dtypes=None):
    """Write ``tensors`` (name -> ndarray).  ``dtypes`` maps name -> 'F32'|'F16'|'BF16'
    (default: derived from the array dtype; uint16 arrays are taken as BF16 bits)."""
    dtypes = dtypes or {}
    header = {}
    if metadata is not None:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    off = 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        dt = dtypes.get(name)
        if dt is None:
            dt = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
                  np.dtype(np.uint16): "BF16", np.dtype(np.int64): "I64",
                  np.dtype(np.int32): "I32", np.dtype(np.uint8): "U8"}[a.dtype]
        if dt == "BF16":
            raw = a if a.dtype == np.uint16 else f32_to_bf16_bits(a)
        else:
            raw = a.astype(_NP[dt])
        buf = np.ascontiguousarray(raw).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(buf)]}
        blobs.append(buf)
        off += len(buf)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)  # align tensor data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
