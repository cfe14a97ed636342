// GGUF reader (versions 2 and 3): header, all key/values (including nested arrays) and the tensor infos
// (name, shape, ggml type, data offset); tensor data is read on request. Every read is bounds-checked;
// errors name the file and the key or tensor. The writer is gguf_writer.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pbs2p {

enum class GgufType : uint32_t {
    uint8 = 0,
    int8 = 1,
    uint16 = 2,
    int16 = 3,
    uint32 = 4,
    int32 = 5,
    float32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    uint64 = 10,
    int64 = 11,
    float64 = 12,
};
const char* gguf_type_name(GgufType type);

// ggml tensor type ids (ggml.h `enum ggml_type`) of the types we write or count; ids are fixed by the format.
enum class GgmlType : uint32_t {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_k = 10,
    q3_k = 11,
    q4_k = 12,
    q5_k = 13,
    q6_k = 14,
    q8_k = 15,
    iq2_xxs = 16,
    iq2_xs = 17,
    iq3_xxs = 18,
    iq1_s = 19,
    iq4_nl = 20,
    iq3_s = 21,
    iq2_s = 22,
    iq4_xs = 23,
    i8 = 24,
    i16 = 25,
    i32 = 26,
    i64 = 27,
    f64 = 28,
    iq1_m = 29,
    bf16 = 30,
    tq1_0 = 34,
    tq2_0 = 35,
    mxfp4 = 39,
};

// Storage of one ggml type: a row of n weights is n / block_weights blocks of block_bytes each.
struct GgmlTypeInfo {
    GgmlType type;
    const char* name;  // as ggml prints it: "f32", "q8_0", "tq1_0", ...
    int64_t block_weights;
    int64_t block_bytes;
    double bits_per_weight() const { return 8.0 * double(block_bytes) / double(block_weights); }
};
// nullptr for an id not in our table.
const GgmlTypeInfo* find_ggml_type(uint32_t id);
const GgmlTypeInfo& ggml_type_info(GgmlType type);
// Bytes of a row of `n` weights; throws pbs2p::Error when n is not a whole number of blocks.
int64_t ggml_row_bytes(GgmlType type, int64_t n);

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

    // Values to write (gguf_writer.h). Integer types are range-checked when written.
    static GgufValue of_string(std::string text);
    static GgufValue of_bool(bool value);
    static GgufValue of_int(GgufType type, int64_t value);
    static GgufValue of_real(GgufType type, double value);  // float32 or float64
    static GgufValue of_strings(std::vector<std::string> values);
    static GgufValue of_ints(GgufType element, std::vector<int64_t> values);
    static GgufValue of_reals(GgufType element, std::vector<double> values);
};

// One tensor info. dims are in ggml order (dims[0] = the contiguous row length), i.e. the reverse of a
// row-major (PyTorch) shape.
struct GgufTensorInfo {
    std::string name;
    std::vector<int64_t> dims;
    uint32_t type = 0;    // ggml type id
    uint64_t offset = 0;  // relative to the data section
    int64_t nbytes = -1;  // -1 when the type is not in our table
    int64_t numel() const;
};

class GgufMetadata {
  public:
    // Reads header, metadata and tensor infos of `path`; throws pbs2p::Error on a bad magic, an unsupported
    // version, a truncated file, an invalid type, or tensor data that lies outside the file.
    static GgufMetadata read(const std::string& path);

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t tensor_count() const { return tensor_count_; }
    const std::map<std::string, GgufValue>& values() const { return values_; }
    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo& tensor(const std::string& name) const;  // throws naming the file when absent
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
    // Bytes of one tensor (its type must be in our table).
    std::vector<uint8_t> read_tensor_data(const GgufTensorInfo& info) const;

    bool has(const std::string& key) const { return values_.count(key) != 0; }
    // Typed accessors: throw pbs2p::Error naming the file and key when missing or of another type.
    const GgufValue& at(const std::string& key) const;
    std::string get_string(const std::string& key) const;
    int64_t get_int(const std::string& key) const;  // any integer type or bool
    double get_real(const std::string& key) const;  // float32/float64 (or integer)
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
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::map<std::string, GgufValue> values_;
    std::vector<GgufTensorInfo> tensors_;
};

}  // namespace pbs2p
