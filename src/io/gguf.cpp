// GGUF layout (little endian): "GGUF", u32 version, u64 tensor_count, u64 kv_count, then kv_count times
// {string key, u32 type, value}; a string is u64 length + bytes; an array is u32 element type, u64 count,
// elements. Then tensor_count tensor infos {string name, u32 n_dims, u64 dims[n_dims] (contiguous first),
// u32 ggml type, u64 offset}, zero padding to `general.alignment` (default 32), and the data section;
// every offset is relative to it and aligned.
#include "io/gguf.h"

#include <bit>
#include <cstring>
#include <fstream>

#include "core/error.h"

static_assert(std::endian::native == std::endian::little, "GGUF reader assumes a little-endian host");

namespace pbs2p {
namespace {

constexpr int max_array_depth = 8;
// Limits on what a header may claim (the real files' metadata is far below them): a GGUF holding gigabytes of
// weights could otherwise make one key allocate gigabytes before the claim is found out.
constexpr uint64_t kMaxStringBytes = 64ull << 20;
constexpr uint64_t kMaxArrayLength = 1ull << 24;

// Bounds-checked sequential reader over an input stream of known size.
class Reader {
  public:
    Reader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
        PBS2P_CHECK(in_, "{}: cannot open GGUF file", path);
        in_.seekg(0, std::ios::end);
        size_ = static_cast<uint64_t>(in_.tellg());
        in_.seekg(0);
    }
    void set_item(std::string item) { item_ = std::move(item); }
    uint64_t remaining() const { return size_ - pos_; }
    uint64_t position() const { return pos_; }
    uint64_t size() const { return size_; }

    void bytes(void* dst, uint64_t n) {
        PBS2P_CHECK(n <= remaining(),
                    "{}: truncated GGUF file while reading {} (needs {} bytes at offset {}, file has {})",
                    path_, item_, n, pos_, size_);
        in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
        PBS2P_CHECK(in_, "{}: read error at offset {} while reading {}", path_, pos_, item_);
        pos_ += n;
    }
    template <typename T>
    T scalar() {
        T value;
        bytes(&value, sizeof(T));
        return value;
    }
    std::string string() {
        const uint64_t n = scalar<uint64_t>();
        PBS2P_CHECK(n <= remaining(),
                    "{}: truncated GGUF file: string of {} bytes in {} at offset {} exceeds the file", path_,
                    n, item_, pos_);
        PBS2P_CHECK(n <= kMaxStringBytes,
                    "{}: string of {} bytes in {} at offset {} exceeds the limit of {} (kMaxStringBytes)",
                    path_, n, item_, pos_, kMaxStringBytes);
        std::string s(n, '\0');
        bytes(s.data(), n);
        return s;
    }
    [[noreturn]] void invalid(const std::string& what) {
        fail("{}: {} in {} at offset {}", path_, what, item_, pos_);
    }

