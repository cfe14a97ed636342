// GGUF v3 writer: metadata key/values of every GGUF type (arrays of strings, integers, floats, nested
// arrays), tensor infos, and tensor data aligned to `general.alignment` (32 bytes, always written).
// Tensor data is F32, F16 or pre-encoded blocks of any ggml type in our table (gguf.h): the caller gives
// the type and the bytes, or a function producing them, so a large model is written one tensor at a time.
// The file is written atomically (temp file + rename). The reader is gguf.h.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf.h"

namespace pbs2p {

constexpr uint32_t gguf_alignment = 32;

// Fills `bytes` with the tensor's data (exactly its size; checked).
using GgufTensorProducer = std::function<void(std::vector<uint8_t>& bytes)>;

// Bytes of `n` floats as F32 or F16 (round to nearest even).
std::vector<uint8_t> encode_float_tensor(GgmlType type, const float* values, int64_t n);

class GgufWriter {
  public:
    // `path` names the file in error messages and is where write() puts it.
    explicit GgufWriter(std::string path);

    // Keys are written in the order added; a key given twice is an error.
    void set(const std::string& key, GgufValue value);
    void set_string(const std::string& key, std::string value) {
        set(key, GgufValue::of_string(std::move(value)));
    }
    void set_u32(const std::string& key, int64_t value) {
        set(key, GgufValue::of_int(GgufType::uint32, value));
    }
    void set_f32(const std::string& key, double value) {
        set(key, GgufValue::of_real(GgufType::float32, value));
    }
    void set_bool(const std::string& key, bool value) { set(key, GgufValue::of_bool(value)); }

    // `shape` is row-major (outermost first, like PyTorch); the file stores it reversed (ggml order).
    // The innermost dimension must be a whole number of the type's blocks.
    void add_tensor(std::string name, std::vector<int64_t> shape, GgmlType type, std::vector<uint8_t> bytes);
    void add_tensor(std::string name, std::vector<int64_t> shape, GgmlType type, GgufTensorProducer produce);

    // Bytes of the data of all tensors added so far (before alignment padding) and of the whole file.
    int64_t tensor_bytes() const;
    int64_t file_bytes() const;

    // Writes the file; throws pbs2p::Error naming the file and the key/tensor on invalid content
    // (integer out of range for its type, mixed array, tensor of the wrong size). Call once.
    void write();

  private:
    struct Tensor {
        std::string name;
        std::vector<int64_t> shape;
        GgmlType type;
        int64_t nbytes = 0;
        uint64_t offset = 0;
        GgufTensorProducer produce;
    };
    std::string header() const;

    std::string path_;
    std::vector<std::pair<std::string, GgufValue>> values_;
    std::vector<Tensor> tensors_;
    uint64_t data_end_ = 0;  // end of the last tensor inside the data section
};

}  // namespace pbs2p
