#include "packed/packed_file.h"

#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace pbs2p {
namespace {

using nlohmann::json;

std::string codes_name(const std::string& layer) { return layer + ".codes"; }
std::string scales_name(const std::string& layer) { return layer + ".scales"; }

json desc_to_json(const PackedLayerDesc& d) {
    return {{"rows", d.rows},           {"cols", d.cols},
            {"n_keep", d.n_keep},       {"m_group", d.m_group},
            {"scale_group", d.scale_group}, {"code_bits", d.code_bits}};
}

// An integer field of a descriptor; floats are refused before any conversion (out of range they are UB).
int64_t integer_field(const json& j, const char* key, const std::string& what) {
    PBS2P_CHECK(j.is_object() && j.contains(key) && j.at(key).is_number_integer(),
                "{}: malformed descriptor ('{}' is missing or not an integer)", what, key);
    const json& v = j.at(key);
    return v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{INT64_MAX} ? INT64_MAX : v.get<int64_t>();
}

// An int-sized field (N, M, code width): out-of-range values become -1, which validation refuses.
int small_field(const json& j, const char* key, const std::string& what) {
    const int64_t v = integer_field(j, key, what);
    return v >= INT32_MIN && v <= INT32_MAX ? static_cast<int>(v) : -1;
}

PackedLayerDesc desc_from_json(const json& j, const std::string& what) {
    PackedLayerDesc d;
    d.rows = integer_field(j, "rows", what);
    d.cols = integer_field(j, "cols", what);
    d.n_keep = small_field(j, "n_keep", what);
    d.m_group = small_field(j, "m_group", what);
    d.scale_group = integer_field(j, "scale_group", what);
    d.code_bits = small_field(j, "code_bits", what);
    validate_desc(d, what);
    return d;
}

json parse_metadata_json(const std::map<std::string, std::string>& metadata, const std::string& key,
                         const std::string& file) {
    const auto it = metadata.find(key);
    PBS2P_CHECK(it != metadata.end(), "{}: __metadata__ has no '{}'", file, key);
    try {
        return json::parse(it->second);
    } catch (const json::exception&) {
        fail("{}: __metadata__ '{}' is not valid JSON", file, key);
    }
}

void check_format(const std::map<std::string, std::string>& metadata, const std::string& name, int version,
                  const std::string& file) {
    const auto format = metadata.find("format");
    PBS2P_CHECK(format != metadata.end() && format->second == name, "{}: not a {} file (format '{}')", file, name,
                format == metadata.end() ? std::string("none") : format->second);
    const auto v = metadata.find("format_version");
    PBS2P_CHECK(v != metadata.end() && v->second == std::to_string(version),
                "{}: {} version '{}' is not supported (this build reads version {})", file, name,
                v == metadata.end() ? std::string("none") : v->second, version);
}

TensorToWrite raw_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
                         size_t bytes) {
    TensorToWrite t{name, dtype, std::move(shape), std::vector<uint8_t>(bytes)};
    if (bytes) std::memcpy(t.bytes.data(), data, bytes);
    return t;
}

const TensorInfo& checked_tensor(const SafetensorsReader& reader, const std::string& name, DType dtype,
                                 int64_t nbytes, const std::string& file) {
    const TensorInfo& t = reader.tensor(name);
    PBS2P_CHECK(t.dtype == dtype, "{}: tensor '{}' has dtype {}, expected {}", file, name, dtype_name(t.dtype),
                dtype_name(dtype));
    PBS2P_CHECK(t.nbytes == nbytes, "{}: tensor '{}' holds {} bytes, the descriptor needs {}", file, name, t.nbytes,
                nbytes);
    return t;
}

}  // namespace

std::string xxh3_hex(const uint8_t* data, int64_t size) {
    return fmt::format("{:016x}", XXH3_64bits(data, static_cast<size_t>(size)));
}

