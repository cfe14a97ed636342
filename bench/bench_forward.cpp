// Forward-pass speed of one LLaMA-7B-shaped block (hidden 4096, 32 heads, FFN 11008, random fp32 weights):
// prefill at 512 and 2048 tokens (tokens/s, GFLOP/s, share of the sgemm peak measured in the same run)
// and single-token decode with a 512-token KV cache (tokens/s, GB/s of weights read).
//
//   build/bench/bench_forward --benchmark_min_time=1x
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "core/blas.h"
#include "core/rng.h"
#include "core/threads.h"
#include "model/model.h"

namespace pbs2p {
namespace {

constexpr int64_t kHidden = 4096, kHeads = 32, kFfn = 11008, kVocab = 32;

Matrix random_matrix(int64_t rows, int64_t cols, uint64_t seed, float scale) {
    Matrix m(rows, cols);
    Rng rng(seed);
    for (float& v : m.data) v = static_cast<float>(rng.uniform() * 2.0 - 1.0) * scale;
    return m;
}

ModelConfig block_config() {
    ModelConfig c;
    c.architecture = "LlamaForCausalLM";
    c.model_type = "llama";
    c.vocab_size = kVocab;
    c.hidden_size = c.embed_dim = kHidden;
    c.intermediate_size = kFfn;
    c.num_layers = 1;
    c.num_heads = c.num_kv_heads = kHeads;
    c.head_dim = kHidden / kHeads;
    c.max_position_embeddings = 4096;
    c.norm_eps = 1e-5;
    return c;
}

// One-block model: small tensors (embedding, norms, head) from a temporary checkpoint, linears random
// through the LinearSource hook.
const Model& block_model() {
    static const Model model = [] {
        const ModelConfig c = block_config();
        const std::string path = (std::filesystem::temp_directory_path() /
                                  ("pbs2p_bench_forward_" + std::to_string(::getpid()) + ".safetensors"))
                                     .string();
        std::vector<float> ones(kHidden, 1.0f);
        Matrix embed = random_matrix(kVocab, kHidden, 1, 1.0f);
        std::vector<TensorToWrite> tensors{
            tensor_from_floats("model.embed_tokens.weight", embed.ptr(), {kVocab, kHidden}, DType::f32),
            tensor_from_floats("lm_head.weight", embed.ptr(), {kVocab, kHidden}, DType::f32),
            tensor_from_floats("model.norm.weight", ones.data(), {kHidden}, DType::f32),
            tensor_from_floats("model.layers.0.input_layernorm.weight", ones.data(), {kHidden}, DType::f32),
            tensor_from_floats("model.layers.0.post_attention_layernorm.weight", ones.data(), {kHidden}, DType::f32)};
        write_safetensors(path, tensors);
        SafetensorsReader reader = SafetensorsReader::open(path);
        uint64_t seed = 10;
        Model m = Model::load(c, reader, [&](const std::string&, int64_t out, int64_t in, Linear& linear) {
            linear.weight = random_matrix(out, in, seed++, 1.0f / std::sqrt(static_cast<float>(in)));
            return true;
        });
        std::filesystem::remove(path);
        return m;
    }();
    return model;
}

// 2*m*n*k for every linear, plus the causal attention products (QK^T and PV over the lower triangle).
double block_flops(int64_t tokens) {
    const double linear_params = 4.0 * kHidden * kHidden + 3.0 * kHidden * kFfn;
    const double attention = 2.0 * 2.0 * kHidden * (static_cast<double>(tokens) * (tokens + 1) / 2.0);
    return 2.0 * tokens * linear_params + attention;
}

double time_sgemm_gflops(int64_t m, int64_t n, int64_t k, int reps) {
    static Matrix a = random_matrix(2048, 4096, 3, 1.0f), b = random_matrix(4096, 4096, 4, 1.0f);
    Matrix c(m, n);
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        sgemm(false, true, m, n, k, 1.0f, a.ptr(), k, b.ptr(), k, 0.0f, c.ptr(), n);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return 2.0 * m * n * k / best / 1e9;
}

// sgemm 4096x4096x2048 peak, measured once per run (best of 3) so every ratio uses the same baseline.
double sgemm_peak_gflops() {
    static const double peak = time_sgemm_gflops(2048, 4096, 4096, 3);
    return peak;
}

void BM_Sgemm_2048x4096x4096(benchmark::State& state) {
    set_num_threads(0);
    Matrix a = random_matrix(2048, 4096, 3, 1.0f), b = random_matrix(4096, 4096, 4, 1.0f), c(2048, 4096);
    for (auto _ : state) {
        sgemm(false, true, 2048, 4096, 4096, 1.0f, a.ptr(), 4096, b.ptr(), 4096, 0.0f, c.ptr(), 4096);
        benchmark::DoNotOptimize(c.ptr());
    }
    state.counters["GFLOP/s"] =
        benchmark::Counter(2.0 * 2048 * 4096 * 4096 / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_BlockPrefill(benchmark::State& state) {
    set_num_threads(0);
    const int64_t tokens = state.range(0);
    const Model& model = block_model();
    const double peak = sgemm_peak_gflops();
    Matrix input = random_matrix(tokens, kHidden, 5, 1.0f);
    for (auto _ : state) {
        state.PauseTiming();
        Matrix hidden = input;
        state.ResumeTiming();
        model.run_block(0, hidden, 1, tokens);
        benchmark::DoNotOptimize(hidden.ptr());
    }
    const double gflop = block_flops(tokens) / 1e9;
    state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
    state.counters["GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
    // Share of the sgemm peak: computed from the mean iteration time once the run ends.
    state.counters["sgemm_peak_GFLOP/s"] = peak;
    state.counters["pct_of_sgemm"] = benchmark::Counter(100.0 * gflop / peak, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Decode_Ctx512(benchmark::State& state) {
    set_num_threads(0);
    const Model& model = block_model();
    const int64_t context = 512;
    KvCache cache = model.new_cache(context + 1);
    std::vector<int32_t> prompt(context);
    for (int64_t i = 0; i < context; ++i) prompt[i] = static_cast<int32_t>(i % kVocab);
    model.forward(prompt, cache);
    for (auto _ : state) {
        cache.length = context;
        Matrix logits = model.forward({7}, cache);
        benchmark::DoNotOptimize(logits.ptr());
    }
    // Weights of the block (the 32-token head and embedding are negligible).
    const double weight_gb = (4.0 * kHidden * kHidden + 3.0 * kHidden * kFfn) * sizeof(float) / 1e9;
    state.counters["tokens/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["weight_GB/s"] = benchmark::Counter(weight_gb, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_Sgemm_2048x4096x4096)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_BlockPrefill)->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Decode_Ctx512)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

}  // namespace
}  // namespace pbs2p

BENCHMARK_MAIN();
