// Packed sub-1-bit GEMV / GEMM against OpenBLAS sgemv / sgemm on fp32 weights of the same shape, measured
// in the same run. Shapes (out x in) of LLaMA-7B/-2/Mistral linears; N:8 = 4:8, 5:8, 6:8 with one
// (alpha, mu) pair per row. After the runs a markdown table of speed ratios (fp32 time / packed time) is
// printed. --rotate-bytes=N[K|M|G] cycles each packed benchmark over enough distinct matrices to cover N
// bytes of compute layout (e.g. 128M, beyond a 32 MiB L3: weights come from DRAM); weight_GB/s is the
// compute-layout bytes read per second, bits_read those bytes per weight.
// Example: bench_packed_matmul --benchmark_filter='gemv' --benchmark_min_time=0.3s --rotate-bytes=128M
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "core/blas.h"
#include "core/rng.h"
#include "packed/packed_kernels.h"
#include "packed/random_layout.h"

namespace {

using namespace pbs2p;

constexpr int64_t kGemmTokens = 512;
const std::pair<int64_t, int64_t> kShapes[] = {{4096, 4096}, {11008, 4096}, {4096, 11008}, {4096, 14336}};
const int kKeeps[] = {4, 5, 6};

std::vector<float> random_vector(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = static_cast<float>(rng.normal());
    return v;
}

// Distinct matrices a packed benchmark cycles through, so that the weights read per call come from DRAM
// rather than the last-level cache once rotate_bytes exceeds it (--rotate-bytes; 0 = one matrix).
int64_t rotate_bytes = 0;

const PackedMatrix& packed_weights(int64_t rows, int64_t cols, int n_keep, ComputeForm form, int index) {
    static std::map<std::tuple<int64_t, int64_t, int, ComputeForm, int>, std::unique_ptr<PackedMatrix>> cache;
    auto& slot = cache[{rows, cols, n_keep, form, index}];
    if (!slot)
        slot = std::make_unique<PackedMatrix>(make_packed_matrix(
            random_packed_layer(rows, cols, n_keep, cols, 42 + static_cast<uint64_t>(index)), form));
    return *slot;
}

// The matrices of one benchmark: enough distinct ones to cover rotate_bytes.
std::vector<const PackedMatrix*> packed_rotation(int64_t rows, int64_t cols, int n_keep, ComputeForm form) {
    std::vector<const PackedMatrix*> ms{&packed_weights(rows, cols, n_keep, form, 0)};
    const int64_t bytes = std::max<int64_t>(1, ms[0]->compute_bytes());
    const int64_t count = std::max<int64_t>(1, (rotate_bytes + bytes - 1) / bytes);
    for (int i = 1; i < count; ++i) ms.push_back(&packed_weights(rows, cols, n_keep, form, i));
    return ms;
}

// fp32 baseline weights for one shape at a time (the largest is 235 MB).
const std::vector<float>& dense_weights(int64_t rows, int64_t cols) {
    static std::pair<int64_t, int64_t> shape{0, 0};
    static std::vector<float> w;
    if (shape != std::make_pair(rows, cols)) {
        w = random_vector(rows * cols, 7);
        shape = {rows, cols};
    }
    return w;
}

void set_counters(benchmark::State& state, int64_t rows, int64_t cols, int64_t tokens) {
    state.counters["weights/s"] = benchmark::Counter(static_cast<double>(rows * cols * tokens),
                                                     benchmark::Counter::kIsIterationInvariantRate);
}

void bench_fp32(benchmark::State& state, int64_t rows, int64_t cols, int64_t tokens) {
    const std::vector<float>& w = dense_weights(rows, cols);
    const std::vector<float> x = random_vector(tokens * cols, 3);
    std::vector<float> y(static_cast<size_t>(tokens * rows));
    for (auto _ : state) {
        if (tokens == 1)
            sgemv(w.data(), rows, cols, x.data(), y.data());
        else
            matmul_xwt(x.data(), tokens, cols, w.data(), rows, y.data());
        benchmark::DoNotOptimize(y.data());
    }
    set_counters(state, rows, cols, tokens);
    state.counters["MB_weights"] = static_cast<double>(rows * cols * 4) / 1e6;
}

void bench_packed(benchmark::State& state, const PackedKernel* kernel, int64_t rows, int64_t cols, int n_keep,
                  int64_t tokens) {
    const std::vector<const PackedMatrix*> ms = packed_rotation(rows, cols, n_keep, kernel->form);
    const std::vector<float> x = random_vector(tokens * cols, 3);
    std::vector<float> y(static_cast<size_t>(tokens * rows));
    size_t next = 0;
    for (auto _ : state) {
        const PackedMatrix& w = *ms[next];
        next = (next + 1) % ms.size();
        if (tokens == 1)
            kernel->gemv(w, x.data(), y.data());
        else
            kernel->gemm(w, x.data(), tokens, y.data());
        benchmark::DoNotOptimize(y.data());
    }
    set_counters(state, rows, cols, tokens);
    const auto bytes = static_cast<double>(ms[0]->compute_bytes());  // weight bytes read per call
    state.counters["MB_weights"] = bytes / 1e6;
    state.counters["matrices"] = static_cast<double>(ms.size());
    state.counters["bits_read"] = 8.0 * bytes / static_cast<double>(rows * cols);
    state.counters["weight_GB/s"] =
        benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["bits_file"] = ms[0]->storage.bits_per_weight();
}

// Collects mean real times by benchmark name for the ratio table.
class RatioReporter : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs)
            if (run.run_type == Run::RT_Iteration || run.aggregate_name == "mean") {
                times_[run.run_name.function_name] = run.GetAdjustedRealTime();  // in the run's unit (ms)
                cpu_times_[run.run_name.function_name] = run.GetAdjustedCPUTime();
            }
        ConsoleReporter::ReportRuns(runs);
    }
    void print_table() const {
        // CPU time is the main thread's: with one thread it is the steadier figure on a busy machine.
        fmt::print(
            "\n| op | shape (out x in) | N:M | kernel | packed ms | fp32 ms | speedup vs fp32 | speedup (CPU "
            "time) |\n");
        fmt::print("|---|---|---|---|---:|---:|---:|---:|\n");
        for (const auto& [name, time] : times_) {
            if (name.rfind("packed/", 0) != 0) continue;
            // packed/<op>/<rows>x<cols>/<n>:8/<kernel>
            const auto parts = split(name);
            if (parts.size() != 5) continue;
            const auto base = times_.find(fmt::format("fp32/{}/{}", parts[1], parts[2]));
            if (base == times_.end()) continue;
            const double cpu_ratio =
                cpu_times_.at(fmt::format("fp32/{}/{}", parts[1], parts[2])) / cpu_times_.at(name);
            fmt::print("| {} | {} | {} | {} | {:.3f} | {:.3f} | {:.2f} | {:.2f} |\n", parts[1], parts[2],
                       parts[3], parts[4], time, base->second, base->second / time, cpu_ratio);
        }
    }

  private:
    static std::vector<std::string> split(const std::string& s) {
        std::vector<std::string> out;
        size_t start = 0, pos;
        while ((pos = s.find('/', start)) != std::string::npos) {
            out.push_back(s.substr(start, pos - start));
            start = pos + 1;
        }
        out.push_back(s.substr(start));
        return out;
    }
    std::map<std::string, double> times_, cpu_times_;
};