  private:
    std::string path_;
    std::ifstream in_;
    uint64_t size_ = 0, pos_ = 0;
    std::string item_ = "header";
};

bool valid_type(uint32_t t) {
    return t <= static_cast<uint32_t>(GgufType::float64);
}

// Smallest encoded size of one value of `type` (used to reject absurd array counts before allocating).
uint64_t min_size(GgufType type) {
    switch (type) {
        case GgufType::uint8:
        case GgufType::int8:
        case GgufType::boolean:
            return 1;
        case GgufType::uint16:
        case GgufType::int16:
            return 2;
        case GgufType::uint32:
        case GgufType::int32:
        case GgufType::float32:
            return 4;
        case GgufType::uint64:
        case GgufType::int64:
        case GgufType::float64:
        case GgufType::string:
            return 8;
        case GgufType::array:
            return 12;
    }
    return 1;
}

// Reads one scalar of `type` into integer/real/text.
void read_scalar(Reader& r, GgufType type, GgufValue& v) {
    switch (type) {
        case GgufType::uint8:
            v.integer = r.scalar<uint8_t>();
            break;
        case GgufType::int8:
            v.integer = r.scalar<int8_t>();
            break;
        case GgufType::uint16:
            v.integer = r.scalar<uint16_t>();
            break;
        case GgufType::int16:
            v.integer = r.scalar<int16_t>();
            break;
        case GgufType::uint32:
            v.integer = r.scalar<uint32_t>();
            break;
        case GgufType::int32:
            v.integer = r.scalar<int32_t>();
            break;
        case GgufType::uint64:
            v.integer = static_cast<int64_t>(r.scalar<uint64_t>());
            break;
        case GgufType::int64:
            v.integer = r.scalar<int64_t>();
            break;
        case GgufType::float32:
            v.real = r.scalar<float>();
            break;
        case GgufType::float64:
            v.real = r.scalar<double>();
            break;
        case GgufType::boolean: {
            const uint8_t b = r.scalar<uint8_t>();
            if (b > 1) r.invalid(fmt::format("invalid bool value {}", b));
            v.integer = b;
            break;
        }
        case GgufType::string:
            v.text = r.string();
            break;
        case GgufType::array:
            r.invalid("array where a scalar was expected");
    }
}

GgufValue read_value(Reader& r, GgufType type, int depth) {
    GgufValue v;
    v.type = type;
    if (type != GgufType::array) {
        read_scalar(r, type, v);
        return v;
    }
    if (depth >= max_array_depth) r.invalid("arrays nested too deeply");
    const uint32_t element = r.scalar<uint32_t>();
    if (!valid_type(element)) r.invalid(fmt::format("invalid array element type {}", element));
    v.element_type = static_cast<GgufType>(element);
    const uint64_t count = r.scalar<uint64_t>();
    if (count > r.remaining() / min_size(v.element_type))
        r.invalid(fmt::format("truncated GGUF file: array of {} {} exceeds the file", count,
                              gguf_type_name(v.element_type)));
    if (count > kMaxArrayLength)
        r.invalid(fmt::format("array of {} {} exceeds the limit of {} elements (kMaxArrayLength)", count,
                              gguf_type_name(v.element_type), kMaxArrayLength));
    GgufValue item;
    for (uint64_t i = 0; i < count; ++i) {
        if (v.element_type == GgufType::string) {
            v.strings.push_back(r.string());
        } else if (v.element_type == GgufType::array) {
            v.arrays.push_back(read_value(r, GgufType::array, depth + 1));
        } else {
            read_scalar(r, v.element_type, item);
            if (v.element_type == GgufType::float32 || v.element_type == GgufType::float64)
                v.reals.push_back(item.real);
            else
                v.integers.push_back(item.integer);
        }
    }
    return v;
}

bool is_integer(GgufType t) {
    return t != GgufType::float32 && t != GgufType::float64 && t != GgufType::string && t != GgufType::array;
}

// Block sizes from ggml-common.h (bytes per block of `block_weights` weights).
constexpr GgmlTypeInfo ggml_types[] = {
    {GgmlType::f32, "f32", 1, 4},
    {GgmlType::f16, "f16", 1, 2},
    {GgmlType::q4_0, "q4_0", 32, 18},
    {GgmlType::q4_1, "q4_1", 32, 20},
    {GgmlType::q5_0, "q5_0", 32, 22},
    {GgmlType::q5_1, "q5_1", 32, 24},
    {GgmlType::q8_0, "q8_0", 32, 34},
    {GgmlType::q8_1, "q8_1", 32, 36},
    {GgmlType::q2_k, "q2_K", 256, 84},
    {GgmlType::q3_k, "q3_K", 256, 110},
    {GgmlType::q4_k, "q4_K", 256, 144},
    {GgmlType::q5_k, "q5_K", 256, 176},
    {GgmlType::q6_k, "q6_K", 256, 210},
    {GgmlType::q8_k, "q8_K", 256, 292},
    {GgmlType::iq2_xxs, "iq2_xxs", 256, 66},
    {GgmlType::iq2_xs, "iq2_xs", 256, 74},
    {GgmlType::iq3_xxs, "iq3_xxs", 256, 98},
    {GgmlType::iq1_s, "iq1_s", 256, 50},
    {GgmlType::iq4_nl, "iq4_nl", 32, 18},
    {GgmlType::iq3_s, "iq3_s", 256, 110},
    {GgmlType::iq2_s, "iq2_s", 256, 82},
    {GgmlType::iq4_xs, "iq4_xs", 256, 136},
    {GgmlType::i8, "i8", 1, 1},
    {GgmlType::i16, "i16", 1, 2},
    {GgmlType::i32, "i32", 1, 4},
    {GgmlType::i64, "i64", 1, 8},
    {GgmlType::f64, "f64", 1, 8},
    {GgmlType::iq1_m, "iq1_m", 256, 56},
    {GgmlType::bf16, "bf16", 1, 2},
    {GgmlType::tq1_0, "tq1_0", 256, 54},
    {GgmlType::tq2_0, "tq2_0", 256, 66},
    {GgmlType::mxfp4, "mxfp4", 32, 17},
};

constexpr uint32_t max_tensor_dims = 4;  // GGML_MAX_DIMS

void read_tensor_infos(Reader& r, uint64_t count, uint64_t alignment, std::vector<GgufTensorInfo>& tensors) {
    r.set_item("tensor infos");
    // Smallest tensor info: empty name (8), n_dims (4), type (4), offset (8).
    if (count > r.remaining() / 24)
        r.invalid(fmt::format("truncated GGUF file: {} tensor infos exceed the file", count));
    for (uint64_t i = 0; i < count; ++i) {
        r.set_item(fmt::format("tensor info #{}", i));
        GgufTensorInfo t;
        t.name = r.string();
        r.set_item(fmt::format("tensor info '{}'", t.name));
        const uint32_t n_dims = r.scalar<uint32_t>();
        if (n_dims == 0 || n_dims > max_tensor_dims) r.invalid(fmt::format("{} dimensions", n_dims));
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t dim = r.scalar<uint64_t>();
            if (dim > (uint64_t{1} << 40)) r.invalid(fmt::format("dimension {} = {}", d, dim));
            t.dims.push_back(static_cast<int64_t>(dim));
        }
        t.type = r.scalar<uint32_t>();
        t.offset = r.scalar<uint64_t>();
        if (t.offset % alignment != 0)
            r.invalid(fmt::format("offset {} not a multiple of {}", t.offset, alignment));
        if (const GgmlTypeInfo* info = find_ggml_type(t.type)) {
            if (t.dims[0] % info->block_weights != 0)
                r.invalid(fmt::format("row of {} weights is not a whole number of {} blocks", t.dims[0],
                                      info->name));
            t.nbytes = t.numel() / info->block_weights * info->block_bytes;
        }
        tensors.push_back(std::move(t));
    }
}

}  // namespace

