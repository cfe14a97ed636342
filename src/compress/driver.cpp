#include "compress/driver.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <type_traits>

#include "compress/cfs.h"
#include "core/atomic_file.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "io/safetensors.h"

namespace pbs2p {

namespace fs = std::filesystem;

namespace {

// 2: keep/sign stored as bits, weights only where the layout does not determine them.
constexpr int checkpoint_version = 2;

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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

// ---- calibration slices ----------------------------------------------------------------------------

// The calibration windows are cut into this many fixed slices (contiguous by window index, the same
// whatever the number of ranks); each rank holds a contiguous run of whole slices, and every statistic
// is summed per slice and then over the slices in window order (docs/ARCHITECTURE.md).
constexpr int kCalibrationSlices = 8;

struct CalibrationSlices {
    std::vector<IndexRange> windows;  // this rank's non-empty slices, in window order
    std::vector<Matrix> hidden;       // their hidden states, [windows * seq x hidden] each
};

CalibrationSlices embed_local_slices(const Model& model, const CalibrationSet& calibration,
                                     const Communicator& communicator) {
    CalibrationSlices slices;
    const IndexRange mine = share_of(kCalibrationSlices, communicator.size(), communicator.rank());
    for (int64_t s = mine.begin; s < mine.end; ++s) {
        const IndexRange w = share_of(calibration.windows, kCalibrationSlices, static_cast<int>(s));
        if (w.size() == 0) continue;
        const auto first = calibration.tokens.begin() + w.begin * calibration.seq;
        const std::vector<int32_t> tokens(first, first + w.size() * calibration.seq);
        slices.hidden.push_back(model.embed(tokens, w.size(), calibration.seq));
        slices.windows.push_back(w);
    }
    return slices;
}

void run_block_on_slices(const Model& model, int block, CalibrationSlices& slices, int64_t seq) {
    for (size_t s = 0; s < slices.hidden.size(); ++s)
        model.run_block(block, slices.hidden[s], slices.windows[s].size(), seq);
}

// ---- Hessian accumulation ----------------------------------------------------------------------------

struct InputGroup {
    std::vector<Linear*> linears;
    int64_t width = 0;
    int64_t offset = 0;  // of its packed upper triangle in a slice's partial sums
    MatrixD hessian;
};

// Every distinct linear input of block l in forward order (one token of zeros through the block).
std::vector<InputGroup> block_input_groups(Model& model, int block) {
    std::vector<InputGroup> groups;
    std::map<std::string, size_t> index_of;
    std::vector<Linear*> mutable_linears = model.block_linears(block);
    auto find_mutable = [&](const Linear* linear) {
        for (Linear* candidate : mutable_linears)
            if (candidate == linear) return candidate;
        fail("internal: observer reported a linear that is not in block {}", block);
    };
    Matrix probe(1, model.config().hidden_size);
    int64_t offset = 0;
    model.run_block(block, probe, 1, 1,
                    [&](const std::vector<const Linear*>& linears, const float*, int64_t, int64_t cols) {
                        if (!index_of.emplace(linears.front()->name, groups.size()).second) return;
                        InputGroup group;
                        for (const Linear* linear : linears) group.linears.push_back(find_mutable(linear));
                        group.width = cols;
                        group.offset = offset;
                        offset += packed_upper_offset(cols, cols);
                        groups.push_back(std::move(group));
                    });
    return groups;
}

// Runs block l on this rank's slices (in place) and sets every group's H = 2 X X^T / T over all
// windows: each slice's sum (packed upper triangles, fp64), then the slices summed in window order.
// `product_seconds` receives the time spent in the Hessian products alone (part of `forward_seconds`).
void accumulate_hessians(const Model& model, int block, std::vector<InputGroup>& groups,
                         CalibrationSlices& slices, const CalibrationSet& calibration,
                         Communicator& communicator, double& forward_seconds, double& reduce_seconds,
                         double& compute_cpu_seconds, double& product_seconds) {
    auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = process_cpu_seconds();
    std::map<std::string, const InputGroup*> group_of;
    for (const InputGroup& group : groups) group_of[group.linears.front()->name] = &group;
    const int64_t total =
        groups.empty() ? 0
                       : groups.back().offset + packed_upper_offset(groups.back().width, groups.back().width);
    const double scale = 2.0 / static_cast<double>(calibration.windows * calibration.seq);
    OrderedSum sum(communicator, static_cast<size_t>(total));
    for (size_t s = 0; s < slices.hidden.size(); ++s) {
        std::vector<double> part(static_cast<size_t>(total), 0.0);
        model.run_block(
            block, slices.hidden[s], slices.windows[s].size(), calibration.seq,
            [&](const std::vector<const Linear*>& linears, const float* input, int64_t rows, int64_t cols) {
                const InputGroup& group = *group_of.at(linears.front()->name);
                const auto t_product = std::chrono::steady_clock::now();
                syrk_accumulate_packed(input, rows, cols, scale, part.data() + group.offset);
                product_seconds += seconds_since(t_product);
            });
        sum.add(std::move(part));
    }
    auto t1 = std::chrono::steady_clock::now();
    compute_cpu_seconds += process_cpu_seconds() - cpu0;
    const std::vector<double> packed = sum.finish();
    for (InputGroup& group : groups) {
        const int64_t n = group.width;
        group.hessian = MatrixD(n, n);
        for (int64_t i = 0; i < n; ++i) {
            const double* row = packed.data() + group.offset + packed_upper_offset(i, n) - i;
            for (int64_t j = i; j < n; ++j) group.hessian(i, j) = row[j];
        }
        symmetrize_from_upper(group.hessian);
    }
    auto t2 = std::chrono::steady_clock::now();
    forward_seconds += std::chrono::duration<double>(t1 - t0).count();
    reduce_seconds += std::chrono::duration<double>(t2 - t1).count();
}

double row_cosine_sum(const Matrix& a, const Matrix& b) {
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
    return total;
}

// ---- a compressed layer as bytes (the solves of other ranks arrive by broadcast) --------------------

struct ByteWriter {
    std::vector<uint8_t> bytes;
    template <typename T>
    void value(const T& v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        bytes.insert(bytes.end(), p, p + sizeof(T));
    }
    template <typename T>
    void values(const T* data, size_t n) {
        value(static_cast<uint64_t>(n));
        const auto* p = reinterpret_cast<const uint8_t*>(data);
        bytes.insert(bytes.end(), p, p + n * sizeof(T));
    }
    void text(const std::string& s) { values(s.data(), s.size()); }
};

struct ByteReader {
    const std::vector<uint8_t>& bytes;
    size_t pos = 0;
    const uint8_t* take(size_t n) {
        PBS2P_CHECK(pos + n <= bytes.size(), "internal: a compressed layer's bytes end early");
        const uint8_t* p = bytes.data() + pos;
        pos += n;
        return p;
    }
    template <typename T>
    T value() {
        T v;
        std::memcpy(&v, take(sizeof(T)), sizeof(T));
        return v;
    }
    template <typename T>
    std::vector<T> values() {
        const auto n = static_cast<size_t>(value<uint64_t>());
        std::vector<T> v(n);
        if (n > 0) std::memcpy(v.data(), take(n * sizeof(T)), n * sizeof(T));
        return v;
    }
    std::string text() {
        std::vector<char> v = values<char>();
        return std::string(v.begin(), v.end());
    }
};

// Every field of LayerStats, read and written in this order.
template <typename Stats, typename Visit>
void for_each_stats_number(Stats& s, Visit&& visit) {
    visit(s.rows), visit(s.cols), visit(s.n_keep), visit(s.m_group), visit(s.rel_error);
    visit(s.rel_error_uncompensated), visit(s.nominal_bits), visit(s.storage_bits), visit(s.salient_fraction);
    visit(s.seconds), visit(s.pruned), visit(s.sign_flips), visit(s.zero_signs_fixed), visit(s.percdamp_used);
}

// The dense weight travels only when the layout does not give it (dequantize(layout) == weight exactly
// for the binary methods, whose layout is a third of the bytes).
std::vector<uint8_t> layer_to_bytes(const CompressedLayer& layer) {
    ByteWriter w;
    const bool weight_from_layout = layer.layout && layout_reproduces(*layer.layout, layer.weight);
    w.value(static_cast<uint8_t>(weight_from_layout));
    if (!weight_from_layout) {
        w.value(layer.weight.rows), w.value(layer.weight.cols);
        w.values(layer.weight.data.data(), layer.weight.data.size());
    }
    w.text(layer.stats.method);
    for_each_stats_number(layer.stats, [&w](const auto& v) { w.value(v); });
    w.value(static_cast<uint8_t>(layer.layout.has_value()));
    if (layer.layout) {
        const BinaryLayout& l = *layer.layout;
        w.value(l.rows), w.value(l.cols), w.text(l.code), w.value(l.n_keep), w.value(l.m_group);
        w.value(l.scale_group);
        w.values(l.keep.data(), l.keep.size()), w.values(l.sign.data(), l.sign.size());
        w.values(l.alpha.data(), l.alpha.size()), w.values(l.mu.data(), l.mu.size());
    }
    return std::move(w.bytes);
}

CompressedLayer layer_from_bytes(const std::vector<uint8_t>& bytes) {
    ByteReader r{bytes};
    CompressedLayer layer;
    const bool weight_from_layout = r.value<uint8_t>() != 0;
    if (!weight_from_layout) {
        const auto rows = r.value<int64_t>(), cols = r.value<int64_t>();
        layer.weight = Matrix(rows, cols);
        std::vector<float> weight = r.values<float>();
        PBS2P_CHECK(weight.size() == layer.weight.data.size(),
                    "internal: a compressed layer's weight has {} values", weight.size());
        std::copy(weight.begin(), weight.end(), layer.weight.data.begin());
    }
    layer.stats.method = r.text();
    for_each_stats_number(layer.stats, [&r](auto& v) { v = r.value<std::decay_t<decltype(v)>>(); });
    if (r.value<uint8_t>()) {
        BinaryLayout l;
        l.rows = r.value<int64_t>(), l.cols = r.value<int64_t>(), l.code = r.text();
        l.n_keep = r.value<int>(), l.m_group = r.value<int>(), l.scale_group = r.value<int64_t>();
        l.keep = r.values<uint8_t>(), l.sign = r.values<uint8_t>();
        l.alpha = r.values<float>(), l.mu = r.values<float>();
        layer.layout = std::move(l);
    }
    PBS2P_CHECK(!weight_from_layout || layer.layout, "internal: a compressed layer without weight or layout");
    if (weight_from_layout) layer.weight = dequantize(*layer.layout);
    return layer;
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
    nlohmann::json usage = nlohmann::json::array();
    for (const RankUsage& u : rank_usage)
        usage.push_back({{"bytes_sent", u.bytes_sent},
                         {"bytes_received", u.bytes_received},
                         {"peak_rss_bytes", u.peak_rss_bytes},
                         {"compute_cpu_seconds", u.compute_cpu_seconds}});
    return {{"method", method},
            {"block_cosine", block_cosine},
            {"block_importance", block_importance},
            {"block_keep", block_keep},
            {"calibration_tokens", calibration_tokens},
            {"compress_seconds", compress_seconds},
            {"resumed_blocks", resumed_blocks},
            {"ranks", ranks},
            {"phase_seconds", phase_seconds},
            {"block_bytes_communicated", block_bytes_communicated},
            {"rank_usage", usage},
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

std::vector<LayerShape> decoder_layer_shapes(const Model& model) {
    std::vector<LayerShape> shapes;
    for (int l = 0; l < model.num_blocks(); ++l)
        for (const Linear* linear : model.block_linears(l))
            shapes.push_back({linear->name, linear->out_features, linear->in_features});
    return shapes;
}

nlohmann::json compress_options_to_json(const DriverOptions& o) {
    nlohmann::json out = nlohmann::json::object();
    for_each_driver_option(o, [&out](const char* name, const auto& field) { out[name] = field; });
    out["recipe"] = recipe_to_string(o.code_by_type);
    return out;
}

// ---- driver ----------------------------------------------------------------------------------------------

std::vector<double> block_cosine_similarity(Model& model, const CalibrationSet& calibration,
                                            Communicator& communicator,
                                            const std::function<void(int, BlockPhase)>& phase,
                                            std::vector<double>* seconds) {
    CalibrationSlices slices = embed_local_slices(model, calibration, communicator);
    const int blocks = model.num_blocks();
    // Per slice the sum of cos(input row, output row) of every block; then the slices in window order.
    std::vector<std::vector<double>> sums(slices.hidden.size(),
                                          std::vector<double>(static_cast<size_t>(blocks)));
    for (int l = 0; l < blocks; ++l) {
        const auto t0 = std::chrono::steady_clock::now();
        if (phase) phase(l, BlockPhase::coarse_stage);
        model.materialize_block(l);
        for (size_t s = 0; s < slices.hidden.size(); ++s) {
            Matrix input = slices.hidden[s];
            model.run_block(l, slices.hidden[s], slices.windows[s].size(), calibration.seq);
            sums[s][static_cast<size_t>(l)] = row_cosine_sum(input, slices.hidden[s]);
        }
        model.release_block(l);
        if (seconds) seconds->push_back(seconds_since(t0));
    }
    OrderedSum sum(communicator, static_cast<size_t>(blocks));
    for (std::vector<double>& part : sums) sum.add(std::move(part));
    std::vector<double> cosine = sum.finish();
    const double rows = static_cast<double>(calibration.windows * calibration.seq);
    for (double& c : cosine) c = rows > 0 ? c / rows : 0.0;
    return cosine;
}

CompressionReport compress_model(Model& model, const CalibrationSet& calibration,
                                 const DriverOptions& options, std::map<std::string, BinaryLayout>* layouts,
                                 const DriverProgress& progress, const DriverHooks& hooks) {
    const auto start = std::chrono::steady_clock::now();
    Communicator& communicator = options.communicator ? *options.communicator : single_process_communicator();
    const int rank = communicator.rank(), ranks = communicator.size();
    const bool root = communicator.is_root();
    // The root has prepared the checkpoint folder (cleared it for --no-resume) before any rank reads it.
    communicator.barrier();
    const TrafficCounters traffic_at_start = communicator.traffic();
    const int blocks = model.num_blocks();
    CompressionReport report;
    report.method = options.layer.method;
    report.calibration_tokens = calibration.windows * calibration.seq;
    report.ranks = ranks;
    if (root && ranks > 1)
        log_info(
            "compressing on {} ranks: {} calibration windows in {} slices split over the ranks, the layer "
            "solves of each block spread over them",
            ranks, calibration.windows, kCalibrationSlices);
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
        if (root)
            log_info("resuming: {} of {} blocks already compressed in {}", checkpoint.completed_blocks,
                     blocks, options.checkpoint_dir);
    } else {
        report.block_keep.assign(static_cast<size_t>(blocks), options.layer.n_keep);
        // CFS coarse stage: N per block from the FP model's layer importance.
        if (options.layer.method == "pbs2p" && options.layer.code == "nm" && options.code_by_type.empty() &&
            options.coarse_stage) {
            const auto t = std::chrono::steady_clock::now();
            const int n = options.layer.n_keep, m = options.layer.m_group;
            const int n_low = options.n_low >= 0 ? options.n_low : std::max(1, n - 1);
            const int n_high = options.n_high >= 0 ? options.n_high : std::min(m - 1, n + 1);
            std::vector<double> seconds;
            report.block_cosine =
                block_cosine_similarity(model, calibration, communicator, hooks.phase, &seconds);
            for (size_t b = 0; b < seconds.size(); ++b)
                report.block_times[b][BlockPhase::coarse_stage] = seconds[b];
            report.block_importance = block_importance(report.block_cosine, options.importance);
            report.block_keep = allocate_block_keep_counts(report.block_importance, n, m, n_low, n_high);
            report.phase_seconds["coarse_stage"] += seconds_since(t);
        }
    }

    int total_layers = 0;
    for (int l = 0; l < blocks; ++l) total_layers += static_cast<int>(model.block_linears(l).size());
    int layers_done = 0;
    std::vector<double> block_bytes_sent(static_cast<size_t>(blocks), 0.0);
    double compute_cpu_seconds = 0;
    double& forward_seconds = report.phase_seconds["forward"];
    double& reduce_seconds = report.phase_seconds["reduce"];
    double& solve_seconds = report.phase_seconds["solve"];
    double& exchange_seconds = report.phase_seconds["exchange"];
    double& propagate_seconds = report.phase_seconds["propagate"];
    double& checkpoint_seconds = report.phase_seconds["checkpoint"];

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

    CalibrationSlices slices = embed_local_slices(model, calibration, communicator);
    for (int l = 0; l < blocks; ++l) {
        const int64_t sent_before = communicator.traffic().bytes_sent;
        if (l < checkpoint.completed_blocks) {
            // Recompute the next block's inputs exactly as the original run produced them.
            if (options.propagate_fp)
                fail("resuming a --propagate-fp run is not supported; remove the checkpoint");
            const BlockTimes measured = report.block_times[static_cast<size_t>(l)];
            enter(l, BlockPhase::load);
            std::map<std::string, BinaryLayout> block_layouts = restore_block(options, l, model);
            enter(l, BlockPhase::forward_compressed);
            const auto t = std::chrono::steady_clock::now();
            const double cpu = process_cpu_seconds();
            run_block_on_slices(model, l, slices, calibration.seq);
            propagate_seconds += seconds_since(t);
            compute_cpu_seconds += process_cpu_seconds() - cpu;
            layers_done += static_cast<int>(model.block_linears(l).size());
            enter(l, BlockPhase::write);
            finish_block(l, block_layouts, true);
            report.block_times[static_cast<size_t>(l)] = measured;  // the run that compressed it
            continue;
        }
        enter(l, BlockPhase::load);
        model.materialize_block(l);
        enter(l, BlockPhase::forward);
        CalibrationSlices fp_output = slices;
        std::vector<InputGroup> groups = block_input_groups(model, l);
        // The block's times: the Hessian products and their sum over slices and ranks are its hessian
        // phase, the rest of the pass its forward.
        double hessian_seconds = 0;
        const double reduce_before = reduce_seconds;
        accumulate_hessians(model, l, groups, fp_output, calibration, communicator, forward_seconds,
                            reduce_seconds, compute_cpu_seconds, hessian_seconds);
        enter(l, BlockPhase::solve);
        hessian_seconds += reduce_seconds - reduce_before;
        report.block_times[static_cast<size_t>(l)][BlockPhase::forward] -= hessian_seconds;
        report.block_times[static_cast<size_t>(l)][BlockPhase::hessian] += hessian_seconds;

        // The block's layer solves, spread over the ranks by weight size; each rank factors the Hessians
        // its layers need.
        struct Task {
            InputGroup* group;
            Linear* linear;
        };
        std::vector<Task> tasks;
        std::vector<int64_t> costs;
        for (InputGroup& group : groups)
            for (Linear* linear : group.linears) {
                tasks.push_back({&group, linear});
                costs.push_back(linear->out_features * linear->in_features);
            }
        const std::vector<int> owner = balanced_owners(costs, ranks);
        std::map<std::string, BinaryLayout> block_layouts;
        auto finish_layer = [&](size_t t, CompressedLayer result) {
            Linear* linear = tasks[t].linear;
            linear->weight = std::move(result.weight);
            if (result.layout) block_layouts[linear->name] = std::move(*result.layout);
            LayerRecord record{linear->name, l, linear->out_features, linear->in_features, result.stats};
            report.layers.push_back(record);
            ++layers_done;
            if (progress) progress(layers_done, total_layers, record);
        };
        std::vector<std::vector<uint8_t>> solved(tasks.size());
        auto t_solve = std::chrono::steady_clock::now();
        const double cpu_solve = process_cpu_seconds();
        const InputGroup* factored = nullptr;
        HessianFactor factor;
        for (size_t t = 0; t < tasks.size(); ++t) {
            InputGroup& group = *tasks[t].group;
            if (owner[t] == rank) {
                if (factored != &group) {
                    factor = factor_hessian(group.hessian, options.layer.percdamp);
                    factored = &group;
                }
                if (hooks.layer_start) hooks.layer_start(l, tasks[t].linear->name);
                CompressOptions layer_options = layer_options_for(options, tasks[t].linear->name);
                layer_options.n_keep = report.block_keep[static_cast<size_t>(l)];
                CompressedLayer result =
                    compress_layer(tasks[t].linear->weight, group.hessian, factor, layer_options);
                if (ranks == 1)
                    finish_layer(t, std::move(result));  // progress after every layer
                else
                    solved[t] = layer_to_bytes(result);
            }
            // Each Hessian (and its factor) is freed once the group's layers are solved.
            if (t + 1 == tasks.size() || tasks[t + 1].group != &group) {
                group.hessian = MatrixD();
                factor = HessianFactor();
                factored = nullptr;
            }
        }
        solve_seconds += seconds_since(t_solve);
        compute_cpu_seconds += process_cpu_seconds() - cpu_solve;
        if (ranks > 1) {
            const auto t_exchange = std::chrono::steady_clock::now();
            for (size_t t = 0; t < tasks.size(); ++t) {
                communicator.broadcast_bytes(solved[t], owner[t]);
                finish_layer(t, layer_from_bytes(solved[t]));
                solved[t] = {};
            }
            exchange_seconds += seconds_since(t_exchange);
        }
        groups.clear();

        enter(l, BlockPhase::forward_compressed);
        const auto t_propagate = std::chrono::steady_clock::now();
        const double cpu_propagate = process_cpu_seconds();
        if (options.propagate_fp) {
            slices = std::move(fp_output);
        } else {
            fp_output = {};
            run_block_on_slices(model, l, slices, calibration.seq);
        }
        propagate_seconds += seconds_since(t_propagate);
        compute_cpu_seconds += process_cpu_seconds() - cpu_propagate;
        block_bytes_sent[static_cast<size_t>(l)] =
            static_cast<double>(communicator.traffic().bytes_sent - sent_before);
        enter(l, BlockPhase::write);
        report.compress_seconds = seconds_since(start);
        const auto t_checkpoint = std::chrono::steady_clock::now();
        if (root && !options.checkpoint_dir.empty())
            save_block_checkpoint(options, l, model, block_layouts, report);
        checkpoint_seconds += seconds_since(t_checkpoint);
        finish_block(l, block_layouts, false);
        if (options.stop_after_blocks >= 0 && l + 1 >= options.stop_after_blocks && l + 1 < blocks)
            throw CompressionInterrupted(fmt::format("stopped after block {} of {} as asked", l + 1, blocks));
    }

    // What each rank sent and received, its peak memory and compute CPU time; the bytes of every block
    // summed over ranks.
    std::vector<double> usage = {
        static_cast<double>(communicator.traffic().bytes_sent - traffic_at_start.bytes_sent),
        static_cast<double>(communicator.traffic().bytes_received - traffic_at_start.bytes_received),
        static_cast<double>(peak_rss_bytes()), compute_cpu_seconds};
    usage.insert(usage.end(), block_bytes_sent.begin(), block_bytes_sent.end());
    const std::vector<double> all_usage = communicator.gather_to_root(usage);
    if (root) {
        report.block_bytes_communicated.assign(static_cast<size_t>(blocks), 0);
        for (int r = 0; r < ranks; ++r) {
            const double* u = all_usage.data() + static_cast<size_t>(r) * usage.size();
            report.rank_usage.push_back(
                {static_cast<int64_t>(u[0]), static_cast<int64_t>(u[1]), static_cast<int64_t>(u[2]), u[3]});
            for (int l = 0; l < blocks; ++l)
                report.block_bytes_communicated[static_cast<size_t>(l)] += static_cast<int64_t>(u[4 + l]);
        }
    }
    report.compress_seconds = seconds_since(start);
    if (root && ranks > 1) {
        int64_t bytes = 0;
        for (int64_t b : report.block_bytes_communicated) bytes += b;
        std::string cpu;
        for (const RankUsage& u : report.rank_usage) cpu += fmt::format(" {:.1f}", u.compute_cpu_seconds);
        log_info(
            "{} ranks: forward {:.2f} s, reduce {:.2f} s, solve {:.2f} s, exchange {:.2f} s, propagate "
            "{:.2f} s (rank 0); {:.2f} MiB communicated; compute CPU s by rank:{}",
            ranks, forward_seconds, reduce_seconds, solve_seconds, exchange_seconds, propagate_seconds,
            static_cast<double>(bytes) / (1 << 20), cpu);
    }
    return report;
}

}  // namespace pbs2p
