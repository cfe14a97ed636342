// `pbs2p compress MODEL --method M --nm N:M --calib FILE -o OUT`: compresses every decoder linear layer
// and writes OUT/ in Hugging Face layout (dequantized weights), the packed form for binary N:M methods,
// and report.json. Completed blocks are checkpointed in OUT/.checkpoint: rerunning the same command
// after a crash or Ctrl-C resumes and gives byte-identical files.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "compress/calibration.h"
#include "compress/driver.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/progress.h"
#include "eval/text.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "packed/packed_file.h"
#include "packed/packed_model_dir.h"
#include "tools/command.h"
#include "tools/compress_options.h"
#include "tools/table_options.h"

namespace pbs2p::tools {
namespace {

namespace fs = std::filesystem;

struct CompressCommand {
    CommonOptions common;
    CompressCliOptions compress;
    TableTypeOptions tables;
    std::string model_dir;
    std::string out_dir;
    std::string dtype = "f32";
    bool no_resume = false;
};

DType parse_dtype(const std::string& name) {
    if (name == "f32") return DType::f32;
    if (name == "f16") return DType::f16;
    if (name == "bf16") return DType::bf16;
    fail("--dtype '{}': expected f32, f16 or bf16", name);
}

// FNV-1a over everything that determines the result, so a checkpoint is reused only by the same job.
std::string run_fingerprint(const CompressCommand& cmd, const CalibrationSet& calibration) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* data, size_t n) {
        const auto* p = static_cast<const uint8_t*>(data);
        for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    };
    nlohmann::json options = compress_options_to_json(cmd.compress.driver);
    std::string text = options.dump() + "|" + fs::absolute(cmd.model_dir).string() + "|" + cmd.dtype;
    for (const auto& entry : fs::directory_iterator(cmd.model_dir)) {
        if (entry.path().extension() == ".safetensors")
            text += fmt::format("|{}:{}", entry.path().filename().string(), entry.file_size());
    }
    mix(text.data(), text.size());
    mix(calibration.tokens.data(), calibration.tokens.size() * sizeof(int32_t));
    return fmt::format("{:016x}", h);
}

