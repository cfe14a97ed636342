// safetensors reader (mmap, validated headers, sharded index) and atomic writer.
#include "io/safetensors.h"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/half.h"

namespace pbs2p {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Headers beyond this are treated as corrupt rather than allocated and parsed.
constexpr uint64_t kMaxHeaderBytes = 100ull * 1000 * 1000;
constexpr const char* kIndexFileName = "model.safetensors.index.json";
constexpr const char* kSingleFileName = "model.safetensors";

// One row per dtype the format accepts; everything else is rejected by name.
struct DTypeRow {
    DType dtype;
    const char* name;
    int size;
    bool is_float;  // convertible to fp32 by load_matrix / load_vector
};

constexpr DTypeRow kDTypes[] = {
    {DType::f32, "F32", 4, true}, {DType::f16, "F16", 2, true},  {DType::bf16, "BF16", 2, true},
    {DType::u8, "U8", 1, false},  {DType::i32, "I32", 4, false},
};

const DTypeRow& dtype_row(DType dtype) {
    for (const DTypeRow& row : kDTypes)
        if (row.dtype == dtype) return row;
    fail("unknown DType value {}", static_cast<int>(dtype));
}

const DTypeRow* find_dtype(const std::string& name) {
    for (const DTypeRow& row : kDTypes)
        if (name == row.name) return &row;
    return nullptr;
}

std::string supported_dtype_list() {
    std::vector<std::string> names;
    for (const DTypeRow& row : kDTypes) names.emplace_back(row.name);
    return fmt::format("{}", fmt::join(names, ", "));
}

std::string shape_str(const std::vector<int64_t>& shape) {
    return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Error messages stay one printable line even when the text comes from a corrupt file.
std::string printable(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (c >= 0x20 && c < 0x7f)
            out += static_cast<char>(c);
        else
            out += fmt::format("\\x{:02x}", c);
    }
    return out;
}

// Product of the dims, or -1 on overflow.
int64_t checked_numel(const std::vector<int64_t>& shape) {
    int64_t numel = 1;
    for (int64_t dim : shape)
        if (__builtin_mul_overflow(numel, dim, &numel)) return -1;
    return numel;
}

// A read-only private mapping of a whole file.
class MappedFile {
  public:
    explicit MappedFile(std::string path) : path_(std::move(path)) {
        int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        PBS2P_CHECK(fd >= 0, "{}: cannot open: {}", path_, std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            fail("{}: not a regular file", path_);
        }
        size_ = static_cast<size_t>(st.st_size);
        if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            int err = errno;
            ::close(fd);
            PBS2P_CHECK(p != MAP_FAILED, "{}: cannot mmap {} bytes: {}", path_, size_, std::strerror(err));
            data_ = static_cast<const uint8_t*>(p);
        } else {
            ::close(fd);
        }
    }
    ~MappedFile() {
        if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::string& path() const { return path_; }
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    // Hands the mapped pages back to the kernel; touched again, they are read from the file.
    void drop_pages() const {
        if (data_) ::madvise(const_cast<uint8_t*>(data_), size_, MADV_DONTNEED);
    }

  private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

Json parse_json(const char* first, const char* last, const std::string& file, const char* what) {
    try {
        return Json::parse(first, last);
    } catch (const Json::exception& e) {
        fail("{}: {} is not valid JSON: {}", file, what, printable(e.what()));
    }
}

const Json& require_field(const Json& entry, const char* field, const std::string& file,
                          const std::string& name) {
    auto it = entry.find(field);
    PBS2P_CHECK(it != entry.end(), "{}: tensor '{}' has no '{}'", file, name, field);
    return *it;
}

// A JSON array of non-negative integers (shape or data_offsets).
std::vector<int64_t> read_int_array(const Json& value, const char* field, const std::string& file,
                                    const std::string& name) {
    PBS2P_CHECK(value.is_array(), "{}: tensor '{}': '{}' is not an array", file, name, field);
    std::vector<int64_t> out;
    for (const Json& item : value) {
        PBS2P_CHECK(item.is_number_unsigned(),
                    "{}: tensor '{}': '{}' holds a value that is not a non-negative integer", file, name,
                    field);
        uint64_t v = item.get<uint64_t>();
        PBS2P_CHECK(v <= static_cast<uint64_t>(INT64_MAX), "{}: tensor '{}': '{}' value {} is too large",
                    file, name, field, v);
        out.push_back(static_cast<int64_t>(v));
    }
    return out;
}

struct ParsedFile {
    std::vector<TensorInfo> tensors;
    std::map<std::string, std::string> metadata;
};

std::map<std::string, std::string> read_metadata(const Json& value, const std::string& file) {
    std::map<std::string, std::string> metadata;
    if (value.is_null()) return metadata;
    PBS2P_CHECK(value.is_object(), "{}: __metadata__ is not a JSON object", file);
    for (const auto& [key, item] : value.items()) {
        PBS2P_CHECK(item.is_string(), "{}: __metadata__ value for '{}' is not a string", file, key);
        metadata[key] = item.get<std::string>();
    }
    return metadata;
}

TensorInfo read_tensor_entry(const std::string& name, const Json& entry, const MappedFile& file,
                             const uint8_t* data_area, uint64_t data_size) {
    const std::string& path = file.path();
    PBS2P_CHECK(entry.is_object(), "{}: tensor '{}' entry is not a JSON object", path, name);
    const Json& dtype_json = require_field(entry, "dtype", path, name);
    const Json& shape_json = require_field(entry, "shape", path, name);
    const Json& offsets_json = require_field(entry, "data_offsets", path, name);

    PBS2P_CHECK(dtype_json.is_string(), "{}: tensor '{}': 'dtype' is not a string", path, name);
    const std::string dtype_text = dtype_json.get<std::string>();
    const DTypeRow* row = find_dtype(dtype_text);
    PBS2P_CHECK(row, "unsupported dtype '{}' for tensor '{}' in {}; supported: {}", dtype_text, name, path,
                supported_dtype_list());

    TensorInfo info;
    info.name = name;
    info.dtype = row->dtype;
    info.file = path;
    info.shape = read_int_array(shape_json, "shape", path, name);
    std::vector<int64_t> offsets = read_int_array(offsets_json, "data_offsets", path, name);
    PBS2P_CHECK(offsets.size() == 2, "{}: tensor '{}': 'data_offsets' has {} values, expected 2", path, name,
                offsets.size());
    const int64_t begin = offsets[0], end = offsets[1];
    PBS2P_CHECK(begin <= end, "{}: tensor '{}': data_offsets [{}, {}] begin > end", path, name, begin, end);
    PBS2P_CHECK(static_cast<uint64_t>(end) <= data_size,
                "{}: tensor '{}': data_offsets [{}, {}] out of bounds of the {}-byte data area", path, name,
                begin, end, data_size);

    const int64_t numel = checked_numel(info.shape);
    int64_t expected = -1;
    PBS2P_CHECK(numel >= 0 && !__builtin_mul_overflow(numel, int64_t{row->size}, &expected),
                "{}: tensor '{}': shape {} is too large", path, name, shape_str(info.shape));
    info.nbytes = end - begin;
    PBS2P_CHECK(info.nbytes == expected, "{}: tensor '{}' holds {} bytes but {} x {} needs {}", path, name,
                info.nbytes, row->name, shape_str(info.shape), expected);
    info.data = data_area + begin;
    return info;
}

// Tensors (other than empty ones) must occupy disjoint byte ranges.
void check_no_overlap(std::vector<TensorInfo> tensors, const std::string& path) {
    std::erase_if(tensors, [](const TensorInfo& t) { return t.nbytes == 0; });
    std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
        return a.data != b.data ? a.data < b.data : a.nbytes < b.nbytes;
    });
    for (size_t i = 1; i < tensors.size(); ++i) {
        const TensorInfo& prev = tensors[i - 1];
        const TensorInfo& cur = tensors[i];
        PBS2P_CHECK(cur.data >= prev.data + prev.nbytes, "{}: tensors '{}' and '{}' overlap in the data area",
                    path, prev.name, cur.name);
    }
}

