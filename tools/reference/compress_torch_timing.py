"""Times plain PyTorch versions of the per-layer algorithms (2 threads, float32 like the reference code)
on the same LLaMA-7B shapes and synthetic Hessian as bench/bench_compress_layer.cpp, so the C++/PyTorch
ratio can be stated. Offline only:
    PYENV_VERSION=system python3 tools/reference/compress_torch_timing.py [--shapes 4096x4096,...] [--methods gptq,sparsegpt,pbs2p]
"""
import argparse
import time

import torch

torch.set_num_threads(2)


def synthetic(rows, cols):
    g = torch.Generator().manual_seed(1)
    tokens = cols + 512
    j = torch.arange(cols, dtype=torch.float32)
    scale = 1.0 / torch.sqrt(1.0 + j / 32.0) * torch.where(j % 97 == 0, 6.0, 1.0)
    x = torch.randn(tokens, cols, generator=g) * scale
    x[:, 1:] += 0.5 * x[:, :-1].clone()
    h = 2.0 * x.T @ x / tokens
    w = torch.randn(rows, cols, generator=g) * 0.02
    return w, h


def factor(h, percdamp=0.01):
    h = h.double().clone()
    h += percdamp * torch.mean(torch.diag(h)) * torch.eye(h.shape[0], dtype=h.dtype)
    l = torch.linalg.cholesky(h)
    return torch.linalg.cholesky(torch.cholesky_inverse(l), upper=True).float()


def column_loop(w, u, compress_column, block=128):
    w = w.clone()
    cols = w.shape[1]
    for s in range(0, cols, block):
        e = min(s + block, cols)
        w1 = w[:, s:e].clone()
        err = torch.zeros_like(w1)
        for t in range(e - s):
            q = compress_column(s, t, w1)
            et = (w1[:, t] - q) / u[s + t, s + t]
            w1[:, t:] -= et.unsqueeze(1) * u[s + t, s + t:e].unsqueeze(0)
            w1[:, t] = q
            err[:, t] = et
        w[:, s:e] = w1
        w[:, e:] -= err @ u[s:e, e:]
    return w


def gptq(w, u, bits=2):
    maxq = 2 ** bits - 1
    xmin = torch.clamp(w.min(1).values, max=0)
    xmax = torch.clamp(w.max(1).values, min=0)
    scale = (xmax - xmin) / maxq
    zero = torch.round(-xmin / scale)
    return column_loop(w, u, lambda s, t, w1: scale * (torch.clamp(torch.round(w1[:, t] / scale) + zero, 0, maxq) - zero))


def sparsegpt(w, u, n_keep=4, m=8):
    state = {}

    def col(s, t, w1):
        if t % m == 0:
            d = torch.diag(u)[s + t:s + t + m]
            score = w1[:, t:t + m] ** 2 / d ** 2
            state["prune"] = torch.zeros_like(score, dtype=torch.bool).scatter_(1, torch.topk(score, m - n_keep, dim=1, largest=False)[1], True)
        return torch.where(state["prune"][:, t % m], torch.zeros_like(w1[:, t]), w1[:, t])

    return column_loop(w, u, col)


def arb_init(w, mask):
    cnt = mask.sum(1).clamp(min=1)
    mu = (w * mask).sum(1) / cnt
    alpha = ((w - mu[:, None]).abs() * mask).sum(1) / cnt
    return alpha, mu, torch.sign(w - mu[:, None]) * mask


def arb_refine(w, mask, alpha, mu, b, iters):
    cnt = mask.sum(1).clamp(min=1)
    b = b * mask
    for _ in range(iters):
        mu = ((w - alpha[:, None] * b) * mask).sum(1) / cnt
        alpha = (b * (w - mu[:, None]) * mask).sum(1) / ((b * b * mask).sum(1) + 1e-8)
        b = torch.sign(w - mu[:, None]) * mask
    return alpha, mu, b


