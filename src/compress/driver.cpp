#include "compress/driver.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "compress/cfs.h"
#include "core/atomic_file.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/log.h"
#include "io/safetensors.h"

namespace pbs2p {

namespace fs = std::filesystem;

namespace {

// 2: keep/sign stored as bits, weights only where the layout does not determine them.
constexpr int checkpoint_version = 2;

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Hidden states of the calibration windows entering block 0.
Matrix embed_calibration(const Model& model, const CalibrationSet& calibration) {
    return model.embed(calibration.tokens, calibration.windows, calibration.seq);
}

// ---- checkpoints: state.json + one safetensors file per completed block -----------------------------

fs::path block_checkpoint_path(const std::string& dir, int block) {
    return fs::path(dir) / fmt::format("block-{:04d}.safetensors", block);
}

nlohmann::json stats_to_json(const LayerStats& s) {
    return {{"method", s.method},
            {"n_keep", s.n_keep},
            {"m_group", s.m_group},
            {"rel_error", s.rel_error},
            {"rel_error_uncompensated", s.rel_error_uncompensated},
            {"nominal_bits", s.nominal_bits},
            {"storage_bits", s.storage_bits},
            {"seconds", s.seconds},
            {"pruned", s.pruned},
            {"sign_flips", s.sign_flips}};
}

LayerStats stats_from_json(const nlohmann::json& j) {
    LayerStats s;
    s.method = j.at("method").get<std::string>();
    s.n_keep = j.at("n_keep").get<int>();
    s.m_group = j.at("m_group").get<int>();
    s.rel_error = j.at("rel_error").get<double>();
    s.rel_error_uncompensated = j.at("rel_error_uncompensated").get<double>();
    s.nominal_bits = j.at("nominal_bits").get<double>();
    s.storage_bits = j.at("storage_bits").get<double>();
    s.seconds = j.at("seconds").get<double>();
    s.pruned = j.at("pruned").get<int64_t>();
    s.sign_flips = j.at("sign_flips").get<int64_t>();
    return s;
}

nlohmann::json record_to_json(const LayerRecord& r) {
    return {{"name", r.name},
            {"block", r.block},
            {"rows", r.rows},
            {"cols", r.cols},
            {"stats", stats_to_json(r.stats)}};
}

LayerRecord record_from_json(const nlohmann::json& j) {
    LayerRecord r;
    r.name = j.at("name").get<std::string>();
    r.block = j.at("block").get<int>();
    r.rows = j.at("rows").get<int64_t>();
    r.cols = j.at("cols").get<int64_t>();
    r.stats = stats_from_json(j.at("stats"));
    return r;
}

// Bit i of the result (LSB first within each byte) is flags[i] != 0.
std::vector<uint8_t> pack_bits(const std::vector<uint8_t>& flags) {
    std::vector<uint8_t> bits((flags.size() + 7) / 8, 0);
    for (size_t i = 0; i < flags.size(); ++i)
        if (flags[i]) bits[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
    return bits;
}

std::vector<uint8_t> unpack_bits(const uint8_t* bits, int64_t n) {
    std::vector<uint8_t> flags(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) flags[static_cast<size_t>(i)] = (bits[i / 8] >> (i % 8)) & 1u;
    return flags;
}

// keep and sign as bit planes (1 bit per weight each), alpha and mu as F32.
void append_layout_tensors(const std::string& name, const BinaryLayout& layout,
                           std::vector<TensorToWrite>& out) {
    auto bits_tensor = [&](const std::string& suffix, const std::vector<uint8_t>& v) {
        std::vector<uint8_t> bits = pack_bits(v);
        const auto size = static_cast<int64_t>(bits.size());
        out.push_back(TensorToWrite{name + suffix, DType::u8, {size}, std::move(bits)});
    };
    bits_tensor(".keep_bits", layout.keep);
    bits_tensor(".sign_bits", layout.sign);
    const int64_t groups = layout.scale_groups_per_row();
    out.push_back(
        tensor_from_floats(name + ".alpha", layout.alpha.data(), {layout.rows, groups}, DType::f32));
    out.push_back(tensor_from_floats(name + ".mu", layout.mu.data(), {layout.rows, groups}, DType::f32));
}

BinaryLayout read_layout_tensors(const SafetensorsReader& reader, const std::string& name,
                                 const nlohmann::json& meta) {
    BinaryLayout layout;
    layout.rows = meta.at("rows").get<int64_t>();
    layout.cols = meta.at("cols").get<int64_t>();
    layout.code = meta.value("code", std::string("nm"));
    layout.n_keep = meta.at("n_keep").get<int>();
    layout.m_group = meta.at("m_group").get<int>();
    layout.scale_group = meta.at("scale_group").get<int64_t>();
    const int64_t n = layout.rows * layout.cols;
    auto read_bits = [&](const std::string& suffix) {
        const TensorInfo& t = reader.tensor(name + suffix);
        PBS2P_CHECK(t.dtype == DType::u8 && t.nbytes == (n + 7) / 8,
                    "{}: checkpoint tensor '{}' has the wrong type or size", t.file, name + suffix);
        return unpack_bits(t.data, n);
    };
    layout.keep = read_bits(".keep_bits");
    layout.sign = read_bits(".sign_bits");
    const int64_t groups = layout.scale_groups_per_row();
    Matrix alpha = reader.load_matrix(name + ".alpha", layout.rows, groups);
    Matrix mu = reader.load_matrix(name + ".mu", layout.rows, groups);
    layout.alpha.assign(alpha.data.begin(), alpha.data.end());
    layout.mu.assign(mu.data.begin(), mu.data.end());
    return layout;
}

// True when the layout alone gives back `weight` bit for bit (then the checkpoint stores no fp32 copy).
bool layout_reproduces(const BinaryLayout& layout, const Matrix& weight) {
    if (layout.rows != weight.rows || layout.cols != weight.cols) return false;
    const Matrix w = dequantize(layout);
    return std::memcmp(w.ptr(), weight.ptr(), sizeof(float) * static_cast<size_t>(w.size())) == 0;
}

nlohmann::json layout_meta(const BinaryLayout& layout) {
    return {{"code", layout.code},     {"rows", layout.rows},       {"cols", layout.cols},
            {"n_keep", layout.n_keep}, {"m_group", layout.m_group}, {"scale_group", layout.scale_group}};
}

struct Checkpoint {
    int completed_blocks = 0;
    nlohmann::json state;
};

void save_block_checkpoint(const DriverOptions& options, int block, Model& model,
                           const std::map<std::string, BinaryLayout>& block_layouts,
                           const CompressionReport& report) {
    std::vector<TensorToWrite> tensors;
    nlohmann::json layout_index = nlohmann::json::object();
    for (const Linear* linear : model.block_linears(block)) {
        auto it = block_layouts.find(linear->name);
        const bool has_layout = it != block_layouts.end();
        if (!has_layout || !layout_reproduces(it->second, linear->weight))
            tensors.push_back(tensor_from_floats(linear->name + ".weight", linear->weight.ptr(),
                                                 {linear->weight.rows, linear->weight.cols}, DType::f32));
        if (has_layout) {
            append_layout_tensors(linear->name, it->second, tensors);
            layout_index[linear->name] = layout_meta(it->second);
        }
    }
    write_safetensors(block_checkpoint_path(options.checkpoint_dir, block).string(), tensors,
                      {{"layouts", layout_index.dump()}});
    nlohmann::json state = report.to_json();
    state["checkpoint_version"] = checkpoint_version;
    state["fingerprint"] = options.fingerprint;
    state["completed_blocks"] = block + 1;
    write_file_atomically((fs::path(options.checkpoint_dir) / "state.json").string(), state.dump(1));
}

Checkpoint load_checkpoint(const DriverOptions& options) {
    Checkpoint checkpoint;
    if (options.checkpoint_dir.empty()) return checkpoint;
    fs::path state_path = fs::path(options.checkpoint_dir) / "state.json";
    if (!fs::exists(state_path)) return checkpoint;
    std::ifstream in(state_path);
    nlohmann::json state = nlohmann::json::parse(in, nullptr, false);
    if (state.is_discarded() || state.value("checkpoint_version", 0) != checkpoint_version ||
        state.value("fingerprint", std::string()) != options.fingerprint) {
        log_info("checkpoint in {} does not match this run; starting afresh", options.checkpoint_dir);
        return checkpoint;
    }
    checkpoint.completed_blocks = state.at("completed_blocks").get<int>();
    checkpoint.state = std::move(state);
    return checkpoint;
}

// Sets the block's weights from its checkpoint (stored, or re-derived from the layout) and returns its
// layouts.
std::map<std::string, BinaryLayout> restore_block(const DriverOptions& options, int block, Model& model) {
    const std::string path = block_checkpoint_path(options.checkpoint_dir, block).string();
    SafetensorsReader reader = SafetensorsReader::open(path);
    nlohmann::json layout_index = nlohmann::json::parse(reader.metadata().at("layouts"));
    std::map<std::string, BinaryLayout> layouts;
    for (Linear* linear : model.block_linears(block)) {
        if (layout_index.contains(linear->name))
            layouts[linear->name] = read_layout_tensors(reader, linear->name, layout_index.at(linear->name));
        if (reader.has(linear->name + ".weight")) {
            linear->weight =
                reader.load_matrix(linear->name + ".weight", linear->out_features, linear->in_features);
        } else {
            auto it = layouts.find(linear->name);
            PBS2P_CHECK(it != layouts.end(), "{}: checkpoint holds neither a weight nor a layout for {}",
                        path, linear->name);
            linear->weight = dequantize(it->second);
        }
        linear->kernel.reset();  // a lazily loaded model's placeholder
    }
    return layouts;
}

// ---- Hessian accumulation ----------------------------------------------------------------------------

struct InputGroup {
    std::vector<Linear*> linears;
    MatrixD hessian;
};

// Runs block l on `hidden` (in place) and returns H = 2 X X^T / T for every distinct linear input.
// `hessian_seconds` receives the time spent in the Hessian products alone.
std::vector<InputGroup> accumulate_hessians(Model& model, int block, Matrix& hidden,
                                            const CalibrationSet& calibration, double& hessian_seconds) {
    std::vector<InputGroup> groups;
    std::map<std::string, size_t> index_of;
    const double scale = 2.0 / static_cast<double>(calibration.windows * calibration.seq);
    std::vector<Linear*> mutable_linears = model.block_linears(block);
    auto find_mutable = [&](const Linear* linear) {
        for (Linear* candidate : mutable_linears)
            if (candidate == linear) return candidate;
        fail("internal: observer reported a linear that is not in block {}", block);
    };
    model.run_block(
        block, hidden, calibration.windows, calibration.seq,
        [&](const std::vector<const Linear*>& linears, const float* input, int64_t rows, int64_t cols) {
            const std::string& key = linears.front()->name;
            auto [it, inserted] = index_of.emplace(key, groups.size());
            if (inserted) {
                InputGroup group;
                for (const Linear* linear : linears) group.linears.push_back(find_mutable(linear));
                group.hessian = MatrixD(cols, cols);
                groups.push_back(std::move(group));
            }
            const auto t0 = std::chrono::steady_clock::now();
            syrk_accumulate(input, rows, cols, scale, groups[it->second].hessian);
            hessian_seconds += seconds_since(t0);
        });
    const auto t0 = std::chrono::steady_clock::now();
    for (InputGroup& group : groups) symmetrize_from_upper(group.hessian);
    hessian_seconds += seconds_since(t0);
    return groups;
}

double row_cosine_mean(const Matrix& a, const Matrix& b) {
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int64_t i = 0; i < a.rows; ++i) {
        const float* x = a.row(i);
        const float* y = b.row(i);
        double dot = 0, nx = 0, ny = 0;
        for (int64_t j = 0; j < a.cols; ++j) {
            dot += static_cast<double>(x[j]) * y[j];
            nx += static_cast<double>(x[j]) * x[j];
            ny += static_cast<double>(y[j]) * y[j];
        }
        total += (nx > 0 && ny > 0) ? dot / std::sqrt(nx * ny) : 0.0;
    }
    return a.rows > 0 ? total / static_cast<double>(a.rows) : 0.0;
}

}  // namespace

// ---- report ----------------------------------------------------------------------------------------------

int64_t CompressionReport::compressed_parameters() const {
    int64_t total = 0;
    for (const LayerRecord& r : layers) total += r.rows * r.cols;
    return total;
}

double CompressionReport::nominal_bits() const {
    double bits = 0;
    for (const LayerRecord& r : layers) bits += r.stats.nominal_bits * static_cast<double>(r.rows * r.cols);
    const int64_t n = compressed_parameters();
    return n > 0 ? bits / static_cast<double>(n) : 0.0;
}

double CompressionReport::storage_bits() const {
    double bits = 0;
    for (const LayerRecord& r : layers) bits += r.stats.storage_bits * static_cast<double>(r.rows * r.cols);
    const int64_t n = compressed_parameters();
    return n > 0 ? bits / static_cast<double>(n) : 0.0;
}

const char* block_phase_name(BlockPhase phase) {
    static const char* const names[kBlockPhases] = {
        "coarse_stage", "load", "forward", "hessian", "solve", "forward_compressed", "write"};
    return names[static_cast<size_t>(phase)];
}

double BlockTimes::total() const {
    double t = 0;
    for (double s : seconds) t += s;
    return t;
}

namespace {

nlohmann::json block_times_to_json(const std::vector<BlockTimes>& times) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t b = 0; b < times.size(); ++b) {
        nlohmann::json j = {{"block", b}};
        for (int p = 0; p < kBlockPhases; ++p)
            j[block_phase_name(static_cast<BlockPhase>(p))] = times[b].seconds[static_cast<size_t>(p)];
        j["total"] = times[b].total();
        out.push_back(j);
    }
    return out;
}