ParsedFile parse_safetensors(const MappedFile& file) {
    const std::string& path = file.path();
    PBS2P_CHECK(file.size() >= 8, "{}: file is {} bytes, shorter than the 8-byte header length", path,
                file.size());
    uint64_t header_len = 0;
    std::memcpy(&header_len, file.data(), 8);
    PBS2P_CHECK(header_len <= kMaxHeaderBytes, "{}: header length {} is absurd (over {} MB)", path,
                header_len, kMaxHeaderBytes / 1000000);
    PBS2P_CHECK(header_len <= file.size() - 8,
                "{}: header length {} runs past the end of the file ({} bytes)", path, header_len,
                file.size());

    const char* header_begin = reinterpret_cast<const char*>(file.data() + 8);
    Json header = parse_json(header_begin, header_begin + header_len, path, "header");
    PBS2P_CHECK(header.is_object(), "{}: header is not a JSON object", path);

    const uint8_t* data_area = file.data() + 8 + header_len;
    const uint64_t data_size = file.size() - 8 - header_len;
    ParsedFile parsed;
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__")
            parsed.metadata = read_metadata(value, path);
        else
            parsed.tensors.push_back(read_tensor_entry(key, value, file, data_area, data_size));
    }
    check_no_overlap(parsed.tensors, path);
    return parsed;
}

