// The method table: every method is a short assembly of the shared parts, run on a working copy of W.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compress/layer_compressor.h"

namespace pbs2p {

struct MethodContext {
    const Matrix& original;        // W as given
    const MatrixD& hessian;        // raw H
    const HessianFactor& factor;
    const CompressOptions& options;
    Matrix& weight;                // working copy (dead columns zeroed for Hessian methods); becomes the output
    std::optional<BinaryLayout>& layout;
    LayerStats& stats;             // the method fills nominal_bits, storage_bits, salient_fraction, n_keep, m_group
};

struct MethodEntry {
    const char* name;
    const char* summary;
    bool uses_hessian;             // dead columns are zeroed first
    void (*run)(MethodContext&);
};

const std::vector<MethodEntry>& method_table();
const MethodEntry& find_method(const std::string& name);

// Bits for an N:M pattern alone (ceil(log2 C(M,N)) / M) and for pattern + signs of the kept entries
// (ceil(log2(C(M,N) 2^N)) / M), per weight.
double nm_pattern_bits(int n_keep, int m_group);

// Columns per (alpha, mu) of pbs2p: options.scale_group, the whole row when negative or wider than the row, or when 0 gcd(block_size, cols) (= block_size
// for widths that are a multiple of it, so a short last block never breaks the layout).
int64_t effective_scale_group(const CompressOptions& options, int64_t cols);
double nm_pattern_sign_bits(int n_keep, int m_group);

// Whether a layer compressed with `options` comes with a BinaryLayout (pbs2p with a row backbone, arb or
// arb-x, or a ternary code): the methods whose result has a packed form.
bool produces_layout(const CompressOptions& options);

}  // namespace pbs2p
