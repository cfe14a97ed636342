#include "packed/weight_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"

namespace pbs2p {
namespace {

constexpr float kFp16Max = 65504.0f;

// ---- f32 / f16 ----

void encode_f32(const float* w, int64_t cols, uint8_t* out) {
    std::memcpy(out, w, sizeof(float) * cols);
}
void decode_f32(const uint8_t* row, int64_t cols, float* out) {
    std::memcpy(out, row, sizeof(float) * cols);
}
double dot_f32(const uint8_t* row, int64_t cols, const float* x) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) {
        float w;
        std::memcpy(&w, row + 4 * j, 4);
        s += static_cast<double>(w) * x[j];
    }
    return s;
}

void encode_f16(const float* w, int64_t cols, uint8_t* out) {
    for (int64_t j = 0; j < cols; ++j) {
        const uint16_t h = f32_to_fp16(w[j]);
        std::memcpy(out + 2 * j, &h, 2);
    }
}
void decode_f16(const uint8_t* row, int64_t cols, float* out) {
    for (int64_t j = 0; j < cols; ++j) {
        uint16_t h;
        std::memcpy(&h, row + 2 * j, 2);
        out[j] = fp16_to_f32(h);
    }
}
double dot_f16(const uint8_t* row, int64_t cols, const float* x) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) {
        uint16_t h;
        std::memcpy(&h, row + 2 * j, 2);
        s += static_cast<double>(fp16_to_f32(h)) * x[j];
    }
    return s;
}

// ---- q8: symmetric int8 per block, fp16 scale ----

int64_t block_count(int64_t cols) {
    return (cols + kTableBlock - 1) / kTableBlock;
}

void encode_q8(const float* w, int64_t cols, uint8_t* out) {
    for (int64_t b = 0; b < block_count(cols); ++b) {
        const int64_t j0 = b * kTableBlock, n = std::min(kTableBlock, cols - j0);
        float amax = 0.0f;
        for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(w[j0 + j]));
        BlockQ8 blk{};
        blk.scale_fp16 = f32_to_fp16(amax / 127.0f);
        const float d = fp16_to_f32(blk.scale_fp16);  // quantize against the scale as it will be read
        const float inv = d > 0.0f ? 1.0f / d : 0.0f;
        for (int64_t j = 0; j < n; ++j)
            blk.q[j] = static_cast<int8_t>(std::clamp(std::lrintf(w[j0 + j] * inv), -127L, 127L));
        std::memcpy(out + b * sizeof(BlockQ8), &blk, sizeof(BlockQ8));
    }
}
void decode_q8(const uint8_t* row, int64_t cols, float* out) {
    for (int64_t b = 0; b < block_count(cols); ++b) {
        BlockQ8 blk;
        std::memcpy(&blk, row + b * sizeof(BlockQ8), sizeof(BlockQ8));
        const float d = fp16_to_f32(blk.scale_fp16);
        for (int64_t j = 0; j < std::min(kTableBlock, cols - b * kTableBlock); ++j)
            out[b * kTableBlock + j] = d * static_cast<float>(blk.q[j]);
    }
}

// ---- q4: asymmetric 4-bit per block, fp16 scale and min ----

