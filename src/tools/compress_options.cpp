#include "tools/compress_options.h"

#include <sstream>

#include "compress/allocation.h"
#include "core/error.h"
#include "core/log.h"

namespace pbs2p::tools {

namespace {
std::string method_list() {
    std::string list;
    for (const std::string& name : method_names()) list += (list.empty() ? "" : ", ") + name;
    return list;
}
}  // namespace

void add_compress_options(CLI::App& app, CompressCliOptions& o, bool calib_required) {
    CompressOptions& c = o.driver.layer;
    app.add_option("--method", c.method, "Compression method: " + method_list())->capture_default_str();
    app.add_option(
           "--preset", o.preset,
           "pbs2p: default = variable-N ternary codes allocated by tensor type under " +
               fmt::format("{}", kDefaultBitsBudget) +
               " bits per weight (used unless --nm, --code, --scale-group, --recipe, --bits-budget or "
               "--backbone is given); paper = the paper's PBS2P (fixed N:M, mu +- alpha)")
        ->capture_default_str();
    o.code_options.push_back(app.add_option("--nm", o.nm,
                                            "N:M semi-structured pattern, N kept of every M input columns "
                                            "(sparse methods; for pbs2p it selects the paper's code)")
                                 ->capture_default_str());
    app.add_option("--bits", c.bits, "Bits per weight for rtn/gptq (1-8)")->capture_default_str();
    app.add_option("--group-size", c.group_size, "rtn/gptq: columns per quantization grid (0 = one per row)")
        ->capture_default_str();
    auto* calib =
        app.add_option("--calib", o.calib_path, "Calibration text file (never the evaluation text)");
    if (calib_required) calib->required();
    calib->check(CLI::ExistingFile);
    app.add_option("--calib-windows", o.calib_windows, "Number of calibration windows")
        ->capture_default_str();
    app.add_option("--calib-seq", o.calib_seq, "Tokens per calibration window (0 = min(2048, model context))")
        ->capture_default_str();
    app.add_option("--seed", o.seed, "Seed of the calibration window sampler")->capture_default_str();
    app.add_flag("--propagate-fp", o.driver.propagate_fp,
                 "Feed each block the FP outputs of the previous block instead of the compressed ones");
    app.add_option("--block-size", c.block_size, "Columns per error-compensation block (beta)")
        ->capture_default_str();
    app.add_option("--percdamp", c.percdamp, "Hessian damping as a fraction of mean(diag H)")
        ->capture_default_str();
    app.add_flag("--no-compensation", o.no_compensation,
                 "Do not carry each block's error into later columns");
    app.add_flag("--measure-uncompensated", c.measure_uncompensated,
                 "Also compress each layer without compensation and report that error (slower)");
    // pbs2p
    app.add_flag("--no-coarse", o.no_coarse, "pbs2p: disable the CFS coarse stage (same N in every block)");
    app.add_option(
           "--importance", o.driver.importance,
           "pbs2p coarse stage: importance from block cosine similarity: recip (1/cos) | one_minus (1-cos)")
        ->capture_default_str();
    app.add_option("--n-low", o.driver.n_low, "pbs2p coarse stage: lowest N per block (-1 = N-1)")
        ->capture_default_str();
    app.add_option("--n-high", o.driver.n_high, "pbs2p coarse stage: highest N per block (-1 = N+1)")
        ->capture_default_str();
    app.add_option("--fine-metric", c.fine_metric, "pbs2p fine stage score: obs | magnitude | wanda")
        ->capture_default_str();
    o.code_options.push_back(
        app.add_option("--backbone", c.backbone, "pbs2p binarizer: arb | arb-x | arb-rc | salient")
            ->capture_default_str());
    o.code_options.push_back(
        app.add_option("--scale-group", c.scale_group,
                       "pbs2p: columns per (alpha, mu) pair (0 = block size, -1 = one per row)")
            ->capture_default_str());
    o.code_options.push_back(
        app.add_option("--code", c.code,
                       "pbs2p weight code: nm (fixed N of every M, mu +- alpha) | tern11 | tern13 "
                       "(variable-N ternary "
                       "patterns per 8 columns, 11 or 13 bits, one fp16 alpha per scale group)")
            ->capture_default_str());
    o.code_options.push_back(app.add_flag(
        "--ternary", o.ternary,
        "pbs2p: values in {-alpha, 0, +alpha} with one fp16 alpha per row per 256 columns (--code tern13 "
        "--scale-group 256), exactly llama.cpp's TQ1_0/TQ2_0 shape: `pbs2p export --type tq1_0` runs it "
        "there"));
    o.alpha_passes_option =
        app.add_option("--alpha-passes", c.alpha_passes,
                       "tern codes: 1 = alpha from the weights, k = up to k-1 least-squares re-fits (1..8)")
            ->capture_default_str();
    app.add_flag("--no-hessian-alpha", o.no_hessian_alpha,
                 "tern codes: fit alpha without the 1/U_jj^2 weights");
    o.code_options.push_back(app.add_option(
        "--recipe", o.recipe,
        "pbs2p: code and scale group per tensor type, e.g. v_proj=tern13@-1,*=tern11@256 (-1 = one "
        "alpha per row); overrides --code and --scale-group"));
    o.code_options.push_back(app.add_option(
        "--bits-budget", o.bits_budget,
        "pbs2p: choose the recipe so the decoder linear layers store at most this many bits per weight "
        "(raises tensor types along --ladder in --priority order)"));
    app.add_option("--ladder", o.ladder, "pbs2p --bits-budget: code choices, cheapest first")
        ->capture_default_str();
    app.add_option("--priority", o.priority, "pbs2p --bits-budget: tensor types in the order they are raised")
        ->capture_default_str();
    app.add_flag("--no-spbo", o.no_spbo, "pbs2p: one-shot prune then binarize instead of SPBO");
    app.add_option("--spbo-steps", c.spbo_steps, "pbs2p: SPBO steps tau (0 = M-N)")->capture_default_str();
    app.add_option("--spbo-schedule", c.spbo_schedule, "pbs2p: SPBO schedule: per_group | global")
        ->capture_default_str();
    app.add_option("--spbo-inner-iters", c.spbo_inner_iters, "pbs2p: ARB iterations after each SPBO step")
        ->capture_default_str();
    app.add_flag("--spbo-obs-update,!--no-spbo-obs-update", c.spbo_obs_update,
                 "pbs2p: OBS-update the kept weights for the entries pruned at each SPBO step")
        ->capture_default_str();
    app.add_flag("--spbo-keep-best,!--no-spbo-keep-best", c.spbo_keep_best,
                 "pbs2p: per row and scale group keep the one-shot fit where its error is lower than SPBO's "
                 "(off: SPBO's own path)")
        ->capture_default_str();
    // baselines
    app.add_option("--arb-variant", c.arb_variant, "arb-llm: arb | x | rc")->capture_default_str();
    app.add_flag("--no-cgb", o.no_cgb, "arb-llm: disable the column-group bitmap");
    app.add_option("--salient-metric", c.salient_metric,
                   "billm/arb-llm/stbllm salient metric: hessian | magnitude")
        ->capture_default_str();
}

void parse_nm(const std::string& nm, CompressOptions& options) {
    int n = 0, m = 0;
    char colon = 0;
    std::istringstream in(nm);
    PBS2P_CHECK((in >> n >> colon >> m) && colon == ':' && in.eof(),
                "--nm '{}': expected N:M with N kept of every M, e.g. 4:8", nm);
    PBS2P_CHECK(m >= 2 && n >= 1 && n < m, "--nm {}: need 1 <= N < M", nm);
    options.n_keep = n;
    options.m_group = m;
}

void finalize_compress_options(CompressCliOptions& o, bool use_preset) {
    CompressOptions& c = o.driver.layer;
    parse_nm(o.nm, c);
    // The --no-* flags only turn parts off, so options set by other means (the Python module) stay.
    if (o.no_compensation) c.compensation = false;
    if (o.no_spbo) c.spbo = false;
    if (o.no_cgb) c.cgb = false;
    if (o.no_coarse) o.driver.coarse_stage = false;
    if (o.no_hessian_alpha) c.hessian_weighted_alpha = false;
    if (o.ternary) {
        PBS2P_CHECK(c.method == "pbs2p", "--ternary applies to --method pbs2p, not {}", c.method);
        c.code = "tern13";
        c.scale_group = kTernaryScaleGroup;
    }
    PBS2P_CHECK(o.preset == "default" || o.preset == "paper", "--preset '{}': expected default or paper",
                o.preset);
    bool code_given = false;
    for (const CLI::Option* opt : o.code_options) code_given = code_given || opt->count() > 0;
    if (use_preset && o.preset == "paper") {
        PBS2P_CHECK(o.recipe.empty() && o.bits_budget <= 0.0 && c.code == "nm",
                    "--preset paper is the N:M code; it takes no --code, --recipe or --bits-budget");
    } else if (use_preset && c.method == "pbs2p" && !code_given) {
        o.bits_budget = kDefaultBitsBudget;
        if (o.alpha_passes_option && o.alpha_passes_option->count() == 0) c.alpha_passes = kDefaultAlphaPasses;
    }
    bool known = false;
    for (const std::string& name : method_names()) known = known || name == c.method;
    PBS2P_CHECK(known, "--method '{}' is not supported; choose one of: {}", c.method, method_list());
    PBS2P_CHECK(o.driver.importance == "recip" || o.driver.importance == "one_minus",
                "--importance '{}': expected recip or one_minus", o.driver.importance);
}

void resolve_code_allocation(CompressCliOptions& o, Model& model) {
    PBS2P_CHECK(o.recipe.empty() || o.bits_budget <= 0.0, "--recipe and --bits-budget exclude each other");
    if (o.recipe.empty() && o.bits_budget <= 0.0) return;
    PBS2P_CHECK(o.driver.layer.method == "pbs2p",
                "--recipe and --bits-budget apply to --method pbs2p, not {}", o.driver.layer.method);
    const std::vector<LayerShape> shapes = decoder_layer_shapes(model);
    if (!o.recipe.empty()) {
        o.driver.code_by_type = parse_recipe(o.recipe);
    } else {
        o.driver.code_by_type =
            allocate_codes(shapes, parse_ladder(o.ladder), parse_priority(o.priority), o.bits_budget);
    }
    bool all_tern = true;
    for (const auto& [type, c] : o.driver.code_by_type) all_tern = all_tern && c.code != "nm";
    if (all_tern)
        log_info("recipe {} ({:.4f} bits per weight over the decoder linear layers)",
                 recipe_to_string(o.driver.code_by_type), recipe_bits(shapes, o.driver.code_by_type));
}

}  // namespace pbs2p::tools
