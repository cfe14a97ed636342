// Token embedding and LM head tables stored row by row in a compact type (docs/FORMAT.md, "Tables").
// Table-driven: one row per type (name, block size, bytes per block, scalar reference encode, decode and
// dot product), which defines the format; fast kernels (weight_table_kernels*.cpp) are tested against it.
//
//   type  block  bytes  layout of one block                                      bits/weight
//   f32     1      4    IEEE fp32                                                  32
//   f16     1      2    IEEE fp16                                                  16
//   q8     32     34    fp16 scale d, 32 x int8 q;  w = d * q  (q in -127..127)    8.5
//   q4     32     20    fp16 scale d, fp16 min m, 16 bytes of nibbles;             5.0
//                       byte i: low nibble = q[i], high nibble = q[i + 16];
//                       w = d * q + m  (q in 0..15)
//
// A row is ceil(cols / block) blocks, the last one zero-padded; rows are contiguous, row-major.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pbs2p {

enum class TableType { f32, f16, q8, q4 };

inline constexpr int64_t kTableBlock = 32;  // weights per q8 / q4 block

struct BlockQ8 {
    uint16_t scale_fp16;
    int8_t q[kTableBlock];
};
static_assert(sizeof(BlockQ8) == 34, "q8 block: fp16 scale + 32 int8 = 8.5 bits/weight");

struct BlockQ4 {
    uint16_t scale_fp16;
    uint16_t min_fp16;
    uint8_t q[kTableBlock / 2];
};
static_assert(sizeof(BlockQ4) == 20, "q4 block: fp16 scale + fp16 min + 32 nibbles = 5 bits/weight");

using TableEncodeRowFn = void (*)(const float* w, int64_t cols, uint8_t* out);
using TableDecodeRowFn = void (*)(const uint8_t* row, int64_t cols, float* out);
// sum_j w_j x_j over one encoded row, fp64 accumulation (reference).
using TableDotRowFn = double (*)(const uint8_t* row, int64_t cols, const float* x);

struct TableFormat {
    TableType type;
    const char* name;
    int64_t block;        // weights per block
    int64_t block_bytes;  // bytes per block
    TableEncodeRowFn encode_row;
    TableDecodeRowFn decode_row;
    TableDotRowFn dot_row;

    int64_t row_bytes(int64_t cols) const { return (cols + block - 1) / block * block_bytes; }
    double bits_per_weight() const {
        return 8.0 * static_cast<double>(block_bytes) / static_cast<double>(block);
    }
};

const std::vector<TableFormat>& table_formats();
const TableFormat& table_format(TableType type);
// "f32", "f16", "q8", "q4"; throws pbs2p::Error naming the value and the choices.
TableType parse_table_type(const std::string& name);
const char* table_type_name(TableType type);
// Of two types, the one that keeps more precision (f32 > f16 > q8 > q4).
TableType more_precise(TableType a, TableType b);

// An encoded [rows x cols] table.
struct WeightTable {
    TableType type = TableType::f32;
    int64_t rows = 0, cols = 0;
    AlignedVector<uint8_t> data;  // rows * row_bytes()

    const TableFormat& format() const { return table_format(type); }
    int64_t row_bytes() const { return format().row_bytes(cols); }
    const uint8_t* row(int64_t r) const { return data.data() + r * row_bytes(); }
    int64_t bytes() const { return static_cast<int64_t>(data.size()); }
    void decode_row(int64_t r, float* out) const { format().decode_row(row(r), cols, out); }
};

// Encodes w [rows x cols] (rows in parallel). Throws pbs2p::Error naming `what` when a value (or a block
// scale) does not fit the type (non-finite, or beyond the fp16 range).
WeightTable encode_table(const float* w, int64_t rows, int64_t cols, TableType type, const std::string& what);
// Wraps stored bytes; throws when the size does not match rows x row_bytes(cols).
WeightTable table_from_bytes(TableType type, int64_t rows, int64_t cols, const uint8_t* bytes, int64_t nbytes,
                             const std::string& what);
Matrix decode_table(const WeightTable& table);

// Scalar reference product y[rows] = T x (fp64 accumulation over the decoded weights).
void table_gemv_reference(const WeightTable& table, const float* x, float* y);

// ---- int8 activations (for the q8 / q4 kernels) -------------------------------------------------------
// x quantized per block of 32: q = round(x / d), d = max|x| / 127 (fp32), the last block zero-padded;
// sum = sum of q over the block (the q4 min term).
struct ActivationsQ8 {
    AlignedVector<int8_t> q;  // blocks * 32
    std::vector<float> scale;
    std::vector<int32_t> sum;
    void resize(int64_t blocks);
};
void quantize_activations_q8(const float* x, int64_t cols, ActivationsQ8& out);
// Scalar product of one q8 / q4 row with quantized activations, in the same arithmetic as the fast
// kernels (integer block sums, fp32 block scaling): the tight reference for them.
float table_dot_q8_activations(const WeightTable& table, int64_t row, const ActivationsQ8& x);

}  // namespace pbs2p