void encode_q4(const float* w, int64_t cols, uint8_t* out) {
    for (int64_t b = 0; b < block_count(cols); ++b) {
        const int64_t j0 = b * kTableBlock, n = std::min(kTableBlock, cols - j0);
        float lo = w[j0], hi = w[j0];
        for (int64_t j = 1; j < n; ++j) lo = std::min(lo, w[j0 + j]), hi = std::max(hi, w[j0 + j]);
        BlockQ4 blk{};
        blk.min_fp16 = f32_to_fp16(lo);
        const float m = fp16_to_f32(blk.min_fp16);
        blk.scale_fp16 = f32_to_fp16((hi - m) / 15.0f);
        const float d = fp16_to_f32(blk.scale_fp16);
        const float inv = d > 0.0f ? 1.0f / d : 0.0f;
        uint8_t q[kTableBlock] = {};
        for (int64_t j = 0; j < n; ++j)
            q[j] = static_cast<uint8_t>(std::clamp(std::lrintf((w[j0 + j] - m) * inv), 0L, 15L));
        for (int64_t i = 0; i < kTableBlock / 2; ++i)
            blk.q[i] = static_cast<uint8_t>(q[i] | (q[i + 16] << 4));
        std::memcpy(out + b * sizeof(BlockQ4), &blk, sizeof(BlockQ4));
    }
}
inline int q4_value(const BlockQ4& blk, int64_t j) {
    return j < kTableBlock / 2 ? blk.q[j] & 0x0f : blk.q[j - kTableBlock / 2] >> 4;
}
void decode_q4(const uint8_t* row, int64_t cols, float* out) {
    for (int64_t b = 0; b < block_count(cols); ++b) {
        BlockQ4 blk;
        std::memcpy(&blk, row + b * sizeof(BlockQ4), sizeof(BlockQ4));
        const float d = fp16_to_f32(blk.scale_fp16), m = fp16_to_f32(blk.min_fp16);
        for (int64_t j = 0; j < std::min(kTableBlock, cols - b * kTableBlock); ++j)
            out[b * kTableBlock + j] = d * static_cast<float>(q4_value(blk, j)) + m;
    }
}

// Blocked types: decode one block at a time and accumulate in fp64.
template <TableDecodeRowFn Decode, int64_t BlockBytes>
double dot_blocked(const uint8_t* row, int64_t cols, const float* x) {
    double s = 0;
    float w[kTableBlock];
    for (int64_t b = 0; b < block_count(cols); ++b) {
        const int64_t n = std::min(kTableBlock, cols - b * kTableBlock);
        Decode(row + b * BlockBytes, n, w);
        for (int64_t j = 0; j < n; ++j) s += static_cast<double>(w[j]) * x[b * kTableBlock + j];
    }
    return s;
}

const std::vector<TableFormat> kFormats = {
    {TableType::f32, "f32", 1, 4, encode_f32, decode_f32, dot_f32},
    {TableType::f16, "f16", 1, 2, encode_f16, decode_f16, dot_f16},
    {TableType::q8, "q8", kTableBlock, sizeof(BlockQ8), encode_q8, decode_q8,
     dot_blocked<decode_q8, sizeof(BlockQ8)>},
    {TableType::q4, "q4", kTableBlock, sizeof(BlockQ4), encode_q4, decode_q4,
     dot_blocked<decode_q4, sizeof(BlockQ4)>},
};

// The largest magnitude a type can hold (fp16 values and block scales).
bool fits(TableType type, float amax) {
    if (!std::isfinite(amax)) return false;
    switch (type) {
        case TableType::f32:
            return true;
        case TableType::f16:
            return amax <= kFp16Max;
        case TableType::q8:
            return amax / 127.0f <= kFp16Max;
        case TableType::q4:
            return amax <= kFp16Max / 2;  // min and (max - min) / 15 both in fp16 range
    }
    return false;
}

}  // namespace

const std::vector<TableFormat>& table_formats() {
    return kFormats;
}

const TableFormat& table_format(TableType type) {
    for (const TableFormat& f : kFormats)
        if (f.type == type) return f;
    fail("unknown table type {}", static_cast<int>(type));
}

TableType parse_table_type(const std::string& name) {
    for (const TableFormat& f : kFormats)
        if (name == f.name) return f.type;
    fail("table type '{}': expected f32, f16, q8 or q4", name);
}

const char* table_type_name(TableType type) {
    return table_format(type).name;
}

TableType more_precise(TableType a, TableType b) {
    // Declaration order of TableType is from most to least precise.
    return static_cast<int>(a) <= static_cast<int>(b) ? a : b;
}

WeightTable encode_table(const float* w, int64_t rows, int64_t cols, TableType type,
                         const std::string& what) {
    PBS2P_CHECK(rows > 0 && cols > 0, "{}: table of {} x {} cannot be encoded", what, rows, cols);
    WeightTable t;
    t.type = type;
    t.rows = rows;
    t.cols = cols;
    const TableFormat& f = t.format();
    const int64_t rb = f.row_bytes(cols);
    t.data.assign(static_cast<size_t>(rows * rb), 0);
    int64_t bad_row = -1;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = w + r * cols;
        float amax = 0.0f;
        bool finite = true;
        for (int64_t j = 0; j < cols; ++j) {
            finite = finite && std::isfinite(row[j]);
            amax = std::max(amax, std::fabs(row[j]));
        }
        if (!finite || !fits(type, amax)) {
#pragma omp critical
            bad_row = bad_row < 0 ? r : std::min(bad_row, r);
            continue;
        }
        f.encode_row(row, cols, t.data.data() + r * rb);
    }
    PBS2P_CHECK(bad_row < 0,
                "{}: row {} has a value that {} cannot hold (non-finite or beyond the fp16 range)", what,
                bad_row, f.name);
    return t;
}

