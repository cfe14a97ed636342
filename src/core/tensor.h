// Dense row-major matrices with 64-byte aligned storage (fp32 for activations and weights, fp64 for
// Hessian algebra).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace pbs2p {

template <typename T>
struct AlignedAllocator {
    using value_type = T;
    static constexpr std::size_t alignment = 64;
    AlignedAllocator() = default;
    template <typename U>
    AlignedAllocator(const AlignedAllocator<U>&) {}
    T* allocate(std::size_t n) {
        std::size_t bytes = (n * sizeof(T) + alignment - 1) / alignment * alignment;
        void* p = std::aligned_alloc(alignment, bytes == 0 ? alignment : bytes);
        if (!p) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t) { std::free(p); }
    template <typename U>
    bool operator==(const AlignedAllocator<U>&) const { return true; }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

template <typename T>
struct BasicMatrix {
    int64_t rows = 0;
    int64_t cols = 0;
    AlignedVector<T> data;

    BasicMatrix() = default;
    BasicMatrix(int64_t r, int64_t c, T fill = T(0)) : rows(r), cols(c), data(static_cast<size_t>(r * c), fill) {}

    int64_t size() const { return rows * cols; }
    bool empty() const { return data.empty(); }
    T* ptr() { return data.data(); }
    const T* ptr() const { return data.data(); }
    T* row(int64_t i) { return data.data() + i * cols; }
    const T* row(int64_t i) const { return data.data() + i * cols; }
    T& operator()(int64_t i, int64_t j) { return data[static_cast<size_t>(i * cols + j)]; }
    const T& operator()(int64_t i, int64_t j) const { return data[static_cast<size_t>(i * cols + j)]; }
};

using Matrix = BasicMatrix<float>;
using MatrixD = BasicMatrix<double>;

}  // namespace pbs2p
