#include "eval/bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "core/error.h"
#include "core/half.h"
#include "core/memory.h"
#include "core/rng.h"
#include "core/threads.h"
#include "packed/bf16_linear.h"
#include "packed/packed_model.h"
#include "packed/random_layout.h"
#include "packed/weight_table_kernel.h"

namespace pbs2p {

namespace {

// Wall clock and process CPU time (all threads), in seconds.
struct Clock {
    double wall, cpu;
    static Clock now() {
        timespec ts{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return {std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(),
                static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec)};
    }
    Clock operator-(const Clock& o) const { return {wall - o.wall, cpu - o.cpu}; }
};

std::vector<int32_t> synthetic_tokens(int64_t n, int64_t vocab, uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& id : t) id = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
    return t;
}

// A model without blocks (the head-only part of an extrapolation) has no cache to fill.
KvCache* cache_of(const Model& model, KvCache& cache) {
    return model.num_blocks() > 0 ? &cache : nullptr;
}

// Prompt from an empty cache; logits of the last position only.
Clock time_prefill(const Model& model, const std::vector<int32_t>& prompt) {
    KvCache cache = model.new_cache(static_cast<int64_t>(prompt.size()));
    const Clock t0 = Clock::now();
    const Matrix hidden = model.forward_hidden(prompt, cache_of(model, cache));
    const Matrix logits = model.final_logits(hidden, hidden.rows - 1, 1);
    const Clock t1 = Clock::now();
    PBS2P_CHECK(std::isfinite(logits.data[0]), "bench: prefill produced a non-finite logit");
    return t1 - t0;
}

// Tokens one at a time from an empty cache (the session is built before the clock starts); with a
// profile, the run is recorded by stage.
Clock time_decode(const Model& model, const std::vector<int32_t>& tokens, StageProfile* profile = nullptr) {
    DecodeSession session(model, static_cast<int64_t>(tokens.size()));
    float last = 0.0f;
    std::optional<ProfileSession> recording;
    if (profile) recording.emplace(*profile);
    const Clock t0 = Clock::now();
    for (int32_t id : tokens) last = session.step(id)[0];
    const Clock t1 = Clock::now();
    recording.reset();
    PBS2P_CHECK(std::isfinite(last), "bench: decoding produced a non-finite logit");
    return t1 - t0;
}

template <class Run>
BenchStat repeat(const BenchOptions& o, int64_t tokens, Run&& run) {
    for (int i = 0; i < o.warmup; ++i) run();
    std::vector<double> wall, cpu;
    for (int i = 0; i < o.repetitions; ++i) {
        const Clock c = run();
        wall.push_back(c.wall);
        cpu.push_back(c.cpu);
    }
    return make_stat(wall, tokens, cpu);
}

}  // namespace

BenchStat make_stat(const std::vector<double>& seconds, int64_t tokens,
                    const std::vector<double>& cpu_seconds) {
    BenchStat s;
    if (seconds.empty()) return s;
    for (double c : cpu_seconds) s.cpu_seconds += c / static_cast<double>(cpu_seconds.size());
    for (double sec : seconds) {
        s.tokens_per_s.push_back(static_cast<double>(tokens) / sec);
        s.seconds += sec / static_cast<double>(seconds.size());
    }
    const auto n = static_cast<double>(s.tokens_per_s.size());
    for (double v : s.tokens_per_s) s.mean += v / n;
    if (s.tokens_per_s.size() > 1) {
        double ss = 0;
        for (double v : s.tokens_per_s) ss += (v - s.mean) * (v - s.mean);
        s.stddev = std::sqrt(ss / (n - 1));
    }
    return s;
}

BenchResult bench_model(const Model& model, const BenchOptions& o) {
    PBS2P_CHECK(o.prompt_tokens >= 0 && o.gen_tokens >= 0 && o.repetitions >= 1 && o.warmup >= 0,
                "bench: invalid options (prompt {}, gen {}, repetitions {}, warmup {})", o.prompt_tokens,
                o.gen_tokens, o.repetitions, o.warmup);
    BenchResult r;
    r.blocks = model.num_blocks();
    r.threads = num_threads();
    r.weight_bytes = model.weight_bytes();
    r.rss_bytes = current_rss_bytes();
    r.prompt_tokens = o.prompt_tokens;
    r.gen_tokens = o.gen_tokens;
    const int64_t vocab = model.config().vocab_size;
    if (o.prompt_tokens > 0) {
        const std::vector<int32_t> prompt = synthetic_tokens(o.prompt_tokens, vocab, o.seed);
        r.prefill = repeat(o, o.prompt_tokens, [&] { return time_prefill(model, prompt); });
    }
    if (o.gen_tokens > 0) {
        const std::vector<int32_t> tokens = synthetic_tokens(o.gen_tokens, vocab, o.seed + 1);
        r.decode = repeat(o, o.gen_tokens, [&] { return time_decode(model, tokens); });
        if (o.profile) {
            const Clock c = time_decode(model, tokens, &r.profile);
            r.profile_wall_seconds = c.wall;
            r.profile_cpu_seconds = c.cpu;
            r.profile_tokens = o.gen_tokens;
        }
    }
    return r;
}

