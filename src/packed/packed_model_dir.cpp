#include "packed/packed_model_dir.h"

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

}  // namespace

PackSummary pack_model_dir(const std::string& in_dir, const std::string& out_dir) {
    const fs::path in(in_dir), out(out_dir);
    const auto layouts = read_layouts((in / kLayoutsFileName).string());
    PackSummary summary;
    std::map<std::string, PackedLayer> layers;
    std::set<std::string> replaced;
    for (const auto& [name, layout] : layouts) {
        PackedLayer layer = encode_layer(layout, fmt::format("{}: layer '{}'", in_dir, name));
        summary.packed_weights += layout.rows * layout.cols;
        summary.packed_bytes += layer.storage_bytes();
        layers.emplace(name, std::move(layer));
        replaced.insert(name + ".weight");
    }
    summary.layers = static_cast<int>(layers.size());
    std::vector<TensorToWrite> others;
    if (has_model_tensors(in)) {
        const SafetensorsReader model = SafetensorsReader::open(in_dir);
        for (const std::string& name : model.names())
            if (!replaced.count(name)) others.push_back(copy_tensor(model.tensor(name)));
    }
    summary.other_tensors = static_cast<int64_t>(others.size());
    fs::create_directories(out);
    const fs::path file = out / kPackedModelFileName;
    write_packed_file(file.string(), layers, std::move(others));
    copy_side_files(in, out);
    summary.file_bytes = static_cast<int64_t>(fs::file_size(file));
    return summary;
}

void unpack_model_dir(const std::string& packed_path, const std::string& out_dir, bool dequantize) {
    const fs::path p(packed_path), out(out_dir);
    const fs::path file = fs::is_directory(p) ? p / kPackedModelFileName : p;
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
    fs::create_directories(out);
    write_layouts((out / kLayoutsFileName).string(), layouts);
    if (!tensors.empty()) write_safetensors((out / "model.safetensors").string(), tensors);
    copy_side_files(file.parent_path().empty() ? fs::path(".") : file.parent_path(), out);
}

}  // namespace pbs2p
