// The dense (fully connected) layer, forward and backward, outputs first.
#pragma once
#include <cstddef>

#include "kernels/gemm.hpp"

namespace bp {

// Z[B,OUT] = A[B,IN] · W[IN,OUT] + b[OUT]      (b may be null: no bias)
// The bias is the product's starting value (no pass of its own); epi (if any)
// runs on each final block of Z (layers/epilogues.hpp: the activation). path:
// the kernels of a training step or of inference (kernels/gemm.hpp: ForwardPath).
template <typename T>
void dense_forward(T* Z, const T* A, const T* W, const T* b, std::size_t B, std::size_t IN,
                   std::size_t OUT, const GemmEpilogue* epi = nullptr, ForwardPath path = ForwardPath::Training) {
    for (std::size_t r = 0; r < B; ++r)
        for (std::size_t j = 0; j < OUT; ++j) Z[r * OUT + j] = b ? b[j] : T(0);
    matmul_nn(Z, A, W, B, IN, OUT, epi, path);
}

// Given dZ[B,OUT] = dL/dZ, accumulates
//   dW[IN,OUT] += Aᵀ · dZ,   db[OUT] += Σ_rows dZ   (db may be null)
// and, unless dA is null (the first layer needs no input gradient), writes
//   dA[B,IN] = dZ · Wᵀ,
// then epi (if any) on each final block of dA (layers/epilogues.hpp: the layer
// below's dropout and activation derivative). db is a column sum of its own:
// fused into a product whose rows are split over threads, its order of
// addition would depend on the thread count.
// Gradients accumulate: zeroing them is the caller's separate, visible step.
template <typename T>
void dense_backward(T* dA, T* dW, T* db, const T* dZ, const T* A, const T* W, std::size_t B,
                    std::size_t IN, std::size_t OUT, const GemmEpilogue* epi = nullptr) {
    matmul_tn(dW, A, dZ, B, IN, OUT);
    if (db)
        for (std::size_t r = 0; r < B; ++r)
            for (std::size_t j = 0; j < OUT; ++j) db[j] += dZ[r * OUT + j];
    if (dA) {
        for (std::size_t i = 0; i < B * IN; ++i) dA[i] = T(0);
        matmul_nt(dA, dZ, W, B, OUT, IN, epi);
    }
}

}  // namespace bp