// ---- synthetic models --------------------------------------------------------------------------------

ModelConfig synthetic_config(const std::string& shape) {
    ModelConfig c;
    c.architecture = "LlamaForCausalLM";
    c.model_type = "llama";
    c.family = ModelFamily::llama;
    if (shape == "7b") {
        c.vocab_size = 32000;
        c.hidden_size = 4096;
        c.intermediate_size = 11008;
        c.num_layers = 32;
        c.num_heads = c.num_kv_heads = 32;
        c.max_position_embeddings = 4096;
    } else if (shape == "tiny") {
        c.vocab_size = 256;
        c.hidden_size = 128;
        c.intermediate_size = 320;
        c.num_layers = 2;
        c.num_heads = c.num_kv_heads = 4;
        c.max_position_embeddings = 512;
    } else {
        fail("synthetic model: unknown shape '{}' (available: 7b, tiny)", shape);
    }
    c.head_dim = c.hidden_size / c.num_heads;
    c.embed_dim = c.hidden_size;
    c.norm = NormKind::rms;
    c.norm_eps = 1e-6;
    c.activation = Activation::silu;
    c.gated_mlp = true;
    c.use_rope = true;
    c.rope_theta = 10000.0;
    c.bos_token_id = 1;
    c.eos_token_id = 2;
    c.torch_dtype = "float32";
    return c;
}

namespace {

// Uniform in [-scale, scale), rows filled in parallel from per-row seeds (deterministic for any thread
// count).
void fill_uniform(float* data, int64_t rows, int64_t cols, float scale, uint64_t seed) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
        Rng rng(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i));
        float* row = data + i * cols;
        for (int64_t j = 0; j < cols; j += 2) {
            const uint64_t bits = rng.next_u64();
            row[j] = scale * static_cast<float>(static_cast<int32_t>(bits)) * 0x1.0p-31f;
            if (j + 1 < cols)
                row[j + 1] = scale * static_cast<float>(static_cast<int32_t>(bits >> 32)) * 0x1.0p-31f;
        }
    }
}

Matrix random_matrix(int64_t rows, int64_t cols, float scale, uint64_t seed) {
    Matrix m(rows, cols);
    fill_uniform(m.ptr(), rows, cols, scale, seed);
    return m;
}

// A random table in `type`: an fp32 matrix, or encoded into a table kernel.
Embedding random_table(const std::string& name, int64_t rows, int64_t cols, float scale, uint64_t seed,
                       TableType type) {
    Embedding e{name, random_matrix(rows, cols, scale, seed), nullptr};
    if (type != TableType::f32) {
        e.table = std::make_shared<WeightTableKernel>(encode_table(e.weight.ptr(), rows, cols, type, name));
        e.weight = Matrix();
    }
    return e;
}

Linear synthetic_linear(const std::string& name, int64_t out, int64_t in, const SyntheticModelSpec& spec,
                        const PackedKernel* packed, uint64_t seed) {
    Linear l;
    l.name = name;
    l.in_features = in;
    l.out_features = out;
    // Uniform with variance 1/in keeps activations of order one through the blocks.
    const float scale = std::sqrt(3.0f / static_cast<float>(in));
    switch (spec.weights) {
        case SyntheticWeights::fp32:
            l.weight = random_matrix(out, in, scale, seed);
            break;
        case SyntheticWeights::bf16: {
            const Matrix w = random_matrix(out, in, scale, seed);
            l.kernel = std::make_shared<Bf16LinearKernel>(Bf16LinearKernel::from_f32(w.ptr(), out, in));
            break;
        }
        case SyntheticWeights::packed:
            l.kernel = std::make_shared<PackedLinearKernel>(
                random_packed_layer(out, in, spec.n_keep, in, seed), *packed);
            break;
    }
    return l;
}

