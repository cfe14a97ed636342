#!/usr/bin/python3
"""Summary of a scripts/bench_7b run: OUT/summary.json and a table on stdout.

Per block and phase, the seconds of report.json's block_seconds beside the phase's FLOP bound at the
sgemm rate measured in the same run (the lower of the before and after rates):
  forward, forward_compressed: 2 T (4 H^2 + 3 H I) in the linear layers + 2 T S H in causal attention
  hessian: T (3 H^2 + I^2), the upper triangles of X^T X for the four distinct inputs
(T calibration tokens, S tokens per window). The solve phase (fp64 Hessian factorizations and the code
search) has no sgemm bound and is reported as measured.
"""
import argparse
import json
import os
import statistics
import sys


def file_bytes(root):
    """Bytes of every output file (the checkpoint, staging folders and lock aside), by name."""
    sizes = {}
    for d, subdirs, files in os.walk(root):
        subdirs[:] = [s for s in subdirs if not s.startswith(".")]
        for f in files:
            if f.startswith("."):
                continue
            path = os.path.join(d, f)
            sizes[os.path.relpath(path, root)] = os.path.getsize(path)
    return sizes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--full", required=True)
    ap.add_argument("--resumed", required=True)
    ap.add_argument("--identical", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, required=True)
    a = ap.parse_args()

    config = json.load(open(os.path.join(a.model, "config.json")))
    h, i = config["hidden_size"], config["intermediate_size"]
    full = json.load(open(os.path.join(a.full, "report.json")))
    resumed = json.load(open(os.path.join(a.resumed, "report.json")))
    tokens = full["calibration_tokens"]
    seq = full["calibration"]["seq"]
    rates = [float(open(os.path.join(a.out, f)).read()) for f in ("sgemm_before", "sgemm_after")]
    rate = min(rates) * 1e9

    linear = 2.0 * tokens * (4 * h * h + 3 * h * i)
    attention = 2.0 * tokens * seq * h
    flops = {"forward": linear + attention, "forward_compressed": linear + attention,
             "hessian": float(tokens) * (3 * h * h + i * i)}
    blocks = full["block_seconds"]
    phases = [p for p in blocks[0] if p not in ("block", "total")]
    bound_ratio = {p: [b[p] / (flops[p] / rate) for b in blocks] for p in flops if p in blocks[0]}

    sizes = file_bytes(a.full)
    bench = json.load(open(os.path.join(a.out, "bench.json")))["results"][0]
    ev = json.load(open(os.path.join(a.out, "eval.json")))["perplexity"]
    mem = full.get("block_memory", [])
    summary = {
        "model": a.model, "blocks": len(blocks), "threads": a.threads,
        "calibration_tokens": tokens, "calibration_seq": seq,
        "sgemm_gflops": {"before": rates[0], "after": rates[1]},
        "wall_seconds": full["wall_seconds"], "compress_seconds": full["compress_seconds"],
        "block_total_seconds": {"median": statistics.median(b["total"] for b in blocks),
                                "min": min(b["total"] for b in blocks), "max": max(b["total"] for b in blocks)},
        "phase_seconds_median": {p: statistics.median(b[p] for b in blocks) for p in phases},
        "phase_over_flop_bound_median": {p: statistics.median(v) for p, v in bound_ratio.items()},
        "phase_over_flop_bound_max": {p: max(v) for p, v in bound_ratio.items()},
        "peak_rss_bytes": full["peak_rss_bytes"],
        "rss_after_blocks_bytes": [m["rss_bytes"] for m in mem],
        "peak_rss_by_block_bytes": [m["peak_rss_bytes"] for m in mem],
        "bytes_written": sum(sizes.values()), "files": sizes,
        "packed_file_bytes": full.get("packed_file_bytes"),
        "packed_bits_per_weight": full.get("packed_bits_per_weight"),
        "resumed_blocks": resumed.get("resumed_blocks"),
        "resumed_wall_seconds": resumed["wall_seconds"],
        "resumed_identical": a.identical == "true",
        "bench": {k: bench[k] for k in ("weights", "blocks", "threads", "weight_bytes", "rss_bytes") if k in bench},
        "prefill_tokens_per_s": bench.get("prefill", {}).get("tokens_per_s"),
        "decode_tokens_per_s": bench.get("decode", {}).get("tokens_per_s"),
        "eval": ev,
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")

    gib = 2.0**30
    print(f"\n{a.model}: {len(blocks)} blocks, {tokens} calibration tokens ({seq} per window), {a.threads} threads")
    print(f"sgemm {rates[0]:.1f} GFLOP/s before, {rates[1]:.1f} after; wall {full['wall_seconds']:.0f} s, "
          f"per block {summary['block_total_seconds']['median']:.1f} s median "
          f"({summary['block_total_seconds']['min']:.1f}..{summary['block_total_seconds']['max']:.1f})")
    print("phase              median s   x FLOP bound (median, max)")
    for p in phases:
        r = bound_ratio.get(p)
        extra = f"   {statistics.median(r):.2f}, {max(r):.2f}" if r else ""
        print(f"{p:18} {summary['phase_seconds_median'][p]:8.1f}{extra}")
    print(f"peak RSS {full['peak_rss_bytes'] / gib:.2f} GiB; written {summary['bytes_written'] / 1e9:.2f} GB "
          f"(packed {full.get('packed_file_bytes', 0) / 1e9:.3f} GB, "
          f"{full.get('packed_bits_per_weight', 0):.4f} bits per weight)")
    print(f"resume after a kill -9: {resumed.get('resumed_blocks')} blocks restored, outputs identical: {a.identical}")
    print(f"packed model: prefill {summary['prefill_tokens_per_s']} t/s, decode {summary['decode_tokens_per_s']} t/s; "
          f"ppl {ev['ppl']:.2f} ({ev['protocol']}, ctx {ev['ctx']}, {ev['windows']} windows)")
    print(f"wrote {os.path.join(a.out, 'summary.json')}")


if __name__ == "__main__":
    sys.exit(main())
