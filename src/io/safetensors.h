// safetensors checkpoints: mmap reader for single files and sharded checkpoints
// (model.safetensors.index.json), and an atomic writer.
//
// File layout: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32|F16|BF16", "shape": [...], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "string value", ...}}, then the data area (offsets are relative to it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pbs2p {

class AtomicFileWriter;

enum class DType { f32, f16, bf16, u8, i32 };

// Name as written in safetensors headers ("F32", "F16", "BF16", "U8", "I32").
const char* dtype_name(DType dtype);
int dtype_size(DType dtype);

struct TensorInfo {
    std::string name;
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    const uint8_t* data = nullptr;  // points into the mapped file
    int64_t nbytes = 0;
    std::string file;               // file holding the tensor (for error messages)

    int64_t numel() const;
};

// A read-only view of one or more mmapped safetensors files.
class SafetensorsReader {
public:
    // `path` is a .safetensors file, a model.safetensors.index.json, or a directory holding either.
    // Validates every header: length inside the file, well-formed JSON, known dtypes (others rejected by
    // name), offsets in bounds and non-overlapping, byte size = dtype size x shape. Throws pbs2p::Error
    // naming the file and the item.
    static SafetensorsReader open(const std::string& path);

    SafetensorsReader();
    ~SafetensorsReader();
    SafetensorsReader(SafetensorsReader&&) noexcept;
    SafetensorsReader& operator=(SafetensorsReader&&) noexcept;

    bool has(const std::string& name) const;
    // Throws pbs2p::Error("<file>: missing tensor '<name>'") when absent.
    const TensorInfo& tensor(const std::string& name) const;
    std::vector<std::string> names() const;  // sorted
    // Hands every mapped page back to the kernel (tensors stay readable; touched again, their pages are
    // read from the file): keeps the resident size of a reader over a large checkpoint at what is in use.
    void drop_cached_pages() const;
    // `__metadata__` of the first file (string values).
    const std::map<std::string, std::string>& metadata() const;

    // fp32 copies; check the shape (rows x cols or n) and that every value is finite, throwing an error
    // naming the file and the tensor otherwise.
    Matrix load_matrix(const std::string& name, int64_t rows, int64_t cols) const;
    std::vector<float> load_vector(const std::string& name, int64_t n) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// One tensor to write: raw little-endian bytes of `dtype` with the given shape.
struct TensorToWrite {
    std::string name;
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
};

TensorToWrite tensor_from_floats(const std::string& name, const float* values, std::vector<int64_t> shape,
                                 DType dtype);
// The values of a floating-point tensor (F32, F16, BF16) as fp32.
std::vector<float> tensor_to_floats(const TensorToWrite& tensor);

// Name, dtype and shape of a tensor to be written.
struct TensorSpec {
    std::string name;
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    int64_t nbytes() const;
};

// A safetensors file whose tensors are known (name, dtype, shape) before their data: the header is
// written at once, each tensor's bytes go to their place when they come, in any order, and commit()
// checks that all came and publishes the file atomically (core/atomic_file.h). The bytes are those of
// write_safetensors for the same tensors and metadata.
class SafetensorsFileWriter {
  public:
    SafetensorsFileWriter(std::string path, std::vector<TensorSpec> specs,
                          const std::map<std::string, std::string>& metadata = {});
    ~SafetensorsFileWriter();  // an uncommitted file is removed
    SafetensorsFileWriter(const SafetensorsFileWriter&) = delete;
    SafetensorsFileWriter& operator=(const SafetensorsFileWriter&) = delete;

    // Name, dtype, shape and size must match the tensor's spec; each tensor once.
    void write(const TensorToWrite& tensor);
    bool has(const std::string& name) const;  // listed in the header
    bool complete() const { return count_ == specs_.size(); }
    void commit();

  private:
    std::vector<TensorSpec> specs_;  // name order
    std::vector<int64_t> offsets_;   // data offset of each spec
    std::vector<char> written_;
    size_t count_ = 0;
    uint64_t data_start_ = 0;
    std::unique_ptr<AtomicFileWriter> file_;
    // Index of the spec named `name`, or -1.
    int64_t find(const std::string& name) const;
};

// Writes atomically: temp file in the same directory, fsync, rename. Tensors are stored in name order,
// data 8-byte aligned.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace pbs2p
