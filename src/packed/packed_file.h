// Containers of the packed format (docs/FORMAT.md), both safetensors files:
//  - the packed model file: per compressed layer "<name>.codes" (U8 bitstream) and "<name>.scales"
//    (F16 [rows, scale groups, 2] = alpha, mu), every other model tensor stored as it is, and a typed
//    __metadata__ (format name and version, per-layer descriptors as JSON, an XXH3-64 checksum per tensor);
//    Version 2 adds tables: token embedding / LM head stored as f16, q8 or q4 (weight_table.h) under their
//    own tensor name, described by the "tables" metadata entry; a file without tables is written as
//    version 1, and both versions are read;
//  - the layouts interchange file (layouts.safetensors) written by the compressor: per layer keep/sign as
//    U8 [rows, cols] and alpha/mu as F32 [rows, scale groups].
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compress/binary_layout.h"
#include "io/safetensors.h"
#include "packed/packed_layer.h"
#include "packed/weight_table.h"

namespace pbs2p {

inline constexpr const char* kPackedFormatName = "pbs2p-packed";
inline constexpr int kPackedFormatVersion = 2;     // newest version written and read (2: tables, codebook codes)
inline constexpr int kPackedFormatVersionMin = 1;  // oldest version read
inline constexpr const char* kLayoutsFormatName = "pbs2p-layouts";
inline constexpr const char* kLayoutsFileName = "layouts.safetensors";
inline constexpr const char* kPackedModelFileName = "model.packed.safetensors";

// XXH3-64 of a byte range as 16 lowercase hex digits.
std::string xxh3_hex(const uint8_t* data, int64_t size);

// Writes a packed model file. `other_tensors` are stored unchanged; `metadata` is added to __metadata__
// (keys "format", "format_version", "packed_layers", "tables", "checksums" are reserved). `tables` are
// stored in their type (f32 tables as plain F32 tensors, not listed in "tables").
void write_packed_file(const std::string& path, const std::map<std::string, PackedLayer>& layers,
                       std::vector<TensorToWrite> other_tensors = {},
                       const std::map<std::string, std::string>& metadata = {},
                       const std::map<std::string, WeightTable>& tables = {});

// Shape and type of one stored table.
struct TableDesc {
    TableType type = TableType::f32;
    int64_t rows = 0, cols = 0;
};

// An opened packed model file: header, descriptors and every checksum validated at open.
class PackedFile {
public:
    // Throws pbs2p::Error naming the file and the item on a wrong format name or version, an inconsistent
    // descriptor, a missing or mis-sized tensor, or a checksum mismatch.
    static PackedFile open(const std::string& path);

    const std::string& path() const { return path_; }
    std::vector<std::string> layer_names() const;  // sorted
    bool has_layer(const std::string& name) const { return descs_.count(name) != 0; }
    const PackedLayerDesc& desc(const std::string& name) const;
    // Copies one layer's codes and scales out of the mapping and validates every code.
    PackedLayer load_layer(const std::string& name) const;
    // Tables (version 2): names sorted, descriptor, and a copy of the encoded bytes.
    std::vector<std::string> table_names() const;
    bool has_table(const std::string& name) const { return tables_.count(name) != 0; }
    const TableDesc& table_desc(const std::string& name) const;
    WeightTable load_table(const std::string& name) const;
    int format_version() const { return version_; }
    // Names of the tensors that are neither part of a packed layer nor a table.
    std::vector<std::string> other_tensor_names() const;
    const SafetensorsReader& tensors() const { return reader_; }
    const std::map<std::string, std::string>& metadata() const { return reader_.metadata(); }

private:
    std::string path_;
    SafetensorsReader reader_;
    std::map<std::string, PackedLayerDesc> descs_;
    std::map<std::string, TableDesc> tables_;
    int version_ = 0;
};

// Layouts interchange file (for the compressor): write / read every layer's BinaryLayout.
void write_layouts(const std::string& path, const std::map<std::string, BinaryLayout>& layouts);
std::map<std::string, BinaryLayout> read_layouts(const std::string& path);

}  // namespace pbs2p
