// Packed sub-1-bit GEMV / GEMM against OpenBLAS sgemv / sgemm on fp32 weights of the same shape, measured
// in the same run. Shapes (out x in) of LLaMA-7B/-2/Mistral linears; N:8 = 4:8, 5:8, 6:8 with one
// (alpha, mu) pair per row. After the runs a markdown table of speed ratios (fp32 time / packed time) is
// printed. Example: bench_packed_matmul --benchmark_filter='gemv' --benchmark_min_time=0.3
// Options of ours (after Google Benchmark's own):
//   --shapes=4096x14336,14336x4096  shapes (out x in) instead of the four above
//   --keeps=4                       N of N:8 instead of 4, 5, 6
//   --working_set_mib=96            rotate through enough copies of each weight matrix (different random
//                                   codes) that one pass reads at least this many MiB, so weights come
//                                   from memory, not from the last-level cache (default 0: one copy)
//   --rotate-bytes=N[K|M|G]         the same in bytes (e.g. 128M)
// Counters: weights/s, MB_weights (one copy), copies, GB/s of weights read; packed rows also bits_read
// (compute-layout bits per weight read) and bits_file (stored bits per weight).
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>

#include "core/blas.h"
#include "core/rng.h"
#include "packed/packed_kernels.h"
#include "packed/random_layout.h"

namespace {

using namespace pbs2p;

constexpr int64_t kGemmTokens = 512;

struct Options {
    std::vector<std::pair<int64_t, int64_t>> shapes{
        {4096, 4096}, {11008, 4096}, {4096, 11008}, {4096, 14336}};
    std::vector<int> keeps{4, 5, 6};
    double working_set_bytes = 0;
};
Options options;

[[noreturn]] void usage_error(const std::string& what) {
    std::fprintf(stderr, "bench_packed_matmul: error: %s\n", what.c_str());
    std::exit(1);
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream list(s);
    for (std::string item; std::getline(list, item, ',');) out.push_back(item);
    return out;
}

// Our flags, left in argv by benchmark::Initialize.
void parse_options(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value_of = [&](const char* flag) -> const char* {
            const std::string prefix = std::string(flag) + "=";
            return a.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
        };
        if (const char* v = value_of("--shapes")) {
            options.shapes.clear();
            for (const std::string& shape : split_list(v)) {
                long long rows = 0, cols = 0;
                char tail = 0;
                if (std::sscanf(shape.c_str(), "%lldx%lld%c", &rows, &cols, &tail) != 2 || rows <= 0 ||
                    cols <= 0 || cols % 8 != 0)
                    usage_error("--shapes: '" + shape + "' is not ROWSxCOLS (COLS a multiple of 8)");
                options.shapes.emplace_back(rows, cols);
            }
        } else if (const char* v = value_of("--keeps")) {
            options.keeps.clear();
            for (const std::string& keep : split_list(v)) {
                const int n = std::atoi(keep.c_str());
                if (n < 1 || n > 8 || std::to_string(n) != keep)
                    usage_error("--keeps: '" + keep + "' is not 1..8");
                options.keeps.push_back(n);
            }
        } else if (const char* v = value_of("--working_set_mib")) {
            char* end = nullptr;
            const double mib = std::strtod(v, &end);
            if (end == v || *end != '\0' || mib < 0)
                usage_error(std::string("--working_set_mib: '") + v + "'");
            options.working_set_bytes = mib * 1024 * 1024;
        } else if (const char* v = value_of("--rotate-bytes")) {
            char* end = nullptr;
            const double n = std::strtod(v, &end);
            const std::string unit = end ? end : "";
            const double scale = unit.empty()  ? 1
                                 : unit == "K" ? 1 << 10
                                 : unit == "M" ? 1 << 20
                                 : unit == "G" ? 1 << 30
                                               : -1;
            if (end == v || scale < 0 || n < 0)
                usage_error(std::string("--rotate-bytes: '") + v + "' (expected N, NK, NM or NG)");
            options.working_set_bytes = n * scale;
        } else {
            usage_error("unknown argument '" + a +
                        "' (ours: --shapes=, --keeps=, --working_set_mib=, --rotate-bytes=)");
        }
    }
}

// Copies of a matrix of `bytes` that one rotation needs to read options.working_set_bytes.
int copies_for(double bytes) {
    return std::max(1, static_cast<int>(std::ceil(options.working_set_bytes / bytes)));
}

std::vector<float> random_vector(int64_t n, uint64_t seed) {
    Rng rng(seed);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = static_cast<float>(rng.normal());
    return v;
}