// Copies `n` little-endian 16-bit codes from possibly unaligned bytes and converts them chunk by chunk.
template <typename RowConvert>
void convert_u16(const uint8_t* src, float* dst, int64_t n, RowConvert row_convert) {
    constexpr int64_t kChunk = 4096;
    uint16_t codes[kChunk];
    for (int64_t i = 0; i < n; i += kChunk) {
        const int64_t len = std::min(kChunk, n - i);
        std::memcpy(codes, src + 2 * i, static_cast<size_t>(len) * 2);
        row_convert(codes, dst + i, len);
    }
}

void convert_to_f32(const TensorInfo& info, float* dst) {
    const int64_t n = info.numel();
    switch (info.dtype) {
        case DType::f32:
            if (n > 0) std::memcpy(dst, info.data, static_cast<size_t>(n) * 4);
            return;
        case DType::f16:
            convert_u16(info.data, dst, n, fp16_to_f32_row);
            return;
        case DType::bf16:
            convert_u16(info.data, dst, n, bf16_to_f32_row);
            return;
        default:
            fail("{}: tensor '{}' has dtype {}, which is not a floating-point type", info.file, info.name,
                 dtype_name(info.dtype));
    }
}

void check_finite(const TensorInfo& info, const float* values, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        PBS2P_CHECK(std::isfinite(values[i]), "{}: tensor '{}' holds non-finite value {} at index {}",
                    info.file, info.name, values[i], i);
}

void check_shape(const TensorInfo& info, const std::vector<int64_t>& expected) {
    PBS2P_CHECK(info.shape == expected, "{}: tensor '{}' has shape {}, expected {}", info.file, info.name,
                shape_str(info.shape), shape_str(expected));
    PBS2P_CHECK(dtype_row(info.dtype).is_float,
                "{}: tensor '{}' has dtype {}, which is not a floating-point type", info.file, info.name,
                dtype_name(info.dtype));
}

std::string read_small_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    PBS2P_CHECK(in, "{}: cannot open: {}", path, std::strerror(errno));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    PBS2P_CHECK(!in.bad(), "{}: read error", path);
    return text;
}

}  // namespace

const char* dtype_name(DType dtype) {
    return dtype_row(dtype).name;
}
int dtype_size(DType dtype) {
    return dtype_row(dtype).size;
}

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t dim : shape) n *= dim;
    return n;
}

struct SafetensorsReader::Impl {
    std::string origin;                              // the path given to open()
    std::vector<std::unique_ptr<MappedFile>> files;  // kept mapped while the reader lives
    std::map<std::string, TensorInfo> tensors;
    std::map<std::string, std::string> metadata;

    // Maps and validates one file and adds its tensors; returns the names it holds.
    std::set<std::string> add_file(const std::string& path) {
        files.push_back(std::make_unique<MappedFile>(path));
        ParsedFile parsed = parse_safetensors(*files.back());
        if (files.size() == 1) metadata = std::move(parsed.metadata);
        std::set<std::string> names;
        for (TensorInfo& info : parsed.tensors) {
            auto [it, inserted] = tensors.emplace(info.name, info);
            PBS2P_CHECK(inserted, "{}: tensor '{}' appears in both {} and {}", origin, info.name,
                        it->second.file, path);
            names.insert(info.name);
        }
        return names;
    }

