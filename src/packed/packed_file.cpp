#include "packed/packed_file.h"

#include <fmt/ranges.h>
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace pbs2p {
namespace {

using nlohmann::json;

std::string codes_name(const std::string& layer) {
    return layer + ".codes";
}
std::string scales_name(const std::string& layer) {
    return layer + ".scales";
}

json desc_to_json(const PackedLayerDesc& d) {
    return {{"code", d.code},          {"rows", d.rows},       {"cols", d.cols},
            {"n_keep", d.n_keep},      {"m_group", d.m_group}, {"scale_group", d.scale_group},
            {"code_bits", d.code_bits}};
}

// Stored scales: N:M codes keep (alpha, mu) pairs [rows, groups, 2]; codebook codes alpha only [rows,
// groups].
std::vector<int64_t> scales_shape(const PackedLayerDesc& d) {
    if (d.is_nm()) return {d.rows, d.scale_groups_per_row(), 2};
    return {d.rows, d.scale_groups_per_row()};
}

std::vector<uint16_t> stored_scales(const PackedLayer& layer) {
    std::vector<uint16_t> out;
    for (const ScalePair& p : layer.scales) {
        out.push_back(p.alpha_fp16);
        if (layer.desc.is_nm()) out.push_back(p.mu_fp16);
    }
    return out;
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
    if (j.contains("code")) {
        PBS2P_CHECK(j.at("code").is_string(), "{}: descriptor field 'code' must be a string", what);
        d.code = j.at("code").get<std::string>();
    }
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

// Returns the file's version, which must lie in [min_version, version].
int check_format(const std::map<std::string, std::string>& metadata, const std::string& name, int version,
                 const std::string& file, int min_version) {
    const auto format = metadata.find("format");
    PBS2P_CHECK(format != metadata.end() && format->second == name, "{}: not a {} file (format '{}')", file,
                name, format == metadata.end() ? std::string("none") : format->second);
    const auto v = metadata.find("format_version");
    for (int accepted = min_version; accepted <= version; ++accepted)
        if (v != metadata.end() && v->second == std::to_string(accepted)) return accepted;
    const std::string range =
        min_version == version ? std::to_string(version) : fmt::format("{} to {}", min_version, version);
    fail("{}: {} version '{}' is not supported (this build reads version {})", file, name,
         v == metadata.end() ? std::string("none") : v->second, range);
}

// ---- tables ----

// Stored dtype and shape of a table tensor: f32 / f16 as [rows, cols] floats, blocked types as U8 rows.
DType table_dtype(TableType type) {
    switch (type) {
        case TableType::f32:
            return DType::f32;
        case TableType::f16:
            return DType::f16;
        default:
            return DType::u8;
    }
}

std::vector<int64_t> table_shape(const TableDesc& d) {
    if (table_dtype(d.type) == DType::u8) return {d.rows, table_format(d.type).row_bytes(d.cols)};
    return {d.rows, d.cols};
}

json table_desc_to_json(const TableDesc& d) {
    return {{"type", table_type_name(d.type)}, {"rows", d.rows}, {"cols", d.cols}};
}

TableDesc table_desc_from_json(const json& j, const std::string& what) {
    TableDesc d;
    try {
        d.type = parse_table_type(j.at("type").get<std::string>());
        d.rows = j.at("rows").get<int64_t>();
        d.cols = j.at("cols").get<int64_t>();
    } catch (const json::exception& e) {
        fail("{}: malformed table descriptor ({})", what, e.what());
    } catch (const Error& e) {
        fail("{}: {}", what, e.what());
    }
    PBS2P_CHECK(d.rows > 0 && d.cols > 0, "{}: table shape [{} x {}] is empty", what, d.rows, d.cols);
    PBS2P_CHECK(d.type != TableType::f32, "{}: f32 tables are stored as plain tensors, not listed", what);
    return d;
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
    PBS2P_CHECK(t.dtype == dtype, "{}: tensor '{}' has dtype {}, expected {}", file, name,
                dtype_name(t.dtype), dtype_name(dtype));
    PBS2P_CHECK(t.nbytes == nbytes, "{}: tensor '{}' holds {} bytes, the descriptor needs {}", file, name,
                t.nbytes, nbytes);
    return t;
}

}  // namespace

std::string xxh3_hex(const uint8_t* data, int64_t size) {
    return fmt::format("{:016x}", XXH3_64bits(data, static_cast<size_t>(size)));
}

void write_packed_file(const std::string& path, const std::map<std::string, PackedLayer>& layers,
                       std::vector<TensorToWrite> other_tensors,
                       const std::map<std::string, std::string>& metadata,
                       const std::map<std::string, WeightTable>& tables) {
    json descs = json::object();
    std::vector<TensorToWrite> tensors = std::move(other_tensors);
    json table_descs = json::object();
    for (const auto& [name, table] : tables) {
        const TableDesc d{table.type, table.rows, table.cols};
        PBS2P_CHECK(table.bytes() == d.rows * table.row_bytes(), "{}: table '{}' holds {} bytes, expected {}",
                    path, name, table.bytes(), d.rows * table.row_bytes());
        tensors.push_back(
            raw_tensor(name, table_dtype(d.type), table_shape(d), table.data.data(), table.data.size()));
        if (d.type != TableType::f32) table_descs[name] = table_desc_to_json(d);
    }
    for (const auto& [name, layer] : layers) {
        validate_layer(layer, name);
        descs[name] = desc_to_json(layer.desc);
        tensors.push_back(raw_tensor(codes_name(name), DType::u8, {static_cast<int64_t>(layer.codes.size())},
                                     layer.codes.data(), layer.codes.size()));
        const std::vector<uint16_t> scales = stored_scales(layer);
        tensors.push_back(raw_tensor(scales_name(name), DType::f16, scales_shape(layer.desc), scales.data(),
                                     scales.size() * sizeof(uint16_t)));
    }
    std::set<std::string> seen;
    json checksums = json::object();
    for (const TensorToWrite& t : tensors) {
        PBS2P_CHECK(seen.insert(t.name).second, "{}: tensor '{}' written twice", path, t.name);
        checksums[t.name] = xxh3_hex(t.bytes.data(), static_cast<int64_t>(t.bytes.size()));
    }
    std::map<std::string, std::string> meta = metadata;
    for (const char* key : {"format", "format_version", "packed_layers", "tables", "checksums"})
        PBS2P_CHECK(!meta.count(key), "{}: metadata key '{}' is reserved", path, key);
    meta["format"] = kPackedFormatName;
    // The oldest version that describes the file (2: weight tables or codebook codes), so files without them
    // stay readable by version-1 readers.
    bool codebook = false;
    for (const auto& [name, layer] : layers) codebook = codebook || !layer.desc.is_nm();
    meta["format_version"] = std::to_string(table_descs.empty() && !codebook ? 1 : 2);
    meta["packed_layers"] = descs.dump();
    if (!table_descs.empty()) meta["tables"] = table_descs.dump();
    meta["checksums"] = checksums.dump();
    write_safetensors(path, tensors, meta);
}

PackedFile PackedFile::open(const std::string& path) {
    PackedFile f;
    f.path_ = path;
    f.reader_ = SafetensorsReader::open(path);
    const auto& meta = f.reader_.metadata();
    f.version_ = check_format(meta, kPackedFormatName, kPackedFormatVersion, path, kPackedFormatVersionMin);

    const json descs = parse_metadata_json(meta, "packed_layers", path);
    PBS2P_CHECK(descs.is_object(), "{}: 'packed_layers' must be a JSON object", path);
    for (const auto& [name, j] : descs.items()) {
        const PackedLayerDesc d = desc_from_json(j, fmt::format("{}: layer '{}'", path, name));
        PBS2P_CHECK(d.is_nm() || f.version_ >= 2, "{}: layer '{}' uses code {}, which needs format version 2",
                    path, name, d.code);
        checked_tensor(f.reader_, codes_name(name), DType::u8, d.code_bytes(), path);
        checked_tensor(f.reader_, scales_name(name), DType::f16,
                       d.rows * d.scale_groups_per_row() * d.scale_bytes(), path);
        f.descs_[name] = d;
    }

    if (meta.count("tables")) {
        PBS2P_CHECK(f.version_ >= 2, "{}: 'tables' needs format version 2, the file says {}", path,
                    f.version_);
        const json tables = parse_metadata_json(meta, "tables", path);
        PBS2P_CHECK(tables.is_object(), "{}: 'tables' must be a JSON object", path);
        for (const auto& [name, j] : tables.items()) {
            const TableDesc d = table_desc_from_json(j, fmt::format("{}: table '{}'", path, name));
            PBS2P_CHECK(!f.descs_.count(name), "{}: '{}' is both a packed layer and a table", path, name);
            const TensorInfo& t = checked_tensor(f.reader_, name, table_dtype(d.type),
                                                 d.rows * table_format(d.type).row_bytes(d.cols), path);
            PBS2P_CHECK(t.shape == table_shape(d), "{}: table '{}' has shape [{}], expected [{}]", path, name,
                        fmt::join(t.shape, ", "), fmt::join(table_shape(d), ", "));
            f.tables_[name] = d;
        }
    }

    const json checksums = parse_metadata_json(meta, "checksums", path);
    PBS2P_CHECK(checksums.is_object(), "{}: 'checksums' must be a JSON object", path);
    for (const std::string& name : f.reader_.names()) {
        const auto it = checksums.find(name);
        PBS2P_CHECK(it != checksums.end() && it->is_string(), "{}: no checksum for tensor '{}'", path, name);
        const TensorInfo& t = f.reader_.tensor(name);
        const std::string actual = xxh3_hex(t.data, t.nbytes);
        PBS2P_CHECK(actual == it->get<std::string>(),
                    "{}: checksum mismatch in tensor '{}' (stored {}, computed {})", path, name,
                    it->get<std::string>(), actual);
    }
    PBS2P_CHECK(checksums.size() == f.reader_.names().size(),
                "{}: checksums list {} tensors, the file holds {}", path, checksums.size(),
                f.reader_.names().size());
    return f;
}

namespace {

template <class Map>
std::vector<std::string> sorted_keys(const Map& map) {
    std::vector<std::string> names;
    for (const auto& entry : map) names.push_back(entry.first);
    return names;
}

template <class Map>
const typename Map::mapped_type& find_named(const Map& map, const std::string& name, const std::string& file,
                                            const char* what) {
    const auto it = map.find(name);
    PBS2P_CHECK(it != map.end(), "{}: no {} '{}'", file, what, name);
    return it->second;
}

}  // namespace

std::vector<std::string> PackedFile::layer_names() const {
    return sorted_keys(descs_);
}

const PackedLayerDesc& PackedFile::desc(const std::string& name) const {
    return find_named(descs_, name, path_, "packed layer");
}

PackedLayer PackedFile::load_layer(const std::string& name) const {
    PackedLayer layer;
    layer.desc = desc(name);
    const TensorInfo& codes = reader_.tensor(codes_name(name));
    const TensorInfo& scales = reader_.tensor(scales_name(name));
    layer.codes.assign(codes.data, codes.data + codes.nbytes);
    const auto n_scales = static_cast<size_t>(layer.desc.rows * layer.desc.scale_groups_per_row());
    std::vector<uint16_t> stored(static_cast<size_t>(scales.nbytes) / sizeof(uint16_t));
    std::memcpy(stored.data(), scales.data, static_cast<size_t>(scales.nbytes));
    layer.scales.resize(n_scales);
    const size_t per = layer.desc.is_nm() ? 2 : 1;
    for (size_t s = 0; s < n_scales; ++s)
        layer.scales[s] = {stored[s * per], per == 2 ? stored[s * per + 1] : uint16_t{0}};
    validate_layer(layer, fmt::format("{}: layer '{}'", path_, name));
    return layer;
}

std::vector<std::string> PackedFile::table_names() const {
    return sorted_keys(tables_);
}

const TableDesc& PackedFile::table_desc(const std::string& name) const {
    return find_named(tables_, name, path_, "table");
}

WeightTable PackedFile::load_table(const std::string& name) const {
    const TableDesc& d = table_desc(name);
    const TensorInfo& t = reader_.tensor(name);
    return table_from_bytes(d.type, d.rows, d.cols, t.data, t.nbytes,
                            fmt::format("{}: table '{}'", path_, name));
}

std::vector<std::string> PackedFile::other_tensor_names() const {
    std::vector<std::string> out;
    for (const std::string& name : reader_.names()) {
        bool packed = tables_.count(name) != 0;
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
        PBS2P_CHECK(l.keep.size() == n && l.sign.size() == n &&
                        l.alpha.size() == static_cast<size_t>(l.rows * groups) &&
                        l.mu.size() == l.alpha.size(),
                    "{}: layout '{}' has inconsistent array sizes", path, name);
        descs[name] = {
            {"code", l.code}, {"n_keep", l.n_keep}, {"m_group", l.m_group}, {"scale_group", l.scale_group}};
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
    check_format(reader.metadata(), kLayoutsFormatName, 1, path, 1);
    const json descs = parse_metadata_json(reader.metadata(), "layouts", path);
    PBS2P_CHECK(descs.is_object(), "{}: 'layouts' must be a JSON object", path);
    std::map<std::string, BinaryLayout> out;
    for (const auto& [name, j] : descs.items()) {
        BinaryLayout l;
        const TensorInfo& keep = reader.tensor(name + ".keep");
        PBS2P_CHECK(keep.dtype == DType::u8 && keep.shape.size() == 2,
                    "{}: '{}.keep' must be U8 [rows, cols]", path, name);
        l.rows = keep.shape[0];
        l.cols = keep.shape[1];
        const std::string what = fmt::format("{}: layout '{}'", path, name);
        if (j.contains("code")) {
            PBS2P_CHECK(j.at("code").is_string(), "{}: field 'code' must be a string", what);
            l.code = j.at("code").get<std::string>();
        }
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
