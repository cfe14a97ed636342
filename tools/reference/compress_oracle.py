"""Independent PyTorch (float64) oracle for GPTQ and SparseGPT N:M on a small synthetic layer.

Writes tests/compress/golden/compress_oracle.json (small; CI needs no Python). Run offline with
    PYENV_VERSION=system python3 tools/reference/compress_oracle.py
The algorithms follow the public GPTQ / SparseGPT code (column loop with lazy block updates, U = upper
Cholesky of the damped inverse Hessian, dead columns zeroed); N is the KEPT count per group of M.
"""
import json
import os

import torch

torch.set_num_threads(2)
torch.manual_seed(0)
ROWS, COLS, TOKENS, BLOCK = 12, 48, 192, 16


def synthetic_layer():
    mix = torch.randn(COLS, COLS, dtype=torch.float64) * 0.3 + torch.eye(COLS, dtype=torch.float64)
    x = torch.randn(TOKENS, COLS, dtype=torch.float64) @ mix
    x[:, 3] *= 12.0  # outlier input features
    x[:, 17] *= 6.0
    x[:, 5] = 0.0    # a dead input column
    w = torch.randn(ROWS, COLS, dtype=torch.float64) * 0.05
    w = w.float().double()  # exactly representable in fp32
    h = 2.0 * x.T @ x / TOKENS
    return w, h


def factor(h, percdamp=0.01):
    h = h.clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    h += percdamp * torch.mean(torch.diag(h)) * torch.eye(h.shape[0], dtype=h.dtype)
    l = torch.linalg.cholesky(h)
    hinv = torch.cholesky_inverse(l)
    return torch.linalg.cholesky(hinv, upper=True), dead


def grid(x, bits, sym):
    maxq = 2 ** bits - 1
    xmin = torch.clamp(x.min(dim=1).values, max=0)
    xmax = torch.clamp(x.max(dim=1).values, min=0)
    if sym:
        xmax = torch.maximum(xmin.abs(), xmax)
        xmin = torch.where(xmin < 0, -xmax, xmin)
    both = (xmin == 0) & (xmax == 0)
    xmin[both], xmax[both] = -1.0, 1.0
    scale = (xmax - xmin) / maxq
    zero = torch.full_like(scale, (maxq + 1) / 2) if sym else torch.round(-xmin / scale)
    return scale, zero, maxq


def quant(col, scale, zero, maxq):
    q = torch.clamp(torch.round(col / scale) + zero, 0, maxq)
    return scale * (q - zero)


def column_loop(w, u, compress_column):
    w = w.clone()
    for s in range(0, COLS, BLOCK):
        e = min(s + BLOCK, COLS)
        w1 = w[:, s:e].clone()
        err = torch.zeros_like(w1)
        for t in range(e - s):
            q = compress_column(s, t, w1)
            d = u[s + t, s + t]
            et = (w1[:, t] - q) / d
            w1[:, t:] -= et.unsqueeze(1) * u[s + t, s + t:e].unsqueeze(0)
            w1[:, t] = q
            err[:, t] = et
        w[:, s:e] = w1
        w[:, e:] -= err @ u[s:e, e:]
    return w


def gptq(w, u, bits, group, sym):
    state = {}
    if group == 0:
        state["g"] = grid(w, bits, sym)

    def col(s, t, w1):
        if group and (s + t) % group == 0:
            state["g"] = grid(w1[:, t:t + group], bits, sym)
        return quant(w1[:, t], *state["g"])

    return column_loop(w, u, col)


def sparsegpt(w, u, n_keep, m):
    state = {}

    def col(s, t, w1):
        if t % m == 0:
            d = torch.diag(u)[s + t:s + t + m]
            score = w1[:, t:t + m] ** 2 / d.unsqueeze(0) ** 2
            order = torch.argsort(-score, dim=1, stable=True)
            keep = torch.zeros_like(score, dtype=torch.bool)
            keep.scatter_(1, order[:, :n_keep], True)
            state["keep"] = keep
        return torch.where(state["keep"][:, t % m], w1[:, t], torch.zeros_like(w1[:, t]))

    return column_loop(w, u, col)


def main():
    w, h = synthetic_layer()
    u, dead = factor(h)
    w0 = w.clone()
    w0[:, dead] = 0.0
    cases = []
    for bits, group, sym in [(2, 0, False), (3, 16, False), (4, 0, True)]:
        cases.append({"method": "gptq", "bits": bits, "group_size": group, "symmetric": sym,
                      "expected": gptq(w0, u, bits, group, sym).flatten().tolist()})
    for n_keep in [4, 6]:
        cases.append({"method": "sparsegpt", "n_keep": n_keep, "m_group": 8,
                      "expected": sparsegpt(w0, u, n_keep, 8).flatten().tolist()})
    out = {"rows": ROWS, "cols": COLS, "block_size": BLOCK, "percdamp": 0.01,
           "weight": w.flatten().tolist(), "hessian": h.flatten().tolist(),
           "u_diag": torch.diag(u).tolist(), "cases": cases}
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "compress", "golden", "compress_oracle.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", os.path.normpath(path), os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
