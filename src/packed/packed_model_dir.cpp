#include "packed/packed_model_dir.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "packed/packed_file.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

const char* const kSideFiles[] = {"config.json",           "generation_config.json", "tokenizer.json",
                                  "tokenizer.model",       "tokenizer_config.json",  "special_tokens_map.json"};

void copy_side_files(const fs::path& from, const fs::path& to) {
    for (const char* name : kSideFiles)
        if (fs::exists(from / name)) copy_file_atomically((from / name).string(), (to / name).string());
}

bool has_model_tensors(const fs::path& dir) {
    return fs::exists(dir / "model.safetensors") || fs::exists(dir / "model.safetensors.index.json");
}

TensorToWrite copy_tensor(const TensorInfo& t) {
    return {t.name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)};
}

fs::path packed_file_path(const std::string& path) {
    const fs::path p(path);
    return fs::is_directory(p) ? p / kPackedModelFileName : p;
}

}  // namespace

bool is_token_embedding_tensor(const std::string& name) {
    const std::string suffix = "embed_tokens.weight";
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_lm_head_tensor(const std::string& name) {
    return name == "lm_head.weight";
}

int64_t PackSummary::parameters() const {
    int64_t n = packed_weights + other_params;
    for (const TableSummary& t : tables) n += t.params;
    return n;
}

double PackSummary::bits_per_parameter() const {
    const int64_t n = parameters();
    return n ? 8.0 * static_cast<double>(file_bytes) / static_cast<double>(n) : 0.0;
}

PackSummary summarize_packed_file(const std::string& path) {
    const fs::path file = packed_file_path(path);
    const PackedFile packed = PackedFile::open(file.string());
    PackSummary s;
    for (const std::string& name : packed.layer_names()) {
        const PackedLayerDesc& d = packed.desc(name);
        ++s.layers;
        s.packed_weights += d.rows * d.cols;
        s.packed_bytes += d.code_bytes() + d.rows * d.scale_groups_per_row() * d.scale_bytes();
    }
    for (const std::string& name : packed.table_names()) {
        const TableDesc& d = packed.table_desc(name);
        s.tables.push_back({name, d.type, d.rows * d.cols, packed.tensors().tensor(name).nbytes});
    }
    for (const std::string& name : packed.other_tensor_names()) {
        const TensorInfo& t = packed.tensors().tensor(name);
        if (is_token_embedding_tensor(name) || is_lm_head_tensor(name)) {
            s.tables.push_back({name, TableType::f32, t.numel(), t.nbytes});
            continue;  // an fp32 (or as-stored) table of a version-1 file
        }
        ++s.other_tensors;
        s.other_params += t.numel();
        s.other_bytes += t.nbytes;
    }
    s.file_bytes = static_cast<int64_t>(fs::file_size(file));
    return s;
}

PackSummary write_packed_model(const std::string& path, const std::map<std::string, PackedLayer>& layers,
                               std::vector<TensorToWrite> others, const TableTypes& types,
                               const std::string& what) {
    bool tied = true;
    for (const TensorToWrite& t : others) tied = tied && !is_lm_head_tensor(t.name);
    std::vector<TensorToWrite> kept;
    std::map<std::string, WeightTable> tables;
    for (TensorToWrite& t : others) {
        const bool embedding = is_token_embedding_tensor(t.name), head = is_lm_head_tensor(t.name);
        if ((!embedding && !head) || t.shape.size() != 2) {
            kept.push_back(std::move(t));
            continue;
        }
        const TableType type = head   ? types.head
                               : tied ? more_precise(types.embedding, types.head)
                                      : types.embedding;
        const std::vector<float> w = tensor_to_floats(t);
        for (size_t i = 0; i < w.size(); ++i)
            PBS2P_CHECK(std::isfinite(w[i]), "{}: tensor '{}' holds non-finite value {} at index {}", what,
                        t.name, w[i], i);
        tables.emplace(t.name, encode_table(w.data(), t.shape[0], t.shape[1], type,
                                            fmt::format("{}: '{}'", what, t.name)));
        t.bytes = {};
    }
    write_packed_file(path, layers, std::move(kept), {}, tables);
    return summarize_packed_file(path);
}

PackSummary pack_model_dir(const std::string& in_dir, const std::string& out_dir, const TableTypes& types) {
    const fs::path in(in_dir), out(out_dir);
    const auto layouts = read_layouts((in / kLayoutsFileName).string());
    std::map<std::string, PackedLayer> layers;
    std::set<std::string> replaced;
    for (const auto& [name, layout] : layouts) {
        layers.emplace(name, encode_layer(layout, fmt::format("{}: layer '{}'", in_dir, name)));
        replaced.insert(name + ".weight");
    }
    std::vector<TensorToWrite> others;
    if (has_model_tensors(in)) {
        const SafetensorsReader model = SafetensorsReader::open(in_dir);
        for (const std::string& name : model.names())
            if (!replaced.count(name)) others.push_back(copy_tensor(model.tensor(name)));
    }
    fs::create_directories(out);
    const fs::path file = out / kPackedModelFileName;
    PackSummary summary = write_packed_model(file.string(), layers, std::move(others), types, in_dir);
    copy_side_files(in, out);
    return summary;
}

void unpack_model_dir(const std::string& packed_path, const std::string& out_dir, bool dequantize) {
    const fs::path out(out_dir);
    const fs::path file = packed_file_path(packed_path);
    const PackedFile packed = PackedFile::open(file.string());
    std::map<std::string, BinaryLayout> layouts;
    std::vector<TensorToWrite> tensors;
    for (const std::string& name : packed.layer_names()) {
        BinaryLayout layout = decode_layer(packed.load_layer(name), name);
        if (dequantize) {
            const Matrix w = pbs2p::dequantize(layout);
            tensors.push_back(tensor_from_floats(name + ".weight", w.ptr(), {w.rows, w.cols}, DType::f32));
        }
        layouts.emplace(name, std::move(layout));
    }
    for (const std::string& name : packed.other_tensor_names()) tensors.push_back(copy_tensor(packed.tensors().tensor(name)));
    for (const std::string& name : packed.table_names()) {
        const Matrix w = decode_table(packed.load_table(name));
        tensors.push_back(tensor_from_floats(name, w.ptr(), {w.rows, w.cols}, DType::f32));
    }
    fs::create_directories(out);
    write_layouts((out / kLayoutsFileName).string(), layouts);
    if (!tensors.empty()) write_safetensors((out / "model.safetensors").string(), tensors);
    copy_side_files(file.parent_path().empty() ? fs::path(".") : file.parent_path(), out);
}

}  // namespace pbs2p
