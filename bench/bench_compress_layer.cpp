// Per-layer compression time at LLaMA-7B shapes for every method, beside the sgemm throughput of the
// same run (a [4096 x 4096] x [4096 x 4096] product) as the machine's reference speed.
//   bench_compress_layer --benchmark_filter='4096x4096' (or set PBS2P_BENCH_SHAPES=small for 1024-wide)
//   bench_compress_layer --benchmark_filter='block7'   (a whole 7B-shaped decoder block with pbs2p)
//   pbs2p-arb/<shape>: pbs2p with the row-wise arb backbone, the form the PyTorch timing script implements
//   code/<code>@<scale group>/{reference,fast}/<rows x cols>: the tern code search alone
//   (bench_compress_layer
//     --benchmark_filter='code/'), the exhaustive reference on a 512-row slice beside the fast loop
// On a shared, loaded machine run with OMP_WAIT_POLICY=passive (spinning threads wait for descheduled ones).
// The Hessian has a decaying spectrum: H = Q diag(lambda_k) Q^T with lambda_k = 1/(1+k/32), built as
// 2 X^T X / T from random inputs whose columns are scaled by sqrt(lambda) (fast, SPD, realistic decay).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "compress/code_search.h"
#include "compress/layer_compressor.h"
#include "compress/pattern_codebook.h"
#include "core/blas.h"
#include "core/rng.h"
#include "core/threads.h"

using namespace pbs2p;

