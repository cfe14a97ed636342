// Per-layer compression time at LLaMA-7B shapes for every method, beside the sgemm throughput of the
// same run (a [4096 x 4096] x [4096 x 4096] product) as the machine's reference speed.
//   bench_compress_layer --benchmark_filter='4096x4096' (or set PBS2P_BENCH_SHAPES=small for 1024-wide)
// The Hessian has a decaying spectrum: H = Q diag(lambda_k) Q^T with lambda_k = 1/(1+k/32), built as
// 2 X^T X / T from random inputs whose columns are scaled by sqrt(lambda) (fast, SPD, realistic decay).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>

#include "compress/layer_compressor.h"
#include "core/blas.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace pbs2p;

namespace {

struct Layer {
    Matrix w;
    MatrixD h;
    HessianFactor f;
};

const Layer& layer(int64_t rows, int64_t cols) {
    static std::map<std::pair<int64_t, int64_t>, Layer> cache;
    auto it = cache.find({rows, cols});
    if (it != cache.end()) return it->second;
    Rng rng(1);
    const int64_t tokens = cols + 512;
    Matrix x(tokens, cols);
    for (int64_t t = 0; t < tokens; ++t)
        for (int64_t j = 0; j < cols; ++j)
            x(t, j) = static_cast<float>(rng.normal() / std::sqrt(1.0 + j / 32.0) * (j % 97 == 0 ? 6.0 : 1.0));
    // Mix neighbouring features so H is not diagonal.
    for (int64_t t = 0; t < tokens; ++t)
        for (int64_t j = cols - 1; j > 0; --j) x(t, j) += 0.5f * x(t, j - 1);
    Layer l{Matrix(rows, cols), MatrixD(cols, cols), {}};
    syrk_accumulate(x.ptr(), tokens, cols, 2.0 / tokens, l.h);
    symmetrize_from_upper(l.h);
    for (auto& v : l.w.data) v = static_cast<float>(0.02 * rng.normal());
    l.f = factor_hessian(l.h, 0.01);
    return cache.emplace(std::make_pair(rows, cols), std::move(l)).first->second;
}

void BM_compress(benchmark::State& state, const std::string& method, int64_t rows, int64_t cols) {
    const Layer& l = layer(rows, cols);
    CompressOptions o;
    o.method = method;
    o.error_sample_rows = 128;
    if (method == "gptq" || method == "rtn") o.bits = 2;
    double err = 0;
    for (auto _ : state) {
        CompressedLayer out = compress_layer(l.w, l.h, l.f, o);
        err = out.stats.rel_error;
        benchmark::DoNotOptimize(out.weight.ptr());
    }
    state.counters["rel_error"] = err;
    state.counters["weights_per_s"] = benchmark::Counter(static_cast<double>(rows * cols), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_factor(benchmark::State& state, int64_t cols) {
    const Layer& l = layer(16, cols);
    for (auto _ : state) benchmark::DoNotOptimize(factor_hessian(l.h, 0.01).u_diag.data());
}

void BM_sgemm_peak(benchmark::State& state) {
    const int64_t n = 4096;
    Matrix a(n, n, 0.5f), b(n, n, 0.25f), c(n, n);
    for (auto _ : state) sgemm(false, false, n, n, n, 1.0f, a.ptr(), n, b.ptr(), n, 0.0f, c.ptr(), n);
    state.counters["GFLOPS"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::kIs1000);
}

int register_all() {
    const bool small = std::getenv("PBS2P_BENCH_SHAPES") && std::string(std::getenv("PBS2P_BENCH_SHAPES")) == "small";
    std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    if (small) shapes = {{1024, 1024}};
    benchmark::RegisterBenchmark("sgemm_4096_peak", BM_sgemm_peak)->Unit(benchmark::kMillisecond)->Iterations(2)->UseRealTime();
    for (auto [r, c] : shapes) {
        const std::string shape = std::to_string(r) + "x" + std::to_string(c);
        benchmark::RegisterBenchmark(("factor_hessian/" + shape).c_str(), BM_factor, c)->Unit(benchmark::kSecond)->Iterations(1)->UseRealTime();
        for (const std::string& m : method_names())
            benchmark::RegisterBenchmark((m + "/" + shape).c_str(), BM_compress, m, r, c)
                ->Unit(benchmark::kSecond)
                ->Iterations(1)
                ->UseRealTime();
    }
    return 0;
}

const int registered = register_all();

}  // namespace

int main(int argc, char** argv) {
    set_num_threads(2);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    return 0;
}
