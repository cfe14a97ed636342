#include "tools/dequantized_writer.h"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace pbs2p::tools {

namespace fs = std::filesystem;

namespace {

std::vector<TensorSpec> shared_specs(const Model& model, DType dtype) {
    std::vector<TensorSpec> specs;
    model.for_each_shared_tensor(
        [&](const std::string& name, const float*, const std::vector<int64_t>& shape) {
            specs.push_back({name, dtype, shape});
        });
    return specs;
}

std::vector<TensorSpec> block_specs(const Model& model, int l, DType dtype) {
    std::vector<TensorSpec> specs;
    for (auto& [name, shape] : model.block_tensor_shapes(l)) specs.push_back({name, dtype, shape});
    return specs;
}

int64_t bytes_of(const std::vector<TensorSpec>& specs) {
    int64_t n = 0;
    for (const TensorSpec& s : specs) n += s.nbytes();
    return n;
}

}  // namespace

DequantizedWriter::DequantizedWriter(const Model& model, std::string dir, DType dtype,
                                     int64_t max_shard_bytes, std::map<std::string, std::string> metadata)
    : dir_(std::move(dir)), dtype_(dtype), metadata_(std::move(metadata)) {
    PBS2P_CHECK(max_shard_bytes > 0, "the largest shard must hold at least one byte, got {}",
                max_shard_bytes);
    const std::vector<TensorSpec> shared = shared_specs(model, dtype);
    std::vector<std::vector<TensorSpec>> blocks;
    total_bytes_ = bytes_of(shared);
    for (int l = 0; l < model.num_blocks(); ++l) {
        blocks.push_back(block_specs(model, l, dtype));
        total_bytes_ += bytes_of(blocks.back());
    }
    // Greedy: consecutive blocks while the shard stays within the limit (at least one block per shard).
    Shard current{"", 0, 0, true, shared};
    int64_t size = bytes_of(shared);
    const bool single = total_bytes_ <= max_shard_bytes;
    for (int l = 0; l < model.num_blocks(); ++l) {
        const int64_t block_bytes = bytes_of(blocks[static_cast<size_t>(l)]);
        if (!single && current.end_block > current.first_block && size + block_bytes > max_shard_bytes) {
            shards_.push_back(std::move(current));
            current = Shard{"", l, l, false, {}};
            size = 0;
        }
        current.specs.insert(current.specs.end(), blocks[static_cast<size_t>(l)].begin(),
                             blocks[static_cast<size_t>(l)].end());
        current.end_block = l + 1;
        size += block_bytes;
        shard_of_block_.push_back(static_cast<int>(shards_.size()));
    }
    shards_.push_back(std::move(current));
    for (size_t k = 0; k < shards_.size(); ++k)
        shards_[k].file = shards_.size() == 1
                              ? std::string("model.safetensors")
                              : fmt::format("model-{:05d}-of-{:05d}.safetensors", k + 1, shards_.size());
}

DequantizedWriter::~DequantizedWriter() = default;

void DequantizedWriter::open_shard(const Model& model, const Shard& shard) {
    open_ = std::make_unique<SafetensorsFileWriter>((fs::path(dir_) / shard.file).string(), shard.specs,
                                                    metadata_);
    if (!shard.shared) return;
    model.for_each_shared_tensor(
        [&](const std::string& name, const float* data, const std::vector<int64_t>& shape) {
            open_->write(tensor_from_floats(name, data, shape, dtype_));
        });
}

void DequantizedWriter::commit_shard() {
    open_->commit();
    open_.reset();
}

void DequantizedWriter::write_block(const Model& model, int l) {
    PBS2P_CHECK(l == next_block_, "dequantized output: block {} written out of order (expected {})", l,
                next_block_);
    const Shard& shard = shards_[static_cast<size_t>(shard_of_block_[static_cast<size_t>(l)])];
    if (l == shard.first_block) open_shard(model, shard);
    model.for_each_block_tensor(
        l, [&](const std::string& name, const float* data, const std::vector<int64_t>& shape) {
            open_->write(tensor_from_floats(name, data, shape, dtype_));
        });
    ++next_block_;
    if (l + 1 == shard.end_block) {
        commit_shard();
        files_.push_back(shard.file);
    }
}

void DequantizedWriter::finish(const Model& model) {
    PBS2P_CHECK(next_block_ == model.num_blocks(), "dequantized output: {} of {} blocks written", next_block_,
                model.num_blocks());
    if (model.num_blocks() == 0) {  // only the tensors outside the blocks
        open_shard(model, shards_.front());
        commit_shard();
        files_.push_back(shards_.front().file);
    }
    if (shards_.size() == 1) return;
    nlohmann::json weight_map = nlohmann::json::object();
    for (const Shard& shard : shards_)
        for (const TensorSpec& s : shard.specs) weight_map[s.name] = shard.file;
    const nlohmann::json index = {{"metadata", {{"total_size", total_bytes_}}}, {"weight_map", weight_map}};
    const std::string name = "model.safetensors.index.json";
    write_file_atomically((fs::path(dir_) / name).string(), index.dump(2) + "\n");
    files_.push_back(name);
}

}  // namespace pbs2p::tools