void write_packed_file(const std::string& path, const std::map<std::string, PackedLayer>& layers,
                       std::vector<TensorToWrite> other_tensors, const std::map<std::string, std::string>& metadata) {
    json descs = json::object();
    std::vector<TensorToWrite> tensors = std::move(other_tensors);
    for (const auto& [name, layer] : layers) {
        validate_layer(layer, name);
        descs[name] = desc_to_json(layer.desc);
        tensors.push_back(raw_tensor(codes_name(name), DType::u8, {static_cast<int64_t>(layer.codes.size())},
                                     layer.codes.data(), layer.codes.size()));
        tensors.push_back(raw_tensor(scales_name(name), DType::f16,
                                     {layer.desc.rows, layer.desc.scale_groups_per_row(), 2}, layer.scales.data(),
                                     layer.scales.size() * sizeof(ScalePair)));
    }
    std::set<std::string> seen;
    json checksums = json::object();
    for (const TensorToWrite& t : tensors) {
        PBS2P_CHECK(seen.insert(t.name).second, "{}: tensor '{}' written twice", path, t.name);
        checksums[t.name] = xxh3_hex(t.bytes.data(), static_cast<int64_t>(t.bytes.size()));
    }
    std::map<std::string, std::string> meta = metadata;
    for (const char* key : {"format", "format_version", "packed_layers", "checksums"})
        PBS2P_CHECK(!meta.count(key), "{}: metadata key '{}' is reserved", path, key);
    meta["format"] = kPackedFormatName;
    meta["format_version"] = std::to_string(kPackedFormatVersion);
    meta["packed_layers"] = descs.dump();
    meta["checksums"] = checksums.dump();
    write_safetensors(path, tensors, meta);
}

PackedFile PackedFile::open(const std::string& path) {
    PackedFile f;
    f.path_ = path;
    f.reader_ = SafetensorsReader::open(path);
    const auto& meta = f.reader_.metadata();
    check_format(meta, kPackedFormatName, kPackedFormatVersion, path);

    const json descs = parse_metadata_json(meta, "packed_layers", path);
    PBS2P_CHECK(descs.is_object(), "{}: 'packed_layers' must be a JSON object", path);
    for (const auto& [name, j] : descs.items()) {
        const PackedLayerDesc d = desc_from_json(j, fmt::format("{}: layer '{}'", path, name));
        checked_tensor(f.reader_, codes_name(name), DType::u8, d.code_bytes(), path);
        checked_tensor(f.reader_, scales_name(name), DType::f16,
                       d.rows * d.scale_groups_per_row() * int64_t{sizeof(ScalePair)}, path);
        f.descs_[name] = d;
    }

    const json checksums = parse_metadata_json(meta, "checksums", path);
    PBS2P_CHECK(checksums.is_object(), "{}: 'checksums' must be a JSON object", path);
    for (const std::string& name : f.reader_.names()) {
        const auto it = checksums.find(name);
        PBS2P_CHECK(it != checksums.end() && it->is_string(), "{}: no checksum for tensor '{}'", path, name);
        const TensorInfo& t = f.reader_.tensor(name);
        const std::string actual = xxh3_hex(t.data, t.nbytes);
        PBS2P_CHECK(actual == it->get<std::string>(), "{}: checksum mismatch in tensor '{}' (stored {}, computed {})",
                    path, name, it->get<std::string>(), actual);
    }
    PBS2P_CHECK(checksums.size() == f.reader_.names().size(), "{}: checksums list {} tensors, the file holds {}",
                path, checksums.size(), f.reader_.names().size());
    return f;
}

std::vector<std::string> PackedFile::layer_names() const {
    std::vector<std::string> names;
    for (const auto& [name, d] : descs_) names.push_back(name);
    return names;
}

const PackedLayerDesc& PackedFile::desc(const std::string& name) const {
    const auto it = descs_.find(name);
    PBS2P_CHECK(it != descs_.end(), "{}: no packed layer '{}'", path_, name);
    return it->second;
}

PackedLayer PackedFile::load_layer(const std::string& name) const {
    PackedLayer layer;
    layer.desc = desc(name);
    const TensorInfo& codes = reader_.tensor(codes_name(name));
    const TensorInfo& scales = reader_.tensor(scales_name(name));
    layer.codes.assign(codes.data, codes.data + codes.nbytes);
    layer.scales.resize(static_cast<size_t>(scales.nbytes) / sizeof(ScalePair));
    std::memcpy(layer.scales.data(), scales.data, static_cast<size_t>(scales.nbytes));
    validate_layer(layer, fmt::format("{}: layer '{}'", path_, name));
    return layer;
}