std::vector<BlockTimes> block_times_from_json(const nlohmann::json& j) {
    std::vector<BlockTimes> out;
    for (const auto& entry : j) {
        BlockTimes t;
        for (int p = 0; p < kBlockPhases; ++p)
            t.seconds[static_cast<size_t>(p)] =
                entry.value(block_phase_name(static_cast<BlockPhase>(p)), 0.0);
        out.push_back(t);
    }
    return out;
}

}  // namespace

nlohmann::json CompressionReport::to_json() const {
    nlohmann::json layer_list = nlohmann::json::array();
    for (const LayerRecord& r : layers) layer_list.push_back(record_to_json(r));
    return {{"method", method},
            {"block_cosine", block_cosine},
            {"block_importance", block_importance},
            {"block_keep", block_keep},
            {"calibration_tokens", calibration_tokens},
            {"compress_seconds", compress_seconds},
            {"resumed_blocks", resumed_blocks},
            {"compressed_parameters", compressed_parameters()},
            {"nominal_bits", nominal_bits()},
            {"storage_bits", storage_bits()},
            {"block_seconds", block_times_to_json(block_times)},
            {"layers", layer_list}};
}

CompressOptions layer_options_for(const DriverOptions& options, const std::string& layer_name) {
    CompressOptions o = options.layer;
    if (options.code_by_type.empty()) return o;
    auto it = options.code_by_type.find(tensor_type(layer_name));
    if (it == options.code_by_type.end()) it = options.code_by_type.find("*");
    PBS2P_CHECK(it != options.code_by_type.end(),
                "compress: the recipe has no code for layer {} and no '*' entry", layer_name);
    o.code = it->second.code;
    o.scale_group = it->second.scale_group;
    return o;
}

