#include "tools/compress_options.h"

#include "core/error.h"

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
    app.add_option("--nm", o.nm, "N:M semi-structured pattern, N kept of every M input columns (sparse methods)")
        ->capture_default_str();
    app.add_option("--bits", c.bits, "Bits per weight for rtn/gptq (1-8)")->capture_default_str();
    app.add_option("--group-size", c.group_size, "rtn/gptq: columns per quantization grid (0 = one per row)")
        ->capture_default_str();
    auto* calib = app.add_option("--calib", o.calib_path, "Calibration text file (never the evaluation text)");
    if (calib_required) calib->required();
    calib->check(CLI::ExistingFile);
    app.add_option("--calib-windows", o.calib_windows, "Number of calibration windows")->capture_default_str();
    app.add_option("--calib-seq", o.calib_seq, "Tokens per calibration window (0 = min(2048, model context))")
        ->capture_default_str();
    app.add_option("--seed", o.seed, "Seed of the calibration window sampler")->capture_default_str();
    app.add_flag("--propagate-fp", o.driver.propagate_fp,
                 "Feed each block the FP outputs of the previous block instead of the compressed ones");
    app.add_option("--block-size", c.block_size, "Columns per error-compensation block (beta)")
        ->capture_default_str();
    app.add_option("--percdamp", c.percdamp, "Hessian damping as a fraction of mean(diag H)")->capture_default_str();
    app.add_flag("--no-compensation", o.no_compensation, "Do not carry each block's error into later columns");
    app.add_flag("--measure-uncompensated", c.measure_uncompensated,
                 "Also compress each layer without compensation and report that error (slower)");
    // pbs2p
    app.add_flag("--no-coarse", o.no_coarse, "pbs2p: disable the CFS coarse stage (same N in every block)");
    app.add_option("--importance", o.driver.importance,
                   "pbs2p coarse stage: importance from block cosine similarity: recip (1/cos) | one_minus (1-cos)")
        ->capture_default_str();
    app.add_option("--n-low", o.driver.n_low, "pbs2p coarse stage: lowest N per block (-1 = N-1)")
        ->capture_default_str();
    app.add_option("--n-high", o.driver.n_high, "pbs2p coarse stage: highest N per block (-1 = N+1)")
        ->capture_default_str();
    app.add_option("--fine-metric", c.fine_metric, "pbs2p fine stage score: obs | magnitude | wanda")
        ->capture_default_str();
    app.add_option("--backbone", c.backbone, "pbs2p binarizer: arb | arb-x | arb-rc | salient")
        ->capture_default_str();
    app.add_option("--scale-group", c.scale_group, "pbs2p: columns per (alpha, mu) pair (0 = block size)")
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
    app.add_option("--salient-metric", c.salient_metric, "billm/arb-llm/stbllm salient metric: hessian | magnitude")
        ->capture_default_str();
}

void finalize_compress_options(CompressCliOptions& o) {
    CompressOptions& c = o.driver.layer;
    int n = 0, m = 0;
    char colon = 0;
    std::istringstream in(o.nm);
    PBS2P_CHECK((in >> n >> colon >> m) && colon == ':' && in.eof(),
                "--nm '{}': expected N:M with N kept of every M, e.g. 4:8", o.nm);
    PBS2P_CHECK(m >= 2 && n >= 1 && n < m, "--nm {}: need 1 <= N < M", o.nm);
    c.n_keep = n;
    c.m_group = m;
    c.compensation = !o.no_compensation;
    c.spbo = !o.no_spbo;
    c.cgb = !o.no_cgb;
    o.driver.coarse_stage = !o.no_coarse;
    bool known = false;
    for (const std::string& name : method_names()) known = known || name == c.method;
    PBS2P_CHECK(known, "--method '{}' is not supported; choose one of: {}", c.method, method_list());
    PBS2P_CHECK(o.driver.importance == "recip" || o.driver.importance == "one_minus",
                "--importance '{}': expected recip or one_minus", o.driver.importance);
}

}  // namespace pbs2p::tools