void register_all() {
    for (const auto& [rows, cols] : kShapes)
        for (const auto& [op, tokens] : {std::pair<const char*, int64_t>{"gemv", 1}, {"gemm", kGemmTokens}}) {
            const std::string shape = fmt::format("{}x{}", rows, cols);
            benchmark::RegisterBenchmark(fmt::format("fp32/{}/{}", op, shape).c_str(), bench_fp32, rows, cols,
                                         tokens)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
            for (int n_keep : kKeeps)
                for (const PackedKernel& k : packed_kernels()) {
                    if (std::string(k.name) == "reference" || !k.available) continue;
                    // Low-bit rows only where the layer fits the layout (otherwise they run avx2_q8).
                    if (k.form == ComputeForm::lowbit && n_keep > kSignCodeBits) continue;
                    benchmark::RegisterBenchmark(
                        fmt::format("packed/{}/{}/{}:8/{}", op, shape, n_keep, k.name).c_str(), bench_packed,
                        &k, rows, cols, n_keep, tokens)
                        ->Unit(benchmark::kMillisecond)
                        ->UseRealTime();
                }
        }
}

}  // namespace

// Reads and removes --rotate-bytes=N[K|M|G] from argv.
void parse_rotate_bytes(int& argc, char** argv) {
    const std::string flag = "--rotate-bytes=";
    int out = 1;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a.rfind(flag, 0) != 0) {
            argv[out++] = argv[i];
            continue;
        }
        size_t used = 0;
        const std::string v = a.substr(flag.size());
        double n = 0;
        try {
            n = std::stod(v, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        const std::string unit = v.substr(used);
        const double scale = unit.empty()  ? 1
                             : unit == "K" ? 1 << 10
                             : unit == "M" ? 1 << 20
                             : unit == "G" ? 1 << 30
                                           : -1;
        if (used == 0 || scale < 0 || n < 0) {
            fmt::print(stderr, "bench_packed_matmul: bad --rotate-bytes '{}' (expected N, NK, NM or NG)\n",
                       v);
            std::exit(2);
        }
        rotate_bytes = static_cast<int64_t>(n * scale);
    }
    argc = out;
}

int main(int argc, char** argv) {
    parse_rotate_bytes(argc, argv);
    benchmark::Initialize(&argc, argv);
    register_all();
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_table();
    benchmark::Shutdown();
    return 0;
}
