#!/usr/bin/python3
"""Report of scripts/peers/bench_side_by_side: reads its raw folder, writes JSON and markdown tables.

    side_by_side_report.py RAW_DIR --blocks LO,HI --types T,... --threads 1,2 --json OUT.json --markdown DOC.md

Every figure is the median over rounds, with the spread (min-max) beside it. Speed ratio = their time / our
time (above 1: ours is faster). Per-block time = (t(HI blocks) - t(LO blocks)) / (HI - LO) of one pass
(prefill: the 512-token prompt; decode: one token). GB/s = weight bytes read per second (one pass reads each
weight once) against bench_stream's best read bandwidth at the same thread count.
When DOC.md holds the side-by-side markers, only the text between them is replaced; otherwise the tables
are written as the whole file.
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

BEGIN, END = "<!-- side-by-side:begin -->", "<!-- side-by-side:end -->"
# bytes per weight of llama.cpp's types (ggml block layouts)
BYTES_PER_WEIGHT = {"f32": 4.0, "q4_0": 18 / 32, "iq1_s": 50 / 256, "tq1_0": 54 / 256, "tq2_0": 66 / 256}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def median_spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(stat, digits=2, scale=1.0):
    if not stat:
        return "–"
    m, lo, hi = stat["median"] * scale, stat["min"] * scale, stat["max"] * scale
    if stat["n"] == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


def rounds_of(raw, pattern):
    """{round: path} for files named like pattern with {r} for the round."""
    out = {}
    regex = re.compile(re.escape(pattern).replace(r"\{r\}", r"(\d+)") + "$")
    for path in glob.glob(os.path.join(raw, "*")):
        m = regex.search(os.path.basename(path))
        if m:
            out[int(m.group(1))] = path
    return out


def stream(raw):
    """{threads: {kernel: [best GB/s per round]}}."""
    out = {}
    for path in rounds_of(raw, "stream-r{r}.json").values():
        for row in json.load(open(path))["results"]:
            out.setdefault(row["threads"], {}).setdefault(row["kernel"], []).append(row["best_gbs"])
    return out


def theirs_kernels(raw):
    """{(op, 'RxC', type): [ms per matrix per round]} from test-backend-ops' console output."""
    out = {}
    gemv = re.compile(r"MUL_MAT\(type=f32,ne=\[(\d+),1,(\d+),1\],op_params=\[\],sources=(\w+)\[(\d+),(\d+),(\d+),1\]"
                      r".*?:\s+(\d+) runs -\s+([0-9.]+) us/run")
    gemm = re.compile(r"MUL_MAT\(type_a=(\w+),type_b=f32,m=(\d+),n=(\d+),k=(\d+),.*?\):\s+(\d+) runs -\s+([0-9.]+) us/run")
    for pattern in ("kernels-theirs-gemv-r{r}.txt", "kernels-theirs-gemm-r{r}.txt"):
        for path in rounds_of(raw, pattern).values():
            seen = set()
            for line in open(path, errors="replace"):
                line = ANSI.sub("", line)
                m = gemv.search(line)
                if m:
                    rows, batch, type_, cols = int(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4))
                    key = ("gemv", f"{rows}x{cols}", type_)
                    ms = float(m.group(8)) / 1e3 / batch
                    extra = {"batch": batch}
                else:
                    m = gemm.search(line)
                    if not m:
                        continue
                    type_, rows, tokens, cols = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
                    key = (f"gemm{tokens}", f"{rows}x{cols}", type_)
                    ms = float(m.group(6)) / 1e3
                    extra = {"batch": 1}
                if key in seen:  # the perf list can hold a case twice
                    continue
                seen.add(key)
                out.setdefault(key, {"ms": [], **extra})["ms"].append(ms)
    return out


