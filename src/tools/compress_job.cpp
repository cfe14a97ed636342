#include "tools/compress_job.h"

#include <fmt/format.h>
#include <malloc.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "compress/calibration.h"
#include "compress/driver.h"
#include "compress/methods.h"
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
#include "tools/dequantized_writer.h"

namespace pbs2p::tools {

namespace fs = std::filesystem;

namespace {

// The dtype of the dequantized weights; nullopt for none.
std::optional<DType> parse_dequantized(const std::string& name) {
    if (name == "none") return std::nullopt;
    if (name == "f32") return DType::f32;
    if (name == "f16") return DType::f16;
    if (name == "bf16") return DType::bf16;
    fail("--dequantized '{}': expected none, bf16, f16 or f32", name);
}

// Whether a layer compressed with `o` has a packed form: a binary layout whose code the format stores
// (N:M with M dividing 8, or a ternary codebook code).
bool packable_layer(const CompressOptions& o) {
    return produces_layout(o) && (o.code != "nm" || (o.m_group > 0 && kPackedGroup % o.m_group == 0));
}

// Short name of a layer for the progress line ("q_proj").
std::string short_name(const std::string& layer) {
    return layer.substr(layer.rfind('.') + 1);
}

std::string phase_summary(const BlockTimes& t) {
    std::string out;
    for (int p = 0; p < kBlockPhases; ++p) {
        const double s = t.seconds[static_cast<size_t>(p)];
        if (s < 0.05) continue;
        out += fmt::format("{}{} {}", out.empty() ? "" : ", ", block_phase_name(static_cast<BlockPhase>(p)),
                           format_duration(s));
    }
    return out;
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
                             const DriverOptions& driver, bool packable,
                             const std::string& dequantized_file) {
    nlohmann::json config = read_json_file(config_path.string());
    const CompressOptions& o = driver.layer;
    nlohmann::json q = {
        {"quant_method", "pbs2p"},
        {"method", o.method},
        {"format_version", kPackedFormatVersion},
        {"storage_bits_per_weight", report.at("storage_bits")},
        {"weights", dequantized_file.empty() ? std::string("no dequantized weights: the packed file only")
                                             : dequantized_file + " holds the dequantized weights"}};
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

const char* const kDequantizedHelp =
    "dequantized weights written beside the packed file: f32 (default: the packed model's weights exactly; 4 "
    "bytes per parameter, 27 GB for a 7B model), bf16 or f16 (2 bytes per parameter, 13.5 GB for 7B; "
    "rounded), "
    "none (only the packed file, config, tokenizer and report.json; binary methods only)";

nlohmann::json run_compress_job(const CompressJob& requested, const CompressJobProgress& progress) {
    CompressJob job = requested;  // the recipe of --recipe / --bits-budget is resolved on the model below
    const std::optional<DType> dtype = parse_dequantized(job.dtype);
    const auto wall_start = std::chrono::steady_clock::now();

    Communicator& communicator = job.communicator ? *job.communicator : single_process_communicator();
    // Cheap checks first: the output folder (the root's alone) and the calibration file, before the model
    // is loaded.
    std::optional<OutputFolder> out_folder;
    if (communicator.is_root()) out_folder.emplace(job.out_dir, checkpoint_directory(job));
    const std::string calib_text = read_text_file(job.compress.calib_path);
    Model model = Model::load_lazy(job.model_dir);  // blocks are read one at a time by the driver
    resolve_code_allocation(job.compress, model);
    // Every layer must accept the options before any calibration work starts.
    bool all_packable = true;
    for (const Linear* linear : model.all_linears()) {
        const CompressOptions options = layer_options_for(job.compress.driver, linear->name);
        try {
            validate_options(options, linear->in_features);
        } catch (const Error& e) {
            fail("{}: layer {}: {}", job.model_dir, linear->name, e.what());
        }
        all_packable = all_packable && packable_layer(options);
        PBS2P_CHECK(dtype || packable_layer(options),
                    "--dequantized none: {} has no packed form (layer {}); write bf16 or f32 weights instead",
                    options.method == "pbs2p" ? "pbs2p with backbone " + options.backbone
                                              : "method " + options.method,
                    linear->name);
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

    // Only the root writes outputs. Everything goes to OUT/.staging first (the dequantized shards as their
    // blocks finish); only complete files are moved to their final names.
    const bool root = communicator.is_root();
    const fs::path staging = root ? out_folder->staging : fs::path();
    if (root) fs::create_directories(staging);
    std::map<std::string, std::string> metadata = {
        {"format", "pt"},
        {"pbs2p.method", driver.layer.method},
        {"pbs2p.options", compress_options_to_json(driver).dump()}};
    std::unique_ptr<DequantizedWriter> dequantized;
    if (root && dtype)
        dequantized = std::make_unique<DequantizedWriter>(model, staging.string(), *dtype,
                                                          job.max_shard_bytes, metadata);
    // Each finished block's layouts are encoded at once: held packed, all blocks cost about the packed file.
    std::map<std::string, PackedLayer> packed_layers;
    bool packable = all_packable;

    const int blocks = model.num_blocks();
    BlockProgress coarse_bar("coarse stage (FP forward)", blocks, job.show_progress);
    BlockProgress bar("compress", blocks, job.show_progress);
    int layer_in_block = 0;
    int coarse_block = -1;  // block of the coarse stage's pass in progress
    DriverHooks hooks;
    hooks.phase = [&](int block, BlockPhase phase) {
        if (coarse_block >= 0) coarse_bar.block_done(coarse_block, true);
        if (phase == BlockPhase::coarse_stage) {
            coarse_block = block;
            coarse_bar.phase(block, "forward");
            return;
        }
        if (coarse_block >= 0) coarse_bar.finish();
        coarse_block = -1;
        layer_in_block = 0;
        bar.phase(block, block_phase_name(phase));
    };
    // The other ranks drop their copies of the layouts.
    if (root)
        hooks.block_done = [&](int block, std::map<std::string, BinaryLayout>& layouts) {
            for (const Linear* linear : model.block_linears(block)) {
                if (!packable) break;
                auto it = layouts.find(linear->name);
                if (it == layouts.end()) {
                    packable = false;
                    packed_layers.clear();
                    break;
                }
                packed_layers.emplace(
                    linear->name,
                    encode_layer(it->second, fmt::format("{}: layer '{}'", job.model_dir, linear->name)));
            }
            layouts.clear();
            if (dequantized) dequantized->write_block(model, block);
        };
    nlohmann::json block_memory = nlohmann::json::array();  // resident size after each block
    hooks.block_finished = [&](int block, const BlockTimes& times, bool resumed) {
        malloc_trim(0);  // the block's freed buffers go back to the system, not only to the allocator
        const int64_t rss = current_rss_bytes(), peak = peak_rss_bytes();
        block_memory.push_back({{"block", block}, {"rss_bytes", rss}, {"peak_rss_bytes", peak}});
        const std::string phases = resumed ? "restored from the checkpoint" : phase_summary(times);
        bar.block_done(
            block, !resumed,
            fmt::format("{}{}RSS {:.2f} GiB (peak {:.2f})", phases, phases.empty() ? "" : ", ",
                        static_cast<double>(rss) / (1 << 30), static_cast<double>(peak) / (1 << 30)));
    };
    const int layers_per_block = blocks > 0 ? static_cast<int>(model.block_linears(0).size()) : 0;
    hooks.layer_start = [&](int block, const std::string& layer) {
        bar.phase(block, "solve",
                  fmt::format("{} ({}/{})", short_name(layer), ++layer_in_block, layers_per_block));
    };
    const CompressionReport report = compress_model(
        model, calibration, driver, nullptr,
        [&](int done, int total, const LayerRecord& r) {
            const std::string status =
                fmt::format("block {} {} err {:.4f}", r.block, short_name(r.name), r.stats.rel_error);
            bar.phase(r.block, "solve",
                      fmt::format("{} ({}/{}) done, err {:.4f}", short_name(r.name), layer_in_block,
                                  layers_per_block, r.stats.rel_error));
            if (progress) progress(done, total, status);
            throw_if_interrupted(fmt::format("after layer {}", r.name));
        },
        hooks);
    bar.finish();
    if (!root) return report.to_json();

    if (dequantized) dequantized->finish(model);
    PBS2P_CHECK(dtype || packable, "--dequantized none: some layers of {} have no packed form",
                job.model_dir);
    PackSummary packed;
    if (packable) {
        // The packed file: the encoded layers, and every other tensor in the dequantized dtype (f32 for
        // none).
        std::vector<TensorToWrite> others;
        const DType others_dtype = dtype.value_or(DType::f32);
        const std::string suffix = ".weight";
        const auto add = [&](const std::string& name, const float* data, const std::vector<int64_t>& shape) {
            const bool packed_weight =
                name.ends_with(suffix) && packed_layers.count(name.substr(0, name.size() - suffix.size()));
            if (!packed_weight) others.push_back(tensor_from_floats(name, data, shape, others_dtype));
        };
        model.for_each_shared_tensor(add);
        for (int l = 0; l < blocks; ++l) model.for_each_block_tensor(l, add);  // norms and biases (resident)
        packed = write_packed_model((staging / kPackedModelFileName).string(), packed_layers,
                                    std::move(others), job.tables.types(), job.model_dir);
        packed_layers.clear();
    }
    copy_model_side_files(job.model_dir, staging.string());

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
    out["block_memory"] = block_memory;
    out["dequantized"] = job.dtype;
    out["dequantized_files"] = dequantized ? dequantized->files() : std::vector<std::string>{};
    out["dequantized_bytes"] = dequantized ? dequantized->total_bytes() : 0;
    out["packed"] = packable;
    if (packable) {
        out["packed_file"] = kPackedModelFileName;
        out["packed_file_bytes"] = packed.file_bytes;
        out["packed_bits_per_weight"] = packed.bits_per_weight();
        out["packed_bits_per_parameter"] = packed.bits_per_parameter();
        out["packed_summary"] = pack_summary_json(packed);
    }
    write_file_atomically((staging / "report.json").string(), out.dump(1) + "\n");
    add_quantization_config(staging / "config.json", out, driver, packable,
                            dequantized ? (dequantized->files().size() == 1 ? "model.safetensors"
                                                                            : "model.safetensors.index.json")
                                        : "");
    if (interrupt_requested())
        throw Interrupted(fmt::format(
            "interrupted before the outputs were published; every block is kept in {}", checkpoint.string()));
    out_folder->publish();
    // state.json first: a checkpoint whose block files are half removed must not look resumable.
    fs::remove(checkpoint / "state.json");
    fs::remove_all(checkpoint);
    return out;
}

}  // namespace pbs2p::tools
