// The compressed model's dequantized weights, written block by block while the compressor runs, so that
// no step needs every block in fp32 at once: one model.safetensors when the whole model fits in one
// shard, otherwise shards of consecutive blocks (model-0000k-of-0000n.safetensors, the first also holding
// the tensors outside the blocks) listed in model.safetensors.index.json, as Hugging Face writes them.
// A shard appears (atomically) once its last block is written; the bytes of a single-file output are
// those of Model::save.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/model.h"

namespace pbs2p::tools {

class DequantizedWriter {
  public:
    // Plans the files for `model` (shapes only: blocks need not be resident) in `dir`, weights in `dtype`.
    DequantizedWriter(const Model& model, std::string dir, DType dtype, int64_t max_shard_bytes,
                      std::map<std::string, std::string> metadata);
    ~DequantizedWriter();
    // Writes block l's tensors (resident in `model`); blocks come in order 0, 1, ...
    void write_block(const Model& model, int l);
    // Writes what is left (the index of a sharded output); every block must have been written.
    void finish(const Model& model);

    const std::vector<std::string>& files() const { return files_; }  // in `dir`
    int64_t total_bytes() const { return total_bytes_; }              // tensor data of every file

  private:
    struct Shard {
        std::string file;
        int first_block = 0, end_block = 0;  // blocks [first_block, end_block)
        bool shared = false;                 // also holds the tensors outside the blocks
        std::vector<TensorSpec> specs;
    };
    void open_shard(const Model& model, const Shard& shard);
    void commit_shard();

    std::string dir_;
    DType dtype_;
    std::map<std::string, std::string> metadata_;
    std::vector<Shard> shards_;
    std::vector<int> shard_of_block_;
    std::vector<std::string> files_;
    int64_t total_bytes_ = 0;
    int next_block_ = 0;
    std::unique_ptr<SafetensorsFileWriter> open_;
};

}  // namespace pbs2p::tools