int run(CompressCommand& cmd) {
    apply_common_options(cmd.common);
    finalize_compress_options(cmd.compress);
    const DType dtype = parse_dtype(cmd.dtype);
    const TableTypes table_types = cmd.tables.types();
    const auto wall_start = std::chrono::steady_clock::now();

    Model model = Model::load(cmd.model_dir);
    // Every layer must accept the options before any calibration work starts.
    for (const Linear* linear : model.all_linears()) {
        try {
            validate_options(cmd.compress.driver.layer, linear->in_features);
        } catch (const Error& e) {
            fail("{}: layer {}: {}", cmd.model_dir, linear->name, e.what());
        }
    }
    auto tokenizer = load_tokenizer(cmd.model_dir);
    const std::string calib_text = read_text_file(cmd.compress.calib_path);
    const std::vector<int32_t> stream = tokenizer->encode(calib_text, true);
    const int64_t seq = window_length_or_default(cmd.compress.calib_seq, model.config().max_position_embeddings);
    const CalibrationSet calibration =
        sample_calibration(stream, cmd.compress.calib_windows, seq, cmd.compress.seed, cmd.compress.calib_path);

    fs::create_directories(cmd.out_dir);
    DriverOptions& driver = cmd.compress.driver;
    driver.fingerprint = run_fingerprint(cmd, calibration);
    const fs::path checkpoint = fs::path(cmd.out_dir) / ".checkpoint";
    if (cmd.no_resume) fs::remove_all(checkpoint);
    fs::create_directories(checkpoint);
    driver.checkpoint_dir = checkpoint.string();

    if (!cmd.common.json)
        fmt::print(stderr, "compressing {} with {} ({} calibration windows of {} tokens)\n", cmd.model_dir,
                   driver.layer.method, calibration.windows, calibration.seq);
    int total_layers = 0;
    for (int l = 0; l < model.num_blocks(); ++l) total_layers += static_cast<int>(model.block_linears(l).size());
    Progress bar("compress", total_layers);
    std::map<std::string, BinaryLayout> layouts;
    CompressionReport report;
    try {
        report = compress_model(model, calibration, driver, &layouts, [&](int done, int, const LayerRecord& r) {
            bar.update(done, fmt::format("block {} {} err {:.4f}", r.block, r.name.substr(r.name.rfind('.') + 1),
                                         r.stats.rel_error));
        });
    } catch (const CompressionInterrupted& e) {
        fmt::print(stderr, "\npbs2p: {}; rerun the same command to resume from {}\n", e.what(), checkpoint.string());
        return 3;
    }
    bar.finish();

    std::map<std::string, std::string> metadata = {{"pbs2p.method", driver.layer.method},
                                                   {"pbs2p.options", compress_options_to_json(driver).dump()}};
    model.save(cmd.out_dir, cmd.model_dir, dtype, metadata);
    const bool packable = !layouts.empty() && layouts.size() == report.layers.size();
    PackSummary packed;
    if (packable) {
        // The packed file is built from the structured layouts; the interchange file is not kept.
        const fs::path layouts_path = fs::path(cmd.out_dir) / kLayoutsFileName;
        write_layouts(layouts_path.string(), layouts);
        const fs::path staging = fs::path(cmd.out_dir) / ".pack";
        fs::remove_all(staging);
        packed = pack_model_dir(cmd.out_dir, staging.string(), table_types);
        fs::rename(staging / kPackedModelFileName, fs::path(cmd.out_dir) / kPackedModelFileName);
        fs::remove_all(staging);
        fs::remove(layouts_path);
    }

    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    nlohmann::json out = report.to_json();
    out["model"] = cmd.model_dir;
    out["options"] = compress_options_to_json(driver);
    out["calibration"] = {{"file", cmd.compress.calib_path},
                          {"windows", calibration.windows},
                          {"seq", calibration.seq},
                          {"seed", cmd.compress.seed}};
    out["wall_seconds"] = wall;
    out["peak_rss_bytes"] = peak_rss_bytes();
    out["packed"] = packable;
    if (packable) {
        out["packed_file"] = kPackedModelFileName;
        out["packed_file_bytes"] = packed.file_bytes;
        out["packed_bits_per_weight"] = packed.bits_per_weight();
        out["packed_bits_per_parameter"] = packed.bits_per_parameter();
        out["packed_summary"] = pack_summary_json(packed);
    }
    {
        std::ofstream file(fs::path(cmd.out_dir) / "report.json");
        file << out.dump(1) << "\n";
    }
    fs::remove_all(checkpoint);

    if (cmd.common.json) {
        fmt::print("{}\n", out.dump());
    } else {
        fmt::print("method {}  layers {}  nominal bits {:.3f}  storage bits {:.3f}  wall {:.1f} s  peak RSS {:.0f} MiB\n",
                   report.method, report.layers.size(), report.nominal_bits(), report.storage_bits(), wall,
                   static_cast<double>(peak_rss_bytes()) / (1 << 20));
        if (!report.block_keep.empty() && driver.layer.method == "pbs2p")
            fmt::print("N per block: {}\n", fmt::join(report.block_keep, " "));
        if (packable)
            fmt::print("packed: {}: {}\n", (fs::path(cmd.out_dir) / kPackedModelFileName).string(),
                       pack_summary_line(packed));
        fmt::print("wrote {}\n", cmd.out_dir);
    }
    return 0;
}

CommandRegistrar registrar{
    {"compress", "Compress a model's decoder linear layers (pbs2p or a baseline) with calibration data",
     [](CLI::App& app) {
         auto cmd = std::make_shared<CompressCommand>();
         app.add_option("model", cmd->model_dir, "Hugging Face model directory")->required()->check(CLI::ExistingDirectory);
         app.add_option("-o,--output", cmd->out_dir, "Output directory")->required();
         app.add_option("--dtype", cmd->dtype, "dtype of the dequantized weights written: f32 | f16 | bf16")
             ->capture_default_str();
         app.add_flag("--no-resume", cmd->no_resume, "Ignore a checkpoint left by an interrupted run");
         app.add_option("--stop-after-blocks", cmd->compress.driver.stop_after_blocks,
                        "Stop after this many blocks as if interrupted (exit code 3; for testing resume)")
             ->group("Testing");
         add_compress_options(app, cmd->compress, true);
         add_table_type_options(app, cmd->tables);
         add_common_options(app, cmd->common);
         return std::function<int()>([cmd] { return run(*cmd); });
     }}};

}  // namespace
}  // namespace pbs2p::tools