WeightTable table_from_bytes(TableType type, int64_t rows, int64_t cols, const uint8_t* bytes, int64_t nbytes,
                             const std::string& what) {
    WeightTable t;
    t.type = type;
    t.rows = rows;
    t.cols = cols;
    PBS2P_CHECK(rows > 0 && cols > 0 && nbytes == rows * t.row_bytes(),
                "{}: {} table of {} x {} needs {} bytes, {} given", what, t.format().name, rows, cols,
                rows > 0 && cols > 0 ? rows * t.row_bytes() : 0, nbytes);
    t.data.assign(bytes, bytes + nbytes);
    return t;
}

Matrix decode_table(const WeightTable& table) {
    Matrix m(table.rows, table.cols);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < table.rows; ++r) table.decode_row(r, m.row(r));
    return m;
}

void table_gemv_reference(const WeightTable& table, const float* x, float* y) {
    const TableFormat& f = table.format();
    for (int64_t r = 0; r < table.rows; ++r)
        y[r] = static_cast<float>(f.dot_row(table.row(r), table.cols, x));
}

// ---- int8 activations ----

void ActivationsQ8::resize(int64_t blocks) {
    q.resize(static_cast<size_t>(blocks * kTableBlock));
    scale.resize(static_cast<size_t>(blocks));
    sum.resize(static_cast<size_t>(blocks));
}

void quantize_activations_q8(const float* x, int64_t cols, ActivationsQ8& out) {
    const int64_t blocks = block_count(cols);
    out.resize(blocks);
    for (int64_t b = 0; b < blocks; ++b) {
        const int64_t j0 = b * kTableBlock, n = std::min(kTableBlock, cols - j0);
        float amax = 0.0f;
        for (int64_t j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j0 + j]));
        const float d = amax / 127.0f;
        const float inv = d > 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int64_t j = 0; j < kTableBlock; ++j) {
            const auto q = static_cast<int8_t>(j < n ? std::lrintf(x[j0 + j] * inv) : 0);
            out.q[static_cast<size_t>(j0 + j)] = q;
            sum += q;
        }
        out.scale[static_cast<size_t>(b)] = d;
        out.sum[static_cast<size_t>(b)] = sum;
    }
}

float table_dot_q8_activations(const WeightTable& table, int64_t row, const ActivationsQ8& x) {
    PBS2P_CHECK(table.type == TableType::q8 || table.type == TableType::q4,
                "int8-activation dot product: table type {} is not blocked", table.format().name);
    const uint8_t* data = table.row(row);
    float acc = 0.0f;
    for (int64_t b = 0; b < block_count(table.cols); ++b) {
        const int8_t* xq = x.q.data() + b * kTableBlock;
        const float dx = x.scale[static_cast<size_t>(b)];
        int32_t isum = 0;
        if (table.type == TableType::q8) {
            BlockQ8 blk;
            std::memcpy(&blk, data + b * sizeof(BlockQ8), sizeof(BlockQ8));
            for (int64_t j = 0; j < kTableBlock; ++j) isum += blk.q[j] * xq[j];
            acc += fp16_to_f32(blk.scale_fp16) * dx * static_cast<float>(isum);
        } else {
            BlockQ4 blk;
            std::memcpy(&blk, data + b * sizeof(BlockQ4), sizeof(BlockQ4));
            for (int64_t j = 0; j < kTableBlock; ++j) isum += q4_value(blk, j) * xq[j];
            acc += fp16_to_f32(blk.scale_fp16) * dx * static_cast<float>(isum) +
                   fp16_to_f32(blk.min_fp16) * dx * static_cast<float>(x.sum[static_cast<size_t>(b)]);
        }
    }
    return acc;
}

}  // namespace pbs2p
