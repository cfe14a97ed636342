// `pbs2p compress MODEL --method M --nm N:M --calib FILE -o OUT`: compresses every decoder linear layer
// and writes OUT/ in Hugging Face layout (dequantized weights), the packed form for binary N:M methods,
// and report.json. Completed blocks are checkpointed in OUT/.checkpoint: rerunning the same command
// after a crash or Ctrl-C resumes and gives byte-identical files. OUT/.lock keeps a second run out; outputs
// are written to OUT/.staging and renamed into place only once all of them are complete.
#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "compress/calibration.h"
#include "compress/driver.h"
#include "core/atomic_file.h"
#include "core/dir_lock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/memory.h"
#include "core/progress.h"
#include "eval/text.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "packed/packed_file.h"
#include "packed/packed_model_dir.h"
#include "tools/command.h"
#include "tools/compress_options.h"

namespace pbs2p::tools {
namespace {

namespace fs = std::filesystem;

struct CompressCommand {
    CommonOptions common;
    CompressCliOptions compress;
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

// The output folder: created, locked against a second writer, cleared of what a killed run left behind.
struct OutputFolder {
    fs::path dir, checkpoint, staging;
    std::unique_ptr<DirectoryLock> lock;

    explicit OutputFolder(const std::string& out_dir)
        : dir(out_dir), checkpoint(dir / ".checkpoint"), staging(dir / ".staging") {
        std::error_code ec;
        fs::create_directories(dir, ec);
        PBS2P_CHECK(!ec && fs::is_directory(dir), "{}: cannot create the output folder: {}", out_dir,
                    ec ? ec.message() : "a file of that name exists");
        lock = std::make_unique<DirectoryLock>(out_dir, "pbs2p compress");
        remove_stale_temporaries(dir.string());
        fs::remove_all(staging, ec);
        PBS2P_CHECK(!ec, "{}: cannot clear {}: {}", out_dir, staging.string(), ec.message());
    }
    // Whatever was staged but not published (a full disk, an error, an interrupt) is freed; the checkpoint
    // and the outputs of an earlier run stay.
    ~OutputFolder() {
        std::error_code ec;
        fs::remove_all(staging, ec);
    }

    // Moves every finished file from the staging folder onto its final name (renames only: nothing can fail
    // for lack of space once the files are written).
    void publish() const {
        std::vector<fs::path> files;
        for (const auto& entry : fs::directory_iterator(staging))
            if (entry.is_regular_file()) files.push_back(entry.path());
        for (const fs::path& file : files) rename_durably(file.string(), (dir / file.filename()).string());
    }
};

// Everything a run writes goes to OUT/.staging first; only complete files are moved to their final names.
PackSummary write_outputs(const CompressCommand& cmd, const OutputFolder& out, const Model& model,
                          DType dtype, const std::map<std::string, BinaryLayout>& layouts,
                          const DriverOptions& driver, bool packable) {
    fs::create_directories(out.staging);
    std::map<std::string, std::string> metadata = {
        {"pbs2p.method", driver.layer.method}, {"pbs2p.options", compress_options_to_json(driver).dump()}};
    model.save(out.staging.string(), cmd.model_dir, dtype, metadata);
    PackSummary packed;
    if (packable) {
        // The packed file is built from the structured layouts; the interchange file is not kept.
        const fs::path layouts_path = out.staging / kLayoutsFileName;
        write_layouts(layouts_path.string(), layouts);
        const fs::path pack_dir = out.staging / ".pack";
        packed = pack_model_dir(out.staging.string(), pack_dir.string());
        rename_durably((pack_dir / kPackedModelFileName).string(),
                       (out.staging / kPackedModelFileName).string());
        fs::remove_all(pack_dir);
        fs::remove(layouts_path);
    }
    return packed;
}

int run(CompressCommand& cmd) {
    apply_common_options(cmd.common);
    finalize_compress_options(cmd.compress);
    const DType dtype = parse_dtype(cmd.dtype);
    const auto wall_start = std::chrono::steady_clock::now();
    install_interrupt_handlers();

    // Cheap checks first: the output folder and the calibration file, before the model is loaded.
    OutputFolder out(cmd.out_dir);
    const std::string calib_text = read_text_file(cmd.compress.calib_path);
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
    const std::vector<int32_t> stream = tokenizer->encode(calib_text, true);
    const int64_t seq = window_length_or_default(cmd.compress.calib_seq, model.config().max_position_embeddings);
    const CalibrationSet calibration =
        sample_calibration(stream, cmd.compress.calib_windows, seq, cmd.compress.seed, cmd.compress.calib_path);

    DriverOptions& driver = cmd.compress.driver;
    driver.fingerprint = run_fingerprint(cmd, calibration);
    if (cmd.no_resume) fs::remove_all(out.checkpoint);
    fs::create_directories(out.checkpoint);
    remove_stale_temporaries(out.checkpoint.string());
    driver.checkpoint_dir = out.checkpoint.string();

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
            throw_if_interrupted(fmt::format("after layer {}", r.name));
        });
    } catch (const CompressionInterrupted& e) {
        fmt::print(stderr, "\npbs2p: {}; rerun the same command to resume from {}\n", e.what(),
                   out.checkpoint.string());
        return 3;
    } catch (const Interrupted& e) {
        fmt::print(stderr, "\npbs2p: {}; completed blocks are kept in {}: rerun the same command to resume\n",
                   e.what(), out.checkpoint.string());
        return kInterruptedExitCode;
    }
    bar.finish();