namespace {

struct Layer {
    Matrix w;
    const MatrixD& h;
    const HessianFactor& f;
};

// Synthetic Hessian of width `cols` (cached per width) and its factor.
struct Input {
    MatrixD h;
    HessianFactor f;
};

MatrixD synthetic_hessian(int64_t cols) {
    Rng rng(1);
    const int64_t tokens = cols + 512;
    Matrix x(tokens, cols);
    for (int64_t t = 0; t < tokens; ++t)
        for (int64_t j = 0; j < cols; ++j)
            x(t, j) =
                static_cast<float>(rng.normal() / std::sqrt(1.0 + j / 32.0) * (j % 97 == 0 ? 6.0 : 1.0));
    // Mix neighbouring features so H is not diagonal.
    for (int64_t t = 0; t < tokens; ++t)
        for (int64_t j = cols - 1; j > 0; --j) x(t, j) += 0.5f * x(t, j - 1);
    MatrixD h(cols, cols);
    syrk_accumulate(x.ptr(), tokens, cols, 2.0 / tokens, h);
    symmetrize_from_upper(h);
    return h;
}

const Input& input(int64_t cols) {
    static std::map<int64_t, Input> cache;
    auto it = cache.find(cols);
    if (it != cache.end()) return it->second;
    Input in{synthetic_hessian(cols), {}};
    in.f = factor_hessian(in.h, 0.01);
    return cache.emplace(cols, std::move(in)).first->second;
}

// CPU seconds of the whole process (all threads) since c0: the work done, robust to a loaded machine.
double process_cpu_seconds(std::clock_t c0) {
    return static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
}

Matrix synthetic_weight(int64_t rows, int64_t cols, uint64_t seed) {
    Rng rng(seed);
    Matrix w(rows, cols);
    for (auto& v : w.data) v = static_cast<float>(0.02 * rng.normal());
    return w;
}

const Layer& layer(int64_t rows, int64_t cols) {
    static std::map<std::pair<int64_t, int64_t>, Layer> cache;
    auto it = cache.find({rows, cols});
    if (it != cache.end()) return it->second;
    const Input& in = input(cols);
    return cache.emplace(std::make_pair(rows, cols), Layer{synthetic_weight(rows, cols, 2), in.h, in.f})
        .first->second;
}

// `backbone` (pbs2p only, "" = the default) lets the row-wise `arb` form, which the PyTorch timing script
// implements, be timed beside the default.
void BM_compress(benchmark::State& state, const std::string& method, int64_t rows, int64_t cols,
                 const std::string& backbone) {
    const Layer& l = layer(rows, cols);
    CompressOptions o;
    o.method = method;
    if (!backbone.empty()) o.backbone = backbone;
    o.error_sample_rows = 128;
    if (method == "gptq" || method == "rtn") o.bits = 2;
    double err = 0;
    const std::clock_t c0 = std::clock();
    for (auto _ : state) {
        CompressedLayer out = compress_layer(l.w, l.h, l.f, o);
        err = out.stats.rel_error;
        benchmark::DoNotOptimize(out.weight.ptr());
    }
    state.counters["cpu_s"] = process_cpu_seconds(c0) / static_cast<double>(state.iterations());
    state.counters["rel_error"] = err;
    state.counters["weights_per_s"] =
        benchmark::Counter(static_cast<double>(rows * cols), benchmark::Counter::kIsIterationInvariantRate);
}

// The tern code search alone (fast loop or the exhaustive reference) on the first `rows` rows of a layer:
// the reference is too slow for a whole 7B-shaped layer, so both are timed on a slice and compared per
// weight.
void BM_code_search(benchmark::State& state, const std::string& code, int64_t scale_group, int64_t layer_rows,
                    int64_t rows, int64_t cols, bool reference) {
    const Layer& l = layer(layer_rows, cols);
    Matrix w(rows, cols);
    std::copy(l.w.data.begin(), l.w.data.begin() + rows * cols, w.data.begin());
    CodeSearchOptions o;
    o.scale_group = scale_group < 0 ? cols : scale_group;
    o.alpha_passes = 3;
    const std::clock_t c0 = std::clock();
    for (auto _ : state) {
        Matrix q = w;
        const CodedWeights out = reference ? code_search_loop_reference(q, l.f, pattern_codebook(code), o)
                                           : code_search_loop(q, l.f, pattern_codebook(code), o);
        benchmark::DoNotOptimize(out.codes.data());
    }
    state.counters["cpu_s"] = process_cpu_seconds(c0) / static_cast<double>(state.iterations());
    state.counters["weights_per_s"] =
        benchmark::Counter(static_cast<double>(rows * cols), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_factor(benchmark::State& state, int64_t cols) {
    const Input& in = input(cols);
    const std::clock_t c0 = std::clock();
    for (auto _ : state) benchmark::DoNotOptimize(factor_hessian(in.h, 0.01).u_diag.data());
    state.counters["cpu_s"] = process_cpu_seconds(c0) / static_cast<double>(state.iterations());
}

// One LLaMA-7B decoder block with `method` (default options, as the driver): the four distinct Hessians
// are factored (q/k/v share one, gate/up share one, o and down have their own) and the seven matrices
// compressed. The Hessians themselves (calibration) are not timed.
void BM_block7(benchmark::State& state, const std::string& method) {
    struct Linear {
        const char* name;
        int64_t rows, cols;
        int input;  // which Hessian: 0 = attention input, 1 = o input, 2 = mlp input, 3 = down input
    };
    const Linear linears[] = {{"q", 4096, 4096, 0},    {"k", 4096, 4096, 0},     {"v", 4096, 4096, 0},
                              {"o", 4096, 4096, 1},    {"gate", 11008, 4096, 2}, {"up", 11008, 4096, 2},
                              {"down", 4096, 11008, 3}};
    // Distinct Hessians of the same width differ only by a small diagonal shift (same spectrum shape).
    std::vector<MatrixD> hessians;
    for (int k = 0; k < 4; ++k) {
        MatrixD h = input(k == 3 ? 11008 : 4096).h;
        for (int64_t j = 0; j < h.rows; ++j) h(j, j) *= 1.0 + 0.01 * k;
        hessians.push_back(std::move(h));
    }
    std::vector<Matrix> weights;
    for (size_t i = 0; i < std::size(linears); ++i)
        weights.push_back(synthetic_weight(linears[i].rows, linears[i].cols, 10 + i));
    CompressOptions o;
    o.method = method;
    double factor_s = 0.0, compress_s = 0.0, err = 0.0;
    const std::clock_t c0 = std::clock();
    for (auto _ : state) {
        factor_s = compress_s = err = 0.0;
        std::vector<HessianFactor> factors(4);
        for (int k = 0; k < 4; ++k) {
            const auto t0 = std::chrono::steady_clock::now();
            factors[k] = factor_hessian(hessians[k], o.percdamp);
            factor_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        for (size_t i = 0; i < std::size(linears); ++i) {
            const int k = linears[i].input;
            CompressedLayer out = compress_layer(weights[i], hessians[k], factors[k], o);
            compress_s += out.stats.seconds;
            err += out.stats.rel_error / static_cast<double>(std::size(linears));
            state.counters[std::string("s_") + linears[i].name] = out.stats.seconds;
        }
    }
    state.counters["cpu_s"] = process_cpu_seconds(c0) / static_cast<double>(state.iterations());
    state.counters["factor_s"] = factor_s;
    state.counters["compress_s"] = compress_s;
    state.counters["mean_rel_error"] = err;
}

void BM_sgemm_peak(benchmark::State& state) {
    const int64_t n = 4096;
    Matrix a(n, n, 0.5f), b(n, n, 0.25f), c(n, n);
    for (auto _ : state) sgemm(false, false, n, n, n, 1.0f, a.ptr(), n, b.ptr(), n, 0.0f, c.ptr(), n);
    state.counters["GFLOPS"] = benchmark::Counter(
        2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// Each compression case runs once (seconds each), timed by the wall clock.
template <class... Args>
void register_single_run(const std::string& name, Args&&... args) {
    benchmark::RegisterBenchmark(name.c_str(), std::forward<Args>(args)...)
        ->Unit(benchmark::kSecond)
        ->Iterations(1)
        ->UseRealTime();
}

int register_all() {
    const bool small =
        std::getenv("PBS2P_BENCH_SHAPES") && std::string(std::getenv("PBS2P_BENCH_SHAPES")) == "small";
    std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    if (small) shapes = {{1024, 1024}};
    benchmark::RegisterBenchmark("sgemm_4096_peak", BM_sgemm_peak)
        ->Unit(benchmark::kMillisecond)
        ->Iterations(2)
        ->UseRealTime();
    for (auto [r, c] : shapes) {
        const std::string shape = std::to_string(r) + "x" + std::to_string(c);
        register_single_run("factor_hessian/" + shape, BM_factor, c);
        for (const std::string& m : method_names())
            register_single_run(m + "/" + shape, BM_compress, m, r, c, std::string());
        register_single_run("pbs2p-arb/" + shape, BM_compress, std::string("pbs2p"), r, c,
                            std::string("arb"));
        // The default ladder's two code searches: fast loop on 512 rows and the whole layer, reference on
        // 512.
        for (const auto& [code, sg] : {std::pair<std::string, int64_t>{"tern11", 256}, {"tern13", -1}}) {
            const std::string name = "code/" + code + "@" + std::to_string(sg) + "/";
            const int64_t slice = std::min<int64_t>(r, 512);
            register_single_run(name + "reference/" + std::to_string(slice) + "x" + std::to_string(c),
                                BM_code_search, code, sg, r, slice, c, true);
            register_single_run(name + "fast/" + std::to_string(slice) + "x" + std::to_string(c),
                                BM_code_search, code, sg, r, slice, c, false);
            if (slice < r)
                register_single_run(name + "fast/" + shape, BM_code_search, code, sg, r, r, c, false);
        }
    }
    if (!small) register_single_run("block7/pbs2p", BM_block7, std::string("pbs2p"));
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