const GgmlTypeInfo* find_ggml_type(uint32_t id) {
    for (const GgmlTypeInfo& info : ggml_types)
        if (static_cast<uint32_t>(info.type) == id) return &info;
    return nullptr;
}

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
    const GgmlTypeInfo* info = find_ggml_type(static_cast<uint32_t>(type));
    PBS2P_CHECK(info, "ggml type id {} is not in the type table", static_cast<uint32_t>(type));
    return *info;
}

int64_t ggml_row_bytes(GgmlType type, int64_t n) {
    const GgmlTypeInfo& info = ggml_type_info(type);
    PBS2P_CHECK(n >= 0 && n % info.block_weights == 0,
                "a row of {} weights is not a whole number of {} blocks of {}", n, info.name,
                info.block_weights);
    return n / info.block_weights * info.block_bytes;
}

int64_t GgufTensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
}

GgufValue GgufValue::of_string(std::string text) {
    GgufValue v;
    v.type = GgufType::string;
    v.text = std::move(text);
    return v;
}
GgufValue GgufValue::of_bool(bool value) {
    GgufValue v;
    v.type = GgufType::boolean;
    v.integer = value;
    return v;
}
GgufValue GgufValue::of_int(GgufType type, int64_t value) {
    PBS2P_CHECK(is_integer(type) && type != GgufType::boolean, "GGUF type {} is not an integer type",
                gguf_type_name(type));
    GgufValue v;
    v.type = type;
    v.integer = value;
    return v;
}
GgufValue GgufValue::of_real(GgufType type, double value) {
    PBS2P_CHECK(type == GgufType::float32 || type == GgufType::float64, "GGUF type {} is not a float type",
                gguf_type_name(type));
    GgufValue v;
    v.type = type;
    v.real = value;
    return v;
}
GgufValue GgufValue::of_strings(std::vector<std::string> values) {
    GgufValue v;
    v.type = GgufType::array;
    v.element_type = GgufType::string;
    v.strings = std::move(values);
    return v;
}
GgufValue GgufValue::of_ints(GgufType element, std::vector<int64_t> values) {
    GgufValue v = of_int(element, 0);
    v.type = GgufType::array;
    v.element_type = element;
    v.integers = std::move(values);
    return v;
}
GgufValue GgufValue::of_reals(GgufType element, std::vector<double> values) {
    GgufValue v = of_real(element, 0.0);
    v.type = GgufType::array;
    v.element_type = element;
    v.reals = std::move(values);
    return v;
}