    const bool packable = !layouts.empty() && layouts.size() == report.layers.size();
    const PackSummary packed = write_outputs(cmd, out, model, dtype, layouts, driver, packable);

    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    nlohmann::json summary = report.to_json();
    summary["model"] = cmd.model_dir;
    summary["options"] = compress_options_to_json(driver);
    summary["calibration"] = {{"file", cmd.compress.calib_path},
                              {"windows", calibration.windows},
                              {"seq", calibration.seq},
                              {"seed", cmd.compress.seed}};
    summary["wall_seconds"] = wall;
    summary["peak_rss_bytes"] = peak_rss_bytes();
    summary["packed"] = packable;
    if (packable) {
        summary["packed_file"] = kPackedModelFileName;
        summary["packed_file_bytes"] = packed.file_bytes;
        summary["packed_bits_per_weight"] = packed.bits_per_weight();
    }
    write_file_atomically((out.staging / "report.json").string(), summary.dump(1) + "\n");
    if (interrupt_requested()) {
        fmt::print(stderr,
                   "\npbs2p: interrupted before the outputs were published; every block is kept in {}: "
                   "rerun the same command to finish\n",
                   out.checkpoint.string());
        return kInterruptedExitCode;
    }
    out.publish();
    // state.json first: a checkpoint whose block files are half removed must not look resumable.
    fs::remove(out.checkpoint / "state.json");
    fs::remove_all(out.checkpoint);

    if (cmd.common.json) {
        fmt::print("{}\n", summary.dump());
    } else {
        fmt::print("method {}  layers {}  nominal bits {:.3f}  storage bits {:.3f}  wall {:.1f} s  peak RSS {:.0f} MiB\n",
                   report.method, report.layers.size(), report.nominal_bits(), report.storage_bits(), wall,
                   static_cast<double>(peak_rss_bytes()) / (1 << 20));
        if (!report.block_keep.empty() && driver.layer.method == "pbs2p")
            fmt::print("N per block: {}\n", fmt::join(report.block_keep, " "));
        if (packable)
            fmt::print("packed: {} ({:.2f} MiB, {:.3f} bits per compressed weight, everything counted)\n",
                       (out.dir / kPackedModelFileName).string(),
                       static_cast<double>(packed.file_bytes) / (1 << 20), packed.bits_per_weight());
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
         add_common_options(app, cmd->common);
         return std::function<int()>([cmd] { return run(*cmd); });
     }}};

}  // namespace
}  // namespace pbs2p::tools
