// Matrix products straight from a packed layer: y[tokens x rows] = x[tokens x cols] * W_hat^T.
// Table-driven dispatch: one row per implementation (name, instruction set, GEMV, GEMM). The reference
// kernel reads the storage codes and accumulates in fp64; the fast ones read a compute layout
// (compute_layout.h): the bit planes, or the low-bit layout where the layer fits it (otherwise the low-bit
// rows run their bit-plane counterpart: the dispatch rule is PackedMatrix::lowbit being empty).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "packed/compute_layout.h"
#include "packed/packed_layer.h"

namespace pbs2p {

// Compute layout a kernel reads.
enum class ComputeForm {
    none,        // the storage codes (reference)
    bit_planes,  // ComputeLayout
    lowbit,      // LowbitLayout where the layer fits, else ComputeLayout
};

// A packed layer as held in memory: the storage form and, when built, one compute layout.
struct PackedMatrix {
    PackedLayer storage;
    ComputeLayout compute;  // bit planes: built for ComputeForm::bit_planes, or lowbit when it does not fit
    LowbitLayout lowbit;    // built for ComputeForm::lowbit when the layer fits
    int64_t rows() const { return storage.desc.rows; }
    int64_t cols() const { return storage.desc.cols; }
    // Bytes of the compute layout built (0 for none).
    int64_t compute_bytes() const { return compute.bytes() + lowbit.bytes(); }
};

PackedMatrix make_packed_matrix(PackedLayer layer, ComputeForm form = ComputeForm::bit_planes);

using PackedGemvFn = void (*)(const PackedMatrix& w, const float* x, float* y);
using PackedGemmFn = void (*)(const PackedMatrix& w, const float* x, int64_t tokens, float* y);

struct PackedKernel {
    const char* name;
    const char* isa;
    const char* activations;  // "f32" or "q8" (int8 activations, one scale per block)
    ComputeForm form;         // the layout it reads
    PackedGemvFn gemv;
    PackedGemmFn gemm;
    bool available = true;  // false where this CPU lacks the instruction set (the row is compiled in)
};

// Every implementation compiled into this build, reference first, then in order of speed on the machines
// measured (docs/FORMAT.md), so the fastest available row of a kind is the last available one.
const std::vector<PackedKernel>& packed_kernels();
// Throws pbs2p::Error naming the unknown kernel and the available ones, or the instruction set this CPU
// lacks.
const PackedKernel& packed_kernel(const std::string& name);
// The fastest kernel this CPU runs (int8 activations where built): the last available row.
const PackedKernel& fastest_packed_kernel();
// The fastest exact-activation (f32) kernel this CPU runs: the last available f32 row.
const PackedKernel& default_packed_kernel();

// Scalar reference (fp64 accumulation over the storage codes).
void reference_gemv(const PackedMatrix& w, const float* x, float* y);
void reference_gemm(const PackedMatrix& w, const float* x, int64_t tokens, float* y);

// Rows of kernels from other translation units (empty when the ISA is not compiled in).
std::vector<PackedKernel> avx2_packed_kernels();

}  // namespace pbs2p