Norm unit_norm(const std::string& name, const ModelConfig& c) {
    Norm n;
    n.name = name;
    n.kind = c.norm;
    n.eps = static_cast<float>(c.norm_eps);
    n.weight.assign(static_cast<size_t>(c.hidden_size), 1.0f);
    return n;
}

}  // namespace

std::string synthetic_weights_name(const SyntheticModelSpec& spec) {
    switch (spec.weights) {
        case SyntheticWeights::fp32:
            return "fp32";
        case SyntheticWeights::bf16:
            return "bf16";
        case SyntheticWeights::packed: {
            const PackedKernel& k =
                spec.kernel.empty() ? fastest_packed_kernel() : packed_kernel(spec.kernel);
            return fmt::format("packed {}:8 ({})", spec.n_keep, k.name);
        }
    }
    return "?";
}

Model make_synthetic_model(const SyntheticModelSpec& spec) {
    ModelConfig c = synthetic_config(spec.shape);
    const int64_t blocks = spec.blocks < 0 ? c.num_layers : spec.blocks;
    PBS2P_CHECK(blocks >= 0 && blocks <= 1024, "synthetic model: invalid block count {}", blocks);
    c.num_layers = blocks;
    const PackedKernel* packed = nullptr;
    if (spec.weights == SyntheticWeights::packed) {
        PBS2P_CHECK(spec.n_keep >= 1 && spec.n_keep <= 8, "synthetic model: invalid N:8 with N = {}",
                    spec.n_keep);
        packed = spec.kernel.empty() ? &fastest_packed_kernel() : &packed_kernel(spec.kernel);
    }
    const int64_t H = c.hidden_size, F = c.intermediate_size;
    Model::Parts parts;
    parts.token_embedding =
        random_table("model.embed_tokens.weight", c.vocab_size, H, 1.0f, spec.seed, spec.embedding_type);
    parts.lm_head =
        random_table("lm_head.weight", c.vocab_size, H, std::sqrt(3.0f / H), spec.seed + 1, spec.head_type);
    parts.final_norm = unit_norm("model.norm", c);
    uint64_t seed = spec.seed * 1000 + 17;
    for (int64_t b = 0; b < blocks; ++b) {
        const std::string p = fmt::format("model.layers.{}.", b);
        Block blk;
        blk.attn_norm = unit_norm(p + "input_layernorm", c);
        blk.mlp_norm = unit_norm(p + "post_attention_layernorm", c);
        blk.q = synthetic_linear(p + "self_attn.q_proj", c.q_dim(), H, spec, packed, seed++);
        blk.k = synthetic_linear(p + "self_attn.k_proj", c.kv_dim(), H, spec, packed, seed++);
        blk.v = synthetic_linear(p + "self_attn.v_proj", c.kv_dim(), H, spec, packed, seed++);
        blk.o = synthetic_linear(p + "self_attn.o_proj", H, c.q_dim(), spec, packed, seed++);
        blk.gate = synthetic_linear(p + "mlp.gate_proj", F, H, spec, packed, seed++);
        blk.up = synthetic_linear(p + "mlp.up_proj", F, H, spec, packed, seed++);
        blk.down = synthetic_linear(p + "mlp.down_proj", H, F, spec, packed, seed++);
        parts.blocks.push_back(std::move(blk));
    }
    return Model::from_parts(c, std::move(parts));
}

Extrapolated extrapolate_blocks(const BenchStat& measured, int64_t blocks_measured,
                                const BenchStat& head_only, int64_t tokens, int64_t target_blocks,
                                bool cpu_time) {
    Extrapolated e;
    if (!measured.measured() || !head_only.measured() || blocks_measured <= 0 || tokens <= 0) return e;
    const double t = cpu_time ? measured.cpu_seconds : measured.seconds;
    const double head = cpu_time ? head_only.cpu_seconds : head_only.seconds;
    e.block_seconds = std::max(0.0, t - head) / static_cast<double>(blocks_measured);
    const double total = head + static_cast<double>(target_blocks) * e.block_seconds;
    e.tokens_per_s = total > 0 ? static_cast<double>(tokens) / total : 0.0;
    return e;
}

