// Model-level speed of LLaMA-7B-shaped synthetic models (random weights, see eval/bench.h) with a few blocks,
// in fp32, bf16 and packed 4:8 / 5:8 / 6:8 form: one decode step (KV cache refilled from empty every 64
// steps) and a 128-token prefill, with a table of per-block speedups against fp32 and bf16 measured in the
// same run (the embedding/LM-head time of a 0-block model is subtracted). `pbs2p bench --synthetic 7b` is
// the llama-bench-style front end for the same models; this program is the Google Benchmark view.
//
//   bench_packed_model --benchmark_min_time=2x      (PBS2P_BENCH_BLOCKS=2 by default)
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "eval/bench.h"

namespace {

using namespace pbs2p;

constexpr int64_t kPrefillTokens = 128;
constexpr int64_t kCacheTokens = 64;

int64_t blocks() {
    const char* env = std::getenv("PBS2P_BENCH_BLOCKS");
    return env ? std::atoll(env) : 2;
}

struct Form {
    std::string name;
    SyntheticModelSpec spec;
};

std::vector<Form> forms() {
    std::vector<Form> f;
    SyntheticModelSpec s;
    s.shape = "7b";
    s.blocks = 0;
    f.push_back({"head", s});
    s.blocks = blocks();
    f.push_back({"fp32", s});
    s.weights = SyntheticWeights::bf16;
    f.push_back({"bf16", s});
    s.weights = SyntheticWeights::packed;
    for (int n : {4, 5, 6}) {
        s.n_keep = n;
        f.push_back({fmt::format("packed{}:8", n), s});
    }
    return f;
}

// One model in memory at a time (a 7B-shaped fp32 block is 0.8 GB).
const Model& model_for(const SyntheticModelSpec& spec) {
    static std::string key;
    static std::unique_ptr<Model> model;
    const std::string k = fmt::format("{}/{}/{}", static_cast<int>(spec.weights), spec.n_keep, spec.blocks);
    if (k != key) {
        model.reset();
        model = std::make_unique<Model>(make_synthetic_model(spec));
        key = k;
    }
    return *model;
}

void bench_decode(benchmark::State& state, SyntheticModelSpec spec) {
    const Model& model = model_for(spec);
    KvCache cache = model.new_cache(kCacheTokens);
    int32_t id = 1;
    for (auto _ : state) {
        if (model.num_blocks() > 0 && cache.size() == kCacheTokens) cache.clear();
        const Matrix h = model.forward_hidden({id}, model.num_blocks() > 0 ? &cache : nullptr);
        const Matrix logits = model.final_logits(h, 0, 1);
        benchmark::DoNotOptimize(logits.data.data());
        id = (id * 7 + 3) % 32000;
    }
    state.counters["tokens/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_prefill(benchmark::State& state, SyntheticModelSpec spec) {
    const Model& model = model_for(spec);
    std::vector<int32_t> prompt(kPrefillTokens);
    for (int64_t i = 0; i < kPrefillTokens; ++i)
        prompt[static_cast<size_t>(i)] = static_cast<int32_t>((i * 131 + 7) % 32000);
    for (auto _ : state) {
        KvCache cache = model.new_cache(kPrefillTokens);
        const Matrix h = model.forward_hidden(prompt, model.num_blocks() > 0 ? &cache : nullptr);
        const Matrix logits = model.final_logits(h, h.rows - 1, 1);
        benchmark::DoNotOptimize(logits.data.data());
    }
    state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(kPrefillTokens),
                                                    benchmark::Counter::kIsIterationInvariantRate);
}

class RatioReporter : public benchmark::ConsoleReporter {
  public:
    void ReportRuns(const std::vector<Run>& runs) override {
        for (const Run& run : runs)
            if (run.run_type == Run::RT_Iteration || run.aggregate_name == "mean")
                seconds_[run.run_name.function_name] =
                    run.real_accumulated_time / static_cast<double>(run.iterations);
        ConsoleReporter::ReportRuns(runs);
    }
    // Per-block time = (time - head time) / blocks; speedup = baseline per-block time / per-block time.
    void print_table() const {
        fmt::print("\n{} blocks; per-block times exclude embedding and LM head\n\n", blocks());
        fmt::print("| test | weights | ms/block | vs fp32 | vs bf16 |\n|---|---|---:|---:|---:|\n");
        for (const char* test : {"decode", "prefill128"}) {
            const auto per_block = [&](const std::string& form) {
                const auto t = seconds_.find(fmt::format("{}/{}", test, form));
                const auto h = seconds_.find(fmt::format("{}/head", test));
                if (t == seconds_.end() || h == seconds_.end() || blocks() <= 0) return 0.0;
                return (t->second - h->second) / static_cast<double>(blocks());
            };
            for (const Form& f : forms()) {
                if (f.name == "head") continue;
                const double b = per_block(f.name), fp32 = per_block("fp32"), bf16 = per_block("bf16");
                if (b <= 0) continue;
                fmt::print("| {} | {} | {:.3f} | {:.2f} | {:.2f} |\n", test, f.name, 1e3 * b, fp32 / b,
                           bf16 / b);
            }
        }
    }

  private:
    std::map<std::string, double> seconds_;
};

}  // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    for (const Form& f : forms()) {
        benchmark::RegisterBenchmark(fmt::format("decode/{}", f.name).c_str(), bench_decode, f.spec)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(fmt::format("prefill128/{}", f.name).c_str(), bench_prefill, f.spec)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.print_table();
    benchmark::Shutdown();
    return 0;
}