    void add_index(const std::string& index_path) {
        const std::string text = read_small_file(index_path);
        Json index = parse_json(text.data(), text.data() + text.size(), index_path, "index");
        PBS2P_CHECK(index.is_object(), "{}: index is not a JSON object", index_path);
        auto weight_map = index.find("weight_map");
        PBS2P_CHECK(weight_map != index.end() && weight_map->is_object(),
                    "{}: index has no 'weight_map' object", index_path);
        PBS2P_CHECK(!weight_map->empty(), "{}: 'weight_map' lists no tensors", index_path);

        // shard file name -> tensors the index places in it
        std::map<std::string, std::vector<std::string>> shards;
        for (const auto& [name, shard] : weight_map->items()) {
            PBS2P_CHECK(shard.is_string(), "{}: weight_map entry for tensor '{}' is not a file name",
                        index_path, name);
            // Shards sit beside the index: a path (or "..") could make a hostile index open any file.
            const std::string file = shard.get<std::string>();
            PBS2P_CHECK(!file.empty() && file != "." && file != ".." && file.find('/') == std::string::npos,
                        "{}: weight_map entry for tensor '{}' names '{}', not a file beside the index",
                        index_path, name, printable(file));
            shards[shard.get<std::string>()].push_back(name);
        }
        const fs::path dir = fs::path(index_path).parent_path();
        for (const auto& [shard, names] : shards) {
            const std::string shard_path = (dir / shard).string();
            std::error_code ec;
            PBS2P_CHECK(fs::is_regular_file(shard_path, ec),
                        "{}: shard '{}' (holding tensor '{}') does not exist", index_path, shard,
                        names.front());
            std::set<std::string> held = add_file(shard_path);
            for (const std::string& name : names)
                PBS2P_CHECK(held.count(name), "{}: tensor '{}' is mapped to shard '{}' but missing from it",
                            index_path, name, shard);
        }
    }
};

SafetensorsReader SafetensorsReader::open(const std::string& path) {
    SafetensorsReader reader;
    Impl& impl = *reader.impl_;
    impl.origin = path;
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    PBS2P_CHECK(fs::exists(status), "{}: no such file or directory", path);
    if (fs::is_directory(status)) {
        const fs::path dir(path);
        if (fs::exists(dir / kIndexFileName, ec))
            impl.add_index((dir / kIndexFileName).string());
        else if (fs::exists(dir / kSingleFileName, ec))
            impl.add_file((dir / kSingleFileName).string());
        else
            fail("{}: directory holds neither {} nor {}", path, kSingleFileName, kIndexFileName);
    } else if (fs::path(path).extension() == ".json") {
        impl.add_index(path);
    } else {
        impl.add_file(path);
    }
    return reader;
}

SafetensorsReader::SafetensorsReader() : impl_(std::make_unique<Impl>()) {}
SafetensorsReader::~SafetensorsReader() = default;
SafetensorsReader::SafetensorsReader(SafetensorsReader&&) noexcept = default;
SafetensorsReader& SafetensorsReader::operator=(SafetensorsReader&&) noexcept = default;

bool SafetensorsReader::has(const std::string& name) const {
    return impl_ && impl_->tensors.count(name) > 0;
}

const TensorInfo& SafetensorsReader::tensor(const std::string& name) const {
    PBS2P_CHECK(impl_, "use of a moved-from SafetensorsReader (tensor '{}')", name);
    auto it = impl_->tensors.find(name);
    PBS2P_CHECK(it != impl_->tensors.end(), "{}: missing tensor '{}'", impl_->origin, name);
    return it->second;
}

void SafetensorsReader::drop_cached_pages() const {
    if (impl_)
        for (const auto& file : impl_->files) file->drop_pages();
}

std::vector<std::string> SafetensorsReader::names() const {
    std::vector<std::string> out;
    if (!impl_) return out;
    for (const auto& entry : impl_->tensors) out.push_back(entry.first);
    return out;
}