std::vector<FormComparison> compare_forms(const std::vector<BenchResult>& forms, const BenchResult& head_only,
                                          int64_t target_blocks, bool cpu_time) {
    std::vector<FormComparison> rows;
    for (const BenchResult& r : forms) {
        FormComparison f;
        f.weights = r.weights;
        f.blocks_measured = r.blocks;
        f.prefill = extrapolate_blocks(r.prefill, r.blocks, head_only.prefill, r.prompt_tokens, target_blocks,
                                       cpu_time);
        f.decode =
            extrapolate_blocks(r.decode, r.blocks, head_only.decode, r.gen_tokens, target_blocks, cpu_time);
        rows.push_back(f);
    }
    auto ratio = [](double a, double b) { return a > 0 && b > 0 ? a / b : 0.0; };
    for (const char* base_name : {"fp32", "bf16"}) {
        const auto base = std::find_if(rows.begin(), rows.end(),
                                       [&](const FormComparison& f) { return f.weights == base_name; });
        if (base == rows.end()) continue;
        const FormComparison b = *base;
        for (FormComparison& f : rows) {
            const double pp = ratio(f.prefill.tokens_per_s, b.prefill.tokens_per_s);
            const double tg = ratio(f.decode.tokens_per_s, b.decode.tokens_per_s);
            const double pp_block = ratio(b.prefill.block_seconds, f.prefill.block_seconds);
            const double tg_block = ratio(b.decode.block_seconds, f.decode.block_seconds);
            if (std::string(base_name) == "fp32") {
                f.prefill_vs_fp32 = pp, f.decode_vs_fp32 = tg, f.prefill_block_vs_fp32 = pp_block,
                f.decode_block_vs_fp32 = tg_block;
            } else {
                f.prefill_vs_bf16 = pp, f.decode_vs_bf16 = tg, f.prefill_block_vs_bf16 = pp_block,
                f.decode_block_vs_bf16 = tg_block;
            }
        }
    }
    return rows;
}

// ---- reports -----------------------------------------------------------------------------------------

namespace {

std::string mib(int64_t bytes) {
    return fmt::format("{:.1f}", static_cast<double>(bytes) / (1024.0 * 1024.0));
}
std::string ratio_cell(double r) {
    return r > 0 ? fmt::format("{:.2f}", r) : "-";
}

nlohmann::json stat_json(const BenchStat& s, int64_t tokens) {
    return {{"tokens", tokens},
            {"tokens_per_s", s.mean},
            {"stddev", s.stddev},
            {"seconds", s.seconds},
            {"cpu_seconds", s.cpu_seconds},
            {"tokens_per_cpu_s", s.cpu_tokens_per_s(tokens)},
            {"samples", s.tokens_per_s}};
}

}  // namespace

std::string bench_markdown(const std::vector<BenchResult>& results) {
    std::string out =
        "| model | weights | blocks | threads | weights MiB | RSS MiB | test | t/s | t/CPU-s |\n"
        "|---|---|---:|---:|---:|---:|---|---:|---:|\n";
    for (const BenchResult& r : results) {
        const auto row = [&](const std::string& test, const BenchStat& s, int64_t tokens) {
            out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {:.2f} ± {:.2f} | {:.2f} |\n", r.model,
                               r.weights, r.blocks, r.threads, mib(r.weight_bytes), mib(r.rss_bytes), test,
                               s.mean, s.stddev, s.cpu_tokens_per_s(tokens));
        };
        if (r.prefill.measured()) row(fmt::format("pp{}", r.prompt_tokens), r.prefill, r.prompt_tokens);
        if (r.decode.measured()) row(fmt::format("tg{}", r.gen_tokens), r.decode, r.gen_tokens);
    }
    return out;
}

std::string profile_markdown(const std::vector<BenchResult>& results) {
    std::string out;
    const auto table = [&](const char* title, StageProfile::PerStage StageProfile::*stages,
                           double BenchResult::*measured) {
        out += fmt::format(
            "{} per token by stage (ms; one profiled run of tg tokens after the timed runs):\n\n", title);
        out += "| weights | blocks |";
        std::string rule = "|---|---:|";
        for (const char* name : kStageNames) out += fmt::format(" {} |", name), rule += "---:|";
        out += " stages sum | measured |\n" + rule + "---:|---:|\n";
        for (const BenchResult& r : results) {
            if (r.profile_tokens <= 0) continue;
            const double per = 1e3 / static_cast<double>(r.profile_tokens);
            out += fmt::format("| {} | {} |", r.weights, r.blocks);
            for (double s : r.profile.*stages) out += fmt::format(" {:.3f} |", s * per);
            out += fmt::format(" {:.3f} | {:.3f} |\n", StageProfile::sum(r.profile.*stages) * per,
                               r.*measured * per);
        }
    };
    table("Decode wall time", &StageProfile::seconds, &BenchResult::profile_wall_seconds);
    out += "\n";
    table("Decode CPU time of the calling thread (measured: process CPU time)", &StageProfile::cpu_seconds,
          &BenchResult::profile_cpu_seconds);
    return out;
}

