#include "tools/compress_job.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "compress/calibration.h"
#include "compress/driver.h"
#include "core/atomic_file.h"
#include "core/dir_lock.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/memory.h"
#include "core/progress.h"
#include "eval/text.h"
#include "io/hf_config.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "packed/packed_file.h"
#include "packed/packed_model_dir.h"

namespace pbs2p::tools {

namespace fs = std::filesystem;

namespace {

DType parse_dtype(const std::string& name) {
    if (name == "f32") return DType::f32;
    if (name == "f16") return DType::f16;
    if (name == "bf16") return DType::bf16;
    fail("--dtype '{}': expected f32, f16 or bf16", name);
}

// FNV-1a over everything that determines the result, so a checkpoint is reused only by the same job.
std::string run_fingerprint(const CompressJob& job, const CalibrationSet& calibration) {
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](const void* data, size_t n) {
        const auto* p = static_cast<const uint8_t*>(data);
        for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    };
    nlohmann::json options = compress_options_to_json(job.compress.driver);
    std::string text = options.dump() + "|" + fs::absolute(job.model_dir).string() + "|" + job.dtype;
    for (const auto& entry : fs::directory_iterator(job.model_dir)) {
        if (entry.path().extension() == ".safetensors")
            text += fmt::format("|{}:{}", entry.path().filename().string(), entry.file_size());
    }
    mix(text.data(), text.size());
    mix(calibration.tokens.data(), calibration.tokens.size() * sizeof(int32_t));
    return fmt::format("{:016x}", h);
}

std::string checkpoint_directory_of(const std::string& out_dir) {
    return (fs::path(out_dir) / ".checkpoint").string();
}

// The output folder: created, locked against a second writer, cleared of what a killed run left behind.
struct OutputFolder {
    fs::path dir, checkpoint, staging;
    std::unique_ptr<DirectoryLock> lock;