def ours_kernels(raw):
    """{(threads, op, 'RxC', kernel name): {'ms': [...], 'bytes': B, 'copies': C}}."""
    out = {}
    for threads in sorted({int(m.group(1)) for p in glob.glob(os.path.join(raw, "kernels-ours-t*-r*.json"))
                           for m in [re.search(r"-t(\d+)-r", p)] if m}):
        for path in rounds_of(raw, f"kernels-ours-t{threads}-r{{r}}.json").values():
            for b in json.load(open(path))["benchmarks"]:
                if b.get("run_type", "iteration") != "iteration":
                    continue
                parts = b["name"].replace("/real_time", "").split("/")
                op = "gemv" if parts[1] == "gemv" else "gemm512"
                kernel = "fp32 (OpenBLAS)" if parts[0] == "fp32" else "/".join(parts[3:])
                scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b.get("time_unit", "ms")]
                entry = out.setdefault((threads, op, parts[2], kernel),
                                       {"ms": [], "bytes": b["MB_weights"] * 1e6, "copies": int(b.get("copies", 1))})
                entry["ms"].append(b["real_time"] * scale)
    return out


def block_round_files(raw, blocks, pattern):
    """(blocks, round, path) of the files named like pattern ({b}: block count, {{r}}: round)."""
    for b in blocks:
        for r, path in rounds_of(raw, pattern.format(b=b)).items():
            yield b, r, path


def theirs_e2e(raw, types, blocks):
    """{(type, threads): {'prefill': stat, 'decode': stat, 'block_bytes': B}} per-block from llama-bench."""
    lo, hi = blocks
    out = {}
    for type_ in types:
        per_round = {}
        for b, r, path in block_round_files(raw, blocks, f"e2e-theirs-{type_}-b{{b}}-r{{{{r}}}}.json"):
            for row in json.load(open(path)):
                test = "prefill" if row["n_prompt"] > 0 else "decode"
                seconds = row["avg_ns"] / 1e9 / (1 if test == "prefill" else row["n_gen"])
                per_round.setdefault((row["n_threads"], test, r), {})[b] = seconds
        info = {b: json.load(open(os.path.join(raw, f"info-{type_}-b{b}.json"))) for b in blocks}
        block_bytes = (info[hi]["tensor_bytes"] - info[lo]["tensor_bytes"]) / (hi - lo)
        for (threads, test, r), t in per_round.items():
            if lo in t and hi in t:
                e = out.setdefault((type_, threads), {"prefill": [], "decode": [], "block_bytes": block_bytes,
                                                     "linear_types": info[hi]["linear_weights_by_type"]})
                e[test].append((t[hi] - t[lo]) / (hi - lo))
    return out


def ours_e2e(raw, blocks, threads_list):
    """{(form, threads): {'prefill': [...], 'decode': [...], 'block_bytes': B}}."""
    lo, hi = blocks
    out = {}
    for threads in threads_list:
        per_round = {}
        for b, r, path in block_round_files(raw, blocks, f"e2e-ours-b{{b}}-t{threads}-r{{{{r}}}}.json"):
            for row in json.load(open(path))["results"]:
                if row["weights"] == "head only":
                    continue
                pass_s = {"prefill": row["prefill"]["tokens"] / row["prefill"]["tokens_per_s"],
                          "decode": 1.0 / row["decode"]["tokens_per_s"]}
                per_round.setdefault((row["weights"], r), {})[b] = (pass_s, row["weight_bytes"])
        for (form, r), t in per_round.items():
            if lo in t and hi in t:
                e = out.setdefault((form, threads), {"prefill": [], "decode": [],
                                                     "block_bytes": (t[hi][1] - t[lo][1]) / (hi - lo)})
                for test in ("prefill", "decode"):
                    e[test].append((t[hi][0][test] - t[lo][0][test]) / (hi - lo))
    return out