std::string comparison_markdown(const std::vector<FormComparison>& rows, int64_t target_blocks,
                                bool cpu_time) {
    std::string out = fmt::format(
        "Extrapolated to {} blocks from {} time: t = t(0 blocks) + {} x per-block time (measured blocks in "
        "column "
        "2).\n\n"
        "| weights | blocks measured | pp ms/block | tg ms/block | pp t/s @{} | tg t/s @{} | pp vs fp32 | tg "
        "vs fp32 "
        "| pp vs bf16 | tg vs bf16 | tg block vs fp32 | tg block vs bf16 |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        target_blocks, cpu_time ? "process CPU" : "wall-clock", target_blocks, target_blocks, target_blocks);
    for (const FormComparison& f : rows)
        out += fmt::format("| {} | {} | {:.2f} | {:.3f} | {:.2f} | {:.3f} | {} | {} | {} | {} | {} | {} |\n",
                           f.weights, f.blocks_measured, 1e3 * f.prefill.block_seconds,
                           1e3 * f.decode.block_seconds, f.prefill.tokens_per_s, f.decode.tokens_per_s,
                           ratio_cell(f.prefill_vs_fp32), ratio_cell(f.decode_vs_fp32),
                           ratio_cell(f.prefill_vs_bf16), ratio_cell(f.decode_vs_bf16),
                           ratio_cell(f.decode_block_vs_fp32), ratio_cell(f.decode_block_vs_bf16));
    return out;
}

std::string bench_json(const std::vector<BenchResult>& results, const std::vector<FormComparison>& comparison,
                       int64_t target_blocks, bool cpu_time) {
    nlohmann::json j;
    j["results"] = nlohmann::json::array();
    for (const BenchResult& r : results) {
        nlohmann::json e{
            {"model", r.model},     {"weights", r.weights},           {"blocks", r.blocks},
            {"threads", r.threads}, {"weight_bytes", r.weight_bytes}, {"rss_bytes", r.rss_bytes}};
        if (r.prefill.measured()) e["prefill"] = stat_json(r.prefill, r.prompt_tokens);
        if (r.decode.measured()) e["decode"] = stat_json(r.decode, r.gen_tokens);
        if (r.profile_tokens > 0) {
            const double per = 1e3 / static_cast<double>(r.profile_tokens);
            nlohmann::json wall, cpu;
            for (size_t s = 0; s < kStageNames.size(); ++s) {
                wall[kStageNames[s]] = per * r.profile.seconds[s];
                cpu[kStageNames[s]] = per * r.profile.cpu_seconds[s];
            }
            e["decode_profile_ms_per_token"] = {{"tokens", r.profile_tokens},
                                                {"wall", wall},
                                                {"wall_sum", per * r.profile.total()},
                                                {"wall_measured", per * r.profile_wall_seconds},
                                                {"thread_cpu", cpu},
                                                {"thread_cpu_sum", per * r.profile.cpu_total()},
                                                {"process_cpu_measured", per * r.profile_cpu_seconds}};
        }
        j["results"].push_back(e);
    }
    if (!comparison.empty()) {
        nlohmann::json forms = nlohmann::json::array();
        for (const FormComparison& f : comparison)
            forms.push_back({{"weights", f.weights},
                             {"blocks_measured", f.blocks_measured},
                             {"prefill_block_seconds", f.prefill.block_seconds},
                             {"decode_block_seconds", f.decode.block_seconds},
                             {"prefill_tokens_per_s", f.prefill.tokens_per_s},
                             {"decode_tokens_per_s", f.decode.tokens_per_s},
                             {"prefill_vs_fp32", f.prefill_vs_fp32},
                             {"decode_vs_fp32", f.decode_vs_fp32},
                             {"prefill_vs_bf16", f.prefill_vs_bf16},
                             {"decode_vs_bf16", f.decode_vs_bf16},
                             {"prefill_block_vs_fp32", f.prefill_block_vs_fp32},
                             {"decode_block_vs_fp32", f.decode_block_vs_fp32},
                             {"prefill_block_vs_bf16", f.prefill_block_vs_bf16},
                             {"decode_block_vs_bf16", f.decode_block_vs_bf16}});
        j["comparison"] = {
            {"target_blocks", target_blocks}, {"clock", cpu_time ? "process_cpu" : "wall"}, {"forms", forms}};
    }
    return j.dump(2);
}

}  // namespace pbs2p
