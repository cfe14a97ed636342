// Whole-directory conversions behind `pbs2p pack` and `pbs2p unpack`, and the whole-file accounting of a
// packed model file.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "packed/packed_layer.h"
#include "packed/weight_table.h"

namespace pbs2p {

// Types of the token embedding and LM head tables in a packed file (chosen on the valid split, see
// docs/BENCHMARKS.md). A tied embedding is stored once, in the more precise of the two types.
struct TableTypes {
    TableType embedding = TableType::q8;
    TableType head = TableType::q8;
};

struct TableSummary {
    std::string name;
    TableType type = TableType::f32;
    int64_t params = 0;
    int64_t bytes = 0;
};

struct PackSummary {
    int layers = 0;
    int64_t packed_weights = 0;   // weights of the packed layers
    int64_t packed_bytes = 0;     // codes + scales of the packed layers
    std::vector<TableSummary> tables;  // embedding / LM head, whatever their type
    int64_t other_tensors = 0;         // tensors that are neither packed layers nor tables
    int64_t other_params = 0;
    int64_t other_bytes = 0;
    int64_t file_bytes = 0;
    // Bits per weight of the packed linear layers (codes + scales).
    double bits_per_weight() const { return packed_weights ? 8.0 * packed_bytes / packed_weights : 0.0; }
    int64_t parameters() const;  // every parameter in the file
    // Whole file (header included) over every parameter it holds.
    double bits_per_parameter() const;
};

// Accounting of a packed model file (path of the file or its directory).
PackSummary summarize_packed_file(const std::string& path);

// Name rule for the tables: "*embed_tokens.weight" is the token embedding, "lm_head.weight" the head.
bool is_token_embedding_tensor(const std::string& name);
bool is_lm_head_tensor(const std::string& name);

// Writes the packed model file `path` from encoded layers and the model's other tensors as stored
// (embedding and LM head among them are encoded as `types`, the rest kept as they are); `what` names the
// source in errors. Returns the file's accounting.
PackSummary write_packed_model(const std::string& path, const std::map<std::string, PackedLayer>& layers,
                               std::vector<TensorToWrite> others, const TableTypes& types,
                               const std::string& what);

// in_dir holds layouts.safetensors and optionally the model's safetensors (tensors "<layer>.weight" of
// packed layers are dropped, the token embedding and LM head encoded as `types`, the others stored as
// they are), config.json and tokenizer files (copied). Writes out_dir/model.packed.safetensors.
PackSummary pack_model_dir(const std::string& in_dir, const std::string& out_dir,
                           const TableTypes& types = {});

// Inverse: out_dir/layouts.safetensors, and out_dir/model.safetensors with the other tensors (tables
// decoded to fp32) plus, when `dequantize`, every packed layer expanded to an fp32 "<layer>.weight";
// config/tokenizer files copied.
void unpack_model_dir(const std::string& packed_path, const std::string& out_dir, bool dequantize);

}  // namespace pbs2p
