// STREAM-like memory bandwidth, to state kernels' achieved GB/s as a fraction of what the machine gives in
// the same run. Two kernels over arrays much larger than the last-level cache, each best of --reps:
//   read  sum of a uint64 array (integer adds, so the loop vectorizes and stays bandwidth-bound):
//         8 bytes per element
//   copy  b[i] = a[i] on doubles: 16 bytes per element counted (read + write; write-allocate traffic, if
//         any, is not counted, as in STREAM)
// for each thread count of --threads (OpenMP, static schedule, arrays first touched by the same threads).
//   bench_stream [--threads 1,2] [--mib 256] [--reps 7] [--json]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Options {
    std::vector<int> threads{1, 2};
    int64_t mib = 256;  // per array
    int reps = 7;
    bool json = false;
};

[[noreturn]] void usage_error(const std::string& what) {
    std::fprintf(
        stderr,
        "bench_stream: error: %s (usage: bench_stream [--threads 1,2] [--mib N] [--reps N] [--json])\n",
        what.c_str());
    std::exit(1);
}

int64_t positive(const std::string& flag, const char* text) {
    char* end = nullptr;
    const long long v = std::strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v <= 0)
        usage_error(flag + " needs a positive integer, got '" + text + "'");
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> const char* {
            if (i + 1 >= argc) usage_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--threads") {
            o.threads.clear();
            std::stringstream list(value());
            for (std::string t; std::getline(list, t, ',');) o.threads.push_back(int(positive(a, t.c_str())));
        } else if (a == "--mib") {
            o.mib = positive(a, value());
        } else if (a == "--reps") {
            o.reps = int(positive(a, value()));
        } else if (a == "--json") {
            o.json = true;
        } else if (a == "-h" || a == "--help") {
            std::printf(
                "bench_stream [--threads 1,2] [--mib 256] [--reps 7] [--json]: read and copy bandwidth, "
                "GB/s\n");
            std::exit(0);
        } else {
            usage_error("unknown argument '" + a + "'");
        }
    }
    return o;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Result {
    const char* kernel;
    int threads;
    double best_gbs, median_gbs;
};

// Runs `body` reps times; GB/s of each run from `bytes`.
template <typename Body>
Result measure(const char* kernel, int threads, int reps, double bytes, Body body) {
    std::vector<double> gbs;
    body();  // warm-up (page faults, frequency)
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        body();
        gbs.push_back(bytes / seconds_since(t0) / 1e9);
    }
    std::sort(gbs.begin(), gbs.end());
    return {kernel, threads, gbs.back(), gbs[gbs.size() / 2]};
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const auto n = static_cast<int64_t>(o.mib * 1024 * 1024 / 8);
    // Raw allocations so that the first touch happens in the parallel loops below.
    auto* a = static_cast<double*>(std::aligned_alloc(64, size_t(n) * 8));
    auto* b = static_cast<double*>(std::aligned_alloc(64, size_t(n) * 8));
    auto* u = static_cast<uint64_t*>(std::aligned_alloc(64, size_t(n) * 8));
    if (!a || !b || !u) usage_error("cannot allocate 3 arrays of " + std::to_string(o.mib) + " MiB");
    std::vector<Result> results;
    volatile uint64_t sink = 0;
    for (int t : o.threads) {
#pragma omp parallel for num_threads(t) schedule(static)
        for (int64_t i = 0; i < n; ++i) {
            a[i] = double(i & 1023);
            b[i] = 0.0;
            u[i] = uint64_t(i);
        }
        results.push_back(measure("read", t, o.reps, 8.0 * double(n), [&] {
            uint64_t s = 0;
#pragma omp parallel for num_threads(t) schedule(static) reduction(+ : s)
            for (int64_t i = 0; i < n; ++i) s += u[i];
            sink = sink + s;
        }));
        results.push_back(measure("copy", t, o.reps, 16.0 * double(n), [&] {
#pragma omp parallel for num_threads(t) schedule(static)
            for (int64_t i = 0; i < n; ++i) b[i] = a[i];
        }));
    }
    if (o.json) {
        std::printf("{\"array_mib\": %lld, \"reps\": %d, \"results\": [", static_cast<long long>(o.mib),
                    o.reps);
        for (size_t i = 0; i < results.size(); ++i)
            std::printf(
                "%s\n  {\"kernel\": \"%s\", \"threads\": %d, \"best_gbs\": %.3f, \"median_gbs\": %.3f}",
                i ? "," : "", results[i].kernel, results[i].threads, results[i].best_gbs,
                results[i].median_gbs);
        std::printf("\n]}\n");
    } else {
        std::printf(
            "arrays %lld MiB, best and median of %d runs\n| kernel | threads | best GB/s | median GB/s |\n"
            "|---|---:|---:|---:|\n",
            static_cast<long long>(o.mib), o.reps);
        for (const Result& r : results)
            std::printf("| %s | %d | %.2f | %.2f |\n", r.kernel, r.threads, r.best_gbs, r.median_gbs);
    }
    std::free(a);
    std::free(b);
    std::free(u);
    return 0;
}
