// `pbs2p bench`: prefill and decode speed of a model (Hugging Face directory or packed file), or of
// LLaMA-shaped synthetic models in fp32, bf16 and packed N:8 form with ratios between them.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/threads.h"
#include "eval/bench.h"
#include "tools/command.h"
#include "tools/model_loading.h"

namespace pbs2p::tools {
namespace {

struct BenchCliOptions {
    std::string model;
    std::string synthetic;       // shape name, e.g. "7b"
    int64_t blocks = -1;         // synthetic fp32/bf16 blocks (-1 = all)
    int64_t packed_blocks = -1;  // synthetic packed blocks (-1 = same as --blocks)
    std::vector<std::string> forms{"fp32", "bf16", "4:8", "5:8", "6:8"};
    int64_t prompt_tokens = 512;
    int64_t gen_tokens = 128;
    int repetitions = 5;
    std::string kernel;
    bool markdown = false;
    bool cpu_time = false;
    bool profile = false;
    std::string embedding_type = "f32", head_type = "f32";  // synthetic tables
    CommonOptions common;
};

void print_progress(const BenchCliOptions& o, const std::string& what) {
    if (!o.common.json) fmt::print(stderr, "bench: {}\n", what);
}

SyntheticModelSpec form_spec(const BenchCliOptions& o, const std::string& form) {
    SyntheticModelSpec spec;
    spec.shape = o.synthetic;
    spec.blocks = o.blocks;
    spec.kernel = o.kernel;
    spec.embedding_type = parse_table_type(o.embedding_type);
    spec.head_type = parse_table_type(o.head_type);
    if (form == "fp32") {
        spec.weights = SyntheticWeights::fp32;
    } else if (form == "bf16") {
        spec.weights = SyntheticWeights::bf16;
    } else {
        int n = 0, m = 0;
        PBS2P_CHECK(std::sscanf(form.c_str(), "%d:%d", &n, &m) == 2 && m == 8 && n >= 1 && n <= 8,
                    "--forms: '{}' is not fp32, bf16 or N:8", form);
        spec.weights = SyntheticWeights::packed;
        spec.n_keep = n;
        if (o.packed_blocks >= 0) spec.blocks = o.packed_blocks;
    }
    return spec;
}

int run(const BenchCliOptions& o) {
    apply_common_options(o.common);
    PBS2P_CHECK(o.model.empty() != o.synthetic.empty(), "bench: give either MODEL or --synthetic SHAPE");
    BenchOptions options;
    options.prompt_tokens = o.prompt_tokens;
    options.gen_tokens = o.gen_tokens;
    options.repetitions = o.repetitions;
    options.profile = o.profile;
    PBS2P_CHECK(!o.profile || o.gen_tokens > 0, "bench: --profile needs decode tokens (-n > 0)");
    const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
    if (!wait_policy && num_threads() > 1 && !o.common.json)
        fmt::print(
            stderr,
            "bench: OMP_WAIT_POLICY is unset; on a machine shared with other jobs, threads spinning at "
            "barriers can stall every parallel region: consider OMP_WAIT_POLICY=passive\n");
    std::vector<BenchResult> results;
    std::vector<FormComparison> comparison;
    int64_t target_blocks = 0;
    if (!o.model.empty()) {
        const Model model = load_model_for_cli(o.model, o.kernel);
        BenchResult r = bench_model(model, options);
        r.model = o.model;
        r.weights = is_packed_model(o.model) ? "packed" : "fp32";
        results.push_back(r);
    } else {
        target_blocks = synthetic_config(o.synthetic).num_layers;
        // Embedding, final norm and LM head alone: the part every form shares, for the extrapolation.
        SyntheticModelSpec head_spec = form_spec(o, "fp32");
        head_spec.blocks = 0;
        print_progress(o, "head only (0 blocks)");
        BenchResult head;
        {
            const Model model = make_synthetic_model(head_spec);
            head = bench_model(model, options);
            head.model = fmt::format("{} synthetic", o.synthetic);
            head.weights = "head only";
        }
        results.push_back(head);
        std::vector<BenchResult> forms;
        for (const std::string& form : o.forms) {
            const SyntheticModelSpec spec = form_spec(o, form);
            print_progress(o, fmt::format("building {} ({} blocks)", synthetic_weights_name(spec),
                                          spec.blocks < 0 ? target_blocks : spec.blocks));
            const Model model = make_synthetic_model(spec);
            print_progress(o, fmt::format("measuring {}", synthetic_weights_name(spec)));
            BenchResult r = bench_model(model, options);
            r.model = head.model;
            r.weights = synthetic_weights_name(spec);
            forms.push_back(r);
            results.push_back(r);
        }
        comparison = compare_forms(forms, head, target_blocks, o.cpu_time);
    }
    if (o.common.json) {
        fmt::print("{}\n", bench_json(results, comparison, target_blocks, o.cpu_time));
        return 0;
    }
    fmt::print("threads {}, OMP_WAIT_POLICY {}, peak RSS {:.1f} MiB\n\n", num_threads(),
               wait_policy ? wait_policy : "(unset)",
               static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0));
    fmt::print("{}", bench_markdown(results));
    if (o.profile) fmt::print("\n{}", profile_markdown(results));
    if (!comparison.empty()) fmt::print("\n{}", comparison_markdown(comparison, target_blocks, o.cpu_time));
    return 0;
}

CommandRegistrar registrar{
    {"bench",
     "Measure prefill and decode speed (tokens/s) of a model or of synthetic fp32/bf16/packed models",
     [](CLI::App& app) {
         auto o = std::make_shared<BenchCliOptions>();
         app.add_option("model", o->model,
                        "Hugging Face model directory or packed model (file or directory)");
         app.add_option("--synthetic", o->synthetic,
                        "Benchmark random-weight models of this shape instead (7b, tiny)");
         app.add_option("--blocks", o->blocks, "Synthetic: blocks per model (default: all of the shape)")
             ->check(CLI::NonNegativeNumber);
         app.add_option("--packed-blocks", o->packed_blocks,
                        "Synthetic: blocks of the packed models (default: --blocks)")
             ->check(CLI::NonNegativeNumber);
         app.add_option("--forms", o->forms, "Synthetic: forms to measure (fp32, bf16, N:8)")
             ->delimiter(',')
             ->capture_default_str();
         app.add_option("-p,--prompt-tokens", o->prompt_tokens, "Prefill test: prompt length (0 = skip)")
             ->capture_default_str()
             ->check(CLI::NonNegativeNumber);
         app.add_option("-n,--gen-tokens", o->gen_tokens,
                        "Decode test: tokens generated one at a time (0 = skip)")
             ->capture_default_str()
             ->check(CLI::NonNegativeNumber);
         app.add_option("-r,--repetitions", o->repetitions,
                        "Repetitions of each test (after one warm-up run)")
             ->capture_default_str()
             ->check(CLI::PositiveNumber);
         app.add_option("--kernel", o->kernel, "Packed kernel (default: the fastest in this build)");
         app.add_flag("--markdown", o->markdown, "Markdown tables (the default output)");
         app.add_flag(
             "--cpu-time", o->cpu_time,
             "Synthetic comparison from process CPU time instead of wall-clock time (steadier on a busy "
             "machine with one thread)");
         app.add_flag("--profile", o->profile,
                      "After the timed runs, one more decode run timed by stage (embedding, projections, "
                      "attention, norms, FFN, activation quantization, LM head)");
         const auto table_types = CLI::IsMember({"f32", "f16", "q8", "q4"});
         app.add_option("--embedding-type", o->embedding_type,
                        "Synthetic: token embedding type (f32 f16 q8 q4)")
             ->capture_default_str()
             ->check(table_types);
         app.add_option("--head-type", o->head_type, "Synthetic: LM head type (f32 f16 q8 q4)")
             ->capture_default_str()
             ->check(table_types);
         add_common_options(app, o->common);
         return std::function<int()>([o] { return run(*o); });
     }}};

}  // namespace
}  // namespace pbs2p::tools