nlohmann::json compress_options_to_json(const DriverOptions& o) {
    nlohmann::json out = nlohmann::json::object();
    for_each_driver_option(o, [&out](const char* name, const auto& field) { out[name] = field; });
    out["recipe"] = recipe_to_string(o.code_by_type);
    return out;
}

// ---- driver ----------------------------------------------------------------------------------------------

std::vector<double> block_cosine_similarity(Model& model, const CalibrationSet& calibration,
                                            const std::function<void(int, BlockPhase)>& phase,
                                            std::vector<double>* seconds) {
    Matrix hidden = embed_calibration(model, calibration);
    std::vector<double> cosine;
    for (int l = 0; l < model.num_blocks(); ++l) {
        const auto t0 = std::chrono::steady_clock::now();
        if (phase) phase(l, BlockPhase::coarse_stage);
        model.materialize_block(l);
        Matrix input = hidden;
        model.run_block(l, hidden, calibration.windows, calibration.seq);
        cosine.push_back(row_cosine_mean(input, hidden));
        model.release_block(l);
        if (seconds) seconds->push_back(seconds_since(t0));
    }
    return cosine;
}

CompressionReport compress_model(Model& model, const CalibrationSet& calibration,
                                 const DriverOptions& options, std::map<std::string, BinaryLayout>* layouts,
                                 const DriverProgress& progress, const DriverHooks& hooks) {
    const auto start = std::chrono::steady_clock::now();
    const int blocks = model.num_blocks();
    CompressionReport report;
    report.method = options.layer.method;
    report.calibration_tokens = calibration.windows * calibration.seq;
    report.block_times.assign(static_cast<size_t>(blocks), BlockTimes{});
    // Phase bookkeeping: each phase's time goes to its block, and the hook hears of its start.
    BlockPhase current = BlockPhase::load;
    auto phase_start = std::chrono::steady_clock::now();
    int current_block = -1;
    auto enter = [&](int block, BlockPhase phase) {
        const auto now = std::chrono::steady_clock::now();
        if (current_block >= 0)
            report.block_times[static_cast<size_t>(current_block)][current] +=
                std::chrono::duration<double>(now - phase_start).count();
        current_block = block;
        current = phase;
        phase_start = now;
        if (block >= 0 && hooks.phase) hooks.phase(block, phase);
    };

    Checkpoint checkpoint = load_checkpoint(options);
    if (checkpoint.completed_blocks > 0) {
        const nlohmann::json& state = checkpoint.state;
        report.block_cosine = state.at("block_cosine").get<std::vector<double>>();
        report.block_importance = state.at("block_importance").get<std::vector<double>>();
        report.block_keep = state.at("block_keep").get<std::vector<int>>();
        for (const auto& j : state.at("layers")) report.layers.push_back(record_from_json(j));
        const std::vector<BlockTimes> times =
            block_times_from_json(state.value("block_seconds", nlohmann::json::array()));
        for (size_t b = 0; b < times.size() && b < report.block_times.size(); ++b)
            report.block_times[b] = times[b];
        report.resumed_blocks = checkpoint.completed_blocks;
        log_info("resuming: {} of {} blocks already compressed in {}", checkpoint.completed_blocks, blocks,
                 options.checkpoint_dir);
    } else {
        report.block_keep.assign(static_cast<size_t>(blocks), options.layer.n_keep);
        // CFS coarse stage: N per block from the FP model's layer importance.
        if (options.layer.method == "pbs2p" && options.layer.code == "nm" && options.code_by_type.empty() &&
            options.coarse_stage) {
            const int n = options.layer.n_keep, m = options.layer.m_group;
            const int n_low = options.n_low >= 0 ? options.n_low : std::max(1, n - 1);
            const int n_high = options.n_high >= 0 ? options.n_high : std::min(m - 1, n + 1);
            std::vector<double> seconds;
            report.block_cosine = block_cosine_similarity(model, calibration, hooks.phase, &seconds);
            for (size_t b = 0; b < seconds.size(); ++b)
                report.block_times[b][BlockPhase::coarse_stage] = seconds[b];
            report.block_importance = block_importance(report.block_cosine, options.importance);
            report.block_keep = allocate_block_keep_counts(report.block_importance, n, m, n_low, n_high);
        }
    }

    int total_layers = 0;
    for (int l = 0; l < blocks; ++l) total_layers += static_cast<int>(model.block_linears(l).size());
    int layers_done = 0;

    // Ends block l: the hook takes what it wants of the layouts, `layouts` the rest; a lazily loaded
    // model's weights are freed.
    auto finish_block = [&](int l, std::map<std::string, BinaryLayout>& block_layouts, bool resumed) {
        if (hooks.block_done) hooks.block_done(l, block_layouts);
        if (layouts)
            for (auto& [name, layout] : block_layouts) (*layouts)[name] = std::move(layout);
        model.release_block(l);
        enter(-1, BlockPhase::load);
        if (hooks.block_finished)
            hooks.block_finished(l, report.block_times[static_cast<size_t>(l)], resumed);
    };

    Matrix hidden = embed_calibration(model, calibration);
    for (int l = 0; l < blocks; ++l) {
        if (l < checkpoint.completed_blocks) {
            // Recompute the next block's inputs exactly as the original run produced them.
            if (options.propagate_fp)
                fail("resuming a --propagate-fp run is not supported; remove the checkpoint");
            const BlockTimes measured = report.block_times[static_cast<size_t>(l)];
            enter(l, BlockPhase::load);
            std::map<std::string, BinaryLayout> block_layouts = restore_block(options, l, model);
            enter(l, BlockPhase::forward_compressed);
            model.run_block(l, hidden, calibration.windows, calibration.seq);
            layers_done += static_cast<int>(model.block_linears(l).size());
            enter(l, BlockPhase::write);
            finish_block(l, block_layouts, true);
            report.block_times[static_cast<size_t>(l)] = measured;  // the run that compressed it
            continue;
        }
        enter(l, BlockPhase::load);
        model.materialize_block(l);
        enter(l, BlockPhase::forward);
        Matrix fp_output = hidden;
        double hessian_seconds = 0;
        std::vector<InputGroup> groups =
            accumulate_hessians(model, l, fp_output, calibration, hessian_seconds);
        enter(l, BlockPhase::solve);
        report.block_times[static_cast<size_t>(l)][BlockPhase::forward] -= hessian_seconds;
        report.block_times[static_cast<size_t>(l)][BlockPhase::hessian] += hessian_seconds;
        std::map<std::string, BinaryLayout> block_layouts;
        for (InputGroup& group : groups) {
            HessianFactor factor = factor_hessian(group.hessian, options.layer.percdamp);
            for (Linear* linear : group.linears) {
                if (hooks.layer_start) hooks.layer_start(l, linear->name);
                CompressOptions layer_options = layer_options_for(options, linear->name);
                layer_options.n_keep = report.block_keep[static_cast<size_t>(l)];
                CompressedLayer result = compress_layer(linear->weight, group.hessian, factor, layer_options);
                linear->weight = std::move(result.weight);
                if (result.layout) block_layouts[linear->name] = std::move(*result.layout);
                LayerRecord record{linear->name, l, linear->out_features, linear->in_features, result.stats};
                report.layers.push_back(record);
                ++layers_done;
                if (progress) progress(layers_done, total_layers, record);
            }
            group.hessian = MatrixD();  // each Hessian is freed once its layers are solved
        }
        groups.clear();
        enter(l, BlockPhase::forward_compressed);
        if (options.propagate_fp) {
            hidden = std::move(fp_output);
        } else {
            fp_output = Matrix();
            model.run_block(l, hidden, calibration.windows, calibration.seq);
        }
        enter(l, BlockPhase::write);
        report.compress_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (!options.checkpoint_dir.empty()) save_block_checkpoint(options, l, model, block_layouts, report);
        finish_block(l, block_layouts, false);
        if (options.stop_after_blocks >= 0 && l + 1 >= options.stop_after_blocks && l + 1 < blocks)
            throw CompressionInterrupted(fmt::format("stopped after block {} of {} as asked", l + 1, blocks));
    }
    report.compress_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace pbs2p
