// Matrix products straight from a packed layer: y[tokens x rows] = x[tokens x cols] * W_hat^T.
// Table-driven dispatch: one row per implementation (name, instruction set, GEMV, GEMM). The reference
// kernel reads the storage codes and accumulates in fp64; the fast ones read the compute layout.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "packed/compute_layout.h"
#include "packed/packed_layer.h"

namespace pbs2p {

// A packed layer as held in memory: the storage form and, when built, its compute layout.
struct PackedMatrix {
    PackedLayer storage;
    ComputeLayout compute;  // empty until make_packed_matrix(..., with_compute = true)
    int64_t rows() const { return storage.desc.rows; }
    int64_t cols() const { return storage.desc.cols; }
};

PackedMatrix make_packed_matrix(PackedLayer layer, bool with_compute = true);

using PackedGemvFn = void (*)(const PackedMatrix& w, const float* x, float* y);
using PackedGemmFn = void (*)(const PackedMatrix& w, const float* x, int64_t tokens, float* y);

struct PackedKernel {
    const char* name;
    const char* isa;
    const char* activations;  // "f32" or "q8" (int8 activations, one scale per block)
    bool needs_compute;       // reads PackedMatrix::compute
    PackedGemvFn gemv;
    PackedGemmFn gemm;
};

// Every implementation compiled into this build, reference first.
const std::vector<PackedKernel>& packed_kernels();
// Throws pbs2p::Error naming the unknown kernel and the available ones.
const PackedKernel& packed_kernel(const std::string& name);
// The fastest exact-activation (f32) kernel in this build.
const PackedKernel& default_packed_kernel();

// Scalar reference (fp64 accumulation over the storage codes).
void reference_gemv(const PackedMatrix& w, const float* x, float* y);
void reference_gemm(const PackedMatrix& w, const float* x, int64_t tokens, float* y);

// Rows of kernels from other translation units (empty when the ISA is not compiled in).
std::vector<PackedKernel> avx2_packed_kernels();

}  // namespace pbs2p
