// `pbs2p compress MODEL --method M --nm N:M --calib FILE -o OUT`: compresses every decoder linear layer
// and writes OUT/ in Hugging Face layout (dequantized weights, --dequantized), the packed form for binary
// N:M methods, and report.json. Completed blocks are checkpointed in OUT/.checkpoint: rerunning the same
// command after a crash or Ctrl-C resumes and gives byte-identical files. OUT/.lock keeps a second run out;
// outputs are written to OUT/.staging and renamed into place only once all of them are complete.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "compress/distributed.h"
#include "compress/driver.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "tools/command.h"
#include "tools/compress_job.h"
#include "tools/compress_options.h"
#include "tools/table_options.h"

namespace pbs2p::tools {
namespace {

namespace fs = std::filesystem;

struct CompressCommand {
    CommonOptions common;
    CompressJob job;
    std::string max_shard_size = "5GB";
};

// "5GB", "200MB", "1.5GiB", "4096": bytes (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
int64_t parse_byte_size(const std::string& text) {
    static const std::vector<std::pair<std::string, double>> units = {
        {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"KB", 1e3}, {"MB", 1e6},
        {"GB", 1e9},     {"B", 1.0}};
    double scale = 1.0;
    std::string number = text;
    for (const auto& [unit, factor] : units)
        if (number.size() > unit.size() && number.ends_with(unit)) {
            number.resize(number.size() - unit.size());
            scale = factor;
            break;
        }
    size_t used = 0;
    double value = -1.0;
    try {
        value = std::stod(number, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    PBS2P_CHECK(used == number.size() && value * scale >= 1.0 && value * scale < 9e18,
                "--max-shard-size '{}': expected a size such as 5GB, 500MB or 1048576", text);
    return static_cast<int64_t>(value * scale);
}

int run(CompressJob& job, const CommonOptions& common, const std::string& max_shard_size) {
    apply_common_options(common);
    job.max_shard_bytes = parse_byte_size(max_shard_size);
    finalize_compress_options(job.compress);
    // Under mpirun every rank runs this; the root alone prints, logs and writes OUT.
    const std::unique_ptr<Communicator> world = make_world_communicator();
    job.communicator = world.get();
    if (!world->is_root()) set_log_level(LogLevel::quiet);
    job.show_progress = !common.json && world->is_root();
    install_interrupt_handlers();
    nlohmann::json out;
    try {
        out = run_compress_job(job);
        if (!world->is_root()) return 0;
    } catch (const CompressionInterrupted& e) {
        if (!world->is_root()) return 3;
        fmt::print(stderr, "\npbs2p: {}; rerun the same command to resume from {}\n", e.what(),
                   checkpoint_directory(job));
        return 3;
    } catch (const Interrupted& e) {
        fmt::print(stderr, "\npbs2p: {}; completed blocks are kept in {}: rerun the same command to resume\n",
                   e.what(), checkpoint_directory(job));
        if (world->size() > 1) world->abort(kInterruptedExitCode);  // the ranks stopped at different layers
        return kInterruptedExitCode;
    } catch (const std::exception& e) {
        if (world->size() == 1) throw;
        // The other ranks wait for this one: report and end them all.
        fmt::print(stderr, "pbs2p: error (rank {} of {}): {}\n", world->rank(), world->size(), e.what());
        world->abort(1);
        throw;
    }
    if (common.json) {
        fmt::print("{}\n", out.dump());
        return 0;
    }
    fmt::print(
        "method {}  layers {}  nominal bits {:.3f}  storage bits {:.3f}  wall {:.1f} s  peak RSS {:.0f} "
        "MiB\n",
        out.at("method").get<std::string>(), out.at("layers").size(), out.at("nominal_bits").get<double>(),
        out.at("storage_bits").get<double>(), out.at("wall_seconds").get<double>(),
        out.at("peak_rss_bytes").get<double>() / (1 << 20));
    if (!out.at("block_keep").empty() && job.compress.driver.layer.method == "pbs2p")
        fmt::print("N per block: {}\n", fmt::join(out.at("block_keep").get<std::vector<int>>(), " "));
    if (out.at("packed").get<bool>())
        fmt::print(
            "packed: {}: {} ({:.3f} bits per compressed weight, {:.3f} bits per parameter of the "
            "whole file)\n",
            (fs::path(job.out_dir) / out.at("packed_file").get<std::string>()).string(),
            fmt::format("{:.2f} MiB", out.at("packed_file_bytes").get<double>() / (1 << 20)),
            out.at("packed_bits_per_weight").get<double>(),
            out.at("packed_bits_per_parameter").get<double>());
    fmt::print("wrote {}\n", job.out_dir);
    return 0;
}

CommandRegistrar registrar{
    {"compress", "Compress a model's decoder linear layers (pbs2p or a baseline) with calibration data",
     [](CLI::App& app) {
         auto cmd = std::make_shared<CompressCommand>();
         CompressJob& job = cmd->job;
         app.add_option("model", job.model_dir, "Hugging Face model directory")
             ->required()
             ->check(CLI::ExistingDirectory);
         app.add_option("-o,--output", job.out_dir, "Output directory")->required();
         app.add_option("--dequantized,--dtype", job.dtype, kDequantizedHelp)
             ->check(CLI::IsMember({"none", "bf16", "f16", "f32"}))
             ->capture_default_str();
         app.add_option("--max-shard-size", cmd->max_shard_size,
                        "Largest file of the dequantized weights; a larger model is written as shards with "
                        "model.safetensors.index.json")
             ->capture_default_str();
         app.add_flag("--no-resume", job.no_resume, "Ignore a checkpoint left by an interrupted run");
         app.add_option("--stop-after-blocks", job.compress.driver.stop_after_blocks,
                        "Stop after this many blocks as if interrupted (exit code 3; for testing resume)")
             ->group("Testing");
         add_compress_options(app, job.compress, true);
         add_table_type_options(app, job.tables);
         add_common_options(app, cmd->common);
         return std::function<int()>([cmd] { return run(cmd->job, cmd->common, cmd->max_shard_size); });
     }}};

}  // namespace
}  // namespace pbs2p::tools