const char* gguf_type_name(GgufType type) {
    static const char* names[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
                                  "bool",  "string", "array",  "uint64", "int64",  "float64"};
    const auto i = static_cast<uint32_t>(type);
    return i < sizeof(names) / sizeof(names[0]) ? names[i] : "invalid";
}

size_t GgufValue::array_size() const {
    return strings.size() + integers.size() + reals.size() + arrays.size();
}

GgufMetadata GgufMetadata::read(const std::string& path) {
    Reader r(path);
    GgufMetadata m;
    m.path_ = path;
    char magic[4];
    r.set_item("magic");
    r.bytes(magic, 4);
    PBS2P_CHECK(std::memcmp(magic, "GGUF", 4) == 0, "{}: not a GGUF file (bad magic)", path);
    r.set_item("version");
    m.version_ = r.scalar<uint32_t>();
    PBS2P_CHECK(m.version_ == 2 || m.version_ == 3, "{}: unsupported GGUF version {} (supported: 2, 3)", path,
                m.version_);
    r.set_item("tensor count");
    m.tensor_count_ = r.scalar<uint64_t>();
    r.set_item("metadata count");
    const uint64_t kv_count = r.scalar<uint64_t>();
    PBS2P_CHECK(kv_count <= r.remaining() / 12,
                "{}: truncated GGUF file: {} metadata entries exceed the file", path, kv_count);
    for (uint64_t i = 0; i < kv_count; ++i) {
        r.set_item(fmt::format("metadata key #{}", i));
        std::string key = r.string();
        r.set_item(fmt::format("metadata '{}'", key));
        const uint32_t type = r.scalar<uint32_t>();
        if (!valid_type(type)) r.invalid(fmt::format("invalid value type {}", type));
        GgufValue value = read_value(r, static_cast<GgufType>(type), 0);
        PBS2P_CHECK(m.values_.emplace(key, std::move(value)).second, "{}: duplicate metadata key '{}'", path,
                    key);
    }
    if (m.has("general.alignment")) {
        const int64_t alignment = m.get_int("general.alignment");
        PBS2P_CHECK(alignment > 0 && alignment <= (1 << 20) && (alignment & (alignment - 1)) == 0,
                    "{}: general.alignment = {} is not a power of two", path, alignment);
        m.alignment_ = static_cast<uint64_t>(alignment);
    }
    read_tensor_infos(r, m.tensor_count_, m.alignment_, m.tensors_);
    m.data_offset_ = (r.position() + m.alignment_ - 1) / m.alignment_ * m.alignment_;
    for (const GgufTensorInfo& t : m.tensors_) {
        const uint64_t size = t.nbytes > 0 ? static_cast<uint64_t>(t.nbytes) : 0;
        PBS2P_CHECK(m.data_offset_ <= r.size() && t.offset <= r.size() - m.data_offset_ &&
                        size <= r.size() - m.data_offset_ - t.offset,
                    "{}: truncated GGUF file: data of tensor '{}' ({} bytes at offset {}) exceeds the file",
                    path, t.name, size, m.data_offset_ + t.offset);
    }
    return m;
}