def ratio_lists(ours, theirs):
    """Per-round speed ratios theirs/ours (rounds paired by index)."""
    return [t / o for o, t in zip(ours, theirs) if o > 0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("--blocks", required=True)
    ap.add_argument("--types", required=True)
    ap.add_argument("--threads", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown", required=True)
    a = ap.parse_args()
    blocks = tuple(int(x) for x in a.blocks.split(","))
    types = a.types.split(",")
    threads_list = [int(x) for x in a.threads.split(",")]
    machine = dict(line.split(": ", 1) for line in open(os.path.join(a.raw, "machine.txt")).read().splitlines()
                   if ": " in line)

    bw = stream(a.raw)
    bandwidth = {t: {k: median_spread(v) for k, v in ks.items()} for t, ks in bw.items()}
    best_read = {t: max(v) for t, ks in bw.items() for k, v in ks.items() if k == "read"}

    def fraction(gbs, threads):
        return gbs / best_read[threads] if threads in best_read and gbs else None

    tk, ok = theirs_kernels(a.raw), ours_kernels(a.raw)
    their_threads = int(machine.get("cores", "2"))
    kernel_rows = []
    for (threads, op, shape, kernel), e in sorted(ok.items()):
        rows, cols = (int(x) for x in shape.split("x"))
        ours_ms = median_spread(e["ms"])
        row = {"op": op, "shape": shape, "threads": threads, "kernel": kernel, "ms": ours_ms,
               "weight_bytes": e["bytes"], "copies": e["copies"],
               "gbs": median_spread([e["bytes"] / (ms / 1e3) / 1e9 for ms in e["ms"]]),
               "vs": {}}
        if op != "gemv":  # compute-bound: a bandwidth figure says nothing
            row["gbs"] = None
        row["bandwidth_fraction"] = fraction(row["gbs"]["median"], threads) if row["gbs"] else None
        if threads == their_threads:
            for type_ in ["f32"] + [t.lower() for t in types]:
                te = tk.get((op, shape, type_))
                if te:
                    row["vs"][type_] = median_spread(ratio_lists(e["ms"], te["ms"]))
        kernel_rows.append(row)
    their_kernel_rows = []
    for (op, shape, type_), e in sorted(tk.items()):
        rows, cols = (int(x) for x in shape.split("x"))
        nbytes = rows * cols * BYTES_PER_WEIGHT[type_]
        gbs = median_spread([nbytes / (ms / 1e3) / 1e9 for ms in e["ms"]]) if op == "gemv" else None
        their_kernel_rows.append({"op": op, "shape": shape, "type": type_, "threads": their_threads,
                                  "ms": median_spread(e["ms"]), "weight_bytes": nbytes, "batch": e["batch"],
                                  "gbs": gbs, "bandwidth_fraction": fraction(gbs["median"], their_threads)
                                  if gbs else None})

    te, oe = theirs_e2e(a.raw, types, blocks), ours_e2e(a.raw, blocks, threads_list)
    e2e_rows = []
    for (name, threads), e in sorted(list(oe.items()) + [((f"llama.cpp {k[0]}", k[1]), v) for k, v in te.items()]):
        row = {"weights": name, "threads": threads, "block_bytes": e["block_bytes"],
               "prefill_ms": median_spread([1e3 * s for s in e["prefill"]]),
               "decode_ms": median_spread([1e3 * s for s in e["decode"]])}
        row["decode_gbs"] = median_spread([e["block_bytes"] / s / 1e9 for s in e["decode"] if s > 0])
        row["decode_bandwidth_fraction"] = fraction(row["decode_gbs"]["median"] if row["decode_gbs"] else None,
                                                    threads)
        if "linear_types" in e:
            row["linear_weights_by_type"] = e["linear_types"]
        if not name.startswith("llama.cpp"):
            row["vs"] = {}
            for type_ in types:
                t = te.get((type_, threads))
                if t:
                    row["vs"][type_] = {test: median_spread(ratio_lists(e[test], t[test]))
                                        for test in ("prefill", "decode")}
        e2e_rows.append(row)

    result = {"machine": machine, "blocks": list(blocks), "types": types, "threads": threads_list,
              "bandwidth_gbs": {str(t): v for t, v in bandwidth.items()},
              "kernels_ours": kernel_rows, "kernels_theirs": their_kernel_rows, "end_to_end": e2e_rows}
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=1)

    md = [BEGIN, "",
          f"Generated by `{machine.get('command', 'scripts/peers/bench_side_by_side')}` on {machine.get('date', '?')}"
          f" (pbs2p {machine.get('pbs2p', '?')}, llama.cpp {machine.get('llama_cpp', '?')}); {machine.get('cpu', '?')},"
          f" {machine.get('cores', '?')} cores, L3 {machine.get('l3', '?')}, load average before / after"
          f" {machine.get('load_before', '?')} / {machine.get('load_after', '?')}; free disk"
          f" {machine.get('disk_free_before', '?')} before, {machine.get('disk_free_after_models', '?')} with the models."
          f" Our forms: {machine.get('forms', '?')}. Median over rounds (min–max).",
          "", "Memory bandwidth (bench_stream, arrays of 256 MiB, best of 7 per round):", "",
          "| threads | read GB/s | copy GB/s |", "|---:|---:|---:|"]
    for t in sorted(bandwidth):
        md.append(f"| {t} | {fmt(bandwidth[t].get('read'))} | {fmt(bandwidth[t].get('copy'))} |")
    ws = machine.get("working_set_mib", "?")
    md += ["", f"Kernels, llama.cpp (test-backend-ops perf, {their_threads} threads; GEMV weights batched "
           f"to at least {ws} MiB, GEMM one matrix):", "",
           "| op | shape (out x in) | type | matrices | ms per matrix | weight GB/s | of read bandwidth |",
           "|---|---|---|---:|---:|---:|---:|"]
    for r in their_kernel_rows:
        frac = f"{r['bandwidth_fraction'] * 100:.0f} %" if r["bandwidth_fraction"] else "–"
        md.append(f"| {r['op']} | {r['shape']} | {r['type']} | {r['batch']} | {fmt(r['ms'], 3)} | {fmt(r['gbs'])} | "
                  f"{frac} |")
    vs_types = ["f32"] + [t.lower() for t in types]
    md += ["", f"Kernels, pbs2p (bench_packed_matmul, N:8 with N = 4, weights rotated over at least {ws} MiB); "
           f"speed ratio = llama.cpp's time / ours at {their_threads} threads (above 1: ours faster):", "",
           "| op | shape | threads | kernel | copies | ms | weight GB/s | of read bandwidth | "
           + " | ".join(f"vs {t}" for t in vs_types) + " |",
           "|---|---|---:|---|---:|---:|---:|---:|" + "---:|" * len(vs_types)]
    for r in kernel_rows:
        frac = f"{r['bandwidth_fraction'] * 100:.0f} %" if r["bandwidth_fraction"] else "–"
        md.append(f"| {r['op']} | {r['shape']} | {r['threads']} | {r['kernel']} | {r['copies']} | {fmt(r['ms'], 3)} | "
                  f"{fmt(r['gbs'])} | {frac} | " + " | ".join(fmt(r["vs"].get(t)) for t in vs_types) + " |")
    md += ["", f"End to end, per block (slope between {blocks[0]} and {blocks[1]} blocks of a 7B-shaped model; "
           "prefill = 512-token prompt, decode = one token; GB/s = weight bytes of a block / decode time):", "",
           "| weights | threads | MiB per block | prefill ms/block | decode ms/block | decode GB/s | of read bandwidth |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for r in e2e_rows:
        frac = f"{r['decode_bandwidth_fraction'] * 100:.0f} %" if r["decode_bandwidth_fraction"] else "–"
        md.append(f"| {r['weights']} | {r['threads']} | {r['block_bytes'] / 2**20:.1f} | {fmt(r['prefill_ms'], 1)} | "
                  f"{fmt(r['decode_ms'], 2)} | {fmt(r['decode_gbs'])} | {frac} |")
    md += ["", "Speed ratios per block, ours / llama.cpp (their time / our time; above 1: ours faster):", "",
           "| ours | threads | " + " | ".join(f"prefill vs {t} | decode vs {t}" for t in types) + " |",
           "|---|---:|" + "---:|---:|" * len(types)]
    for r in e2e_rows:
        if "vs" not in r:
            continue
        cells = []
        for t in types:
            v = r["vs"].get(t, {})
            cells += [fmt(v.get("prefill")), fmt(v.get("decode"))]
        md.append(f"| {r['weights']} | {r['threads']} | " + " | ".join(cells) + " |")
    md += ["", END]
    block = "\n".join(md) + "\n"
    text = open(a.markdown).read() if os.path.exists(a.markdown) else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block.rstrip("\n") + text[text.index(END) + len(END):]
    else:
        text = block
    with open(a.markdown, "w") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())
