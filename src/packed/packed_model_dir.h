// Whole-directory conversions behind `pbs2p pack` and `pbs2p unpack`.
#pragma once

#include <string>

namespace pbs2p {

struct PackSummary {
    int layers = 0;
    int64_t packed_weights = 0;   // weights of the packed layers
    int64_t packed_bytes = 0;     // codes + scales of the packed layers
    int64_t other_tensors = 0;
    int64_t file_bytes = 0;
    double bits_per_weight() const { return packed_weights ? 8.0 * packed_bytes / packed_weights : 0.0; }
};

// in_dir holds layouts.safetensors and optionally the model's safetensors (tensors "<layer>.weight" of
// packed layers are dropped, the others stored as they are), config.json and tokenizer files (copied).
// Writes out_dir/model.packed.safetensors.
PackSummary pack_model_dir(const std::string& in_dir, const std::string& out_dir);

// Inverse: out_dir/layouts.safetensors, and out_dir/model.safetensors with the other tensors plus, when
// `dequantize`, every packed layer expanded to an fp32 "<layer>.weight"; config/tokenizer files copied.
void unpack_model_dir(const std::string& packed_path, const std::string& out_dir, bool dequantize);

}  // namespace pbs2p