const GgufTensorInfo& GgufMetadata::tensor(const std::string& name) const {
    for (const GgufTensorInfo& t : tensors_)
        if (t.name == name) return t;
    fail("{}: GGUF tensor '{}' missing", path_, name);
}

std::vector<uint8_t> GgufMetadata::read_tensor_data(const GgufTensorInfo& info) const {
    PBS2P_CHECK(info.nbytes >= 0, "{}: tensor '{}' has ggml type id {}, not in the type table", path_,
                info.name, info.type);
    std::ifstream in(path_, std::ios::binary);
    PBS2P_CHECK(in, "{}: cannot open GGUF file", path_);
    std::vector<uint8_t> bytes(static_cast<size_t>(info.nbytes));
    in.seekg(static_cast<std::streamoff>(data_offset_ + info.offset));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    PBS2P_CHECK(in, "{}: cannot read data of tensor '{}'", path_, info.name);
    return bytes;
}

const GgufValue& GgufMetadata::at(const std::string& key) const {
    auto it = values_.find(key);
    PBS2P_CHECK(it != values_.end(), "{}: GGUF metadata key '{}' missing", path_, key);
    return it->second;
}

std::string GgufMetadata::get_string(const std::string& key) const {
    const GgufValue& v = at(key);
    PBS2P_CHECK(v.type == GgufType::string, "{}: GGUF metadata '{}' is {}, expected string", path_, key,
                gguf_type_name(v.type));
    return v.text;
}

int64_t GgufMetadata::get_int(const std::string& key) const {
    const GgufValue& v = at(key);
    PBS2P_CHECK(is_integer(v.type), "{}: GGUF metadata '{}' is {}, expected an integer", path_, key,
                gguf_type_name(v.type));
    return v.integer;
}

double GgufMetadata::get_real(const std::string& key) const {
    const GgufValue& v = at(key);
    if (is_integer(v.type)) return static_cast<double>(v.integer);
    PBS2P_CHECK(v.type == GgufType::float32 || v.type == GgufType::float64,
                "{}: GGUF metadata '{}' is {}, expected a number", path_, key, gguf_type_name(v.type));
    return v.real;
}

bool GgufMetadata::get_bool(const std::string& key) const {
    const GgufValue& v = at(key);
    PBS2P_CHECK(v.type == GgufType::boolean, "{}: GGUF metadata '{}' is {}, expected bool", path_, key,
                gguf_type_name(v.type));
    return v.integer != 0;
}

const std::vector<std::string>& GgufMetadata::get_strings(const std::string& key) const {
    const GgufValue& v = at(key);
    PBS2P_CHECK(v.is_array() && v.element_type == GgufType::string,
                "{}: GGUF metadata '{}' is not an array of strings", path_, key);
    return v.strings;
}

std::vector<int64_t> GgufMetadata::get_ints(const std::string& key) const {
    const GgufValue& v = at(key);
    PBS2P_CHECK(v.is_array() && is_integer(v.element_type),
                "{}: GGUF metadata '{}' is not an array of integers", path_, key);
    return v.integers;
}

std::vector<double> GgufMetadata::get_reals(const std::string& key) const {
    const GgufValue& v = at(key);
    PBS2P_CHECK(v.is_array() && (v.element_type == GgufType::float32 || v.element_type == GgufType::float64 ||
                                 is_integer(v.element_type)),
                "{}: GGUF metadata '{}' is not an array of numbers", path_, key);
    if (!v.reals.empty() || v.integers.empty()) return v.reals;
    return std::vector<double>(v.integers.begin(), v.integers.end());
}

std::string GgufMetadata::get_string(const std::string& key, const std::string& fallback) const {
    return has(key) ? get_string(key) : fallback;
}
int64_t GgufMetadata::get_int(const std::string& key, int64_t fallback) const {
    return has(key) ? get_int(key) : fallback;
}
bool GgufMetadata::get_bool(const std::string& key, bool fallback) const {
    return has(key) ? get_bool(key) : fallback;
}

}  // namespace pbs2p
