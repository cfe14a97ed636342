// GGUF layout (little endian): "GGUF", u32 version, u64 tensor_count, u64 kv_count, then kv_count times
// {string key, u32 type, value}; a string is u64 length + bytes; an array is u32 element type, u64 count,
// elements.
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

    void bytes(void* dst, uint64_t n) {
        PBS2P_CHECK(n <= remaining(), "{}: truncated GGUF file while reading {} (needs {} bytes at offset {}, file has {})",
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
        PBS2P_CHECK(n <= remaining(), "{}: truncated GGUF file: string of {} bytes in {} at offset {} exceeds the file",
                    path_, n, item_, pos_);
        PBS2P_CHECK(n <= kMaxStringBytes,
                    "{}: string of {} bytes in {} at offset {} exceeds the limit of {} (kMaxStringBytes)",
                    path_, n, item_, pos_, kMaxStringBytes);
        std::string s(n, '\0');
        bytes(s.data(), n);
        return s;
    }
    [[noreturn]] void invalid(const std::string& what) { fail("{}: {} in {} at offset {}", path_, what, item_, pos_); }

private:
    std::string path_;
    std::ifstream in_;
    uint64_t size_ = 0, pos_ = 0;
    std::string item_ = "header";
};

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::float64); }

// Smallest encoded size of one value of `type` (used to reject absurd array counts before allocating).
uint64_t min_size(GgufType type) {
    switch (type) {
        case GgufType::uint8: case GgufType::int8: case GgufType::boolean: return 1;
        case GgufType::uint16: case GgufType::int16: return 2;
        case GgufType::uint32: case GgufType::int32: case GgufType::float32: return 4;
        case GgufType::uint64: case GgufType::int64: case GgufType::float64: case GgufType::string: return 8;
        case GgufType::array: return 12;
    }
    return 1;
}

// Reads one scalar of `type` into integer/real/text.
void read_scalar(Reader& r, GgufType type, GgufValue& v) {
    switch (type) {
        case GgufType::uint8: v.integer = r.scalar<uint8_t>(); break;
        case GgufType::int8: v.integer = r.scalar<int8_t>(); break;
        case GgufType::uint16: v.integer = r.scalar<uint16_t>(); break;
        case GgufType::int16: v.integer = r.scalar<int16_t>(); break;
        case GgufType::uint32: v.integer = r.scalar<uint32_t>(); break;
        case GgufType::int32: v.integer = r.scalar<int32_t>(); break;
        case GgufType::uint64: v.integer = static_cast<int64_t>(r.scalar<uint64_t>()); break;
        case GgufType::int64: v.integer = r.scalar<int64_t>(); break;
        case GgufType::float32: v.real = r.scalar<float>(); break;
        case GgufType::float64: v.real = r.scalar<double>(); break;
        case GgufType::boolean: {
            const uint8_t b = r.scalar<uint8_t>();
            if (b > 1) r.invalid(fmt::format("invalid bool value {}", b));
            v.integer = b;
            break;
        }
        case GgufType::string: v.text = r.string(); break;
        case GgufType::array: r.invalid("array where a scalar was expected");
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

}  // namespace

const char* gguf_type_name(GgufType type) {
    static const char* names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32",  "float32",
                                  "bool",  "string", "array", "uint64", "int64", "float64"};
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
    PBS2P_CHECK(kv_count <= r.remaining() / 12, "{}: truncated GGUF file: {} metadata entries exceed the file", path,
                kv_count);
    for (uint64_t i = 0; i < kv_count; ++i) {
        r.set_item(fmt::format("metadata key #{}", i));
        std::string key = r.string();
        r.set_item(fmt::format("metadata '{}'", key));
        const uint32_t type = r.scalar<uint32_t>();
        if (!valid_type(type)) r.invalid(fmt::format("invalid value type {}", type));
        GgufValue value = read_value(r, static_cast<GgufType>(type), 0);
        PBS2P_CHECK(m.values_.emplace(key, std::move(value)).second, "{}: duplicate metadata key '{}'", path, key);
    }
    return m;
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
    PBS2P_CHECK(v.is_array() && is_integer(v.element_type), "{}: GGUF metadata '{}' is not an array of integers",
                path_, key);
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