    OutputFolder(const std::string& out_dir, const std::string& checkpoint_dir)
        : dir(out_dir), checkpoint(checkpoint_dir), staging(dir / ".staging") {
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

// config.json of the compressed directory gains a "quantization_config" (in the spirit of Hugging Face's
// compressed-tensors) saying what the directory holds: method, code, scale group, packed file, true bits.
void add_quantization_config(const fs::path& config_path, const nlohmann::json& report,
                             const DriverOptions& driver, bool packable) {
    nlohmann::json config = read_json_file(config_path.string());
    const CompressOptions& o = driver.layer;
    nlohmann::json q = {{"quant_method", "pbs2p"},
                        {"method", o.method},
                        {"format_version", kPackedFormatVersion},
                        {"storage_bits_per_weight", report.at("storage_bits")},
                        {"weights", "model.safetensors holds the dequantized weights"}};
    if (o.method == "pbs2p" && !driver.code_by_type.empty()) {
        q["code"] = "by tensor type";
        q["recipe"] = recipe_to_string(driver.code_by_type);
    } else if (o.method == "pbs2p" && o.code != "nm") {
        q["code"] = o.code;
        q["scale_group"] = o.scale_group;
    } else if (report.at("layers").size() > 0 &&
               report.at("layers")[0].at("stats").at("m_group").get<int>() > 0) {
        q["code"] = "nm";
        q["nm"] = fmt::format("{}:{}", o.n_keep, o.m_group);
        q["scale_group"] = o.scale_group;
        q["block_keep"] = report.at("block_keep");
    } else {
        q["bits"] = o.bits;
        q["group_size"] = o.group_size;
    }
    if (packable) {
        q["packed_file"] = kPackedModelFileName;
        q["packed_bits_per_weight"] = report.at("packed_bits_per_weight");
        q["packed_bits_per_parameter"] = report.at("packed_bits_per_parameter");
    }
    config["quantization_config"] = q;
    write_file_atomically(config_path.string(), config.dump(2) + "\n");
}

}  // namespace

std::string checkpoint_directory(const CompressJob& job) {
    return checkpoint_directory_of(job.out_dir);
}

nlohmann::json run_compress_job(const CompressJob& requested, const CompressJobProgress& progress) {
    CompressJob job = requested;  // the recipe of --recipe / --bits-budget is resolved on the model below
    const DType dtype = parse_dtype(job.dtype);
    const auto wall_start = std::chrono::steady_clock::now();

    Communicator& communicator = job.communicator ? *job.communicator : single_process_communicator();
    // Cheap checks first: the output folder (the root's alone) and the calibration file, before the model
    // is loaded.
    std::optional<OutputFolder> out_folder;
    if (communicator.is_root()) out_folder.emplace(job.out_dir, checkpoint_directory(job));
    const std::string calib_text = read_text_file(job.compress.calib_path);
    Model model = Model::load(job.model_dir);
    resolve_code_allocation(job.compress, model);
    // Every layer must accept the options before any calibration work starts.
    for (const Linear* linear : model.all_linears()) {
        try {
            validate_options(layer_options_for(job.compress.driver, linear->name), linear->in_features);
        } catch (const Error& e) {
            fail("{}: layer {}: {}", job.model_dir, linear->name, e.what());
        }
    }
    auto tokenizer = load_tokenizer(job.model_dir);
    const std::vector<int32_t> stream = tokenizer->encode(calib_text, true);
    const int64_t seq =
        window_length_or_default(job.compress.calib_seq, model.config().max_position_embeddings);
    const CalibrationSet calibration = sample_calibration(stream, job.compress.calib_windows, seq,
                                                          job.compress.seed, job.compress.calib_path);

    DriverOptions driver = job.compress.driver;
    driver.fingerprint = run_fingerprint(job, calibration);
    const fs::path checkpoint = checkpoint_directory(job);
    if (communicator.is_root()) {
        if (job.no_resume) fs::remove_all(checkpoint);
        fs::create_directories(checkpoint);
        remove_stale_temporaries(checkpoint.string());
    }
    driver.checkpoint_dir = checkpoint.string();
    driver.communicator = &communicator;

    if (job.show_progress)
        fmt::print(stderr, "compressing {} with {} ({} calibration windows of {} tokens{})\n", job.model_dir,
                   driver.layer.method, calibration.windows, calibration.seq,
                   communicator.size() > 1 ? fmt::format(", {} ranks", communicator.size()) : "");
    int total_layers = 0;
    for (int l = 0; l < model.num_blocks(); ++l)
        total_layers += static_cast<int>(model.block_linears(l).size());
    Progress bar("compress", total_layers, job.show_progress);
    std::map<std::string, BinaryLayout> layouts;
    const CompressionReport report =
        compress_model(model, calibration, driver, &layouts, [&](int done, int total, const LayerRecord& r) {
            const std::string status = fmt::format("block {} {} err {:.4f}", r.block,
                                                   r.name.substr(r.name.rfind('.') + 1), r.stats.rel_error);
            bar.update(done, status);
            if (progress) progress(done, total, status);
            throw_if_interrupted(fmt::format("after layer {}", r.name));
        });
    bar.finish();
    if (!communicator.is_root()) return report.to_json();

    // Everything goes to OUT/.staging first; only complete files are moved to their final names.
    const fs::path& staging = out_folder->staging;
    fs::create_directories(staging);
    std::map<std::string, std::string> metadata = {
        {"pbs2p.method", driver.layer.method}, {"pbs2p.options", compress_options_to_json(driver).dump()}};
    model.save(staging.string(), job.model_dir, dtype, metadata);
    const bool packable = !layouts.empty() && layouts.size() == report.layers.size();
    PackSummary packed;
    if (packable) {
        // The packed file is built from the structured layouts; the interchange file is not kept.
        const fs::path layouts_path = staging / kLayoutsFileName;
        write_layouts(layouts_path.string(), layouts);
        const fs::path pack_dir = staging / ".pack";
        packed = pack_model_dir(staging.string(), pack_dir.string(), job.tables.types());
        rename_durably((pack_dir / kPackedModelFileName).string(), (staging / kPackedModelFileName).string());
        fs::remove_all(pack_dir);
        fs::remove(layouts_path);
    }

    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    nlohmann::json out = report.to_json();
    out["model"] = job.model_dir;
    out["options"] = compress_options_to_json(driver);
    out["calibration"] = {{"file", job.compress.calib_path},
                          {"windows", calibration.windows},
                          {"seq", calibration.seq},
                          {"seed", job.compress.seed}};
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
    write_file_atomically((staging / "report.json").string(), out.dump(1) + "\n");
    add_quantization_config(staging / "config.json", out, driver, packable);
    if (interrupt_requested())
        throw Interrupted(fmt::format("interrupted before the outputs were published; every block is kept in {}",
                                      checkpoint.string()));
    out_folder->publish();
    // state.json first: a checkpoint whose block files are half removed must not look resumable.
    fs::remove(checkpoint / "state.json");
    fs::remove_all(checkpoint);
    return out;
}

}  // namespace pbs2p::tools
