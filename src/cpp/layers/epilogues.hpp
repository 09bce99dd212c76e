// What the dense layer fuses into its products (kernels/gemm.hpp, "Epilogue"):
// each runs on a final block of the product's output, rows [row0, row0+rows) and
// columns [col0, col0+cols) of a row-major matrix with `ld` columns, while the
// block is in cache. Both are elementwise, so the result is bitwise that of the
// separate passes (which the network still uses for softmax, for noisy ReLU in
// training, whose noise is drawn in row-major order, and when recording for
// explain()).
#pragma once
#include <cstddef>

#include "activations/activations.hpp"
#include "kernels/gemm.hpp"
#include "layers/dropout.hpp"

namespace bp {

// Calls f(offset, n) on the contiguous runs of a block of a row-major matrix with
// ld columns: one run when the block spans whole rows, else one per row.
template <typename F>
inline void for_each_run(std::size_t ld, std::ptrdiff_t row0, std::ptrdiff_t rows, std::ptrdiff_t col0,
                         std::ptrdiff_t cols, F&& f) {
    if (col0 == 0 && std::size_t(cols) == ld) return f(std::size_t(row0) * ld, std::size_t(rows) * ld);
    for (std::ptrdiff_t r = row0; r < row0 + rows; ++r) f(std::size_t(r) * ld + std::size_t(col0), std::size_t(cols));
}

// Forward: A = f(Z) on the block of Z = X·W + b just computed.
template <typename T>
struct ActivationEpilogue {
    const Activation* act;
    T* A;
    const T* Z;
    std::size_t ld;

    static void run(void* self, std::ptrdiff_t row0, std::ptrdiff_t rows, std::ptrdiff_t col0, std::ptrdiff_t cols) {
        const auto& e = *static_cast<const ActivationEpilogue*>(self);
        for_each_run(e.ld, row0, rows, col0, cols, [&e](std::size_t off, std::size_t n) {
            activation_forward(*e.act, e.A + off, e.Z + off, 1, n);
        });
    }
    GemmEpilogue epilogue() { return {&ActivationEpilogue::run, this}; }
};

// Backward: the block of dD = δ·Wᵀ just computed (the gradient at the layer's input)
// becomes dZ of the layer below, in place: through the dropout (mask · scale while
// training, the inference scale otherwise; none when mask is null and scale 1) and
// then the activation's derivative, dZ = dA ⊙ f'(Z).
template <typename T>
struct DeltaEpilogue {
    const Activation* act;
    T* delta;
    const T* mask;  // null: no mask (inference scaling or no dropout)
    T scale;        // dropout scale (1 without dropout)
    const T* Z;
    const T* A;
    std::size_t ld;

    static void run(void* self, std::ptrdiff_t row0, std::ptrdiff_t rows, std::ptrdiff_t col0, std::ptrdiff_t cols) {
        const auto& e = *static_cast<const DeltaEpilogue*>(self);
        for_each_run(e.ld, row0, rows, col0, cols, [&e](std::size_t off, std::size_t n) {
            T* d = e.delta + off;
            dropout_backward(d, e.mask ? e.mask + off : nullptr, n, e.scale);
            activation_backward(*e.act, d, d, e.Z + off, e.A + off, 1, n);
        });
    }
    GemmEpilogue epilogue() { return {&DeltaEpilogue::run, this}; }
};

}  // namespace bp