std::vector<std::string> PackedFile::other_tensor_names() const {
    std::vector<std::string> out;
    for (const std::string& name : reader_.names()) {
        bool packed = false;
        for (const auto& [layer, d] : descs_) packed |= name == codes_name(layer) || name == scales_name(layer);
        if (!packed) out.push_back(name);
    }
    return out;
}

// ---- layouts interchange file ----------------------------------------------------------------------------

void write_layouts(const std::string& path, const std::map<std::string, BinaryLayout>& layouts) {
    json descs = json::object();
    std::vector<TensorToWrite> tensors;
    for (const auto& [name, l] : layouts) {
        desc_for(l, name);  // validates N:M and the shape
        const auto n = static_cast<size_t>(l.rows * l.cols);
        const int64_t groups = l.scale_groups_per_row();
        PBS2P_CHECK(l.keep.size() == n && l.sign.size() == n && l.alpha.size() == static_cast<size_t>(l.rows * groups) &&
                        l.mu.size() == l.alpha.size(),
                    "{}: layout '{}' has inconsistent array sizes", path, name);
        descs[name] = {{"n_keep", l.n_keep}, {"m_group", l.m_group}, {"scale_group", l.scale_group}};
        tensors.push_back(raw_tensor(name + ".keep", DType::u8, {l.rows, l.cols}, l.keep.data(), n));
        tensors.push_back(raw_tensor(name + ".sign", DType::u8, {l.rows, l.cols}, l.sign.data(), n));
        tensors.push_back(tensor_from_floats(name + ".alpha", l.alpha.data(), {l.rows, groups}, DType::f32));
        tensors.push_back(tensor_from_floats(name + ".mu", l.mu.data(), {l.rows, groups}, DType::f32));
    }
    write_safetensors(path, tensors,
                      {{"format", kLayoutsFormatName}, {"format_version", "1"}, {"layouts", descs.dump()}});
}

std::map<std::string, BinaryLayout> read_layouts(const std::string& path) {
    const SafetensorsReader reader = SafetensorsReader::open(path);
    check_format(reader.metadata(), kLayoutsFormatName, 1, path);
    const json descs = parse_metadata_json(reader.metadata(), "layouts", path);
    PBS2P_CHECK(descs.is_object(), "{}: 'layouts' must be a JSON object", path);
    std::map<std::string, BinaryLayout> out;
    for (const auto& [name, j] : descs.items()) {
        BinaryLayout l;
        const TensorInfo& keep = reader.tensor(name + ".keep");
        PBS2P_CHECK(keep.dtype == DType::u8 && keep.shape.size() == 2, "{}: '{}.keep' must be U8 [rows, cols]", path,
                    name);
        l.rows = keep.shape[0];
        l.cols = keep.shape[1];
        const std::string what = fmt::format("{}: layout '{}'", path, name);
        l.n_keep = small_field(j, "n_keep", what);
        l.m_group = small_field(j, "m_group", what);
        l.scale_group = integer_field(j, "scale_group", what);
        desc_for(l, fmt::format("{}: layout '{}'", path, name));
        const TensorInfo& sign = checked_tensor(reader, name + ".sign", DType::u8, l.rows * l.cols, path);
        l.keep.assign(keep.data, keep.data + keep.nbytes);
        l.sign.assign(sign.data, sign.data + sign.nbytes);
        const int64_t groups = l.scale_groups_per_row();
        const Matrix alpha = reader.load_matrix(name + ".alpha", l.rows, groups);
        const Matrix mu = reader.load_matrix(name + ".mu", l.rows, groups);
        l.alpha.assign(alpha.data.begin(), alpha.data.end());
        l.mu.assign(mu.data.begin(), mu.data.end());
        out.emplace(name, std::move(l));
    }
    return out;
}

}  // namespace pbs2p