// Copy `copy` of the packed weights of a shape in the compute form a kernel reads (copies differ in their
// random codes).
const PackedMatrix& packed_weights(int64_t rows, int64_t cols, int n_keep, ComputeForm form, int copy = 0) {
    static std::map<std::tuple<int64_t, int64_t, int, ComputeForm, int>, std::unique_ptr<PackedMatrix>> cache;
    auto& slot = cache[{rows, cols, n_keep, form, copy}];
    if (!slot)
        slot = std::make_unique<PackedMatrix>(make_packed_matrix(
            random_packed_layer(rows, cols, n_keep, cols, 42 + static_cast<uint64_t>(copy)), form));
    return *slot;
}

// The copies of the packed weights one benchmark rotates through.
std::vector<const PackedMatrix*> packed_rotation(int64_t rows, int64_t cols, int n_keep, ComputeForm form) {
    std::vector<const PackedMatrix*> out{&packed_weights(rows, cols, n_keep, form)};
    const int copies = copies_for(static_cast<double>(std::max<int64_t>(1, out[0]->compute_bytes())));
    for (int c = 1; c < copies; ++c) out.push_back(&packed_weights(rows, cols, n_keep, form, c));
    return out;
}

// fp32 baseline weights for one shape at a time (the largest is 235 MB), with the copies of the rotation.
const std::vector<std::vector<float>>& dense_weights(int64_t rows, int64_t cols) {
    static std::pair<int64_t, int64_t> shape{0, 0};
    static std::vector<std::vector<float>> w;
    if (shape != std::make_pair(rows, cols)) {
        w.clear();
        const int copies = copies_for(4.0 * static_cast<double>(rows * cols));
        for (int c = 0; c < copies; ++c) w.push_back(random_vector(rows * cols, 7 + c));
        shape = {rows, cols};
    }
    return w;
}

void set_counters(benchmark::State& state, int64_t rows, int64_t cols, int64_t tokens, double weight_bytes,
                  size_t copies) {
    state.counters["weights/s"] = benchmark::Counter(static_cast<double>(rows * cols * tokens),
                                                     benchmark::Counter::kIsIterationInvariantRate);
    state.counters["MB_weights"] = weight_bytes / 1e6;
    state.counters["copies"] = static_cast<double>(copies);
    state.counters["GB/s"] =
        benchmark::Counter(weight_bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_fp32(benchmark::State& state, int64_t rows, int64_t cols, int64_t tokens) {
    const std::vector<std::vector<float>>& ws = dense_weights(rows, cols);
    const std::vector<float> x = random_vector(tokens * cols, 3);
    std::vector<float> y(static_cast<size_t>(tokens * rows));
    size_t next = 0;
    for (auto _ : state) {
        const std::vector<float>& w = ws[next++ % ws.size()];
        if (tokens == 1)
            sgemv(w.data(), rows, cols, x.data(), y.data());
        else
            matmul_xwt(x.data(), tokens, cols, w.data(), rows, y.data());
        benchmark::DoNotOptimize(y.data());
    }
    set_counters(state, rows, cols, tokens, static_cast<double>(rows * cols * 4), ws.size());
}

void bench_packed(benchmark::State& state, const PackedKernel* kernel, int64_t rows, int64_t cols, int n_keep,
                  int64_t tokens) {
    const std::vector<const PackedMatrix*> ws = packed_rotation(rows, cols, n_keep, kernel->form);
    const std::vector<float> x = random_vector(tokens * cols, 3);
    std::vector<float> y(static_cast<size_t>(tokens * rows));
    size_t next = 0;
    for (auto _ : state) {
        const PackedMatrix& w = *ws[next++ % ws.size()];
        if (tokens == 1)
            kernel->gemv(w, x.data(), y.data());
        else
            kernel->gemm(w, x.data(), tokens, y.data());
        benchmark::DoNotOptimize(y.data());
    }
    const auto bytes = static_cast<double>(ws[0]->compute_bytes());  // weight bytes read per call
    set_counters(state, rows, cols, tokens, bytes, ws.size());
    state.counters["bits_read"] = 8.0 * bytes / static_cast<double>(rows * cols);
    state.counters["bits_file"] = ws[0]->storage.bits_per_weight();
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
    for (const auto& [rows, cols] : options.shapes)
        for (const auto& [op, tokens] : {std::pair<const char*, int64_t>{"gemv", 1}, {"gemm", kGemmTokens}}) {
            const std::string shape = fmt::format("{}x{}", rows, cols);
            benchmark::RegisterBenchmark(fmt::format("fp32/{}/{}", op, shape).c_str(), bench_fp32, rows, cols,
                                         tokens)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime();
            for (int n_keep : options.keeps)
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

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    parse_options(argc, argv);
    register_all();
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_table();
    benchmark::Shutdown();
    return 0;
}