def pbs2p(w, u, n_keep=4, m=8, block=128, iters=15):
    """The C++ default: OBS score, N:M keep mask, SPBO (dense fit, then M-N steps introducing the pruned
    entries lowest score first, ARB re-fit after each), keep the one-shot fit where its masked error is
    lower, fp16 alpha/mu, exact block error E U_BB = dW, lazy update of the later columns."""
    w = w.clone()
    rows, cols = w.shape
    for s in range(0, cols, block):
        e = min(s + block, cols)
        wb = w[:, s:e]
        d = torch.diag(u)[s:e]
        score = wb ** 2 / d ** 2
        g = score.reshape(rows, -1, m)
        order = torch.argsort(g, dim=2)  # ascending
        rank = torch.argsort(order, dim=2)  # rank of each entry, 0 = lowest
        step = torch.where(rank < m - n_keep, rank + 1, torch.zeros_like(rank)).reshape(rows, -1)
        keep = (step == 0).float()
        # one-shot fit on the final mask
        a1, m1, b1 = arb_init(wb, keep)
        a1, m1, b1 = arb_refine(wb, keep, a1, m1, b1, iters)
        # stepwise fit
        ones = torch.ones_like(wb)
        alpha, mu, b = arb_init(wb, ones)
        alpha, mu, b = arb_refine(wb, ones, alpha, mu, b, iters)
        mask = ones.clone()
        for k in range(1, m - n_keep + 1):
            mask = mask * (step != k)
            alpha, mu, b = arb_refine(wb, mask, alpha, mu, b, iters)
        err_step = (((alpha[:, None] * b + mu[:, None]) - wb) ** 2 * keep).sum(1)
        err_one = (((a1[:, None] * b1 + m1[:, None]) - wb) ** 2 * keep).sum(1)
        use_one = (err_one < err_step)[:, None]
        alpha = torch.where(use_one[:, 0], a1, alpha).half().float()
        mu = torch.where(use_one[:, 0], m1, mu).half().float()
        b = torch.where(use_one, b1, b)
        b = torch.where(b == 0, torch.ones_like(b), b)
        q = (alpha[:, None] * b + mu[:, None]) * keep
        err = torch.linalg.solve_triangular(u[s:e, s:e], wb - q, upper=True, left=False)
        w[:, s:e] = q
        w[:, e:] -= err @ u[s:e, e:]
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="4096x4096")
    ap.add_argument("--methods", default="gptq,sparsegpt,pbs2p")
    ap.add_argument("--max-rows", type=int, default=0,
                    help="time at most this many rows and scale the time linearly to the full row count")
    args = ap.parse_args()
    methods = {"gptq": gptq, "sparsegpt": sparsegpt, "pbs2p": pbs2p}
    # Warm-up (first calls load the LAPACK back end and the thread pool).
    w0, h0 = synthetic(64, 256)
    u0 = factor(h0)
    for name in args.methods.split(","):
        methods[name](w0, u0)
    # Wall seconds, then process CPU seconds (all threads) in brackets: the CPU time is the work done and
    # stays comparable on a loaded machine.
    print("| shape | factor s | " + " | ".join(f"{m} s" for m in args.methods.split(",")) + " |")
    for shape in args.shapes.split(","):
        rows, cols = map(int, shape.split("x"))
        w, h = synthetic(rows, cols)
        t0, c0 = time.perf_counter(), time.process_time()
        u = factor(h)
        times = [(time.perf_counter() - t0, time.process_time() - c0)]
        timed_rows = rows if args.max_rows <= 0 else min(rows, args.max_rows)
        for name in args.methods.split(","):
            t0, c0 = time.perf_counter(), time.process_time()
            methods[name](w[:timed_rows].contiguous(), u)
            scale = rows / timed_rows
            times.append(((time.perf_counter() - t0) * scale, (time.process_time() - c0) * scale))
        note = "" if timed_rows == rows else f" (timed on {timed_rows} rows, scaled x{rows / timed_rows:.3g})"
        print(f"| {shape} | " + " | ".join(f"{t:.2f} [{c:.2f}]" for t, c in times) + " |" + note, flush=True)


if __name__ == "__main__":
    main()