const std::map<std::string, std::string>& SafetensorsReader::metadata() const {
    static const std::map<std::string, std::string> kEmpty;
    return impl_ ? impl_->metadata : kEmpty;
}

Matrix SafetensorsReader::load_matrix(const std::string& name, int64_t rows, int64_t cols) const {
    const TensorInfo& info = tensor(name);
    check_shape(info, {rows, cols});
    Matrix out(rows, cols);
    convert_to_f32(info, out.ptr());
    check_finite(info, out.ptr(), out.size());
    return out;
}

std::vector<float> SafetensorsReader::load_vector(const std::string& name, int64_t n) const {
    const TensorInfo& info = tensor(name);
    check_shape(info, {n});
    std::vector<float> out(static_cast<size_t>(n));
    convert_to_f32(info, out.data());
    check_finite(info, out.data(), n);
    return out;
}

// ---------------------------------------------------------------------------------------------------------
// Writer

std::vector<float> tensor_to_floats(const TensorToWrite& t) {
    TensorInfo info;
    info.name = t.name;
    info.dtype = t.dtype;
    info.shape = t.shape;
    info.data = t.bytes.data();
    info.nbytes = static_cast<int64_t>(t.bytes.size());
    info.file = "(in memory)";
    PBS2P_CHECK(info.numel() * dtype_size(t.dtype) == info.nbytes, "tensor '{}': {} bytes do not fit {} {}",
                t.name, t.bytes.size(), dtype_name(t.dtype), shape_str(t.shape));
    std::vector<float> out(static_cast<size_t>(info.numel()));
    convert_to_f32(info, out.data());
    return out;
}

TensorToWrite tensor_from_floats(const std::string& name, const float* values, std::vector<int64_t> shape,
                                 DType dtype) {
    const DTypeRow& row = dtype_row(dtype);
    PBS2P_CHECK(row.is_float, "tensor '{}': cannot store floats as dtype {}", name, row.name);
    const int64_t numel = checked_numel(shape);
    PBS2P_CHECK(numel >= 0 && std::all_of(shape.begin(), shape.end(), [](int64_t d) { return d >= 0; }),
                "tensor '{}': invalid shape {}", name, shape_str(shape));
    TensorToWrite out;
    out.name = name;
    out.dtype = dtype;
    out.shape = std::move(shape);
    out.bytes.resize(static_cast<size_t>(numel) * row.size);
    if (dtype == DType::f32) {
        if (numel > 0) std::memcpy(out.bytes.data(), values, out.bytes.size());
        return out;
    }
    uint16_t (*to_code)(float) = dtype == DType::f16 ? f32_to_fp16 : f32_to_bf16;
    for (int64_t i = 0; i < numel; ++i) {
        const uint16_t code = to_code(values[i]);
        std::memcpy(out.bytes.data() + 2 * i, &code, 2);
    }
    return out;
}

namespace {

// Header JSON padded with spaces to a multiple of 8, so the data area starts 8-byte aligned.
// Tensors follow one another without gaps in name order (as strict readers require); `offsets` receives
// each tensor's data offset.
std::string build_header(const std::string& path, const std::vector<TensorSpec>& sorted,
                         const std::map<std::string, std::string>& metadata, std::vector<int64_t>& offsets) {
    Json header = Json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    int64_t offset = 0;
    offsets.clear();
    for (const TensorSpec& t : sorted) {
        const int64_t end = offset + checked_numel(t.shape) * dtype_size(t.dtype);
        header[t.name] = {
            {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, end}}};
        offsets.push_back(offset);
        offset = end;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const Json::exception& e) {
        fail("{}: cannot encode header: {}", path, printable(e.what()));
    }
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
}

