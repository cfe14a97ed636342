// GGUF metadata reader (versions 2 and 3): header and all key/values, including nested arrays.
// Tensor infos are not read. Every read is bounds-checked; errors name the file and the key.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pbs2p {

enum class GgufType : uint32_t {
    uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, boolean = 7,
    string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12,
};
const char* gguf_type_name(GgufType type);

// One metadata value. Scalars: integers (and bools) in `integer`, floats in `real`, strings in `text`.
// Arrays: `element_type` plus exactly one of `strings`, `integers`, `reals` or `arrays` filled.
struct GgufValue {
    GgufType type = GgufType::uint8;
    int64_t integer = 0;
    double real = 0.0;
    std::string text;
    GgufType element_type = GgufType::uint8;
    std::vector<std::string> strings;
    std::vector<int64_t> integers;
    std::vector<double> reals;
    std::vector<GgufValue> arrays;

    bool is_array() const { return type == GgufType::array; }
    size_t array_size() const;
};

class GgufMetadata {
public:
    // Reads header and metadata of `path`; throws pbs2p::Error on a bad magic, an unsupported version,
    // a truncated file or an invalid type.
    static GgufMetadata read(const std::string& path);

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t tensor_count() const { return tensor_count_; }
    const std::map<std::string, GgufValue>& values() const { return values_; }

    bool has(const std::string& key) const { return values_.count(key) != 0; }
    // Typed accessors: throw pbs2p::Error naming the file and key when missing or of another type.
    const GgufValue& at(const std::string& key) const;
    std::string get_string(const std::string& key) const;
    int64_t get_int(const std::string& key) const;  // any integer type or bool
    double get_real(const std::string& key) const;   // float32/float64 (or integer)
    bool get_bool(const std::string& key) const;
    const std::vector<std::string>& get_strings(const std::string& key) const;
    std::vector<int64_t> get_ints(const std::string& key) const;
    std::vector<double> get_reals(const std::string& key) const;

    // With a default when the key is absent (still throws when present with the wrong type).
    std::string get_string(const std::string& key, const std::string& fallback) const;
    int64_t get_int(const std::string& key, int64_t fallback) const;
    bool get_bool(const std::string& key, bool fallback) const;

private:
    std::string path_;
    uint32_t version_ = 0;
    uint64_t tensor_count_ = 0;
    std::map<std::string, GgufValue> values_;
};

}  // namespace pbs2p
