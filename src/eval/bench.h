// Model-level speed, measured like llama-bench: prefill (pp: a prompt of P synthetic tokens from an empty
// cache) and decode (tg: N tokens one at a time from an empty cache), each repeated R times after a warm-up,
// reported as tokens/s mean and standard deviation over the repetitions. Logits are computed for the last
// position only, as during generation.
//
// Decoding runs through DecodeSession (buffers allocated once). With `profile`, one more decode run is
// recorded by stage (core/stage_profile.h) after the timed ones, so the timing runs carry no clock reads.
//
// Synthetic models: LLaMA-shaped models with random weights built in memory, in fp32, bf16 or packed N:8
// form, so that formats can be compared at a real model's shape without a checkpoint. Models with fewer
// blocks than the real one are extrapolated from a per-block time (see extrapolate_blocks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/stage_profile.h"
#include "model/model.h"
#include "packed/weight_table.h"

namespace pbs2p {

struct BenchOptions {
    int64_t prompt_tokens = 512;  // pp; 0 = skip
    int64_t gen_tokens = 128;     // tg; 0 = skip
    int repetitions = 5;
    int warmup = 1;
    uint64_t seed = 1;  // synthetic token ids
    bool profile = false;  // one more decode run, timed by stage
};

// Tokens/s of each repetition (wall clock) and their mean and sample standard deviation; seconds = mean
// wall time of a run. cpu_seconds = mean process CPU time of a run (all threads): on a machine shared with
// other jobs, tokens per CPU-second of a single-thread run is steadier than wall-clock speed.
struct BenchStat {
    std::vector<double> tokens_per_s;
    double mean = 0.0, stddev = 0.0, seconds = 0.0, cpu_seconds = 0.0;
    bool measured() const { return !tokens_per_s.empty(); }
    double cpu_tokens_per_s(int64_t tokens) const { return cpu_seconds > 0 ? tokens / cpu_seconds : 0.0; }
};
BenchStat make_stat(const std::vector<double>& seconds, int64_t tokens,
                    const std::vector<double>& cpu_seconds = {});

struct BenchResult {
    std::string model;    // path or synthetic shape
    std::string weights;  // "fp32", "bf16", "packed 4:8 (avx2_q8)", ...
    int64_t blocks = 0;   // blocks in the measured model
    int threads = 0;
    int64_t weight_bytes = 0;  // Model::weight_bytes()
    int64_t rss_bytes = 0;     // resident set size of the process with this model loaded
    int64_t prompt_tokens = 0, gen_tokens = 0;
    BenchStat prefill, decode;
    // Profiled decode run (BenchOptions::profile): seconds per stage over profile_tokens tokens, and the
    // run's wall time measured around it (the stages sum to it up to the clock reads; "other" is the
    // time outside every named stage).
    StageProfile profile;
    int64_t profile_tokens = 0;
    double profile_wall_seconds = 0.0, profile_cpu_seconds = 0.0;  // cpu: process CPU time of the run
};

BenchResult bench_model(const Model& model, const BenchOptions& options);

// ---- synthetic models --------------------------------------------------------------------------------

// "7b": LLaMA-7B (hidden 4096, 32 heads, FFN 11008, vocab 32000, 32 blocks); "tiny": a small LLaMA-shaped
// model for tests. Throws for other names.
ModelConfig synthetic_config(const std::string& shape);

enum class SyntheticWeights { fp32, bf16, packed };

struct SyntheticModelSpec {
    std::string shape = "7b";
    int64_t blocks = -1;  // -1 = the shape's own block count
    SyntheticWeights weights = SyntheticWeights::fp32;
    int n_keep = 4;      // packed: N of N:8, one (alpha, mu) pair per row
    std::string kernel;  // packed kernel name, "" = fastest
    uint64_t seed = 1;
    TableType embedding_type = TableType::f32;  // token embedding and LM head, in every form
    TableType head_type = TableType::f32;
};

// Random weights (uniform, scaled by 1/sqrt(fan-in)); norms are 1. Embedding and LM head are held in
// embedding_type / head_type in every form (f32 by default). Packed layers are random valid codes.
Model make_synthetic_model(const SyntheticModelSpec& spec);
std::string synthetic_weights_name(const SyntheticModelSpec& spec);

// Per-run time split into a part outside the blocks (embedding, final norm, LM head: measured on a model with
// 0 blocks) and a per-block part; tokens/s extrapolated to `target_blocks` blocks:
//   t(B) = t_head + B * (t_measured - t_head) / blocks_measured.
struct Extrapolated {
    double block_seconds = 0.0;  // per block per run
    double tokens_per_s = 0.0;   // at target_blocks
};
// cpu_time: use cpu_seconds instead of wall seconds.
Extrapolated extrapolate_blocks(const BenchStat& measured, int64_t blocks_measured,
                                const BenchStat& head_only, int64_t tokens, int64_t target_blocks,
                                bool cpu_time = false);

// One form of a synthetic comparison, extrapolated to target_blocks, with speed ratios against the fp32 and
// bf16 forms of the same comparison (0 when that form was not measured). Ratio = this tokens/s / other
// tokens/s; block ratios compare the per-block times alone (LM head excluded).
struct FormComparison {
    std::string weights;
    int64_t blocks_measured = 0;
    Extrapolated prefill, decode;
    double prefill_vs_fp32 = 0, decode_vs_fp32 = 0, prefill_vs_bf16 = 0, decode_vs_bf16 = 0;
    double decode_block_vs_fp32 = 0, decode_block_vs_bf16 = 0;
    double prefill_block_vs_fp32 = 0, prefill_block_vs_bf16 = 0;
};
std::vector<FormComparison> compare_forms(const std::vector<BenchResult>& forms, const BenchResult& head_only,
                                          int64_t target_blocks, bool cpu_time = false);

// ---- reports -----------------------------------------------------------------------------------------

// llama-bench-like table: one row per result and test (pp<P>, tg<N>).
std::string bench_markdown(const std::vector<BenchResult>& results);
// Per-token milliseconds by stage of every profiled result, their sum and the measured total: wall clock,
// then CPU time of the calling thread against process CPU time (equal with one thread).
std::string profile_markdown(const std::vector<BenchResult>& results);
std::string comparison_markdown(const std::vector<FormComparison>& rows, int64_t target_blocks,
                                bool cpu_time = false);
// {"results": [...], "comparison": {"target_blocks": B, "forms": [...]}} (comparison omitted when empty).
std::string bench_json(const std::vector<BenchResult>& results,
                       const std::vector<FormComparison>& comparison = {}, int64_t target_blocks = 0,
                       bool cpu_time = false);

}  // namespace pbs2p