void validate_specs(const std::string& path, const std::vector<TensorSpec>& sorted) {
    for (size_t i = 0; i < sorted.size(); ++i) {
        const TensorSpec& t = sorted[i];
        PBS2P_CHECK(!t.name.empty() && t.name != "__metadata__", "{}: invalid tensor name '{}'", path,
                    t.name);
        PBS2P_CHECK(i == 0 || sorted[i - 1].name != t.name, "{}: tensor '{}' given twice", path, t.name);
        const int64_t numel = checked_numel(t.shape);
        const bool dims_ok = std::all_of(t.shape.begin(), t.shape.end(), [](int64_t d) { return d >= 0; });
        int64_t bytes = -1;
        PBS2P_CHECK(
            dims_ok && numel >= 0 && !__builtin_mul_overflow(numel, int64_t{dtype_size(t.dtype)}, &bytes),
            "{}: tensor '{}': invalid shape {}", path, t.name, shape_str(t.shape));
    }
}

}  // namespace

int64_t TensorSpec::nbytes() const {
    return checked_numel(shape) * dtype_size(dtype);
}

SafetensorsFileWriter::SafetensorsFileWriter(std::string path, std::vector<TensorSpec> specs,
                                             const std::map<std::string, std::string>& metadata)
    : specs_(std::move(specs)) {
    std::sort(specs_.begin(), specs_.end(),
              [](const TensorSpec& a, const TensorSpec& b) { return a.name < b.name; });
    validate_specs(path, specs_);
    const std::string header = build_header(path, specs_, metadata, offsets_);
    data_start_ = 8 + header.size();
    written_.assign(specs_.size(), 0);
    file_ = std::make_unique<AtomicFileWriter>(std::move(path));
    const uint64_t header_len = header.size();
    file_->write(&header_len, 8);
    file_->write(header.data(), header.size());
}

SafetensorsFileWriter::~SafetensorsFileWriter() = default;

int64_t SafetensorsFileWriter::find(const std::string& name) const {
    const auto it = std::lower_bound(specs_.begin(), specs_.end(), name,
                                     [](const TensorSpec& s, const std::string& n) { return s.name < n; });
    return it != specs_.end() && it->name == name ? it - specs_.begin() : -1;
}

void SafetensorsFileWriter::write(const TensorToWrite& t) {
    const int64_t found = find(t.name);
    PBS2P_CHECK(found >= 0, "{}: tensor '{}' is not in the file's header", file_->path(), t.name);
    const size_t i = static_cast<size_t>(found);
    const TensorSpec* it = &specs_[i];
    PBS2P_CHECK(!written_[i], "{}: tensor '{}' written twice", file_->path(), t.name);
    PBS2P_CHECK(
        t.dtype == it->dtype && t.shape == it->shape && static_cast<int64_t>(t.bytes.size()) == it->nbytes(),
        "{}: tensor '{}' is {} {} ({} bytes), the header says {} {}", file_->path(), t.name,
        dtype_name(t.dtype), shape_str(t.shape), t.bytes.size(), dtype_name(it->dtype), shape_str(it->shape));
    file_->write_at(data_start_ + static_cast<uint64_t>(offsets_[i]), t.bytes.data(), t.bytes.size());
    written_[i] = 1;
    ++count_;
}

bool SafetensorsFileWriter::has(const std::string& name) const {
    return find(name) >= 0;
}

void SafetensorsFileWriter::commit() {
    for (size_t i = 0; i < specs_.size(); ++i)
        PBS2P_CHECK(written_[i], "{}: tensor '{}' was never written", file_->path(), specs_[i].name);
    file_->commit();
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    std::vector<TensorSpec> specs;
    for (const TensorToWrite& t : tensors) specs.push_back({t.name, t.dtype, t.shape});
    std::vector<TensorSpec> sorted = specs;
    std::sort(sorted.begin(), sorted.end(),
              [](const TensorSpec& a, const TensorSpec& b) { return a.name < b.name; });
    validate_specs(path, sorted);
    for (const TensorToWrite& t : tensors) {
        const int64_t expected = TensorSpec{t.name, t.dtype, t.shape}.nbytes();
        PBS2P_CHECK(static_cast<int64_t>(t.bytes.size()) == expected,
                    "{}: tensor '{}' has {} bytes but {} x {} needs {}", path, t.name, t.bytes.size(),
                    dtype_name(t.dtype), shape_str(t.shape), expected);
    }
    SafetensorsFileWriter file(path, std::move(specs), metadata);
    for (const TensorToWrite& t : tensors) file.write(t);
    file.commit();
}

}  // namespace pbs2p
